// Replication end to end: real Nodes and SyncManagers over a MemoryNetwork (the only
// double, with the clock where a test says so). Behaviours after upstream wavekv's tests.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Node } from "../../src/node/node.js";
import { SyncManager } from "../../src/node/manager.js";
import { MemoryNetwork, dropOneEntry } from "../../src/transport/memory.js";
import { decodeEnvelope, encodeEnvelope, ENVELOPE_VERSION } from "../../src/sync/envelope.js";
import type { Transport } from "../../src/transport/transport.js";
import { cluster, manualClock, rejectsWith, text, warningSink } from "../helpers/cluster.js";
import { runScript, srcDir } from "../helpers/procs.js";

const ackOf = (node: Node, peer: number) => node.status().peers.find((p) => p.id === peer)?.ack ?? 0;

test("two nodes converge, from either side", async () => {
  const c = await cluster([1, 2]);
  await c.node(1).put("a", "1");
  await c.node(2).put("b", "2");
  const [r] = await c.sync(1).syncOnce();
  assert.is(r!.ok, true);
  assert.is(r!.sentEntries, 1);
  assert.is(r!.receivedEntries, 1);
  assert.is(r!.merged, 1);
  assert.is(r!.digestMatch, true);
  assert.is(text(c.node(2).get("a")?.value), "1");
  assert.is(text(c.node(1).get("b")?.value), "2");
  await c.node(2).put("c", "3");
  await c.sync(2).syncOnce();
  assert.is(text(c.node(1).get("c")?.value), "3");
  assert.ok(c.converged());
  await c.close();
});

test("a delete propagates as a tombstone", async () => {
  const c = await cluster([1, 2]);
  await c.node(1).put("k", "v");
  await c.round();
  assert.ok(c.node(2).get("k"));
  await c.node(1).delete("k");
  await c.sync(2).syncOnce(); // the other side pulls it
  assert.is(c.node(2).get("k"), undefined);
  assert.is(c.node(2).getIncludingTombstones("k")!.value, null);
  assert.is(c.node(2).getIncludingTombstones("k")!.node, 1);
  assert.ok(c.converged());
  await c.close();
});

test("concurrent writes to one key resolve to the same winner everywhere", async () => {
  const clocks = new Map([[1, manualClock(5_000)], [2, manualClock(7_000)], [3, manualClock(6_000)]]);
  const c = await cluster([1, 2, 3], { node: (id) => ({ clock: clocks.get(id)! }) });
  await Promise.all([1, 2, 3].map((id) => c.node(id).put("k", `from ${id}`)));
  await c.converge();
  for (const id of [1, 2, 3]) assert.is(text(c.node(id).get("k")!.value), "from 2", `node ${id}`);
  await c.close();
});

test("equal timestamps are broken by node id, not by tombstone, also after WAL replay", async () => {
  // The discriminating fixture: the tombstone has the higher seq but the lower node id.
  const clock = manualClock(10_000);
  const c = await cluster([1, 2], { durable: true, node: { clock } });
  await c.node(1).put("k", "one");
  const tomb = await c.node(1).delete("k");
  const value = await c.node(2).put("k", "two");
  assert.equal([tomb!.timestamp, tomb!.seq, value.timestamp, value.seq], [10_000, 2, 10_000, 1]);
  await c.converge();
  for (const id of [1, 2]) assert.is(text(c.node(id).get("k")?.value), "two", `node ${id}`);
  const digest = c.node(1).digest();
  for (const id of [1, 2]) {
    await c.kill(id);
    await c.open(id, { clock });
  }
  for (const id of [1, 2]) assert.is(text(c.node(id).get("k")?.value), "two", `node ${id} after replay`);
  assert.is(c.node(1).digest(), digest);
  assert.ok(c.converged());
  await c.close();
});

test("a delta carries only what the peer is missing, and overwrites collapse", async () => {
  const c = await cluster([1, 2]);
  for (let i = 0; i < 50; i++) await c.node(1).put(`old/${i}`, "v");
  await c.converge();
  for (let i = 0; i < 3; i++) await c.node(1).put(`new/${i}`, "v");
  for (let i = 0; i < 5; i++) await c.node(1).put("new/0", `overwrite ${i}`);
  await c.node(2).put("theirs", "x");
  const [r] = await c.sync(1).syncOnce();
  assert.is(r!.sentEntries, 3, "three keys changed; five overwrites of one travel as one entry");
  assert.is(r!.receivedEntries, 1);
  assert.is(text(c.node(2).get("new/0")!.value), "overwrite 4");
  const [quiet] = await c.sync(1).syncOnce();
  assert.equal([quiet!.sentEntries, quiet!.receivedEntries, quiet!.merged], [0, 0, 0]);
  await c.close();
});

