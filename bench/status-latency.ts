/**
 * Does one peer's load block the node (issue 15 item 10)? A real HTTP node (serveHttp on
 * 127.0.0.1, a shared secret) in a child process of the current runtime receives
 * maximum-size signed pushes (MAX_ENVELOPE_ENTRIES entries each, every push overwriting
 * the same keys with newer stamps, so the store stays at one envelope's worth of keys)
 * back to back, while this process polls GET /status; p50/p99 of /status with and
 * without that load. Target: p99 ≤ 100 ms under load (the node merges large envelopes in
 * slices, src/node/manager.ts). /status recomputes the full SHA-256 digest after every change,
 * which under continuous writes every poll pays: so the same is measured for a request
 * that costs nothing itself (GET of a missing key: the event loop's responsiveness), and
 * one row says what `Node.status()` alone costs after a change at that store size.
 *
 *   node --import tsx bench/status-latency.ts [--quick]      bun bench/status-latency.ts [--quick]
 *   (child) … bench/status-latency.ts --child               prints the server's URL
 *
 * The node, the load generator and the poller are three processes, so neither the
 * pushes' encoding and signing nor the poller's own work is charged to the node; the
 * envelopes are encoded before the load starts and signed per send.
 *
 *   (child) … bench/status-latency.ts --child               the node; prints its URL
 *   (child) … bench/status-latency.ts --pusher URL COUNT    prints "ready", waits for a line, pushes, prints ms
 */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { signRequest } from "../src/transport/auth.js";
import { ENVELOPE_VERSION, MAX_ENVELOPE_ENTRIES, encodeEnvelope } from "../src/sync/envelope.js";
import { HttpTransport, serveHttp } from "../src/transport/http.js";
import { Node } from "../src/node/node.js";
import { SyncManager } from "../src/node/manager.js";
import { benchFile, benchKey, benchValue, isBun } from "./measure.js";
import { formatTable, withVerdicts, type BenchFn, type Row } from "./report.js";

export const GROUP = "GET /status latency under maximum-size signed pushes";
const SECRET = "status-latency-bench-secret-0123456789";
const SENDER_UUID = "00000000-0000-4000-8000-00000000b0b0";
const VALUE_BYTES = 32;

/** Child: one node (id 1) served over HTTP; its URL on stdout; runs until killed. */
async function child(): Promise<void> {
  const node = await Node.open({ id: 1, limits: { maxKeys: 10_000_000, maxTotalBytes: 4 * 2 ** 30 } });
  const sync = new SyncManager(node, new HttpTransport({ secret: SECRET }), { push: false, onWarning: () => undefined });
  const server = await serveHttp(sync, { node, secret: SECRET, host: "127.0.0.1", port: 0, maxBodyBytes: 64 << 20, onWarning: () => undefined });
  console.log(server.url);
}

/** Pusher child: encodes `count` pushes, says "ready", and on a line from stdin pushes them back to back; prints the ms. */
async function pusher(url: string, count: number): Promise<void> {
  const bodies = pushes(count);
  console.log("ready");
  await new Promise((resolve) => createInterface({ input: process.stdin }).once("line", resolve));
  const t = performance.now();
  for (const body of bodies) {
    const res = await fetch(`${url}/push`, { method: "POST", body: body as Uint8Array<ArrayBuffer>, headers: signRequest(SECRET, "POST", "/push", body, 1) });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`POST /push answered ${res.status}`);
  }
  console.log(String(performance.now() - t));
  process.exit(0);
}

/** A child of the current runtime running this file with `args`; resolves once it printed its first line. */
async function spawnSelf(args: string[]): Promise<{ first: string; lines: ReturnType<typeof createInterface>; proc: ReturnType<typeof spawn> }> {
  const argv = isBun ? [benchFile("status-latency.ts"), ...args] : ["--import", "tsx", benchFile("status-latency.ts"), ...args];
  const proc = spawn(process.execPath, argv, { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: proc.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once("line", resolve);
    proc.once("exit", (code) => reject(new Error(`status-latency child ${args[0]} exited with ${code}`)));
  });
  return { first: first.trim(), lines, proc };
}

async function startChild(): Promise<{ url: string; stop(): void }> {
  const { first, proc } = await spawnSelf(["--child"]);
  return { url: first, stop: () => { proc.kill("SIGKILL"); } };
}

/** Pushes of `MAX_ENVELOPE_ENTRIES` entries each, as node 2: the same keys, each push stamped later (every entry wins). */
function pushes(n: number): Uint8Array[] {
  const value = benchValue(VALUE_BYTES, 1);
  const now = Date.now() - n;
  return Array.from({ length: n }, (_, p) => encodeEnvelope({
    version: ENVELOPE_VERSION, senderId: 2, senderUuid: SENDER_UUID, acks: new Map(), pushOnly: true,
    entries: Array.from({ length: MAX_ENVELOPE_ENTRIES }, (_, i) => ({ key: benchKey(i), value, timestamp: now + p, node: 2, seq: p * MAX_ENVELOPE_ENTRIES + i + 1 })),
  }));
}

