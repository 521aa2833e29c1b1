/**
 * Fan-out hold-back (docs/PROTOCOL.md §2.2, docs/design/0023): a delta carries a
 * third-party origin's entries to a peer only up to what we held two of our own rounds
 * with that peer ago, so the origin (which sends its own writes to every peer each round)
 * gets its chance first and a write does not cross every link ~N times.
 *
 *   const hold = holdBack.hold(peer);                 // undefined: send everything
 *   const page = deltaPage(state, acks, after, n, bytes, framing, hold);
 *   holdBack.ownRound(peer, page.tops);               // our request: the horizon moves
 *   Object.assign(env, heldFields(acks, page.held, hold)); // ./ack-maps.ts
 *
 * Invariant (INV, docs/PROTOCOL.md §1): a receiver adopts only the capped acks — of a held
 * origin, no more than the horizon, below which every entry it lacks was sent — so an
 * older build that skips the heldAcks extension stays safe. A newer one records the true
 * acks (heldAcks) as what we cover, so it does not send us back what we hold.
 */
import type { DeltaHold } from "../state/delta-slots.js";
import { Feature } from "./envelope-model.js";

const NONE: ReadonlyMap<number, number> = new Map();

interface Horizon {
  /** What we held (per origin, the top seq) two snapshots ago, and one ago. */
  prev: ReadonlyMap<number, number> | null;
  cur: ReadonlyMap<number, number> | null;
  /** Requests from the peer answered since our last own round with it. */
  answered: number;
}

export class HoldBack {
  readonly #horizons = new Map<number, Horizon>();
  /** Peers whose last request or response did not advertise Feature.HoldBack (older builds). */
  readonly #older = new Set<number>();

  constructor(private readonly self: number, private readonly enabled: boolean) {}

  /** The FEATURES bit we advertise (none when hold-back is off: we then behave as an older build). */
  get feature(): number { return this.enabled ? Feature.HoldBack : 0; }

  /** A request or response from `peer` said what it understands. */
  noteFeatures(peer: number, features: number | undefined): void {
    if (((features ?? 0) & Feature.HoldBack) !== 0) this.#older.delete(peer);
    else this.#older.add(peer);
  }

  /**
   * The hold for a delta to `peer`, or undefined (send everything). A peer not heard from
   * yet is held back from too: the capped acks keep an older build safe, and it is
   * recognised by its first envelope (then it gets full deltas, which it does not echo).
   * `ownInFlight` (a response while our own request to the peer is in flight: the peer's
   * acks): our own writes are held above the peer's ack of us too — each pair exchanges
   * twice a round, and the request already carries them. Lost, it is resent next round.
   */
  hold(peer: number, ownInFlight?: ReadonlyMap<number, number>): DeltaHold | undefined {
    if (!this.enabled || this.#older.has(peer)) return undefined;
    const horizon = this.#horizons.get(peer)?.prev ?? NONE;
    if (ownInFlight === undefined) return { horizon, exempt: [this.self, peer] };
    // Our own writes above the peer's ack went in our request to it, in flight: not a second copy.
    return { horizon: new Map(horizon).set(this.self, ownInFlight.get(this.self) ?? 0), exempt: [peer] };
  }

  /** Our own round with `peer` began; `tops`: per origin, the top seq its delta selected. */
  ownRound(peer: number, tops: ReadonlyMap<number, number> | undefined): void {
    if (tops !== undefined) this.#shift(peer, tops);
  }

  /**
   * We answered a request of `peer` (first page). The horizon moves by our own rounds;
   * only a peer we do not run rounds with (we answered twice since our last) moves it
   * here, so that a node that only answers still forwards.
   */
  answered(peer: number, tops: ReadonlyMap<number, number> | undefined): void {
    if (tops === undefined) return;
    const h = this.#horizons.get(peer);
    if (h === undefined) this.#horizons.set(peer, { prev: null, cur: null, answered: 1 });
    else if (++h.answered >= 2) this.#shift(peer, tops);
  }

  #shift(peer: number, tops: ReadonlyMap<number, number>): void {
    const h = this.#horizons.get(peer);
    this.#horizons.set(peer, { prev: h?.cur ?? null, cur: tops, answered: 0 });
  }

  /** A received heldAcks extension, or undefined when hold-back is off (an older build does not read it). */
  read(held: Map<number, number> | undefined): Map<number, number> | undefined {
    return this.enabled ? held : undefined;
  }

  forget(peer: number): void {
    this.#horizons.delete(peer);
    this.#older.delete(peer);
  }
}
