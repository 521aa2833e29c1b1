// LWW merge index: compareStamps (the TS definition) against the kernel's mirror, exact
// limits, batch-internal duplicates, rollback, release + reuse, and random operation
// sequences run on the WASM index, the TS twin and an independent Map model.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { decodeRecords } from "../../src/codec/records.js";
import { decodeRecordsReference, encodeRecordsReference } from "../../src/codec/reference.js";
import { RecordKind, type RecordInput } from "../../src/core/record.js";
import { PrevState, RefuseReason, type MergeIndex, type MergeLimits } from "../../src/index/merge-index.js";
import { createMergeIndex } from "../../src/index/kernel-index.js";
import { createMergeIndexReference } from "../../src/index/reference.js";
import { compareStamps } from "../../src/core/stamp.js";
import { kernel } from "../../src/kernel/instance.js";

const utf8 = (s: string) => new TextEncoder().encode(s);
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const NO_LIMITS: MergeLimits = { maxKeyBytes: Infinity, maxValueBytes: Infinity, maxTimestamp: Infinity };
const IMPLS: [string, () => MergeIndex][] = [["wasm", createMergeIndex], ["reference", createMergeIndexReference]];

interface E { key: string | Uint8Array; kind?: number; value?: number; ts: number; node: number; seq: number }

function batchOf(entries: E[], decode = decodeRecords) {
  const records: RecordInput[] = entries.map((e) => ({
    kind: (e.kind ?? 1) as RecordKind, key: e.key, value: new Uint8Array(e.value ?? 1), timestamp: e.ts, node: e.node, seq: e.seq,
  }));
  const bytes = encodeRecordsReference(records, "bare", 0);
  return decode(bytes, "bare", 0);
}

/** Everything observable about an index, in slot order. */
function dump(ix: MergeIndex) {
  const slots = [...ix.selectDelta(new Map())];
  const out = new Float64Array(4);
  return {
    size: ix.size,
    slots: slots.map((s) => {
      const m = ix.meta(s);
      ix.metaInto(s, out);
      assert.equal([...out], [m.timestamp, m.node, m.seq, m.tombstone ? 1 : 0], "metaInto = meta");
      assert.is(hex(ix.keyView(s)), hex(ix.keyBytes(s)), "keyView = keyBytes");
      return { s, ...m, key: hex(ix.keyBytes(s)) };
    }),
  };
}

// ---------------------------------------------------------------------------------

const stampArb = fc.record({
  ts: fc.oneof(fc.constantFrom(-1, 0, 1, 2 ** 40), fc.integer({ min: -(2 ** 52), max: 2 ** 52 })),
  node: fc.oneof(fc.constantFrom(0, 1, 0xffffffff), fc.integer({ min: 0, max: 0xffffffff })),
  seq: fc.oneof(fc.constantFrom(0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 53 - 1), fc.integer({ min: 0, max: 2 ** 53 - 1 })),
});

test("compareStamps orders by timestamp, then node, then seq; the kernel agrees (property)", () => {
  assert.ok(compareStamps(2, 0, 0, 1, 0xffffffff, 2 ** 53 - 1) > 0, "timestamp dominates");
  assert.ok(compareStamps(1, 2, 0, 1, 1, 2 ** 40) > 0, "then node");
  assert.ok(compareStamps(1, 0xffffffff, 2 ** 32 + 1, 1, 0xffffffff, 2 ** 32) > 0, "then seq, above 2^32");
  assert.is(compareStamps(5, 5, 5, 5, 5, 5), 0);
  const indexes = IMPLS.map(([, make]) => make());
  let k = 0;
  fc.assert(
    fc.property(stampArb, stampArb, fc.boolean(), (a, b, sameTs) => {
      if (sameTs) b.ts = a.ts; // ties are the interesting part
      const c = compareStamps(a.ts, a.node, a.seq, b.ts, b.node, b.seq);
      assert.is(Math.sign(c), -Math.sign(compareStamps(b.ts, b.node, b.seq, a.ts, a.node, a.seq)));
      const key = `k${k++}`;
      for (const ix of indexes) {
        assert.is(ix.upsert(key, a.ts, a.node, a.seq, false)?.prev, PrevState.Absent);
        const r = ix.upsert(key, b.ts, b.node, b.seq, true);
        assert.is(r !== null, c < 0, `b wins iff a < b: ${JSON.stringify([a, b])}`);
        const m = ix.meta(ix.find(key));
        assert.equal([m.timestamp, m.node, m.seq], c < 0 ? [b.ts, b.node, b.seq] : [a.ts, a.node, a.seq]);
      }
    }),
    { numRuns: 400 },
  );
});

