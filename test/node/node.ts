// The in-memory Node: SPEC sections 1, 2 and 5.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Node } from "../../src/node/node.js";
import { WaveKVError } from "../../src/core/errors.js";
import { decodeRecords, encodeRecords } from "../../src/codec/records.js";
import { RecordKind, type RecordInput } from "../../src/core/record.js";
import { ReplicaState } from "../../src/state/replica.js";
import { DEFAULT_LIMITS } from "../../src/core/types.js";

const text = (b: Uint8Array | null | undefined) => (b ? new TextDecoder().decode(b) : b);

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, WaveKVError);
    assert.is((e as WaveKVError).code, code);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

function fixedClock(start: number) {
  let now = start;
  const clock = () => now;
  clock.set = (t: number) => { now = t; };
  return clock;
}

test("put/get/delete stamp (timestamp, node, seq) with seq from 1", async () => {
  const clock = fixedClock(1_000);
  const node = await Node.open({ id: 7, clock });
  assert.is(node.status().nextSeq, 1);
  const a = await node.put("a", "one");
  assert.equal([a.key, text(a.value), a.timestamp, a.node, a.seq], ["a", "one", 1_000, 7, 1]);
  assert.is(text(node.get("a")!.value), "one");
  clock.set(2_000);
  const t = await node.delete("a");
  assert.equal([t!.value, t!.timestamp, t!.seq], [null, 2_000, 2]);
  assert.is(node.get("a"), undefined);
  assert.is(node.getIncludingTombstones("a")!.value, null);
  // Deleting a key this node does not hold still writes a tombstone (a peer may hold an older put).
  const again = await node.delete("a");
  assert.equal([again.value, again.timestamp, again.seq], [null, 2_000, 3]);
  const never = await node.delete("never");
  assert.equal([never.key, never.value, never.seq], ["never", null, 4]);
  assert.is(node.status().nextSeq, 5);
  assert.is(node.size, 0);
  assert.is(node.status().tombstones, 2);
  await node.close();
});

test("values: strings are UTF-8, bytes are kept as given", async () => {
  const node = await Node.open({ id: 1 });
  await node.put("s", "héllo");
  assert.equal([...node.get("s")!.value!], [...new TextEncoder().encode("héllo")]);
  await node.put("b", new Uint8Array([0, 255, 1]));
  assert.equal([...node.get("b")!.value!], [0, 255, 1]);
  await node.put("empty", new Uint8Array(0));
  assert.is(node.get("empty")!.value!.length, 0, "an empty value is a value, not a tombstone");
  assert.is(node.size, 3);
  await node.close();
});

