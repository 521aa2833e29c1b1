// Replication status and write concern (docs/design/0029): Node.replication() and
// Node.replicated(entry, { peers, signal }) over real Nodes and SyncManagers on a MemoryNetwork.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Node } from "../../src/node/node.js";
import { OwnWriteLog } from "../../src/node/replication-log.js";
import { cluster, rejectsWith } from "../helpers/cluster.js";

const peerOf = (node: Node, peer: number) => node.replication().peers.find((p) => p.peer === peer)!;

/** Settles within the test or says what it was waiting for (no timed assertion: a generous bound). */
function settled<T>(p: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms); })]).finally(() => clearTimeout(timer));
}

test("replication(): writes and bytes behind per peer, until a round confirms them", async () => {
  const c = await cluster([1, 2, 3]);
  const n1 = c.node(1);
  await n1.put("a", "12345");
  await n1.put("bb", "xy");
  await n1.delete("a");
  let r = n1.replication();
  assert.is(r.id, 1);
  assert.is(r.lastSeq, 3);
  assert.is(r.managed, true);
  for (const p of r.peers) {
    assert.is(p.ackedSeq, 0);
    assert.is(p.entriesBehind, 3);
    assert.is(p.bytesBehind, 6 + 4 + 1); // "a"+"12345", "bb"+"xy", "a" (tombstone)
    assert.is(p.bytesExact, true);
    assert.is(p.lastContactAt, 0);
  }
  await c.sync(1).syncOnce();
  r = n1.replication();
  for (const p of r.peers) {
    assert.is(p.ackedSeq, 3, `peer ${p.peer}`);
    assert.is(p.entriesBehind, 0);
    assert.is(p.bytesBehind, 0);
    assert.ok(p.lastContactAt > 0 && p.ackedAt > 0);
    assert.is(p.link?.rounds, 1);
    assert.type(p.link?.lastRoundMs, "number");
  }
  await n1.put("c", "z");
  assert.is(peerOf(n1, 2).entriesBehind, 1);
  assert.is(peerOf(n1, 2).bytesBehind, 2);
  await c.close();
});

test("replication(): a peer that fails shows its last error; a node without a manager reports what it knows", async () => {
  const c = await cluster([1, 2]);
  c.net.down(2);
  await c.node(1).put("k", "v");
  await c.sync(1).syncOnce();
  const p = peerOf(c.node(1), 2);
  assert.is(p.entriesBehind, 1);
  assert.is(p.link?.consecutiveFailures, 1);
  assert.type(p.link?.lastError, "string");
  await c.close();
  const lone = await Node.open({ id: 7, peers: [8] });
  await lone.put("x", "y");
  const r = lone.replication();
  assert.is(r.managed, false);
  assert.is(r.peers[0]!.link, undefined);
  assert.is(r.peers[0]!.entriesBehind, 1);
  await lone.close();
  assert.throws(() => lone.replication(), /CLOSED/);
});

test("replicated(): resolves once every peer confirmed, under 40 % message loss", async () => {
  const c = await cluster([1, 2, 3], { net: { seed: 21, drop: 0.4 }, sync: { intervalMs: 60_000, retryMs: 5, maxBackoffMs: 40, pushWindowMs: 5 } });
  try {
    for (const id of c.ids) c.sync(id).start();
    const e = await c.node(1).put("k", "v");
    assert.is(await settled(c.node(1).replicated(e), "replicated all"), e);
    // Confirmed means held: every peer has the write now.
    for (const id of [2, 3]) assert.is(c.node(id).getIncludingTombstones("k")?.seq, e.seq, `node ${id}`);
  } finally {
    await c.close();
  }
});

test("replicated(): peers: n resolves with n confirmations while another peer is down", async () => {
  const c = await cluster([1, 2, 3], { sync: { intervalMs: 60_000, retryMs: 5, maxBackoffMs: 40 } });
  try {
    for (const id of c.ids) c.sync(id).start();
    c.net.down(3);
    const e = await c.node(1).put("k", "v");
    await settled(c.node(1).replicated(e, { peers: 1 }), "replicated 1");
    assert.is(c.node(2).get("k")?.seq, e.seq);
    assert.is(c.node(3).get("k"), undefined);
    // peers: 0 needs nobody.
    assert.is(await c.node(1).replicated(e, { peers: 0 }), e);
  } finally {
    await c.close();
  }
});

test("replicated(): wakes on the ack a round brings, no manager needed (no polling)", async () => {
  const c = await cluster([1, 2]);
  const e = await c.node(1).put("k", "v");
  let done = false;
  const wait = c.node(1).replicated(e).then((x) => { done = true; return x; });
  await new Promise((r) => setTimeout(r, 20));
  assert.is(done, false, "nothing confirmed it yet");
  // The peer's own round with us carries its acks in its request: that wakes the wait too.
  await c.sync(1).syncOnce();
  assert.is(await settled(wait, "after a round"), e);
  await c.close();
});

