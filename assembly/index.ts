/**
 * The kernel's ABI: every export takes and returns i32 (pointers, lengths, counts,
 * status codes). 64-bit values cross as (lo, hi) halves or through the mailbox; JS
 * never sees a BigInt. No managed objects cross; no default parameters (an exported
 * function with defaults becomes a @varargs trampoline that traps without
 * __setArgumentsLength). Mirrored by `KernelExports` and `KERNEL_FUNCTIONS` in
 * src/kernel/abi.ts (checked at instantiation; test/kernel/abi.ts: no other export).
 *
 * Caller ranges are checked before use: every range an export reads or writes at a
 * caller's pointer (descriptors, masks, spans, outputs, keys, inputs) must lie inside a
 * current region block, else the call aborts with "out of region" (JS: WaveKVError
 * INVALID_ARGUMENT) having touched nothing. A pointer kept across a `reserve` that moved
 * its region would otherwise let the kernel write into a freed heap block, corrupting the
 * allocator's free lists; the trap then surfaces later, in whichever call allocates next
 * (docs/design/0004-kernel-checks-caller-ranges.md). Cost: a few compares per call, none per entry.
 */
import { initCrc, crc32 as crcImpl, crc32Spans as crcSpansImpl } from "./crc";
import { decode as decodeImpl, encode as encodeImpl, findFrame as findFrameImpl } from "./codec";
import * as index from "./handle";
import * as lww from "./merge";
import * as select from "./select";
import { DESC_MAX } from "./codec";
import { DESC_BYTES } from "./record";
import { compareStamps } from "./stamp";
import { REGION_COUNT, SCRATCH, ensureRegion, inRegion, isRegionBlock, pinRegion, trimRegion } from "./layout";
import { S_NODE, S_SEQ_LO, S_TS_LO } from "./handle";
import * as snapshotBody from "./snapshot";
import { sha256Blocks as shaImpl } from "./sha256";

export { abi } from "./abi";

initCrc();

/** Aborts ("out of region: <what>") unless [p, p + len) lies inside a current region. */
// @ts-ignore: decorator
@inline function need(p: u32, len: u64, what: string): void {
  if (!inRegion(<usize>p, len)) abort(what);
}

// @ts-ignore: decorator
@inline function i64of(lo: u32, hi: u32): i64 {
  return <i64>((<u64>hi << 32) | <u64>lo);
}

/** Ensures region `r` holds `bytes` (contents dropped); returns its pointer (0 for a bad region or bytes > REGION_MAX). */
export function reserve(r: u32, bytes: u32): u32 {
  if (r >= <u32>REGION_COUNT) return 0;
  return <u32>ensureRegion(<i32>r, <usize>bytes, false);
}

/** Takes region `r`'s block out of the table (the caller owns it now; see `unpin`): its pointer, 0 when empty. */
export function pin(r: u32): u32 {
  if (r >= <u32>REGION_COUNT) return 0;
  return <u32>pinRegion(<i32>r);
}

/** Frees a block `pin` returned. A region's current block is refused (abort), never freed twice. */
export function unpin(ptr: u32): void {
  if (ptr == 0) return;
  if (isRegionBlock(<usize>ptr)) abort("unpin: a current region block");
  heap.free(<usize>ptr);
}

/** Frees region `r`'s block when it is larger than `keep` bytes (scratch grown by one big batch). */
export function trim(r: u32, keep: u32): void {
  if (r < <u32>REGION_COUNT) trimRegion(<i32>r, <usize>keep);
}

export function crc32(ptr: u32, len: u32, seed: u32): u32 {
  need(ptr, <u64>len, "out of region: crc32 input");
  return crcImpl(seed, ptr, len);
}

/** CRCs of n (offset, length) spans relative to `base` into out (u32 each). */
export function crc32Spans(base: u32, spans: u32, n: u32, out: u32): void {
  need(spans, <u64>n << 3, "out of region: crc32Spans spans");
  need(out, <u64>n << 2, "out of region: crc32Spans out");
  if (n != 0) need(base, 1, "out of region: crc32Spans base");
  crcSpansImpl(base, spans, n, out);
}

/** SHA-256 compression of `blocks` 64-byte blocks at `data` into the 8 u32 words at `state` (src/kernel/sha256.ts). */
export function sha256Blocks(state: u32, data: u32, blocks: u32): void {
  need(state, 32, "out of region: sha256Blocks state");
  need(data, <u64>blocks << 6, "out of region: sha256Blocks data");
  shaImpl(state, data, blocks);
}

/** Returns the record count; descriptors in region DESC; stop reason/offset in the mailbox. mode: 0 bare, 1 framed, 2 delta. */
export function decode(inp: u32, len: u32, mode: u32, baseLo: u32, baseHi: u32, maxRecords: u32): u32 {
  need(inp, <u64>len, "out of region: decode input");
  return decodeImpl(inp, len, mode, i64of(baseLo, baseHi), min(maxRecords, DESC_MAX));
}

export function findFrame(inp: u32, len: u32, from: u32): i32 {
  need(inp, <u64>len, "out of region: findFrame input");
  if (from > len) return -1;
  return findFrameImpl(inp, len, from);
}

/**
 * Returns the encoded length; bytes in region OUT. 0xFFFFFFFF: the output would exceed
 * REGION_MAX. mode: 0 bare, 1 framed, 2 delta. `pick` 0: descriptors 0..n-1; else the
 * descriptors whose indexes are the u32s at pick[0], pick[stride], … (n of them).
 */