test("durable: writes to one key pending their fsync stay ordered as the clock steps back; close waits for them", async () => {
  const dir = mkdtempSync(join(tmpdir(), "wavekv-node-pending-"));
  try {
    const clock = fixedClock(5_000);
    let node = await Node.open({ id: 1, dir, clock, fsync: "always" });
    // Fired without awaiting: each is logged (pending) before the previous is applied.
    const puts = [node.put("k", "a")];
    clock.set(1_000);
    puts.push(node.put("k", "b"), node.put("k", "c"), node.put("other", "o"));
    clock.set(7_000);
    puts.push(node.put("k", "d"));
    clock.set(2_000);
    puts.push(node.put("k", "e"));
    const closed = node.close();
    const entries = await Promise.all(puts);
    await closed;
    assert.equal(entries.map((e) => e.timestamp), [5_000, 5_000, 5_000, 1_000, 7_000, 7_000], "each stamped at least its pending predecessor's");
    node = await Node.open({ id: 1, dir, clock });
    assert.is(text(node.get("k")!.value), "e", "the last write wins after reopening");
    assert.is(text(node.get("other")!.value), "o");
    // Nothing is pending any more: a new write takes the clock again (its own entry's stamp floor aside).
    clock.set(9_000);
    assert.is((await node.put("k", "f")).timestamp, 9_000);
    await node.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a clock that steps back never makes our later write to a key lose; other keys take the clock", async () => {
  const clock = fixedClock(5_000);
  const node = await Node.open({ id: 1, clock });
  await node.put("k", "first");
  clock.set(1_000);
  const second = await node.put("k", "second");
  assert.is(second.timestamp, 5_000, "ordered after our own entry by its seq");
  assert.is(text(node.get("k")!.value), "second");
  assert.is((await node.put("other", "o")).timestamp, 1_000, "no floor from another key's stamp");
  assert.is((await node.delete("k")).timestamp, 5_000);
  assert.is(node.get("k"), undefined);
  await node.close();
});

function remoteBatch(records: RecordInput[]) {
  const bytes = encodeRecords(records, "bare", 0);
  return decodeRecords(bytes, "bare", 0, records.length);
}
const rec = (key: string, value: string | null, timestamp: number, node: number, seq: number): RecordInput => ({
  kind: value === null ? RecordKind.Tombstone : RecordKind.Value, key, value: value === null ? null : new TextEncoder().encode(value), timestamp, node, seq,
});

test("LWW: timestamp, then node, then seq; tombstones get no precedence", () => {
  const s = new ReplicaState(1);
  const opts = { limits: DEFAULT_LIMITS, now: 10_000 };
  s.mergeBatch(remoteBatch([rec("k", "a", 100, 5, 9)]), opts);
  // Equal timestamp, lower node: loses even with a higher seq.
  s.mergeBatch(remoteBatch([rec("k", "b", 100, 4, 99)]), opts);
  assert.is(text(s.get("k")!.value), "a");
  // Equal timestamp and node, higher seq: wins.
  s.mergeBatch(remoteBatch([rec("k", "c", 100, 5, 10)]), opts);
  assert.is(text(s.get("k")!.value), "c");
  // A tombstone on a LOWER node with an equal timestamp loses (no tombstone rule)...
  s.mergeBatch(remoteBatch([rec("k", null, 100, 3, 50)]), opts);
  assert.is(text(s.get("k")!.value), "c");
  // ...and on a higher node wins, by the node rule alone.
  s.mergeBatch(remoteBatch([rec("k", null, 100, 6, 1)]), opts);
  assert.is(s.get("k")!.value, null);
  // Later timestamp beats any node.
  s.mergeBatch(remoteBatch([rec("k", "d", 101, 0, 1)]), opts);
  assert.is(text(s.get("k")!.value), "d");
  // Idempotent: the same entry again changes nothing.
  const v = s.version;
  const out = s.mergeBatch(remoteBatch([rec("k", "d", 101, 0, 1)]), opts);
  assert.is(out.merged, 0);
  assert.is(s.version, v);
});

test("merge order does not matter (commutative within and across batches)", () => {
  const records = [rec("x", "1", 5, 1, 1), rec("x", "2", 5, 2, 1), rec("y", null, 3, 1, 2), rec("y", "3", 2, 9, 9), rec("x", "0", 4, 9, 9)];
  const digests = new Set<string>();
  for (const order of [[0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [2, 0, 4, 1, 3]]) {
    const one = new ReplicaState(1);
    one.mergeBatch(remoteBatch(order.map((i) => records[i]!)), { limits: DEFAULT_LIMITS, now: 100 });
    digests.add(one.digest());
    const many = new ReplicaState(1);
    for (const i of order) many.mergeBatch(remoteBatch([records[i]!]), { limits: DEFAULT_LIMITS, now: 100 });
    digests.add(many.digest());
    assert.is(text(one.get("x")!.value), "2");
    assert.is(one.get("y")!.value, null);
  }
  assert.is(digests.size, 1);
});

test("forcePut wins over a far-future entry where put loses", async () => {
  const clock = fixedClock(1_000);
  const node = await Node.open({ id: 1, clock, limits: { maxClockDriftMs: 10_000_000 } });
  await node.put("k", "mine");
  const future = 1_000 + 5_000_000;
  // Deliver node 2's far-future entry the way a peer would: a push envelope.
  const { envelopeWithEncodedEntries } = await import("../../src/sync/envelope.js");
  const bytes = encodeRecords([rec("k", "theirs", future, 2, 1)], "bare", 0);
  node.handleEnvelope(envelopeWithEncodedEntries({ version: 1, senderId: 2, senderUuid: "00000000-0000-4000-8000-000000000002", acks: new Map(), pushOnly: true }, { bytes, count: 1, base: 0 }));
  assert.is(text(node.get("k")!.value), "theirs");
  await rejectsWith(node.put("k", "plain"), "SUPERSEDED"); // a plain put stamped now would lose: the caller is told
  assert.is(text(node.get("k")!.value), "theirs");
  const forced = await node.forcePut("k", "forced");
  assert.is(forced.timestamp, future + 1);
  assert.is(text(node.get("k")!.value), "forced");
  await node.close();
});

test("digest matches SPEC section 5 bytes hashed independently", async () => {
  const clock = fixedClock(1_700_000_000_123);
  const node = await Node.open({ id: 3, clock });
  await node.put("b", "vb");
  await node.put("a", new Uint8Array([1, 2, 3]));
  await node.put("z", "gone");
  clock.set(1_700_000_000_500);
  await node.delete("z");
  // Hand-built: entries in UTF-8 key order a, b, z.
  const parts: Buffer[] = [];
  const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
  const u64 = (n: number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n)); return b; };
  const i64 = (n: number) => { const b = Buffer.alloc(8); b.writeBigInt64LE(BigInt(n)); return b; };
  const entry = (key: string, node: number, seq: number, ts: number, value: Buffer | null) => {
    const k = Buffer.from(key, "utf8");
    parts.push(u32(k.length), k, u32(node), u64(seq), i64(ts));
    if (value === null) parts.push(Buffer.from([0]));
    else parts.push(Buffer.from([1]), u32(value.length), value);
  };
  entry("a", 3, 2, 1_700_000_000_123, Buffer.from([1, 2, 3]));
  entry("b", 3, 1, 1_700_000_000_123, Buffer.from("vb"));
  entry("z", 3, 4, 1_700_000_000_500, null);
  const expected = createHash("sha256").update(Buffer.concat(parts)).digest("hex");
  assert.is(node.digest(), expected);
  assert.is(node.status().digest, expected);
  const empty = await Node.open({ id: 4 });
  assert.is(empty.digest(), createHash("sha256").digest("hex"));
  await node.close();
  await empty.close();
});

