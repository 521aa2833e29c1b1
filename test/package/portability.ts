// The browser entry (src/browser.ts) away from Node: no `node:` module reachable from
// it, the bundle within its size target, and the core — in-memory nodes, SyncManager,
// MemoryNetwork, the WASM kernel — converging inside a bare JavaScript realm that has
// no process, Buffer, require, setImmediate or file system, on this runtime's own
// WebAssembly (Node's V8 or Bun's JavaScriptCore).
import { test } from "uvu";
import * as assert from "uvu/assert";
import vm from "node:vm";
import { readFileSync } from "node:fs";
import type { Metafile } from "esbuild";
// @ts-expect-error: a plain .mjs build script, no type declarations
import { bundleBrowser, kernelWasm, TARGETS } from "../../scripts/build-browser.mjs";
import { Node, SyncManager, MemoryNetwork, init, isWaveKVError } from "../../src/browser.js";

interface Bundle {
  js: Uint8Array;
  text: string;
  metafile: Metafile;
  nodeImports: { module: string; importer: string; kind: string }[];
}

const BUILTIN = /^(node:|(fs|path|os|crypto|http|https|net|url|zlib|child_process|stream|buffer|util|module|worker_threads)(\/|$))/;

test("no node: module is statically reachable from src/browser.ts (only the `dir` storage is, by dynamic import)", async () => {
  const b = (await bundleBrowser({ kernel: "file", stub: false, minify: false })) as Bundle;
  const inputs = b.metafile.inputs;
  // Walk static imports only, from the entry.
  const reached = new Set<string>(["src/browser.ts"]);
  const stack = ["src/browser.ts"];
  const offenders: string[] = [];
  while (stack.length > 0) {
    const file = stack.pop()!;
    for (const imp of inputs[file]?.imports ?? []) {
      if (imp.kind === "dynamic-import") continue;
      if (BUILTIN.test(imp.path)) { offenders.push(`${file} → ${imp.path}`); continue; }
      if (!reached.has(imp.path)) { reached.add(imp.path); stack.push(imp.path); }
    }
  }
  assert.equal(offenders, [], `static node: imports reachable from the browser entry:\n${offenders.join("\n")}`);
  // The only dynamic edge into Node-only code is Node.open's storage import.
  const dynamic = Object.entries(inputs).flatMap(([file, i]) => i.imports.filter((x) => x.kind === "dynamic-import").map((x) => `${file} → ${x.path}`));
  assert.equal(dynamic.sort(), ["src/browser.ts → src/storage/browser-storage.ts", "src/node/manager.ts → src/node/live.ts", "src/node/node.ts → src/node/batch.ts", "src/node/node.ts → src/storage/storage.ts", "src/transport/fetch.ts → src/transport/push-frames.ts"]);
  assert.ok(b.nodeImports.length > 0, "sanity: the unstubbed graph does contain the storage's node:fs");
});

test("the shipped bundles import nothing from node: and stay within the size targets", async () => {
  const [file, inline] = (await Promise.all([bundleBrowser({ kernel: "file", split: true }), bundleBrowser({ kernel: "inline" })])) as (Bundle & { core: number; store?: Uint8Array; live: number; chunks: { name: string }[] })[];
  const wasm = (await kernelWasm()) as Uint8Array;
  assert.equal(file!.nodeImports, []);
  assert.equal(inline!.nodeImports, []);
  const store = file!.store?.length ?? NaN;
  console.log(`  browser bundle: wavekv.js + shared chunk ${(file!.core / 1024).toFixed(1)} KiB, browser store chunk ${(store / 1024).toFixed(1)} KiB, live push chunks ${(file!.live / 1024).toFixed(1)} KiB, wavekv.wasm ${(wasm.length / 1024).toFixed(1)} KiB, wavekv.inline.js ${(inline!.js.length / 1024).toFixed(1)} KiB (minified)`);
  // What a page loads before any store opens: the entry and the chunks it imports statically.
  assert.ok(file!.core <= TARGETS.js, `wavekv.js with its static chunks is ${file!.core} B, over the ${TARGETS.js} B target`);
  // The browser store is a chunk of its own, fetched only by browserStorage's first open.
  assert.ok(store <= TARGETS.store, `the browser store chunk is ${store} B, over the ${TARGETS.store} B target (chunks: ${file!.chunks.map((c) => c.name).join(", ")})`);
  assert.not.match(file!.text, /durability/, "the store's code is not in wavekv.js");
  // The live push client (SyncOptions.live) is chunks of their own, fetched by the first subscription.
  assert.ok(file!.live > 0 && file!.live <= TARGETS.live, `the live push chunks are ${file!.live} B (target ≤ ${TARGETS.live} B; chunks: ${file!.chunks.map((c) => c.name).join(", ")})`);
  assert.ok(wasm.length <= TARGETS.wasm, `wavekv.wasm is ${wasm.length} B, over the ${TARGETS.wasm} B target`);
  assert.ok(WebAssembly.validate(wasm as Uint8Array<ArrayBuffer>));
});

