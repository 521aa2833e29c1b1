/**
 * Linear-memory map of the wavekv kernel. JS gets the addresses, MB_* and R_* from the
 * kernel's self-description (assembly/abi.ts → src/kernel/abi-values.ts, generated).
 *
 * | address | size | what |
 * |---|---|---|
 * | 0x0000 | 8 KiB | CRC-32 slicing tables T0..T7 (T_k[b] at k·1024 + 4b), filled at start |
 * | 0x2000 | 128 B | X2N: x^(2^k) mod P, k = 0..31 (zlib `x2n_table`) |
 * | 0x2080 | 256 B | POW256: x^(2048·m) mod P, m = 0..63 (shift by m·256 bytes) |
 * | 0x2180 | 128 B | mailbox: results that do not fit an i32 return (MB_* below) |
 * | 0x2200 | 64 B | region table: (ptr u32, cap u32) for each R_* region |
 * | 0x2240 | 192 B | kernel-private scratch (lookahead frames, a probe descriptor) |
 * | 0x4000 | … | `--memoryBase`: static data, then the TLSF heap (runtime minimal) |
 *
 * Tables sit at fixed low addresses so every lookup is a load with a constant offset
 * immediate. Regions are heap blocks the kernel owns and grows geometrically (×2);
 * JS reads their current pointers from the region table after a call, never caches them.
 */

export const CRC_TABLES: usize = 0;
export const X2N_TABLE: usize = 0x2000;
export const POW256_TABLE: usize = 0x2080;
export const MAILBOX: usize = 0x2180;
export const REGIONS: usize = 0x2200;
export const SCRATCH: usize = 0x2240;

// Mailbox fields: u32 word indexes from MAILBOX, as JS reads them (`mailbox(MB_*)` is the address).
export const MB_STOP_REASON: u32 = 0; // decode: STOP_* code
export const MB_STOP_OFFSET: u32 = 1; // decode: offset of the record that stopped decoding
export const MB_COUNT: u32 = 2;       // merge: refused pairs
export const MB_PREV: u32 = 3;        // upsert: PrevState
export const MB_U64: u32 = 4;         // maxSeqOf, summaryRoot: u64 result (lo; hi at word 5)

// Regions (frozen numbering; append only).
export const R_IN: i32 = 0;      // JS-written input batches (decode, merge, encode data)
export const R_DESC: i32 = 1;    // descriptors (decode output, encode/merge input)
export const R_AUX: i32 = 2;     // small inputs: skip masks, ack lists, keys, CRC spans
export const R_OUT: i32 = 3;     // outputs: encoded bytes, winners, delta slots, CRCs
export const R_REFUSED: i32 = 4; // merge: refused pairs
export const R_CRC: i32 = 5;     // CRC input chunks (kept apart so a CRC never evicts a resident batch)
export const REGION_COUNT: i32 = 6;

/** Address of mailbox word `w` (an MB_* constant: folds to a constant address). */
// @ts-ignore: decorator
@inline export function mailbox(w: u32): usize {
  return MAILBOX + (<usize>w << 2);
}

/**
 * Largest region: TLSF's largest block is 2^30 − 4 bytes (BLOCK_MAXSIZE); rounded down
 * to 16. A request above it is refused (0 from `reserve`), never wrapped in u32.
 */
export const REGION_MAX: usize = (1 << 30) - 16;

/**
 * Is [p, p + len) inside the current block of some region? A pointer JS kept across a
 * `reserve` that moved its region points into a freed block (or another region's), and a
 * kernel write through it corrupts the heap: exports check caller ranges with this first.
 * `len` is u64 so `n × record size` cannot wrap.
 */
export function inRegion(p: usize, len: u64): bool {
  if (len == 0) return true;
  for (let r: usize = 0; r < <usize>REGION_COUNT; r++) {
    const q = <usize>load<u32>(REGIONS + (r << 3));
    const cap = <u64>load<u32>(REGIONS + (r << 3), 4);
    if (q != 0 && p >= q && <u64>(p - q) + len <= cap) return true;
  }
  return false;
}

@inline export function regionPtr(r: i32): usize {
  return load<u32>(REGIONS + (<usize>r << 3));
}

/**
 * Makes region `r` hold at least `bytes`; returns its (possibly moved) pointer, or 0
 * when `bytes` exceeds REGION_MAX (nothing changed; with `keep`, an abort instead, for
 * callers that cannot handle 0). `keep` preserves the contents (realloc) — the kernel
 * growing its own output — otherwise the old block is dropped first (JS will overwrite
 * it anyway). Growth is geometric (small grows make V8 run full GCs, TOOLCHAIN), capped
 * at REGION_MAX so a request that fits is never refused for its doubling.
 */
export function ensureRegion(r: i32, bytes: usize, keep: bool): usize {
  const at = REGIONS + (<usize>r << 3);
  let ptr = <usize>load<u32>(at);
  const cap = <usize>load<u32>(at, 4);
  if (bytes <= cap) return ptr;
  if (bytes > REGION_MAX) {
    if (keep) abort("region too large");
    return 0;
  }
  let n = min(max(bytes, max(cap << 1, <usize>1024)), REGION_MAX);
  n = (n + 15) & ~<usize>15; // ≤ REGION_MAX, a multiple of 16: no wrap
  if (keep && ptr != 0) {
    ptr = heap.realloc(ptr, n);
  } else {
    if (ptr != 0) {
      heap.free(ptr);
      // Forget the freed block before allocating: if the allocation traps (linear memory
      // exhausted), the table must not keep handing out a block the heap owns again.
      store<u64>(at, 0);
    }
    ptr = heap.alloc(n);
  }
  store<u32>(at, <u32>ptr);
  store<u32>(at, <u32>n, 4);
  return ptr;
}

/**
 * Takes region `r`'s block out of the region table and returns it (0 when empty): the
 * caller now owns it and frees it with `heap.free` (export `unpin`); the region's next
 * `ensureRegion` allocates a new block. Lets JS keep a batch's bytes where they were
 * read (values read from them later) instead of copying them out of linear memory.
 */
export function pinRegion(r: i32): usize {
  const at = REGIONS + (<usize>r << 3);
  const ptr = <usize>load<u32>(at);
  store<u64>(at, 0);
  return ptr;
}

/** Frees region `r`'s block if it holds more than `keep` bytes (the next ensureRegion allocates afresh). */
export function trimRegion(r: i32, keep: usize): void {
  if (<usize>load<u32>(REGIONS + (<usize>r << 3), 4) <= keep) return;
  heap.free(pinRegion(r));
}

/** Is `p` the current block of some region (never a pinned block)? */
export function isRegionBlock(p: usize): bool {
  for (let r: usize = 0; r < <usize>REGION_COUNT; r++) if (<usize>load<u32>(REGIONS + (r << 3)) == p) return true;
  return false;
}

/** Geometric growth for the index's own blocks: at least doubles, 16-byte aligned. */
export function grownSize(cap: usize, need: usize): usize {
  const n = max(need, cap << 1);
  return (n + 15) & ~<usize>15;
}