test("scan is in UTF-8 byte order, by prefix, tombstones on request", async () => {
  const node = await Node.open({ id: 1 });
  // U+FF5E (BMP, UTF-8 ef bd 9e) sorts BEFORE U+1F600 (astral, f0 9f 98 80) in UTF-8,
  // but after it in JavaScript's UTF-16 order.
  const keys = ["p/\u{1F600}", "p/\uFF5E", "p/b", "p/a", "q", "p", "o", "p/é"];
  for (const k of keys) await node.put(k, k);
  await node.delete("p/b");
  const expected = [...keys].filter((k) => k.startsWith("p/") && k !== "p/b").sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
  assert.equal([...node.scan("p/")].map((e) => e.key), expected);
  assert.equal([...node.scan("p/", { includeTombstones: true })].map((e) => e.key).includes("p/b"), true);
  assert.equal([...node.scan("")].map((e) => e.key).length, keys.length - 1);
  // New keys after a scan are merged into the cached order.
  await node.put("p/aa", "x");
  assert.equal([...node.scan("p/a")].map((e) => e.key), ["p/a", "p/aa"]);
  await node.close();
});

test("limits: exactly at the limit is accepted, one past is refused, nothing changes", async () => {
  const node = await Node.open({ id: 1, limits: { maxKeyBytes: 4, maxValueBytes: 3, maxKeys: 2 } });
  await node.put("abcd", "123");
  const before = node.digest();
  await rejectsWith(node.put("abcde", "1"), "KEY_TOO_LARGE");
  await rejectsWith(node.put("é€", "1"), "KEY_TOO_LARGE"); // 5 UTF-8 bytes in 2 chars
  await rejectsWith(node.put("a", "1234"), "VALUE_TOO_LARGE");
  await node.put("b", "x");
  await rejectsWith(node.put("c", "x"), "STORE_FULL");
  await node.put("b", "y"); // updates are still allowed at capacity
  await node.delete("b");
  await rejectsWith(node.put("c", "x"), "STORE_FULL"); // tombstones hold their key
  await node.put("b", "z"); // re-putting a deleted key is an update
  assert.is.not(node.digest(), before);
  assert.is(node.status().nextSeq, 6, "five writes took seqs 1..5; the refused ones took none");
  await node.close();
});

