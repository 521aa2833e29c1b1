/**
 * MergeIndex on the kernel (assembly/merge.ts): a handle into the process's one
 * instance. LWW metadata, the hash table and key bytes live in linear memory; JS gets
 * back counts and, for winners only, (entry, slot, prev) triples.
 *
 *   const index = createMergeIndex();
 *   const { winners } = index.merge(batch, limits); index.commit();
 *
 * Cost of a losing entry: zero JS allocation (the kernel reads its descriptor, hashes
 * the key bytes, probes, compares stamps). Per batch: the result object and, when the
 * batch is not resident, one copy of its bytes and descriptors into linear memory.
 */
import type { DecodedBatch } from "../core/record.js";
import { ackHalves, clampU32, hi32, i64Halves, joinU64, lo32, writeUtf8 } from "../core/encoding.js";
import {
  EMPTY, FLAG_USED, SLOT_WORDS, S_FLAGS, S_KEY_LEN, S_KEY_OFF, slotMetaAt, slotMetaInto, usedSlotsOf,
  type MergeIndex, type MergeLimits, type MergeResult, type PrevState, type SlotMeta, type Summary,
} from "./merge-index.js";
import { BUCKETS, GROUPS, bucketMask, rootHex } from "./summary.js";
import { ERR_PENDING, H_ARENA, H_HIGH, H_PENDING, H_SIZE, H_SLOTS, H_SUMMARY, MB_COUNT, MB_PREV, MB_U64, R_AUX, R_OUT, R_REFUSED } from "../kernel/abi.js";
import { kernel, type Kernel } from "../kernel/instance.js";
import { stageBatch } from "../codec/kernel-codec.js";

/**
 * An index in the process's WASM kernel (one instance, one handle per index).
 * `summary: false` (benchmarks only) skips the range summary: its root means nothing.
 */
export function createMergeIndex(opts?: { summary?: boolean }): MergeIndex {
  return new WasmMergeIndex(opts);
}

/** Frees the handle of an index that was dropped without dispose(). */
const finalizer = typeof FinalizationRegistry === "function"
  ? new FinalizationRegistry<number>((h) => kernel().exports.indexFree(h))
  : null;

export class WasmMergeIndex implements MergeIndex {
  readonly #k: Kernel;
  #h: number;
  /** Summary off (benchmarks): values are not staged, so the baseline pays nothing for it. */
  #noSummary = false;
  /**
   * mergeFinal's winners, one buffer reused (its contract): a replay merges windows of
   * 65,536 records, and a copy each was 12 MB of new pages and garbage per 1M-key open.
   */
  #finalWinners = new Uint32Array(0);

  constructor(opts: { summary?: boolean } = {}) {
    this.#k = kernel();
    this.#h = this.#k.exports.indexNew() >>> 0;
    if (opts.summary === false) {
      this.#k.exports.summaryOff(this.#h);
      this.#noSummary = true;
    }
    finalizer?.register(this, this.#h, this);
  }

  #handle(): number {
    if (this.#h === 0) throw new Error("MergeIndex used after dispose()");
    return this.#h;
  }

  #field(word: number): number {
    return this.#k.u32[(this.#handle() >>> 2) + word]!;
  }

