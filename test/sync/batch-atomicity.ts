// Peers apply a batch as a unit (issue 21, docs/design/0027-atomic-batches.md): the entries
// of a batch written by node.batch on its origin that are still the latest at a sender
// arrive at a peer together and are applied in one synchronous step — never half a batch
// visible to a reader or a watcher — across delta pages, merge slices, forwarding, a
// forwarder's restart, pushes and message loss. INV (test/helpers/batch-atomicity.ts):
// for every batch, the keys a node holds at exactly the batch's stamps are 0 or all.
// Also: LWW still decides per key, a receiver that ignores the ranges (an older build)
// converges, and a range naming fewer than two of the envelope's entries is refused.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Node } from "../../src/node/node.js";
import { macrotask } from "../../src/core/abort.js";
import { isWaveKVError } from "../../src/core/errors.js";
import { RecordKind } from "../../src/core/record.js";
import { encodeRecords } from "../../src/codec/records.js";
import { crc32 } from "../../src/codec/crc.js";
import { decodeEnvelope, encodeEnvelope, encodedEntriesOf, envelopeWithEncodedEntries, type Envelope } from "../../src/sync/envelope.js";
import type { SyncTuning } from "../../src/sync/protocol.js";
import type { Entry } from "../../src/core/types.js";
import { cluster, manualClock, text } from "../helpers/cluster.js";
import { closers, halfBatches, halfBatchesOn, heldOf, observer, pull, wire, withoutRanges, workload, type Written } from "../helpers/batch-atomicity.js";

const own = closers(test.after.each);

/** Every key of every batch is held at its stamp (the batches arrived, whole). */
function holdsAll(node: Node, w: Written, where: string): void {
  for (const b of w.batches) assert.is(heldOf(node, b), b.length, `${where}: node ${node.id} lacks part of batch ${b[0]!.node}:${b[0]!.seq}`);
}

/** A watcher on `node` that checks INV at every event it is handed (the store a watcher's code would read). */
function watchInvariant(node: Node, batches: () => readonly (readonly Entry[])[]): { stop(): Promise<{ events: number; seen: string[] }>; close(): void } {
  const ac = new AbortController();
  const seen: string[] = [];
  let events = 0;
  const done = (async () => {
    try {
      for await (const _ of node.watch("", { signal: ac.signal })) {
        events++;
        if (seen.length < 5) seen.push(...halfBatches(node, batches()).map((s) => `at watch event ${events}: ${s}`).slice(0, 5 - seen.length));
      }
    } catch (e) {
      if (!ac.signal.aborted) throw e;
    }
  })();
  return { stop: async () => { ac.abort(); await done.catch(() => undefined); return { events, seen }; }, close: () => ac.abort() };
}

const pageTunings: [string, Partial<SyncTuning>][] = [
  ["pages of 7 entries (smaller than most batches, a 60-entry batch must grow its page)", { maxDeltaEntries: 7 }],
  ["pages of 100 entries (larger than batches, ending inside one)", { maxDeltaEntries: 100 }],
  ["pages of 700 bytes", { maxDeltaBytes: 700 }],
];

for (const [what, tuning] of pageTunings) {
  test(`delta pages: ${what}: no page leaves part of a batch applied`, async () => {
    const a = own(await Node.open({ id: 1, sync: tuning }));
    const b = own(await Node.open({ id: 2, sync: tuning }));
    const w = await workload(a, { seed: 101, ops: 40, prefix: "a/", leading: [60, 2, 33] });
    const watcher = own(watchInvariant(b, () => w.batches));
    const seen: string[] = [];
    const sizes: number[] = [];
    const pages = await pull(b, a, { received: (env) => { sizes.push(encodedEntriesOf(env).count); return env; }, afterPage: (p) => seen.push(...halfBatches(b, w.batches).map((s) => `after page ${p}: ${s}`)) });
    const watched = await watcher.stop();
    assert.ok(pages > 1, `the delta was paged (${pages} pages)`);
    assert.equal(seen.slice(0, 5), [], "a reader between pages");
    assert.ok(watched.events > 0);
    assert.equal(watched.seen, [], "a watcher");
    if ((tuning.maxDeltaEntries ?? 1e9) < 60) assert.ok(sizes.some((n) => n >= 60), `a page grew to hold the 60-entry batch (page sizes ${sizes.join(" ")})`);
    holdsAll(b, w, "after the round");
    assert.is(b.digest(), a.digest(), "converged");
  });
}

