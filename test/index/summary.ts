// Range summary (src/index/summary.ts, assembly/summary.ts): the kernel's incremental buckets
// equal the TS twin's after random merges, rollbacks, upserts and releases, and both
// equal the buckets recomputed from scratch from the entries held.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { decodeRecords } from "../../src/codec/records.js";
import { encodeRecordsReference } from "../../src/codec/reference.js";
import { RecordKind, type RecordInput } from "../../src/core/record.js";
import { hashKey, type MergeIndex, type MergeLimits } from "../../src/index/merge-index.js";
import { createMergeIndex } from "../../src/index/kernel-index.js";
import { createMergeIndexReference } from "../../src/index/reference.js";
import { BUCKETS, bucketMask, bucketOf, differingBuckets, differingGroups, entryHash, summarizeBuckets, valueHash } from "../../src/index/summary.js";
import { hi32, lo32 } from "../../src/core/encoding.js";

const utf8 = (s: string) => new TextEncoder().encode(s);
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const NO_LIMITS: MergeLimits = { maxKeyBytes: Infinity, maxValueBytes: Infinity, maxTimestamp: Infinity };
const KEYS = ["a", "b", "cc", "ddd", "eeee", "fffff", "key/6", "κλειδί", "", "x".repeat(37)];

/** Buckets recomputed from scratch: every used slot's entry hash XORed into its bucket. */
function fromScratch(ix: MergeIndex, values: Map<string, Uint8Array | null>): Uint8Array {
  const words = new Uint32Array(BUCKETS * 2);
  for (const slot of ix.selectDelta(new Map())) {
    const key = ix.keyBytes(slot);
    const m = ix.meta(slot);
    const v = values.get(hex(key)) ?? null;
    const vh = m.tombstone ? 0 : valueHash(v ?? new Uint8Array(0), 0, v?.length ?? 0);
    const [a, b] = entryHash(hashKey(key, 0, key.length), key.length, lo32(m.timestamp), hi32(m.timestamp), m.node, lo32(m.seq), hi32(m.seq) >>> 0, m.tombstone, vh, v?.length ?? 0);
    const at = bucketOf(hashKey(key, 0, key.length)) * 2;
    words[at] = words[at]! ^ b;
    words[at + 1] = words[at + 1]! ^ a;
  }
  return new Uint8Array(words.buffer);
}

const entryArb = fc.record({
  k: fc.nat({ max: KEYS.length - 1 }),
  kind: fc.constantFrom(0, 1),
  value: fc.uint8Array({ maxLength: 40 }),
  ts: fc.integer({ min: -3, max: 6 }),
  node: fc.constantFrom(1, 2, 0xffffffff),
  seq: fc.integer({ min: 1, max: 4 }),
});
const opArb = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant("merge" as const), entries: fc.array(entryArb, { maxLength: 8 }), commit: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("upsert" as const), e: entryArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("release" as const), pick: fc.nat() }) },
);

test("incremental summary: WASM = twin = recomputed from scratch after random ops, rollback and release (property)", () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 30 }), (ops) => {
      const wasm = createMergeIndex(), ref = createMergeIndexReference();
      const values = new Map<string, Uint8Array | null>(); // key hex → value of the winning entry
      try {
        for (const o of ops) {
          if (o.op === "merge") {
            const records: RecordInput[] = o.entries.map((e) => ({ kind: e.kind as RecordKind, key: KEYS[e.k]!, value: e.kind === 1 ? e.value : null, timestamp: e.ts, node: e.node, seq: e.seq }));
            const bytes = encodeRecordsReference(records, "bare", 0);
            const rw = wasm.merge(decodeRecords(bytes, "bare", 0), NO_LIMITS);
            ref.merge(decodeRecords(bytes, "bare", 0), NO_LIMITS);
            if (o.commit) {
              wasm.commit(); ref.commit();
              for (let j = 0; j < rw.winners.length; j += 3) {
                const r = records[rw.winners[j]!]!;
                values.set(hex(utf8(r.key as string)), r.value);
              }
            } else {
              wasm.rollback(); ref.rollback();
            }
          } else if (o.op === "upsert") {
            const { e } = o;
            const v = e.kind === 1 ? e.value : null;
            const rw = wasm.upsert(KEYS[e.k]!, e.ts, e.node, e.seq, v === null, v);
            assert.equal(rw, ref.upsert(KEYS[e.k]!, e.ts, e.node, e.seq, v === null, v));
            if (rw) values.set(hex(utf8(KEYS[e.k]!)), v);
          } else {
            const slots = ref.selectDelta(new Map());
            if (slots.length === 0) continue;
            const s = slots[o.pick % slots.length]!;
            values.delete(hex(ref.keyBytes(s)));
            wasm.release(s); ref.release(s);
          }
          const sw = wasm.summary(), sr = ref.summary();
          assert.is(hex(sw.buckets), hex(sr.buckets), "buckets: WASM = twin");
          assert.is(hex(sw.groups), hex(sr.groups), "groups: WASM = twin");
          assert.is(sw.root, sr.root, "root");
          assert.is(wasm.summaryRoot(), sw.root, "summaryRoot = summary().root");
          assert.is(hex(sw.buckets), hex(fromScratch(ref, values)), "incremental = from scratch");
        }
      } finally {
        wasm.dispose();
      }
    }),
    { numRuns: 200 },
  );
});

