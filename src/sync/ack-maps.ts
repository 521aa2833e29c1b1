/**
 * Operations on ack maps (origin → highest seq covered) that the sync protocol
 * (./protocol.ts) combines: the minimum over a round's pages (R2), and the two views of a
 * delta that held entries back (./hold-back.ts): what the receiver may adopt, and what the
 * sender covers.
 */
import type { DeltaHold } from "../state/delta-slots.js";

/** Per origin, the lower of two pages' acks (an origin missing from either is dropped). */
export function minAcks(current: Map<number, number> | null, next: ReadonlyMap<number, number>): Map<number, number> {
  if (current === null) return new Map(next);
  const out = new Map<number, number>();
  for (const [origin, seq] of current) {
    const other = next.get(origin);
    if (other !== undefined) out.set(origin, Math.min(seq, other));
  }
  return out;
}

/**
 * The ack fields of a delta that held entries back (none held: nothing to change). `acks`:
 * ours with each held origin capped at the hold's horizon, below which every entry the
 * receiver lacks was sent — all it may adopt (INV), and all an older build sees.
 * `heldAcks`: our true acks of the held origins (0 when we cover none of one).
 */
export function heldFields(acks: ReadonlyMap<number, number>, held: readonly number[] | undefined, hold: DeltaHold | undefined): { acks?: Map<number, number>; heldAcks?: Map<number, number> } {
  if (held === undefined || held.length === 0 || hold === undefined) return {};
  const capped = new Map(acks);
  for (const o of held) {
    const cap = Math.min(capped.get(o) ?? 0, hold.horizon.get(o) ?? 0);
    if (cap > 0) capped.set(o, cap);
    else capped.delete(o);
  }
  return { acks: capped, heldAcks: new Map(held.map((o) => [o, acks.get(o) ?? 0])) };
}

/** What the sender of `acks` + `held` (its heldAcks) covers: its true ack of each held origin, never below the capped one. */
export function withHeldAcks(acks: ReadonlyMap<number, number>, held: ReadonlyMap<number, number> | undefined): Map<number, number> {
  const out = new Map(acks);
  if (held !== undefined) for (const [o, seq] of held) if (seq > (out.get(o) ?? 0)) out.set(o, seq);
  return out;
}
