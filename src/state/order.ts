/**
 * The UTF-8 key order of the slots a replica holds: the one owner of the sorted slots,
 * of seeking in them and of walking them (scan).
 *
 *   const order = new KeyOrder(source);
 *   order.added(slot);  order.removed();          // as slots are installed / released
 *   order.slots();                                 // slots in key order (snapshots, digest)
 *   order.scan("user/", false, after, 100);        // entries, lazily
 *
 * Slots, not strings: walking them needs no key lookup. The order is kept incrementally:
 * slots added since the last ordered read wait in `#unsorted` and are merged in by the
 * next one; a release makes the next read sort afresh (it may hand the slot to another key).
 */
import { compareKeys } from "../core/keyorder.js";
import { WaveKVError } from "../core/errors.js";
import type { Entry } from "../core/types.js";

/** What the order reads from its replica. */
export interface OrderSource {
  /** Slots held and installed (a tentative merge's new key is not), in any order. */
  heldSlots(): number[];
  /** The key of a held slot (from the replica's key cache, or decoded from the index). */
  keyAt(slot: number): string;
  /** The slot's entry, or undefined when it is a tombstone and `includeTombstones` is false; `key` is the slot's (from keyAt), when known. */
  readEntry(slot: number, includeTombstones: boolean, key?: string): Entry | undefined;
}

export class KeyOrder {
  readonly #src: OrderSource;
  #sorted: number[] | null = null;
  #unsorted: number[] = [];
  #removedSinceSort = false;
  /** Slots released so far: a scan in progress that sees it move re-seeks (see scan). */
  #releases = 0;
  /** Set when the replica is disposed: a scan still in progress must not read the freed index. */
  closed = false;

  constructor(source: OrderSource) {
    this.#src = source;
  }

  /** A new key was installed at `slot`. */
  added(slot: number): void {
    if (this.#sorted !== null) this.#unsorted.push(slot);
  }

  /** A slot was released: the next ordered read sorts afresh. */
  removed(): void {
    this.#removedSinceSort = true;
    this.#releases++;
  }

  /** Slots in UTF-8 key order, maintained incrementally: new keys are sorted and merged in. */
  slots(): number[] {
    // keyAt: keys merged in a batch are decoded from the index the first time they are compared.
    const src = this.#src;
    const bySlotKey = (x: number, y: number) => compareKeys(src.keyAt(x), src.keyAt(y));
    if (this.#sorted === null || this.#removedSinceSort) {
      this.#sorted = src.heldSlots().sort(bySlotKey);
      this.#unsorted = [];
      this.#removedSinceSort = false;
    } else if (this.#unsorted.length > 0 && this.#unsorted.length <= 32) {
      // A few new keys: copy (ordered reads in progress keep the old array), then
      // binary-search and splice — native copies beat a merge loop in JS.
      const sorted = this.#sorted.slice();
      for (const slot of this.#unsorted) {
        const key = src.keyAt(slot);
        let lo = 0, hi = sorted.length;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (compareKeys(src.keyAt(sorted[mid]!), key) < 0) lo = mid + 1; else hi = mid;
        }
        sorted.splice(lo, 0, slot);
      }
      this.#sorted = sorted;
      this.#unsorted = [];
    } else if (this.#unsorted.length > 0) {
      const add = this.#unsorted.sort(bySlotKey);
      const old = this.#sorted;
      const merged = new Array<number>(old.length + add.length);
      let i = 0, j = 0, k = 0;
      while (i < old.length && j < add.length) merged[k++] = bySlotKey(old[i]!, add[j]!) <= 0 ? old[i++]! : add[j++]!;
      while (i < old.length) merged[k++] = old[i++]!;
      while (j < add.length) merged[k++] = add[j++]!;
      this.#sorted = merged;
      this.#unsorted = [];
    }
    return this.#sorted;
  }

  /** Index in `slots` (key order) of the first key at or past `key` (past it when `exclusive`). */
  seek(slots: readonly number[], key: string, exclusive: boolean): number {
    const src = this.#src;
    let lo = 0, hi = slots.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareKeys(src.keyAt(slots[mid]!), key);
      if (c < 0 || (exclusive && c === 0)) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  /**
   * Entries under `prefix` in UTF-8 key order, only keys after `after` (exclusive) when
   * given, at most `limit`; reads current values as it goes. Walks the key order it
   * started with (keys added meanwhile may be missed); a GC meanwhile may hand a slot to
   * another key, so then it re-seeks past the last key it passed in a fresh order. So
   * every key held throughout is yielded once, in order, whatever happens between steps.
   */
  *scan(prefix: string, includeTombstones: boolean, after?: string, limit = Infinity): IterableIterator<Entry> {
    const src = this.#src;
    // Keys must sort after `prev`: the last key passed, or `after` where it is past the prefix.
    let prev = after !== undefined && compareKeys(after, prefix) >= 0 ? after : undefined;
    let slots: readonly number[] = [];
    let releases = -1;
    let i = 0;
    for (let n = 0; n < limit;) {
      if (this.closed) throw new WaveKVError("CLOSED", "the node was closed during this scan; open it again and scan again");
      if (releases !== this.#releases) {
        releases = this.#releases;
        slots = this.slots();
        i = prev === undefined ? this.seek(slots, prefix, false) : this.seek(slots, prev, true);
      }
      if (i >= slots.length) return;
      // Every slot of an order taken since the last release is held, and its keys rise
      // past `prev` (seeked past it): no per-step check of either.
      const slot = slots[i++]!;
      const key = src.keyAt(slot);
      // Keys under a prefix are contiguous in UTF-8 order: the first one past it ends the scan.
      if (!key.startsWith(prefix)) return;
      prev = key;
      const e = src.readEntry(slot, includeTombstones, key);
      if (e === undefined) continue;
      n++;
      yield e;
    }
  }
}
