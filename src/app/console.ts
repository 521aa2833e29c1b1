/**
 * The web console of a `serve` node: the page (built from console/ by
 * scripts/build-console.mjs into src/app/console-assets.ts) and the JSON it polls.
 *
 *   const web = new WebConsole({ node, sync, addressOf, dir, secretRequired: true });
 *   await serveHttp(sync, { node, secret, console: web });   // GET / → the page
 *   new SyncManager(node, transport, { onRound: (r) => web.recordRounds(r) });
 *   web.close();
 *
 * Routes (mounted by src/transport/http.ts):
 * - public: `GET /` (the page shell), `GET /console/app.js`, `GET /console/app.css`. They
 *   hold no data, so a browser can load them before it has the secret.
 * - signed like /kv when the node has a secret: `GET /console/api/state?after=<n>&since=<ms>` →
 *   `ConsoleSnapshot` (this node, every peer, sync stats, changes after cursor n; `feed=0`
 *   leaves the changes out; the charts' samples taken after `since`), and
 *   `GET /console/api/feed?after=<n>`: the change feed as a live push stream (frames of
 *   src/transport/push-frames.ts, type `feed`: the changes after n, then each new batch).
 *   The page lists keys and writes through the ordinary /kv routes.
 * Without the secret the page shows only what the public `/status` already exposes.
 *
 * Costs, all paid only while someone polls, except the change feed:
 * - the feed is one `watch("")` subscriber kept for the server's life (the address book
 *   watch of src/app/serve.ts already makes merges build entries, so this adds a prefix check
 *   and a queue push per change) into a ring of `feedSize` records whose values are cut to
 *   `PREVIEW_BYTES`: memory is bounded however large the values are;
 * - a state request reads the node's storage stats, stats the snapshot file, and probes each peer's public
 *   `/status` (at most one probe per peer per `PROBE_MAX_AGE_MS`, shared by concurrent
 *   requests, each bounded by `probeTimeoutMs`): that is what tells reachability, the
 *   peer's digest and how many of its writes we lack.
 */
import { stat } from "node:fs/promises";
import { files } from "../storage/datadir.js";
import type { Node } from "../node/node.js";
import type { PeerLinkStatus, PeerReport, SyncStats } from "../node/manager.js";
import type { Entry, FsyncPolicy, NodeStatus } from "../core/types.js";
import { FRAME } from "../transport/push-frames.js";
import type { StreamSubscriber } from "../transport/push-stream.js";
import { ConsoleHistory, type ConsoleHistoryView } from "./console-history.js";

export type { ConsoleHistoryView, HistorySample } from "./console-history.js";

export interface WebConsoleOptions {
  node: Node;
  /** Sync counters and per-peer backoff; rounds are reported through `recordRounds`. */
  sync?: { readonly stats: SyncStats; links(): PeerLinkStatus[] };
  /** Base URL of a node (peers and this one), e.g. the transport's address book. */
  addressOf?: (id: number) => string | undefined;
  /** The node's data directory, for WAL and snapshot sizes. */
  dir?: string;
  fsync?: FsyncPolicy;
  /** The HTTP server checks signatures: the page must ask for the secret. */
  secretRequired: boolean;
  /** Changes kept for the feed. Default 256. */
  feedSize?: number;
  /** Deadline of one peer /status probe. Default 1 500 ms. */
  probeTimeoutMs?: number;
  /** The fetch the peer probes use (one that trusts the cluster's TLS CA). Default: the global fetch. */
  fetch?: typeof fetch;
  /** The charts' sampling period (ms) and how many samples they span. Default 2 000 and 150 (5 minutes). */
  historyIntervalMs?: number;
  historySamples?: number;
}

export interface ConsoleResponse {
  status: number;
  headers: Record<string, string>;
  body: string | Uint8Array;
}

/** One change seen by this node (a local write or a merged remote one), value cut to a preview. */
export interface ChangeRecord {
  /** Position in the feed, from 1, increasing: the page's cursor. */
  n: number;
  /** When this node applied it (server clock, ms). */
  at: number;
  key: string;
  deleted: boolean;
  node: number;
  seq: number;
  timestamp: number;
  /** Value length in bytes (0 for a delete). */
  bytes: number;
  /** Up to PREVIEW_BYTES of the value: text when valid UTF-8, else lowercase hex. */
  preview?: string;
  encoding?: "utf8" | "hex";
  truncated?: boolean;
}

