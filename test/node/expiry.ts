// Expiry (TTL, issue 21): put/get/scan/size/watch, the WAL and snapshots, GC, sync with
// the Feature.Expiry negotiation, and bad input. docs/design/0026-expiry.md.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Node } from "../../src/node/node.js";
import { rejectsWith } from "../helpers/cluster.js";
import { runScript, srcDir } from "../helpers/procs.js";
import type { WaveKVError } from "../../src/core/errors.js";
import { MAX_TTL_MS } from "../../src/core/expiry.js";
import { MAX_TTL_MS as PUBLIC_MAX_TTL_MS } from "../../src/index.js";
import { MAX_TTL_MS as BROWSER_MAX_TTL_MS } from "../../src/browser.js";
import { decodeEnvelope, encodeEnvelope, type Envelope } from "../../src/sync/envelope.js";
import { Feature } from "../../src/sync/envelope-model.js";
import { pushEnvelopes } from "../../src/node/push.js";

const text = (b: Uint8Array | null | undefined) => (b ? new TextDecoder().decode(b) : b);
const UUID2 = "00000000-0000-4000-8000-000000000002";

function fakeClock(start: number) {
  let now = start;
  const clock = () => now;
  clock.set = (t: number) => { now = t; };
  return clock;
}

/** `a` pulls from `b` over encoded bytes; `strip` drops Feature.Expiry from the envelopes of that node (an older build). */
function round(a: Node, b: Node, strip?: Node): Envelope[] {
  const seen: Envelope[] = [];
  const carry = (env: Envelope, from: Node): Envelope => {
    if (strip === from && env.features !== undefined) env = { ...env, features: env.features & ~Feature.Expiry };
    const out = decodeEnvelope(encodeEnvelope(env));
    seen.push(out);
    return out;
  };
  for (;;) {
    const req = carry(a.prepareSync(b.id), a);
    const resp = carry(b.handleEnvelope(req), b);
    if (!a.applyEnvelope(resp).more) return seen;
  }
}

test("put with ttlMs: readable until its expiry, then absent to get, scan and size on the reader's clock", async () => {
  const clock = fakeClock(1_000);
  const node = await Node.open({ id: 1, clock });
  const e = await node.put("k", "v", { ttlMs: 500 });
  assert.is(e.expiresAt, 1_500);
  await node.put("plain", "p");
  assert.is(text(node.get("k")?.value), "v");
  assert.is(node.get("k")?.expiresAt, 1_500);
  assert.is(node.get("plain")?.expiresAt, undefined);
  assert.is(node.size, 2);
  clock.set(1_499);
  assert.is(node.size, 2);
  clock.set(1_500);
  assert.is(node.get("k"), undefined);
  assert.equal([...node.scan("")].map((x) => x.key), ["plain"]);
  assert.is(node.size, 1);
  assert.is(node.status().keys, 1);
  // Shown as a deletion where tombstones are shown: value null, the expiry kept.
  const shown = node.getIncludingTombstones("k")!;
  assert.equal([shown.value, shown.expiresAt], [null, 1_500]);
  assert.equal([...node.scan("", { includeTombstones: true })].map((x) => [x.key, x.value === null]), [["k", true], ["plain", false]]);
  await node.close();
});

test("LWW is unchanged: a newer write without TTL wins over an expiring one and vice versa; forcePut takes ttlMs", async () => {
  const clock = fakeClock(1_000);
  const node = await Node.open({ id: 1, clock });
  await node.put("k", "a", { ttlMs: 100 });
  clock.set(1_010);
  await node.put("k", "b");
  clock.set(2_000);
  assert.is(text(node.get("k")?.value), "b");
  assert.is(node.get("k")?.expiresAt, undefined);
  await node.put("k", "c", { ttlMs: 100 });
  clock.set(2_100);
  assert.is(node.get("k"), undefined);
  const f = await node.forcePut("k", "d", { ttlMs: 50 });
  assert.is(f.expiresAt, f.timestamp + 50);
  assert.is(text(node.get("k")?.value), "d");
  await node.close();
});

