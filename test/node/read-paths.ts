// Reads on every path state arrives by (issue 16 §1) and Node.scan paging (§4).
//
// First, the crash pinned: a node whose first entries came from a peer (one entry: a
// sort of one never calls its comparator) or from its own files, read first by each
// read, and GET /kv over a socket. Then reads an `admit` callback makes mid-merge, reads
// of a closed node, and Node.scan's options, pages and `after` in UTF-8 order.
// Last, a seeded property test: local writes, merges of 1, 2 and many entries (by
// request, response and push, paged), lossy rounds that bucket repair or a full reset
// must mend, WAL replay, snapshot load and tombstone GC, interleaved at random with every
// read (in a drawn order), change feeds and scans left open across operations, each
// checked against a plain Map model fed only by what the wire delivered.
//   WAVEKV_PROP_SEED=123 WAVEKV_PROP_RUNS=200 node --import tsx test/node/read-paths.ts
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { Node } from "../../src/node/node.js";
import { compareStamps } from "../../src/core/stamp.js";
import { ENVELOPE_VERSION, decodeEnvelope, encodeEnvelope, type Envelope } from "../../src/sync/envelope.js";
import { dropOneEntry, type NetworkMessage } from "../../src/transport/memory.js";
import { SyncManager } from "../../src/node/manager.js";
import { serveHttp } from "../../src/transport/http.js";
import { WaveKVError, isWaveKVError } from "../../src/core/errors.js";
import type { Entry } from "../../src/core/types.js";
import { cluster, manualClock, rejectsWith, type Cluster } from "../helpers/cluster.js";
import { freshDirs } from "../helpers/storage-fixtures.js";

const fresh = freshDirs("read-paths", (hook) => test.after(hook));

const hex = (b: Uint8Array | null | undefined) => (b == null ? b : Buffer.from(b).toString("hex"));
const view = (e: Entry | undefined) => e && { key: e.key, value: hex(e.value), timestamp: e.timestamp, node: e.node, seq: e.seq };
/** Key order as SPEC section 1 defines it (UTF-8 bytes), computed without src/core/keyorder.ts. */
const utf8Order = (a: string, b: string) => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));

// ---------------------------------------------------------------------------------
// The model: one Map per node, LWW by the project's one compare function.

type Model = Map<string, Entry>;

function lww(m: Model, e: Entry): void {
  const cur = m.get(e.key);
  if (cur === undefined || compareStamps(e.timestamp, e.node, e.seq, cur.timestamp, cur.node, cur.seq) > 0) m.set(e.key, e);
}

function sorted(m: Model, prefix: string, tombstones: boolean, after?: string): Entry[] {
  return [...m.values()]
    .filter((e) => (tombstones || e.value !== null) && e.key.startsWith(prefix) && (after === undefined || utf8Order(e.key, after) > 0))
    .sort((a, b) => utf8Order(a.key, b.key));
}

const KEYS = ["a", "b", "p/1", "p/2", "p/\u{1F600}", "p/\uFF5E", "p/é", "é", "z", "\u{10FFFF}"];
const PREFIXES = ["", "p/", "p/\u{1F600}", "é", "q", "\u{10FFFF}"];

/**
 * Every read against the model: get, getIncludingTombstones, scan (prefixes, tombstones,
 * pages, `after`), size. `pick` draws the order: a read that fills a cache (a get decodes
 * the key it finds) must not always run before the one that needs it filled.
 */
function checkReads(node: Node, m: Model, where: string, pick: () => number = () => 0): void {
  const gets = () => {
    for (const k of [...KEYS, "absent"]) {
      const want = m.get(k);
      assert.equal(view(node.getIncludingTombstones(k)), view(want), `${where}: getIncludingTombstones(${k})`);
      assert.equal(view(node.get(k)), want?.value != null ? view(want) : undefined, `${where}: get(${k})`);
    }
  };
  const scans = () => {
    for (const prefix of PREFIXES) {
      for (const tombstones of [false, true]) {
        const want = sorted(m, prefix, tombstones).map(view);
        assert.equal([...node.scan(prefix, { includeTombstones: tombstones })].map(view), want, `${where}: scan(${prefix}, ${tombstones})`);
        // Paged as GET /kv pages: each page starts after the last key of the one before.
        const limit = 1 + (pick() % 4);
        const pages: Entry[] = [];
        let after: string | undefined;
        for (;;) {
          const page = [...node.scan(prefix, { includeTombstones: tombstones, limit, after })];
          assert.ok(page.length <= limit, `${where}: page of ${page.length} > limit ${limit}`);
          pages.push(...page);
          if (page.length < limit) break;
          after = page[page.length - 1]!.key;
        }
        assert.equal(pages.map(view), want, `${where}: scan(${prefix}) in pages of ${limit}`);
      }
    }
  };
  const scanAfter = () => {
    // `after` need not be a key: any string, compared in UTF-8 order.
    const after = KEYS[pick() % KEYS.length]! + (pick() % 2 ? "\0" : "");
    assert.equal([...node.scan("", { after })].map(view), sorted(m, "", false, after).map(view), `${where}: scan after ${JSON.stringify(after)}`);
  };
  const size = () => assert.is(node.size, sorted(m, "", false).length, `${where}: size`);
  const reads = [gets, scans, scanAfter, size];
  const first = pick() % reads.length;
  for (let i = 0; i < reads.length; i++) reads[(first + i) % reads.length]!();
}

