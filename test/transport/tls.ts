// HTTPS on 127.0.0.1 with a CA generated at test time (openssl): a 3-node cluster syncs
// over TLS (peers trust the CA from --tls-ca), the client and the console's routes work
// over it, and a client with the wrong CA, or none, is refused with one line naming the
// cause. TLS files that are missing, not PEM, or a key that does not match are refused at start.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startServer, type RunningServer } from "../../src/app/serve.js";
import { KvClient, KvClientError } from "../../src/app/client.js";
import { HttpTransport } from "../../src/transport/http.js";
import { fetchWithCa, readTlsFiles } from "../../src/transport/tls.js";
import { signRequest } from "../../src/transport/auth.js";
import { parseClientKeys } from "../../src/transport/credentials.js";
import { makeTestCerts } from "../helpers/tls-certs.js";

const SECRET = "tls-cluster-secret-0123456789";
const READER = "tls-reader-secret-0123456789";
const certs = makeTestCerts();
if (!certs) console.warn("SKIPPED test/transport/tls.ts: no openssl on PATH, so no test CA can be made");

async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test.after(() => { if (certs) rmSync(certs.dir, { recursive: true, force: true }); });

test("three nodes sync over HTTPS, learning each other from one seed; the client and console work over it", async () => {
  if (!certs) return;
  const tls = readTlsFiles(certs.files);
  const running: RunningServer[] = [];
  const quiet = () => undefined;
  try {
    const credentials = parseClientKeys([`reader:${READER}:ro`]);
    const start = (id: number, peers?: Record<number, string>) =>
      startServer({ id, port: 0, peers, secret: SECRET, credentials, tls, intervalMs: 150, timeoutMs: 3_000, pushWindowMs: 20, log: quiet }).then((r) => { running.push(r); return r; });
    const n1 = await start(1);
    assert.match(n1.http.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const n2 = await start(2, { 1: n1.http.url });
    const n3 = await start(3, { 1: n1.http.url });
    await until("every node knows every other node", () => [n1, n2, n3].every((r) => r.node.peers().length === 2));
    const kv = new KvClient(n3.http.url, SECRET, 5_000, { ca: certs.ca });
    await kv.put("over/tls", "yes");
    await until("the write reaches nodes 1 and 2", () => [n1, n2].every((r) => r.node.get("over/tls") !== undefined));
    await until("all agree", () => n1.node.digest() === n2.node.digest() && n2.node.digest() === n3.node.digest());
    assert.is((await new KvClient(n2.http.url, SECRET, 5_000, { ca: certs.ca }).get("over/tls"))?.value, "yes");
    // The live push stream (a streamed response) over TLS: it opens and carries a write.
    const live = new AbortController();
    let opened = false, pushes = 0;
    const t = new HttpTransport({ peers: { 1: n1.http.url }, secret: SECRET, ca: certs.ca });
    const streaming = t.subscribe(1, { from: 9, signal: live.signal, onOpen: () => { opened = true; }, onPush: () => { pushes++; }, onGap: () => undefined }).catch(() => undefined);
    await until("the push stream opens over TLS", () => opened);
    await n1.node.put("pushed/over-tls", "1");
    await until("a push arrives over the TLS stream", () => pushes > 0);
    live.abort();
    await streaming;
    // A credential over TLS: reads, and is refused a write.
    const reader = new KvClient(n1.http.url, READER, 5_000, { key: "reader", ca: certs.ca });
    assert.is((await reader.get("over/tls"))?.value, "yes");
    assert.is(((await reader.put("over/tls", "no").catch((e: unknown) => e)) as KvClientError).status, 403);
    // The console: its page shell and its signed state, over HTTPS.
    const f = fetchWithCa(certs.ca);
    const page = await f(n1.http.url + "/");
    assert.is(page.status, 200);
    assert.match(await page.text(), 'data-auth="hmac"');
    const state = await f(n1.http.url + "/console/api/state?after=0", { headers: signRequest(SECRET, "GET", "/console/api/state?after=0", undefined, 1) });
    assert.is(state.status, 200);
    // Its peer probes (public /status of each peer) go over HTTPS with the same CA.
    const snap = (await state.json()) as { cluster: { id: number; self: boolean; reachable: boolean | null }[] };
    assert.equal(snap.cluster.filter((m) => !m.self).map((m) => [m.id, m.reachable]), [[2, true], [3, true]]);
  } finally {
    for (const r of running.reverse()) await r.stop();
  }
});

test("a client or peer with the wrong CA, or none, is refused with one line naming the cause; nothing is written", async () => {
  if (!certs) return;
  const running = await startServer({ id: 7, port: 0, secret: SECRET, tls: readTlsFiles(certs.files), log: () => undefined });
  try {
    for (const ca of [certs.otherCa, undefined]) {
      const err = (await new KvClient(running.http.url, SECRET, 5_000, ca === undefined ? {} : { ca }).put("x", "1").catch((e: unknown) => e)) as KvClientError;
      assert.instance(err, KvClientError);
      assert.match(err.message, /^TLS refused https:\/\/127\.0\.0\.1:\d+: its certificate is not (signed by a trusted CA|trusted)/);
      assert.match(err.message, "pass --ca");
      assert.not.match(err.message, "\n");
    }
    assert.is(running.node.get("x"), undefined);
    // A peer transport with the wrong CA fails its request instead of syncing.
    const t = new HttpTransport({ peers: { 7: running.http.url }, secret: SECRET, ca: certs.otherCa, timeoutMs: 3_000 });
    const refused = (await t.request(7, new Uint8Array([1, 2, 3])).catch((e: unknown) => e)) as Error & { code?: string };
    assert.instance(refused, Error, "a request over an untrusted certificate must fail");
    assert.match(`${refused.code} ${refused.message} ${(refused.cause as Error | undefined)?.message}`, /UNABLE_TO_VERIFY|certificate/i);
    // Plain HTTP spoken to the HTTPS port: refused, not hung.
    const plain = await new KvClient(running.http.url.replace("https:", "http:"), SECRET, 5_000).status().catch((e: unknown) => e);
    assert.instance(plain, KvClientError);
  } finally {
    await running.stop();
  }
});

test("TLS files: missing, not PEM, or a key that does not match the certificate are refused with one line naming the file", () => {
  if (!certs) return;
  const missing = join(certs.dir, "nope.crt");
  assert.throws(() => readTlsFiles({ cert: missing, key: certs.files.key }), (e: Error) => e.message.includes(`cannot read the TLS certificate file ${missing} (no such file)`) && !e.message.includes("\n"));
  assert.throws(() => readTlsFiles({ cert: certs.files.cert, key: certs.dir }), (e: Error) => e.message.includes(`TLS private key file ${certs.dir} (it is a directory)`));
  const junk = join(certs.dir, "junk.pem");
  writeFileSync(junk, "not a certificate\n");
  assert.throws(() => readTlsFiles({ cert: certs.files.cert, key: certs.files.key, ca: junk }), (e: Error) => e.message.includes(`${junk} (--tls-ca) holds no PEM block`));
  const otherKey = join(certs.dir, "other.key");
  assert.throws(() => readTlsFiles({ cert: certs.files.cert, key: otherKey }), (e: Error) => e.message.includes(`cannot be used together`) && e.message.includes(otherKey));
});

test.run();
