/**
 * HTTP transport and server (SPEC sections 3 and 6), on `node:http` and `fetch` so the
 * same code runs on Node and Bun.
 *
 *   const server = await serveHttp(sync, { port: 8001, secret });
 *   const transport = new HttpTransport({ peers: { 2: "http://127.0.0.1:8002" }, secret });
 *
 * Routes: POST /sync and POST /push (envelope bytes in, envelope bytes out);
 * GET/PUT/DELETE /kv/<key> (key = raw path, decoded once, never normalised; PUT takes
 * `?ttlMs=N`: an expiring write, and entries show `expiresAt`) and
 * /kv?key=<key>; GET of a key answers JSON (`value`, or `valueBase64` when the bytes are
 * not UTF-8; 404 when absent), or with `raw=1` / `Accept: application/octet-stream` the
 * value's bytes, its stamp in x-wavekv-timestamp/-node/-seq response headers (`curl -o`
 * saves a binary value); POST /kv/_batch: an atomic batch, a JSON array of operations
 * (src/transport/http-batch.ts); GET /kv?prefix=&limit=&after=&internal= (internal=0 leaves
 * `__wavekv/` keys out, as the console does by default); GET /peers, DELETE /peers/<id>;
 * GET /subscribe?from=<id>: the live push stream (src/transport/push-stream.ts, a response that
 * does not end); GET /status (JSON); GET /metrics (Prometheus text); with `console`, the web console
 * (src/app/console.ts): its page shell at GET / and /console/*, its JSON at /console/api/*.
 * With a secret every route but /status, /metrics and the console's page shell (which
 * holds no data) must be signed (src/transport/auth.ts), and the signature is checked from the
 * headers before any body byte is read. Bodies in flight share one byte budget. Writes
 * under `__wavekv/` are refused (403). Refusals change nothing.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createHash } from "node:crypto";
import { RequestVerifier } from "./auth.js";
import { batchForbidden, forbidden, noVerifier, routeOf, scopeJson, type ClientCredential, type ServeAccessOptions } from "./credentials.js";
import { createNodeServer, withCa, type TlsClientOptions } from "./tls.js";
import { ttlOfQuery } from "./kv-ttl.js";
import { FetchTransport, type FetchTransportOptions } from "./fetch.js";
import { PushStreams, type PushStreamOptions, type PushStreamStats } from "./push-stream.js";
import { isWaveKVError, type WaveKVError } from "../core/errors.js";
import { compareKeys } from "../core/keyorder.js";
import type { WebConsole } from "../app/console.js";
import type { Node } from "../node/node.js";
import type { SyncHandler } from "./transport.js";
import { RESERVED_PREFIX, type Entry } from "../core/types.js";
import { isReservedKey } from "../core/reserved.js";
import { warningLog } from "../core/warnings.js";
import { replicatedReply, replicationWait } from "./replication-http.js";
import { renderMetrics, type BodyGauge } from "./http-metrics.js";
import { batchOperations } from "./http-batch.js";

/** Learned peer addresses live in the store under this prefix, so one seed address finds everyone. */
export { PEER_ADDRESS_PREFIX } from "../core/types.js";

export interface ServeOptions extends ServeAccessOptions {
  /**
   * Port to listen on; `HttpServer.port` says which one was taken.
   * @defaultValue `0` (the system picks a free port)
   */
  port?: number;
  /**
   * Address to bind.
   * @defaultValue `"127.0.0.1"` (this machine only)
   */
  host?: string;
  /**
   * The cluster's shared secret: every route but /status, /metrics and the console's page shell must be signed.
   * @defaultValue none: nothing is checked, and the server warns once that anyone who reaches the port can write
   */
  secret?: string | Uint8Array;
  /**
   * Largest request body accepted; larger ones get 413 before they are buffered.
   * @defaultValue `64 << 20` (64 MiB)
   */
  maxBodyBytes?: number;
  /**
   * Bytes all in-flight requests may buffer together; over it: 503 + Retry-After, before buffering.
   * @defaultValue `256 << 20` (256 MiB), and never less than `maxBodyBytes`
   */
  maxBufferedBytes?: number;
  /** The node behind `sync`, for the key-value API, /status and /metrics. */
  node: Node;
  /**
   * The web console to mount at GET / (src/app/console.ts).
   * @defaultValue none: no console routes
   */
  console?: Pick<WebConsole, "asset" | "api"> & Partial<Pick<WebConsole, "follow">>;
  /**
   * Extra metrics lines (Prometheus text) appended to /metrics.
   * @defaultValue none
   */
  metrics?: () => string;
  /**
   * Where the transport reaches a peer (the `address` of GET /peers).
   * @defaultValue none: every address is `null`
   */
  addressOf?: (peer: number) => string | undefined;
  /** Warnings (each reason once, then at 10, 100, … repeats); default: `console.warn`. */
  onWarning?: (message: string) => void;
  /**
   * Bounds of the live push streams (GET /subscribe, the console's feed).
   * @defaultValue 64 subscribers, 1 MiB queued each, a heartbeat every 5 s
   */
  streams?: Omit<PushStreamOptions, "secret">;
}

