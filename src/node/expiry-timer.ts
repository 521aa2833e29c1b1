/**
 * Expiry events for watchers: one timer, at the nearest expiry, for the whole node (no
 * timer per entry). When it fires, every entry whose expiry fell between the previous
 * firing and now is reported once, as the change it is (the entry as reads now see it:
 * `value: null`, `expiresAt` set). docs/design/0026-expiry.md.
 *
 *   const timer = new ExpiryTimer({ expiries, clock, active, report });
 *   timer.start();            // a watcher subscribed
 *   timer.changed(slot);      // a slot changed: an earlier expiry may need the timer sooner
 *   timer.stop();             // close
 *
 * Cost: nothing while no one watches; a firing walks the expiring keys once
 * (src/state/expiry.ts), and so does each reschedule. A clock that jumps back only delays
 * events; one that jumps forward reports what expired meanwhile at the next firing.
 */
import type { Expiries } from "../state/expiry.js";
import type { ReplicaState } from "../state/replica.js";
import type { Watchers } from "./watch.js";
import { checkTtl } from "../core/expiry.js";
import { unrefTimer } from "../core/abort.js";

/** The checked `ttlMs` of a put's options (INVALID_ARGUMENT), or undefined. */
export function ttlOption(opts: { ttlMs?: number } | undefined): number | undefined {
  return opts?.ttlMs === undefined ? undefined : checkTtl(opts.ttlMs);
}

export interface ExpiryTimerHost {
  readonly expiries: Expiries;
  readonly clock: () => number;
  /** Whether anyone watches (no watcher: no timer). */
  active(): boolean;
  /** Report slot `slot`'s expiry to the watchers. */
  report(slot: number): void;
}

/** setTimeout's limit (2^31 − 1 ms): a later expiry is waited for in steps. */
const MAX_DELAY = 0x7fffffff;

export class ExpiryTimer {
  readonly #h: ExpiryTimerHost;
  #timer: ReturnType<typeof setTimeout> | null = null;
  /** When the pending timer is due (clock ms), Infinity when none. */
  #due = Infinity;
  /** Expiries at or before this have been reported (or predate the first watcher). */
  #reported = -Infinity;
  #stopped = false;

  constructor(host: ExpiryTimerHost) {
    this.#h = host;
  }

  /** A node's timer: `state`'s expiries on its clock, reported to `watchers` (local when `self` wrote the entry). */
  static forWatchers(state: ReplicaState, watchers: Watchers, self: number): ExpiryTimer {
    return new ExpiryTimer({
      expiries: state.expiries, clock: () => state.now(), active: () => watchers.size > 0,
      report: (slot) => { const e = state.entryAt(slot); watchers.emit(e, e.node === self); },
    });
  }

  /** A watcher subscribed: report from now on. */
  start(): void {
    if (this.#stopped) return;
    if (this.#timer === null) this.#reported = this.#h.clock();
    this.#schedule();
  }

  /** A slot changed: its (new) expiry may be sooner than the timer. O(1) unless it is. */
  changed(slot: number): void {
    if (this.#stopped || this.#timer === null) return;
    const at = this.#h.expiries.at(slot);
    // Sooner than the timer, or the clock passed it (a clock that jumped): look again now.
    if (at !== undefined && (at < this.#due || this.#h.clock() >= this.#due)) this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    this.#clear();
  }

  #clear(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#due = Infinity;
  }

  #schedule(): void {
    this.#clear();
    const h = this.#h;
    if (!h.active()) return;
    const now = h.clock();
    const next = h.expiries.next(this.#reported); // already due when ≤ now: fires at once
    // Still armed with nothing due: `changed` must see a running timer to move it sooner.
    const due = next ?? now + MAX_DELAY;
    this.#due = due;
    const t = setTimeout(() => this.#fire(), Math.min(Math.max(due - now, 0), MAX_DELAY));
    // Unref'd like the sync manager's timers: a pending expiry (up to MAX_TTL_MS away) must
    // not keep a process alive that has nothing else to do. A process that is waiting on
    // a watcher keeps itself up through its own handles (a server, a socket, a stdin).
    unrefTimer(t);
    this.#timer = t;
  }

  #fire(): void {
    this.#timer = null;
    this.#due = Infinity;
    const h = this.#h;
    if (this.#stopped || !h.active()) return;
    const now = h.clock();
    if (now > this.#reported) {
      for (const slot of h.expiries.between(this.#reported, now)) h.report(slot);
      this.#reported = now;
    }
    this.#schedule();
  }
}
