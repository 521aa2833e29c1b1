/**
 * The record codec in TS (docs/FORMAT.md §1–2; the format is described in ./records.ts):
 * the kernel's twin, byte for byte and descriptor word for word. It is the oracle of the
 * property tests, and the WAL uses its decoder for small scans (no kernel round trip).
 *
 *   encodeRecordsReference(records, "framed", base)   ≡ encodeRecords(…)
 *   decodeRecordsReference(bytes, "framed", base)     ≡ decodeRecords(…), descriptors copied
 *
 * 64-bit fields move as u32 halves (src/core/encoding.ts); the delta registers and the
 * 64-bit result registers are module-level so a decode allocates only its descriptors.
 */
import { crc32Reference } from "./crc.js";
import { BatchView, checkRecord, maxRecordsOf } from "./batch.js";
import {
  DESCRIPTOR_BYTES, DESCRIPTOR_WORDS, D_KEY_LEN, D_KEY_OFF, D_KIND, D_NODE, D_REC_LEN, D_REC_OFF, D_SEQ_HI, D_SEQ_LO, D_TS_HI, D_TS_LO,
  BATCH_RANGE_MAX, BATCH_RANGE_MAX_SEQ, BATCH_RANGE_MIN, D_VAL_LEN, D_VAL_OFF, EXPIRY_BYTES, FRAME_HEADER_BYTES, RecordKind, STOP_REASONS, hasValue, type DecodedBatch, type Framing, type RecordInput,
} from "../core/record.js";
import {
  VAR_INVALID, VAR_TRUNCATED, hi32, lo32, readVarU64, toBytes, unzigzagHi, unzigzagLo, varOut, varU64Size, writeVarU64, zigzagHi, zigzagLo,
} from "../core/encoding.js";

const MAX_LEN = 0x7fffffff;