export interface LastRound {
  at: number;
  ok: boolean;
  error?: string;
  durationMs: number;
  sentEntries: number;
  receivedEntries: number;
  merged: number;
  rejected: number;
  digestMatch?: boolean;
}

export interface PeerProbe {
  at: number;
  ok: boolean;
  latencyMs: number;
  error?: string;
  status?: Pick<NodeStatus, "id" | "uuid" | "keys" | "tombstones" | "nextSeq" | "digest">;
}

/** One row of the cluster table: this node (self) or a peer. */
export interface ClusterMember {
  id: number;
  self: boolean;
  address?: string;
  /** true/false from the latest probe (self: true); null when it has no known address. */
  reachable: boolean | null;
  digest?: string;
  keys?: number;
  /** How far we cover this node's writes, and how far it reported covering ours. */
  ack: number;
  peerAck: number;
  heardFrom: boolean;
  /** Its writes we do not hold yet (its nextSeq − 1 − ack); null without a probe. */
  ackLag: number | null;
  /** Our writes it has not confirmed (our nextSeq − 1 − peerAck). */
  peerAckLag: number;
  /** Key + value bytes of those writes, and whether that is exact (Node.replication(), docs/design/0029). */
  bytesBehind?: number;
  bytesExact?: boolean;
  /** When an envelope of it was last merged here (0: not since start). */
  lastContactAt?: number;
  lastRound?: LastRound;
  probe?: PeerProbe;
  /** From SyncManager.links(): rounds we started with it, failed ones, the last success. */
  rounds: number;
  failures: number;
  lastOkAt: number;
  consecutiveFailures: number;
  retryAt: number;
}

/** Fsync latency of the WAL, from its histogram (bucket bounds in ms, src/storage/latency.ts). */
export interface FsyncView {
  count: number;
  meanMs: number | null;
  /** Upper bound of the bucket holding the median / 99th percentile; null above the last bound. */
  p50Ms: number | null;
  p99Ms: number | null;
  /** Mean over the last RECENT_MS or so (null: no fsync in that window). */
  recentMeanMs: number | null;
  recentCount: number;
}

export interface StorageView {
  walBytes: number;
  snapshotBytes: number | null;
  fsync: string;
  fsyncLatency: FsyncView;
}

export interface ConsoleSnapshot {
  now: number;
  node: NodeStatus & { totalBytes: number; storage: StorageView | null };
  sync: SyncStats | null;
  cluster: ClusterMember[];
  changes: { latest: number; oldest: number; gap: boolean; items: ChangeRecord[] };
  /** The charts' samples after `since=` (src/app/console-history.ts). */
  history: ConsoleHistoryView;
}

interface ConsoleAsset {
  type: string;
  body: string;
  etag: string;
}

/** Cut so that a feed of 256 stays under ~300 KiB (keys ≤ 1 KiB each) whatever the values weigh. */
const PREVIEW_BYTES = 96;
/** Probes younger than this are reused: one per peer per poll of the page (1 s). */
const PROBE_MAX_AGE_MS = 900;
/** The "recent" fsync mean compares with a reading at least this old (and at most twice). */
const RECENT_MS = 10_000;

const SECURITY_HEADERS = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};
/** The page loads only its own script and style and talks only to its own origin. */
const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

let assetsLoading: Promise<Record<string, ConsoleAsset> | Error> | null = null;

/** The generated module, loaded on the first page request (so a server that never serves the page never parses it, and a checkout without `npm run build` still serves everything else). */
function loadAssets(): Promise<Record<string, ConsoleAsset> | Error> {
  return (assetsLoading ??= import("./console-assets.js").then(
    (m) => m.CONSOLE_ASSETS as Record<string, ConsoleAsset>,
    (err: unknown) => new Error(`console assets are not built (run npm run build:console): ${(err as Error).message}`),
  ));
}

export class WebConsole {
  readonly #node: Node;
  readonly #opts: WebConsoleOptions;
  readonly #feedSize: number;
  readonly #probeTimeoutMs: number;
  /** Ring of the last feedSize changes; #feed[(n - 1) % feedSize] holds change n. */
  readonly #feed: ChangeRecord[] = [];
  #latest = 0;
  readonly #rounds = new Map<number, LastRound>();
  readonly #probes = new Map<number, PeerProbe>();
  #probing: Promise<void> | null = null;
  /** Two histogram readings, ≥ RECENT_MS apart: the older one is the "recent" baseline. */
  readonly #fsyncMarks: { at: number; sum: number; count: number }[] = [];
  readonly #life = new AbortController();
  /** Feed streams and the last change each was sent (src/transport/push-stream.ts bounds them). */
  readonly #sinks = new Map<StreamSubscriber, number>();
  #sinkFlush = false;
  readonly #history: ConsoleHistory;

