// wavekv in a real headless browser (Debian's Chromium, driven by playwright-core): a
// page loads the browser bundle (ESM + wavekv.wasm, and the one-file inline build),
// opens an in-memory node, and syncs it through the signed FetchTransport with a real
// server node (`startServer`, HMAC secret) on 127.0.0.1. Page and server share one
// origin: this file's static server proxies /wavekv/* to the node, so src/transport/http.ts needs
// no CORS. Not registered at all (a message, not a pass) when no Chromium is installed.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
// @ts-expect-error: a plain .mjs build script, no type declarations
import { bundleBrowser, kernelWasm } from "../../scripts/build-browser.mjs";
import { startServer, type RunningServer } from "../../src/app/serve.js";
import { Node } from "../../src/node/node.js";
import { CHROMIUM_ARGS, findChromium, loadPlaywright, within } from "../helpers/console-chromium.js";

const SECRET = "browser-test-secret-0123456789";
const PAGE_DIR = fileURLToPath(new URL("../helpers/browser-page", import.meta.url));
/** Whole-file budget: everything is torn down by then, whatever hangs. */
const BUDGET_MS = 50_000;

async function readBody(req: IncomingMessage): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
  return new Uint8Array(Buffer.concat(chunks));
}

/** Serves the page and bundle, and proxies /wavekv/<route> to the node's /<route> (prefix stripped, auth headers kept). */
async function startPageServer(files: Map<string, { body: Uint8Array | string; type: string }>, upstream: string) {
  const proxied: string[] = [];
  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? "/", "http://127.0.0.1");
      if (url.pathname.startsWith("/wavekv/")) {
        const route = url.pathname.slice("/wavekv".length) + url.search;
        proxied.push(`${req.method} ${route}`);
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string" && (k === "content-type" || k.startsWith("x-wavekv-"))) headers[k] = v;
        const body = req.method === "GET" || req.method === "HEAD" ? undefined : await readBody(req);
        const up = await fetch(upstream + route, { method: req.method, headers, body: body as Uint8Array<ArrayBuffer> | undefined });
        const bytes = new Uint8Array(await up.arrayBuffer());
        res.writeHead(up.status, { "content-type": up.headers.get("content-type") ?? "application/octet-stream", "content-length": bytes.length });
        res.end(bytes);
        return;
      }
      const f = files.get(url.pathname === "/" ? "/index.html" : url.pathname);
      if (!f) { res.writeHead(404).end(); return; }
      res.writeHead(200, { "content-type": f.type, "cache-control": "no-store" });
      res.end(f.body);
    })().catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    proxied,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

const chromiumPath = findChromium();
const playwright = chromiumPath ? await loadPlaywright() : undefined;

