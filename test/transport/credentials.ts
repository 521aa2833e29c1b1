// Scoped client credentials on a real server (127.0.0.1): read-only and prefix-limited
// credentials, refusals (401 unknown, 403 outside scope) that change nothing and log the
// credential's name but never a secret; envelopes take only the cluster secret.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Node } from "../../src/node/node.js";
import { SyncManager } from "../../src/node/manager.js";
import { HttpTransport, serveHttp } from "../../src/transport/http.js";
import { signRequest } from "../../src/transport/auth.js";
import { parseClientKey, parseClientKeys, parseClientKeysFile } from "../../src/transport/credentials.js";
import { KvClient, KvClientError } from "../../src/app/client.js";
import { RequestSigner } from "../../src/transport/fetch.js";

const CLUSTER = "the-cluster-secret-for-peers-only";
const RO = "reader-secret-0123456789";
const APP = "app-writer-secret-0123456789";
const quiet = () => undefined;

async function start() {
  const node = await Node.open({ id: 3, peers: [] });
  const sync = new SyncManager(node, new HttpTransport({ secret: CLUSTER }), { onWarning: quiet });
  const logs: string[] = [];
  const credentials = parseClientKeys([`reader:${RO}:ro`, `app:${APP}:rw:app/`, `app:${APP}:rw:shared/`]);
  const server = await serveHttp(sync, { node, secret: CLUSTER, credentials, onWarning: (m) => logs.push(m) });
  const close = async () => { await sync.stop(); await server.close(); await node.close(); };
  return { node, server, logs, close };
}

async function call(url: string, secret: string, key: string | undefined, method: string, path: string, body?: string) {
  const bytes = body === undefined ? new Uint8Array(0) : new TextEncoder().encode(body);
  const res = await fetch(url + path, { method, headers: signRequest(secret, method, path, bytes, 3, Date.now(), key), body: body === undefined ? undefined : bytes });
  const json = await res.json().catch(() => undefined) as any;
  return { status: res.status, json };
}

test("parseClientKey: the good forms, and one-line errors for the bad ones", () => {
  assert.equal(parseClientKey(`a.b-c_1:${RO}:ro`), { name: "a.b-c_1", secret: RO, mode: "ro", prefixes: [] });
  // The prefix is the rest of the line, colons included.
  assert.equal(parseClientKey(`w:${APP}:rw:tenant:7/`).prefixes, ["tenant:7/"]);
  const bad: [string, RegExp][] = [
    ["nocolons", /expected NAME:SECRET:ro\|rw/],
    [`na me:${RO}:ro`, /name "na me" must be/],
    ["n:short:ro", /secret of credential n is 5 characters; 16 to 1024/],
    [`n:${RO}:admin`, /mode of credential n must be ro or rw/],
    [`n:${RO}:rw:`, /empty prefix/],
  ];
  for (const [text, re] of bad) {
    try {
      parseClientKey(text);
      assert.unreachable(text);
    } catch (e) {
      const m = (e as Error).message;
      assert.match(m, re);
      assert.not.match(m, "\n");
      if (text.includes(RO)) assert.not.match(m, RO, "the secret is never in an error");
    }
  }
  assert.throws(() => parseClientKeys([`n:${RO}:ro`, `n:${APP}:ro`]), /given twice with another secret or mode/);
  assert.throws(() => parseClientKeys([`n:${RO}:ro`, `n:${RO}:ro:x/`]), /both with and without a prefix/);
  const file = parseClientKeysFile(`# clients\n\nreader:${RO}:ro\n  app:${APP}:rw:app/  \n`, "keys.txt");
  assert.equal(file.map((c) => c.name), ["reader", "app"]);
  assert.throws(() => parseClientKeysFile(`reader:${RO}:ro\nbroken\n`, "keys.txt"), /keys\.txt line 2: expected/);
});