test("merge slices of 3 entries: applyEnvelopeInSlices and handleEnvelopeInSlices never expose part of a batch", async () => {
  const a = own(await Node.open({ id: 1 }));
  const w = await workload(a, { seed: 202, ops: 30, prefix: "a/", leading: [4, 2, 60] });
  // Response path: node 2 pulls a's whole delta in one page, merged 3 entries at a time.
  const b = own(await Node.open({ id: 2 }));
  const bSeen: string[] = [];
  let pauses = 0;
  const bWatch = own(watchInvariant(b, () => w.batches));
  await pull(b, a, { slicing: { sliceEntries: 3, pause: async () => { pauses++; bSeen.push(...halfBatches(b, w.batches)); } } });
  bSeen.push(...halfBatches(b, w.batches));
  const bWatched = await bWatch.stop();
  assert.ok(pauses > 3, `merged in slices (${pauses} pauses)`);
  assert.equal(bSeen.slice(0, 5), [], "applyEnvelopeInSlices: a reader between slices");
  assert.equal(bWatched.seen, [], "applyEnvelopeInSlices: a watcher");
  holdsAll(b, w, "node 2");
  // Request path: a's request (carrying its entries) handled by node 3 in slices.
  const c = own(await Node.open({ id: 3 }));
  const cSeen: string[] = [];
  const cWatch = own(watchInvariant(c, () => w.batches));
  await c.handleEnvelopeInSlices(wire(a.prepareSync(3)), { sliceEntries: 3, pause: async () => { cSeen.push(...halfBatches(c, w.batches)); } });
  cSeen.push(...halfBatches(c, w.batches));
  const cWatched = await cWatch.stop();
  assert.equal(cSeen.slice(0, 5), [], "handleEnvelopeInSlices: a reader between slices");
  assert.equal(cWatched.seen, [], "handleEnvelopeInSlices: a watcher");
  holdsAll(c, w, "node 3");
  assert.is(c.digest(), a.digest());
});

test("forwarding A → B → C (C never talks to A), small pages and slices: C never holds part of a batch", async () => {
  const c = own(await cluster([1, 2, 3], { net: { seed: 31 }, peers: (id) => (id === 2 ? [1, 3] : [2]), node: { sync: { maxDeltaEntries: 5 } }, sync: { mergeSliceEntries: 3 } }));
  const w = await workload(c.node(1), { seed: 303, ops: 30, prefix: "a/", leading: [25] });
  const obs = own(observer(() => halfBatchesOn([c.node(2), c.node(3)], w.batches)));
  const rounds = await c.converge(40);
  const seen = obs.stop();
  assert.equal(seen, [], "an observer on every event-loop turn");
  assert.ok(rounds > 1 && obs.checks() > rounds);
  holdsAll(c.node(3), w, "node 3");
});

test("a forwarder's restart (snapshot + WAL): what C receives from the reopened B keeps every batch whole", async () => {
  const c = own(await cluster([1, 2, 3], { net: { seed: 41 }, durable: true, peers: (id) => (id === 2 ? [1, 3] : [2]), node: { sync: { maxDeltaEntries: 5 } }, sync: { mergeSliceEntries: 3 } }));
  const [a, b] = [c.node(1), c.node(2)];
  // B pulls from A (page by page, slices of 3) without a round with C: C stays away meanwhile.
  const toB = () => pull(b, a, { slicing: { sliceEntries: 3, pause: macrotask } });
  const w = await workload(a, { seed: 404, ops: 20, prefix: "a/", leading: [12] });
  await toB();
  await b.persist(); // these batches are in B's snapshot …
  await workload(a, { seed: 405, ops: 20, prefix: "a/", leading: [9] }, w);
  await toB(); // … these in its WAL
  holdsAll(b, w, "node 2 before its restart");
  await c.kill(2);
  await c.open(2);
  const obs = own(observer(() => halfBatchesOn([c.node(3)], w.batches)));
  let rounds = 0;
  for (; rounds < 40 && c.node(3).digest() !== c.node(2).digest(); rounds++) await c.sync(3).syncOnce();
  const seen = obs.stop();
  assert.equal(seen, [], "C, on every event-loop turn");
  assert.is(c.node(3).digest(), c.node(2).digest(), `C converged with the reopened B (${rounds} rounds)`);
  holdsAll(c.node(3), w, "node 3");
});

