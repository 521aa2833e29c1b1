/**
 * Range summary hashes (docs/PROTOCOL.md "Range summary"); TS twin: src/index/summary.ts.
 *
 * Every entry has a 64-bit hash over (key, timestamp, node, seq, tombstone, value);
 * bucket `hashKey(key) >>> 20` (4096 buckets) holds the XOR of its entries' hashes.
 * XOR is order-independent and its own inverse, so a write, merge, release or rollback
 * updates one bucket in O(1): XOR the old entry hash out, the new one in.
 *
 * The 64-bit hashes are two 32-bit murmur3-style lanes with different constants, so the
 * TS twin computes the same bits with Math.imul (no BigInt, no u64 multiply).
 */

export const BUCKET_BITS: u32 = 12;
export const BUCKETS: u32 = 1 << BUCKET_BITS;   // 4096
export const GROUPS: u32 = 64;                  // 64 groups of 64 buckets
export const SUMMARY_BYTES: usize = (<usize>BUCKETS + <usize>GROUPS) << 3; // buckets, then group hashes

let laneA: u32 = 0;
let laneB: u32 = 0;

/** murmur3_32's per-word scramble (lane a). */
// @ts-ignore: decorator
@inline export function scrambleA(k: u32): u32 {
  return rotl<u32>(k * 0xcc9e2d51, 15) * 0x1b873593;
}

/** murmur3_32's block step (lane a): also the key hash's (assembly/merge.ts). */
// @ts-ignore: decorator
@inline export function mixA(h: u32, k: u32): u32 {
  return rotl<u32>(h ^ scrambleA(k), 13) * 5 + 0xe6546b64;
}

/** The 1–3 bytes after the last whole word, little-endian. */
// @ts-ignore: decorator
@inline export function tailWord(p: usize, tail: usize): u32 {
  let k = <u32>load<u8>(p);
  if (tail > 1) k |= <u32>load<u8>(p, 1) << 8;
  if (tail > 2) k |= <u32>load<u8>(p, 2) << 16;
  return k;
}

// @ts-ignore: decorator
@inline function mixB(h: u32, k: u32): u32 {
  k *= 0x9e3779b1;
  k = rotl<u32>(k, 17);
  k *= 0x85ebca77;
  h ^= k;
  return rotl<u32>(h, 11) * 5 + 0x52dce729;
}

// @ts-ignore: decorator
@inline export function fmix(h: u32): u32 {
  h ^= h >>> 16;
  h *= 0x85ebca6b;
  h ^= h >>> 13;
  h *= 0xc2b2ae35;
  h ^= h >>> 16;
  return h;
}

// @ts-ignore: decorator
@inline function word(k: u32): void {
  laneA = mixA(laneA, k);
  laneB = mixB(laneB, k);
}

/** Both lanes over [p, p+len) from seeds (a, b), finalised into laneA/laneB. */
function bytes2(p: usize, len: usize, a: u32, b: u32): void {
  laneA = a ^ <u32>len;
  laneB = b ^ <u32>len;
  const end4 = p + (len & ~<usize>3);
  while (p < end4) {
    word(load<u32>(p));
    p += 4;
  }
  const tail = len & 3;
  if (tail != 0) word(tailWord(p, tail));
  laneA = fmix(laneA ^ <u32>len);
  laneB = fmix(laneB ^ <u32>len);
}

/**
 * 32-bit hash of a value's bytes for the entry hash: four independent murmur3-style
 * chains over 16-byte blocks (one chain is latency-bound: multiply, rotate, multiply per
 * word), the rest of the words and the tail on chain a, joined by rotations and fmix.
 */
export function valueHash(p: usize, len: usize): u32 {
  let a: u32 = 0x9747b28c ^ <u32>len, b: u32 = 0x85ebca6b, c: u32 = 0xc2b2ae35, d: u32 = 0x27d4eb2f;
  const end = p + len;
  const end16 = p + (len & ~<usize>15);
  while (p < end16) {
    a = mixA(a, load<u32>(p));
    b = mixA(b, load<u32>(p, 4));
    c = mixA(c, load<u32>(p, 8));
    d = mixA(d, load<u32>(p, 12));
    p += 16;
  }
  while (p + 4 <= end) {
    a = mixA(a, load<u32>(p));
    p += 4;
  }
  const tail = end - p;
  if (tail != 0) {
    let k = <u32>load<u8>(p);
    if (tail > 1) k |= <u32>load<u8>(p, 1) << 8;
    if (tail > 2) k |= <u32>load<u8>(p, 2) << 16;
    a = mixA(a, k);
  }
  return fmix(a ^ rotl<u32>(b, 7) ^ rotl<u32>(c, 13) ^ rotl<u32>(d, 19) ^ <u32>len);
}

/** 64-bit hash of bytes (group and root hashes). */
export function hash64(p: usize, len: usize): u64 {
  bytes2(p, len, 0x3c6ef372, 0xa54ff53a);
  return (<u64>laneA << 32) | <u64>laneB;
}

/**
 * The entry hash: both lanes over ten words — key hash, key length, value hash
 * (`valueHash` of the value bytes; 0 for a tombstone), value length, timestamp,
 * node, seq, tombstone flag. (node, seq) already names one write, so 32 bits of key and
 * value hash only have to catch corruption; the 64 bits of the result come from mixing
 * everything. Cost: the value's murmur3 pass (one lane) plus ten word mixes; the key
 * hash is the one the index lookup computed anyway.
 */
export function entryHash(keyHash: u32, keyLen: usize, ts: i64, node: u32, seq: u64, tombstone: bool, valHash: u32, valLen: usize): u64 {
  laneA = 0xa4093822;
  laneB = 0x299f31d0;
  word(keyHash); word(<u32>keyLen);
  word(tombstone ? 0 : valHash); word(tombstone ? 0 : <u32>valLen);
  word(<u32>ts); word(<u32>(ts >>> 32)); word(node); word(<u32>seq); word(<u32>(seq >>> 32));
  word(tombstone ? 2 : 1);
  return (<u64>fmix(laneA ^ 40) << 32) | <u64>fmix(laneB ^ 40);
}

// @ts-ignore: decorator
@inline export function bucketOf(keyHash: u32): u32 {
  return keyHash >>> (32 - BUCKET_BITS);
}

/** XORs `eh` into the bucket of `keyHash` (adding and removing are the same operation). */
// @ts-ignore: decorator
@inline export function toggle(sum: usize, keyHash: u32, eh: u64): void {
  const at = sum + (<usize>bucketOf(keyHash) << 3);
  store<u64>(at, load<u64>(at) ^ eh);
}

/** Group hashes (after the buckets) from the buckets; returns the root: hash64 of the 64 group hashes. */
export function summarize(sum: usize): u64 {
  const groups = sum + (<usize>BUCKETS << 3);
  const per = <usize>(BUCKETS / GROUPS) << 3;
  for (let g: usize = 0; g < <usize>GROUPS; g++) store<u64>(groups + (g << 3), hash64(sum + g * per, per));
  return hash64(groups, <usize>GROUPS << 3);
}
