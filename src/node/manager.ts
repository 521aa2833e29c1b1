/**
 * SyncManager: drives a node's sync rounds over a `Transport` and serves its peers'.
 *
 *   const sync = new SyncManager(node, transport, { intervalMs: 30_000, timeoutMs: 10_000, pushWindowMs: 200 });
 *   await sync.bootstrap();          // pull from every peer once (relearns our spent seqs)
 *   sync.start();                    // a round with every peer now, then each interval, plus push
 *   sync.syncSoon(peer);             // a new peer or a new address: a round with it now
 *   const reports = await sync.syncOnce();   // one round now, per-peer reports
 *   server.on("request", async (body) => reply(await sync.handle(body)));  // serve peers
 *   await sync.stop();
 *
 * What lives here and what does not: the node owns every protocol decision (deltas,
 * acks, R1–R4, pagination cursors, digest repair — src/sync/protocol.ts); this module owns
 * time and the network: concurrency across peers, one round at a time per peer, the
 * per-round deadline, backoff, the push channel, encoding and decoding. Per-peer link
 * state and the backoff policy are src/node/links.ts; the push queue is src/node/push.ts.
 *
 * Costs and guarantees:
 * - Rounds with all peers run concurrently; each is bounded by `timeoutMs` (all of its
 *   pages together), so a dead or slow peer costs its own round and stalls nobody. A
 *   timed-out round is abandoned on the node (`abortSync`): nothing is adopted (a paged
 *   round keeps its cursor: the next round resumes it, docs/PROTOCOL.md §2).
 * - Timing of the background loop (start()), per peer: a round at once with every peer
 *   not synced yet, then one about every `intervalMs` (±10 % jitter) — the steady cost,
 *   one round per peer per interval, whatever the cluster size. A failed round is retried
 *   fast, then slower: after `retryMs` (100 ms), doubling per consecutive failure up to
 *   `maxBackoffMs`, with jitter — so a peer that was still starting is reached within a
 *   fraction of a second, and a dead one costs a round every few minutes. A new peer or
 *   a new address (syncSoon), and a request from a peer we were backing off from, are
 *   news: a round with that peer now. A slow peer delays only its own rounds. `syncOnce`
 *   always tries every peer.
 * - Push: local writes are collected from the node's change feed, coalesced per key for
 *   `pushWindowMs`, and sent to every peer as one `pushOnly` envelope (rule R3: merged,
 *   never moves acks). The queue is bounded (`maxPushEntries`, `maxPushBytes`; the
 *   oldest are evicted — the periodic round still delivers them), and a peer with a
 *   push still in flight is skipped, so a dead peer cannot pile pushes up.
 * - Live (`live: true`): one push stream per peer (`transport.subscribe`), merged as pushes
 *   are, reopened with capped jittered backoff, a round at each (re)connect (src/node/push.ts).
 * - A received envelope larger than `mergeSliceEntries` is merged in slices with a
 *   macrotask between them (acks adopted only after the last, if every slice merged):
 *   one peer's large push cannot hold the node (bench/status-latency.ts).
 * - A request refused with UUID_MISMATCH starts one round with that id: the answer of the
 *   node at its address is what the uuid record follows (docs/PROTOCOL.md §4).
 * - Timers are unref'd: a forgotten manager never keeps a process alive.
 */
import { decodeEnvelope, encodeEnvelope, encodedEntriesOf } from "../sync/envelope.js";
import type { MergeSlicing } from "../sync/protocol.js";
import { WaveKVError } from "../core/errors.js";
import type { Node } from "./node.js";
import { checkSyncOptions } from "./options.js";
import { macrotask, raceAbort, unrefTimer } from "../core/abort.js";
import type { SyncHandler, Transport } from "../transport/transport.js";
import { PeerLinks, type PeerLinkStatus } from "./links.js";
import { PushChannel } from "./push.js";
import type { LiveHost, LiveSubscriptions } from "./live.js";

export type { PeerLinkStatus } from "./links.js";

