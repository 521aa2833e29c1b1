/**
 * A node's own facts in its log besides entries: membership (AddPeer / RemovePeer) and
 * the seq high-water mark (SeqMark). A snapshot writes them with the entries
 * (snapshotRecords), replay reads them back (replayLog); members.ts logs each membership
 * change as it happens. Merged remote batches are logged by logMerged.
 *
 *   storage.snapshot(() => snapshotRecords(seqs, members, state, writes.pendingRecords));
 *   replayLog(batch, members, seqs);            // after the batch's entries are merged
 */
import { D_KIND, D_NODE, D_SEQ_HI, D_SEQ_LO, DESCRIPTOR_WORDS, RecordKind, seqMarkRecord, type DecodedBatch, type FramedRecords, type RecordInput } from "../core/record.js";
import { joinU64 } from "../core/encoding.js";
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
}

/**
 * Membership and seq marks of a replayed batch of our own log, in log order; the batch's
 * entries are merged before (in one kernel call: entries and membership commute, so the
 * split changes nothing). Then our entries in it prove their seqs spent.
 */
export function replayLog(batch: DecodedBatch, members: Members, seqs: OwnSeqs): void {
  const d = batch.words;
  for (let i = 0, at = 0; i < batch.count; i++, at += DESCRIPTOR_WORDS) {
    const kind = d[at + D_KIND]!;
    if (kind === RecordKind.AddPeer || kind === RecordKind.RemovePeer) members.replayed(kind, d[at + D_NODE]!);
    else if (kind === RecordKind.SeqMark) seqs.mark(joinU64(d[at + D_SEQ_LO]!, d[at + D_SEQ_HI]!));
  }
  seqs.noteBatch(batch);
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