/** Polls (bounded, no timing asserted) until `done`; fails after `max` polls. */
async function until(done: () => boolean, what: string, max = 3000): Promise<void> {
  for (let i = 0; i < max && !done(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(done(), `never: ${what}`);
}

for (const maxPushEntries of [4096, 10]) {
  test(`pushes (SyncManager push path, maxPushEntries ${maxPushEntries}, slices of 3 at the receiver): no push exposes part of a batch`, async () => {
    const c = own(await cluster([1, 2], { net: { seed: 51 }, sync: { intervalMs: 600_000, pushWindowMs: 5, mergeSliceEntries: 3, maxPushEntries } }));
    await c.round(); // both synced: from here on, only pushes carry node 1's writes
    const stats = c.sync(1).stats;
    c.sync(1).start();
    await until(() => stats.rounds > 0, "the first background round");
    const w: Written = { batches: [], singles: [] };
    const obs = own(observer(() => halfBatches(c.node(2), w.batches)));
    for (let wave = 0; wave < 4; wave++) {
      // A flush sends, skips a busy peer, or holds back batches not whole in the queue.
      const flushed = () => stats.pushesSent + stats.pushSkipped + stats.pushHeldBack;
      const before = flushed();
      await workload(c.node(1), { seed: 500 + wave, ops: 10, prefix: `a${wave}/` }, w);
      await until(() => flushed() > before, `a push of wave ${wave}`);
      await c.net.settled();
    }
    await c.sync(1).stop();
    const pushed = c.node(2).size;
    await c.converge(10); // what the queue evicted or skipped is the rounds' to deliver
    const seen = obs.stop();
    assert.ok(stats.pushesSent > 0 && pushed > 0, "writes were pushed");
    if (maxPushEntries < 60) assert.ok(stats.pushEvicted > 0 && stats.pushHeldBack > 0, "the queue evicted entries, and batches not whole were held back");
    assert.equal(seen, [], "node 2, on every event-loop turn");
    holdsAll(c.node(2), w, "node 2");
  });
}

test("message loss (drops on every link), small pages and slices, writes between rounds: INV on every turn, then convergence", async () => {
  const ids = [1, 2, 3, 4];
  const c = own(await cluster(ids, { net: { seed: 61, drop: 0.2 }, node: { sync: { maxDeltaEntries: 8 } }, sync: { mergeSliceEntries: 3 } }));
  const w: Written = { batches: [], singles: [] };
  const obs = own(observer(() => halfBatchesOn(ids.map((id) => c.node(id)), w.batches)));
  for (let wave = 0; wave < 4; wave++) {
    for (const id of ids) await workload(c.node(id), { seed: 600 + 10 * wave + id, ops: 3, prefix: `n${id}w${wave}/`, maxBatch: 30 }, w);
    await c.rounds(3);
  }
  assert.ok(c.net.stats.dropped > 20, `messages were lost (${c.net.stats.dropped})`);
  // Still lossy: a paged round that fails resumes from its cursor (PROTOCOL §2), so the
  // cluster converges under the same loss it was written under.
  await c.converge(60);
  const seen = obs.stop();
  assert.equal(seen, [], "every node, on every event-loop turn");
  for (const id of ids) holdsAll(c.node(id), w, `node ${id}`);
});

test("LWW per key: a batch key that loses to a newer entry at the receiver keeps the winner; the batch's other keys apply", async () => {
  const clock = manualClock();
  const a = own(await Node.open({ id: 1, clock, sync: { maxDeltaEntries: 2 } }));
  const b = own(await Node.open({ id: 2, clock, sync: { maxDeltaEntries: 2 } }));
  const batch = await a.batch([{ type: "put", key: "x", value: "a" }, { type: "put", key: "y", value: "a" }, { type: "delete", key: "z" }, { type: "put", key: "q", value: "a" }]);
  clock.advance(10);
  const newer = await b.put("y", "b, newer");
  await pull(b, a, { slicing: { sliceEntries: 1, pause: async () => undefined } });
  assert.is(text(b.get("x")?.value), "a");
  assert.is(text(b.get("q")?.value), "a");
  assert.is(b.getIncludingTombstones("z")?.seq, batch[2]!.seq, "the batch's delete applied");
  assert.equal([b.get("y")?.node, b.get("y")?.seq, text(b.get("y")?.value)], [2, newer.seq, "b, newer"], "the losing key keeps the newer entry");
  await pull(a, b);
  assert.is(text(a.get("y")?.value), "b, newer", "and the origin takes the winner");
  assert.is(a.digest(), b.digest());
});

test("the part of a batch still live at the sender arrives together (pages of 7, slices of 3), also forwarded; one live entry left is no range", async () => {
  const [a, b, c] = [own(await Node.open({ id: 1, sync: { maxDeltaEntries: 7 } })), own(await Node.open({ id: 2, sync: { maxDeltaEntries: 7 } })), own(await Node.open({ id: 3, sync: { maxDeltaEntries: 7 } }))];
  const ops = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => ({ type: "put" as const, key: `${prefix}/${i}`, value: `${prefix} ${i}` }));
  const [p, q, r] = [await a.batch(ops("p", 30)), await a.batch(ops("q", 5)), await a.batch(ops("r", 4))];
  // Later writes of the origin supersede 10 of p's keys and 4 of q's: 20 of p and 1 of q stay live.
  for (let i = 0; i < 10; i++) await a.put(`p/${i}`, "later");
  for (let i = 0; i < 4; i++) await a.put(`q/${i}`, "later");
  const live = [p.slice(10), q.slice(4), r];
  const slicing = (n: Node, seen: string[]) => ({ sliceEntries: 3, pause: async () => { seen.push(...halfBatches(n, live)); } });
  const seen: string[] = [];
  await pull(b, a, { slicing: slicing(b, seen), afterPage: () => seen.push(...halfBatches(b, live)) });
  assert.equal(seen.slice(0, 5), [], "node 2, between pages and slices");
  assert.is(b.digest(), a.digest());
  for (let i = 0; i < 10 && c.digest() !== b.digest(); i++) await pull(c, b, { slicing: slicing(c, seen), afterPage: () => seen.push(...halfBatches(c, live)) });
  assert.equal(seen.slice(0, 5), [], "node 3 (forwarded by node 2), between pages and slices");
  assert.is(c.digest(), a.digest(), "converged");
  assert.equal([heldOf(c, live[0]!), heldOf(c, live[1]!), text(c.get("p/0")?.value)], [20, 1, "later"]);
});

test("mixed builds: a receiver that ignores the batch ranges (an older build) still converges", async () => {
  const a = own(await Node.open({ id: 1, sync: { maxDeltaEntries: 5 } }));
  const b = own(await Node.open({ id: 2, sync: { maxDeltaEntries: 5 } }));
  const w = await workload(a, { seed: 707, ops: 30, prefix: "a/", leading: [20] });
  await workload(b, { seed: 708, ops: 30, prefix: "b/" }, w);
  let withRanges = 0;
  // Counted before they are stripped (withoutRanges edits the envelope in place).
  const older = (env: Envelope) => { if (rangesOf(env) !== undefined) withRanges++; return withoutRanges(env); };
  for (let i = 0; i < 10 && a.digest() !== b.digest(); i++) {
    await pull(b, a, { slicing: { sliceEntries: 3, pause: async () => undefined }, received: older });
    await pull(a, b);
  }
  assert.is(a.digest(), b.digest(), "converged");
  holdsAll(b, w, "the older build");
  assert.ok(withRanges > 0, "the newer sender did send ranges (stripped here)");
});

// Hostile ranges. A range is the contract's { node, first, count } (common.md, ExtTag 26:
// `varu n • n × (varu node • varu first • varu count)`). The hostile envelopes are built
// by hand — encodeEnvelope's bytes without extensions, plus that extension — so that they
// reach the receiver whatever the encoder checks; a valid set is also encoded with
// encodeEnvelope and must give the same bytes (the encoder writes the contract's form).
type Range = { node: number; first: number; count: number };
const T = 1_764_000_000_000;
const UUID5 = "00000000-0000-4000-8000-000000000005";
const BATCH_RANGES_TAG = 26, EXT_FLAG = 0x40;

/** `Envelope.batchRanges` (a cast until the field exists). */
const rangesOf = (env: Envelope): Range[] | undefined => (env as unknown as { batchRanges?: Range[] }).batchRanges;

function envelopeOf(seqs: number[]): Envelope {
  const bytes = encodeRecords(seqs.map((seq) => ({ kind: RecordKind.Value, key: `h/${seq}`, value: new TextEncoder().encode(`v${seq}`), timestamp: T + seq, node: 5, seq })), "bare", 0);
  return envelopeWithEncodedEntries({ version: 1, senderId: 5, senderUuid: UUID5, acks: new Map([[5, Math.max(...seqs)]]) }, { bytes, count: seqs.length, base: 0 });
}

/** `seqs` of origin 5 (keys h/<seq>) with `ranges` as extension 26 (every number below 128: one varint byte). */
function crafted(seqs: number[], ranges: Range[]): Uint8Array {
  const plain = encodeEnvelope(envelopeOf(seqs));
  // "WKVE" • version • flags • senderId 5 • uuid[16] • ackCount 1 • (5, top): 26 bytes, then the entries.
  const at = 6 + 1 + 16 + 1 + 2;
  assert.is(plain[5], 0, "no flags: the extensions go right after the acks");
  const payload = [ranges.length, ...ranges.flatMap((r) => [r.node, r.first, r.count])];
  assert.ok([...payload, seqs.length].every((b) => b < 128));
  const ext = [1, BATCH_RANGES_TAG, payload.length, ...payload];
  const out = new Uint8Array(plain.length + ext.length);
  out.set(plain.subarray(0, at), 0);
  out.set(ext, at);
  out.set(plain.subarray(at, plain.length - 4), at + ext.length);
  out[5] = EXT_FLAG;
  new DataView(out.buffer).setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)) >>> 0, true);
  return out;
}

