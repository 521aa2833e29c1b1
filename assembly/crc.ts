/**
 * CRC-32/IEEE (zlib) over linear memory. Table-bound: WASM has no carry-less multiply,
 * so speed comes from instruction-level parallelism:
 *
 * - slicing-by-8: 8 bytes per step, one dependency chain (~1.7 GB/s here);
 * - three chains over consecutive blocks, joined by GF(2) shifts (`multModP`), because
 *   one chain is latency-bound and the CPU can run three lookups chains at once (~4 GB/s);
 * - lockstep: 4 independent records advanced together (small-record batches, ~3 GB/s).
 *
 * All functions here work on the raw register (no pre/post inversion): the register
 * update is linear, so for consecutive blocks A, B:
 *   R(c, A ++ B) = R(R(c, A), B)   and   R(c, B) = R(0, B) ^ shift(c, |B|)
 * where shift(c, n) = c · x^(8n) mod P. The public CRC is ~R(~seed, data).
 */
import { CRC_TABLES, POW256_TABLE, X2N_TABLE } from "./layout";

const POLY: u32 = 0xedb88320;
/** Bytes per chain in the bulk loop: three chains cover 48 KiB per round (fits L1+L2). */
const BLOCK: usize = 16384;
/** Below this a single chain wins: the join costs ~3 multModP. */
const MULTI_MIN: usize = 768;

let blockShift: u32 = 0; // x^(8·BLOCK) mod P, set by initCrc

/** (a · b) mod P, reflected bit order (zlib `multmodp`). ≤ 32 steps; a ≠ 0. */
export function multModP(a: u32, b: u32): u32 {
  let m: u32 = 0x80000000;
  let p: u32 = 0;
  while (true) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) == 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return p;
}

/** x^(n·2^k) mod P (zlib `x2nmodp`); O(bits of n) multiplications. */
export function x2nModP(n: u64, k: u32): u32 {
  let p: u32 = 0x80000000; // x^0
  while (n != 0) {
    if (n & 1) p = multModP(load<u32>(X2N_TABLE + ((<usize>k & 31) << 2)), p);
    n >>= 1;
    k++;
  }
  return p;
}

/** Fills the tables at their fixed addresses (layout.ts). Runs once at instantiation. */
export function initCrc(): void {
  for (let n: u32 = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? POLY ^ (c >>> 1) : c >>> 1;
    store<u32>(CRC_TABLES + (<usize>n << 2), c);
  }
  for (let n: u32 = 0; n < 256; n++) {
    let c = load<u32>(CRC_TABLES + (<usize>n << 2));
    for (let k: usize = 1; k < 8; k++) {
      c = load<u32>(CRC_TABLES + (<usize>(c & 0xff) << 2)) ^ (c >>> 8);
      store<u32>(CRC_TABLES + (k << 10) + (<usize>n << 2), c);
    }
  }
  let p: u32 = 0x40000000; // x^1
  store<u32>(X2N_TABLE, p);
  for (let k: usize = 1; k < 32; k++) {
    p = multModP(p, p);
    store<u32>(X2N_TABLE + (k << 2), p);
  }
  for (let m: usize = 0; m < 64; m++) store<u32>(POW256_TABLE + (m << 2), x2nModP(<u64>m, 11)); // x^(8·256·m)
  blockShift = x2nModP(<u64>BLOCK, 3);
}

// @ts-ignore: decorator
@inline function t(i: u32, table: usize): u32 {
  return load<u32>(CRC_TABLES + (table << 10) + (<usize>i << 2));
}

/**
 * One slicing-by-8 step: 8 bytes at p. Table base 0 → each load has a constant offset.
 * Byte k of a word, times 4 (the table index in bytes), is `(w >>> (8k − 2)) & 0x3fc`:
 * two operations instead of shift, mask, scale. The XORs form a balanced tree with the
 * data-only half (bytes 4..7) apart, so only ~2 XOR levels follow the loads that depend
 * on `c` (left to right, the engine would keep a serial chain of 7 XORs after them).
 */
