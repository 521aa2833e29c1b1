/**
 * Atomic batches in a log (docs/FORMAT.md §3.1, docs/design/0027-atomic-batches.md): a
 * batch head (kind 6, `seq` = n) claims the n records right after it, all entries (kinds
 * 0/1/5: our own batch, or the winners of a peer's batch merged here), written by one
 * append and covered by one fsync. Replay hands a batch over whole
 * or not at all: a decode that ends inside a batch is cut back to the batch's head.
 *
 *   const cut = cutAtBatch(batch, (max) => decodeRecords(bytes, "framed", base, max));
 *   // cut.batch: the records up to a whole batch; cut.kind: null | "incomplete" | "malformed"
 *
 * Invariant: every decode handed to a replay sink starts and ends outside a batch, so a
 * sink never holds part of one (windows of a long log are cut the same way).
 */
import { joinU64 } from "../core/encoding.js";
import { D_KIND, D_SEQ_HI, D_SEQ_LO, DESCRIPTOR_WORDS, RecordKind, type DecodedBatch } from "../core/record.js";

/**
 * Most entry records one batch head may claim; a head claiming more is malformed.
 * `node.batch` takes at most as many (MAX_BATCH_ENTRIES in src/node/batch.ts, equal: a
 * test checks; the node layer keeps its own so the browser bundle's batch chunk does not
 * pull the storage layer in).
 */
export const MAX_BATCH_RECORDS = 10_000;

/** A batch the records end inside (`incomplete`), or whose head is wrong (`malformed`): its head's index. */
export interface OpenBatch {
  index: number;
  kind: "incomplete" | "malformed";
}

/**
 * The first batch in `batch` that is not whole, or null. Malformed: a head claiming 0 or
 * more than MAX_BATCH_RECORDS records, or a claimed record that is not an entry (another
 * head, a membership record, a seq mark, a batch range). Incomplete: the records end before the claim.
 * Cost: one pass over the descriptors, reading kinds only.
 */
export function openBatch(batch: DecodedBatch): OpenBatch | null {
  const w = batch.words, count = batch.count;
  for (let i = 0; i < count;) {
    const at = i * DESCRIPTOR_WORDS;
    if (w[at + D_KIND] !== RecordKind.BatchHead) { i++; continue; }
    const n = joinU64(w[at + D_SEQ_LO]!, w[at + D_SEQ_HI]!);
    if (!(n >= 1 && n <= MAX_BATCH_RECORDS)) return { index: i, kind: "malformed" };
    for (let j = i + 1; j <= i + n; j++) {
      if (j >= count) return { index: i, kind: "incomplete" };
      const kind = w[j * DESCRIPTOR_WORDS + D_KIND]!;
      if (kind !== RecordKind.Tombstone && kind !== RecordKind.Value && kind !== RecordKind.Expiring) return { index: i, kind: "malformed" };
    }
    i += n + 1;
  }
  return null;
}

export interface BatchCut {
  /** The records to hand over: `decoded` itself, or a decode of it cut at a batch head. */
  batch: DecodedBatch;
  /** The head `batch` stops before, or null when `decoded` held whole batches only. */
  kind: OpenBatch["kind"] | null;
  /** The decoder's own stop of `decoded` (what the records' damage verdict is judged by). */
  decoderStop: DecodedBatch["stop"];
}

/**
 * `decoded`, cut back before its first batch that is not whole: `redecode(n)` decodes the
 * same bytes again up to `n` records (its stop is then the head's offset, "limit").
 * `decoded` is released when replaced.
 */
export function cutAtBatch(decoded: DecodedBatch, redecode: (maxRecords: number) => DecodedBatch): BatchCut {
  const open = openBatch(decoded);
  const decoderStop = decoded.stop;
  if (open === null) return { batch: decoded, kind: null, decoderStop };
  decoded.release();
  return { batch: redecode(open.index), kind: open.kind, decoderStop };
}

/**
 * The stop a cut batch reports to whoever truncates or refuses the log: at the head,
 * "malformed" for a malformed batch, else the decoder's own reason ("torn" if it ended
 * cleanly: a batch cut short by a crash was never acknowledged, its fsync came after).
 */
export function cutStop(cut: BatchCut): DecodedBatch["stop"] {
  if (cut.kind === null) return cut.decoderStop;
  const reason = cut.kind === "malformed" ? "malformed" : cut.decoderStop.reason === "crc" || cut.decoderStop.reason === "malformed" ? cut.decoderStop.reason : "torn";
  return { reason, offset: cut.batch.stop.offset };
}
