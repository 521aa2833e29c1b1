// FetchTransport (src/transport/fetch.ts) against the real HTTP server (src/transport/http.ts) on
// 127.0.0.1: its WebCrypto signature passes src/transport/auth.ts's verifier, refusals keep their
// codes, deadlines hold. The browser test runs the same transport in Chromium.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Node } from "../../src/node/node.js";
import { SyncManager } from "../../src/node/manager.js";
import { serveHttp } from "../../src/transport/http.js";
import { RequestVerifier } from "../../src/transport/auth.js";
import { WaveKVError } from "../../src/core/errors.js";
import { encodeEnvelope } from "../../src/sync/envelope.js";
import { FetchTransport, RequestSigner } from "../../src/transport/fetch.js";

const SECRET = "a-shared-secret-of-some-length";
const quiet = () => undefined;
const enc = (s: string) => new TextEncoder().encode(s);

async function rejects(p: Promise<unknown>, code: string, text?: RegExp): Promise<WaveKVError> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, WaveKVError);
    assert.is((e as WaveKVError).code, code, (e as Error).message);
    if (text) assert.match((e as Error).message, text);
    return e as WaveKVError;
  }
  assert.unreachable(`expected ${code}`);
  throw new Error("unreachable");
}

function header(h: Record<string, string>) {
  return (name: string) => h[name];
}

test("RequestSigner's headers pass src/transport/auth.ts's verifier; any change to method, path, body or target node fails it", async () => {
  const verifier = (secret: string | Uint8Array, node = 1) => new RequestVerifier(secret, { node });
  for (const secret of [SECRET, enc("bytes-secret"), "x".repeat(100)]) {
    const signer = new RequestSigner(secret);
    const body = enc("payload " + String(secret.length));
    const h = await signer.sign("POST", "/sync", body, 1);
    assert.is(verifier(secret).verify("POST", "/sync", header(h), body), "ok");
    assert.is(verifier(secret).verify("PUT", "/sync", header(h), body), "bad signature");
    assert.is(verifier(secret).verify("POST", "/push", header(h), body), "bad signature");
    assert.is(verifier(secret).verify("POST", "/sync", header(h), enc("other")), "body does not match its signed digest");
    assert.is(verifier("another secret").verify("POST", "/sync", header(h), body), "bad signature");
    assert.match(verifier(secret, 2).verify("POST", "/sync", header(h), body), /signed for node 1, this is node 2/);
  }
});

test("without crypto.subtle (an insecure page) the pure-TS HMAC signs identically", async () => {
  const desc = Object.getOwnPropertyDescriptor(globalThis, "crypto");
  assert.ok(desc?.configurable, "globalThis.crypto must be replaceable for this test");
  const real = globalThis.crypto;
  const body = enc("body bytes");
  Object.defineProperty(globalThis, "crypto", { value: { getRandomValues: (a: Uint8Array) => real.getRandomValues(a) }, configurable: true });
  let h: Record<string, string>;
  try {
    assert.is((globalThis.crypto as Crypto).subtle, undefined);
    h = await new RequestSigner(SECRET).sign("POST", "/sync", body, 1);
  } finally {
    Object.defineProperty(globalThis, "crypto", desc!);
  }
  assert.is(new RequestVerifier(SECRET, { node: 1 }).verify("POST", "/sync", header(h), body), "ok");
});

test("a node syncs with a served node through FetchTransport (signed); wrong or no secret gets 401 → IO", async () => {
  const server = await Node.open({ id: 1 });
  const serverSync = new SyncManager(server, { request: () => Promise.reject(new Error("server does not dial out")) }, { onWarning: quiet });
  const http = await serveHttp(serverSync, { node: server, secret: SECRET, onWarning: quiet });
  const client = await Node.open({ id: 2, peers: [1] });
  const sync = new SyncManager(client, new FetchTransport({ peers: { 1: http.url + "/" }, secret: SECRET, timeoutMs: 3_000 }), { onWarning: quiet });
  try {
    await server.put("from/server", "s");
    await client.put("from/client", "c");
    await client.put("gone", "x");
    await client.delete("gone");
    const [report] = await sync.syncOnce();
    assert.ok(report!.ok, report!.error?.message);
    assert.is(client.digest(), server.digest());
    assert.is(new TextDecoder().decode(server.get("from/client")!.value!), "c");
    assert.is(new TextDecoder().decode(client.get("from/server")!.value!), "s");
    assert.is(server.getIncludingTombstones("gone")!.value, null);
    assert.ok(server.peers().includes(2), "the server discovered the client as a peer");

    for (const secret of ["wrong secret", undefined]) {
      const t = new FetchTransport({ peers: { 1: http.url }, secret, timeoutMs: 3_000 });
      await rejects(t.request(1, new Uint8Array(8)), "IO", /HTTP 401/);
    }
    const before = server.digest();
    await rejects(new FetchTransport({ peers: { 1: http.url }, secret: SECRET }).request(1, enc("not an envelope")), "BAD_ENVELOPE");
    assert.is(server.digest(), before);
  } finally {
    await sync.stop();
    await serverSync.stop();
    await http.close();
    await Promise.all([server.close(), client.close()]);
  }
});

test("a refusal keeps its code: a second node 2 with another uuid gets UUID_MISMATCH", async () => {
  const server = await Node.open({ id: 1 });
  const serverSync = new SyncManager(server, { request: () => Promise.reject(new Error("no")) }, { onWarning: quiet });
  const http = await serveHttp(serverSync, { node: server, secret: SECRET, onWarning: quiet });
  const first = await Node.open({ id: 2, peers: [1] });
  const impostor = await Node.open({ id: 2, peers: [1] });
  const transport = new FetchTransport({ peers: { 1: http.url }, secret: SECRET, timeoutMs: 3_000 });
  try {
    assert.ok((await new SyncManager(first, transport, { onWarning: quiet }).syncOnce())[0]!.ok);
    await rejects(transport.request(1, encodeEnvelope(impostor.prepareSync(1))), "UUID_MISMATCH");
  } finally {
    await serverSync.stop();
    await http.close();
    await Promise.all([server.close(), first.close(), impostor.close()]);
  }
});

test("no address: INVALID_ARGUMENT; a peer that never answers: rejected by the deadline; a caller's abort is honoured", async () => {
  await rejects(new FetchTransport({}).request(9, new Uint8Array(1)), "INVALID_ARGUMENT", /peer 9/);
  const silent: Server = createServer(() => { /* never answers */ });
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
  try {
    const t = new FetchTransport({ peers: { 5: url }, resolve: (p) => (p === 6 ? url : undefined), timeoutMs: 300 });
    let started = Date.now();
    await rejects(t.request(5, new Uint8Array(1)), "IO", /timed out/);
    assert.ok(Date.now() - started < 2_500, `took ${Date.now() - started} ms`);
    const ctrl = new AbortController();
    started = Date.now();
    setTimeout(() => ctrl.abort(new WaveKVError("IO", "caller gave up")), 50);
    await rejects(new FetchTransport({ resolve: () => url, timeoutMs: 10_000 }).push(6, new Uint8Array(1), { signal: ctrl.signal }), "IO", /caller gave up/);
    assert.ok(Date.now() - started < 2_500);
  } finally {
    silent.closeAllConnections();
    await new Promise((r) => silent.close(r));
  }
});

test.run();
