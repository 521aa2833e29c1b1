/**
 * The fsync latency histogram the WAL writer keeps (served by /metrics and the console).
 * Observing is a short scan of 12 bounds: no allocation per fsync.
 */
import type { LatencyStats } from "./interface.js";

/** Cumulative latency histogram in ms (Prometheus `le` buckets). */
export class LatencyHistogram implements LatencyStats {
  static readonly BOUNDS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000] as const;
  readonly bounds: readonly number[] = LatencyHistogram.BOUNDS;
  /** counts[i]: observations in (bounds[i-1], bounds[i]]; the last one above every bound. */
  readonly counts = new Array<number>(LatencyHistogram.BOUNDS.length + 1).fill(0);
  sum = 0;
  count = 0;

  observe(ms: number): void {
    let i = 0;
    while (i < LatencyHistogram.BOUNDS.length && ms > LatencyHistogram.BOUNDS[i]!) i++;
    this.counts[i]!++;
    this.sum += ms;
    this.count++;
  }
}
