// Clocks and the local write path (issue 15 items 2, 3 and 6; issue 16 §1 delete):
// a clock that jumps ahead must not wedge a node, a write peers would refuse fails
// locally, a put that loses says so, and the nodes' own bookkeeping (the reserved
// prefix) is bounded apart from the user's limits. Real nodes, real files; the doubles
// are the network (MemoryNetwork) and the clock.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Node } from "../../src/node/node.js";
import { PeerClocks } from "../../src/sync/clock.js";
import { decodeRecords, encodeRecords } from "../../src/codec/records.js";
import { RecordKind, type RecordInput } from "../../src/core/record.js";
import { ReplicaState } from "../../src/state/replica.js";
import { decodeEnvelope, encodeEnvelope, envelopeWithEncodedEntries } from "../../src/sync/envelope.js";
import { DEFAULT_LIMITS, RESERVED_LIMITS } from "../../src/core/types.js";
import { cluster, manualClock, rejectsWith, text } from "../helpers/cluster.js";
import { freshDirs } from "../helpers/storage-fixtures.js";

const fresh = freshDirs("clock", test.after);
const DAY = 86_400_000;
const T0 = 1_764_000_000_000;
const walBytes = (n: Node) => n.storageStats()!.walBytes;

/** Deliver `records` to `to` as a push from `from`, the way a peer would. */
function push(to: Node, from: number, records: RecordInput[], senderClock?: number) {
  const bytes = encodeRecords(records, "bare", 0);
  const uuid = `00000000-0000-4000-8000-${String(from).padStart(12, "0")}`;
  return to.handleEnvelope(envelopeWithEncodedEntries({ version: 1, senderId: from, senderUuid: uuid, acks: new Map(), pushOnly: true, senderClock }, { bytes, count: records.length, base: 0 }));
}
const rec = (key: string, value: string | null, timestamp: number, node: number, seq: number): RecordInput => ({
  kind: value === null ? RecordKind.Tombstone : RecordKind.Value, key, value: value === null ? null : new TextEncoder().encode(value), timestamp, node, seq,
});

// ---------------------------------------------------------------------------------
// 2. A forward clock jump

test("a write made while the clock was +24 h leaves no floor: once the clock is back, new writes replicate at once, also after a restart", async () => {
  const clock = manualClock(T0);
  const c = await cluster([1, 2], { durable: true, node: (id) => (id === 1 ? { clock } : { clock: manualClock(T0) }) });
  // No peer heard from yet: no evidence, so nothing stops this write.
  clock.set(T0 + DAY);
  const ahead = await c.node(1).put("jumped", "x");
  assert.is(ahead.timestamp, T0 + DAY);
  clock.set(T0 + 1_000);
  const later = await c.node(1).put("later", "y");
  assert.is(later.timestamp, T0 + 1_000, "another key is stamped by the clock, not by our latest stamp");
  const [r] = await c.sync(1).syncOnce();
  assert.is(text(c.node(2).get("later")?.value), "y", "the peer takes the write made after the clock came back");
  assert.is(r!.rejected, 0);
  assert.is(c.node(2).get("jumped"), undefined, "the +24 h entry waits for the peer's clock (drift rule)");
  // The key written while ahead: our next write to it must order after it, which peers
  // would refuse as well: refused locally, with the code, nothing logged.
  const seq = c.node(1).status().nextSeq, wal = walBytes(c.node(1));
  const skew = await rejectsWith(c.node(1).put("jumped", "z"), "CLOCK_SKEW", /"jumped"/);
  assert.match(skew.message, /retry in \d+ ms/);
  await rejectsWith(c.node(1).forcePut("jumped", "z"), "CLOCK_SKEW");
  assert.is(c.node(1).status().nextSeq, seq);
  assert.is(walBytes(c.node(1)), wal);
  // A restart does not bring the future stamping back.
  await c.kill(1);
  await c.open(1, { clock });
  const after = await c.node(1).put("after-restart", "w");
  assert.is(after.timestamp, T0 + 1_000);
  await c.sync(1).syncOnce();
  assert.is(text(c.node(2).get("after-restart")?.value), "w");
  await c.close();
});

