/**
 * HTTP transport and server (SPEC sections 3 and 6), on `node:http` and `fetch` so the
 * same code runs on Node and Bun.
 *
 *   const server = await serveHttp(sync, { port: 8001, secret });
 *   const transport = new HttpTransport({ peers: { 2: "http://127.0.0.1:8002" }, secret });
 *
 * Routes: POST /sync and POST /push (envelope bytes in, envelope bytes out);
 * GET/PUT/DELETE /kv/<key>; GET /kv?prefix=&limit=&after=; GET /status (JSON);
 * GET /metrics (Prometheus text); with `console`, the web console (src/console.ts): its
 * page shell at GET / and /console/*, its JSON at /console/api/*. With a secret every
 * route but /status, /metrics and the console's page shell (which holds no data) must be
 * signed (src/auth.ts); refusals change nothing.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { RequestVerifier, signRequest } from "./auth.js";
import { WaveKVError, isWaveKVError } from "./errors.js";
import { compareKeys } from "./keyorder.js";
import type { WebConsole } from "./console.js";
import type { Node } from "./node.js";
import type { SyncHandler } from "./transport.js";
import type { Entry } from "./types.js";

/** Learned peer addresses live in the store under this prefix, so one seed address finds everyone. */
export { PEER_ADDRESS_PREFIX } from "./types.js";

export interface ServeOptions {
  port?: number;
  host?: string;
  secret?: string | Uint8Array;
  /** Largest request body accepted; larger ones get 413 before they are buffered. */
  maxBodyBytes?: number;
  /** The node behind `sync`, for the key-value API, /status and /metrics. */
  node: Node;
  /** The web console to mount at GET / (src/console.ts). */
  console?: Pick<WebConsole, "asset" | "api">;
  /** Extra metrics lines (Prometheus text) appended to /metrics. */
  metrics?: () => string;
  onWarning?: (message: string) => void;
}

export interface HttpServer {
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly code?: string) {
    super(message);
  }
}

const DEFAULT_MAX_BODY = 64 << 20;

async function readBody(req: IncomingMessage, max: number): Promise<Uint8Array> {
  const declared = Number(req.headers["content-length"] ?? NaN);
  if (declared > max) throw new HttpError(413, `body of ${declared} bytes exceeds maxBodyBytes ${max}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw new HttpError(413, `body exceeds maxBodyBytes ${max}`);
    chunks.push(chunk);
  }
  const out = Buffer.concat(chunks, size);
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

function send(res: ServerResponse, status: number, body: string | Uint8Array, type = "application/json"): void {
  if (res.headersSent) return;
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body as string) });
  res.end(body);
}

function reply(res: ServerResponse, r: { status: number; headers: Record<string, string>; body: string | Uint8Array }, head = false): void {
  if (res.headersSent) return;
  res.writeHead(r.status, { ...r.headers, "content-length": Buffer.byteLength(r.body as string) });
  res.end(head ? undefined : r.body);
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  send(res, status, JSON.stringify({ error: code, message }));
}

function entryJson(e: Entry) {
  const value = e.value;
  let text: string | undefined;
  if (value) {
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(value);
    } catch {
      text = undefined;
    }
  }
  return {
    key: e.key,
    value: text,
    valueBase64: value && text === undefined ? Buffer.from(value).toString("base64") : undefined,
    deleted: value === null || undefined,
    timestamp: e.timestamp,
    node: e.node,
    seq: e.seq,
  };
}

export async function serveHttp(sync: SyncHandler, opts: ServeOptions): Promise<HttpServer> {
  const node = opts.node;
  const max = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const verifier = opts.secret !== undefined ? new RequestVerifier(opts.secret) : null;
  const warn = opts.onWarning ?? ((m: string) => console.warn(`wavekv http: ${m}`));
  if (!verifier) warn("no secret configured: anyone who can reach this port can read and write the store");
  const counters = { requests: 0, unauthorized: 0, badEnvelopes: 0, kvPuts: 0, kvDeletes: 0 };

  const handler = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    counters.requests++;
    const url = new URL(req.url ?? "/", "http://localhost");
    const method = req.method ?? "GET";
    const path = url.pathname;
    if (method === "GET" && path === "/status") return send(res, 200, JSON.stringify(node.status()));
    if (method === "GET" && path === "/metrics") return send(res, 200, renderMetrics(node, sync, counters) + (opts.metrics?.() ?? ""), "text/plain; version=0.0.4");
    // The console's page shell is public: it holds no data, and it is what asks for the secret.
    const asset = opts.console ? await opts.console.asset(method, path, req.headers["if-none-match"]) : undefined;
    if (asset) return reply(res, asset, method === "HEAD");
    const body = method === "GET" || method === "HEAD" ? new Uint8Array(0) : await readBody(req, max);
    if (verifier) {
      const verdict = verifier.verify(method, req.url ?? "/", (h) => req.headers[h] as string | undefined, body);
      if (verdict !== "ok") {
        counters.unauthorized++;
        throw new HttpError(401, `unauthorized: ${verdict}`, "UNAUTHORIZED");
      }
    }
    if (method === "POST" && (path === "/sync" || path === "/push")) {
      const out = await sync.handle(body);
      return send(res, 200, out, "application/octet-stream");
    }
    if (opts.console && path.startsWith("/console/api/")) {
      const r = await opts.console.api(method, url);
      if (r) return reply(res, r);
    }
    if (path.startsWith("/kv/")) {
      const key = decodeURIComponent(path.slice(4));
      if (method === "GET") {
        const e = node.get(key);
        return e ? send(res, 200, JSON.stringify(entryJson(e))) : sendError(res, 404, "NOT_FOUND", `no live entry for ${JSON.stringify(key)}`);
      }
      if (method === "PUT") {
        const e = await node.put(key, body);
        counters.kvPuts++;
        return send(res, 200, JSON.stringify(entryJson(e)));
      }
      if (method === "DELETE") {
        const e = await node.delete(key);
        counters.kvDeletes++;
        return e ? send(res, 200, JSON.stringify(entryJson(e))) : sendError(res, 404, "NOT_FOUND", `no live entry for ${JSON.stringify(key)}`);
      }
    }
    if (method === "GET" && path === "/kv") {
      const prefix = url.searchParams.get("prefix") ?? "";
      const after = url.searchParams.get("after");
      const limit = Math.min(Number(url.searchParams.get("limit") ?? 1000) || 1000, 10_000);
      const out = [];
      let more = false;
      for (const e of node.scan(prefix)) {
        if (after !== null && compareKeys(e.key, after) <= 0) continue;
        // One past the page tells whether a next page exists (not merely "page full").
        if (out.length === limit) { more = true; break; }
        out.push(entryJson(e));
      }
      return send(res, 200, JSON.stringify({ entries: out, more }));
    }
    throw new HttpError(404, `no route for ${method} ${path}`, "NOT_FOUND");
  };

  const server = createServer((req, res) => {
    handler(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) {
        sendError(res, err.status, err.code ?? (err.status === 413 ? "TOO_LARGE" : "ERROR"), err.message);
        // Stop reading an oversized body instead of buffering it.
        if (err.status === 413) req.destroy();
        return;
      }
      if (isWaveKVError(err)) {
        if (err.code === "BAD_ENVELOPE") counters.badEnvelopes++;
        const status = err.code === "UUID_MISMATCH" ? 409 : err.code === "BAD_ENVELOPE" || err.code === "INVALID_ARGUMENT" ? 400 : err.code === "IO" || err.code === "CLOSED" ? 503 : 422;
        return sendError(res, status, err.code, err.message);
      }
      warn(`internal error: ${(err as Error)?.stack ?? err}`);
      sendError(res, 500, "INTERNAL", "internal error");
    });
  });
  server.headersTimeout = 15_000;
  server.requestTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}`,
    port: addr.port,
    server,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections?.();
    }),
  };
}

