/**
 * How soon a put on a server node is visible in a browser node (issue 19, "Live push to
 * browsers"): a server node (serveHttp on 127.0.0.1 with a shared secret, in this process,
 * on this runtime) and a browser node in headless Chromium (the ESM bundle, FetchTransport,
 * SyncManager), behind a same-origin streaming proxy (test/helpers/push-page.ts).
 *
 * - live push (`live: true`): 1 000 puts one after another, each waited for in the page
 *   before the next; latency = the page's arrival time (its change feed) − the time just
 *   before the put, both epoch ms with sub-ms resolution on this one machine.
 * - today's polling (`live: false`, SyncManager rounds at the default interval, 30 s): the
 *   same 1 000 puts spread evenly over two intervals (one after another would take hours);
 *   latency measured the same way. Expected: uniform over the interval, p50 ≈ 15 s.
 * - polling at 1 s (serve's default interval, the console's poll), for context.
 *
 * With no Chromium (or no playwright-core) nothing is measured: the module says so and
 * returns no rows. `--quick`: 200 puts, polling over one interval.
 *
 *   node --import tsx bench/push.ts [--quick]      bun bench/push.ts [--quick]
 */
import { Node } from "../src/node/node.js";
import { SyncManager } from "../src/node/manager.js";
import { serveHttp } from "../src/transport/http.js";
import { CHROMIUM_ARGS, findChromium, loadPlaywright } from "../test/helpers/console-chromium.js";
import { pushPageFiles, startPageServer } from "../test/helpers/push-page.js";
import { formatTable, withRatios, withVerdicts, type BenchFn, type Row } from "./report.js";

export const GROUP = "put on a server node visible in a browser node (headless Chromium, localhost)";
const SECRET = "push-bench-secret-0123456789";
const DEFAULT_INTERVAL_MS = 30_000;

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const now = () => performance.timeOrigin + performance.now();