test("each limit: exactly at it passes, one past it is refused; mask and bad kinds", () => {
  const limits: MergeLimits = { maxKeyBytes: 4, maxValueBytes: 3, maxTimestamp: 100 };
  const entries: E[] = [
    { key: "abcd", value: 3, ts: 100, node: 1, seq: 1 },     // 0: every limit exactly met
    { key: "abcde", ts: 1, node: 1, seq: 2 },                // 1: key too large
    { key: "v", value: 4, ts: 1, node: 1, seq: 3 },          // 2: value too large
    { key: "v", kind: 0, value: 4, ts: 1, node: 1, seq: 4 }, // 3: tombstone: value limit does not apply
    { key: "t", ts: 101, node: 1, seq: 5 },                  // 4: clock drift
    { key: "m", ts: 1, node: 1, seq: 6 },                    // 5: masked
    { key: "p", kind: RecordKind.AddPeer, ts: 1, node: 1, seq: 7 }, // 6: not mergeable
    { key: "é", ts: 1, node: 1, seq: 8 },                    // 7: 2 bytes
    { key: "", kind: RecordKind.BatchHead, ts: 1, node: 1, seq: 2 },  // 8: a batch head (WAL only): not mergeable
    { key: "", kind: RecordKind.BatchRange, ts: 2, node: 1, seq: 1 }, // 9: a batch range (snapshot only): not mergeable
  ];
  const skip = new Uint8Array(entries.length);
  skip[5] = 1;
  for (const [name, make] of IMPLS) {
    const ix = make();
    const r = ix.merge(batchOf(entries), limits, skip);
    assert.equal([...r.winners], [0, 0, PrevState.Absent, 3, 1, PrevState.Absent, 7, 2, PrevState.Absent], name);
    assert.equal([...r.refused], [1, RefuseReason.KeyTooLarge, 2, RefuseReason.ValueTooLarge, 4, RefuseReason.ClockDrift,
      5, RefuseReason.Masked, 6, RefuseReason.BadKind, 8, RefuseReason.BadKind, 9, RefuseReason.BadKind], name);
    ix.commit();
    assert.ok(ix.meta(1).tombstone, name);
  }
});

test("duplicates inside one batch are decided in order against each other", () => {
  const entries: E[] = [
    { key: "k", ts: 1, node: 1, seq: 1 },
    { key: "k", kind: 0, ts: 3, node: 1, seq: 2 },
    { key: "k", ts: 2, node: 9, seq: 3 },  // older than entry 1: loses
    { key: "k", ts: 3, node: 1, seq: 2 },  // equal stamp: not newer, loses
    { key: "k", ts: 3, node: 1, seq: 3 },  // tie on ts and node, higher seq: wins over a tombstone
  ];
  for (const [name, make] of IMPLS) {
    const ix = make();
    const r = ix.merge(batchOf(entries), NO_LIMITS);
    assert.equal([...r.winners], [0, 0, PrevState.Absent, 1, 0, PrevState.Value, 4, 0, PrevState.Tombstone], name);
    ix.rollback();
    assert.is(ix.size, 0, name);
    assert.is(ix.find(utf8("k")), -1, name);
  }
});

test("rollback restores the exact prior state, free list included; pending operations are refused", () => {
  for (const [name, make] of IMPLS) {
    const ix = make();
    for (let i = 0; i < 10; i++) ix.upsert(`key${i}`, 10, 1, i + 1, false);
    ix.release(3);
    ix.release(7);
    const before = dump(ix);
    const r = ix.merge(batchOf([
      { key: "new1", ts: 1, node: 1, seq: 1 }, { key: "key1", ts: 11, node: 1, seq: 1 }, { key: "new2", ts: 1, node: 1, seq: 1 },
      { key: "new3", ts: 1, node: 1, seq: 1 }, { key: "key1", kind: 0, ts: 12, node: 1, seq: 1 },
    ]), NO_LIMITS);
    assert.equal([...r.winners].filter((_, i) => i % 3 === 1), [7, 1, 3, 10, 1], `${name}: free list (LIFO), then new slots`);
    assert.throws(() => ix.merge(batchOf([]), NO_LIMITS), /pending/);
    assert.throws(() => ix.upsert("x", 1, 1, 1, false), /pending/);
    assert.throws(() => ix.release(0), /pending/);
    ix.rollback();
    assert.equal(dump(ix), before, name);
    // the next two new keys take the same slots they would have taken without the merge
    assert.is(ix.upsert("after1", 1, 1, 1, false)!.slot, 7, name);
    assert.is(ix.upsert("after2", 1, 1, 1, false)!.slot, 3, name);
    assert.is(ix.upsert("after3", 1, 1, 1, false)!.slot, 10, name);
    ix.rollback(); // no pending merge: a no-op
    ix.commit();
  }
});

