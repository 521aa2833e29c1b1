/**
 * The kernel's ABI as seen from JS (assembly/index.ts is the other side). Its constants
 * are generated from the kernel (below); the kernel's exports are checked once at
 * instantiation (src/kernel/instance.ts). Every export
 * takes and returns i32 — pointers, lengths, counts, status codes; 64-bit values cross
 * as (lo, hi) u32 halves or through the mailbox, so no BigInt ever crosses. u32 results
 * come back signed: read them with `>>> 0`.
 *
 * Fixed low memory (assembly/layout.ts):
 *
 * | address | what |
 * |---|---|
 * | 0x0000 | CRC tables (8 KiB), X2N (128 B) and POW256 (256 B) tables |
 * | 0x2180 | mailbox: u32 words MB_* (word indexes on both sides) |
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
  /**
   * Encodes n staged descriptors (key/value offsets relative to `data`): byte length;
   * bytes in R_OUT. `pick` 0: descriptors 0..n-1; else descriptor pick[j * stride] is
   * record j (u32 indexes: a merge's winner triples with stride 3).
   */
  encode(desc: number, n: number, data: number, mode: number, baseLo: number, baseHi: number, pick: number, stride: number): number;
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
  /** The LWW order on two stamps as u32 halves (ts, node, seq): 1, -1 or 0 (tests pit it against src/core/stamp.ts). */
  lwwCompare(tsLo: number, tsHi: number, node: number, seqLo: number, seqHi: number, tsLo2: number, tsHi2: number, node2: number, seqLo2: number, seqHi2: number): number;
  /** SHA-256 compression of `blocks` 64-byte blocks at `data` into the 8 u32 words (H0..H7, as numbers) at `state`. */
  sha256Blocks(state: number, data: number, blocks: number): void;
  /** The self-description (assembly/abi.ts): address of 5 u32 words, the 5th the ABI fingerprint. */
  abi(): number;
  /** A v2 snapshot body at blk + at rewritten in place as bare bodies from blk, up to maxBlocks blocks from (from, wFrom, nFrom): 0, 8 (more: state in MB_STOP_OFFSET, MB_PREV, MB_COUNT), or an error code (offset in MB_STOP_OFFSET, record in MB_COUNT). */
  expandSnapshot(blk: number, at: number, bodyLen: number, expandedLen: number, baseLo: number, baseHi: number, count: number, from: number, wFrom: number, nFrom: number, maxBlocks: number): number;
}

/**
 * Every function of KernelExports, space-separated (a string, not an array: the browser
 * bundle's size budget): instance.ts checks each is exported; test/kernel/abi.ts checks
 * that the kernel exports no other.
 */
export const KERNEL_FUNCTIONS = "reserve pin unpin trim crc32 crc32Spans decode findFrame encode indexNew indexFree merge indexReserve commit rollback upsert summaryRoot summaryOff selectBuckets find release selectDelta maxSeqOf lwwCompare abi expandSnapshot sha256Blocks";
type Words<S extends string> = S extends `${infer W} ${infer Rest}` ? W | Words<Rest> : S;
/** Fails to compile, naming it, when KERNEL_FUNCTIONS lists a name KernelExports lacks, or lacks one of its functions. */
export type EveryFunctionListed<
  Unknown extends never = Exclude<Words<typeof KERNEL_FUNCTIONS>, keyof KernelExports>,
  Unlisted extends never = Exclude<keyof KernelExports, "memory" | Words<typeof KERNEL_FUNCTIONS>>,
> = [Unknown, Unlisted];

/**
 * The ABI constants, generated from the kernel (scripts/build-wasm.mjs reads its
 * self-description, assembly/abi.ts, into src/kernel/abi-values.ts): one source, the kernel.
 *
 * | constants | meaning |
 * |---|---|
 * | MAILBOX, REGIONS | addresses of the mailbox and the region table (above) |
 * | MB_STOP_REASON, MB_STOP_OFFSET, MB_COUNT, MB_PREV, MB_U64 | mailbox u32 word indexes (MB_U64: lo; hi at the next word) |
 * | R_IN, R_DESC, R_AUX, R_OUT, R_REFUSED, R_CRC; REGION_COUNT | regions (frozen numbering, assembly/layout.ts) |
 * | REGION_MAX | largest region: TLSF's largest block, 2^30 − 4, rounded down to 16 |
 * | DESC_MAX | most descriptors one decode returns (REGION_MAX / 48) |
 * | ENCODE_TOO_LARGE | `encode` result when the output would exceed REGION_MAX |
 * | ERR_SLOT, ERR_PENDING | index export results besides a slot (i32) |
 * | H_SLOTS, H_HIGH, H_SIZE, H_ARENA, H_PENDING, H_SUMMARY | handle fields JS reads (u32 word index from the handle pointer; offsetof<Handle>, assembly/handle.ts); the summary block is 4096 u64 buckets, then 64 u64 group hashes (valid after summaryRoot) |
 * | S_TS_LO … S_KEY_LEN; SLOT_WORDS | slot words: a slot is SLOT_WORDS u32 words at H_SLOTS + slot × SLOT_WORDS |
 * | FLAG_USED, FLAG_TOMBSTONE | bits of a slot's S_FLAGS word |
 * | ABI_FINGERPRINT | FNV-1a of the self-description: instance.ts refuses a kernel whose differs |
 */
export * from "./abi-values.js";
