/**
 * Scale (issue 9): localized repair at a million keys, the cost of keeping the range
 * summary, and memory per key against Yjs.
 *
 *   const rows = await runScaleBenchmarks({ quick: false, onProgress: console.error });
 *   node --expose-gc --import tsx bench/scale.ts [--quick]      bun bench/scale.ts [--quick]
 *
 * - Repair: two in-memory nodes hold the same N keys (100-byte values, N = 1M; quick
 *   100k); one response loses one entry on the wire (`dropOneEntry`); the next round
 *   detects the root mismatch and repairs. Reported: bytes of the repair envelopes
 *   against the store's key + value bytes (target < 1 %), round trips of the repairing
 *   `syncOnce` (target ≤ 3), entries resent, wall time. Upstream resends everything (100 %).
 * - Put throughput: `ReplicaState.applyOne` (a local write minus admission and log) into
 *   an index with the summary kept vs switched off (`createMergeIndex({ summary: false })`),
 *   same keys and values, interleaved runs, best of 3 (target: ≥ 0.90x).
 * - Memory per key at 1M: bench/memory.ts (wavekv node vs `Y.Map` vs `Map`), each
 *   contender in its own child process.
 */
import { decodeEnvelope } from "../src/sync/envelope.js";
import { MemoryNetwork, dropOneEntry, type NetworkMessage } from "../src/transport/memory.js";
import { createMergeIndex } from "../src/index/kernel-index.js";
import { Node } from "../src/node/node.js";
import { ReplicaState } from "../src/state/replica.js";
import { SyncManager } from "../src/node/manager.js";
import { benchKeys, benchValue, collectGarbage } from "./measure.js";
import { runMemoryBenchmarks } from "./memory.js";
import { formatTable, withRatios, withVerdicts, type BenchFn, type Row } from "./report.js";

const VALUE_BYTES = 100;

async function repairRows(n: number, group: string, onProgress?: (m: string) => void): Promise<Row[]> {
  let tamper: ((m: NetworkMessage) => Uint8Array | undefined) | undefined;
  const net = new MemoryNetwork({ seed: 9, tamper: (m) => tamper?.(m) });
  const nodes: Node[] = [];
  const syncs: SyncManager[] = [];
  for (const id of [1, 2]) {
    const node = await Node.open({ id, peers: [3 - id], limits: { maxKeys: n + 100 }, sync: { digestCheckRounds: 1 } });
    const sync = new SyncManager(node, net.transport(id), { push: false, timeoutMs: 600_000, onWarning: () => undefined });
    net.register(id, sync);
    nodes.push(node);
    syncs.push(sync);
  }
  const [a, b] = nodes as [Node, Node];
  const keys = benchKeys(n);
  const value = benchValue(VALUE_BYTES, 1);
  let t = performance.now();
  for (let i = 0; i < n; i++) await b.put(keys[i]!, value);
  onProgress?.(`scale: ${n} puts in ${(performance.now() - t).toFixed(0)} ms; bootstrapping the peer`);
  t = performance.now();
  while (a.status().keys < n) await syncs[0]!.syncOnce();
  onProgress?.(`scale: bootstrap of ${n} keys in ${(performance.now() - t).toFixed(0)} ms`);
  const storeBytes = b.status().keys * VALUE_BYTES + keys.reduce((s, k) => s + k.length, 0);
  const dropper = dropOneEntry({ from: 2, to: 1 });
  tamper = dropper;
  for (let i = 0; i < 10; i++) await b.put(`late/${i}`, value);
  await syncs[0]!.syncOnce();
  if (dropper.dropped.length !== 1) throw new Error("no entry was dropped");
  const meter = { bytes: 0, entries: 0 };
  tamper = (m) => {
    const env = decodeEnvelope(m.body);
    if (env.repairBuckets !== undefined || env.summaryGroups !== undefined || env.summaryBuckets !== undefined) {
      meter.bytes += m.body.length;
      if (env.repairBuckets !== undefined) meter.entries += env.entries.length;
    }
    return undefined;
  };
  t = performance.now();
  const [r] = await syncs[0]!.syncOnce();
  const ms = performance.now() - t;
  const equal = a.summaryRoot() === b.summaryRoot() && a.digest() === b.digest();
  if (!r?.repaired || !equal) throw new Error(`repair did not converge (repaired ${r?.repaired}, equal ${equal})`);
  onProgress?.(`scale: repair ${meter.bytes} B, ${meter.entries} entries, ${r.pages} round trips, ${ms.toFixed(0)} ms`);
  for (const s of syncs) await s.stop();
  for (const node of nodes) await node.close();
  const pct = (100 * meter.bytes) / storeBytes;
  return [
    { group, name: "bucket repair bytes / store bytes", value: pct, unit: "%", lower: true, target: "<= 1 %", met: pct < 1, note: `${meter.bytes} B of ${storeBytes} B key+value (upstream full reset: 100 %)` },
    { group, name: "bucket repair round trips", value: r.pages, unit: "round trips", lower: true, target: "<= 3 round trips", met: r.pages <= 3, note: "detection round + bucket hashes + entries, one syncOnce" },
    { group, name: "bucket repair entries resent", value: meter.entries, unit: "entries", lower: true, note: `one bucket holds ~${Math.round(n / 4096)} keys` },
    { group, name: "bucket repair wall time", value: ms, unit: "ms", lower: true, note: "the repairing syncOnce, in memory" },
  ];
}