/** What /metrics reads from a SyncManager, when the handler is one. */
interface SyncMetricsSource {
  stats?: { rounds: number; roundFailures: number; handled: number; handleFailures: number; pushesSent: number; bytesSent: number; bytesReceived: number };
  links?(): { peer: number; rounds: number; failures: number; bytesSent: number; bytesReceived: number; consecutiveFailures: number }[];
}

function renderMetrics(node: Node, sync: SyncHandler, counters: Record<string, number>): string {
  const s = node.status();
  const out: string[] = [];
  const metric = (name: string, type: "gauge" | "counter", help: string, samples: [string, number][]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of samples) out.push(`${name}${labels} ${v}`);
  };
  metric("wavekv_keys", "gauge", "Live keys.", [["", s.keys]]);
  metric("wavekv_tombstones", "gauge", "Deleted keys still held.", [["", s.tombstones]]);
  metric("wavekv_bytes", "gauge", "Key and value bytes held, tombstones included.", [["", node.totalBytes]]);
  metric("wavekv_next_seq", "gauge", "The seq of the next local write.", [["", s.nextSeq]]);
  metric("wavekv_entries_merged_total", "counter", "Remote entries merged.", [["", s.entriesMerged]]);
  metric("wavekv_entries_rejected_total", "counter", "Remote entries refused.", [["", s.entriesRejected]]);
  metric("wavekv_kv_puts_total", "counter", "Writes through the HTTP API.", [["", counters.kvPuts!]]);
  metric("wavekv_kv_deletes_total", "counter", "Deletes through the HTTP API.", [["", counters.kvDeletes!]]);
  metric("wavekv_http_requests_total", "counter", "HTTP requests.", [["", counters.requests!]]);
  metric("wavekv_http_unauthorized_total", "counter", "Requests refused for a missing, wrong or replayed signature.", [["", counters.unauthorized!]]);
  metric("wavekv_bad_envelopes_total", "counter", "Sync bodies refused as BAD_ENVELOPE.", [["", counters.badEnvelopes!]]);
  metric("wavekv_peer_ack", "gauge", "How far this node covers the peer's writes.", s.peers.map((p) => [`{peer="${p.id}"}`, p.ack]));
  metric("wavekv_peer_reported_ack", "gauge", "How far the peer reported covering this node's writes.", s.peers.map((p) => [`{peer="${p.id}"}`, p.peerAck]));
  metric("wavekv_peer_heard_from", "gauge", "1 once the peer has been heard from.", s.peers.map((p) => [`{peer="${p.id}"}`, p.heardFrom ? 1 : 0]));
  const src = sync as SyncHandler & SyncMetricsSource;
  if (src.stats) {
    metric("wavekv_sync_requests_handled_total", "counter", "Sync requests and pushes served.", [["", src.stats.handled]]);
    metric("wavekv_sync_pushes_sent_total", "counter", "Opportunistic pushes sent.", [["", src.stats.pushesSent]]);
  }
  if (typeof src.links === "function") {
    const links = src.links();
    metric("wavekv_sync_rounds_total", "counter", "Sync rounds started with the peer.", links.map((l) => [`{peer="${l.peer}"}`, l.rounds]));
    metric("wavekv_sync_errors_total", "counter", "Sync rounds with the peer that failed.", links.map((l) => [`{peer="${l.peer}"}`, l.failures]));
    metric("wavekv_sync_sent_bytes_total", "counter", "Bytes sent to the peer in rounds.", links.map((l) => [`{peer="${l.peer}"}`, l.bytesSent]));
    metric("wavekv_sync_received_bytes_total", "counter", "Bytes received from the peer in rounds.", links.map((l) => [`{peer="${l.peer}"}`, l.bytesReceived]));
    metric("wavekv_sync_consecutive_failures", "gauge", "Failed rounds in a row (0: reachable).", links.map((l) => [`{peer="${l.peer}"}`, l.consecutiveFailures]));
  }
  const st = node.storageStats();
  if (st) {
    metric("wavekv_wal_bytes", "gauge", "Size of the write-ahead log.", [["", st.walBytes]]);
    const h = st.fsyncLatency;
    out.push("# HELP wavekv_fsync_seconds Latency of WAL fsyncs (group commit).", "# TYPE wavekv_fsync_seconds histogram");
    let cumulative = 0;
    h.bounds.forEach((b, i) => { cumulative += h.counts[i]!; out.push(`wavekv_fsync_seconds_bucket{le="${b / 1000}"} ${cumulative}`); });
    out.push(`wavekv_fsync_seconds_bucket{le="+Inf"} ${h.count}`, `wavekv_fsync_seconds_sum ${h.sum / 1000}`, `wavekv_fsync_seconds_count ${h.count}`);
  }
  return out.join("\n") + "\n";
}

