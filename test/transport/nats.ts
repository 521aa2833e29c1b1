/**
 * NatsTransport against a real nats-server (test/helpers/nats-server.ts): convergence,
 * one publish per push, server crash and restart, a partitioned node, a slow consumer,
 * forged and unsigned messages, a signed flood of announced ids (bounded, not durable,
 * ghosts forgotten; docs/design/0025). Without the nats-server binary: a loud NOT RUN.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Node } from "../../src/node/node.js";
import { SyncManager } from "../../src/node/manager.js";
import { MAX_KNOWN, NatsTransport } from "../../src/transport/nats.js";
import { signRequest } from "../../src/transport/auth.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { natsServerPath, startNats, type NatsServer } from "../helpers/nats-server.js";

const SECRET = "a-shared-secret-of-some-length";
const quiet = () => {};

interface Member { node: Node; sync: SyncManager; t: NatsTransport }

async function member(srv: NatsServer, id: number, cluster: string, extra: { maxPending?: number; intervalMs?: number; hold?: { gate: Promise<void> | null }; forgetAfterMs?: number } = {}): Promise<Member> {
  const node = await Node.open({ id, peers: [] });
  const t = await NatsTransport.connect({ servers: srv.url, cluster, node: id, secret: SECRET, timeoutMs: 2_000, announceMs: 200, maxPending: extra.maxPending, forgetAfterMs: extra.forgetAfterMs, onWarning: quiet });
  const sync = new SyncManager(node, t, { intervalMs: extra.intervalMs ?? 300, timeoutMs: 2_000, retryMs: 100, maxBackoffMs: 500, pushWindowMs: 20, onWarning: quiet });
  const hold = extra.hold;
  await t.serve(hold ? { handle: async (b) => { if (hold.gate) await hold.gate; return sync.handle(b); } } : sync, { membership: node, onPeer: (p) => sync.syncSoon(p) });
  sync.start();
  return { node, sync, t };
}

async function shut(ms: Member[]): Promise<void> {
  for (const m of ms) {
    await m.sync.stop();
    await m.t.close();
    await m.node.close();
  }
}

/** Polls until `ok()`; fails after `ms` (a bound against hanging, not a timed assertion). */
async function until(ok: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`never happened: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const has = (ms: Member[], key: string, value: string) => ms.every((m) => new TextDecoder().decode(m.node.get(key)?.value ?? new Uint8Array()) === value);

if (!natsServerPath) {
  console.log("\n!! test/transport/nats.ts NOT RUN: no nats-server binary (apt-get install -y nats-server, or set WAVEKV_NATS_SERVER)\n");
} else {
  test("three nodes learn each other from announcements and converge; a push is published once", async () => {
    const srv = await startNats();
    const ms = [await member(srv, 1, "c1", { intervalMs: 60_000 }), await member(srv, 2, "c1", { intervalMs: 60_000 }), await member(srv, 3, "c1", { intervalMs: 60_000 })];
    try {
      await until(() => ms.every((m) => m.node.peers().length === 2), "membership from announcements");
      const before = ms[0].t.stats.published;
      await ms[0].node.put("k", "v1");
      await until(() => has(ms, "k", "v1"), "the push reached both peers");
      assert.is(ms[0].t.stats.published - before, 1, "one publish for two peers");
      assert.is(ms[0].sync.stats.pushesSent, 2);
    } finally {
      await shut(ms);
      await srv.close();
    }
  });

  test("nats-server killed and restarted, a node partitioned: every acknowledged write reaches every node", async () => {
    const srv = await startNats();
    const ms = [await member(srv, 1, "c2"), await member(srv, 2, "c2"), await member(srv, 3, "c2")];
    try {
      await until(() => ms.every((m) => m.node.peers().length === 2), "membership");
      await ms[0].node.put("a", "1");
      await srv.stop();
      await ms[1].node.put("b", "2"); // acknowledged locally while NATS is down
      await srv.start();
      await until(() => has(ms, "a", "1") && has(ms, "b", "2"), "writes across the restart");
      // Partition node 3: its connection closed, a write on each side, then it comes back.
      await ms[2].sync.stop();
      await ms[2].t.close();
      await ms[0].node.put("c", "3");
      await ms[2].node.put("d", "4");
      ms[2].t = await NatsTransport.connect({ servers: srv.url, cluster: "c2", node: 3, secret: SECRET, timeoutMs: 2_000, announceMs: 200, onWarning: quiet });
      ms[2].sync = new SyncManager(ms[2].node, ms[2].t, { intervalMs: 300, timeoutMs: 2_000, retryMs: 100, maxBackoffMs: 500, onWarning: quiet });
      await ms[2].t.serve(ms[2].sync, { membership: ms[2].node, onPeer: (p) => ms[2].sync.syncSoon(p) });
      ms[2].sync.start();
      await until(() => has(ms, "c", "3") && has(ms, "d", "4"), "writes across the partition");
    } finally {
      await shut(ms);
      await srv.close();
    }
  });

  test("a slow consumer drops what is over its bound; rounds deliver it", async () => {
    const srv = await startNats();
    let open!: () => void;
    const hold: { gate: Promise<void> | null } = { gate: null };
    const ms = [await member(srv, 1, "c3", { intervalMs: 500 }), await member(srv, 2, "c3", { maxPending: 1, intervalMs: 500, hold })];
    try {
      await until(() => ms.every((m) => m.node.peers().length === 1), "membership");
      hold.gate = new Promise<void>((r) => { open = r; }); // stuck from now on
      // Node 2 is stuck on its first message: everything past its bound of one is dropped, not queued.
      for (let i = 0; i < 200; i++) await ms[0].node.put(`k${i}`, `v${i}`);
      await until(() => ms[1].t.stats.dropped > 0, "drops while stuck");
      open();
      await until(() => ms[1].node.get("k199") !== undefined && [...ms[1].node.scan("k")].length === 200, "all 200 writes on the slow node");
      assert.ok(ms[1].t.stats.handled > 0);
    } finally {
      await shut(ms);
      await srv.close();
    }
  });

  test("forged and unsigned messages are dropped and counted", async () => {
    const srv = await startNats();
    const ms = [await member(srv, 1, "c4")];
    const { connect, headers } = await import("@nats-io/transport-node");
    const nc = await connect({ servers: srv.url });
    try {
      const rogue = await NatsTransport.connect({ servers: srv.url, cluster: "c4", node: 9, secret: "not-the-secret-at-all", onWarning: quiet });
      await rogue.serve({ handle: async () => new Uint8Array() });
      nc.publish("wavekv.c4.push", new TextEncoder().encode("garbage"));
      nc.publish("wavekv.c4.announce", new TextEncoder().encode("7"));
      const h = headers();
      h.set("wavekv-from", "8");
      nc.publish("wavekv.c4.announce", new TextEncoder().encode("8"), { headers: h });
      await assert_rejects(() => nc.request("wavekv.c4.node.1", new Uint8Array([1, 2, 3]), { timeout: 300 }));
      await until(() => ms[0].t.stats.rejected >= 5, "rejections counted");
      assert.equal(ms[0].node.peers(), [], "no hostile announcement made a peer");
      await rogue.close();
    } finally {
      await nc.close();
      await shut(ms);
      await srv.close();
    }
  });

  test("a signed flood of announced ids: membership bounded and not durable, routing bounded, bad ids refused", async () => {
    const srv = await startNats();
    const dir = mkdtempSync(join(tmpdir(), "wavekv-nats-flood-"));
    const nodeWarnings: string[] = [];
    const open = () => Node.open({ id: 1, dir, fsync: "never", peers: [], sync: { maxDiscoveredPeers: 4 }, onWarning: (m) => nodeWarnings.push(m) });
    let node = await open();
    let t = await NatsTransport.connect({ servers: srv.url, cluster: "c5", node: 1, secret: SECRET, announceMs: 200, onWarning: quiet });
    let sync = new SyncManager(node, t, { intervalMs: 300, timeoutMs: 500, retryMs: 100, maxBackoffMs: 500, onWarning: quiet });
    await t.serve(sync, { membership: node, onPeer: (p) => sync.syncSoon(p) });
    sync.start();
    const { connect, headers } = await import("@nats-io/transport-node");
    const rogue = await connect({ servers: srv.url });
    const flood = Array.from({ length: 600 }, (_, i) => 1_000 + i);
    try {
      // A holder of the secret announces 600 ids nobody runs, then ids that are no node ids.
      for (let i = 0; i < flood.length; i += 40) {
        for (const id of flood.slice(i, i + 40)) announceAs(rogue, headers(), "c5", String(id));
        await rogue.flush();
        await until(() => t.stats.handled + t.stats.dropped + t.stats.rejected >= i, "the batch handled");
      }
      const rejectedBefore = t.stats.rejected;
      for (const text of ["0", "4294967296", "99999999999", "007", "+5", "5 ", "1e3", "12345678901234567"]) announceAs(rogue, headers(), "c5", text);
      await rogue.flush();
      await until(() => t.stats.rejected - rejectedBefore >= 8, "bad ids refused");
      await until(() => node.peers().length === 4, "the bound filled");
      assert.is(node.peers().length, 4, "membership bounded by maxDiscoveredPeers");
      assert.ok(node.peers().every((p) => flood.includes(p)));
      assert.ok(nodeWarnings.some((w) => w.includes("maxDiscoveredPeers")), "TOO_MANY_PEERS surfaced as a warning");
      assert.is(flood.filter((id) => t.knows(id)).length, 4, "only the admitted ids are routed to");
      for (const id of [0, 4294967296, 99999999999, 7, 5]) assert.not.ok(t.knows(id) || node.peers().includes(id), `id ${id}`);
      // Restart: nothing of the flood was recorded (no flood id ever made a request).
      await sync.stop();
      await t.close();
      await node.close();
      node = await open();
      assert.equal(node.peers(), [], "the flood's ids are gone after a restart");
      t = await NatsTransport.connect({ servers: srv.url, cluster: "c5", node: 1, secret: SECRET, announceMs: 200, onWarning: quiet });
      sync = new SyncManager(node, t, { intervalMs: 300, timeoutMs: 500, retryMs: 100, maxBackoffMs: 500, onWarning: quiet });
      await t.serve(sync, { membership: node });
    } finally {
      await rogue.close();
      await sync.stop();
      await t.close();
      await node.close();
      rmSync(dir, { recursive: true, force: true });
      await srv.close();
    }
  });

  test("without membership the routed ids stop at MAX_KNOWN", async () => {
    const srv = await startNats();
    const t = await NatsTransport.connect({ servers: srv.url, cluster: "c6", node: 1, secret: SECRET, maxPending: 100_000, onWarning: quiet });
    let heard = 0;
    await t.serve({ handle: async () => new Uint8Array() }, { onPeer: () => { heard++; } });
    const { connect, headers } = await import("@nats-io/transport-node");
    const rogue = await connect({ servers: srv.url });
    try {
      const n = MAX_KNOWN + 100;
      for (let i = 0; i < n; i += 40) {
        for (let id = 2 + i; id < 2 + Math.min(i + 40, n); id++) announceAs(rogue, headers(), "c6", String(id));
        await rogue.flush();
        await until(() => t.stats.handled + t.stats.dropped >= Math.min(i + 40, n), "the batch handled");
      }
      assert.is(t.stats.dropped, 0, "batches small enough not to be dropped");
      let known = 0;
      for (let id = 2; id < 2 + n; id++) if (t.knows(id)) known++;
      assert.is(known, MAX_KNOWN);
      assert.is(heard, MAX_KNOWN);
    } finally {
      await rogue.close();
      await t.close();
      await srv.close();
    }
  });

  test("a tentative peer that stops announcing is forgotten after forgetAfterMs; recorded and configured ones never", async () => {
    const srv = await startNats();
    const ms = [await member(srv, 1, "c7", { forgetAfterMs: 600 }), await member(srv, 2, "c7")];
    const { connect, headers } = await import("@nats-io/transport-node");
    const rogue = await connect({ servers: srv.url });
    try {
      await ms[0].node.addPeer(40); // configured, silent
      announceAs(rogue, headers(), "c7", "41"); // a ghost: announced once
      await until(() => ms[0].node.peers().includes(41) && ms[0].node.peers().includes(2), "ghost and real peer discovered");
      await until(() => !ms[0].node.peers().includes(41), "the ghost forgotten");
      assert.not.ok(ms[0].t.knows(41));
      assert.ok(ms[0].node.peers().includes(2), "a peer that keeps announcing stays");
      assert.ok(ms[0].node.peers().includes(40), "a configured peer stays");
      // Node 2 stops (its announcements stop). It made requests, so it is on record: kept
      // (tombstone GC waits for it) until removePeer, however long it is away.
      await ms[1].sync.stop();
      await ms[1].t.close();
      await new Promise((r) => setTimeout(r, 1_500));
      assert.ok(ms[0].node.peers().includes(2), "a peer on record is not forgotten by silence");
      ms[1].t = await NatsTransport.connect({ servers: srv.url, cluster: "c7", node: 2, secret: SECRET, announceMs: 200, onWarning: quiet });
      ms[1].sync = new SyncManager(ms[1].node, ms[1].t, { intervalMs: 300, timeoutMs: 2_000, retryMs: 100, maxBackoffMs: 500, onWarning: quiet });
      await ms[1].t.serve(ms[1].sync, { membership: ms[1].node });
      ms[1].sync.start();
      await until(() => ms[0].node.peers().includes(2), "back");
      await ms[0].node.put("after", "1");
      await until(() => has(ms, "after", "1"), "syncs again");
    } finally {
      await rogue.close();
      await shut(ms);
      await srv.close();
    }
  });

  test("a missing server is one clear IO error", async () => {
    const err = await NatsTransport.connect({ servers: "nats://127.0.0.1:1", cluster: "x", node: 1, nats: { maxReconnectAttempts: 0, reconnect: false } }).catch((e) => e);
    assert.is(err.code, "IO");
    const bad = await NatsTransport.connect({ servers: "nats://127.0.0.1:1", cluster: "a.b", node: 1 }).catch((e) => e);
    assert.is(bad.code, "INVALID_ARGUMENT");
    for (const o of [{ node: 2 ** 32 }, { node: 0 }, { node: 1, forgetAfterMs: 1_000 }]) {
      const e = await NatsTransport.connect({ servers: "nats://127.0.0.1:1", cluster: "x", ...o }).catch((e) => e);
      assert.is(e.code, "INVALID_ARGUMENT", JSON.stringify(o));
    }
  });

  test.run();
}

async function assert_rejects(f: () => Promise<unknown>): Promise<void> {
  let threw = false;
  try { await f(); } catch { threw = true; }
  assert.ok(threw, "expected a rejection");
}

/** A signed announcement of `text` on cluster `cluster`, as any holder of the secret can send. */
function announceAs(nc: { publish(s: string, d: Uint8Array, o: { headers: { set(k: string, v: string): void } }): void }, h: { set(k: string, v: string): void }, cluster: string, text: string): void {
  const subject = `wavekv.${cluster}.announce`;
  const body = new TextEncoder().encode(text);
  h.set("wavekv-from", "999");
  for (const [k, v] of Object.entries(signRequest(SECRET, "NATS", subject, body, 0))) h.set(k, v);
  nc.publish(subject, body, { headers: h });
}
