/**
 * A node's own facts in its log besides entries: membership (AddPeer / RemovePeer), the
 * seq high-water mark (SeqMark) and batch ranges (BatchHead in the WAL, BatchRange in
 * snapshots). A snapshot writes them with the entries
 * (snapshotRecords), replay reads them back (replayLog); members.ts logs each membership
 * change as it happens. Merged remote batches are logged by logMerged.
 *
 *   storage.snapshot(() => snapshotRecords(seqs, members, state, writes.pendingRecords));
 *   replayLog(batch, members, seqs, ranges);    // after the batch's entries are merged
 */
import { D_KIND, D_NODE, D_SEQ_HI, D_SEQ_LO, D_TS_HI, D_TS_LO, DESCRIPTOR_WORDS, RecordKind, batchRangeRecord, seqMarkRecord, type DecodedBatch, type FramedRecords, type RecordInput } from "../core/record.js";
import { joinI64, joinU64 } from "../core/encoding.js";
import type { BatchRanges } from "../state/batch-ranges.js";
import type { ReplicaState } from "../state/replica.js";
import type { Storage } from "../storage/interface.js";
import { peerRecord, type Members } from "./members.js";
import type { OwnSeqs } from "./seqs.js";


/**
 * Everything a snapshot holds, read lazily as storage writes it: the seq mark, the
 * members, the entries, then local writes logged but not yet applied (replay decides
 * them by LWW like everything else; if one later fails its fsync, the snapshot may still
 * hold it — an unacknowledged write may or may not survive a failure, as with any log).
 */
export function* snapshotRecords(seqs: OwnSeqs, members: Members, state: ReplicaState, pending: Map<number, RecordInput>): IterableIterator<RecordInput> {
  yield seqMarkRecord(seqs.next - 1);
  for (const p of members.recorded()) yield peerRecord(RecordKind.AddPeer, p);
  yield* state.records();
  yield* pending.values();
  // Batch ranges last (kind 7, FORMAT §4), those still grouping two held entries; a range
  // of a pending batch is held from its append on, so it is written with its records.
  state.pruneBatchRanges();
  for (const r of state.batches.ranges()) yield batchRangeRecord(r.node, r.first, r.count);
}

/**
 * Membership and seq marks of a replayed batch of our own log, in log order; the batch's
 * entries are merged before (in one kernel call: entries and membership commute, so the
 * split changes nothing). Then our entries in it prove their seqs spent.
 */
export function replayLog(batch: DecodedBatch, members: Members, seqs: OwnSeqs, ranges: BatchRanges): void {
  const d = batch.words;
  for (let i = 0, at = 0; i < batch.count; i++, at += DESCRIPTOR_WORDS) {
    const kind = d[at + D_KIND]!;
    if (kind === RecordKind.AddPeer || kind === RecordKind.RemovePeer) members.replayed(kind, d[at + D_NODE]!);
    else if (kind === RecordKind.SeqMark) seqs.mark(joinU64(d[at + D_SEQ_LO]!, d[at + D_SEQ_HI]!));
    else if (kind === RecordKind.BatchHead) replayHead(batch, i, ranges);
    else if (kind === RecordKind.BatchRange) {
      const first = joinU64(d[at + D_SEQ_LO]!, d[at + D_SEQ_HI]!);
      ranges.add(d[at + D_NODE]!, first, first + joinI64(d[at + D_TS_LO]!, d[at + D_TS_HI]!) - 1);
    }
  }
  seqs.noteBatch(batch);
}

/**
 * The range of the batch whose head is record `h` (our own batch, or a peer's batch's
 * winners, FORMAT §3.1): replay hands batches over whole (src/storage/wal-batches.ts), so
 * its records follow in this decode. Records of more than one node make no range.
 */
function replayHead(batch: DecodedBatch, h: number, ranges: BatchRanges): void {
  const n = batch.seq(h);
  if (n < 2 || h + n >= batch.count) return;
  const node = batch.node(h + 1);
  let min = Infinity, max = -Infinity;
  for (let i = h + 1; i <= h + n; i++) {
    if (batch.node(i) !== node) return;
    const seq = batch.seq(i);
    if (seq < min) min = seq;
    if (seq > max) max = seq;
  }
  ranges.add(node, min, max);
}

/**
 * How a merged remote batch is logged: one append for the whole batch (its winners,
 * framed by the kernel from the batch: no record objects), its fsync not
 * awaited (acks are not durable, so an entry lost in a crash is simply sent again by its
 * peer). A latched log, or a write that failed just now (the write is synchronous),
 * refuses the batch: throwing makes mergeBatch roll it back — nothing applied,
 * incomplete, so no acks move (R1).
 */
export function logMerged(storage: Storage, warn: (message: string) => void): (winners: FramedRecords) => void {
  return (records) => {
    if (storage.failure) throw storage.failure;
    storage.append(records).catch((e) => warn(`log append of a merged batch failed: ${(e as Error).message}`));
    if (storage.failure) throw storage.failure;
  };
}
