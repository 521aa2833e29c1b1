/**
 * Entry record codec kernel (docs/FORMAT.md §1–2); TS twin: src/codec/records.ts.
 *
 * Body:   u8 kind | varu node (≤ 2^32−1) | varu seq | zvar (timestamp − base)
 *         | varu keyLen (≤ 2^31−1) | key | [kind 1, 5: varu valueLen (≤ 2^31−1) | value]
 *         (kind 5: the value field is i64 LE expiresAt • value, so valueLen ≥ 8;
 *         kind 7: keyLen 0, timestamp = count in 2…10 000, 1 ≤ seq ≤ 2^48 − count + 1)
 * Framed: u32 bodyLen | u32 crc32(body) | body
 * Delta (§1.1, bodies back to back, each against the previous record of the batch):
 *         u8 head (kind | 8 if node follows | S << 4) | [varu node] | [S = 0: zvar seq delta]
 *         | zvar (timestamp − previous timestamp) | key and value as in a body
 *
 * Descriptor (48 B, assembly/record.ts D_*) written per decoded record, offsets
 * relative to the input start.
 *
 * Invariant: no load past `end`; every claimed length is compared with the bytes that
 * remain before it is used. Problems are reported in field order, exactly as the twin.
 */
import { crc32, crc32x4 } from "./crc";
import { MB_STOP_OFFSET, MB_STOP_REASON, R_DESC, R_OUT, REGION_MAX, SCRATCH, ensureRegion, mailbox } from "./layout";
import { DESC_BYTES, D_KEY_LEN, D_KEY_OFF, D_KIND, D_NODE, D_REC_LEN, D_REC_OFF, D_SEQ_LO, D_TS_LO, D_VAL_LEN, D_VAL_OFF } from "./record";

/** Descriptors that fit one region (22,369,621): decode stops with STOP_LIMIT there (index.ts). */
export const DESC_MAX: u32 = <u32>(REGION_MAX / DESC_BYTES);
const FRAME_HEADER: usize = 8;
const MAX_LEN: u64 = 0x7fffffff;

// Stop reasons (src/codec/records.ts STOP_REASONS; frozen, append only).
export const STOP_END: u32 = 0;
export const STOP_TORN: u32 = 1;
export const STOP_ZERO: u32 = 2;
export const STOP_CRC: u32 = 3;
export const STOP_MALFORMED: u32 = 4;
export const STOP_LIMIT: u32 = 5;

// Record modes (the `mode` argument of decode/encode; src/codec/kernel-codec.ts MODES).
export const MODE_BARE: u32 = 0;
export const MODE_FRAMED: u32 = 1;
export const MODE_DELTA: u32 = 2;

/** `encode` result when the output would exceed REGION_MAX (src/kernel/abi.ts ENCODE_TOO_LARGE). */
export const ENCODE_TOO_LARGE: u32 = u32.MAX_VALUE;

/** Kind 5's value field starts with its expiry, an i64 (src/core/record.ts EXPIRY_BYTES). */
const EXPIRY_BYTES: u64 = 8;

/** Kinds with a value field: 1, and 5 (expiry + value). */
// @ts-ignore: decorator
@inline export function hasValue(kind: u32): bool {
  return kind == 1 || kind == 5;
}

/** Batch range bounds (src/core/record.ts BATCH_RANGE_MIN, _MAX, _MAX_SEQ). */
const RANGE_MIN: i64 = 2;
const RANGE_MAX: i64 = 10000;
const RANGE_MAX_SEQ: u64 = 0x1000000000000;

// parse results besides a position
const TRUNC: usize = <usize>-1;
const INVALID: usize = <usize>-2;

/** Value register of readVaru (a global: no multi-value returns needed). */
let vval: u64 = 0;

/** Delta mode: the previous record's node, seq and timestamp (first record: 0, 0, base). */
let prevNode: u32 = 0;
let prevSeq: u64 = 0;
let prevTs: i64 = 0;

