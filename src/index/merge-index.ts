/**
 * The merge index's contract: a batched LWW merge against a resident index
 * (docs/ARCHITECTURE.md), its result types, and the layout both implementations share —
 * the WASM kernel's (`createMergeIndex`, src/index/kernel-index.ts) and the same
 * algorithm in TS (`createMergeIndexReference`, src/index/reference.ts).
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
 * | slots | 32 B per slot | S_* words: 0–1 timestamp i64, 2–3 seq u64, 4 node, 5 flags (1 used, 2 tombstone), 6 keyOff, 7 keyLen; a free slot has flags 0 and word 6 = next free + 1 |
 * | table | u64 bucket | 0 slot + 1 (0 = empty), 1 hash32; linear probing, load ≤ 1/2, doubled |
 * | arena | key bytes | appended; compacted by `release` when half is garbage |
 * | undo | 48 B per change | 0 slot, 1 origin (0 existing, 1 free list, 2 new), 2–9 the slot's prior 32 B, 10–11 its prior entry hash |
 * | entry hashes | u64 per slot | summary contribution of the slot (src/index/summary.ts) |
 * | summary | 4096 u64 buckets + 64 u64 group hashes | bucket = XOR of its entries' hashes |
 *
 * Slot ids are dense: the free list (LIFO) is used before new slots.
 */
import type { DecodedBatch } from "../core/record.js";
import { joinI64, joinU64 } from "../core/encoding.js";
import { fmix } from "./summary.js";
import * as abi from "../kernel/abi.js";

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
   * afterwards (our own log replaying). Saves the undo log's memory and writes. Its
   * `winners` may be a view that the next mergeFinal on this index overwrites.
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

// ---------------------------------------------------------------------------------
// shared constants (mirrored in assembly/index.ts)

// The slot layout is the kernel's (assembly/handle.ts, generated into src/kernel/abi-values.ts):
// the TS twin keeps its slots in the same words, so both read them through these names.
// The kernel's slot layout re-bound as this module's constants: the slot readers below and
// the TS twin read them in hot loops, where V8 folds a module's own constants but not
// imported bindings (10–25 % on the twin's loops, measured with bench/kernels.ts).
export const SLOT_WORDS = abi.SLOT_WORDS, FLAG_USED = abi.FLAG_USED, FLAG_TOMBSTONE = abi.FLAG_TOMBSTONE;
export const S_TS_LO = abi.S_TS_LO, S_TS_HI = abi.S_TS_HI, S_SEQ_LO = abi.S_SEQ_LO, S_SEQ_HI = abi.S_SEQ_HI;
export const S_NODE = abi.S_NODE, S_FLAGS = abi.S_FLAGS, S_KEY_OFF = abi.S_KEY_OFF, S_KEY_LEN = abi.S_KEY_LEN;
/** A free slot's S_KEY_OFF word: the next free slot + 1 (0 = none). */
export const S_NEXT_FREE = S_KEY_OFF;
export const UNDO_WORDS = 12;
/** Words of an undo record (the table above): the slot, its origin, its prior SLOT_WORDS, its prior entry hash (2 words). */
export const U_SLOT = 0, U_ORIGIN = 1, U_PRIOR = 2, U_EHASH = 10;
/** Undo record origin: the slot was in use, came off the free list, or is new. */
export const ORIGIN_EXISTING = 0, ORIGIN_FREE = 1, ORIGIN_NEW = 2;
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

/** The empty result (shared: results are read-only). */
export const EMPTY = new Uint32Array(0);

/** Slots whose FLAG_USED is set in a slot table at word `base` with `high` slots (`size` of them used). */
export function usedSlotsOf(words: Uint32Array, base: number, high: number, size: number): Uint32Array {
  const out = new Uint32Array(size);
  let n = 0;
  for (let slot = 0, w = base + S_FLAGS; slot < high && n < size; slot++, w += SLOT_WORDS) {
    if ((words[w]! & FLAG_USED) !== 0) out[n++] = slot;
  }
  return n === size ? out : out.subarray(0, n);
}

/** The metadata of the slot whose words start at `w` (MergeIndex.meta). */
export function slotMetaAt(words: Uint32Array, w: number): SlotMeta {
  return {
    timestamp: joinI64(words[w + S_TS_LO]!, words[w + S_TS_HI]!),
    node: words[w + S_NODE]!,
    seq: joinU64(words[w + S_SEQ_LO]!, words[w + S_SEQ_HI]!),
    tombstone: (words[w + S_FLAGS]! & FLAG_TOMBSTONE) !== 0,
  };
}

/** slotMetaAt without an object (MergeIndex.metaInto). */
export function slotMetaInto(words: Uint32Array, w: number, out: Float64Array): void {
  out[0] = joinI64(words[w + S_TS_LO]!, words[w + S_TS_HI]!);
  out[1] = words[w + S_NODE]!;
  out[2] = joinU64(words[w + S_SEQ_LO]!, words[w + S_SEQ_HI]!);
  out[3] = (words[w + S_FLAGS]! & FLAG_TOMBSTONE) !== 0 ? 1 : 0;
}
