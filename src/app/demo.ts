/**
 * `wavekv demo`: a local 3-node cluster in child processes on 127.0.0.1 that writes on
 * every node, SIGKILLs one and restarts it from its directory, partitions one
 * (SIGSTOP: it stops answering, exactly like a cut network) and heals it, and shows
 * convergence live — a table of keys, digest prefix and replication lag per node —
 * until all digests are equal. Bounded in time; cleans up its processes and files.
 *
 *   await runDemo({ short: true, out: (line) => console.log(line) });
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { KvClient } from "./client.js";
import { PEER_ADDRESS_PREFIX, type NodeStatus } from "../core/types.js";

export interface DemoOptions {
  /**
   * Fewer writes (10 per node per phase, not 50) and shorter sync intervals (the test suite uses it).
   * @defaultValue `false`
   */
  short?: boolean;
  /**
   * Overall deadline in ms.
   * @defaultValue `120_000`, or `60_000` when `short`
   */
  timeoutMs?: number;
  /**
   * Where each line goes; without it the table redraws in place on a terminal.
   * @defaultValue a line to stdout
   */
  out?: (line: string) => void;
}

/**
 * What the table's columns count, printed once before it. `keys` is status().keys, which
 * leaves reserved keys out: without saying so, 50 writes per node next to a store that
 * also holds one `__wavekv/peers/<id>` entry per node reads as a miscount (53 vs 50).
 * `lag` is the sum over other origins of (origin's last seq − this node's ack of it);
 * pushes move no acks (PROTOCOL R3), so it trails an equal digest until the next round.
 */
const LEGEND = [
  "  keys    the demo's keys this node holds / keys written so far (the address book, one",
  `          ${PEER_ADDRESS_PREFIX}<id> entry per node, is internal and not counted)`,
  "  digest  the first 16 hex digits of the node's state hash: equal digests, same data",
  "  lag     writes made on other nodes that this node has not yet confirmed in a sync round;",
  "          pushes deliver writes sooner, so lag can stay above 0 after digests agree,",
  "          until the next round",
];

interface Proc { id: number; child: ChildProcess; url: string; dir: string }

/** Every node process a demo in this process started and that has not exited yet. */
const children = new Set<ChildProcess>();

/**
 * Sends `sig` to a node process by pid, not `child.kill`: Deno's node:child_process records
 * the first signal sent as the child's end and refuses every later kill(), so the SIGCONT
 * that heals a SIGSTOPped node (and the SIGKILL after it) never arrived. Gone already: nothing to do.
 */
function signal(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try { process.kill(child.pid, sig); } catch { /* exited meanwhile */ }
}

/** SIGCONT (a partitioned node is stopped), SIGKILL, and wait until each has exited (at most 5 s). */
async function killAll(procs: ChildProcess[]): Promise<void> {
  for (const child of procs) {
    signal(child, "SIGCONT");
    signal(child, "SIGKILL");
  }
  await Promise.all(procs.map((child) => (child.exitCode !== null || child.signalCode !== null ? undefined
    : new Promise((r) => { const t = setTimeout(r, 5_000); child.once("exit", () => { clearTimeout(t); r(undefined); }); }))));
}

/**
 * SIGINT or SIGTERM while a demo runs: its node processes must not outlive it (orphans
 * would keep their ports and the data directory). Kill them and wait for them, remove the
 * files, then let the signal do what it would have done without us (re-raised, our
 * listener gone: the process ends as signalled). Returns the uninstaller.
 */
function stopChildrenOnSignal(root: string): () => void {
  const uninstall = () => {
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
  };
  function onSignal(sig: NodeJS.Signals): void {
    uninstall();
    void killAll([...children]).finally(() => {
      rmSync(root, { recursive: true, force: true });
      process.kill(process.pid, sig);
    });
  }
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return uninstall;
}

function cliCommand(): string[] {
  // Run the CLI the way this process runs: dist/app/cli.js under node, src/app/cli.ts under tsx or bun.
  const self = fileURLToPath(import.meta.url);
  const cli = self.replace(/demo\.(ts|js)$/, (_m, ext) => `cli.${ext}`);
  return [process.execPath, ...process.execArgv, cli];
}

