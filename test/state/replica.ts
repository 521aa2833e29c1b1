// ReplicaState against a model: every fact read back (values, tombstones, counts, key
// order, digest, delta pages) agrees with a plain Map decided by compareStamps, on the
// WASM index and on its TS twin, across local writes, merged batches (retained or
// copied values), overwrites that compact retained batches, and tombstone GC.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ReplicaState } from "../../src/state/replica.js";
import { DigestBuilder } from "../../src/state/digest.js";
import { createMergeIndex } from "../../src/index/kernel-index.js";
import { createMergeIndexReference } from "../../src/index/reference.js";
import { decodeRecords, encodeRecords } from "../../src/codec/records.js";
import { RecordKind, type RecordInput } from "../../src/core/record.js";
import { compareStamps } from "../../src/core/stamp.js";
import { compareKeys } from "../../src/core/keyorder.js";
import { DEFAULT_LIMITS, RESERVED_PREFIX } from "../../src/core/types.js";
import { deltaPage } from "../../src/sync/delta.js";

interface Held { value: Uint8Array | null; timestamp: number; node: number; seq: number }

const utf8 = (s: string) => new TextEncoder().encode(s).length;

function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return (n: number) => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x % n;
  };
}

function remoteBatch(records: RecordInput[]) {
  return decodeRecords(encodeRecords(records, "bare", 0), "bare", 0, records.length);
}

function check(s: ReplicaState, model: Map<string, Held>, where: string): void {
  let live = 0, bytes = 0, reserved = 0, reservedLive = 0, reservedBytes = 0;
  for (const [k, e] of model) {
    const b = utf8(k) + (e.value?.length ?? 0);
    bytes += b;
    if (e.value !== null) live++;
    if (k.startsWith(RESERVED_PREFIX)) {
      reserved++;
      reservedBytes += b;
      if (e.value !== null) reservedLive++;
    }
    const got = s.get(k);
    assert.ok(got !== undefined, `${where}: ${k} held`);
    assert.equal([got!.timestamp, got!.node, got!.seq], [e.timestamp, e.node, e.seq], `${where}: ${k} stamp`);
    assert.equal(got!.value === null ? null : [...got!.value], e.value === null ? null : [...e.value], `${where}: ${k} value`);
    assert.is(s.valueLengthAt(s.slotOf(k)), e.value?.length ?? 0, `${where}: ${k} length`);
  }
  assert.is(s.keyCount, model.size, `${where}: keyCount`);
  assert.is(s.liveKeys, live, `${where}: liveKeys`);
  assert.is(s.totalBytes, bytes, `${where}: totalBytes`);
  assert.is(s.reservedKeys, reserved, `${where}: reservedKeys`);
  assert.is(s.userLive, live - reservedLive, `${where}: userLive`);
  assert.is(s.userTombstones, model.size - live - (reserved - reservedLive), `${where}: userTombstones`);
  assert.is(s.userBytes, bytes - reservedBytes, `${where}: userBytes`);
  const keys = [...model.keys()].sort(compareKeys);
  assert.equal([...s.scan("", true)].map((e) => e.key), keys, `${where}: scan order`);
  assert.equal([...s.scan("", false)].map((e) => e.key), keys.filter((k) => model.get(k)!.value !== null), `${where}: scan skips tombstones`);
  const d = new DigestBuilder();
  for (const k of keys) { const e = model.get(k)!; d.add(k, e.node, e.seq, e.timestamp, e.value); }
  assert.is(s.digest(), d.hex(), `${where}: digest`);
  const tombs = [...s.tombstoneSlots()].map((t) => s.keyAt(t.slot)).sort(compareKeys);
  assert.equal(tombs, keys.filter((k) => model.get(k)!.value === null), `${where}: tombstoneSlots`);
}

function decide(model: Map<string, Held>, key: string, e: Held): boolean {
  const old = model.get(key);
  if (old !== undefined && compareStamps(old.timestamp, old.node, old.seq, e.timestamp, e.node, e.seq) >= 0) return false;
  model.set(key, e);
  return true;
}

