// Crash loop over atomic batches: a child (test/helpers/batch-crash-child.ts) writes batches
// that each set every key to the batch's number (some as deletes), several in flight,
// fsync "always", persist() now and then; the parent SIGKILLs it at random moments and
// reopens the directory: every key must hold the same batch — never half of one — and
// that batch must be at least the last one acknowledged.
//   WAVEKV_CRASHES=200 WAVEKV_CRASH_SEED=7 node --import tsx test/node/batch-crash.ts   (default 12)
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Node } from "../../src/node/node.js";
import { BATCH_KEYS, batchOfValue, batchValue } from "../helpers/batch-crash-child.js";
import { removeDir, rng, tempDir } from "../helpers/storage-fixtures.js";
import { watch } from "../helpers/procs.js";

const [CRASHES, LANES] = [Number(process.env.WAVEKV_CRASHES ?? 12), Number(process.env.WAVEKV_CRASH_LANES ?? 4)];
const SEED = Number(process.env.WAVEKV_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
const childFile = fileURLToPath(new URL("../helpers/batch-crash-child.ts", import.meta.url));

interface Run { ready: number; acked: number; output: string; exit: number | string }

/** One child run, SIGKILLed `killAfterMs` after it is ready; `acked`: the last batch acknowledged on a whole line. */
async function runAndKill(dir: string, seed: number, killAfterMs: number): Promise<Run> {
  const args = process.versions.bun ? [childFile, dir, String(seed)] : ["--import", "tsx", childFile, dir, String(seed)];
  const run = watch(spawn(process.execPath, args, { cwd: fileURLToPath(new URL("../..", import.meta.url)), stdio: ["ignore", "pipe", "pipe"] }));
  const ready = Number((await run.waitFor(/^ready (\d+)$/m, 60_000))[1]);
  setTimeout(() => run.child.kill("SIGKILL"), killAfterMs);
  const exit = await run.exited;
  const out = run.output();
  let acked = 0;
  // A line cut by the kill is an ack the parent never received: only whole lines count.
  for (const m of out.slice(0, out.lastIndexOf("\n") + 1).matchAll(/^ack (\d+)$/gm)) acked = Math.max(acked, Number(m[1]));
  return { ready, acked, output: out, exit };
}

/** The batch number every key holds; fails if two keys disagree (half a batch). */
async function recoveredBatch(dir: string, where: string): Promise<number> {
  const node = await Node.open({ id: 1, dir, fsync: "never", onWarning: () => {} });
  try {
    const n = node.get("n");
    if (n === undefined) {
      for (let k = 0; k < BATCH_KEYS; k++) assert.is(node.getIncludingTombstones(`k/${k}`), undefined, `${where}: k/${k} without any batch`);
      return 0;
    }
    const b = Number(new TextDecoder().decode(n.value!));
    for (let k = 0; k < BATCH_KEYS; k++) {
      const e = node.getIncludingTombstones(`k/${k}`), want = batchValue(b, k);
      assert.ok(e !== undefined, `${where}: k/${k} missing after batch ${b}`);
      if (e!.value === null) {
        assert.is(want, "", `${where}: k/${k} deleted, but batch ${b} puts it`);
        assert.is(e!.seq, n.seq + 1 + k, `${where}: k/${k}'s tombstone is not batch ${b}'s`);
      } else {
        const got = new TextDecoder().decode(e!.value);
        assert.is(batchOfValue(got), b, `${where}: k/${k} holds batch ${batchOfValue(got)}, "n" batch ${b}: half a batch`);
        assert.is(got, want, `${where}: k/${k}'s value`);
      }
    }
    return b;
  } finally {
    await node.close();
  }
}

async function lane(laneNo: number, crashes: number, r: () => number): Promise<{ acked: number; torn: number }> {
  const dir = tempDir(`batch-crash${laneNo}`);
  let lastAcked = 0, torn = 0, recovered = 0;
  try {
    for (let i = 0; i < crashes; i++) {
      const where = `lane ${laneNo}, crash ${i}`;
      const run = await runAndKill(dir, Math.floor(r() * 2 ** 31), 20 + Math.floor(r() * 200));
      assert.is(run.exit, "SIGKILL", `${where}: the child ended by itself: ${run.output}`);
      assert.is(run.ready, recovered, `${where}: the child opened at another batch than the parent recovered`);
      lastAcked = Math.max(lastAcked, run.acked);
      const b = await recoveredBatch(dir, where);
      assert.ok(b >= lastAcked, `${where}: batch ${lastAcked} was acknowledged, the keys hold batch ${b}`);
      if (b > run.acked) torn++;
      recovered = b;
    }
    return { acked: lastAcked, torn };
  } finally {
    removeDir(dir);
  }
}

test(`batch crash loop: ${CRASHES} SIGKILLs, every key holds the same whole batch (seed ${SEED})`, async () => {
  console.log(`batch crash seed ${SEED} (WAVEKV_CRASH_SEED to replay)`);
  const r = rng(SEED);
  const lanes = Math.min(LANES, CRASHES);
  const results = await Promise.all(Array.from({ length: lanes }, (_, i) => lane(i, Math.floor(CRASHES / lanes) + (i < CRASHES % lanes ? 1 : 0), rng(Math.floor(r() * 2 ** 31)))));
  const acked = results.reduce((n, x) => n + x.acked, 0);
  console.log(`batch crash loop: ${acked} batches acknowledged in all lanes; ${results.reduce((n, x) => n + x.torn, 0)} reopens found a durable batch not yet acknowledged`);
  assert.ok(acked > CRASHES, "the children acknowledged batches");
});

test.run();