/** LEB128 at p (< end); ≤ 10 bytes, the 10th only 0 or 1. Returns the next position, TRUNC or INVALID. */
// @ts-ignore: decorator
@inline function readVaru(p: usize, end: usize): usize {
  if (p >= end) return TRUNC;
  let b = <u64>load<u8>(p);
  if (b < 0x80) {
    vval = b;
    return p + 1;
  }
  let v: u64 = b & 0x7f;
  for (let n: u64 = 1; n < 10; n++) {
    if (++p >= end) return TRUNC;
    b = <u64>load<u8>(p);
    if (n == 9 && b > 1) return INVALID;
    v |= (b & 0x7f) << (7 * n);
    if (b < 0x80) {
      vval = v;
      return p + 1;
    }
  }
  return INVALID;
}

/**
 * Parses one body in [p, end) into descriptor d (fields 0..40), offsets relative to `inp`.
 * Returns the position after the body, TRUNC or INVALID. `delta`: a delta-coded body
 * (§1.1) read against, and then stored into, prevNode/prevSeq/prevTs.
 */
function parseBody(p: usize, end: usize, base: i64, d: usize, inp: usize, delta: bool): usize {
  if (p >= end) return TRUNC;
  const head = <u32>load<u8>(p++);
  const kind = delta ? head & 7 : head;
  if (kind > 7) return INVALID; // 5: expiring value; 6: batch head (WAL); 7: batch range (snapshot)
  let node = prevNode;
  if (!delta || (head & 8) != 0) {
    p = readVaru(p, end);
    if (p >= INVALID) return p;
    if (vval > 0xffffffff) return INVALID;
    node = <u32>vval;
  }
  let seq: u64;
  if (delta && head >= 16) {
    seq = prevSeq + <u64>(head >> 4);
  } else {
    p = readVaru(p, end);
    if (p >= INVALID) return p;
    seq = delta ? prevSeq + ((vval >> 1) ^ (0 - (vval & 1))) : vval;
  }
  p = readVaru(p, end);
  if (p >= INVALID) return p;
  const ts = (delta ? prevTs : base) + <i64>((vval >> 1) ^ (0 - (vval & 1)));
  p = readVaru(p, end);
  if (p >= INVALID) return p;
  if (vval > MAX_LEN) return INVALID;
  const keyLen = <usize>vval;
  if (keyLen > end - p) return TRUNC;
  const keyOff = p;
  p += keyLen;
  // Kind 7 (a batch range, src/core/record.ts): no key, count = timestamp in 2…10 000, 1 ≤ first, last seq ≤ 2^48.
  if (kind == 7 && (keyLen != 0 || ts < RANGE_MIN || ts > RANGE_MAX || seq == 0 || seq > RANGE_MAX_SEQ + 1 - <u64>ts)) return INVALID;
  let valOff: usize = 0;
  let valLen: usize = 0;
  if (kind == 1 || kind == 5) {
    p = readVaru(p, end);
    if (p >= INVALID) return p;
    if (vval > MAX_LEN || (kind == 5 && vval < EXPIRY_BYTES)) return INVALID;
    valLen = <usize>vval;
    if (valLen > end - p) return TRUNC;
    valOff = p - inp;
    p += valLen;
  }
  store<i64>(d, ts, D_TS_LO << 2);
  store<u64>(d, seq, D_SEQ_LO << 2);
  store<u32>(d, node, D_NODE << 2);
  store<u32>(d, kind, D_KIND << 2);
  store<u32>(d, <u32>(keyOff - inp), D_KEY_OFF << 2);
  store<u32>(d, <u32>keyLen, D_KEY_LEN << 2);
  store<u32>(d, <u32>valOff, D_VAL_OFF << 2);
  store<u32>(d, <u32>valLen, D_VAL_LEN << 2);
  prevNode = node;
  prevSeq = seq;
  prevTs = ts;
  return p;
}