/**
 * A realm with only what browsers and workers also have. Host objects (crypto, timers,
 * MessageChannel) come from this runtime; the language and WebAssembly are the realm's
 * own. TextEncoder is wrapped so that it returns the realm's Uint8Array (a host one
 * would fail the realm's `instanceof Uint8Array`, which no browser page ever sees).
 */
function bareRealm(): vm.Context {
  const realm = vm.createContext({
    console, HostTextEncoder: TextEncoder, TextDecoder, crypto: globalThis.crypto, URL, atob, btoa,
    setTimeout, clearTimeout, setInterval, clearInterval, queueMicrotask,
    AbortController, AbortSignal, EventTarget, Event, MessageChannel, performance,
  });
  vm.runInContext(`{
    const host = new HostTextEncoder();
    globalThis.TextEncoder = class TextEncoder {
      get encoding() { return "utf-8"; }
      encode(s) { return new Uint8Array(host.encode(s)); }
      encodeInto(s, into) { return host.encodeInto(s, into); }
    };
    delete globalThis.HostTextEncoder;
  }`, realm);
  const missing = vm.runInContext(`["process", "Buffer", "require", "setImmediate", "module", "__dirname"].filter((n) => typeof globalThis[n] !== "undefined")`, realm) as string[];
  assert.equal([...missing], [], "the bare realm must not have Node's globals");
  return realm;
}

/** Runs a scenario against the IIFE build (global `wavekv`) inside a bare realm; returns its JSON result. */
async function inRealm(kernel: "file" | "inline", wasm: Uint8Array | null, scenario: string): Promise<any> {
  const b = (await bundleBrowser({ kernel, format: "iife", globalName: "wavekv" })) as Bundle;
  const realm = bareRealm();
  realm.kernelBytes = wasm;
  vm.runInContext(b.text, realm, { filename: `wavekv.${kernel}.js` });
  return JSON.parse(await (vm.runInContext(`(async () => JSON.stringify(await (${scenario})(wavekv)))()`, realm) as Promise<string>));
}

const CONVERGE = `async ({ init, Node, SyncManager, MemoryNetwork }) => {
  if (kernelBytes) await init(kernelBytes);
  const net = new MemoryNetwork({ seed: 7, drop: 0.2, duplicate: 0.1, reorder: true });
  const ids = [1, 2, 3];
  const nodes = await Promise.all(ids.map((id) => Node.open({ id, peers: ids.filter((p) => p !== id) })));
  const syncs = nodes.map((n, i) => new SyncManager(n, net.transport(ids[i]), { onWarning: () => {} }));
  syncs.forEach((s, i) => net.register(ids[i], s));
  for (let i = 0; i < 60; i++) await nodes[i % 3].put("k/" + (i % 25), "v" + i + "·" + "é".repeat(i));
  await nodes[2].delete("k/3"); // node 3 wrote k/3 last: its tombstone wins even within one ms
  let rounds = 0;
  while (new Set(nodes.map((n) => n.digest())).size > 1 && rounds < 50) {
    await Promise.allSettled(syncs.map((s) => s.syncOnce()));
    rounds++;
  }
  let dirError = null;
  try { await Node.open({ id: 9, dir: "./data" }); } catch (e) { dirError = e.code; }
  const out = {
    rounds,
    digests: nodes.map((n) => n.digest()),
    sizes: nodes.map((n) => n.size),
    value: nodes[2].get("k/24") ? new TextDecoder().decode(nodes[2].get("k/24").value) : null,
    keys: [...nodes[2].scan("")].map((e) => e.key),
    tombstone: nodes[1].getIncludingTombstones("k/3")?.value,
    dirError,
  };
  await Promise.all(syncs.map((s) => s.stop()));
  await Promise.all(nodes.map((n) => n.close()));
  return out;
}`;

