/**
 * The value bytes of the live entries a replica holds, by slot: the one owner of where a
 * value's bytes are (a copy of its own, or a range of a retained batch) and of how long
 * those batches stay alive. Which slots are held, and which are tombstones, is the
 * kernel index's (src/index/kernel-index.ts): this module knows only "bytes or none".
 *
 *   const values = new SlotValues();
 *   values.set(slot, bytes);                        // a copy the slot owns
 *   const id = values.retain(batch, batch.bytes, w); values.setRetained(slot, id, off, len);
 *   values.get(slot); values.lengthAt(slot); values.clear(slot);
 *
 * Retained batches: the values of a merged batch stay in that batch's bytes (one buffer
 * per batch, not one copy per value) until read. A retained buffer is a JS buffer or the
 * bytes a decoder keeps for us (`DecodedBatch.retain()`: an opaque handle, released
 * when dropped), whose values are handed out as copies. Invariant: `#live` of a retained buffer is the sum of the lengths of the
 * slots that reference it; a buffer whose live share falls under RETAIN_MIN_LIVE is
 * compacted (its live values copied out), so overwritten entries cannot pin it for ever.
 */
import type { DecodedBatch, RetainedBytes } from "../core/record.js";

interface Retained {
  /** A JS buffer (values handed out as views), or null when `kept` holds the bytes. */
  bytes: Uint8Array | null;
  /** Bytes the decoder keeps for us (values handed out as copies). */
  kept: RetainedBytes | null;
  /** Bytes of the batch the values came from (what compaction compares `live` with). */
  length: number;
  /** Value bytes still read from the buffer. */
  live: number;
  /** Slots that took a value from it (some may have moved on since): what compaction walks. */
  slots: Uint32Array;
}

/**
 * A retained batch whose live values fill less than this fraction of it is compacted
 * (its live values copied out), so overwritten entries cannot pin their batch for ever.
 */
const RETAIN_MIN_LIVE = 0.25;
/** Remote batches are retained whole only when winning values fill at least this much of them; else one copy each. */
export const RETAIN_MIN_SHARE = 0.5;

const EMPTY = new Uint8Array(0);

export class SlotValues {
  /** Per slot: a value's own bytes (a copy), or undefined (none, or in a retained buffer). */
  readonly #own: (Uint8Array | undefined)[] = [];
  /** Per slot, for values still in a retained buffer: buffer id (0 = none), offset, length. */
  #refBuf = new Uint32Array(0);
  #refOff = new Uint32Array(0);
  #refLen = new Uint32Array(0);
  /** Retained buffers by id (id 0 unused); `#freeIds` are ids to reuse. */
  readonly #retained: (Retained | undefined)[] = [undefined];
  readonly #freeIds: number[] = [];
  /** Id of the buffer a batch is being installed from: not dropped or compacted mid-install. */
  #applying = 0;