/**
 * Checks the frame at p whose CRC is `crc` (already computed): returns 0 and fills d,
 * or the STOP_* reason. The header must be inside [p, end) (checked by the caller).
 */
function checkFrame(p: usize, end: usize, crc: u32, base: i64, d: usize, inp: usize): u32 {
  const bodyLen = <usize>load<u32>(p);
  if (crc != load<u32>(p, 4)) return STOP_CRC;
  const body = p + FRAME_HEADER;
  if (parseBody(body, body + bodyLen, base, d, inp, false) != body + bodyLen) return STOP_MALFORMED;
  store<u32>(d, <u32>(p - inp), D_REC_OFF << 2);
  store<u32>(d, <u32>(FRAME_HEADER + bodyLen), D_REC_LEN << 2);
  return 0;
}

/** Header-level verdict for a frame at p: 0 when its body fits, else STOP_TORN/STOP_ZERO. */
// @ts-ignore: decorator
@inline function frameFits(p: usize, end: usize): u32 {
  if (end - p < FRAME_HEADER) return STOP_TORN;
  const bodyLen = <usize>load<u32>(p);
  if (bodyLen == 0 && load<u32>(p, 4) == 0) return STOP_ZERO;
  if (bodyLen > end - p - FRAME_HEADER) return STOP_TORN;
  return 0;
}

/**
 * Decodes [inp, inp+len) into descriptors in region R_DESC; returns the count. The stop
 * reason and offset go to the mailbox. Framed CRCs are computed four frames at a time in
 * lockstep (the next frames' headers are read ahead; their bodies are verified in order).
 */
export function decode(inp: usize, len: usize, mode: u32, base: i64, maxRecords: u32): u32 {
  const end = inp + len;
  const framed = mode == MODE_FRAMED;
  const delta = mode == MODE_DELTA;
  prevNode = 0;
  prevSeq = 0;
  prevTs = base;
  let descCap: usize = 256;
  let desc = ensureRegion(R_DESC, descCap * DESC_BYTES, false);
  let count: u32 = 0;
  let pos = inp;
  let reason = STOP_END;
  // lookahead scratch: 4 × (start u32) at SCRATCH, 4 CRCs at SCRATCH + 16
  while (pos != end) {
    let k: usize = 0;
    if (framed) {
      let q = pos;
      while (k < 4 && frameFits(q, end) == 0) {
        store<u32>(SCRATCH + (k << 2), <u32>q);
        k++;
        q += FRAME_HEADER + <usize>load<u32>(q);
      }
      if (k == 4) {
        const a = <usize>load<u32>(SCRATCH), b = <usize>load<u32>(SCRATCH, 4);
        const c = <usize>load<u32>(SCRATCH, 8), e = <usize>load<u32>(SCRATCH, 12);
        crc32x4(a + 8, load<u32>(a), b + 8, load<u32>(b), c + 8, load<u32>(c), e + 8, load<u32>(e), SCRATCH + 16);
      } else {
        for (let j: usize = 0; j < k; j++) {
          const a = <usize>load<u32>(SCRATCH + (j << 2));
          store<u32>(SCRATCH + 16 + (j << 2), crc32(0, a + 8, load<u32>(a)));
        }
      }
    }
    const rounds: usize = k == 0 ? 1 : k;
    for (let j: usize = 0; j < rounds; j++) {
      if (pos == end) break;
      if (count >= maxRecords) {
        reason = STOP_LIMIT;
        break;
      }
      if (<usize>(count + 1) > descCap) {
        descCap = min(descCap << 1, <usize>DESC_MAX); // DESC_MAX × 48 = REGION_MAX: no u32 wrap
        desc = ensureRegion(R_DESC, descCap * DESC_BYTES, true);
      }
      const d = desc + <usize>count * DESC_BYTES;
      if (framed) {
        if (j >= k) {
          reason = frameFits(pos, end);
          if (reason == 0) reason = STOP_CRC; // bodyLen 0 with a non-zero CRC
          break;
        }
        reason = checkFrame(pos, end, load<u32>(SCRATCH + 16 + (j << 2)), base, d, inp);
        if (reason != 0) break;
        pos += <usize>load<u32>(d, D_REC_LEN << 2);
      } else {
        const r = parseBody(pos, end, base, d, inp, delta);
        if (r >= INVALID) {
          reason = r == TRUNC ? STOP_TORN : STOP_MALFORMED;
          break;
        }
        store<u32>(d, <u32>(pos - inp), D_REC_OFF << 2);
        store<u32>(d, <u32>(r - pos), D_REC_LEN << 2);
        pos = r;
      }
      count++;
    }
    if (reason != STOP_END) break;
  }
  store<u32>(mailbox(MB_STOP_REASON), reason);
  store<u32>(mailbox(MB_STOP_OFFSET), <u32>(pos - inp));
  return count;
}

