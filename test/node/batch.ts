// node.batch (docs/design/0027-atomic-batches.md): all or nothing, consecutive seqs, one
// synchronous apply (readers and watchers never see part of a batch), LWW per key, and
// every bad input refused whole with a clear code and nothing written (no seq spent).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Node } from "../../src/node/node.js";
import { WaveKVError } from "../../src/core/errors.js";
import { encodeRecords } from "../../src/codec/records.js";
import { RecordKind } from "../../src/core/record.js";
import { envelopeWithEncodedEntries } from "../../src/sync/envelope.js";
import { MAX_BATCH_BYTES, MAX_BATCH_ENTRIES, type BatchOperation } from "../../src/node/batch.js";
import { freshDirs } from "../helpers/storage-fixtures.js";

const fresh = freshDirs("node-batch", test.after);
const text = (v: Uint8Array | null | undefined) => (v ? new TextDecoder().decode(v) : v);

async function rejectsWith(p: Promise<unknown>, code: string, what: string): Promise<string> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, WaveKVError, what);
    assert.is((e as WaveKVError).code, code, `${what}: ${(e as Error).message}`);
    assert.not.match((e as Error).message, /\n/, `${what}: one line`);
    return (e as Error).message;
  }
  assert.unreachable(`${what}: resolved`);
  return "";
}

const puts = (n: number, prefix = "k/"): BatchOperation[] => Array.from({ length: n }, (_, i) => ({ type: "put", key: `${prefix}${i}`, value: `v${i}` }));

test("a batch writes every operation with consecutive seqs, and survives a reopen", async () => {
  const dir = fresh();
  const node = await Node.open({ id: 1, dir });
  await node.put("gone", "x");
  const out = await node.batch([{ type: "put", key: "a", value: "1" }, { type: "del", key: "gone" }, { type: "put", key: "b", value: new Uint8Array([7]) }, { type: "delete", key: "never" }]);
  assert.equal(out.map((e) => [e.key, e.seq, text(e.value)]), [["a", 2, "1"], ["gone", 3, null], ["b", 4, "\x07"], ["never", 5, null]]);
  assert.ok(out.every((e) => e.node === 1));
  assert.is((await node.put("after", "y")).seq, 6);
  await node.close();
  const again = await Node.open({ id: 1, dir });
  assert.is(text(again.get("a")!.value), "1");
  assert.is(again.get("gone"), undefined);
  assert.is(again.getIncludingTombstones("never")!.seq, 5);
  assert.is(again.status().nextSeq, 7);
  await again.close();
});

test("batches and puts take their seqs in call order: the later call wins its keys", async () => {
  for (const dir of [fresh(), undefined]) {
    const node = await Node.open({ id: 1, dir, fsync: "always" });
    // Not awaited in between: each call stamps at once, so program order is LWW order.
    const calls = [node.batch([{ type: "put", key: "k", value: "batch 1" }]), node.put("k", "put 2"), node.batch([{ type: "put", key: "k", value: "batch 3" }]), node.batch([{ type: "put", key: "j", value: "batch 4" }]), node.put("j", "put 5")];
    const written = await Promise.all(calls);
    const seqs = written.map((w) => (Array.isArray(w) ? w[0]!.seq : w.seq));
    assert.equal(seqs, [1, 2, 3, 4, 5], "seqs follow the calls");
    assert.is(new TextDecoder().decode(node.get("k")!.value!), "batch 3");
    assert.is(new TextDecoder().decode(node.get("j")!.value!), "put 5");
    await node.close();
  }
});

test("readers see none of a batch until it is durable, then all of it at once", async () => {
  const node = await Node.open({ id: 1, dir: fresh(), fsync: "always" });
  const p = node.batch(puts(50));
  assert.is(node.get("k/0"), undefined, "logged, not yet applied");
  let seen = -1;
  // Every microtask until it resolves: the count of batch keys visible is 0 or 50.
  for (let i = 0; i < 10_000 && seen !== 50; i++) {
    await Promise.resolve();
    seen = [...node.scan("k/")].length;
    assert.ok(seen === 0 || seen === 50, `a reader saw ${seen} of 50`);
  }
  await p;
  assert.is([...node.scan("k/")].length, 50);
  await node.close();
});

test("a watcher gets a batch's events together: the store shows the whole batch at the first", async () => {
  const node = await Node.open({ id: 1, dir: fresh() });
  const ac = new AbortController();
  const events = node.watch("w/", { signal: ac.signal });
  const done = node.batch([...puts(5, "w/"), { type: "put", key: "other", value: "z" }]);
  const first = await events.next();
  assert.is(first.value!.key, "w/0");
  for (let i = 0; i < 5; i++) assert.is(text(node.get(`w/${i}`)!.value), `v${i}`, "the whole batch is applied when its first event arrives");
  // The rest are queued already: each next() resolves without another write.
  for (let i = 1; i < 5; i++) assert.is((await events.next()).value!.key, `w/${i}`);
  await done;
  ac.abort();
  await node.close();
});

test("in memory: a batch applies in one step too", async () => {
  const node = await Node.open({ id: 3 });
  const out = await node.batch(puts(3));
  assert.equal(out.map((e) => e.seq), [1, 2, 3]);
  assert.is(node.size, 3);
  await node.close();
});