for (const [name, index] of [["wasm", () => createMergeIndex()], ["ts twin", () => createMergeIndexReference()]] as const) {
  test(`${name}: every fact a replica reports agrees with an LWW model`, () => {
    const seed = Number(process.env.WAVEKV_PROP_SEED ?? Date.now() % 1e9);
    const r = rng(seed);
    const s = new ReplicaState(1, index());
    const model = new Map<string, Held>();
    const keyOf = () => (r(8) === 0 ? `${RESERVED_PREFIX}k${r(4)}` : `k${r(40)}${r(5) === 0 ? "é" : ""}`);
    const valueOf = () => (r(5) === 0 ? null : new Uint8Array(r(3) === 0 ? 0 : 1 + r(60)).fill(r(256)));
    let seq = 0;
    for (let step = 0; step < 300; step++) {
      const where = `seed ${seed} step ${step}`;
      const op = r(10);
      if (op < 4) {
        const key = keyOf(), value = valueOf(), e = { value, timestamp: 100 + r(50), node: 1 + r(3), seq: ++seq };
        assert.is(s.applyOne(key, value, e.timestamp, e.node, e.seq), decide(model, key, e), `${where}: applyOne decision`);
      } else if (op < 9) {
        // Large values make the batch retained (values ≥ half its bytes); small ones are copied.
        const big = r(2) === 0;
        const records: RecordInput[] = [];
        for (let i = 0, n = 1 + r(12); i < n; i++) {
          const key = keyOf();
          const value = r(5) === 0 ? null : new Uint8Array(big ? 200 + r(100) : r(4)).fill(r(256));
          records.push({ kind: value === null ? RecordKind.Tombstone : RecordKind.Value, key, value, timestamp: 100 + r(50), node: 1 + r(3), seq: ++seq });
        }
        const out = s.mergeBatch(remoteBatch(records), { limits: DEFAULT_LIMITS, now: 1_000, trusted: true });
        let merged = 0;
        for (const x of records) if (decide(model, x.key as string, { value: x.value, timestamp: x.timestamp, node: x.node, seq: x.seq })) merged++;
        assert.is(out.merged, merged, `${where}: merged`);
      } else {
        // Tombstone GC: release some.
        for (const t of [...s.tombstoneSlots()]) {
          if (r(2) === 0) continue;
          model.delete(s.keyAt(t.slot));
          s.release(t.slot);
        }
      }
      check(s, model, where);
    }
    // Overwrite everything with copies: no retained batch may stay pinned.
    for (const k of [...model.keys()]) {
      const e = { value: new Uint8Array([1]), timestamp: 1_000, node: 9, seq: ++seq };
      s.applyOne(k, e.value, e.timestamp, e.node, e.seq);
      model.set(k, e);
    }
    check(s, model, `seed ${seed} overwritten`);
    assert.is(s.retainedBytes, 0, "overwritten values leave no batch retained");
    s.dispose();
  });

  test(`${name}: delta pages cover every entry once, in (node, seq) order, and resume at the cursor`, () => {
    const s = new ReplicaState(1, index());
    const records: RecordInput[] = [];
    for (let i = 0; i < 60; i++) records.push({ kind: i % 7 === 0 ? RecordKind.Tombstone : RecordKind.Value, key: `d${i}`, value: i % 7 === 0 ? null : new Uint8Array(i), timestamp: 500 - i, node: 1 + (i % 3), seq: 100 + i });
    s.mergeBatch(remoteBatch(records), { limits: DEFAULT_LIMITS, now: 1_000, trusted: true });
    const seen: string[] = [];
    let after: { node: number; seq: number } | undefined;
    for (let pages = 0; ; pages++) {
      assert.ok(pages < 60, "pages end");
      const page = s.deltaSlots(new Map([[2, 110]]), after, 7, 1 << 20, false);
      const keys = page.slots.map((slot) => s.keyAt(slot));
      seen.push(...keys);
      // The encoded page holds exactly these entries, in this order.
      const enc = deltaPage(s, new Map([[2, 110]]), after, 7, 1 << 20, "delta");
      const back = decodeRecords(enc.encoded.bytes, "delta", enc.encoded.base, enc.encoded.count);
      assert.equal(Array.from({ length: back.count }, (_, i) => back.key(i)), keys);
      assert.equal([enc.total, enc.last, enc.cursor], [page.total, page.last, page.cursor]);
      if (page.last) break;
      after = page.cursor;
    }
    const want = records.filter((x) => !(x.node === 2 && x.seq <= 110)).sort((a, b) => a.node - b.node || a.seq - b.seq).map((x) => x.key);
    assert.equal(seen, want);
    // A byte budget smaller than one entry still sends one per page.
    assert.is(s.deltaSlots(new Map(), undefined, 100, 1, true).slots.length, 1);
    s.dispose();
  });
}

