/**
 * The embedded store in memory: put, get and scan against a plain JS Map (the ceiling).
 *
 *   node --import tsx bench/store.ts      bun bench/store.ts
 */
import { Node } from "../src/node.js";
import { formatTable, withRatios, type BenchFn, type Row } from "./report.js";

function rate(ops: number, ms: number): number {
  return (ops / ms) * 1000;
}

async function time(fn: () => Promise<void> | void): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

export const runStoreBenchmarks: BenchFn = async ({ quick, onProgress }) => {
  const n = quick ? 20_000 : 100_000;
  const keys = Array.from({ length: n }, (_, i) => `user/${i.toString(36)}/profile`);
  const value = new Uint8Array(100).fill(7);
  const rows: Row[] = [];
  const best = async (label: string, fn: () => Promise<void> | void, reps = 3) => {
    let ms = Infinity;
    for (let r = 0; r < reps; r++) ms = Math.min(ms, await time(fn));
    onProgress?.(`${label}: ${ms.toFixed(1)} ms`);
    return ms;
  };

  onProgress?.(`store: ${n} keys, 100-byte values`);
  const mapPut = await best("Map.set", () => {
    const m = new Map<string, { value: Uint8Array; timestamp: number; node: number; seq: number }>();
    for (let i = 0; i < n; i++) m.set(keys[i]!, { value, timestamp: Date.now(), node: 1, seq: i + 1 });
  });
  let node: Node | null = null;
  const nodePut = await best("node.put", async () => {
    await node?.close();
    node = await Node.open({ id: 1 });
    for (let i = 0; i < n; i++) await node.put(keys[i]!, value);
  });
  rows.push({ group: "store in memory", name: "Map.set (ceiling)", value: rate(n, mapPut), unit: "ops/s" });
  rows.push({ group: "store in memory", name: "Node.put", value: rate(n, nodePut), unit: "ops/s", baseline: "Map.set (ceiling)", target: ">= 0.30x", met: nodePut > 0 && mapPut / nodePut >= 0.3 });

  const m = new Map(keys.map((k) => [k, { value }]));
  const mapGet = await best("Map.get", () => { for (let i = 0; i < n; i++) m.get(keys[i]!); });
  const nodeGet = await best("node.get", () => { for (let i = 0; i < n; i++) node!.get(keys[i]!); });
  rows.push({ group: "store in memory", name: "Map.get (ceiling)", value: rate(n, mapGet), unit: "ops/s" });
  rows.push({ group: "store in memory", name: "Node.get", value: rate(n, nodeGet), unit: "ops/s", baseline: "Map.get (ceiling)" });
  const nodeScan = await best("node.scan", () => { let c = 0; for (const _ of node!.scan("user/")) c++; if (c !== n) throw new Error("scan count"); });
  rows.push({ group: "store in memory", name: "Node.scan (entries/s)", value: rate(n, nodeScan), unit: "entries/s" });
  await (node as Node | null)?.close();
  return withRatios(rows);
};

if (import.meta.main ?? process.argv[1]?.endsWith("store.ts")) {
  const rows = await runStoreBenchmarks({ quick: process.argv.includes("--quick"), onProgress: (m) => console.error(m) });
  console.log(formatTable(rows));
}