test("replicated(): an abort rejects with NOT_REPLICATED, and the write stands", async () => {
  const c = await cluster([1, 2]);
  c.net.down(2);
  const e = await c.node(1).put("k", "v");
  const ctrl = new AbortController();
  const wait = c.node(1).replicated(e, { signal: ctrl.signal });
  ctrl.abort(new Error("gave up"));
  const err = await rejectsWith(wait, "NOT_REPLICATED", /gave up.*0 of 1/);
  assert.is((err.cause as Error).message, "gave up");
  assert.is(c.node(1).get("k")?.seq, e.seq);
  // Already aborted: rejects at once.
  await rejectsWith(c.node(1).replicated(e, { signal: AbortSignal.abort() }), "NOT_REPLICATED");
  await c.close();
});

test("replicated(): close rejects a wait with CLOSED, and later calls too", async () => {
  const c = await cluster([1, 2]);
  c.net.down(2);
  const e = await c.node(1).put("k", "v");
  const wait = c.node(1).replicated(e);
  await c.node(1).close();
  await rejectsWith(wait, "CLOSED");
  await rejectsWith(c.node(1).replicated(e), "CLOSED");
  await c.close();
});

test("replicated(): a peer removed mid-wait is no longer waited for (all), or fails an n it made impossible", async () => {
  const c = await cluster([1, 2, 3]);
  c.net.down(3);
  const e = await c.node(1).put("k", "v");
  const all = c.node(1).replicated(e, { peers: "all" });
  const two = c.node(1).replicated(e, { peers: 2 });
  await c.sync(1).syncOnce(); // peer 2 confirms, peer 3 is down
  await c.node(1).removePeer(3);
  assert.is(await settled(all, "all after removal"), e);
  await rejectsWith(two, "NOT_REPLICATED", /removed/);
  await c.close();
});

test("replicated(): bad arguments are refused and change nothing", async () => {
  const c = await cluster([1, 2]);
  const e = await c.node(1).put("k", "v");
  const other = await c.node(2).put("o", "v");
  await rejectsWith(c.node(1).replicated(other), "INVALID_ARGUMENT", /write of this node/);
  await rejectsWith(c.node(1).replicated({ ...e, seq: 99 }), "INVALID_ARGUMENT");
  await rejectsWith(c.node(1).replicated(e, { peers: 2 }), "INVALID_ARGUMENT", /more confirmations/);
  await rejectsWith(c.node(1).replicated(e, { peers: -1 }), "INVALID_ARGUMENT");
  await rejectsWith(c.node(1).replicated(e, { peers: "some" as never }), "INVALID_ARGUMENT");
  await rejectsWith(c.node(1).replicated(null as never), "INVALID_ARGUMENT");
  await rejectsWith(c.node(1).replicated(e, { signal: {} as never }), "INVALID_ARGUMENT");
  await c.close();
});

test("OwnWriteLog: bytes above an ack, pruning, writes before the log, thinning past its bound", () => {
  const log = new OwnWriteLog();
  for (let s = 11; s <= 20; s++) log.add(s, s);
  assert.equal(log.bytesAbove(20, 20), { bytes: 0, exact: true });
  assert.equal(log.bytesAbove(15, 20), { bytes: 16 + 17 + 18 + 19 + 20, exact: true });
  assert.equal(log.bytesAbove(10, 20), { bytes: 155, exact: true });
  // Seqs 1..10 were written before the log began: unknown bytes.
  assert.is(log.bytesAbove(3, 20).exact, false);
  log.dropThrough(14);
  assert.is(log.size, 6);
  assert.equal(log.bytesAbove(15, 20), { bytes: 90, exact: true });
  assert.equal(log.bytesAbove(14, 20), { bytes: 105, exact: true });
  assert.is(log.bytesAbove(12, 20).exact, false);
  // Never started: exact only when nothing is behind.
  assert.equal(new OwnWriteLog().bytesAbove(5, 5), { bytes: 0, exact: true });
  assert.is(new OwnWriteLog().bytesAbove(4, 5).exact, false);
  // Past the bound (2^18 unconfirmed) samples thin out: totals stay right, answers say "not exact".
  const big = new OwnWriteLog();
  const n = (1 << 18) + 10;
  for (let s = 1; s <= n; s++) big.add(s, 1);
  assert.ok(big.size <= 1 << 18);
  const at = big.bytesAbove(n - 1, n);
  assert.is(at.bytes, 1, "the latest write keeps its own sample");
  assert.is(at.exact, false);
  assert.is(big.bytesAbove(0, n).bytes, n);
});

test.run();
