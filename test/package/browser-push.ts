// The live push stream in real headless Chromium (launched as test/package/browser.ts does): a
// browser node (the ESM bundle, FetchTransport with the HMAC secret, SyncManager `live: true`)
// sees a server node's put without a sync round, and reconnects after the server restarts.
// Page and server share one origin: this file's static server proxies /wavekv/* to the node
// and streams the answers through unbuffered (a buffering proxy would hold the stream back).
// Not registered at all (a message, not a pass) when no Chromium is installed.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
// @ts-expect-error: a plain .mjs build script, no type declarations
import { bundleBrowser, kernelWasm } from "../../scripts/build-browser.mjs";
import { startServer, type RunningServer } from "../../src/app/serve.js";
import { CHROMIUM_ARGS, findChromium, loadPlaywright, within } from "../helpers/console-chromium.js";

const SECRET = "browser-push-secret-0123456789";
const BUDGET_MS = 50_000;

const PAGE = `<!doctype html><meta charset="utf-8"><title>wavekv push</title><body><script type="module">
window.wkReady = (async () => {
  const lib = await import("./wavekv.js");
  await lib.init();
  const node = await lib.Node.open({ id: 2, peers: [1] });
  const transport = new lib.FetchTransport({ peers: { 1: "/wavekv" }, secret: ${JSON.stringify(SECRET)}, timeoutMs: 5000 });
  const sync = new lib.SyncManager(node, transport, { live: true, intervalMs: 600000, retryMs: 100, onWarning: () => {} });
  sync.start();
  const text = (e) => (e && e.value ? new TextDecoder().decode(e.value) : null);
  window.wk = {
    node, sync,
    get: (k) => text(node.get(k)),
    live: () => sync.liveStreams(),
    stats: () => ({ ...sync.stats }),
    /** Resolves with the ms from now until key k holds value v (polls the in-page node, not the server). */
    waitFor: (k, v) => new Promise((resolve) => { const t0 = performance.now(); const tick = () => text(node.get(k)) === v ? resolve(performance.now() - t0) : setTimeout(tick, 2); tick(); }),
    stop: () => sync.stop(),
  };
})();
</script></body>`;

const chromiumPath = findChromium();
const playwright = chromiumPath ? await loadPlaywright() : undefined;