for (const kernel of ["inline", "file"] as const) {
  test(`three in-memory nodes converge over a lossy MemoryNetwork in a bare realm (kernel ${kernel === "inline" ? "embedded" : "from bytes via init"})`, async () => {
    const wasm = kernel === "file" ? ((await kernelWasm()) as Uint8Array) : null;
    const r = await inRealm(kernel, wasm, CONVERGE);
    assert.ok(r.rounds < 50, `no convergence after ${r.rounds} rounds`);
    assert.is(new Set(r.digests).size, 1, JSON.stringify(r.digests));
    assert.equal(r.sizes, [24, 24, 24]);
    assert.is(r.value, "v49·" + "é".repeat(49));
    assert.is(r.tombstone, null);
    assert.is(r.dirError, "INVALID_ARGUMENT");
  });
}

test("the file-kernel bundle refuses to run before init() with a message that says so", async () => {
  const r = await inRealm("file", null, `async ({ Node }) => {
    try { const n = await Node.open({ id: 1 }); await n.put("a", "b"); return "no error"; } catch (e) { return e.message; }
  }`);
  assert.match(r, /await init\(\)/);
});

test("the browser entry from source, on this runtime: two nodes converge and agree with a third built from scratch", async () => {
  await init(); // embedded bytes; a no-op once the kernel exists
  const net = new MemoryNetwork({ seed: 3 });
  const a = await Node.open({ id: 1, peers: [2] });
  const b = await Node.open({ id: 2, peers: [1] });
  const sa = new SyncManager(a, net.transport(1));
  const sb = new SyncManager(b, net.transport(2));
  net.register(1, sa);
  net.register(2, sb);
  try {
    await a.put("x", "1");
    await b.put("y", new Uint8Array([0, 255]));
    await sa.syncOnce();
    assert.is(a.digest(), b.digest());
    await a.close();
    await a.put("z", "after close").then(() => assert.unreachable("closed"), (e) => assert.ok(isWaveKVError(e, "CLOSED")));
  } finally {
    await Promise.all([sa.stop(), sb.stop()]);
    await b.close();
  }
});

test("the README's browser example runs as written against the one-file bundle (imported from a data: URL)", async () => {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const section = readme.slice(readme.indexOf("## Embedding in a browser or an edge worker"));
  const example = /```js\n([\s\S]*?)```/.exec(section)![1]!;
  const inline = (await bundleBrowser({ kernel: "inline" })) as Bundle;
  const bundleUrl = `data:text/javascript;base64,${Buffer.from(inline.js).toString("base64")}`;
  const printed: unknown[] = [];
  const g = globalThis as { __readmeLog?: (...a: unknown[]) => void };
  g.__readmeLog = (...a) => printed.push(...a);
  try {
    const code = example.replace(`from "wavekv/browser"`, `from ${JSON.stringify(bundleUrl)}`).replaceAll("console.log(", "globalThis.__readmeLog(");
    assert.ok(code.includes(bundleUrl) && code.includes("__readmeLog"), "the example imports wavekv/browser and prints");
    await import(`data:text/javascript;base64,${Buffer.from(code).toString("base64")}`);
  } finally {
    delete g.__readmeLog;
  }
  assert.equal(printed, ["3 apples"]);
});

test.run();