async function startNode(id: number, root: string, secretFile: string, seed: string | undefined, interval: number): Promise<Proc> {
  const dir = join(root, `node${id}`);
  const [cmd, ...args] = cliCommand();
  const argv = [...args, "serve", "--id", String(id), "--port", "0", "--dir", dir, "--secret-file", secretFile, "--interval", String(interval), "--fsync", "always"];
  if (seed) argv.push("--peer", seed);
  const child = spawn(cmd!, argv, { stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  child.once("exit", () => children.delete(child));
  let early = (_code: number | null) => {};
  const url = await new Promise<string>((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => { signal(child, "SIGKILL"); reject(new Error(`node ${id} did not start within 20 s:\n${buf}`)); }, 20_000);
    const onData = (d: Buffer) => {
      buf += d.toString();
      const m = /serving (http:\/\/[^\s]+)/.exec(buf);
      if (m) { clearTimeout(timer); resolve(m[1]!); }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", (d: Buffer) => { buf += d.toString(); });
    early = (code) => { clearTimeout(timer); reject(new Error(`node ${id} exited (${code}) during start:\n${buf}`)); };
    child.once("exit", early);
  });
  child.removeListener("exit", early);
  return { id, child, url, dir };
}

export interface DemoResult {
  converged: boolean;
  events: string[];
  /** Writes the cluster acknowledged. */
  acknowledged: number;
  /** Acknowledged writes absent from some node at the end, as "node:key" (must be empty). */
  missing: string[];
}

export async function runDemo(opts: DemoOptions = {}): Promise<DemoResult> {
  const out = opts.out ?? ((l: string) => process.stdout.write(l + "\n"));
  const short = opts.short ?? false;
  const deadline = Date.now() + (opts.timeoutMs ?? (short ? 60_000 : 120_000));
  const writes = short ? 10 : 50;
  const interval = short ? 300 : 500;
  const root = mkdtempSync(join(tmpdir(), "wavekv-demo-"));
  const secretFile = join(root, "secret");
  writeFileSync(secretFile, randomBytes(24).toString("hex"), { mode: 0o600 });
  const secret = (await import("node:fs")).readFileSync(secretFile, "utf8").trim();
  const procs = new Map<number, Proc>();
  const uninstallSignals = stopChildrenOnSignal(root);
  const events: string[] = [];
  const tty = process.stdout.isTTY === true && opts.out === undefined;
  const say = (line: string) => { events.push(line); out(`» ${line}`); };
  let lastTable = "";
  let tableLines = 0;

  const statuses = async (): Promise<Map<number, NodeStatus | null>> => {
    const m = new Map<number, NodeStatus | null>();
    await Promise.all([...procs.values()].map(async (p) => {
      try { m.set(p.id, await new KvClient(p.url, secret, 1_000).status()); } catch { m.set(p.id, null); }
    }));
    return m;
  };
  const show = (st: Map<number, NodeStatus | null>) => {
    // Lag: for every origin, how many of its writes this node does not cover yet.
    const heads = new Map<number, number>();
    for (const s of st.values()) if (s) heads.set(s.id, s.nextSeq - 1);
    const rows = [...st.entries()].sort((a, b) => a[0] - b[0]).map(([id, s]) => {
      if (!s) return `  node ${id}   ${"unreachable".padEnd(11)} ${"-".padEnd(16)} -`;
      let lag = 0;
      for (const [origin, head] of heads) {
        if (origin === s.id) continue;
        const ack = s.peers.find((p) => p.id === origin)?.ack ?? 0;
        lag += Math.max(0, head - ack);
      }
      return `  node ${id}   ${`${s.keys}/${acknowledged.size}`.padEnd(11)} ${s.digest.slice(0, 16)} ${lag}`;
    });
    const table = [`  node     keys        digest           lag`, ...rows].join("\n");
    if (table === lastTable) return;
    if (tty && tableLines > 0) process.stdout.write(`\x1b[${tableLines}A\x1b[J`);
    out(table);
    lastTable = table;
    tableLines = tty ? rows.length + 1 : 0;
  };
  const converge = async (what: string, within: number): Promise<boolean> => {
    const until = Math.min(deadline, Date.now() + within);
    const started = Date.now();
    while (Date.now() < until) {
      const st = await statuses();
      show(st);
      const digests = new Set([...st.values()].map((s) => s?.digest ?? "down"));
      if (digests.size === 1 && !digests.has("down")) {
        tableLines = 0;
        say(`${what}: all ${st.size} digests equal after ${((Date.now() - started) / 1000).toFixed(1)} s`);
        return true;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    tableLines = 0;
    say(`${what}: NOT converged within ${(within / 1000).toFixed(0)} s`);
    return false;
  };
  const acknowledged = new Map<string, string>();
  const missing: string[] = [];
  const write = async (id: number, n: number, tag: string) => {
    const kv = new KvClient(procs.get(id)!.url, secret);
    for (let i = 0; i < n; i++) {
      const key = `demo/${tag}/${id}/${i}`, value = `value ${i} from node ${id}`;
      await kv.put(key, value);
      acknowledged.set(key, value);
    }
  };

  let converged = false;
  try {
    out(`wavekv demo: 3 nodes on 127.0.0.1, data in ${root}, HMAC secret on`);
    for (const line of LEGEND) out(line);
    procs.set(1, await startNode(1, root, secretFile, undefined, interval));
    const seed = `1=${procs.get(1)!.url}`;
    procs.set(2, await startNode(2, root, secretFile, seed, interval));
    procs.set(3, await startNode(3, root, secretFile, seed, interval));
    say(`started nodes 1, 2, 3 (${[...procs.values()].map((p) => p.url).join(", ")}); 2 and 3 know only node 1's address`);
    await Promise.all([1, 2, 3].map((id) => write(id, writes, "a")));
    say(`wrote ${writes} keys on each node (${acknowledged.size} in all)`);
    converged = await converge("initial writes", 20_000);

    const victim = procs.get(2)!;
    signal(victim.child, "SIGKILL");
    procs.delete(2);
    say("SIGKILLed node 2");
    await Promise.all([1, 3].map((id) => write(id, writes, "b")));
    say(`wrote ${writes} more keys on nodes 1 and 3 while node 2 was down`);
    procs.set(2, await startNode(2, root, secretFile, seed, interval));
    say(`restarted node 2 from ${victim.dir} (new port ${procs.get(2)!.url})`);
    converged = (await converge("after restart", 20_000)) && converged;

    const cut = procs.get(3)!;
    signal(cut.child, "SIGSTOP");
    say("partitioned node 3 (SIGSTOP: it answers nothing)");
    await Promise.all([1, 2].map((id) => write(id, writes, "c")));
    await new Promise((r) => setTimeout(r, interval * 3));
    const during = await statuses();
    show(during);
    tableLines = 0;
    say(`during the partition nodes 1 and 2 ${during.get(1)?.digest === during.get(2)?.digest ? "agree" : "still differ"}; node 3 is unreachable`);
    signal(cut.child, "SIGCONT");
    say("healed node 3 (SIGCONT)");
    converged = (await converge("after healing", 30_000)) && converged;
    const final = await statuses();
    for (const p of procs.values()) {
      const held = new Map<string, string | undefined>();
      for await (const e of new KvClient(p.url, secret).scan("demo/")) held.set(e.key, e.value);
      for (const [key, value] of acknowledged) if (held.get(key) !== value) missing.push(`${p.id}:${key}`);
    }
    const keys = [...final.values()].map((s) => s?.keys ?? 0);
    let book = 0;
    for await (const _ of new KvClient(procs.get(1)!.url, secret).scan(PEER_ADDRESS_PREFIX)) book++;
    say(`done: ${keys[0]} keys on every node (and ${book} address-book entries under ${PEER_ADDRESS_PREFIX}, not counted), digest ${final.get(1)?.digest.slice(0, 16)}…; ${acknowledged.size} acknowledged writes, ${missing.length} missing anywhere`);
  } finally {
    uninstallSignals();
    await killAll([...procs.values()].map((p) => p.child));
    rmSync(root, { recursive: true, force: true });
  }
  const ok = converged && missing.length === 0;
  out(ok ? "converged: every phase ended with equal digests and every acknowledged write is on every node" : `FAILED: converged=${converged}, missing=${missing.slice(0, 5).join(", ")}`);
  return { converged: ok, events, acknowledged: acknowledged.size, missing };
}