export const runPushBenchmarks: BenchFn = async ({ quick, onProgress }) => {
  const chromium = findChromium();
  const pw = chromium ? await loadPlaywright() : undefined;
  if (!chromium || !pw) {
    onProgress?.(`push: NOT MEASURED: ${chromium ? "playwright-core is not installed" : "no Chromium found (apt-get install -y chromium, or set WAVEKV_CHROMIUM)"}`);
    return [];
  }
  const count = quick ? 200 : 1_000;
  const node = await Node.open({ id: 1 });
  const sync = new SyncManager(node, { request: () => Promise.reject(new Error("the server does not dial out")) }, { onWarning: () => undefined });
  const http = await serveHttp(sync, { node, secret: SECRET, onWarning: () => undefined });
  const web = await startPageServer(await pushPageFiles(), () => http.url);
  const browser = await pw.chromium.launch({ executablePath: chromium, headless: true, args: CHROMIUM_ARGS, timeout: 20_000 });
  let run = 0;
  /** A fresh page (a fresh browser node) in the given mode; arrivals of "bench/<run>/…" keys are reported here. */
  const open = async (live: boolean, intervalMs: number) => {
    const page = await browser.newPage();
    const prefix = `bench/${++run}/`;
    const seen = new Map<string, (t: number) => void>();
    const arrived = new Map<string, number>();
    await page.exposeFunction("wkSeen", (key: string, t: number) => {
      // Earlier runs' keys reach this new node too (its first round): not this run's.
      if (!key.startsWith(prefix)) return;
      arrived.set(key, t);
      seen.get(key)?.(t);
    });
    // Each page is a new node: a new id (the server holds the uuid of every id it met).
    await page.goto(`${web.url}/?secret=${encodeURIComponent(SECRET)}&id=${1 + run}&live=${live ? 1 : 0}&interval=${intervalMs}`);
    await page.evaluate("window.wkReady");
    if (live) while (!((await page.evaluate("wk.live()")) as number[]).includes(1)) await new Promise((r) => setTimeout(r, 20));
    // The start round (and the stream's connect round) settle before anything is measured.
    await new Promise((r) => setTimeout(r, 500));
    return { page, seen, arrived, prefix };
  };
  const stats = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return { p50: quantile(s, 0.5), p99: quantile(s, 0.99), n: s.length };
  };
  try {
    onProgress?.(`push: live push, ${count} puts one after another`);
    const live = await open(true, 600_000);
    const livePushes: number[] = [];
    // The first 20 warm the JIT on both sides and are not counted.
    for (let i = -20; i < count; i++) {
      const key = `${live.prefix}${i}`;
      const arrival = new Promise<number>((resolve) => live.seen.set(key, resolve));
      const t0 = now();
      await node.put(key, `v${i}`);
      const ms = (await arrival) - t0;
      if (i >= 0) livePushes.push(ms);
    }
    const liveRounds = (await live.page.evaluate("wk.stats().rounds")) as number;
    await live.page.evaluate("wk.stop()");
    await live.page.close();

    const spread = async (intervalMs: number, spanMs: number) => {
      const poll = await open(false, intervalMs);
      const sent = new Map<string, number>();
      const gap = spanMs / count;
      const start = now();
      for (let i = 0; i < count; i++) {
        const wait = start + i * gap - now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        const key = `${poll.prefix}${i}`;
        sent.set(key, now());
        await node.put(key, `v${i}`);
      }
      const deadline = now() + intervalMs * 1.5 + 5_000;
      while (poll.arrived.size < count && now() < deadline) await new Promise((r) => setTimeout(r, 50));
      await poll.page.evaluate("wk.stop()");
      await poll.page.close();
      if (poll.arrived.size < count) throw new Error(`polling at ${intervalMs} ms: only ${poll.arrived.size} of ${count} puts arrived`);
      return [...sent].map(([k, t]) => poll.arrived.get(k)! - t);
    };
    const spans = quick ? 1 : 2;
    onProgress?.(`push: polling at ${DEFAULT_INTERVAL_MS / 1000} s (the default), ${count} puts over ${spans * DEFAULT_INTERVAL_MS / 1000} s`);
    const polled = await spread(DEFAULT_INTERVAL_MS, spans * DEFAULT_INTERVAL_MS);
    onProgress?.(`push: polling at 1 s, ${count} puts over ${spans * 1} s`);
    const polledFast = await spread(1_000, spans * 1_000);

    const L = stats(livePushes), P = stats(polled), F = stats(polledFast);
    const poll30 = `polling, ${DEFAULT_INTERVAL_MS / 1000} s rounds (SyncManager default)`;
    const rows: Row[] = [
      { group: GROUP, name: `${poll30}: p50`, value: P.p50, unit: "ms", note: `${P.n} puts spread over ${spans} intervals` },
      { group: GROUP, name: `${poll30}: p99`, value: P.p99, unit: "ms" },
      { group: GROUP, name: "polling, 1 s rounds (serve's default): p50", value: F.p50, unit: "ms", baseline: `${poll30}: p50` },
      { group: GROUP, name: "polling, 1 s rounds (serve's default): p99", value: F.p99, unit: "ms", baseline: `${poll30}: p99` },
      { group: GROUP, name: "live push stream: p50", value: L.p50, unit: "ms", baseline: `${poll30}: p50`, note: `${L.n} puts one after another, ${Math.round(P.p50 / L.p50)}x sooner than polling at 30 s, ${Math.round(F.p50 / L.p50)}x than at 1 s; ${liveRounds} sync rounds in the page (start and connect)` },
      { group: GROUP, name: "live push stream: p99", value: L.p99, unit: "ms", baseline: `${poll30}: p99`, note: `${Math.round(P.p99 / L.p99)}x sooner than polling at 30 s, ${Math.round(F.p99 / L.p99)}x than at 1 s` },
    ];
    return withVerdicts(withRatios(rows));
  } finally {
    await browser.close().catch(() => undefined);
    await web.close();
    await sync.stop();
    await http.close();
    await node.close();
  }
};

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith("bench/push.ts")) {
  const rows = await runPushBenchmarks({ quick: process.argv.includes("--quick"), onProgress: (m) => console.error(m) });
  console.log(formatTable(rows));
}
