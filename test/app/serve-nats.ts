/**
 * `serve --nats` with credentials (docs/design/0025): the settings come from a file
 * (`--nats-conf`), never from the command line or a URL, and show in no log line; NATS
 * peers are discovered members (bounded, status says `discovered`), not configured ones.
 * Real processes of the CLI (src/app/cli.ts under the test's own runtime) and in-process
 * servers against a nats-server that demands a password. Without it: a loud NOT RUN.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer, readNatsConf } from "../../src/app/serve.js";
import { natsServerPath, startNats } from "../helpers/nats-server.js";
import { watch } from "../helpers/procs.js";

const cli = fileURLToPath(new URL("../../src/app/cli.ts", import.meta.url));
const base = [...process.execArgv, cli];
const PASSWORD = "pw-Secret-7e1";
const dir = mkdtempSync(join(tmpdir(), "wavekv-serve-nats-"));
const confFile = join(dir, "nats.conf");
writeFileSync(confFile, `# test\nuser = wk\npassword = ${PASSWORD}\n`, { mode: 0o600 });

test("--nats-conf: an unreadable or bad file is one line naming the file, never a value", () => {
  const missing = spawnSync(process.execPath, [...base, "serve", "--id", "1", "--port", "0", "--nats", "nats://127.0.0.1:1", "--cluster", "c", "--nats-conf", join(dir, "nope.conf")], { encoding: "utf8", timeout: 30_000 });
  assert.is(missing.status, 1);
  assert.match(missing.stderr, /nope\.conf/);
  const badFile = join(dir, "bad.conf");
  writeFileSync(badFile, `user = wk\npasswd = ${PASSWORD}\n`);
  const bad = spawnSync(process.execPath, [...base, "serve", "--id", "1", "--port", "0", "--nats", "nats://127.0.0.1:1", "--cluster", "c", "--nats-conf", badFile], { encoding: "utf8", timeout: 30_000 });
  assert.is(bad.status, 1);
  assert.match(bad.stderr, /line 2: unknown key passwd/);
  assert.not.ok(bad.stderr.includes(PASSWORD), bad.stderr);
  assert.equal(readNatsConf(confFile), { user: "wk", password: PASSWORD });
});

test("a --nats URL with user:pass@ is refused without echoing the password", async () => {
  const logs: string[] = [];
  const err = await startServer({ id: 1, port: 0, nats: `nats://wk:${PASSWORD}@127.0.0.1:1`, cluster: "c", log: (l) => logs.push(l) }).then(() => null, (e) => e);
  assert.is(err?.code, "INVALID_ARGUMENT");
  assert.match(err.message, /--nats-conf/);
  assert.not.ok(err.message.includes(PASSWORD));
  assert.not.ok(logs.join("\n").includes(PASSWORD));
});

if (!natsServerPath) {
  console.log("\n!! test/app/serve-nats.ts NOT RUN: no nats-server binary (apt-get install -y nats-server)\n");
} else {
  test("in-process servers with natsConf: peers from NATS are discovered members, and no log line holds the password", async () => {
    const srv = await startNats(`authorization { user: "wk", password: "${PASSWORD}" }`);
    const logs: string[] = [];
    const conf = readNatsConf(confFile);
    const servers = [];
    try {
      for (const id of [1, 2, 3]) servers.push(await startServer({ id, port: 0, nats: srv.url, cluster: "s1", natsConf: conf, intervalMs: 300, timeoutMs: 2_000, pushWindowMs: 20, console: false, log: (l) => logs.push(l) }));
      const until = async (ok: () => boolean, what: string) => {
        for (let i = 0; !ok(); i++) {
          if (i > 800) throw new Error(`never happened: ${what}`);
          await new Promise((r) => setTimeout(r, 25));
        }
      };
      await until(() => servers.every((s) => s.node.peers().length === 2), "membership from announcements");
      for (const s of servers) assert.ok(s.node.status().peers.every((p) => p.discovered), "NATS peers are discovered, not configured");
      await servers[0]!.node.put("k", "over nats");
      await until(() => servers.every((s) => s.node.get("k") !== undefined), "the write everywhere");
      assert.match(logs.join("\n"), /and NATS nats:\/\/127\.0\.0\.1:\d+ cluster s1/);
      assert.not.ok(logs.join("\n").includes(PASSWORD), "no log line holds the password");
    } finally {
      for (const s of servers) await s.stop();
      await srv.close();
    }
  });

  test("the CLI: serve --nats --nats-conf against a server that demands a password; refused without it", async () => {
    const srv = await startNats(`authorization { user: "wk", password: "${PASSWORD}" }`);
    const serve = (id: string, ...extra: string[]) => watch(spawn(process.execPath, [...base, "serve", "--id", id, "--port", "0", "--nats", srv.url, "--cluster", "cli", "--interval", "500", ...extra], { stdio: ["ignore", "pipe", "pipe"] }));
    const nodes = [serve("1", "--nats-conf", confFile), serve("2", "--nats-conf", confFile)];
    try {
      const [u1, u2] = await Promise.all(nodes.map(async (n) => (await n.waitFor(/serving (http:\S+).* and NATS/, 20_000))[1]!));
      const put = spawnSync(process.execPath, [...base, "put", "over", "nats", "--url", u1!], { encoding: "utf8", timeout: 30_000 });
      assert.is(put.status, 0, put.stderr);
      for (let i = 0; ; i++) {
        const got = spawnSync(process.execPath, [...base, "get", "over", "--url", u2!], { encoding: "utf8", timeout: 30_000 });
        if (got.status === 0) { assert.is(JSON.parse(got.stdout).value, "nats"); break; }
        if (i > 100) assert.unreachable(`never replicated: ${nodes[1]!.output()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const noCreds = spawnSync(process.execPath, [...base, "serve", "--id", "3", "--port", "0", "--nats", srv.url, "--cluster", "cli"], { encoding: "utf8", timeout: 30_000 });
      assert.is(noCreds.status, 1);
      assert.match(noCreds.stderr, /cannot connect to NATS/);
      for (const n of nodes) assert.not.ok(n.output().includes(PASSWORD), "no output line holds the password");
    } finally {
      for (const n of nodes) { n.child.kill("SIGTERM"); await n.exited; }
      await srv.close();
    }
  });
}

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