// @ts-ignore: decorator
@inline export function step8(c: u32, p: usize): u32 {
  const b = load<u32>(p, 4);
  const hi = (load<u32>(<usize>((b << 2) & 0x3fc), 0x0c00) ^ load<u32>(<usize>((b >>> 6) & 0x3fc), 0x0800)) ^
    (load<u32>(<usize>((b >>> 14) & 0x3fc), 0x0400) ^ load<u32>(<usize>(b >>> 22) & 0x3fc));
  const a = c ^ load<u32>(p);
  const lo = (load<u32>(<usize>((a << 2) & 0x3fc), 0x1c00) ^ load<u32>(<usize>((a >>> 6) & 0x3fc), 0x1800)) ^
    (load<u32>(<usize>((a >>> 14) & 0x3fc), 0x1400) ^ load<u32>(<usize>(a >>> 22) & 0x3fc, 0x1000));
  return lo ^ hi;
}

// @ts-ignore: decorator
@inline function step1(c: u32, p: usize): u32 {
  return load<u32>(<usize>((c ^ <u32>load<u8>(p)) & 0xff) << 2) ^ (c >>> 8);
}

/** Single chain, slicing-by-8. */
export function crcChain(c: u32, p: usize, len: usize): u32 {
  const end = p + len;
  const end8 = p + (len & ~<usize>7);
  while (p < end8) {
    c = step8(c, p);
    p += 8;
  }
  while (p < end) c = step1(c, p++);
  return c;
}

/** Three chains over three blocks of `part` bytes (a multiple of 8), joined with shift `k`. */
// @ts-ignore: decorator
@inline function crcThree(c: u32, p: usize, part: usize, k: u32): u32 {
  let c2: u32 = 0, c3: u32 = 0;
  const end = p + part;
  let q = p;
  while (q < end) {
    c = step8(c, q);
    c2 = step8(c2, q + part);
    c3 = step8(c3, q + part * 2);
    q += 8;
  }
  return multModP(k, multModP(k, c) ^ c2) ^ c3;
}

/** Raw register update over [p, p+len): bulk rounds of 3·BLOCK, then 3 × m·256, then one chain. */
export function crcUpdate(c: u32, p: usize, len: usize): u32 {
  while (len >= BLOCK * 3) {
    c = crcThree(c, p, BLOCK, blockShift);
    p += BLOCK * 3;
    len -= BLOCK * 3;
  }
  if (len >= MULTI_MIN) {
    const m = len / MULTI_MIN; // 1..63
    const part = m << 8;
    c = crcThree(c, p, part, load<u32>(POW256_TABLE + (m << 2)));
    p += part * 3;
    len -= part * 3;
  }
  return crcChain(c, p, len);
}

/** zlib-compatible crc32(seed, data). */
export function crc32(seed: u32, p: usize, len: usize): u32 {
  return ~crcUpdate(~seed, p, len);
}

/**
 * CRC-32 of four independent buffers in lockstep (their common length advances 4
 * chains per step), written as u32 to out[0..4). Lengths may differ; zero is fine.
 */
export function crc32x4(p0: usize, l0: usize, p1: usize, l1: usize, p2: usize, l2: usize, p3: usize, l3: usize, out: usize): void {
  let c0: u32 = ~0, c1: u32 = ~0, c2: u32 = ~0, c3: u32 = ~0;
  const common = min(min(l0, l1), min(l2, l3)) & ~<usize>7;
  for (let i: usize = 0; i < common; i += 8) {
    c0 = step8(c0, p0 + i);
    c1 = step8(c1, p1 + i);
    c2 = step8(c2, p2 + i);
    c3 = step8(c3, p3 + i);
  }
  store<u32>(out, ~crcUpdate(c0, p0 + common, l0 - common));
  store<u32>(out, ~crcUpdate(c1, p1 + common, l1 - common), 4);
  store<u32>(out, ~crcUpdate(c2, p2 + common, l2 - common), 8);
  store<u32>(out, ~crcUpdate(c3, p3 + common, l3 - common), 12);
}

/**
 * CRCs of `n` spans (pairs offset, length relative to `base`) into out[i] (u32),
 * four at a time in lockstep.
 */
export function crc32Spans(base: usize, spans: usize, n: usize, out: usize): void {
  let i: usize = 0;
  for (; i + 4 <= n; i += 4) {
    const s = spans + (i << 3);
    crc32x4(
      base + load<u32>(s), load<u32>(s, 4), base + load<u32>(s, 8), load<u32>(s, 12),
      base + load<u32>(s, 16), load<u32>(s, 20), base + load<u32>(s, 24), load<u32>(s, 28),
      out + (i << 2),
    );
  }
  for (; i < n; i++) {
    const s = spans + (i << 3);
    store<u32>(out + (i << 2), crc32(0, base + load<u32>(s), load<u32>(s, 4)));
  }
}