// ---------------------------------------------------------------------------------
// encode

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
    const key = (keys[i] = toBytes(r.key));
    if (key.length > MAX_LEN) throw new TypeError(`record ${i}: key too large`);
    let size: number;
    if (delta) {
      const node = r.node >>> 0;
      const sLo = lo32(r.seq), sHi = hi32(r.seq) >>> 0, tLo = lo32(r.timestamp), tHi = hi32(r.timestamp) >>> 0;
      sub64(tLo, tHi, ptLo, ptHi);
      halves[i * 4] = zigzagLo(rlo, rhi); halves[i * 4 + 1] = zigzagHi(rlo, rhi);
      size = 1 + varU64Size(halves[i * 4]!, halves[i * 4 + 1]!) + (node !== pn ? varU64Size(node, 0) : 0);
      sub64(sLo, sHi, psLo, psHi);
      const small = rhi === 0 && rlo >= 1 && rlo <= 15;
      heads[i] = r.kind | (node !== pn ? 8 : 0) | (small ? rlo << 4 : 0);
      if (!small) {
        halves[i * 4 + 2] = zigzagLo(rlo, rhi); halves[i * 4 + 3] = zigzagHi(rlo, rhi);
        size += varU64Size(halves[i * 4 + 2]!, halves[i * 4 + 3]!);
      }
      pn = node; psLo = sLo; psHi = sHi; ptLo = tLo; ptHi = tHi;
    } else {
      sub64(lo32(r.timestamp), hi32(r.timestamp) >>> 0, ptLo, ptHi);
      const slo = lo32(r.seq), shi = hi32(r.seq) >>> 0;
      halves[i * 4] = zigzagLo(rlo, rhi); halves[i * 4 + 1] = zigzagHi(rlo, rhi); halves[i * 4 + 2] = slo; halves[i * 4 + 3] = shi;
      size = 1 + varU64Size(r.node >>> 0, 0) + varU64Size(slo, shi) + varU64Size(halves[i * 4]!, halves[i * 4 + 1]!);
    }
    size += varU64Size(key.length, 0) + key.length;
    if (hasValue(r.kind)) {
      size += varU64Size(r.value!.length, 0) + r.value!.length;
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
      if (head & 8) pos = writeVarU64(out, pos, r.node >>> 0, 0);
      if (head < 16) pos = writeVarU64(out, pos, halves[i * 4 + 2]!, halves[i * 4 + 3]!);
    } else {
      out[pos++] = r.kind;
      pos = writeVarU64(out, pos, r.node >>> 0, 0);
      pos = writeVarU64(out, pos, halves[i * 4 + 2]!, halves[i * 4 + 3]!);
    }
    pos = writeVarU64(out, pos, halves[i * 4]!, halves[i * 4 + 1]!);
    pos = writeVarU64(out, pos, key.length, 0);
    out.set(key, pos);
    pos += key.length;
    if (hasValue(r.kind)) {
      const v = r.value!;
      pos = writeVarU64(out, pos, v.length, 0);
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

// ---------------------------------------------------------------------------------
// decode

// V8 does not constant-fold imported bindings in optimized code, but it does fold a
// module's own consts: the decode loop reads these aliases (measured on Node 20: 15–25 %
// slower reading the imports directly).
const TS_LO = D_TS_LO, TS_HI = D_TS_HI, SEQ_LO = D_SEQ_LO, SEQ_HI = D_SEQ_HI, NODE = D_NODE, KIND = D_KIND;
const KEY_OFF = D_KEY_OFF, KEY_LEN = D_KEY_LEN, VAL_OFF = D_VAL_OFF, VAL_LEN = D_VAL_LEN, REC_OFF = D_REC_OFF, REC_LEN = D_REC_LEN;
const VALUE = RecordKind.Value, EXPIRING = RecordKind.Expiring, RANGE = RecordKind.BatchRange, LAST_KIND = RecordKind.BatchRange;
const RANGE_MIN = BATCH_RANGE_MIN, RANGE_MAX = BATCH_RANGE_MAX, RANGE_MAX_SEQ = BATCH_RANGE_MAX_SEQ;
const readVar = readVarU64, unzigLo = unzigzagLo, unzigHi = unzigzagHi, v = varOut;

/** parseBody's failures, the same codes as readVarU64's. */
const TRUNCATED = VAR_TRUNCATED;
const INVALID = VAR_INVALID;

/**
 * Parses one body in `bytes[pos, end)` into the descriptor at `d[w]` (D_REC_OFF/D_REC_LEN
 * left to the caller). Returns the position after the body, TRUNCATED or INVALID — the
 * first problem met in field order, exactly as the kernel does. `delta`: a delta-coded
 * body, read against (then stored into) the previous record's registers below.
 */
function parseBody(bytes: Uint8Array, pos: number, end: number, baseLo: number, baseHi: number, d: Uint32Array, w: number, delta: boolean): number {
  if (pos >= end) return TRUNCATED;
  const head = bytes[pos++]!;
  const kind = delta ? head & 7 : head;
  if (kind > LAST_KIND) return INVALID;
  let r: number;
  // node
  let node = pNode;
  if (!delta || (head & 8) !== 0) {
    r = readVar(bytes, pos, end);
    if (r < 0) return r;
    pos = r;
    if (v.hi !== 0) return INVALID;
    node = v.lo;
  }
  // seq (delta: previous + S, or previous + a zvar step)
  let seqLo: number, seqHi: number;
  if (delta && head >= 16) {
    add64(pSeqLo, pSeqHi, head >>> 4, 0);
    seqLo = rlo; seqHi = rhi;
  } else {
    r = readVar(bytes, pos, end);
    if (r < 0) return r;
    pos = r;
    if (delta) {
      add64(pSeqLo, pSeqHi, unzigLo(v.lo, v.hi), unzigHi(v.lo, v.hi));
      seqLo = rlo; seqHi = rhi;
    } else {
      seqLo = v.lo; seqHi = v.hi;
    }
  }
  // timestamp: unzigzag, then + base (delta: + the previous timestamp), i64 wrapping
  r = readVar(bytes, pos, end);
  if (r < 0) return r;
  pos = r;
  add64(delta ? pTsLo : baseLo, delta ? pTsHi : baseHi, unzigLo(v.lo, v.hi), unzigHi(v.lo, v.hi));
  const tsLo = rlo, tsHi = rhi;
  // key
  r = readVar(bytes, pos, end);
  if (r < 0) return r;
  pos = r;
  if (v.hi !== 0 || v.lo > MAX_LEN) return INVALID;
  const keyLen = v.lo;
  if (keyLen > end - pos) return TRUNCATED;
  const keyOff = pos;
  pos += keyLen;
  // Kind 7 (a batch range): no key, count = timestamp in RANGE_MIN…RANGE_MAX, 1 ≤ first, last seq ≤ RANGE_MAX_SEQ.
  if (kind === RANGE && (keyLen !== 0 || tsHi !== 0 || tsLo < RANGE_MIN || tsLo > RANGE_MAX || (seqLo | seqHi) === 0 ||
    seqHi > RANGE_MAX_SEQ / 4294967296 || seqHi * 4294967296 + seqLo > RANGE_MAX_SEQ - tsLo + 1)) return INVALID;
  let valOff = 0, valLen = 0;
  if (kind === VALUE || kind === EXPIRING) {
    r = readVar(bytes, pos, end);
    if (r < 0) return r;
    pos = r;
    if (v.hi !== 0 || v.lo > MAX_LEN || (kind === EXPIRING && v.lo < EXPIRY_BYTES)) return INVALID;
    valLen = v.lo;
    if (valLen > end - pos) return TRUNCATED;
    valOff = pos;
    pos += valLen;
  }
  d[w + TS_LO] = tsLo; d[w + TS_HI] = tsHi; d[w + SEQ_LO] = seqLo; d[w + SEQ_HI] = seqHi;
  d[w + NODE] = node; d[w + KIND] = kind; d[w + KEY_OFF] = keyOff; d[w + KEY_LEN] = keyLen;
  d[w + VAL_OFF] = valOff; d[w + VAL_LEN] = valLen;
  pNode = node; pSeqLo = seqLo; pSeqHi = seqHi; pTsLo = tsLo; pTsHi = tsHi;
  return pos;
}

/** Delta mode: the previous record's node, seq and timestamp halves (reset per decode). */
let pNode = 0, pSeqLo = 0, pSeqHi = 0, pTsLo = 0, pTsHi = 0;

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
  d[w + REC_OFF] = pos;
  d[w + REC_LEN] = FRAME_HEADER_BYTES + bodyLen;
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
      pos += d[w + REC_LEN]!;
    } else {
      const r = parseBody(bytes, pos, len, baseLo, baseHi, d, w, delta);
      if (r < 0) { reason = r === TRUNCATED ? 1 : 4; break; }
      d[w + REC_OFF] = pos;
      d[w + REC_LEN] = r - pos;
      pos = r;
    }
    count++;
  }
  const descriptors = new Uint8Array(d.buffer, 0, count * DESCRIPTOR_BYTES).slice();
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
