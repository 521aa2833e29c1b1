/**
 * The BATCH_RANGES extension's payload (ExtTag 26, docs/FORMAT.md §6.1): the atomic
 * batches an envelope's entries belong to, as
 *
 *   varu n • n × (varu node • varu first • varu count)     sorted by (node, first)
 *
 * One rule set (`rangeFault`) serves both directions: a peer's list that breaks it is
 * BAD_ENVELOPE (nothing applied), our own is INVALID_ARGUMENT — the encoder only ever gets
 * ranges built from our own batch table, so it never fails on a peer's input.
 * Cost: one pass, no allocation before the claimed count is checked against the bytes
 * (every range takes at least 3), so a crafted count never allocates.
 */
import { MAX_BATCH_RANGE, MAX_ENVELOPE_BATCH_RANGES, MAX_SEQ, type BatchRange } from "./envelope-model.js";
import { Reader, bad, invalid, pushVaru } from "./envelope-wire.js";

const MAX_U32 = 0xffffffff;

/**
 * What is wrong with `range` following `prev` (the list's previous range), or null. The
 * order rule: nodes ascend; within a node a range starts past the previous one's last
 * seq (adjacent batches are two ranges, never merged into one).
 */
function rangeFault(range: BatchRange, prev: BatchRange | undefined): string | null {
  if (typeof range !== "object" || range === null) return `${String(range)} is not a range`;
  const { node, first, count } = range;
  if (!Number.isInteger(node) || node < 0 || node > MAX_U32) return `node ${String(node)} is not a uint32`;
  if (!Number.isInteger(first) || first < 1) return `first ${String(first)} of node ${node} is not a seq ≥ 1`;
  if (!Number.isInteger(count) || count < 2 || count > MAX_BATCH_RANGE) return `count ${String(count)} of ${node}/${first} is not within 2..${MAX_BATCH_RANGE}`;
  if (first + count - 1 > MAX_SEQ) return `range ${node}/${first} of ${count} ends past MAX_SEQ (2^48)`;
  if (prev === undefined || node > prev.node) return null;
  if (node < prev.node) return `nodes not ascending (${node} after ${prev.node})`;
  if (first <= prev.first) return `firsts of node ${node} not ascending (${first} after ${prev.first})`;
  if (first <= prev.first + prev.count - 1) return `range ${node}/${first} overlaps ${node}/${prev.first} of ${prev.count}`;
  return null;
}

/** The ranges of a BATCH_RANGES payload; BAD_ENVELOPE naming `what` unless the payload is exactly a valid list. */
export function readBatchRanges(body: Uint8Array, what: string): BatchRange[] {
  const x = new Reader(body, 0, body.length);
  const n = x.varu(`${what} count`);
  if (n === 0 || n > MAX_ENVELOPE_BATCH_RANGES) throw bad(`${what}: ${n} ranges (1..${MAX_ENVELOPE_BATCH_RANGES})`);
  if (n * 3 > x.remaining) throw bad(`${what}: ${n} ranges in ${x.remaining} bytes`);
  const ranges: BatchRange[] = [];
  let prev: BatchRange | undefined;
  for (let k = 0; k < n; k++) {
    const range = { node: x.varu(`${what} node`), first: x.varu(`${what} first`), count: x.varu(`${what} count`) };
    const fault = rangeFault(range, prev);
    if (fault !== null) throw bad(`${what}: ${fault}`);
    ranges.push(range);
    prev = range;
  }
  if (x.remaining !== 0) throw bad(`${what}: ${x.remaining} trailing bytes`);
  return ranges;
}

/** The payload of a non-empty list; INVALID_ARGUMENT for one that breaks a rule (or is empty: leave it out). */
export function batchRangeBytes(ranges: readonly BatchRange[]): number[] {
  if (!Array.isArray(ranges) || ranges.length === 0 || ranges.length > MAX_ENVELOPE_BATCH_RANGES) {
    throw invalid(`batchRanges must list 1..${MAX_ENVELOPE_BATCH_RANGES} ranges`);
  }
  const b: number[] = [];
  pushVaru(b, ranges.length);
  let prev: BatchRange | undefined;
  for (const range of ranges) {
    const fault = rangeFault(range, prev);
    if (fault !== null) throw invalid(`batchRanges: ${fault}`);
    pushVaru(b, range.node);
    pushVaru(b, range.first);
    pushVaru(b, range.count);
    prev = range;
  }
  return b;
}
