/**
 * The value bytes of the live entries a replica holds, by slot: the one owner of where a
 * value's bytes are (in the value arena, or a range of a retained batch) and of how long
 * those buffers stay alive. Which slots are held, and which are tombstones, is the
 * kernel index's (src/index/kernel-index.ts): this module knows only "bytes or none".
 *
 *   const values = new SlotValues();
 *   values.set(slot, bytes);                        // copied into the arena
 *   const id = values.retain(batch, batch.bytes, w); values.setRetained(slot, id, off, len);
 *   values.get(slot); values.lengthAt(slot); values.clear(slot);
 *
 * No JS object per written value (docs/design/0014-values-in-linear-memory.md): a value
 * is (buffer id, offset, length) in three typed-array columns. A put's value is copied
 * into the current arena chunk (ARENA_CHUNK bytes, filled in order, never written again
 * once a value is in place); a value too large for it gets a buffer of its own. A
 * per-value `Uint8Array` cost ~250 B on V8 over its bytes; a column entry costs 12. A
 * value read once keeps its view (~90 B) until it changes, as a read key keeps its string.
 *
 * Retained batches: the values of a merged batch stay in that batch's bytes (one buffer
 * per batch, not one copy per value) until read. A retained buffer is a JS buffer or the
 * bytes a decoder keeps for us (`DecodedBatch.retain()`: an opaque handle, released
 * when dropped), whose values are handed out as copies. Invariant: `live` of a buffer
 * (arena chunk or batch) is the sum of the lengths of the slots that reference it; one
 * whose live share falls under RETAIN_MIN_LIVE is compacted (its live values copied into
 * the arena), so overwritten entries cannot pin it for ever. The chunk being filled is
 * checked when it is closed.
 */
import type { DecodedBatch, RetainedBytes } from "../core/record.js";

interface Retained {
  /** A JS buffer (values handed out as views), or null when `kept` holds the bytes. */
  bytes: Uint8Array | null;
  /** Bytes the decoder keeps for us (values handed out as copies). */
  kept: RetainedBytes | null;
  /** Bytes of the buffer values were placed in (what compaction compares `live` with). */
  length: number;
  /** Value bytes still read from the buffer. */
  live: number;
  /** Slots that took a value from it (some may have moved on since): what compaction walks. */
  slots: Uint32Array;
  /** Entries of `slots` in use (an arena chunk's list grows as values are placed). */
  count: number;
  /** An arena chunk (or a large value's own buffer), not a merged batch: not in `retainedBytes`. */
  arena: boolean;
  /**
   * An arena chunk no view was ever built into: once freed, it may be filled again (the
   * spare list). False from the first view handed out: a caller may hold that view, and
   * must never see another value through it.
   */
  reusable: boolean;
}

/**
 * A buffer whose live values fill less than this fraction of it is compacted (its live
 * values copied into the arena), so overwritten entries cannot pin it for ever: the
 * arena holds at most 1 / RETAIN_MIN_LIVE times its live bytes, plus the chunk being filled.
 */
const RETAIN_MIN_LIVE = 0.25;
/** Remote batches are retained whole only when winning values fill at least this much of them; else one copy each. */
export const RETAIN_MIN_SHARE = 0.5;
/**
 * Bytes of one arena chunk. 1 MiB: a chunk is one allocation whose tail pages are not
 * touched until filled, so a small store pays little; 1M values of 100 B take 100 chunks.
 */
export const ARENA_CHUNK = 1 << 20;
/** A value longer than this gets a buffer of its own (a chunk would waste up to its length). */
const ARENA_LARGE = ARENA_CHUNK >> 4;

const EMPTY = new Uint8Array(0);

/**
 * Freed arena chunks that no view was ever built into, zeroed, for any store of this
 * process to fill again (a closed store's, a compacted one's). Why: a chunk's pages cost
 * ~3.4 ms per MB to touch the first time on these VMs (~0.34 µs a 100 B put), while a
 * reused chunk's are resident; the JS heap keeps its pages the same way. Cost: up to
 * SPARE_MAX chunks stay resident while no store needs them.
 */
const spare: ArrayBuffer[] = [];
const SPARE_MAX = 16;

