// Hostile peers (issue 15 items 1 and 12): what one peer holding the secret can send must
// not move our seqs, break our encoder, stop replication or lock a real node out.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "../../src/codec/crc.js";
import { ENVELOPE_VERSION, MAX_SEQ, decodeEnvelope, encodeEnvelope, envelopeWithEncodedEntries } from "../../src/sync/envelope.js";
import { encodeRecords } from "../../src/codec/records.js";
import { RecordKind } from "../../src/core/record.js";
import { WaveKVError } from "../../src/core/errors.js";
import { HttpTransport, serveHttp } from "../../src/transport/http.js";
import { signRequest } from "../../src/transport/auth.js";
import { Node } from "../../src/node/node.js";
import { SyncManager } from "../../src/node/manager.js";
import type { Entry } from "../../src/core/types.js";
import { cluster, warningSink } from "../helpers/cluster.js";

const POISON = 2 ** 53 - 1;
const text = (v: Uint8Array | null | undefined) => (v ? new TextDecoder().decode(v) : undefined);

/** A push as node `from` (with its real uuid: it holds the secret) carrying `entries`. */
function push(from: Node, entries: Entry[]): Uint8Array {
  return encodeEnvelope({ version: ENVELOPE_VERSION, senderId: from.id, senderUuid: from.uuid, acks: new Map(), entries, pushOnly: true });
}

function forged(node: number, seq: number, key = "evil"): Entry {
  return { key, value: new TextEncoder().encode("x"), timestamp: Date.now(), node, seq };
}

/** A request with acks our encoder refuses to write (above MAX_SEQ), assembled by hand. */
function rawRequest(from: Node, acks: [number, number][]): Uint8Array {
  const out: number[] = [0x57, 0x4b, 0x56, 0x45, 1, 0];
  const varu = (v: number) => { for (; v >= 0x80; v = Math.floor(v / 128)) out.push((v % 128) | 0x80); out.push(v); };
  varu(from.id);
  for (const h of from.uuid.replace(/-/g, "").match(/../g)!) out.push(parseInt(h, 16));
  varu(acks.length);
  for (const [o, s] of acks) { varu(o); varu(s); }
  out.push(0, 0);
  const bytes = new Uint8Array(out.length + 4);
  bytes.set(out);
  new DataView(bytes.buffer).setUint32(out.length, crc32(bytes.subarray(0, out.length)) >>> 0, true);
  return bytes;
}

/** Nodes 1 and 2 (MemoryNetwork), converged after one write of node 1. */
async function pair(opts: Parameters<typeof cluster>[1] = {}) {
  const c = await cluster([1, 2], opts);
  await c.node(1).put("a", "1");
  await c.converge();
  return c;
}

async function refused(p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, WaveKVError);
    assert.is((e as WaveKVError).code, code, (e as Error).message);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

test("seq poisoning over MemoryNetwork: a push claiming our origin at 2^53-1 (or 2^40) is refused per entry; nextSeq and replication unharmed", async () => {
  const c = await pair();
  try {
    const next = c.node(1).status().nextSeq;
    const rejected = c.node(1).status().entriesRejected;
    const ack = decodeEnvelope(await c.net.transport(2).push!(1, push(c.node(2), [forged(1, POISON), forged(1, 2 ** 40, "evil2"), forged(2, 99, "fine")]), { signal: new AbortController().signal }));
    assert.ok(ack.pushOnly);
    assert.is(c.node(1).status().nextSeq, next, "nextSeq did not move");
    assert.is(c.node(1).status().entriesRejected, rejected + 2, "both forged entries counted");
    assert.is(c.node(1).get("evil"), undefined);
    assert.is(c.node(1).get("evil2"), undefined);
    assert.is(text(c.node(1).get("fine")?.value), "x", "the rest of the envelope merged");
    const w = await c.node(1).put("after", "v");
    assert.is(w.seq, next);
    const [r] = await c.sync(1).syncOnce();
    assert.ok(r!.ok, r!.error?.message);
    assert.is(text(c.node(2).get("after")?.value), "v", "the next local write replicated");
  } finally {
    await c.close();
  }
});

