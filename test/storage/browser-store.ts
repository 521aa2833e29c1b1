// The browser store (src/storage/browser-storage.ts, IndexedDB) in real headless Chromium
// (Debian's, driven by playwright-core; launch flags as test/package/browser.ts): the
// storage conformance suite inside the page, a put acknowledged before a reload or a
// SIGKILL of the browser is there after it (same profile directory), a second tab gets
// LOCKED, damaged rows open to the valid prefix with a warning, and a full quota fails
// the put with STORAGE_FULL and loses nothing acknowledged. Not registered at all (a loud
// message, not a pass) when no Chromium is installed.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
// @ts-expect-error: a plain .mjs build script, no type declarations
import { bundleBrowser, kernelWasm } from "../../scripts/build-browser.mjs";
import { CHROMIUM_ARGS, findChromium, loadPlaywright, within } from "../helpers/console-chromium.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const BUDGET_MS = 90_000;


/** The page helper (test/helpers/browser-store-page.ts) as one ESM file, kernel embedded. */
async function pageBundle(): Promise<Uint8Array> {
  const r = await esbuild.build({
    entryPoints: [join(root, "test", "helpers", "browser-store-page.ts")],
    bundle: true, format: "esm", platform: "neutral", target: "es2022", write: false, logLevel: "silent",
    inject: [join(root, "scripts", "browser-shims.mjs")],
    // The file storage (node:fs) is never opened by a page: left out.
    plugins: [{ name: "no-file-storage", setup: (b) => { b.onResolve({ filter: /^\.\.\/storage\/storage\.js$/ }, () => ({ path: "./no-file-storage.js", external: true })); } }],
  });
  return r.outputFiles[0]!.contents;
}

/** The child processes of this process whose command is Chromium: the browser playwright launched. */
function chromiumChildren(): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) === process.pid && /chrom/i.test(stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")))) out.push(Number(d));
    } catch { /* gone meanwhile */ }
  }
  return out;
}

const SHIPPED_HTML = `<!doctype html><meta charset="utf-8"><title>wavekv shipped</title><script type="module">
import { init, Node, browserStorage } from "/dist/wavekv.js";
await init();
let node = null;
window.ship = {
  open: async (name, id) => { node = await Node.open({ id, storage: browserStorage(name) }); return node.size; },
  put: (k, v) => node.put(k, v).then(() => "ok"),
  get: (k) => { const e = node.get(k); return e ? new TextDecoder().decode(e.value) : null; },
  size: () => node.size,
};
window.shipReady = true;
</script>`;

const chromiumPath = findChromium();
const playwright = chromiumPath ? await loadPlaywright() : undefined;

