/**
 * A `Transport` over `fetch` with no `node:` import: browsers, edge workers, Deno, Bun
 * and Node. Speaks the HTTP server's protocol (src/transport/http.ts): POST /sync and POST /push,
 * envelope bytes both ways, and — with a shared secret — the same HMAC-SHA256 request
 * signature as src/transport/auth.ts, computed with WebCrypto.
 *
 *   const transport = new FetchTransport({ peers: { 1: "https://kv.example.com" }, secret });
 *   const sync = new SyncManager(node, transport);
 *   await sync.syncOnce();
 *
 * Signed string: src/transport/auth-scheme.ts (scheme wavekv-hmac-v2: method, route, timestamp,
 * nonce, target node id, body SHA-256), keyed with the secret's UTF-8 bytes.
 * `path` is the route ("/sync"), not the base URL's path: a page may reach the node
 * through a same-origin reverse proxy that mounts it under a prefix (base "/wavekv")
 * and strips the prefix on the way, and the signature still verifies.
 *
 * WebCrypto's `crypto.subtle` exists only in secure contexts (https, localhost); in an
 * insecure page the signature falls back to the pure-TS HMAC of src/core/sha256.ts. Either
 * way a secret shipped to a browser is readable by whoever runs that browser: give a
 * browser a secret only where its user may write to the store anyway.
 *
 * Addresses: one a peer answered at (or was configured with) is kept; an address learned
 * later (the replicated address book, `learn`) is only a candidate, tried when the kept one
 * fails and adopted once it answers, so a bogus learned address cannot cut a working link.
 */
import { authHeaders, signedString } from "./auth-scheme.js";
import { WaveKVError } from "../core/errors.js";
import { hmacSha256, sha256, toHex } from "../core/sha256.js";
import { deadline } from "../core/abort.js";
import type { Transport, TransportRequestOptions, TransportSubscribeOptions } from "./transport.js";

export interface FetchTransportOptions {
  /**
   * Peer id → base URL; relative URLs ("/wavekv") resolve against the page, as fetch does.
   * @defaultValue `{}`
   */
  peers?: Record<number, string>;
  /**
   * The cluster's shared secret: every request is HMAC-signed (docs/PROTOCOL.md "HTTP authentication").
   * @defaultValue none: requests go unsigned
   */
  secret?: string | Uint8Array;
  /** A request (both legs) is aborted after this long; default 10 s. */
  timeoutMs?: number;
  /**
   * Addresses of peers not in `peers`.
   * @defaultValue none
   */
  resolve?: (peer: number) => string | undefined;
  /**
   * Replaces the global fetch (a worker binding, a test double at the process boundary;
   * `fetchWithCa(ca)` from the main entry trusts a private CA on Node, Bun and Deno, and
   * `HttpTransport` takes `ca` directly).
   * @defaultValue the global `fetch`
   */
  fetch?: typeof fetch;
}

const utf8 = new TextEncoder();

function subtleCrypto(): SubtleCrypto | undefined {
  return (globalThis.crypto as Crypto | undefined)?.subtle;
}

function randomHex(bytes: number): string {
  const c = globalThis.crypto as Crypto | undefined;
  if (!c?.getRandomValues) throw new WaveKVError("INVALID_ARGUMENT", "signing needs crypto.getRandomValues, which this runtime lacks");
  return toHex(c.getRandomValues(new Uint8Array(bytes)));
}

/**
 * HMAC signer for one secret. The WebCrypto key is imported once per secret (importKey
 * costs more than a signature); WebCrypto is async, which a transport can afford.
 */
export class RequestSigner {
  readonly #secret: Uint8Array;
  #key: Promise<CryptoKey> | null = null;

  /**
   * @param secret - the cluster secret, or a client credential's secret
   * @param credential - the credential's name (sent as x-wavekv-key); omit for the cluster secret
   */
  constructor(secret: string | Uint8Array, readonly credential?: string) {
    this.#secret = typeof secret === "string" ? utf8.encode(secret) : secret.slice();
  }

