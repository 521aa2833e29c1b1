/**
 * Entry record codec (docs/FORMAT.md §1–2): the WASM kernel and its pure-TS twin.
 *
 *   const bytes = encodeRecords(entries, "framed", base);
 *   const batch = decodeRecords(bytes, "framed", base);
 *   for (let i = 0; i < batch.count; i++) use(batch.key(i), batch.value(i), batch.seq(i));
 *
 * Entry record body (self-delimiting; varu = unsigned LEB128 ≤ 10 bytes, zvar = zigzag varu):
 *
 * | field | encoding | note |
 * |---|---|---|
 * | kind | u8 | 0 tombstone, 1 value, 2 add peer, 3 remove peer, 4 seq mark; others malformed |
 * | node | varu ≤ 2^32−1 | |
 * | seq | varu ≤ 2^64−1 | |
 * | timestamp | zvar | timestamp − base (i64, wrapping) |
 * | keyLen | varu ≤ 2^31−1 | checked against the remaining bytes before the key is read |
 * | key | keyLen bytes | UTF-8 |
 * | valueLen | varu ≤ 2^31−1 | kind 1 only |
 * | value | valueLen bytes | kind 1 only |
 *
 * Delta-coded bodies (docs/FORMAT.md §1.1, envelopes of version 2): back to back, each
 * against the previous record of the batch (the first against node 0, seq 0, base):
 * `u8 head (kind | 8 if node follows | S << 4) | [varu node] | [S = 0: zvar seq delta]
 * | zvar (timestamp − previous timestamp) | keyLen, key, [valueLen, value]` as above;
 * S = 1–15 is the seq step itself. Stops as bare.
 *
 * Framed record: `u32 bodyLen | u32 crc32(body) | body`. Decoding stops at the first
 * record that is `torn` (< 8 header bytes, or bodyLen past the end), `zero` (8 zero
 * header bytes), `crc` (mismatch) or `malformed` (CRC fine, body bad or not exactly
 * bodyLen). Bare: bodies back to back; a body running past the end is `torn`, bad
 * content is `malformed`. `limit` = `maxRecords` reached with bytes left. The stop
 * offset is the start of the record that stopped decoding (the input length at `end`).
 */
import { crc32Reference } from "./crc.js";
import { decodeRecordsWasm, decodeWindowWasm, encodeRecordsWasm, findNextValidFrameWasm, readIntoKernel as readIntoKernelWasm } from "./kernel-codec.js";
import type { PinnedBytes } from "../kernel/memory.js";
import { BatchView, checkRecord, hi32, lo32, maxRecordsOf } from "./batch.js";
import { DESCRIPTOR_WORDS, FRAME_HEADER_BYTES, RecordKind, STOP_REASONS, type DecodedBatch, type Framing, type RecordInput } from "../core/record.js";

const MAX_LEN = 0x7fffffff;

// ---------------------------------------------------------------------------------
// public entry points

/**
 * Encodes records on the kernel: one copy of keys/values in, one call, one copy out.
 * Throws TypeError on what the format cannot carry (see checkRecord).
 */
export function encodeRecords(records: readonly RecordInput[], framing: Framing, base: number): Uint8Array {
  return encodeRecordsWasm(records, framing, base);
}

/**
 * Decodes up to `maxRecords` records on the kernel; never throws on bad bytes (see
 * `stop`). The batch reads its descriptors in place in linear memory until the kernel
 * reuses that memory, when they are copied out (so don't hold `descriptors`/`words`
 * across another decode, encode or merge: read them again). `bytes` is kept by
 * reference (do not mutate it while the batch is in use).
 */
export function decodeRecords(bytes: Uint8Array, framing: Framing, base: number, maxRecords?: number): DecodedBatch {
  return decodeRecordsWasm(bytes, framing, base, maxRecords);
}

/**
 * `length` bytes written by `fill` into the decoder's input buffer, kept as a block to
 * decode window by window (`decodeWindow`): a long log is replayed a window at a time.
 * `holder` holds the first reference: drop it (`block.drop(holder)`) when done decoding.
 */
