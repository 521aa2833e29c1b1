/**
 * The console's charts' data (docs/design/0029): one sample every `intervalMs` (2 s) of
 * what the page lists as numbers, kept for the last `samples` (150: five minutes), so a
 * page opened now shows the last minutes, not only what it saw itself.
 *
 *   const h = new ConsoleHistory({ node, intervalMs: 2_000, samples: 150 });
 *   h.noteChange(local);                // each change of the console's feed (one counter bump)
 *   h.since(at);                        // the samples after `at` (the page keeps its copy)
 *   h.close();
 *
 * A sample: local writes and merged remote changes per second (counted from the console's
 * change feed: no extra subscriber), per peer the writes it has not confirmed and the last
 * round's duration (Node.replication()), and the WAL's mean fsync latency over the interval
 * (its histogram). Cost per sample O(peers · log W); memory bounded by `samples`. The timer
 * is unref'd: it never keeps a process alive.
 */
import type { Node } from "../node/node.js";

export interface HistorySample {
  /** Server clock, ms. */
  at: number;
  writesPerSec: number;
  mergesPerSec: number;
  /** Mean fsync latency over the interval (ms); null: no fsync in it, or an in-memory node. */
  fsyncMs: number | null;
  peers: { id: number; behind: number; roundMs: number | null }[];
}

export interface ConsoleHistoryView {
  intervalMs: number;
  /** How many samples the server keeps (the window the charts span). */
  capacity: number;
  samples: HistorySample[];
}

export class ConsoleHistory {
  readonly #node: Node;
  readonly intervalMs: number;
  readonly capacity: number;
  readonly #samples: HistorySample[] = [];
  #writes = 0;
  #merges = 0;
  #last: { at: number; fsyncSum: number; fsyncCount: number } | null = null;
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(opts: { node: Node; intervalMs?: number; samples?: number }) {
    this.#node = opts.node;
    this.intervalMs = Math.max(10, opts.intervalMs ?? 2_000);
    this.capacity = Math.max(2, opts.samples ?? 150);
    this.#last = this.#mark();
    this.#timer = setInterval(() => this.#sample(), this.intervalMs);
    (this.#timer as { unref?: () => void }).unref?.();
  }

  /** One change of the console's feed: a local write (ours) or a merged remote one. */
  noteChange(local: boolean): void {
    if (local) this.#writes++;
    else this.#merges++;
  }

  #mark(): { at: number; fsyncSum: number; fsyncCount: number } {
    const f = this.#node.closed ? null : this.#node.storageStats()?.fsyncLatency;
    return { at: Date.now(), fsyncSum: f?.sum ?? 0, fsyncCount: f?.count ?? 0 };
  }

  #sample(): void {
    if (this.#node.closed) return this.close();
    const prev = this.#last!;
    const now = this.#mark();
    const secs = Math.max(0.001, (now.at - prev.at) / 1000);
    const fsyncs = now.fsyncCount - prev.fsyncCount;
    const peers = this.#node.replication().peers.map((p) => ({ id: p.peer, behind: p.entriesBehind, roundMs: p.link?.lastRoundMs ?? null }));
    this.#samples.push({
      at: now.at,
      writesPerSec: round(this.#writes / secs),
      mergesPerSec: round(this.#merges / secs),
      fsyncMs: fsyncs > 0 ? round((now.fsyncSum - prev.fsyncSum) / fsyncs) : null,
      peers,
    });
    if (this.#samples.length > this.capacity) this.#samples.shift();
    this.#writes = this.#merges = 0;
    this.#last = now;
  }

  /** The samples taken after `at` (0: all kept). */
  since(at: number): ConsoleHistoryView {
    const i = this.#samples.findIndex((s) => s.at > at);
    return { intervalMs: this.intervalMs, capacity: this.capacity, samples: i < 0 ? [] : this.#samples.slice(i) };
  }

  close(): void {
    clearInterval(this.#timer);
  }
}

const round = (x: number) => Math.round(x * 100) / 100;
