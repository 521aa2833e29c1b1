/**
 * Range summary (docs/PROTOCOL.md "Range summary"): 4096 buckets chosen by the top 12
 * bits of the key's murmur3 hash (`hashKey`, the index's own), each the XOR of a 64-bit
 * hash of its entries (key, timestamp, node, seq, tombstone, value). The kernel keeps
 * the buckets in linear memory and updates one per write, merge, release or rollback
 * (assembly/summary.ts); this module is its TS twin and the protocol's helpers.
 *
 *   const s = index.summary();          // { root, groups, buckets } copies
 *   const diff = differingGroups(mine.groups, theirs);   // group ids
 *   bucketMask(ids)                     // 512-byte bitmap for selectBuckets
 *
 * Hashes are two 32-bit lanes (murmur3 mixing with two constant sets), so JS computes
 * the same bits with Math.imul — no BigInt. 64-bit values travel as 16 hex characters
 * (lane A then lane B) or as 8 little-endian bytes (lane B word first, as in memory).
 */

export const BUCKET_BITS = 12;
export const BUCKETS = 1 << BUCKET_BITS;
export const GROUPS = 64;
export const BUCKETS_PER_GROUP = BUCKETS / GROUPS;

/** Bucket of a key hash (`hashKey` in src/index/merge-index.ts). */
export function bucketOf(keyHash: number): number {
  return keyHash >>> (32 - BUCKET_BITS);
}

let laneA = 0, laneB = 0;

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

function word(k: number): void {
  let a = Math.imul(k, 0xcc9e2d51);
  a = Math.imul(rotl(a, 15), 0x1b873593);
  laneA = (Math.imul(rotl(laneA ^ a, 13), 5) + 0xe6546b64) | 0;
  let b = Math.imul(k, 0x9e3779b1);
  b = Math.imul(rotl(b, 17), 0x85ebca77);
  laneB = (Math.imul(rotl(laneB ^ b, 11), 5) + 0x52dce729) | 0;
}

/** murmur3's 32-bit finaliser (also ends `hashKey` in src/index/merge-index.ts). */
export function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function bytes2(b: Uint8Array, off: number, len: number, seedA: number, seedB: number): void {
  laneA = seedA ^ len;
  laneB = seedB ^ len;
  let i = off;
  const end4 = off + (len & ~3);
  for (; i < end4; i += 4) word(b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24));
  const tail = len & 3;
  if (tail !== 0) {
    let k = b[i]!;
    if (tail > 1) k |= b[i + 1]! << 8;
    if (tail > 2) k |= b[i + 2]! << 16;
    word(k);
  }
  laneA = fmix(laneA ^ len);
  laneB = fmix(laneB ^ len);
}

function mixA(h: number, k: number): number {
  k = Math.imul(rotl(Math.imul(k, 0xcc9e2d51), 15), 0x1b873593);
  return (Math.imul(rotl(h ^ k, 13), 5) + 0xe6546b64) | 0;
}

/** 32-bit hash of value bytes (assembly/summary.ts `valueHash`): four chains over 16-byte blocks. */
export function valueHash(v: Uint8Array, off: number, len: number): number {
  let a = 0x9747b28c ^ len, b = 0x85ebca6b | 0, c = 0xc2b2ae35 | 0, d = 0x27d4eb2f;
  const end = off + len, end16 = off + (len & ~15);
  const w = (i: number) => v[i]! | (v[i + 1]! << 8) | (v[i + 2]! << 16) | (v[i + 3]! << 24);
  let i = off;
  for (; i < end16; i += 16) {
    a = mixA(a, w(i)); b = mixA(b, w(i + 4)); c = mixA(c, w(i + 8)); d = mixA(d, w(i + 12));
  }
  for (; i + 4 <= end; i += 4) a = mixA(a, w(i));
  const tail = end - i;
  if (tail !== 0) {
    let k = v[i]!;
    if (tail > 1) k |= v[i + 1]! << 8;
    if (tail > 2) k |= v[i + 2]! << 16;
    a = mixA(a, k);
  }
  return fmix(a ^ rotl(b, 7) ^ rotl(c, 13) ^ rotl(d, 19) ^ len);
}