test("with peer evidence, a write while the clock is +24 h fails with CLOCK_SKEW, logs nothing, and writes resume when the clock is back", async () => {
  const clock = manualClock(T0);
  const c = await cluster([1, 2], { durable: true, node: (id) => (id === 1 ? { clock } : { clock: manualClock(T0) }) });
  await c.node(1).put("before", "v");
  await c.sync(1).syncOnce(); // node 1 hears node 2's clock in the response
  assert.equal(c.node(1).status().clock.peers.map((p) => p.id), [2]);
  clock.set(T0 + DAY); // and no envelope arrives after the jump
  const digest = c.node(1).digest(), seq = c.node(1).status().nextSeq, wal = walBytes(c.node(1));
  const e = await rejectsWith(c.node(1).put("k", "v"), "CLOCK_SKEW", /this node.s clock is \d+ ms ahead of its peers/);
  assert.match(e.message, /NTP/);
  await rejectsWith(c.node(1).delete("before"), "CLOCK_SKEW");
  await rejectsWith(c.node(1).forcePut("k", "v"), "CLOCK_SKEW");
  assert.equal([c.node(1).digest(), c.node(1).status().nextSeq, walBytes(c.node(1))], [digest, seq, wal], "nothing logged, no seq spent");
  const offset = c.node(1).status().clock.offsetMs!;
  assert.ok(offset <= -DAY + 60_000 && offset >= -DAY - 60_000, `offset ${offset}`);
  clock.set(T0 + 2_000);
  await c.node(1).put("k", "v");
  await c.sync(1).syncOnce();
  assert.is(text(c.node(2).get("k")?.value), "v");
  await c.close();
});

test("every envelope carries the sender's clock; requests, responses and pushes all count as evidence", async () => {
  const c = await cluster([1, 2, 3], { node: (id) => ({ clock: manualClock(T0 + id * 1_000) }) });
  const req = decodeEnvelope(encodeEnvelope(c.node(1).prepareSync(2)));
  assert.is(req.senderClock, T0 + 1_000);
  assert.is(c.node(1).status().clock.offsetMs, null, "no peer heard from: no estimate");
  const resp = c.node(2).handleEnvelope(req); // request → node 2 hears node 1
  assert.is(resp.senderClock, T0 + 2_000);
  c.node(1).applyEnvelope(decodeEnvelope(encodeEnvelope(resp))); // response → node 1 hears node 2
  push(c.node(3), 1, [], T0 + 1_000); // push → node 3 hears node 1
  const near = (v: number | null | undefined, want: number) => v !== null && v !== undefined && Math.abs(v - want) < 5_000;
  assert.ok(near(c.node(2).status().clock.peers[0]?.offsetMs, -1_000), JSON.stringify(c.node(2).status().clock));
  assert.ok(near(c.node(1).status().clock.offsetMs, 1_000), JSON.stringify(c.node(1).status().clock));
  assert.ok(near(c.node(3).status().clock.offsetMs, -2_000), JSON.stringify(c.node(3).status().clock));
  await c.close();
});

test("a SyncManager push carries the sender's clock, and the receiver counts it", async () => {
  const clocks: (number | undefined)[] = [];
  const c = await cluster([1, 2], {
    net: { seed: 1, tamper: (m) => { if (m.channel === "push" && m.direction === "request") clocks.push(decodeEnvelope(m.body).senderClock); return undefined; } },
    node: (id) => ({ clock: manualClock(T0 + id * 1_000) }),
    sync: { intervalMs: 3_600_000, pushWindowMs: 1 },
  });
  c.sync(1).start();
  await c.node(1).put("k", "v");
  for (let i = 0; i < 200 && !c.node(2).get("k"); i++) await new Promise((r) => setTimeout(r, 5));
  await c.net.settled();
  assert.ok(clocks.length > 0 && clocks.every((t) => t === T0 + 1_000), JSON.stringify(clocks));
  assert.ok(c.node(2).status().clock.peers.some((p) => p.id === 1));
  await c.close();
});

