/**
 * Durations as people type them — `500ms`, `30s`, `5m`, `2h`, `7d`, or plain ms — read
 * once, with one unit table: the CLI's `--ttl` (parseTtl below) and `--timeout`
 * (src/app/cli.ts) differ only in what they accept around it (integers only or decimals,
 * and their bounds), which each caller checks with its own message.
 *
 *   readDuration("2h", { decimals: false });     // 7 200 000
 *   readDuration("1.5s", { decimals: true });    // 1 500
 *   readDuration("10y", { decimals: true });     // NaN: not a duration
 *   parseTtl("7d");                              // 604 800 000, or INVALID_ARGUMENT
 *
 * Not in the browser core: only the CLI reads typed durations (the library takes ms).
 */
import { WaveKVError } from "./errors.js";
import { checkTtl } from "./expiry.js";

/** Milliseconds per unit (no unit: ms). */
const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * `text` (surrounding spaces ignored) in whole ms, or NaN when it is not a duration: a
 * number (an integer of at most 16 digits; with `decimals`, also a decimal fraction,
 * rounded to the ms) and an optional unit.
 */
export function readDuration(text: string, opts: { decimals: boolean }): number {
  const m = /^([0-9]{1,16}(\.[0-9]{1,6})?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (m === null || (m[2] !== undefined && !opts.decimals)) return NaN;
  return Math.round(Number(m[1]) * UNITS[m[3] ?? "ms"]!);
}

/**
 * A TTL as people write it: an integer with a unit, `500ms`, `30s`, `5m`, `2h`, `7d`, or
 * plain ms (`1500`). Throws INVALID_ARGUMENT for anything else, then as `checkTtl`.
 */
export function parseTtl(text: string): number {
  const ms = readDuration(text, { decimals: false });
  if (Number.isNaN(ms)) throw new WaveKVError("INVALID_ARGUMENT", `a TTL is an integer with a unit (500ms, 30s, 5m, 2h, 7d) or plain ms, got ${JSON.stringify(text.slice(0, 40))}`);
  return checkTtl(ms);
}
