/**
 * Live push streams (`SyncOptions.live`): one subscription per peer
 * (`transport.subscribe`, docs/PROTOCOL.md "Live push stream"), each streamed envelope
 * merged as a POST /push body is, reopened with capped, jittered backoff; a (re)connect
 * and a gap notice each ask for a round, so the periodic rounds stay the safety net.
 *
 * Its own module so that SyncManager loads it with a dynamic import, only when `live`
 * is set: in the browser bundle it (with the stream reader) is a chunk of its own.
 */
import { decodeEnvelope } from "../sync/envelope.js";
import type { MergeSlicing } from "../sync/protocol.js";
import { WaveKVError } from "../core/errors.js";
import { sleep } from "../core/sleep.js";
import type { Node } from "./node.js";
import type { Transport } from "../transport/transport.js";

/** What the live subscriptions use of their SyncManager. */
export interface LiveHost {
  readonly node: Node;
  readonly transport: Transport;
  readonly slicing: MergeSlicing;
  readonly stats: { livePushes: number; liveConnects: number; liveFailures: number; liveGaps: number };
  running(): boolean;
  /** A round with `peer` now: what the stream missed (while down, or dropped) arrives with it. */
  syncSoon(peer: number): void;
  track(p: Promise<unknown>): void;
  warn(message: string): void;
}

/** Longest wait between two attempts to reopen a stream: the periodic rounds cover the gap meanwhile. */
const MAX_RECONNECT_MS = 30_000;

/**
 * One live subscription per peer (`SyncOptions.live`). Reconnect delay after k failed
 * attempts in a row: min(min(maxBackoffMs, 30 s), retryMs · 2^(k−1)), half fixed and half
 * random ("equal jitter"); a stream that opened and later ended counts as one failure.
 */
export class LiveSubscriptions {
  readonly #host: LiveHost;
  readonly #timing: { retryMs: number; maxMs: number; random: () => number };
  readonly #open = new Map<number, AbortController>();
  /** Peers whose stream is up now. */
  readonly #up = new Set<number>();

  constructor(host: LiveHost, timing: { retryMs: number; maxBackoffMs: number; random: () => number }) {
    this.#host = host;
    this.#timing = { retryMs: timing.retryMs, maxMs: Math.min(timing.maxBackoffMs, MAX_RECONNECT_MS), random: timing.random };
  }

  /** Peers with a stream up. */
  connected(): number[] {
    return [...this.#up].sort((a, b) => a - b);
  }

  /** Opens a subscription to each peer that has none, and closes those of peers removed since (O(peers): called as the loop reschedules). */
  ensure(signal: AbortSignal): void {
    if (!this.#host.transport.subscribe || signal.aborted) return;
    const peers = this.#host.node.peers();
    for (const [peer, ctrl] of this.#open) if (!peers.includes(peer)) ctrl.abort(new Error(`peer ${peer} was removed`));
    for (const peer of peers) {
      if (this.#open.has(peer)) continue;
      const ctrl = new AbortController();
      const onStop = () => ctrl.abort(signal.reason);
      signal.addEventListener("abort", onStop, { once: true });
      this.#open.set(peer, ctrl);
      this.#host.track(this.#run(peer, ctrl.signal).finally(() => {
        signal.removeEventListener("abort", onStop);
        this.#open.delete(peer);
        this.#up.delete(peer);
      }));
    }
  }

  async #run(peer: number, signal: AbortSignal): Promise<void> {
    const { node, transport, stats } = this.#host;
    let failures = 0;
    while (!signal.aborted && this.#host.running() && !node.closed && node.peers().includes(peer)) {
      let opened = false;
      try {
        await transport.subscribe!(peer, {
          signal,
          from: node.id,
          onOpen: () => {
            opened = true;
            failures = 0;
            stats.liveConnects++;
            this.#up.add(peer);
            this.#host.syncSoon(peer);
          },
          onPush: (body) => this.#merge(peer, body),
          onGap: () => {
            stats.liveGaps++;
            this.#host.syncSoon(peer);
          },
        });
      } catch (err) {
        if (signal.aborted) break;
        stats.liveFailures++;
        if (failures === 0) this.#host.warn(`live push stream from peer ${peer} ${opened ? "broke" : "could not open"}: ${(err as Error).message} (periodic rounds continue; reconnecting with backoff)`);
      }
      this.#up.delete(peer);
      if (signal.aborted) break;
      failures = opened ? 1 : failures + 1;
      const t = this.#timing;
      const full = Math.min(t.maxMs, t.retryMs * 2 ** Math.min(failures - 1, 30));
      await sleep(full / 2 + t.random() * (full / 2), signal).catch(() => undefined);
    }
  }

  /** Merges one streamed envelope as SyncManager.handle merges a POST /push body. */
  async #merge(peer: number, body: Uint8Array): Promise<void> {
    // A peer removed while its stream was up: nothing more is merged from it, and the stream closes.
    if (!this.#host.node.peers().includes(peer)) {
      this.#open.get(peer)?.abort(new Error(`peer ${peer} was removed`));
      return;
    }
    const env = decodeEnvelope(body);
    if (env.senderId !== peer || !env.pushOnly) throw new WaveKVError("BAD_ENVELOPE", `the live stream of peer ${peer} carried ${env.pushOnly ? `a push from node ${env.senderId}` : "an envelope that is not a push"}`);
    await this.#host.node.handleEnvelopeInSlices(env, this.#host.slicing);
    this.#host.stats.livePushes++;
  }
}