  #pending(what: string): never {
    throw new Error(`MergeIndex.${what}() while a merge is pending: call commit() or rollback() first`);
  }

  get size(): number {
    return this.#field(H_SIZE);
  }

  reserve(records: number, keyBytes: number): void {
    this.#k.exports.indexReserve(this.#handle(), clampU32(records), clampU32(keyBytes));
  }

  mergeFinal(batch: DecodedBatch, limits: MergeLimits): MergeResult {
    return this.#merge(batch, limits, undefined, true);
  }

  merge(batch: DecodedBatch, limits: MergeLimits, skip?: Uint8Array): MergeResult {
    return this.#merge(batch, limits, skip, false);
  }

  #merge(batch: DecodedBatch, limits: MergeLimits, skip: Uint8Array | undefined, final: boolean): MergeResult {
    const h = this.#handle();
    const k = this.#k;
    const n = batch.count;
    const where = stageBatch(k, batch);
    let skipPtr = 0;
    if (skip !== undefined) {
      skipPtr = k.reserve(R_AUX, Math.max(n, 16));
      const u8 = k.u8;
      const m = Math.min(skip.length, n);
      u8.set(skip.subarray(0, m), skipPtr);
      if (m < n) u8.fill(0, skipPtr + m, skipPtr + n);
    }
    const [tLo, tHi] = i64Halves(limits.maxTimestamp);
    const nw = k.exports.merge(h, where.inp, where.desc, n, skipPtr, clampU32(limits.maxKeyBytes), clampU32(limits.maxValueBytes), tLo, tHi, final ? 1 : 0);
    if (nw === ERR_PENDING) this.#pending("merge");
    const nr = k.mailbox(MB_COUNT);
    let winners = EMPTY, refused = EMPTY;
    if (nw > 0) {
      const p = k.regionPtr(R_OUT) >>> 2;
      if (final) {
        if (this.#finalWinners.length < nw * 3) this.#finalWinners = new Uint32Array(nw * 3);
        this.#finalWinners.set(k.u32.subarray(p, p + nw * 3));
        winners = this.#finalWinners.subarray(0, nw * 3);
      } else winners = k.u32.slice(p, p + nw * 3);
    }
    if (nr > 0) {
      const p = k.regionPtr(R_REFUSED) >>> 2;
      refused = k.u32.slice(p, p + nr);
    }
    return { winners, refused };
  }

  commit(): void {
    this.#k.exports.commit(this.#handle());
  }

  rollback(): void {
    this.#k.exports.rollback(this.#handle());
  }

  /** Stages a key in R_AUX; returns its byte length (pointer in #keyPtr). */
  #keyPtr = 0;
  #stageKey(key: string | Uint8Array, extra = 0): number {
    const k = this.#k;
    if (typeof key === "string") {
      this.#keyPtr = k.reserve(R_AUX, Math.max(key.length * 3 + extra, 16));
      return writeUtf8(k.u8, this.#keyPtr, key) - this.#keyPtr;
    }
    this.#keyPtr = k.reserve(R_AUX, Math.max(key.length + extra, 16));
    k.u8.set(key, this.#keyPtr);
    return key.length;
  }

  upsert(key: string | Uint8Array, timestamp: number, node: number, seq: number, tombstone: boolean, value?: Uint8Array | null): { slot: number; prev: PrevState } | null {
    const h = this.#handle();
    // Key and value staged together in R_AUX: the value only feeds the summary hash,
    // hashed in the kernel (one copy of the value; no JS-side hashing).
    const vlen = tombstone || !value || this.#noSummary ? 0 : value.length;
    const len = this.#stageKey(key, vlen);
    const val = this.#keyPtr + len;
    if (vlen > 0) this.#k.u8.set(value!, val);
    const slot = this.#k.exports.upsert(h, this.#keyPtr, len, val, vlen, lo32(timestamp), hi32(timestamp), node, lo32(seq), hi32(seq), tombstone ? 1 : 0);
    if (slot === ERR_PENDING) this.#pending("upsert");
    if (slot < 0) return null;
    return { slot, prev: this.#k.mailbox(MB_PREV) as PrevState };
  }

  find(key: Uint8Array | string): number {
    const h = this.#handle();
    const len = this.#stageKey(key);
    return this.#k.exports.find(h, this.#keyPtr, len);
  }

  /** Word index of a used slot's 32 bytes, or RangeError. */
  #slotWord(slot: number): number {
    const high = this.#field(H_HIGH);
    if (!(slot >= 0 && slot < high) || (slot | 0) !== slot) throw new RangeError(`slot ${slot} out of range`);
    const w = (this.#field(H_SLOTS) >>> 2) + slot * SLOT_WORDS;
    if ((this.#k.u32[w + S_FLAGS]! & FLAG_USED) === 0) throw new RangeError(`slot ${slot} is not in use`);
    return w;
  }

  meta(slot: number): SlotMeta {
    const w = this.#slotWord(slot);
    return slotMetaAt(this.#k.u32, w);
  }

  metaInto(slot: number, out: Float64Array): void {
    const w = this.#slotWord(slot);
    slotMetaInto(this.#k.u32, w, out);
  }

  keyBytes(slot: number): Uint8Array {
    return this.keyView(slot).slice();
  }

  usedSlots(): Uint32Array {
    return usedSlotsOf(this.#k.u32, this.#field(H_SLOTS) >>> 2, this.#field(H_HIGH), this.#field(H_SIZE));
  }

  keyView(slot: number): Uint8Array {
    const w = this.#slotWord(slot);
    const m = this.#k.u32;
    const off = this.#field(H_ARENA) + m[w + S_KEY_OFF]!;
    return this.#k.u8.subarray(off, off + m[w + S_KEY_LEN]!);
  }

  release(slot: number): void {
    const h = this.#handle();
    if (this.#field(H_PENDING) !== 0) this.#pending("release");
    this.#slotWord(slot);
    this.#k.exports.release(h, slot);
  }

  selectDelta(acks: ReadonlyMap<number, number>): Uint32Array {
    const h = this.#handle();
    const k = this.#k;
    const nodes: number[] = [];
    for (const node of acks.keys()) if (node >>> 0 === node) nodes.push(node);
    nodes.sort((a, b) => a - b);
    const p = k.reserve(R_AUX, Math.max(nodes.length * 12, 16));
    const u32 = k.u32;
    for (let i = 0, w = p >>> 2; i < nodes.length; i++, w += 3) {
      const [lo, hi] = ackHalves(acks.get(nodes[i]!)!);
      u32[w] = nodes[i]!;
      u32[w + 1] = lo;
      u32[w + 2] = hi;
    }
    const count = k.exports.selectDelta(h, p, nodes.length) >>> 0;
    const out = k.regionPtr(R_OUT) >>> 2;
    return k.u32.slice(out, out + count);
  }

  summaryRoot(): string {
    const h = this.#handle();
    this.#k.exports.summaryRoot(h);
    return rootHex(this.#k.mailbox(MB_U64), this.#k.mailbox(MB_U64 + 1));
  }

  summary(): Summary {
    const root = this.summaryRoot();
    const p = this.#field(H_SUMMARY);
    const u8 = this.#k.u8;
    return { root, buckets: u8.slice(p, p + BUCKETS * 8), groups: u8.slice(p + BUCKETS * 8, p + (BUCKETS + GROUPS) * 8) };
  }

  selectBuckets(buckets: Iterable<number>): Uint32Array {
    const h = this.#handle();
    const k = this.#k;
    const mask = bucketMask(buckets);
    const p = k.reserve(R_AUX, mask.length);
    k.u8.set(mask, p);
    const count = k.exports.selectBuckets(h, p) >>> 0;
    const out = k.regionPtr(R_OUT) >>> 2;
    return k.u32.slice(out, out + count);
  }

  maxSeqOf(node: number): number {
    const h = this.#handle();
    this.#k.exports.maxSeqOf(h, node >>> 0);
    return joinU64(this.#k.mailbox(MB_U64), this.#k.mailbox(MB_U64 + 1));
  }

  dispose(): void {
    if (this.#h === 0) return;
    finalizer?.unregister(this);
    this.#k.exports.indexFree(this.#h);
    this.#h = 0;
  }
}
