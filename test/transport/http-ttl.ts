// Expiry over HTTP and the client (issue 21): PUT /kv/<key>?ttlMs=N, GET shows expiresAt
// (JSON and the raw value's headers), bad ttlMs is a 400 that writes nothing, an expiring
// write replicates over a signed SyncManager round, and the CLI's --ttl syntax.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Node } from "../../src/node/node.js";
import { SyncManager } from "../../src/node/manager.js";
import { HttpTransport, serveHttp } from "../../src/transport/http.js";
import { KvClient, KvClientError } from "../../src/app/client.js";
import { MAX_TTL_MS } from "../../src/core/expiry.js";
import { parseTtl } from "../../src/core/duration.js";
import { WaveKVError } from "../../src/core/errors.js";

const SECRET = "a-shared-secret-of-some-length";
const quiet = () => undefined;

test("PUT ?ttlMs= writes an expiring entry; GET shows expiresAt; the peer gets it over a signed round; it expires on the reader's clock", async () => {
  let now = 1_800_000_000_000;
  const clock = () => now;
  const a = await Node.open({ id: 1, peers: [2], clock });
  const b = await Node.open({ id: 2, peers: [1], clock });
  const ta = new HttpTransport({ secret: SECRET, timeoutMs: 3_000 }), tb = new HttpTransport({ secret: SECRET, timeoutMs: 3_000 });
  const sa = new SyncManager(a, ta, { onWarning: quiet }), sb = new SyncManager(b, tb, { onWarning: quiet });
  const serverA = await serveHttp(sa, { node: a, secret: SECRET, onWarning: quiet });
  const serverB = await serveHttp(sb, { node: b, secret: SECRET, onWarning: quiet });
  ta.setPeer(2, serverB.url);
  tb.setPeer(1, serverA.url);
  try {
    const kv = new KvClient(serverA.url, SECRET);
    const put = await kv.put("k", "v", { ttlMs: 1_000 });
    assert.is(put.expiresAt, now + 1_000);
    assert.is((await kv.get("k"))?.expiresAt, now + 1_000);
    assert.is((await kv.put(".", "dot", { ttlMs: 5 })).expiresAt, now + 5); // the /kv?key= form takes &ttlMs=
    assert.is((await kv.put("plain", "p")).expiresAt, undefined);
    for (const bad of ["0", "-5", "1.5", "abc", String(MAX_TTL_MS + 1), ""]) {
      try {
        await kv.put("bad", "x", { ttlMs: bad as unknown as number });
        assert.unreachable(`ttlMs=${bad} accepted`);
      } catch (e) {
        assert.instance(e, KvClientError);
        assert.equal([(e as KvClientError).status, (e as KvClientError).code], [400, "INVALID_ARGUMENT"], `ttlMs=${bad}`);
      }
    }
    assert.is(await kv.get("bad"), undefined);
    const reports = await sb.syncOnce();
    assert.ok(reports.every((r) => r.ok), JSON.stringify(reports));
    assert.is(b.get("k")?.expiresAt, now + 1_000);
    now += 1_000;
    assert.is(await kv.get("k"), undefined);
    assert.is(b.get("k"), undefined);
    assert.is((await kv.get("plain"))?.value, "p");
  } finally {
    await Promise.all([sa.stop(), sb.stop()]);
    await Promise.all([serverA.close(), serverB.close()]);
    await Promise.all([a.close(), b.close()]);
  }
});

test("GET raw=1 of an expiring entry carries x-wavekv-expires-at", async () => {
  const node = await Node.open({ id: 1 });
  const server = await serveHttp(new SyncManager(node, new HttpTransport({}), { onWarning: quiet }), { node, onWarning: quiet });
  try {
    const e = await node.put("k", "bytes", { ttlMs: 60_000 });
    const res = await fetch(`${server.url}/kv/k?raw=1`);
    assert.is(res.status, 200);
    assert.is(res.headers.get("x-wavekv-expires-at"), String(e.expiresAt));
    assert.is(await res.text(), "bytes");
    await node.put("p", "x");
    assert.is((await fetch(`${server.url}/kv/p?raw=1`)).headers.get("x-wavekv-expires-at"), null);
  } finally {
    await server.close();
    await node.close();
  }
});

test("the CLI's --ttl syntax: a unit or plain ms, checked like ttlMs", () => {
  assert.equal(["500ms", "30s", "5m", "2h", "7d", "1500", " 10s "].map(parseTtl), [500, 30_000, 300_000, 7_200_000, 604_800_000, 1_500, 10_000]);
  for (const bad of ["", "0", "0s", "1.5s", "-1s", "10y", "s", "3650d0", "3651d"]) {
    try {
      parseTtl(bad);
      assert.unreachable(bad);
    } catch (e) {
      assert.instance(e, WaveKVError);
      assert.is((e as WaveKVError).code, "INVALID_ARGUMENT", bad);
    }
  }
});

test.run();
