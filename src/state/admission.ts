/**
 * What a merge of a remote (or replayed) batch decides beyond LWW, in JS and on winners
 * only: the limits that count the whole store (maxKeys, maxTotalBytes), the reserved-key
 * rule, and the caller's `admit`; and the winners as records for the log.
 */
import { D_KEY_LEN, D_KEY_OFF, DESCRIPTOR_WORDS, hasValue, recordToEntry, type DecodedBatch, type FramedRecords } from "../core/record.js";
import { encodePicked } from "../codec/records.js";
import type { MergeGroups } from "./batch-ranges.js";
import { PrevState, type MergeLimits } from "../index/merge-index.js";
import { isReservedKeyBytes, reservedRefusal } from "../core/reserved.js";
import { RESERVED_LIMITS, RESERVED_PREFIX, type AdmitFn, type Entry, type Limits } from "../core/types.js";

/**
 * A merge whose `admit` is running: the kernel holds its winners tentatively. Once a read
 * settled it, `prior` holds the stamps (and tombstone flags) its winners overwrite, as
 * reads must see them; `fresh` its new keys' slots (not held yet), once asked.
 */
export interface Admitting {
  batch: DecodedBatch;
  limits: MergeLimits;
  skip: Uint8Array | undefined;
  w: Uint32Array;
  prior: Map<number, [timestamp: number, node: number, seq: number, tombstone: number]> | null;
  fresh: Set<number> | null;
}

export interface MergeOptions {
  limits: Limits;
  /** Wall clock now (ms): entries stamped after now + maxClockDriftMs are refused. */
  now: number;
  admit?: AdmitFn;
  /** Our own log replaying: no admission, nothing refused. */
  trusted?: boolean;
  /**
   * Called with the winners after admission and before anything is applied, as records
   * the kernel frames for the log from the batch itself (`frame(base)`, valid during
   * this call only); throwing aborts the whole batch (nothing applied). The WAL append
   * goes here.
   */
  persist?: (winners: FramedRecords) => void;
  /** Entries the caller refuses before the merge, with why (counted in `rejected`). */
  refuse?: ReadonlyMap<number, string>;
  /** How many of `refuse` count as decided all the same (R1): they leave the batch complete. */
  decided?: number;
  /** The batch ranges the entries belong to (a peer's envelope named them): ./batch-winners.ts. */
  groups?: MergeGroups;
}

export interface BatchOutcome {
  /** Entries that changed state. */
  merged: number;
  /** Entries refused by limits or `admit`. */
  rejected: number;
  /** Every entry was decided (none refused, persist succeeded): rule R1 allows adopting acks. */
  complete: boolean;
  /** Why entries were refused (first few), for logs and errors. */
  reasons: string[];
}

/** Why the kernel refused an entry, by RefuseReason. */
export const REFUSE_TEXT = ["", "key too large", "value too large", "timestamp beyond the clock-drift limit", "masked", "bad record kind"];

/** The limits the kernel applies while it merges (our own log replaying: none). */
export function mergeLimitsOf(opts: MergeOptions): MergeLimits {
  const { limits } = opts;
  return opts.trusted
    ? { maxKeyBytes: 0x7fffffff, maxValueBytes: 0x7fffffff, maxTimestamp: Number.MAX_SAFE_INTEGER }
    : { maxKeyBytes: limits.maxKeyBytes, maxValueBytes: limits.maxValueBytes, maxTimestamp: opts.now + limits.maxClockDriftMs };
}

/** What admission reads of the replica a batch merges into. */
export interface AdmissionView {
  readonly userKeyCount: number;
  readonly userBytes: number;
  readonly reservedKeys: number;
  valueLengthAt(slot: number): number;
}

/**
 * Capacity and `admit` for the winners `w` of one merge pass into `state` (limits and the
 * reserved-key rule counted as if the winners before each applied); returns the entries
 * refused, with why in `reasons`. Losing entries are never looked at.
 */
export function admitWinners(state: AdmissionView, batch: DecodedBatch, w: Uint32Array, opts: MergeOptions, reasons: Map<number, string>, refusedForGood: Set<number>): number[] {
  const { limits } = opts;
  const refused: number[] = [];
  let keys = state.userKeyCount;
  let bytes = state.userBytes;
  let reservedKeys = state.reservedKeys;
  const d = batch.words;
  for (let j = 0; j < w.length; j += 3) {
    const i = w[j]!, slot = w[j + 1]!, prev = w[j + 2]!;
    const valueLen = hasValue(batch.kind(i)) ? batch.valueLength(i) : 0;
    let why: string | undefined;
    const at = i * DESCRIPTOR_WORDS;
    if (isReservedKeyBytes(batch.bytes, d[at + D_KEY_OFF]!, d[at + D_KEY_LEN]!)) {
      // Bookkeeping: its own bounds and owner rule instead of the user's limits.
      why = reservedRefusal(batch.key(i), batch.node(i), valueLen);
      if (why !== undefined) refusedForGood.add(i);
      else if (prev === PrevState.Absent) {
        if (reservedKeys + 1 > RESERVED_LIMITS.maxKeys) why = `store full (${RESERVED_LIMITS.maxKeys} keys under ${RESERVED_PREFIX})`;
        else reservedKeys++;
      }
    } else if (prev === PrevState.Absent) {
      const keyLen = batch.keyBytes(i).length;
      if (keys + 1 > limits.maxKeys) why = "store full (maxKeys)";
      else if (bytes + keyLen + valueLen > limits.maxTotalBytes) why = "store full (maxTotalBytes)";
      else { keys++; bytes += keyLen + valueLen; }
    } else {
      const oldLen = state.valueLengthAt(slot);
      if (valueLen > oldLen && bytes + valueLen - oldLen > limits.maxTotalBytes) why = "store full (maxTotalBytes)";
      else bytes += valueLen - oldLen;
    }
    if (why === undefined && opts.admit) {
      const verdict = opts.admit(recordToEntry(batch, i));
      if (verdict !== true) why = `rejected by admit: ${verdict}`;
    }
    if (why !== undefined) {
      refused.push(i);
      reasons.set(i, why);
    }
  }
  return refused;
}

/**
 * The winners `w` (entry, slot, prev triples) of a merged batch, framed for the log by
 * the kernel in one call from the batch's own bytes and descriptors: no record objects,
 * no value copies. Valid while the batch is (during the merge).
 */
export function framedWinners(batch: DecodedBatch, w: Uint32Array): FramedRecords {
  return { count: w.length / 3, frame: (base) => encodePicked(batch, w, 3, "framed", base) };
}

/**
 * Drop the reserved entries of `slots` the reserved-key rule refuses: written before the
 * rule existed (a build that published every configured peer's address under that peer's
 * id). Run once recovered: every node drops the same ones, so replicas stay equal and
 * none keeps offering what the others refuse. Returns their keys.
 */
export function dropRefusedReserved(state: AdmissionView & { keyAt(slot: number): string; stampInto(key: string, out: Float64Array): boolean; release(slot: number): void }, slots: ReadonlySet<number>): string[] {
  const dropped: string[] = [];
  const m = new Float64Array(4);
  for (const slot of [...slots]) {
    const key = state.keyAt(slot);
    state.stampInto(key, m);
    if (reservedRefusal(key, m[1]!, state.valueLengthAt(slot)) === undefined) continue;
    state.release(slot);
    dropped.push(key);
  }
  return dropped;
}