if (!chromiumPath || !playwright) {
  console.log(`\n!! test/storage/browser-store.ts NOT RUN: ${!chromiumPath ? `no Chromium found${process.env.WAVEKV_CHROMIUM ? ` at WAVEKV_CHROMIUM=${process.env.WAVEKV_CHROMIUM}` : ""} (apt-get install -y chromium, or set WAVEKV_CHROMIUM)` : "playwright-core is not installed (npm ci)"}\n`);
} else {
  type Page = import("playwright-core").Page;
  type Context = import("playwright-core").BrowserContext;
  // A persistent context: its IndexedDB is on disk (a `newContext()` one lives in memory).
  const ctx = {} as { server: Server; url: string; browser: Context; page: Page; profiles: string[]; watchdog: ReturnType<typeof setTimeout>; requests: string[] };
  const run = <T = any>(page: Page, expr: string, ms = 15_000): Promise<T> => within(ms, expr, page.evaluate(expr) as Promise<T>);
  const launch = { executablePath: chromiumPath, headless: true, args: CHROMIUM_ARGS, timeout: 20_000 };
  const teardown = async () => {
    clearTimeout(ctx.watchdog);
    await ctx.browser?.close().catch(() => undefined);
    await new Promise<void>((resolve) => { if (!ctx.server) return resolve(); ctx.server.closeAllConnections(); ctx.server.close(() => resolve()); });
    for (const p of ctx.profiles ?? []) rmSync(p, { recursive: true, force: true });
  };
  const freshPage = async (browser: Context, path = "/store.html"): Promise<Page> => {
    const page = await browser.newPage();
    page.setDefaultTimeout(15_000);
    await page.goto(`${ctx.url}${path}`);
    await page.waitForFunction(path === "/store.html" ? "window.wkReady === true" : "window.shipReady === true");
    return page;
  };

  test.before(async () => {
    ctx.watchdog = setTimeout(() => { console.error(`test/storage/browser-store.ts: over ${BUDGET_MS} ms, tearing down`); void teardown(); }, BUDGET_MS);
    ctx.profiles = [];
    ctx.requests = [];
    const [page, shipped, wasm] = await Promise.all([pageBundle(), bundleBrowser({ kernel: "file", split: true }), kernelWasm()]);
    const files = new Map<string, { body: Uint8Array | string; type: string }>([
      ["/store.html", { body: `<!doctype html><meta charset="utf-8"><title>wavekv store</title><script type="module" src="/store.js"></script>`, type: "text/html; charset=utf-8" }],
      ["/store.js", { body: page, type: "text/javascript" }],
      ["/worker.js", { body: `import "/store.js";\nself.onmessage = async (e) => { let value; try { value = await (0, eval)(e.data.expr); } catch (err) { value = "threw: " + err; } self.postMessage({ id: e.data.id, value }); };`, type: "text/javascript" }],
      ["/shipped.html", { body: SHIPPED_HTML, type: "text/html; charset=utf-8" }],
      ["/dist/wavekv.js", { body: shipped.js, type: "text/javascript" }],
      ["/dist/wavekv.wasm", { body: wasm, type: "application/wasm" }],
      ...(shipped.chunks as { name: string; js: Uint8Array }[]).map((c) => [`/dist/${c.name}`, { body: c.js, type: "text/javascript" }] as const),
    ]);
    ctx.server = createServer((req, res) => {
      const path = new URL(req.url ?? "/", "http://127.0.0.1").pathname;
      ctx.requests.push(path);
      const f = files.get(path);
      if (!f) { res.writeHead(404).end(); return; }
      res.writeHead(200, { "content-type": f.type, "cache-control": "no-store" });
      res.end(f.body);
    });
    await new Promise<void>((resolve) => ctx.server.listen(0, "127.0.0.1", resolve));
    ctx.url = `http://127.0.0.1:${(ctx.server.address() as AddressInfo).port}`;
    const profile = mkdtempSync(join(tmpdir(), "wavekv-chromium-profile-"));
    ctx.profiles.push(profile);
    ctx.browser = await playwright.chromium.launchPersistentContext(profile, launch);
    ctx.page = await freshPage(ctx.browser);
  });

  test.after(teardown);

  test("the storage conformance suite passes inside Chromium against the IndexedDB store (crash, torn tail and latch cases included)", async () => {
    const results = await run<{ name: string; ok: boolean; skipped?: boolean; error?: string }[]>(ctx.page, "wk.conformance()", 60_000);
    for (const r of results) console.log(`  ${r.ok ? "✓" : r.skipped ? "SKIPPED" : "✗"} ${r.name}${r.error ? `\n${r.error}` : ""}`);
    assert.is(results.length, 8, "every case reported");
    assert.equal(results.filter((r) => !r.ok).map((r) => r.name), [], "every case passed, none skipped");
  });

  test("the shipped split bundle: the store chunk is fetched on the first open only; acknowledged puts survive a reload", async () => {
    const page = await freshPage(ctx.browser, "/shipped.html");
    try {
      const storeChunk = () => ctx.requests.filter((p) => p.startsWith("/dist/wavekv-browser-storage")).length;
      const before = storeChunk();
      await page.waitForTimeout(50); // nothing else loads by itself
      assert.is(storeChunk(), before, "no store chunk before a store opens");
      assert.is(await run(page, `ship.open("reload", 4)`), 0);
      assert.ok(storeChunk() > before, "the store chunk came with the first open");
      for (let i = 0; i < 10; i++) assert.is(await run(page, `ship.put("k${i}", "v${i}")`), "ok");
      await page.reload();
      await page.waitForFunction("window.shipReady === true");
      assert.is(await run(page, `ship.open("reload", 4)`), 10, "every acknowledged put, after the reload");
      assert.is(await run(page, `ship.get("k9")`), "v9");
    } finally {
      await page.close();
    }
  });

  test("SIGKILL of Chromium right after puts resolved: the same profile reopens with every acknowledged put", async () => {
    const profile = mkdtempSync(join(tmpdir(), "wavekv-chromium-profile-"));
    ctx.profiles.push(profile);
    const before = new Set(chromiumChildren());
    const first = await playwright.chromium.launchPersistentContext(profile, launch);
    const pids = chromiumChildren().filter((p) => !before.has(p));
    assert.is(pids.length, 1, `one new Chromium child process (${pids.join(", ")})`);
    const page = await freshPage(first);
    assert.is(await run(page, `wk.open("durable", 3)`), "ok");
    for (let i = 0; i < 20; i++) assert.is(await run(page, `wk.put("durable", "one/${i}", "value ${i}")`), "ok");
    const many = await run<string[]>(page, `wk.putMany("durable", "many/", 64)`);
    assert.ok(many.every((r) => r === "ok"), many.join(","));
    process.kill(pids[0]!, "SIGKILL"); // no close, no unload: the browser process is gone
    await first.close().catch(() => undefined);
    const again = await playwright.chromium.launchPersistentContext(profile, launch);
    try {
      const p2 = await freshPage(again);
      assert.is(await run(p2, `wk.open("durable", 3)`), "ok");
      assert.is(await run(p2, `wk.size("durable")`), 84);
      for (let i = 0; i < 20; i++) assert.is(await run(p2, `wk.get("durable", "one/${i}")`), `value ${i}`);
      for (let i = 0; i < 64; i++) assert.is(await run(p2, `wk.get("durable", "many/${i}")`), `v${i}`);
    } finally {
      await again.close();
    }
  });

  test("two tabs on one origin: the second open of a store gets LOCKED; it opens once the first tab is gone, with its data", async () => {
    // One profile: both tabs share IndexedDB and Web Locks.
    const a = await freshPage(ctx.browser), b = await freshPage(ctx.browser);
    try {
      assert.is(await run(a, `wk.open("tabs", 6)`), "ok");
      assert.is(await run(a, `wk.put("tabs", "from", "tab a")`), "ok");
      assert.is(await run(b, `wk.open("tabs", 6)`), "LOCKED");
      assert.is(await run(b, `wk.open("tabs", 6)`), "LOCKED", "and again");
      assert.is(await run(a, `wk.put("tabs", "still", "writing")`), "ok", "the first tab is unaffected");
      await a.close(); // the tab goes away without closing its node: the browser releases its lock
      // …once it has torn the tab down, which it does asynchronously: LOCKED until then.
      let got = "LOCKED";
      for (let i = 0; i < 100 && got === "LOCKED"; i++) {
        got = await run<string>(b, `wk.open("tabs", 6)`);
        if (got === "LOCKED") await b.waitForTimeout(50);
      }
      assert.is(got, "ok");
      assert.is(await run(b, `wk.get("tabs", "still")`), "writing");
      assert.is(await run(b, `wk.get("tabs", "from")`), "tab a");
      assert.is(await run(b, `wk.open("other", 6)`), "ok", "another store of the origin is its own lock");
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("in a dedicated worker: a store opens and keeps its puts; a tab and a worker on one store: the second gets LOCKED", async () => {
    const p = ctx.page;
    const w = (expr: string) => run(p, `wk.worker(${JSON.stringify(expr)})`);
    assert.is(await w(`wk.open("worker", 12)`), "ok");
    assert.ok(((await w(`wk.putMany("worker", "w/", 16)`)) as string[]).every((r) => r === "ok"));
    assert.is(await run(p, `wk.open("worker", 12)`), "LOCKED", "the page while the worker holds it");
    await run(p, `wk.stopWorker()`); // terminated without close: the lock goes with it
    let got = "LOCKED";
    for (let i = 0; i < 100 && got === "LOCKED"; i++) {
      got = await run<string>(p, `wk.open("worker", 12)`);
      if (got === "LOCKED") await p.waitForTimeout(50);
    }
    assert.is(got, "ok");
    assert.is(await run(p, `wk.size("worker")`), 16, "every put the worker had acknowledged");
    assert.is(await w(`wk.open("worker", 12)`), "LOCKED", "and now the worker is the second");
    await run(p, `wk.close("worker")`);
    await run(p, `wk.stopWorker()`);
  });

  test("damaged rows (a value failing its CRC, a value cut short, damage mid-log) open to the valid prefix with a warning; nothing is deleted", async () => {
    const p = ctx.page;
    assert.is(await run(p, `wk.open("damage", 8)`), "ok");
    for (let i = 0; i < 10; i++) await run(p, `wk.put("damage", "k${i}", "value ${i}")`); // one row each
    await run(p, `wk.close("damage")`);
    // The last row's value fails its CRC: that put is not replayed, the nine before it are.
    await run(p, `wk.flipByte("damage", "last")`);
    assert.is(await run(p, `wk.open("damage", 8)`), "ok");
    let w = await run<string[]>(p, `wk.warnings("damage")`);
    assert.ok(w.some((m) => /DAMAGED LOG ROW 10 .*\(crc\)/.test(m)), w.join("\n"));
    assert.equal(await run(p, `wk.keys("damage")`), ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8"]);
    assert.is(await run(p, `wk.countRows("damage", "damaged")`), 1, "the damaged row is kept aside");
    // Three puts in one row, the row's last value cut short: the first two are kept.
    assert.ok((await run<string[]>(p, `wk.putMany("damage", "g", 3)`)).every((r) => r === "ok"));
    await run(p, `wk.close("damage")`);
    await run(p, `wk.truncate("damage", "last", 3)`);
    assert.is(await run(p, `wk.open("damage", 8)`), "ok");
    w = await run<string[]>(p, `wk.warnings("damage")`);
    assert.ok(w.some((m) => /DAMAGED LOG ROW \d+ at byte \d+ \((torn|crc)\)/.test(m)), w.join("\n"));
    assert.equal((await run<string[]>(p, `wk.keys("damage")`)).filter((k) => k.startsWith("g")), ["g0", "g1"]);
    // Damage in the middle of the log: the prefix opens, the later rows are set aside, not replayed.
    await run(p, `wk.put("damage", "after1", "x")`);
    await run(p, `wk.put("damage", "after2", "y")`);
    await run(p, `wk.close("damage")`);
    await run(p, `wk.flipByte("damage", 2)`); // the row of k2
    assert.is(await run(p, `wk.open("damage", 8)`), "ok");
    w = await run<string[]>(p, `wk.warnings("damage")`);
    assert.ok(w.some((m) => /DAMAGED LOG ROW 3 .* and \d+ later row\(s\) not replayed/.test(m)), w.join("\n"));
    assert.equal(await run(p, `wk.keys("damage")`), ["k0", "k1"]);
    assert.is(await run(p, `wk.countRows("damage", "damaged")`), 3);
    // Clean from then on: a reopen says nothing, new puts follow.
    assert.is(await run(p, `wk.put("damage", "new", "z")`), "ok");
    await run(p, `wk.close("damage")`);
    assert.is(await run(p, `wk.open("damage", 8)`), "ok");
    assert.equal(await run(p, `wk.warnings("damage")`), []);
    assert.equal(await run(p, `wk.keys("damage")`), ["k0", "k1", "new"]);
    await run(p, `wk.close("damage")`);
  });

  // Chromium's quota cannot be forced small here: CDP Storage.overrideQuotaForOrigin is
  // accepted, but navigator.storage.estimate() still reports 10 GiB and 20 MB of random
  // values went in. So the fault seam throws the DOMException a full quota raises.
  test("fuzz: a row mutated at random (flipped, cut, extended, not bytes) always opens to an in-order prefix, and stays repaired", async () => {
    const problems = await run<string[]>(ctx.page, `wk.fuzz(${0x5eed}, 16)`, 60_000);
    assert.equal(problems, []);
  });

  test("automatic snapshots (snapshotBytes 4 KiB) under 16 concurrent writers: the log shrinks, every acknowledged put reopens", async () => {
    const p = ctx.page;
    assert.is(await run(p, `wk.open("auto", 14, 4096)`), "ok");
    let shrank = 0, last = 0;
    for (let round = 0; round < 20; round++) {
      const r = await run<string[]>(p, `wk.putMany("auto", "r${round}/", 16, "${"x".repeat(40)}")`);
      assert.ok(r.every((x) => x === "ok"), r.join());
      const wal = (await run<{ walBytes: number }>(p, `wk.stats("auto")`)).walBytes;
      if (wal < last) shrank++;
      last = wal;
    }
    await run(p, `wk.persist("auto")`);
    assert.ok(shrank >= 2, `the log shrank ${shrank} times`);
    assert.ok(await run<number>(p, `wk.countRows("auto", "snapshot")`) >= 1, "a snapshot was written");
    await run(p, `wk.close("auto")`);
    assert.is(await run(p, `wk.open("auto", 14, 4096)`), "ok");
    assert.is(await run(p, `wk.size("auto")`), 320);
    assert.is(await run(p, `wk.get("auto", "r19/15")`), `${"x".repeat(40)}15`);
    assert.equal(await run(p, `wk.warnings("auto")`), []);
    await run(p, `wk.close("auto")`);
  });

  test("a damaged snapshot chunk: the records before the damage and the log after the snapshot load, with a warning", async () => {
    const p = ctx.page;
    assert.is(await run(p, `wk.open("snapdmg", 13)`), "ok");
    for (let i = 0; i < 6; i++) await run(p, `wk.put("snapdmg", "s${i}", "snapshot ${i}")`);
    await run(p, `wk.persist("snapdmg")`);
    await run(p, `wk.put("snapdmg", "after", "the log")`);
    await run(p, `wk.close("snapdmg")`);
    await run(p, `wk.flipSnapshotByte("snapdmg", 0)`); // the chunk's last record: s5
    assert.is(await run(p, `wk.open("snapdmg", 13)`), "ok");
    const w = await run<string[]>(p, `wk.warnings("snapdmg")`);
    assert.ok(w.some((m) => /snapshot chunk 0 is damaged at byte \d+ \(crc\)/.test(m)), w.join("\n"));
    assert.equal(await run(p, `wk.keys("snapdmg")`), ["after", "s0", "s1", "s2", "s3", "s4"]);
    await run(p, `wk.close("snapdmg")`);
  });

  test("quota exhausted (fault seam at the IndexedDB boundary): the put fails STORAGE_FULL, the store latches, every acknowledged put is kept", async () => {
    const p = ctx.page;
    assert.is(await run(p, `wk.open("quota", 9)`), "ok");
    assert.ok((await run<string[]>(p, `wk.putMany("quota", "ok/", 20)`)).every((r) => r === "ok"));
    await run(p, `wk.quotaFull("quota", true)`);
    assert.is(await run(p, `wk.put("quota", "refused", "x")`), "STORAGE_FULL");
    await run(p, `wk.quotaFull("quota", false)`);
    assert.is(await run(p, `wk.put("quota", "later", "x")`), "STORAGE_FULL", "latched until reopened");
    assert.is(await run(p, `wk.get("quota", "refused")`), null, "memory never shows the refused put");
    await run(p, `wk.close("quota")`);
    assert.is(await run(p, `wk.open("quota", 9)`), "ok");
    assert.is(await run(p, `wk.size("quota")`), 20);
    assert.is(await run(p, `wk.put("quota", "after", "reopen")`), "ok");
    await run(p, `wk.close("quota")`);
  });

  // A store written by this release (format 1), committed; WAVEKV_WRITE_BROWSER_FIXTURE=1 rewrites it.
  test("a format-1 store written by this release (test/fixtures/browser-store-v1) opens with every entry, tombstone and peer", async () => {
    const p = ctx.page;
    const file = join(root, "test", "fixtures", "browser-store-v1", "store.json");
    if (process.env.WAVEKV_WRITE_BROWSER_FIXTURE === "1") {
      assert.is(await run(p, `wk.open("fixture-src", 11)`), "ok");
      await run(p, `wk.writeFixture("fixture-src")`);
      const expected = await run(p, `wk.entries("fixture-src")`);
      await run(p, `wk.close("fixture-src")`);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, JSON.stringify({ node: 11, expected, store: await run(p, `wk.dump("fixture-src")`) }, null, 1) + "\n");
    }
    const fixture = JSON.parse(readFileSync(file, "utf8")) as { node: number; expected: unknown; store: Record<string, [unknown, unknown][]> };
    assert.is(fixture.store.snapshot!.length, 1, "the fixture has a snapshot chunk");
    assert.ok(fixture.store.log!.length >= 2, "and log rows after it");
    await run(p, `wk.load("fixture", ${JSON.stringify(fixture.store)})`);
    assert.is(await run(p, `wk.open("fixture", ${fixture.node})`), "ok");
    assert.equal(await run(p, `wk.warnings("fixture")`), []);
    assert.equal(await run(p, `wk.entries("fixture")`), fixture.expected);
    assert.is(await run(p, `wk.put("fixture", "new", "write")`), "ok", "and it takes writes");
    await run(p, `wk.close("fixture")`);
  });

  test("a store holds one node: opening it with another id is INVALID_ARGUMENT; an empty name too", async () => {
    const p = ctx.page;
    assert.is(await run(p, `wk.open("ids", 1)`), "ok");
    await run(p, `wk.close("ids")`);
    assert.is(await run(p, `wk.open("ids", 2)`), "INVALID_ARGUMENT");
    assert.is(await run(p, `wk.open("", 2)`), "INVALID_ARGUMENT");
    assert.is(await run(p, `wk.open("ids", 1)`), "ok", "the failed opens released the lock");
    await run(p, `wk.close("ids")`);
  });

  test.run();
}