test("a bootstrap delta includes tombstones", async () => {
  const c = await cluster([1, 2], { peers: (id) => (id === 1 ? [] : [1]) });
  await c.node(1).put("kept", "v");
  await c.node(1).put("gone", "v");
  await c.node(1).delete("gone");
  const [r] = await c.sync(2).bootstrap();
  assert.is(r!.receivedEntries, 2);
  assert.is(c.node(2).getIncludingTombstones("gone")!.value, null);
  assert.is(c.node(2).status().tombstones, 1);
  assert.ok(c.converged());
  await c.close();
});

test("a slow or dead peer times out without stalling the others", async () => {
  const c = await cluster([1, 2, 3], { net: { seed: 1, lost: "hang" }, sync: { timeoutMs: 150 } });
  c.net.down(3);
  await c.node(1).put("k", "v");
  const t0 = Date.now();
  const reports = await c.sync(1).syncOnce();
  const took = Date.now() - t0;
  const r2 = reports.find((r) => r.peer === 2)!, r3 = reports.find((r) => r.peer === 3)!;
  assert.is(r2.ok, true);
  assert.ok(r2.durationMs < 100, `the live peer took ${r2.durationMs} ms`);
  assert.is(r3.ok, false);
  assert.match(r3.error!.message, /timed out after 150 ms/);
  assert.ok(took >= 140 && took < 1000, `round took ${took} ms`);
  assert.ok(c.node(2).get("k"));
  assert.is(c.sync(1).links().find((l) => l.peer === 3)!.consecutiveFailures, 1);
  await c.close();
});

test("a transport that ignores its signal still cannot hold a round past the deadline", async () => {
  const node = await Node.open({ id: 1, peers: [2] });
  const stuck: Transport = { request: () => new Promise<Uint8Array>(() => undefined) };
  const sync = new SyncManager(node, stuck, { timeoutMs: 50, onWarning: () => undefined });
  const [r] = await sync.syncOnce();
  assert.is(r!.ok, false);
  assert.match(r!.error!.message, /timed out/);
  await node.close();
});

test("persistent digest mismatch triggers the full reset (no bucket repair), recovering an entry authored by a third node", async () => {
  // 1 and 2 are peers, 2 and 3 are peers; 1 never talks to 3.
  const c = await cluster([1, 2, 3], {
    peers: (id) => (id === 2 ? [1, 3] : [2]),
    // Node 2 forwards 3's entry at once (no fan-out hold-back, as an older build): the entry lost is the point here.
    node: (id) => (id === 1 ? { sync: { digestCheckRounds: 2, bucketRepairAttempts: 0 } } : id === 2 ? { sync: { holdBack: false } } : {}),
  });
  await c.node(3).put("from-3", "c");
  await c.sync(3).syncOnce();
  assert.ok(c.node(2).get("from-3"));
  const dropper = dropOneEntry({ from: 2, to: 1 });
  c.net.setTamper(dropper);
  // Only node 1 initiates: the repair must not depend on node 2 starting a round.
  // The round that lost the entry moved nothing either way, so it already counts as a
  // quiescent mismatch.
  const [r1] = await c.sync(1).syncOnce();
  assert.equal(dropper.dropped.map((e) => e.key), ["from-3"], "the network lost exactly that entry");
  assert.equal([r1!.receivedEntries, r1!.sentEntries], [0, 0]);
  assert.is(r1!.adopted, true, "node 1 now claims coverage of origin 3 it does not hold");
  assert.is(r1!.digestMatch, false);
  assert.is(r1!.repaired, false, "one quiescent mismatch is below the threshold of 2");
  const [r2] = await c.sync(1).syncOnce();
  assert.is(r2!.repaired, true, "the second one arms the repair");
  assert.is(c.node(1).get("from-3"), undefined, "arming carries no data");
  const [r3] = await c.sync(1).syncOnce();
  assert.ok(r3!.ok);
  assert.is(text(c.node(1).get("from-3")?.value), "c", "the repair recovers entries of every origin");
  assert.is(c.node(1).digest(), c.node(2).digest());
  const [r4] = await c.sync(1).syncOnce();
  assert.is(r4!.digestMatch, true);
  const [r5] = await c.sync(1).syncOnce();
  assert.equal([r5!.receivedEntries, r5!.sentEntries], [0, 0], "after the repair, rounds are incremental again");
  await c.close();
});

test("a refusal on an early page blocks adoption at the end of the round", async () => {
  const now = 1_764_000_000_000;
  const clockA = manualClock(now);
  // Node ids chosen so the refused entry sorts first in (origin, seq) order: page 1.
  const c = await cluster([1, 2, 5], {
    peers: (id) => (id === 2 ? [1, 5] : [2]),
    node: (id) => id === 1 ? { clock: manualClock(now + 3_600_000) }
      // Node 2 forwards node 1's entry at once (no fan-out hold-back): R1 across pages is the point here.
      : id === 2 ? { clock: manualClock(now), limits: { maxClockDriftMs: 10 * 86_400_000 }, sync: { maxDeltaEntries: 1, holdBack: false } }
      : { clock: clockA, limits: { maxClockDriftMs: 60_000 } },
  });
  await c.node(1).put("future", "x");
  await c.sync(1).syncOnce();
  await c.node(2).put("b1", "v");
  await c.node(2).put("b2", "v");
  const [r] = await c.sync(5).syncOnce();
  assert.is(r!.pages, 3, "one entry per page");
  assert.is(r!.rejected, 1);
  assert.is(r!.merged, 2, "the later pages merged");
  assert.is(r!.adopted, false, "R1 spans the round");
  assert.is(ackOf(c.node(5), 2), 0, "no coverage of the innocent origin either");
  assert.is(c.node(5).get("future"), undefined);
  clockA.advance(3_600_000);
  const [again] = await c.sync(5).syncOnce();
  assert.is(again!.rejected, 0);
  assert.is(again!.adopted, true);
  assert.ok(c.node(5).get("future"));
  assert.is(ackOf(c.node(5), 2), 2);
  await c.close();
});

