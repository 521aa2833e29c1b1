// Fan-out hold-back (docs/PROTOCOL.md §2.2, docs/design/0023): a node forwards a third
// party's entries to a peer only after two of its own rounds with that peer, and the acks
// a receiver may adopt are capped for every origin held back (INV). Checked here: the
// invariant after every round, a forwarder whose origin dies, a mixed cluster with builds
// that predate it, paged responses, a node that only answers, and the extension's bytes.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { crc32 } from "../../src/codec/crc.js";
import { decodeEnvelope, encodeEnvelope, type Envelope } from "../../src/sync/envelope.js";
import { isWaveKVError } from "../../src/core/errors.js";
import { HoldBack } from "../../src/sync/hold-back.js";
import type { NetworkMessage } from "../../src/transport/memory.js";
import type { PeerReport } from "../../src/node/manager.js";
import { cluster, text, type Cluster } from "../helpers/cluster.js";

/** Writes of node `id` get keys `w<id>/<seq>` (puts only: a node's i-th write has seq i). */
async function write(c: Cluster, id: number, count: number): Promise<void> {
  const node = c.node(id);
  for (let i = 0; i < count; i++) {
    await node.put(`w${id}/${String(written.get(id) ?? 0).padStart(6, "0")}`, `value of ${id}`);
    written.set(id, (written.get(id) ?? 0) + 1);
  }
}
const written = new Map<number, number>();

const live = (c: Cluster) => c.ids.filter((id) => !c.node(id).closed);

/**
 * INV: a node's ack of origin o never exceeds what it holds of o. With puts only and
 * distinct keys, covering o up to a means holding o's first a writes.
 */
function checkInvariant(c: Cluster, where: string): void {
  for (const id of live(c)) {
    for (const p of c.node(id).status().peers) {
      for (let k = 0; k < p.ack; k++) {
        const key = `w${p.id}/${String(k).padStart(6, "0")}`;
        assert.ok(c.node(id).get(key) !== undefined, `${where}: node ${id} acks origin ${p.id} up to ${p.ack} but lacks ${key}`);
      }
    }
  }
}

const converged = (c: Cluster) => new Set(live(c).map((id) => c.node(id).digest())).size === 1;

/** Rounds (every live node with every peer) until the live nodes' digests are equal, INV checked after each. */
async function settle(c: Cluster, max: number): Promise<{ rounds: number; reports: PeerReport[] }> {
  const reports: PeerReport[] = [];
  for (let i = 0; i <= max; i++) {
    checkInvariant(c, `round ${i}`);
    if (converged(c)) return { rounds: i, reports };
    reports.push(...await c.round());
  }
  throw new Error(`no convergence after ${max} rounds`);
}

/** Decoded sync envelopes crossing the network, with their direction. */
function recorder() {
  const seen: { from: number; to: number; env: Envelope }[] = [];
  const tamper = (m: NetworkMessage) => {
    if (m.channel === "sync") seen.push({ from: m.from, to: m.to, env: decodeEnvelope(m.body) });
    return undefined;
  };
  return { seen, tamper };
}

/** `count` writes on every node, then a round, `n` times (INV checked after each), recording the envelopes. */
async function waves(c: Cluster, n: number, count: number): Promise<ReturnType<typeof recorder>> {
  const rec = recorder();
  c.net.setTamper(rec.tamper);
  for (let wave = 0; wave < n; wave++) {
    for (const id of c.ids) await write(c, id, count);
    await c.round();
    checkInvariant(c, `wave ${wave}`);
  }
  return rec;
}

