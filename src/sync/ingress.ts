/**
 * Ingress of a peer's entries (docs/PROTOCOL.md §4.1): which entries are refused before
 * they merge, and how a large envelope is merged in slices. The decisions about acks stay
 * in src/sync/protocol.ts; this module only says "refuse entry i, because" and runs slices.
 *
 *   const batch = decodeEntries(env);                        // every entry, or BAD_ENVELOPE
 *   const { refuse, decided } = ingressRefusals(batch, self, nextSeq, relearn);
 *   await mergeInSlices(env, { sliceEntries: 2048, pause }, (slice, groups) => mergeOne(slice, groups));
 */
import { decodeRecords } from "../codec/records.js";
import type { MergeGroups } from "../state/batch-ranges.js";
import { DESCRIPTOR_BYTES, DESCRIPTOR_WORDS, D_NODE, D_SEQ_HI, D_SEQ_LO, type DecodedBatch } from "../core/record.js";
import { encodedEntriesOf, entryFault } from "./envelope-entries.js";
import type { Envelope } from "./envelope-model.js";
import { WaveKVError } from "../core/errors.js";
import type { BatchOutcome } from "../state/replica.js";
import { BatchView } from "../codec/batch.js";
import { joinU64 } from "../core/encoding.js";

/** How a large envelope is merged: `sliceEntries` at a time, awaiting `pause()` between slices. */
export interface MergeSlicing {
  sliceEntries: number;
  pause: () => Promise<void>;
}

export type Merged = BatchOutcome & { received: number };

/** Every entry of `env` decoded and checked before any is merged (never a partial batch from bad bytes); null when it has none. */
export function decodeEntries(env: Envelope): DecodedBatch | null {
  const enc = encodedEntriesOf(env);
  if (enc.count === 0) return null;
  const batch = decodeRecords(enc.bytes, enc.framing ?? "bare", enc.base, enc.count);
  if (batch.count !== enc.count || batch.stop.reason !== "end") {
    throw new WaveKVError("BAD_ENVELOPE", `entries do not decode (${batch.stop.reason} at byte ${batch.stop.offset})`);
  }
  return batch;
}

/**
 * Per entry, before anything merges (one pass over the descriptors, nothing allocated
 * unless something is refused): a seq or timestamp out of range is refused; so is an
 * entry of our own origin (`self`) at or above `nextSeq` outside the relearning window —
 * a forgery or a stale incarnation. Those are `decided` (R1): refusing a claim about
 * ourselves says nothing about the coverage of other origins, and a peer holding one
 * must not stall adoption for ever.
 */
export function ingressRefusals(batch: DecodedBatch, self: number, nextSeq: number, relearn: boolean): { refuse: Map<number, string> | undefined; decided: number } {
  const w = batch.words;
  let refuse: Map<number, string> | undefined;
  let decided = 0;
  for (let i = 0, d = 0; i < batch.count; i++, d += DESCRIPTOR_WORDS) {
    let why = entryFault(w, d);
    if (why === undefined && w[d + D_NODE] === self && !relearn) {
      const seq = joinU64(w[d + D_SEQ_LO]!, w[d + D_SEQ_HI]!);
      if (seq >= nextSeq) {
        why = `seq ${seq} of this node's own origin, which it never issued (nextSeq ${nextSeq})`;
        decided++;
      }
    }
    if (why !== undefined) (refuse ??= new Map()).set(i, why);
  }
  return { refuse, decided };
}

/**
 * The batch ranges `env` names (docs/PROTOCOL.md §2.3) as merge groups over its decoded
 * entries: the range each entry falls in (-1: none). BAD_ENVELOPE, before anything merges,
 * when a listed range holds fewer than two of the entries: a range groups entries the
 * envelope carries, it is not a claim to record on its own. Undefined when none is listed.
 */
