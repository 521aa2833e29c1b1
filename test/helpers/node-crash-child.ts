/**
 * Child process of test/node/node-crash.ts (a helper: never run by the test runner; the parent
 * imports only `crashWrite` and `CRASH_KEYS`).
 *
 *   node --import tsx test/helpers/node-crash-child.ts <dir> <seed> [quiescent|inflight]
 *   bun test/helpers/node-crash-child.ts <dir> <seed> [quiescent|inflight]
 *
 * Opens `Node.open({ id: 1, dir, fsync: "always" })`, prints `ready <nextSeq>`, then writes
 * until killed: 1–8 puts/deletes in flight over CRASH_KEYS keys (about a third of the puts
 * with a `ttlMs` of an hour or more: expiring entries, issue 21), printing
 * `ack <seq> <p|d> <timestamp> <expiresAt|->` only once the write's promise has resolved. Every 4–23 acks
 * it calls persist(): "quiescent" (default) stops issuing until the writes in flight have
 * settled, calls persist(), and writes on while the snapshot installs; "inflight" calls it
 * with writes in flight (docs/design/0011-memory-never-shows-what-the-log-refused.md, bug 2). Prints `persisted` when a
 * persist() resolves. Seq s of the run seeded `seed` writes `crashWrite(seed, s)`, so the
 * parent can check every record it finds, acknowledged or not.
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Node } from "../../src/node/node.js";
import { rng } from "./storage-fixtures.js";

export const CRASH_KEYS = 12;

/**
 * Key, value and TTL of seq `seq` in the run seeded `seed` (a delete of the key writes no
 * value). `ttlMs`, when set, is an hour or more: nothing expires before the parent reads it.
 */
export function crashWrite(seed: number, seq: number): { key: string; value: Uint8Array; ttlMs?: number } {
  const r = rng((seed ^ Math.imul(seq, 0x9e3779b1)) >>> 0);
  const key = `k/${Math.floor(r() * CRASH_KEYS)}`;
  const value = new Uint8Array(1 + Math.floor(r() * 200));
  for (let i = 0; i < value.length; i++) value[i] = Math.floor(r() * 256);
  return r() < 1 / 3 ? { key, value, ttlMs: 3_600_000 + Math.floor(r() * 1_000_000) } : { key, value };
}

async function main(): Promise<void> {
  const [dir, seedArg, mode = "quiescent"] = process.argv.slice(2);
  if (!dir || seedArg === undefined || (mode !== "quiescent" && mode !== "inflight")) {
    throw new Error("usage: node-crash-child <dir> <seed> [quiescent|inflight]");
  }
  const seed = Number(seedArg);
  const r = rng(seed ^ 0x5bd1e995);
  const node = await Node.open({ id: 1, dir, fsync: "always", onWarning: (m) => process.stderr.write(`warning: ${m}\n`) });
  let nextSeq = node.status().nextSeq;
  process.stdout.write(`ready ${nextSeq}\n`);

  const maxInFlight = 1 + Math.floor(r() * 8);
  const persistEvery = 4 + Math.floor(r() * 20);
  let inFlight = 0;
  let acks = 0;
  let draining = false;
  const die = (what: string, code: number) => (e: unknown) => {
    process.stderr.write(`${what}: ${e instanceof Error ? e.stack : e}\n`);
    process.exit(code);
  };

  const persist = () => { node.persist().then(() => process.stdout.write("persisted\n"), die("persist failed", 3)); };

  function issue(): void {
    const seq = nextSeq++;
    const { key, value, ttlMs } = crashWrite(seed, seq);
    // Delete only a key that is live in memory: such a delete always takes the next seq.
    const del = node.get(key) !== undefined && r() < 0.25;
    const p = del ? node.delete(key) : node.put(key, value, ttlMs === undefined ? undefined : { ttlMs });
    inFlight++;
    p.then((e) => {
      if (e?.seq !== seq) die("seq", 4)(`expected seq ${seq}, got ${e?.seq}`);
      process.stdout.write(`ack ${seq} ${del ? "d" : "p"} ${e!.timestamp} ${e!.expiresAt ?? "-"}\n`);
      inFlight--;
      if (++acks % persistEvery === 0) {
        if (mode === "inflight") persist();
        else draining = true;
      }
      // Nothing in flight: the snapshot collects exactly what the log holds. Writes issued
      // right after land while it is being written and installed.
      if (draining && inFlight === 0) { draining = false; persist(); }
      pump();
    }, die("write failed", 2));
  }

  function pump(): void {
    while (!draining && inFlight < maxInFlight) issue();
  }
  pump();
}

const entry = process.argv[1];
if (entry !== undefined && resolve(entry) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    process.stderr.write(`child failed: ${e instanceof Error ? e.stack : e}\n`);
    process.exit(1);
  });
}
