/**
 * Durations as people type them — `500ms`, `30s`, `5m`, `2h`, `7d`, or plain ms — read
 * once, with one unit table: the CLI's `--ttl` (./expiry.ts parseTtl) and `--timeout`
 * (src/app/cli.ts) differ only in what they accept around it (integers only or decimals,
 * and their bounds), which each caller checks with its own message.
 *
 *   readDuration("2h", { decimals: false });     // 7 200 000
 *   readDuration("1.5s", { decimals: true });    // 1 500
 *   readDuration("10y", { decimals: true });     // NaN: not a duration
 */

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