  /** Bytes of merged batches kept because values are read from them. */
  get retainedBytes(): number {
    let n = 0;
    for (const r of this.#retained) if (r !== undefined) n += r.length;
    return n;
  }

  /**
   * Per-slot arrays cover `slots` slots: grown to it (holes read as undefined), so stores
   * stay in bounds; by half again at least, so a replay in windows does not copy them
   * once per window.
   */
  ensure(slots: number): void {
    if (this.#refBuf.length < slots) {
      const n = Math.max(slots, this.#refBuf.length * 2, 1024);
      const grow = (a: Uint32Array) => { const g = new Uint32Array(n); g.set(a); return g; };
      this.#refBuf = grow(this.#refBuf);
      this.#refOff = grow(this.#refOff);
      this.#refLen = grow(this.#refLen);
    }
    if (this.#own.length < slots) this.#own.length = Math.max(slots, this.#own.length + (this.#own.length >> 1));
  }

  /**
   * The value bytes of a live slot: its own copy, or a fresh view of its retained buffer
   * (not cached: a view costs ~90 B a key), or a copy when the decoder keeps that
   * buffer. A slot with none (a tombstone; the caller asks the index) reads empty.
   */
  get(slot: number): Uint8Array {
    const own = this.#own[slot];
    if (own !== undefined) return own;
    const id = slot < this.#refBuf.length ? this.#refBuf[slot]! : 0;
    return id === 0 ? EMPTY : this.#retainedValue(this.#retained[id]!, slot);
  }

  #retainedValue(r: Retained, slot: number): Uint8Array {
    const off = this.#refOff[slot]!, len = this.#refLen[slot]!;
    return r.kept !== null ? r.kept.slice(off, len) : r.bytes!.subarray(off, off + len);
  }

  /** Byte length of the slot's value (0 when it has none), without reading it. */
  lengthAt(slot: number): number {
    const own = this.#own[slot];
    if (own !== undefined) return own.length;
    return slot < this.#refBuf.length && this.#refBuf[slot] !== 0 ? this.#refLen[slot]! : 0;
  }

  /** The slot owns `value` (the caller's bytes: not copied). The slot must hold none (clear first). */
  set(slot: number, value: Uint8Array): void {
    this.#own[slot] = value;
  }

  /** The slot's value is `len` bytes at `off` of retained buffer `id`. The slot must hold none. */
  setRetained(slot: number, id: number, off: number, len: number): void {
    this.#own[slot] = undefined;
    this.#refBuf[slot] = id;
    this.#refOff[slot] = off;
    this.#refLen[slot] = len;
    this.#retained[id]!.live += len;
  }

  /** The slot's value leaves it (a retained buffer it was the last reader of is dropped). */
  clear(slot: number): void {
    if (slot < this.#own.length) this.#own[slot] = undefined;
    const id = slot < this.#refBuf.length ? this.#refBuf[slot]! : 0;
    if (id === 0) return;
    this.#refBuf[slot] = 0;
    this.#retained[id]!.live -= this.#refLen[slot]!;
    if (id !== this.#applying) this.#check(id);
  }

  /**
   * Keep `bytes` for the values that win from it; `w` are the winner triples (slots at
   * 1 mod 3). An owned `batch` whose decoder keeps its bytes (`retain()`) is kept that way instead.
   * Until `endApply`, the buffer is neither dropped nor compacted (a batch that overwrites
   * its own values would otherwise drop it mid-install).
   */
  beginApply(batch: DecodedBatch | null, bytes: Uint8Array, w: Uint32Array): number {
    const slots = new Uint32Array(w.length / 3);
    for (let j = 1, k = 0; j < w.length; j += 3, k++) slots[k] = w[j]!;
    const id = this.#freeIds.pop() ?? this.#retained.length;
    const kept = batch?.retain() ?? null;
    const r: Retained = { bytes: kept === null ? bytes : null, kept, length: bytes.length, live: 0, slots };
    this.#retained[id] = r;
    this.#applying = id;
    return id;
  }

  /** The install from buffer `id` is over: a key written twice in the batch left its first value behind already. */
  endApply(id: number): void {
    this.#applying = 0;
    this.#check(id);
  }

  /** Drop a retained buffer that nothing reads any more; compact one that is mostly garbage. */
  #check(id: number): void {
    const r = this.#retained[id]!;
    if (r.live === 0) {
      this.#drop(id);
    } else if (r.live < r.length * RETAIN_MIN_LIVE) {
      for (const slot of r.slots) {
        if (this.#refBuf[slot] !== id) continue;
        const v = this.#retainedValue(r, slot);
        this.#own[slot] = r.kept !== null ? v : v.slice();
        this.#refBuf[slot] = 0;
      }
      this.#drop(id);
    }
  }

  #drop(id: number): void {
    const r = this.#retained[id]!;
    r.kept?.release();
    this.#retained[id] = undefined;
    this.#freeIds.push(id);
  }

  /** Frees every retained buffer (kept ones released). */
  dispose(): void {
    for (let id = 1; id < this.#retained.length; id++) if (this.#retained[id] !== undefined) this.#drop(id);
  }
}