export interface HttpServer {
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  /** The live push streams this server serves: how many are open, and their counters. */
  readonly streams: { readonly size: number; readonly stats: PushStreamStats };
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly code?: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

const DEFAULT_MAX_BODY = 64 << 20;
const DEFAULT_MAX_BUFFERED = 256 << 20;
const MAX_PAGE = 10_000;
/** prefix/after longer than any key can be (4 UTF-8 bytes per UTF-16 unit at most) are refused. */
const MAX_QUERY_KEY_CHARS = 4 * 1024;

/** In-flight body bytes, all requests together (ISSUE 15 item 9: 40 unsigned 63 MiB bodies = 2.6 GB). */

async function readBody(req: IncomingMessage, max: number, budget: number, gauge: BodyGauge, digest: string | undefined): Promise<Uint8Array> {
  const declared = Number(req.headers["content-length"] ?? NaN);
  if (declared > max) throw new HttpError(413, `body of ${declared} bytes exceeds maxBodyBytes ${max}`, "TOO_LARGE");
  const busy = () => {
    gauge.busy++;
    return new HttpError(503, `the node is buffering ${gauge.buffered} bytes of other requests (maxBufferedBytes ${budget}); retry shortly`, "BUSY", { "retry-after": "1" });
  };
  // Reserve the declared length before reading a byte; chunked bodies reserve as they come.
  let reserved = Number.isFinite(declared) && declared > 0 ? declared : 0;
  if (gauge.buffered + reserved > budget) throw busy();
  gauge.buffered += reserved;
  const chunks: Buffer[] = [];
  let size = 0;
  const hash = digest === undefined ? null : createHash("sha256");
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      gauge.read += chunk.length;
      if (size > max) throw new HttpError(413, `body exceeds maxBodyBytes ${max}`, "TOO_LARGE");
      if (size > reserved) {
        if (gauge.buffered + (size - reserved) > budget) throw busy();
        gauge.buffered += size - reserved;
        reserved = size;
      }
      hash?.update(chunk);
      chunks.push(chunk);
    }
  } finally {
    gauge.buffered -= reserved;
  }
  if (hash && hash.digest("hex") !== digest) throw new HttpError(401, "unauthorized: body does not match its signed digest", "UNAUTHORIZED");
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

function sendError(res: ServerResponse, status: number, code: string, message: string, extra: Record<string, unknown> = {}): void {
  send(res, status, JSON.stringify({ error: code, code, message, ...extra }));
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
    expiresAt: e.expiresAt,
  };
}

/**
 * Whether a GET of one key wants the value's bytes rather than JSON: `raw=1`/`true`
 * (`0`/`false` ask for JSON) decides; without it, an Accept that names
 * application/octet-stream at least as high as application/json. Wildcard ranges
 * (what a browser sends) leave JSON, the documented default.
 */
function wantsRaw(query: URLSearchParams, accept: string | undefined): boolean {
  const raw = query.get("raw");
  if (raw === "1" || raw === "true") return true;
  if (raw === "0" || raw === "false") return false;
  if (raw !== null) throw new HttpError(400, `raw must be 1 or 0, got ${JSON.stringify(raw.slice(0, 40))}`, "INVALID_ARGUMENT");
  const q = { "application/octet-stream": 0, "application/json": 0 } as Record<string, number>;
  for (const range of (accept ?? "").split(",")) {
    const [type = "", ...params] = range.split(";").map((x) => x.trim().toLowerCase());
    if (!(type in q)) continue;
    const weight = params.find((x) => x.startsWith("q="));
    q[type] = weight === undefined ? 1 : Number(weight.slice(2)) || 0;
  }
  return q["application/octet-stream"]! > 0 && q["application/octet-stream"]! >= q["application/json"]!;
}