async function putRows(n: number, group: string, onProgress?: (m: string) => void): Promise<Row[]> {
  const keys = benchKeys(n);
  const values = Array.from({ length: 64 }, (_, i) => benchValue(VALUE_BYTES, i));
  /** ms for n puts into a fresh state (the state's creation and disposal not timed). */
  const run = (summary: boolean): number => {
    const state = new ReplicaState(1, createMergeIndex({ summary }));
    const t = performance.now();
    for (let i = 0; i < n; i++) state.applyOne(keys[i]!, values[i & 63]!, 1_700_000_000_000 + i, 1, i + 1);
    const ms = performance.now() - t;
    state.dispose();
    collectGarbage();
    return ms;
  };
  // Interleaved, best of 3 each: the machine is shared, so alternate to share its noise.
  let on = Infinity, off = Infinity;
  for (let rep = 0; rep < 3; rep++) {
    off = Math.min(off, run(false));
    on = Math.min(on, run(true));
  }
  // The whole public put (in memory: validation, stamping, apply, watch bookkeeping) with
  // the summary kept, to express the summary's cost as a share of a put.
  const node = await Node.open({ id: 1, limits: { maxKeys: n + 1 } });
  const t = performance.now();
  for (let i = 0; i < n; i++) await node.put(keys[i]!, values[i & 63]!);
  const putMs = performance.now() - t;
  await node.close();
  const share = (100 * Math.max(0, on - off)) / putMs;
  onProgress?.(`scale: ${n} puts: summary on ${on.toFixed(0)} ms, off ${off.toFixed(0)} ms; Node.put ${putMs.toFixed(0)} ms`);
  const OFF = "ReplicaState.applyOne, summary off";
  return withRatios([
    { group, name: OFF, value: n / (off / 1000), unit: "puts/s", note: "the in-memory core of a put: LWW decision + install, 100 B values" },
    { group, name: "ReplicaState.applyOne, summary kept", value: n / (on / 1000), unit: "puts/s", baseline: OFF, target: ">= 0.90x", note: "+ value staged into WASM, its hash, ten word mixes, one bucket XOR" },
    { group, name: "Node.put (in memory), summary kept", value: n / (putMs / 1000), unit: "puts/s", note: "awaited one by one" },
    { group, name: "summary upkeep / Node.put time", value: share, unit: "%", lower: true, target: "<= 10 %", met: share <= 10, note: "(applyOne on − off) / Node.put, same keys and values" },
  ]);
}

export const runScaleBenchmarks: BenchFn = async ({ quick, onProgress }) => {
  const n = quick ? 100_000 : 1_000_000;
  const tag = quick ? `quick: ${n / 1000}k keys` : "1M keys";
  const rows: Row[] = [];
  rows.push(...(await repairRows(n, `scale: one diverged key (${tag}, 100 B values)`, onProgress)));
  collectGarbage();
  rows.push(...(await putRows(n, `scale: put with vs without the range summary (${tag})`, onProgress)));
  rows.push(...(await runMemoryBenchmarks({ quick, onProgress })));
  return withVerdicts(rows);
};

const argv = process.argv;
if ((import.meta as { main?: boolean }).main ?? argv[1]?.endsWith("scale.ts")) {
  const rows = await runScaleBenchmarks({ quick: argv.includes("--quick"), onProgress: (m) => console.error(m) });
  console.log(formatTable(rows));
}
