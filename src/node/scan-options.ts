/**
 * The arguments of `Node.scan` and `Node.watch`, checked at the call: INVALID_ARGUMENT
 * naming the field. Strings must be well-formed: a lone surrogate has no UTF-8 order.
 */
import { WaveKVError } from "../core/errors.js";

/** Options of `Node.scan`. */
export interface ScanOptions {
  /** Yield tombstones (deleted keys, `value: null`) too. Default false. */
  includeTombstones?: boolean;
  /**
   * Only keys after this one (exclusive), in UTF-8 key order: the last key of the previous
   * page. Need not be a key held. Default: none (from the first key under the prefix).
   */
  after?: string;
  /** At most this many entries (tombstones skipped do not count); a positive integer. Default: no limit. */
  limit?: number;
}

export const isWellFormed = (s: string) => (s as string & { isWellFormed(): boolean }).isWellFormed();

/** Checked `Node.scan` arguments. Strings must be well-formed: a lone surrogate has no UTF-8 order. */
export function scanOptions(prefix: unknown, opts: unknown): { includeTombstones: boolean; after: string | undefined; limit: number } {
  const bad = (field: string, want: string, got: unknown) =>
    new WaveKVError("INVALID_ARGUMENT", `scan ${field} must be ${want}, got ${typeof got === "string" ? JSON.stringify(got) : String(got)}`);
  if (typeof prefix !== "string" || !isWellFormed(prefix)) throw bad("prefix", "a well-formed string (\"\" for every key)", prefix);
  if (typeof opts !== "object" || opts === null) throw bad("options", "an object { includeTombstones?, after?, limit? }", opts);
  const { includeTombstones, after, limit } = opts as ScanOptions;
  if (includeTombstones !== undefined && typeof includeTombstones !== "boolean") throw bad("includeTombstones", "true or false", includeTombstones);
  if (after !== undefined && (typeof after !== "string" || !isWellFormed(after))) throw bad("after", "a well-formed string (the last key of the previous page)", after);
  if (limit !== undefined && !(Number.isSafeInteger(limit) && limit > 0)) throw bad("limit", "a positive integer (omit it for no limit)", limit);
  return { includeTombstones: includeTombstones ?? false, after, limit: limit ?? Infinity };
}
