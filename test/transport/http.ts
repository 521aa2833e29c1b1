// HTTP transport and server on 127.0.0.1: auth, body limits, error codes, sync.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { request as httpRequest } from "node:http";
import { Node } from "../../src/node/node.js";
import { SyncManager } from "../../src/node/manager.js";
import { HttpTransport, serveHttp, type HttpServer } from "../../src/transport/http.js";
import { signRequest } from "../../src/transport/auth.js";
import { encodeEnvelope } from "../../src/sync/envelope.js";
import { KvClient } from "../../src/app/client.js";

const SECRET = "a-shared-secret-of-some-length";
const quiet = () => undefined;

async function startPair(secret: string | undefined, maxBodyBytes?: number) {
  const a = await Node.open({ id: 1, peers: [2] });
  const b = await Node.open({ id: 2, peers: [1] });
  const transportA = new HttpTransport({ secret, timeoutMs: 3_000 });
  const transportB = new HttpTransport({ secret, timeoutMs: 3_000 });
  const syncA = new SyncManager(a, transportA, { onWarning: quiet });
  const syncB = new SyncManager(b, transportB, { onWarning: quiet });
  const serverA = await serveHttp(syncA, { node: a, secret, maxBodyBytes, onWarning: quiet });
  const serverB = await serveHttp(syncB, { node: b, secret, maxBodyBytes, onWarning: quiet });
  transportA.setPeer(2, serverB.url);
  transportB.setPeer(1, serverA.url);
  const close = async () => {
    await Promise.all([syncA.stop(), syncB.stop()]);
    await Promise.all([serverA.close(), serverB.close()]);
    await Promise.all([a.close(), b.close()]);
  };
  return { a, b, syncA, syncB, serverA, serverB, close };
}

async function raw(server: HttpServer, method: string, path: string, body?: Uint8Array, headers: Record<string, string> = {}) {
  const res = await fetch(server.url + path, { method, body: body as Uint8Array<ArrayBuffer> | undefined, headers });
  const text = await res.text();
  let json: any;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: res.status, json };
}

test("two nodes converge over HTTP with a shared secret", async () => {
  const p = await startPair(SECRET);
  try {
    await p.a.put("x", "from a");
    await p.b.put("y", "from b");
    await p.b.delete("y");
    const reports = await p.syncA.syncOnce();
    assert.is(reports.length, 1);
    assert.ok(reports[0]!.ok, reports[0]!.error);
    assert.is(p.a.digest(), p.b.digest());
    assert.is(new TextDecoder().decode(p.b.get("x")!.value!), "from a");
    assert.is(p.a.getIncludingTombstones("y")!.value, null);
  } finally {
    await p.close();
  }
});

test("unsigned, wrongly signed, stale and replayed requests get 401 and change nothing", async () => {
  const p = await startPair(SECRET);
  try {
    const digest = p.a.digest();
    const body = new TextEncoder().encode("v");
    assert.is((await raw(p.serverA, "PUT", "/kv/k", body)).status, 401);
    assert.is((await raw(p.serverA, "PUT", "/kv/k", body, signRequest("wrong-secret-wrong-secret", "PUT", "/kv/k", body, 1))).status, 401);
    assert.is((await raw(p.serverA, "PUT", "/kv/k", body, signRequest(SECRET, "PUT", "/kv/k", body, 1, Date.now() - 120_000))).status, 401);
    // A signature for another body or path does not verify.
    assert.is((await raw(p.serverA, "PUT", "/kv/k", body, signRequest(SECRET, "PUT", "/kv/other", body, 1))).status, 401);
    assert.is((await raw(p.serverA, "GET", "/kv?prefix=")).status, 401, "reads need a signature too");
    // A sync request signed with the wrong secret: refused, nothing merged.
    await p.b.put("from-b", "1");
    const wrong = new HttpTransport({ peers: { 1: p.serverA.url }, secret: "not-the-secret-at-all" });
    let failed = false;
    try { await wrong.request(1, encodeEnvelope(p.b.prepareSync(1))); } catch { failed = true; }
    assert.ok(failed);
    assert.is(p.a.digest(), digest);
    assert.is(p.a.get("k"), undefined);
    // The same signed request twice: the replay is refused.
    const headers = signRequest(SECRET, "PUT", "/kv/k", body, 1);
    assert.is((await raw(p.serverA, "PUT", "/kv/k", body, headers)).status, 200);
    await p.a.put("k", "newer");
    assert.is((await raw(p.serverA, "PUT", "/kv/k", body, headers)).status, 401);
    assert.is(new TextDecoder().decode(p.a.get("k")!.value!), "newer");
    // /status and /metrics stay open.
    assert.is((await raw(p.serverA, "GET", "/status")).status, 200);
    const metrics = await raw(p.serverA, "GET", "/metrics");
    assert.is(metrics.status, 200);
    assert.match(String(metrics.json), /wavekv_http_unauthorized_total [1-9]/);
  } finally {
    await p.close();
  }
});

