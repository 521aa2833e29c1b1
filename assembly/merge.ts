/**
 * Batched LWW merge into the resident index (docs/ARCHITECTURE.md); TS twin:
 * src/index/reference.ts. Decides each entry by the one LWW order (assembly/stamp.ts),
 * applies winners to their slots (assembly/handle.ts) and keeps the range summary
 * (assembly/summary.ts) in step; a merge that is not `final` is undone exactly by
 * `rollback` from its undo records.
 *
 * Undo record (48 B): slot u32 | origin u32 (0 existing, 1 free list, 2 new) | prior 32 B | prior entry hash u64.
 * Summary: bucket b = XOR of the entry hashes of used slots whose key hash has top 12
 * bits b. Invariant, after every export returns: each bucket equals that XOR recomputed
 * from scratch (test/index/summary.ts checks it after random ops).
 */
import { MB_COUNT, MB_PREV, R_OUT, R_REFUSED, SCRATCH, ensureRegion, mailbox } from "./layout";
import { DESC_BYTES, D_KEY_LEN, D_KEY_OFF, D_KIND, D_NODE, D_SEQ_LO, D_TS_LO, D_VAL_LEN, D_VAL_OFF } from "./record";
import { entryHash, toggle, valueHash } from "./summary";
import { compareStamps } from "./stamp";
import {
  ERR_PENDING, FLAG_TOMBSTONE, FLAG_USED, Handle, SLOT_BYTES, S_FLAGS, S_KEY_LEN, S_KEY_OFF, S_NODE, S_SEQ_LO, S_TS_LO, UNDO_BYTES,
  appendKey, hashKey, insert, lookup, remove, reserveFor, slotAt, slotKeyHash,
} from "./handle";

const ORIGIN_EXISTING: u32 = 0;
const ORIGIN_FREE: u32 = 1;
const ORIGIN_NEW: u32 = 2;

// PrevState / RefuseReason (src/index/merge-index.ts; frozen)
export const PREV_ABSENT: u32 = 0;
export const PREV_VALUE: u32 = 1;
export const PREV_TOMBSTONE: u32 = 2;
export const REFUSE_KEY: u32 = 1;
export const REFUSE_VALUE: u32 = 2;
export const REFUSE_CLOCK: u32 = 3;
export const REFUSE_MASKED: u32 = 4;
export const REFUSE_KIND: u32 = 5;

/** Is (ts, node, seq) newer than the stamp in slot `s`? The LWW order (assembly/stamp.ts). */
// @ts-ignore: decorator
@inline function newer(ts: i64, node: u32, seq: u64, s: usize): bool {
  return compareStamps(ts, node, seq, s) > 0;
}

let allocOrigin: u32 = 0;

/** Takes a slot id, free list first; leaves its 32 bytes untouched (undo saves them). */
function allocSlot(h: Handle): u32 {
  if (h.freeHead != 0) {
    const slot = h.freeHead - 1;
    h.freeHead = load<u32>(slotAt(h, slot), S_KEY_OFF << 2);
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
  store<u32>(s, off, S_KEY_OFF << 2);
  store<u32>(s, <u32>len, S_KEY_LEN << 2);
  insert(h, slot, hash);
  h.size++;
  return slot;
}

// @ts-ignore: decorator
@inline function stamp(s: usize, ts: i64, seq: u64, node: u32, tombstone: bool): void {
  store<i64>(s, ts, S_TS_LO << 2);
  store<u64>(s, seq, S_SEQ_LO << 2);
  store<u32>(s, node, S_NODE << 2);
  store<u32>(s, tombstone ? FLAG_USED | FLAG_TOMBSTONE : FLAG_USED, S_FLAGS << 2);
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
    const hash = hashKey(inp + <usize>load<u32>(d, D_KEY_OFF << 2), <usize>load<u32>(d, D_KEY_LEN << 2));
    store<u32>(HASHES + (<usize>(i - from) << 2), hash);
    sink ^= load<u32>(table + (<usize>(hash & mask) << 3), 4);
  }
  return sink;
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
    for (let i: u32 = 0; i < n; i++) keyBytes += <usize>load<u32>(desc + <usize>i * DESC_BYTES, D_KEY_LEN << 2);
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
    const kind = load<u32>(d, D_KIND << 2);
    const keyLen = <usize>load<u32>(d, D_KEY_LEN << 2);
    const ts = load<i64>(d, D_TS_LO << 2);
    let why: u32 = 0;
    if (skip != 0 && load<u8>(skip + <usize>i) != 0) why = REFUSE_MASKED;
    else if (kind > 1 && kind != 5) why = REFUSE_KIND;
    else if (<u32>keyLen > maxKey) why = REFUSE_KEY;
    else if (kind != 0 && <u64>load<u32>(d, D_VAL_LEN << 2) > <u64>maxVal + (kind == 5 ? 8 : 0)) why = REFUSE_VALUE;
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
    const key = inp + <usize>load<u32>(d, D_KEY_OFF << 2);
    const hash = load<u32>(HASHES + (<usize>(i & (GROUP - 1)) << 2));
    let slot = lookup(h, key, keyLen, hash);
    const node = load<u32>(d, D_NODE << 2);
    const seq = load<u64>(d, D_SEQ_LO << 2);
    let prev: u32;
    if (slot >= 0) {
      const s = slotAt(h, <u32>slot);
      if (!newer(ts, node, seq, s)) continue;
      if (!final) pushUndo(h, <u32>slot, ORIGIN_EXISTING);
      prev = load<u32>(s, S_FLAGS << 2) & FLAG_TOMBSTONE ? PREV_TOMBSTONE : PREV_VALUE;
    } else {
      slot = <i32>create(h, key, keyLen, hash, !final);
      prev = PREV_ABSENT;
    }
    apply(h, <u32>slot, hash, prev != PREV_ABSENT, key, keyLen, ts, seq, node, kind == 0, inp + <usize>load<u32>(d, D_VAL_OFF << 2), <usize>load<u32>(d, D_VAL_LEN << 2));
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
  store<u32>(mailbox(MB_COUNT), <u32>nr);
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
    prev = load<u32>(s, S_FLAGS << 2) & FLAG_TOMBSTONE ? PREV_TOMBSTONE : PREV_VALUE;
  } else {
    slot = <i32>create(h, key, len, hash, false);
    prev = PREV_ABSENT;
  }
  apply(h, <u32>slot, hash, prev != PREV_ABSENT, key, len, ts, seq, node, tombstone, val, valLen);
  store<u32>(mailbox(MB_PREV), prev);
  return slot;
}