/** hash64 of bytes as [laneA, laneB] (u32s); the u64 is laneA << 32 | laneB. */
export function hash64(b: Uint8Array, off: number, len: number): [number, number] {
  bytes2(b, off, len, 0x3c6ef372, 0xa54ff53a);
  return [laneA, laneB];
}

/**
 * The entry hash as [laneA, laneB] (assembly/summary.ts): ten words — key hash, key
 * length, value hash (`valueHash` of the value bytes; 0 for a tombstone), value length,
 * ts and seq as u32 halves (lo, hi), node, tombstone flag.
 */
export function entryHash(keyHash: number, keyLen: number, tsLo: number, tsHi: number, node: number, seqLo: number, seqHi: number, tombstone: boolean, valHash: number, valLen: number): [number, number] {
  laneA = 0xa4093822 | 0;
  laneB = 0x299f31d0;
  word(keyHash); word(keyLen);
  word(tombstone ? 0 : valHash); word(tombstone ? 0 : valLen);
  word(tsLo); word(tsHi); word(node); word(seqLo); word(seqHi);
  word(tombstone ? 2 : 1);
  return [fmix(laneA ^ 40), fmix(laneB ^ 40)];
}

/**
 * Group hashes (64 × 8 B) and root of a bucket block (4096 × 8 B, each u64 stored
 * little-endian: laneB word, then laneA word). Same bits as the kernel's summarize().
 */
export function summarizeBuckets(buckets: Uint8Array): { root: string; groups: Uint8Array } {
  const groups = new Uint8Array(GROUPS * 8);
  const gw = new DataView(groups.buffer);
  const per = BUCKETS_PER_GROUP * 8;
  for (let g = 0; g < GROUPS; g++) {
    const [a, b] = hash64(buckets, g * per, per);
    gw.setUint32(g * 8, b, true);
    gw.setUint32(g * 8 + 4, a, true);
  }
  const [a, b] = hash64(groups, 0, groups.length);
  return { root: hex32(a) + hex32(b), groups };
}

function hex32(x: number): string {
  return (x >>> 0).toString(16).padStart(8, "0");
}

/** Root hex from the kernel's mailbox halves (lo word = laneB, hi word = laneA). */
export function rootHex(lo: number, hi: number): string {
  return hex32(hi) + hex32(lo);
}

/** Group ids whose 8-byte hashes differ between two 512-byte group blocks. */
export function differingGroups(a: Uint8Array, b: Uint8Array): number[] {
  const out: number[] = [];
  for (let g = 0; g < GROUPS; g++) {
    for (let i = g * 8; i < g * 8 + 8; i++) if (a[i] !== b[i]) { out.push(g); break; }
  }
  return out;
}

/** Bucket ids whose hashes differ, given the other side's buckets of some groups (64 × 8 B each, in `groups` order). */
export function differingBuckets(mine: Uint8Array, groups: readonly number[], theirs: Uint8Array): number[] {
  const out: number[] = [];
  const per = BUCKETS_PER_GROUP * 8;
  groups.forEach((g, j) => {
    for (let k = 0; k < BUCKETS_PER_GROUP; k++) {
      const m = g * per + k * 8, t = j * per + k * 8;
      for (let i = 0; i < 8; i++) if (mine[m + i] !== theirs[t + i]) { out.push(g * BUCKETS_PER_GROUP + k); break; }
    }
  });
  return out;
}

/** A 4096-bit mask (LSB first) of bucket ids, as selectBuckets takes it. */
export function bucketMask(ids: Iterable<number>): Uint8Array {
  const m = new Uint8Array(BUCKETS / 8);
  for (const b of ids) if (b >= 0 && b < BUCKETS) m[b >>> 3] = m[b >>> 3]! | (1 << (b & 7));
  return m;
}