test("malformed sync bodies get 400 BAD_ENVELOPE, a reused node id 409", async () => {
  const p = await startPair(undefined);
  try {
    const junk = await raw(p.serverA, "POST", "/sync", new Uint8Array([1, 2, 3, 4, 5]));
    assert.is(junk.status, 400);
    assert.is(junk.json.error, "BAD_ENVELOPE");
    await p.syncB.syncOnce(); // node 2's uuid is now on record at node 1
    const impostor = await Node.open({ id: 2 });
    const res = await raw(p.serverA, "POST", "/sync", encodeEnvelope(impostor.prepareSync(1)));
    assert.is(res.status, 409);
    assert.is(res.json.error, "UUID_MISMATCH");
    await impostor.close();
  } finally {
    await p.close();
  }
});

test("an oversized body is refused with 413 before it is buffered", async () => {
  const p = await startPair(undefined, 1 << 20);
  try {
    // Declared too large: refused from the header alone.
    const declared = await raw(p.serverA, "POST", "/sync", new Uint8Array((1 << 20) + 1));
    assert.is(declared.status, 413);
    // Streamed without a length: the server stops reading past the limit. Offer 1 GiB
    // of junk in 1 MiB chunks and count how much the server let us send.
    const chunk = new Uint8Array(1 << 20).fill(0x61);
    const before = process.memoryUsage().rss;
    const result = await new Promise<{ status?: number; sent: number }>((resolve) => {
      let sent = 0;
      let status: number | undefined;
      const req = httpRequest(p.serverA.url + "/sync", { method: "POST", headers: { "transfer-encoding": "chunked" } }, (res) => {
        status = res.statusCode;
        res.resume();
        res.on("end", () => resolve({ status, sent }));
      });
      req.on("error", () => resolve({ status, sent }));
      const pump = () => {
        while (sent < 1024 * (1 << 20)) {
          if (status !== undefined || req.destroyed) return;
          sent += chunk.length;
          if (!req.write(chunk)) { req.once("drain", pump); return; }
        }
        req.end();
      };
      pump();
    });
    assert.ok(result.sent < 256 * (1 << 20), `the server read ${result.sent >> 20} MiB before refusing`);
    if (result.status !== undefined) assert.is(result.status, 413);
    assert.ok(process.memoryUsage().rss - before < 512 * (1 << 20), "memory stayed bounded");
    assert.is(p.a.size, 0);
  } finally {
    await p.close();
  }
});

test("the key-value API and its client", async () => {
  const p = await startPair(SECRET);
  try {
    const kv = new KvClient(p.serverA.url, SECRET);
    const put = await kv.put("dir/a", "1");
    assert.is(put.node, 1);
    await kv.put("dir/b", new Uint8Array([0xff, 0xfe]));
    await kv.put("dir/c", "3");
    assert.is((await kv.get("dir/a"))!.value, "1");
    assert.is((await kv.get("dir/b"))!.valueBase64, Buffer.from([0xff, 0xfe]).toString("base64"));
    assert.is(await kv.get("missing"), undefined);
    await kv.del("dir/c");
    const keys: string[] = [];
    for await (const e of kv.scan("dir/", 1)) keys.push(e.key);
    assert.equal(keys, ["dir/a", "dir/b"]);
    const st = await kv.status();
    assert.is(st.keys, 2);
    assert.is(st.digest, p.a.digest());
  } finally {
    await p.close();
  }
});

/** A GET signed for node 1 (serverA), read as bytes. */
async function signedGet(server: HttpServer, path: string, headers: Record<string, string> = {}) {
  const res = await fetch(server.url + path, { headers: { ...signRequest(SECRET, "GET", path, new Uint8Array(0), 1), ...headers } });
  return { status: res.status, headers: res.headers, bytes: new Uint8Array(await res.arrayBuffer()) };
}