// ---------------------------------------------------------------------------------
// Part 1: the first read of a node whose state arrived other than by a local write.

/** A pushOnly envelope carrying `entries`, as SyncManager's push channel builds it. */
function pushOf(from: Node, entries: Entry[]): Envelope {
  return { version: ENVELOPE_VERSION, senderId: from.id, senderUuid: from.uuid, acks: new Map(), entries, pushOnly: true };
}

type Arrival = "response" | "request" | "push" | "wal replay" | "snapshot load";
const ARRIVALS: Arrival[] = ["response", "request", "push", "wal replay", "snapshot load"];
type FirstRead = "scan" | "scan with tombstones" | "scan prefix" | "scan page" | "get" | "size";
const FIRST_READS: FirstRead[] = ["scan", "scan with tombstones", "scan prefix", "scan page", "get", "size"];

/** Node 2 writes `keys` (the last one deleted when `withTombstone`); node 1 gets them by `how`. */
async function arrive(how: Arrival, keys: string[], withTombstone: boolean): Promise<{ node: Node; model: Model; close: () => Promise<void> }> {
  const peer = await Node.open({ id: 2, peers: [1] });
  const model: Model = new Map();
  for (const k of keys) lww(model, await peer.put(k, `v:${k}`));
  if (withTombstone) lww(model, (await peer.delete(keys[keys.length - 1]!))!);
  const dir = how === "wal replay" || how === "snapshot load" ? fresh() : undefined;
  let node = await Node.open({ id: 1, peers: [2], dir, fsync: "never" });
  if (how === "response") node.applyEnvelope(peer.handleEnvelope(node.prepareSync(2)));
  else if (how === "request" || dir !== undefined) node.handleEnvelope(peer.prepareSync(1));
  else node.handleEnvelope(decodeEnvelope(encodeEnvelope(pushOf(peer, [...peer.scan("", { includeTombstones: true })]))));
  if (how === "snapshot load") await node.persist();
  if (dir !== undefined) {
    await node.close();
    node = await Node.open({ id: 1, peers: [2], dir, fsync: "never" });
  }
  return { node, model, close: async () => { await node.close(); await peer.close(); } };
}

function firstRead(node: Node, read: FirstRead, model: Model): void {
  const live = sorted(model, "", false);
  if (read === "scan") assert.equal([...node.scan("")].map(view), live.map(view));
  else if (read === "scan with tombstones") assert.equal([...node.scan("", { includeTombstones: true })].map(view), sorted(model, "", true).map(view));
  else if (read === "scan prefix") assert.equal([...node.scan("p/")].map(view), sorted(model, "p/", false).map(view));
  else if (read === "scan page") assert.equal([...node.scan("", { limit: 1 })].map(view), live.slice(0, 1).map(view));
  else if (read === "get") assert.equal(view(node.get("p/1")), view(live.find((e) => e.key === "p/1")));
  else assert.is(node.size, live.length);
}

for (const how of ARRIVALS) {
  test(`first entries by ${how}: every read, first, on 1, 2 and many entries`, async () => {
    const shapes: [string[], boolean][] = [[["p/1"], false], [["p/1"], true], [["p/1", "a"], false], [["p/1", "a"], true], [KEYS, true]];
    for (const [keys, withTombstone] of shapes) {
      for (const read of FIRST_READS) {
        const { node, model, close } = await arrive(how, keys, withTombstone);
        const where = `${how}, ${keys.length} key(s)${withTombstone ? " + tombstone" : ""}, ${read} first`;
        try {
          firstRead(node, read, model);
        } catch (e) {
          throw new Error(`${where}: ${(e as Error).message}`, { cause: e });
        }
        checkReads(node, model, where);
        await close();
      }
    }
  });
}

test("GET /kv of a fresh node whose one entry came from a peer (real socket)", async () => {
  const peer = await Node.open({ id: 2, peers: [1] });
  const node = await Node.open({ id: 1, peers: [2] });
  const sync = new SyncManager(node, { request: () => Promise.reject(new Error("no peers here")) }, { onWarning: () => {} });
  const server = await serveHttp(sync, { node, host: "127.0.0.1", port: 0, onWarning: () => {} });
  try {
    const e = await peer.put("p/1", "one");
    node.applyEnvelope(peer.handleEnvelope(node.prepareSync(2)));
    const res = await fetch(`${server.url}/kv?prefix=p/&limit=1`);
    assert.is(res.status, 200, await res.clone().text());
    const body = (await res.json()) as { entries: { key: string; seq: number }[]; more: boolean };
    assert.equal([body.entries.map((x) => [x.key, x.seq]), body.more], [[[e.key, e.seq]], false]);
  } finally {
    await sync.stop();
    await server.close();
    await node.close();
    await peer.close();
  }
});