export class SlotValues {
  /** Per slot: buffer id (0 = no bytes: none, or an empty value), offset, length. */
  #refBuf = new Uint32Array(0);
  #refOff = new Uint32Array(0);
  #refLen = new Uint32Array(0);
  /** Buffers (arena chunks, retained batches) by id (id 0 unused); `#freeIds` are ids to reuse. */
  readonly #retained: (Retained | undefined)[] = [undefined];
  readonly #freeIds: number[] = [];
  /** Id of the buffer a batch is being installed from: not dropped or compacted mid-install. */
  #applying = 0;
  /**
   * Views handed out, by slot, filled by reads (as the key-string cache is): a warm read
   * builds nothing. A put-built store holds none; each costs ~90 B once read. Dropped
   * whenever the slot's bytes move or leave (#place, clear).
   */
  readonly #views: (Uint8Array | undefined)[] = [];
  /** Id of the arena chunk being filled (0: none yet), and how far it is filled. */
  #chunk = 0;
  #fill = 0;

  /** Bytes of merged batches kept because values are read from them. */
  get retainedBytes(): number {
    let n = 0;
    for (const r of this.#retained) if (r !== undefined && !r.arena) n += r.length;
    return n;
  }

  /** Bytes of arena chunks and large values' own buffers (filled part; dead values included until compacted). */
  get arenaBytes(): number {
    let n = 0;
    for (let id = 1; id < this.#retained.length; id++) {
      const r = this.#retained[id];
      if (r !== undefined && r.arena) n += id === this.#chunk ? this.#fill : r.length;
    }
    return n;
  }

  /**
   * Per-slot columns cover `slots` slots: grown to it, so stores stay in bounds; doubled
   * at least, so a replay in windows does not copy them once per window, and a put-built
   * store allocates fresh column memory ~2x its final size, not ~3x as growing by half did
   * (fresh pages are what a put paid for here). Pages past the last slot stay untouched.
   */
  ensure(slots: number): void {
    if (this.#refBuf.length >= slots) return;
    const n = Math.max(slots, this.#refBuf.length * 2, 1024);
    const grow = (a: Uint32Array) => { const g = new Uint32Array(n); g.set(a); return g; };
    this.#refBuf = grow(this.#refBuf);
    this.#refOff = grow(this.#refOff);
    this.#refLen = grow(this.#refLen);
  }

  /**
   * The value bytes of a live slot: a view of its buffer (built on the slot's first read,
   * then kept in `#views`), or a copy when the decoder keeps that buffer. A slot with none
   * (a tombstone; the caller asks the index) reads empty. An arena chunk is never written
   * again where a value was placed, so a view stays the value (and keeps its chunk alive
   * while the caller holds it).
   */
  get(slot: number): Uint8Array {
    // Small enough to inline into the read paths; the first read of a slot goes to #load.
    return this.#views[slot] ?? this.#load(slot);
  }

  #load(slot: number): Uint8Array {
    const id = slot < this.#refBuf.length ? this.#refBuf[slot]! : 0;
    if (id === 0) return EMPTY;
    const r = this.#retained[id]!;
    const v = this.#valueOf(r, slot);
    // A copy out of decoder-kept bytes is not cached: it would be a value of its own.
    if (r.kept === null) {
      r.reusable = false; // a view is out: this chunk is never filled again
      // Filled in slot order, no holes: a store read at its end stays a dense array.
      const views = this.#views;
      while (views.length < slot) views.push(undefined);
      views[slot] = v;
    }
    return v;
  }

  #valueOf(r: Retained, slot: number): Uint8Array {
    const off = this.#refOff[slot]!, len = this.#refLen[slot]!;
    if (r.kept !== null) return r.kept.slice(off, len);
    const b = r.bytes!;
    return new Uint8Array(b.buffer, b.byteOffset + off, len);
  }

  /** Byte length of the slot's value (0 when it has none), without reading it. */
  lengthAt(slot: number): number {
    return slot < this.#refBuf.length && this.#refBuf[slot] !== 0 ? this.#refLen[slot]! : 0;
  }

  /** The slot's value is a copy of `value` (in the arena). The slot must hold none (clear first). */
  set(slot: number, value: Uint8Array): void {
    const len = value.length;
    if (len === 0) return; // no bytes: reads as empty (the index knows it is not a tombstone)
    if (slot >= this.#refBuf.length) this.ensure(slot + 1);
    let id: number, off: number;
    if (len > ARENA_LARGE) {
      id = this.#add(value.slice(), null, len, 1, true);
      off = 0;
    } else {
      if (this.#chunk === 0 || this.#fill + len > ARENA_CHUNK) this.#openChunk();
      id = this.#chunk;
      off = this.#fill;
      this.#retained[id]!.bytes!.set(value, off);
      this.#fill += len;
    }
    const r = this.#retained[id]!;
    if (r.count === r.slots.length) { const g = new Uint32Array(r.count * 2); g.set(r.slots); r.slots = g; }
    r.slots[r.count++] = slot;
    this.#place(slot, id, off, len);
  }

  /** The slot's value is `len` bytes at `off` of retained buffer `id`. The slot must hold none. */
  setRetained(slot: number, id: number, off: number, len: number): void {
    this.#place(slot, id, off, len);
  }

  #place(slot: number, id: number, off: number, len: number): void {
    // Only a slot that was read has an entry: a put-built store grows no array (on JSC
    // growing it by one a put cost more than the column stores).
    if (slot < this.#views.length) this.#views[slot] = undefined;
    this.#refBuf[slot] = id;
    this.#refOff[slot] = off;
    this.#refLen[slot] = len;
    this.#retained[id]!.live += len;
  }

  /** The slot's value leaves it (a buffer it was the last reader of is dropped). */
  clear(slot: number): void {
    const id = slot < this.#refBuf.length ? this.#refBuf[slot]! : 0;
    if (id === 0) return;
    if (slot < this.#views.length) this.#views[slot] = undefined;
    this.#refBuf[slot] = 0;
    this.#retained[id]!.live -= this.#refLen[slot]!;
    if (id !== this.#applying && id !== this.#chunk) this.#check(id);
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
    const kept = batch?.retain() ?? null;
    const id = this.#add(kept === null ? bytes : null, kept, bytes.length, 0, false);
    const r = this.#retained[id]!;
    r.slots = slots;
    r.count = slots.length;
    this.#applying = id;
    return id;
  }

  /** The install from buffer `id` is over: a key written twice in the batch left its first value behind already. */
  endApply(id: number): void {
    this.#applying = 0;
    this.#check(id);
  }

  #add(bytes: Uint8Array | null, kept: RetainedBytes | null, length: number, slots: number, arena: boolean): number {
    const id = this.#freeIds.pop() ?? this.#retained.length;
    this.#retained[id] = { bytes, kept, length, live: 0, slots: new Uint32Array(slots), count: 0, arena, reusable: false };
    return id;
  }

  /** A fresh chunk to fill; the one filled so far is closed (its length is what it holds) and checked. */
  #openChunk(): void {
    const old = this.#chunk, filled = this.#fill;
    // Slot list sized for ~100 B values at first; it doubles as values arrive.
    this.#chunk = this.#add(new Uint8Array(spare.pop() ?? new ArrayBuffer(ARENA_CHUNK)), null, ARENA_CHUNK, 1024, true);
    this.#retained[this.#chunk]!.reusable = true;
    this.#fill = 0;
    if (old === 0) return;
    this.#retained[old]!.length = filled;
    // A compaction here fits the fresh chunk: under a quarter of a chunk is live.
    this.#check(old);
  }

  /**
   * Drop a buffer that nothing reads any more; compact one that is mostly garbage (its
   * live values copied into the arena chunk being filled, which is never the one compacted).
   */
  #check(id: number): void {
    const r = this.#retained[id]!;
    if (r.live === 0) {
      this.#drop(id);
    } else if (r.live < r.length * RETAIN_MIN_LIVE) {
      // Out of the table first, its id reused only once copied out: a chunk opened while
      // copying must not take the id that the slots still to copy name.
      this.#retained[id] = undefined;
      for (let k = 0; k < r.count; k++) {
        const slot = r.slots[k]!;
        if (this.#refBuf[slot] !== id) continue;
        const v = this.#valueOf(r, slot);
        this.#refBuf[slot] = 0;
        this.set(slot, v);
      }
      r.kept?.release();
      this.#recycle(r, id);
      this.#freeIds.push(id);
    }
  }

  #drop(id: number): void {
    const r = this.#retained[id]!;
    r.kept?.release();
    this.#retained[id] = undefined;
    this.#recycle(r, id);
    this.#freeIds.push(id);
  }

  /** A freed chunk no view was built into goes to the spare list, zeroed where it was filled. */
  #recycle(r: Retained, id: number): void {
    if (!r.reusable || spare.length >= SPARE_MAX) return;
    const filled = id === this.#chunk ? this.#fill : r.length;
    if (id === this.#chunk) { this.#chunk = 0; this.#fill = 0; }
    const buf = r.bytes!.buffer as ArrayBuffer;
    new Uint8Array(buf, 0, filled).fill(0);
    spare.push(buf);
  }

  /** Frees every buffer (kept ones released). */
  dispose(): void {
    this.#views.length = 0;
    for (let id = 1; id < this.#retained.length; id++) if (this.#retained[id] !== undefined) this.#drop(id);
    this.#chunk = 0;
    this.#fill = 0;
  }
}
