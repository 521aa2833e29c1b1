// Divergence that acks cannot see, repaired through the range summary (docs/PROTOCOL.md
// §5): a response that lost one entry, a third node's entry, a tombstone collected on one
// side only, a WAL tail cut after peers acknowledged it, and 100k keys with one diverged.
// Repair traffic is counted on the wire and must stay proportional to the damage.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { openSync, fstatSync, ftruncateSync, closeSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { dropOneEntry, type NetworkMessage } from "../../src/transport/memory.js";
import { decodeEnvelope, encodeEnvelope } from "../../src/sync/envelope.js";
import { cluster, text } from "../helpers/cluster.js";
import { Node } from "../../src/node/node.js";

/** Wire bytes and entries of the messages that belong to a bucket repair. */
function repairMeter() {
  const m = { bytes: 0, entries: 0, messages: 0 };
  const count = (msg: NetworkMessage) => {
    const env = decodeEnvelope(msg.body);
    if (env.repairBuckets !== undefined || env.summaryGroups !== undefined || env.summaryBuckets !== undefined) {
      m.bytes += msg.body.length;
      m.messages++;
      if (env.repairBuckets !== undefined) m.entries += env.entries.length;
    }
  };
  return Object.assign(m, { count });
}

/** Every entry of `from` (tombstones included) is in `to`, identical. */
function holdsAll(to: Node, from: Node): void {
  for (const e of from.scan("", { includeTombstones: true })) {
    assert.equal(to.getIncludingTombstones(e.key), e, `entry ${e.key}`);
  }
}

test("a lost entry is repaired by bucket repair alone: no full reset, traffic of one bucket", async () => {
  const meter = repairMeter();
  const dropper = dropOneEntry({ from: 2, to: 1 });
  const c = await cluster([1, 2], { net: { seed: 3 }, node: { sync: { digestCheckRounds: 2 } } });
  for (let i = 0; i < 3000; i++) await c.node(2).put(`key/${i}`, `value ${i} `.repeat(3));
  await c.sync(1).syncOnce();
  c.net.setTamper((m) => { meter.count(m); return dropper(m); });
  for (let i = 0; i < 20; i++) await c.node(2).put(`late/${i}`, `v${i}`);
  await c.sync(1).syncOnce();
  assert.is(dropper.dropped.length, 1, "one entry lost on the wire");
  c.net.setTamper((m) => { meter.count(m); return undefined; });
  let rounds = 0;
  while (c.node(1).digest() !== c.node(2).digest() && rounds < 6) { await c.sync(1).syncOnce(); rounds++; }
  assert.is(c.node(1).digest(), c.node(2).digest(), "digests end equal");
  holdsAll(c.node(1), c.node(2));
  const s1 = c.node(1).repairStats(), s2 = c.node(2).repairStats();
  assert.is(s1.digestResets, 0, "no full reset");
  assert.is(s1.bucketRepairs, 1);
  // 3020 keys over 4096 buckets: the damaged bucket holds a handful of entries.
  assert.ok(s1.repairEntriesReceived >= 1 && s1.repairEntriesReceived <= 8, `received ${s1.repairEntriesReceived}`);
  assert.ok(s2.repairEntriesSent <= 8 && meter.entries <= 16, `repair entries ${meter.entries}`);
  assert.ok(meter.bytes < 3000, `repair bytes ${meter.bytes} (groups 512 B + buckets 512 B + a few entries)`);
  assert.is(meter.messages, 4, "groups request, buckets response, repair request, repair response");
  assert.is(c.node(1).summaryRoot(), c.node(2).summaryRoot());
  await c.close();
});