test("order independence: the same entries applied in any order give the same root; any field change moves it", () => {
  const entries = KEYS.map((k, i) => ({ k, ts: 100 + i, node: 1 + (i % 2), seq: i + 1, v: utf8(`v${i}`) }));
  const a = createMergeIndex(), b = createMergeIndex();
  for (const e of entries) a.upsert(e.k, e.ts, e.node, e.seq, false, e.v);
  for (const e of [...entries].reverse()) b.upsert(e.k, e.ts, e.node, e.seq, false, e.v);
  assert.is(a.summaryRoot(), b.summaryRoot());
  const root = a.summaryRoot();
  const variants: [string, (ix: MergeIndex) => void][] = [
    ["value", (ix) => ix.upsert("a", 200, 1, 50, false, utf8("other"))],
    ["tombstone", (ix) => ix.upsert("a", 200, 1, 50, true, null)],
  ];
  const seen = new Set([root]);
  for (const [name, change] of variants) {
    const ix = createMergeIndex();
    for (const e of entries) ix.upsert(e.k, e.ts, e.node, e.seq, false, e.v);
    change(ix);
    assert.not.ok(seen.has(ix.summaryRoot()), name);
    seen.add(ix.summaryRoot());
    ix.dispose();
  }
  // same key, same value, different stamp fields
  for (const [ts, node, seq] of [[101, 1, 1], [100, 2, 1], [100, 1, 2]] as const) {
    const x = createMergeIndex(), y = createMergeIndex();
    x.upsert("k", 100, 1, 1, false, utf8("v"));
    y.upsert("k", ts, node, seq, false, utf8("v"));
    assert.is.not(x.summaryRoot(), y.summaryRoot(), `${ts},${node},${seq}`);
    x.dispose(); y.dispose();
  }
  a.dispose(); b.dispose();
});

test("localisation: one diverged key differs in exactly one group and one bucket; selectBuckets finds it", () => {
  const a = createMergeIndex(), b = createMergeIndexReference();
  for (let i = 0; i < 5000; i++) {
    const v = utf8(`value ${i}`);
    a.upsert(`key${i}`, 1000 + i, 1, i + 1, false, v);
    b.upsert(`key${i}`, 1000 + i, 1, i + 1, false, v);
  }
  b.upsert("key77", 9999, 2, 1, false, utf8("changed"));
  const sa = a.summary(), sb = b.summary();
  assert.is.not(sa.root, sb.root);
  const groups = differingGroups(sa.groups, sb.groups);
  assert.is(groups.length, 1);
  const per = 64 * 8;
  const theirs = new Uint8Array(groups.length * per);
  groups.forEach((g, j) => theirs.set(sb.buckets.subarray(g * per, (g + 1) * per), j * per));
  const buckets = differingBuckets(sa.buckets, groups, theirs);
  assert.equal(buckets, [bucketOf(hashKey(utf8("key77"), 0, 5))]);
  const slots = [...a.selectBuckets(buckets)];
  assert.ok(slots.includes(a.find("key77")));
  assert.equal(slots, [...b.selectBuckets(buckets)], "WASM = twin (same slot ids)");
  assert.ok(slots.length < 10, `bucket holds ~5000/4096 keys, got ${slots.length}`);
  const m = bucketMask([0, 9, 4095]);
  assert.equal([m[0], m[1], m[511]], [1, 2, 128]);
  assert.is(summarizeBuckets(sa.buckets).root, sa.root, "TS summarize of kernel buckets = kernel root");
  a.dispose();
});

test("summary off (benchmarks): same LWW decisions and slots, buckets stay zero", () => {
  const on = createMergeIndex(), off = createMergeIndex({ summary: false });
  for (let i = 0; i < 300; i++) {
    const k = `k${i % 97}`, v = utf8(`v${i}`);
    assert.equal(off.upsert(k, i % 13, 1 + (i % 3), i + 1, i % 5 === 0, v), on.upsert(k, i % 13, 1 + (i % 3), i + 1, i % 5 === 0, v));
  }
  off.release(3); on.release(3);
  assert.equal([...off.selectDelta(new Map())], [...on.selectDelta(new Map())]);
  assert.ok(off.summary().buckets.every((b) => b === 0));
  on.dispose(); off.dispose();
});

test.run();
