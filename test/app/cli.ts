// The command line, run as a user would: child processes on 127.0.0.1.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { randomKeys } from "../helpers/keys.js";
import { Node } from "../../src/node/node.js";
import { natsServerPath, startNats } from "../helpers/nats-server.js";
import { watch } from "../helpers/procs.js";

const cli = fileURLToPath(new URL("../../src/app/cli.ts", import.meta.url));
const base = [...process.execArgv, cli];
const run = (...args: string[]) => spawnSync(process.execPath, [...base, ...args], { encoding: "utf8", timeout: 30_000 });
/** The same, without blocking: several CLI processes at once. */
const runAsync = (...args: string[]) => new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
  const child = spawn(process.execPath, [...base, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "", stderr = "";
  child.stdout!.on("data", (d) => { stdout += d; });
  child.stderr!.on("data", (d) => { stderr += d; });
  child.once("close", (status) => resolve({ status, stdout, stderr }));
});

test("--help on every command", () => {
  const top = run("--help");
  assert.is(top.status, 0, top.stderr);
  for (const cmd of ["serve", "put", "get", "del", "scan", "status", "peers", "demo", "filesync", "inspect", "bench"]) {
    assert.match(top.stdout, cmd);
    const r = run(cmd, "--help");
    assert.is(r.status, 0, `${cmd} --help: ${r.stderr}`);
    assert.match(r.stdout, /Usage: wavekv/);
  }
  const bad = run("serve", "--id", "nope");
  assert.is.not(bad.status, 0);
  assert.match(bad.stderr, /integer/);
});

test("serve, then put/get/del/scan/status through the CLI client, graceful stop, inspect", async () => {
  const root = mkdtempSync(join(tmpdir(), "wavekv-cli-"));
  const secretFile = join(root, "secret");
  writeFileSync(secretFile, "0123456789abcdef0123456789abcdef\n");
  const dir = join(root, "data");
  const child = spawn(process.execPath, [...base, "serve", "--id", "5", "--port", "0", "--dir", dir, "--secret-file", secretFile], { stdio: ["ignore", "pipe", "pipe"] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => reject(new Error(`serve did not start: ${out}`)), 20_000);
      child.stdout!.on("data", (d) => { out += d; const m = /serving (http:\S+)/.exec(out); if (m) { clearTimeout(timer); resolve(m[1]!); } });
      child.stderr!.on("data", (d) => { out += d; });
    });
    const c = (...args: string[]) => run(...args, "--url", url, "--secret-file", secretFile);
    assert.is(c("put", "greeting", "hello").status, 0);
    assert.is(c("put", "g2", "x").status, 0);
    const got = c("get", "greeting");
    assert.is(got.status, 0, got.stderr);
    assert.is(JSON.parse(got.stdout).value, "hello");
    assert.is(c("del", "g2").status, 0);
    assert.is(c("get", "g2").status, 1, "a deleted key is not found");
    const scan = c("scan", "g");
    assert.equal(scan.stdout.trim().split("\n").map((l) => JSON.parse(l).key), ["greeting"]);
    const st = JSON.parse(c("status").stdout);
    assert.is(st.id, 5);
    assert.equal([st.keys, st.reservedKeys], [1, 1], "greeting; this node's published address is bookkeeping, counted apart");
    assert.is(st.wal, true);
    const unsigned = run("get", "greeting", "--url", url);
    assert.is.not(unsigned.status, 0, "without the secret the client is refused");
    process.kill(child.pid!, "SIGTERM"); // not child.kill: Deno then reports the signal, not the exit code
    const code = await new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
    assert.is(code, 0, "SIGTERM stops sync, flushes and exits 0");
    const inspect = run("inspect", dir);
    assert.is(inspect.status, 0, inspect.stdout + inspect.stderr);
    assert.match(inspect.stdout, /node 5|node_5/);
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
    rmSync(root, { recursive: true, force: true });
  }
});