test("release frees a slot for reuse; released slots are unreachable; arena compaction keeps keys", () => {
  for (const [name, make] of IMPLS) {
    const ix = make();
    const keys = Array.from({ length: 3000 }, (_, i) => `${"k".repeat(i % 40)}/${i}/é😀`);
    keys.forEach((k, i) => assert.is(ix.upsert(k, i, 1, i + 1, i % 3 === 0)!.slot, i));
    for (let i = 0; i < 3000; i++) if (i % 4 !== 0) ix.release(i); // 2250 released: several arena compactions
    assert.is(ix.size, 750, name);
    for (let i = 0; i < 3000; i += 4) assert.is(hex(ix.keyBytes(i)), hex(utf8(keys[i]!)), `${name}: key ${i} after compaction`);
    for (let i = 0; i < 3000; i += 4) assert.is(ix.find(keys[i]!), i);
    ix.release(4);
    assert.throws(() => ix.meta(4), RangeError);
    assert.throws(() => ix.release(4), RangeError);
    assert.throws(() => ix.keyBytes(3000), RangeError);
    assert.is(ix.find(utf8(keys[4]!)), -1);
    // reuse: LIFO over released slots; keys written into the compacted arena
    const again = keys.slice(0, 100).map((k, i) => ix.upsert(`again ${k}`, 1, 2, i + 1, false)!.slot);
    assert.is(new Set(again).size, 100);
    assert.ok(again.every((s) => s < 3000), `${name}: released slots are reused before new ones`);
    again.forEach((s, i) => assert.is(hex(ix.keyBytes(s)), hex(utf8(`again ${keys[i]}`))));
    assert.equal(ix.maxSeqOf(2), 100);
  }
});

test("growth: 150k keys in batches (memory grows; views follow), identical to the twin", () => {
  const a = createMergeIndex(), b = createMergeIndexReference();
  for (let round = 0; round < 6; round++) {
    const entries: E[] = Array.from({ length: 25_000 }, (_, i) => ({ key: `user/${round}/${i}/${"x".repeat(i % 64)}`, ts: round, node: i % 7, seq: round * 25_000 + i + 1, value: i % 5 }));
    const ra = a.merge(batchOf(entries, decodeRecords), NO_LIMITS);
    const rb = b.merge(batchOf(entries, decodeRecordsReference), NO_LIMITS);
    assert.equal([...ra.winners], [...rb.winners]);
    a.commit();
    b.commit();
  }
  assert.is(a.size, 150_000);
  for (const s of [0, 1, 77_777, 149_999]) {
    assert.equal(a.meta(s), b.meta(s));
    assert.is(hex(a.keyBytes(s)), hex(b.keyBytes(s)));
  }
  assert.equal([...a.selectDelta(new Map([[0, 100_000], [3, 0]]))], [...b.selectDelta(new Map([[0, 100_000], [3, 0]]))]);
  for (let n = 0; n < 8; n++) assert.is(a.maxSeqOf(n), b.maxSeqOf(n));
  a.dispose();
  b.dispose();
});

test("a resident batch stays valid while other calls grow memory between its decode and its merge", () => {
  // Decode leaves bytes in R_IN and descriptors in R_DESC; the merge then reads them in
  // place. In between: upserts into another index (its blocks grow: memory.grow detaches
  // every view), a select (R_OUT moves), a skip-mask stage (R_AUX). None may move IN/DESC.
  const limits = { maxKeyBytes: 1024, maxValueBytes: 1 << 20, maxTimestamp: Number.MAX_SAFE_INTEGER };
  const entries: E[] = Array.from({ length: 30_000 }, (_, i) => ({ key: `r/${i}`, ts: 10, node: 1, seq: i + 1, value: 24 }));
  const a = createMergeIndex(), b = createMergeIndexReference(), other = createMergeIndex();
  try {
    const batch = batchOf(entries, decodeRecords);
    const grow = 120_000;
    for (let i = 0; i < grow; i++) other.upsert(`grow/${i}/${"y".repeat(i % 40)}`, 1, 2, i + 1, false, new Uint8Array(8));
    assert.is(other.size, grow);
    assert.is(other.selectDelta(new Map()).length, grow);
    assert.ok(kernel().residentOf(batch), "still resident: merged in place, not copied again");
    const skip = new Uint8Array(entries.length);
    skip[7] = 1;
    const ra = a.merge(batch, limits, skip);
    const rb = b.merge(batchOf(entries, decodeRecordsReference), limits, skip);
    assert.equal([...ra.winners], [...rb.winners]);
    assert.equal([...ra.refused], [...rb.refused]);
    a.commit();
    b.commit();
    assert.equal(dump(a), dump(b));
  } finally {
    a.dispose();
    other.dispose();
  }
});

