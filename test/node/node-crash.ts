// Node-level crash loop: a child process runs Node.open({ dir, fsync: "always" }), issues
// puts and deletes (several in flight) and persist() calls, and reports every acknowledged
// write on stdout; the parent SIGKILLs it at random moments, reopens the directory with
// Node.open and checks that every acknowledged write is present with its exact key, value
// and stamp (and, for a put with ttlMs, its exact expiresAt: about a third of the puts; the
// TTLs are an hour or more, so the reopened node reads them unexpired) — or superseded by
// a later write of the same key — that every record found is
// one the child wrote, and that nextSeq is above every acknowledged seq.
//   WAVEKV_CRASHES=500 WAVEKV_CRASH_SEED=7 node --import tsx test/node/node-crash.ts   (default 50)
// The child is test/helpers/node-crash-child.ts.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Node } from "../../src/node/node.js";
import { files } from "../../src/storage/datadir.js";
import { CRASH_KEYS, crashWrite } from "../helpers/node-crash-child.js";
import { removeDir, rng, tempDir } from "../helpers/storage-fixtures.js";

const CRASHES = Number(process.env.WAVEKV_CRASHES ?? 50);
const LANES = Number(process.env.WAVEKV_CRASH_LANES ?? 4);
const SEED = Number(process.env.WAVEKV_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
const here = dirname(fileURLToPath(import.meta.url));
const childFile = join(here, "..", "helpers", "node-crash-child.ts");
const root = join(here, "..", "..");

type Mode = "quiescent" | "inflight";

/** Same code path on both runtimes: Bun runs TypeScript itself, Node needs tsx. */
function childArgs(dir: string, seed: number, mode: Mode): string[] {
  const args = [childFile, dir, String(seed), mode];
  return process.versions.bun ? args : ["--import", "tsx", ...args];
}

interface Ack { seq: number; del: boolean; timestamp: number; expiresAt?: number }
interface Run { ready: number; acks: Ack[]; persisted: number; stderr: string; code: number | null; signal: NodeJS.Signals | null }

function runAndKill(dir: string, seed: number, mode: Mode, killAfterMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, childArgs(dir, seed, mode), { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    const run: Run = { ready: -1, acks: [], persisted: 0, stderr: "", code: null, signal: null };
    let buf = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const [word, a, b, c, d] = buf.slice(0, nl).split(" ");
        buf = buf.slice(nl + 1);
        if (word === "ready") {
          run.ready = Number(a);
          setTimeout(() => child.kill("SIGKILL"), killAfterMs);
        } else if (word === "ack") run.acks.push({ seq: Number(a), del: b === "d", timestamp: Number(c), ...(d !== "-" && d !== undefined ? { expiresAt: Number(d) } : {}) });
        else if (word === "persisted") run.persisted++;
      }
    });
    child.stderr.on("data", (chunk) => { run.stderr += chunk; });
    child.once("error", reject);
    // A line cut by the kill is an ack the parent never received: it is not counted.
    child.once("close", (code, signal) => resolve({ ...run, code, signal }));
  });
}

interface LaneResult { acked: number; persisted: number; viaSnapshot: number; midSnapshot: number; resetFinished: number; expiring: number }

/** Header fields that tell a crash between snapshot install and WAL reset (docs/FORMAT.md §3–4). */
function interruptedReset(dir: string): boolean {
  const f = files(dir, 1);
  if (!fs.existsSync(f.snapshot) || !fs.existsSync(f.wal)) return false;
  const snap = fs.readFileSync(f.snapshot), wal = fs.readFileSync(f.wal);
  return snap.length >= 64 && wal.length >= 32 && snap.readBigUInt64LE(40) === wal.readBigUInt64LE(20);
}

