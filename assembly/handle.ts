/**
 * The LWW index's storage (a handle into linear memory): slots, the key hash table and
 * the key arena. The merge (assembly/merge.ts) and the read paths (assembly/select.ts)
 * work on it; TS twin: src/index/reference.ts, which keeps the same slot layout.
 *
 * Handle (88 B, u32 fields in this order). JS reads some of them directly, at the word
 * offsets H_* (src/kernel/abi.ts); the kernel reports offsetof<Handle> for each in its
 * self-description (assembly/abi.ts), so a reordered field fails at instantiation.
 *
 * | off | field | off | field |
 * |---|---|---|---|
 * | 0 | slots ptr | 44 | undo ptr |
 * | 4 | slot capacity | 48 | undo capacity (records) |
 * | 8 | high (slots ever used) | 52 | undo length |
 * | 12 | size (slots in use) | 56 | pending (merge not committed) |
 * | 16 | free head (slot + 1, 0 none) | 60 | saved arena length |
 * | 20 | table ptr | 64 | saved waste |
 * | 24 | table mask (buckets − 1) | 68 | entry hashes ptr (u64 per slot) |
 * | 28 | arena ptr | 72 | summary ptr (4096 u64 buckets, 64 u64 groups) |
 * | 32 | arena capacity | 76 | summary off (1: benchmarks only, buckets meaningless) |
 * | 36 | arena length | 80..88 | reserved |
 * | 40 | arena waste (bytes of released keys) | | |
 *
 * Slot (32 B = 8 u32 words S_*): ts i64 | seq u64 | node u32 | flags u32 (FLAG_*) |
 * keyOff u32 | keyLen u32. JS reads slots by these word indexes (src/kernel/abi.ts).
 * A free slot has flags 0 and keyOff = next free + 1 (LIFO free list).
 * Bucket (u64): hash32 << 32 | slot + 1 (0 = empty); linear probing, load ≤ 1/2.
 */
import { grownSize } from "./layout";
import { SUMMARY_BYTES, fmix, mixA, scrambleA, tailWord, toggle } from "./summary";

@unmanaged export class Handle {
  slots: u32;
  slotCap: u32;
  high: u32;
  size: u32;
  freeHead: u32;
  table: u32;
  mask: u32;
  arena: u32;
  arenaCap: u32;
  arenaLen: u32;
  waste: u32;
  undo: u32;
  undoCap: u32;
  undoLen: u32;
  pending: u32;
  savedArenaLen: u32;
  savedWaste: u32;
  ehash: u32;
  summary: u32;
  summaryOff: u32;
  reserved3: u32;
  reserved4: u32;
}
const HANDLE_BYTES: usize = offsetof<Handle>(); // 88

// Slot words (byte offset = S_* << 2) and flags.
export const S_TS_LO: u32 = 0;
export const S_TS_HI: u32 = 1;
export const S_SEQ_LO: u32 = 2;
export const S_SEQ_HI: u32 = 3;
export const S_NODE: u32 = 4;
export const S_FLAGS: u32 = 5;
export const S_KEY_OFF: u32 = 6;
export const S_KEY_LEN: u32 = 7;
export const SLOT_WORDS: u32 = 8;
export const SLOT_BYTES: usize = <usize>SLOT_WORDS << 2;
export const FLAG_USED: u32 = 1;
export const FLAG_TOMBSTONE: u32 = 2;
export const UNDO_BYTES: usize = 48;
export const ARENA_COMPACT_MIN: u32 = 1024;

/** Index export results besides a slot (src/kernel/abi.ts ERR_*). */
export const ERR_SLOT: i32 = -1;
export const ERR_PENDING: i32 = -2;

/** murmur3_32 over [p, p+len), seed 0x9747b28c ^ len (same as hashKey in src/index/merge-index.ts). */
// @ts-ignore: decorator
@inline export function hashKey(p: usize, len: usize): u32 {
  let h: u32 = 0x9747b28c ^ <u32>len;
  const end4 = p + (len & ~<usize>3);
  for (; p < end4; p += 4) h = mixA(h, load<u32>(p));
  const tail = len & 3;
  if (tail != 0) h ^= scrambleA(tailWord(p, tail));
  return fmix(h ^ <u32>len);
}

// @ts-ignore: decorator
@inline function sameBytes(a: usize, b: usize, n: usize): bool {
  let i: usize = 0;
  for (; i + 8 <= n; i += 8) if (load<u64>(a + i) != load<u64>(b + i)) return false;
  for (; i < n; i++) if (load<u8>(a + i) != load<u8>(b + i)) return false;
  return true;
}

// @ts-ignore: decorator
@inline export function slotAt(h: Handle, slot: u32): usize {
  return <usize>h.slots + (<usize>slot << 5);
}