/** Median cost of Node.status() right after a change, with `keys` keys (the digest is recomputed). */
async function statusCost(keys: number): Promise<number> {
  const node = await Node.open({ id: 3 });
  const value = benchValue(VALUE_BYTES, 2);
  for (let i = 0; i < keys; i++) await node.put(benchKey(i), value);
  const xs: number[] = [];
  for (let i = 0; i < 7; i++) {
    await node.put(benchKey(i), value);
    const t = performance.now();
    node.status();
    xs.push(performance.now() - t);
  }
  await node.close();
  return xs.sort((a, b) => a - b)[3]!;
}

const PROBES = { status: ["/status", 200], missing: ["/kv/__bench_missing_key", 404] } as const;
type Probe = keyof typeof PROBES;

async function probeOnce(url: string, probe: Probe): Promise<number> {
  const [path, want] = PROBES[probe];
  const t = performance.now();
  const res = await fetch(url + path, { headers: signRequest(SECRET, "GET", path, undefined, 1) });
  await res.arrayBuffer();
  if (res.status !== want) throw new Error(`GET ${path} answered ${res.status}`);
  return performance.now() - t;
}

/** Polls /status and the missing key in turn, every `gapMs`, until `until()` is true; the latencies of each. */
async function poll(url: string, until: () => boolean, gapMs: number, min: number): Promise<Record<Probe, number[]>> {
  const out: Record<Probe, number[]> = { status: [], missing: [] };
  while (!until() || out.status.length < min) {
    for (const probe of ["status", "missing"] as const) {
      out[probe].push(await probeOnce(url, probe));
      await new Promise((r) => setTimeout(r, gapMs));
    }
  }
  return out;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export const runStatusLatencyBenchmarks: BenchFn = async ({ quick, onProgress }) => {
  const count = quick ? 4 : 12;
  const server = await startChild();
  try {
    // Idle: the same number of samples the loaded run takes at least.
    for (let i = 0; i < 20; i++) await probeOnce(server.url, i % 2 === 0 ? "status" : "missing"); // warm-up
    const idle = await poll(server.url, () => true, 5, quick ? 100 : 300);
    onProgress?.(`status-latency: encoding ${count} pushes of ${MAX_ENVELOPE_ENTRIES} entries (pusher process)`);
    const load = await spawnSelf(["--pusher", server.url, String(count)]);
    let done = false;
    const finished = new Promise<number>((resolve, reject) => {
      load.lines.once("line", (l) => resolve(Number(l)));
      load.proc.once("exit", (code) => reject(new Error(`pusher exited with ${code}`)));
    }).finally(() => { done = true; });
    onProgress?.(`status-latency: ${count} pushes while polling /status`);
    load.proc.stdin!.write("go\n");
    const loaded = await poll(server.url, () => done, 5, 10);
    const pushMs = await finished;
    const rows: Row[] = [];
    const envBytes = pushes(1)[0]!.length;
    for (const probe of ["status", "missing"] as const) {
      const what = probe === "status" ? "GET /status" : "GET of a missing key";
      for (const [name, xs] of [["idle", idle[probe]], ["under load", loaded[probe]]] as const) {
        const s = [...xs].sort((a, b) => a - b);
        rows.push({ group: GROUP, name: `${what}, ${name}: p50`, value: quantile(s, 0.5), unit: "ms", note: `${s.length} requests` });
        rows.push({ group: GROUP, name: `${what}, ${name}: p99`, value: quantile(s, 0.99), unit: "ms", target: name === "under load" ? "<= 100 ms" : undefined });
      }
    }
    rows.push({ group: GROUP, name: "pushes merged (each MAX_ENVELOPE_ENTRIES entries)", value: (count * MAX_ENVELOPE_ENTRIES) / (pushMs / 1000), unit: "entries/s", note: `${count} pushes of ${(envBytes / 2 ** 20).toFixed(1)} MiB` });
    onProgress?.("status-latency: Node.status() cost after a change");
    rows.push({ group: GROUP, name: `Node.status() after a change, ${MAX_ENVELOPE_ENTRIES} keys (in process)`, value: await statusCost(MAX_ENVELOPE_ENTRIES), unit: "ms", note: "full SHA-256 digest recomputed: what each /status pays while writes arrive" });
    return withVerdicts(rows);
  } finally {
    server.stop();
  }
};

if (process.argv.includes("--child")) {
  await child();
} else if (process.argv.includes("--pusher")) {
  const i = process.argv.indexOf("--pusher");
  await pusher(process.argv[i + 1]!, Number(process.argv[i + 2]));
} else if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith("bench/status-latency.ts")) {
  const rows = await runStatusLatencyBenchmarks({ quick: process.argv.includes("--quick"), onProgress: (m) => console.error(m) });
  console.log(formatTable(rows));
}