test("a sync request discloses neither digest nor root; the response carries the responder's root (SHA digest for an older requester)", async () => {
  const seen: string[] = [];
  const kind = (b: Uint8Array) => {
    const e = decodeEnvelope(b);
    return [e.digest !== undefined && "digest", e.summaryRoot !== undefined && "root"].filter(Boolean).join("+") || "none";
  };
  const c = await cluster([1, 2], {
    net: { seed: 1, tamper: (m) => { seen.push(`${m.direction}:${kind(m.body)}`); return undefined; } },
  });
  await c.node(1).put("k", "v");
  await c.sync(1).syncOnce();
  assert.equal(seen, ["request:none", "response:root"]);
  // A request without the FEATURES extension (an older build) is answered with the digest.
  const { features: _f, ...legacy } = c.node(1).prepareSync(2);
  const resp = c.node(2).handleEnvelope(decodeEnvelope(encodeEnvelope(legacy)));
  assert.is(resp.digest, c.node(2).digest());
  assert.is(resp.summaryRoot, undefined);
  await c.close();
});

test("push: a local write reaches the peer well inside one interval, and moves no acks", async () => {
  const net = new MemoryNetwork({ seed: 1 });
  const a = await Node.open({ id: 1, peers: [2] });
  const b = await Node.open({ id: 2, peers: [1] });
  // Both sync legs dead (a request never answers; start() sends one at once), so anything
  // that arrives came through the push channel.
  const base = net.transport(1);
  const hang = (_p: number, _b: Uint8Array, o?: { signal?: AbortSignal }) => new Promise<Uint8Array>((_, reject) => o?.signal?.addEventListener("abort", () => reject(o.signal!.reason)));
  const pushOnly: Transport = { request: hang, push: base.push!.bind(base) };
  const sa = new SyncManager(a, pushOnly, { intervalMs: 3_600_000, pushWindowMs: 20, onWarning: () => undefined });
  const sb = new SyncManager(b, net.transport(2), { onWarning: () => undefined });
  net.register(2, sb);
  sa.start();
  await a.put("fresh", "v");
  for (let i = 0; i < 100 && !b.get("fresh"); i++) await new Promise((r) => setTimeout(r, 5));
  assert.is(text(b.get("fresh")?.value), "v");
  await net.settled();
  assert.is(ackOf(b, 1), 0, "R3: a push moves data, never coverage");
  assert.is(sa.stats.pushesSent, 1);
  assert.is(sa.stats.rounds, 0, "the round start() began is still waiting");
  await sa.stop();
  await a.close();
  await b.close();
});

test("the push queue coalesces, drains, and is bounded", async () => {
  const net = new MemoryNetwork({ seed: 1 });
  const a = await Node.open({ id: 1, peers: [2] });
  const b = await Node.open({ id: 2, peers: [1] });
  const sa = new SyncManager(a, net.transport(1), { intervalMs: 3_600_000, pushWindowMs: 30, maxPushEntries: 4, onWarning: () => undefined });
  net.register(2, new SyncManager(b, net.transport(2)));
  await sa.syncOnce(); // synced: start() has no round due for an hour, only pushes move data
  sa.start();
  for (let i = 0; i < 20; i++) await a.put(`k${String(i).padStart(2, "0")}`, "v");
  for (let i = 0; i < 5; i++) await a.put("k19", `again ${i}`);
  await new Promise((r) => setTimeout(r, 0));
  assert.is(sa.pushQueueSize, 4, "bounded by maxPushEntries; overwrites of one key take one place");
  assert.is(sa.stats.pushEvicted, 16);
  for (let i = 0; i < 100 && sa.stats.pushesSent === 0; i++) await new Promise((r) => setTimeout(r, 5));
  await net.settled();
  assert.is(sa.pushQueueSize, 0, "drained");
  assert.equal([...b.scan("")].map((e) => e.key), ["k16", "k17", "k18", "k19"], "the newest survive the bound");
  assert.is(text(b.get("k19")!.value), "again 4");
  await sa.syncOnce();
  assert.is(b.size, 20, "the periodic round delivers what the push bound evicted");
  await sa.stop();
  await a.close();
  await b.close();
});