test("a forwarder holds a third party's writes back, then delivers them after the origin died", async () => {
  written.clear();
  // 1 – 2 – 3: node 1's writes reach node 3 only through node 2.
  const c = await cluster([1, 2, 3], { net: { seed: 5 }, peers: (id) => (id === 2 ? [1, 3] : [2]) });
  await write(c, 1, 20);
  const rec = recorder();
  c.net.setTamper(rec.tamper);
  await c.round();
  assert.ok(c.node(2).get("w1/000019") !== undefined, "node 2 has node 1's writes");
  assert.is(c.node(3).get("w1/000000"), undefined, "held back from node 3 in the round they arrived");
  const held = rec.seen.filter((s) => s.from === 2 && s.to === 3 && s.env.heldAcks !== undefined);
  assert.ok(held.length > 0, "node 2 told node 3 it held origin 1 back");
  assert.ok(held.every((s) => (s.env.acks.get(1) ?? 0) === 0 && s.env.heldAcks!.get(1) === 20), "capped ack 0, true ack 20");
  checkInvariant(c, "after round 1");
  await c.kill(1);
  const { rounds } = await settle(c, 6);
  assert.ok(rounds <= 3, `delivered within the two-round horizon (took ${rounds})`);
  assert.ok(c.node(3).get("w1/000019") !== undefined);
  await c.close();
});

test("an overwrite held back: the receiver may adopt the overwritten origin's ack, and is owed the winner", async () => {
  // 1, 3, 4 reach each other only through 2. Node 4 overwrites node 1's key on node 2
  // before node 2 forwards anything: node 1's entry is gone from node 2's map.
  const c = await cluster([1, 2, 3, 4], { net: { seed: 9 }, peers: (id) => (id === 2 ? [1, 3, 4] : [2]) });
  await c.node(1).put("k", "from 1");
  await c.sync(1).syncOnce();
  await c.node(4).put("k", "from 4");
  await c.sync(4).syncOnce();
  assert.is(text(c.node(2).get("k")?.value), "from 4");
  const [first] = await c.sync(3).syncOnce();
  assert.ok(first!.ok);
  assert.is(c.node(3).get("k"), undefined, "the winner (node 4's, a third party's to node 2) was held back");
  let rounds = 0;
  while (!converged(c) && rounds < 6) { await c.round(); rounds++; }
  assert.ok(rounds <= 4, `took ${rounds} rounds`);
  for (const id of c.ids) assert.is(text(c.node(id).get("k")?.value), "from 4", `node ${id} holds the winner`);
  await c.close();
});

test("a node that only answers still forwards, and the digest check does not repair what it held", async () => {
  written.clear();
  // 1 – 2 – 3: only node 1 starts rounds, only with node 2; node 2 never runs one with node 1.
  const c = await cluster([1, 2, 3], { peers: (id) => (id === 2 ? [1, 3] : [2]), node: { sync: { digestCheckRounds: 2 } } });
  await write(c, 3, 5);
  await c.sync(3).syncOnce();
  const reports: PeerReport[] = [];
  for (let i = 0; i < 8 && c.node(1).get("w3/000004") === undefined; i++) reports.push(...await c.sync(1).syncOnce());
  assert.ok(c.node(1).get("w3/000004") !== undefined, "node 1 got node 3's writes through node 2");
  assert.ok(reports.length >= 2, "held back for a while first");
  assert.ok(reports.every((r) => r.ok && !r.repaired), "no repair of the mismatch the hold-back caused");
  assert.is(c.node(1).repairStats().bucketRepairs, 0);
  checkInvariant(c, "end");
  await c.close();
});

test("mixed cluster: builds without hold-back and with it converge under loss, INV after every round", async () => {
  written.clear();
  const older = (id: number) => id % 2 === 1;
  const c = await cluster([1, 2, 3, 4, 5, 6], { net: { seed: 11, drop: 0.2 }, node: (id) => ({ sync: { holdBack: !older(id) } }) });
  const rec = await waves(c, 4, 15);
  const firstSeen = rec.seen.length;
  await settle(c, 12);
  for (const id of c.ids) assert.is([...c.node(id).scan("")].length, 6 * 60, `node ${id} holds every write`);
  // An older build never advertises the bit, and once heard from it gets full deltas.
  assert.ok(rec.seen.every((s) => !older(s.from) || s.env.heldAcks === undefined), "older builds never hold back");
  assert.ok(rec.seen.slice(firstSeen).every((s) => !older(s.to) || s.env.heldAcks === undefined), "no hold toward a known older build");
  assert.ok(rec.seen.some((s) => !older(s.from) && !older(s.to) && s.env.heldAcks !== undefined), "newer builds hold back between them");
  await c.close();
});

