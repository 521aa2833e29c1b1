/**
 * Batch ranges (docs/design/0027-atomic-batches.md, docs/PROTOCOL.md §2.3): the runs of one
 * origin's consecutive seqs that were written as one atomic batch, so that this node never
 * sends or applies part of one on its own — a delta page never ends inside a range, a merge
 * slice never splits one, an envelope names the ranges its entries belong to.
 *
 *   ranges.add(origin, first, last);          // our batch, a received range's winners, replay
 *   ranges.startOf(origin, seq);              // the range's first seq, or 0: same range ⇔ same start
 *   ranges.groups(list);                      // which of these entries go together, and as what
 *
 * Fed by our own batches (src/node/batch.ts), by the winners of ranges received with entries
 * (./batch-winners.ts), and on open by the log (batch heads before a batch's records) and the
 * snapshot (kind-7 records). A range groups; it decides nothing: LWW still decides each key.
 *
 * Bounded: a range holds 2 … MAX_RANGE_SEQS seqs; ranges of one origin never overlap (two
 * batches of one node cannot: a range that would partly overlap a held one is ignored, one
 * that covers held ones replaces them). Kept only while it groups something: `retainLive`
 * drops ranges with fewer than two live entries (at every snapshot, and whenever the table
 * has doubled since the last pass: ./replica.ts).
 */

import type { MergeIndex } from "../index/merge-index.js";
import { BATCH_RANGE_MAX, isBatchRange } from "../core/record.js";

/** What pruning reads of the index: the slots in use and their stamps. */
type SlotStamps = Pick<MergeIndex, "usedSlots" | "metaInto">;

/** Most seqs one range spans: a batch's limit (src/core/record.ts owns it; = src/node/batch.ts MAX_BATCH_ENTRIES, a test checks). */
export const MAX_RANGE_SEQS = BATCH_RANGE_MAX;

/**
 * Most bytes (key + value + 16 each, as pages count them) a delta page grows to so as to
 * hold one batch whole when it alone exceeds the page's limits: a batch's own limit
 * (src/node/batch.ts MAX_BATCH_BYTES of keys and values, MAX_RANGE_SEQS entries; a test
 * checks). A range claiming more (a peer's word, not our batch) is split past it.
 */
export const MAX_RANGE_PAGE_BYTES = (16 << 20) + 16 * MAX_RANGE_SEQS;

/** A batch range as envelopes and snapshots carry it: `count` consecutive seqs of `node` from `first`. */
export interface SeqRange {
  node: number;
  first: number;
  count: number;
}

/** Which range (an index into `ranges`) each entry of a merged batch belongs to, -1 for none. */
export interface MergeGroups {
  ranges: readonly SeqRange[];
  member: Int32Array;
}

/** Entries of one range found in a list (`groups`): their indices in the list, and their span. */
export interface RangeGroup {
  node: number;
  /** Lowest and highest seq of the members (the range clipped to them). */
  min: number;
  max: number;
  /** Indices into the list, in list order. */
  members: number[];
  /** Whether the members are every seq of the held range (nothing of the batch left out). */
  whole: boolean;
}

/** Pruning runs when the table has grown to this many ranges (and then to twice what it kept). */
const PRUNE_FLOOR = 4096;

export class BatchRanges {
  /** Per origin: [first₀, last₀, first₁, last₁, …], ascending and disjoint. */
  readonly #by = new Map<number, number[]>();
  #size = 0;
  #pruneAt = PRUNE_FLOOR;