test("a watcher of a fresh node sees a merged single entry with its key", async () => {
  const peer = await Node.open({ id: 2, peers: [1] });
  const node = await Node.open({ id: 1, peers: [2] });
  const ac = new AbortController();
  const feed = node.watch("p/", { signal: ac.signal });
  const e = await peer.put("p/1", "one");
  node.applyEnvelope(peer.handleEnvelope(node.prepareSync(2)));
  assert.equal(view((await feed.next()).value as Entry), view(e));
  ac.abort();
  await node.close();
  await peer.close();
});

/**
 * Node 1 whose `admit` decides (and may read node 1 during) peer 2's entries, and node 1's
 * "k" = "old" overwritten by peer 2's "k" = "new" (its clock runs ahead) and a new "n".
 */
async function admitPair(admit: (e: Entry, node: Node) => true | string) {
  let self: Node | undefined;
  const node = (self = await Node.open({ id: 1, peers: [2], admit: (e) => (e.node === 2 ? admit(e, self!) : true) }));
  const peer = await Node.open({ id: 2, peers: [1], clock: () => Date.now() + 1000 });
  const old = await node.put("k", "old");
  const fresh = [await peer.put("k", "new"), await peer.put("n", "fresh")];
  return {
    node, peer, old, fresh,
    round: () => node.applyEnvelope(peer.handleEnvelope(node.prepareSync(2))),
    close: async () => { await node.close(); await peer.close(); },
  };
}

test("an admit callback reads the store as it was before the batch it is deciding", async () => {
  const seen: unknown[] = [];
  const p = await admitPair((e, node) => {
    seen.push({ key: e.key, get: view(node.getIncludingTombstones(e.key)), scan: [...node.scan("", { includeTombstones: true })].map(view), size: node.size });
    return true;
  });
  p.round();
  const before = { get: view(p.old), scan: [view(p.old)], size: 1 };
  assert.equal(seen, [{ key: "k", ...before }, { key: "n", ...before, get: undefined }], "no new stamp with the old value, no key not yet merged");
  assert.equal([...p.node.scan("")].map(view), p.fresh.map(view).sort((a, b) => utf8Order(a!.key, b!.key)));
  assert.is(p.node.digest(), p.peer.digest());
  await p.close();
});

test("an admit callback that reads and refuses: every pass sees the state before the batch", async () => {
  const seen: unknown[] = [];
  const p = await admitPair((e, node) => {
    seen.push([e.key, view(node.get("k")), [...node.scan("")].map((x) => x.key), node.digest()]);
    return e.key === "n" ? "no n" : true;
  });
  // The digest of the state before the batch, from a twin (not from node: that would cache it).
  const twin = await Node.open({ id: 3 });
  twin.handleEnvelope(pushOf(p.node, [p.old]));
  const digestBefore = twin.digest();
  await twin.close();
  assert.is(p.round().rejected, 1);
  const before = [view(p.old), ["k"], digestBefore];
  assert.equal(seen, [["k", ...before], ["n", ...before], ["k", ...before]], "first pass k and n, second pass (n masked) k");
  assert.equal([...p.node.scan("")].map(view), [view(p.fresh[0])]);
  assert.is.not(p.node.digest(), digestBefore, "the digest read inside admit was not cached for after it");
  await p.close();
});

test("an admit callback that throws refuses its batch and leaves every read as it was", async () => {
  let boom = true;
  const p = await admitPair(() => { if (boom) throw new Error("admit bug"); return true; });
  assert.throws(() => p.round(), /admit bug/);
  assert.equal(view(p.node.get("k")), view(p.old));
  assert.equal([...p.node.scan("", { includeTombstones: true })].map(view), [view(p.old)]);
  assert.is(p.node.size, 1);
  boom = false;
  p.round();
  assert.is(p.node.digest(), p.peer.digest(), "the next round merges it all");
  await p.close();
});