test("a forged entry of our origin held by a peer is refused every round without stalling adoption", async () => {
  const c = await pair();
  try {
    // Node 2 takes it (origin 1 is not its own): it will offer it to node 1 every round.
    await c.sync(2).handle(push(c.node(1), [forged(1, 2 ** 40)]));
    assert.ok(c.node(2).get("evil"));
    const next = c.node(1).status().nextSeq;
    await c.node(2).put("b", "2");
    const [r] = await c.sync(1).syncOnce();
    assert.ok(r!.ok, r!.error?.message);
    assert.is(r!.rejected, 1);
    assert.is(r!.adopted, true, "a refused claim about our own origin does not block R1 adoption");
    assert.is(c.node(1).status().nextSeq, next);
    const w = await c.node(1).put("c", "3");
    await c.sync(1).syncOnce();
    assert.is(c.node(2).get("c")?.seq, w.seq);
  } finally {
    await c.close();
  }
});

test("acks: above MAX_SEQ (ours or a third party's) are BAD_ENVELOPE; a claim to cover writes we never made moves nothing and hides none", async () => {
  const c = await pair();
  try {
    const next = c.node(1).status().nextSeq;
    const digest = c.node(1).digest();
    await refused(c.sync(1).handle(rawRequest(c.node(2), [[1, POISON]])), "BAD_ENVELOPE");
    await refused(c.sync(1).handle(rawRequest(c.node(2), [[3, POISON]])), "BAD_ENVELOPE");
    await refused(c.sync(1).handle(rawRequest(c.node(2), [[1, MAX_SEQ + 1]])), "BAD_ENVELOPE");
    assert.is(c.node(1).digest(), digest);
    // In range, but more than we ever wrote: a request and then a page claiming it.
    await c.sync(1).handle(rawRequest(c.node(2), [[1, 1_000_000]]));
    assert.is(c.node(1).status().nextSeq, next, "a requester's claim does not move our nextSeq");
    assert.ok(c.node(1).status().peers[0]!.peerAck < next, "the recorded claim is clamped to what we wrote");
    const w = await c.node(1).put("after", "v");
    assert.is(w.seq, next);
    const [r] = await c.sync(1).syncOnce();
    assert.ok(r!.ok, r!.error?.message);
    assert.is(r!.sentEntries, 1, "our new write is still in node 2's delta");
    assert.is(text(c.node(2).get("after")?.value), "v");
    // Our own requests still encode.
    assert.ok(encodeEnvelope(c.node(1).prepareSync(2)).length > 0);
    c.node(1).abortSync(2);
  } finally {
    await c.close();
  }
});

test("seq poisoning, durable: after the attack a restart keeps nextSeq and still replicates", async () => {
  const c = await pair({ durable: true, tmpRoot: "/dev/shm" });
  try {
    await c.sync(1).handle(push(c.node(2), [forged(1, POISON), forged(1, 2 ** 40, "evil2")]));
    const next = c.node(1).status().nextSeq;
    await c.kill(1);
    await c.open(1);
    assert.is(c.node(1).status().nextSeq, next, "nothing of the forgery reached the log");
    const w = await c.node(1).put("after", "v");
    assert.is(w.seq, next);
    await c.converge();
    assert.is(c.node(2).get("after")?.seq, w.seq);
  } finally {
    await c.close();
  }
});

