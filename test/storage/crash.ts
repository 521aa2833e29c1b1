// Crash loop: a child process appends with fsync "always" and reports every acknowledged
// record on stdout; the parent SIGKILLs it at random moments, reopens the directory and
// checks that every acknowledged record is there with its exact bytes — and that nothing
// else is there but whole, correct, unduplicated records. Every third record is an expiring
// value (kind 5): it must come back as kind 5 with its exact expiresAt.
//   WAVEKV_CRASHES=500 node --import tsx test/storage/crash.ts      (default 50)
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as fs from "node:fs";
import { RecordKind, readExpiry } from "../../src/core/record.js";
import { files } from "../../src/storage/datadir.js";
import { isZeroFrom } from "../../src/storage/wal-file.js";
import { openStorage } from "../../src/storage/storage.js";
import { oracleWal, plain, removeDir, rng, tempDir } from "../helpers/storage-fixtures.js";
import { crashExpiry, crashRecordOf } from "../helpers/crash-records.js";

const CRASHES = Number(process.env.WAVEKV_CRASHES ?? 50);
const LANES = Number(process.env.WAVEKV_CRASH_LANES ?? 4);
const SEED = Number(process.env.WAVEKV_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
const here = dirname(fileURLToPath(import.meta.url));
const childFile = join(here, "..", "helpers", "crash-child.ts");
const root = join(here, "..", "..");

/** Same code path on both runtimes: Bun runs TypeScript itself, Node needs tsx. */
function childArgs(dir: string, seed: number): string[] {
  return process.versions.bun ? [childFile, dir, String(seed)] : ["--import", "tsx", childFile, dir, String(seed)];
}

interface Run { acked: number[]; ready: number; stderr: string; code: number | null; signal: NodeJS.Signals | null }

function runAndKill(dir: string, seed: number, killAfterMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, childArgs(dir, seed), { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    const acked: number[] = [];
    let ready = -1;
    let buf = "";
    let stderr = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const [word, ...rest] = line.split(" ");
        if (word === "ready") {
          ready = Number(rest[0]);
          setTimeout(() => child.kill("SIGKILL"), killAfterMs);
        } else if (word === "ack") for (const id of rest) acked.push(Number(id));
      }
    });
    child.stderr.on("data", (c) => { stderr += c; });
    child.once("error", reject);
    // A line cut by the kill is an ack the parent never received: it is not counted.
    child.once("close", (code, signal) => resolve({ acked, ready, stderr, code, signal }));
  });
}

/**
 * One lane: a directory crashed `crashes` times in a row. Lanes run in parallel because a
 * child's start (runtime + TypeScript loader) costs far more than the writing it does.
 */
async function lane(laneNo: number, crashes: number, r: () => number): Promise<{ acked: number; viaSnapshot: number; preallocated: number }> {
  const dir = tempDir(`crash${laneNo}`);
  const acked = new Set<number>();
  let viaSnapshot = 0;
  // Kills that left a preallocated zero tail (FORMAT §3 version 2) after the last record.
  let preallocated = 0;
  let expiring = 0;
  try {
    for (let i = 0; i < crashes; i++) {
      const where = `lane ${laneNo}, crash ${i}`;
      const run = await runAndKill(dir, Math.floor(r() * 2 ** 31), 5 + Math.floor(r() * 150));
      assert.ok(run.ready > 0, `${where}: the child never became ready (exit ${run.code}): ${run.stderr}`);
      assert.is(run.signal, "SIGKILL", `${where}: the child ended by itself (exit ${run.code}): ${run.stderr}`);
      for (const id of run.acked) acked.add(id);
      const image = new Uint8Array(fs.readFileSync(files(dir, 1).wal));
      const oracle = oracleWal(image, 1);
      if (oracle.outcome === "ok" && image.length > oracle.validEnd && isZeroFrom(image, oracle.validEnd)) preallocated++;

      const s = await openStorage({ dir, nodeId: 1, fsync: "never" });
      const seen = new Map<number, number>();
      for (const b of s.recovered.batches) {
        for (let j = 0; j < b.count; j++) {
          const kind = b.kind(j);
          if (kind !== RecordKind.Value && kind !== RecordKind.Expiring) continue;
          const id = b.seq(j);
          const at = crashExpiry(id);
          assert.is(kind, at === undefined ? RecordKind.Value : RecordKind.Expiring, `${where}: record ${id} has the wrong kind`);
          if (at !== undefined) { assert.is(readExpiry(b.value(j)!, 0), at, `${where}: record ${id} has the wrong expiresAt`); expiring++; }
          seen.set(id, (seen.get(id) ?? 0) + 1);
          const got = { kind: b.kind(j), key: b.key(j), value: Buffer.from(b.value(j)!).toString("hex"), timestamp: b.timestamp(j), node: b.node(j), seq: id };
          assert.equal(got, plain(crashRecordOf(id)), `${where}: record ${id} has the wrong bytes`);
        }
      }
      if (s.recovered.batches.length > 1) viaSnapshot++;
      await s.close();
      for (const id of acked) assert.ok(seen.has(id), `${where}: acknowledged record ${id} is missing`);
      for (const [id, n] of seen) assert.is(n, 1, `${where}: record ${id} recovered ${n} times`);
    }
    assert.ok(expiring > 0, `lane ${laneNo}: expiring records were recovered`);
    return { acked: acked.size, viaSnapshot, preallocated };
  } finally {
    removeDir(dir);
  }
}

test(`crash loop: ${CRASHES} SIGKILLs, every acknowledged record survives with its exact bytes (seed ${SEED})`, async () => {
  console.log(`crash seed ${SEED} (WAVEKV_CRASH_SEED to replay)`);
  const r = rng(SEED);
  const lanes = Math.min(LANES, CRASHES);
  const started = Date.now();
  const results = await Promise.all(
    Array.from({ length: lanes }, (_, i) => lane(i, Math.floor(CRASHES / lanes) + (i < CRASHES % lanes ? 1 : 0), rng(Math.floor(r() * 2 ** 31)))),
  );
  const acked = results.reduce((n, x) => n + x.acked, 0);
  const viaSnapshot = results.reduce((n, x) => n + x.viaSnapshot, 0);
  const preallocated = results.reduce((n, x) => n + x.preallocated, 0);
  console.log(`crash loop: ${CRASHES} crashes in ${lanes} lanes, ${((Date.now() - started) / 1000).toFixed(1)} s; ${acked} acknowledged records all recovered; ${viaSnapshot} reopens went through a snapshot; ${preallocated} kills left a preallocated zero tail`);
  assert.ok(acked > CRASHES, "the children acknowledged writes");
  assert.ok(viaSnapshot > 0, "some crashes happened after a snapshot");
  // Open must then have stopped at the zeros: nothing after them replayed (checked above:
  // exactly the written records, each once), no warning needed.
  assert.ok(preallocated > CRASHES / 2, `most kills hit a preallocated log (${preallocated} of ${CRASHES})`);
});

test.run();
