/**
 * CRC-32/IEEE (zlib: reflected polynomial 0xEDB88320, init and xorout 0xFFFFFFFF).
 *
 *   crc32(bytes) === 0xcbf43926 for "123456789"
 *   crc32(b, crc32(a)) === crc32(concat(a, b))      // streaming, zlib-style seed
 *   crc32Combine(crc32(a), crc32(b), b.length) === crc32(concat(a, b))
 *
 * `crc32Reference` is the pure-TS twin (slicing-by-8): the test oracle and the fallback.
 */

import { R_AUX, R_CRC, R_OUT } from "../kernel/abi.js";
import { kernel } from "../kernel/instance.js";

const POLY = 0xedb88320;

/** 8 tables × 256 u32 (8 KiB): T[k][b] = CRC of byte b followed by k zero bytes. */
const TABLES: Uint32Array = /* @__PURE__ */ (() => {
  const t = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? POLY ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
})();

/**
 * Slicing-by-8 in TS: one dependency chain, 8 bytes per step. ~0.9 GB/s on Node 20,
 * ~1.4 on Bun (TOOLCHAIN). `seed` is a previous result (0 to start), as zlib's crc32.
 */
export function crc32Reference(data: Uint8Array, seed = 0): number {
  const t = TABLES;
  let c = ~seed;
  let i = 0;
  const n = data.length;
  const end8 = n - (n & 7);
  for (; i < end8; i += 8) {
    const a = c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24));
    const b = data[i + 4]! | (data[i + 5]! << 8) | (data[i + 6]! << 16) | (data[i + 7]! << 24);
    c = t[1792 + (a & 0xff)]! ^ t[1536 + ((a >>> 8) & 0xff)]! ^ t[1280 + ((a >>> 16) & 0xff)]! ^ t[1024 + (a >>> 24)]! ^
      t[768 + (b & 0xff)]! ^ t[512 + ((b >>> 8) & 0xff)]! ^ t[256 + ((b >>> 16) & 0xff)]! ^ t[b >>> 24]!;
  }
  for (; i < n; i++) c = t[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** (a · b) mod P over GF(2), reflected (zlib's multmodp). 32 steps. */
function multModP(a: number, b: number): number {
  let m = 0x80000000;
  let p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return p >>> 0;
}

/** X2N[k] = x^(2^k) mod P (reflected); x^(8·len) is a product of these. */
const X2N: Uint32Array = /* @__PURE__ */ (() => {
  const t = new Uint32Array(32);
  let p = 0x40000000; // x^1
  t[0] = p;
  for (let k = 1; k < 32; k++) t[k] = p = multModP(p, p);
  return t;
})();

/** x^(n · 2^k) mod P. */
function x2nModP(n: number, k: number): number {
  let p = 0x80000000; // x^0 = 1
  while (n > 0) {
    if (n & 1) p = multModP(X2N[k & 31]!, p);
    n = Math.floor(n / 2);
    k++;
  }
  return p;
}

/**
 * CRC of `A ++ B` from crc(A), crc(B) and |B| (zlib's crc32_combine): O(log len2)
 * GF(2) multiplications, no data touched.
 */
export function crc32Combine(crc1: number, crc2: number, len2: number): number {
  return (multModP(x2nModP(len2, 3), crc1 >>> 0) ^ (crc2 >>> 0)) >>> 0;
}

/**
 * Below this many bytes the TS loop beats copy + call into the kernel (~150 ns a call):
 * measured per call on Node 20 at 128 B 136 vs 173 ns, at 256 B 257 vs 243 ns.
 */
const WASM_MIN = 256;
/**
 * Input is copied into linear memory in chunks of this size (a multiple of the kernel's
 * 48 KiB three-chain round): a chunk stays in L2 between the copy and the CRC, so the
 * copy costs far less than streaming 64 MiB through RAM twice.
 */
const CHUNK = 48 * 1024 * 5;
/**
 * On Bun, `Bun.hash.crc32` (native, zlib-compatible, seedable) beats the kernel from this
 * size up: measured 8.6 vs 2.7 GB/s on 64 MiB, 1.66 vs 0.51 GB/s per 100-byte buffer
 * (bench/kernels.ts). Below it the TS loop wins (no call, no copy).
 */
const NATIVE_MIN = 64;
const bunCrc32: ((data: Uint8Array, seed?: number) => number) | undefined =
  (globalThis as { Bun?: { hash?: { crc32?: (data: Uint8Array, seed?: number) => number } } }).Bun?.hash?.crc32;

/**
 * CRC-32 of `data` (zlib-compatible; `seed` = a previous result, 0 to start).
 * The TS loop for tiny inputs; otherwise the WASM kernel (three chains + GF(2) join),
 * or on Bun `Bun.hash.crc32`, measured faster there. No `node:` import: the same code
 * runs in browsers and workers.
 */
export function crc32(data: Uint8Array, seed = 0): number {
  const n = data.length;
  if (bunCrc32 !== undefined) return n < NATIVE_MIN ? crc32Reference(data, seed) : bunCrc32(data, seed >>> 0) >>> 0;
  return n < WASM_MIN ? crc32Reference(data, seed) : crc32Wasm(data, seed);
}

/** The kernel path regardless of size or runtime (benchmarks and tests call it directly). */
export function crc32Wasm(data: Uint8Array, seed = 0): number {
  const k = kernel();
  const n = data.length;
  const ptr = k.reserve(R_CRC, Math.min(Math.max(n, 16), CHUNK));
  if (n <= CHUNK) {
    k.u8.set(data, ptr);
    return k.exports.crc32(ptr, n, seed) >>> 0;
  }
  let c = seed >>> 0;
  for (let off = 0; off < n; off += CHUNK) {
    const part = data.subarray(off, Math.min(n, off + CHUNK));
    k.u8.set(part, ptr);
    c = k.exports.crc32(ptr, part.length, c) >>> 0;
  }
  return c;
}

/**
 * CRCs of many small spans of one buffer: `spans` holds (offset, length) pairs; returns
 * one CRC per span. The kernel runs four spans in lockstep (independent dependency
 * chains), ~2x a per-span loop for 100-byte records.
 */
export function crc32Spans(data: Uint8Array, spans: Uint32Array): Uint32Array {
  const n = spans.length >>> 1;
  for (let i = 0; i < n; i++) {
    if (spans[2 * i]! + spans[2 * i + 1]! > data.length) throw new RangeError(`span ${i} runs past the data`);
  }
  const k = kernel();
  const base = k.reserve(R_CRC, Math.max(data.length, 16));
  const sp = k.reserve(R_AUX, Math.max(n * 8, 16));
  const out = k.reserve(R_OUT, Math.max(n * 4, 16));
  const u8 = k.u8;
  u8.set(data, base);
  k.u32.set(spans.subarray(0, n * 2), sp >>> 2);
  k.exports.crc32Spans(base, sp, n, out);
  return k.u32.slice(out >>> 2, (out >>> 2) + n);
}

export function crc32SpansReference(data: Uint8Array, spans: Uint32Array): Uint32Array {
  const n = spans.length >>> 1;
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const off = spans[2 * i]!, len = spans[2 * i + 1]!;
    if (off + len > data.length) throw new RangeError(`span ${i} runs past the data`);
    out[i] = crc32Reference(data.subarray(off, off + len));
  }
  return out;
}
