/**
 * Byte encodings every layer shares: 64-bit integers as u32 halves, LEB128 varints,
 * zigzag, UTF-8. Paired writers and readers, lib0 style: a writer takes `(out, pos, …)`
 * and returns the position after what it wrote; a reader takes `(bytes, pos, end)`.
 *
 *   let pos = writeVarU64(out, 0, lo32(seq), hi32(seq));   // varU64Size(lo, hi) bytes
 *   pos = readVarU64(bytes, 0, bytes.length);               // value in varOut.lo, varOut.hi
 *   pos = writeUtf8(out, pos, "key");  readUtf8(out, start, pos) === "key"
 *
 * 64-bit values travel as (lo, hi) u32 halves: JS numbers are exact only to 2^53, and
 * the kernel's ABI passes i64/u64 as two i32. Readers that return two values leave them
 * in `varOut` (nothing allocated on the hot path).
 *
 * Every runtime wavekv targets is little-endian (checked once below): descriptors and
 * linear memory are read through Uint32Array views that match the byte layout.
 */

if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) {
  throw new Error("wavekv needs a little-endian platform (descriptors and linear memory are LE)");
}

// ---------------------------------------------------------------------------------
// 64-bit integers as u32 halves

export const TWO32 = 4294967296;

/** Low u32 half of an integer-valued number (two's complement for negatives). */
export function lo32(n: number): number {
  return (n - Math.floor(n / TWO32) * TWO32) >>> 0;
}
/** High half as a signed i32 (i64 view); for u64 values below 2^63 it is the same bits. */
export function hi32(n: number): number {
  return Math.floor(n / TWO32) | 0;
}
/** u64 from halves; exact below 2^53. */
export function joinU64(lo: number, hi: number): number {
  return (hi >>> 0) * TWO32 + (lo >>> 0);
}
/** i64 from halves; exact for |v| < 2^53. */
export function joinI64(lo: number, hi: number): number {
  return (hi | 0) * TWO32 + (lo >>> 0);
}

/** A limit as u32: ≥ 2^32−1 (Infinity included) saturates, negatives and NaN become 0. */
export function clampU32(n: number): number {
  return n >= 0xffffffff ? 0xffffffff : n > 0 ? Math.floor(n) : 0;
}

/** An i64 limit as (lo, hi) halves, saturating outside ±2^63 (±Infinity included). */
export function i64Halves(n: number): [lo: number, hi: number] {
  if (n >= 2 ** 63) return [0xffffffff, 0x7fffffff];
  if (n < -(2 ** 63) || Number.isNaN(n)) return [0, -0x80000000];
  return [lo32(n), hi32(n)];
}

/** An ack (u64) as both delta selectors read it: floor, saturating; NaN/negative = 0. */
export function ackHalves(a: number): [lo: number, hi: number] {
  if (a >= 2 ** 64) return [0xffffffff, 0xffffffff];
  if (!(a > 0)) return [0, 0];
  const f = Math.floor(a);
  return [lo32(f), hi32(f) >>> 0];
}

// ---------------------------------------------------------------------------------
// zigzag: an i64 (lo, hi) ↔ the u64 (lo, hi) whose varint encodes it

/** Low half of zigzag(lo, hi) (the i64 0, -1, 1, -2 … ↦ 0, 1, 2, 3 …). */
export function zigzagLo(lo: number, hi: number): number {
  return ((lo << 1) ^ (hi >> 31)) >>> 0;
}
/** High half of zigzag(lo, hi). */
export function zigzagHi(lo: number, hi: number): number {
  return (((hi << 1) | (lo >>> 31)) ^ (hi >> 31)) >>> 0;
}
/** Low half of the i64 whose zigzag is (lo, hi). */
export function unzigzagLo(lo: number, hi: number): number {
  return (((lo >>> 1) | (hi << 31)) ^ -(lo & 1)) >>> 0;
}
/** High half (as u32 bits) of the i64 whose zigzag is (lo, hi). */
export function unzigzagHi(lo: number, hi: number): number {
  return ((hi >>> 1) ^ -(lo & 1)) >>> 0;
}

// ---------------------------------------------------------------------------------
// varints: unsigned LEB128, up to 10 bytes for a u64

/** Bytes of the varint of the u64 (lo, hi) (lo as u32: `>>> 0`). */
export function varU64Size(lo: number, hi: number): number {
  if (hi === 0) return lo < 0x80 ? 1 : lo < 0x4000 ? 2 : lo < 0x200000 ? 3 : lo < 0x10000000 ? 4 : 5;
  return Math.ceil((64 - Math.clz32(hi)) / 7);
}

