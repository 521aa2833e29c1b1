/**
 * One row type for every benchmark module, a terminal table and the results files.
 *
 *   printTable(rows); writeResults(rows, "node");
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";

export interface Row {
  group: string;
  name: string;
  value: number;
  unit: string;
  /** Name of the row (same group) this one is compared with. */
  baseline?: string;
  /** value / baseline value, measured in the same run. */
  ratio?: number;
  /** A target from the issues, e.g. ">= 4 GB/s" or ">= 2.5x", and whether it was met. */
  target?: string;
  met?: boolean;
  note?: string;
}

export type BenchFn = (opts: { quick: boolean; onProgress?: (msg: string) => void }) => Promise<Row[]>;

export function runtimeName(): string {
  const bun = (process.versions as Record<string, string | undefined>).bun;
  return bun ? `bun ${bun}` : `node ${process.versions.node}`;
}

export function machine(): string {
  const c = cpus();
  return `${c.length} x ${c[0]?.model?.trim() ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ${process.platform} ${process.arch}`;
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(2) + " G";
  if (a >= 1e6) return (v / 1e6).toFixed(2) + " M";
  if (a >= 1e4) return (v / 1e3).toFixed(1) + " k";
  if (a >= 100) return v.toFixed(0);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(3);
}

/** Fill `ratio` from `baseline` where a module left it out. */
export function withRatios(rows: Row[]): Row[] {
  return rows.map((r) => {
    if (r.ratio !== undefined || r.baseline === undefined) return r;
    const base = rows.find((b) => b.group === r.group && b.name === r.baseline);
    return base && base.value !== 0 ? { ...r, ratio: r.value / base.value } : r;
  });
}

export function formatTable(rows: Row[]): string {
  const head = ["group", "case", "value", "unit", "vs", "ratio", "target"];
  const body = rows.map((r) => [r.group, r.name, fmt(r.value), r.unit, r.baseline ?? "", r.ratio === undefined ? "" : r.ratio.toFixed(2) + "x", r.target ? `${r.target} ${r.met ? "✓" : "✗"}` : ""]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 2 || i === 5 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

export function writeResults(rows: Row[], dir: string): string {
  mkdirSync(dir, { recursive: true });
  const runtime = runtimeName();
  const file = join(dir, `${runtime.split(" ")[0]}.json`);
  writeFileSync(file, JSON.stringify({ runtime, machine: machine(), date: new Date().toISOString(), rows }, null, 2) + "\n");
  return file;
}