test("GET /kv/<key> raw: ?raw=1 or Accept: application/octet-stream gives the value's bytes, its stamp in headers", async () => {
  const p = await startPair(SECRET);
  try {
    const every = Uint8Array.from({ length: 256 }, (_, i) => i); // not UTF-8: JSON would carry it as valueBase64
    const put = await p.a.put("bin/all", every);
    await p.a.put(".", every.slice().reverse());
    await p.a.put("empty", new Uint8Array(0));
    await p.a.put("gone", "x");
    await p.a.delete("gone");
    const digest = p.a.digest();
    const expectRaw = (r: Awaited<ReturnType<typeof signedGet>>, value: Uint8Array, what: string) => {
      assert.is(r.status, 200, what);
      assert.is(r.headers.get("content-type"), "application/octet-stream", what);
      assert.is(r.headers.get("content-length"), String(value.length), what);
      assert.equal([...r.bytes], [...value], what);
    };
    const byQuery = await signedGet(p.serverA, "/kv/bin%2Fall?raw=1");
    expectRaw(byQuery, every, "?raw=1");
    assert.is(byQuery.headers.get("x-wavekv-timestamp"), String(put.timestamp));
    assert.is(byQuery.headers.get("x-wavekv-node"), "1");
    assert.is(byQuery.headers.get("x-wavekv-seq"), String(put.seq));
    assert.is(byQuery.headers.get("x-content-type-options"), "nosniff", "a browser must not render a value as a page");
    expectRaw(await signedGet(p.serverA, "/kv/bin%2Fall", { accept: "application/octet-stream" }), every, "Accept");
    expectRaw(await signedGet(p.serverA, "/kv/bin%2Fall?raw=true", { accept: "application/json" }), every, "raw=true wins over Accept");
    // The ?key= form (keys no URL client can put in a path) takes raw=1 in either order.
    expectRaw(await signedGet(p.serverA, "/kv?key=.&raw=1"), every.slice().reverse(), "?key=.&raw=1");
    expectRaw(await signedGet(p.serverA, "/kv?raw=1&key=."), every.slice().reverse(), "?raw=1&key=.");
    expectRaw(await signedGet(p.serverA, "/kv/empty?raw=1"), new Uint8Array(0), "empty value");
    // JSON stays the default, and what a client prefers.
    const json = await signedGet(p.serverA, "/kv/bin%2Fall", { accept: "application/json, application/octet-stream;q=0.5" });
    assert.match(json.headers.get("content-type") ?? "", /^application\/json/);
    assert.is(JSON.parse(new TextDecoder().decode(json.bytes)).valueBase64, Buffer.from(every).toString("base64"));
    assert.is((await signedGet(p.serverA, "/kv/bin%2Fall?raw=0", { accept: "application/octet-stream" })).headers.get("content-type"), "application/json", "raw=0 asks for JSON");
    // Absent and deleted keys: 404 as before (JSON error body).
    for (const path of ["/kv/missing?raw=1", "/kv/gone?raw=1", "/kv?key=..&raw=1"]) {
      const r = await signedGet(p.serverA, path, { accept: "application/octet-stream" });
      assert.is(r.status, 404, path);
      assert.is(JSON.parse(new TextDecoder().decode(r.bytes)).code, "NOT_FOUND", path);
    }
    // Hostile or confused requests: refused, nothing changes.
    const bad = await signedGet(p.serverA, "/kv/bin%2Fall?raw=yes");
    assert.is(bad.status, 400);
    assert.match(new TextDecoder().decode(bad.bytes), /raw/);
    assert.is((await signedGet(p.serverA, "/kv?prefix=bin&raw=1")).status, 400, "a listing has no raw form");
    assert.is((await raw(p.serverA, "GET", "/kv/bin%2Fall?raw=1")).status, 401, "unsigned");
    // The query is signed: a signature for the JSON read does not buy the raw one.
    const jsonSig = signRequest(SECRET, "GET", "/kv/bin%2Fall", new Uint8Array(0), 1);
    assert.is((await raw(p.serverA, "GET", "/kv/bin%2Fall?raw=1", undefined, jsonSig)).status, 401);
    assert.is(p.a.digest(), digest);
  } finally {
    await p.close();
  }
});

test("GET /kv?internal=0 leaves out __wavekv/ keys, pages included; internal=1 (the default) keeps them", async () => {
  const p = await startPair(undefined);
  try {
    // Around the reserved range in key order: "A" < "__wavekv/" < "a".
    await p.a.put("A", "1");
    await p.a.put("__wavekv/peers/1", "http://127.0.0.1:1");
    await p.a.put("a", "2");
    const listed = async (q: string) => (await raw(p.serverA, "GET", `/kv?${q}`)).json as { entries: { key: string }[]; more: boolean };
    const all = (await listed("prefix=")).entries.map((e) => e.key);
    assert.ok(all.includes("__wavekv/peers/1"), all.join(", "));
    assert.equal((await listed("prefix=&internal=1")).entries.map((e) => e.key), all);
    assert.equal((await listed("prefix=&internal=0")).entries.map((e) => e.key), ["A", "a"]);
    // One per page: the page after "A" is "a", and it is the last.
    const second = await listed("prefix=&internal=0&limit=1&after=A");
    assert.equal([second.entries.map((e) => e.key), second.more], [["a"], false]);
    assert.equal((await listed("prefix=__wavekv/&internal=0")).entries, []);
    const bad = await raw(p.serverA, "GET", "/kv?prefix=&internal=no");
    assert.is(bad.status, 400);
    assert.match(bad.json.message, /internal/);
  } finally {
    await p.close();
  }
});

test("a dead peer fails the round within the timeout", async () => {
  const a = await Node.open({ id: 1, peers: [9] });
  // 127.0.0.1 port 9 (discard) is closed here: connection refused, or the timeout.
  const sync = new SyncManager(a, new HttpTransport({ peers: { 9: "http://127.0.0.1:9" }, timeoutMs: 500 }), { timeoutMs: 1_000, onWarning: quiet });
  const t = Date.now();
  const [r] = await sync.syncOnce();
  assert.is(r!.ok, false);
  assert.ok(Date.now() - t < 3_000);
  await sync.stop();
  await a.close();
});

test.run();
