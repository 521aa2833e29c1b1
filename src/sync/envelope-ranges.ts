/**
 * The BATCH_RANGES extension's payload (ExtTag 26, docs/FORMAT.md §6.1): the atomic
 * batches an envelope's entries belong to, as
 *
 *   varu n • n × (varu node • varu first • varu count)     sorted by (node, first)
 *
 * One rule set (`fits`) serves both directions: a peer's list that breaks it is
 * BAD_ENVELOPE (nothing applied), our own is INVALID_ARGUMENT — the encoder only ever gets
 * ranges built from our own batch table, so it never fails on a peer's input.
 * Cost: one pass, no allocation before the claimed count is checked against the bytes
 * (every range takes at least 3), so a crafted count never allocates.
 */
import { MAX_ENVELOPE_BATCH_RANGES, type BatchRange } from "./envelope-model.js";
import { isBatchRange } from "../core/record.js";
import { Reader, bad, invalid, pushVaru } from "./envelope-wire.js";

const MAX_U32 = 0xffffffff;
/**
 * Messages are terse on purpose (the browser bundle's stop, scripts/build-browser.mjs):
 * they name the extension and the offending range; the rules are docs/FORMAT.md §6.1.
 */
const WHAT = "extension 26";
const within = (v: unknown, lo: number, hi: number): v is number => Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi;

/**
 * Whether `range` keeps the bounds and follows `prev` (the list's previous range). The
 * order rule: nodes ascend; within a node a range starts past the previous one's last
 * seq (adjacent batches are two ranges, never merged into one).
 */
function fits(range: BatchRange, prev: BatchRange | undefined): boolean {
  const { node, first, count } = Object(range) as Partial<BatchRange>;
  // Bounds as every layer checks them (count 2 … 10 000, first ≥ 1, last seq ≤ MAX_SEQ).
  return within(node, 0, MAX_U32) && isBatchRange(first!, count!)
    && (!prev || node > prev.node || (node === prev.node && first! >= prev.first + prev.count));
}
const fault = (what: string, r: unknown) => `${what}: ${JSON.stringify(r)} is out of bounds or order`;

/** The ranges of a BATCH_RANGES payload; BAD_ENVELOPE unless the payload is exactly a valid list. */
export function readBatchRanges(body: Uint8Array): BatchRange[] {
  const x = new Reader(body, 0, body.length);
  const n = x.varu(WHAT);
  if (!(n >= 1 && n <= MAX_ENVELOPE_BATCH_RANGES && n * 3 <= x.remaining)) throw bad(`${WHAT}: ${n} ranges in ${x.remaining} bytes`);
  const ranges: BatchRange[] = [];
  for (let k = 0, prev: BatchRange | undefined; k < n; k++) {
    const range = { node: x.varu(WHAT), first: x.varu(WHAT), count: x.varu(WHAT) };
    if (!fits(range, prev)) throw bad(fault(WHAT, range));
    ranges.push(prev = range);
  }
  if (x.remaining) throw bad(`${WHAT}: ${x.remaining} trailing bytes`);
  return ranges;
}

/** The payload of a non-empty list; INVALID_ARGUMENT for one that breaks a rule (an empty list: leave the tag out). */
export function batchRangeBytes(ranges: readonly BatchRange[]): number[] {
  if (!(ranges.length >= 1 && ranges.length <= MAX_ENVELOPE_BATCH_RANGES)) throw invalid(fault("batchRanges", ranges.length));
  const b: number[] = [];
  pushVaru(b, ranges.length);
  for (let k = 0; k < ranges.length; k++) {
    const r = ranges[k]!;
    if (!fits(r, ranges[k - 1])) throw invalid(fault("batchRanges", r));
    pushVaru(b, r.node);
    pushVaru(b, r.first);
    pushVaru(b, r.count);
  }
  return b;
}
