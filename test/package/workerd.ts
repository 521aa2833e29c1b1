// wavekv in workerd (Cloudflare's runtime, the `workerd` npm package's binary): a worker
// module runs the browser build (wavekv.js, with wavekv.wasm imported as a compiled module)
// as node 2, and syncs it through the signed FetchTransport with a real server node 1
// (`startServer`, HMAC secret, a data directory) on 127.0.0.1. This file writes a capnp
// config and the modules into a temp dir, starts workerd on a free port, and drives the
// worker over HTTP (test/helpers/workerd-worker.js lists its routes). workerd is killed by
// pid on every path. Not registered at all (a message, not a pass) when the binary is
// missing or cannot run here.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
// @ts-expect-error: a plain .mjs build script, no type declarations
import { bundleBrowser, kernelWasm } from "../../scripts/build-browser.mjs";
import { startServer, type RunningServer } from "../../src/app/serve.js";

const SECRET = "workerd-test-secret-0123456789";
const WORKER = fileURLToPath(new URL("../helpers/workerd-worker.js", import.meta.url));
/** Whole-file budget: everything is torn down by then, whatever hangs. */
const BUDGET_MS = 40_000;
/** A date this workerd supports (it refuses dates after its own build). */
const COMPATIBILITY_DATE = "2025-09-01";

/** WAVEKV_WORKERD, when set, is the only candidate (set it to a missing path to see the skip). */
function findWorkerd(): string | undefined {
  const env = process.env.WAVEKV_WORKERD;
  const candidate = env ?? fileURLToPath(new URL("../../node_modules/.bin/workerd", import.meta.url));
  return existsSync(candidate) ? candidate : undefined;
}

/** Why this workerd cannot run here, or undefined when `workerd --version` answers. */
function cannotRun(bin: string): string | undefined {
  const r = spawnSync(bin, ["--version"], { encoding: "utf8", timeout: 10_000 });
  if (r.error) return r.error.message;
  if (r.status !== 0) return `workerd --version exited ${r.status}: ${(r.stderr || r.stdout).trim().split("\n")[0]}`;
  return undefined;
}

/** A port nothing listens on: bound once by the OS, then closed (workerd takes a port, not a socket). */
const freePort = () => new Promise<number>((resolve, reject) => {
  const s = createServer().once("error", reject).listen(0, "127.0.0.1", () => {
    const port = (s.address() as { port: number }).port;
    s.close(() => resolve(port));
  });
});

/** The workerd config: one worker (three modules), one socket, loopback allowed outbound (node 1). */
function capnpConfig(port: number, server: string): string {
  return `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .wavekvWorker),
    (name = "loopback", network = (allow = ["local"])),
  ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "main") ],
);

const wavekvWorker :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.js"),
    (name = "wavekv.js", esModule = embed "wavekv.js"),
    (name = "wavekv.wasm", wasm = embed "wavekv.wasm"),
  ],
  compatibilityDate = "${COMPATIBILITY_DATE}",
  globalOutbound = "loopback",
  bindings = [
    (name = "SERVER", text = ${JSON.stringify(server)}),
    (name = "SECRET", text = ${JSON.stringify(SECRET)}),
  ],
);
`;
}

function killByPid(child: ChildProcess | undefined): void {
  if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try { process.kill(child.pid, "SIGKILL"); } catch { /* already gone */ }
}

const workerd = findWorkerd();
const why = workerd === undefined
  ? `no workerd binary${process.env.WAVEKV_WORKERD ? ` at WAVEKV_WORKERD=${process.env.WAVEKV_WORKERD}` : " in node_modules/.bin (npm ci installs the workerd devDependency)"}`
  : cannotRun(workerd);

