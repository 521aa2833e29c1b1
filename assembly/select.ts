/**
 * Read paths over the index's slots (assembly/handle.ts): slot lists into R_OUT for a
 * delta (per-origin acks) or a set of summary buckets, the highest seq of an origin,
 * and the summary root. None changes the index.
 */
import { MB_U64, R_OUT, ensureRegion, mailbox } from "./layout";
import { bucketOf, summarize } from "./summary";
import { FLAG_USED, Handle, S_FLAGS, S_KEY_LEN, S_KEY_OFF, S_NODE, S_SEQ_LO, hashKey, slotAt } from "./handle";

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
    if ((load<u32>(s, S_FLAGS << 2) & FLAG_USED) == 0) continue;
    const node = load<u32>(s, S_NODE << 2);
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
    if (load<u64>(s, S_SEQ_LO << 2) > lastAck) listPut(count++, slot);
  }
  return <u32>count;
}

/** Highest seq among used slots of `node` (0 if none) into the mailbox (u64). */
export function maxSeqOf(p: usize, node: u32): void {
  const h = changetype<Handle>(p);
  let best: u64 = 0;
  for (let slot: u32 = 0; slot < h.high; slot++) {
    const s = slotAt(h, slot);
    if ((load<u32>(s, S_FLAGS << 2) & FLAG_USED) == 0 || load<u32>(s, S_NODE << 2) != node) continue;
    const seq = load<u64>(s, S_SEQ_LO << 2);
    if (seq > best) best = seq;
  }
  store<u64>(mailbox(MB_U64), best);
}

/** Group hashes refreshed from the buckets (stored after them); the root (u64) into the mailbox. O(32 KiB). */
export function summaryRoot(p: usize): void {
  store<u64>(mailbox(MB_U64), summarize(<usize>changetype<Handle>(p).summary));
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
    if ((load<u32>(s, S_FLAGS << 2) & FLAG_USED) == 0) continue;
    const b = bucketOf(hashKey(<usize>h.arena + <usize>load<u32>(s, S_KEY_OFF << 2), <usize>load<u32>(s, S_KEY_LEN << 2)));
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