test("reads of a closed node throw CLOSED; a key that is not a string is INVALID_ARGUMENT", async () => {
  const node = await Node.open({ id: 1 });
  await node.put("k", "v");
  await node.put("l", "w");
  await rejectsWith((async () => node.get(5 as never))(), "INVALID_ARGUMENT", /key/);
  await rejectsWith((async () => node.getIncludingTombstones(undefined as never))(), "INVALID_ARGUMENT", /key/);
  await rejectsWith((async () => node.watch(5 as never))(), "INVALID_ARGUMENT", /prefix/);
  await rejectsWith((async () => node.watch("a\uD83D"))(), "INVALID_ARGUMENT", /prefix/);
  assert.is(node.get("a\uD800"), undefined, "a lone surrogate names no key");
  const inProgress = node.scan("");
  assert.is(inProgress.next().value!.key, "k");
  await node.close();
  // Another node reusing the kernel's memory must never show through a closed one.
  const other = await Node.open({ id: 2 });
  await other.put("k", "not yours");
  for (const read of [() => node.get("k"), () => node.getIncludingTombstones("k"), () => node.scan(""), () => node.size, () => inProgress.next()]) {
    await rejectsWith((async () => read())(), "CLOSED", /closed/);
  }
  await other.close();
});

// ---------------------------------------------------------------------------------
// Node.scan paging: options are validated before anything is read.

test("a value read stays its bytes: through overwrites that free its chunk, close, and another node's puts", async () => {
  // Freed value-arena chunks are filled again unless a read built a view into them
  // (src/state/values.ts): a value a caller holds must never turn into another key's bytes.
  const val = (tag: number) => new Uint8Array(1000).fill(tag);
  const a = await Node.open({ id: 1 });
  for (let i = 0; i < 3000; i++) await a.put(`k${i}`, val(1 + (i % 200)));
  const held = a.get("k7")!.value!;
  const scanned = [...a.scan("k1", { limit: 5 })].map((e) => e.value!);
  const want = scanned.map((v) => hex(v));
  for (let round = 0; round < 3; round++) for (let i = 0; i < 3000; i++) await a.put(`k${i}`, val(250 - round));
  assert.equal(held, val(8), "overwritten, compacted, its chunk's neighbours refilled");
  await a.close();
  const b = await Node.open({ id: 2 });
  for (let i = 0; i < 5000; i++) await b.put(`other${i}`, val(99));
  assert.equal(held, val(8), "after another node's puts");
  assert.equal(scanned.map((v) => hex(v)), want);
  assert.equal(b.get("other0")!.value, val(99));
  await b.close();
});

test("Node.scan refuses bad paging options with INVALID_ARGUMENT naming the field", async () => {
  const node = await Node.open({ id: 1 });
  await node.put("a", "1");
  const bad: [unknown, RegExp][] = [
    [{ limit: 0 }, /limit/], [{ limit: -1 }, /limit/], [{ limit: 1.5 }, /limit/], [{ limit: Number.NaN }, /limit/],
    [{ limit: Infinity }, /limit/], [{ limit: "10" }, /limit/], [{ after: 5 }, /after/], [{ after: "a\uD800" }, /after/],
    [{ includeTombstones: "yes" }, /includeTombstones/], [null, /options/], ["x", /options/],
  ];
  for (const [opts, field] of bad) {
    await rejectsWith((async () => node.scan("", opts as never))(), "INVALID_ARGUMENT", field);
  }
  await rejectsWith((async () => node.scan(5 as never))(), "INVALID_ARGUMENT", /prefix/);
  await rejectsWith((async () => node.scan("a\uDC00"))(), "INVALID_ARGUMENT", /prefix/);
  assert.equal([...node.scan("", { limit: 1, after: "" })].map((e) => e.key), ["a"], "after \"\" excludes only the empty key");
  await node.close();
});

test("Node.scan pages in UTF-8 order from any `after`, lazily", async () => {
  const node = await Node.open({ id: 1 });
  const keys = ["", "a", "p/\uFF5E", "p/\u{1F600}", "p/x", "\uFFFF", "\u{10000}"];
  for (const k of keys) await node.put(k, k);
  const order = [...keys].sort(utf8Order);
  assert.equal([...node.scan("")].map((e) => e.key), order);
  // In UTF-16 order U+1F600 (a surrogate pair) sorts before U+FF5E; in UTF-8 after it.
  assert.equal([...node.scan("p/", { after: "p/\uFF5E" })].map((e) => e.key), ["p/\u{1F600}"]);
  assert.equal([...node.scan("p/", { after: "a" })].map((e) => e.key), ["p/x", "p/\uFF5E", "p/\u{1F600}"], "after below the prefix starts at the prefix");
  assert.equal([...node.scan("", { after: "\u{10FFFF}" })], []);
  assert.equal([...node.scan("", { after: "\uFFFF", limit: 5 })].map((e) => e.key), ["\u{10000}"]);
  const it = node.scan("", { limit: 2 });
  assert.is(it[Symbol.iterator](), it, "an IterableIterator");
  assert.is(it.next().value!.key, "");
  await node.put("b", "written mid-scan");
  assert.is(it.next().value!.key, "a");
  assert.ok(it.next().done, "limit reached");
  await node.close();
});

