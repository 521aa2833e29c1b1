// A peer's batches in the receiver's WAL (issue 21, docs/design/0027-atomic-batches.md):
// node 2 (a directory, fsync "always") merges an envelope of node 1 holding batches,
// single puts and deletes, and closes. Its log is then cut at every byte of that merged
// append (a crash at any moment of the write); each cut copy must open without error and
// hold every batch of node 1 whole or not at all (INV, test/helpers/batch-atomicity.ts).
//   WAVEKV_MERGE_CUT_STEP=1 forces every byte for the larger logs too (default: step 1 up to 4 KiB).
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import { join } from "node:path";
import { Node } from "../../src/node/node.js";
import { files } from "../../src/storage/datadir.js";
import { macrotask } from "../../src/core/abort.js";
import type { Envelope } from "../../src/sync/envelope.js";
import { freshDirs } from "../helpers/storage-fixtures.js";
import { closers, halfBatches, heldOf, wire, workload, type Written } from "../helpers/batch-atomicity.js";

const fresh = freshDirs("batch-merge-crash", test.after);
const own = closers(test.after.each);
const STEP = Number(process.env.WAVEKV_MERGE_CUT_STEP ?? 0);

type Merge = (b: Node, env: Envelope) => Promise<Envelope>;
const walSize = (dir: string) => fs.statSync(files(dir, 2).wal).size;

/**
 * Node 2's directory after it merged node 1's writes `w` (via `merge`), closed cleanly,
 * and the WAL offsets [from, to) of that merge (a clean close trims the preallocated tail).
 */
async function merged(merge: Merge, w: Written, a: Node): Promise<{ dir: string; from: number; to: number }> {
  const dir = fresh();
  await (await Node.open({ id: 2, dir, fsync: "always" })).close();
  const from = walSize(dir);
  const b = own(await Node.open({ id: 2, dir, fsync: "always" }));
  // The round node 1 → node 2, completed (node 1 applies the answer: no round left open).
  a.applyEnvelope(wire(await merge(b, wire(a.prepareSync(2)))));
  for (const batch of w.batches) assert.is(heldOf(b, batch), batch.length, "node 2 merged every batch");
  await b.close();
  return { dir, from, to: walSize(dir) };
}

/** Cuts a copy of `dir`'s WAL at each offset of [from, to]; every copy opens, INV holds. */
async function cutEverywhere(dir: string, from: number, to: number, w: Written, what: string): Promise<{ cuts: number; torn: number; whole: number }> {
  const step = STEP > 0 ? STEP : to - from <= 4096 ? 1 : Math.ceil((to - from) / 4096);
  const wal = fs.readFileSync(files(dir, 2).wal);
  const copy = fresh();
  let cuts = 0, torn = 0, whole = 0;
  for (let at = from; at <= to; at = at === to ? to + 1 : Math.min(to, at + step)) {
    fs.rmSync(copy, { recursive: true, force: true });
    fs.cpSync(dir, copy, { recursive: true });
    fs.writeFileSync(files(copy, 2).wal, wal.subarray(0, at));
    const warnings: string[] = [];
    let node: Node;
    try {
      node = await Node.open({ id: 2, dir: copy, fsync: "never", onWarning: (m) => warnings.push(m) });
    } catch (e) {
      assert.unreachable(`${what}: the log cut at byte ${at} of ${to} does not open: ${(e as Error).message}`);
      throw e;
    }
    try {
      const half = halfBatches(node, w.batches);
      assert.equal(half, [], `${what}: the log cut at byte ${at} (merge spans ${from}..${to}) replays half a batch`);
      if (at === from) assert.ok(w.batches.every((b) => heldOf(node, b) === 0), `${what}: cut before the merge, yet a batch is there`);
      if (at === to) assert.ok(w.batches.every((b) => heldOf(node, b) === b.length), `${what}: the whole log lacks a batch`);
      if (warnings.length > 0) torn++;
      if (w.batches.every((b) => heldOf(node, b) === b.length)) whole++;
    } finally {
      await node.close();
    }
    cuts++;
  }
  return { cuts, torn, whole };
}

const shapes: [string, Merge][] = [
  ["merged in one step (handleEnvelope)", async (b, env) => b.handleEnvelope(env)],
  ["merged in slices of 3 (handleEnvelopeInSlices)", (b, env) => b.handleEnvelopeInSlices(env, { sliceEntries: 3, pause: macrotask })],
];

for (const [what, merge] of shapes) {
  test(`a merged envelope of batches, cut at every byte of its WAL append: ${what}: 0 or all of each batch`, async () => {
    const a = own(await Node.open({ id: 1 }));
    const w = await workload(a, { seed: 909, ops: 14, prefix: "a/", minBatch: 2, maxBatch: 6, leading: [2, 5], pad: 6 });
    assert.ok(w.batches.length >= 4 && w.singles.length >= 3, "batches and single writes");
    const { dir, from, to } = await merged(merge, w, a);
    assert.ok(to > from, "the merge was logged");
    const { cuts, torn, whole } = await cutEverywhere(dir, from, to, w, what);
    assert.ok(cuts > 100 && torn > 0 && whole > 0, `${cuts} cuts, ${torn} with a torn tail, ${whole} with every batch`);
  });
}

test("the reopened cut copies still sync: a cut log's node pulls the rest of node 1's batches, whole", async () => {
  const a = own(await Node.open({ id: 1 }));
  const w = await workload(a, { seed: 910, ops: 8, prefix: "a/", minBatch: 3, maxBatch: 5, leading: [4], pad: 4 });
  const { dir, from, to } = await merged(async (b, env) => b.handleEnvelope(env), w, a);
  fs.truncateSync(files(dir, 2).wal, Math.floor((from + to) / 2));
  const b = own(await Node.open({ id: 2, dir, fsync: "never", onWarning: () => {} }));
  assert.equal(halfBatches(b, w.batches), [], "after the cut");
  const response = wire(a.handleEnvelope(wire(b.prepareSync(1))));
  b.applyEnvelope(response);
  for (const batch of w.batches) assert.is(heldOf(b, batch), batch.length, "every batch after a round");
  assert.is(b.digest(), a.digest());
  assert.ok(fs.existsSync(join(dir, "wavekv.uuid")));
});

test.run();