  constructor(opts: WebConsoleOptions) {
    this.#node = opts.node;
    this.#opts = opts;
    this.#feedSize = Math.max(1, opts.feedSize ?? 256);
    this.#probeTimeoutMs = opts.probeTimeoutMs ?? 1_500;
    this.#history = new ConsoleHistory({ node: opts.node, intervalMs: opts.historyIntervalMs, samples: opts.historySamples });
    void this.#follow();
  }

  async #follow(): Promise<void> {
    try {
      for await (const e of this.#node.watch("", { signal: this.#life.signal })) this.#record(e);
    } catch {
      // The node closed or close() aborted: the feed simply stops.
    }
  }

  #record(e: Entry): void {
    this.#history.noteChange(e.node === this.#node.id);
    const n = ++this.#latest;
    const rec: ChangeRecord = { n, at: Date.now(), key: e.key, deleted: e.value === null, node: e.node, seq: e.seq, timestamp: e.timestamp, bytes: e.value?.length ?? 0 };
    if (e.value) Object.assign(rec, preview(e.value));
    this.#feed[(n - 1) % this.#feedSize] = rec;
    if (this.#sinks.size > 0 && !this.#sinkFlush) {
      // Coalesced per macrotask: a burst of merges is one frame per stream.
      this.#sinkFlush = true;
      setTimeout(() => { this.#sinkFlush = false; this.#sendFeed(); }, 0);
    }
  }

  /**
   * Streams the feed to `sub` (GET /console/api/feed): the changes after `after` now, then
   * each new batch. A stream that reads too slowly misses frames (push-stream.ts drops
   * them); its cursor stays, so the next frame carries what it missed from the ring, with
   * `gap` when the ring moved past it.
   */
  follow(sub: StreamSubscriber, after: number): void {
    this.#sinks.set(sub, after);
    this.#sendFeed();
  }

  #sendFeed(): void {
    for (const [sub, after] of this.#sinks) {
      if (sub.closed || this.#life.signal.aborted) {
        this.#sinks.delete(sub);
        continue;
      }
      if (after >= this.#latest && after > 0) continue;
      const changes = this.#changesAfter(after);
      if (sub.send(FRAME.feed, new TextEncoder().encode(JSON.stringify(changes)))) this.#sinks.set(sub, changes.latest);
    }
  }

  /** Remembers each peer's latest round (SyncOptions.onRound, and bootstrap's reports). Never throws. */
  recordRounds(reports: readonly PeerReport[]): void {
    const at = Date.now();
    for (const r of reports) {
      this.#rounds.set(r.peer, {
        at, ok: r.ok, durationMs: r.durationMs, sentEntries: r.sentEntries, receivedEntries: r.receivedEntries,
        merged: r.merged, rejected: r.rejected,
        ...(r.error ? { error: r.error.message } : {}),
        ...(r.digestMatch !== undefined ? { digestMatch: r.digestMatch } : {}),
      });
    }
  }

  /** The public page shell and its assets; undefined for any other path. */
  async asset(method: string, path: string, ifNoneMatch?: string): Promise<ConsoleResponse | undefined> {
    if (method !== "GET" && method !== "HEAD") return undefined;
    const name = path === "/" || path === "/index.html" ? "/" : path;
    if (name !== "/" && !name.startsWith("/console/")) return undefined;
    if (name.startsWith("/console/api/")) return undefined;
    const assets = await loadAssets();
    if (assets instanceof Error) return { status: 503, headers: { "content-type": "text/plain; charset=utf-8" }, body: assets.message };
    const a = assets[name];
    if (!a) return undefined;
    // The shell says whether to ask for the secret; it is the same for every request to this server.
    // It also names this node: signatures are bound to the node they are for.
    const auth = this.#opts.secretRequired ? "hmac" : "none";
    const body = name === "/" ? a.body.replace("__WAVEKV_AUTH__", auth).replace("__WAVEKV_NODE__", String(this.#node.id)) : a.body;
    const etag = name === "/" ? `"${a.etag}-${auth}-${this.#node.id}"` : `"${a.etag}"`;
    const headers: Record<string, string> = { ...SECURITY_HEADERS, "content-type": a.type, etag, "cache-control": "no-cache" };
    if (name === "/") headers["content-security-policy"] = PAGE_CSP;
    if (ifNoneMatch === etag) return { status: 304, headers, body: "" };
    return { status: 200, headers, body };
  }

  /** The signed JSON routes (http.ts checks the signature first); undefined for any other path. */
  async api(method: string, url: URL): Promise<ConsoleResponse | undefined> {
    if (url.pathname !== "/console/api/state") return undefined;
    if (method !== "GET") return json(405, { error: "METHOD_NOT_ALLOWED", message: "use GET /console/api/state" });
    if (this.#node.closed) return json(503, { error: "CLOSED", message: "the node is closed" });
    const after = Number(url.searchParams.get("after") ?? 0);
    // feed=0: the page holds the feed stream and wants only the latest count here.
    const since = Number(url.searchParams.get("since") ?? 0);
    return json(200, await this.snapshot(Number.isFinite(after) ? after : 0, url.searchParams.get("feed") !== "0", Number.isFinite(since) ? since : 0));
  }

  /** Everything the page shows once unlocked; `after` is the feed cursor it already holds. */
  async snapshot(after = 0, withFeed = true, since = 0): Promise<ConsoleSnapshot> {
    await this.#probePeers();
    const status = this.#node.status();
    const links = new Map((this.#opts.sync?.links() ?? []).map((l) => [l.peer, l]));
    const replication = new Map(this.#node.replication().peers.map((r) => [r.peer, r]));
    const self: ClusterMember = {
      id: status.id, self: true, address: this.#opts.addressOf?.(status.id), reachable: true, digest: status.digest, keys: status.keys,
      ack: status.nextSeq - 1, peerAck: status.nextSeq - 1, heardFrom: true, ackLag: 0, peerAckLag: 0, rounds: 0, failures: 0, lastOkAt: 0, consecutiveFailures: 0, retryAt: 0,
    };
    const peers = status.peers.map((p): ClusterMember => {
      const probe = this.#probes.get(p.id);
      const remote = probe?.ok ? probe.status : undefined;
      const link = links.get(p.id);
      const lastRound = this.#rounds.get(p.id);
      return {
        id: p.id, self: false, address: this.#opts.addressOf?.(p.id),
        reachable: probe ? probe.ok : null,
        ...(remote ? { digest: remote.digest, keys: remote.keys } : {}),
        ack: p.ack, peerAck: p.peerAck, heardFrom: p.heardFrom,
        ackLag: remote ? Math.max(0, remote.nextSeq - 1 - p.ack) : null,
        peerAckLag: Math.max(0, status.nextSeq - 1 - p.peerAck),
        ...(replication.has(p.id) ? { bytesBehind: replication.get(p.id)!.bytesBehind, bytesExact: replication.get(p.id)!.bytesExact, lastContactAt: replication.get(p.id)!.lastContactAt } : {}),
        ...(lastRound ? { lastRound } : {}),
        ...(probe ? { probe } : {}),
        rounds: link?.rounds ?? 0,
        failures: link?.failures ?? 0,
        lastOkAt: link?.lastOkAt ?? 0,
        consecutiveFailures: link?.consecutiveFailures ?? 0,
        retryAt: link?.retryAt ?? 0,
      };
    });
    return {
      now: Date.now(),
      node: { ...status, totalBytes: this.#node.totalBytes, storage: await this.#storage() },
      sync: this.#opts.sync ? { ...this.#opts.sync.stats } : null,
      cluster: [self, ...peers],
      changes: withFeed ? this.#changesAfter(after) : { latest: this.#latest, oldest: 0, gap: false, items: [] },
      history: this.#history.since(since),
    };
  }

  #changesAfter(after: number): ConsoleSnapshot["changes"] {
    const oldest = Math.max(1, this.#latest - this.#feedSize + 1);
    const from = Math.max(after + 1, oldest);
    const items: ChangeRecord[] = [];
    for (let n = from; n <= this.#latest; n++) items.push(this.#feed[(n - 1) % this.#feedSize]!);
    // gap: the reader's cursor fell out of the ring, so it missed changes in between.
    return { latest: this.#latest, oldest: this.#latest === 0 ? 0 : oldest, gap: after > 0 && after + 1 < oldest, items };
  }

  async #storage(): Promise<StorageView | null> {
    const stats = this.#node.storageStats();
    if (!stats) return null;
    const dir = this.#opts.dir;
    const snapshotBytes = dir === undefined ? null : await stat(files(dir, this.#node.id).snapshot).then((s) => s.size, () => null);
    const p = this.#opts.fsync ?? "always";
    return { walBytes: stats.walBytes, snapshotBytes, fsync: typeof p === "string" ? p : `every ${p.intervalMs} ms`, fsyncLatency: this.#fsyncView(stats.fsyncLatency) };
  }

  #fsyncView(h: { bounds: readonly number[]; counts: readonly number[]; sum: number; count: number }): FsyncView {
    const now = Date.now();
    const marks = this.#fsyncMarks;
    if (marks.length === 0 || now - marks[marks.length - 1]!.at >= RECENT_MS) marks.push({ at: now, sum: h.sum, count: h.count });
    if (marks.length > 2) marks.shift();
    const base = marks[0]!;
    const recentCount = h.count - base.count;
    const quantile = (q: number): number | null => {
      if (h.count === 0) return null;
      let seen = 0;
      for (let i = 0; i < h.counts.length; i++) {
        seen += h.counts[i]!;
        if (seen >= q * h.count) return h.bounds[i] ?? null;
      }
      return null;
    };
    return {
      count: h.count,
      meanMs: h.count > 0 ? h.sum / h.count : null,
      p50Ms: quantile(0.5),
      p99Ms: quantile(0.99),
      recentMeanMs: recentCount > 0 ? (h.sum - base.sum) / recentCount : null,
      recentCount,
    };
  }

  /** Refreshes stale probes of every peer with a known address; concurrent callers share one pass. */
  #probePeers(): Promise<void> {
    return (this.#probing ??= (async () => {
      const now = Date.now();
      const peers = this.#node.peers();
      for (const id of [...this.#probes.keys()]) if (!peers.includes(id)) this.#probes.delete(id);
      await Promise.all(peers.map(async (id) => {
        const old = this.#probes.get(id);
        if (old && now - old.at < PROBE_MAX_AGE_MS) return;
        const base = this.#opts.addressOf?.(id);
        if (!base) return;
        this.#probes.set(id, await this.#probe(base.replace(/\/+$/, "")));
      }));
    })().finally(() => { this.#probing = null; }));
  }

  async #probe(base: string): Promise<PeerProbe> {
    const started = Date.now();
    try {
      const signal = AbortSignal.any([this.#life.signal, AbortSignal.timeout(this.#probeTimeoutMs)]);
      const res = await (this.#opts.fetch ?? fetch)(`${base}/status`, { signal });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      // Whoever can write the address book chooses this URL: keep only typed fields.
      const s = (await res.json()) as Partial<Record<keyof NodeStatus, unknown>>;
      const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : 0);
      const str = (v: unknown) => (typeof v === "string" ? v.slice(0, 128) : "");
      return { at: Date.now(), ok: true, latencyMs: Date.now() - started, status: { id: num(s.id), uuid: str(s.uuid), keys: num(s.keys), tombstones: num(s.tombstones), nextSeq: num(s.nextSeq), digest: str(s.digest) } };
    } catch (err) {
      const e = err as Error;
      const error = e.name === "TimeoutError" ? `no answer within ${this.#probeTimeoutMs} ms` : e.message;
      return { at: Date.now(), ok: false, latencyMs: Date.now() - started, error };
    }
  }

  /** Stops the change feed and any probe in flight. */
  close(): void {
    this.#life.abort();
    this.#history.close();
  }
}

function json(status: number, value: unknown): ConsoleResponse {
  // no-store: signed answers hold store contents and must not sit in a shared cache.
  return { status, headers: { ...SECURITY_HEADERS, "content-type": "application/json", "cache-control": "no-store" }, body: JSON.stringify(value) };
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** A value's first PREVIEW_BYTES, cut on a UTF-8 character boundary: text if valid, hex otherwise. */
function preview(value: Uint8Array): Pick<ChangeRecord, "preview" | "encoding" | "truncated"> {
  let end = Math.min(value.length, PREVIEW_BYTES);
  // Back off over continuation bytes (10xxxxxx) so a cut character does not read as binary.
  if (end < value.length) while (end > 0 && (value[end]! & 0xc0) === 0x80) end--;
  const head = value.subarray(0, end);
  const truncated = end < value.length;
  try {
    return { preview: strictUtf8.decode(head), encoding: "utf8", truncated };
  } catch {
    const hex = Array.from(value.subarray(0, Math.min(value.length, PREVIEW_BYTES)), (b) => b.toString(16).padStart(2, "0")).join("");
    return { preview: hex, encoding: "hex", truncated: value.length > PREVIEW_BYTES };
  }
}