test("a read-only credential reads everything and writes nothing; the cluster secret (no key header) keeps full access", async () => {
  const s = await start();
  try {
    await s.node.put("app/a", "1");
    await s.node.put("other/b", "2");
    const ro = (m: string, p: string, b?: string) => call(s.server.url, RO, "reader", m, p, b);
    assert.is((await ro("GET", "/kv/other%2Fb")).json.value, "2");
    assert.equal((await ro("GET", "/kv?prefix=")).json.entries.map((e: any) => e.key).filter((k: string) => !k.startsWith("__")), ["app/a", "other/b"]);
    const put = await ro("PUT", "/kv/other%2Fb", "changed");
    assert.is(put.status, 403);
    assert.is(put.json.code, "FORBIDDEN");
    assert.match(put.json.message, "credential reader is read-only");
    assert.is((await ro("DELETE", "/kv/app%2Fa")).status, 403);
    assert.is(new TextDecoder().decode(s.node.get("other/b")!.value!), "2", "a refused write changes nothing");
    assert.ok(s.node.get("app/a"), "a refused delete changes nothing");
    assert.equal((await ro("GET", "/whoami")).json, { credential: "reader", mode: "ro", prefixes: [] });
    // An older client: cluster secret, no x-wavekv-key header.
    const old = await call(s.server.url, CLUSTER, undefined, "PUT", "/kv/other%2Fb", "3");
    assert.is(old.status, 200);
    assert.equal((await call(s.server.url, CLUSTER, undefined, "GET", "/whoami")).json, { credential: null, mode: "cluster", prefixes: [] });
    // The log names the credential, never a secret.
    const line = s.logs.find((l) => l.includes("read-only"));
    assert.ok(line, s.logs.join("\n"));
    assert.match(line!, "refused PUT /kv: credential reader is read-only");
    assert.not.match(s.logs.join("\n"), "other/b", "log lines name the route, not the key");
    for (const l of s.logs) for (const secret of [RO, APP, CLUSTER]) assert.not.match(l, secret);
  } finally {
    await s.close();
  }
});

test("a prefix-limited credential: inside its prefixes it reads and writes, outside it gets 403, and listings outside are refused", async () => {
  const s = await start();
  try {
    await s.node.put("secret/x", "hidden");
    const app = (m: string, p: string, b?: string) => call(s.server.url, APP, "app", m, p, b);
    assert.is((await app("PUT", "/kv/app%2Fone", "1")).status, 200);
    assert.is((await app("PUT", "/kv?key=shared%2Ftwo", "2")).status, 200);
    assert.is((await app("GET", "/kv/app%2Fone")).json.value, "1");
    for (const [m, p] of [["GET", "/kv/secret%2Fx"], ["PUT", "/kv/secret%2Fx"], ["DELETE", "/kv/secret%2Fx"], ["PUT", "/kv/ap"], ["GET", "/kv?key=secret%2Fx"]] as const) {
      const r = await app(m, p, m === "PUT" ? "overwritten" : undefined);
      assert.is(r.status, 403, `${m} ${p}`);
      assert.match(r.json.message, /credential app (reads|writes) only keys under "app\/", "shared\/"/);
    }
    assert.is(new TextDecoder().decode(s.node.get("secret/x")!.value!), "hidden");
    assert.is(s.node.get("ap"), undefined);
    const all = await app("GET", "/kv?prefix=&limit=10");
    assert.is(all.status, 403, "a listing wider than the scope is refused, not clipped");
    assert.match(all.json.message, "pass prefix= with one of them");
    assert.is((await app("GET", "/kv?prefix=sec")).status, 403);
    const mine = await app("GET", "/kv?prefix=app%2F");
    assert.is(mine.status, 200);
    assert.equal(mine.json.entries.map((e: any) => e.key), ["app/one"]);
    assert.is((await app("GET", "/peers")).status, 200);
    assert.is((await app("DELETE", "/peers/9")).status, 403, "peer administration is the cluster's");
    assert.equal((await app("GET", "/whoami")).json, { credential: "app", mode: "rw", prefixes: ["app/", "shared/"] });
  } finally {
    await s.close();
  }
});