export function readIntoKernel(length: number, fill: (dst: Uint8Array) => void, holder: object): PinnedBytes {
  return readIntoKernelWasm(length, fill, holder);
}

/**
 * Up to `maxRecords` records of `block` from `offset`; offsets and `stop` relative to
 * `offset` (with stop reason "limit", the next window starts at `offset + stop.offset`).
 * Decode each window after the previous one is merged or released: a batch still
 * holding descriptors in place has them copied out.
 */
export function decodeWindow(block: PinnedBytes, offset: number, framing: Framing, base: number, maxRecords?: number): DecodedBatch {
  return decodeWindowWasm(block, offset, framing, base, maxRecords);
}

/**
 * Offset of the first valid framed record starting at or after `from` (header not zero,
 * body inside the buffer, CRC matching, body well formed), or -1. The WAL uses it to
 * tell a torn tail (nothing valid follows) from a damaged record followed by valid ones.
 * Cost: O(bytes scanned); a CRC only where a header's length fits.
 */
export function findNextValidFrame(bytes: Uint8Array, from: number): number {
  return findNextValidFrameWasm(bytes, from);
}

// ---------------------------------------------------------------------------------
// reference twin: encode

function toKeyBytes(key: string | Uint8Array): Uint8Array {
  return typeof key === "string" ? textEncoder.encode(key) : key;
}
const textEncoder = new TextEncoder();

/** Bytes of a varu whose value is (lo, hi) as u32 halves. */
function varuSize(lo: number, hi: number): number {
  if (hi === 0) return lo < 0x80 ? 1 : lo < 0x4000 ? 2 : lo < 0x200000 ? 3 : lo < 0x10000000 ? 4 : 5;
  return Math.ceil((64 - Math.clz32(hi)) / 7);
}