/**
 * Offset of the first valid frame at or after `from` (fits, CRC matches, body parses
 * exactly), or -1. A CRC is computed only where a header's length fits the buffer.
 */
export function findFrame(inp: usize, len: usize, from: usize): i32 {
  const end = inp + len;
  const d = SCRATCH + 64;
  for (let p = inp + from; p < end && end - p >= FRAME_HEADER; p++) {
    const bodyLen = <usize>load<u32>(p);
    if (bodyLen == 0 || bodyLen > end - p - FRAME_HEADER) continue;
    if (checkFrame(p, end, crc32(0, p + FRAME_HEADER, bodyLen), 0, d, inp) == 0) return <i32>(p - inp);
  }
  return -1;
}

// ---------------------------------------------------------------------------------
// encode

// @ts-ignore: decorator
@inline function varuSize(v: u64): usize {
  return <usize>((70 - clz<u64>(v | 1)) / 7);
}

// @ts-ignore: decorator
@inline function writeVaru(p: usize, v: u64): usize {
  while (v >= 0x80) {
    store<u8>(p++, <u8>(v | 0x80));
    v >>= 7;
  }
  store<u8>(p, <u8>v);
  return p + 1;
}

// @ts-ignore: decorator
@inline function zigzag(v: i64): u64 {
  return <u64>((v << 1) ^ (v >> 63));
}

/**
 * Encodes `n` records described by descriptors at `desc` (fields 0..36; key/value
 * offsets relative to `data`) into region R_OUT; returns the byte length. With `pick`
 * (not 0), record j is descriptor `pick[j * stride]` instead of descriptor j: a merge's
 * winners (entry, slot, prev) are framed for the log straight from the batch they came
 * from, with stride 3. Descriptors are only read. Framed CRCs are computed after all
 * bodies, four frames at a time. Inputs are trusted (the JS side validated kinds, nodes
 * and lengths; the export checks the addresses).
 */
// @ts-ignore: decorator
@inline function descAt(desc: usize, pick: usize, stride: u32, i: u32): usize {
  return desc + <usize>(pick == 0 ? i : load<u32>(pick + (<usize>i * stride << 2))) * DESC_BYTES;
}

