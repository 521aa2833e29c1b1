// Hostile requests against a served node on 127.0.0.1 (issue 15 items 8, 9, 10, 11, 13 and
// the HTTP side of 3): replays spelled differently, signatures taken to another node,
// unsigned bodies, a spent body budget, hostile query parameters, raw paths, the reserved
// prefix. Every refusal changes nothing.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { Node } from "../../src/node/node.js";
import { SyncManager } from "../../src/node/manager.js";
import { serveHttp, type HttpServer } from "../../src/transport/http.js";
import { sha256Hex, signRequest } from "../../src/transport/auth.js";
import { KvClient } from "../../src/app/client.js";
import { awkwardKeys } from "../helpers/keys.js";

const SECRET = "a-shared-secret-of-some-length";
const quiet = () => undefined;
const enc = (s: string) => new TextEncoder().encode(s);
const text = (n: Node, k: string) => { const v = n.get(k)?.value; return v ? new TextDecoder().decode(v) : undefined; };

async function serve(id: number, opts: { secret?: string; maxBodyBytes?: number; maxBufferedBytes?: number; clock?: () => number; onWarning?: (m: string) => void } = {}) {
  const node = await Node.open({ id, clock: opts.clock });
  const sync = new SyncManager(node, { request: () => Promise.reject(new Error("does not dial out")) }, { onWarning: quiet });
  const http = await serveHttp(sync, { node, secret: opts.secret, maxBodyBytes: opts.maxBodyBytes, maxBufferedBytes: opts.maxBufferedBytes, onWarning: opts.onWarning ?? quiet });
  return { node, http, close: async () => { await sync.stop(); await http.close(); await node.close(); } };
}

