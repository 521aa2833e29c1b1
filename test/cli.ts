// The command line, run as a user would: child processes on 127.0.0.1.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const cli = fileURLToPath(new URL("../src/cli.ts", import.meta.url));
const base = [...process.execArgv, cli];
const run = (...args: string[]) => spawnSync(process.execPath, [...base, ...args], { encoding: "utf8", timeout: 30_000 });

test("--help on every command", () => {
  const top = run("--help");
  assert.is(top.status, 0, top.stderr);
  for (const cmd of ["serve", "put", "get", "del", "scan", "status", "demo", "filesync", "inspect", "bench"]) {
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
    child.kill("SIGTERM");
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

test.run();