function writeVaru(out: Uint8Array, pos: number, lo: number, hi: number): number {
  lo >>>= 0;
  hi >>>= 0;
  while (hi !== 0 || lo >= 0x80) {
    out[pos++] = (lo & 0x7f) | 0x80;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  out[pos++] = lo;
  return pos;
}

/**
 * Reference encoder: two passes (sizes, then bytes) into one exact-size buffer.
 * Throws TypeError on inputs the format cannot carry (kind 1 without a value, a key
 * or value over 2^31−1 bytes, a node outside u32).
 */
export function encodeRecordsReference(records: readonly RecordInput[], framing: Framing, base: number): Uint8Array {
  const n = records.length;
  const delta = framing === "delta";
  const keys: Uint8Array[] = new Array(n);
  const sizes = new Float64Array(n);
  // Per record: z (zigzag ts − base, or − the previous ts) and seq (delta: its zigzag step) halves, computed once.
  const halves = new Uint32Array(n * 4);
  const heads = new Uint8Array(n);
  let pn = 0, psLo = 0, psHi = 0, ptLo = lo32(base), ptHi = hi32(base) >>> 0;
  let total = 0;
  for (let i = 0; i < n; i++) {
    const r = records[i]!;
    checkRecord(r, i);
    const key = (keys[i] = toKeyBytes(r.key));
    if (key.length > MAX_LEN) throw new TypeError(`record ${i}: key too large`);
    let size: number;
    if (delta) {
      const node = r.node >>> 0;
      const sLo = lo32(r.seq), sHi = hi32(r.seq) >>> 0, tLo = lo32(r.timestamp), tHi = hi32(r.timestamp) >>> 0;
      sub64(tLo, tHi, ptLo, ptHi);
      halves[i * 4] = zzLo(); halves[i * 4 + 1] = zzHi();
      size = 1 + varuSize(halves[i * 4]!, halves[i * 4 + 1]!) + (node !== pn ? varuSize(node, 0) : 0);
      sub64(sLo, sHi, psLo, psHi);
      const small = rhi === 0 && rlo >= 1 && rlo <= 15;
      heads[i] = r.kind | (node !== pn ? 8 : 0) | (small ? rlo << 4 : 0);
      if (!small) {
        halves[i * 4 + 2] = zzLo(); halves[i * 4 + 3] = zzHi();
        size += varuSize(halves[i * 4 + 2]!, halves[i * 4 + 3]!);
      }
      pn = node; psLo = sLo; psHi = sHi; ptLo = tLo; ptHi = tHi;
    } else {
      sub64(lo32(r.timestamp), hi32(r.timestamp) >>> 0, ptLo, ptHi);
      const slo = lo32(r.seq), shi = hi32(r.seq) >>> 0;
      halves[i * 4] = zzLo(); halves[i * 4 + 1] = zzHi(); halves[i * 4 + 2] = slo; halves[i * 4 + 3] = shi;
      size = 1 + varuSize(r.node >>> 0, 0) + varuSize(slo, shi) + varuSize(halves[i * 4]!, halves[i * 4 + 1]!);
    }
    size += varuSize(key.length, 0) + key.length;
    if ((r.kind as number) === RecordKind.Value) {
      size += varuSize(r.value!.length, 0) + r.value!.length;
    }
    sizes[i] = size;
    total += size + (framing === "framed" ? FRAME_HEADER_BYTES : 0);
  }
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  let pos = 0;
  for (let i = 0; i < n; i++) {
    const r = records[i]!;
    const key = keys[i]!;
    const frameStart = pos;
    if (framing === "framed") pos += FRAME_HEADER_BYTES;
    const bodyStart = pos;
    if (delta) {
      const head = heads[i]!;
      out[pos++] = head;
      if (head & 8) pos = writeVaru(out, pos, r.node >>> 0, 0);
      if (head < 16) pos = writeVaru(out, pos, halves[i * 4 + 2]!, halves[i * 4 + 3]!);
    } else {
      out[pos++] = r.kind;
      pos = writeVaru(out, pos, r.node >>> 0, 0);
      pos = writeVaru(out, pos, halves[i * 4 + 2]!, halves[i * 4 + 3]!);
    }
    pos = writeVaru(out, pos, halves[i * 4]!, halves[i * 4 + 1]!);
    pos = writeVaru(out, pos, key.length, 0);
    out.set(key, pos);
    pos += key.length;
    if ((r.kind as number) === RecordKind.Value) {
      const v = r.value!;
      pos = writeVaru(out, pos, v.length, 0);
      out.set(v, pos);
      pos += v.length;
    }
    if (framing === "framed") {
      dv.setUint32(frameStart, pos - bodyStart, true);
      dv.setUint32(frameStart + 4, crc32Reference(out.subarray(bodyStart, pos)), true);
    }
  }
  return out;
}

/** 64-bit result registers (u32 halves) of sub64/add64. */
let rlo = 0;
let rhi = 0;

/** (rlo, rhi) = a − b, u64/i64 wrapping. */
function sub64(aLo: number, aHi: number, bLo: number, bHi: number): void {
  rlo = (aLo - bLo) >>> 0;
  rhi = (aHi - bHi - (aLo < bLo ? 1 : 0)) >>> 0;
}

/** (rlo, rhi) = a + b, wrapping. */
function add64(aLo: number, aHi: number, bLo: number, bHi: number): void {
  const lo = aLo + bLo;
  rlo = lo >>> 0;
  rhi = (aHi + bHi + (lo > 0xffffffff ? 1 : 0)) >>> 0;
}

/** Halves of zigzag(rlo, rhi) read as an i64. */
const zzLo = () => ((rlo << 1) ^ (rhi >> 31)) >>> 0;
const zzHi = () => (((rhi << 1) | (rlo >>> 31)) ^ (rhi >> 31)) >>> 0;

// ---------------------------------------------------------------------------------
// reference twin: decode

const TRUNCATED = -1;
const INVALID = -2;

/**
 * Parses one body in `bytes[pos, end)` into `d[w .. w+12)` (descriptor words, recOff/recLen
 * left to the caller). Returns the position after the body, TRUNCATED or INVALID — the
 * first problem met in field order, exactly as the kernel does. `delta`: a delta-coded
 * body, read against (then stored into) the previous record's registers below.
 */
function parseBody(bytes: Uint8Array, pos: number, end: number, baseLo: number, baseHi: number, d: Uint32Array, w: number, delta: boolean): number {
  if (pos >= end) return TRUNCATED;
  const head = bytes[pos++]!;
  const kind = delta ? head & 7 : head;
  if (kind > 4) return INVALID;
  let r: number;
  // node
  let node = pNode;
  if (!delta || (head & 8) !== 0) {
    r = readVaru(bytes, pos, end);
    if (r < 0) return r;
    pos = r;
    if (vhi !== 0) return INVALID;
    node = vlo;
  }
  // seq (delta: previous + S, or previous + a zvar step)
  let seqLo: number, seqHi: number;
  if (delta && head >= 16) {
    add64(pSeqLo, pSeqHi, head >>> 4, 0);
    seqLo = rlo; seqHi = rhi;
  } else {
    r = readVaru(bytes, pos, end);
    if (r < 0) return r;
    pos = r;
    if (delta) {
      add64(pSeqLo, pSeqHi, unzigLo(), unzigHi());
      seqLo = rlo; seqHi = rhi;
    } else {
      seqLo = vlo; seqHi = vhi;
    }
  }
  // timestamp: unzigzag, then + base (delta: + the previous timestamp), i64 wrapping
  r = readVaru(bytes, pos, end);
  if (r < 0) return r;
  pos = r;
  add64(delta ? pTsLo : baseLo, delta ? pTsHi : baseHi, unzigLo(), unzigHi());
  const tsLo = rlo, tsHi = rhi;
  // key
  r = readVaru(bytes, pos, end);
  if (r < 0) return r;
  pos = r;
  if (vhi !== 0 || vlo > MAX_LEN) return INVALID;
  const keyLen = vlo;
  if (keyLen > end - pos) return TRUNCATED;
  const keyOff = pos;
  pos += keyLen;
  let valOff = 0, valLen = 0;
  if (kind === RecordKind.Value) {
    r = readVaru(bytes, pos, end);
    if (r < 0) return r;
    pos = r;
    if (vhi !== 0 || vlo > MAX_LEN) return INVALID;
    valLen = vlo;
    if (valLen > end - pos) return TRUNCATED;
    valOff = pos;
    pos += valLen;
  }
  d[w] = tsLo; d[w + 1] = tsHi; d[w + 2] = seqLo; d[w + 3] = seqHi;
  d[w + 4] = node; d[w + 5] = kind; d[w + 6] = keyOff; d[w + 7] = keyLen;
  d[w + 8] = valOff; d[w + 9] = valLen;
  pNode = node; pSeqLo = seqLo; pSeqHi = seqHi; pTsLo = tsLo; pTsHi = tsHi;
  return pos;
}

/** Delta mode: the previous record's node, seq and timestamp halves (reset per decode). */
let pNode = 0, pSeqLo = 0, pSeqHi = 0, pTsLo = 0, pTsHi = 0;

/** Halves of the i64 whose zigzag is (vlo, vhi). */
const unzigLo = () => (((vlo >>> 1) | (vhi << 31)) ^ -(vlo & 1)) >>> 0;
const unzigHi = () => ((vhi >>> 1) ^ -(vlo & 1)) >>> 0;

/** Result registers of readVaru (module-level so the hot path allocates nothing). */
let vlo = 0;
let vhi = 0;

/** Reads a varu at `pos` into (vlo, vhi); returns the next position, TRUNCATED or INVALID. */
function readVaru(bytes: Uint8Array, pos: number, end: number): number {
  let lo = 0, hi = 0;
  for (let n = 0; n < 10; n++) {
    if (pos >= end) return TRUNCATED;
    const b = bytes[pos++]!;
    const bits = b & 0x7f;
    if (n < 4) lo |= bits << (7 * n);
    else if (n === 4) { lo |= bits << 28; hi = bits >>> 4; }
    else if (n < 9) hi |= bits << (7 * n - 32);
    else if (b > 1) return INVALID; // 10th byte: only bit 63 is left
    else hi |= b << 31;
    if (b < 0x80) {
      vlo = lo >>> 0;
      vhi = hi >>> 0;
      return pos;
    }
  }
  return INVALID;
}

function u32At(b: Uint8Array, p: number): number {
  return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
}

/** Why a frame at `pos` is not valid (0 = valid, else a STOP_REASONS index); fills d[w..]. */
function checkFrame(bytes: Uint8Array, pos: number, baseLo: number, baseHi: number, d: Uint32Array, w: number): number {
  const len = bytes.length;
  if (len - pos < FRAME_HEADER_BYTES) return 1; // torn
  const bodyLen = u32At(bytes, pos);
  const crc = u32At(bytes, pos + 4);
  if (bodyLen === 0 && crc === 0) return 2; // zero
  if (bodyLen > len - pos - FRAME_HEADER_BYTES) return 1; // torn
  const body = pos + FRAME_HEADER_BYTES;
  if (crc32Reference(bytes.subarray(body, body + bodyLen)) !== crc) return 3; // crc
  if (parseBody(bytes, body, body + bodyLen, baseLo, baseHi, d, w, false) !== body + bodyLen) return 4; // malformed
  d[w + 10] = pos;
  d[w + 11] = FRAME_HEADER_BYTES + bodyLen;
  return 0;
}

export function decodeRecordsReference(bytes: Uint8Array, framing: Framing, base: number, maxRecords?: number): DecodedBatch {
  const max = maxRecordsOf(maxRecords);
  const baseLo = lo32(base), baseHi = hi32(base) >>> 0;
  const len = bytes.length;
  const delta = framing === "delta";
  pNode = 0; pSeqLo = 0; pSeqHi = 0; pTsLo = baseLo; pTsHi = baseHi;
  let d = new Uint32Array(DESCRIPTOR_WORDS * 64);
  let count = 0;
  let pos = 0;
  let reason = 0;
  for (;;) {
    if (pos === len) break;
    if (count >= max) { reason = 5; break; }
    if ((count + 1) * DESCRIPTOR_WORDS > d.length) {
      const g = new Uint32Array(d.length * 2);
      g.set(d);
      d = g;
    }
    const w = count * DESCRIPTOR_WORDS;
    if (framing === "framed") {
      reason = checkFrame(bytes, pos, baseLo, baseHi, d, w);
      if (reason !== 0) break;
      pos += d[w + 11]!;
    } else {
      const r = parseBody(bytes, pos, len, baseLo, baseHi, d, w, delta);
      if (r < 0) { reason = r === TRUNCATED ? 1 : 4; break; }
      d[w + 10] = pos;
      d[w + 11] = r - pos;
      pos = r;
    }
    count++;
  }
  const descriptors = new Uint8Array(d.buffer, 0, count * DESCRIPTOR_WORDS * 4).slice();
  return new BatchView(bytes, descriptors, count, { reason: STOP_REASONS[reason]!, offset: pos });
}

export function findNextValidFrameReference(bytes: Uint8Array, from: number): number {
  const d = new Uint32Array(DESCRIPTOR_WORDS);
  for (let p = from > 0 ? Math.floor(from) : 0; p + FRAME_HEADER_BYTES <= bytes.length; p++) {
    const bodyLen = u32At(bytes, p);
    if (bodyLen === 0 || bodyLen > bytes.length - p - FRAME_HEADER_BYTES) continue;
    if (checkFrame(bytes, p, 0, 0, d, 0) === 0) return p;
  }
  return -1;
}