test("a future-stamped entry stalls every round until it falls in range, then converges", async () => {
  const now = 1_764_000_000_000;
  const clock = manualClock(now);
  const c = await cluster([1, 2], {
    node: (id) => id === 1 ? { clock, limits: { maxClockDriftMs: 60_000 } } : { clock: manualClock(now + 3_600_000) },
  });
  await c.node(2).put("poisoned", "v");
  for (let round = 1; round <= 3; round++) {
    const [r] = await c.sync(1).syncOnce();
    assert.is(r!.rejected, 1, `round ${round}`);
    assert.is(r!.adopted, false, `round ${round}`);
    assert.is(c.node(1).get("poisoned"), undefined, `round ${round}`);
    assert.is(ackOf(c.node(1), 2), 0, `round ${round}`);
  }
  assert.is(c.node(1).status().entriesRejected, 3);
  clock.advance(3_600_000 - 1_000);
  const [r] = await c.sync(1).syncOnce();
  assert.is(r!.rejected, 0);
  assert.is(r!.adopted, true, "the pair heals without intervention");
  assert.ok(c.node(1).get("poisoned"));
  assert.ok(c.converged());
  await c.close();
});

test("capacity limits refuse new keys but still allow updates", async () => {
  const c = await cluster([1, 2], { node: (id) => (id === 1 ? { limits: { maxKeys: 1 } } : {}) });
  await c.node(2).put("k1", "a");
  await c.sync(1).syncOnce();
  await c.node(2).put("k2", "b");
  await c.node(2).put("k1", "c");
  const [r] = await c.sync(1).syncOnce();
  assert.is(r!.rejected, 1, "a second key exceeds maxKeys");
  assert.is(r!.merged, 1);
  assert.is(c.node(1).get("k2"), undefined);
  assert.is(text(c.node(1).get("k1")!.value), "c", "an update creates no key");
  assert.is(r!.adopted, false);
  await c.close();
});

test("a rebuilt node relearns its spent seqs; mid-bootstrap it adopts no requester's coverage", async () => {
  const c = await cluster([1, 2]);
  for (let i = 0; i < 7; i++) await c.node(1).put(`k${i}`, "v");
  await c.node(2).put("theirs", "v");
  await c.converge();
  assert.is(ackOf(c.node(2), 1), 7);
  // Node 1 loses its data directory: same id, new uuid, nothing held.
  await c.kill(1);
  const rebuilt = (await c.open(1)).node;
  assert.is(rebuilt.status().nextSeq, 1);
  // Node 2 has node 1's old uuid on record, so the rebuilt node's requests are refused...
  const [boot] = await c.sync(1).bootstrap();
  assert.is(boot!.ok, false);
  assert.match(boot!.error!.message, /UUID_MISMATCH/);
  assert.is(c.sync(1).bootstrapping, true, "no peer reached: the bootstrap guard stays armed");
  // ...but the refusal makes node 2 ask the node at node 1's address (one round): its
  // answer is the evidence, and node 2's record follows the new identity.
  await c.net.settled();
  assert.is(c.node(2).status().peers.find((p) => p.id === 1)!.uuid, rebuilt.uuid);
  const [pull] = await c.sync(2).syncOnce();
  assert.is(pull!.ok, true);
  assert.is(ackOf(rebuilt, 2), 0, "mid-bootstrap, a requester's claims are not adopted");
  const [again] = await c.sync(1).syncOnce();
  assert.is(again!.ok, true);
  assert.is(c.sync(1).bootstrapping, false, "the first successful round finishes the bootstrap");
  assert.ok(rebuilt.status().nextSeq > 7, `nextSeq ${rebuilt.status().nextSeq} would reuse a seq node 2 covers`);
  const next = await rebuilt.put("after-rebuild", "v");
  assert.ok(next.seq > 7);
  await c.sync(1).syncOnce();
  assert.ok(c.node(2).get("after-rebuild"), "the peer does not filter the new write as already seen");
  assert.ok(c.converged());
  await c.close();
});

test("a refused entry in the bootstrap response does not let a rebuilt node reuse its seqs", async () => {
  const now = 1_764_000_000_000;
  const c = await cluster([1, 2, 3], {
    peers: (id) => (id === 1 ? [2] : id === 2 ? [1, 3] : [2]),
    node: (id) => id === 1 ? { clock: manualClock(now), limits: { maxClockDriftMs: 60_000 } }
      : id === 3 ? { clock: manualClock(now + 3_600_000) }
      : { clock: manualClock(now), limits: { maxClockDriftMs: 10 * 86_400_000 } },
  });
  for (let i = 0; i < 5; i++) await c.node(1).put(`k${i}`, "v");
  await c.sync(1).syncOnce();
  await c.node(3).put("future", "x"); // node 1 will refuse this one
  await c.sync(3).syncOnce();
  await c.kill(1);
  await c.open(1);
  await c.sync(2).syncOnce(); // node 2 learns the new uuid from the response
  const [boot] = await c.sync(1).bootstrap();
  assert.is(boot!.ok, true);
  assert.is(boot!.rejected, 1);
  assert.is(boot!.adopted, false, "R1: nothing adopted");
  assert.ok(c.node(1).status().nextSeq > 5, `nextSeq ${c.node(1).status().nextSeq}: the peer's ack of our id is proof enough`);
  await c.close();
});

