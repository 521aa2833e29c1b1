// The console's charts (docs/design/0029) in a real headless Chromium: drawn from the
// state endpoint's history (src/app/console-history.ts), no external resource, a text
// alternative for each, updated as writes arrive, legible in light and dark.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { writeConsoleAssets } from "../../scripts/build-console.mjs";
import { WebConsole, type ConsoleSnapshot } from "../../src/app/console.js";
import { serveHttp } from "../../src/transport/http.js";
import { Node } from "../../src/node/node.js";
import { SyncManager } from "../../src/node/manager.js";
import { MemoryNetwork } from "../../src/transport/memory.js";
import { CHROMIUM_ARGS, CONTRAST_CHECK, findChromium, loadPlaywright, within } from "../helpers/console-chromium.js";

await writeConsoleAssets();
const chromiumPath = findChromium();
const playwright = chromiumPath ? await loadPlaywright() : undefined;
const quiet = () => undefined;

async function twoNodes() {
  const net = new MemoryNetwork();
  const a = await Node.open({ id: 1, peers: [2], onWarning: quiet });
  const b = await Node.open({ id: 2, peers: [1], onWarning: quiet });
  const sa = new SyncManager(a, net.transport(1), { intervalMs: 60_000, onWarning: quiet });
  const sb = new SyncManager(b, net.transport(2), { intervalMs: 60_000, onWarning: quiet });
  net.register(1, sa);
  net.register(2, sb);
  const web = new WebConsole({ node: a, sync: sa, secretRequired: false, historyIntervalMs: 100, historySamples: 40 });
  const server = await serveHttp(sa, { node: a, console: web, onWarning: quiet });
  return { a, b, sa, sb, web, server, close: async () => { web.close(); await server.close(); await sa.stop(); await sb.stop(); await a.close(); await b.close(); } };
}

test("the state endpoint carries the charts' samples: rates from the feed, lag and round time per peer, since= for what is new", async () => {
  const c = await twoNodes();
  try {
    const get = async (since: number) => (await (await fetch(`${c.server.url}/console/api/state?since=${since}`)).json()) as ConsoleSnapshot;
    // After a first sample, so that every change falls in an interval with a known start.
    while ((await get(0)).history.samples.length === 0) await new Promise((r) => setTimeout(r, 20));
    for (let i = 0; i < 5; i++) await c.a.put(`k${i}`, "v");
    await c.b.put("remote", "r");
    await c.sa.syncOnce(); // node 2 takes node 1's five and confirms them in its answer, which carries its own write
    await new Promise((r) => setTimeout(r, 350));
    const s = await get(0);
    assert.is(s.history.intervalMs, 100);
    assert.is(s.history.capacity, 40);
    assert.ok(s.history.samples.length >= 3, `samples: ${s.history.samples.length}`);
    // Rate × the sample's own interval (timers drift): the changes counted.
    const h = s.history.samples;
    const sum = (f: (x: ConsoleSnapshot["history"]["samples"][number]) => number) => h.slice(1).reduce((t, x, i) => t + (f(x) * (x.at - h[i]!.at)) / 1000, 0);
    assert.ok(Math.abs(sum((x) => x.writesPerSec) - 5) < 0.2, `writes counted: ${sum((x) => x.writesPerSec)}`);
    assert.ok(Math.abs(sum((x) => x.mergesPerSec) - 1) < 0.2, `merges counted: ${sum((x) => x.mergesPerSec)}`);
    const last = s.history.samples[s.history.samples.length - 1]!;
    assert.equal(last.peers.map((p) => [p.id, p.behind]), [[2, 0]]);
    assert.is(last.fsyncMs, null, "an in-memory node has no fsync");
    const newer = await get(last.at);
    assert.ok(newer.history.samples.every((x) => x.at > last.at));
  } finally {
    await c.close();
  }
});

if (!chromiumPath || !playwright) {
  console.log(`\n!! test/app/console-charts.ts browser case NOT RUN: ${!chromiumPath ? "no Chromium found (apt-get install -y chromium, or set WAVEKV_CHROMIUM)" : "playwright-core is not installed (npm ci)"}\n`);
} else {
  test("in Chromium: four charts render with text alternatives, update as writes arrive, and pass contrast in light and dark", async () => {
    const c = await twoNodes();
    const browser = await within(20_000, "chromium launch", playwright.chromium.launch({ executablePath: chromiumPath, headless: true, args: CHROMIUM_ARGS, timeout: 20_000 }));
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, colorScheme: "light" });
      page.setDefaultTimeout(10_000);
      const errors: string[] = [];
      const outside: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      page.on("request", (r) => { if (!r.url().startsWith(c.server.url) && !r.url().startsWith("data:")) outside.push(r.url()); });
      await page.goto(c.server.url + "/");
      await page.locator("#charts-card").waitFor({ state: "visible" });
      for (const id of ["chart-rate", "chart-lag", "chart-round", "chart-fsync"]) {
        const fig = page.locator(`#${id}`);
        await fig.waitFor();
        // The text alternative: the svg is an image named by its title and described in words.
        const label = await fig.locator("svg.chart-svg").getAttribute("aria-labelledby");
        assert.ok(label && label.includes(`${id}-d`), id);
        assert.match(await fig.locator("desc").textContent() ?? "", /last/);
        assert.ok((await fig.locator("figcaption").innerText()).length > 0);
      }
      // Writes on this node, a round that makes the peer confirm them: the rate line rises
      // above zero, and the lag chart's words say so.
      const before = await page.locator("#chart-rate").getAttribute("data-summary");

      for (let i = 0; i < 20; i++) await c.a.put(`w${i}`, "x");
      await page.waitForFunction(() => /writes here: now [1-9]|writes here: now 0.*peak [1-9]/.test(document.querySelector("#chart-rate")?.getAttribute("data-summary") ?? ""));
      await page.waitForFunction(() => /node 2: now [1-9]/.test(document.querySelector("#chart-lag")?.getAttribute("data-summary") ?? ""));
      await c.sa.syncOnce();
      await page.waitForFunction(() => /node 2: now 0/.test(document.querySelector("#chart-lag")?.getAttribute("data-summary") ?? ""));
      assert.is.not(await page.locator("#chart-rate").getAttribute("data-summary"), before);
      assert.ok(await page.locator("#chart-rate polyline").count() >= 1);
      // Each poll redraws from the new samples: the round-time line moves on.
      const points = await page.locator("#chart-round polyline").first().getAttribute("points");
      await page.waitForFunction((p) => document.querySelector("#chart-round polyline")?.getAttribute("points") !== p, points);
      for (const scheme of ["light", "dark"] as const) {
        await page.emulateMedia({ colorScheme: scheme });
        const failures = (await page.evaluate(CONTRAST_CHECK)) as unknown[];
        assert.equal(failures, [], `${scheme}: ${JSON.stringify(failures)}`);
        // The series colour follows the scheme.
        // (Read in one page turn: each poll redraws the figure, and a detached line has no style.)
        const stroke = await page.evaluate(`getComputedStyle(document.querySelector("#chart-rate polyline.s0")).stroke`);
        assert.is(stroke, scheme === "light" ? "rgb(9, 105, 218)" : "rgb(68, 147, 248)");
      }
      assert.equal(outside, [], "nothing is fetched from elsewhere");
      assert.equal(errors, []);
    } finally {
      await browser.close();
      await c.close();
    }
  });
}

test.run();