export interface SyncOptions {
  /** Period of the background round with every peer (start()). Default 30 000. */
  intervalMs?: number;
  /** Deadline of one round with one peer, all pages included; also bounds a push. Default 10 000. */
  timeoutMs?: number;
  /** Coalescing window of the push channel. Default 200. */
  pushWindowMs?: number;
  /** Opportunistic push of local writes (started by start()). Default true. */
  push?: boolean;
  /** Bound on distinct keys waiting to be pushed. Default 4 096. */
  maxPushEntries?: number;
  /** Bound on key + value bytes waiting to be pushed. Default 4 MiB. */
  maxPushBytes?: number;
  /** Entries of a received envelope merged between two yields to the event loop (a large push or page is merged in slices, so one request cannot hold the node; a slice never splits a batch). Default 1 024. */
  mergeSliceEntries?: number;
  /**
   * First retry of a failed round (ms); each further consecutive failure doubles it, up to
   * `maxBackoffMs`, with jitter (half fixed, half random). Default 100.
   */
  retryMs?: number;
  /** Longest backoff of a failing peer. Default max(intervalMs, 300 000). */
  maxBackoffMs?: number;
  /**
   * Keep a live push stream open to every peer (`transport.subscribe`: FetchTransport's
   * GET /subscribe), so the peer's changes arrive as they happen; a browser node sets it.
   * The periodic rounds go on (the safety net); a round runs at each (re)connect. Default false.
   */
  live?: boolean;
  /** Jitter source in [0, 1); inject a seeded one for reproducible runs. Default Math.random. */
  random?: () => number;
  /** Called with the report of every background round (start()), as each round ends. */
  onRound?: (reports: PeerReport[]) => void;
  /** A peer that starts failing, recovers, or a background failure. Default console.warn. */
  onWarning?: (message: string) => void;
}

/** What one round with one peer did. */
export interface PeerReport {
  peer: number;
  ok: boolean;
  error?: Error;
  /** Entries and bytes of our requests (every page). */
  sentEntries: number;
  sentBytes: number;
  /** Entries and bytes of the peer's responses. */
  receivedEntries: number;
  receivedBytes: number;
  /** Received entries that changed our state / that we refused (limits, admit, clock drift). */
  merged: number;
  rejected: number;
  /** Request/response exchanges in the round (more than 1 when the delta was paged). */
  pages: number;
  /** The peer's digest equals ours after the round (undefined: not compared, or the round failed). */
  digestMatch?: boolean;
  /** The peer's coverage was adopted (rule R1: every page merged completely). */
  adopted: boolean;
  /** A persistent digest mismatch reset coverage for this peer: the next round repairs it. */
  repaired: boolean;
  durationMs: number;
}

export interface SyncStats {
  rounds: number;
  roundFailures: number;
  handled: number;
  handleFailures: number;
  pushesSent: number;
  pushFailures: number;
  /** Queued entries evicted by the push bound (the periodic round delivers them). */
  pushEvicted: number;
  /** Pushes not sent to a peer because its previous push was still in flight or it was backing off. */
  pushSkipped: number;
  /** Own batch entries left out of a push, their batch not whole in the queue (evicted or overwritten part): the round delivers it whole. */
  pushHeldBack: number;
  bytesSent: number;
  bytesReceived: number;
  /** Live streams (`live`): envelopes merged, streams opened, attempts that failed or broke, gaps reported. */
  livePushes: number;
  liveConnects: number;
  liveFailures: number;
  liveGaps: number;
}

const DEFAULTS = { intervalMs: 30_000, timeoutMs: 10_000, pushWindowMs: 200, maxPushEntries: 4096, maxPushBytes: 4 << 20, mergeSliceEntries: 1024, retryMs: 100 };