test("a round that only retransmitted is not a quiescent one", async () => {
  // digestCheckRounds 1: were the round counted, it would trigger the repair at once.
  const c = await cluster([1, 2], { node: (id) => (id === 1 ? { sync: { digestCheckRounds: 1 } } : {}) });
  await c.node(1).put("only-on-1", "v");
  const shared = await c.node(2).put("shared", "v");
  const envelope = (fields: { acks: Map<number, number>; entries: typeof shared[]; pushOnly?: boolean; page?: { last: boolean } }) =>
    encodeEnvelope({ version: ENVELOPE_VERSION, senderId: 2, senderUuid: c.node(2).uuid, ...fields });
  // Node 1 already holds node 2's entry (a push: no acks move), and believes node 2
  // covers everything, so its request will carry nothing. (The claim rides a non-final
  // page: node 1 records it without adopting it, so it still asks node 2 for origin 2.)
  await c.sync(1).handle(envelope({ acks: new Map(), entries: [shared], pushOnly: true }));
  await c.sync(1).handle(envelope({ acks: new Map([[1, 1], [2, 1]]), entries: [], page: { last: false } }));
  assert.is(ackOf(c.node(1), 2), 0);
  const [r] = await c.sync(1).syncOnce();
  assert.equal([r!.sentEntries, r!.receivedEntries, r!.merged], [0, 1, 0], "node 2 resent what node 1 held");
  assert.is(r!.digestMatch, false, "the pair is diverged");
  assert.is(r!.repaired, false, "a retransmission is not quiescence");
  await c.close();
});

test("adoption resumes once bootstrap has finished", async () => {
  const c = await cluster([1, 2]);
  await c.node(2).put("x", "v");
  await c.sync(1).bootstrap();
  assert.is(c.sync(1).bootstrapping, false);
  await c.node(2).put("y", "v");
  await c.sync(2).syncOnce();
  assert.is(ackOf(c.node(1), 2), 2, "a requester's coverage is adopted again");
  await c.close();
});

test("a reused node id is refused on requests and pushes, with nothing merged", async () => {
  const c = await cluster([1, 2]);
  await c.node(2).put("real", "v");
  await c.converge();
  const digest = c.node(1).digest();
  const impostor = await Node.open({ id: 2, peers: [1] });
  await impostor.put("evil", "v");
  const sync = new SyncManager(impostor, c.net.transport(2), { onWarning: () => undefined });
  const [r] = await sync.syncOnce();
  assert.is(r!.ok, false);
  assert.match(r!.error!.message, /UUID_MISMATCH/);
  const push = encodeEnvelope({ version: ENVELOPE_VERSION, senderId: 2, senderUuid: impostor.uuid, acks: new Map(), entries: [impostor.get("evil")!], pushOnly: true });
  await rejectsWith(c.sync(1).handle(push), "UUID_MISMATCH");
  assert.is(c.node(1).digest(), digest, "nothing of the impostor's merged");
  assert.is(c.node(1).get("evil"), undefined);
  const genuine = encodeEnvelope({ version: ENVELOPE_VERSION, senderId: 2, senderUuid: c.node(2).uuid, acks: new Map(), entries: [], pushOnly: true });
  assert.is(decodeEnvelope(await c.sync(1).handle(genuine)).pushOnly, true, "the genuine node is still served");
  await impostor.close();
  await c.close();
});

test("handle: junk is BAD_ENVELOPE with nothing merged; a push is merged and acknowledged without acks", async () => {
  const c = await cluster([1, 2]);
  await c.node(1).put("a", "v");
  const digest = c.node(1).digest();
  await rejectsWith(c.sync(1).handle(new Uint8Array([1, 2, 3])), "BAD_ENVELOPE");
  const real = encodeEnvelope(c.node(2).prepareSync(1));
  const torn = real.subarray(0, real.length - 1);
  await rejectsWith(c.sync(1).handle(torn), "BAD_ENVELOPE");
  const self = encodeEnvelope({ version: 1, senderId: 1, senderUuid: c.node(1).uuid, acks: new Map(), entries: [] });
  await rejectsWith(c.sync(1).handle(self), "BAD_ENVELOPE", /this node/);
  assert.is(c.node(1).digest(), digest);
  c.node(2).abortSync(1);
  const w = await c.node(2).put("pushed", "v");
  const ack = decodeEnvelope(await c.sync(1).handle(encodeEnvelope({ version: 1, senderId: 2, senderUuid: c.node(2).uuid, acks: new Map([[2, 1]]), entries: [w], pushOnly: true })));
  assert.is(ack.pushOnly, true);
  assert.is(ack.acks.size, 0);
  assert.is(ack.entries.length, 0);
  assert.ok(c.node(1).get("pushed"));
  assert.is(ackOf(c.node(1), 2), 0, "R3");
  await c.close();
});

