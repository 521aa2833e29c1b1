/**
 * Request authentication with a shared secret: HMAC-SHA256 over method, path,
 * timestamp, nonce and body.
 *
 *   const headers = signRequest(secret, "POST", "/sync", body);
 *   const verdict = verifier.verify(method, path, headers, body); // "ok" or why not
 *
 * A signature older than the window is stale; inside the window each signature is
 * accepted once (a replayed `PUT /kv/k` would otherwise undo a later write).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";

export const AUTH_HEADERS = { timestamp: "x-wavekv-timestamp", nonce: "x-wavekv-nonce", signature: "x-wavekv-signature" } as const;

function mac(secret: string | Uint8Array, method: string, path: string, timestamp: string, nonce: string, body: Uint8Array): string {
  const bodyHash = createHash("sha256").update(body).digest("hex");
  return createHmac("sha256", secret).update(`${method.toUpperCase()}\n${path}\n${timestamp}\n${nonce}\n${bodyHash}`).digest("hex");
}

export function signRequest(secret: string | Uint8Array, method: string, path: string, body: Uint8Array = new Uint8Array(0), now = Date.now()): Record<string, string> {
  const timestamp = String(now);
  const nonce = randomBytes(12).toString("hex");
  return {
    [AUTH_HEADERS.timestamp]: timestamp,
    [AUTH_HEADERS.nonce]: nonce,
    [AUTH_HEADERS.signature]: mac(secret, method, path, timestamp, nonce, body),
  };
}

export class RequestVerifier {
  readonly #seen = new Map<string, number>();

  constructor(private readonly secret: string | Uint8Array, readonly windowMs = 30_000, private readonly clock: () => number = Date.now) {}

  verify(method: string, path: string, header: (name: string) => string | undefined, body: Uint8Array): "ok" | string {
    const timestamp = header(AUTH_HEADERS.timestamp);
    const nonce = header(AUTH_HEADERS.nonce);
    const signature = header(AUTH_HEADERS.signature);
    if (!timestamp || !nonce || !signature) return "missing signature headers";
    const ts = Number(timestamp);
    const now = this.clock();
    if (!Number.isFinite(ts) || Math.abs(now - ts) > this.windowMs) return "stale or future timestamp";
    const expected = Buffer.from(mac(this.secret, method, path, timestamp, nonce, body), "hex");
    const given = Buffer.from(signature, "hex");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return "bad signature";
    this.#forgetOld(now);
    if (this.#seen.has(signature)) return "replayed request";
    this.#seen.set(signature, ts);
    return "ok";
  }

  #forgetOld(now: number): void {
    if (this.#seen.size < 1024) return;
    for (const [sig, ts] of this.#seen) if (Math.abs(now - ts) > this.windowMs) this.#seen.delete(sig);
  }
}