export class SyncManager implements SyncHandler {
  readonly node: Node;
  readonly transport: Transport;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly pushWindowMs: number;
  readonly #push: boolean;
  readonly #slicing: MergeSlicing;
  readonly #onRound: ((reports: PeerReport[]) => void) | undefined;
  readonly #warn: (message: string) => void;
  readonly #links: PeerLinks;
  readonly #pushes: PushChannel;
  /** `live`: the streams once ./live.js is loaded (a dynamic import: a chunk of its own in the browser bundle), and that load. */
  #live: LiveSubscriptions | null = null;
  #liveLoad: (() => Promise<void>) | null = null;
  /** Per peer, the tail of its round chain: rounds with one peer never overlap (the node keeps one round per peer). */
  readonly #peerChains = new Map<number, Promise<unknown>>();
  /** Everything in flight (rounds, pushes), for stop() to await. */
  readonly #inflight = new Set<Promise<unknown>>();
  /** Aborted by stop(): cancels the change feed. */
  #life = new AbortController();
  /** One controller per round or push in flight; stop() aborts them all. (Not listeners on
   * #life: with many peers they would pile up on one signal.) */
  readonly #active = new Set<AbortController>();
  #running = false;
  #bootstrapping = false;
  /** bootstrap() ended with every peer failing: the first successful round finishes it. */
  #bootstrapPending = false;
  /** Peers with a uuid-verification round in flight (#verify). */
  readonly #verifying = new Set<number>();
  #tickTimer: ReturnType<typeof setTimeout> | null = null;
  /** When #tickTimer fires (epoch ms). */
  #tickAt = 0;
  /** Peers with a background round started by #tick and not finished. */
  readonly #looping = new Set<number>();
  readonly stats: SyncStats = { rounds: 0, roundFailures: 0, handled: 0, handleFailures: 0, pushesSent: 0, pushFailures: 0, pushEvicted: 0, pushSkipped: 0, pushHeldBack: 0, bytesSent: 0, bytesReceived: 0, livePushes: 0, liveConnects: 0, liveFailures: 0, liveGaps: 0 };

