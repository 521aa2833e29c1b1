// Two nodes started with one id (issue 16 §3): the duplicate is shown on both sides —
// the node refusing it (`/status` duplicateIds, `/metrics`, one log line) and the
// duplicate itself (`/status` refusedBy: what `wavekv put` checks, `/metrics`, one log
// line) — and a rebuilt node (same id, new uuid, at the id's address) is not taken for
// one. Real nodes on real sockets (127.0.0.1) or MemoryNetwork; an injected clock for expiry;
// the console's warning row in a real Chromium (skipped, and said, when none is installed).
import { suite, test } from "uvu";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as assert from "uvu/assert";
import { Node } from "../../src/node/node.js";
import { SyncManager } from "../../src/node/manager.js";
import { MemoryNetwork } from "../../src/transport/memory.js";
import { HttpTransport, serveHttp, type HttpServer } from "../../src/transport/http.js";
import { ENVELOPE_VERSION, encodeEnvelope } from "../../src/sync/envelope.js";
import { FORGET_MS } from "../../src/sync/identity.js";
import type { NodeStatus } from "../../src/core/types.js";
import { startServer, type RunningServer } from "../../src/app/serve.js";
// @ts-expect-error: a plain .mjs build script, no type declarations
import { writeConsoleAssets } from "../../scripts/build-console.mjs";
import { CHROMIUM_ARGS, findChromium, loadPlaywright } from "../helpers/console-chromium.js";
import { manualClock, rejectsWith, warningSink } from "../helpers/cluster.js";

const SECRET = "duplicate-id-test-secret-0123456789";
/** The built CLI (npm test builds first), run by plain node: tsx would add a second a process. */
const cliJs = fileURLToPath(new URL("../../dist/app/cli.js", import.meta.url));
/** The CLI in a child, awaited (the servers it talks to live in this process: no spawnSync). */
const cli = (...args: string[]) => new Promise<{ status: number; stderr: string }>((resolve) => {
  execFile(process.execPath, [cliJs, ...args], { encoding: "utf8", timeout: 30_000 }, (err, _stdout, stderr) => resolve({ status: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr }));
});

interface Running { node: Node; sync: SyncManager; http: HttpServer; transport: HttpTransport; log: ReturnType<typeof warningSink> }

async function start(id: number, peers: number[]): Promise<Running> {
  const log = warningSink();
  const node = await Node.open({ id, peers, onWarning: log });
  const transport = new HttpTransport({ secret: SECRET, timeoutMs: 3_000 });
  const sync = new SyncManager(node, transport, { onWarning: log });
  const http = await serveHttp(sync, { node, secret: SECRET, onWarning: () => undefined });
  return { node, sync, http, transport, log };
}

async function stop(...rs: Running[]): Promise<void> {
  for (const r of rs) {
    await r.sync.stop();
    await r.http.close();
    await r.node.close();
  }
}

const getStatus = async (r: Running) => (await (await fetch(`${r.http.url}/status`)).json()) as NodeStatus;
const getMetrics = async (r: Running) => (await fetch(`${r.http.url}/metrics`)).text();
const gauge = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1]);
const matching = (log: { lines: string[] }, re: RegExp) => log.lines.filter((l) => re.test(l));
const lines = (r: Running, re: RegExp) => matching(r.log, re);