test("maxTotalBytes counts key and value bytes", async () => {
  const node = await Node.open({ id: 1, limits: { maxTotalBytes: 10 } });
  await node.put("ab", "12345678"); // 10 bytes
  await rejectsWith(node.put("c", ""), "STORE_FULL");
  await rejectsWith(node.put("ab", "123456789"), "STORE_FULL");
  await node.put("ab", "1234567"); // shrinking is fine
  await node.put("c", ""); // 2 + 7 + 1 = 10
  await node.close();
});

test("keys with a lone surrogate are refused: they have no UTF-8 form", async () => {
  const node = await Node.open({ id: 1 });
  await rejectsWith(node.put("a\uD800", "x"), "INVALID_ARGUMENT");
  await rejectsWith(node.put("a\uDC00", "x"), "INVALID_ARGUMENT");
  await node.put("a\u{1F600}", "ok"); // a proper pair is fine
  assert.is(node.size, 1);
  await node.close();
});

test("admit refuses with REJECTED and changes nothing", async () => {
  const node = await Node.open({ id: 1, admit: (e) => (e.key.startsWith("ok/") ? true : "only ok/ keys") });
  await node.put("ok/1", "v");
  const d = node.digest();
  await rejectsWith(node.put("bad", "v"), "REJECTED");
  assert.is(node.digest(), d);
  assert.is(node.get("bad"), undefined);
  await node.close();
});

test("watch yields changes under its prefix and ends on abort and on close", async () => {
  const node = await Node.open({ id: 1 });
  const ac = new AbortController();
  const seen: string[] = [];
  const done = (async () => {
    for await (const e of node.watch("w/", { signal: ac.signal })) {
      seen.push(`${e.key}=${e.value === null ? "∅" : text(e.value)}`);
      if (seen.length === 3) ac.abort();
    }
  })();
  await node.put("w/a", "1");
  await node.put("other", "x");
  await node.put("w/b", "2");
  await node.delete("w/a");
  await new Promise((r) => setTimeout(r, 0)); // the watcher has seen three events and aborted
  await node.put("w/c", "after abort");
  await done;
  assert.equal(seen, ["w/a=1", "w/b=2", "w/a=∅"]);
  const all = node.watch("");
  const first = all.next();
  await node.put("k", "v");
  assert.is((await first).value!.key, "k");
  const pending = all.next();
  await node.close();
  assert.is((await pending).done, true);
});

test("watch localOnly yields our writes and not merged ones", async () => {
  const node = await Node.open({ id: 1 });
  const { envelopeWithEncodedEntries } = await import("../../src/sync/envelope.js");
  const local = node.watch("", { localOnly: true });
  const all = node.watch("");
  const bytes = encodeRecords([rec("remote", "r", 5, 2, 1)], "bare", 0);
  node.handleEnvelope(envelopeWithEncodedEntries({ version: 1, senderId: 2, senderUuid: "00000000-0000-4000-8000-000000000002", acks: new Map(), pushOnly: true }, { bytes, count: 1, base: 0 }));
  await node.put("mine", "m");
  assert.is((await local.next()).value!.key, "mine");
  assert.is((await all.next()).value!.key, "remote");
  assert.is((await all.next()).value!.key, "mine");
  await node.close();
});

