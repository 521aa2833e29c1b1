/**
 * Runs inside headless Chromium for test/package/browser.ts (served by it on 127.0.0.1, next to
 * the bundle it builds). Exposes `window.wk`; `window.wkReady` settles when set up.
 *
 *   ?bundle=file|inline   wavekv.js + wavekv.wasm (init() streams the kernel) or wavekv.inline.js
 *   &secret=S             HMAC secret for the FetchTransport to node 1 at /wavekv (proxied)
 *   &noinit=1             skip init(): window.wkReady resolves to "no error" or the error of a first write
 *
 * Plain JavaScript on purpose: the test passes only strings to page.evaluate, so no
 * TypeScript helper ever has to exist in the page.
 */
const params = new URLSearchParams(location.search);
const bundle = params.get("bundle") ?? "file";
const secret = params.get("secret") ?? undefined;

// Count streaming compilations: proves init() took the compileStreaming path.
const streamed = { count: 0 };
const compileStreaming = WebAssembly.compileStreaming?.bind(WebAssembly);
if (compileStreaming) WebAssembly.compileStreaming = (res) => { streamed.count++; return compileStreaming(res); };

window.wkReady = (async () => {
  const lib = await import(bundle === "inline" ? "./wavekv.inline.js" : "./wavekv.js");
  // wavekv/browser/memory: memory.js beside wavekv.js (sharing its chunks); the one-file bundle has it all.
  const memory = bundle === "inline" ? lib : await import("./memory.js");
  if (params.has("noinit")) {
    try { await (await lib.Node.open({ id: 3 })).put("k", "v"); return "no error"; } catch (e) { return String(e && e.message); }
  }
  await lib.init();
  const { Node, SyncManager, FetchTransport } = lib;
  const { MemoryNetwork } = memory;
  const node = await Node.open({ id: 2, peers: [1] });
  const transport = new FetchTransport({ peers: { 1: "/wavekv" }, secret, timeoutMs: 5_000 });
  const sync = new SyncManager(node, transport, { intervalMs: 60_000, onWarning: () => {} });
  const text = (e) => (e && e.value ? new TextDecoder().decode(e.value) : e ? null : undefined);

  window.wk = {
    lib, node, sync, streamed,
    memoryFrom: lib.MemoryNetwork === undefined && memory !== lib ? "memory.js" : "wavekv.js",
    isSecureContext: globalThis.isSecureContext,
    put: (k, v) => node.put(k, v).then((e) => e.seq),
    putBytes: (k, bytes) => node.put(k, new Uint8Array(bytes)).then((e) => e.seq),
    del: (k) => node.delete(k).then((e) => (e ? e.seq : 0)),
    get: (k) => text(node.getIncludingTombstones(k)),
    getBytes: (k) => [...(node.get(k)?.value ?? [])],
    digest: () => node.digest(),
    size: () => node.size,
    /** One round with node 1; the report, JSON-safe. */
    async syncOnce() {
      const [r] = await sync.syncOnce();
      return { ok: r.ok, error: r.error?.message, sent: r.sentEntries, received: r.receivedEntries, pages: r.pages };
    },
    /** A request signed with another secret: the server must refuse it. */
    async wrongSecret() {
      const t = new FetchTransport({ peers: { 1: "/wavekv" }, secret: "not-the-secret", timeoutMs: 5_000 });
      try { await t.request(1, new Uint8Array(4)); return "accepted"; } catch (e) { return `${e.code}: ${e.message}`; }
    },
    /** The SPEC section 5 digest of fixed writes (fixed clock), to compare with node:crypto's. */
    async fixedDigest() {
      const n = await Node.open({ id: 9, clock: () => 1_700_000_000_000 });
      await n.put("a", "1"); await n.put("é/ü", new Uint8Array([0, 1, 255])); await n.put("z", "x".repeat(70_000)); await n.delete("a");
      const d = n.digest();
      await n.close();
      return d;
    },
    /** Two in-page nodes over a lossy MemoryNetwork (setImmediate shim, no server). */
    async memoryNetwork() {
      const net = new MemoryNetwork({ seed: 5, drop: 0.2, reorder: true });
      const a = await Node.open({ id: 11, peers: [12] }), b = await Node.open({ id: 12, peers: [11] });
      const sa = new SyncManager(a, net.transport(11), { onWarning: () => {} }), sb = new SyncManager(b, net.transport(12), { onWarning: () => {} });
      net.register(11, sa); net.register(12, sb);
      for (let i = 0; i < 50; i++) await (i % 2 ? a : b).put(`m/${i % 20}`, `v${i}`);
      let rounds = 0;
      while (a.digest() !== b.digest() && rounds++ < 40) await Promise.allSettled([sa.syncOnce(), sb.syncOnce()]);
      const out = { equal: a.digest() === b.digest(), rounds, size: b.size };
      await Promise.all([sa.stop(), sb.stop()]); await Promise.all([a.close(), b.close()]);
      return out;
    },
    async close() { await sync.stop(); await node.close(); },
  };
  document.getElementById("log").textContent = `ready: ${bundle} bundle, node ${node.id} ${node.uuid}`;
})();