test("a clock reading the envelope cannot carry is left out: our encoder never fails on it", async () => {
  const c = await cluster([1, 2], { node: (id) => ({ clock: id === 1 ? () => T0 + 0.5 : manualClock(T0) }) });
  await c.node(2).put("k", "v");
  const req = c.node(1).prepareSync(2);
  assert.is(req.senderClock, undefined);
  assert.ok(encodeEnvelope(req).length > 0);
  await c.sync(1).syncOnce();
  assert.is(text(c.node(1).get("k")?.value), "v");
  await c.close();
});

test("PeerClocks: lower median, anchored to the monotonic clock, samples expire", () => {
  let wall = T0, mono = 0;
  const clocks = new PeerClocks(() => wall, () => mono, 600_000);
  assert.is(clocks.offset(), null);
  clocks.note(2, T0 + 100);
  clocks.note(3, T0 - 5_000);
  assert.is(clocks.offset(), -5_000, "with two peers, the one further behind: a liar ahead cannot hide our skew");
  clocks.note(4, T0 + 300);
  assert.is(clocks.offset(), 100);
  // Our wall clock jumps; the monotonic one does not: the estimate sees the jump at once.
  wall += DAY;
  assert.is(clocks.offset(), 100 - DAY);
  mono += 600_001;
  wall += 600_001;
  assert.is(clocks.offset(), null, "old samples are not evidence");
  clocks.note(2, Number.NaN);
  assert.is(clocks.offset(), null);
});

// ---------------------------------------------------------------------------------
// Per-key ordering of our own writes

test("own writes to one key stay ordered when the clock steps back, pending ones included; other keys are stamped by the clock", async () => {
  const dir = fresh();
  const clock = manualClock(5_000);
  const node = await Node.open({ id: 1, dir, clock, fsync: "always" });
  const first = node.put("k", "first");
  clock.set(1_000);
  const second = node.put("k", "second"); // the first is still pending (its fsync)
  const other = node.put("other", "o");
  const [a, b, o] = await Promise.all([first, second, other]);
  assert.equal([a.timestamp, b.timestamp, o.timestamp], [5_000, 5_000, 1_000]);
  assert.ok(b.seq > a.seq);
  assert.is(text(node.get("k")!.value), "second");
  const third = await node.put("k", "third");
  assert.is(third.timestamp, 5_000);
  assert.is(text(node.get("k")!.value), "third");
  await node.close();
});

// ---------------------------------------------------------------------------------
// 3. A put that loses locally

test("a put or delete that would lose to a future entry rejects SUPERSEDED with the winner, and changes nothing", async () => {
  const dir = fresh();
  const clock = manualClock(T0);
  const node = await Node.open({ id: 1, dir, clock, limits: { maxClockDriftMs: 10 * 60_000 } });
  await node.put("k", "mine");
  push(node, 2, [rec("k", "theirs", T0 + 60_000, 2, 1)]);
  const digest = node.digest(), seq = node.status().nextSeq, wal = walBytes(node);
  const err = await rejectsWith(node.put("k", "plain"), "SUPERSEDED", /forcePut/);
  assert.equal({ ...err.winner!, value: text(err.winner!.value) }, { key: "k", value: "theirs", timestamp: T0 + 60_000, node: 2, seq: 1 });
  await rejectsWith(node.delete("k"), "SUPERSEDED");
  assert.equal([node.digest(), node.status().nextSeq, walBytes(node)], [digest, seq, wal], "nothing logged, no seq spent");
  assert.is(text(node.get("k")!.value), "theirs"); // forcePut writes over it: test/node/node.ts
  await node.close();
});