test("a bucket repair whose buckets answer is paged (writes arrived meanwhile) still repairs: no full reset", async () => {
  const a = await Node.open({ id: 1, peers: [2], sync: { digestCheckRounds: 2 } });
  const b = await Node.open({ id: 2, peers: [1], sync: { maxDeltaEntries: 4 } });
  for (let i = 0; i < 200; i++) await b.put(`key/${i}`, `value ${i}`);
  // One round whose response loses one entry on the wire: acks adopted, the entry missing.
  const lossy = (bytes: Uint8Array) => {
    const env = decodeEnvelope(bytes);
    const { entries, ...fields } = env;
    return decodeEnvelope(encodeEnvelope({ ...fields, entries: entries.filter((e) => e.key !== "key/7") }));
  };
  let out;
  do out = a.applyEnvelope(lossy(encodeEnvelope(b.handleEnvelope(decodeEnvelope(encodeEnvelope(a.prepareSync(2))))))); while (out.more);
  assert.is(a.get("key/7"), undefined, "lost on the wire");
  const exchange = () => a.applyEnvelope(decodeEnvelope(encodeEnvelope(b.handleEnvelope(decodeEnvelope(encodeEnvelope(a.prepareSync(2)))))));
  // Quiescent mismatched rounds until the repair begins (its next request carries our group hashes).
  let rounds = 0;
  do out = exchange(); while (!out.more && ++rounds < 5);
  assert.ok(out.more, "a bucket repair began");
  // Meanwhile the responder takes writes: its answer to the group hashes is paged.
  for (let i = 0; i < 10; i++) await b.put(`late/${i}`, `v${i}`);
  let pages = 0;
  for (let i = 0; i < 20 && out.more; i++) { out = exchange(); pages++; }
  assert.ok(pages > 2, `the answer came in pages (${pages} exchanges)`);
  assert.is(a.digest(), b.digest(), "repaired");
  assert.is(a.get("key/7")?.seq, b.get("key/7")?.seq);
  const s = a.repairStats();
  assert.is(s.digestResets, 0, "no full reset");
  assert.is(s.bucketRepairs, 1);
  assert.ok(s.repairEntriesReceived >= 1, `repair entries received: ${s.repairEntriesReceived}`);
  await a.close();
  await b.close();
});

test("bucket repair recovers an entry authored by a third node the requester never talks to", async () => {
  const c = await cluster([1, 2, 3], {
    peers: (id) => (id === 2 ? [1, 3] : [2]),
    // Node 2 forwards 3's entry at once (no fan-out hold-back): the entry lost on the wire is the point here.
    node: (id) => (id === 1 ? { sync: { digestCheckRounds: 2 } } : id === 2 ? { sync: { holdBack: false } } : {}),
  });
  await c.node(3).put("from-3", "c");
  await c.sync(3).syncOnce();
  const dropper = dropOneEntry({ from: 2, to: 1 });
  c.net.setTamper(dropper);
  await c.sync(1).syncOnce();
  assert.equal(dropper.dropped.map((e) => e.key), ["from-3"]);
  c.net.setTamper(undefined);
  const [r2] = await c.sync(1).syncOnce();
  assert.is(r2!.repaired, true, "the second quiescent mismatch runs the bucket repair in the same round");
  assert.is(text(c.node(1).get("from-3")?.value), "c");
  assert.is(r2!.digestMatch, true, "the repair response's root already matches");
  assert.is(c.node(1).digest(), c.node(2).digest());
  assert.is(c.node(1).repairStats().digestResets, 0);
  const [r3] = await c.sync(1).syncOnce();
  assert.equal([r3!.receivedEntries, r3!.sentEntries, r3!.digestMatch], [0, 0, true], "incremental again; acks never moved by the repair");
  await c.close();
});

