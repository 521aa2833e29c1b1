// The live push stream in real headless Chromium (launched as test/package/browser.ts does): a
// browser node (the ESM bundle, FetchTransport with the HMAC secret, SyncManager `live: true`)
// sees a server node's put without a sync round, and reconnects after the server restarts.
// Page and server share one origin: test/helpers/push-page.ts serves the page and proxies
// /wavekv/* to the node, streaming the answers through unbuffered.
// Not registered at all (a message, not a pass) when no Chromium is installed.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer, type RunningServer } from "../../src/app/serve.js";
import { CHROMIUM_ARGS, findChromium, loadPlaywright, within } from "../helpers/console-chromium.js";
import { pushPageFiles, startPageServer } from "../helpers/push-page.js";

const SECRET = "browser-push-secret-0123456789";
const BUDGET_MS = 50_000;

const chromiumPath = findChromium();
const playwright = chromiumPath ? await loadPlaywright() : undefined;

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
    const files = await pushPageFiles();
    ctx.dir = mkdtempSync(join(tmpdir(), "wavekv-browser-push-"));
    ctx.server = await start(0);
    ctx.port = ctx.server.http.port;
    ctx.web = await startPageServer(files, () => ctx.server.http.url);
    ctx.browser = await playwright.chromium.launch({ executablePath: chromiumPath, headless: true, args: CHROMIUM_ARGS, timeout: 20_000 });
    ctx.page = await ctx.browser.newPage();
    ctx.errors = [];
    ctx.page.on("pageerror", (e) => ctx.errors.push(`pageerror: ${e.message}`));
    await ctx.page.goto(`${ctx.web.url}/?live=1&interval=600000&secret=${encodeURIComponent(SECRET)}`);
    await run("window.wkReady");
  });

  test.after(teardown);

  test("a browser node sees a server put without a sync round", async () => {
    await within(10_000, "stream up", (async () => { while (!(await run<number[]>("wk.live()")).includes(1)) await new Promise((r) => setTimeout(r, 20)); })());
    // The connect round(s) settle first: what counts is that none runs for the puts.
    await new Promise((r) => setTimeout(r, 300));
    const rounds = (await run<{ rounds: number }>("wk.stats()")).rounds;
    for (let i = 0; i < 10; i++) {
      const waiting = run(`wk.waitFor("live/${i}", "v${i}")`);
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
    const waiting = run(`wk.waitFor("after/restart", "yes")`);
    await ctx.server.node.put("after/restart", "yes");
    await waiting;
    assert.equal(ctx.errors, []);
  });

  test.run();
}
