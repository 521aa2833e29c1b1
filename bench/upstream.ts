/**
 * Reference rows for the original, upstream Rust wavekv 2.1, built and measured once on
 * this machine (/work/shared/TOOLCHAIN.md) — NOT in this run — shown beside this run's
 * figures for the same cases. Only full-size runs are compared (quick runs use other sizes).
 *
 *   rows.push(...upstreamRows(rows, quick));
 */
import type { Row } from "./report.js";

export const UPSTREAM_GROUP = "vs upstream Rust wavekv 2.1";
const SOURCE = "upstream Rust wavekv 2.1, measured once on this machine, not in this run (TOOLCHAIN.md)";

interface Pair {
  what: string;
  unit: string;
  upstream: number;
  upstreamNote: string;
  /** Our figure for the same case, from this run's rows. */
  ours(rows: Row[]): { value: number; note: string } | undefined;
  /** Comparable in a quick run too (a rate, not a size-dependent total). */
  quickOk?: boolean;
}

const row = (rows: Row[], group: string, name: string) => rows.find((r) => r.group === group && r.name === name && Number.isFinite(r.value));
const noteOf = (r: Row, what: string) => `${what}${r.note ? `; ${r.note}` : ""}`;

const PAIRS: Pair[] = [
  {
    what: "in-memory put", unit: "puts/s", upstream: 1.29e6, upstreamNote: "100k keys, 100 B values", quickOk: true,
    ours: (rows) => { const r = row(rows, "store in memory", "Node.put"); return r && { value: r.value, note: "bench/store.ts Node.put" }; },
  },
  {
    what: "durable put, fsync per write, 1 writer", unit: "puts/s", upstream: 5.5e3, upstreamNote: "disk-bound: this VM's fsync rate varies with the neighbours", quickOk: true,
    ours: (rows) => { const r = row(rows, "durable put, fsync before ack", 'wavekv fsync "always", 1 writer'); return r && { value: r.value, note: "bench/peers-durable.ts" }; },
  },
  {
    what: "durable put, 10 ms fsync window", unit: "puts/s", upstream: 592e3, upstreamNote: "upstream's best case with a 10 ms window", quickOk: true,
    ours: (rows) => { const r = row(rows, "durable put, 10 ms fsync window", "wavekv fsync every 10 ms, 64 writers"); return r && { value: r.value, note: "64 writers" }; },
  },
  {
    what: "full sync of 100k keys, time", unit: "ms", upstream: 800, upstreamNote: "default 4,096-entry pages (0.184 s in one page)",
    ours: (rows) => { const r = row(rows, "bootstrap time (100k keys)", "wavekv whole round (both sides, encode + decode)"); return r && { value: (100_000 / r.value) * 1000, note: noteOf(r, "default paging") }; },
  },
  {
    what: "full sync of 100k keys, bytes on the wire", unit: "B/key", upstream: 162.8, upstreamNote: "msgpack with field names",
    ours: (rows) => { const r = row(rows, "bootstrap bytes (100k keys)", "wavekv envelopes (request + response pages)"); return r && { value: r.value, note: "request + response pages" }; },
  },
  {
    what: "incremental sync of 1k puts on 100k keys, time", unit: "ms", upstream: 35.5, upstreamNote: "dominated by two full-state SHA-256 digests",
    ours: (rows) => { const r = row(rows, "incremental sync time (1k changes)", "wavekv round"); return r && { value: r.value, note: noteOf(r, "one round") }; },
  },
  {
    what: "incremental sync of 1k puts, bytes", unit: "B/change", upstream: 164, upstreamNote: "",
    ours: (rows) => { const r = row(rows, "incremental sync bytes (1k changes)", "wavekv round (request + response)"); return r && { value: r.value, note: "request + response" }; },
  },
  {
    what: "WAL replay of 1M records", unit: "ms", upstream: 970, upstreamNote: "",
    ours: (rows) => { const r = row(rows, "recovery: 1M-record WAL", "Node.open"); return r && { value: r.value, note: "Node.open of a directory holding only the WAL" }; },
  },
  {
    what: "memory per key at 1M keys (RSS)", unit: "B/key", upstream: 472, upstreamNote: "100 B values",
    ours: (rows) => { const r = row(rows, "memory per key (1M keys, 100 B values)", "wavekv Node (in memory), RSS"); return r && { value: r.value, note: "RSS growth in a child process" }; },
  },
];

export function upstreamRows(rows: Row[], quick: boolean): Row[] {
  const out: Row[] = [];
  for (const p of PAIRS) {
    if (quick && !p.quickOk) continue;
    const ours = p.ours(rows);
    const up = `upstream: ${p.what}`;
    out.push({ group: UPSTREAM_GROUP, name: up, value: p.upstream, unit: p.unit, reference: SOURCE, note: p.upstreamNote || undefined });
    out.push({
      group: UPSTREAM_GROUP, name: `wavekv-ts: ${p.what}`, value: ours?.value ?? NaN, unit: p.unit, baseline: up,
      ratio: ours ? ours.value / p.upstream : undefined, note: ours?.note ?? "not measured in this run",
    });
  }
  return out;
}
