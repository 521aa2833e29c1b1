/**
 * Resident LWW index and batched merge (docs/ARCHITECTURE.md); TS twin: src/index/merge.ts.
 *
 * Handle (88 B, u32 fields in this order; src/kernel/abi.ts reads some of them directly):
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
 * | | | 72 | summary ptr (4096 u64 buckets, 64 u64 groups) |
 * | | | 76 | summary off (1: benchmarks only, buckets meaningless) |
 * | | | 80..88 | reserved |
 * | 28 | arena ptr | | |
 * | 32 | arena capacity | | |
 * | 36 | arena length | | |
 * | 40 | arena waste (bytes of released keys) | | |
 *
 * Slot (32 B): ts i64 | seq u64 | node u32 | flags u32 (1 used, 2 tombstone) | keyOff u32 | keyLen u32.
 * A free slot has flags 0 and keyOff = next free + 1 (LIFO free list).
 * Bucket (u64): hash32 << 32 | slot + 1 (0 = empty); linear probing, load ≤ 1/2.
 * Undo record (48 B): slot u32 | origin u32 (0 existing, 1 free list, 2 new) | prior 32 B | prior entry hash u64.
 * Summary (assembly/summary.ts): bucket b = XOR of the entry hashes of used slots whose
 * key hash has top 12 bits b. Invariant, after every export returns: each bucket equals
 * that XOR recomputed from scratch (test/index/summary.ts checks it after random ops).
 */
import { MAILBOX, MB_COUNT, MB_PREV, MB_U64, R_OUT, R_REFUSED, SCRATCH, ensureRegion, grownSize } from "./layout";
import { DESC_BYTES } from "./codec";
import { SUMMARY_BYTES, bucketOf, entryHash, fmix, mixA, scrambleA, summarize, tailWord, toggle, valueHash } from "./summary";

