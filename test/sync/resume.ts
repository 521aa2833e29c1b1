// A paged round that fails resumes from its cursor (docs/PROTOCOL.md §2, "Resuming a paged
// round"): a lost page is asked for again from the same cursor, the round still adopts the
// minimum ack over its pages (R2), and it starts over after MAX_ROUND_RESUMES aborts in a
// row or when another uuid answers. INV (a node's ack of an origin never exceeds what it
// holds of it) is checked after every step; then a lossy paged cluster converges.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Node } from "../../src/node/node.js";
import { decodeEnvelope, encodeEnvelope, type Envelope } from "../../src/sync/envelope.js";
import { MAX_ROUND_RESUMES } from "../../src/sync/round.js";
import { dropOneEntry } from "../../src/transport/memory.js";
import { cluster, type Cluster } from "../helpers/cluster.js";

const PAGE = 4;
const wire = (env: Envelope): Envelope => decodeEnvelope(encodeEnvelope(env));
const keyOf = (id: number, i: number) => `w${id}/${String(i).padStart(6, "0")}`;

/** Puts only, distinct keys: a node's i-th write (from 0) has seq i + 1. */
async function write(node: Node, count: number, written: Map<number, number>): Promise<void> {
  for (let i = 0; i < count; i++) {
    const k = written.get(node.id) ?? 0;
    await node.put(keyOf(node.id, k), `value ${k} of ${node.id}`);
    written.set(node.id, k + 1);
  }
}

/** INV: covering origin o up to a means holding o's first a writes. */
function checkInvariant(nodes: readonly Node[], where: string): void {
  for (const n of nodes) {
    if (n.closed) continue;
    for (const p of n.status().peers) {
      for (let k = 0; k < p.ack; k++) assert.ok(n.get(keyOf(p.id, k)) !== undefined, `${where}: node ${n.id} acks origin ${p.id} up to ${p.ack} but lacks ${keyOf(p.id, k)}`);
    }
  }
}

const ackOf = (n: Node, origin: number) => n.status().peers.find((p) => p.id === origin)?.ack ?? 0;
const open = (id: number, peers: number[], holdBack = true) => Node.open({ id, peers, sync: { maxDeltaEntries: PAGE, holdBack } });

/** Node 1 asks node 2 for one page and applies it (through the codec). */
function page(a: Node, b: Node) {
  const req = wire(a.prepareSync(b.id));
  const resp = wire(b.handleEnvelope(req));
  return { req, resp, out: a.applyEnvelope(resp) };
}

test("a lost page is asked for again from the last applied page's cursor; the round adopts the minimum over its pages", async () => {
  const written = new Map<number, number>();
  // No fan-out hold-back at b: it forwards c's writes at once, so a's pages hold two origins.
  const a = await open(1, [2, 3]), b = await open(2, [1, 3], false), c = await open(3, [1, 2]);
  const all = [a, b, c];
  try {
    await write(b, 20, written);
    await write(c, 6, written);
    // b learns c's writes, so b's pages carry two origins.
    for (let more = true; more;) more = page(b, c).out.more;
    checkInvariant(all, "b synced with c");
    const first = page(a, b);
    assert.ok(first.out.more, "paged");
    assert.is(first.req.resumeFrom, undefined);
    const cursor = first.resp.resumeFrom!;
    assert.ok(cursor, "the first page names a cursor");
    const ackAtFirst = first.resp.acks.get(2)!;
    checkInvariant(all, "page 1");
    // b writes between pages: later pages report a higher ack of b than page 1 did.
    await write(b, 3, written);
    const lost = wire(a.prepareSync(2));
    assert.equal(lost.resumeFrom, cursor);
    b.handleEnvelope(lost); // its response is lost
    a.abortSync(2);
    checkInvariant(all, "after the lost page");
    assert.is(ackOf(a, 2), 0, "nothing adopted by an aborted round");
    let received = first.out.received;
    const again = page(a, b);
    assert.equal(again.req.resumeFrom, cursor, "resumed from the cursor, not from page 1");
    assert.is(again.req.entries.length, 0, "a continuation carries no entries");
    received += again.out.received;
    let out = again.out;
    let pages = 2;
    while (out.more) {
      checkInvariant(all, `page ${pages}`);
      const next = page(a, b);
      assert.ok(next.req.resumeFrom, "continuations carry the cursor");
      received += next.out.received;
      out = next.out;
      pages++;
      assert.ok(pages < 50);
    }
    checkInvariant(all, "round done");
    assert.ok(out.adopted, "the resumed round completes and adopts");
    assert.is(ackOf(a, 2), ackAtFirst, "adopted the minimum over the pages: b's ack at page 1");
    assert.is(ackAtFirst, 20);
    assert.is(received, 20 + 3 + 6, "no page was received twice");
    for (let k = 0; k < 23; k++) assert.ok(a.get(keyOf(2, k)));
    for (let k = 0; k < 6; k++) assert.ok(a.get(keyOf(3, k)));
    // The next round adopts the rest.
    for (let more = true; more;) more = page(a, b).out.more;
    checkInvariant(all, "next round");
    assert.is(ackOf(a, 2), 23);
  } finally {
    for (const n of all) await n.close();
  }
});

test("a failed first exchange keeps nothing: the next request starts the round with its entries", async () => {
  const a = await open(1, [2]), b = await open(2, [1]);
  try {
    await write(a, 3, new Map());
    assert.is(a.prepareSync(2).entries.length, 3);
    a.abortSync(2);
    const req = a.prepareSync(2);
    assert.is(req.resumeFrom, undefined);
    assert.is(req.entries.length, 3);
    b.handleEnvelope(req);
  } finally {
    await a.close();
    await b.close();
  }
});