test("a put that loses only at apply time (a merge landed during its fsync) rejects SUPERSEDED; its seq stays spent", async () => {
  const dir = fresh();
  const node = await Node.open({ id: 1, dir, clock: manualClock(T0), fsync: "always" });
  const put = node.put("k", "mine");
  push(node, 2, [rec("k", "theirs", T0 + 1_000, 2, 1)]);
  const err = await rejectsWith(put, "SUPERSEDED", /was logged, then lost/);
  assert.is(err.winner!.node, 2);
  assert.is(text(node.get("k")!.value), "theirs");
  assert.is(node.status().nextSeq, 2, "the logged record spent seq 1");
  await node.close();
});

// ---------------------------------------------------------------------------------
// issue 16 §1: delete of a key this node does not hold

test("delete of a key this node never saw writes a tombstone that removes a peer's older put", async () => {
  const c = await cluster([1, 2], { node: (id) => ({ clock: manualClock(T0 + (id === 2 ? 1_000 : 0)) }) });
  await c.node(1).put("k", "old");
  const t = await c.node(2).delete("k");
  assert.ok(t && t.value === null && t.node === 2 && t.seq === 1);
  await c.rounds(2);
  assert.is(c.node(1).get("k"), undefined);
  assert.is(c.node(2).get("k"), undefined);
  assert.ok(c.converged());
  await c.close();
});

// ---------------------------------------------------------------------------------
// 6. The reserved prefix

test("reserved prefix: only node N writes __wavekv/peers/<N>; everything else under it is refused, locally and from peers", async () => {
  const node = await Node.open({ id: 1, clock: manualClock(T0) });
  await node.put("__wavekv/peers/1", "http://127.0.0.1:8001");
  for (const key of ["__wavekv/peers/2", "__wavekv/peers/01", "__wavekv/peers/1 ", "__wavekv/peers/4294967296", "__wavekv/other", "__wavekv/"]) {
    await rejectsWith(node.put(key, "http://127.0.0.1:9"), "RESERVED_KEY");
  }
  await rejectsWith(node.delete("__wavekv/peers/2"), "RESERVED_KEY");
  await rejectsWith(node.put("__wavekv/peers/1", "x".repeat(RESERVED_LIMITS.maxValueBytes + 1)), "RESERVED_KEY");
  assert.is(node.status().nextSeq, 2);
  const out = push(node, 2, [
    rec("__wavekv/peers/2", "http://127.0.0.1:8002", T0, 2, 1),
    rec("__wavekv/peers/1", "http://127.0.0.1:9", T0 + 1, 2, 2), // would win LWW: refused by the rule
    rec("__wavekv/peers/3", "http://127.0.0.1:9", T0, 2, 3),
    rec("__wavekv/secret", "x", T0, 2, 4),
  ]);
  assert.ok(out);
  assert.is(text(node.get("__wavekv/peers/2")?.value), "http://127.0.0.1:8002");
  assert.is(text(node.get("__wavekv/peers/1")?.value), "http://127.0.0.1:8001", "a peer cannot rewrite our address");
  assert.is(node.get("__wavekv/peers/3"), undefined);
  assert.is(node.get("__wavekv/secret"), undefined);
  assert.is(node.status().entriesRejected, 3);
  await node.close();
});

test("reserved keys count neither in the user's limits nor in status().keys, and have a bound of their own", async () => {
  const node = await Node.open({ id: 1, limits: { maxKeys: 2, maxTotalBytes: 8 } });
  await node.put("__wavekv/peers/1", "http://127.0.0.1:8001");
  await node.put("a", "123");
  await node.put("b", "1");
  await rejectsWith(node.put("c", ""), "STORE_FULL");
  assert.equal([node.status().keys, node.status().reservedKeys, node.status().tombstones], [2, 1, 0]);
  // One address-book entry per origin, from as many origins as the bound allows, in one push.
  const records = Array.from({ length: RESERVED_LIMITS.maxKeys }, (_, i) => rec(`__wavekv/peers/${i + 2}`, "u", T0, i + 2, 1));
  push(node, 2, records);
  assert.is(node.status().reservedKeys, RESERVED_LIMITS.maxKeys);
  assert.is(node.status().entriesRejected, 1, "the bound refuses the one past it");
  await node.delete("__wavekv/peers/1");
  assert.equal([node.status().keys, node.status().reservedKeys, node.status().tombstones], [2, RESERVED_LIMITS.maxKeys, 0]);
  await node.close();
});

