// The README's command-line block, run as written (issue 16 §2): the lines of the ```sh
// block under "Running nodes from the command line", with only the ports moved to free
// ones, `npx wavekv` replaced by the built CLI (`node dist/app/cli.js`; run `npm run build`
// first, as for the other CLI tests) and a fresh directory as the working directory.
// Background lines (`… &`) become spawned children, stopped at the end. If the block
// stops working as written — a command that fails, a value that does not reach the node
// it is read from within 5 s — this fails. The same cluster started in the worst order
// (the seed last) also meets the 5 s bound. Then SIGTERM/SIGINT to `serve`, `filesync` and
// `demo` (and SIGTERM to npm in npx's npm → sh → node chain) leave no process behind and
// no port taken.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { alive, builtCli, childrenOf, freePorts, refused, shellWords, spawnCli, watch, type Spawned } from "../helpers/procs.js";

const readme = readFileSync(fileURLToPath(new URL("../../README.md", import.meta.url)), "utf8");
/** How long after a `put` a `get` of its key on another node may take to print the value. */
const REPLICATION_BOUND_MS = 5_000;

/** The first ```sh block after `heading`, as lines. */
function shBlock(heading: string): string[] {
  const at = readme.indexOf(heading);
  assert.ok(at >= 0, `README.md has no "${heading}" section`);
  const m = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  assert.ok(m, `no \`\`\`sh block under "${heading}"`);
  return m[1]!.split("\n");
}

/** The line without a trailing `# comment` (a `#` after whitespace, outside quotes). */
function stripComment(line: string): string {
  let quote = "";
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) { if (c === quote) quote = ""; }
    else if (c === "'" || c === '"') quote = c;
    else if (c === "#" && (i === 0 || /\s/.test(line[i - 1]!))) return line.slice(0, i).trimEnd();
  }
  return line.trimEnd();
}

