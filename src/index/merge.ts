/**
 * Batched LWW merge against a resident index (docs/ARCHITECTURE.md): the WASM kernel
 * (`createMergeIndex`) and the same algorithm in TS (`createMergeIndexReference`).
 *
 *   const index = createMergeIndex();
 *   const r = index.merge(decodeRecords(bytes, "bare", base), limits);
 *   // admit r.winners (triples entryIndex, slot, PrevState) … then
 *   index.commit();   // or index.rollback() to restore the exact prior state
 *
 * Index layout (identical in assembly/index.ts, in u32 words):
 *
 * | region | element | words |
 * |---|---|---|
 * | slots | 32 B per slot | 0–1 timestamp i64, 2–3 seq u64, 4 node, 5 flags (1 used, 2 tombstone), 6 keyOff, 7 keyLen; a free slot has flags 0 and word 6 = next free + 1 |
 * | table | u64 bucket | 0 slot + 1 (0 = empty), 1 hash32; linear probing, load ≤ 1/2, doubled |
 * | arena | key bytes | appended; compacted by `release` when half is garbage |
 * | undo | 48 B per change | 0 slot, 1 origin (0 existing, 1 free list, 2 new), 2–9 the slot's prior 32 B, 10–11 its prior entry hash |
 * | entry hashes | u64 per slot | summary contribution of the slot (src/index/summary.ts) |
 * | summary | 4096 u64 buckets + 64 u64 group hashes | bucket = XOR of its entries' hashes |
 *
 * Slot ids are dense: the free list (LIFO) is used before new slots.
 */
import type { DecodedBatch } from "../core/record.js";
import { WasmMergeIndex } from "./kernel-index.js";
import { BUCKETS, bucketMask, entryHash, fmix, summarizeBuckets, valueHash } from "./summary.js";
import { ackHalves, clampU32, hi32, i64Halves, joinI64, joinU64, lo32 } from "../core/encoding.js";
import { DESCRIPTOR_WORDS } from "../core/record.js";

export const enum PrevState { Absent = 0, Value = 1, Tombstone = 2 }
export const enum RefuseReason { KeyTooLarge = 1, ValueTooLarge = 2, ClockDrift = 3, Masked = 4, BadKind = 5 }

export interface MergeLimits { maxKeyBytes: number; maxValueBytes: number; maxTimestamp: number }

export interface MergeResult {
  /** Triples (entryIndex, slot, PrevState) for every entry that won, in batch order. */
  readonly winners: Uint32Array;
  /** Pairs (entryIndex, RefuseReason) for entries refused by limits. */
  readonly refused: Uint32Array;
}

export interface SlotMeta { timestamp: number; node: number; seq: number; tombstone: boolean }

/** The range summary (src/index/summary.ts): copies, valid after the call. */
export interface Summary {
  /** 16 hex: hash64 of the group hashes. */
  root: string;
  /** 64 × u64 little-endian group hashes (hash64 of each group's 64 buckets). */
  groups: Uint8Array;
  /** 4096 × u64 little-endian bucket hashes. */
  buckets: Uint8Array;
}

