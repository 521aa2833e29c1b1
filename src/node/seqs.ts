/**
 * The seqs this node hands out: the next one, and what proves earlier ones spent. A seq
 * must never be handed out twice (peers would take a second write for one they hold), so
 * every entry of ours seen — in our log, or from a peer while relearning — moves `next`
 * past it (docs/PROTOCOL.md "Hostile peers" for when a peer may teach them).
 *
 *   const seqs = new OwnSeqs(id, warn);
 *   seqs.noteBatch(batch);                 // our entries in it prove their seqs spent
 *   seqs.relearn(ack, "peer 2's ack of our id");
 */
import { D_KIND, D_NODE, D_SEQ_HI, D_SEQ_LO, DESCRIPTOR_WORDS, RecordKind, type DecodedBatch } from "../core/record.js";
import { joinU64 } from "../core/encoding.js";
import { MAX_SEQ } from "../sync/envelope.js";

export class OwnSeqs {
  /** The next seq this node hands out. */
  next = 1;
  readonly #id: number;
  readonly #warn: (message: string) => void;
  /** When a relearning move was last logged (#relearned). */
  #loggedAt = 0;

  constructor(id: number, warn: (message: string) => void) {
    this.#id = id;
    this.#warn = warn;
  }

  /**
   * Every entry of ours proves its seq spent, whether it won, lost or was refused: a
   * write that lost LWW leaves no other trace. One pass over the descriptors, no
   * allocation. Seqs above MAX_SEQ (refused at ingress; in our log only if an older
   * build was poisoned) prove nothing.
   */
  noteBatch(batch: DecodedBatch): void {
    const d = batch.words, id = this.#id;
    for (let i = 0, at = 0; i < batch.count; i++, at += DESCRIPTOR_WORDS) {
      if (d[at + D_NODE] !== id || (d[at + D_KIND]! > RecordKind.Value && d[at + D_KIND] !== RecordKind.Expiring)) continue;
      const seq = joinU64(d[at + D_SEQ_LO]!, d[at + D_SEQ_HI]!);
      if (seq >= this.next && seq <= MAX_SEQ) this.next = seq + 1;
    }
  }

  /** A seq mark of our own log (a snapshot's, or the WAL's after one): every seq up to it is spent. */
  mark(seq: number): void {
    if (seq >= this.next) this.next = seq + 1;
  }

  /** After recovery: past every entry of ours held. Seqs above MAX_SEQ are reported, not refused. */
  recovered(ownMaxSeq: number): void {
    this.next = Math.max(this.next, ownMaxSeq + 1);
    if (this.next - 1 > MAX_SEQ) this.#warn(`this directory holds seqs of this node up to ${this.next - 1}, above the protocol's MAX_SEQ (2^48): peers refuse its writes; likely left by a seq-poisoning attack on an older build; rebuild the node (new directory, then bootstrap)`);
  }

  /** noteBatch for a peer's batch while relearning: a move is logged. */
  relearnFrom(batch: DecodedBatch): void {
    const before = this.next;
    this.noteBatch(batch);
    if (this.next !== before) this.#relearned(before, "entries of ours a peer holds");
  }

  /** Relearning (bootstrap, damaged recovery): a peer shows `seq` of ours spent. */
  relearn(seq: number, what: string): void {
    if (seq < this.next || seq > MAX_SEQ) return;
    const before = this.next;
    this.next = seq + 1;
    this.#relearned(before, what);
  }

  /** Logs a relearning move; at most one line per 10 s (a rebuilt node moves once per slice of its bootstrap). */
  #relearned(before: number, what: string): void {
    const now = Date.now();
    if (now - this.#loggedAt < 10_000) return;
    this.#loggedAt = now;
    this.#warn(`relearned spent seqs from ${what}: nextSeq ${before} -> ${this.next} (a rebuilt node, or a log that lost its tail)`);
  }
}
