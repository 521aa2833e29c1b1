/**
 * The rules of an entry's expiry (docs/design/0026-expiry.md): what a local `ttlMs` may
 * be, and what an `expiresAt` from a peer may be. One spelling for the write path, the
 * envelope decoder and the HTTP/CLI surfaces.
 *
 *   checkTtl(opts.ttlMs);                       // throws INVALID_ARGUMENT
 *   expiryProblem(timestamp, expiresAt);        // undefined, or why a peer's entry is refused
 */
import { WaveKVError } from "./errors.js";

/**
 * The longest TTL: 10 years of 365 days, in ms. Longer is almost certainly a unit mix-up
 * (seconds or µs given as ms) and is refused rather than kept "for ever"; it also keeps
 * `timestamp + ttlMs` far inside the exact range of a JS number.
 */
export const MAX_TTL_MS = 10 * 365 * 86_400_000;

/** Throws INVALID_ARGUMENT unless `ttlMs` is an integer in [1, MAX_TTL_MS]. */
export function checkTtl(ttlMs: unknown): number {
  if (typeof ttlMs !== "number" || !Number.isInteger(ttlMs) || ttlMs <= 0 || ttlMs > MAX_TTL_MS) {
    throw new WaveKVError("INVALID_ARGUMENT", `ttlMs must be an integer number of ms in [1, ${MAX_TTL_MS}] (10 years), got ${typeof ttlMs === "number" ? ttlMs : typeof ttlMs}`);
  }
  return ttlMs;
}

/**
 * Why an entry stamped `timestamp` may not carry `expiresAt`, or undefined: the expiry
 * must come after the entry's own stamp by at most MAX_TTL_MS. An expiry earlier than the
 * reader's clock is not a problem: an expired entry still replicates (it must replace
 * the older values it overwrote on every replica) and reads as absent.
 */
export function expiryProblem(timestamp: number, expiresAt: number): string | undefined {
  const ttl = expiresAt - timestamp;
  if (!Number.isSafeInteger(expiresAt)) return `expiry ${expiresAt} is not an exact integer`;
  if (!(ttl > 0)) return `expires at ${expiresAt}, not after its own stamp ${timestamp}`;
  if (ttl > MAX_TTL_MS) return `expires ${ttl} ms after its stamp (more than ${MAX_TTL_MS})`;
  return undefined;
}