export function lookup(h: Handle, key: usize, len: usize, hash: u32): i32 {
  const table = <usize>h.table;
  const mask = h.mask;
  let b = hash & mask;
  while (true) {
    const bucket = load<u64>(table + (<usize>b << 3));
    const ref = <u32>bucket;
    if (ref == 0) return -1;
    if (<u32>(bucket >>> 32) == hash) {
      const s = slotAt(h, ref - 1);
      if (<usize>load<u32>(s, S_KEY_LEN << 2) == len && sameBytes(<usize>h.arena + <usize>load<u32>(s, S_KEY_OFF << 2), key, len)) return <i32>(ref - 1);
    }
    b = (b + 1) & mask;
  }
  return -1;
}

export function growTable(h: Handle, cap: usize): void {
  const oldCap = <usize>h.mask + 1;
  const mask = <u32>(cap - 1);
  const table = heap.alloc(cap << 3);
  memory.fill(table, 0, cap << 3);
  const old = <usize>h.table;
  for (let i: usize = 0; i < oldCap; i++) {
    const bucket = load<u64>(old + (i << 3));
    if (bucket == 0) continue;
    let b = <u32>(bucket >>> 32) & mask;
    while (load<u64>(table + (<usize>b << 3)) != 0) b = (b + 1) & mask;
    store<u64>(table + (<usize>b << 3), bucket);
  }
  heap.free(old);
  h.table = <u32>table;
  h.mask = mask;
}

export function insert(h: Handle, slot: u32, hash: u32): void {
  if ((h.size + 1) * 2 > h.mask + 1) growTable(h, (<usize>h.mask + 1) << 1);
  const table = <usize>h.table;
  const mask = h.mask;
  let b = hash & mask;
  while (load<u64>(table + (<usize>b << 3)) != 0) b = (b + 1) & mask;
  store<u64>(table + (<usize>b << 3), (<u64>hash << 32) | <u64>(slot + 1));
}

/** Backward-shift deletion (no tombstones in the table). */
export function remove(h: Handle, slot: u32): void {
  const s = slotAt(h, slot);
  const hash = hashKey(<usize>h.arena + <usize>load<u32>(s, S_KEY_OFF << 2), <usize>load<u32>(s, S_KEY_LEN << 2));
  const table = <usize>h.table;
  const mask = h.mask;
  let i = hash & mask;
  while (<u32>load<u64>(table + (<usize>i << 3)) != slot + 1) i = (i + 1) & mask;
  let j = i;
  while (true) {
    j = (j + 1) & mask;
    const bucket = load<u64>(table + (<usize>j << 3));
    if (bucket == 0) break;
    const k = <u32>(bucket >>> 32) & mask;
    // stays if its home k is cyclically in (i, j]
    if (i <= j ? i < k && k <= j : i < k || k <= j) continue;
    store<u64>(table + (<usize>i << 3), bucket);
    i = j;
  }
  store<u64>(table + (<usize>i << 3), 0);
}

export function appendKey(h: Handle, key: usize, len: usize): u32 {
  const at = h.arenaLen;
  const need = <usize>at + len;
  if (need > <usize>h.arenaCap) {
    const cap = grownSize(<usize>h.arenaCap, need);
    h.arena = <u32>heap.realloc(<usize>h.arena, cap);
    h.arenaCap = <u32>cap;
  }
  memory.copy(<usize>h.arena + <usize>at, key, len);
  h.arenaLen = <u32>need;
  return at;
}

/** Key hash of a used slot, recomputed from the arena (rare paths: release, rollback). */
// @ts-ignore: decorator
@inline export function slotKeyHash(h: Handle, slot: u32): u32 {
  const s = slotAt(h, slot);
  return hashKey(<usize>h.arena + <usize>load<u32>(s, S_KEY_OFF << 2), <usize>load<u32>(s, S_KEY_LEN << 2));
}

export function indexNew(): usize {
  const p = heap.alloc(HANDLE_BYTES);
  memory.fill(p, 0, HANDLE_BYTES);
  const h = changetype<Handle>(p);
  h.slotCap = 16;
  h.slots = <u32>heap.alloc(16 * SLOT_BYTES);
  h.mask = 31;
  h.table = <u32>heap.alloc(32 << 3);
  memory.fill(<usize>h.table, 0, 32 << 3);
  h.arenaCap = 1024;
  h.arena = <u32>heap.alloc(1024);
  h.undoCap = 16;
  h.undo = <u32>heap.alloc(16 * UNDO_BYTES);
  h.ehash = <u32>heap.alloc(16 << 3);
  h.summary = <u32>heap.alloc(SUMMARY_BYTES);
  memory.fill(<usize>h.summary, 0, SUMMARY_BYTES);
  return p;
}

