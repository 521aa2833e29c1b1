/**
 * NATS credentials and TLS pass through (src/transport/nats-conf.ts) against a real
 * nats-server that demands them: user/password, token, nkey (the client's own nkeys
 * helper, offline) and TLS with a CA made at test time by `openssl` (loud SKIP of that
 * case alone when openssl is missing). Each case: two nodes converge with the right
 * settings, a connection without them (or with wrong ones) is one IO error. The settings
 * parser never echoes a value in its errors. Without nats-server: a loud NOT RUN.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Node } from "../../src/node/node.js";
import { SyncManager } from "../../src/node/manager.js";
import { NatsTransport } from "../../src/transport/nats.js";
import { parseNatsConf, type NatsConf } from "../../src/transport/nats-conf.js";
import { WaveKVError } from "../../src/core/errors.js";
import { natsServerPath, startNats, type NatsServer } from "../helpers/nats-server.js";

const SECRET = "a-shared-secret-of-some-length";
const quiet = () => {};

async function until(ok: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`never happened: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Two nodes on `srv` with `conf`: they meet by announcement and a write converges. */
async function converge(srv: NatsServer, cluster: string, conf: NatsConf): Promise<void> {
  const ms: { node: Node; sync: SyncManager; t: NatsTransport }[] = [];
  try {
    for (const id of [1, 2]) {
      const node = await Node.open({ id, peers: [] });
      const t = await NatsTransport.connect({ servers: srv.url, cluster, node: id, secret: SECRET, conf, announceMs: 200, timeoutMs: 2_000, onWarning: quiet });
      const sync = new SyncManager(node, t, { intervalMs: 300, timeoutMs: 2_000, retryMs: 100, maxBackoffMs: 500, pushWindowMs: 20, onWarning: quiet });
      await t.serve(sync, { membership: node, onPeer: (p) => sync.syncSoon(p) });
      sync.start();
      ms.push({ node, sync, t });
    }
    await until(() => ms.every((m) => m.node.peers().length === 1), "membership");
    await ms[0]!.node.put("k", cluster);
    await until(() => new TextDecoder().decode(ms[1]!.node.get("k")?.value ?? new Uint8Array()) === cluster, "the write on node 2");
  } finally {
    for (const m of ms) { await m.sync.stop(); await m.t.close(); await m.node.close(); }
  }
}

/** A connection with `conf` is refused: one IO error, no value of the settings in its message. */
async function refused(srv: NatsServer, conf: NatsConf | undefined, secrets: string[]): Promise<void> {
  const err = await NatsTransport.connect({ servers: srv.url, cluster: "x", node: 9, conf, nats: { reconnect: false, maxReconnectAttempts: 0 } }).then(async (t) => { await t.close(); return null; }, (e) => e);
  assert.ok(err, `connected with ${conf ? Object.keys(conf).join("+") : "no settings"}`);
  assert.is(err.code, "IO", err.message);
  for (const s of secrets) assert.not.ok(err.message.includes(s), "no secret in the error");
}

test("the settings file: each scheme, TLS files, and errors that name the line, never the value", () => {
  assert.equal(parseNatsConf("# comment\nuser = wk\npassword: p w=1\n\ntls_ca = /x/ca.pem\n"), { user: "wk", password: "p w=1", tls_ca: "/x/ca.pem" });
  assert.equal(parseNatsConf("token=abc"), { token: "abc" });
  assert.equal(parseNatsConf("creds = /a/b.creds"), { credsFile: "/a/b.creds" });
  const bad: [string, RegExp][] = [
    ["user = wk", /user and password go together/],
    ["token = SECRETVALUE\nnkey = SECRETVALUE2", /one credential scheme/],
    ["passwd = SECRETVALUE", /line 1: unknown key passwd/],
    ["just SECRETVALUE", /line 1: expected/],
    ["token = a\ntoken = SECRETVALUE", /line 2: token given twice/],
    ["tls_cert = /c.pem", /tls_cert and tls_key go together/],
    ["token =", /token is empty/],
  ];
  for (const [text, why] of bad) {
    let err: unknown;
    try { parseNatsConf(text); } catch (e) { err = e; }
    assert.instance(err, WaveKVError, text);
    assert.is((err as WaveKVError).code, "INVALID_ARGUMENT");
    assert.match((err as Error).message, why);
    assert.not.ok((err as Error).message.includes("SECRETVALUE"), `value echoed: ${(err as Error).message}`);
  }
});

if (!natsServerPath) {
  console.log("\n!! test/transport/nats-auth.ts NOT RUN: no nats-server binary (apt-get install -y nats-server, or set WAVEKV_NATS_SERVER)\n");
} else {
  test("user and password", async () => {
    const srv = await startNats(`authorization { user: "wk", password: "pw-secret-1" }`);
    try {
      await converge(srv, "a1", { user: "wk", password: "pw-secret-1" });
      await refused(srv, undefined, []);
      await refused(srv, { user: "wk", password: "wrong-pw-2" }, ["wrong-pw-2"]);
    } finally {
      await srv.close();
    }
  });

  test("token", async () => {
    const srv = await startNats(`authorization { token: "tok-secret-3" }`);
    try {
      await converge(srv, "a2", { token: "tok-secret-3" });
      await refused(srv, undefined, []);
      await refused(srv, { token: "tok-wrong-4" }, ["tok-wrong-4"]);
    } finally {
      await srv.close();
    }
  });

  test("nkey (a user key pair made by the client's nkeys helper)", async () => {
    const { nkeys } = await import("@nats-io/transport-node");
    const user = nkeys.createUser();
    const other = nkeys.createUser();
    const srv = await startNats(`authorization { users = [ { nkey: "${user.getPublicKey()}" } ] }`);
    try {
      const seed = new TextDecoder().decode(user.getSeed());
      await converge(srv, "a3", { nkey: seed });
      await refused(srv, undefined, []);
      await refused(srv, { nkey: new TextDecoder().decode(other.getSeed()) }, [seed]);
    } finally {
      await srv.close();
    }
  });

  const openssl = ["/usr/bin/openssl", "/usr/local/bin/openssl"].find((p) => spawnSync(p, ["version"]).status === 0);
  if (!openssl) {
    console.log("\n!! test/transport/nats-auth.ts: TLS case SKIPPED: no openssl to make a test CA (node:crypto cannot issue X.509 certificates)\n");
  } else {
    test("TLS with a CA made at test time: trusted with tls_ca, refused without", async () => {
      const dir = mkdtempSync(join(tmpdir(), "wavekv-nats-tls-"));
      const f = (n: string) => join(dir, n);
      const run = (...args: string[]) => {
        const r = spawnSync(openssl, args, { cwd: dir });
        if (r.status !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr}`);
      };
      writeFileSync(f("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
      run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", f("ca.key"), "-out", f("ca.pem"), "-days", "1", "-subj", "/CN=wavekv test CA");
      run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", f("server.key"), "-out", f("server.csr"), "-subj", "/CN=127.0.0.1");
      run("x509", "-req", "-in", f("server.csr"), "-CA", f("ca.pem"), "-CAkey", f("ca.key"), "-CAcreateserial", "-out", f("server.pem"), "-days", "1", "-extfile", f("san.ext"));
      const srv = await startNats(`tls { cert_file: "${f("server.pem")}", key_file: "${f("server.key")}", timeout: 2 }`);
      try {
        await converge(srv, "a4", { tls_ca: f("ca.pem") });
        await refused(srv, undefined, []); // the test CA is not a system CA
      } finally {
        await srv.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
}

test.run();