/** Writes the varint of the u64 (lo, hi) at `pos`; returns the position after it. */
export function writeVarU64(out: Uint8Array, pos: number, lo: number, hi: number): number {
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

/** Bytes of the varint of a non-negative integer up to 2^53 − 1 (a JS number). */
export function varUintSize(v: number): number {
  return varU64Size(lo32(v), hi32(v));
}

/** Writes the varint of a non-negative integer up to 2^53 − 1; returns the position after it. */
export function writeVarUint(out: Uint8Array, pos: number, v: number): number {
  return writeVarU64(out, pos, lo32(v), hi32(v));
}

/** readVarU64: the bytes end before the varint does. */
export const VAR_TRUNCATED = -1;
/** readVarU64: more than 10 bytes, or a 10th byte with bits past 2^64. */
export const VAR_INVALID = -2;

/**
 * The value read by the last readVarU64, as u32 halves. An object, not two exported
 * `let`s: V8 reads a property of a known object faster than an imported live binding
 * (measured in the record twin's decode loop).
 */
export const varOut = { lo: 0, hi: 0 };

/**
 * Reads the varint at `pos` (before `end`) into `varOut`; returns the position
 * after it, VAR_TRUNCATED or VAR_INVALID. Non-minimal encodings are accepted (the
 * record format does; the envelope reader checks minimality itself).
 */
export function readVarU64(bytes: Uint8Array, pos: number, end: number): number {
  let lo = 0, hi = 0;
  for (let n = 0; n < 10; n++) {
    if (pos >= end) return VAR_TRUNCATED;
    const b = bytes[pos++]!;
    const bits = b & 0x7f;
    if (n < 4) lo |= bits << (7 * n);
    else if (n === 4) { lo |= bits << 28; hi = bits >>> 4; }
    else if (n < 9) hi |= bits << (7 * n - 32);
    else if (b > 1) return VAR_INVALID; // 10th byte: only bit 63 is left
    else hi |= b << 31;
    if (b < 0x80) {
      varOut.lo = lo >>> 0;
      varOut.hi = hi >>> 0;
      return pos;
    }
  }
  return VAR_INVALID;
}

// ---------------------------------------------------------------------------------
// UTF-8

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: false });

/** Byte length of `s` in UTF-8; lone surrogates count 3 bytes, as TextEncoder writes U+FFFD. */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) { n += 1; continue; }
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) { n += 2; i++; continue; }
    }
    n += 2;
  }
  return n;
}

/**
 * Writes `s` as UTF-8 at `pos`; returns the position after it. ASCII is copied by a
 * loop (the common short key costs no encoder call); the rest goes through encodeInto
 * (lone surrogates become U+FFFD, as TextEncoder.encode does). `out` must have
 * s.length·3 bytes from `pos` (or utf8Length(s)).
 */
export function writeUtf8(out: Uint8Array, pos: number, s: string): number {
  const n = s.length;
  let i = 0;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) break;
    out[pos + i] = c;
  }
  if (i === n) return pos + n;
  return pos + i + textEncoder.encodeInto(i === 0 ? s : s.slice(i), out.subarray(pos + i, pos + i + (n - i) * 3)).written;
}

/** readUtf8's char codes of a short ASCII key (reused: no allocation per call). */
const asciiCodes: number[] = [];

/**
 * bytes[start, end) as a string (U+FFFD for what is not UTF-8). Short ASCII keys (the
 * common case) skip TextDecoder, whose per-call cost dominates for a 10–20 byte key.
 * One flat string from the codes: `s += char` left an 18-cell rope per key on Bun
 * (~600 B a kept key) and was 4–8x slower on both runtimes.
 */
export function readUtf8(bytes: Uint8Array, start: number, end: number): string {
  if (end - start <= 24) {
    const codes = asciiCodes;
    codes.length = 0;
    let i = start;
    for (; i < end; i++) {
      const c = bytes[i]!;
      if (c >= 0x80) break;
      codes.push(c);
    }
    if (i === end) return String.fromCharCode.apply(null, codes);
  }
  return textDecoder.decode(bytes.subarray(start, end));
}

/**
 * Whether bytes[start, end) is well-formed UTF-8 (no overlongs, no surrogates, nothing
 * above U+10FFFF). ASCII costs one compare per byte; nothing is allocated.
 */
export function isUtf8(bytes: Uint8Array, start: number, end: number): boolean {
  let i = start;
  while (i < end) {
    const b = bytes[i]!;
    if (b < 0x80) { i++; continue; }
    let need: number, min: number, cp: number;
    if (b >= 0xc2 && b <= 0xdf) { need = 1; min = 0x80; cp = b & 0x1f; }
    else if (b >= 0xe0 && b <= 0xef) { need = 2; min = 0x800; cp = b & 0x0f; }
    else if (b >= 0xf0 && b <= 0xf4) { need = 3; min = 0x10000; cp = b & 0x07; }
    else return false;
    if (end - i - 1 < need) return false;
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k]!;
      if ((c & 0xc0) !== 0x80) return false;
      cp = (cp << 6) | (c & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += need + 1;
  }
  return true;
}

/** Values and keys are bytes; a string stands for its UTF-8 encoding (a new buffer). */
export function toBytes(value: string | Uint8Array): Uint8Array {
  if (typeof value === "string") return textEncoder.encode(value);
  if (value instanceof Uint8Array) return value;
  throw new TypeError("value must be a string or a Uint8Array");
}
