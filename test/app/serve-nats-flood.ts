/**
 * `startServer({ nats })` against a signed flood of announced ids (docs/design/0025): the
 * server's membership stays at sync.maxDiscoveredPeers (64) plus its real peer, and once
 * the flood stops its ids are forgotten after `natsForgetAfterMs` (15 s here: three of the
 * server's 5 s announce intervals, the least allowed) while the real peer stays.
 * Without nats-server: a loud NOT RUN.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { startServer, type RunningServer } from "../../src/app/serve.js";
import { signRequest } from "../../src/transport/auth.js";
import { natsServerPath, startNats } from "../helpers/nats-server.js";

const SECRET = "a-shared-secret-of-some-length";

async function until(ok: () => boolean, what: string, ms = 40_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`never happened: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

if (!natsServerPath) {
  console.log("\n!! test/app/serve-nats-flood.ts NOT RUN: no nats-server binary (apt-get install -y nats-server)\n");
} else {
  test("serve --nats: a flood of announced ids is bounded, then forgotten; the real peer stays", async () => {
    const srv = await startNats();
    const logs: string[] = [];
    const servers: RunningServer[] = [];
    const { connect, headers } = await import("@nats-io/transport-node");
    const rogue = await connect({ servers: srv.url });
    try {
      for (const id of [1, 2]) servers.push(await startServer({ id, port: 0, nats: srv.url, cluster: "f1", secret: SECRET, natsForgetAfterMs: 15_000, intervalMs: 500, timeoutMs: 1_000, console: false, log: (l) => logs.push(l) }));
      const [a] = servers as [RunningServer, RunningServer];
      await until(() => a.node.peers().includes(2), "the real peer");
      const subject = "wavekv.f1.announce";
      for (let id = 1_000; id < 1_200; id++) {
        const body = new TextEncoder().encode(String(id));
        const h = headers();
        for (const [k, v] of Object.entries(signRequest(SECRET, "NATS", subject, body, 0))) h.set(k, v);
        rogue.publish(subject, body, { headers: h });
        if (id % 20 === 0) { await rogue.flush(); await new Promise((r) => setTimeout(r, 20)); }
      }
      await rogue.flush();
      await until(() => a.node.peers().length === 64, "the bound filled");
      await new Promise((r) => setTimeout(r, 200));
      assert.is(a.node.peers().length, 64, "bounded: 64 discovered (the real peer is one of them)");
      assert.ok(a.node.peers().includes(2));
      assert.ok(logs.some((l) => l.includes("maxDiscoveredPeers")), "TOO_MANY_PEERS surfaced as a warning");
      await until(() => a.node.peers().length === 1, "the flood forgotten");
      assert.equal(a.node.peers(), [2], "the real peer, which keeps announcing, stays");
      await a.node.put("after", "flood");
      await until(() => servers[1]!.node.get("after") !== undefined, "still replicating");
    } finally {
      await rogue.close();
      for (const s of servers) await s.stop();
      await srv.close();
    }
  });
}

test.run();