test("a peer rebuilt between pages (new uuid) starts the round over", async () => {
  const written = new Map<number, number>();
  const a = await open(1, [2]);
  let b = await open(2, [1]);
  try {
    await write(b, 12, written);
    const first = page(a, b);
    assert.ok(first.out.more);
    checkInvariant([a], "page 1");
    await b.close();
    b = await open(2, [1]); // its directory lost: a new uuid, nothing of its writes
    written.set(2, 0);
    await write(b, 2, written);
    const req = wire(a.prepareSync(2));
    assert.ok(req.resumeFrom, "still resuming: a has not heard of the rebuild yet");
    const resp = wire(b.handleEnvelope(req));
    const out = a.applyEnvelope(resp);
    assert.is(out.adopted, false);
    assert.ok(out.more, "the round starts over at once");
    assert.match(out.reasons.join(" "), /new uuid/);
    checkInvariant([a], "after the rebuilt peer's page");
    assert.is(ackOf(a, 2), 0);
    const restart = wire(a.prepareSync(2));
    assert.is(restart.resumeFrom, undefined, "page 1 again");
    let o = a.applyEnvelope(wire(b.handleEnvelope(restart)));
    while (o.more) o = page(a, b).out;
    assert.ok(o.adopted);
    checkInvariant([a], "restarted round");
    assert.is(ackOf(a, 2), 2, "the rebuilt peer's coverage, not the old one's");
  } finally {
    await a.close();
    await b.close();
  }
});

test(`a round survives ${MAX_ROUND_RESUMES} failed exchanges in a row, not one more; an applied page resets the count`, async () => {
  const a = await open(1, [2]), b = await open(2, [1]);
  try {
    await write(b, 20, new Map());
    const first = page(a, b);
    const cursor = first.resp.resumeFrom!;
    const failInARow = (n: number) => {
      for (let i = 0; i < n; i++) {
        assert.ok(a.prepareSync(2).resumeFrom, `abort ${i}: still resuming`);
        a.abortSync(2);
      }
    };
    failInARow(MAX_ROUND_RESUMES);
    const second = page(a, b);
    assert.equal(second.req.resumeFrom, cursor, `resumed after ${MAX_ROUND_RESUMES} failures`);
    assert.ok(second.out.more);
    failInARow(MAX_ROUND_RESUMES);
    assert.ok(a.prepareSync(2).resumeFrom, "the applied page reset the count");
    a.abortSync(2);
    const restart = a.prepareSync(2);
    assert.is(restart.resumeFrom, undefined, `started over after ${MAX_ROUND_RESUMES + 1} failures in a row`);
    checkInvariant([a, b], "end");
    assert.is(ackOf(a, 2), 0);
  } finally {
    await a.close();
    await b.close();
  }
});

test("a round that carries a reset request (digest repair) starts over after a failure, as before", async () => {
  const c = await cluster([1, 2], { net: { seed: 3 }, node: { sync: { maxDeltaEntries: PAGE, digestCheckRounds: 1, bucketRepairAttempts: 0 } } });
  try {
    await write(c.node(2), 12, new Map());
    const dropper = dropOneEntry({ from: 2, to: 1 });
    c.net.setTamper(dropper);
    await c.sync(1).syncOnce();
    assert.is(dropper.dropped.length, 1, "one entry lost on the wire");
    c.net.setTamper(undefined);
    for (let i = 0; i < 6 && c.node(1).repairStats().digestResets === 0; i++) await c.sync(1).syncOnce();
    assert.is(c.node(1).repairStats().digestResets, 1, "the full reset was armed");
    const a = c.node(1), b = c.node(2);
    const first = page(a, b);
    assert.ok(first.req.resetAcks && first.out.more, "a paged round carrying the reset");
    const second = wire(a.prepareSync(2));
    assert.ok(second.resumeFrom && second.resetAcks);
    a.abortSync(2);
    const restart = wire(a.prepareSync(2));
    assert.is(restart.resumeFrom, undefined, "started over");
    assert.ok(restart.resetAcks, "still asking for the reset");
    a.abortSync(2);
    await c.converge(6);
    for (let k = 0; k < 12; k++) assert.ok(a.get(keyOf(2, k)), `repaired: ${keyOf(2, k)}`);
  } finally {
    await c.close();
  }
});

/** INV over a cluster (node ids are the origins). */
const clusterInv = (c: Cluster, where: string) => checkInvariant(c.ids.map((id) => c.node(id)), where);

test("lossy links and small pages: a 4-node cluster converges (INV after every round)", async () => {
  const ids = [1, 2, 3, 4];
  const c = await cluster(ids, { net: { seed: 7, drop: 0.2 }, node: { sync: { maxDeltaEntries: 8 } } });
  const written = new Map<number, number>();
  try {
    for (const id of ids) await write(c.node(id), 150, written);
    let rounds = 0;
    for (; !c.converged(); rounds++) {
      assert.ok(rounds < 60, `no convergence after ${rounds} rounds`);
      await c.round();
      clusterInv(c, `round ${rounds}`);
    }
    assert.ok(c.net.stats.dropped > 50, `messages were lost (${c.net.stats.dropped})`);
    for (const id of ids) for (const o of ids) for (let k = 0; k < 150; k++) assert.ok(c.node(id).get(keyOf(o, k)), `${id} lacks ${keyOf(o, k)}`);
  } finally {
    await c.close();
  }
});

test.run();