test("hostile: a batch range naming fewer than two of the envelope's entries is BAD_ENVELOPE, nothing merged", async () => {
  const node = own(await Node.open({ id: 2, clock: () => T + 100 }));
  await node.put("mine", "kept");
  const digest = node.digest();
  const cases: [string, number[], Range[]][] = [
    ["a range holding one of the entries", [1, 2, 5], [{ node: 5, first: 2, count: 3 }]],
    ["a range holding none", [1, 2, 3], [{ node: 5, first: 10, count: 2 }]],
    ["one good range and one holding a single entry", [1, 2, 3, 6], [{ node: 5, first: 1, count: 3 }, { node: 5, first: 6, count: 4 }]],
    ["a range of another origin than its entries", [1, 2, 3], [{ node: 6, first: 1, count: 3 }]],
  ];
  for (const [what, seqs, ranges] of cases) {
    for (const sliced of [false, true]) {
      const where = `${what}${sliced ? " (merged in slices of 1)" : ""}`;
      try {
        const env = decodeEnvelope(crafted(seqs, ranges));
        if (sliced) await node.handleEnvelopeInSlices(env, { sliceEntries: 1, pause: async () => undefined });
        else node.handleEnvelope(env);
        assert.unreachable(`${where}: accepted`);
      } catch (e) {
        assert.ok(isWaveKVError(e) && e.code === "BAD_ENVELOPE", `${where}: ${String(e)}`);
      }
      assert.is(node.digest(), digest, `${where}: nothing merged`);
      assert.is(node.get("h/1"), undefined, `${where}: no entry of it`);
    }
  }
  // Control: a range holding two of its three seqs (the third superseded at the sender) is fine.
  const valid: Range[] = [{ node: 5, first: 1, count: 3 }];
  const bytes = crafted([1, 2, 4], valid);
  assert.equal(rangesOf(decodeEnvelope(bytes)), valid, "the decoder reads the contract's form");
  assert.equal(encodeEnvelope(Object.assign(envelopeOf([1, 2, 4]), { batchRanges: valid })), bytes, "encodeEnvelope writes it");
  node.handleEnvelope(decodeEnvelope(bytes));
  assert.is(text(node.get("h/2")?.value), "v2");
  assert.is(text(node.get("mine")?.value), "kept");
});

test.run();
