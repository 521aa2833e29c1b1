// Batch ranges (src/state/batch-ranges.ts) and what the state does with them: the table's
// rules (bounds, overlaps, pruning), delta pages that never end inside a range (cut back
// before it, or grown to hold it), a hold-back horizon lowered to before a range, and a
// merged range's winners framed for the log behind a batch head (src/state/batch-winners.ts).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { BatchRanges, MAX_RANGE_PAGE_BYTES, MAX_RANGE_SEQS } from "../../src/state/batch-ranges.js";
import { ReplicaState } from "../../src/state/replica.js";
import { alignHold } from "../../src/state/delta-slots.js";
import { heldFields } from "../../src/sync/ack-maps.js";
import { framedWithHeads, winnerRuns } from "../../src/state/batch-winners.js";
import { MAX_BATCH_BYTES, MAX_BATCH_ENTRIES } from "../../src/node/batch.js";
import { MAX_BATCH_RECORDS, openBatch } from "../../src/storage/wal-batches.js";
import { decodeRecords, encodeRecords } from "../../src/codec/records.js";
import { RecordKind, type RecordInput } from "../../src/core/record.js";
import { DEFAULT_LIMITS } from "../../src/core/types.js";

const list = (r: BatchRanges) => [...r.ranges()].map((x) => [x.node, x.first, x.first + x.count - 1]);

test("the range bound is the batch bound", () => {
  assert.is(MAX_RANGE_SEQS, MAX_BATCH_ENTRIES);
  assert.is(MAX_RANGE_SEQS, MAX_BATCH_RECORDS);
  assert.is(MAX_RANGE_PAGE_BYTES, MAX_BATCH_BYTES + 16 * MAX_BATCH_ENTRIES, "a page grown to hold a batch: its keys and values plus 16 B an entry");
});

test("add: bounds, overlaps, containment and replacement", () => {
  const r = new BatchRanges();
  assert.ok(r.add(1, 10, 19));
  assert.ok(r.add(1, 30, 31));
  assert.ok(r.add(2, 10, 19), "another origin's seqs are its own");
  // Refused: one seq, empty, non-positive, not integers, over the batch limit.
  for (const [f, l] of [[5, 5], [6, 5], [0, 3], [-4, 2], [1.5, 3], [1, MAX_RANGE_SEQS + 1], [1, Infinity], [NaN, 4], [2 ** 48, 2 ** 48 + 1]] as const) assert.not.ok(r.add(3, f, l), `${f}…${l}`);
  assert.ok(r.add(3, 1, MAX_RANGE_SEQS), "exactly the limit");
  assert.not.ok(r.add(1, 12, 15), "held already (contained)");
  assert.not.ok(r.add(1, 15, 25), "partly overlapping: two batches of one node never overlap");
  assert.ok(r.add(1, 5, 35), "covering held ranges replaces them");
  assert.equal(list(r), [[1, 5, 35], [2, 10, 19], [3, 1, MAX_RANGE_SEQS]]);
  assert.is(r.size, 3);
});

test("startOf, endOf and alignBelow", () => {
  const r = new BatchRanges();
  r.add(7, 10, 14);
  r.add(7, 20, 21);
  assert.is(r.startOf(7, 9), 0);
  assert.is(r.startOf(7, 10), 10);
  assert.is(r.startOf(7, 14), 10);
  assert.is(r.endOf(7, 12), 14);
  assert.is(r.startOf(7, 15), 0);
  assert.is(r.startOf(8, 12), 0, "another origin");
  assert.is(r.alignBelow(7, 12), 9, "inside: lowered to before the batch");
  assert.is(r.alignBelow(7, 14), 14, "at its end: the batch is whole below");
  assert.is(r.alignBelow(7, 10), 9);
  assert.is(r.alignBelow(7, 17), 17);
  assert.is(r.alignBelow(7, 20), 19);
});

test("groups: members, spans and whether whole", () => {
  const r = new BatchRanges();
  r.add(1, 10, 12);
  r.add(2, 5, 8);
  const items = [[2, 6], [1, 11], [9, 3], [1, 10], [2, 7], [1, 12], [1, 30], [2, 20]].map(([node, seq]) => ({ node: node!, seq: seq! }));
  const g = r.groups(items);
  assert.equal(g.map((x) => [x.node, x.min, x.max, x.members, x.whole]), [[1, 10, 12, [1, 3, 5], true], [2, 6, 7, [0, 4], false]]);
  assert.equal(r.groups([{ node: 1, seq: 10 }]), [], "one member groups nothing");
});