export function mergeGroupsOf(env: Envelope, batch: DecodedBatch): MergeGroups | undefined {
  const ranges = env.batchRanges;
  if (ranges === undefined || ranges.length === 0) return undefined;
  const member = new Int32Array(batch.count).fill(-1);
  const hits = new Uint32Array(ranges.length);
  const w = batch.words;
  for (let i = 0, d = 0; i < batch.count; i++, d += DESCRIPTOR_WORDS) {
    const node = w[d + D_NODE]!, seq = joinU64(w[d + D_SEQ_LO]!, w[d + D_SEQ_HI]!);
    // The last range at or before (node, seq): ranges ascend by (node, first) (the decoder checked).
    let lo = 0, hi = ranges.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1, r = ranges[mid]!;
      if (r.node < node || (r.node === node && r.first <= seq)) lo = mid + 1;
      else hi = mid;
    }
    const r = ranges[lo - 1];
    if (r !== undefined && r.node === node && seq < r.first + r.count) {
      member[i] = lo - 1;
      hits[lo - 1]!++;
    }
  }
  const k = hits.findIndex((n) => n < 2);
  if (k >= 0) {
    const r = ranges[k]!;
    throw new WaveKVError("BAD_ENVELOPE", `batch range ${k} (node ${r.node}, seqs ${r.first}…${r.first + r.count - 1}) holds ${hits[k]} of the envelope's entries; a range groups at least two`);
  }
  return { ranges, member };
}

/**
 * Where the slice starting at `start` ends: `step` entries on, moved past every batch
 * range that would be split there (a batch is merged in one slice: one synchronous step).
 */
function sliceEnd(start: number, step: number, count: number, member: Int32Array | undefined, lastOf: Int32Array | undefined): number {
  let end = Math.min(count, start + step);
  if (member === undefined || lastOf === undefined) return end;
  for (let i = start; i < end; i++) {
    const r = member[i]!;
    if (r >= 0 && lastOf[r]! >= end) end = lastOf[r]! + 1;
  }
  return end;
}

/**
 * Merges `env`'s entries `s.sliceEntries` at a time through `mergeOne`, awaiting
 * `s.pause()` before each slice so that other requests run (one 64k-entry envelope would
 * otherwise hold the event loop for its whole merge). A slice never splits a batch range
 * (it grows to the range's last entry).
 * Each slice is admitted, logged and applied as one batch; the outcome is complete only
 * if every slice was (R1). LWW merges commute, so what runs in between changes no result.
 */
export async function mergeInSlices(env: Envelope, s: MergeSlicing, mergeOne: (slice: DecodedBatch, groups: MergeGroups | undefined) => BatchOutcome): Promise<Merged> {
  // The envelope was just decoded and validated whole (decodeEnvelope): let others run
  // before decoding it a second time for the merge.
  await s.pause();
  const batch = decodeEntries(env);
  if (batch === null) return { merged: 0, rejected: 0, complete: true, reasons: [], received: 0 };
  const count = batch.count, bytes = batch.bytes;
  let groups: MergeGroups | undefined;
  try {
    groups = mergeGroupsOf(env, batch);
  } catch (err) {
    batch.release();
    throw err;
  }
  // Our own copy of the descriptors: the kernel reuses its memory between slices.
  const descriptors = batch.descriptors.slice();
  batch.release();
  let lastOf: Int32Array | undefined;
  if (groups !== undefined) {
    lastOf = new Int32Array(groups.ranges.length);
    groups.member.forEach((r, i) => { if (r >= 0) lastOf![r] = i; });
  }
  const total: Merged = { merged: 0, rejected: 0, complete: true, reasons: [], received: count };
  const step = Math.max(1, Math.floor(s.sliceEntries));
  for (let start = 0, end = 0; start < count; start = end) {
    await s.pause();
    end = sliceEnd(start, step, count, groups?.member, lastOf);
    const slice = new BatchView(bytes, descriptors.subarray(start * DESCRIPTOR_BYTES, end * DESCRIPTOR_BYTES), end - start, { reason: "end", offset: bytes.length });
    const out = mergeOne(slice, groups && { ranges: groups.ranges, member: groups.member.subarray(start, end) });
    slice.release();
    total.merged += out.merged;
    total.rejected += out.rejected;
    total.complete &&= out.complete;
    if (total.reasons.length < 8) total.reasons.push(...out.reasons.slice(0, 8 - total.reasons.length));
  }
  return total;
}