test("peers: never itself, idempotent add/remove, status per peer", async () => {
  const node = await Node.open({ id: 1, peers: [3, 2, 1] });
  assert.equal(node.peers(), [2, 3]);
  await node.addPeer(2);
  await node.addPeer(4);
  await node.removePeer(9);
  await node.removePeer(3);
  assert.equal(node.peers(), [2, 4]);
  const st = node.status();
  assert.equal(st.peers, [{ id: 2, ack: 0, peerAck: 0, heardFrom: false, discovered: false }, { id: 4, ack: 0, peerAck: 0, heardFrom: false, discovered: false }]);
  assert.is(st.wal, false);
  assert.match(st.uuid, /^[0-9a-f-]{36}$/);
  await node.close();
});

test("a closed node rejects with CLOSED", async () => {
  const node = await Node.open({ id: 1 });
  await node.close();
  await rejectsWith(node.put("a", "b"), "CLOSED");
  await rejectsWith(node.delete("a"), "CLOSED");
  await node.close(); // idempotent
});

test("single node collects tombstones at once", async () => {
  const node = await Node.open({ id: 1 });
  await node.put("a", "1");
  await node.delete("a");
  await node.put("b", "1");
  assert.is(await node.collectGarbage(), 1);
  assert.is(node.getIncludingTombstones("a"), undefined);
  assert.is(node.status().tombstones, 0);
  await node.put("a", "again");
  assert.is(text(node.get("a")!.value), "again");
  await node.close();
});

test("addPeer takes node ids (uint32) only: INVALID_ARGUMENT for anything else, membership unchanged", async () => {
  const node = await Node.open({ id: 1 });
  for (const bad of [-1, 1.5, 2 ** 32, NaN, Infinity, "2" as unknown as number]) {
    const err = await node.addPeer(bad).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof WaveKVError && err.code === "INVALID_ARGUMENT", `${String(bad)}: ${String(err)}`);
  }
  assert.equal(node.peers(), []);
  await node.addPeer(2 ** 32 - 1);
  await node.addPeer(0);
  assert.equal(node.peers(), [0, 2 ** 32 - 1]);
  await node.close();
});

test.run();

// ---------------------------------------------------------------------------------
// Lazy per-key state: keys decoded on use, a key cache, values kept in their batch.

const many = (n: number, prefix: string, value: (i: number) => string, timestamp = 10, node = 2): RecordInput[] =>
  Array.from({ length: n }, (_, i) => rec(`${prefix}${i}`, value(i), timestamp, node, i + 1));

test("a merged batch's values stay correct when its buffer is reused by the sender", () => {
  const s = new ReplicaState(1);
  const batch = remoteBatch(many(200, "k", (i) => `value-${i}-${"x".repeat(40)}`));
  s.mergeBatch(batch, { limits: DEFAULT_LIMITS, now: 100 });
  assert.ok(s.retainedBytes > 0, "values mostly fill the batch: kept whole, after one copy");
  batch.bytes.fill(0x21); // the transport reuses its buffer
  for (let i = 0; i < 200; i += 37) assert.is(text(s.get(`k${i}`)!.value), `value-${i}-${"x".repeat(40)}`);
  assert.is(s.digest(), (() => {
    const t = new ReplicaState(1);
    t.mergeBatch(remoteBatch(many(200, "k", (i) => `value-${i}-${"x".repeat(40)}`)), { limits: DEFAULT_LIMITS, now: 100 });
    return t.digest();
  })());
});