test("seq poisoning over HTTP: a signed /push with our origin at 2^53-1; writes replicate, also after a restart", async () => {
  const SECRET = "a-shared-secret-of-some-length";
  const quiet = () => undefined;
  const dir = mkdtempSync(join(tmpdir(), "wavekv-adv-"));
  const b = await Node.open({ id: 2, peers: [1] });
  const syncB = new SyncManager(b, new HttpTransport({ secret: SECRET, timeoutMs: 3_000 }), { onWarning: quiet });
  const serverB = await serveHttp(syncB, { node: b, secret: SECRET, onWarning: quiet });
  const startA = async () => {
    const a = await Node.open({ id: 1, peers: [2], dir, fsync: "never", onWarning: warningSink() });
    const transport = new HttpTransport({ secret: SECRET, timeoutMs: 3_000 });
    transport.setPeer(2, serverB.url);
    const sync = new SyncManager(a, transport, { onWarning: quiet });
    const server = await serveHttp(sync, { node: a, secret: SECRET, onWarning: quiet });
    return { a, sync, server, close: async () => { await sync.stop(); await server.close(); await a.close(); } };
  };
  let A = await startA();
  try {
    await A.a.put("k", "v");
    assert.ok((await A.sync.syncOnce())[0]!.ok);
    const next = A.a.status().nextSeq;
    const body = push(b, [forged(1, POISON)]);
    const res = await fetch(`${A.server.url}/push`, { method: "POST", body: body as Uint8Array<ArrayBuffer>, headers: signRequest(SECRET, "POST", "/push", body, 1) });
    assert.is(res.status, 200);
    assert.is(A.a.status().nextSeq, next);
    await A.a.put("after", "v");
    const [r] = await A.sync.syncOnce();
    assert.ok(r!.ok, r!.error?.message);
    assert.is(text(b.get("after")?.value), "v");
    await A.close();
    A = await startA();
    assert.is(A.a.status().nextSeq, next + 1);
    await A.a.put("restarted", "v");
    const [r2] = await A.sync.syncOnce();
    assert.ok(r2!.ok, r2!.error?.message);
    assert.is(text(b.get("restarted")?.value), "v");
  } finally {
    await A.close();
    await syncB.stop();
    await serverB.close();
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A request as node `id` with `uuid` (a squatter or a forged sender id). */
function requestAs(id: number, uuid: string): Uint8Array {
  return encodeEnvelope({ version: ENVELOPE_VERSION, senderId: id, senderUuid: uuid, acks: new Map(), entries: [] });
}

const uuidOf = (i: number) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, "0")}`;

test("forged sender ids: auto-discovery stops at maxDiscoveredPeers with TOO_MANY_PEERS and one warning; removePeer makes room", async () => {
  const c = await cluster([1, 2], { durable: true, tmpRoot: "/dev/shm", node: { sync: { maxDiscoveredPeers: 3 } } });
  try {
    for (let id = 100; id < 103; id++) await c.sync(1).handle(requestAs(id, uuidOf(id)));
    assert.equal(c.node(1).peers(), [2, 100, 101, 102]);
    const before = c.warnings.lines.length;
    for (let id = 103; id < 110; id++) await refused(c.sync(1).handle(requestAs(id, uuidOf(id))), "TOO_MANY_PEERS");
    assert.equal(c.node(1).peers(), [2, 100, 101, 102], "refused ids became no peers");
    assert.is(c.warnings.lines.length - before, 1, `one warning, not one per request: ${c.warnings.lines.slice(before).join(" | ")}`);
    const st = c.node(1).status().peers;
    assert.equal(st.map((p) => [p.id, p.discovered, p.uuid]), [[2, false, undefined], [100, true, uuidOf(100)], [101, true, uuidOf(101)], [102, true, uuidOf(102)]]);
    // Configured peers are never refused, and their requests pass.
    await c.sync(1).handle(requestAs(2, c.node(2).uuid));
    await c.node(1).removePeer(101);
    await c.sync(1).handle(requestAs(103, uuidOf(103)));
    assert.equal(c.node(1).peers(), [2, 100, 102, 103]);
    // Durable: after a restart the discovered ones still count.
    await c.kill(1);
    await c.open(1);
    assert.equal(c.node(1).status().peers.map((p) => [p.id, p.discovered]), [[2, false], [100, true], [102, true], [103, true]]);
    await refused(c.sync(1).handle(requestAs(104, uuidOf(104))), "TOO_MANY_PEERS");
  } finally {
    await c.close();
  }
});

test("a squatter that claims a peer's id first cannot lock the real node out: its answer to our request is the evidence", async () => {
  const c = await cluster([1, 2]);
  try {
    const squatter = uuidOf(0xbad);
    await c.sync(1).handle(requestAs(2, squatter));
    assert.is(c.node(1).status().peers[0]!.uuid, squatter, "first come: the squatter's uuid is on record");
    await c.node(2).put("real", "v");
    // The real node's request is refused once; the refusal makes node 1 ask node 2 itself.
    const [r] = await c.sync(2).syncOnce();
    assert.is(r!.ok, false);
    assert.match(r!.error!.message, /UUID_MISMATCH/);
    await c.net.settled();
    assert.is(c.node(1).status().peers[0]!.uuid, c.node(2).uuid, "the record followed the answer");
    const [r2] = await c.sync(2).syncOnce();
    assert.ok(r2!.ok, r2!.error?.message);
    assert.ok(c.node(1).get("real"));
    // From now on the squatter is the one refused, and cannot take the record back.
    await refused(c.sync(1).handle(requestAs(2, squatter)), "UUID_MISMATCH");
    await c.net.settled();
    assert.is(c.node(1).status().peers[0]!.uuid, c.node(2).uuid);
  } finally {
    await c.close();
  }
});

test("removePeer forgets a peer completely: membership (durable), uuid record, acks", async () => {
  const c = await cluster([1, 2], { durable: true, tmpRoot: "/dev/shm" });
  try {
    await c.node(2).put("x", "v");
    await c.converge();
    assert.ok(c.node(1).status().peers[0]!.ack > 0);
    await c.node(1).removePeer(2);
    assert.equal(c.node(1).status().peers, []);
    // Its id may come back with another uuid (a rebuilt node): discovered anew, no UUID_MISMATCH.
    await c.sync(1).handle(requestAs(2, uuidOf(7)));
    const [p] = c.node(1).status().peers;
    assert.equal([p!.id, p!.uuid, p!.discovered, p!.ack], [2, uuidOf(7), true, 0]);
    await c.node(1).removePeer(2);
    await c.kill(1);
    await c.open(1, { peers: [] });
    assert.equal(c.node(1).peers(), [], "the removal is durable");
  } finally {
    await c.close();
  }
});

test("entries the envelope cannot carry exactly (seq 0, seq > MAX_SEQ, timestamp beyond ±(2^53-1)) are refused one by one", async () => {
  const c = await cluster([1, 2]);
  try {
    const body = encodeRecords([
      { kind: RecordKind.Value, key: "seq0", value: new Uint8Array([1]), timestamp: 1, node: 2, seq: 0 },
      { kind: RecordKind.Value, key: "big", value: new Uint8Array([1]), timestamp: 1, node: 2, seq: MAX_SEQ + 1 },
      { kind: RecordKind.Value, key: "old", value: new Uint8Array([1]), timestamp: -(2 ** 60), node: 2, seq: 5 },
      { kind: RecordKind.Value, key: "ok", value: new Uint8Array([1]), timestamp: 1, node: 2, seq: 6 },
    ], "bare", 0);
    const env = envelopeWithEncodedEntries({ version: ENVELOPE_VERSION, senderId: 2, senderUuid: c.node(2).uuid, acks: new Map(), pushOnly: true }, { bytes: body, count: 4, base: 0 });
    await c.sync(1).handle(encodeEnvelope(env));
    assert.is(c.node(1).status().entriesRejected, 3);
    assert.equal([...c.node(1).scan()].map((e) => e.key), ["ok"]);
  } finally {
    await c.close();
  }
});

test("a stored entry at the edge of the timestamp range (-(2^53-1)) never stops our own encoder", async () => {
  const c = await cluster([1, 2, 3]);
  try {
    await c.sync(1).handle(push(c.node(3), [{ key: "ancient", value: new TextEncoder().encode("x"), timestamp: -Number.MAX_SAFE_INTEGER, node: 3, seq: 1 }]));
    await c.node(1).put("new", "v");
    // Node 3's entry is a third party's to node 1: held back from node 2 for two of node 1's rounds with it (fan-out hold-back).
    for (let i = 0; i < 3; i++) {
      const [r] = (await c.sync(1).syncOnce()).filter((x) => x.peer === 2);
      assert.ok(r!.ok, r!.error?.message);
    }
    assert.is(c.node(2).get("ancient")?.timestamp, -Number.MAX_SAFE_INTEGER);
    assert.ok(c.node(2).get("new"));
  } finally {
    await c.close();
  }
});

test.run();