if (workerd === undefined || why !== undefined) {
  // Neither a pass nor a failure: the suite is not registered, and says why.
  console.log(`\n!! test/package/workerd.ts NOT RUN: ${why}\n`);
} else {
  const ctx = {} as { dir: string; server: RunningServer; child: ChildProcess; url: string; output: string; watchdog: ReturnType<typeof setTimeout> };
  const logs: string[] = [];
  const teardown = async () => {
    clearTimeout(ctx.watchdog);
    killByPid(ctx.child);
    await ctx.server?.stop().catch(() => undefined);
    if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
  };
  // A test run that dies on an exception still takes workerd down with it.
  const onExit = () => killByPid(ctx.child);
  process.once("exit", onExit);

  /** One request to the worker, JSON both ways; a worker error (500) fails with its stack. */
  async function worker<T = any>(method: "GET" | "POST", route: string, query: Record<string, string> = {}): Promise<T> {
    const res = await fetch(`${ctx.url}${route}?${new URLSearchParams(query)}`, { method, signal: AbortSignal.timeout(10_000) });
    const body = await res.json() as T & { error?: string };
    assert.is(res.status, 200, `${method} ${route}: ${body.error ?? res.status}`);
    return body;
  }

  /** Starts workerd and waits until the worker answers (it prints nothing when ready). */
  async function startWorkerd(bin: string, files: Map<string, string | Uint8Array>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      writeFileSync(join(ctx.dir, "config.capnp"), capnpConfig(port, ctx.server.http.url));
      for (const [name, body] of files) writeFileSync(join(ctx.dir, name), body);
      ctx.output = "";
      ctx.child = spawn(bin, ["serve", "config.capnp"], { cwd: ctx.dir, stdio: ["ignore", "pipe", "pipe"] });
      ctx.child.stdout!.on("data", (d) => { ctx.output += d; });
      ctx.child.stderr!.on("data", (d) => { ctx.output += d; });
      ctx.url = `http://127.0.0.1:${port}`;
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline && ctx.child.exitCode === null && ctx.child.signalCode === null) {
        const up = await fetch(`${ctx.url}/open`, { signal: AbortSignal.timeout(2_000) }).then((r) => r.status, () => 0);
        if (up !== 0) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      killByPid(ctx.child);
      // The port was taken between our probe and workerd's bind: try another, twice.
      if (attempt >= 3 || !/address already in use/i.test(ctx.output)) throw new Error(`workerd did not answer on ${ctx.url}:\n${ctx.output}`);
    }
  }

  test.before(async () => {
    ctx.watchdog = setTimeout(() => { console.error(`test/package/workerd.ts: over ${BUDGET_MS} ms, tearing down`); void teardown(); }, BUDGET_MS);
    const [file, wasm] = await Promise.all([bundleBrowser({ kernel: "file" }), kernelWasm()]);
    ctx.dir = mkdtempSync(join(tmpdir(), "wavekv-workerd-"));
    // Node 1 keeps a real data directory: the worker syncs with a durable node.
    ctx.server = await startServer({ id: 1, port: 0, dir: join(ctx.dir, "node1"), secret: SECRET, intervalMs: 60_000, console: false, log: (l) => logs.push(l) });
    await startWorkerd(workerd, new Map<string, string | Uint8Array>([
      ["worker.js", readFileSync(WORKER, "utf8")], ["wavekv.js", file.js], ["wavekv.wasm", wasm],
    ]));
  });

  test.after(async () => {
    await teardown();
    process.removeListener("exit", onExit);
  });

  test("the worker loads wavekv.js and the kernel as a compiled module, and opens node 2", async () => {
    const info = await worker<{ id: number; uuid: string }>("GET", "/open");
    assert.is(info.id, 2);
    assert.match(info.uuid, /^[0-9a-f-]{36}$/);
  });

  test("worker node and server node converge through the signed FetchTransport, writes from both sides", async () => {
    const server = ctx.server.node;
    await server.put("from/server", "hello from node");
    for (let i = 0; i < 200; i++) await server.put(`bulk/${i}`, `value ${i}`);
    await worker("POST", "/put", { k: "from/worker", v: "hello from workerd" });
    await worker("POST", "/put", { k: "ключ/🔑", v: "unicode key" });

    const rounds: Array<{ ok: boolean; error?: string }> = [];
    while (rounds.length < 5 && (await worker("GET", "/state")).digest !== server.digest()) rounds.push(await worker("POST", "/sync"));
    assert.ok(rounds.length >= 1 && rounds.every((r) => r.ok), JSON.stringify(rounds));
    const state = await worker<{ digest: string; size: number }>("GET", "/state");
    assert.is(state.digest, server.digest());
    assert.is(state.size, server.size);
    assert.is((await worker("GET", "/get", { k: "from/server" })).value, "hello from node");
    assert.is((await worker("GET", "/get", { k: "bulk/199" })).value, "value 199");
    const text = (k: string) => { const v = server.get(k)?.value; return v ? new TextDecoder().decode(v) : v; };
    assert.is(text("from/worker"), "hello from workerd");
    assert.is(text("ключ/🔑"), "unicode key");
    assert.ok(server.peers().includes(2), "the server discovered the worker node");

    // Incremental: a later write on each side, one more round moves exactly those.
    await server.put("later/server", "2");
    await worker("POST", "/put", { k: "later/worker", v: "3" });
    const r = await worker<{ ok: boolean; sent: number; received: number }>("POST", "/sync");
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal([r.sent, r.received], [1, 1]);
    assert.is((await worker("GET", "/get", { k: "later/server" })).value, "2");
    assert.is(text("later/worker"), "3");
    assert.is((await worker("GET", "/state")).digest, server.digest());
  });

  test("workerd is killed by pid and its port is released", async () => {
    const pid = ctx.child.pid!;
    const exited = new Promise((r) => ctx.child.once("exit", r));
    killByPid(ctx.child);
    await exited;
    assert.throws(() => process.kill(pid, 0), "the workerd process is gone");
    const after = await fetch(`${ctx.url}/state`, { signal: AbortSignal.timeout(2_000) }).then(() => "answered", () => "refused");
    assert.is(after, "refused");
  });

  test.run();
}
