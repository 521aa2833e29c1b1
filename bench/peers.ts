/**
 * The alternatives a user would pick instead of wavekv, measured beside it in one run:
 * durable writes (SQLite, lmdb, the raw disk) and replication (Yjs, Automerge). The
 * in-memory comparisons (Map, Y.Map, Automerge) live in bench/store.ts.
 *
 *   node --import tsx bench/peers.ts [--quick]      bun bench/peers.ts [--quick]
 */
import { runDurablePeers } from "./peers-durable.js";
import { runSyncPeers } from "./peers-sync.js";
import { formatTable, withRatios, withVerdicts, type BenchFn } from "./report.js";

export const runPeerBenchmarks: BenchFn = async (opts) => {
  const rows = [...(await runDurablePeers(opts)), ...(await runSyncPeers(opts))];
  return withVerdicts(withRatios(rows));
};

if ((import.meta as { main?: boolean }).main ?? process.argv[1]?.endsWith("peers.ts")) {
  const rows = await runPeerBenchmarks({ quick: process.argv.includes("--quick"), onProgress: (m) => console.error(m) });
  console.log(formatTable(rows));
}
