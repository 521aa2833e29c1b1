/**
 * Replication through the whole stack — SyncManager, envelope codec, MemoryNetwork —
 * rather than the node calls alone (bench/peers-sync.ts measures those against Yjs and
 * Automerge).
 *
 *   const rows = await runSyncBenchmarks({ quick: true, onProgress: console.error });
 *   node --import tsx bench/sync.ts [--quick]      bun bench/sync.ts [--quick]
 *
 * - Convergence: N = 3, 8, 16, 32 in-memory nodes in a full mesh, 10k writes (distinct keys,
 *   100-byte values) spread round-robin across them, a network dropping 10 % of legs;
 *   then rounds (every node syncs with every peer, concurrently) until all digests are
 *   equal: rounds, wall time, bytes on the wire, bytes per write per receiving node
 *   against the raw key + value bytes (the floor: every write must reach N − 1 nodes),
 *   and digest repairs (PeerReport.repaired: a bucket repair, or a persistent mismatch
 *   that reset a peer's coverage — the full-state fallback; 0 repairs means no fallback).
 *   Then 4 nodes with 200-entry pages and 20 % of legs dropped: paged rounds that fail resume
 *   from their cursor (PROTOCOL §2). Issue 20's target: ≤ 2x the raw bytes at 8, 16 and 32 nodes, no fallback, and time at
 *   16 nodes no worse than without the fan-out hold-back (run beside it, `holdBack: false`). 32 nodes
 *   is the slow case (992 exchanges a round, ~15-25 s); --quick skips it.
 * - Bootstrap of a 100k-key store into an empty node, and an incremental round after 1k
 *   changes, through `SyncManager.syncOnce()` over the network (default paging). Responses
 *   carry delta-coded bodies (docs/PROTOCOL.md §2.1, negotiated by the real protocol); the
 *   bootstrap is repeated between two nodes that do not negotiate them (as with an older
 *   peer) for the bytes and time of bare bodies, and once with the keys written as
 *   100-entry batches (batch ranges kept whole by pages and merge slices).
 */
import type { SyncTuning } from "../src/sync/protocol.js";
import { MemoryNetwork } from "../src/transport/memory.js";
import { Node } from "../src/node/node.js";
import { SyncManager, type PeerReport } from "../src/node/manager.js";
import { benchKeys, benchValues, payloadBytes } from "./measure.js";
import { formatTable, withRatios, withVerdicts, type BenchFn, type Row } from "./report.js";

const VALUE_BYTES = 100;
const RAW = "raw key+value payload";

interface Member { node: Node; sync: SyncManager }

async function mesh(n: number, net: MemoryNetwork, tuning?: Partial<SyncTuning>): Promise<Member[]> {
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  const out: Member[] = [];
  for (const id of ids) {
    const node = await Node.open({ id, peers: ids.filter((p) => p !== id), sync: tuning });
    // A long deadline: the 10 % drop is the loss measured; on a loaded VM a 32-node round (992
    // exchanges in one process) outlasts the default 10 s and timed-out rounds would resend everything.
    const sync = new SyncManager(node, net.transport(id), { push: false, timeoutMs: 120_000, onWarning: () => undefined });
    net.register(id, sync);
    out.push({ node, sync });
  }
  return out;
}

const wire = (reports: PeerReport[]) => reports.reduce((s, r) => s + r.sentBytes + r.receivedBytes, 0);

async function convergence(n: number, writes: number, seed: number, tuning?: Partial<SyncTuning>, drop = 0.1): Promise<{ rounds: number; ms: number; bytes: number; raw: number; failed: number; fallbacks: number }> {
  const net = new MemoryNetwork({ seed, drop });
  const members = await mesh(n, net, tuning);
  const keys = benchKeys(writes);
  const values = benchValues(writes, VALUE_BYTES, seed);
  for (let i = 0; i < writes; i++) await members[i % n]!.node.put(keys[i]!, values[i]!);
  const converged = () => new Set(members.map((m) => m.node.digest())).size === 1;
  let rounds = 0, bytes = 0, failed = 0, fallbacks = 0;
  const t0 = performance.now();
  while (!converged()) {
    if (rounds === 50) throw new Error(`sync bench: ${n} nodes did not converge in 50 rounds (seed ${seed})`);
    const reports = (await Promise.all(members.map((m) => m.sync.syncOnce()))).flat();
    bytes += wire(reports);
    failed += reports.filter((r) => !r.ok).length;
    fallbacks += reports.filter((r) => r.repaired).length;
    rounds++;
  }
  const ms = performance.now() - t0;
  for (const m of members) await m.node.close();
  return { rounds, ms, bytes, raw: payloadBytes(keys, VALUE_BYTES), failed, fallbacks };
}