/** One request with the path sent byte for byte (node:http does not normalise it, fetch would). */
function rawRequest(server: HttpServer, method: string, path: string, body?: Uint8Array, headers: Record<string, string> = {}): Promise<{ status: number; json: any; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(server.url, { method, path, headers: { ...headers, ...(body ? { "content-length": String(body.length) } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const t = Buffer.concat(chunks).toString("utf8");
        let json: any;
        try { json = JSON.parse(t); } catch { json = t; }
        resolve({ status: res.statusCode!, json, headers: res.headers });
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function metric(server: HttpServer, name: string): Promise<number> {
  const m = new RegExp(`^${name} (\\d+)$`, "m").exec(await (await fetch(server.url + "/metrics")).text());
  assert.ok(m, `/metrics has ${name}`);
  return Number(m![1]);
}

/**
 * Sends headers declaring `declared` body bytes and then `sent` bytes, and reads whatever
 * the server answers (or "closed" when it only closed). The socket is left to the server.
 */
function partialPost(server: HttpServer, path: string, declared: number, sent: number, headers: Record<string, string> = {}): { answer: Promise<string>; socket: ReturnType<typeof connect> } {
  const url = new URL(server.url);
  const socket = connect(Number(url.port), url.hostname);
  const answer = new Promise<string>((resolve) => {
    let got = "";
    socket.on("data", (d) => { got += d.toString("latin1"); });
    socket.on("error", () => undefined);
    socket.on("close", () => resolve(got || "closed"));
    socket.on("connect", () => {
      const head = Object.entries({ host: url.host, "content-length": String(declared), ...headers }).map(([k, v]) => `${k}: ${v}\r\n`).join("");
      socket.write(`POST ${path} HTTP/1.1\r\n${head}\r\n`);
      socket.write(Buffer.alloc(sent, 0x61));
    });
    // The answer is read from the status line, not from the close.
    const check = setInterval(() => { if (/^HTTP\/1\.1 \d{3}/.test(got) && got.includes("\r\n\r\n")) { clearInterval(check); resolve(got); } }, 5);
    socket.on("close", () => clearInterval(check));
  });
  return { answer, socket };
}
const statusOf = (answer: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);

test("a captured signed PUT replayed with its signature uppercased, padded or re-sent is refused; the value stays", async () => {
  const s = await serve(1, { secret: SECRET });
  try {
    const body = enc("old");
    const headers = signRequest(SECRET, "PUT", "/kv/k", body, 1);
    assert.is((await rawRequest(s.http, "PUT", "/kv/k", body, headers)).status, 200);
    await s.node.put("k", "newer");
    const sig = headers["x-wavekv-signature"]!;
    for (const variant of [sig, sig.toUpperCase(), sig + "00", sig + "zz", sig + " ", `${sig.slice(0, 63)}${sig[63]!.toUpperCase()}`]) {
      const r = await rawRequest(s.http, "PUT", "/kv/k", body, { ...headers, "x-wavekv-signature": variant });
      assert.is(r.status, 401, `signature spelled ${JSON.stringify(variant)} replays`);
    }
    // Other fields respelled: the nonce uppercased, the timestamp with a leading zero.
    assert.is((await rawRequest(s.http, "PUT", "/kv/k", body, { ...headers, "x-wavekv-nonce": headers["x-wavekv-nonce"]!.toUpperCase() })).status, 401);
    assert.is((await rawRequest(s.http, "PUT", "/kv/k", body, { ...headers, "x-wavekv-timestamp": "0" + headers["x-wavekv-timestamp"] })).status, 401);
    assert.is(text(s.node, "k"), "newer");
  } finally {
    await s.close();
  }
});

test("a PUT signed for node 1 is refused by node 2; a request without the v2 scheme says to upgrade", async () => {
  const one = await serve(1, { secret: SECRET });
  const two = await serve(2, { secret: SECRET });
  try {
    const body = enc("v");
    const headers = signRequest(SECRET, "PUT", "/kv/k", body, 1);
    const r = await rawRequest(two.http, "PUT", "/kv/k", body, headers);
    assert.is(r.status, 401);
    assert.match(r.json.message, /signed for node 1, this is node 2/);
    assert.is(two.node.get("k"), undefined);
    assert.is((await rawRequest(one.http, "PUT", "/kv/k", body, headers)).status, 200, "node 1 accepts it");
    const { ["x-wavekv-auth"]: _scheme, ...v1 } = signRequest(SECRET, "PUT", "/kv/j", body, 1);
    const old = await rawRequest(one.http, "PUT", "/kv/j", body, v1);
    assert.is(old.status, 401);
    assert.match(old.json.message, /wavekv-hmac-v2/);
  } finally {
    await Promise.all([one.close(), two.close()]);
  }
});

test("many concurrent large unsigned POSTs are refused with 401 before a byte of body is read", async () => {
  const s = await serve(1, { secret: SECRET });
  try {
    const posts = Array.from({ length: 20 }, (_, i) => partialPost(s.http, i % 2 ? "/push" : "/sync", 63 << 20, 256 << 10));
    const answers = await Promise.all(posts.map((p) => p.answer));
    for (const a of answers) assert.is(statusOf(a), 401, a.slice(0, 200));
    posts.forEach((p) => p.socket.destroy());
    assert.is(await metric(s.http, "wavekv_http_body_bytes_read_total"), 0, "no unsigned body byte was read");
    assert.is(await metric(s.http, "wavekv_http_buffered_bytes"), 0);
    assert.ok((await metric(s.http, "wavekv_http_unauthorized_total")) >= 20);
  } finally {
    await s.close();
  }
});

test("refused requests are logged once per reason, not once per request", async () => {
  const lines: string[] = [];
  const s = await serve(1, { secret: SECRET, onWarning: (m) => lines.push(m) });
  try {
    for (let i = 0; i < 25; i++) {
      assert.is((await rawRequest(s.http, "PUT", `/kv/k${i}`, enc("x"), signRequest("not-the-secret-at-all", "PUT", `/kv/k${i}`, enc("x"), 1))).status, 401);
      assert.is((await rawRequest(s.http, "GET", `/kv/k${i}`, undefined, signRequest(SECRET, "GET", `/kv/k${i}`, undefined, 2))).status, 401);
    }
    const refused = lines.filter((l) => /refused requests/.test(l));
    assert.is(refused.filter((l) => /bad signature/.test(l) && !/repeated/.test(l)).length, 1, refused.join("\n"));
    assert.is(refused.filter((l) => /signed for node 2/.test(l) && !/repeated/.test(l)).length, 1, refused.join("\n"));
    assert.ok(refused.length <= 4, `${refused.length} lines for 50 refusals:\n${refused.join("\n")}`);
  } finally {
    await s.close();
  }
});

test("a signed body that does not match its signed digest is 401 and writes nothing", async () => {
  const s = await serve(1, { secret: SECRET });
  try {
    const headers = signRequest(SECRET, "PUT", "/kv/k", enc("signed body"), 1);
    const r = await rawRequest(s.http, "PUT", "/kv/k", enc("swapped body"), headers);
    assert.is(r.status, 401);
    assert.match(r.json.message, /digest/);
    assert.is(s.node.get("k"), undefined);
    // The declared digest is checked, not just present: a well-formed digest of other bytes.
    const forged = { ...headers, "x-wavekv-content-sha256": sha256Hex(enc("swapped body")) };
    assert.is((await rawRequest(s.http, "PUT", "/kv/k", enc("swapped body"), forged)).status, 401);
    assert.is(s.node.get("k"), undefined);
  } finally {
    await s.close();
  }
});

test("bodies in flight share one budget: over it a request gets 503 with Retry-After before it is buffered", async () => {
  const s = await serve(1, { maxBodyBytes: 1 << 20, maxBufferedBytes: 2 << 20 });
  try {
    // Two bodies of 1 MiB declared, half sent: the budget is spent while they trickle.
    const held = [partialPost(s.http, "/kv/a", 1 << 20, 512 << 10), partialPost(s.http, "/kv/b", 1 << 20, 512 << 10)];
    const deadline = Date.now() + 10_000;
    while ((await metric(s.http, "wavekv_http_buffered_bytes")) < 2 << 20) {
      assert.ok(Date.now() < deadline, "the two held bodies never reserved the budget");
      await new Promise((r) => setTimeout(r, 10));
    }
    const third = await rawRequest(s.http, "PUT", "/kv/c", new Uint8Array(1 << 10));
    assert.is(third.status, 503);
    assert.is(third.headers["retry-after"], "1");
    assert.is(third.json.error, "BUSY");
    held.forEach((h) => h.socket.destroy());
    await Promise.all(held.map((h) => h.answer));
    while ((await metric(s.http, "wavekv_http_buffered_bytes")) > 0) {
      assert.ok(Date.now() < deadline, "the budget was not given back");
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.is((await rawRequest(s.http, "PUT", "/kv/c", enc("fits now"))).status, 200);
    assert.is(s.node.get("a"), undefined);
    assert.ok((await metric(s.http, "wavekv_http_busy_total")) >= 1);
  } finally {
    await s.close();
  }
});

test("GET /kv: limit outside 1..10000 or not an integer, and over-long prefix/after, get 400 with the reason", async () => {
  const s = await serve(1);
  try {
    for (let i = 0; i < 30; i++) await s.node.put(`k${String(i).padStart(2, "0")}`, "v");
    for (const limit of ["-1", "0", "10001", "1.5", "1e3", "abc", "", " 5", "99999999999999999999"]) {
      const r = await rawRequest(s.http, "GET", `/kv?limit=${encodeURIComponent(limit)}`);
      assert.is(r.status, 400, `limit=${JSON.stringify(limit)}`);
      assert.match(r.json.message, /limit must be an integer from 1 to 10000/);
    }
    const page = await rawRequest(s.http, "GET", "/kv?limit=10000");
    assert.is(page.status, 200);
    assert.is(page.json.entries.length, 30);
    assert.is((await rawRequest(s.http, "GET", "/kv?limit=7")).json.entries.length, 7);
    for (const name of ["prefix", "after"]) {
      const r = await rawRequest(s.http, "GET", `/kv?${name}=${"x".repeat(5000)}`);
      assert.is(r.status, 400, name);
      assert.match(r.json.message, new RegExp(name));
    }
  } finally {
    await s.close();
  }
});

test("keys come verbatim from the raw path: bad escapes and the empty key are 400, dot segments are keys", async () => {
  const warnings: string[] = [];
  const s = await serve(1, { onWarning: (m) => warnings.push(m) });
  try {
    for (const path of ["/kv/%FF", "/kv/%", "/kv/%E2%82", "/kv/a%2", "/kv/"]) {
      const r = await rawRequest(s.http, "PUT", path, enc("x"));
      assert.is(r.status, 400, path);
      assert.is(r.json.error, "INVALID_ARGUMENT");
    }
    assert.is(s.node.size, 0, "a refused key wrote nothing");
    const cases: [string, string][] = [["/kv/.", "."], ["/kv/%2e", "."], ["/kv/..", ".."], ["/kv/a/../b", "a/../b"], ["/kv/a/./b", "a/./b"], ["/kv/x%2Fy", "x/y"]];
    for (const [path, key] of cases) {
      const put = await rawRequest(s.http, "PUT", path, enc(path));
      assert.is(put.status, 200, path);
      assert.is(put.json.key, key, path);
      assert.is(text(s.node, key), path);
    }
    assert.is(s.node.get(""), undefined);
    assert.is(s.node.get("b"), undefined);
    assert.equal(warnings.filter((w) => /internal error/.test(w)), [], "no request reached the 500 path");
  } finally {
    await s.close();
  }
});

test("PUT and DELETE under __wavekv/ are 403 with a reason; the address book is untouched", async () => {
  const s = await serve(1, { secret: SECRET });
  try {
    await s.node.put("__wavekv/peers/1", "http://127.0.0.1:8001");
    const kv = new KvClient(s.http.url, SECRET);
    for (const [method, path] of [["PUT", "/kv/__wavekv/peers/1"], ["PUT", "/kv/__wavekv%2Fpeers%2F2"], ["DELETE", "/kv/__wavekv/peers/1"], ["PUT", "/kv/__wavekv/anything"]] as const) {
      const body = method === "PUT" ? enc("http://127.0.0.1:9") : undefined;
      const r = await rawRequest(s.http, method, path, body, signRequest(SECRET, method, path, body, 1));
      assert.is(r.status, 403, `${method} ${path}`);
      assert.is(r.json.error, "RESERVED_KEY");
      assert.match(r.json.message, /__wavekv\//);
    }
    try {
      await kv.put("__wavekv/peers/2", "http://127.0.0.1:9");
      assert.unreachable("the client's put went through");
    } catch (e) {
      assert.is((e as { status?: number }).status, 403);
    }
    assert.is(text(s.node, "__wavekv/peers/1"), "http://127.0.0.1:8001");
    assert.is(s.node.get("__wavekv/peers/2"), undefined);
    assert.is((await kv.get("__wavekv/peers/1"))!.value, "http://127.0.0.1:8001", "reading stays allowed");
  } finally {
    await s.close();
  }
});

test("every key KvClient sends round-trips: put, get, scan and delete give back the same key (property)", async () => {
  const s = await serve(1, { secret: SECRET });
  try {
    const kv = new KvClient(s.http.url, SECRET);
    const keys = [...new Set(awkwardKeys(200, 15))];
    for (const key of keys) {
      const put = await kv.put(key, `v:${key}`);
      assert.is(put.key, key, JSON.stringify(key));
      assert.is((await kv.get(key))?.value, `v:${key}`, JSON.stringify(key));
    }
    assert.is(s.node.size, keys.length, "no two keys collapsed into one");
    const scanned: string[] = [];
    for await (const e of kv.scan("", 37)) scanned.push(e.key);
    assert.equal(new Set(scanned), new Set(keys));
    for (const key of keys.slice(0, 20)) assert.is((await kv.del(key))?.key, key, JSON.stringify(key));
  } finally {
    await s.close();
  }
});

test("a put that loses to a newer stored entry is 409 SUPERSEDED with the winning entry", async () => {
  // Node 2's clock runs 60 s ahead (within the drift limit): its entry for k wins over
  // any write node 1 makes now, so node 1's put cannot take effect.
  let now = Date.now();
  const ahead = await Node.open({ id: 2, peers: [1], clock: () => now + 60_000 });
  const s = await serve(1, { clock: () => now });
  try {
    await ahead.put("k", "from the future");
    s.node.applyEnvelope(ahead.prepareSync(1));
    assert.is(text(s.node, "k"), "from the future");
    const r = await rawRequest(s.http, "PUT", "/kv/k", enc("now"));
    assert.is(r.status, 409, JSON.stringify(r.json));
    assert.is(r.json.code, "SUPERSEDED");
    assert.is(r.json.winner.value, "from the future");
    assert.is(r.json.winner.node, 2);
    assert.is(text(s.node, "k"), "from the future");
    now += 1;
  } finally {
    await s.close();
    await ahead.close();
  }
});

test.run();
