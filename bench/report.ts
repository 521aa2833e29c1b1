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
  /** Smaller is better (times, bytes); default: inferred from the unit (see `lowerIsBetter`). */
  lower?: boolean;
  /** Not measured in this run: where the figure comes from (e.g. upstream Rust, TOOLCHAIN.md). */
  reference?: string;
  /** The bench module that produced the row (set by bench/index.ts). */
  module?: string;
}

/** Times, sizes and bytes: smaller wins. Rates (`…/s`) and ratios: larger wins. */
export function lowerIsBetter(r: Row): boolean {
  if (r.lower !== undefined) return r.lower;
  return !/\/s$/.test(r.unit) && r.unit !== "x" && r.unit !== "GB/s";
}

/**
 * Parses a target such as ">= 0.30x", "<= 1.10x" (compared with `ratio`) or
 * ">= 4 GB/s" (compared with `value`, same unit) and says whether the row meets it.
 * Returns undefined when the row lacks what the target compares.
 */
export function meetsTarget(r: Row): boolean | undefined {
  const m = /^\s*(>=|<=|≥|≤)\s*([0-9.]+)\s*(x|.*)$/.exec(r.target ?? "");
  if (!m) return undefined;
  const want = Number(m[2]);
  const atLeast = m[1] === ">=" || m[1] === "≥";
  const got = m[3] === "x" ? r.ratio : m[3]!.trim() === "" || m[3]!.trim() === r.unit ? r.value : undefined;
  if (got === undefined || !Number.isFinite(got)) return undefined;
  return atLeast ? got >= want : got <= want;
}

/** Fills `met` where a module gave a target but left the verdict out. */
export function withVerdicts(rows: Row[]): Row[] {
  return rows.map((r) => (r.target === undefined || r.met !== undefined ? r : { ...r, met: meetsTarget(r) }));
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

export function fmt(v: number): string {
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

/** One table: a heading line per group, then its rows with columns aligned across the whole table. */
export function formatTable(rows: Row[]): string {
  const head = ["case", "value", "unit", "ratio", "vs", "target"];
  const cells = (r: Row) => [
    r.reference ? `${r.name} (reference)` : r.name,
    fmt(r.value),
    r.unit,
    r.ratio === undefined || !Number.isFinite(r.ratio) ? "" : r.ratio.toFixed(2) + "x",
    r.baseline ?? "",
    r.target ? `${r.target} ${r.met === undefined ? "?" : r.met ? "✓" : "✗ MISSED"}` : "",
  ];
  const body = rows.map(cells);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (c: string[]) => c.map((x, i) => (i === 1 || i === 3 ? x.padStart(widths[i]!) : x.padEnd(widths[i]!))).join("  ").trimEnd();
  const out = [line(head)];
  let group: string | undefined;
  rows.forEach((r, i) => {
    if (r.group !== group) { group = r.group; out.push("", `== ${group}`); }
    out.push(line(body[i]!));
  });
  return out.join("\n");
}

/** One runtime's run, as written to `bench/results/<runtime>.json`. */
export interface ResultsFile {
  runtime: string;
  machine: string;
  date: string;
  quick?: boolean;
  /** Wall time of the whole suite, seconds. */
  seconds?: number;
  /** Modules re-run alone (`--only`/`--skip`) after this file's full run, and when. */
  reran?: string[];
  /** Modules that failed or were missing, with the reason. */
  problems?: string[];
  rows: Row[];
}

export function writeResults(rows: Row[], dir: string, extra: Partial<ResultsFile> = {}): string {
  mkdirSync(dir, { recursive: true });
  const runtime = runtimeName();
  const file = join(dir, `${runtime.split(" ")[0]}.json`);
  const out: ResultsFile = { runtime, machine: machine(), date: new Date().toISOString(), ...extra, rows };
  writeFileSync(file, JSON.stringify(out, null, 2) + "\n");
  return file;
}