test("bad ttlMs (≤ 0, fractional, NaN, too large, not a number) and reserved keys: INVALID_ARGUMENT, nothing written", async () => {
  const node = await Node.open({ id: 1 });
  for (const ttlMs of [0, -1, 1.5, NaN, Infinity, MAX_TTL_MS + 1, "10" as unknown as number]) {
    await rejectsWith(node.put("k", "v", { ttlMs }), "INVALID_ARGUMENT");
    await rejectsWith(node.forcePut("k", "v", { ttlMs }), "INVALID_ARGUMENT");
  }
  await rejectsWith(node.put("__wavekv/peers/1", "x", { ttlMs: 10 }), "INVALID_ARGUMENT");
  assert.is(node.status().nextSeq, 1);
  assert.is(node.size, 0);
  assert.is((await node.put("k", "v", { ttlMs: MAX_TTL_MS })).expiresAt! - Date.now() <= MAX_TTL_MS, true);
  await node.close();
});

test("the expiry survives the WAL and snapshots (v2), and a reopened node reads it expired by its clock", async () => {
  const dir = mkdtempSync(join(tmpdir(), "wavekv-ttl-"));
  try {
    const clock = fakeClock(10_000);
    let node = await Node.open({ id: 1, dir, clock });
    await node.put("a", "1", { ttlMs: 1_000 });
    await node.put("b", "2");
    const digest = node.digest();
    await node.close();
    node = await Node.open({ id: 1, dir, clock });
    assert.equal([text(node.get("a")?.value), node.get("a")?.expiresAt], ["1", 11_000]);
    assert.is(node.digest(), digest);
    await node.persist();
    await node.put("c", "3", { ttlMs: 5 });
    await node.close();
    node = await Node.open({ id: 1, dir, clock });
    assert.equal([node.get("a")?.expiresAt, node.get("c")?.expiresAt, node.get("b")?.expiresAt], [11_000, 10_005, undefined]);
    assert.is(node.status().nextSeq, 4);
    clock.set(11_000);
    assert.equal([...node.scan("")].map((x) => x.key), ["b"]);
    await node.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("digest: unchanged for entries without expiry; an expiring entry hashes its expiry, expired or not", async () => {
  const clock = fakeClock(1_000);
  const a = await Node.open({ id: 1, clock });
  const b = await Node.open({ id: 1, clock });
  await a.put("k", "v", { ttlMs: 10 });
  await b.put("k", "v", { ttlMs: 20 });
  assert.is.not(a.digest(), b.digest());
  const before = a.digest();
  clock.set(5_000);
  assert.is(a.digest(), before);
  await a.close();
  await b.close();
});

test("watch: one event when an entry expires (a timer at the nearest expiry), value null with its expiresAt", async () => {
  const clock = fakeClock(1_000);
  const node = await Node.open({ id: 1, clock });
  // The expiry timer is unref'd: this test, with nothing else alive, holds the loop itself.
  const hold = setInterval(() => {}, 1_000);
  const ac = new AbortController();
  try {
    const feed = node.watch("", { signal: ac.signal });
    await node.put("late", "x", { ttlMs: 60_000 });
    await node.put("soon", "y", { ttlMs: 20 });
    const first = await feed.next();
    const second = await feed.next();
    assert.equal([first.value.key, second.value.key], ["late", "soon"]);
    clock.set(1_020); // "soon" is due; the timer fires ~20 ms from now in real time
    const expired = await feed.next();
    assert.equal([expired.value.key, expired.value.value, expired.value.expiresAt], ["soon", null, 1_020]);
    clock.set(100_000);
    // An expiring write after the clock jumped reschedules: "late" is overdue and comes first.
    await node.put("poke", "z", { ttlMs: 60_000 });
    assert.is((await feed.next()).value.key, "poke");
    const next = await feed.next();
    assert.equal([next.value.key, next.value.value], ["late", null]);
  } finally {
    // Also when an assertion fails: the interval would keep the file from exiting.
    clearInterval(hold);
    ac.abort();
    await node.close();
  }
});

test("sync: the expiry travels to a peer that advertises Feature.Expiry; both read it expired on their own clock", async () => {
  const clock = fakeClock(1_000);
  const a = await Node.open({ id: 1, peers: [2], clock });
  const b = await Node.open({ id: 2, peers: [1], clock });
  await a.put("k", "v", { ttlMs: 100 });
  await b.put("x", "y", { ttlMs: 100 });
  round(b, a);
  round(a, b);
  assert.is(b.get("k")?.expiresAt, 1_100);
  assert.is(a.get("x")?.expiresAt, 1_100);
  assert.is(a.digest(), b.digest());
  assert.is(a.summaryRoot(), b.summaryRoot()); // the kernel hashed the same payload on both sides
  clock.set(1_100);
  assert.equal([a.get("k"), b.get("k"), a.size, b.size], [undefined, undefined, 0, 0]);
  await a.close();
  await b.close();
});

test("sync: a peer without Feature.Expiry never receives an expiring entry (requests and responses), the rest flows", async () => {
  const clock = fakeClock(1_000);
  const a = await Node.open({ id: 1, peers: [2], clock });
  const old = await Node.open({ id: 2, peers: [1], clock });
  await a.put("ttl", "v", { ttlMs: 60_000 });
  await a.put("plain", "p");
  const seen = [...round(old, a, old), ...round(a, old, old), ...round(old, a, old)];
  for (const env of seen.filter((e) => e.senderId === 1)) {
    assert.ok(env.entries.every((e) => e.expiresAt === undefined), "no expiring entry to an old peer");
  }
  assert.is(text(old.get("plain")?.value), "p");
  assert.is(old.get("ttl"), undefined);
  // Its acks stay below what it never got: once expired, the entry is not collected from under it.
  assert.ok((old.status().peers.find((p) => p.id === 1)?.ack ?? 0) < a.getIncludingTombstones("ttl")!.seq);
  clock.set(100_000);
  round(old, a, old);
  assert.is(await a.collectGarbage(), 0);
  assert.is(a.getIncludingTombstones("ttl")?.expiresAt, 61_000);
  clock.set(1_000);
  // Once it advertises the feature it gets it, in responses and in requests.
  const fresh = await Node.open({ id: 3, peers: [1], clock });
  round(fresh, a);
  assert.is(fresh.get("ttl")?.expiresAt !== undefined, true);
  await a.close();
  await old.close();
  await fresh.close();
});

test("pushes never carry an expiring entry (a pusher does not know its receivers' features)", async () => {
  const node = await Node.open({ id: 1 });
  const ttl = await node.put("t", "v", { ttlMs: 1_000 });
  const plain = await node.put("p", "v");
  const sent = pushEnvelopes(node, [ttl, plain]).flatMap((bytes) => decodeEnvelope(bytes).entries);
  assert.equal(sent.map((e) => e.key), ["p"]);
  await node.close();
});

test("from a peer: an expiry not after its stamp, or absurdly far: BAD_ENVELOPE, nothing applied", async () => {
  const node = await Node.open({ id: 1, peers: [2] });
  const entry = (expiresAt: number) => ({ key: "k", value: new Uint8Array([1]), timestamp: 1_000, node: 2, seq: 1, expiresAt });
  const env = (expiresAt: number): Envelope => ({ version: 1, senderId: 2, senderUuid: UUID2, acks: new Map(), entries: [entry(1_000 + 1), entry(expiresAt)], pushOnly: true });
  for (const bad of [1_000, 999, 1_000 + MAX_TTL_MS + 1]) {
    // Our own encoder refuses to build it…
    try { encodeEnvelope(env(bad)); assert.unreachable("encoded"); } catch (e) { assert.is((e as WaveKVError).code, "INVALID_ARGUMENT"); }
    // …and crafted bytes (a good expiry patched afterwards) are refused whole.
    const good = encodeEnvelope(env(1_500));
    const bytes = patchLastExpiry(good, bad);
    try { decodeEnvelope(bytes); assert.unreachable("decoded"); } catch (e) { assert.is((e as WaveKVError).code, "BAD_ENVELOPE"); }
  }
  assert.is(node.getIncludingTombstones("k"), undefined);
  // An expiry already past on our clock is fine: the entry replicates and reads absent.
  node.handleEnvelope(decodeEnvelope(encodeEnvelope(env(1_001))));
  assert.is(node.get("k"), undefined);
  assert.is(node.getIncludingTombstones("k")?.expiresAt, 1_001);
  await node.close();
});

/** The envelope with the last entry's 8 expiry bytes (1 500 LE before) set to `expiresAt`, its CRC fixed. */
function patchLastExpiry(bytes: Uint8Array, expiresAt: number): Uint8Array {
  const out = bytes.slice();
  const needle = new Uint8Array(8);
  new DataView(needle.buffer).setBigInt64(0, 1_500n, true);
  let at = -1;
  for (let i = out.length - 12; i >= 0; i--) if (needle.every((b, j) => out[i + j] === b)) { at = i; break; }
  assert.ok(at > 0);
  new DataView(out.buffer).setBigInt64(at, BigInt(expiresAt), true);
  new DataView(out.buffer).setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)), true);
  return out;
}