/**
 * A live entry as its bytes (so `curl -o file` saves a binary value as it is), its stamp
 * in headers. nosniff: a value is whatever a writer sent, never a page for a browser to run.
 */
function sendRaw(res: ServerResponse, e: Entry): void {
  const value = e.value!;
  res.writeHead(200, {
    "content-type": "application/octet-stream",
    "content-length": value.length,
    "x-content-type-options": "nosniff",
    "x-wavekv-timestamp": String(e.timestamp),
    "x-wavekv-node": String(e.node),
    "x-wavekv-seq": String(e.seq),
    ...(e.expiresAt !== undefined ? { "x-wavekv-expires-at": String(e.expiresAt) } : {}),
  });
  res.end(value);
}

/**
 * The key of a /kv request, verbatim from the raw request target (no URL normalisation:
 * "/kv/." is the key ".", "/kv/a/../b" the key "a/../b"). `/kv?key=` carries keys no
 * WHATWG-URL client can put in a path ("." and ".."). Bad escapes and "" are refused.
 */
function keyOf(path: string, query: URLSearchParams): string | undefined {
  let key: string | null;
  if (path === "/kv") key = query.get("key");
  else if (path.startsWith("/kv/")) {
    try {
      key = decodeURIComponent(path.slice(4));
    } catch {
      throw new HttpError(400, `the key in ${JSON.stringify(path)} has a bad percent-escape; encode keys with encodeURIComponent`, "INVALID_ARGUMENT");
    }
  } else return undefined;
  if (key === null) return undefined;
  if (key === "") throw new HttpError(400, "the empty key is not a key; put something after /kv/", "INVALID_ARGUMENT");
  return key;
}

function pageQuery(query: URLSearchParams): { prefix: string; after: string | null; limit: number; internal: boolean } {
  const prefix = query.get("prefix") ?? "";
  const internal = query.get("internal") ?? "1";
  if (internal !== "0" && internal !== "1") throw new HttpError(400, `internal must be 1 (list ${RESERVED_PREFIX} keys too, the default) or 0 (leave them out), got ${JSON.stringify(internal.slice(0, 40))}`, "INVALID_ARGUMENT");
  const after = query.get("after");
  const limitText = query.get("limit") ?? "1000";
  if (!/^[1-9][0-9]{0,4}$/.test(limitText) || Number(limitText) > MAX_PAGE) throw new HttpError(400, `limit must be an integer from 1 to ${MAX_PAGE}, got ${JSON.stringify(limitText.slice(0, 40))}`, "INVALID_ARGUMENT");
  for (const [name, v] of [["prefix", prefix], ["after", after ?? ""]] as const) {
    if (v.length > MAX_QUERY_KEY_CHARS) throw new HttpError(400, `${name} is ${v.length} characters; no key is longer than ${MAX_QUERY_KEY_CHARS}`, "INVALID_ARGUMENT");
  }
  return { prefix, after, limit: Number(limitText), internal: internal === "1" };
}

/** How a WaveKVError reads over HTTP: status and extra JSON fields. */
function errorStatus(err: WaveKVError): number {
  switch (err.code as string) {
    case "UUID_MISMATCH": case "SUPERSEDED": return 409;
    case "BAD_ENVELOPE": case "INVALID_ARGUMENT": return 400;
    case "IO": case "CLOSED": case "CLOCK_SKEW": return 503;
    default: return 422;
  }
}

