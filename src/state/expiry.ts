/**
 * Which slots hold an expiring entry (record kind 5), and when each expires: the state's
 * index of the expiries whose bytes live in front of the values (src/core/record.ts
 * `expiringPayload`; ./values.ts owns those bytes). Kept right by every path that changes
 * a slot (ReplicaState install and release), like the key caches.
 *
 *   expiries.set(slot, at); expiries.at(slot); expiries.expiredCount(now); expiries.next(now)
 *
 * Cost: one Map entry per expiring key, nothing per key without expiry (bench/memory rows
 * unchanged). Counting and finding the next expiry walk the map: O(expiring keys), paid
 * by `size` and by the expiry timer (src/node/expiry-timer.ts), once per change or expiry,
 * never per read.
 */
export class Expiries {
  readonly #at = new Map<number, number>();

  get size(): number { return this.#at.size; }

  /** When the entry at `slot` expires, or undefined (it never does). */
  at(slot: number): number | undefined {
    return this.#at.size === 0 ? undefined : this.#at.get(slot);
  }

  set(slot: number, expiresAt: number): void {
    this.#at.set(slot, expiresAt);
  }

  delete(slot: number): void {
    if (this.#at.size !== 0) this.#at.delete(slot);
  }

  /** Entries expired at `now` (expiresAt ≤ now). */
  expiredCount(now: number): number {
    let n = 0;
    for (const at of this.#at.values()) if (at <= now) n++;
    return n;
  }

  /** The earliest expiry after `now`, or undefined. */
  next(now: number): number | undefined {
    let best: number | undefined;
    for (const at of this.#at.values()) if (at > now && (best === undefined || at < best)) best = at;
    return best;
  }

  /** Slots whose expiry falls in (from, to]: the entries that expired between two readings. */
  between(from: number, to: number): number[] {
    const out: number[] = [];
    for (const [slot, at] of this.#at) if (at > from && at <= to) out.push(slot);
    return out;
  }
}