test("a scan in progress survives GC reusing a slot for a key out of its order", async () => {
  const node = await Node.open({ id: 1 });
  for (const k of ["a", "b", "c", "d"]) await node.put(k, k);
  await node.delete("b");
  const it = node.scan("", { includeTombstones: true });
  assert.is(it.next().value!.key, "a");
  assert.is(await node.collectGarbage(), 1, "no peers: the tombstone goes");
  await node.put("zz", "takes b's slot");
  assert.equal([...it].map((e) => e.key), ["c", "d", "zz"], "every key held throughout, in order, once");
  await node.close();
});

// ---------------------------------------------------------------------------------
// Part 2: the property test.

const SEED = Number(process.env.WAVEKV_PROP_SEED ?? Date.now() % 1_000_000);
const RUNS = Number(process.env.WAVEKV_PROP_RUNS ?? 50);
const IDS = [1, 2, 3];

type Op =
  | { kind: "put"; node: number; key: number; value: number; skew: number }
  | { kind: "burst"; node: number; count: number; value: number }
  | { kind: "delete"; node: number; key: number }
  | { kind: "round"; node: number }
  | { kind: "exchange"; from: number; to: number; direction: "request" | "response" }
  | { kind: "push"; from: number; to: number; count: number }
  | { kind: "lossy"; from: number; to: number; key: number; converge: boolean }
  | { kind: "converge" }
  | { kind: "gc" }
  | { kind: "reopen"; node: number; persist: boolean }
  | { kind: "read"; pick: number }
  | { kind: "pull"; node: number; count: number };

const nodeId = fc.constantFrom(...IDS);
const pair = fc.tuple(nodeId, nodeId).filter(([a, b]) => a !== b);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant("put" as const), node: nodeId, key: fc.nat(KEYS.length - 1), value: fc.nat(1000), skew: fc.integer({ min: -3, max: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("burst" as const), node: nodeId, count: fc.integer({ min: 3, max: KEYS.length }), value: fc.nat(1000) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("delete" as const), node: nodeId, key: fc.nat(KEYS.length - 1) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("round" as const), node: nodeId }) },
  { weight: 3, arbitrary: fc.tuple(pair, fc.constantFrom("request" as const, "response" as const)).map(([[from, to], direction]) => ({ kind: "exchange" as const, from, to, direction })) },
  { weight: 2, arbitrary: fc.tuple(pair, fc.integer({ min: 1, max: 6 })).map(([[from, to], count]) => ({ kind: "push" as const, from, to, count })) },
  { weight: 3, arbitrary: fc.tuple(pair, fc.nat(KEYS.length - 1), fc.boolean()).map(([[from, to], key, converge]) => ({ kind: "lossy" as const, from, to, key, converge })) },
  { weight: 1, arbitrary: fc.constant({ kind: "converge" as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: "gc" as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("reopen" as const), node: nodeId, persist: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("read" as const), pick: fc.nat(1000) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("pull" as const), node: nodeId, count: fc.integer({ min: 1, max: 4 }) }) },
);

/** What the runs exercised, so that a green run can be told from a vacuous one. */
const tally = { runs: 0, ops: 0, admitReads: 0, openScans: 0, openScanSteps: 0, openScanStepsAfterGc: 0, merged1: 0, merged2: 0, mergedMany: 0, pushes: 0, requests: 0, responses: 0, pages: 0, reopens: 0, snapshots: 0, bucketRepairs: 0, resets: 0, collected: 0, reads: 0, watchEvents: 0 };

/** Change feeds of one node (all, under "p/", local only), kept across reopens. */
class Feeds {
  /**
   * `full`: watch everything and "p/" too. A feed of remote changes reads every merged
   * key (entryAt), which would fill the key cache the crash hid behind: so node 1 has a
   * localOnly feed alone (merges then build no entries), nodes 2 and 3 the full set.
   */
  constructor(readonly full: boolean) {}
  last = new Map<string, Entry>();
  lastP = new Map<string, Entry>();
  local: Entry[] = [];
  /** The first thing a feed got wrong (thrown by check: a feed runs apart from the test). */
  failure: Error | undefined;
  #ac = new AbortController();
  #done: Promise<unknown>[] = [];