test("bad input is refused whole: clear code, one line, nothing written, no seq spent", async () => {
  const node = await Node.open({ id: 1, dir: fresh(), limits: { maxKeyBytes: 16, maxValueBytes: 64, maxKeys: 6 }, admit: (e) => (e.key === "no" ? "not that key" : true) });
  await node.put("k/0", "held");
  const digest = node.digest(), next = node.status().nextSeq;
  const cases: [unknown, string, string][] = [
    ["not an array", "INVALID_ARGUMENT", "not an array"],
    [[], "INVALID_ARGUMENT", "empty"],
    [Array.from({ length: MAX_BATCH_ENTRIES + 1 }, (_, i) => ({ type: "delete", key: `d/${i}` })), "INVALID_ARGUMENT", "too many"],
    [[{ type: "put", key: "a", value: "1" }, { type: "delete", key: "a" }], "INVALID_ARGUMENT", "a key twice"],
    [[{ type: "put", key: "a", value: "1" }, { type: "put", key: "__wavekv/x", value: "1" }], "RESERVED_KEY", "a reserved key"],
    [[{ type: "upsert", key: "a", value: "1" }], "INVALID_ARGUMENT", "unknown type"],
    [[{ type: "put", key: "a" }], "INVALID_ARGUMENT", "put without value"],
    [[{ type: "delete", key: "a", value: "1" }], "INVALID_ARGUMENT", "delete with a value"],
    [[{ type: "put", key: 7, value: "1" }], "INVALID_ARGUMENT", "key not a string"],
    [[null], "INVALID_ARGUMENT", "null operation"],
    [[{ type: "put", key: "a", value: "1" }, { type: "put", key: "a\uD800", value: "1" }], "INVALID_ARGUMENT", "lone surrogate"],
    [[{ type: "put", key: "a", value: "1" }, { type: "put", key: "x".repeat(17), value: "1" }], "KEY_TOO_LARGE", "key over limits"],
    [[{ type: "put", key: "a", value: "1" }, { type: "put", key: "b", value: "x".repeat(65) }], "VALUE_TOO_LARGE", "value over limits"],
    [[{ type: "put", key: "a", value: "1" }, { type: "put", key: "no", value: "1" }], "REJECTED", "admit refuses one"],
    [puts(6, "n/"), "STORE_FULL", "the batch together exceeds maxKeys (each alone fits)"],
  ];
  for (const [ops, code, what] of cases) await rejectsWith(node.batch(ops as BatchOperation[]), code, what);
  const big = new Uint8Array(1 << 20);
  await rejectsWith(node.batch(Array.from({ length: MAX_BATCH_BYTES / big.length + 1 }, (_, i) => ({ type: "put", key: `b/${i}`, value: big }))), "INVALID_ARGUMENT", "over MAX_BATCH_BYTES");
  const ac = new AbortController();
  ac.abort(new WaveKVError("INVALID_ARGUMENT", "caller gave up"));
  await rejectsWith(node.batch(puts(2), { signal: ac.signal }), "INVALID_ARGUMENT", "aborted signal");
  assert.is(node.digest(), digest, "nothing written");
  assert.is(node.status().nextSeq, next, "no seq spent");
  assert.is((await node.put("k/1", "x")).seq, next);
  await node.close();
  await rejectsWith(node.batch(puts(1)), "CLOSED", "closed node");
});

test("reserved keys follow put's rules: the node's own address key is written, any other is RESERVED_KEY", async () => {
  const node = await Node.open({ id: 4 });
  await rejectsWith(node.batch([{ type: "put", key: "a", value: "1" }, { type: "put", key: "__wavekv/peers/5", value: "http://x" }]), "RESERVED_KEY", "another node's address");
  assert.is(node.size, 0);
  await node.batch([{ type: "put", key: "a", value: "1" }, { type: "put", key: "__wavekv/peers/4", value: "http://127.0.0.1:1" }]);
  assert.is(text(node.get("__wavekv/peers/4")?.value), "http://127.0.0.1:1");
  await node.close();
});

test("LWW decides per key: a batch that would lose on one key is refused before anything is written", async () => {
  const node = await Node.open({ id: 1, clock: () => 1_000, limits: { maxClockDriftMs: 10_000_000 } });
  const bytes = encodeRecords([{ kind: RecordKind.Value, key: "k/1", value: new TextEncoder().encode("theirs"), timestamp: 5_000_000, node: 2, seq: 1 }], "bare", 0);
  node.handleEnvelope(envelopeWithEncodedEntries({ version: 1, senderId: 2, senderUuid: "00000000-0000-4000-8000-000000000002", acks: new Map(), pushOnly: true }, { bytes, count: 1, base: 0 }));
  const digest = node.digest();
  await rejectsWith(node.batch(puts(3)), "SUPERSEDED", "a newer entry of another node");
  assert.is(node.digest(), digest);
  // Without that key, the batch goes through; a later write to one of its keys wins there only.
  await node.batch([{ type: "put", key: "k/0", value: "a" }, { type: "put", key: "k/2", value: "b" }]);
  await node.put("k/2", "later");
  assert.is(text(node.get("k/0")!.value), "a");
  assert.is(text(node.get("k/2")!.value), "later");
  await node.close();
});

test("a snapshot taken while a batch is in flight holds all of it or none", async () => {
  const dir = fresh();
  const node = await Node.open({ id: 1, dir, fsync: "always" });
  const p = node.batch(puts(20));
  const snap = node.persist();
  await Promise.all([p, snap]);
  await node.close();
  const again = await Node.open({ id: 1, dir });
  assert.is([...again.scan("k/")].length, 20);
  await again.close();
});

test.run();
