/**
 * The bytes of our own writes that some peer has not confirmed yet, so that
 * `Node.replication()` can say "bytes behind" per peer without scanning the store.
 *
 * Samples (seq, cumulative bytes through that seq) in seq order, one per local write,
 * in two growable Float64Arrays (16 bytes a write). Bytes above an ack = total − the
 * cumulative count at the last sample ≤ ack (binary search, O(log W)). Samples every peer
 * confirmed are dropped (`dropThrough`). Bounded: past MAX_SAMPLES unconfirmed writes (a
 * peer down for long) every other sample goes, so an answer may then count up to one
 * dropped gap too many: `exact` says so. Writes before the node opened were never
 * logged: an ack below the first sample makes `exact` false too.
 */

/** 2^18 samples: 4 MiB at most. */
const MAX_SAMPLES = 1 << 18;

export class OwnWriteLog {
  #seqs = new Float64Array(1024);
  #cums = new Float64Array(1024);
  #start = 0;
  #end = 0;
  /** Bytes of every write logged since open. */
  #total = 0;
  /** Cumulative bytes through the last dropped sample, and its seq (0: none dropped). */
  #floorCum = 0;
  #floorSeq = 0;
  /** Set once samples were thinned: answers between kept samples overcount. */
  #thinned = false;
  /** False until the first write logged, and again after skipThrough. */
  #started = false;

  get size(): number {
    return this.#end - this.#start;
  }

  add(seq: number, bytes: number): void {
    // Writes before the first one logged (before open, or while there was no peer) are not
    // known here: an ack below it is answered as a lower bound.
    if (!this.#started) this.skipThrough(seq - 1);
    this.#total += bytes;
    if (this.#end === this.#seqs.length) this.#makeRoom();
    this.#seqs[this.#end] = seq;
    this.#cums[this.#end] = this.#total;
    this.#end++;
  }

  /** Room for one more: drop the consumed prefix, grow, or (at the bound) keep every other sample. */
  #makeRoom(): void {
    const n = this.size;
    if (n >= MAX_SAMPLES) {
      // Keep odd positions from the end so the latest write always keeps its own sample.
      let w = this.#start;
      for (let r = this.#start + ((n - 1) % 2); r < this.#end; r += 2) {
        this.#seqs[w] = this.#seqs[r]!;
        this.#cums[w] = this.#cums[r]!;
        w++;
      }
      this.#end = w;
      this.#thinned = true;
    }
    const len = this.#end - this.#start;
    const cap = len * 2 > this.#seqs.length ? this.#seqs.length * 2 : this.#seqs.length;
    const seqs = cap === this.#seqs.length ? this.#seqs : new Float64Array(cap);
    const cums = cap === this.#cums.length ? this.#cums : new Float64Array(cap);
    seqs.set(this.#seqs.subarray(this.#start, this.#end), 0);
    cums.set(this.#cums.subarray(this.#start, this.#end), 0);
    this.#seqs = seqs;
    this.#cums = cums;
    this.#start = 0;
    this.#end = len;
  }

  /** Forgets everything: writes through `seq` are not logged (the node had no peer to confirm them). */
  skipThrough(seq: number): void {
    this.#start = this.#end = 0;
    this.#floorSeq = seq;
    this.#floorCum = this.#total;
    this.#started = true;
  }

  /** Forgets samples with seq ≤ `seq` (every peer confirmed them). */
  dropThrough(seq: number): void {
    const i = this.#firstAbove(seq);
    if (i === this.#start) return;
    this.#floorSeq = this.#seqs[i - 1]!;
    this.#floorCum = this.#cums[i - 1]!;
    this.#start = i;
    if (this.#start === this.#end) this.#start = this.#end = 0;
  }

  /** Bytes of logged writes above `ack`; `lastSeq`: our latest seq (for the writes before the first logged). */
  bytesAbove(ack: number, lastSeq: number): { bytes: number; exact: boolean } {
    if (!this.#started) return { bytes: 0, exact: ack >= lastSeq };
    const i = this.#firstAbove(ack);
    const below = i > this.#start ? this.#cums[i - 1]! : this.#floorCum;
    // The ack sits below what was logged: older writes were not logged (or were dropped as confirmed by all then).
    const covered = i > this.#start || ack >= this.#floorSeq;
    return { bytes: this.#total - below, exact: covered && !this.#thinned };
  }

  /** Index of the first sample with seq > `seq` (#end when none). */
  #firstAbove(seq: number): number {
    let lo = this.#start, hi = this.#end;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#seqs[mid]! <= seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