  /** The auth headers for one request to node `node`; `now` is the signer's clock (ms). */
  async sign(method: string, path: string, body: Uint8Array, node: number, now = Date.now()): Promise<Record<string, string>> {
    const timestamp = String(Math.floor(now));
    const nonce = randomHex(12);
    const subtle = subtleCrypto();
    const digest = subtle
      ? toHex(new Uint8Array(await subtle.digest("SHA-256", body as Uint8Array<ArrayBuffer>)))
      : toHex(sha256(body));
    return authHeaders(timestamp, nonce, node, digest, await this.#mac(signedString(method, path, timestamp, nonce, node, digest)), this.credential);
  }

  async #mac(text: string): Promise<string> {
    return toHex(await this.mac(utf8.encode(text)));
  }

  /** HMAC-SHA256 of `message` with the secret (a push stream's frame MAC). */
  async mac(message: Uint8Array): Promise<Uint8Array> {
    const subtle = subtleCrypto();
    if (!subtle) return hmacSha256(this.#secret, message);
    this.#key ??= subtle.importKey("raw", this.#secret as Uint8Array<ArrayBuffer>, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    return new Uint8Array(await subtle.sign("HMAC", await this.#key, message as Uint8Array<ArrayBuffer>));
  }
}

/**
 * Peer addresses: the one kept (configured, or last answered at) and at most one learned
 * candidate. Invariant: a candidate replaces the kept address only after it answered.
 */
export class PeerAddresses {
  readonly #kept = new Map<number, string>();
  readonly #candidate = new Map<number, string>();
  /** Peers whose kept address failed last time: their candidate is tried first. */
  readonly #keptFailed = new Set<number>();

  constructor(private readonly resolve?: (peer: number) => string | undefined) {}

  /** An address the operator gave: kept at once. */
  set(peer: number, url: string): void {
    this.#kept.set(peer, trim(url));
    this.#candidate.delete(peer);
    this.#keptFailed.delete(peer);
  }