if (!chromiumPath || !playwright) {
  // Neither a pass nor a failure: the suite is not registered, and says why.
  console.log(`\n!! test/package/browser.ts NOT RUN: ${!chromiumPath ? `no Chromium found${process.env.WAVEKV_CHROMIUM ? ` at WAVEKV_CHROMIUM=${process.env.WAVEKV_CHROMIUM}` : ""} (apt-get install -y chromium, or set WAVEKV_CHROMIUM)` : "playwright-core is not installed (npm ci)"}\n`);
} else {
  type Page = import("playwright-core").Page;
  type Browser = import("playwright-core").Browser;
  const ctx = {} as {
    server: RunningServer; dir: string; web: Awaited<ReturnType<typeof startPageServer>>;
    browser: Browser; page: Page; errors: string[]; watchdog: ReturnType<typeof setTimeout>;
  };
  const logs: string[] = [];
  /** Evaluates an expression string in the page (no function source crosses: see page.js). */
  const run = <T = any>(expr: string, ms = 10_000): Promise<T> => within(ms, expr, ctx.page.evaluate(expr) as Promise<T>);
  const text = (v: Uint8Array | null | undefined) => (v ? new TextDecoder().decode(v) : v);
  const teardown = async () => {
    clearTimeout(ctx.watchdog);
    await ctx.browser?.close().catch(() => undefined);
    await ctx.web?.close().catch(() => undefined);
    await ctx.server?.stop().catch(() => undefined);
    if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
  };

  test.before(async () => {
    ctx.watchdog = setTimeout(() => { console.error(`test/package/browser.ts: over ${BUDGET_MS} ms, tearing down`); void teardown(); }, BUDGET_MS);
    // What ships: wavekv.js with its chunks and memory.js (wavekv/browser/memory), and the one-file bundle.
    const [file, inline, wasm] = await Promise.all([bundleBrowser({ kernel: "file", split: true }), bundleBrowser({ kernel: "inline" }), kernelWasm()]);
    const files = new Map<string, { body: Uint8Array | string; type: string }>([
      ["/index.html", { body: readFileSync(join(PAGE_DIR, "index.html")), type: "text/html; charset=utf-8" }],
      ["/page.js", { body: readFileSync(join(PAGE_DIR, "page.js")), type: "text/javascript" }],
      ["/wavekv.js", { body: file.js, type: "text/javascript" }],
      ["/wavekv.inline.js", { body: inline.js, type: "text/javascript" }],
      ["/wavekv.wasm", { body: wasm, type: "application/wasm" }],
      ...(file.chunks as { name: string; js: Uint8Array }[]).map((c) => [`/${c.name}`, { body: c.js, type: "text/javascript" }] as const),
    ]);
    // The server node keeps a real data directory: the browser syncs with a durable node.
    ctx.dir = mkdtempSync(join(tmpdir(), "wavekv-browser-"));
    ctx.server = await startServer({ id: 1, port: 0, dir: ctx.dir, secret: SECRET, intervalMs: 60_000, log: (l) => logs.push(l) });
    ctx.web = await startPageServer(files, ctx.server.http.url);
    ctx.browser = await playwright.chromium.launch({ executablePath: chromiumPath, headless: true, args: CHROMIUM_ARGS, timeout: 20_000 });
    ctx.page = await ctx.browser.newPage();
    ctx.page.setDefaultTimeout(10_000);
    ctx.errors = [];
    ctx.page.on("pageerror", (e) => ctx.errors.push(`pageerror: ${e.message}`));
    ctx.page.on("console", (m) => { if (m.type() === "error") ctx.errors.push(`console: ${m.text()}`); });
    await ctx.page.goto(`${ctx.web.url}/?bundle=file&secret=${encodeURIComponent(SECRET)}`);
    await run("window.wkReady");
  });

  test.after(teardown);

  test("the page loads wavekv.js and streams wavekv.wasm through init(); 127.0.0.1 is a secure context", async () => {
    assert.is(await run("wk.streamed.count"), 1);
    assert.is(await run("wk.isSecureContext"), true);
    assert.is(await run("wk.node.id"), 2);
    assert.equal(ctx.errors, []);
  });

  test("browser node and server node converge through the signed FetchTransport, writes from both sides", async () => {
    const server = ctx.server.node;
    await server.put("from/server", "hello from node");
    await server.put("shared", "server's version");
    for (let i = 0; i < 300; i++) await server.put(`bulk/${i}`, `value ${i}`);
    await run(`wk.put("from/browser", "hello from chromium")`);
    await run(`wk.putBytes("bin", [0, 1, 2, 254, 255])`);
    await run(`wk.put("ключ/🔑", "unicode key")`);
    await run(`wk.put("doomed", "x").then(() => wk.del("doomed"))`);
    await run(`wk.put("shared", "browser's version")`); // written after the server's: LWW picks it everywhere

    const rounds: Array<{ ok: boolean; error?: string }> = [];
    while (rounds.length < 5 && (await run("wk.digest()")) !== server.digest()) rounds.push(await run("wk.syncOnce()"));
    assert.ok(rounds.every((r) => r.ok), JSON.stringify(rounds));
    assert.ok(rounds.length >= 1 && rounds.length <= 2, `took ${rounds.length} rounds`);

    assert.is(await run("wk.digest()"), server.digest());
    assert.is(await run("wk.size()"), server.size);
    assert.is(await run(`wk.get("from/server")`), "hello from node");
    assert.is(await run(`wk.get("bulk/299")`), "value 299");
    assert.is(text(server.get("from/browser")?.value), "hello from chromium");
    assert.equal([...(server.get("bin")?.value ?? [])], [0, 1, 2, 254, 255]);
    assert.is(text(server.get("ключ/🔑")?.value), "unicode key");
    assert.is(server.getIncludingTombstones("doomed")?.value, null);
    assert.is(await run(`wk.get("doomed")`), null);
    assert.is(text(server.get("shared")?.value), "browser's version");
    assert.is(await run(`wk.get("shared")`), "browser's version");
    assert.ok(server.peers().includes(2), "the server discovered the browser node");
    assert.ok(ctx.web.proxied.every((r) => r === "POST /sync"), ctx.web.proxied.join(", "));

    // Incremental: a later write on each side, one more round.
    await server.put("later/server", "2");
    await run(`wk.put("later/browser", "3")`);
    const r = await run<{ ok: boolean; sent: number; received: number }>("wk.syncOnce()");
    assert.ok(r.ok);
    assert.is(r.sent, 1);
    assert.is(r.received, 1);
    assert.is(await run("wk.digest()"), server.digest());
    assert.equal(ctx.errors, []);
  });

  test("the server refuses a request signed with the wrong secret, and changes nothing", async () => {
    const before = ctx.server.node.digest();
    const verdict = await run<string>("wk.wrongSecret()");
    assert.match(verdict, /^IO: .*HTTP 401.*bad signature/);
    assert.is(ctx.server.node.digest(), before);
  });

  test("the browser bundle's SHA-256 (rounds in the WASM kernel) gives node:crypto's digest for the same entries", async () => {
    const n = await Node.open({ id: 9, clock: () => 1_700_000_000_000 });
    await n.put("a", "1");
    await n.put("é/ü", new Uint8Array([0, 1, 255]));
    await n.put("z", "x".repeat(70_000));
    await n.delete("a");
    const expected = n.digest();
    await n.close();
    assert.is(await run("wk.fixedDigest()"), expected);
  });

  test("MemoryNetwork works in the page (lossy, two in-page nodes), from memory.js beside wavekv.js", async () => {
    assert.is(await run("wk.memoryFrom"), "memory.js");
    const r = await run<{ equal: boolean; rounds: number; size: number }>("wk.memoryNetwork()", 20_000);
    assert.ok(r.equal, JSON.stringify(r));
    assert.is(r.size, 20);
  });

  test("the one-file inline bundle (kernel embedded) syncs too, with no .wasm fetched", async () => {
    const page = await ctx.browser.newPage();
    try {
      const wasmRequests: string[] = [];
      page.on("request", (req) => { if (req.url().endsWith(".wasm")) wasmRequests.push(req.url()); });
      await page.goto(`${ctx.web.url}/?bundle=inline&secret=${encodeURIComponent(SECRET)}`);
      await within(10_000, "inline page", page.evaluate("window.wkReady"));
      // Another node with id 2 and a new uuid: the server must refuse it (identity check).
      const r = await within(10_000, "inline sync", page.evaluate("wk.syncOnce()") as Promise<{ ok: boolean; error?: string }>);
      assert.is(r.ok, false);
      assert.match(r.error ?? "", /UUID_MISMATCH/);
      assert.equal(wasmRequests, []);
      assert.is(await within(10_000, "inline digest", page.evaluate("wk.fixedDigest()")), await run("wk.fixedDigest()"));
    } finally {
      await page.close();
    }
  });

  test("the inline bundle also works without init(): Chromium compiles the kernel synchronously on the main thread", async () => {
    // Measured, not assumed: Chromium 156 accepts `new WebAssembly.Module` of the ~12 KB
    // kernel on a page's main thread (old Chromium refused anything over 4 KB there).
    const page = await ctx.browser.newPage();
    try {
      await page.goto(`${ctx.web.url}/?bundle=inline&noinit=1`);
      assert.is(await within(10_000, "noinit page", page.evaluate("window.wkReady") as Promise<string>), "no error");
    } finally {
      await page.close();
    }
  });

  test.run();
}