test("retainLive keeps ranges holding two live entries (tombstones count)", () => {
  const s = new ReplicaState(9);
  const t = 1_700_000_000_000;
  s.applyOne("a", new Uint8Array([1]), t, 1, 10);
  s.applyOne("b", null, t, 1, 11);
  s.applyOne("c", new Uint8Array([1]), t, 1, 20);
  s.batches.add(1, 10, 12); // two held: kept
  s.batches.add(1, 20, 22); // one held: dropped
  s.batches.add(4, 1, 5);   // none held: dropped
  s.pruneBatchRanges();
  assert.equal(list(s.batches), [[1, 10, 12]]);
  s.applyOne("a", new Uint8Array([2]), t + 1, 2, 1); // overwritten by another node: one left
  s.pruneBatchRanges();
  assert.equal(list(s.batches), []);
  s.dispose();
});

/** A state holding seqs 1 … n of origin 1 (keys k01 …), for delta pages. */
function origin(n: number): ReplicaState {
  const s = new ReplicaState(9);
  for (let seq = 1; seq <= n; seq++) s.applyOne(`k${String(seq).padStart(2, "0")}`, new Uint8Array(4), 1_700_000_000_000 + seq, 1, seq);
  return s;
}

/** Every page of the delta of `s` for a peer that has nothing: the seqs of each. */
function pages(s: ReplicaState, maxEntries: number, hold?: Parameters<ReplicaState["deltaSlots"]>[5]): number[][] {
  const out: number[][] = [];
  let after: { node: number; seq: number } | undefined;
  for (;;) {
    const p = s.deltaSlots(new Map(), after, maxEntries, 1 << 30, false, hold);
    out.push(p.slots.map((slot) => s.recordAt(slot).seq));
    if (p.last) return out;
    after = p.cursor;
  }
}

test("a page never ends inside a range: cut back before it, or grown to hold it", () => {
  const s = origin(20);
  s.batches.add(1, 4, 7);
  s.batches.add(1, 9, 17);
  const got = pages(s, 5);
  assert.equal(got, [[1, 2, 3], [4, 5, 6, 7, 8], [9, 10, 11, 12, 13, 14, 15, 16, 17], [18, 19, 20]]);
  for (const p of got) {
    const last = p[p.length - 1]!;
    assert.ok(s.batches.startOf(1, last) === 0 || s.batches.endOf(1, last) === last, `page ends inside a range at ${last}`);
  }
  // Without ranges the same delta pages at the limit.
  const plain = origin(20);
  assert.equal(pages(plain, 5).map((p) => p.length), [5, 5, 5, 5]);
  s.dispose();
  plain.dispose();
});

test("an unpaged delta comes in (node, seq) order once ranges are held", () => {
  const s = new ReplicaState(9);
  const t = 1_700_000_000_000;
  // Keys in an order unlike their seqs: slot order would interleave the batch.
  s.applyOne("z", new Uint8Array(1), t, 1, 1);
  s.applyOne("a", new Uint8Array(1), t, 2, 1);
  s.applyOne("m", new Uint8Array(1), t, 1, 2);
  s.batches.add(1, 1, 2);
  const p = s.deltaSlots(new Map(), undefined, 100, 1 << 30, false);
  assert.equal(p.slots.map((slot) => [s.recordAt(slot).node, s.recordAt(slot).seq]), [[1, 1], [1, 2], [2, 1]]);
  s.dispose();
});

test("a hold-back horizon inside a range holds the whole range back, and caps the acks there", () => {
  const s = origin(10);
  s.batches.add(1, 4, 8);
  const hold = alignHold({ horizon: new Map([[1, 6], [2, 5]]), exempt: [3] }, s.batches)!;
  assert.equal([...hold.horizon], [[1, 3], [2, 5]], "lowered to before the range; another origin untouched");
  assert.equal(hold.exempt, [3]);
  assert.equal(pages(s, 100, hold), [[1, 2, 3]], "held back from 4 on, not from 7");
  // What the receiver may adopt is capped at the aligned horizon: never a seq it was not sent (INV).
  assert.equal(heldFields(new Map([[1, 10]]), [1], hold).acks, new Map([[1, 3]]));
  const atEnd = alignHold({ horizon: new Map([[1, 8]]), exempt: [] }, s.batches);
  assert.equal(pages(s, 100, atEnd), [[1, 2, 3, 4, 5, 6, 7, 8]]);
  assert.is(alignHold(undefined, s.batches), undefined);
  s.dispose();
});

