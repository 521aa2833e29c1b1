/**
 * What this node knows of its peers' clocks, to refuse a local write that peers would
 * refuse by the drift rule (docs/PROTOCOL.md "Clocks").
 *
 *   const clocks = new PeerClocks(() => Date.now());
 *   clocks.note(2, env.senderClock);     // on every envelope received from node 2
 *   clocks.offset();                     // cluster clock − ours (ms), or null: no recent sample
 *
 * Every envelope carries its sender's clock reading (FORMAT §6.1 tag SENDER_CLOCK). A
 * sample is anchored to a monotonic clock, not to our wall clock: the peer's clock now
 * is estimated as `senderClock + (mono now − mono at receipt)`. So when OUR wall clock
 * jumps, the estimate does not jump with it, and the very next write sees the skew —
 * an offset recorded as `senderClock − ourClock` would hide the jump until the next
 * envelope arrived, and a write in that window would be acknowledged and then refused
 * by every peer. The cost of that choice: after a suspend (the monotonic clock stops,
 * the wall clock does not) writes may fail with CLOCK_SKEW until a peer is heard from.
 *
 * A peer's lie can at most block writes: the estimate is the LOWER median of the
 * samples (with two peers, the one further behind), and a write it refuses changes
 * nothing. Network latency makes a sample lag by one trip: milliseconds, against a
 * drift limit of minutes.
 */

/** Samples older than this (monotonic) are not evidence any more. */
export const CLOCK_SAMPLE_WINDOW_MS = 10 * 60_000;
/** At most this many peers' samples are kept (forged sender ids cannot grow the map). */
const MAX_SAMPLES = 1024;

interface Sample { senderClock: number; seenMono: number }

export interface ClockSample { id: number; offsetMs: number; ageMs: number }

/** `performance.now()` where it exists (Node, Bun, browsers, workers); else the wall clock. */
function monotonicNow(): number {
  return globalThis.performance?.now() ?? Date.now();
}

export class PeerClocks {
  readonly #samples = new Map<number, Sample>();
  /**
   * The lower median of `senderClock − seenMono` over the recent samples (the offset is
   * it + mono now − wall now: every sample ages alike), valid until the monotonic time
   * `until` (the oldest of them expires) or the next sample. A write reads it in O(1).
   */
  #cache: { median: number | null; until: number } | null = null;

  constructor(
    private readonly wall: () => number,
    private readonly mono: () => number = monotonicNow,
    readonly windowMs = CLOCK_SAMPLE_WINDOW_MS,
  ) {}

  /** `peer` said its clock read `senderClock` in an envelope received just now. */
  note(peer: number, senderClock: number): void {
    if (!Number.isSafeInteger(senderClock)) return;
    this.#samples.delete(peer); // re-inserted last: the map stays in receipt order
    if (this.#samples.size >= MAX_SAMPLES) this.#samples.delete(this.#samples.keys().next().value!);
    this.#samples.set(peer, { senderClock, seenMono: this.mono() });
    this.#cache = null;
  }

  /** Recent samples, each as (its peer's estimated clock now) − our clock now. */
  samples(): ClockSample[] {
    const mono = this.mono(), wall = this.wall();
    const out: ClockSample[] = [];
    for (const [id, s] of this.#samples) {
      const age = mono - s.seenMono;
      if (age > this.windowMs) continue;
      out.push({ id, offsetMs: Math.round(s.senderClock + age - wall), ageMs: Math.round(age) });
    }
    return out.sort((a, b) => a.id - b.id);
  }

  /** The cluster's clock minus ours (ms): the lower median of the recent samples, or null when there is none. */
  offset(): number | null {
    if (this.#samples.size === 0) return null;
    const mono = this.mono();
    if (this.#cache === null || mono > this.#cache.until) {
      const bases: number[] = [];
      let until = Infinity;
      for (const s of this.#samples.values()) {
        if (mono - s.seenMono > this.windowMs) continue;
        bases.push(s.senderClock - s.seenMono);
        until = Math.min(until, s.seenMono + this.windowMs);
      }
      bases.sort((a, b) => a - b);
      this.#cache = { median: bases.length === 0 ? null : bases[(bases.length - 1) >> 1]!, until };
    }
    const m = this.#cache.median;
    return m === null ? null : Math.round(m + mono - this.wall());
  }
}