test("auto-discovery: a request from an unknown sender makes it a peer", async () => {
  const c = await cluster([1, 3], { peers: (id) => (id === 3 ? [1] : []) });
  assert.equal(c.node(1).peers(), []);
  await c.node(3).put("k", "v");
  await c.sync(3).syncOnce();
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(c.node(1).peers(), [3]);
  await c.node(1).put("back", "v");
  const reports = await c.sync(1).syncOnce();
  assert.equal(reports.map((r) => [r.peer, r.ok]), [[3, true]]);
  assert.ok(c.node(3).get("back"));
  await c.close();
});

test("a response from the wrong node, or a push acknowledgement, fails the round with nothing adopted", async () => {
  const c = await cluster([1, 2, 3]);
  await c.node(3).put("from-3", "v");
  // Misrouting: requests for 2 reach 3, which answers as itself.
  const misrouted: Transport = { request: (peer, body) => (peer === 2 ? c.sync(3).handle(body) : Promise.reject(new Error("down"))) };
  const wrong = new SyncManager(c.node(1), misrouted, { onWarning: () => undefined });
  const r2 = (await wrong.syncOnce()).find((r) => r.peer === 2)!;
  assert.is(r2.ok, false);
  assert.match(r2.error!.message, /answered by node 3/);
  assert.is(c.node(1).get("from-3"), undefined, "nothing from the wrong node was merged");
  assert.is(ackOf(c.node(1), 3), 0);
  // A push acknowledgement where a sync response belongs.
  const pushAck: Transport = { request: async () => encodeEnvelope({ version: ENVELOPE_VERSION, senderId: 2, senderUuid: c.node(2).uuid, acks: new Map([[2, 9]]), entries: [], pushOnly: true }) };
  const [r] = await new SyncManager(c.node(1), pushAck, { onWarning: () => undefined }).syncOnce();
  assert.is(r!.ok, false);
  assert.match(r!.error!.message, /push acknowledgement/);
  assert.is(ackOf(c.node(1), 2), 0);
  await c.close();
});

test("a paged delta converges in one round of several pages", async () => {
  const c = await cluster([1, 2], { node: { sync: { maxDeltaEntries: 10 } } });
  for (let i = 0; i < 95; i++) await c.node(2).put(`k${i}`, "v");
  const [r] = await c.sync(1).syncOnce();
  assert.is(r!.ok, true);
  assert.is(r!.pages, 10);
  assert.is(r!.receivedEntries, 95);
  assert.is(r!.adopted, true);
  assert.ok(c.converged());
  await c.close();
});

test("rounds with one peer never overlap: concurrent syncOnce calls are serialised", async () => {
  const c = await cluster([1, 2], { net: { seed: 3, delayMs: [1, 3] }, node: { sync: { maxDeltaEntries: 5 } } });
  for (let i = 0; i < 40; i++) await c.node(2).put(`k${i}`, "v");
  const all = await Promise.all([c.sync(1).syncOnce(), c.sync(1).syncOnce(), c.sync(1).syncOnce()]);
  for (const [r] of all) assert.is(r!.ok, true, r!.error?.message);
  assert.is(all[0]![0]!.pages, 8);
  assert.ok(c.converged());
  await c.close();
});

test("retiring a peer survives a restart", async () => {
  const c = await cluster([1, 2, 3], { durable: true });
  await c.converge();
  await c.node(1).removePeer(2);
  await c.kill(1);
  await c.open(1, { peers: [] });
  assert.equal(c.node(1).peers(), [3]);
  const reports = await c.sync(1).syncOnce();
  assert.equal(reports.map((r) => r.peer), [3]);
  await c.close();
});

test("backoff: a failing peer is retried later and later (from retryMs, 100 ms by default), with jitter, bounded; success resets it", async () => {
  for (const { sync, expected } of [
    { sync: { intervalMs: 1_000, maxBackoffMs: 6_000, random: () => 1 }, expected: [100, 200, 400, 800, 1_600] },
    { sync: { intervalMs: 60_000, maxBackoffMs: 500, random: () => 1 }, expected: [100, 200, 400, 500, 500] },
    { sync: { intervalMs: 1_000, retryMs: 1_000, maxBackoffMs: 6_000, random: () => 1 }, expected: [1_000, 2_000, 4_000, 6_000, 6_000] },
    { sync: { intervalMs: 1_000, maxBackoffMs: 6_000, random: () => 0 }, expected: [50, 100, 200, 400, 800] },
  ]) {
    const c = await cluster([1, 2], { sync });
    c.net.down(2);
    const retry = async () => {
      const before = Date.now();
      await c.sync(1).syncOnce();
      return c.sync(1).links()[0]!.retryAt - before;
    };
    const waits = [await retry(), await retry(), await retry(), await retry(), await retry()];
    waits.forEach((w, i) => assert.ok(Math.abs(w - expected[i]!) < 50, `${JSON.stringify(sync)}: failure ${i + 1}: retry in ${w} ms, expected ~${expected[i]}`));
    assert.is(c.sync(1).links()[0]!.consecutiveFailures, 5);
    c.net.up(2);
    await c.sync(1).syncOnce();
    const link = c.sync(1).links()[0]!;
    assert.equal([link.peer, link.consecutiveFailures, link.retryAt, link.lastError], [2, 0, 0, undefined]);
    assert.equal([link.rounds, link.failures], [6, 5], "per-peer counters keep the history");
    assert.ok(link.lastOkAt > 0);
    assert.ok(c.warnings.lines.some((l) => /reachable again after 5/.test(l)));
    await c.close();
  }
});