  /** An address heard from elsewhere: a candidate until it answers. */
  learn(peer: number, url: string): void {
    const u = trim(url);
    if (this.#kept.get(peer) === u) this.#candidate.delete(peer);
    else this.#candidate.set(peer, u);
  }

  /** The address requests go to first. */
  addressOf(peer: number): string | undefined {
    return this.attempts(peer)[0];
  }

  /** Addresses to try, in order, for one request. */
  attempts(peer: number): string[] {
    const kept = this.#kept.get(peer);
    const resolved = this.resolve?.(peer);
    const candidate = this.#candidate.get(peer) ?? (resolved === undefined ? undefined : trim(resolved));
    if (kept === undefined) return candidate === undefined ? [] : [candidate];
    if (candidate === undefined || candidate === kept) return [kept];
    return this.#keptFailed.has(peer) ? [candidate, kept] : [kept, candidate];
  }

  answered(peer: number, url: string): void {
    if (this.#kept.get(peer) !== url) this.set(peer, url);
    else this.#keptFailed.delete(peer);
    if (this.#candidate.get(peer) === url) this.#candidate.delete(peer);
  }

  failed(peer: number, url: string): void {
    if (this.#kept.get(peer) === url) this.#keptFailed.add(peer);
  }
}

/**
 * The request path for one key of the HTTP API (src/transport/http.ts takes keys verbatim from the raw
 * path). "." and ".." cannot travel as a path segment — every WHATWG URL parser (fetch,
 * browsers) folds them, "%2e" included — so they go as `/kv?key=`.
 */
export function kvPath(key: string): string {
  return key === "." || key === ".." ? `/kv?key=${encodeURIComponent(key)}` : `/kv/${encodeURIComponent(key)}`;
}

const trim = (url: string) => url.replace(/\/+$/, "");

export class FetchTransport implements Transport {
  readonly #book: PeerAddresses;
  readonly #signer: RequestSigner | null;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;

  constructor(opts: FetchTransportOptions = {}) {
    this.#book = new PeerAddresses(opts.resolve);
    for (const [id, url] of Object.entries(opts.peers ?? {})) this.setPeer(Number(id), url);
    this.#signer = opts.secret !== undefined ? new RequestSigner(opts.secret) : null;
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
    // Bound to globalThis: browsers throw "Illegal invocation" on a detached fetch.
    this.#fetch = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
  }

  /** An address to use now (configured). */
  setPeer(peer: number, url: string): void {
    this.#book.set(peer, url);
  }

  /** An address learned second-hand: tried when the current one fails, adopted once it answers. */
  learnPeer(peer: number, url: string): void {
    this.#book.learn(peer, url);
  }

  addressOf(peer: number): string | undefined {
    return this.#book.addressOf(peer);
  }

  request(peer: number, body: Uint8Array, opts?: TransportRequestOptions): Promise<Uint8Array> {
    return this.#post(peer, "/sync", body, opts?.signal);
  }

  push(peer: number, body: Uint8Array, opts?: TransportRequestOptions): Promise<Uint8Array> {
    return this.#post(peer, "/push", body, opts?.signal);
  }

  /**
   * The peer's live push stream (GET /subscribe, docs/PROTOCOL.md "Live push stream"):
   * resolves when the peer ends it, rejects when it cannot be opened or a frame fails.
   * No deadline but `opts.signal` and the stream's heartbeat watchdog.
   */
  async subscribe(peer: number, opts: TransportSubscribeOptions): Promise<void> {
    const base = this.#book.addressOf(peer);
    if (base === undefined) throw new WaveKVError("INVALID_ARGUMENT", `no address known for peer ${peer}`);
    // The stream reader is loaded with the first subscription (a chunk of its own in the browser bundle).
    const { FRAME, readPushStream } = await import("./push-frames.js");
    const path = `/subscribe?from=${opts.from}`;
    const headers = this.#signer ? await this.#signer.sign("GET", path, new Uint8Array(0), peer) : {};
    const res = await this.#fetch(base + path, { headers, signal: opts.signal, cache: "no-store" });
    if (!res.ok || !res.body) throw refusal(peer, res.status, new Uint8Array(await res.arrayBuffer()));
    const signer = this.#signer;
    await readPushStream(res.body, {
      server: peer,
      nonce: headers["x-wavekv-nonce"] ?? "",
      ...(signer ? { mac: (input: Uint8Array) => signer.mac(input) } : {}),
      onFrame: (type, payload) => {
        if (type === FRAME.hello) return opts.onOpen();
        if (type === FRAME.gap) return opts.onGap();
        if (type === FRAME.envelope) return opts.onPush(payload);
      },
    });
  }

  async #post(peer: number, path: string, body: Uint8Array, signal: AbortSignal | undefined): Promise<Uint8Array> {
    const bases = this.#book.attempts(peer);
    if (bases.length === 0) throw new WaveKVError("INVALID_ARGUMENT", `no address known for peer ${peer}; pass it in the transport's peers (serve: --peer ${peer}=http://host:port)`);
    const limit = deadline(signal, this.#timeoutMs, `request to peer ${peer}`);
    try {
      const headers: Record<string, string> = { "content-type": "application/octet-stream" };
      if (this.#signer) Object.assign(headers, await this.#signer.sign("POST", path, body, peer));
      for (let i = 0; ; i++) {
        const base = bases[i]!;
        let res: Response;
        try {
          res = await this.#fetch(base + path, { method: "POST", body: body as Uint8Array<ArrayBuffer>, headers, signal: limit.signal });
        } catch (err) {
          // Unreachable: try the other address, unless the deadline (or caller) gave up.
          this.#book.failed(peer, base);
          if (limit.signal.aborted || i + 1 >= bases.length) throw err;
          continue;
        }
        const bytes = new Uint8Array(await res.arrayBuffer());
        if (!res.ok) {
          // Something else may now listen at a stale address: the other one gets its turn.
          this.#book.failed(peer, base);
          if (i + 1 < bases.length && !limit.signal.aborted) continue;
          throw refusal(peer, res.status, bytes);
        }
        this.#book.answered(peer, base);
        return bytes;
      }
    } finally {
      limit.dispose();
    }
  }
}

/** The server's JSON error as a WaveKVError; codes the protocol reacts to are kept, the rest are IO. */
function refusal(peer: number, status: number, bytes: Uint8Array): WaveKVError {
  let code = "IO";
  let message = `peer ${peer} answered HTTP ${status}`;
  try {
    const j = JSON.parse(new TextDecoder().decode(bytes)) as { error?: string; message?: string };
    if (j.error) code = j.error;
    if (j.message) message = `peer ${peer} answered HTTP ${status}: ${j.message}`;
  } catch { /* not JSON: keep the status */ }
  return new WaveKVError(code === "UUID_MISMATCH" || code === "BAD_ENVELOPE" ? code : "IO", message);
}