test("envelopes and streams take only the cluster secret; unknown credentials and wrong secrets get 401", async () => {
  const s = await start();
  try {
    for (const [m, p] of [["POST", "/sync"], ["POST", "/push"], ["GET", "/subscribe?from=1"]] as const) {
      const r = await call(s.server.url, RO, "reader", m, p, m === "POST" ? "x" : undefined);
      assert.is(r.status, 403, p);
      assert.match(r.json.message, "this route accepts only the cluster secret, not credential reader");
    }
    const unknown = await call(s.server.url, RO, "nobody", "GET", "/kv/a");
    assert.is(unknown.status, 401);
    assert.match(unknown.json.message, "unknown credential nobody");
    const wrong = await call(s.server.url, CLUSTER, "reader", "GET", "/kv/a");
    assert.is(wrong.status, 401, "a credential's name with another secret");
    assert.match(wrong.json.message, "bad signature for credential reader");
    const malformed = await fetch(s.server.url + "/kv/a", { headers: { ...signRequest(RO, "GET", "/kv/a", new Uint8Array(0), 3), "x-wavekv-key": "bad name!" } });
    assert.is(malformed.status, 401);
    // The browser signer names its credential too.
    const h = await new RequestSigner(RO, "reader").sign("GET", "/whoami", new Uint8Array(0), 3);
    assert.is(h["x-wavekv-key"], "reader");
    assert.equal(await (await fetch(s.server.url + "/whoami", { headers: h })).json(), { credential: "reader", mode: "ro", prefixes: [] });
    // KvClient with a credential.
    const kv = new KvClient(s.server.url, APP, 5_000, { key: "app" });
    assert.is((await kv.put("app/k", "v")).key, "app/k");
    const err = await kv.put("zzz", "v").catch((e: unknown) => e);
    assert.instance(err, KvClientError);
    assert.is((err as KvClientError).status, 403);
  } finally {
    await s.close();
  }
});

test("credentials without a cluster secret are refused at start", async () => {
  const node = await Node.open({ id: 4 });
  try {
    const sync = new SyncManager(node, new HttpTransport({}), { onWarning: quiet });
    const err = await serveHttp(sync, { node, credentials: [parseClientKey(`r:${RO}:ro`)], onWarning: quiet }).catch((e: unknown) => e);
    assert.match((err as Error).message, "client credentials need the cluster secret");
  } finally {
    await node.close();
  }
});

test("POST /kv/_batch with a credential: every key of the batch must be in its scope; read-only ones write none", async () => {
  const s = await start();
  try {
    const batch = (secret: string, key: string, ops: unknown) => call(s.server.url, secret, key, "POST", "/kv/_batch", JSON.stringify(ops));
    const ok = await batch(APP, "app", [{ type: "put", key: "app/x", value: "1" }, { type: "put", key: "shared/y", value: "2" }]);
    assert.is(ok.status, 200);
    assert.equal(ok.json.entries.map((e: any) => e.key), ["app/x", "shared/y"]);
    const out = await batch(APP, "app", [{ type: "put", key: "app/z", value: "1" }, { type: "del", key: "other/b" }]);
    assert.is(out.status, 403);
    assert.match(out.json.message, "credential app writes only keys under");
    assert.not.ok(s.node.get("app/z"), "nothing of a refused batch is written");
    assert.ok(s.logs.some((l) => l.includes("refused POST /kv") && l.includes("credential app")), "the refusal is logged with the credential's name");
    const ro = await batch(RO, "reader", [{ type: "put", key: "app/w", value: "1" }]);
    assert.is(ro.status, 403);
    assert.match(ro.json.message, "credential reader is read-only");
    assert.not.ok(s.node.get("app/w"));
    const metrics = await (await fetch(s.server.url + "/metrics")).text();
    assert.match(metrics, /^wavekv_http_forbidden_total 2$/m, "each 403 is counted");
  } finally {
    await s.close();
  }
});

test.run();