export function encode(desc: usize, n: u32, data: usize, mode: u32, base: i64, pick: usize, stride: u32): u32 {
  const framed = mode == MODE_FRAMED;
  const delta = mode == MODE_DELTA;
  let total: u64 = 0; // u64 sums: key + value lengths (2^31 each) and n of them must not wrap
  let pn: u32 = 0;
  let ps: u64 = 0;
  let pt: i64 = base;
  for (let i: u32 = 0; i < n; i++) {
    const d = descAt(desc, pick, stride, i);
    const keyLen = <usize>load<u32>(d, D_KEY_LEN << 2);
    const node = load<u32>(d, D_NODE << 2);
    const seq = load<u64>(d, D_SEQ_LO << 2);
    let size = <u64>(1 + varuSize(zigzag(load<i64>(d, D_TS_LO << 2) - pt)) + varuSize(<u64>keyLen)) + <u64>keyLen;
    if (delta) {
      if (node != pn) size += <u64>varuSize(<u64>node);
      if (seq - ps - 1 >= 15) size += <u64>varuSize(zigzag(<i64>(seq - ps)));
      pn = node;
      ps = seq;
      pt = load<i64>(d, D_TS_LO << 2);
    } else {
      size += <u64>(varuSize(<u64>node) + varuSize(seq));
    }
    if (hasValue(load<u32>(d, D_KIND << 2))) {
      const valLen = <usize>load<u32>(d, D_VAL_LEN << 2);
      size += <u64>varuSize(<u64>valLen) + <u64>valLen;
    }
    total += size + (framed ? <u64>FRAME_HEADER : 0);
  }
  if (total > <u64>REGION_MAX) return ENCODE_TOO_LARGE;
  const out = ensureRegion(R_OUT, <usize>total, false);
  let p = out;
  pn = 0;
  ps = 0;
  pt = base;
  for (let i: u32 = 0; i < n; i++) {
    const d = descAt(desc, pick, stride, i);
    const frame = p;
    if (framed) p += FRAME_HEADER;
    const body = p;
    const kind = load<u32>(d, D_KIND << 2);
    const node = load<u32>(d, D_NODE << 2);
    const seq = load<u64>(d, D_SEQ_LO << 2);
    const ts = load<i64>(d, D_TS_LO << 2);
    if (delta) {
      const step = seq - ps;
      const small = step - 1 < 15;
      store<u8>(p++, <u8>(kind | (node != pn ? 8 : 0) | (small ? <u32>step << 4 : 0)));
      if (node != pn) p = writeVaru(p, <u64>node);
      if (!small) p = writeVaru(p, zigzag(<i64>step));
      p = writeVaru(p, zigzag(ts - pt));
      pn = node;
      ps = seq;
      pt = ts;
    } else {
      store<u8>(p++, <u8>kind);
      p = writeVaru(p, <u64>node);
      p = writeVaru(p, seq);
      p = writeVaru(p, zigzag(ts - base));
    }
    const keyLen = <usize>load<u32>(d, D_KEY_LEN << 2);
    p = writeVaru(p, <u64>keyLen);
    memory.copy(p, data + <usize>load<u32>(d, D_KEY_OFF << 2), keyLen);
    p += keyLen;
    if (hasValue(kind)) {
      const valLen = <usize>load<u32>(d, D_VAL_LEN << 2);
      p = writeVaru(p, <u64>valLen);
      memory.copy(p, data + <usize>load<u32>(d, D_VAL_OFF << 2), valLen);
      p += valLen;
    }
    if (framed) store<u32>(frame, <u32>(p - body));
  }
  if (framed) {
    // The frames lie back to back from `out`: each one's length word leads to the next.
    let i: u32 = 0;
    let f = out;
    for (; i + 4 <= n; i += 4) {
      const a = f;
      const b = a + FRAME_HEADER + <usize>load<u32>(a);
      const c = b + FRAME_HEADER + <usize>load<u32>(b);
      const e = c + FRAME_HEADER + <usize>load<u32>(c);
      f = e + FRAME_HEADER + <usize>load<u32>(e);
      crc32x4(a + 8, load<u32>(a), b + 8, load<u32>(b), c + 8, load<u32>(c), e + 8, load<u32>(e), SCRATCH + 16);
      store<u32>(a, load<u32>(SCRATCH + 16), 4);
      store<u32>(b, load<u32>(SCRATCH + 20), 4);
      store<u32>(c, load<u32>(SCRATCH + 24), 4);
      store<u32>(e, load<u32>(SCRATCH + 28), 4);
    }
    for (; i < n; i++) {
      store<u32>(f, crc32(0, f + 8, load<u32>(f)), 4);
      f += FRAME_HEADER + <usize>load<u32>(f);
    }
  }
  return <u32>total;
}