test("a second node with id 1 is shown on both sides over HTTP: duplicateIds on the peer it contacts, refusedBy on itself, gauges, one log line each", async () => {
  const a = await start(1, [2]);
  const b = await start(2, [1]);
  const dup = await start(1, [2]);
  try {
    a.transport.setPeer(2, b.http.url);
    b.transport.setPeer(1, a.http.url);
    dup.transport.setPeer(2, b.http.url);
    // Node 2 learns node 1's uuid from a round with it.
    const [first] = await b.sync.syncOnce();
    assert.ok(first!.ok, first!.error?.message);

    // The duplicate acknowledges a write no peer will take.
    await dup.node.put("lost", "v");
    for (let round = 0; round < 3; round++) {
      const [r] = await dup.sync.syncOnce();
      assert.is(r!.ok, false);
      assert.match(r!.error!.message, /UUID_MISMATCH/);
    }
    // Node 2's own round reaches the real node 1 at its address: the claim is confirmed.
    const [again] = await b.sync.syncOnce();
    assert.ok(again!.ok, again!.error?.message);

    const bs = await getStatus(b);
    assert.is(bs.duplicateIds.length, 1, JSON.stringify(bs.duplicateIds));
    const d = bs.duplicateIds[0]!;
    assert.equal([d.id, d.uuid, d.seenUuid, d.confirmed, d.refused], [1, a.node.uuid, dup.node.uuid, true, 3]);
    assert.ok(d.firstSeenAt > 0 && d.firstSeenAt <= d.lastSeenAt, JSON.stringify(d));
    assert.equal(bs.refusedBy, []);
    assert.is(gauge(await getMetrics(b), "wavekv_duplicate_ids"), 1);
    assert.is(gauge(await getMetrics(b), "wavekv_refused_by_peers"), 0);

    // The duplicate's side: every peer refuses it. This is what `wavekv put` checks.
    const ds = await getStatus(dup);
    assert.equal(ds.refusedBy, [2]);
    assert.equal(ds.peers.map((p) => p.id), [2]);
    assert.equal(ds.duplicateIds, []);
    assert.is(gauge(await getMetrics(dup), "wavekv_refused_by_peers"), 1);
    // `wavekv put` to the duplicate succeeds there and warns, in one line, that it will not replicate.
    const dir = mkdtempSync(join(tmpdir(), "wavekv-dup-"));
    try {
      writeFileSync(join(dir, "secret"), SECRET);
      const put = await cli("put", "k", "v", "--url", dup.http.url, "--secret-file", join(dir, "secret"));
      assert.is(put.status, 0, put.stderr);
      assert.is(put.stderr.trim().split("\n").length, 1, put.stderr);
      assert.match(put.stderr, /^warning: every peer of node 1 refuses it as a duplicate of id 1: this write is stored on node 1 only and will not replicate/);
      const fine = await cli("put", "k", "v", "--url", b.http.url, "--secret-file", join(dir, "secret"));
      assert.is([fine.status, fine.stderr].join(" "), "0 ", "no warning from a node its peers accept");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }

    // The real node 1 sees nothing wrong.
    const as = await getStatus(a);
    assert.equal([as.duplicateIds, as.refusedBy], [[], []]);
    assert.is(gauge(await getMetrics(a), "wavekv_duplicate_ids"), 0);

    // One line per side for the peer, not one per round.
    assert.is(lines(b, new RegExp(`claiming id 1 with uuid ${dup.node.uuid}`)).length, 1, b.log.lines.join("\n"));
    assert.match(lines(b, /claiming id 1/)[0]!, /give one of them a new id/);
    assert.is(lines(dup, /peer 2 refuses this node's requests/).length, 1, dup.log.lines.join("\n"));
    assert.is(lines(dup, /UUID_MISMATCH/).length, 0, `the refusal is told once, in words, not also as a failed round: ${dup.log.lines.join("\n")}`);
    assert.match(lines(dup, /peer 2 refuses/)[0]!, /writes acknowledged here do not replicate to peer 2/);
    assert.is(b.node.get("lost"), undefined, "the duplicate's write never reached node 2");
  } finally {
    await stop(dup, a, b);
  }
});

test("a rebuilt node (same id, new uuid, at the id's address) is not taken for a duplicate: both sides clear once it answers", async () => {
  const net = new MemoryNetwork({ seed: 7 });
  const log1 = warningSink(), log2 = warningSink();
  const n1 = await Node.open({ id: 1, peers: [2], onWarning: log1 });
  const s1 = new SyncManager(n1, net.transport(1), { onWarning: log1 });
  net.register(1, s1);
  const old2 = await Node.open({ id: 2, peers: [1], onWarning: () => undefined });
  const oldSync = new SyncManager(old2, net.transport(2), { onWarning: () => undefined });
  net.register(2, oldSync);
  assert.ok((await oldSync.syncOnce())[0]!.ok);
  await oldSync.stop();
  await old2.close();
  // Its directory lost: a new uuid at the same address.
  const n2 = await Node.open({ id: 2, peers: [1], onWarning: log2 });
  const s2 = new SyncManager(n2, net.transport(2), { onWarning: log2 });
  net.register(2, s2);
  try {
    const [r] = await s2.syncOnce();
    assert.match(r!.error!.message, /UUID_MISMATCH/);
    assert.equal(n2.status().refusedBy, [1]);
    // Node 1's refusal started a round with id 2: the answer carries the new uuid.
    await net.settled();
    assert.equal(n1.status().duplicateIds, [], "the answer at the id's address resolved it: a rebuild");
    assert.is(matching(log1, /node 2's address answered with uuid .*a rebuilt node/).length, 1, log1.lines.join("\n"));
    const [r2] = await s2.syncOnce();
    assert.ok(r2!.ok, r2!.error?.message);
    assert.equal(n2.status().refusedBy, [], "an answer from peer 1 clears it");
  } finally {
    await Promise.all([s1.stop(), s2.stop()]);
    await Promise.all([n1.close(), n2.close()]);
  }
});

test("a claim not refreshed for 15 min is dropped (a duplicate that was stopped stops showing); removePeer forgets it", async () => {
  const clock = manualClock();
  const log = warningSink();
  const node = await Node.open({ id: 1, peers: [2], clock, onWarning: log });
  // A request as node 2 with `uuid`, through the server's path (decode, then the identity check).
  const sync = new SyncManager(node, { request: () => Promise.reject(new Error("does not dial out")) }, { onWarning: () => undefined });
  const request = (uuid: string) => sync.handle(encodeEnvelope({ version: ENVELOPE_VERSION, senderId: 2, senderUuid: uuid, acks: new Map(), entries: [] }));
  const real = "00000000-0000-4000-8000-000000000002", other = "00000000-0000-4000-8000-0000000000ff";
  try {
    await request(real);
    for (let i = 0; i < 4; i++) await rejectsWith(request(other), "UUID_MISMATCH");
    const [d] = node.status().duplicateIds;
    assert.equal([d!.id, d!.uuid, d!.seenUuid, d!.refused, d!.confirmed, d!.firstSeenAt], [2, real, other, 4, false, clock()]);
    assert.is(log.lines.filter((l) => l.includes("claiming id 2")).length, 1);
    clock.advance(FORGET_MS);
    assert.is(node.status().duplicateIds.length, 1, "kept up to FORGET_MS after the last refusal");
    clock.advance(1);
    assert.equal(node.status().duplicateIds, []);
    await rejectsWith(request(other), "UUID_MISMATCH");
    assert.is(node.status().duplicateIds.length, 1);
    await node.removePeer(2);
    assert.equal(node.status().duplicateIds, []);
  } finally {
    await sync.stop();
    await node.close();
  }
});

test.run();

// The console's warning row, in a real Chromium (not registered when none is installed).
const chromiumPath = findChromium();
const playwright = chromiumPath ? await loadPlaywright() : undefined;
if (!chromiumPath || !playwright) {
  console.log("\n!! test/sync/duplicate-id.ts console check NOT RUN: no Chromium or playwright-core (apt-get install -y chromium)\n");
} else {
  const ui = suite("duplicate id in the console");
  ui("the console of both nodes shows the duplicate in a warning row, without the secret too", async () => {
    await writeConsoleAssets(); // the page under test is the one in console/ now
    const quiet = () => undefined;
    const servers: RunningServer[] = [];
    const browser = await playwright.chromium.launch({ executablePath: chromiumPath, headless: true, args: CHROMIUM_ARGS, timeout: 20_000 });
    try {
      const a = await startServer({ id: 1, port: 0, secret: SECRET, log: quiet });
      servers.push(a);
      const b = await startServer({ id: 2, port: 0, secret: SECRET, peers: { 1: a.http.url }, log: quiet });
      servers.push(b);
      const dup = await startServer({ id: 1, port: 0, secret: SECRET, peers: { 2: b.http.url }, log: quiet });
      servers.push(dup);
      // serve bootstraps: the duplicate's first round is already refused.
      assert.equal(dup.node.status().refusedBy, [2]);
      const page = await browser.newPage();
      page.setDefaultTimeout(10_000);
      await page.goto(dup.http.url + "/");
      const row = page.locator("#conflicts [data-refused-by]");
      await row.waitFor();
      assert.match(await row.innerText(), /Every peer \(2\) refuse this node's requests.*give it a new id/s);
      await page.goto(b.http.url + "/");
      const claim = page.locator('#conflicts [data-duplicate-id="1"]');
      await claim.waitFor();
      assert.ok(await page.locator("#conflicts").isVisible());
      assert.ok((await claim.innerText()).includes(dup.node.uuid), await claim.innerText());
      await page.goto(a.http.url + "/");
      await page.locator("#node-title", { hasText: "node 1" }).waitFor();
      assert.not.ok(await page.locator("#conflicts").isVisible(), "the real node 1 has nothing to warn about");
    } finally {
      await browser.close();
      for (const r of servers.reverse()) await r.stop();
    }
  });
  ui.run();
}
