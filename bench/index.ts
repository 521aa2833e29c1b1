/**
 * `npm run bench`: every benchmark module that exists, each in a fresh child process of
 * the same runtime, one table at the end, `bench/results/<runtime>.json`, then `bench/RESULTS.md` + SVG charts regenerated
 * from every results file present (Node and Bun side by side).
 *
 *   node --import tsx bench/index.ts [--quick] [--only store,peers] [--skip memory]
 *   bun bench/index.ts [--quick]
 *   node --import tsx bench/index.ts --all [--quick]   # Node, then Bun (node_modules/.bin/bun)
 *   node --import tsx bench/index.ts --document        # only regenerate RESULTS.md
 *
 * Progress goes to stderr, the table to stdout. A module that is missing or throws is
 * listed under "problems" in the JSON and in RESULTS.md; the rest still run. With
 * `--only`/`--skip` the results file keeps the other modules' rows from the last run.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeResultsDocument } from "./markdown.js";
import { isBun } from "./measure.js";
import { formatTable, machine, runtimeName, withRatios, withVerdicts, writeResults, type BenchFn, type ResultsFile, type Row } from "./report.js";
import { UPSTREAM_GROUP, upstreamRows } from "./upstream.js";

/** Module file → its exported entry point. Owners: kernels helper-1, durable helper-2, sync helper-3. */
const MODULES: { name: string; file: string; fn: string }[] = [
  { name: "kernels", file: "kernels.ts", fn: "runKernelBenchmarks" },
  { name: "store", file: "store.ts", fn: "runStoreBenchmarks" },
  { name: "durable", file: "durable.ts", fn: "runDurableBenchmarks" },
  { name: "sync", file: "sync.ts", fn: "runSyncBenchmarks" },
  { name: "peers", file: "peers.ts", fn: "runPeerBenchmarks" },
  { name: "memory", file: "memory.ts", fn: "runMemoryBenchmarks" },
  { name: "recovery", file: "recovery.ts", fn: "runRecoveryBenchmarks" },
  { name: "disk", file: "disk.ts", fn: "runDiskBenchmarks" },
  { name: "scale", file: "scale.ts", fn: "runScaleBenchmarks" },
  { name: "status-latency", file: "status-latency.ts", fn: "runStatusLatencyBenchmarks" },
  { name: "browser", file: "browser.ts", fn: "runBrowserBenchmarks" },
  { name: "push", file: "push.ts", fn: "runPushBenchmarks" },
  { name: "nats", file: "nats.ts", fn: "runNatsBenchmarks" },
];

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const RESULTS_DIR = here("results");
const RESULTS_MD = here("RESULTS.md");
const ANALYSIS_MD = here("analysis.md");

function listArg(args: string[], flag: string): string[] | undefined {
  const i = args.findIndex((a) => a === flag || a.startsWith(`${flag}=`));
  if (i < 0) return undefined;
  const v = args[i]!.includes("=") ? args[i]!.split("=")[1]! : args[i + 1] ?? "";
  return v.split(",").map((s) => s.trim()).filter(Boolean);
}

/** `--all`: the suite on Node, then on Bun, each a child with the same arguments. */
function runAll(args: string[]): number {
  const rest = args.filter((a) => a !== "--all");
  const bun = here("../node_modules/.bin/bun");
  const runs: [string, string[]][] = [
    [isBun ? "node" : process.execPath, ["--import", "tsx", here("index.ts"), ...rest]],
    [existsSync(bun) ? bun : "bun", [here("index.ts"), ...rest]],
  ];
  let status = 0;
  for (const [cmd, argv] of runs) {
    console.error(`\n=== ${cmd} ${argv.join(" ")}`);
    const r = spawnSync(cmd, argv, { stdio: "inherit" });
    if (r.status !== 0) status = r.status ?? 1;
  }
  return status;
}

/**
 * Each module runs in a fresh child of the current runtime: one module's heap, JIT state
 * or a failure that leaves the shared WASM instance unusable cannot touch the next one.
 * The child writes its rows to a temporary file; its progress goes straight to stderr.
 */
