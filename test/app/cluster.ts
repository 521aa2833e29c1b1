// Three `serve` nodes in this process on 127.0.0.1 with data directories: one seed
// address is enough to find everyone (the replicated address book), and /metrics
// reports storage and per-peer sync figures.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer, type RunningServer } from "../../src/app/serve.js";
import { PEER_ADDRESS_PREFIX } from "../../src/transport/http.js";
import { KvClient } from "../../src/app/client.js";
import { ENVELOPE_VERSION } from "../../src/sync/envelope.js";

const SECRET = "cluster-test-secret-0123456789";

async function until(what: string, cond: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("a node that knows one seed address learns every other node's address and syncs with it directly", async () => {
  const root = mkdtempSync(join(tmpdir(), "wavekv-cluster-"));
  const running: RunningServer[] = [];
  const quiet = () => undefined;
  try {
    const start = (id: number, peers?: Record<number, string>) =>
      startServer({ id, port: 0, dir: join(root, `n${id}`), peers, secret: SECRET, intervalMs: 150, timeoutMs: 2_000, pushWindowMs: 20, log: quiet }).then((r) => { running.push(r); return r; });
    const n1 = await start(1);
    const seed = { 1: n1.http.url };
    const n2 = await start(2, seed);
    const n3 = await start(3, seed);
    await until("every node knows every other node as a peer", () =>
      [n1, n2, n3].every((r) => r.node.peers().length === 2));
    assert.equal(n2.node.peers(), [1, 3]);
    assert.equal(n3.node.peers(), [1, 2]);
    assert.is(new TextDecoder().decode(n3.node.get(PEER_ADDRESS_PREFIX + 2)!.value!), n2.http.url);

    // With the seed gone, 2 and 3 still replicate: they talk to each other directly.
    await n1.stop();
    running.splice(running.indexOf(n1), 1);
    await n2.node.put("direct", "2 → 3");
    await until("node 3 has node 2's write", () => n3.node.get("direct") !== undefined);
    await until("2 and 3 agree", () => n2.node.digest() === n3.node.digest());

    const metrics = await (await fetch(n2.http.url + "/metrics")).text();
    for (const name of ["wavekv_keys ", "wavekv_bytes ", "wavekv_wal_bytes ", "wavekv_fsync_seconds_bucket{le=\"+Inf\"}", "wavekv_sync_rounds_total{peer=\"3\"}", "wavekv_sync_errors_total{peer=\"1\"}", "wavekv_sync_sent_bytes_total{peer=\"3\"}"]) {
      assert.ok(metrics.includes(name), `metrics lack ${name}`);
    }
    const fsyncs = Number(/wavekv_fsync_seconds_count (\d+)/.exec(metrics)![1]);
    assert.ok(fsyncs > 0, "fsyncs were timed");
    const errorsTo1 = Number(/wavekv_sync_errors_total\{peer="1"\} (\d+)/.exec(metrics)![1]);
    await until("a round with the stopped seed fails", () => errorsTo1 > 0 || n2.sync.links().some((l) => l.peer === 1 && l.failures > 0));
  } finally {
    for (const r of running) await r.stop();
    rmSync(root, { recursive: true, force: true });
  }
});

async function pair(root: string, running: RunningServer[]) {
  const start = (id: number, peers?: Record<number, string>, port = 0) =>
    startServer({ id, port, dir: join(root, `n${id}`), peers, secret: SECRET, intervalMs: 100, timeoutMs: 1_000, pushWindowMs: 20, log: () => undefined }).then((r) => { running.push(r); return r; });
  const n1 = await start(1);
  const n2 = await start(2, { 1: n1.http.url });
  await until("1 and 2 know each other", () => n1.node.peers().includes(2) && n2.node.peers().includes(1));
  return { n1, n2, start };
}

async function replicates(from: RunningServer, to: RunningServer, key: string): Promise<void> {
  await from.node.put(key, `${from.node.id}`);
  await until(`${key} reaches node ${to.node.id}`, () => to.node.get(key) !== undefined);
}

test("the split attack: PUTs of __wavekv/peers/1 and /2 to a dead address are refused; the nodes keep replicating", async () => {
  const root = mkdtempSync(join(tmpdir(), "wavekv-cluster-"));
  const running: RunningServer[] = [];
  try {
    const { n1, n2 } = await pair(root, running);
    const kv = new KvClient(n1.http.url, SECRET);
    for (const id of [1, 2]) {
      try {
        await kv.put(PEER_ADDRESS_PREFIX + id, "http://127.0.0.1:9");
        assert.unreachable(`the address of node ${id} was overwritten`);
      } catch (e) {
        assert.is((e as { status?: number }).status, 403);
      }
    }
    // Only its own entry is published: node 1 never writes node 2's address.
    assert.is(n1.node.get(PEER_ADDRESS_PREFIX + 2)?.node, 2);
    await replicates(n1, n2, "after-attack/1");
    await replicates(n2, n1, "after-attack/2");
  } finally {
    for (const r of running) await r.stop();
    rmSync(root, { recursive: true, force: true });
  }
});

test("a learned address that never answers does not displace one that does; a real move is adopted once it answers", async () => {
  const root = mkdtempSync(join(tmpdir(), "wavekv-cluster-"));
  const running: RunningServer[] = [];
  try {
    const { n1, n2, start } = await pair(root, running);
    // A bogus entry for node 2 reaches node 1's address book: pushed by a peer that holds
    // the secret, stamped as node 2's own (the only origin the reserved-key rule admits).
    const link = () => n1.sync.links().find((l) => l.peer === 2) ?? { rounds: 0, failures: 0 };
    await until("node 1 ran a round with node 2", () => link().rounds > 0);
    const bogus = { key: PEER_ADDRESS_PREFIX + 2, value: new TextEncoder().encode("http://127.0.0.1:9"), timestamp: Date.now(), node: 2, seq: n2.node.status().nextSeq + 1000 };
    n1.node.handleEnvelope({ version: ENVELOPE_VERSION, senderId: 2, senderUuid: n2.node.uuid, acks: new Map(), entries: [bogus], pushOnly: true });
    assert.is(new TextDecoder().decode(n1.node.get(PEER_ADDRESS_PREFIX + 2)!.value!), "http://127.0.0.1:9", "the bogus address is in node 1's book");
    const before = { rounds: link().rounds, failures: link().failures };
    await until("node 1 ran rounds with node 2 since", () => link().rounds >= before.rounds + 3);
    assert.is(link().failures, before.failures, "node 1's rounds with node 2 kept working");
    await replicates(n1, n2, "bogus/1");
    await replicates(n2, n1, "bogus/2");
    // Node 2 moves to another port: its own new entry reaches node 1, which tries it when
    // the old address stops answering, and keeps it.
    await n2.stop();
    running.splice(running.indexOf(n2), 1);
    const moved = await start(2, { 1: n1.http.url });
    await until("node 1 has node 2's new address", () => new TextDecoder().decode(n1.node.get(PEER_ADDRESS_PREFIX + 2)?.value ?? new Uint8Array()) === moved.http.url);
    await replicates(n1, moved, "moved/1");
  } finally {
    for (const r of running) await r.stop();
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
