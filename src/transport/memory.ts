/**
 * An in-process network with seeded faults, for tests and simulations of wavekv — and
 * of applications built on it.
 *
 *   const net = new MemoryNetwork({ seed: 1, drop: 0.1, duplicate: 0.05, delayMs: [0, 20], reorder: true });
 *   const sync1 = new SyncManager(node1, net.transport(1));   // requests sent by node 1
 *   net.register(1, sync1);                                   // requests to 1 → sync1.handle(body)
 *   net.partition([1, 2], [3]); net.heal(); net.down(3); net.up(3);
 *   await net.settled();                                      // every delivery finished
 *
 * Model. A request travels `from → to`, is handled by `to`'s registered handler, and
 * its response (or the handler's error) travels back `to → from`. Each leg on each
 * directed link draws its fate from that link's own PRNG, seeded from (`seed`, from,
 * to): the n-th message on a link meets the same fate in every run with that seed,
 * whatever the other links do. Faults:
 * - drop: each leg is lost with probability `drop`. A lost request never reaches the
 *   handler; a lost response was handled (the peer's state changed) but never arrives.
 *   The requester sees a loss as `lost: "reject"` (default) an immediate rejection with
 *   `WaveKVError("IO", "memnet: … lost …")`, or as `lost: "hang"` silence until its
 *   signal aborts — what a real lost packet looks like behind a timeout.
 * - duplicate: a request is handled a second time with probability `duplicate`, a
 *   little later; the second response is discarded.
 * - delayMs [min, max]: each leg waits a uniform random delay. `[0, 0]` (the default)
 *   delivers on the next macrotask (setImmediate), involving no clock at all, so a run
 *   is reproducible message for message when the program above is deterministic.
 * - reorder: legs on one link may overtake each other. Without it a link is FIFO: a
 *   leg waits for the one sent before it on the same link, then for its own delay.
 * - partition(...groups): nodes in different groups cannot reach each other (nodes in
 *   no group form one more group); checked when a leg is sent and again when it
 *   arrives, so a partition also cuts what is in flight. `down(id)` cuts a node off
 *   both ways until `up(id)`.
 * - tamper: a hook that may rewrite any message body (see `dropOneEntry`).
 * An aborted `signal` rejects the request at once; work already handed to the peer
 * continues there, as it would on a real network.
 */
import { decodeEnvelope, encodeEnvelope, type Envelope } from "../sync/envelope.js";
import { WaveKVError } from "../core/errors.js";
import { abortReason, macrotask, raceAbort } from "../core/abort.js";
import type { SyncHandler, Transport, TransportRequestOptions } from "./transport.js";
import type { Entry } from "../core/types.js";

export type Direction = "request" | "response";

export interface NetworkMessage {
  from: number;
  to: number;
  direction: Direction;
  /** "sync" for rounds, "push" for opportunistic pushes. */
  channel: "sync" | "push";
  body: Uint8Array;
}

/** Returns replacement bytes, or undefined to deliver the message unchanged. */
export type Tamper = (msg: NetworkMessage) => Uint8Array | undefined;

export interface NetworkFaults {
  /**
   * Probability that one leg (request or response) is lost.
   * @defaultValue `0` (nothing lost)
   */
  drop?: number;
  /**
   * Probability that a request is handled twice.
   * @defaultValue `0`
   */
  duplicate?: number;
  /**
   * Uniform delay per leg, ms. `[0, 0]` delivers on the next macrotask, with no clock involved.
   * @defaultValue `[0, 0]`
   */
  delayMs?: readonly [number, number];
  /**
   * Let legs on a link overtake each other; off, each directed link is FIFO.
   * @defaultValue `false`
   */
  reorder?: boolean;
}

