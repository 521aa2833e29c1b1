/**
 * Version-2 snapshot bodies (docs/FORMAT.md §4.2) rewritten in place as bare bodies (§1):
 * the twin of `expandSnapshotBody` in src/storage/snapshot-body.ts, which states the rules
 * (both refuse exactly the same bodies; test/storage/snapshot.ts pits them against each
 * other on crafted bodies). Here because open runs it over every record of a snapshot:
 * the TS loop cost ~0.7 µs a record, this ~0.03 µs.
 *
 * The body sits at blk + at; the records are written from blk. No record's bare form may
 * end past the end of its coded form (else: E_IN_PLACE, nothing of it written), so no
 * byte is overwritten before it is read; each block's CRC is checked before any byte of
 * it is rewritten. Result: 0, or an E_* code with the body offset of the bad block or
 * record in MB_STOP_OFFSET and the record's index in MB_COUNT.
 *
 * At most `maxBlocks` blocks a call (then MORE, with the body offset, the record count and
 * the output offset to resume from in MB_STOP_OFFSET, MB_COUNT and MB_PREV): engines tier
 * a WASM function up between calls, not inside one, and one call over a whole 1M-record
 * body ran entirely in baseline code. Blocks are independent, so a call starts at one.
 */
import { crc32 } from "./crc";
import { MB_COUNT, MB_PREV, MB_STOP_OFFSET, mailbox } from "./layout";
import { hasValue } from "./codec";

export const E_BLOCK_HEADER: u32 = 1;
export const E_BLOCK_LENGTH: u32 = 2;
export const E_BLOCK_CRC: u32 = 3;
export const E_RECORD: u32 = 4;
export const E_IN_PLACE: u32 = 5;
export const E_COUNT: u32 = 6;
export const E_EXPANDED: u32 = 7;
/** Not an error: `maxBlocks` blocks done; call again from the state in the mailbox. */
export const MORE: u32 = 8;

const MAX_SHARED: u64 = 255;
const MAX_SEQ: i64 = 9007199254740991; // 2^53 − 1
const MAX_TS_OFFSET: i64 = 2251799813685248; // 2^51
const STEP_LIMIT: u64 = 9007199254740992; // a zigzag step must be < 2^53

let vv: u64 = 0;

/** The varint at p (before end) into vv: the position after it, 0 if truncated or invalid (as readVarU64). */
// @ts-ignore: decorator
@inline function readV(p: usize, end: usize): usize {
  let v: u64 = 0;
  for (let n: u32 = 0; n < 10; n++) {
    if (p >= end) return 0;
    const b = <u64>load<u8>(p++);
    if (n == 9 && b > 1) return 0;
    v |= (b & 0x7f) << (<u64>(7 * n));
    if (b < 0x80) {
      vv = v;
      return p;
    }
  }
  return 0;
}

// @ts-ignore: decorator
@inline function vsize(v: u64): usize {
  let n: usize = 1;
  while (v >= 0x80) { v >>= 7; n++; }
  return n;
}

// @ts-ignore: decorator
@inline function writeV(p: usize, v: u64): usize {
  while (v >= 0x80) { store<u8>(p++, <u8>(v | 0x80)); v >>= 7; }
  store<u8>(p++, <u8>v);
  return p;
}

// @ts-ignore: decorator
@inline function unzig(z: u64): i64 {
  return <i64>(z >> 1) ^ -<i64>(z & 1);
}

function fail(code: u32, off: usize, n: u32): u32 {
  store<u32>(mailbox(MB_STOP_OFFSET), <u32>off);
  store<u32>(mailbox(MB_COUNT), n);
  return code;
}

