/**
 * Per-peer link bookkeeping of a SyncManager: the counters links() reports, and when the
 * background loop next talks to each peer. After a round that succeeded: about every
 * `intervalMs`, ±10 % jitter. After a failure: `retryMs`, doubling per consecutive
 * failure up to `maxBackoffMs`, with "equal jitter" (half fixed, half random), so a peer
 * that was still starting is reached within a fraction of a second and a dead one costs
 * a round every few minutes. News about a peer (`soon`) ends its wait.
 *
 * @module
 */
import { attachTo, type ReplicationLinks } from "./replication.js";

export interface PeerLinkStatus {
  peer: number;
  /** Rounds this manager started with the peer, and how many failed. */
  rounds: number;
  failures: number;
  bytesSent: number;
  bytesReceived: number;
  /** Epoch ms of the last round that succeeded (0: none yet). */
  lastOkAt: number;
  consecutiveFailures: number;
  /** Epoch ms before which the periodic loop leaves this peer alone (0: no backoff). */
  retryAt: number;
  lastError?: string;
  /** Duration of the last round with the peer (ms), failed or not; absent before the first. */
  lastRoundMs?: number;
}

/** One peer's link: kept here, read by the loop, `pushing` set by the push channel. */
export interface Link {
  rounds: number;
  totalFailures: number;
  bytesSent: number;
  bytesReceived: number;
  lastOkAt: number;
  failures: number;
  retryAt: number;
  lastError?: string;
  pushing: boolean;
  /** Epoch ms of the next background round with the peer (0: at once). */
  nextAt: number;
  /** syncSoon() asked for a round that has not started yet: the round ending now does not count as it. */
  soon: boolean;
  lastRoundMs?: number;
}

/** The round timing of SyncOptions, defaults applied. */
export interface LinkTiming {
  intervalMs: number;
  retryMs: number;
  maxBackoffMs: number;
  /** Jitter source in [0, 1). */
  random: () => number;
}

/** What a finished round tells its link (a PeerReport is one). */
export interface RoundEnd {
  peer: number;
  ok: boolean;
  error?: Error;
  sentBytes: number;
  receivedBytes: number;
  durationMs?: number;
}

export class PeerLinks {
  readonly #links = new Map<number, Link>();
  readonly #timing: LinkTiming;

  /** `owner`: the SyncManager whose links these are; it is lent to its node's replication tracker (src/node/replication.ts). */
  constructor(timing: LinkTiming, owner?: ReplicationLinks & { readonly node: object }) {
    this.#timing = timing;
    if (owner) attachTo(owner.node, owner);
  }

  /** The link of `peer`, made on first use. */
  of(peer: number): Link {
    let link = this.#links.get(peer);
    if (!link) this.#links.set(peer, (link = { rounds: 0, totalFailures: 0, bytesSent: 0, bytesReceived: 0, lastOkAt: 0, failures: 0, retryAt: 0, pushing: false, nextAt: 0, soon: false }));
    return link;
  }

  /** Epoch ms of the next background round with `peer` (0: at once). */
  nextAt(peer: number): number {
    return this.#links.get(peer)?.nextAt ?? 0;
  }

  /** Whether the periodic loop is leaving `peer` alone after failures. */
  backingOff(peer: number, now = Date.now()): boolean {
    return (this.#links.get(peer)?.retryAt ?? 0) > now;
  }

  /** News about `peer` (a new peer, a new address): its backoff ends and a round is due now. */
  soon(peer: number): void {
    const link = this.of(peer);
    link.retryAt = 0;
    link.nextAt = 0;
    link.soon = true;
  }

  /**
   * Books round `r` and schedules the next one with its peer. Returns the consecutive
   * failures before this round (for the "failing" and "reachable again" warnings).
   */
  settle(r: RoundEnd, now = Date.now()): number {
    const link = this.of(r.peer);
    const before = link.failures;
    link.rounds++;
    link.bytesSent += r.sentBytes;
    link.bytesReceived += r.receivedBytes;
    if (r.durationMs !== undefined) link.lastRoundMs = r.durationMs;
    const t = this.#timing;
    if (r.ok) {
      link.lastOkAt = now;
      link.failures = 0;
      link.retryAt = 0;
      link.lastError = undefined;
      // ±10 % so that nodes started together drift apart instead of colliding every round.
      link.nextAt = now + t.intervalMs * (0.9 + 0.2 * t.random());
    } else {
      link.totalFailures++;
      link.failures++;
      link.lastError = r.error?.message;
      // Exponential backoff from retryMs with "equal jitter": half fixed, half random, so
      // that peers failing together do not retry in lockstep.
      const full = Math.min(t.maxBackoffMs, t.retryMs * 2 ** Math.min(link.failures - 1, 30));
      link.retryAt = link.nextAt = now + full / 2 + t.random() * (full / 2);
    }
    // News arrived while this round was in flight (syncSoon): it deserves a round of its own.
    if (link.soon) link.retryAt = link.nextAt = 0;
    return before;
  }

  /** Every peer talked to, by id. */
  status(): PeerLinkStatus[] {
    return [...this.#links].sort((a, b) => a[0] - b[0]).map(([peer, l]) => ({
      peer, rounds: l.rounds, failures: l.totalFailures, bytesSent: l.bytesSent, bytesReceived: l.bytesReceived, lastOkAt: l.lastOkAt,
      consecutiveFailures: l.failures, retryAt: l.retryAt, ...(l.lastError ? { lastError: l.lastError } : {}),
      ...(l.lastRoundMs !== undefined ? { lastRoundMs: l.lastRoundMs } : {}),
    }));
  }
}