@unmanaged class Handle {
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
const HANDLE_BYTES: usize = 88;

const SLOT_BYTES: usize = 32;
const UNDO_BYTES: usize = 48;
const FLAG_USED: u32 = 1;
const FLAG_TOMBSTONE: u32 = 2;
const ORIGIN_EXISTING: u32 = 0;
const ORIGIN_FREE: u32 = 1;
const ORIGIN_NEW: u32 = 2;
const ARENA_COMPACT_MIN: u32 = 1024;

// PrevState / RefuseReason (src/index/merge.ts; frozen)
const PREV_ABSENT: u32 = 0;
const PREV_VALUE: u32 = 1;
const PREV_TOMBSTONE: u32 = 2;
const REFUSE_KEY: u32 = 1;
const REFUSE_VALUE: u32 = 2;
const REFUSE_CLOCK: u32 = 3;
const REFUSE_MASKED: u32 = 4;
const REFUSE_KIND: u32 = 5;

export const ERR_PENDING: i32 = -2;
export const ERR_SLOT: i32 = -1;

/** murmur3_32 over [p, p+len), seed 0x9747b28c ^ len (same as hashKey in src/index/merge.ts). */
// @ts-ignore: decorator
@inline function hashKey(p: usize, len: usize): u32 {
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
@inline function slotAt(h: Handle, slot: u32): usize {
  return <usize>h.slots + (<usize>slot << 5);
}

/** The kernel's one definition of LWW: is (ts, node, seq) newer than the slot's stamp? */
// @ts-ignore: decorator
@inline function newer(ts: i64, node: u32, seq: u64, s: usize): bool {
  const rts = load<i64>(s);
  if (ts != rts) return ts > rts;
  const rnode = load<u32>(s, 16);
  if (node != rnode) return node > rnode;
  return seq > load<u64>(s, 8);
}

function lookup(h: Handle, key: usize, len: usize, hash: u32): i32 {
  const table = <usize>h.table;
  const mask = h.mask;
  let b = hash & mask;
  while (true) {
    const bucket = load<u64>(table + (<usize>b << 3));
    const ref = <u32>bucket;
    if (ref == 0) return -1;
    if (<u32>(bucket >>> 32) == hash) {
      const s = slotAt(h, ref - 1);
      if (<usize>load<u32>(s, 28) == len && sameBytes(<usize>h.arena + <usize>load<u32>(s, 24), key, len)) return <i32>(ref - 1);
    }
    b = (b + 1) & mask;
  }
  return -1;
}

function growTable(h: Handle, cap: usize): void {
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

function insert(h: Handle, slot: u32, hash: u32): void {
  if ((h.size + 1) * 2 > h.mask + 1) growTable(h, (<usize>h.mask + 1) << 1);
  const table = <usize>h.table;
  const mask = h.mask;
  let b = hash & mask;
  while (load<u64>(table + (<usize>b << 3)) != 0) b = (b + 1) & mask;
  store<u64>(table + (<usize>b << 3), (<u64>hash << 32) | <u64>(slot + 1));
}

/** Backward-shift deletion (no tombstones in the table). */
function remove(h: Handle, slot: u32): void {
  const s = slotAt(h, slot);
  const hash = hashKey(<usize>h.arena + <usize>load<u32>(s, 24), <usize>load<u32>(s, 28));
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

let allocOrigin: u32 = 0;

/** Takes a slot id, free list first; leaves its 32 bytes untouched (undo saves them). */
function allocSlot(h: Handle): u32 {
  if (h.freeHead != 0) {
    const slot = h.freeHead - 1;
    h.freeHead = load<u32>(slotAt(h, slot), 24);
    allocOrigin = ORIGIN_FREE;
    return slot;
  }
  const slot = h.high++;
  if (h.high > h.slotCap) {
    const cap = h.slotCap << 1;
    h.slots = <u32>heap.realloc(<usize>h.slots, <usize>cap << 5);
    h.ehash = <u32>heap.realloc(<usize>h.ehash, <usize>cap << 3);
    h.slotCap = cap;
  }
  allocOrigin = ORIGIN_NEW;
  return slot;
}

function appendKey(h: Handle, key: usize, len: usize): u32 {
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

function pushUndo(h: Handle, slot: u32, origin: u32): void {
  if (h.undoLen == h.undoCap) {
    const cap = h.undoCap << 1;
    h.undo = <u32>heap.realloc(<usize>h.undo, <usize>cap * UNDO_BYTES);
    h.undoCap = cap;
  }
  const u = <usize>h.undo + <usize>h.undoLen * UNDO_BYTES;
  const s = slotAt(h, slot);
  store<u32>(u, slot);
  store<u32>(u, origin, 4);
  store<u64>(u, load<u64>(s), 8);
  store<u64>(u, load<u64>(s, 8), 16);
  store<u64>(u, load<u64>(s, 16), 24);
  store<u64>(u, load<u64>(s, 24), 32);
  store<u64>(u, load<u64>(<usize>h.ehash + (<usize>slot << 3)), 40);
  h.undoLen++;
}

function create(h: Handle, key: usize, len: usize, hash: u32, undo: bool): u32 {
  const slot = allocSlot(h);
  if (undo) pushUndo(h, slot, allocOrigin);
  const off = appendKey(h, key, len);
  const s = slotAt(h, slot);
  store<u32>(s, off, 24);
  store<u32>(s, <u32>len, 28);
  insert(h, slot, hash);
  h.size++;
  return slot;
}

// @ts-ignore: decorator
@inline function stamp(s: usize, ts: i64, seq: u64, node: u32, tombstone: bool): void {
  store<i64>(s, ts);
  store<u64>(s, seq, 8);
  store<u32>(s, node, 16);
  store<u32>(s, tombstone ? FLAG_USED | FLAG_TOMBSTONE : FLAG_USED, 20);
}

/**
 * Stamps a winning entry into its slot and moves the slot's contribution to the
 * summary: the old entry hash out (when the slot held an entry), the new one in. O(1)
 * plus the hashing of key and value bytes.
 */
function apply(h: Handle, slot: u32, keyHash: u32, existed: bool, key: usize, keyLen: usize, ts: i64, seq: u64, node: u32, tombstone: bool, val: usize, valLen: usize): void {
  if (h.summaryOff) {
    stamp(slotAt(h, slot), ts, seq, node, tombstone);
    return;
  }
  const e = <usize>h.ehash + (<usize>slot << 3);
  const sum = <usize>h.summary;
  if (existed) toggle(sum, keyHash, load<u64>(e));
  const eh = entryHash(keyHash, keyLen, ts, node, seq, tombstone, tombstone ? 0 : valueHash(val, valLen), valLen);
  toggle(sum, keyHash, eh);
  store<u64>(e, eh);
  stamp(slotAt(h, slot), ts, seq, node, tombstone);
}

/** Key hash of a used slot, recomputed from the arena (rare paths: release, rollback). */
// @ts-ignore: decorator
@inline function slotKeyHash(h: Handle, slot: u32): u32 {
  const s = slotAt(h, slot);
  return hashKey(<usize>h.arena + <usize>load<u32>(s, 24), <usize>load<u32>(s, 28));
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

/** Entries hashed ahead of their decision; their buckets are touched together. */
const GROUP: u32 = 8;
const HASHES: usize = SCRATCH + 128; // GROUP × u32
let prefetchSink: u32 = 0;

/**
 * Hashes entries [from, to) into HASHES and loads each one's home bucket. The loads are
 * independent, so their cache misses overlap (memory-level parallelism) instead of
 * being paid one by one inside the probe loop; WASM has no prefetch instruction.
 */
function hashAhead(h: Handle, inp: usize, desc: usize, from: u32, to: u32): u32 {
  const table = <usize>h.table;
  const mask = h.mask;
  let sink: u32 = 0;
  for (let i = from; i < to; i++) {
    const d = desc + <usize>i * DESC_BYTES;
    const hash = hashKey(inp + <usize>load<u32>(d, 24), <usize>load<u32>(d, 28));
    store<u32>(HASHES + (<usize>(i - from) << 2), hash);
    sink ^= load<u32>(table + (<usize>(hash & mask) << 3), 4);
  }
  return sink;
}

/**
 * Room for `n` more keys of `keyBytes` bytes in all, taken at once when the index is
 * small next to the batch (a replay, a bootstrap): one growth of slots, table and arena
 * instead of log2(n) doublings that each copy everything. Never shrinks anything.
 */
function reserveFor(h: Handle, n: usize, keyBytes: usize): void {
  if (<usize>h.size >= n) return;
  const slots = <usize>h.high + n;
  if (slots > <usize>h.slotCap) {
    h.slots = <u32>heap.realloc(<usize>h.slots, slots << 5);
    h.ehash = <u32>heap.realloc(<usize>h.ehash, slots << 3);
    h.slotCap = <u32>slots;
  }
  let cap = <usize>h.mask + 1;
  while ((<usize>h.size + n) * 2 > cap) cap <<= 1;
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

/**
 * Decides n entries (descriptors at `desc`, key offsets relative to `inp`) in order and
 * applies winners tentatively with undo records — or, `final`, at once without them
 * (our own log replaying: nothing can be refused later, so nothing is ever rolled back). Winners (entry, slot, prev) go to
 * R_OUT, refusals (entry, reason) to R_REFUSED (count in the mailbox). Returns the
 * winner count, or ERR_PENDING. A losing entry costs a hash, a probe and a compare.
 */
export function merge(p: usize, inp: usize, desc: usize, n: u32, skip: usize, maxKey: u32, maxVal: u32, maxTs: i64, final: bool): i32 {
  const h = changetype<Handle>(p);
  if (h.pending) return ERR_PENDING;
  h.savedArenaLen = h.arenaLen;
  h.savedWaste = h.waste;
  h.undoLen = 0;
  h.pending = final ? 0 : 1;
  if (<usize>h.size < <usize>n) {
    let keyBytes: usize = 0;
    for (let i: u32 = 0; i < n; i++) keyBytes += <usize>load<u32>(desc + <usize>i * DESC_BYTES, 28);
    reserveFor(h, n, keyBytes);
  }
  let outCap: usize = 1024;
  let out = ensureRegion(R_OUT, outCap << 2, false);
  let refCap: usize = 256;
  let refused = ensureRegion(R_REFUSED, refCap << 2, false);
  let nw: usize = 0;
  let nr: usize = 0;
  let sink: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    if ((i & (GROUP - 1)) == 0) sink ^= hashAhead(h, inp, desc, i, min(n, i + GROUP));
    const d = desc + <usize>i * DESC_BYTES;
    const kind = load<u32>(d, 20);
    const keyLen = <usize>load<u32>(d, 28);
    const ts = load<i64>(d);
    let why: u32 = 0;
    if (skip != 0 && load<u8>(skip + <usize>i) != 0) why = REFUSE_MASKED;
    else if (kind > 1) why = REFUSE_KIND;
    else if (<u32>keyLen > maxKey) why = REFUSE_KEY;
    else if (kind == 1 && load<u32>(d, 36) > maxVal) why = REFUSE_VALUE;
    else if (ts > maxTs) why = REFUSE_CLOCK;
    if (why != 0) {
      if (nr + 2 > refCap) {
        refCap <<= 1;
        refused = ensureRegion(R_REFUSED, refCap << 2, true);
      }
      store<u32>(refused + (nr << 2), i);
      store<u32>(refused + (nr << 2), why, 4);
      nr += 2;
      continue;
    }
    const key = inp + <usize>load<u32>(d, 24);
    const hash = load<u32>(HASHES + (<usize>(i & (GROUP - 1)) << 2));
    let slot = lookup(h, key, keyLen, hash);
    const node = load<u32>(d, 16);
    const seq = load<u64>(d, 8);
    let prev: u32;
    if (slot >= 0) {
      const s = slotAt(h, <u32>slot);
      if (!newer(ts, node, seq, s)) continue;
      if (!final) pushUndo(h, <u32>slot, ORIGIN_EXISTING);
      prev = load<u32>(s, 20) & FLAG_TOMBSTONE ? PREV_TOMBSTONE : PREV_VALUE;
    } else {
      slot = <i32>create(h, key, keyLen, hash, !final);
      prev = PREV_ABSENT;
    }
    apply(h, <u32>slot, hash, prev != PREV_ABSENT, key, keyLen, ts, seq, node, kind == 0, inp + <usize>load<u32>(d, 32), <usize>load<u32>(d, 36));
    if (nw + 3 > outCap) {
      outCap <<= 1;
      out = ensureRegion(R_OUT, outCap << 2, true);
    }
    store<u32>(out + (nw << 2), i);
    store<u32>(out + (nw << 2), <u32>slot, 4);
    store<u32>(out + (nw << 2), prev, 8);
    nw += 3;
  }
  prefetchSink = sink;
  store<u32>(MAILBOX + MB_COUNT, <u32>nr);
  return <i32>(nw / 3);
}

export function commit(p: usize): void {
  const h = changetype<Handle>(p);
  h.pending = 0;
  h.undoLen = 0;
}

/** Undoes the pending merge in reverse order: exact prior slots, table, free list, arena. */
export function rollback(p: usize): void {
  const h = changetype<Handle>(p);
  if (!h.pending) return;
  for (let r = <i32>h.undoLen - 1; r >= 0; r--) {
    const u = <usize>h.undo + <usize>r * UNDO_BYTES;
    const slot = load<u32>(u);
    const origin = load<u32>(u, 4);
    // Every undo record's slot is in use now (it was stamped after the record was
    // pushed): take its current hash out of the summary, put the prior one back if any.
    const keyHash = h.summaryOff ? 0 : slotKeyHash(h, slot);
    const e = <usize>h.ehash + (<usize>slot << 3);
    if (!h.summaryOff) toggle(<usize>h.summary, keyHash, load<u64>(e));
    if (origin != ORIGIN_EXISTING) {
      remove(h, slot);
      h.size--;
      if (origin == ORIGIN_FREE) h.freeHead = slot + 1;
      else h.high--;
    } else if (!h.summaryOff) {
      toggle(<usize>h.summary, keyHash, load<u64>(u, 40));
    }
    memory.copy(slotAt(h, slot), u + 8, SLOT_BYTES);
    store<u64>(e, load<u64>(u, 40));
  }
  h.arenaLen = h.savedArenaLen;
  h.waste = h.savedWaste;
  h.undoLen = 0;
  h.pending = 0;
}

/**
 * One entry, applied at once if newer. Returns the slot (prev in the mailbox), -1 if not
 * newer, ERR_PENDING. The value bytes [val, val+valLen) only feed the summary hash.
 */
export function upsert(p: usize, key: usize, len: usize, val: usize, valLen: usize, ts: i64, node: u32, seq: u64, tombstone: bool): i32 {
  const h = changetype<Handle>(p);
  if (h.pending) return ERR_PENDING;
  const hash = hashKey(key, len);
  let slot = lookup(h, key, len, hash);
  let prev: u32;
  if (slot >= 0) {
    const s = slotAt(h, <u32>slot);
    if (!newer(ts, node, seq, s)) return -1;
    prev = load<u32>(s, 20) & FLAG_TOMBSTONE ? PREV_TOMBSTONE : PREV_VALUE;
  } else {
    slot = <i32>create(h, key, len, hash, false);
    prev = PREV_ABSENT;
  }
  apply(h, <u32>slot, hash, prev != PREV_ABSENT, key, len, ts, seq, node, tombstone, val, valLen);
  store<u32>(MAILBOX + MB_PREV, prev);
  return slot;
}

export function find(p: usize, key: usize, len: usize): i32 {
  return lookup(changetype<Handle>(p), key, len, hashKey(key, len));
}

/** Frees a slot for reuse (LIFO); compacts the arena when half of it is garbage. */
export function release(p: usize, slot: u32): i32 {
  const h = changetype<Handle>(p);
  if (h.pending) return ERR_PENDING;
  if (slot >= h.high) return ERR_SLOT;
  const s = slotAt(h, slot);
  if ((load<u32>(s, 20) & FLAG_USED) == 0) return ERR_SLOT;
  if (!h.summaryOff) toggle(<usize>h.summary, slotKeyHash(h, slot), load<u64>(<usize>h.ehash + (<usize>slot << 3)));
  store<u64>(<usize>h.ehash + (<usize>slot << 3), 0);
  remove(h, slot);
  h.waste += load<u32>(s, 28);
  h.size--;
  memory.fill(s, 0, SLOT_BYTES);
  store<u32>(s, h.freeHead, 24);
  h.freeHead = slot + 1;
  if (h.waste >= ARENA_COMPACT_MIN && h.waste * 2 >= h.arenaLen) compact(h);
  return 0;
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
    if ((load<u32>(s, 20) & FLAG_USED) == 0) continue;
    const len = <usize>load<u32>(s, 28);
    memory.copy(next + at, old + <usize>load<u32>(s, 24), len);
    store<u32>(s, <u32>at, 24);
    at += len;
  }
  heap.free(old);
  h.arena = <u32>next;
  h.arenaCap = <u32>cap;
  h.arenaLen = <u32>at;
  h.waste = 0;
}

/** A slot list being written to R_OUT (selectDelta, selectBuckets). */
let listCap: usize = 0;
let list: usize = 0;

function listStart(): void {
  listCap = 1024;
  list = ensureRegion(R_OUT, listCap << 2, false);
}

/** Stores slot number `at` of the list, doubling R_OUT when it is full. */
// @ts-ignore: decorator
@inline function listPut(at: usize, slot: u32): void {
  if (at == listCap) {
    listCap <<= 1;
    list = ensureRegion(R_OUT, listCap << 2, true);
  }
  store<u32>(list + (at << 2), slot);
}

/**
 * Slots whose seq exceeds the ack of their node, in slot order, into R_OUT; returns the
 * count. `acks`: n triples (node u32, seq u64 as lo, hi) sorted by node; binary search
 * with a one-entry cache (slots cluster by origin).
 */
export function selectDelta(p: usize, acks: usize, n: u32): u32 {
  const h = changetype<Handle>(p);
  listStart();
  let count: usize = 0;
  let lastNode: u32 = 0;
  let lastAck: u64 = 0;
  let cached = false;
  for (let slot: u32 = 0; slot < h.high; slot++) {
    const s = slotAt(h, slot);
    if ((load<u32>(s, 20) & FLAG_USED) == 0) continue;
    const node = load<u32>(s, 16);
    if (!cached || node != lastNode) {
      lastNode = node;
      lastAck = 0;
      cached = true;
      let lo: u32 = 0, hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        const m = load<u32>(acks + <usize>mid * 12);
        if (m < node) lo = mid + 1;
        else hi = mid;
      }
      if (lo < n && load<u32>(acks + <usize>lo * 12) == node) {
        const a = acks + <usize>lo * 12;
        lastAck = <u64>load<u32>(a, 4) | (<u64>load<u32>(a, 8) << 32);
      }
    }
    if (load<u64>(s, 8) > lastAck) listPut(count++, slot);
  }
  return <u32>count;
}

/** Highest seq among used slots of `node` (0 if none) into the mailbox (u64). */
export function maxSeqOf(p: usize, node: u32): void {
  const h = changetype<Handle>(p);
  let best: u64 = 0;
  for (let slot: u32 = 0; slot < h.high; slot++) {
    const s = slotAt(h, slot);
    if ((load<u32>(s, 20) & FLAG_USED) == 0 || load<u32>(s, 16) != node) continue;
    const seq = load<u64>(s, 8);
    if (seq > best) best = seq;
  }
  store<u64>(MAILBOX + MB_U64, best);
}

/** Group hashes refreshed from the buckets (stored after them); the root (u64) into the mailbox. O(32 KiB). */
export function summaryRoot(p: usize): void {
  store<u64>(MAILBOX + MB_U64, summarize(<usize>changetype<Handle>(p).summary));
}

/**
 * Used slots whose key falls in a bucket set in `mask` (4096 bits, LSB first), in slot
 * order, into R_OUT; returns the count. O(slots + key bytes): key hashes are recomputed.
 */
export function selectBuckets(p: usize, mask: usize): u32 {
  const h = changetype<Handle>(p);
  listStart();
  let count: usize = 0;
  for (let slot: u32 = 0; slot < h.high; slot++) {
    const s = slotAt(h, slot);
    if ((load<u32>(s, 20) & FLAG_USED) == 0) continue;
    const b = bucketOf(hashKey(<usize>h.arena + <usize>load<u32>(s, 24), <usize>load<u32>(s, 28)));
    if ((load<u8>(mask + (<usize>b >>> 3)) & (1 << (b & 7))) == 0) continue;
    listPut(count++, slot);
  }
  return <u32>count;
}

/**
 * Stops maintaining the summary (benchmarks: the cost of keeping it). Only on an empty
 * index; the buckets then stay zero and mean nothing.
 */
export function summaryOff(p: usize): void {
  const h = changetype<Handle>(p);
  if (h.size == 0) h.summaryOff = 1;
}