test("paged responses: the hold spans pages and the round adopts only capped acks", async () => {
  written.clear();
  const c = await cluster([1, 2, 3, 4], { net: { seed: 3, drop: 0.1 }, node: { sync: { maxDeltaEntries: 3 } } });
  const rec = await waves(c, 3, 8);
  await settle(c, 30);
  for (const id of c.ids) assert.is([...c.node(id).scan("")].length, 4 * 24);
  assert.ok(rec.seen.some((s) => s.env.page !== undefined && s.env.heldAcks !== undefined), "some paged envelope held entries back");
  await c.close();
});

test("HoldBack: the horizon moves by our own rounds (or every second answer), and forget clears it", () => {
  const h = new HoldBack(1, true);
  assert.equal([...h.hold(2)!.horizon], [], "no history: every third-party entry is held");
  assert.equal(h.hold(2)!.exempt, [1, 2], "our own writes and the peer's own always go");
  h.ownRound(2, new Map([[3, 10]]));
  assert.equal([...h.hold(2)!.horizon], [], "one round ago is not yet the horizon");
  h.ownRound(2, new Map([[3, 20]]));
  assert.equal([...h.hold(2)!.horizon], [[3, 10]], "two rounds ago");
  h.answered(2, new Map([[3, 30]]));
  assert.equal([...h.hold(2)!.horizon], [[3, 10]], "one answer does not move it");
  h.answered(2, new Map([[3, 40]]));
  assert.equal([...h.hold(2)!.horizon], [[3, 20]], "a second answer without a round of ours does");
  h.noteFeatures(2, 0);
  assert.is(h.hold(2), undefined, "an older build gets everything");
  h.forget(2);
  assert.equal([...h.hold(2)!.horizon], [], "forgotten with the peer");
  assert.is(new HoldBack(1, false).hold(2), undefined, "off: never holds");
});

function reseal(b: Uint8Array): Uint8Array {
  const out = b.slice();
  new DataView(out.buffer).setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)) >>> 0, true);
  return out;
}

test("heldAcks extension: round trip, an older decoder's view, and crafted bytes refused", () => {
  const env: Envelope = { version: 1, senderId: 2, senderUuid: "00000000-0000-4000-8000-000000000002", acks: new Map([[2, 9], [3, 4]]), entries: [], heldAcks: new Map([[3, 7], [5, 0]]) };
  const bytes = encodeEnvelope(env);
  const back = decodeEnvelope(bytes);
  assert.equal([...back.heldAcks!], [[3, 7], [5, 0]]);
  assert.equal([...back.acks], [[2, 9], [3, 4]], "the capped acks travel as the acks");
  // tag 22 • len 5 • count 2 • (3, 7) • (5, 0)
  const at = bytes.findIndex((_, i) => bytes[i] === 22 && bytes[i + 1] === 5 && bytes[i + 2] === 2 && bytes[i + 3] === 3);
  assert.ok(at > 0, "extension found");
  const refuse = (patch: (b: Uint8Array) => void, why: RegExp) => {
    const b = bytes.slice();
    patch(b);
    try {
      decodeEnvelope(reseal(b));
      assert.unreachable("accepted");
    } catch (e) {
      assert.ok(isWaveKVError(e) && e.code === "BAD_ENVELOPE", String(e));
      assert.match((e as Error).message, why);
    }
  };
  refuse((b) => { b[at + 5] = 3; }, /not strictly ascending/);
  refuse((b) => { b[at + 2] = 3; }, /3 acks in 4 bytes/);
  refuse((b) => { b[at + 2] = 1; }, /trailing bytes/);
  assert.throws(() => encodeEnvelope({ ...env, heldAcks: new Map([[3, 2 ** 49]]) }), /MAX_SEQ/);
});

test.run();
