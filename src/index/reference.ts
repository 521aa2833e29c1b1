/**
 * The merge index in TS (src/index/merge-index.ts: the contract and the layout): the
 * kernel's algorithm (assembly/merge.ts, assembly/index.ts) over JS typed arrays, slot for
 * slot, the oracle the property tests pit the kernel against. Stamps are compared by
 * compareStampHalves (src/core/stamp.ts), the one LWW order.
 *
 *   const twin = createMergeIndexReference();
 *   twin.merge(decodeRecordsReference(bytes, "bare", 0), limits); twin.commit();
 */
import * as record from "../core/record.js";
import type { DecodedBatch } from "../core/record.js";
import * as stamp from "../core/stamp.js";
import { ackHalves, clampU32, hi32, i64Halves, joinU64, lo32, toBytes } from "../core/encoding.js";
import { BUCKETS, bucketMask, entryHash, summarizeBuckets, valueHash } from "./summary.js";
import * as layout from "./merge-index.js";
import { EMPTY, PrevState, RefuseReason, slotMetaAt, slotMetaInto, usedSlotsOf, type MergeIndex, type MergeLimits, type MergeResult, type SlotMeta, type Summary } from "./merge-index.js";

// V8 folds a module's own consts in optimized code, not imported bindings: the hot loops
// read these module-local copies (measured on Node 20: the merge ran 10–20 % slower
// reading the imports, as did the record twin's decode).
const { D_KEY_LEN, D_KEY_OFF, D_KIND, D_NODE, D_SEQ_HI, D_SEQ_LO, D_TS_HI, D_TS_LO, D_VAL_LEN, D_VAL_OFF, DESCRIPTOR_WORDS } = record;
const { ARENA_COMPACT_MIN, FLAG_TOMBSTONE, FLAG_USED, ORIGIN_EXISTING, ORIGIN_FREE, ORIGIN_NEW, SLOT_WORDS, UNDO_WORDS, hashKey } = layout;
const { S_FLAGS, S_KEY_LEN, S_KEY_OFF, S_NEXT_FREE, S_NODE, S_SEQ_HI, S_SEQ_LO, S_TS_HI, S_TS_LO, U_EHASH, U_ORIGIN, U_PRIOR, U_SLOT } = layout;
const { compareStampHalves } = stamp;
const KIND_VALUE = record.RecordKind.Value, KIND_TOMBSTONE = record.RecordKind.Tombstone, KIND_EXPIRING = record.RecordKind.Expiring;

/** A merge index in TS (tests and benchmarks; the product uses the kernel's). */
export function createMergeIndexReference(): MergeIndex {
  return new ReferenceMergeIndex();
}

