/**
 * Which entries a peer is missing, as slots of the replica's index: the delta of SPEC
 * section 3 (every entry whose seq is above the peer's ack of its origin), paged in
 * (node, seq) order. The protocol encodes the slots (src/sync/delta.ts).
 */
import type { MergeIndex } from "../index/merge-index.js";

/** Where a delta page ends: the last (origin node, seq) it holds. */
export interface SlotCursor { node: number; seq: number }

/** One page of a delta as slots: what src/sync/delta.ts encodes. */
export interface DeltaSlots {
  /** The page's slots, in the order they are sent. */
  slots: number[];
  /** Total entries the acks select after the cursor (this page included). */
  total: number;
  last: boolean;
  /** The last (node, seq) included: where the next page resumes. */
  cursor?: SlotCursor;
  /** With a hold: the origins of which entries were left out (ascending). */
  held?: number[];
  /** With a hold: per origin, the highest seq the acks selected (before the hold). */
  tops?: Map<number, number>;
}

/**
 * Fan-out hold-back (docs/PROTOCOL.md §2.2): entries of an origin not in `exempt` are
 * selected only up to `horizon`'s seq of that origin (none when it has no seq there).
 */
export interface DeltaHold {
  horizon: ReadonlyMap<number, number>;
  exempt: readonly number[];
}

/**
 * The slots of the delta a peer with coverage `acks` is missing: every entry (tombstones
 * included) whose seq is above the ack of its origin, after `after` in (node, seq) order,
 * at most `maxEntries` entries / `maxBytes` bytes (`sizeOf` each: key + value + 16; at
 * least one entry per page). `seqOrder`: in (node, seq) order even unpaged (delta-coded bodies,
 * FORMAT §1.1; slots mostly come in that order already: the sort is ~linear).
 */
export function selectDelta(index: MergeIndex, sizeOf: (slot: number) => number, acks: ReadonlyMap<number, number>, after: SlotCursor | undefined, maxEntries: number, maxBytes: number, seqOrder: boolean, hold?: DeltaHold): DeltaSlots {
  const selected = index.selectDelta(acks);
  const metas = Array.from(selected, (s) => index.meta(s));
  let order = Array.from(selected.keys());
  let held: number[] | undefined, tops: Map<number, number> | undefined;
  if (hold) ({ order, held, tops } = applyHold(order, metas, hold));
  const paged = after !== undefined || selected.length > maxEntries;
  if (paged || seqOrder) {
    order.sort((a, b) => metas[a]!.node - metas[b]!.node || metas[a]!.seq - metas[b]!.seq);
    if (after) order = order.filter((i) => metas[i]!.node > after.node || (metas[i]!.node === after.node && metas[i]!.seq > after.seq));
  }
  const total = order.length;
  const slots: number[] = [];
  let bytes = 0, lastI = -1;
  for (const i of order) {
    if (slots.length >= maxEntries) break;
    const slot = selected[i]!;
    const size = sizeOf(slot);
    if (slots.length > 0 && bytes + size > maxBytes) break;
    bytes += size;
    slots.push(slot);
    lastI = i;
  }
  const cursor = lastI >= 0 ? { node: metas[lastI]!.node, seq: metas[lastI]!.seq } : after;
  return { slots, total, last: slots.length === total, cursor, held, tops };
}

/** The selection without the entries `hold` keeps back, the origins that lost some, and every origin's top seq. */
function applyHold(order: number[], metas: readonly { node: number; seq: number }[], hold: DeltaHold): { order: number[]; held: number[]; tops: Map<number, number> } {
  const tops = new Map<number, number>();
  const held = new Set<number>();
  const exempt = new Set(hold.exempt);
  const kept = order.filter((i) => {
    const { node, seq } = metas[i]!;
    if (seq > (tops.get(node) ?? 0)) tops.set(node, seq);
    if (exempt.has(node) || seq <= (hold.horizon.get(node) ?? 0)) return true;
    held.add(node);
    return false;
  });
  return { order: kept, held: [...held].sort((a, b) => a - b), tops };
}
