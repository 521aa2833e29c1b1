/**
 * The expiry of an HTTP write: `PUT /kv/<key>?ttlMs=N` (N: whole ms, 1 to 10 years; the
 * query, not a header, so that it is inside what a signed request covers and shows in
 * access logs). A bad N is INVALID_ARGUMENT (400), and nothing is written.
 * docs/design/0026-expiry.md.
 *
 *   await node.put(key, body, ttlOfQuery(query));
 */
import { checkTtl } from "../core/expiry.js";
import { WaveKVError } from "../core/errors.js";

/** `{ ttlMs }` of a write's query, or undefined when it has none. */
export function ttlOfQuery(query: URLSearchParams): { ttlMs: number } | undefined {
  const text = query.get("ttlMs");
  if (text === null) return undefined;
  if (!/^[0-9]{1,16}$/.test(text)) throw new WaveKVError("INVALID_ARGUMENT", `ttlMs must be a whole number of ms, got ${JSON.stringify(text.slice(0, 40))}`);
  return { ttlMs: checkTtl(Number(text)) };
}
