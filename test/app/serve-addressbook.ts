// The replicated address book without NATS (src/app/serve.ts): a holder of the secret can
// forge `__wavekv/peers/N` entries (relayed as node N's writes). Each learned address is a
// tentative discovered member, bounded by sync.maxDiscoveredPeers and logged only once that
// peer makes a request: 200 forged entries never become 200 durable members, are forgotten
// after `bookForgetAfterMs` (so a later real node can still join) and by a restart, and
// real nodes that met through the book keep syncing. docs/design/0025.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { startServer, type RunningServer } from "../../src/app/serve.js";
import { HttpTransport, PEER_ADDRESS_PREFIX } from "../../src/transport/http.js";
import { Node } from "../../src/node/node.js";
import { ENVELOPE_VERSION, encodeEnvelope } from "../../src/sync/envelope.js";

const SECRET = "addressbook-test-secret-0123456789";
const FORGED = 200;
const FIRST_FORGED = 1000;
const MAX_DISCOVERED = 64; // sync tuning default (src/sync/host.ts)
const FORGET_MS = 1_500; // bookForgetAfterMs: a learned address that never made a request is forgotten

async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const bookSize = (r: RunningServer) => [...r.node.scan(PEER_ADDRESS_PREFIX)].length;
const forgedIn = (peers: number[]) => peers.filter((p) => p >= FIRST_FORGED);

test("200 forged address-book entries: membership stays bounded and tentative, a restart forgets them, real nodes keep syncing", async () => {
  const root = mkdtempSync(join(tmpdir(), "wavekv-book-"));
  const running: RunningServer[] = [];
  const warnings: string[] = [];
  try {
    const start = (id: number, peers?: Record<number, string>) =>
      startServer({ id, port: 0, dir: join(root, `n${id}`), peers, secret: SECRET, intervalMs: 150, timeoutMs: 1_000, pushWindowMs: 20, bookForgetAfterMs: FORGET_MS, log: (l) => { if (l.includes("warning")) warnings.push(l); } })
        .then((r) => { running.push(r); return r; });
    const n1 = await start(1);
    const seed = { 1: n1.http.url };
    const n2 = await start(2, seed);
    const n3 = await start(3, seed);
    await until("2 and 3 meet through the book", () => n2.node.peers().includes(3) && n3.node.peers().includes(2));

    // The forger holds the secret: one sync request to node 2 as id 99, relaying 200
    // "writes" of ids 1000–1199, each its own address entry (admitted: key N from node N).
    const forger = new HttpTransport({ peers: { 2: n2.http.url }, secret: SECRET, timeoutMs: 5_000 });
    const now = Date.now();
    const entries = Array.from({ length: FORGED }, (_, i) => ({
      key: PEER_ADDRESS_PREFIX + (FIRST_FORGED + i), value: new TextEncoder().encode("http://127.0.0.1:9"), timestamp: now, node: FIRST_FORGED + i, seq: 1,
    }));
    await forger.request(2, encodeEnvelope({ version: ENVELOPE_VERSION, senderId: 99, senderUuid: randomUUID(), acks: new Map(), entries }));
    for (const r of [n2, n1, n3]) await until(`node ${r.node.id} has the forged book`, () => bookSize(r) >= FORGED + 3);

    for (const r of [n1, n2, n3]) {
      const peers = r.node.peers();
      assert.ok(peers.length <= 1 + MAX_DISCOVERED + 1, `node ${r.node.id}: ${peers.length} members`);
      assert.ok(forgedIn(peers).length < FORGED, `node ${r.node.id}: bounded`);
    }
    assert.ok(warnings.filter((w) => w.includes("maxDiscoveredPeers")).length <= 3, `one warning per node, not one per entry: ${warnings.length}`);

    // The ghosts never make a request: each node forgets them, and a new node that joins
    // afterwards (its own scan of the book fills its bound with ghosts for a while) meets
    // nodes 2 and 3 through the book all the same.
    for (const r of [n1, n2, n3]) await until(`node ${r.node.id} forgets the ghosts`, () => forgedIn(r.node.peers()).length === 0);
    const n4 = await start(4, seed);
    await until("node 4 meets 2 and 3", () => [2, 3].every((p) => n4.node.peers().includes(p)) && n2.node.peers().includes(4) && n3.node.peers().includes(4));
    await n4.node.put("from-4", "4 → 2");
    await until("node 2 has node 4's write", () => n2.node.get("from-4") !== undefined);

    // The real peers met through the book keep syncing directly, the seed gone.
    await n1.stop();
    running.splice(running.indexOf(n1), 1);
    await n3.node.put("after-the-flood", "3 → 2");
    await until("node 2 has node 3's write", () => n2.node.get("after-the-flood") !== undefined);

    // Node 2's log holds its real members only: the forged ids never made a request.
    await n2.stop();
    running.splice(running.indexOf(n2), 1);
    const reopened = await Node.open({ id: 2, dir: join(root, "n2"), peers: [1], onWarning: () => undefined });
    const recorded = reopened.peers();
    await reopened.close();
    assert.equal(forgedIn(recorded), [], "no forged id on record");
    assert.ok([1, 3, 4].every((p) => recorded.includes(p)), `real members kept: ${recorded}`);

    // Served again, it relearns the book under the same bound and still syncs with 3.
    const again = await start(2, seed);
    assert.ok(again.node.peers().length <= 1 + MAX_DISCOVERED + 1, "bounded after the restart");
    await n3.node.put("after-the-restart", "3 → 2");
    await until("restarted node 2 has node 3's write", () => again.node.get("after-the-restart") !== undefined);
  } finally {
    for (const r of running) await r.stop();
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