export function indexFree(p: usize): void {
  const h = changetype<Handle>(p);
  heap.free(<usize>h.slots);
  heap.free(<usize>h.table);
  heap.free(<usize>h.arena);
  heap.free(<usize>h.undo);
  heap.free(<usize>h.ehash);
  heap.free(<usize>h.summary);
  heap.free(p);
}

/**
 * Room for `n` more keys of `keyBytes` bytes in all, taken at once when the index is
 * small next to the batch (a replay, a bootstrap): one growth of slots, table and arena
 * instead of log2(n) doublings that each copy everything. Never shrinks anything.
 *
 * The table is sized for `n` less 1/16: a hint carries a margin (a replay's is 5 %,
 * src/storage/replay.ts), and a new table is zeroed whole, every page of it touched at
 * once, where slots and arena are touched only as they fill. 1M keys hinted as 1.05M
 * took 4M buckets (32 MB of fresh pages, ~0.1 s in a fresh process) instead of 2M;
 * insert() still doubles the table if the keys do come.
 */
export function reserveFor(h: Handle, n: usize, keyBytes: usize): void {
  if (<usize>h.size >= n) return;
  const slots = <usize>h.high + n;
  if (slots > <usize>h.slotCap) {
    h.slots = <u32>heap.realloc(<usize>h.slots, slots << 5);
    h.ehash = <u32>heap.realloc(<usize>h.ehash, slots << 3);
    h.slotCap = <u32>slots;
  }
  let cap = <usize>h.mask + 1;
  const keys = <usize>h.size + n - (n >> 4);
  while (keys * 2 > cap) cap <<= 1;
  if (cap > <usize>h.mask + 1) growTable(h, cap);
  const arena = <usize>h.arenaLen + keyBytes;
  if (arena > <usize>h.arenaCap) {
    h.arena = <u32>heap.realloc(<usize>h.arena, (arena + 15) & ~<usize>15);
    h.arenaCap = <u32>((arena + 15) & ~<usize>15);
  }
}

/** Room for `n` more keys of `keyBytes` bytes, asked for ahead of a replay that comes in windows. */
export function reserve(p: usize, n: u32, keyBytes: u32): void {
  const h = changetype<Handle>(p);
  if (h.pending == 0) reserveFor(h, <usize>h.size + <usize>n, <usize>keyBytes);
}


export function find(p: usize, key: usize, len: usize): i32 {
  return lookup(changetype<Handle>(p), key, len, hashKey(key, len));
}

/** Rewrites the arena with live keys in slot order into a fresh block. O(arena). */
function compact(h: Handle): void {
  const live = <usize>(h.arenaLen - h.waste);
  const cap = grownSize(0, max(live << 1, <usize>1024));
  const next = heap.alloc(cap);
  const old = <usize>h.arena;
  let at: usize = 0;
  for (let slot: u32 = 0; slot < h.high; slot++) {
    const s = slotAt(h, slot);
    if ((load<u32>(s, S_FLAGS << 2) & FLAG_USED) == 0) continue;
    const len = <usize>load<u32>(s, S_KEY_LEN << 2);
    memory.copy(next + at, old + <usize>load<u32>(s, S_KEY_OFF << 2), len);
    store<u32>(s, <u32>at, S_KEY_OFF << 2);
    at += len;
  }
  heap.free(old);
  h.arena = <u32>next;
  h.arenaCap = <u32>cap;
  h.arenaLen = <u32>at;
  h.waste = 0;
}


/** Frees a slot for reuse (LIFO); compacts the arena when half of it is garbage. */
export function release(p: usize, slot: u32): i32 {
  const h = changetype<Handle>(p);
  if (h.pending) return ERR_PENDING;
  if (slot >= h.high) return ERR_SLOT;
  const s = slotAt(h, slot);
  if ((load<u32>(s, S_FLAGS << 2) & FLAG_USED) == 0) return ERR_SLOT;
  if (!h.summaryOff) toggle(<usize>h.summary, slotKeyHash(h, slot), load<u64>(<usize>h.ehash + (<usize>slot << 3)));
  store<u64>(<usize>h.ehash + (<usize>slot << 3), 0);
  remove(h, slot);
  h.waste += load<u32>(s, S_KEY_LEN << 2);
  h.size--;
  memory.fill(s, 0, SLOT_BYTES);
  store<u32>(s, h.freeHead, S_KEY_OFF << 2);
  h.freeHead = slot + 1;
  if (h.waste >= ARENA_COMPACT_MIN && h.waste * 2 >= h.arenaLen) compact(h);
  return 0;
}