test("indexes share one kernel but not state; dispose is final", () => {
  const x = createMergeIndex(), y = createMergeIndex();
  x.upsert("same", 1, 1, 1, false);
  y.upsert("same", 5, 1, 1, true);
  y.upsert("other", 5, 1, 2, false);
  assert.equal([x.size, y.size], [1, 2]);
  assert.is(x.meta(0).timestamp, 1);
  assert.ok(y.meta(0).tombstone);
  x.dispose();
  x.dispose();
  assert.throws(() => x.find(utf8("same")), /dispose/);
  assert.throws(() => x.size, /dispose/);
  assert.is(y.find(utf8("other")), 1);
});

test("an all-lose batch allocates no JS memory per entry", () => {
  const ix = createMergeIndex();
  const entries: E[] = Array.from({ length: 100_000 }, (_, i) => ({ key: `key/${i}`, ts: 10, node: 1, seq: i + 1 }));
  ix.merge(batchOf(entries), NO_LIMITS);
  ix.commit();
  const older = batchOf(entries.map((e) => ({ ...e, ts: 9 })));
  for (let i = 0; i < 3; i++) { ix.merge(older, NO_LIMITS); ix.commit(); } // warm up
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < 10; i++) {
    const r = ix.merge(older, NO_LIMITS);
    assert.is(r.winners.length + r.refused.length, 0);
    ix.commit();
  }
  const perEntry = (process.memoryUsage().heapUsed - before) / 1_000_000;
  assert.ok(perEntry < 4, `heap grew ${perEntry.toFixed(2)} B per losing entry`);
});

// ---------------------------------------------------------------------------------
// random operation sequences: WASM vs twin vs a Map model; plus a shadow twin that never
// sees rolled-back merges, which proves rollback leaves no trace (slot ids included).

const KEYS = ["", "a", "b", "ab", "é", "😀", "\u{10FFFF}", "\uFFFF", "k".repeat(41), "k".repeat(40), "key/1", "key/2", "key/10",
  "x".repeat(200), "a\u0000", "\u0000"];
const entryArb = fc.record({
  k: fc.nat(KEYS.length - 1),
  kind: fc.constantFrom(0, 1, 1, 1, 2, 6, 7),
  value: fc.constantFrom(0, 1, 49, 50, 51),
  ts: fc.constantFrom(-1, 0, 1, 2, 2 ** 40, 2 ** 40 + 1),
  node: fc.constantFrom(0, 1, 0xffffffff),
  seq: fc.constantFrom(0, 1, 2, 2 ** 32, 2 ** 32 + 1, 2 ** 53 - 1),
});
const opArb = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant("merge" as const), entries: fc.array(entryArb, { maxLength: 20 }), commit: fc.boolean(),
    mask: fc.option(fc.array(fc.boolean(), { maxLength: 20 }), { nil: undefined }), refDecode: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("upsert" as const), e: entryArb, tombstone: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("release" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("query" as const), acks: fc.array(fc.tuple(fc.constantFrom(0, 1, 2, 0xffffffff), fc.constantFrom(0, 1, 2 ** 32, 2 ** 53 - 1, -1, 1.5)), { maxLength: 4 }) }) },
);
const LIMITS: MergeLimits = { maxKeyBytes: 40, maxValueBytes: 50, maxTimestamp: 2 ** 40 };