  /** Ranges held. */
  get size(): number { return this.#size; }

  /** True once the table has doubled since the last `retainLive` (the owner then runs it). */
  get needsPrune(): boolean { return this.#size >= this.#pruneAt; }

  /**
   * Records seqs `first` … `last` of `node` as one batch. Ignored (false) when the range is
   * not a batch range's shape (isBatchRange: 2 … MAX_RANGE_SEQS seqs from 1 up to MAX_SEQ), already held, or partly overlaps
   * a held range (honest batches of one node never do); one covering held ranges replaces them.
   */
  add(node: number, first: number, last: number): boolean {
    if (!isBatchRange(first, last - first + 1)) return false;
    let list = this.#by.get(node);
    if (list === undefined) this.#by.set(node, (list = []));
    const lo = firstEndingAtOrAfter(list, first);
    let hi = lo;
    while (2 * hi < list.length && list[2 * hi]! <= last) hi++;
    const overlapping = hi - lo;
    if (overlapping === 0) {
      list.splice(2 * lo, 0, first, last);
      this.#size++;
      return true;
    }
    if (first >= list[2 * lo]! && last <= list[2 * lo + 1]!) return false; // held already
    if (first <= list[2 * lo]! && last >= list[2 * (hi - 1) + 1]!) {
      list.splice(2 * lo, 2 * overlapping, first, last);
      this.#size += 1 - overlapping;
      return true;
    }
    return false;
  }

  /** The first seq of the range holding `seq` of `node`, or 0 (none): two entries go together iff equal and non-zero. */
  startOf(node: number, seq: number): number {
    const list = this.#by.get(node);
    if (list === undefined) return 0;
    const k = firstEndingAtOrAfter(list, seq);
    return 2 * k < list.length && list[2 * k]! <= seq ? list[2 * k]! : 0;
  }

  /** The last seq of the range holding `seq` of `node`, or 0 (none). */
  endOf(node: number, seq: number): number {
    const list = this.#by.get(node);
    if (list === undefined) return 0;
    const k = firstEndingAtOrAfter(list, seq);
    return 2 * k < list.length && list[2 * k]! <= seq ? list[2 * k + 1]! : 0;
  }

  /**
   * `horizon` (a seq of `node`) lowered to below the range it falls inside of without
   * reaching its end: "up to the horizon" then takes a batch whole or not at all (the
   * fan-out hold-back, ./delta-slots.ts).
   */
  alignBelow(node: number, horizon: number): number {
    const start = this.startOf(node, horizon);
    return start > 0 && horizon < this.endOf(node, horizon) ? start - 1 : horizon;
  }

  /**
   * The ranges of `list` (entries as node and seq, any order): for each held range with at
   * least two members in the list, its members and span; ascending by (node, min). Cost:
   * one lookup per entry of an origin that has ranges, nothing for the others.
   */
  groups(entries: readonly { node: number; seq: number }[]): RangeGroup[] {
    if (this.#size === 0) return [];
    const all: RangeGroup[] = [];
    const found = new Map<string, RangeGroup>();
    // Entries mostly come in (node, seq) order: the last range and group found serve the next.
    let node = -1, list: number[] | undefined, first = 0, last = -1, g: RangeGroup | undefined;
    for (let i = 0; i < entries.length; i++) {
      const n = entries[i]!.node;
      if (n !== node) {
        node = n;
        list = this.#by.get(n);
        last = -1;
      }
      if (list === undefined) continue;
      const seq = entries[i]!.seq;
      if (!(seq >= first && seq <= last)) {
        const k = firstEndingAtOrAfter(list, seq);
        if (2 * k >= list.length || list[2 * k]! > seq) continue;
        first = list[2 * k]!;
        last = list[2 * k + 1]!;
        g = found.get(`${node}:${first}`);
        if (g === undefined) {
          found.set(`${node}:${first}`, (g = { node, min: seq, max: seq, members: [], whole: false }));
          all.push(g);
        }
      }
      g!.members.push(i);
      if (seq < g!.min) g!.min = seq;
      if (seq > g!.max) g!.max = seq;
    }
    const out = all.filter((x) => x.members.length >= 2).sort((a, b) => a.node - b.node || a.min - b.min);
    for (const x of out) {
      const start = this.startOf(x.node, x.min);
      x.whole = x.min === start && x.max === this.endOf(x.node, start) && x.members.length === x.max - x.min + 1;
    }
    return out;
  }

  /** Records the runs of a merged batch (./batch-winners.ts), pruning when the table has doubled. */
  addRuns(runs: readonly { node: number; min: number; max: number }[], index: SlotStamps): void {
    for (const run of runs) this.add(run.node, run.min, run.max);
    if (this.needsPrune) this.retainLive(index);
  }

  /**
   * Keeps the ranges holding at least two of the index's entries (tombstones count: a
   * batch's delete travels with it), drops the others: a range grouping one entry or none
   * groups nothing. One walk of the slots.
   */
  retainLive(index: SlotStamps): void {
    const counts = new Map<number, Uint16Array>();
    const m = new Float64Array(4);
    if (this.#size > 0) {
      for (const slot of index.usedSlots()) {
        index.metaInto(slot, m);
        const node = m[1]!, seq = m[2]!, list = this.#by.get(node);
        if (list === undefined) continue;
        const k = firstEndingAtOrAfter(list, seq);
        if (2 * k >= list.length || list[2 * k]! > seq) continue;
        let c = counts.get(node);
        if (c === undefined) counts.set(node, (c = new Uint16Array(list.length / 2)));
        if (c[k]! < 2) c[k]!++;
      }
    }
    this.#size = 0;
    for (const [node, list] of [...this.#by]) {
      const c = counts.get(node);
      const kept: number[] = [];
      if (c !== undefined) for (let k = 0; k < c.length; k++) if (c[k]! >= 2) kept.push(list[2 * k]!, list[2 * k + 1]!);
      if (kept.length === 0) this.#by.delete(node);
      else this.#by.set(node, kept);
      this.#size += kept.length / 2;
    }
    this.#pruneAt = Math.max(PRUNE_FLOOR, 2 * this.#size);
  }

  /** Every range held, ascending by (node, first): what a snapshot writes (kind-7 records). */
  *ranges(): IterableIterator<SeqRange> {
    for (const node of [...this.#by.keys()].sort((a, b) => a - b)) {
      const list = this.#by.get(node)!;
      for (let k = 0; k < list.length; k += 2) yield { node, first: list[k]!, count: list[k + 1]! - list[k]! + 1 };
    }
  }
}

/** Index (in pairs) of the first range of `list` whose last seq is ≥ `seq` (list.length / 2 if none). */
function firstEndingAtOrAfter(list: readonly number[], seq: number): number {
  let lo = 0, hi = list.length / 2;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[2 * mid + 1]! < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