export interface MemoryNetworkOptions extends NetworkFaults {
  /**
   * Seeds every link's PRNG: the same seed gives every message the same fate.
   * @defaultValue `1`
   */
  seed?: number;
  /**
   * What a lost message looks like to the requester (see the module comment).
   * @defaultValue `"reject"` (an immediate `IO` rejection)
   */
  lost?: "reject" | "hang";
  /**
   * Rewrites message bodies in flight (see `dropOneEntry`); `setTamper` changes it later.
   * @defaultValue none: bodies are delivered as sent
   */
  tamper?: Tamper;
}

export interface NetworkStats {
  requests: number;
  delivered: number;
  responses: number;
  dropped: number;
  duplicated: number;
  cut: number;
  tampered: number;
}

/** mulberry32: a tiny seeded PRNG, uniform in [0, 1). Good enough for fault injection. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A 32-bit mix of several integers (for per-link seeds). */
function mix(...xs: number[]): number {
  let h = 0x9e3779b9;
  for (const x of xs) {
    h = Math.imul(h ^ (x >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

interface Link {
  rng: () => number;
  /** FIFO mode: settles when the last leg sent on this link was delivered. */
  tail: Promise<void>;
}

export class MemoryNetwork {
  readonly seed: number;
  readonly #lost: "reject" | "hang";
  #faults: Required<NetworkFaults>;
  #tamper: Tamper | undefined;
  readonly #handlers = new Map<number, SyncHandler>();
  readonly #links = new Map<string, Link>();
  readonly #down = new Set<number>();
  #groups: Map<number, number> | null = null;
  #inflight = 0;
  #idle: Array<() => void> = [];
  readonly stats: NetworkStats = { requests: 0, delivered: 0, responses: 0, dropped: 0, duplicated: 0, cut: 0, tampered: 0 };

  constructor(opts: MemoryNetworkOptions = {}) {
    this.seed = opts.seed ?? 1;
    this.#lost = opts.lost ?? "reject";
    this.#tamper = opts.tamper;
    this.#faults = { drop: 0, duplicate: 0, delayMs: [0, 0], reorder: false };
    this.setFaults(opts);
  }

  /** Changes fault rates from now on (e.g. a calm phase after a stormy one). */
  setFaults(f: NetworkFaults): void {
    const next = { ...this.#faults, ...Object.fromEntries(Object.entries(f).filter(([, v]) => v !== undefined)) } as Required<NetworkFaults>;
    for (const p of ["drop", "duplicate"] as const) {
      if (!(next[p] >= 0 && next[p] <= 1)) throw new WaveKVError("INVALID_ARGUMENT", `${p} must be a probability in [0, 1], got ${next[p]}`);
    }
    const [lo, hi] = next.delayMs;
    if (!(lo >= 0 && hi >= lo)) throw new WaveKVError("INVALID_ARGUMENT", `delayMs must be [min, max] with 0 <= min <= max, got [${lo}, ${hi}]`);
    this.#faults = next;
  }

  setTamper(tamper: Tamper | undefined): void {
    this.#tamper = tamper;
  }

  /** Requests addressed to `id` are handled by `handler` (a SyncManager). Replaces an earlier one. */
  register(id: number, handler: SyncHandler): void {
    this.#handlers.set(id, handler);
  }

  unregister(id: number): void {
    this.#handlers.delete(id);
  }

  /** The transport node `id` sends its requests with. */
  transport(id: number): Transport {
    return {
      request: (peer, body, opts) => this.#send(id, peer, body, "sync", opts),
      push: (peer, body, opts) => this.#send(id, peer, body, "push", opts),
    };
  }

  /** Splits the network: nodes in different groups cannot reach each other. Replaces an earlier partition. */
  partition(...groups: ReadonlyArray<readonly number[]>): void {
    const g = new Map<number, number>();
    groups.forEach((members, i) => { for (const id of members) g.set(id, i); });
    this.#groups = g;
  }

  heal(): void {
    this.#groups = null;
  }

  down(id: number): void {
    this.#down.add(id);
  }

  up(id: number): void {
    this.#down.delete(id);
  }

  /** Whether a message from `from` would currently reach `to` (faults aside). */
  reachable(from: number, to: number): boolean {
    if (this.#down.has(from) || this.#down.has(to)) return false;
    if (this.#groups === null) return true;
    return (this.#groups.get(from) ?? -1) === (this.#groups.get(to) ?? -1);
  }

  /** Resolves once no delivery or handler call (duplicates included) is in flight, and the last response was taken in. */
  settled(): Promise<void> {
    if (this.#inflight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #link(from: number, to: number): Link {
    const key = `${from}>${to}`;
    let link = this.#links.get(key);
    if (!link) {
      link = { rng: seededRandom(mix(this.seed, from, to)), tail: Promise.resolve() };
      this.#links.set(key, link);
    }
    return link;
  }

  #begin(): void {
    this.#inflight++;
  }

  #end(): void {
    if (--this.#inflight > 0) return;
    // One macrotask later, so the requester has processed the last response (its
    // continuation is queued behind this one) before settled() resolves.
    setImmediate(() => {
      if (this.#inflight > 0) return;
      const idle = this.#idle;
      this.#idle = [];
      for (const r of idle) r();
    });
  }

  /** Draws one leg's fate: three draws per leg, always, so fates do not shift with rates. */
  #fate(link: Link): { drop: boolean; duplicate: boolean; delay: number } {
    const f = this.#faults;
    const d = link.rng(), u = link.rng(), t = link.rng();
    const [lo, hi] = f.delayMs;
    return { drop: d < f.drop, duplicate: u < f.duplicate, delay: lo + Math.floor(t * (hi - lo + 1)) };
  }

  /** Waits out one leg on `link`: FIFO behind earlier legs unless reordering. */
  async #travel(link: Link, delay: number): Promise<void> {
    const wait = (): Promise<void> => {
      if (delay > 0) return new Promise((r) => setTimeout(r, delay));
      return macrotask();
    };
    if (this.#faults.reorder) {
      // Zero delays still reorder: a leg takes 1–8 macrotask hops.
      if (this.#faults.delayMs[1] === 0) {
        const hops = 1 + Math.floor(link.rng() * 8);
        for (let i = 0; i < hops; i++) await macrotask();
        return;
      }
      return wait();
    }
    const mine = link.tail.then(wait);
    link.tail = mine;
    return mine;
  }

  #lose(from: number, to: number, direction: Direction, why: string, signal: AbortSignal): Promise<never> {
    if (this.#lost === "hang") {
      return new Promise((_, reject) => {
        if (signal.aborted) reject(abortReason(signal));
        else signal.addEventListener("abort", () => reject(abortReason(signal)), { once: true });
      });
    }
    return Promise.reject(new WaveKVError("IO", `memnet: ${direction} ${direction === "request" ? `from ${from} to ${to}` : `from ${from} back to ${to}`} lost (${why}; seed ${this.seed})`));
  }

  #tampered(msg: NetworkMessage): Uint8Array {
    const out = this.#tamper?.(msg);
    if (out === undefined) return msg.body;
    this.stats.tampered++;
    return out;
  }

  async #send(from: number, to: number, body: Uint8Array, channel: "sync" | "push", opts: TransportRequestOptions): Promise<Uint8Array> {
    const signal = opts.signal;
    if (signal.aborted) throw abortReason(signal);
    this.stats.requests++;
    // In flight until the exchange itself ends, not the caller's wait: an aborted
    // caller leaves the peer's handler running, and settled() waits for it too.
    this.#begin();
    const exchange = this.#exchange(from, to, body.slice(), channel, signal);
    exchange.then(() => this.#end(), () => this.#end());
    return raceAbort(exchange, signal);
  }

  async #exchange(from: number, to: number, body: Uint8Array, channel: "sync" | "push", signal: AbortSignal): Promise<Uint8Array> {
    const out = this.#link(from, to);
    const fate = this.#fate(out);
    if (!this.reachable(from, to)) { this.stats.cut++; return this.#lose(from, to, "request", "unreachable", signal); }
    if (fate.drop) { this.stats.dropped++; return this.#lose(from, to, "request", "dropped", signal); }
    await this.#travel(out, fate.delay);
    if (!this.reachable(from, to)) { this.stats.cut++; return this.#lose(from, to, "request", "cut in flight", signal); }
    const handler = this.#handlers.get(to);
    if (!handler) throw new WaveKVError("IO", `memnet: no node is registered as ${to} (connection refused)`);
    const request = this.#tampered({ from, to, direction: "request", channel, body });
    this.stats.delivered++;
    if (fate.duplicate) this.#duplicate(out, handler, request);

    // The handler's answer, success or refusal, travels back over the reverse link.
    let result: { ok: true; bytes: Uint8Array } | { ok: false; error: unknown };
    try {
      result = { ok: true, bytes: (await handler.handle(request)).slice() };
    } catch (error) {
      result = { ok: false, error };
    }
    const back = this.#link(to, from);
    const backFate = this.#fate(back);
    if (!this.reachable(to, from)) { this.stats.cut++; return this.#lose(to, from, "response", "unreachable", signal); }
    if (backFate.drop) { this.stats.dropped++; return this.#lose(to, from, "response", "dropped", signal); }
    await this.#travel(back, backFate.delay);
    if (!this.reachable(to, from)) { this.stats.cut++; return this.#lose(to, from, "response", "cut in flight", signal); }
    if (!result.ok) throw result.error;
    this.stats.responses++;
    return this.#tampered({ from: to, to: from, direction: "response", channel, body: result.bytes });
  }

  /** A second delivery of `request`, a little later; its response goes nowhere. */
  #duplicate(link: Link, handler: SyncHandler, request: Uint8Array): void {
    this.stats.duplicated++;
    this.#begin();
    const hops = 1 + Math.floor(link.rng() * 4);
    void (async () => {
      try {
        for (let i = 0; i < hops; i++) await macrotask();
        await handler.handle(request.slice());
      } catch {
        // The duplicate's outcome is invisible to the sender, as on a real network.
      } finally {
        this.#end();
      }
    })();
  }
}

export interface EntryDropper {
  (msg: NetworkMessage): Uint8Array | undefined;
  /** The entries removed so far, in order. */
  readonly dropped: Entry[];
}

/**
 * A tamper hook that removes one entry from each of the next `times` matching
 * envelopes that carry entries (by default: responses), re-encoded with a valid CRC,
 * so the receiver sees a well-formed envelope that silently lacks an entry while its
 * acks claim it — the divergence the digest check exists to catch.
 *
 *   const dropper = dropOneEntry({ from: 2, to: 1 });
 *   const net = new MemoryNetwork({ seed, tamper: dropper });
 *   ...; dropper.dropped   // [the entry node 1 never received]
 */
export function dropOneEntry(opts: { from?: number; to?: number; direction?: Direction; channel?: "sync" | "push"; times?: number; pick?: (count: number) => number } = {}): EntryDropper {
  let left = opts.times ?? 1;
  const direction = opts.direction ?? "response";
  const dropped: Entry[] = [];
  const fn = (msg: NetworkMessage): Uint8Array | undefined => {
    if (left <= 0 || msg.direction !== direction) return undefined;
    if (opts.from !== undefined && msg.from !== opts.from) return undefined;
    if (opts.to !== undefined && msg.to !== opts.to) return undefined;
    if (opts.channel !== undefined && msg.channel !== opts.channel) return undefined;
    let env: Envelope;
    try {
      env = decodeEnvelope(msg.body);
    } catch {
      return undefined;
    }
    const entries = env.entries;
    if (entries.length === 0) return undefined;
    const i = Math.min(entries.length - 1, Math.max(0, opts.pick?.(entries.length) ?? 0));
    dropped.push(entries[i]!);
    left--;
    const { entries: _omit, ...fields } = env;
    return encodeEnvelope({ ...fields, entries: entries.filter((_, j) => j !== i) });
  };
  return Object.assign(fn, { dropped });
}