export function encode(desc: u32, n: u32, data: u32, mode: u32, baseLo: u32, baseHi: u32, pick: u32, stride: u32): u32 {
  if (pick == 0) need(desc, <u64>n * DESC_BYTES, "out of region: encode descriptors");
  else {
    need(pick, <u64>n * stride << 2, "out of region: encode picks");
    for (let j: u32 = 0; j < n; j++) {
      const at = <u64>desc + <u64>load<u32>(<usize>pick + (<usize>j * stride << 2)) * DESC_BYTES;
      if (at > 0xffffffff) abort("out of region: encode picked descriptor");
      need(<u32>at, DESC_BYTES, "out of region: encode picked descriptor");
    }
  }
  if (n != 0) need(data, 1, "out of region: encode data");
  return encodeImpl(desc, n, data, mode, i64of(baseLo, baseHi), pick, stride);
}

export function indexNew(): u32 {
  return <u32>index.indexNew();
}

export function indexFree(h: u32): void {
  index.indexFree(h);
}

export function merge(h: u32, inp: u32, desc: u32, n: u32, skip: u32, maxKey: u32, maxVal: u32, maxTsLo: u32, maxTsHi: u32, final: u32): i32 {
  need(desc, <u64>n * DESC_BYTES, "out of region: merge descriptors");
  if (skip != 0) need(skip, <u64>n, "out of region: merge skip mask");
  if (n != 0) need(inp, 1, "out of region: merge input");
  return lww.merge(h, inp, desc, n, skip, maxKey, maxVal, i64of(maxTsLo, maxTsHi), final != 0);
}

export function indexReserve(h: u32, n: u32, keyBytes: u32): void {
  index.reserve(h, n, keyBytes);
}

export function commit(h: u32): void {
  lww.commit(h);
}

export function rollback(h: u32): void {
  lww.rollback(h);
}

export function upsert(h: u32, key: u32, len: u32, val: u32, valLen: u32, tsLo: u32, tsHi: u32, node: u32, seqLo: u32, seqHi: u32, tombstone: u32): i32 {
  need(key, <u64>len, "out of region: upsert key");
  need(val, <u64>valLen, "out of region: upsert value");
  return lww.upsert(h, key, len, val, valLen, i64of(tsLo, tsHi), node, <u64>i64of(seqLo, seqHi), tombstone != 0);
}

/** Root in the mailbox (MB_U64); group hashes refreshed in the summary block. */
export function summaryRoot(h: u32): void {
  select.summaryRoot(h);
}

/** Benchmarks only: stop maintaining the summary of an empty index. */
export function summaryOff(h: u32): void {
  select.summaryOff(h);
}

/** Slots whose key's bucket is set in the 4096-bit `mask`: count; slots in R_OUT. */
export function selectBuckets(h: u32, mask: u32): u32 {
  need(mask, 512, "out of region: selectBuckets mask");
  return select.selectBuckets(h, mask);
}

export function find(h: u32, key: u32, len: u32): i32 {
  need(key, <u64>len, "out of region: find key");
  return index.find(h, key, len);
}

export function release(h: u32, slot: u32): i32 {
  return index.release(h, slot);
}

export function selectDelta(h: u32, acks: u32, n: u32): u32 {
  need(acks, <u64>n * 12, "out of region: selectDelta acks");
  return select.selectDelta(h, acks, n);
}

export function maxSeqOf(h: u32, node: u32): void {
  select.maxSeqOf(h, node);
}

/**
 * The LWW order (assembly/stamp.ts) on two stamps given as u32 halves: 1 when the first
 * is newer, -1 when older, 0 for the same stamp. For tests pitting it against
 * src/core/stamp.ts; the second stamp is staged in scratch, in slot layout, as merge and
 * upsert read it from a slot.
 */
export function lwwCompare(tsLo: u32, tsHi: u32, node: u32, seqLo: u32, seqHi: u32, tsLo2: u32, tsHi2: u32, node2: u32, seqLo2: u32, seqHi2: u32): i32 {
  const s = SCRATCH + 160; // 24 bytes; the codec uses SCRATCH..+112, the merge +128..+160
  store<i64>(s, i64of(tsLo2, tsHi2), S_TS_LO << 2);
  store<u32>(s, node2, S_NODE << 2);
  store<i64>(s, i64of(seqLo2, seqHi2), S_SEQ_LO << 2);
  return compareStamps(i64of(tsLo, tsHi), node, <u64>i64of(seqLo, seqHi), s);
}

/**
 * Rewrites the version-2 snapshot body at [blk + at, blk + at + bodyLen) as bare bodies
 * from blk, in place, up to `maxBlocks` blocks from body offset `from`, output offset
 * `wFrom`, `nFrom` records done (assembly/snapshot.ts): 0, 8 (more: resume state in the
 * mailbox), or an E_* code (offset in MB_STOP_OFFSET, record index in MB_COUNT).
 */
export function expandSnapshot(blk: u32, at: u32, bodyLen: u32, expandedLen: u32, baseLo: u32, baseHi: u32, count: u32, from: u32, wFrom: u32, nFrom: u32, maxBlocks: u32): u32 {
  need(blk, <u64>at + <u64>bodyLen, "out of region: expandSnapshot body");
  need(blk, <u64>expandedLen, "out of region: expandSnapshot output");
  return snapshotBody.expand(<usize>blk, <usize>at, <usize>bodyLen, <usize>expandedLen, i64of(baseLo, baseHi), count, <usize>from, <usize>wFrom, nFrom, maxBlocks);
}
