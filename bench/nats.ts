/**
 * NATS against an HTTP mesh (issue 20, "NATS as a transport"): N in-process nodes (32; 8
 * with --quick) on this runtime, one write at a time on node 1, each waited for on every
 * node before the next. Rows: bytes the origin sends per write (push bodies; rounds are
 * held off with a long interval) and the time until all N nodes hold the write.
 * HTTP: every node serves on 127.0.0.1 and pushes to its N-1 peers. NATS: one local
 * nats-server (the Debian package), every node publishes a write once.
 * Without nats-server nothing is measured: the module says so and returns no rows.
 *
 *   node --import tsx bench/nats.ts [--quick]      bun bench/nats.ts [--quick]
 */
import { Node } from "../src/node/node.js";
import { SyncManager } from "../src/node/manager.js";
import { HttpTransport, serveHttp, type HttpServer } from "../src/transport/http.js";
import { NatsTransport } from "../src/transport/nats.js";
import { natsServerPath, startNats } from "../test/helpers/nats-server.js";
import { formatTable, withRatios, withVerdicts, type BenchFn, type Row } from "./report.js";

export const GROUP = "one write reaching N in-process nodes: HTTP mesh against NATS (localhost)";
const SECRET = "nats-bench-secret-0123456789";
const quiet = () => undefined;
const TUNING = { intervalMs: 600_000, timeoutMs: 10_000, pushWindowMs: 1, onWarning: quiet };

interface Cluster { nodes: Node[]; origin: SyncManager; originBytes(): number; close(): Promise<void> }

/** Pushes the origin finished (sent, failed or skipped): the next write waits for them, or it would be skipped. */
const pushesDone = (s: SyncManager) => s.stats.pushesSent + s.stats.pushFailures + s.stats.pushSkipped;

async function httpMesh(n: number): Promise<Cluster> {
  const nodes: Node[] = [], syncs: SyncManager[] = [], servers: HttpServer[] = [], ts: HttpTransport[] = [];
  for (let id = 1; id <= n; id++) {
    const node = await Node.open({ id, peers: Array.from({ length: n }, (_, i) => i + 1).filter((p) => p !== id) });
    const t = new HttpTransport({ secret: SECRET, timeoutMs: 10_000 });
    const sync = new SyncManager(node, t, TUNING);
    nodes.push(node); syncs.push(sync); ts.push(t);
    servers.push(await serveHttp(sync, { node, secret: SECRET, onWarning: quiet }));
  }
  for (const t of ts) servers.forEach((s, i) => t.learnPeer(i + 1, s.url));
  for (const s of syncs) s.start();
  return {
    nodes,
    origin: syncs[0]!,
    originBytes: () => syncs[0]!.stats.bytesSent,
    async close() {
      for (const s of syncs) await s.stop();
      for (const s of servers) await s.close();
      for (const x of nodes) await x.close();
    },
  };
}

async function natsCluster(n: number, url: string): Promise<Cluster> {
  const nodes: Node[] = [], syncs: SyncManager[] = [], ts: NatsTransport[] = [];
  for (let id = 1; id <= n; id++) {
    const node = await Node.open({ id });
    const t = await NatsTransport.connect({ servers: url, cluster: "bench", node: id, secret: SECRET, announceMs: 500, maxPending: 256, onWarning: quiet });
    const sync = new SyncManager(node, t, TUNING);
    await t.serve(sync, { membership: node }); // announced ids: discovered members (31 < maxDiscoveredPeers 64)
    nodes.push(node); syncs.push(sync); ts.push(t);
  }
  while (nodes.some((x) => x.peers().length < n - 1)) await new Promise((r) => setTimeout(r, 50));
  for (const s of syncs) s.start();
  return {
    nodes,
    origin: syncs[0]!,
    originBytes: () => ts[0]!.stats.bytesSent,
    async close() {
      for (const s of syncs) await s.stop();
      for (const t of ts) await t.close();
      for (const x of nodes) await x.close();
    },
  };
}

/** Median ms until all nodes hold each write, and origin bytes per write. */
async function measure(c: Cluster, writes: number, label: string): Promise<{ ms: number; bytes: number }> {
  await new Promise((r) => setTimeout(r, 1_000)); // start rounds settle
  const times: number[] = [];
  let bytes = 0;
  for (let i = -5; i < writes; i++) {
    const key = `${label}/${i}`;
    const b0 = c.originBytes(), p0 = pushesDone(c.origin);
    const t0 = performance.now();
    await c.nodes[0]!.put(key, "x".repeat(100));
    while (c.nodes.some((x) => x.get(key) === undefined)) {
      if (performance.now() - t0 > 30_000) throw new Error(`${label}: write ${i} not on every node after 30 s`);
      await new Promise((r) => setImmediate(r));
    }
    const ms = performance.now() - t0;
    while (pushesDone(c.origin) - p0 < c.nodes.length - 1 && performance.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 1));
    if (i >= 0) { times.push(ms); bytes += c.originBytes() - b0; }
  }
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)]!, bytes: bytes / writes };
}

export const runNatsBenchmarks: BenchFn = async ({ quick, onProgress }) => {
  if (!natsServerPath) {
    onProgress?.("nats: NOT MEASURED: no nats-server binary (apt-get install -y nats-server)");
    return [];
  }
  const n = quick ? 8 : 32, writes = quick ? 20 : 50;
  const srv = await startNats();
  try {
    onProgress?.(`nats: HTTP mesh, ${n} nodes, ${writes} writes`);
    const h = await httpMesh(n);
    const H = await measure(h, writes, "http").finally(() => h.close());
    onProgress?.(`nats: NATS, ${n} nodes, ${writes} writes`);
    const c = await natsCluster(n, srv.url);
    const N = await measure(c, writes, "nats").finally(() => c.close());
    const rows: Row[] = [
      { group: GROUP, name: `HTTP mesh, ${n} nodes: origin bytes per write`, value: H.bytes, unit: "B", note: "push bodies to N-1 peers, 100 B values" },
      { group: GROUP, name: `NATS, ${n} nodes: origin bytes per write`, value: N.bytes, unit: "B", baseline: `HTTP mesh, ${n} nodes: origin bytes per write`, note: "one publish per write" },
      { group: GROUP, name: `HTTP mesh, ${n} nodes: time until all hold a write (p50)`, value: H.ms, unit: "ms" },
      { group: GROUP, name: `NATS, ${n} nodes: time until all hold a write (p50)`, value: N.ms, unit: "ms", baseline: `HTTP mesh, ${n} nodes: time until all hold a write (p50)` },
    ];
    return withVerdicts(withRatios(rows));
  } finally {
    await srv.close();
  }
};

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith("bench/nats.ts")) {
  const rows = await runNatsBenchmarks({ quick: process.argv.includes("--quick"), onProgress: (m) => console.error(m) });
  console.log(formatTable(rows));
}
