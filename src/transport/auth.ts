/**
 * Request authentication with a shared secret (scheme: src/transport/auth-scheme.ts, documented in
 * docs/PROTOCOL.md "HTTP authentication"): HMAC-SHA256 over method, raw path, timestamp,
 * nonce, target node id and the body's SHA-256.
 *
 *   const headers = signRequest(secret, "POST", "/sync", body, peerId);
 *   const v = verifier.verifyHeaders(method, path, header);   // before reading the body
 *   if (v.ok) ... stream the body, compare its SHA-256 with v.contentSha256
 *
 * A signature older than the window is stale; inside the window each nonce is accepted
 * once (a replayed `PUT /kv/k` would otherwise undo a later write). Only the canonical
 * spelling of every field is accepted, so "the same request, spelled differently" cannot
 * slip past the replay check, and the nonce is what is remembered (the MAC covers it).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { AUTH_HEADERS, AUTH_SCHEME, CANONICAL, authHeaders, signedString } from "./auth-scheme.js";
import { CREDENTIAL_NAME, type ClientCredential } from "./credentials.js";

export { AUTH_HEADERS } from "./auth-scheme.js";

const EMPTY = new Uint8Array(0);

export function sha256Hex(body: Uint8Array): string {
  return createHash("sha256").update(body).digest("hex");
}

function mac(secret: string | Uint8Array, text: string): Buffer {
  return createHmac("sha256", secret).update(text).digest();
}

/** The auth headers for one request to node `node`; `key` names the client credential `secret` belongs to (none: the cluster secret). */
export function signRequest(secret: string | Uint8Array, method: string, path: string, body: Uint8Array = EMPTY, node: number, now = Date.now(), key?: string): Record<string, string> {
  const timestamp = String(Math.floor(now));
  const nonce = randomBytes(12).toString("hex");
  const digest = sha256Hex(body);
  return authHeaders(timestamp, nonce, node, digest, mac(secret, signedString(method, path, timestamp, nonce, node, digest)).toString("hex"), key);
}

/** On "ok", `credential` is the client credential that signed, undefined for the cluster secret. */
export type HeaderVerdict = { ok: true; contentSha256: string; credential?: ClientCredential } | { ok: false; reason: string };

export interface VerifierOptions {
  /** This node's id: a request signed for another node is refused. */
  node: number;
  windowMs?: number;
  clock?: () => number;
  /**
   * Client credentials accepted besides the cluster secret (a request names one in
   * x-wavekv-key). Default: none, and a request naming one is refused.
   */
  credentials?: readonly ClientCredential[];
}

export class RequestVerifier {
  /** nonce → when it may be forgotten; insertion order is expiry order (one clock). */
  readonly #seen = new Map<string, number>();
  readonly #secret: string | Uint8Array;
  readonly #node: string;
  readonly windowMs: number;
  readonly #clock: () => number;
  readonly #credentials: ReadonlyMap<string, ClientCredential>;

  constructor(secret: string | Uint8Array, opts: VerifierOptions) {
    this.#secret = secret;
    this.#credentials = new Map((opts.credentials ?? []).map((c) => [c.name, c]));
    this.#node = String(opts.node);
    this.windowMs = opts.windowMs ?? 30_000;
    this.#clock = opts.clock ?? Date.now;
  }

  /**
   * Everything that can be checked before the body is read. On "ok" the nonce is spent:
   * a replay racing the first request's body is refused too.
   */
  verifyHeaders(method: string, path: string, header: (name: string) => string | undefined): HeaderVerdict {
    const no = (reason: string): HeaderVerdict => ({ ok: false, reason });
    const scheme = header(AUTH_HEADERS.scheme);
    const timestamp = header(AUTH_HEADERS.timestamp);
    const nonce = header(AUTH_HEADERS.nonce);
    const node = header(AUTH_HEADERS.node);
    const digest = header(AUTH_HEADERS.contentSha256);
    const signature = header(AUTH_HEADERS.signature);
    if (!timestamp || !nonce || !signature) return no("missing signature headers");
    if (scheme !== AUTH_SCHEME) return no(`unsupported signature scheme ${JSON.stringify(scheme ?? "(none)")}; this node accepts ${AUTH_SCHEME} (upgrade the client)`);
    if (!node || !digest) return no(`missing ${AUTH_HEADERS.node} or ${AUTH_HEADERS.contentSha256} header`);
    if (!CANONICAL.timestamp.test(timestamp) || !CANONICAL.nonce.test(nonce) || !CANONICAL.node.test(node) || !CANONICAL.hex64.test(digest) || !CANONICAL.hex64.test(signature)) {
      return no("malformed signature headers (lowercase hex and plain decimal only)");
    }
    const keyName = header(AUTH_HEADERS.key);
    let credential: ClientCredential | undefined;
    if (keyName !== undefined) {
      if (!CREDENTIAL_NAME.test(keyName)) return no(`malformed ${AUTH_HEADERS.key} header (1-64 of A-Z a-z 0-9 . _ -)`);
      credential = this.#credentials.get(keyName);
      // The name is not secret, and canonical (checked above): safe to echo and to log.
      if (!credential) return no(`unknown credential ${keyName}`);
    }
    if (node !== this.#node) return no(`signed for node ${node}, this is node ${this.#node}`);
    const now = this.#clock();
    if (Math.abs(now - Number(timestamp)) > this.windowMs) return no("stale or future timestamp");
    const expected = mac(credential?.secret ?? this.#secret, signedString(method, path, timestamp, nonce, node, digest));
    if (!timingSafeEqual(Buffer.from(signature, "hex"), expected)) return no(credential ? `bad signature for credential ${credential.name}` : "bad signature");
    this.#forgetOld(now);
    if (this.#seen.has(nonce)) return no("replayed request");
    // Kept until its timestamp is surely outside the window: ts ≥ now - window at insertion.
    this.#seen.set(nonce, now + 2 * this.windowMs);
    return { ok: true, contentSha256: digest, ...(credential ? { credential } : {}) };
  }

  /** Headers and a body already in hand (tests, small callers). */
  verify(method: string, path: string, header: (name: string) => string | undefined, body: Uint8Array): "ok" | string {
    const v = this.verifyHeaders(method, path, header);
    if (!v.ok) return v.reason;
    return sha256Hex(body) === v.contentSha256 ? "ok" : "body does not match its signed digest";
  }

  #forgetOld(now: number): void {
    for (const [nonce, expiry] of this.#seen) {
      if (expiry > now) break;
      this.#seen.delete(nonce);
    }
  }
}
