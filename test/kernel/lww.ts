// The LWW order has one TS definition (src/core/stamp.ts compareStamps) and one kernel
// mirror (assembly/stamp.ts, used by merge and upsert): a property test pits them
// against each other through the kernel's `lwwCompare` export, and through the index's
// decisions (a stamp replaces a key's stamp exactly when compareStamps says it is newer).
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { compareStamps } from "../../src/core/stamp.js";
import { kernel } from "../../src/kernel/instance.js";
import { hi32, lo32 } from "../../src/core/encoding.js";
import { WasmMergeIndex } from "../../src/index/kernel-index.js";
import { decodeRecords, encodeRecords } from "../../src/codec/records.js";
import { RecordKind, type RecordInput } from "../../src/core/record.js";

type Stamp = readonly [ts: number, node: number, seq: number];

const MAX_TS = Number.MAX_SAFE_INTEGER; // ±(2^53 − 1)
const EDGE_TS = [0, 1, -1, 2 ** 32 - 1, 2 ** 32, -(2 ** 32), 2 ** 31, -(2 ** 31), MAX_TS, -MAX_TS, 1_700_000_000_000];
const EDGE_NODE = [0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 31 + 1, 2 ** 32 - 1];
const EDGE_SEQ = [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 48, 2 ** 48 + 1, MAX_TS];

const ts = fc.oneof(fc.constantFrom(...EDGE_TS), fc.integer({ min: -1000, max: 1000 }), fc.maxSafeInteger(), fc.integer());
const node = fc.oneof(fc.constantFrom(...EDGE_NODE), fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 2 ** 32 - 1 }));
const seq = fc.oneof(fc.constantFrom(...EDGE_SEQ), fc.integer({ min: 0, max: 4 }), fc.maxSafeNat());
const stamp: fc.Arbitrary<Stamp> = fc.tuple(ts, node, seq);
/** Pairs that often tie on a prefix, so the node and seq tie-breaks are exercised. */
const pair = fc.oneof(
  fc.tuple(stamp, stamp),
  fc.tuple(stamp, node, seq).map(([a, n, s]): [Stamp, Stamp] => [a, [a[0], n, s]]),
  fc.tuple(stamp, seq).map(([a, s]): [Stamp, Stamp] => [a, [a[0], a[1], s]]),
  stamp.map((a): [Stamp, Stamp] => [a, a]),
);

function kernelCompare(a: Stamp, b: Stamp): number {
  return kernel().exports.lwwCompare(lo32(a[0]), hi32(a[0]), a[1], lo32(a[2]), hi32(a[2]), lo32(b[0]), hi32(b[0]), b[1], lo32(b[2]), hi32(b[2]));
}

const sign = (x: number) => (x > 0 ? 1 : x < 0 ? -1 : 0);

test("the kernel's lwwCompare agrees with compareStamps on every pair, both ways", () => {
  fc.assert(
    fc.property(pair, ([a, b]) => {
      const want = sign(compareStamps(a[0], a[1], a[2], b[0], b[1], b[2]));
      assert.is(kernelCompare(a, b), want, `${a} vs ${b}`);
      assert.is(kernelCompare(b, a), -want, `${b} vs ${a}`);
    }),
    { numRuns: 5000 },
  );
});

test("edge stamps: every pair of the edge values agrees", () => {
  const all: Stamp[] = [];
  for (const t of [0, -1, MAX_TS, -MAX_TS, 2 ** 32]) for (const n of EDGE_NODE) for (const s of EDGE_SEQ) all.push([t, n, s]);
  for (const a of all) for (const b of all) assert.is(kernelCompare(a, b), sign(compareStamps(a[0], a[1], a[2], b[0], b[1], b[2])), `${a} vs ${b}`);
});

test("the index replaces a key's stamp exactly when compareStamps says the new one is newer", () => {
  const ix = new WasmMergeIndex();
  try {
    let i = 0;
    fc.assert(
      fc.property(pair, ([a, b]) => {
        const key = `k${i++}`;
        assert.ok(ix.upsert(key, a[0], a[1], a[2], false, null) !== null);
        const won = ix.upsert(key, b[0], b[1], b[2], false, null) !== null;
        assert.is(won, compareStamps(b[0], b[1], b[2], a[0], a[1], a[2]) > 0, `${b} over ${a}`);
        const m = ix.meta(ix.find(key));
        assert.equal([m.timestamp, m.node, m.seq], won ? [...b] : [...a]);
      }),
      { numRuns: 2000 },
    );
  } finally {
    ix.dispose();
  }
});

test("a merged batch wins exactly where compareStamps says its stamp is newer", () => {
  const limits = { maxKeyBytes: Infinity, maxValueBytes: Infinity, maxTimestamp: Infinity };
  const batch = (stamps: readonly Stamp[]) => {
    const records: RecordInput[] = stamps.map(([timestamp, node, seq], i) => ({ kind: RecordKind.Tombstone, key: `k${i}`, value: null, timestamp, node, seq }));
    return decodeRecords(encodeRecords(records, "bare", 0), "bare", 0);
  };
  fc.assert(
    fc.property(fc.array(pair, { minLength: 1, maxLength: 40 }), (pairs) => {
      const ix = new WasmMergeIndex();
      try {
        ix.merge(batch(pairs.map(([a]) => a)), limits);
        ix.commit();
        const { winners } = ix.merge(batch(pairs.map(([, b]) => b)), limits);
        ix.commit();
        const won = new Set<number>();
        for (let j = 0; j < winners.length; j += 3) won.add(winners[j]!);
        pairs.forEach(([a, b], i) => assert.is(won.has(i), compareStamps(b[0], b[1], b[2], a[0], a[1], a[2]) > 0, `${b} over ${a}`));
      } finally {
        ix.dispose();
      }
    }),
    { numRuns: 300 },
  );
});

test.run();