export interface MergeIndex {
  /** Number of slots in use (live + tombstones). */
  readonly size: number;
  /**
   * Decide every entry of `batch` (kinds 0/1; others refused BadKind) in order; apply
   * winners tentatively. `skip[i] !== 0` refuses entry i with Masked. Must be followed
   * by commit() or rollback() before the next merge.
   */
  merge(batch: DecodedBatch, limits: MergeLimits, skip?: Uint8Array): MergeResult;
  /**
   * merge() committed as it goes, with no undo records: for a batch nothing can refuse
   * afterwards (our own log replaying). Saves the undo log's memory and writes.
   */
  mergeFinal(batch: DecodedBatch, limits: MergeLimits): MergeResult;
  /** Room for `records` more keys of `keyBytes` bytes in all, grown at once (a replay in windows). A hint. */
  reserve(records: number, keyBytes: number): void;
  commit(): void;
  rollback(): void;
  /**
   * Decide one entry now and apply it if it wins (local writes, WAL replay of a single
   * record). No commit/rollback. Returns null when the resident version is not older.
   */
  upsert(key: string | Uint8Array, timestamp: number, node: number, seq: number, tombstone: boolean, value?: Uint8Array | null): { slot: number; prev: PrevState } | null;
  /**
   * The range summary, maintained in O(1) per change (`value` of upsert and the values
   * of merged batches feed it; an upsert without `value` hashes an empty value).
   */
  summary(): Summary;
  /** Only the root: cheaper than summary() (no 32 KiB copy). */
  summaryRoot(): string;
  /** Used slots whose key falls in one of `buckets`, in slot order. */
  selectBuckets(buckets: Iterable<number>): Uint32Array;
  /** Slot of a key, or -1. */
  find(key: Uint8Array | string): number;
  meta(slot: number): SlotMeta;
  /** meta() without an object: out[0] timestamp, out[1] node, out[2] seq, out[3] 1 if tombstone. */
  metaInto(slot: number, out: Float64Array): void;
  keyBytes(slot: number): Uint8Array;   // a copy
  /**
   * The key's bytes without a copy: a view valid only until the next call on any index
   * (WASM memory may grow and move). For walks such as the digest; copy what you keep.
   */
  keyView(slot: number): Uint8Array;
  /** Drop a slot (tombstone GC); its id may be reused. */
  release(slot: number): void;
  /** Every slot in use, in slot order (a walk of the slot table; no key is read). */
  usedSlots(): Uint32Array;
  /** Slots whose seq > acks.get(node) ?? 0, in slot order. */
  selectDelta(acks: ReadonlyMap<number, number>): Uint32Array;
  /** Highest seq among slots authored by `node`, or 0. */
  maxSeqOf(node: number): number;
  dispose(): void;
}

/**
 * An index in the process's WASM kernel (one instance, one handle per index).
 * `summary: false` (benchmarks only) skips the range summary: its root means nothing.
 */
export function createMergeIndex(opts?: { summary?: boolean }): MergeIndex {
  return new WasmMergeIndex(opts);
}

export function createMergeIndexReference(): MergeIndex {
  return new ReferenceMergeIndex();
}

// ---------------------------------------------------------------------------------
// shared constants (mirrored in assembly/index.ts)

export const SLOT_WORDS = 8;
export const UNDO_WORDS = 12;
export const FLAG_USED = 1;
export const FLAG_TOMBSTONE = 2;
const ORIGIN_EXISTING = 0, ORIGIN_FREE = 1, ORIGIN_NEW = 2;
/** Arena compaction: when at least this much and at least half of it is garbage. */
export const ARENA_COMPACT_MIN = 1024;