test("a retained batch is compacted once most of its values are overwritten, and dropped when none is left", () => {
  const s = new ReplicaState(1);
  const opts = { limits: DEFAULT_LIMITS, now: 1_000, trusted: true };
  s.mergeBatch(remoteBatch(many(1000, "k", (i) => `old-${i}-${"y".repeat(60)}`)), opts);
  const kept = s.retainedBytes;
  assert.ok(kept > 60_000, `the replayed batch is kept whole (${kept} B)`);
  // Overwrite 70 % with a batch of small values (not retained: they are not most of it).
  s.mergeBatch(remoteBatch(many(700, "k", (i) => `n${i}`, 20, 3)), { limits: DEFAULT_LIMITS, now: 1_000 });
  assert.is(s.retainedBytes, kept, "30 % still live: kept");
  s.mergeBatch(remoteBatch(many(760, "k", (i) => `m${i}`, 30, 3)), { limits: DEFAULT_LIMITS, now: 1_000 });
  assert.is(s.retainedBytes, 0, "under a quarter live: the survivors were copied out");
  assert.is(text(s.get("k5")!.value), "m5");
  assert.is(text(s.get("k800")!.value), `old-800-${"y".repeat(60)}`);
  assert.is(s.liveKeys, 1000);
  // Every live byte is still counted exactly once.
  let bytes = 0;
  for (const e of s.scan("", true)) bytes += new TextEncoder().encode(e.key).length + (e.value?.length ?? 0);
  assert.is(s.totalBytes, bytes);
  // A batch whose every value is overwritten is dropped without a copy.
  const t = new ReplicaState(1);
  t.mergeBatch(remoteBatch(many(10, "z", () => "v".repeat(100))), opts);
  assert.ok(t.retainedBytes > 0);
  t.mergeBatch(remoteBatch(many(10, "z", () => "w", 50)), { limits: DEFAULT_LIMITS, now: 1_000 });
  assert.is(t.retainedBytes, 0);
  assert.is(text(t.get("z3")!.value), "w");
});

test("keys merged in a batch are found, decoded and collected without ever being cached first", () => {
  const s = new ReplicaState(1);
  s.mergeBatch(remoteBatch([rec("é/1", "a", 5, 2, 1), rec("b", null, 5, 2, 2), rec("\u{1F600}", "smile", 5, 2, 3)]), { limits: DEFAULT_LIMITS, now: 100 });
  assert.equal([...s.scan("", true)].map((e) => e.key), ["b", "é/1", "\u{1F600}"]);
  const t = new ReplicaState(1);
  t.mergeBatch(remoteBatch([rec("é/1", "a", 5, 2, 1), rec("b", null, 5, 2, 2), rec("\u{1F600}", "smile", 5, 2, 3)]), { limits: DEFAULT_LIMITS, now: 100 });
  assert.is(text(t.get("\u{1F600}")!.value), "smile");
  assert.is(t.get("\uD83D"), undefined, "a lone surrogate names no key, not its U+FFFD encoding");
  assert.is(t.get("missing"), undefined);
  // GC of a tombstone whose key was never read: the key bytes leave the count too.
  const before = t.totalBytes;
  const [tomb] = [...t.tombstoneSlots()];
  t.release(tomb!.slot);
  assert.is(t.totalBytes, before - 1);
  assert.is(t.get("b"), undefined);
  assert.is(t.keyCount, 2);
  assert.is(t.digest(), (() => {
    const u = new ReplicaState(1);
    u.mergeBatch(remoteBatch([rec("é/1", "a", 5, 2, 1), rec("\u{1F600}", "smile", 5, 2, 3)]), { limits: DEFAULT_LIMITS, now: 100 });
    return u.digest();
  })());
});

test("admit sees only committed keys: a key new in the batch is not there until the batch applies", async () => {
  const seen: (string | undefined)[] = [];
  const node: Node = await Node.open({
    id: 1,
    admit: (e) => { seen.push(node.get(e.key) === undefined ? "absent" : "present"); return true; },
  });
  const { envelopeWithEncodedEntries } = await import("../../src/sync/envelope.js");
  const bytes = encodeRecords([rec("new", "v", Date.now(), 2, 1)], "bare", 0);
  node.handleEnvelope(envelopeWithEncodedEntries({ version: 1, senderId: 2, senderUuid: "00000000-0000-4000-8000-000000000002", acks: new Map(), pushOnly: true }, { bytes, count: 1, base: 0 }));
  assert.equal(seen, ["absent"]);
  assert.is(text(node.get("new")!.value), "v");
  await node.close();
});