  attach(node: Node): void {
    this.#ac = new AbortController();
    const follow = async (feed: AsyncIterable<Entry>, onEntry: (e: Entry) => void) => {
      try {
        for await (const e of feed) onEntry(e);
      } catch (e) {
        this.failure ??= e as Error;
      }
    };
    const signal = this.#ac.signal;
    const ordered = (m: Map<string, Entry>, e: Entry) => {
      const prev = m.get(e.key);
      assert.ok(prev === undefined || compareStamps(e.timestamp, e.node, e.seq, prev.timestamp, prev.node, prev.seq) > 0, `watch: ${e.key} went back from ${JSON.stringify(view(prev))} to ${JSON.stringify(view(e))}`);
      m.set(e.key, e); // kept as yielded: a value view must not change under its reader
      tally.watchEvents++;
    };
    this.#done.push(follow(node.watch("", { signal, localOnly: true }), (e) => this.local.push(e)));
    if (!this.full) return;
    this.#done.push(
      follow(node.watch("", { signal }), (e) => ordered(this.last, e)),
      follow(node.watch("p/", { signal }), (e) => { assert.ok(e.key.startsWith("p/")); ordered(this.lastP, e); }),
    );
  }

  /** GC dropped `key` (no change is emitted): a later write of it is new, whatever its stamp. */
  collected(key: string): void {
    if (!this.full) return;
    assert.is(this.last.get(key)?.value, null, `the last change of collected ${key} was its tombstone`);
    this.last.delete(key);
    this.lastP.delete(key);
  }

  /** The last change seen of every key is what the node holds. */
  check(m: Model, localWrites: Map<string, Entry>, where: string): void {
    if (this.failure) throw new Error(`${where}: ${this.failure.message}`, { cause: this.failure });
    for (const [key, e] of this.last) assert.equal(view(e), view(m.get(key)), `${where}: last watched change of ${key}`);
    if (this.full) for (const key of m.keys()) assert.ok(this.last.has(key), `${where}: no change of ${key} watched`);
    for (const [key, e] of this.lastP) assert.equal(view(e), view(this.last.get(key)), `${where}: watch("p/") of ${key}`);
    for (const key of this.last.keys()) if (key.startsWith("p/")) assert.ok(this.lastP.has(key), `${where}: watch("p/") missed ${key}`);
    for (const e of this.local.splice(0)) assert.equal(view(e), view(localWrites.get(`${e.key}@${e.seq}`)), `${where}: localOnly yielded ${e.key}@${e.seq}`);
  }

  async detach(): Promise<void> {
    this.#ac.abort();
    await Promise.all(this.#done.splice(0));
  }
}

/**
 * A scan left open across other operations (writes, merges, GC, a reopen): each step
 * yields the key's current entry, keys rise, and every key held from its start to its
 * end is yielded. A reopen closes its node: the next step throws CLOSED.
 */
class OpenScan {
  readonly #it: IterableIterator<Entry>;
  /** Keys held since the scan started (narrowed after every operation). */
  readonly #heldThroughout: Set<string>;
  readonly #yielded = new Set<string>();
  #last: string | undefined;
  closed = false;
  /** A GC ran since the scan started (slots it walks may be released and reused). */
  afterGc = false;

  constructor(readonly node: Node, m: Model) {
    this.#it = node.scan("", { includeTombstones: true });
    this.#heldThroughout = new Set(m.keys());
    tally.openScans++;
  }