test("a tombstone collected on one side only does not resurrect the key", async () => {
  const c = await cluster([1, 2], { node: { sync: { digestCheckRounds: 1 } } });
  await c.node(1).put("k", "v");
  await c.node(1).put("other", "o");
  await c.rounds(2);
  await c.node(1).delete("k");
  await c.rounds(3);
  assert.ok(c.node(2).getIncludingTombstones("k"), "node 2 holds the tombstone");
  assert.is(await c.node(1).collectGarbage(), 1, "node 1 collects it (node 2 covers it)");
  assert.is(c.node(1).getIncludingTombstones("k"), undefined);
  for (let i = 0; i < 6; i++) {
    await c.round();
    assert.is(c.node(1).get("k"), undefined, `round ${i}: not resurrected on 1`);
    assert.is(c.node(2).get("k"), undefined, `round ${i}: not resurrected on 2`);
  }
  await c.node(2).collectGarbage();
  await c.node(1).collectGarbage();
  await c.converge(6);
  assert.is(c.node(1).get("k"), undefined);
  assert.is(text(c.node(1).get("other")?.value), "o");
  assert.is(c.node(1).repairStats().digestResets + c.node(2).repairStats().digestResets, 0, "bucket repair sufficed");
  await c.close();
});

test("a WAL tail cut after the peer acknowledged it: reopened, the pair converges and nothing acknowledged is lost", async () => {
  const c = await cluster([1, 2], { durable: true, tmpRoot: "/dev/shm", node: { sync: { digestCheckRounds: 2 } } });
  for (let i = 0; i < 50; i++) await c.node(1).put(`k${i}`, `v${i}`);
  await c.rounds(2);
  assert.is(c.node(2).digest(), c.node(1).digest(), "node 2 acknowledged everything");
  const ownSeq = c.node(1).status().nextSeq - 1;
  await c.kill(1);
  const dir = c.dirOf(1)!;
  const wal = join(dir, readdirSync(dir).find((f) => f.endsWith(".wal"))!);
  const fd = openSync(wal, "r+");
  ftruncateSync(fd, fstatSync(fd).size - 7); // a torn last record: truncated away on open
  closeSync(fd);
  await c.open(1);
  assert.is(c.node(1).get("k49"), undefined, "the cut write is gone locally");
  await c.converge(8);
  for (let i = 0; i < 50; i++) assert.is(text(c.node(1).get(`k${i}`)?.value), `v${i}`, `k${i}`);
  const e = await c.node(1).put("after", "x");
  assert.ok(e.seq > ownSeq, `no seq reused (${e.seq} > ${ownSeq})`);
  await c.close();
});

test("100k keys, one entry lost: bucket repair sends well under 1% of the store, within 3 round trips", async () => {
  const started = Date.now();
  const meter = repairMeter();
  let tamper: ((m: NetworkMessage) => Uint8Array | undefined) | undefined;
  const c = await cluster([1, 2], { net: { seed: 5, tamper: (m) => tamper?.(m) }, node: { sync: { digestCheckRounds: 1 } } });
  const value = "x".repeat(100);
  const writes: Promise<unknown>[] = [];
  for (let i = 0; i < 100_000; i++) writes.push(c.node(2).put(`user/${i.toString(36)}`, value));
  await Promise.all(writes);
  while (c.node(1).status().keys < 100_000) await c.sync(1).syncOnce();
  const storeBytes = 100_000 * (value.length + 8);
  const dropper = dropOneEntry({ from: 2, to: 1 });
  tamper = dropper;
  for (let i = 0; i < 5; i++) await c.node(2).put(`late/${i}`, value);
  await c.sync(1).syncOnce();
  assert.is(dropper.dropped.length, 1);
  tamper = (m) => { meter.count(m); return undefined; };
  const [r] = await c.sync(1).syncOnce();
  assert.is(r!.repaired, true);
  assert.is(r!.pages, 3, "detection round + buckets + entries: 3 round trips");
  assert.is(c.node(1).summaryRoot(), c.node(2).summaryRoot());
  assert.is(c.node(1).digest(), c.node(2).digest());
  assert.is(c.node(1).repairStats().digestResets, 0);
  assert.ok(meter.bytes < storeBytes / 100, `repair ${meter.bytes} B of a ${storeBytes} B store`);
  assert.ok(meter.entries < 200, `repair entries ${meter.entries}`);
  const ms = Date.now() - started;
  console.log(`  100k keys: repair ${meter.bytes} B (${(100 * meter.bytes / storeBytes).toFixed(3)} % of store), ${meter.entries} entries, ${ms} ms total`);
  await c.close();
});

test.run();