export function expand(blk: usize, at: usize, bodyLen: usize, expandedLen: usize, base: i64, count: u32, from: usize, wFrom: usize, nFrom: u32, maxBlocks: u32): u32 {
  const start = blk + at;
  const end = start + bodyLen;
  if (from > bodyLen || wFrom > expandedLen) return fail(E_BLOCK_HEADER, from, nFrom);
  let p = start + from;
  let w = blk + wFrom;
  let n: u32 = nFrom;
  let blocks: u32 = 0;
  while (p < end) {
    if (blocks++ == maxBlocks) {
      store<u32>(mailbox(MB_STOP_OFFSET), <u32>(p - start));
      store<u32>(mailbox(MB_COUNT), n);
      store<u32>(mailbox(MB_PREV), <u32>(w - blk));
      return MORE;
    }
    if (end - p < 8) return fail(E_BLOCK_HEADER, p - start, n);
    const len = <usize>load<u32>(p);
    if (len == 0 || len > end - p - 8) return fail(E_BLOCK_LENGTH, p - start, n);
    if (crc32(0, p + 8, len) != load<u32>(p, 4)) return fail(E_BLOCK_CRC, p - start, n);
    p += 8;
    const blockEnd = p + len;
    let node: u64 = 0, seq: i64 = 0, ts: i64 = base, prevKey: usize = 0, prevKeyLen: u64 = 0;
    while (p < blockEnd) {
      const recAt = p;
      const head = <u32>load<u8>(p++);
      const kind = head & 7;
      if (kind == 6) return fail(E_RECORD, recAt - start, n); // WAL only; 0–5 and 7 (a batch range) are snapshot kinds
      if (head & 8) {
        p = readV(p, blockEnd);
        if (p == 0 || vv > 0xffffffff) return fail(E_RECORD, recAt - start, n);
        node = vv;
      }
      const s = head >> 4;
      if (s != 0) seq += <i64>s;
      else {
        p = readV(p, blockEnd);
        if (p == 0 || vv >= STEP_LIMIT) return fail(E_RECORD, recAt - start, n);
        seq += unzig(vv);
      }
      if (seq < 0 || seq > MAX_SEQ) return fail(E_RECORD, recAt - start, n);
      p = readV(p, blockEnd);
      if (p == 0 || vv >= STEP_LIMIT) return fail(E_RECORD, recAt - start, n);
      ts += unzig(vv);
      const off = ts - base;
      if (off > MAX_TS_OFFSET || off < -MAX_TS_OFFSET) return fail(E_RECORD, recAt - start, n);
      p = readV(p, blockEnd);
      if (p == 0 || vv > prevKeyLen || vv > MAX_SHARED) return fail(E_RECORD, recAt - start, n);
      const shared = <usize>vv;
      p = readV(p, blockEnd);
      if (p == 0 || vv > <u64>(blockEnd - p)) return fail(E_RECORD, recAt - start, n);
      const suffix = p;
      const suffixLen = <usize>vv;
      const keyLen = shared + suffixLen;
      p += suffixLen;
      let valueAt: usize = 0, valueLen: usize = 0;
      if (hasValue(kind)) {
        p = readV(p, blockEnd);
        if (p == 0 || vv > <u64>(blockEnd - p) || (kind == 5 && vv < 8)) return fail(E_RECORD, recAt - start, n);
        valueLen = <usize>vv;
        valueAt = p;
        p += valueLen;
      }
      const tz = <u64>((off << 1) ^ (off >> 63));
      const keyOut = w + 1 + vsize(node) + vsize(<u64>seq) + vsize(tz) + vsize(<u64>keyLen);
      const recEnd = keyOut + keyLen + (hasValue(kind) ? vsize(<u64>valueLen) + valueLen : 0);
      if (recEnd > p) return fail(E_IN_PLACE, recAt - start, n);
      // The suffix, the prefix from the previous key, the fields, the value: none overwrites a byte still to be read.
      memory.copy(keyOut + shared, suffix, suffixLen);
      if (shared > 0) memory.copy(keyOut, prevKey, shared);
      store<u8>(w, <u8>kind);
      let q = writeV(w + 1, node);
      q = writeV(q, <u64>seq);
      q = writeV(q, tz);
      writeV(q, <u64>keyLen);
      if (hasValue(kind)) {
        q = writeV(keyOut + keyLen, <u64>valueLen);
        memory.copy(q, valueAt, valueLen);
      }
      prevKey = keyOut;
      prevKeyLen = <u64>keyLen;
      w = recEnd;
      n++;
    }
  }
  if (n != count) return fail(E_COUNT, bodyLen, n);
  if (w - blk != expandedLen) return fail(E_EXPANDED, bodyLen, n);
  return 0;
}