/** Merged-batch fixtures: a value of `node`'s `seq` (stamped after T), a batch head, a decoded bare batch. */
const T = 1_700_000_000_000;
const rec = (key: string, node: number, seq: number): RecordInput => ({ kind: RecordKind.Value, key, value: new Uint8Array([seq]), timestamp: T + seq, node, seq });
const headOf = (node: number, n: number): RecordInput => ({ kind: RecordKind.BatchHead, key: "", value: null, timestamp: T, node, seq: n });
const bare = (records: RecordInput[]) => decodeRecords(encodeRecords(records, "bare", 0), "bare", 0, records.length);

test("a merged range's winners are logged behind a head, side by side, one replayable batch", () => {
  const t = T;
  // Entries 0 and 3 are one range, 1 and 4 another, 2 none; entry 4 loses (the state holds newer).
  const records = [rec("a", 1, 5), rec("b", 2, 7), rec("c", 3, 1), rec("d", 1, 6), rec("e", 2, 8)];
  const s = new ReplicaState(9);
  s.applyOne("e", new Uint8Array([0]), t + 100, 4, 1);
  const batch = bare(records);
  const ranges = [{ node: 1, first: 5, count: 2 }, { node: 2, first: 7, count: 2 }];
  const member = Int32Array.from([0, 1, -1, 0, 1]);
  let logged: Uint8Array | null = null, count = 0;
  const out = s.mergeBatch(batch, { limits: DEFAULT_LIMITS, now: t + 1000, groups: { ranges, member }, persist: (f) => { logged = f.frame(t); count = f.count; } });
  assert.is(out.merged, 4);
  assert.ok(logged !== null);
  const head = headOf(1, 2);
  // The run of node 1 (entries 0 and 3) together behind its head; node 2 has one winner: no head.
  const expected = [head, records[0]!, records[3]!, records[1]!, records[2]!];
  assert.is(count, expected.length);
  assert.equal(logged, encodeRecords(expected, "framed", t), "bytes as the reference encoder frames them");
  const back = decodeRecords(logged!, "framed", t);
  assert.is(openBatch(back), null, "whole batches only");
  back.release();
  // Cut inside the run: replay finds the batch incomplete (all or nothing).
  const within = encodeRecords([head, records[0]!], "framed", t).length + 5;
  const cut = decodeRecords(logged!.subarray(0, within), "framed", t);
  assert.equal(openBatch(cut), { index: 0, kind: "incomplete" });
  cut.release();
  assert.equal(list(s.batches), [[1, 5, 6]], "the winners' range is recorded, the one-winner range is not");
  // winnerRuns without groups: none.
  assert.equal(winnerRuns(batch, new Uint32Array(0), undefined), []);
  batch.release();
  s.dispose();
});

test("two runs and an entry between them: each run behind its own head, in the order of their first winners", () => {
  const t = T;
  const records = [rec("a", 1, 5), rec("c", 3, 1), rec("b", 2, 7), rec("d", 1, 6), rec("e", 2, 8)];
  const s = new ReplicaState(9);
  const batch = bare(records);
  const groups = { ranges: [{ node: 1, first: 5, count: 2 }, { node: 2, first: 7, count: 2 }], member: Int32Array.from([0, -1, 1, 0, 1]) };
  let logged: Uint8Array | null = null;
  assert.is(s.mergeBatch(batch, { limits: DEFAULT_LIMITS, now: t + 1000, groups, persist: (f) => { logged = f.frame(t); assert.is(f.count, 7); } }).merged, 5);
  const [a, c, b, d, e] = records;
  assert.equal(logged, encodeRecords([headOf(1, 2), a!, d!, c!, headOf(2, 2), b!, e!], "framed", t));
  assert.equal(list(s.batches), [[1, 5, 6], [2, 7, 8]]);
  batch.release();
  s.dispose();
});

test("framedWithHeads without runs frames exactly the winners", () => {
  const records = [rec("x", 1, 1)];
  const batch = bare(records);
  const f = framedWithHeads(batch, Uint32Array.from([0, 0, 0]), []);
  assert.equal(f.frame(T), encodeRecords(records, "framed", T));
  batch.release();
});

test.run();