/** Polls `cond` every 5 ms for at most `ms` (a bound far above what the behaviour needs, far below the interval that would otherwise explain it). */
async function within(ms: number, cond: () => boolean): Promise<boolean> {
  for (const until = Date.now() + ms; !cond() && Date.now() < until;) await new Promise((r) => setTimeout(r, 5));
  return cond();
}
const HOUR = 3_600_000;

test("start() syncs at once with every peer not synced yet, not an interval later", async () => {
  const c = await cluster([1, 2, 3], { sync: { intervalMs: HOUR, push: false } });
  await c.node(1).put("a", "1");
  await c.node(3).put("c", "3");
  c.sync(2).start();
  assert.ok(await within(2_000, () => c.node(2).get("a") !== undefined && c.node(2).get("c") !== undefined), "node 2 pulled from both peers at start");
  await c.close();
});

test("a first round that fails while the peer starts is retried within a fraction of a second, not an interval later", async () => {
  const c = await cluster([1, 2], { sync: { intervalMs: HOUR, push: false } });
  await c.node(1).put("k", "v");
  c.net.down(1);
  c.sync(2).start();
  assert.ok(await within(2_000, () => c.sync(2).links()[0]?.consecutiveFailures === 1), "the round at start failed");
  c.net.up(1); // the peer has started
  assert.ok(await within(2_000, () => c.node(2).get("k") !== undefined), JSON.stringify(c.sync(2).links()));
  assert.ok(c.sync(2).links()[0]!.consecutiveFailures === 0);
  await c.close();
});

test("syncSoon: a new peer, or news about a peer in backoff, gets a round now", async () => {
  // Node 2 knows nobody; nodes 1 and 3 are up with data.
  const c = await cluster([1, 2, 3], { sync: { intervalMs: HOUR, retryMs: HOUR, push: false }, peers: (id) => (id === 2 ? [] : [2]) });
  await c.node(1).put("from1", "x");
  await c.node(3).put("from3", "y");
  c.sync(2).start();
  await c.node(2).addPeer(1);
  c.sync(2).syncSoon(1);
  assert.ok(await within(2_000, () => c.node(2).get("from1") !== undefined), "a round with the new peer at once");
  // Peer 3 fails once: its backoff is an hour. A new address for it is news.
  c.net.down(3);
  await c.node(2).addPeer(3);
  c.sync(2).syncSoon(3);
  assert.ok(await within(2_000, () => c.sync(2).links().find((l) => l.peer === 3)?.consecutiveFailures === 1));
  assert.ok(c.sync(2).links().find((l) => l.peer === 3)!.retryAt > Date.now() + HOUR / 4, "backing off for long");
  c.net.up(3);
  c.sync(2).syncSoon(3);
  assert.ok(await within(2_000, () => c.node(2).get("from3") !== undefined), "the backoff gave way to the news");
  await c.close();
});

test("a sync request from a peer we back off from ends the backoff: a round with it now", async () => {
  const c = await cluster([1, 2], { sync: { intervalMs: HOUR, retryMs: HOUR, push: false } });
  c.net.down(2);
  c.sync(1).start();
  assert.ok(await within(2_000, () => c.sync(1).links()[0]?.consecutiveFailures === 1));
  c.net.up(2); // node 2 restarts and syncs with node 1
  await c.node(1).put("on1", "v"); // node 2's own round pulls it; node 1's round is what we watch
  await c.sync(2).syncOnce();
  assert.ok(await within(2_000, () => c.sync(1).links()[0]!.consecutiveFailures === 0), JSON.stringify(c.sync(1).links()));
  assert.is(c.sync(1).links()[0]!.rounds, 2);
  await c.close();
});

test("a failing peer is warned about once per streak, and pushes skip it while it backs off", async () => {
  const c = await cluster([1, 2], { sync: { intervalMs: HOUR, retryMs: HOUR, pushWindowMs: 1 } });
  c.net.down(2);
  for (let i = 0; i < 3; i++) await c.sync(1).syncOnce();
  assert.is(c.sync(1).links()[0]!.consecutiveFailures, 3);
  assert.is(c.warnings.lines.filter((l) => /round with peer 2 failed/.test(l)).length, 1, c.warnings.lines.join("\n"));
  // Backing off for at least half an hour: start() has no round due, a write goes to the push channel.
  c.sync(1).start();
  await c.node(1).put("k", "v");
  assert.ok(await within(2_000, () => c.sync(1).stats.pushSkipped > 0), "the push was skipped");
  assert.is(c.sync(1).stats.pushSkipped, 1);
  assert.is(c.sync(1).stats.pushesSent + c.sync(1).stats.pushFailures, 0, "nothing was sent to a peer that backs off");
  await c.close();
});

