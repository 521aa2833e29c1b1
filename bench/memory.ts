/**
 * Memory per key at 1M keys (100-byte values): a wavekv in-memory node against a JS
 * `Map` of entry objects and a Yjs `Y.Map`. Each contender runs in a fresh child process
 * of the current runtime, so one contender's garbage is never charged to another.
 *
 *   node --import tsx bench/memory.ts [--quick]      bun bench/memory.ts [--quick]
 *   (child) node --expose-gc --import tsx bench/memory.ts --child wavekv 1000000
 *
 * Each put gets a fresh 100-byte `Uint8Array`, as values arrive from a caller or a
 * decoder; whatever a store keeps of them is charged to it. Reported: the RSS growth
 * (what the machine pays, WASM linear memory included) and the growth of JS heap +
 * external memory (what the JS engine accounts for; WASM memory is not in it on V8).
 */
import * as Y from "yjs";
import { Node } from "../src/node/node.js";
import { benchFile, benchKey, benchValue, collectGarbage, isBun, runChild } from "./measure.js";
import { formatTable, withRatios, withVerdicts, type BenchFn, type Row } from "./report.js";

export const GROUP = "memory per key (1M keys, 100 B values)";
const CONTENDERS = ["map", "ymap", "wavekv"] as const;
type Contender = (typeof CONTENDERS)[number];
const NAMES: Record<Contender, string> = {
  map: "Map<string, {value, timestamp, node, seq}>",
  ymap: "Y.Map",
  wavekv: "wavekv Node (in memory)",
};

interface Sample { rss: number; heap: number; ms: number }

/**
 * Memory in use once garbage is collected and the allocator has settled: Bun's allocator
 * returns freed pages to the OS on a timer (its RSS right after a GC swung 330–570 B/key
 * between runs of the same build), so every contender waits the same 1.5 s first.
 */
async function usage(): Promise<{ rss: number; heap: number }> {
  collectGarbage();
  collectGarbage();
  await new Promise((r) => setTimeout(r, 1_500));
  collectGarbage();
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed + m.external };
}

/** Runs in the child: builds one contender's store of `n` keys and prints a Sample. */
async function child(which: Contender, n: number): Promise<Sample> {
  if (!isBun && (globalThis as { gc?: unknown }).gc === undefined) throw new Error("run the child with --expose-gc");
  // Warm the code paths on a throwaway store first, so compiled code is not charged per key.
  await build(which, 2_000);
  const before = await usage();
  const t = performance.now();
  const keep = await build(which, n);
  const ms = performance.now() - t;
  const after = await usage();
  if (keep === undefined) throw new Error("nothing built");
  return { rss: (after.rss - before.rss) / n, heap: (after.heap - before.heap) / n, ms };
}

async function build(which: Contender, n: number): Promise<unknown> {
  if (which === "map") {
    const m = new Map<string, { value: Uint8Array; timestamp: number; node: number; seq: number }>();
    for (let i = 0; i < n; i++) m.set(benchKey(i), { value: benchValue(100, i), timestamp: Date.now(), node: 1, seq: i + 1 });
    return m;
  }
  if (which === "ymap") {
    const doc = new Y.Doc();
    const m = doc.getMap<Uint8Array>("kv");
    for (let i = 0; i < n; i += 1_000) doc.transact(() => { for (let j = i; j < Math.min(n, i + 1_000); j++) m.set(benchKey(j), benchValue(100, j)); });
    return doc;
  }
  const node = await Node.open({ id: 1, limits: { maxKeys: n + 1 } });
  for (let i = 0; i < n; i++) await node.put(benchKey(i), benchValue(100, i));
  return node;
}

export const runMemoryBenchmarks: BenchFn = async ({ quick, onProgress }) => {
  const n = quick ? 100_000 : 1_000_000;
  const group = quick ? `memory per key (quick: ${n / 1000}k keys, 100 B values)` : GROUP;
  const samples = new Map<Contender, Sample>();
  for (const which of CONTENDERS) {
    onProgress?.(`memory: ${NAMES[which]}, ${n} keys in a child process`);
    const out = await runChild(benchFile("memory.ts"), ["--child", which, String(n)], { timeoutMs: 300_000 });
    const s = JSON.parse(out.trim().split("\n").pop()!) as Sample;
    onProgress?.(`memory: ${NAMES[which]}: ${s.rss.toFixed(0)} B/key RSS, ${s.heap.toFixed(0)} B/key heap+external, built in ${s.ms.toFixed(0)} ms`);
    samples.set(which, s);
  }
  const rows: Row[] = [];
  const Y_RSS = `${NAMES.ymap}, RSS`;
  const Y_HEAP = `${NAMES.ymap}, heap + external`;
  for (const which of CONTENDERS) {
    const s = samples.get(which)!;
    const own = which === "wavekv";
    rows.push({ group, name: `${NAMES[which]}, RSS`, value: s.rss, unit: "B/key", ...(which === "ymap" ? {} : { baseline: Y_RSS }), ...(own ? { target: "<= 0.60x" } : {}), note: `RSS growth after a full GC; built in ${s.ms.toFixed(0)} ms` });
  }
  for (const which of CONTENDERS) {
    const s = samples.get(which)!;
    rows.push({ group, name: `${NAMES[which]}, heap + external`, value: s.heap, unit: "B/key", ...(which === "ymap" ? {} : { baseline: Y_HEAP }), note: which === "wavekv" ? (isBun ? "includes all of the WASM linear memory (JSC counts it as external), touched or not" : "excludes WASM linear memory (V8 does not count it; see the RSS row)") : undefined });
  }
  return withVerdicts(withRatios(rows));
};

const argv = process.argv;
const childAt = argv.indexOf("--child");
if (childAt >= 0) {
  const sample = await child(argv[childAt + 1] as Contender, Number(argv[childAt + 2]));
  console.log(JSON.stringify(sample));
  process.exit(0);
} else if ((import.meta as { main?: boolean }).main ?? argv[1]?.endsWith("memory.ts")) {
  const rows = await runMemoryBenchmarks({ quick: argv.includes("--quick"), onProgress: (m) => console.error(m) });
  console.log(formatTable(rows));
}