  constructor(node: Node, transport: Transport, opts: SyncOptions = {}) {
    // Types and bounds of every option (src/node/options.ts), before any is read.
    checkSyncOptions(opts);
    this.node = node;
    this.transport = transport;
    this.intervalMs = opts.intervalMs ?? DEFAULTS.intervalMs;
    this.timeoutMs = opts.timeoutMs ?? DEFAULTS.timeoutMs;
    this.pushWindowMs = opts.pushWindowMs ?? DEFAULTS.pushWindowMs;
    this.#push = opts.push ?? true;
    const maxEntries = opts.maxPushEntries ?? DEFAULTS.maxPushEntries;
    const maxBytes = opts.maxPushBytes ?? DEFAULTS.maxPushBytes;
    const maxBackoffMs = opts.maxBackoffMs ?? Math.max(this.intervalMs, 300_000);
    const retryMs = opts.retryMs ?? DEFAULTS.retryMs;
    this.#links = new PeerLinks({ intervalMs: this.intervalMs, retryMs, maxBackoffMs, random: opts.random ?? Math.random }, this);
    this.#slicing = { sliceEntries: opts.mergeSliceEntries ?? DEFAULTS.mergeSliceEntries, pause: macrotask };
    this.#onRound = opts.onRound;
    this.#warn = opts.onWarning ?? ((m) => console.warn(`wavekv sync ${node.id}: ${m}`));
    this.#pushes = new PushChannel({
      node, transport, links: this.#links, stats: this.stats,
      running: () => this.#running,
      deadline: (what) => this.#deadline(what),
      track: (p) => this.#track(p),
      warn: (m) => this.#warn(m),
    }, { windowMs: this.pushWindowMs, maxEntries, maxBytes });
    if (opts.live) {
      const host: LiveHost = { node, transport, slicing: this.#slicing, stats: this.stats, running: () => this.#running, syncSoon: (p) => this.syncSoon(p), track: (p) => this.#track(p), warn: (m) => this.#warn(m) };
      this.#liveLoad = async () => {
        this.#liveLoad = null;
        this.#live = new (await import("./live.js")).LiveSubscriptions(host, { retryMs, maxBackoffMs, random: opts.random ?? Math.random });
        if (this.#running) this.#live.ensure(this.#life.signal);
      };
    }
  }

  get running(): boolean {
    return this.#running;
  }

  // ---------------------------------------------------------------- server side

  /**
   * Serves one request (or push) from a peer: decode, merge and answer. Rejects with
   * BAD_ENVELOPE for malformed bytes and UUID_MISMATCH for a sender whose uuid
   * disagrees with the one on record for its id; in both cases nothing was merged.
   */
  async handle(body: Uint8Array): Promise<Uint8Array> {
    let sender = -1;
    try {
      const request = decodeEnvelope(body);
      sender = request.senderId;
      const response = encodeEnvelope(await this.node.handleEnvelopeInSlices(request, this.#slicing));
      // A round from a peer we were backing off from: it is up again (restarted, say), so
      // no need to wait out the backoff. Not on pushes: a peer that reaches us but that we
      // cannot reach would otherwise cost a failing round per push.
      if (!request.pushOnly && this.#links.backingOff(sender)) this.syncSoon(sender);
      this.stats.handled++;
      this.stats.bytesReceived += body.length;
      this.stats.bytesSent += response.length;
      return response;
    } catch (err) {
      this.stats.handleFailures++;
      if (err instanceof WaveKVError && err.code === "UUID_MISMATCH") this.#verify(sender);
      throw err;
    }
  }

  /**
   * A request whose uuid disagrees with the record for its id: ask the node at the
   * address we hold for that id (one round). Its answer is the evidence the record
   * follows (SyncProtocol.applyEnvelope), so a squatter that only sends requests cannot
   * keep the real node locked out. At most one such round per peer at a time, and none
   * while the peer is backing off.
   */
  #verify(peer: number): void {
    if (peer < 0 || this.node.closed || this.#verifying.has(peer) || !this.node.peers().includes(peer)) return;
    if (this.#links.backingOff(peer)) return;
    this.#verifying.add(peer);
    void this.#exclusive(peer, () => this.#roundWith(peer)).finally(() => this.#verifying.delete(peer));
  }

  // ---------------------------------------------------------------- rounds

  /**
   * Pulls from every peer once before the node serves writes, with adoption of
   * requesters' coverage suspended meanwhile (a node whose directory was lost does not
   * know what it covers). Our own ack comes back in the responses, which moves the
   * node's next seq past every seq a peer already holds. Resolves with the reports even
   * when peers fail (the periodic loop retries them); if every peer failed, adoption of
   * requesters' coverage stays suspended until the first round that succeeds.
   */
  async bootstrap(): Promise<PeerReport[]> {
    this.node.beginBootstrap();
    this.#bootstrapping = true;
    this.#bootstrapPending = false;
    let reports: PeerReport[] = [];
    try {
      reports = await this.syncOnce();
    } finally {
      // With no peer reached our coverage is still unknown: the guard stays armed until
      // some later round succeeds (#account). Disarming here would let the first peer
      // that asks talk us into claiming coverage of data we do not hold.
      if (reports.length === 0 || reports.some((r) => r.ok) || this.node.closed) this.#finishBootstrap();
      else this.#bootstrapPending = true;
    }
    return reports;
  }

  #finishBootstrap(): void {
    this.#bootstrapPending = false;
    if (!this.#bootstrapping) return;
    this.#bootstrapping = false;
    if (!this.node.closed) this.node.finishBootstrap();
  }

  /** True from bootstrap() until a round with some peer has succeeded (bootstrap's own, or a later one). */
  get bootstrapping(): boolean {
    return this.#bootstrapping;
  }

  /** One round with every peer now, concurrently (backoff is ignored). */
  async syncOnce(): Promise<PeerReport[]> {
    if (this.node.closed) throw new WaveKVError("CLOSED", "the node is closed; open it again and make a new SyncManager");
    return Promise.all(this.node.peers().map((p) => this.#exclusive(p, () => this.#roundWith(p))));
  }

  /**
   * A round with `peer` as soon as possible, whatever its backoff: for news about it (a
   * new peer, a new address). The background loop (start()) runs it at once, or right
   * after the round in flight with the peer; without start() this only ends the backoff.
   */
  syncSoon(peer: number): void {
    this.#links.soon(peer);
    this.#scheduleTick();
  }

  /** Runs `fn` after every earlier round with `peer` finished. */
  #exclusive<T>(peer: number, fn: () => Promise<T>): Promise<T> {
    const prev = this.#peerChains.get(peer) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.#peerChains.set(peer, tail);
    this.#track(tail);
    void tail.then(() => { if (this.#peerChains.get(peer) === tail) this.#peerChains.delete(peer); });
    return run;
  }

  #track(p: Promise<unknown>): void {
    this.#inflight.add(p);
    void p.finally(() => this.#inflight.delete(p)).catch(() => undefined);
  }

  async #roundWith(peer: number): Promise<PeerReport> {
    const started = Date.now();
    this.#links.of(peer).soon = false;
    const report: PeerReport = { peer, ok: false, sentEntries: 0, sentBytes: 0, receivedEntries: 0, receivedBytes: 0, merged: 0, rejected: 0, pages: 0, adopted: false, repaired: false, durationMs: 0 };
    const limit = this.#deadline(`sync round with peer ${peer}`);
    try {
      for (;;) {
        // prepareSync continues a paged round by itself (the node keeps the cursor).
        const request = this.node.prepareSync(peer);
        const body = encodeEnvelope(request);
        report.sentEntries += encodedEntriesOf(request).count;
        report.sentBytes += body.length;
        const bytes = await raceAbort(this.transport.request(peer, body, { signal: limit.signal }), limit.signal);
        report.receivedBytes += bytes.length;
        const response = decodeEnvelope(bytes);
        if (response.senderId !== peer) throw new WaveKVError("BAD_ENVELOPE", `a request to peer ${peer} was answered by node ${response.senderId}; check the transport's addressing`);
        if (response.pushOnly) throw new WaveKVError("BAD_ENVELOPE", `peer ${peer} answered a sync request with a push acknowledgement`);
        const outcome = await this.node.applyEnvelopeInSlices(response, this.#slicing);
        report.pages++;
        report.receivedEntries += outcome.received;
        report.merged += outcome.merged;
        report.rejected += outcome.rejected;
        if (!outcome.more) {
          report.adopted = outcome.adopted;
          report.repaired = outcome.repaired;
          if (outcome.digestMatch !== undefined) report.digestMatch = outcome.digestMatch;
          break;
        }
      }
      report.ok = true;
    } catch (err) {
      // Nothing is adopted now; a paged round keeps its cursor and resumes next time (R2 still spans it).
      this.node.abortSync(peer);
      // The peer holds another uuid for our id: shown on our side too (status().refusedBy).
      if (err instanceof WaveKVError && err.code === "UUID_MISMATCH") this.node.noteRefusedBy(peer);
      report.error = err instanceof Error ? err : new Error(String(err));
    } finally {
      limit.dispose();
    }
    report.durationMs = Date.now() - started;
    this.#account(report);
    return report;
  }

  /** A signal for one exchange: aborted after timeoutMs or by stop(). dispose() when done. */
  #deadline(what: string): { signal: AbortSignal; dispose(): void } {
    const ctrl = new AbortController();
    if (this.#life.signal.aborted) ctrl.abort(this.#life.signal.reason);
    this.#active.add(ctrl);
    // Not unref'd: the round it bounds is being awaited, and an unref'd timer would let
    // Node exit mid-await when the peer holds nothing on the event loop.
    const timer = setTimeout(() => ctrl.abort(new WaveKVError("IO", `${what} timed out after ${this.timeoutMs} ms`)), this.timeoutMs);
    return {
      signal: ctrl.signal,
      dispose: () => {
        clearTimeout(timer);
        this.#active.delete(ctrl);
      },
    };
  }

  #account(r: PeerReport): void {
    this.stats.rounds++;
    this.stats.bytesSent += r.sentBytes;
    this.stats.bytesReceived += r.receivedBytes;
    const failedBefore = this.#links.settle(r);
    if (r.ok) {
      if (this.#bootstrapPending) this.#finishBootstrap();
      if (failedBefore > 0) this.#warn(`peer ${r.peer} reachable again after ${failedBefore} failed round(s)`);
    } else {
      this.stats.roundFailures++;
      // A UUID_MISMATCH refusal has its own line, once per peer (Node.noteRefusedBy): not twice.
      const refusedAsDuplicate = r.error instanceof WaveKVError && r.error.code === "UUID_MISMATCH";
      if (failedBefore === 0 && !refusedAsDuplicate && !this.#life.signal.aborted) this.#warn(`round with peer ${r.peer} failed: ${r.error?.message} (retrying with backoff)`);
    }
    this.#scheduleTick();
  }

  /** Backoff state of every peer this manager has talked to. */
  links(): PeerLinkStatus[] {
    return this.#links.status();
  }

  // ---------------------------------------------------------------- loop

  /** Starts the background rounds — at once with every peer not synced yet, then per peer about every `intervalMs`, failures retried from `retryMs` — and the push channel. */
  start(): void {
    if (this.#running) return;
    if (this.node.closed) throw new WaveKVError("CLOSED", "the node is closed");
    this.#running = true;
    this.#scheduleTick();
    if (this.#push) this.#pushes.watch(this.#life.signal);
  }

  /** Stops the loop, aborts rounds and pushes in flight and waits for them to wind down. */
  async stop(): Promise<void> {
    this.#running = false;
    if (this.#tickTimer) clearTimeout(this.#tickTimer);
    this.#tickTimer = null;
    this.#pushes.clear();
    const stopped = new WaveKVError("IO", "sync manager stopped");
    this.#life.abort(stopped);
    for (const ctrl of this.#active) ctrl.abort(stopped);
    while (this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
    // A stopped manager can still serve, sync once, or be started again.
    this.#life = new AbortController();
  }

  /**
   * (Re)arms the one loop timer for the earliest peer due. Cost O(peers), paid when a
   * round ends or news arrives. Wakes at least every intervalMs, so that a peer added to
   * the node behind our back (Node.addPeer, auto-discovery) is noticed within an interval.
   */
  #scheduleTick(): void {
    if (!this.#running) return;
    if (this.#liveLoad) this.#track(this.#liveLoad().catch((err) => this.#warn(`live push streams unavailable: ${(err as Error).message} (periodic rounds continue)`)));
    this.#live?.ensure(this.#life.signal);
    const now = Date.now();
    let at = now + this.intervalMs;
    for (const p of this.node.peers()) if (!this.#looping.has(p)) at = Math.min(at, this.#links.nextAt(p));
    at = Math.max(at, now);
    if (this.#tickTimer !== null) {
      if (this.#tickAt <= at) return;
      clearTimeout(this.#tickTimer);
    }
    this.#tickAt = at;
    this.#tickTimer = setTimeout(() => this.#tick(), at - now);
    unrefTimer(this.#tickTimer);
  }

  /** Starts a round with every peer due; each reschedules the loop as it ends. */
  #tick(): void {
    this.#tickTimer = null;
    if (!this.#running) return;
    if (this.node.closed) {
      this.#running = false;
      return;
    }
    const now = Date.now();
    for (const peer of this.node.peers()) {
      if (this.#looping.has(peer) || this.#links.nextAt(peer) > now) continue;
      this.#looping.add(peer);
      const round = this.#exclusive(peer, () => this.#roundWith(peer))
        .then((report) => this.#onRound?.([report]))
        .catch((err: unknown) => this.#warn(`background round with peer ${peer} failed: ${(err as Error).message}`))
        .finally(() => {
          this.#looping.delete(peer);
          this.#scheduleTick();
        });
      this.#track(round);
    }
    this.#scheduleTick();
  }

  /** Peers whose live push stream is up now (`live`); empty without it. */
  liveStreams(): number[] {
    return this.#live?.connected() ?? [];
  }

  /** Entries waiting for the push window (bounded by maxPushEntries / maxPushBytes). */
  get pushQueueSize(): number {
    return this.#pushes.size;
  }
}