test("a slow peer delays only its own background rounds", async () => {
  const c = await cluster([1, 2, 3], { net: { lost: "hang" }, sync: { intervalMs: 20, timeoutMs: 60_000, push: false } });
  c.net.down(3); // requests to node 3 hang for the whole (one-minute) deadline
  c.sync(1).start();
  await c.node(2).put("n", "0");
  for (let i = 1; i <= 3; i++) {
    assert.ok(await within(2_000, () => c.node(1).get("n")?.value !== undefined && text(c.node(1).get("n")!.value) === String(i - 1)), `round ${i} with node 2`);
    await c.node(2).put("n", String(i));
  }
  assert.ok(await within(2_000, () => text(c.node(1).get("n")?.value) === "3"));
  assert.is(c.sync(1).links().find((l) => l.peer === 3)?.rounds ?? 0, 0, "the round with node 3 is still waiting");
  await c.close();
});

test("start() runs periodic rounds; stop() aborts rounds in flight and waits for them", async () => {
  const c = await cluster([1, 2], { net: { seed: 1 }, sync: { intervalMs: 20, push: false } });
  await c.node(1).put("k", "v");
  c.sync(2).start();
  for (let i = 0; i < 100 && !c.node(2).get("k"); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(c.node(2).get("k"), "a periodic round pulled the write");
  await c.sync(2).stop();
  assert.is(c.sync(2).running, false);
  // A round that hangs is cut short by stop().
  const hanging = await cluster([3, 4], { net: { seed: 1, drop: 1, lost: "hang" }, sync: { timeoutMs: 60_000 } });
  const t0 = Date.now();
  const pending = hanging.sync(3).syncOnce();
  await new Promise((r) => setTimeout(r, 20));
  await hanging.sync(3).stop();
  const [r] = await pending;
  assert.is(r!.ok, false);
  assert.match(r!.error!.message, /stopped/);
  assert.ok(Date.now() - t0 < 1_000);
  hanging.net.setFaults({ drop: 0 });
  const [after] = await hanging.sync(3).syncOnce();
  assert.is(after!.ok, true, "a stopped manager can still sync once");
  await hanging.close();
  await c.close();
});

test("a forgotten, started manager does not keep the process alive", async () => {
  const out = runScript(`
    import { Node } from ${JSON.stringify(srcDir + "node/node.ts")};
    import { SyncManager } from ${JSON.stringify(srcDir + "node/manager.ts")};
    import { MemoryNetwork } from ${JSON.stringify(srcDir + "transport/memory.ts")};
    const net = new MemoryNetwork();
    const node = await Node.open({ id: 1, peers: [2] });
    const sync = new SyncManager(node, net.transport(1), { intervalMs: 60_000, onWarning: () => {} });
    sync.start();
    await node.put("k", "v");   // arms the push timer too
    console.log("started");
  `, 20_000);
  assert.is(out.status, 0, out.stderr);
  assert.match(out.stdout, /started/);
  assert.ok(out.ms < 15_000, "exited on its own, long before the 60 s interval");
});

test("a large envelope is merged in slices: other work runs in between, acks move only if every slice merged", async () => {
  const c = await cluster([1, 2], { sync: { mergeSliceEntries: 100 }, node: (id) => (id === 1 ? { limits: { maxKeyBytes: 16 } } : {}) });
  const request = (first: number, n: number, badAt = -1) => encodeEnvelope({
    version: ENVELOPE_VERSION, senderId: 2, senderUuid: c.node(2).uuid, acks: new Map([[2, first + n - 1]]),
    entries: Array.from({ length: n }, (_, i) => ({ key: i === badAt ? "a-key-longer-than-sixteen-bytes" : `k${first + i}`, value: new Uint8Array([1]), timestamp: 1_764_000_000_000, node: 2, seq: first + i })),
  });
  // A refused entry in the last slice: the first slices merged, but nothing is adopted (R1).
  const seen: number[] = [];
  let done = false;
  const bad = c.sync(1).handle(request(1, 1000, 950)).finally(() => { done = true; });
  const look = () => { seen.push(c.node(1).size); if (!done) setImmediate(look); };
  setImmediate(look);
  await bad;
  assert.ok(seen.some((n) => n > 0 && n < 999), `macrotasks queued behind the request ran mid-merge (saw ${seen.join(", ")} keys)`);
  assert.is(c.node(1).size, 999);
  assert.is(ackOf(c.node(1), 2), 0, "one slice incomplete: no adoption");
  await c.sync(1).handle(request(1001, 1000));
  assert.is(ackOf(c.node(1), 2), 2000, "every slice complete: adopted");
  await c.close();
});

test.run();