/** murmur3_32 (seed 0x9747b28c ^ len) over key bytes; mirrored by the kernel. */
export function hashKey(b: Uint8Array, off: number, len: number): number {
  let h = 0x9747b28c ^ len;
  let i = off;
  const end4 = off + (len & ~3);
  for (; i < end4; i += 4) {
    let k = b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = len & 3;
  if (tail !== 0) {
    let k = b[i]!;
    if (tail > 1) k |= b[i + 1]! << 8;
    if (tail > 2) k |= b[i + 2]! << 16;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  return fmix(h ^ len);
}

const textEncoder = new TextEncoder();
const EMPTY = new Uint32Array(0);

/** Slots whose FLAG_USED is set in a slot table at word `base` with `high` slots (`size` of them used). */
export function usedSlotsOf(words: Uint32Array, base: number, high: number, size: number): Uint32Array {
  const out = new Uint32Array(size);
  let n = 0;
  for (let slot = 0, w = base + 5; slot < high && n < size; slot++, w += SLOT_WORDS) {
    if ((words[w]! & FLAG_USED) !== 0) out[n++] = slot;
  }
  return n === size ? out : out.subarray(0, n);
}

// ---------------------------------------------------------------------------------
// reference twin

/**
 * The kernel's algorithm over JS typed arrays: the oracle for the property tests and
 * the fallback where WASM is unavailable. Same slot ids, same decisions, same metadata.
 */
class ReferenceMergeIndex implements MergeIndex {
  #slots = new Uint32Array(16 * SLOT_WORDS);
  #high = 0;
  #size = 0;
  #freeHead = 0; // slot + 1; 0 = none
  #table = new Uint32Array(32 * 2);
  #mask = 31;
  #arena = new Uint8Array(256);
  #arenaLen = 0;
  #waste = 0;
  #undo = new Uint32Array(16 * UNDO_WORDS);
  #undoLen = 0;
  /** Entry hash per slot as (laneB, laneA) words, and the 4096 buckets, as the kernel lays them out. */
  #ehash = new Uint32Array(16 * 2);
  #sum = new Uint32Array(BUCKETS * 2);
  #pending = false;
  #saved = { arenaLen: 0, waste: 0 };
  #winners: Uint32Array = new Uint32Array(48);
  #refused: Uint32Array = new Uint32Array(16);
  #disposed = false;

  get size(): number {
    this.#live();
    return this.#size;
  }

  #live(): void {
    if (this.#disposed) throw new Error("MergeIndex used after dispose()");
  }

  #idle(what: string): void {
    this.#live();
    if (this.#pending) throw new Error(`MergeIndex.${what}() while a merge is pending: call commit() or rollback() first`);
  }

  // ---- hash table

  #lookup(src: Uint8Array, off: number, len: number, h: number): number {
    const t = this.#table, mask = this.#mask, slots = this.#slots, arena = this.#arena;
    for (let b = h & mask; ; b = (b + 1) & mask) {
      const ref = t[b * 2]!;
      if (ref === 0) return -1;
      if (t[b * 2 + 1] !== h) continue;
      const s = (ref - 1) * SLOT_WORDS;
      if (slots[s + 7] !== len) continue;
      const ko = slots[s + 6]!;
      let j = 0;
      while (j < len && arena[ko + j] === src[off + j]) j++;
      if (j === len) return ref - 1;
    }
  }

  #insert(slot: number, h: number): void {
    if ((this.#size + 1) * 2 > this.#mask + 1) this.#growTable();
    const t = this.#table, mask = this.#mask;
    let b = h & mask;
    while (t[b * 2] !== 0) b = (b + 1) & mask;
    t[b * 2] = slot + 1;
    t[b * 2 + 1] = h;
  }

  #growTable(): void {
    const old = this.#table;
    const cap = (this.#mask + 1) * 2;
    const t = new Uint32Array(cap * 2);
    const mask = cap - 1;
    for (let i = 0; i < old.length; i += 2) {
      if (old[i] === 0) continue;
      let b = old[i + 1]! & mask;
      while (t[b * 2] !== 0) b = (b + 1) & mask;
      t[b * 2] = old[i]!;
      t[b * 2 + 1] = old[i + 1]!;
    }
    this.#table = t;
    this.#mask = mask;
  }

  /** Backward-shift deletion: linear probing stays tombstone-free. */
  #remove(slot: number): void {
    const s = slot * SLOT_WORDS;
    const h = hashKey(this.#arena, this.#slots[s + 6]!, this.#slots[s + 7]!);
    const t = this.#table, mask = this.#mask;
    let i = h & mask;
    while (t[i * 2] !== slot + 1) i = (i + 1) & mask;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      if (t[j * 2] === 0) break;
      const k = t[j * 2 + 1]! & mask;
      // The entry at j may move to the hole at i unless its home k lies cyclically in (i, j].
      if (i <= j ? i < k && k <= j : i < k || k <= j) continue;
      t[i * 2] = t[j * 2]!;
      t[i * 2 + 1] = t[j * 2 + 1]!;
      i = j;
    }
    t[i * 2] = 0;
    t[i * 2 + 1] = 0;
  }

  // ---- slots, arena, undo

  /** Takes a slot id (free list first); does not touch its words. Returns the origin in #origin. */
  #origin = 0;
  #allocSlot(): number {
    if (this.#freeHead !== 0) {
      const slot = this.#freeHead - 1;
      this.#freeHead = this.#slots[slot * SLOT_WORDS + 6]!;
      this.#origin = ORIGIN_FREE;
      return slot;
    }
    const slot = this.#high++;
    if (this.#high * SLOT_WORDS > this.#slots.length) {
      const g = new Uint32Array(this.#slots.length * 2);
      g.set(this.#slots);
      this.#slots = g;
      const e = new Uint32Array(this.#ehash.length * 2);
      e.set(this.#ehash);
      this.#ehash = e;
    }
    this.#origin = ORIGIN_NEW;
    return slot;
  }

  #appendKey(src: Uint8Array, off: number, len: number): number {
    const at = this.#arenaLen;
    if (at + len > this.#arena.length) {
      const g = new Uint8Array(Math.max(this.#arena.length * 2, at + len));
      g.set(this.#arena.subarray(0, at));
      this.#arena = g;
    }
    this.#arena.set(src.subarray(off, off + len), at);
    this.#arenaLen = at + len;
    return at;
  }

  #pushUndo(slot: number, origin: number): void {
    const at = this.#undoLen * UNDO_WORDS;
    if (at + UNDO_WORDS > this.#undo.length) {
      const g = new Uint32Array(this.#undo.length * 2);
      g.set(this.#undo);
      this.#undo = g;
    }
    const u = this.#undo, s = slot * SLOT_WORDS, slots = this.#slots;
    u[at] = slot;
    u[at + 1] = origin;
    for (let k = 0; k < SLOT_WORDS; k++) u[at + 2 + k] = slots[s + k]!;
    u[at + 10] = this.#ehash[slot * 2]!;
    u[at + 11] = this.#ehash[slot * 2 + 1]!;
    this.#undoLen++;
  }

  #create(src: Uint8Array, off: number, len: number, h: number, undo: boolean): number {
    const slot = this.#allocSlot();
    if (undo) this.#pushUndo(slot, this.#origin);
    const ko = this.#appendKey(src, off, len);
    const s = slot * SLOT_WORDS;
    this.#slots[s + 6] = ko;
    this.#slots[s + 7] = len;
    this.#insert(slot, h);
    this.#size++;
    return slot;
  }

  // ---- summary

  /** XORs a (lo, hi) entry hash into the bucket of `keyHash`: adding and removing alike. */
  #toggle(keyHash: number, lo: number, hi: number): void {
    const b = (keyHash >>> 20) * 2;
    this.#sum[b] = this.#sum[b]! ^ lo;
    this.#sum[b + 1] = this.#sum[b + 1]! ^ hi;
  }

  #slotKeyHash(slot: number): number {
    const s = slot * SLOT_WORDS;
    return hashKey(this.#arena, this.#slots[s + 6]!, this.#slots[s + 7]!);
  }

  /** The slot's stamp and summary contribution (old hash out when `existed`, new in). */
  #apply(slot: number, keyHash: number, existed: boolean, key: Uint8Array, keyOff: number, keyLen: number,
    tsLo: number, tsHi: number, seqLo: number, seqHi: number, node: number, tombstone: boolean,
    val: Uint8Array | null, valOff: number, valLen: number): void {
    const e = this.#ehash;
    if (existed) this.#toggle(keyHash, e[slot * 2]!, e[slot * 2 + 1]!);
    const [a, b] = entryHash(keyHash, keyLen, tsLo, tsHi, node, seqLo, seqHi, tombstone, tombstone ? 0 : valueHash(val ?? key, valOff, valLen), valLen);
    this.#toggle(keyHash, b, a);
    e[slot * 2] = b;
    e[slot * 2 + 1] = a;
    const slots = this.#slots, s = slot * SLOT_WORDS;
    slots[s] = tsLo;
    slots[s + 1] = tsHi;
    slots[s + 2] = seqLo;
    slots[s + 3] = seqHi;
    slots[s + 4] = node;
    slots[s + 5] = tombstone ? FLAG_USED | FLAG_TOMBSTONE : FLAG_USED;
  }

  summary(): Summary {
    this.#live();
    const buckets = new Uint8Array(this.#sum.buffer.slice(0));
    return { ...summarizeBuckets(buckets), buckets };
  }

  summaryRoot(): string {
    return this.summary().root;
  }

  selectBuckets(buckets: Iterable<number>): Uint32Array {
    this.#live();
    const mask = bucketMask(buckets);
    const slots = this.#slots;
    const out: number[] = [];
    for (let slot = 0; slot < this.#high; slot++) {
      if ((slots[slot * SLOT_WORDS + 5]! & FLAG_USED) === 0) continue;
      const b = this.#slotKeyHash(slot) >>> 20;
      if (mask[b >>> 3]! & (1 << (b & 7))) out.push(slot);
    }
    return Uint32Array.from(out);
  }

  // ---- merge

  reserve(): void {
    // A Map grows as it goes; nothing to reserve.
  }

  mergeFinal(batch: DecodedBatch, limits: MergeLimits): MergeResult {
    return this.#merge(batch, limits, undefined, true);
  }

  merge(batch: DecodedBatch, limits: MergeLimits, skip?: Uint8Array): MergeResult {
    return this.#merge(batch, limits, skip, false);
  }

  #merge(batch: DecodedBatch, limits: MergeLimits, skip: Uint8Array | undefined, final: boolean): MergeResult {
    this.#idle("merge");
    const d = batch.words;
    const src = batch.bytes;
    const n = batch.count;
    const maxKey = clampU32(limits.maxKeyBytes), maxVal = clampU32(limits.maxValueBytes);
    const [mLo, mHi] = i64Halves(limits.maxTimestamp);
    this.#saved.arenaLen = this.#arenaLen;
    this.#saved.waste = this.#waste;
    this.#undoLen = 0;
    this.#pending = !final;
    let nw = 0, nr = 0;
    for (let i = 0; i < n; i++) {
      const w = i * DESCRIPTOR_WORDS;
      let refuse = 0;
      const kind = d[w + 5]!;
      const keyLen = d[w + 7]!;
      const tsHi = d[w + 1]! | 0;
      if (skip !== undefined && i < skip.length && skip[i] !== 0) refuse = RefuseReason.Masked;
      else if (kind > 1) refuse = RefuseReason.BadKind;
      else if (keyLen > maxKey) refuse = RefuseReason.KeyTooLarge;
      else if (kind === 1 && d[w + 9]! > maxVal) refuse = RefuseReason.ValueTooLarge;
      else if (tsHi > mHi || (tsHi === mHi && d[w]! > mLo)) refuse = RefuseReason.ClockDrift;
      if (refuse !== 0) {
        if (nr + 2 > this.#refused.length) this.#refused = grow32(this.#refused);
        this.#refused[nr++] = i;
        this.#refused[nr++] = refuse;
        continue;
      }
      const keyOff = d[w + 6]!;
      const h = hashKey(src, keyOff, keyLen);
      let slot = this.#lookup(src, keyOff, keyLen, h);
      let prev: PrevState;
      if (slot >= 0) {
        const slots = this.#slots, s = slot * SLOT_WORDS;
        const rHi = slots[s + 1]! | 0;
        if (tsHi !== rHi) { if (tsHi < rHi) continue; }
        else if (d[w]! !== slots[s]) { if (d[w]! < slots[s]!) continue; }
        else if (d[w + 4] !== slots[s + 4]) { if (d[w + 4]! < slots[s + 4]!) continue; }
        else if (d[w + 3] !== slots[s + 3]) { if (d[w + 3]! < slots[s + 3]!) continue; }
        else if (!(d[w + 2]! > slots[s + 2]!)) continue;
        if (!final) this.#pushUndo(slot, ORIGIN_EXISTING);
        prev = slots[s + 5]! & FLAG_TOMBSTONE ? PrevState.Tombstone : PrevState.Value;
      } else {
        slot = this.#create(src, keyOff, keyLen, h, !final);
        prev = PrevState.Absent;
      }
      this.#apply(slot, h, prev !== PrevState.Absent, src, keyOff, keyLen, d[w]!, d[w + 1]!, d[w + 2]!, d[w + 3]!, d[w + 4]!, kind === 0, src, d[w + 8]!, d[w + 9]!);
      if (nw + 3 > this.#winners.length) this.#winners = grow32(this.#winners);
      this.#winners[nw++] = i;
      this.#winners[nw++] = slot;
      this.#winners[nw++] = prev;
    }
    return {
      winners: nw === 0 ? EMPTY : this.#winners.slice(0, nw),
      refused: nr === 0 ? EMPTY : this.#refused.slice(0, nr),
    };
  }

  commit(): void {
    this.#live();
    this.#pending = false;
    this.#undoLen = 0;
  }

  rollback(): void {
    this.#live();
    if (!this.#pending) return;
    const u = this.#undo;
    for (let r = this.#undoLen - 1; r >= 0; r--) {
      const at = r * UNDO_WORDS;
      const slot = u[at]!, origin = u[at + 1]!;
      // The slot is in use now (stamped after this record): current hash out, prior back in.
      const kh = this.#slotKeyHash(slot);
      this.#toggle(kh, this.#ehash[slot * 2]!, this.#ehash[slot * 2 + 1]!);
      if (origin !== ORIGIN_EXISTING) {
        this.#remove(slot);
        this.#size--;
        if (origin === ORIGIN_FREE) this.#freeHead = slot + 1;
        else this.#high--;
      } else {
        this.#toggle(kh, u[at + 10]!, u[at + 11]!);
      }
      const s = slot * SLOT_WORDS;
      for (let k = 0; k < SLOT_WORDS; k++) this.#slots[s + k] = u[at + 2 + k]!;
      this.#ehash[slot * 2] = u[at + 10]!;
      this.#ehash[slot * 2 + 1] = u[at + 11]!;
    }
    this.#arenaLen = this.#saved.arenaLen;
    this.#waste = this.#saved.waste;
    this.#undoLen = 0;
    this.#pending = false;
  }

  upsert(key: string | Uint8Array, timestamp: number, node: number, seq: number, tombstone: boolean, value?: Uint8Array | null): { slot: number; prev: PrevState } | null {
    this.#idle("upsert");
    const kb = typeof key === "string" ? textEncoder.encode(key) : key;
    const h = hashKey(kb, 0, kb.length);
    let slot = this.#lookup(kb, 0, kb.length, h);
    let prev: PrevState;
    const tsLo = lo32(timestamp), tsHi = hi32(timestamp), seqLo = lo32(seq), seqHi = hi32(seq) >>> 0;
    node >>>= 0;
    if (slot >= 0) {
      const slots = this.#slots, s = slot * SLOT_WORDS;
      const rHi = slots[s + 1]! | 0;
      if (tsHi !== rHi) { if (tsHi < rHi) return null; }
      else if (tsLo !== slots[s]) { if (tsLo < slots[s]!) return null; }
      else if (node !== slots[s + 4]) { if (node < slots[s + 4]!) return null; }
      else if (seqHi !== slots[s + 3]) { if (seqHi < slots[s + 3]!) return null; }
      else if (!(seqLo > slots[s + 2]!)) return null;
      prev = slots[s + 5]! & FLAG_TOMBSTONE ? PrevState.Tombstone : PrevState.Value;
    } else {
      slot = this.#create(kb, 0, kb.length, h, false);
      prev = PrevState.Absent;
    }
    this.#apply(slot, h, prev !== PrevState.Absent, kb, 0, kb.length, tsLo, tsHi, seqLo, seqHi, node, tombstone, value ?? null, 0, value?.length ?? 0);
    return { slot, prev };
  }

  find(key: Uint8Array | string): number {
    this.#live();
    const kb = typeof key === "string" ? textEncoder.encode(key) : key;
    return this.#lookup(kb, 0, kb.length, hashKey(kb, 0, kb.length));
  }

  #usedSlot(slot: number): number {
    this.#live();
    if (!(slot >= 0 && slot < this.#high) || (slot | 0) !== slot) throw new RangeError(`slot ${slot} out of range`);
    const s = slot * SLOT_WORDS;
    if ((this.#slots[s + 5]! & FLAG_USED) === 0) throw new RangeError(`slot ${slot} is not in use`);
    return s;
  }

  meta(slot: number): SlotMeta {
    const s = this.#usedSlot(slot), m = this.#slots;
    return {
      timestamp: joinI64(m[s]!, m[s + 1]!),
      node: m[s + 4]!,
      seq: joinU64(m[s + 2]!, m[s + 3]!),
      tombstone: (m[s + 5]! & FLAG_TOMBSTONE) !== 0,
    };
  }

  metaInto(slot: number, out: Float64Array): void {
    const s = this.#usedSlot(slot), m = this.#slots;
    out[0] = joinI64(m[s]!, m[s + 1]!);
    out[1] = m[s + 4]!;
    out[2] = joinU64(m[s + 2]!, m[s + 3]!);
    out[3] = (m[s + 5]! & FLAG_TOMBSTONE) !== 0 ? 1 : 0;
  }

  keyBytes(slot: number): Uint8Array {
    return this.keyView(slot).slice();
  }

  usedSlots(): Uint32Array {
    this.#live();
    return usedSlotsOf(this.#slots, 0, this.#high, this.#size);
  }

  keyView(slot: number): Uint8Array {
    const s = this.#usedSlot(slot);
    const off = this.#slots[s + 6]!;
    return this.#arena.subarray(off, off + this.#slots[s + 7]!);
  }

  release(slot: number): void {
    this.#idle("release");
    const s = this.#usedSlot(slot);
    this.#toggle(this.#slotKeyHash(slot), this.#ehash[slot * 2]!, this.#ehash[slot * 2 + 1]!);
    this.#ehash[slot * 2] = 0;
    this.#ehash[slot * 2 + 1] = 0;
    this.#remove(slot);
    this.#waste += this.#slots[s + 7]!;
    this.#size--;
    this.#slots.fill(0, s, s + SLOT_WORDS);
    this.#slots[s + 6] = this.#freeHead;
    this.#freeHead = slot + 1;
    if (this.#waste >= ARENA_COMPACT_MIN && this.#waste * 2 >= this.#arenaLen) this.#compact();
  }

  /** Rewrites the arena with live keys only, in slot order. O(arena). */
  #compact(): void {
    const liveBytes = this.#arenaLen - this.#waste;
    const next = new Uint8Array(Math.max(256, liveBytes * 2));
    const slots = this.#slots, old = this.#arena;
    let at = 0;
    for (let slot = 0; slot < this.#high; slot++) {
      const s = slot * SLOT_WORDS;
      if ((slots[s + 5]! & FLAG_USED) === 0) continue;
      const off = slots[s + 6]!, len = slots[s + 7]!;
      next.set(old.subarray(off, off + len), at);
      slots[s + 6] = at;
      at += len;
    }
    this.#arena = next;
    this.#arenaLen = at;
    this.#waste = 0;
  }

  selectDelta(acks: ReadonlyMap<number, number>): Uint32Array {
    this.#live();
    const slots = this.#slots;
    let out: Uint32Array = new Uint32Array(64);
    let n = 0;
    let lastNode = -1, aLo = 0, aHi = 0;
    for (let slot = 0; slot < this.#high; slot++) {
      const s = slot * SLOT_WORDS;
      if ((slots[s + 5]! & FLAG_USED) === 0) continue;
      const node = slots[s + 4]!;
      if (node !== lastNode) {
        lastNode = node;
        [aLo, aHi] = ackHalves(acks.get(node) ?? 0);
      }
      const sHi = slots[s + 3]!;
      if (sHi > aHi || (sHi === aHi && slots[s + 2]! > aLo)) {
        if (n === out.length) out = grow32(out);
        out[n++] = slot;
      }
    }
    return out.slice(0, n);
  }

  maxSeqOf(node: number): number {
    this.#live();
    node >>>= 0;
    const slots = this.#slots;
    let best = 0;
    for (let slot = 0; slot < this.#high; slot++) {
      const s = slot * SLOT_WORDS;
      if ((slots[s + 5]! & FLAG_USED) === 0 || slots[s + 4] !== node) continue;
      const seq = joinU64(slots[s + 2]!, slots[s + 3]!);
      if (seq > best) best = seq;
    }
    return best;
  }

  dispose(): void {
    this.#disposed = true;
    this.#slots = new Uint32Array(0);
    this.#table = new Uint32Array(0);
    this.#arena = new Uint8Array(0);
    this.#undo = new Uint32Array(0);
  }
}

function grow32(a: Uint32Array): Uint32Array<ArrayBuffer> {
  const g = new Uint32Array(a.length * 2);
  g.set(a);
  return g;
}