async function runModuleInChild(name: string, quick: boolean, t0: number): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), "wavekv-bench-rows-"));
  const out = join(dir, "rows.json");
  const argv = [...(isBun ? [] : ["--expose-gc", "--import", "tsx"]), here("index.ts"), "--module", name, "--rows-out", out, "--t0", String(t0), ...(quick ? ["--quick"] : [])];
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(process.execPath, argv, { stdio: ["ignore", "ignore", "inherit"] });
      child.on("error", reject);
      child.on("close", (c, signal) => resolve(c ?? (signal ? -1 : null)));
    });
    if (!existsSync(out)) throw new Error(`child exited with ${code} and wrote no rows`);
    const got = JSON.parse(readFileSync(out, "utf8")) as { rows?: Row[]; error?: string };
    if (got.error) throw new Error(got.error);
    return (got.rows ?? []).map((r) => ({ ...r, value: r.value ?? NaN, ratio: r.ratio ?? undefined }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `--module name --rows-out file`: the child side of `runModuleInChild`. */
async function moduleChild(args: string[]): Promise<number> {
  const name = listArg(args, "--module")![0]!;
  const outFile = listArg(args, "--rows-out")![0]!;
  const t0 = Number(listArg(args, "--t0")?.[0] ?? Date.now());
  const m = MODULES.find((x) => x.name === name);
  const log = (msg: string) => console.error(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s]   ${msg}`);
  try {
    if (!m) throw new Error(`no bench module ${name}`);
    const mod = (await import(here(m.file))) as Record<string, unknown>;
    const fn = mod[m.fn] as BenchFn | undefined;
    if (typeof fn !== "function") throw new Error(`bench/${m.file} does not export ${m.fn}`);
    const rows = await fn({ quick: args.includes("--quick"), onProgress: log });
    writeFileSync(outFile, JSON.stringify({ rows }));
  } catch (err) {
    log(`${name} FAILED: ${err instanceof Error ? err.stack : String(err)}`);
    writeFileSync(outFile, JSON.stringify({ error: err instanceof Error ? err.message : String(err) }));
  }
  return 0;
}

async function main(args: string[]): Promise<number> {
  if (args.includes("--all")) return runAll(args);
  if (args.includes("--module")) return moduleChild(args);
  if (args.includes("--document")) {
    for (const f of writeResultsDocument(RESULTS_DIR, RESULTS_MD, ANALYSIS_MD)) console.error(`wrote ${f}`);
    return 0;
  }
  const quick = args.includes("--quick");
  const only = listArg(args, "--only");
  const skip = listArg(args, "--skip") ?? [];
  const selected = MODULES.filter((m) => (!only || only.includes(m.name)) && !skip.includes(m.name));
  const t0 = performance.now();
  const t0Epoch = Date.now();
  const stamp = () => `[${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s]`;
  const log = (m: string) => console.error(`${stamp()} ${m}`);
  log(`wavekv bench on ${runtimeName()}, ${machine()}${quick ? ", quick" : ""}: ${selected.map((m) => m.name).join(", ")}`);

  const rows: Row[] = [];
  const problems: string[] = [];
  for (const [i, m] of selected.entries()) {
    const path = here(m.file);
    if (!existsSync(path)) {
      problems.push(`${m.name}: bench/${m.file} does not exist yet`);
      log(`(${i + 1}/${selected.length}) ${m.name}: bench/${m.file} missing, skipped`);
      continue;
    }
    log(`(${i + 1}/${selected.length}) ${m.name} …`);
    const started = performance.now();
    try {
      const got = await runModuleInChild(m.name, quick, t0Epoch);
      // A module may re-run another's cases (scale.ts runs memory.ts): the first row of a
      // (group, case) pair is kept, so every table cell has one figure.
      let dup = 0;
      for (const r of got) {
        if (rows.some((o) => o.group === r.group && o.name === r.name)) { dup++; continue; }
        rows.push({ ...r, module: m.name });
      }
      if (dup > 0) log(`  ${m.name}: ${dup} rows repeat cases already measured by an earlier module; the earlier figures are kept`);
      log(`(${i + 1}/${selected.length}) ${m.name}: ${got.length} rows in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    } catch (err) {
      const msg = err instanceof Error ? `${err.message.split("\n")[0]}` : String(err);
      problems.push(`${m.name}: failed: ${msg}`);
      log(`(${i + 1}/${selected.length}) ${m.name} FAILED: ${msg}`);
    }
  }

  // Partial runs keep the other modules' rows from the previous results of this runtime.
  let all = rows;
  let carried: Partial<ResultsFile> = {};
  const file = `${RESULTS_DIR}/${runtimeName().split(" ")[0]}.json`;
  if ((only || skip.length > 0) && existsSync(file)) {
    const prev = JSON.parse(readFileSync(file, "utf8")) as ResultsFile;
    if (!!prev.quick === quick) {
      const ran = new Set(selected.map((m) => m.name));
      const kept = prev.rows.filter((r) => r.group !== UPSTREAM_GROUP && !ran.has(r.module ?? ""));
      all = [...kept, ...rows];
      problems.push(...(prev.problems ?? []).filter((p) => !ran.has(p.split(":")[0]!)));
      const when = new Date().toISOString().slice(11, 16);
      carried = { date: prev.date, seconds: prev.seconds, reran: [...(prev.reran ?? []), `${[...ran].join(", ")} at ${when} UTC`] };
    }
  }
  all = withVerdicts(withRatios(all.filter((r) => r.group !== UPSTREAM_GROUP)));
  all.push(...withRatios(upstreamRows(all, quick)));

  console.log(formatTable(all));
  const seconds = (performance.now() - t0) / 1000;
  const missed = all.filter((r) => r.target !== undefined && r.met === false);
  console.log(`\n${all.filter((r) => r.target !== undefined).length} targets: ${missed.length} missed${missed.length ? ` (${missed.map((r) => `${r.group} / ${r.name}`).join("; ")})` : ""}`);
  if (problems.length) console.log(`problems: ${problems.join("; ")}`);
  const out = writeResults(all, RESULTS_DIR, { quick, seconds, problems, ...carried });
  log(`wrote ${out}`);
  for (const f of writeResultsDocument(RESULTS_DIR, RESULTS_MD, ANALYSIS_MD)) log(`wrote ${f}`);
  log(`done in ${seconds.toFixed(0)} s`);
  // A missed target is a finding, not a failure; a module that could not run is.
  return problems.some((p) => p.includes(": failed:")) ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
