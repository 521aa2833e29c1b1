/**
 * NatsTransport against a real nats-server (test/helpers/nats-server.ts): convergence,
 * one publish per push, server crash and restart, a partitioned node, a slow consumer,
 * forged and unsigned messages. Without the nats-server binary: a loud NOT RUN.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Node } from "../../src/node/node.js";
import { SyncManager } from "../../src/node/manager.js";
import { NatsTransport } from "../../src/transport/nats.js";
import { natsServerPath, startNats, type NatsServer } from "../helpers/nats-server.js";

const SECRET = "a-shared-secret-of-some-length";
const quiet = () => {};

interface Member { node: Node; sync: SyncManager; t: NatsTransport }

async function member(srv: NatsServer, id: number, cluster: string, extra: { maxPending?: number; intervalMs?: number; gate?: Promise<void> } = {}): Promise<Member> {
  const node = await Node.open({ id, peers: [] });
  const t = await NatsTransport.connect({ servers: srv.url, cluster, node: id, secret: SECRET, timeoutMs: 2_000, announceMs: 200, maxPending: extra.maxPending, onWarning: quiet });
  const sync = new SyncManager(node, t, { intervalMs: extra.intervalMs ?? 300, timeoutMs: 2_000, retryMs: 100, maxBackoffMs: 500, pushWindowMs: 20, onWarning: quiet });
  const gate = extra.gate;
  await t.serve(gate ? { handle: async (b) => { await gate; return sync.handle(b); } } : sync, { onPeer: (p) => node.addPeer(p) });
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
      await ms[2].t.serve(ms[2].sync, { onPeer: (p) => ms[2].node.addPeer(p) });
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
    const gate = new Promise<void>((r) => { open = r; });
    const ms = [await member(srv, 1, "c3", { intervalMs: 500 }), await member(srv, 2, "c3", { maxPending: 1, intervalMs: 500, gate })];
    try {
      await until(() => ms.every((m) => m.node.peers().length === 1), "membership");
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

  test("a missing server is one clear IO error", async () => {
    const err = await NatsTransport.connect({ servers: "nats://127.0.0.1:1", cluster: "x", node: 1, nats: { maxReconnectAttempts: 0, reconnect: false } }).catch((e) => e);
    assert.is(err.code, "IO");
    const bad = await NatsTransport.connect({ servers: "nats://127.0.0.1:1", cluster: "a.b", node: 1 }).catch((e) => e);
    assert.is(bad.code, "INVALID_ARGUMENT");
  });

  test.run();
}

async function assert_rejects(f: () => Promise<unknown>): Promise<void> {
  let threw = false;
  try { await f(); } catch { threw = true; }
  assert.ok(threw, "expected a rejection");
}