/** One directory crashed `crashes` times in a row; lanes run in parallel because spawning dominates. */
async function lane(laneNo: number, crashes: number, r: () => number, mode: Mode): Promise<LaneResult> {
  const dir = tempDir(`node-crash${laneNo}`);
  const f = files(dir, 1);
  /** Seq ranges of the runs: run i wrote seqs from its `start` (its nextSeq at open). */
  const runs: { start: number; seed: number }[] = [];
  const acked = new Map<number, Ack & { key: string; value: Uint8Array }>();
  /** Per key, the highest acknowledged seq: the recovered entry must be that write or a later one. */
  const lastAcked = new Map<string, number>();
  let maxAcked = 0;
  let nextSeqSeen = 1;
  const result: LaneResult = { acked: 0, persisted: 0, viaSnapshot: 0, midSnapshot: 0, resetFinished: 0, expiring: 0 };
  try {
    for (let i = 0; i < crashes; i++) {
      const where = `lane ${laneNo}, crash ${i}`;
      const seed = Math.floor(r() * 2 ** 31);
      const run = await runAndKill(dir, seed, mode, 5 + Math.floor(r() * 150));
      assert.ok(run.ready > 0, `${where}: the child never became ready (exit ${run.code}): ${run.stderr}`);
      assert.is(run.signal, "SIGKILL", `${where}: the child ended by itself (exit ${run.code}): ${run.stderr}`);
      assert.ok(run.ready >= nextSeqSeen && run.ready > maxAcked, `${where}: the child opened with nextSeq ${run.ready}; seq ${maxAcked} was acknowledged before`);
      runs.push({ start: run.ready, seed });
      for (const a of run.acks) {
        assert.not.ok(acked.has(a.seq), `${where}: seq ${a.seq} acknowledged twice (reused)`);
        const w = crashWrite(seed, a.seq);
        acked.set(a.seq, { ...a, ...w });
        if (a.seq > (lastAcked.get(w.key) ?? 0)) lastAcked.set(w.key, a.seq);
        maxAcked = Math.max(maxAcked, a.seq);
      }
      result.acked += run.acks.length;
      result.persisted += run.persisted;
      if (fs.existsSync(f.snapshotTmp) || fs.existsSync(f.walTmp)) result.midSnapshot++;
      if (interruptedReset(dir)) result.resetFinished++;
      if (fs.existsSync(f.snapshot)) result.viaSnapshot++;

      const node = await Node.open({ id: 1, dir, fsync: "never", onWarning: () => {} });
      try {
        nextSeqSeen = node.status().nextSeq;
        assert.ok(nextSeqSeen > maxAcked, `${where}: nextSeq ${nextSeqSeen} after reopen; seq ${maxAcked} was acknowledged`);
        const found = new Set<string>();
        for (const e of node.scan("", { includeTombstones: true })) {
          found.add(e.key);
          const what = `${where}: ${e.key} (seq ${e.seq})`;
          assert.is(e.node, 1, what);
          assert.ok(e.seq < nextSeqSeen, `${what}: at or above nextSeq ${nextSeqSeen}`);
          let writer: { start: number; seed: number } | undefined;
          for (const x of runs) if (x.start <= e.seq) writer = x;
          assert.ok(writer, `${what}: no run wrote this seq`);
          const w = crashWrite(writer!.seed, e.seq);
          assert.is(e.key, w.key, `${what}: seq ${e.seq} was written to ${w.key}`);
          const a = acked.get(e.seq);
          if (a) {
            assert.is(e.value === null, a.del, `${what}: acknowledged as a ${a.del ? "delete" : "put"}`);
            assert.is(e.timestamp, a.timestamp, `${what}: acknowledged timestamp`);
            assert.is(e.expiresAt, a.del ? undefined : a.expiresAt, `${what}: acknowledged expiresAt`);
            if (a.expiresAt !== undefined) result.expiring++;
          }
          // A put with ttlMs expires at its stamp + ttlMs; any other entry has no expiry.
          assert.is(e.expiresAt, e.value !== null && w.ttlMs !== undefined ? e.timestamp + w.ttlMs : undefined, `${what}: expiresAt`);
          // Unacknowledged writes may or may not have reached the disk; what is there is exact.
          if (e.value !== null) assert.ok(Buffer.from(e.value).equals(Buffer.from(w.value)), `${what}: value bytes`);
          const last = lastAcked.get(e.key);
          if (last !== undefined) assert.ok(e.seq >= last, `${what}: acknowledged write seq ${last} of ${e.key} was lost`);
        }
        for (const [key, seq] of lastAcked) assert.ok(found.has(key), `${where}: acknowledged write seq ${seq} of ${key} is missing`);
        assert.ok(found.size <= CRASH_KEYS);
      } finally {
        await node.close();
      }
    }
    return result;
  } finally {
    removeDir(dir);
  }
}

async function crashLoop(crashes: number, mode: Mode): Promise<LaneResult> {
  console.log(`node crash seed ${SEED} (WAVEKV_CRASH_SEED to replay), ${crashes} crashes, persist ${mode}`);
  const r = rng(SEED);
  const lanes = Math.min(LANES, crashes);
  const started = Date.now();
  const results = await Promise.all(
    Array.from({ length: lanes }, (_, i) => lane(i, Math.floor(crashes / lanes) + (i < crashes % lanes ? 1 : 0), rng(Math.floor(r() * 2 ** 31)), mode)),
  );
  const sum = results.reduce((s, x) => {
    for (const k of Object.keys(s) as (keyof LaneResult)[]) s[k] += x[k];
    return s;
  });
  console.log(`  ${crashes} crashes in ${lanes} lanes, ${((Date.now() - started) / 1000).toFixed(1)} s: ${JSON.stringify(sum)}`);
  return sum;
}

test(`crash loop: ${CRASHES} SIGKILLs of a Node writing with fsync "always" and persisting between writes; every acknowledged write survives`, async () => {
  const sum = await crashLoop(CRASHES, "quiescent");
  assert.ok(sum.acked > CRASHES, "the children acknowledged writes");
  assert.ok(sum.persisted > 0 && sum.viaSnapshot > 0, "some reopens went through a snapshot");
  assert.ok(sum.expiring > 0, "acknowledged expiring entries were checked");
});

// Bug 2 (docs/design/0011-memory-never-shows-what-the-log-refused.md): persist() with writes in flight drops
// them from both the snapshot and the reset WAL.
test("crash loop with persist() called while writes are in flight: every acknowledged write survives", async () => {
  // On a loaded machine a child may be killed before any persist() completes: rounds of
  // 12 crashes go on (at most 4) until one did, so the scenario is always exercised.
  let persisted = 0;
  for (let round = 0; round < 4 && persisted === 0; round++) persisted += (await crashLoop(Math.min(CRASHES, 12), "inflight")).persisted;
  assert.ok(persisted > 0, "a persist() with writes in flight completed before a kill");
});

test.run();