test("an admit callback reads the state as before its batch: tombstone-ness and stamps from before, new keys absent", () => {
  const s = new ReplicaState(1);
  s.applyOne("gone", null, 10, 2, 1);
  s.applyOne("here", new Uint8Array([7]), 10, 2, 2);
  const seen: unknown[] = [];
  const batch = remoteBatch([
    { kind: RecordKind.Value, key: "gone", value: new Uint8Array([1]), timestamp: 20, node: 3, seq: 1 },
    { kind: RecordKind.Tombstone, key: "here", value: null, timestamp: 20, node: 3, seq: 2 },
    { kind: RecordKind.Value, key: "new", value: new Uint8Array([2]), timestamp: 20, node: 3, seq: 3 },
  ]);
  s.mergeBatch(batch, {
    limits: DEFAULT_LIMITS, now: 1_000,
    admit: () => {
      seen.push([s.get("gone")?.value, s.get("here")?.value, s.get("new"), [...s.scan("", true)].map((e) => e.key), s.keyCount]);
      return true;
    },
  });
  for (const v of seen) assert.equal(v, [null, new Uint8Array([7]), undefined, ["gone", "here"], 2]);
  assert.equal([s.get("gone")?.value, s.get("here")?.value, s.get("new")?.value], [new Uint8Array([1]), null, new Uint8Array([2])]);
  assert.equal([...s.scan("", true)].map((e) => e.key), ["gone", "here", "new"]);
  s.dispose();
});

test("the key cache: read first at the last slot, then at the first; a released slot's reused key is read anew", () => {
  const s = new ReplicaState(1, createMergeIndex());
  const records: RecordInput[] = [];
  for (let i = 0; i < 3000; i++) records.push({ kind: i % 10 === 0 ? RecordKind.Tombstone : RecordKind.Value, key: `c${i}`, value: i % 10 === 0 ? null : new Uint8Array([i & 255]), timestamp: 10, node: 2, seq: i + 1 });
  s.mergeBatch(remoteBatch(records), { limits: DEFAULT_LIMITS, now: 1_000, trusted: true });
  const last = s.slotOf("c2999");
  assert.is(s.keyAt(last), "c2999");
  assert.is(s.keyAt(s.slotOf("c0")), "c0");
  // Every tombstone read (cached), then released; new keys take their slots.
  const freed = [...s.tombstoneSlots()].map((t) => t.slot);
  for (const slot of freed) { assert.ok(s.keyAt(slot).startsWith("c")); s.release(slot); }
  for (let i = 0; i < freed.length; i++) s.applyOne(`n${i}`, new Uint8Array([1]), 20, 1, i + 1);
  const fresh = new Set(Array.from({ length: freed.length }, (_, i) => s.slotOf(`n${i}`)));
  assert.equal([...fresh].sort((a, b) => a - b), [...freed].sort((a, b) => a - b), "new keys reuse the released slots");
  for (const slot of freed) assert.ok(s.keyAt(slot).startsWith("n"), `slot ${slot} reads its new key`);
  for (let i = 1; i < 3000; i++) if (i % 10 !== 0) assert.is(s.get(`c${i}`)?.value[0], i & 255);
  assert.is(s.get("c10"), undefined);
  assert.is(s.keyCount, 3000);
  s.dispose();
});

test.run();