test("a store filled to maxKeys by a peer can still write its own address-book entry, and reopens", async () => {
  const limits = { maxKeys: 5 };
  const c = await cluster([1, 2], { durable: true, node: (id) => (id === 1 ? { limits } : {}) });
  for (let i = 0; i < 5; i++) await c.node(2).put(`k${i}`, "v");
  await c.node(2).put("__wavekv/peers/2", "http://127.0.0.1:8002");
  const [r] = await c.sync(1).syncOnce();
  assert.is(r!.rejected, 0);
  await rejectsWith(c.node(1).put("user", "v"), "STORE_FULL");
  await c.node(1).put("__wavekv/peers/1", "http://127.0.0.1:8001");
  await c.kill(1);
  await c.open(1, { limits });
  assert.is(text(c.node(1).get("__wavekv/peers/1")?.value), "http://127.0.0.1:8001");
  assert.equal([c.node(1).status().keys, c.node(1).status().reservedKeys], [5, 2]);
  await c.node(1).put("__wavekv/peers/1", "http://127.0.0.1:8101");
  await c.close();
});

test("a data directory holding address-book entries an older build wrote for other ids opens without them (their seqs stay spent)", async () => {
  const c = await cluster([1, 2], { durable: true, node: { clock: manualClock(T0) } });
  await c.node(1).put("__wavekv/peers/1", "http://127.0.0.1:8001");
  await c.node(1).put("user", "v");
  await c.kill(1);
  // What an older `serve` logged: node 1 publishing its configured peer's address under id 2.
  const { openStorage } = await import("../../src/storage/storage.js");
  const storage = await openStorage({ dir: c.dirOf(1)!, nodeId: 1, fsync: "never" });
  await storage.append([rec("__wavekv/peers/2", "http://127.0.0.1:8002", T0, 1, 3)]);
  await storage.close();
  const warnings: string[] = [];
  await c.open(1, { onWarning: (m) => warnings.push(m) });
  assert.is(c.node(1).get("__wavekv/peers/2"), undefined);
  assert.match(warnings.join("\n"), /__wavekv\/peers\/2/);
  assert.equal([c.node(1).status().reservedKeys, c.node(1).status().nextSeq], [1, 4], "its seq stays spent");
  await c.close();
});

test("a reserved entry refused by the owner rule does not hold back the acks (it can never be admitted); one refused by the count bound does", () => {
  const state = new ReplicaState(1);
  const merge = (records: RecordInput[]) => state.mergeBatch(decodeRecords(encodeRecords(records, "bare", 0), "bare", 0, records.length), { limits: DEFAULT_LIMITS, now: T0 });
  const forged = merge([rec("__wavekv/peers/9", "http://127.0.0.1:9", T0, 3, 1), rec("k", "v", T0, 3, 2)]);
  assert.equal([forged.merged, forged.rejected, forged.complete], [1, 1, true]);
  const many = Array.from({ length: RESERVED_LIMITS.maxKeys + 1 }, (_, i) => rec(`__wavekv/peers/${i + 10}`, "u", T0, i + 10, 1));
  const full = merge(many);
  assert.equal([full.merged, full.rejected, full.complete], [RESERVED_LIMITS.maxKeys, 1, false]);
  assert.is(state.reservedKeys, RESERVED_LIMITS.maxKeys);
});

test.run();
