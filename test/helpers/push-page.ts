/**
 * A page with a browser node for test/package/browser-push.ts and bench/push.ts, and the
 * static server that serves it beside the browser bundle and proxies /wavekv/* to a node,
 * streaming answers through unbuffered (a buffering proxy would hold the push stream back).
 *
 *   const web = await startPageServer(await pushPageFiles(), () => server.http.url);
 *   await page.goto(`${web.url}/?secret=S&live=1&interval=600000`);  await page.evaluate("window.wkReady");
 *
 * In the page: node 2 (or `id`) with peer 1 at /wavekv, SyncManager started (`live` from the query),
 * `wk.get/live/stats/waitFor/stop`, and every change under "bench/" reported to
 * `window.wkSeen(key, epochMs)` when the test exposes it (arrival times for the bench).
 * Not a test file: the runner skips test/helpers/.
 */
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
// @ts-expect-error: a plain .mjs build script, no type declarations
import { bundleBrowser, kernelWasm } from "../../scripts/build-browser.mjs";

const PAGE = `<!doctype html><meta charset="utf-8"><title>wavekv push</title><body><script type="module">
const q = new URLSearchParams(location.search);
window.wkReady = (async () => {
  const lib = await import("./wavekv.js");
  await lib.init();
  const node = await lib.Node.open({ id: Number(q.get("id") ?? 2), peers: [1] });
  const transport = new lib.FetchTransport({ peers: { 1: "/wavekv" }, secret: q.get("secret") ?? undefined, timeoutMs: 5000 });
  const sync = new lib.SyncManager(node, transport, { live: q.get("live") === "1", intervalMs: Number(q.get("interval") ?? 600000), retryMs: 100, onWarning: () => {} });
  const text = (e) => (e && e.value ? new TextDecoder().decode(e.value) : null);
  const stop = new AbortController();
  (async () => {
    for await (const e of node.watch("bench/", { signal: stop.signal })) window.wkSeen?.(e.key, performance.timeOrigin + performance.now());
  })().catch(() => {});
  sync.start();
  window.wk = {
    node, sync,
    get: (k) => text(node.get(k)),
    live: () => sync.liveStreams(),
    stats: () => ({ ...sync.stats }),
    /** Resolves once key k holds value v (polls the in-page node, not the server). */
    waitFor: (k, v) => new Promise((resolve) => { const tick = () => text(node.get(k)) === v ? resolve(true) : setTimeout(tick, 2); tick(); }),
    stop: () => { stop.abort(); return sync.stop(); },
  };
})();
</script></body>`;

export type PageFiles = Map<string, { body: Uint8Array | string; type: string }>;

/** The page, wavekv.js (the ESM bundle) and wavekv.wasm. */
export async function pushPageFiles(): Promise<PageFiles> {
  const [file, wasm] = await Promise.all([bundleBrowser({ kernel: "file" }), kernelWasm()]);
  return new Map<string, { body: Uint8Array | string; type: string }>([
    ["/index.html", { body: PAGE, type: "text/html; charset=utf-8" }],
    ["/wavekv.js", { body: file.js, type: "text/javascript" }],
    ["/wavekv.wasm", { body: wasm, type: "application/wasm" }],
  ]);
}

/** Serves `files`, and /wavekv/<route> from the node at `upstream()` (prefix stripped, auth headers kept, answers streamed). */
export async function startPageServer(files: PageFiles, upstream: () => string) {
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (url.pathname.startsWith("/wavekv/")) {
      const target = new URL(url.pathname.slice("/wavekv".length) + url.search, upstream());
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string" && (k === "content-type" || k === "content-length" || k.startsWith("x-wavekv-"))) headers[k] = v;
      req.socket.setNoDelay(true);
      const up = request(target, { method: req.method, headers }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, { "content-type": upRes.headers["content-type"] ?? "application/octet-stream", "cache-control": "no-store" });
        res.flushHeaders();
        upRes.pipe(res);
      });
      up.on("socket", (sock) => sock.setNoDelay(true));
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