/** Same slot ids, same decisions, same metadata, same summary as the kernel's. */
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
      if (slots[s + S_KEY_LEN] !== len) continue;
      const ko = slots[s + S_KEY_OFF]!;
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
    const h = hashKey(this.#arena, this.#slots[s + S_KEY_OFF]!, this.#slots[s + S_KEY_LEN]!);
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
      this.#freeHead = this.#slots[slot * SLOT_WORDS + S_NEXT_FREE]!;
      this.#origin = ORIGIN_FREE;
      return slot;
    }
    const slot = this.#high++;
    if (this.#high * SLOT_WORDS > this.#slots.length) {
      this.#slots = grow32(this.#slots);
      this.#ehash = grow32(this.#ehash);
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
    if (at + UNDO_WORDS > this.#undo.length) this.#undo = grow32(this.#undo);
    const u = this.#undo, s = slot * SLOT_WORDS, slots = this.#slots;
    u[at + U_SLOT] = slot;
    u[at + U_ORIGIN] = origin;
    for (let k = 0; k < SLOT_WORDS; k++) u[at + U_PRIOR + k] = slots[s + k]!;
    u[at + U_EHASH] = this.#ehash[slot * 2]!;
    u[at + U_EHASH + 1] = this.#ehash[slot * 2 + 1]!;
    this.#undoLen++;
  }

  #create(src: Uint8Array, off: number, len: number, h: number, undo: boolean): number {
    const slot = this.#allocSlot();
    if (undo) this.#pushUndo(slot, this.#origin);
    const ko = this.#appendKey(src, off, len);
    const s = slot * SLOT_WORDS;
    this.#slots[s + S_KEY_OFF] = ko;
    this.#slots[s + S_KEY_LEN] = len;
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
    return hashKey(this.#arena, this.#slots[s + S_KEY_OFF]!, this.#slots[s + S_KEY_LEN]!);
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
    slots[s + S_TS_LO] = tsLo;
    slots[s + S_TS_HI] = tsHi;
    slots[s + S_SEQ_LO] = seqLo;
    slots[s + S_SEQ_HI] = seqHi;
    slots[s + S_NODE] = node;
    slots[s + S_FLAGS] = tombstone ? FLAG_USED | FLAG_TOMBSTONE : FLAG_USED;
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
      if ((slots[slot * SLOT_WORDS + S_FLAGS]! & FLAG_USED) === 0) continue;
      const b = this.#slotKeyHash(slot) >>> 20;
      if (mask[b >>> 3]! & (1 << (b & 7))) out.push(slot);
    }
    return Uint32Array.from(out);
  }

  // ---- merge

  reserve(): void {} // typed arrays grow as they go: nothing to reserve

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
      const kind = d[w + D_KIND]!;
      const keyLen = d[w + D_KEY_LEN]!;
      const tsHi = d[w + D_TS_HI]! | 0;
      if (skip !== undefined && i < skip.length && skip[i] !== 0) refuse = RefuseReason.Masked;
      else if (kind > KIND_VALUE && kind !== KIND_EXPIRING) refuse = RefuseReason.BadKind;
      else if (keyLen > maxKey) refuse = RefuseReason.KeyTooLarge;
      else if (kind !== KIND_TOMBSTONE && d[w + D_VAL_LEN]! > maxVal + (kind === KIND_EXPIRING ? 8 : 0)) refuse = RefuseReason.ValueTooLarge;
      else if (tsHi > mHi || (tsHi === mHi && d[w + D_TS_LO]! > mLo)) refuse = RefuseReason.ClockDrift;
      if (refuse !== 0) {
        if (nr + 2 > this.#refused.length) this.#refused = grow32(this.#refused);
        this.#refused[nr++] = i;
        this.#refused[nr++] = refuse;
        continue;
      }
      const keyOff = d[w + D_KEY_OFF]!;
      const h = hashKey(src, keyOff, keyLen);
      let slot = this.#lookup(src, keyOff, keyLen, h);
      let prev: PrevState;
      if (slot >= 0) {
        const slots = this.#slots, s = slot * SLOT_WORDS;
        if (compareStampHalves(d[w + D_TS_LO]!, tsHi, d[w + D_NODE]!, d[w + D_SEQ_LO]!, d[w + D_SEQ_HI]!,
          slots[s + S_TS_LO]!, slots[s + S_TS_HI]! | 0, slots[s + S_NODE]!, slots[s + S_SEQ_LO]!, slots[s + S_SEQ_HI]!) <= 0) continue;
        if (!final) this.#pushUndo(slot, ORIGIN_EXISTING);
        prev = slots[s + S_FLAGS]! & FLAG_TOMBSTONE ? PrevState.Tombstone : PrevState.Value;
      } else {
        slot = this.#create(src, keyOff, keyLen, h, !final);
        prev = PrevState.Absent;
      }
      this.#apply(slot, h, prev !== PrevState.Absent, src, keyOff, keyLen, d[w + D_TS_LO]!, d[w + D_TS_HI]!, d[w + D_SEQ_LO]!, d[w + D_SEQ_HI]!, d[w + D_NODE]!,
        kind === KIND_TOMBSTONE, src, d[w + D_VAL_OFF]!, d[w + D_VAL_LEN]!);
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
      const slot = u[at + U_SLOT]!, origin = u[at + U_ORIGIN]!;
      // The slot is in use now (stamped after this record): current hash out, prior back in.
      const kh = this.#slotKeyHash(slot);
      this.#toggle(kh, this.#ehash[slot * 2]!, this.#ehash[slot * 2 + 1]!);
      if (origin !== ORIGIN_EXISTING) {
        this.#remove(slot);
        this.#size--;
        if (origin === ORIGIN_FREE) this.#freeHead = slot + 1;
        else this.#high--;
      } else {
        this.#toggle(kh, u[at + U_EHASH]!, u[at + U_EHASH + 1]!);
      }
      const s = slot * SLOT_WORDS;
      for (let k = 0; k < SLOT_WORDS; k++) this.#slots[s + k] = u[at + U_PRIOR + k]!;
      this.#ehash[slot * 2] = u[at + U_EHASH]!;
      this.#ehash[slot * 2 + 1] = u[at + U_EHASH + 1]!;
    }
    this.#arenaLen = this.#saved.arenaLen;
    this.#waste = this.#saved.waste;
    this.#undoLen = 0;
    this.#pending = false;
  }

  upsert(key: string | Uint8Array, timestamp: number, node: number, seq: number, tombstone: boolean, value?: Uint8Array | null): { slot: number; prev: PrevState } | null {
    this.#idle("upsert");
    const kb = toBytes(key);
    const h = hashKey(kb, 0, kb.length);
    let slot = this.#lookup(kb, 0, kb.length, h);
    let prev: PrevState;
    const tsLo = lo32(timestamp), tsHi = hi32(timestamp), seqLo = lo32(seq), seqHi = hi32(seq) >>> 0;
    node >>>= 0;
    if (slot >= 0) {
      const slots = this.#slots, s = slot * SLOT_WORDS;
      if (compareStampHalves(tsLo, tsHi, node, seqLo, seqHi,
        slots[s + S_TS_LO]!, slots[s + S_TS_HI]! | 0, slots[s + S_NODE]!, slots[s + S_SEQ_LO]!, slots[s + S_SEQ_HI]!) <= 0) return null;
      prev = slots[s + S_FLAGS]! & FLAG_TOMBSTONE ? PrevState.Tombstone : PrevState.Value;
    } else {
      slot = this.#create(kb, 0, kb.length, h, false);
      prev = PrevState.Absent;
    }
    this.#apply(slot, h, prev !== PrevState.Absent, kb, 0, kb.length, tsLo, tsHi, seqLo, seqHi, node, tombstone, value ?? null, 0, value?.length ?? 0);
    return { slot, prev };
  }

  find(key: Uint8Array | string): number {
    this.#live();
    const kb = toBytes(key);
    return this.#lookup(kb, 0, kb.length, hashKey(kb, 0, kb.length));
  }

  #usedSlot(slot: number): number {
    this.#live();
    if (!(slot >= 0 && slot < this.#high) || (slot | 0) !== slot) throw new RangeError(`slot ${slot} out of range`);
    const s = slot * SLOT_WORDS;
    if ((this.#slots[s + S_FLAGS]! & FLAG_USED) === 0) throw new RangeError(`slot ${slot} is not in use`);
    return s;
  }

  meta(slot: number): SlotMeta {
    return slotMetaAt(this.#slots, this.#usedSlot(slot));
  }

  metaInto(slot: number, out: Float64Array): void {
    slotMetaInto(this.#slots, this.#usedSlot(slot), out);
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
    const off = this.#slots[s + S_KEY_OFF]!;
    return this.#arena.subarray(off, off + this.#slots[s + S_KEY_LEN]!);
  }

  release(slot: number): void {
    this.#idle("release");
    const s = this.#usedSlot(slot);
    this.#toggle(this.#slotKeyHash(slot), this.#ehash[slot * 2]!, this.#ehash[slot * 2 + 1]!);
    this.#ehash[slot * 2] = 0;
    this.#ehash[slot * 2 + 1] = 0;
    this.#remove(slot);
    this.#waste += this.#slots[s + S_KEY_LEN]!;
    this.#size--;
    this.#slots.fill(0, s, s + SLOT_WORDS);
    this.#slots[s + S_NEXT_FREE] = this.#freeHead;
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
      if ((slots[s + S_FLAGS]! & FLAG_USED) === 0) continue;
      const off = slots[s + S_KEY_OFF]!, len = slots[s + S_KEY_LEN]!;
      next.set(old.subarray(off, off + len), at);
      slots[s + S_KEY_OFF] = at;
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
      if ((slots[s + S_FLAGS]! & FLAG_USED) === 0) continue;
      const node = slots[s + S_NODE]!;
      if (node !== lastNode) {
        lastNode = node;
        [aLo, aHi] = ackHalves(acks.get(node) ?? 0);
      }
      const sHi = slots[s + S_SEQ_HI]!;
      if (sHi > aHi || (sHi === aHi && slots[s + S_SEQ_LO]! > aLo)) {
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
      if ((slots[s + S_FLAGS]! & FLAG_USED) === 0 || slots[s + S_NODE] !== node) continue;
      const seq = joinU64(slots[s + S_SEQ_LO]!, slots[s + S_SEQ_HI]!);
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

/** A copy of `a` at twice its length. */
function grow32(a: Uint32Array): Uint32Array<ArrayBuffer> {
  const g = new Uint32Array(a.length * 2);
  g.set(a);
  return g;
}