export const runSyncBenchmarks: BenchFn = async ({ quick, onProgress }) => {
  const rows: Row[] = [];
  const writes = quick ? 2_000 : 10_000;

  // ---- convergence under loss
  const g1 = `sync convergence, ${writes / 1000}k writes, 10% drop`;
  for (const n of quick ? [3, 8, 16] : [3, 8, 16, 32]) {
    if (n === 16) {
      // Issue 20: convergence at 16 nodes no worse than before the hold-back (an older build's protocol).
      const old = await convergence(n, writes, 7 + n, { holdBack: false });
      onProgress?.(`sync: ${n} nodes without hold-back converged in ${old.rounds} rounds, ${old.ms.toFixed(0)} ms, ${(old.bytes / 1e6).toFixed(1)} MB`);
      rows.push({ group: g1, name: `${n} nodes without hold-back (older builds): time to equal digests`, value: old.ms, unit: "ms", note: `${old.rounds} rounds` });
      rows.push({ group: g1, name: `${n} nodes without hold-back (older builds): wire bytes per write per receiving node`, value: old.bytes / writes / (n - 1), unit: "B/write", baseline: `${n} nodes: ${RAW} per write` });
    }
    const c = await convergence(n, writes, 7 + n);
    onProgress?.(`sync: ${n} nodes converged in ${c.rounds} rounds, ${c.ms.toFixed(0)} ms, ${(c.bytes / 1e6).toFixed(1)} MB, ${c.fallbacks} digest repairs`);
    const perWrite = c.bytes / writes / (n - 1);
    rows.push({ group: g1, name: `${n} nodes: rounds to equal digests`, value: c.rounds, unit: "rounds", lower: true, note: `${c.failed} exchanges lost of ${c.rounds * n * (n - 1)}` });
    rows.push({ group: g1, name: `${n} nodes: time to equal digests`, value: c.ms, unit: "ms", ...(n === 16 ? { baseline: `${n} nodes without hold-back (older builds): time to equal digests`, target: "<= 1.00x" } : {}) });
    rows.push({ group: g1, name: `${n} nodes: bytes on the wire`, value: c.bytes, unit: "B" });
    rows.push({ group: g1, name: `${n} nodes: ${RAW} per write`, value: c.raw / writes, unit: "B/write" });
    rows.push({
      group: g1, name: `${n} nodes: wire bytes per write per receiving node`, value: perWrite, unit: "B/write",
      baseline: `${n} nodes: ${RAW} per write`,
      // Issue 20: ≤ 2x at 8, 16 and 32 nodes; 3 nodes is the reference.
      ...(n >= 8 ? { target: "<= 2.00x" } : {}),
      note: "fan-out hold-back (docs/PROTOCOL.md §2.2): a third party's entries go to a peer two rounds after we held them, and a response leaves out our own writes our request in flight carried; the floor is one copy per receiving node",
    });
    rows.push({ group: g1, name: `${n} nodes: digest repairs (bucket repair or full-state coverage reset)`, value: c.fallbacks, unit: "resets", lower: true, ...(n >= 8 ? { target: "<= 0" } : {}) });
  }
  {
    // Paged rounds under heavy loss: a round that fails resumes from its cursor (PROTOCOL §2);
    // before, it restarted at page 1 and this case did not converge in 50 rounds.
    const c = await convergence(4, writes, 11, { maxDeltaEntries: 200 }, 0.2);
    onProgress?.(`sync: 4 nodes, 200-entry pages, 20 % drop converged in ${c.rounds} rounds, ${c.ms.toFixed(0)} ms`);
    const g = `sync convergence, ${writes / 1000}k writes, 200-entry pages, 20% drop`;
    rows.push({ group: g, name: "4 nodes, paged: rounds to equal digests", value: c.rounds, unit: "rounds", lower: true, note: `${c.failed} exchanges lost of ${c.rounds * 12}; a failed paged round resumes from its cursor` });
    rows.push({ group: g, name: "4 nodes, paged: time to equal digests", value: c.ms, unit: "ms" });
    rows.push({ group: g, name: `4 nodes, paged: ${RAW} per write`, value: c.raw / writes, unit: "B/write" });
    rows.push({ group: g, name: "4 nodes, paged: wire bytes per write per receiving node", value: c.bytes / writes / 3, unit: "B/write", baseline: `4 nodes, paged: ${RAW} per write` });
  }

  // ---- bootstrap and incremental, end to end
  const keysN = quick ? 20_000 : 100_000;
  const changes = quick ? 200 : 1_000;
  const g2 = `sync through SyncManager + MemoryNetwork, ${keysN / 1000}k keys`;
  const net = new MemoryNetwork({ seed: 1 });
  const [a, b] = await mesh(2, net);
  const keys = benchKeys(keysN);
  const values = benchValues(keysN, VALUE_BYTES, 3);
  for (let i = 0; i < keysN; i++) await b!.node.put(keys[i]!, values[i]!);
  const raw = payloadBytes(keys, VALUE_BYTES);
  let t0 = performance.now();
  const [boot] = await a!.sync.bootstrap();
  const bootMs = performance.now() - t0;
  if (!boot?.ok || a!.node.digest() !== b!.node.digest()) throw new Error(`sync bench: bootstrap did not converge (${boot?.error?.message})`);
  onProgress?.(`sync: bootstrap of ${keysN} keys: ${bootMs.toFixed(0)} ms, ${wire([boot])} B in ${boot.pages} pages`);
  rows.push({ group: g2, name: RAW, value: raw / keysN, unit: "B/key" });
  rows.push({ group: g2, name: "bootstrap: wire bytes (request + response pages)", value: wire([boot]) / keysN, unit: "B/key", baseline: RAW, target: "<= 1.10x", note: `${boot.pages} pages` });
  rows.push({ group: g2, name: "bootstrap: time", value: bootMs, unit: "ms", note: `${(keysN / bootMs * 1000 / 1e3).toFixed(0)} k keys/s, both sides, digest included` });
  {
    // The same bootstrap with bare bodies (neither side negotiates delta-coded ones).
    const oldNet = new MemoryNetwork({ seed: 1 });
    const [oa, ob] = await mesh(2, oldNet, { deltaBodies: false });
    for (let i = 0; i < keysN; i++) await ob!.node.put(keys[i]!, values[i]!);
    const t = performance.now();
    const [old] = await oa!.sync.bootstrap();
    const oldMs = performance.now() - t;
    if (!old?.ok || oa!.node.digest() !== ob!.node.digest()) throw new Error(`sync bench: bare bootstrap did not converge (${old?.error?.message})`);
    onProgress?.(`sync: bootstrap with bare bodies: ${oldMs.toFixed(0)} ms, ${wire([old])} B`);
    rows.push({ group: g2, name: "bootstrap, bare bodies (older peer): wire bytes", value: wire([old]) / keysN, unit: "B/key", baseline: RAW, note: "no delta-coded bodies negotiated" });
    rows.push({ group: g2, name: "bootstrap, bare bodies (older peer): time", value: oldMs, unit: "ms" });
    await oa!.node.close();
    await ob!.node.close();
  }
  {
    // The same keys written as 100-entry batches (node.batch): pages and merge slices then keep
    // every batch whole (docs/PROTOCOL.md §2.3) — the cost of batch ranges on a bootstrap.
    const bNet = new MemoryNetwork({ seed: 1 });
    const [ba, bb] = await mesh(2, bNet);
    for (let i = 0; i < keysN; i += 100) await bb!.node.batch(keys.slice(i, i + 100).map((key, j) => ({ type: "put" as const, key, value: values[i + j]! })));
    const t = performance.now();
    const [bt] = await ba!.sync.bootstrap();
    const bMs = performance.now() - t;
    if (!bt?.ok || ba!.node.digest() !== bb!.node.digest()) throw new Error(`sync bench: batched bootstrap did not converge (${bt?.error?.message})`);
    onProgress?.(`sync: bootstrap of ${keysN / 100} batches: ${bMs.toFixed(0)} ms, ${wire([bt])} B`);
    rows.push({ group: g2, name: "bootstrap, keys written as 100-entry batches: wire bytes", value: wire([bt]) / keysN, unit: "B/key", baseline: "bootstrap: wire bytes (request + response pages)", note: `${bt.pages} pages, ${keysN / 100} batch ranges` });
    rows.push({ group: g2, name: "bootstrap, keys written as 100-entry batches: time", value: bMs, unit: "ms", baseline: "bootstrap: time", note: "pages and slices kept whole per batch" });
    await ba!.node.close();
    await bb!.node.close();
  }

  const changedKeys = benchKeys(changes, keysN / 2);
  const changed = benchValues(changes, VALUE_BYTES, 5);
  for (let i = 0; i < changes; i++) await b!.node.put(changedKeys[i]!, changed[i]!);
  const changeRaw = payloadBytes(changedKeys, VALUE_BYTES);
  t0 = performance.now();
  const [inc] = await a!.sync.syncOnce();
  const incMs = performance.now() - t0;
  if (!inc?.ok || inc.receivedEntries !== changes) throw new Error(`sync bench: incremental round moved ${inc?.receivedEntries} entries, expected ${changes}`);
  rows.push({ group: g2, name: `${RAW} per change`, value: changeRaw / changes, unit: "B/change" });
  rows.push({ group: g2, name: `incremental round after ${changes} changes: wire bytes per change`, value: wire([inc]) / changes, unit: "B/change", baseline: `${RAW} per change`, target: "<= 1.10x" });
  rows.push({ group: g2, name: `incremental round after ${changes} changes: time`, value: incMs, unit: "ms", note: "two full-state digests dominate at this size" });
  t0 = performance.now();
  const [idle] = await a!.sync.syncOnce();
  const idleMs = performance.now() - t0;
  rows.push({ group: g2, name: "idle round (nothing to send): wire bytes", value: wire([idle!]), unit: "B", note: "request + response, digest included" });
  rows.push({ group: g2, name: "idle round: time", value: idleMs, unit: "ms" });
  await a!.node.close();
  await b!.node.close();
  return withVerdicts(withRatios(rows));
};

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith("bench/sync.ts")) {
  const rows = await runSyncBenchmarks({ quick: process.argv.includes("--quick"), onProgress: (m) => console.error(m) });
  console.log(formatTable(rows));
}