export async function serveHttp(sync: SyncHandler, opts: ServeOptions): Promise<HttpServer> {
  const node = opts.node;
  const max = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const budget = Math.max(opts.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED, max);
  const verifier = opts.secret !== undefined ? new RequestVerifier(opts.secret, { node: node.id, credentials: opts.credentials }) : noVerifier(opts.credentials);
  const warn = warningLog(opts.onWarning ?? ((m: string) => console.warn(`wavekv http: ${m}`)));
  if (!verifier) warn("no secret configured: anyone who can reach this port can read and write the store");
  const counters = { requests: 0, unauthorized: 0, forbidden: 0, badEnvelopes: 0, kvPuts: 0, kvDeletes: 0 };
  const gauge: BodyGauge = { buffered: 0, read: 0, busy: 0 };
  const streams = new PushStreams(node, { ...opts.streams, secret: opts.secret });

  const handler = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    counters.requests++;
    // The raw request target, never normalised: keys are taken verbatim from it.
    const target = req.url ?? "/";
    const q = target.indexOf("?");
    const path = q < 0 ? target : target.slice(0, q);
    const query = new URLSearchParams(q < 0 ? "" : target.slice(q + 1));
    const method = req.method ?? "GET";
    if (method === "GET" && path === "/status") return send(res, 200, JSON.stringify(node.status()));
    if (method === "GET" && path === "/metrics") return send(res, 200, renderMetrics(node, sync, counters, gauge, streams) + (opts.metrics?.() ?? ""), "text/plain; version=0.0.4");
    // The console's page shell is public: it holds no data, and it is what asks for the secret.
    const asset = opts.console ? await opts.console.asset(method, path, req.headers["if-none-match"]) : undefined;
    if (asset) return reply(res, asset, method === "HEAD");
    const refuse = (denied: string | undefined): void => {
      if (denied) { counters.forbidden++; warn(`refused ${method} ${routeOf(path)}: ${denied}`); throw new HttpError(403, `forbidden: ${denied}`, "FORBIDDEN"); }
    };
    // Signature first, from the headers alone: an unsigned body is refused unread.
    let digest: string | undefined, who: ClientCredential | undefined;
    if (verifier) {
      const v = verifier.verifyHeaders(method, target, (h) => req.headers[h] as string | undefined);
      if (!v.ok) {
        counters.unauthorized++;
        warn(`refused requests from ${req.socket.remoteAddress ?? "?"}: ${v.reason}`);
        throw new HttpError(401, `unauthorized: ${v.reason}`, "UNAUTHORIZED");
      }
      digest = v.contentSha256;
      refuse((who = v.credential) && forbidden(who, method, path, query)); // credentials.ts: what a client credential may do
    }
    if (method === "GET" && path === "/whoami") return send(res, 200, JSON.stringify(scopeJson(who)));
    const body = method === "GET" || method === "HEAD" ? new Uint8Array(0) : await readBody(req, max, budget, gauge, digest).catch((e: unknown) => {
      if (e instanceof HttpError && e.status === 401) counters.unauthorized++;
      throw e;
    });
    if (method === "GET" && (path === "/subscribe" || (path === "/console/api/feed" && opts.console?.follow))) {
      // A stream: ?from=<node id> (push, its own writes left out) or ?after=<n> (the console's feed).
      const feed = path !== "/subscribe";
      const name = feed ? "after" : "from";
      const param = query.get(name);
      if (param !== null && !/^(0|[1-9][0-9]{0,14})$/.test(param)) throw new HttpError(400, `${name} must be a decimal integer, got ${JSON.stringify(param.slice(0, 40))}`, "INVALID_ARGUMENT");
      const sub = streams.open(res, (req.headers["x-wavekv-nonce"] as string | undefined) ?? "", feed || param === null ? null : Number(param), feed ? "feed" : "push");
      if (!sub) throw new HttpError(503, `this node serves ${streams.size} live streams, its maximum; retry later (periodic sync rounds are not affected)`, "BUSY", { "retry-after": "5" });
      if (feed) opts.console!.follow!(sub, Number(param ?? 0));
      return;
    }
    if (method === "POST" && (path === "/sync" || path === "/push")) {
      const out = await sync.handle(body);
      return send(res, 200, out, "application/octet-stream");
    }
    if (opts.console && path.startsWith("/console/api/")) {
      const r = await opts.console.api(method, new URL(target, "http://localhost"));
      if (r) return reply(res, r);
    }
    if (method === "GET" && path === "/replication") return send(res, 200, JSON.stringify(node.replication()));
    if (path === "/peers" || path.startsWith("/peers/")) return peersRoute(res, method, path);
    // Before keyOf: POST is no method of a key, so "_batch" stays an ordinary key for GET/PUT/DELETE.
    if (method === "POST" && path === "/kv/_batch") {
      const ops = batchOperations(body);
      if (who) refuse(batchForbidden(who, ops.map((o) => o.key)));
      return send(res, 200, JSON.stringify({ entries: (await node.batch(ops)).map(entryJson) }));
    }
    const key = keyOf(path, query);
    if (key !== undefined) {
      if (method === "GET") {
        const raw = wantsRaw(query, req.headers.accept);
        const e = node.get(key);
        if (!e) return sendError(res, 404, "NOT_FOUND", `no live entry for ${JSON.stringify(key)}`);
        return raw ? sendRaw(res, e) : send(res, 200, JSON.stringify(entryJson(e)));
      }
      if ((method === "PUT" || method === "DELETE") && isReservedKey(key)) {
        throw new HttpError(403, `keys under ${RESERVED_PREFIX} are this node's own bookkeeping and cannot be written through the API`, "RESERVED_KEY");
      }
      if (method === "PUT") {
        const wait = replicationWait(query, node); // ?wait=all|N&timeoutMs=: checked before the write (src/transport/replication-http.ts)
        const e = await node.put(key, body, ttlOfQuery(query));
        counters.kvPuts++;
        if (wait) return send(res, ...(await replicatedReply(node, e, wait, res, JSON.stringify(entryJson(e)))));
        return send(res, 200, JSON.stringify(entryJson(e)));
      }
      if (method === "DELETE") {
        const wait = replicationWait(query, node); // as PUT's: checked before the delete
        const e = await node.delete(key);
        counters.kvDeletes++;
        if (!e) return sendError(res, 404, "NOT_FOUND", `no live entry for ${JSON.stringify(key)}`);
        if (wait) return send(res, ...(await replicatedReply(node, e, wait, res, JSON.stringify(entryJson(e)))));
        return send(res, 200, JSON.stringify(entryJson(e)));
      }
    }
    if (method === "GET" && path === "/kv") {
      if (query.has("raw")) throw new HttpError(400, "raw=1 reads one key's bytes: GET /kv/<key>?raw=1 or /kv?key=<key>&raw=1; a listing is JSON only", "INVALID_ARGUMENT");
      const { prefix, after, limit, internal } = pageQuery(query);
      const out = [];
      let more = false;
      for (const e of node.scan(prefix)) {
        if (after !== null && compareKeys(e.key, after) <= 0) continue;
        // The node's own bookkeeping (a few address-book entries), skipped one by one.
        if (!internal && isReservedKey(e.key)) continue;
        // One past the page tells whether a next page exists (not merely "page full").
        if (out.length === limit) { more = true; break; }
        out.push(entryJson(e));
      }
      return send(res, 200, JSON.stringify({ entries: out, more }));
    }
    throw new HttpError(404, `no route for ${method} ${path}`, "NOT_FOUND");
  };

  /** GET /peers: membership and what is known of each; DELETE /peers/<id>: forget one. */
  const peersRoute = async (res: ServerResponse, method: string, path: string): Promise<void> => {
    if (method === "GET" && path === "/peers") {
      const status = new Map(node.status().peers.map((p) => [p.id, p]));
      const peers = node.peers().map((id) => ({ ...status.get(id), id, address: opts.addressOf?.(id) ?? null }));
      return send(res, 200, JSON.stringify({ peers }));
    }
    const id = /^\/peers\/(0|[1-9][0-9]{0,9})$/.exec(path)?.[1];
    if (method === "DELETE" && id !== undefined) {
      const peer = Number(id);
      if (!node.peers().includes(peer)) return sendError(res, 404, "NOT_FOUND", `${peer} is not a peer of node ${node.id}`);
      await node.removePeer(peer);
      return send(res, 200, JSON.stringify({ removed: peer }));
    }
    throw new HttpError(404, `no route for ${method} ${path} (GET /peers, DELETE /peers/<id>)`, "NOT_FOUND");
  };

  const server = createNodeServer(opts.tls, (req, res) => {
    handler(req, res).catch((err: unknown) => {
      // A body left unread is not read now: answer, then close the connection.
      if (!req.complete) {
        res.setHeader("connection", "close");
        res.once("finish", () => req.socket?.destroy());
      }
      if (err instanceof HttpError) {
        for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
        return sendError(res, err.status, err.code ?? "ERROR", err.message);
      }
      if (isWaveKVError(err)) {
        if (err.code === "BAD_ENVELOPE") counters.badEnvelopes++;
        const winner = (err as { winner?: Entry }).winner;
        return sendError(res, errorStatus(err), err.code, err.message, winner ? { winner: entryJson(winner) } : {});
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
    url: `${opts.tls ? "https" : "http"}://${host}:${addr.port}`,
    port: addr.port,
    server,
    streams,
    close: () => new Promise<void>((resolve) => {
      streams.close();
      server.close(() => resolve());
      server.closeAllConnections?.();
    }),
  };
}

/** `FetchTransportOptions` under the HTTP name; `timeoutMs` defaults to `10_000` (10 s) per request, both legs. */
export type HttpTransportOptions = FetchTransportOptions & TlsClientOptions;

/**
 * A `Transport` over HTTP POST /sync and /push: FetchTransport (same signing, same
 * candidate-address rule), under the name the server side has always used.
 */
export class HttpTransport extends FetchTransport { constructor(opts: HttpTransportOptions = {}) { super(withCa(opts)); } }