/** The page, the bundle, and /wavekv/* proxied to the node with the response streamed through. */
async function startPageServer(files: Map<string, { body: Uint8Array | string; type: string }>, upstream: () => string) {
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (url.pathname.startsWith("/wavekv/")) {
      const target = new URL(url.pathname.slice("/wavekv".length) + url.search, upstream());
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string" && (k === "content-type" || k === "content-length" || k.startsWith("x-wavekv-"))) headers[k] = v;
      const up = request(target, { method: req.method, headers }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, { "content-type": upRes.headers["content-type"] ?? "application/octet-stream", "cache-control": "no-store" });
        res.flushHeaders();
        upRes.pipe(res);
      });
      up.on("error", () => { if (!res.headersSent) res.writeHead(502); res.end(); });
      res.on("close", () => up.destroy());
      req.pipe(up);
      return;
    }
    const f = files.get(url.pathname === "/" ? "/index.html" : url.pathname);
    if (!f) { res.writeHead(404).end(); return; }
    res.writeHead(200, { "content-type": f.type, "cache-control": "no-store" });
    res.end(f.body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

if (!chromiumPath || !playwright) {
  console.log(`\n!! test/package/browser-push.ts NOT RUN: ${!chromiumPath ? "no Chromium found (apt-get install -y chromium, or set WAVEKV_CHROMIUM)" : "playwright-core is not installed (npm ci)"}\n`);
} else {
  type Page = import("playwright-core").Page;
  type Browser = import("playwright-core").Browser;
  const ctx = {} as { server: RunningServer; dir: string; port: number; web: Awaited<ReturnType<typeof startPageServer>>; browser: Browser; page: Page; errors: string[]; watchdog: ReturnType<typeof setTimeout> };
  const run = <T = any>(expr: string, ms = 10_000): Promise<T> => within(ms, expr, ctx.page.evaluate(expr) as Promise<T>);
  const start = (port: number) => startServer({ id: 1, port, dir: ctx.dir, secret: SECRET, intervalMs: 600_000, fsync: "never", log: () => undefined });
  const teardown = async () => {
    clearTimeout(ctx.watchdog);
    await ctx.page?.evaluate("wk.stop()").catch(() => undefined);
    await ctx.browser?.close().catch(() => undefined);
    await ctx.web?.close().catch(() => undefined);
    await ctx.server?.stop().catch(() => undefined);
    if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
  };

  test.before(async () => {
    ctx.watchdog = setTimeout(() => { console.error(`test/package/browser-push.ts: over ${BUDGET_MS} ms, tearing down`); void teardown(); }, BUDGET_MS);
    const [file, wasm] = await Promise.all([bundleBrowser({ kernel: "file" }), kernelWasm()]);
    const files = new Map<string, { body: Uint8Array | string; type: string }>([
      ["/index.html", { body: PAGE, type: "text/html; charset=utf-8" }],
      ["/wavekv.js", { body: file.js, type: "text/javascript" }],
      ["/wavekv.wasm", { body: wasm, type: "application/wasm" }],
    ]);
    ctx.dir = mkdtempSync(join(tmpdir(), "wavekv-browser-push-"));
    ctx.server = await start(0);
    ctx.port = ctx.server.http.port;
    ctx.web = await startPageServer(files, () => ctx.server.http.url);
    ctx.browser = await playwright.chromium.launch({ executablePath: chromiumPath, headless: true, args: CHROMIUM_ARGS, timeout: 20_000 });
    ctx.page = await ctx.browser.newPage();
    ctx.errors = [];
    ctx.page.on("pageerror", (e) => ctx.errors.push(`pageerror: ${e.message}`));
    await ctx.page.goto(`${ctx.web.url}/`);
    await run("window.wkReady");
  });

  test.after(teardown);

  test("a browser node sees a server put without a sync round", async () => {
    await within(10_000, "stream up", (async () => { while (!(await run<number[]>("wk.live()")).includes(1)) await new Promise((r) => setTimeout(r, 20)); })());
    // The connect round(s) settle first: what counts is that none runs for the puts.
    await new Promise((r) => setTimeout(r, 300));
    const rounds = (await run<{ rounds: number }>("wk.stats()")).rounds;
    for (let i = 0; i < 10; i++) {
      const waiting = run<number>(`wk.waitFor("live/${i}", "v${i}")`);
      await ctx.server.node.put(`live/${i}`, `v${i}`);
      await waiting;
    }
    const stats = await run<{ rounds: number; livePushes: number }>("wk.stats()");
    assert.is(stats.rounds, rounds, "no sync round carried the puts");
    assert.ok(stats.livePushes >= 10);
    assert.equal(ctx.errors, []);
  });

  test("the server restarts: the browser reconnects, catches up, and streams again", async () => {
    const connects = (await run<{ liveConnects: number }>("wk.stats()")).liveConnects;
    await ctx.server.stop();
    await within(10_000, "stream down", (async () => { while ((await run<number[]>("wk.live()")).length > 0) await new Promise((r) => setTimeout(r, 20)); })());
    ctx.server = await start(ctx.port);
    await ctx.server.node.put("while/down", "caught up");
    await within(15_000, "reconnected", (async () => { while ((await run<{ liveConnects: number }>("wk.stats()")).liveConnects <= connects) await new Promise((r) => setTimeout(r, 50)); })());
    await run(`wk.waitFor("while/down", "caught up")`);
    const waiting = run<number>(`wk.waitFor("after/restart", "yes")`);
    await ctx.server.node.put("after/restart", "yes");
    await waiting;
    assert.equal(ctx.errors, []);
  });

  test.run();
}
