/**
 * The kernel's ABI as seen from JS (assembly/index.ts is the other side). Every export
 * takes and returns i32 — pointers, lengths, counts, status codes; 64-bit values cross
 * as (lo, hi) u32 halves or through the mailbox, so no BigInt ever crosses. u32 results
 * come back signed: read them with `>>> 0`.
 *
 * Fixed low memory (assembly/layout.ts):
 *
 * | address | what |
 * |---|---|
 * | 0x0000 | CRC tables (8 KiB), X2N (128 B) and POW256 (256 B) tables |
 * | 0x2180 | mailbox: u32 words MB_* |
 * | 0x2200 | region table: (ptr, cap) u32 pairs, one per R_* region |
 * | 0x4000 | static data, then the TLSF heap |
 */

export interface KernelExports {
  readonly memory: WebAssembly.Memory;
  /** Region `r` with at least `bytes` (contents dropped); its pointer; 0 for a bad region or bytes > REGION_MAX. */
  reserve(region: number, bytes: number): number;
  /** Takes region `r`'s block out of the table: its pointer (0 when empty); the caller frees it with `unpin`. */
  pin(region: number): number;
  /** Frees a block `pin` returned. */
  unpin(ptr: number): void;
  /** Frees region `r`'s block when it holds more than `keep` bytes. */
  trim(region: number, keep: number): void;
  /** zlib crc32(seed, mem[ptr, ptr+len)). */
  crc32(ptr: number, len: number, seed: number): number;
  /** CRCs of n (offset, len) u32 pairs at `spans`, relative to `base`, into u32 `out`. */
  crc32Spans(base: number, spans: number, n: number, out: number): void;
  /** Decodes mem[inp, inp+len) (mode 0 bare, 1 framed, 2 delta): count; descriptors in R_DESC, stop in MB_STOP_*. */
  decode(inp: number, len: number, mode: number, baseLo: number, baseHi: number, maxRecords: number): number;
  /** First valid frame at or after `from` (relative), or -1. */
  findFrame(inp: number, len: number, from: number): number;
  /** Encodes n staged descriptors (key/value offsets relative to `data`): byte length; bytes in R_OUT. */
  encode(desc: number, n: number, data: number, mode: number, baseLo: number, baseHi: number): number;
  indexNew(): number;
  indexFree(h: number): void;
  /** Winner count (triples in R_OUT), refused pairs count in MB_COUNT (pairs in R_REFUSED); ERR_PENDING. */
  merge(h: number, inp: number, desc: number, n: number, skip: number, maxKey: number, maxVal: number, maxTsLo: number, maxTsHi: number, final: number): number;
  /** Room for n more keys of keyBytes bytes (slots, table, arena grown once). */
  indexReserve(h: number, n: number, keyBytes: number): void;
  commit(h: number): void;
  rollback(h: number): void;
  /** Slot (prev in MB_PREV), -1 when not newer, ERR_PENDING; [val, val+valLen) feeds the summary hash. */
  upsert(h: number, key: number, len: number, val: number, valLen: number, tsLo: number, tsHi: number, node: number, seqLo: number, seqHi: number, tombstone: number): number;
  /** Refreshes the group hashes; root u64 in MB_U64 (lo = lane B, hi = lane A). */
  summaryRoot(h: number): void;
  /** Benchmarks only: stop maintaining the summary of an empty index. */
  summaryOff(h: number): void;
  /** Slots whose key's bucket is set in the 4096-bit mask at `mask`: count; u32 slots in R_OUT. */
  selectBuckets(h: number, mask: number): number;
  find(h: number, key: number, len: number): number;
  /** 0, ERR_SLOT, ERR_PENDING. */
  release(h: number, slot: number): number;
  /** Count of slots (u32s in R_OUT); `acks` = n (node, seqLo, seqHi) u32 triples sorted by node. */
  selectDelta(h: number, acks: number, n: number): number;
  /** Result u64 in MB_U64. */
  maxSeqOf(h: number, node: number): void;
}

export const MAILBOX = 0x2180;
export const REGIONS = 0x2200;

/** Mailbox word indexes (u32 words from MAILBOX). */
export const MB_STOP_REASON = 0;
export const MB_STOP_OFFSET = 1;
export const MB_COUNT = 2;
export const MB_PREV = 3;
export const MB_U64 = 4; // lo; hi at 5

/** Regions (assembly/layout.ts; frozen numbering). */
export const R_IN = 0;
export const R_DESC = 1;
export const R_AUX = 2;
export const R_OUT = 3;
export const R_REFUSED = 4;
export const R_CRC = 5;
export const REGION_COUNT = 6;

/** Handle fields read directly by JS (u32 word index from the handle pointer). */
export const H_SLOTS = 0;
export const H_HIGH = 2;
export const H_SIZE = 3;
export const H_ARENA = 7;
export const H_PENDING = 14;
/** Summary block: 4096 u64 buckets, then 64 u64 group hashes (valid after summaryRoot). */
export const H_SUMMARY = 18;

/** Largest region (assembly/layout.ts REGION_MAX): TLSF's largest block, 2^30 − 4, rounded down to 16. */
export const REGION_MAX = 2 ** 30 - 16;
/** Most descriptors one decode returns (REGION_MAX / 48 = 22,369,621). */
export const DESC_MAX = Math.floor(REGION_MAX / 48);
/** `encode` result when the output would exceed REGION_MAX. */
export const ENCODE_TOO_LARGE = 0xffffffff;

export const ERR_SLOT = -1;
export const ERR_PENDING = -2;