function sh(line: string, cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn("/bin/sh", ["-c", line], { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    child.stdout!.on("data", (d) => { stdout += d; });
    child.stderr!.on("data", (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.once("close", (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

const valueIn = (r: { code: number | null; stdout: string }) => (r.code === 0 ? (JSON.parse(r.stdout) as { value?: string }).value : undefined);

/** Runs a `get` command until it prints `value` or REPLICATION_BOUND_MS have passed since the put (`since`); the last run. */
async function readWithin(command: string, cwd: string, value: string, since: number): ReturnType<typeof sh> {
  for (;;) {
    const r = await sh(command, cwd);
    // Right after the put the value may still be travelling: retry, within the bound.
    if (valueIn(r) === value || Date.now() - since >= REPLICATION_BOUND_MS) return r;
    await new Promise((res) => setTimeout(res, 100));
  }
}

async function stopAll(procs: Spawned[]): Promise<void> {
  for (const p of procs) if (alive(p.pid)) p.child.kill("SIGTERM");
  await Promise.all(procs.map((p) => p.exitedWithin(10_000)));
  for (const p of procs) if (alive(p.pid)) p.child.kill("SIGKILL");
}

test("the README's command-line block works as written: the put on node 2 is read on node 3", async () => {
  const lines = shBlock("## Running nodes from the command line").map(stripComment).filter((l) => l.trim() !== "");
  // Every port the block names moves to a free one, consistently across lines.
  const named = [...new Set(lines.flatMap((l) => [...l.matchAll(/(?:127\.0\.0\.1:|--port )(\d+)/g)].map((m) => m[1]!)))];
  const free = await freePorts(named.length);
  const portOf = new Map(named.map((p, i) => [p, String(free[i])]));
  const local = (l: string) => l.replace(/(127\.0\.0\.1:|--port )(\d+)/g, (_m, pre: string, p: string) => pre + portOf.get(p)!);
  const cwd = mkdtempSync(join(tmpdir(), "wavekv-readme-"));
  const background: Spawned[] = [];
  const puts = new Map<string, { value: string; at: number }>();
  let reads = 0;
  try {
    for (const raw of lines) {
      const line = local(raw);
      const words = shellWords(line.replace(/&$/, ""));
      const wavekv = words[0] === "npx" && words[1] === "wavekv" ? words.slice(2) : undefined;
      if (/&$/.test(line)) {
        assert.ok(wavekv, `a background line the test cannot run: ${raw}`);
        background.push(spawnCli(wavekv, { cwd }));
        continue;
      }
      const command = line.replace(/^npx wavekv\b/, `node ${JSON.stringify(builtCli)}`);
      const [cmd, key, value] = wavekv ?? [];
      const written = cmd === "get" ? puts.get(key!) : undefined;
      const r = written ? await readWithin(command, cwd, written.value, written.at) : await sh(command, cwd);
      const shown = `${raw}\nexit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}\nserver logs:\n${background.map((b) => b.output()).join("\n")}`;
      if (written) {
        assert.is(valueIn(r), written.value, `not on the node read within ${REPLICATION_BOUND_MS} ms of the put:\n${shown}`);
        reads++;
      }
      assert.is(r.code, 0, shown);
      if (cmd === "put") puts.set(key!, { value: value!, at: Date.now() });
    }
    assert.ok(background.length >= 3, "the block starts a cluster in the background");
    assert.ok(reads > 0, "the block reads a value written on another node");
  } finally {
    await stopAll(background);
    rmSync(cwd, { recursive: true, force: true });
  }
});

test("the same cluster started in the worst order (node 1, the seed, last): the put is read on node 3 within 5 s", async () => {
  const [p1, p2, p3] = await freePorts(3);
  const cwd = mkdtempSync(join(tmpdir(), "wavekv-order-"));
  const seed = `1=http://127.0.0.1:${p1}`;
  const procs: Spawned[] = [];
  try {
    // Nodes 2 and 3 start first: their first rounds with node 1 fail (nothing listens yet).
    procs.push(spawnCli(["serve", "--id", "2", "--port", String(p2), "--dir", "data2", "--peer", seed], { cwd }));
    procs.push(spawnCli(["serve", "--id", "3", "--port", String(p3), "--dir", "data3", "--peer", seed], { cwd }));
    await Promise.all(procs.map((p) => p.waitFor(/serving/)));
    procs.push(spawnCli(["serve", "--id", "1", "--port", String(p1), "--dir", "data1"], { cwd }));
    await procs[2]!.waitFor(/serving/);
    const put = await sh(`node ${JSON.stringify(builtCli)} put greeting hello --url http://127.0.0.1:${p2}`, cwd);
    assert.is(put.code, 0, put.stderr);
    const got = await readWithin(`node ${JSON.stringify(builtCli)} get greeting --url http://127.0.0.1:${p3}`, cwd, "hello", Date.now());
    assert.is(valueIn(got), "hello", `node 3 does not hold the put ${REPLICATION_BOUND_MS} ms after it:\n${got.stderr}\n${procs.map((p) => p.output()).join("\n")}`);
  } finally {
    await stopAll(procs);
    rmSync(cwd, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------ no orphan on SIGTERM

/** Starts `args`, waits for `ready`, signals, and checks the process, its children and its ports are gone. */
async function signalAndCheck(args: string[], ready: RegExp, signal: NodeJS.Signals, portsOf: (m: RegExpExecArray) => number[], cwd: string): Promise<{ output: string; match: RegExpExecArray }> {
  const p = spawnCli(args, { cwd });
  let kids: number[] = [];
  try {
    const match = await p.waitFor(ready, 30_000);
    const ports = portsOf(match);
    assert.ok(ports.length > 0);
    for (const port of ports) assert.not.ok(await refused(port), `port ${port} answers before the signal`);
    kids = childrenOf(p.pid);
    p.child.kill(signal);
    const code = await p.exitedWithin(20_000);
    assert.ok(code === 0 || code === signal || code === 128 + (signal === "SIGINT" ? 2 : 15), `${args[0]}: exit ${code} after ${signal}:\n${p.output()}`);
    for (const port of ports) assert.ok(await refused(port), `${args[0]}: port ${port} still answers after ${signal} (an orphan holds it):\n${p.output()}`);
    const left = kids.filter(alive);
    assert.equal(left, [], `${args[0]}: processes ${left} it started outlive it after ${signal}`);
    return { output: p.output(), match };
  } finally {
    for (const pid of [p.pid, ...kids]) if (alive(pid)) process.kill(pid, "SIGKILL");
  }
}

const servingPort = (m: RegExpExecArray) => [Number(m[1])];

test("SIGTERM to `serve` and to `filesync` stops the server: the port is free, nothing is left running", async () => {
  const cwd = mkdtempSync(join(tmpdir(), "wavekv-sigterm-"));
  try {
    await Promise.all([
      signalAndCheck(["serve", "--id", "1", "--port", "0", "--dir", "data1"], /serving http:\/\/127\.0\.0\.1:(\d+)/, "SIGTERM", servingPort, cwd),
      signalAndCheck(["serve", "--id", "2", "--port", "0"], /serving http:\/\/127\.0\.0\.1:(\d+)/, "SIGINT", servingPort, cwd),
      signalAndCheck(["filesync", "--dir", "shared", "--id", "3", "--port", "0"], /serving http:\/\/127\.0\.0\.1:(\d+)[\s\S]*mirroring/, "SIGTERM", servingPort, cwd),
    ]);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

test("`npx wavekv serve` (npm → sh → node): SIGTERM to npm, which kills only the sh, still stops the server", async () => {
  // npm forwards SIGTERM to the sh it started, which dies without passing it on; the
  // stand-in here is an sh that does not exec its command, under npm's environment.
  const cwd = mkdtempSync(join(tmpdir(), "wavekv-npx-"));
  const p = watch(spawn("/bin/sh", ["-c", `node ${JSON.stringify(builtCli)} serve --id 4 --port 0; true`], { cwd, env: { ...process.env, npm_lifecycle_event: "npx", npm_command: "exec" }, stdio: ["ignore", "pipe", "pipe"] }));
  let server = 0;
  try {
    const port = Number((await p.waitFor(/serving http:\/\/127\.0\.0\.1:(\d+)/))[1]);
    [server] = childrenOf(p.pid);
    assert.ok(server && alive(server), "the server runs under the sh");
    p.child.kill("SIGTERM");
    await p.exited;
    for (const until = Date.now() + 10_000; alive(server) && Date.now() < until;) await new Promise((r) => setTimeout(r, 50));
    assert.not.ok(alive(server), `the server outlived the npm process that started it:\n${p.output()}`);
    assert.ok(await refused(port), `port ${port} still answers`);
  } finally {
    if (server && alive(server)) process.kill(server, "SIGKILL");
    rmSync(cwd, { recursive: true, force: true });
  }
});

test("SIGTERM or SIGINT to `demo` stops its three node processes and removes its files", async () => {
  const cwd = mkdtempSync(join(tmpdir(), "wavekv-sigdemo-"));
  const ready = /data in (\S+),[\s\S]*started nodes 1, 2, 3 \(([^)]*)\)/;
  const ports = (m: RegExpExecArray) => [...m[2]!.matchAll(/:(\d+)/g)].map((p) => Number(p[1]));
  try {
    for (const { match } of await Promise.all((["SIGTERM", "SIGINT"] as const).map((sig) => signalAndCheck(["demo", "--short"], ready, sig, ports, cwd)))) {
      assert.is(ports(match).length, 3);
      assert.not.ok(existsSync(match[1]!), `the demo left ${match[1]} behind`);
    }
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

test.run();
