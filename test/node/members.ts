/**
 * Presence membership (src/node/members.ts, docs/design/0025): announced ids are
 * discovered members under sync.maxDiscoveredPeers, in memory until their first request,
 * forgotten after a silence bound on the node's clock; configured peers never are.
 * Driven through the public Node API with an injected clock (no timing).
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Node, type NodeOptions } from "../../src/node/node.js";
import { WaveKVError } from "../../src/core/errors.js";
import { ENVELOPE_VERSION } from "../../src/sync/envelope.js";

const uuidOf = (i: number) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, "0")}`;
/** A request from `id` (what its first round sends us). */
const requestFrom = (node: Node, id: number) => node.handleEnvelope({ version: ENVELOPE_VERSION, senderId: id, senderUuid: uuidOf(id), acks: new Map(), entries: [] });

function code(f: () => unknown): string | undefined {
  try { f(); } catch (e) { assert.instance(e, WaveKVError); return (e as WaveKVError).code; }
  return undefined;
}

interface Fixture { dir: string; now: { t: number }; warnings: string[]; open(extra?: Partial<NodeOptions>): Promise<Node> }

function fixture(): Fixture {
  const dir = mkdtempSync(join(tmpdir(), "wavekv-members-"));
  const now = { t: 1_700_000_000_000 };
  const warnings: string[] = [];
  return {
    dir, now, warnings,
    open: (extra = {}) => Node.open({ id: 1, dir: join(dir, "n1"), fsync: "never", clock: () => now.t, onWarning: (m) => warnings.push(m), sync: { maxDiscoveredPeers: 4 }, ...extra }),
  };
}

test("a flood of announced ids: bounded by maxDiscoveredPeers (TOO_MANY_PEERS, one warning), none durable across a restart", async () => {
  const f = fixture();
  try {
    let node = await f.open({ peers: [2] });
    for (let id = 100; id < 104; id++) node.discoverPeer(id);
    const refusedCodes = new Set<string | undefined>();
    for (let id = 104; id < 1_000; id++) refusedCodes.add(code(() => node.discoverPeer(id)));
    assert.equal([...refusedCodes], ["TOO_MANY_PEERS"]);
    assert.equal(node.peers(), [2, 100, 101, 102, 103], "bounded: the configured peer and maxDiscoveredPeers announced ones");
    assert.is(f.warnings.filter((w) => w.includes("maxDiscoveredPeers")).length, 1, "one warning for the whole flood");
    assert.equal(node.status().peers.map((p) => [p.id, p.discovered]), [[2, false], [100, true], [101, true], [102, true], [103, true]]);
    // A configured peer announcing is no news, and is not refused by the bound.
    node.discoverPeer(2);
    // Neither the WAL nor a snapshot records an announced id.
    await node.persist();
    await node.close();
    node = await f.open({ peers: [2] });
    assert.equal(node.peers(), [2], "the flood's ids are gone after a restart");
    await node.close();
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
});

test("announced ids must be node ids: not ours, not above uint32, integers", async () => {
  const f = fixture();
  try {
    const node = await f.open();
    for (const bad of [1, 2 ** 32, -1, 1.5, Number.NaN, 2 ** 53]) assert.is(code(() => node.discoverPeer(bad)), "INVALID_ARGUMENT", String(bad));
    assert.equal(node.peers(), []);
    await node.close();
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
});

test("an announced peer's first request records it (durable); configured and recorded peers survive a restart", async () => {
  const f = fixture();
  try {
    let node = await f.open();
    node.discoverPeer(5);
    node.discoverPeer(6);
    requestFrom(node, 5); // a real node: it syncs with us
    await node.persist();
    await node.close();
    node = await f.open();
    assert.equal(node.status().peers.map((p) => [p.id, p.discovered]), [[5, true]], "5 made a request and is on record; 6 only announced");
    // A request from an announced id counts in the bound once, not twice.
    for (let id = 10; id < 13; id++) node.discoverPeer(id);
    requestFrom(node, 10);
    assert.is(code(() => node.discoverPeer(20)), "TOO_MANY_PEERS");
    // addPeer turns an announced (tentative) peer into a configured, durable one.
    await node.addPeer(11);
    await node.close();
    node = await f.open();
    // (After a restart every member not in opts.peers counts as discovered, as before: the log does not say which.)
    assert.equal(node.peers(), [5, 10, 11]);
    await node.close();
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
});

test("tentative announced peers silent for the bound are forgotten; announcing, recorded and configured ones stay", async () => {
  const f = fixture();
  const bound = 600_000;
  try {
    let node = await f.open({ peers: [2] });
    node.discoverPeer(3);
    await node.addPeer(3); // configured now: never forgotten
    node.discoverPeer(7); // will keep announcing
    node.discoverPeer(8); // a ghost: announced once
    node.discoverPeer(9); // announces once, then only requests (recorded)
    requestFrom(node, 9);
    assert.equal(await node.forgetSilentPeers(bound), []);
    f.now.t += bound / 2;
    node.discoverPeer(7);
    f.now.t += bound / 2 + 1;
    assert.equal(await node.forgetSilentPeers(bound), [8], "only the ghost: tentative and silent for longer than the bound");
    assert.equal(node.peers(), [2, 3, 7, 9], "9 made a request: on record, never forgotten by silence");
    // The ghost may come back: discovered anew.
    node.discoverPeer(8);
    assert.equal(node.peers(), [2, 3, 7, 8, 9]);
    f.now.t += bound + 1;
    assert.equal((await node.forgetSilentPeers(bound)).sort(), [7, 8], "a whole bound of silence forgets every tentative peer");
    assert.equal(node.peers(), [2, 3, 9], "configured peers and peers on record stay (GC waits for them, as for an HTTP peer)");
    await node.close();
    node = await f.open({ peers: [2] });
    assert.equal(node.peers(), [2, 3, 9], "tentative peers never reached the log; the recorded one did");
    node.discoverPeer(9);
    f.now.t += bound + 1;
    assert.equal(await node.forgetSilentPeers(bound), [], "recovered from the log: on record, left alone");
    await node.removePeer(9);
    await node.close();
    node = await f.open({ peers: [2] });
    assert.equal(node.peers(), [2, 3], "removePeer is how a recorded peer leaves, durably");
    await node.close();
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
});

test.run();
