/**
 * A `Transport` over `fetch` with no `node:` import: browsers, edge workers, Deno, Bun
 * and Node. Speaks the HTTP server's protocol (src/http.ts): POST /sync and POST /push,
 * envelope bytes both ways, and — with a shared secret — the same HMAC-SHA256 request
 * signature as src/auth.ts, computed with WebCrypto.
 *
 *   const transport = new FetchTransport({ peers: { 1: "https://kv.example.com" }, secret });
 *   const sync = new SyncManager(node, transport);
 *   await sync.syncOnce();
 *
 * Signed string (src/auth.ts): `METHOD\npath\ntimestamp\nnonce\nsha256hex(body)`, keyed
 * with the secret's UTF-8 bytes, in the headers x-wavekv-timestamp / -nonce / -signature.
 * `path` is the route ("/sync"), not the base URL's path: a page may reach the node
 * through a same-origin reverse proxy that mounts it under a prefix (base "/wavekv")
 * and strips the prefix on the way, and the signature still verifies.
 *
 * WebCrypto's `crypto.subtle` exists only in secure contexts (https, localhost); in an
 * insecure page the signature falls back to the pure-TS HMAC of src/sha256.ts. Either
 * way a secret shipped to a browser is readable by whoever runs that browser: give a
 * browser a secret only where its user may write to the store anyway.
 */
import { WaveKVError } from "./errors.js";
import { hmacSha256, sha256, toHex } from "./sha256.js";
import { deadline, type Transport, type TransportRequestOptions } from "./transport.js";

export interface FetchTransportOptions {
  /** Peer id → base URL; relative URLs ("/wavekv") resolve against the page, as fetch does. */
  peers?: Record<number, string>;
  secret?: string | Uint8Array;
  /** A request (both legs) is aborted after this long; default 10 s. */
  timeoutMs?: number;
  /** Addresses of peers not in `peers`. */
  resolve?: (peer: number) => string | undefined;
  /** Replaces the global fetch (a worker binding, a test double at the process boundary). */
  fetch?: typeof fetch;
}

const AUTH_HEADERS = { timestamp: "x-wavekv-timestamp", nonce: "x-wavekv-nonce", signature: "x-wavekv-signature" } as const;
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

  constructor(secret: string | Uint8Array) {
    this.#secret = typeof secret === "string" ? utf8.encode(secret) : secret.slice();
  }

  /** The three auth headers for one request; `now` is the signer's clock (ms). */
  async sign(method: string, path: string, body: Uint8Array, now = Date.now()): Promise<Record<string, string>> {
    const timestamp = String(now);
    const nonce = randomHex(12);
    const signature = await this.#mac(method, path, timestamp, nonce, body);
    return { [AUTH_HEADERS.timestamp]: timestamp, [AUTH_HEADERS.nonce]: nonce, [AUTH_HEADERS.signature]: signature };
  }

  async #mac(method: string, path: string, timestamp: string, nonce: string, body: Uint8Array): Promise<string> {
    const subtle = subtleCrypto();
    const bodyHash = subtle
      ? toHex(new Uint8Array(await subtle.digest("SHA-256", body as Uint8Array<ArrayBuffer>)))
      : toHex(sha256(body));
    const message = utf8.encode(`${method.toUpperCase()}\n${path}\n${timestamp}\n${nonce}\n${bodyHash}`);
    if (!subtle) return toHex(hmacSha256(this.#secret, message));
    this.#key ??= subtle.importKey("raw", this.#secret as Uint8Array<ArrayBuffer>, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    return toHex(new Uint8Array(await subtle.sign("HMAC", await this.#key, message)));
  }
}

export class FetchTransport implements Transport {
  readonly #peers = new Map<number, string>();
  readonly #signer: RequestSigner | null;
  readonly #timeoutMs: number;
  readonly #resolve: ((peer: number) => string | undefined) | undefined;
  readonly #fetch: typeof fetch;

  constructor(opts: FetchTransportOptions = {}) {
    for (const [id, url] of Object.entries(opts.peers ?? {})) this.setPeer(Number(id), url);
    this.#signer = opts.secret !== undefined ? new RequestSigner(opts.secret) : null;
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
    this.#resolve = opts.resolve;
    // Bound to globalThis: browsers throw "Illegal invocation" on a detached fetch.
    this.#fetch = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
  }

  setPeer(peer: number, url: string): void {
    this.#peers.set(peer, url.replace(/\/+$/, ""));
  }

  addressOf(peer: number): string | undefined {
    return this.#peers.get(peer) ?? this.#resolve?.(peer)?.replace(/\/+$/, "");
  }

  request(peer: number, body: Uint8Array, opts?: TransportRequestOptions): Promise<Uint8Array> {
    return this.#post(peer, "/sync", body, opts?.signal);
  }

  push(peer: number, body: Uint8Array, opts?: TransportRequestOptions): Promise<Uint8Array> {
    return this.#post(peer, "/push", body, opts?.signal);
  }

  async #post(peer: number, path: string, body: Uint8Array, signal: AbortSignal | undefined): Promise<Uint8Array> {
    const base = this.addressOf(peer);
    if (base === undefined) throw new WaveKVError("INVALID_ARGUMENT", `no address known for peer ${peer}; pass it in FetchTransport's peers`);
    const limit = deadline(signal, this.#timeoutMs, `request to peer ${peer}`);
    try {
      const headers: Record<string, string> = { "content-type": "application/octet-stream" };
      if (this.#signer) Object.assign(headers, await this.#signer.sign("POST", path, body));
      const res = await this.#fetch(base + path, { method: "POST", body: body as Uint8Array<ArrayBuffer>, headers, signal: limit.signal });
      const bytes = new Uint8Array(await res.arrayBuffer());
      if (!res.ok) throw refusal(peer, res.status, bytes);
      return bytes;
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