/** Starts `serve` in a child; resolves its URL. */
async function startServe(args: string[]) {
  const child = spawn(process.execPath, [...base, "serve", "--port", "0", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${out}`)), 20_000);
    child.stdout!.on("data", (d) => { out += d; const m = /serving (http:\S+)/.exec(out); if (m) { clearTimeout(timer); resolve(m[1]!); } });
    child.stderr!.on("data", (d) => { out += d; });
  });
  return { child, url, output: () => out };
}

const oneLine = (r: { stderr: string }) => {
  assert.is(r.stderr.trim().split("\n").length, 1, `one line, got: ${r.stderr}`);
  assert.not.match(r.stderr, /\n\s+at /, "no stack trace");
};

test("keys a URL parser would fold are reachable from the CLI; __wavekv/ is refused in one line; peers list and remove", async () => {
  const root = mkdtempSync(join(tmpdir(), "wavekv-cli-"));
  const secretFile = join(root, "secret");
  writeFileSync(secretFile, "0123456789abcdef0123456789abcdef\n");
  const s = await startServe(["--id", "6", "--secret-file", secretFile, "--peer", "9=http://127.0.0.1:9"]);
  try {
    const c = (...args: string[]) => run(...args, "--url", s.url, "--secret-file", secretFile);
    // Property: "." and ".." plus random awkward keys (a fresh seed each run, printed on failure).
    const seed = Date.now() % 100_000;
    const random = randomKeys(4, seed);
    await Promise.all([".", "..", ...random].map(async (key) => {
      const opts = ["--url", s.url, "--secret-file", secretFile];
      const put = await runAsync("put", ...opts, "--", key, `v ${key}`);
      assert.is(put.status, 0, `seed ${seed}: put ${JSON.stringify(key)}: ${put.stderr}`);
      const got = await runAsync("get", ...opts, "--", key);
      assert.is(got.status, 0, `seed ${seed}: get ${JSON.stringify(key)}: ${got.stderr}`);
      assert.equal([JSON.parse(got.stdout).key, JSON.parse(got.stdout).value], [key, `v ${key}`], `seed ${seed}`);
    }));
    const reserved = c("put", "__wavekv/peers/6", "http://127.0.0.1:9");
    assert.is(reserved.status, 1);
    oneLine(reserved);
    assert.match(reserved.stderr, /403 keys under __wavekv\//);
    const peers = c("peers", "list");
    assert.is(peers.status, 0, peers.stderr);
    const list = peers.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(list.map((p) => [p.id, p.address]), [[9, "http://127.0.0.1:9"]]);
    const removed = c("peers", "remove", "9");
    assert.is(removed.status, 0, removed.stderr);
    assert.is(c("peers").stdout.trim(), "", "no peers left");
    const again = c("peers", "remove", "9");
    assert.is(again.status, 1);
    assert.match(again.stderr, /not a peer/);
  } finally {
    s.child.kill("SIGKILL");
    rmSync(root, { recursive: true, force: true });
  }
});

test("serve that cannot start prints one line and exits 1; --debug adds the stack", () => {
  const root = mkdtempSync(join(tmpdir(), "wavekv-cli-"));
  try {
    const file = join(root, "a-file");
    writeFileSync(file, "not a directory");
    const r = run("serve", "--id", "1", "--port", "0", "--dir", join(file, "data"));
    assert.is(r.status, 1);
    oneLine(r);
    assert.match(r.stderr, /^wavekv: /);
    const debug = run("serve", "--id", "1", "--port", "0", "--dir", join(file, "data"), "--debug");
    assert.is(debug.status, 1);
    assert.match(debug.stderr, /\n\s+at /, "--debug shows the stack");
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("serve refuses a directory whose snapshots are gone in one line naming --accept-data-loss, opens with it; --max-keys limits the store", async () => {
  const root = mkdtempSync(join(tmpdir(), "wavekv-cli-"));
  const dir = join(root, "data");
  try {
    const node = await Node.open({ id: 4, dir, fsync: "never", onWarning: () => undefined });
    await node.put("a", "1");
    await node.persist();
    await node.put("b", "2");
    await node.persist();
    await node.put("c", "3");
    await node.close();
    for (const f of readdirSync(dir)) if (f.includes(".snapshot")) rmSync(join(dir, f));
    const refused = run("serve", "--id", "4", "--port", "0", "--dir", dir);
    assert.is(refused.status, 1);
    oneLine(refused);
    assert.match(refused.stderr, /MISSING_SNAPSHOT/);
    assert.match(refused.stderr, /--accept-data-loss/);
    const s = await startServe(["--id", "4", "--dir", dir, "--accept-data-loss", "--max-keys", "2", "--fsync", "never"]);
    try {
      assert.match(s.output(), /DATA LOSS ACCEPTED/);
      const c = (...args: string[]) => run(...args, "--url", s.url);
      assert.is(JSON.parse(c("get", "c").stdout).value, "3", "the WAL's writes after the lost snapshots are there");
      assert.is(c("put", "d", "4").status, 0, "a second user key fits in --max-keys 2");
      const full = c("put", "e", "5");
      assert.is(full.status, 1, "a third does not");
      oneLine(full);
      assert.match(full.stderr, /STORE_FULL|maxKeys/);
    } finally {
      s.child.kill("SIGKILL");
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test("serve --nats --cluster: two nodes with no --peer replicate over NATS; --nats without --cluster is one line", async () => {
  const bad = run("serve", "--id", "1", "--port", "0", "--nats", "nats://127.0.0.1:1");
  assert.is(bad.status, 1);
  oneLine(bad);
  assert.match(bad.stderr, /--cluster/);
  if (!natsServerPath) return void console.log("\n!! test/app/cli.ts serve --nats NOT RUN: no nats-server binary (apt-get install -y nats-server)\n");
  const srv = await startNats();
  const serve = (id: string) => watch(spawn(process.execPath, [...base, "serve", "--id", id, "--port", "0", "--nats", srv.url, "--cluster", "cli", "--interval", "500"], { stdio: ["ignore", "pipe", "pipe"] }));
  const nodes = [serve("1"), serve("2")];
  try {
    const [u1, u2] = await Promise.all(nodes.map(async (n) => (await n.waitFor(/serving (http:\S+).* and NATS/, 20_000))[1]!));
    assert.is((await runAsync("put", "over", "nats", "--url", u1!)).status, 0);
    for (let i = 0; ; i++) {
      const got = await runAsync("get", "over", "--url", u2!);
      if (got.status === 0) { assert.is(JSON.parse(got.stdout).value, "nats"); break; }
      if (i > 100) assert.unreachable(`never replicated: ${nodes[1]!.output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    for (const n of nodes) { n.child.kill("SIGTERM"); await n.exited; }
    await srv.close();
  }
});

test.run();