function crc32(b: Uint8Array): number {
  let c = ~0;
  for (const x of b) { c ^= x; for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1)); }
  return ~c >>> 0;
}

test("GC: an expired entry leaves memory and disk once every peer covers it, and a late re-send does not bring it back", async () => {
  const dir = mkdtempSync(join(tmpdir(), "wavekv-ttl-gc-"));
  try {
    const clock = fakeClock(1_000);
    const a = await Node.open({ id: 1, peers: [2], dir, clock });
    const b = await Node.open({ id: 2, peers: [1], clock });
    await a.put("old", "v1");
    round(b, a);
    round(a, b);
    await a.put("old", "v2", { ttlMs: 100 });
    const late = decodeEnvelope(encodeEnvelope(a.prepareSync(2))); // carries the expiring entry
    a.abortSync(2);
    assert.ok(late.entries.some((e) => e.expiresAt !== undefined));
    assert.is(await a.collectGarbage(), 0); // not expired yet
    clock.set(1_100);
    assert.is(await a.collectGarbage(), 0); // expired, but peer 2 has not confirmed it
    round(b, a);
    round(a, b);
    assert.is(await a.collectGarbage(), 1);
    assert.is(a.getIncludingTombstones("old"), undefined);
    await a.close();
    const reopened = await Node.open({ id: 1, peers: [2], dir, clock });
    assert.is(reopened.getIncludingTombstones("old"), undefined);
    // A replica re-sending the expired entry: it merges, and reads absent.
    reopened.handleEnvelope(decodeEnvelope(encodeEnvelope({ version: 1, senderId: 2, senderUuid: b.uuid, acks: new Map(), entries: late.entries, pushOnly: true })));
    assert.is(reopened.get("old"), undefined);
    assert.is(reopened.size, 0);
    await reopened.close();
    await b.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("MAX_TTL_MS is public (wavekv and wavekv/browser): the longest ttlMs a put accepts", async () => {
  assert.is(PUBLIC_MAX_TTL_MS, MAX_TTL_MS);
  assert.is(BROWSER_MAX_TTL_MS, MAX_TTL_MS);
  const node = await Node.open({ id: 1 });
  assert.is((await node.put("k", "v", { ttlMs: PUBLIC_MAX_TTL_MS })).expiresAt! - (node.get("k")!.timestamp), PUBLIC_MAX_TTL_MS);
  await rejectsWith(node.put("k", "v", { ttlMs: PUBLIC_MAX_TTL_MS + 1 }), "INVALID_ARGUMENT");
  await node.close();
});

test("a pending expiry does not keep the process alive (the timer is unref'd; close() is not needed)", async () => {
  const out = runScript(`
    import { Node } from ${JSON.stringify(srcDir + "node/node.ts")};
    const node = await Node.open({ id: 1 });
    const feed = node.watch("");
    void (async () => { for await (const _ of feed) {} })();
    await node.put("k", "v", { ttlMs: 60_000 });   // arms the expiry timer at +60 s
    console.log("watching");
  `, 30_000);
  assert.is(out.status, 0, `${out.stderr} (signal ${out.signal})`);
  assert.match(out.stdout, /watching/);
  assert.ok(out.ms < 25_000, "exited on its own, long before the 60 s expiry");
});

test.run();