export interface HttpTransportOptions {
  /** Peer id → base URL. */
  peers?: Record<number, string>;
  secret?: string | Uint8Array;
  timeoutMs?: number;
  /** Resolves addresses of peers not in `peers` (e.g. from the replicated address book). */
  resolve?: (peer: number) => string | undefined;
}

/** A `Transport` over HTTP POST /sync. A slow or dead peer never holds the caller past `timeoutMs`. */
export class HttpTransport {
  readonly #peers = new Map<number, string>();
  readonly #secret: string | Uint8Array | undefined;
  readonly #timeoutMs: number;
  readonly #resolve: ((peer: number) => string | undefined) | undefined;

  constructor(opts: HttpTransportOptions = {}) {
    for (const [id, url] of Object.entries(opts.peers ?? {})) this.#peers.set(Number(id), url.replace(/\/+$/, ""));
    this.#secret = opts.secret;
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
    this.#resolve = opts.resolve;
  }

  setPeer(peer: number, url: string): void {
    this.#peers.set(peer, url.replace(/\/+$/, ""));
  }

  addressOf(peer: number): string | undefined {
    return this.#peers.get(peer) ?? this.#resolve?.(peer)?.replace(/\/+$/, "");
  }

  async request(peer: number, body: Uint8Array, opts: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    return this.#post(peer, "/sync", body, opts.signal);
  }

  async push(peer: number, body: Uint8Array, opts: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    return this.#post(peer, "/push", body, opts.signal);
  }

  async #post(peer: number, path: string, body: Uint8Array, signal: AbortSignal | undefined): Promise<Uint8Array> {
    const base = this.addressOf(peer);
    if (!base) throw new WaveKVError("INVALID_ARGUMENT", `no address known for peer ${peer}; pass --peer ${peer}=http://host:port`);
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    const headers: Record<string, string> = { "content-type": "application/octet-stream" };
    if (this.#secret !== undefined) Object.assign(headers, signRequest(this.#secret, "POST", path, body));
    const res = await fetch(base + path, { method: "POST", body: body as Uint8Array<ArrayBuffer>, headers, signal: combined });
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (!res.ok) {
      let code = "IO", message = `peer ${peer} answered ${res.status}`;
      try {
        const j = JSON.parse(new TextDecoder().decode(bytes)) as { error?: string; message?: string };
        if (j.error) code = j.error;
        if (j.message) message = `peer ${peer}: ${j.message}`;
      } catch { /* not JSON */ }
      throw new WaveKVError(code === "UUID_MISMATCH" || code === "BAD_ENVELOPE" ? code : "IO", message);
    }
    return bytes;
  }
}