  narrow(m: Model): void {
    for (const k of this.#heldThroughout) if (!m.has(k)) this.#heldThroughout.delete(k);
  }

  /** Steps up to `count` times; true when the scan ended. */
  pull(count: number, m: Model, where: string): boolean {
    if (this.closed) {
      assert.throws(() => this.#it.next(), (e: unknown) => e instanceof WaveKVError && e.code === "CLOSED", `${where}: a scan of a closed node`);
      return true;
    }
    for (let i = 0; i < count; i++) {
      const r = this.#it.next();
      tally.openScanSteps++;
      if (this.afterGc) tally.openScanStepsAfterGc++;
      if (r.done) {
        for (const k of this.#heldThroughout) assert.ok(this.#yielded.has(k), `${where}: open scan missed ${k}, held throughout`);
        return true;
      }
      const e = r.value;
      assert.ok(this.#last === undefined || utf8Order(e.key, this.#last) > 0, `${where}: open scan went from ${this.#last} to ${e.key}`);
      assert.equal(view(e), view(m.get(e.key)), `${where}: open scan yielded ${e.key}`);
      this.#last = e.key;
      this.#yielded.add(e.key);
    }
    return false;
  }
}

/** Lets change feeds take in what is queued (they resume on microtasks). */
const drain = () => new Promise<void>((resolve) => setImmediate(resolve));

async function runScenario(ops: Op[]): Promise<void> {
  tally.runs++;
  const clock = manualClock();
  const models = new Map<number, Model>(IDS.map((id) => [id, new Map()]));
  const localWrites = new Map<number, Map<string, Entry>>(IDS.map((id) => [id, new Map()]));
  const feeds = new Map<number, Feeds>(IDS.map((id) => [id, new Feeds(id !== 1)]));
  // The wire oracle: whatever reaches a node, it merges (nothing here is refused).
  let dropper: ReturnType<typeof dropOneEntry> | undefined;
  // Every (key, stamp) ever written, with its value: an entry read must be one of them.
  const known = new Map<string, string | null | undefined>();
  const stampOf = (e: Entry) => `${e.key}|${e.timestamp}|${e.node}|${e.seq}`;
  // `admit` sees only entries that win against the state before their batch: what a read
  // returns for that key then must be older, and a real entry (no new stamp, old value).
  let admitFailure: string | undefined;
  let admitReads = 0;
  const admitReading = (id: number) => (e: Entry): true => {
    const node = c.members.get(id)?.node;
    if (e.node === id || node === undefined || node.closed) return true; // a local write may lose: not checked
    const held = node.getIncludingTombstones(e.key);
    const inScan = [...node.scan("", { includeTombstones: true })];
    admitReads++;
    for (const r of held ? [held, ...inScan] : inScan) {
      if (known.get(stampOf(r)) !== hex(r.value)) admitFailure ??= `node ${id} admit(${stampOf(e)}): read ${stampOf(r)} with a value it never had`;
    }
    if (held && compareStamps(held.timestamp, held.node, held.seq, e.timestamp, e.node, e.seq) >= 0) admitFailure ??= `node ${id} admit(${stampOf(e)}): read ${stampOf(held)}, not older`;
    if (JSON.stringify(view(held)) !== JSON.stringify(view(inScan.find((r) => r.key === e.key)))) admitFailure ??= `node ${id} admit(${stampOf(e)}): get and scan disagree`;
    return true;
  };
  const tap = (msg: NetworkMessage): Uint8Array | undefined => {
    const out = dropper?.(msg);
    const env = decodeEnvelope(out ?? msg.body);
    const n = env.entries.length;
    if (n > 0) {
      if (n === 1) tally.merged1++; else if (n === 2) tally.merged2++; else tally.mergedMany++;
      if (msg.channel === "push") tally.pushes++; else if (msg.direction === "request") tally.requests++; else tally.responses++;
      if (env.page) tally.pages++;
    }
    if (msg.direction === "request" && env.repairBuckets !== undefined) tally.bucketRepairs++;
    if (msg.direction === "request" && env.resetAcks) tally.resets++;
    // A request is merged by its addressee, a response by the requester it returns to.
    const model = models.get(msg.to)!;
    for (const e of env.entries) { lww(model, e); known.set(stampOf(e), hex(e.value)); }
    return out;
  };
  const c: Cluster = await cluster(IDS, {
    durable: true,
    net: { seed: SEED, tamper: tap },
    // Node 3 goes straight to a full reset on a mismatch; 1 and 2 try a bucket repair
    // first. Small pages so that "many" also means "paged".
    // Node 1 is the plain one: no admit (merges take the path without it), no remote watcher.
    node: (id) => ({ clock: () => clock() + id, admit: id === 1 ? undefined : admitReading(id), snapshotWalBytes: 2048, sync: { digestCheckRounds: 1, maxDeltaEntries: 4, bucketRepairAttempts: id === 3 ? 0 : 2 } }),
  });
  const modelOf = (id: number) => models.get(id)!;
  for (const id of IDS) feeds.get(id)!.attach(c.node(id));
  const write = (id: number, e: Entry | undefined) => {
    if (e === undefined) return;
    known.set(stampOf(e), hex(e.value));
    localWrites.get(id)!.set(`${e.key}@${e.seq}`, e);
    lww(modelOf(id), e);
  };
  const scans = new Map<number, OpenScan>();
  /**
   * A local write, or its SUPERSEDED refusal: a write that would lose LWW to an entry
   * stamped ahead of this node's clock changes nothing, and its error names that entry,
   * which the model must hold.
   */
  const local = async (id: number, w: Promise<Entry>) => {
    try {
      write(id, await w);
    } catch (err) {
      if (!isWaveKVError(err, "SUPERSEDED")) throw err;
      const winner = (err as WaveKVError & { winner: Entry }).winner;
      const held = modelOf(id).get(winner.key);
      if (held === undefined || stampOf(held) !== stampOf(winner)) throw new Error(`seed ${SEED}, step ${step}: SUPERSEDED names ${stampOf(winner)}, the model holds ${held && stampOf(held)}`);
    }
  };
  let step = 0;
  const check = async (pick: number) => {
    await drain();
    if (admitFailure) throw new Error(`seed ${SEED}, step ${step}: ${admitFailure}`);
    tally.reads++;
    for (const id of IDS) {
      const where = `seed ${SEED}, step ${step} (${JSON.stringify(ops[step - 1])}), node ${id}`;
      let r = pick;
      checkReads(c.node(id), modelOf(id), where, () => (r = (r * 31 + 7) % 1009));
      feeds.get(id)!.check(modelOf(id), localWrites.get(id)!, where);
    }
  };
  try {
    for (const op of ops) {
      step++;
      tally.ops++;
      switch (op.kind) {
        case "put":
          clock.advance(op.skew);
          await local(op.node, c.node(op.node).put(KEYS[op.key]!, `v${op.value}`));
          break;
        case "burst":
          // Many entries at once: the next delta is "many", and paged (maxDeltaEntries 4).
          for (let k = 0; k < op.count; k++) await local(op.node, c.node(op.node).put(KEYS[(op.value + k) % KEYS.length]!, `b${op.value}/${k}`));
          break;
        case "delete":
          clock.advance(1);
          await local(op.node, c.node(op.node).delete(KEYS[op.key]!));
          break;
        case "round":
          await c.sync(op.node).syncOnce();
          await c.net.settled();
          break;
        case "exchange": {
          // One request through the wire, the way a manager's round starts it.
          const [sender, receiver] = op.direction === "request" ? [op.from, op.to] : [op.to, op.from];
          const body = encodeEnvelope(c.node(sender).prepareSync(receiver));
          const signal = new AbortController().signal;
          const resp = await c.net.transport(sender).request(receiver, body, { signal });
          // A first page leaves the round open: the next prepareSync resumes it.
          c.node(sender).applyEnvelope(decodeEnvelope(resp));
          break;
        }
        case "push": {
          const own = [...modelOf(op.from).values()].filter((e) => e.node === op.from);
          if (own.length === 0) break;
          const entries = own.slice(-op.count);
          const body = encodeEnvelope(pushOf(c.node(op.from), entries));
          await c.net.transport(op.from).push!(op.to, body, { signal: new AbortController().signal });
          break;
        }
        case "lossy":
          await local(op.from, c.node(op.from).put(KEYS[op.key]!, `lost? ${step}`));
          dropper = dropOneEntry({ from: op.from, to: op.to });
          await c.sync(op.to).syncOnce();
          await c.net.settled();
          dropper = undefined;
          // Acks now claim the lost entry: only the summary check (bucket repair on 1
          // and 2, a full reset on 3) brings it.
          if (op.converge) await c.converge(30);
          break;
        case "converge":
          await c.converge(30);
          break;
        case "gc": {
          // Quiescent and converged, with every node's final acks reported to every peer:
          // every tombstone is collectable everywhere.
          await c.converge(30);
          await c.rounds(2);
          for (const id of IDS) {
            const m = modelOf(id);
            // A scan one step in when GC runs, then a write that may take a released slot.
            let scan = scans.get(id);
            if (scan === undefined) scans.set(id, (scan = new OpenScan(c.node(id), m)));
            if (scan.pull(1, m, `seed ${SEED}, step ${step}, node ${id} before GC`)) scans.delete(id);
            const tombs = [...m.values()].filter((e) => e.value === null).map((e) => e.key);
            assert.is(await c.node(id).collectGarbage(), tombs.length, `seed ${SEED}, step ${step}: node ${id} collects every tombstone`);
            await drain();
            for (const k of tombs) { m.delete(k); feeds.get(id)!.collected(k); }
            if (tombs.length > 0 && scans.has(id)) {
              scans.get(id)!.afterGc = true;
              await local(id, c.node(id).put(KEYS[(step * 7 + id) % KEYS.length]!, `after gc ${step}`));
              scans.get(id)!.narrow(m);
            }
            tally.collected += tombs.length;
          }
          break;
        }
        case "pull": {
          let scan = scans.get(op.node);
          if (scan === undefined) scans.set(op.node, (scan = new OpenScan(c.node(op.node), modelOf(op.node))));
          if (scan.pull(op.count, modelOf(op.node), `seed ${SEED}, step ${step}, node ${op.node}`)) scans.delete(op.node);
          break;
        }
        case "reopen": {
          if (scans.has(op.node)) scans.get(op.node)!.closed = true;
          if (op.persist) { await c.node(op.node).persist(); tally.snapshots++; }
          await feeds.get(op.node)!.detach();
          await c.kill(op.node);
          await c.open(op.node);
          feeds.get(op.node)!.attach(c.node(op.node));
          tally.reopens++;
          break;
        }
        case "read":
          await check(op.pick);
          break;
      }
      for (const [id, scan] of scans) scan.narrow(modelOf(id));
      if (op.kind !== "read" && step % 3 === 0) await check(step);
    }
    await check(7);
    tally.admitReads += admitReads;
    for (const id of IDS) {
      assert.is(c.node(id).status().entriesRejected, 0, "nothing refused: the model merges all it is sent");
    }
  } finally {
    for (const f of feeds.values()) await f.detach();
    await c.close();
  }
}

test(`property: every read agrees with a Map model on every arrival path (seed ${SEED})`, async () => {
  console.log(`read-paths property seed ${SEED} (WAVEKV_PROP_SEED=${SEED} to replay), ${RUNS} runs`);
  await fc.assert(fc.asyncProperty(fc.array(opArb, { minLength: 10, maxLength: 50, size: "max" }), runScenario), { seed: SEED, numRuns: RUNS, endOnFailure: true, includeErrorInReport: true });
  console.log(`read-paths tally ${JSON.stringify(tally)}`);
  for (const k of ["admitReads", "openScanSteps", "openScanStepsAfterGc", "merged1", "merged2", "mergedMany", "pushes", "requests", "responses", "pages", "reopens", "snapshots", "bucketRepairs", "resets", "collected"] as const) {
    assert.ok(tally[k] > 0, `the runs exercised ${k}`);
  }
});

test.run();