test("random operation sequences: WASM = twin = model; rollback leaves no trace (property)", () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 40 }), (ops) => {
      const wasm = createMergeIndex(), ref = createMergeIndexReference(), shadow = createMergeIndexReference();
      type M = { ts: number; node: number; seq: number; tomb: boolean };
      const model = new Map<string, M>();
      try {
        for (const o of ops) {
          if (o.op === "merge") {
            // Kind 7 (a batch range) as the codec takes it: no key, its count in the timestamp, from seq 1.
            const es: E[] = o.entries.map((e) => e.kind === RecordKind.BatchRange ? { key: "", kind: e.kind, ts: 2 + e.value, node: e.node, seq: 1 + e.k }
              : { key: KEYS[e.k]!, kind: e.kind, value: e.value, ts: e.ts, node: e.node, seq: e.seq });
            const skip = o.mask ? Uint8Array.from(o.mask, Number) : undefined;
            const rw = wasm.merge(batchOf(es, o.refDecode ? decodeRecordsReference : decodeRecords), LIMITS, skip);
            const rr = ref.merge(batchOf(es, decodeRecordsReference), LIMITS, skip);
            assert.equal([...rw.winners], [...rr.winners], "winners");
            assert.equal([...rw.refused], [...rr.refused], "refused");
            // the model: limits, then LWW by compareStamps, in batch order
            const next = new Map(model);
            const want: number[] = [];
            es.forEach((e, i) => {
              const kb = utf8(e.key as string);
              if ((skip?.[i] ?? 0) !== 0 || e.kind! > 1 || kb.length > LIMITS.maxKeyBytes || (e.kind === 1 && e.value! > LIMITS.maxValueBytes) || e.ts > LIMITS.maxTimestamp) return;
              const cur = next.get(hex(kb));
              if (cur && compareStamps(e.ts, e.node, e.seq, cur.ts, cur.node, cur.seq) <= 0) return;
              want.push(i, cur === undefined ? PrevState.Absent : cur.tomb ? PrevState.Tombstone : PrevState.Value);
              next.set(hex(kb), { ts: e.ts, node: e.node, seq: e.seq, tomb: e.kind === 0 });
            });
            assert.equal([...rw.winners].filter((_, j) => j % 3 !== 1), want, "model");
            if (o.commit) {
              wasm.commit(); ref.commit();
              shadow.merge(batchOf(es, decodeRecordsReference), LIMITS, skip); shadow.commit();
              for (const [k, v] of next) model.set(k, v);
            } else {
              wasm.rollback(); ref.rollback();
            }
          } else if (o.op === "upsert") {
            const { e } = o;
            const key = KEYS[e.k]!;
            const rw = wasm.upsert(key, e.ts, e.node, e.seq, o.tombstone);
            assert.equal(rw, ref.upsert(key, e.ts, e.node, e.seq, o.tombstone), "upsert");
            assert.equal(rw, shadow.upsert(key, e.ts, e.node, e.seq, o.tombstone), "upsert (shadow)");
            const cur = model.get(hex(utf8(key)));
            assert.is(rw !== null, !cur || compareStamps(e.ts, e.node, e.seq, cur.ts, cur.node, cur.seq) > 0, "upsert vs model");
            if (rw) model.set(hex(utf8(key)), { ts: e.ts, node: e.node, seq: e.seq, tomb: o.tombstone });
          } else if (o.op === "release") {
            const slots = ref.selectDelta(new Map());
            if (slots.length === 0) continue;
            const s = slots[o.pick % slots.length]!;
            model.delete(hex(ref.keyBytes(s)));
            wasm.release(s); ref.release(s); shadow.release(s);
          } else {
            const acks = new Map(o.acks);
            assert.equal([...wasm.selectDelta(acks)], [...ref.selectDelta(acks)], "selectDelta");
            for (const n of [0, 1, 2, 0xffffffff]) assert.is(wasm.maxSeqOf(n), ref.maxSeqOf(n), "maxSeqOf");
          }
          const d = dump(ref);
          assert.equal(dump(wasm), d, "state");
          assert.equal(dump(shadow), d, "shadow state");
          assert.is(d.size, model.size, "model size");
          for (const k of KEYS) assert.is(wasm.find(k), ref.find(k), "find");
        }
      } finally {
        wasm.dispose();
      }
    }),
    { numRuns: 150 },
  );
});


test("reserve is a hint: fewer, exactly as many and more keys than hinted are all found (the table is sized below a hint's margin)", () => {
  for (const [hint, keys] of [[1000, 900], [1000, 1000], [1000, 1100], [1000, 4000], [30_000, 31_000]] as const) {
    const ix = createMergeIndex();
    ix.reserve(hint, hint * 8);
    const entries: E[] = Array.from({ length: keys }, (_, i) => ({ key: `r${i}`, ts: 1, node: 1, seq: i + 1 }));
    for (let at = 0; at < keys; at += 500) {
      const r = ix.mergeFinal(batchOf(entries.slice(at, at + 500)), NO_LIMITS);
      assert.is(r.winners.length, Math.min(500, keys - at) * 3);
    }
    assert.is(ix.size, keys, `${hint}/${keys}: size`);
    for (let i = 0; i < keys; i++) assert.ok(ix.find(`r${i}`) >= 0, `${hint}/${keys}: r${i} found`);
    assert.is(ix.find("absent"), -1);
    ix.dispose();
  }
});

test.run();
