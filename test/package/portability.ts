// The browser entry (src/browser.ts) away from Node: no `node:` module reachable from
// it, the bundle within its size target, and the core — in-memory nodes, SyncManager,
// MemoryNetwork, the WASM kernel — converging inside a bare JavaScript realm that has
// no process, Buffer, require, setImmediate or file system, on this runtime's own
// WebAssembly (Node's V8 or Bun's JavaScriptCore).
import { test } from "uvu";
import * as assert from "uvu/assert";
import vm from "node:vm";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import type { Metafile } from "esbuild";
// @ts-expect-error: a plain .mjs build script, no type declarations
import { bundleBrowser, kernelWasm, TARGETS } from "../../scripts/build-browser.mjs";
import { Node, SyncManager, init, isWaveKVError, encodeEnvelope, type Envelope } from "../../src/browser.js";
import { MemoryNetwork } from "../../src/browser-memory.js";

interface Bundle {
  js: Uint8Array;
  text: string;
  metafile: Metafile;
  nodeImports: { module: string; importer: string; kind: string }[];
}

const BUILTIN = /^(node:|(fs|path|os|crypto|http|https|net|url|zlib|child_process|stream|buffer|util|module|worker_threads)(\/|$))/;

test("no node: module is statically reachable from src/browser.ts or src/browser-memory.ts (only the `dir` storage is, by dynamic import)", async () => {
  const b = (await bundleBrowser({ kernel: "file", stub: false, minify: false })) as Bundle;
  const inputs = b.metafile.inputs;
  // Walk static imports only, from the entry.
  const reached = new Set<string>(["src/browser.ts", "src/browser-memory.ts"]);
  const stack = [...reached];
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
  assert.equal(dynamic.sort(), ["src/browser.ts → src/storage/browser-storage.ts", "src/node/manager.ts → src/node/live.ts", "src/node/node.ts → src/storage/storage.ts", "src/node/replication.ts → src/node/replication-wait.ts", "src/transport/fetch.ts → src/transport/push-frames.ts"]);
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
  // MemoryNetwork is wavekv/browser/memory (memory.js), not in what every page loads.
  assert.not.match(file!.text, /memnet/, "MemoryNetwork is not in wavekv.js");
  assert.ok(file!.memory > 0 && file!.memory <= TARGETS.memory, `memory.js adds ${file!.memory} B to the core (target ≤ ${TARGETS.memory} B)`);
  assert.ok(wasm.length <= TARGETS.wasm, `wavekv.wasm is ${wasm.length} B, over the ${TARGETS.wasm} B target`);
  assert.ok(WebAssembly.validate(wasm as Uint8Array<ArrayBuffer>));
});

test("the shipped split build: wavekv/browser/memory (memory.js) shares wavekv.js's chunks, so two nodes sync over its MemoryNetwork", async () => {
  const file = (await bundleBrowser({ kernel: "file", split: true })) as Bundle & { chunks: { name: string; js: Uint8Array }[] };
  const dir = mkdtempSync(join(tmpdir(), "wavekv-split-"));
  try {
    writeFileSync(join(dir, "wavekv.js"), file.js);
    for (const c of file.chunks) writeFileSync(join(dir, c.name), c.js);
    const lib = await import(pathToFileURL(join(dir, "wavekv.js")).href);
    const mem = await import(pathToFileURL(join(dir, "memory.js")).href);
    assert.is(lib.MemoryNetwork, undefined, "wavekv/browser does not export MemoryNetwork");
    assert.equal(Object.keys(mem).sort(), ["MemoryNetwork", "seededRandom"]);
    await lib.init(await kernelWasm());
    const net = new mem.MemoryNetwork({ seed: 11, drop: 0.2 });
    const a = await lib.Node.open({ id: 1, peers: [2] });
    const b = await lib.Node.open({ id: 2, peers: [1] });
    const sa = new lib.SyncManager(a, net.transport(1), { onWarning: () => {} });
    const sb = new lib.SyncManager(b, net.transport(2), { onWarning: () => {} });
    net.register(1, sa);
    net.register(2, sb);
    await a.put("x", "1");
    await b.put("y", "2");
    for (let i = 0; i < 20 && a.digest() !== b.digest(); i++) await Promise.allSettled([sa.syncOnce(), sb.syncOnce()]);
    assert.is(a.digest(), b.digest());
    // One WaveKVError class across both entries: memory.js's errors are wavekv.js's.
    net.down(2);
    const err = await net.transport(1).request(2, new Uint8Array(0), { signal: new AbortController().signal }).then(() => null, (e: unknown) => e);
    assert.ok(lib.isWaveKVError(err, "IO"), String(err));
    await Promise.all([sa.stop(), sb.stop()]);
    await Promise.all([a.close(), b.close()]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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

/** Two fixed envelopes (under and over 256 B: the source's CRC takes its TS loop for one, the kernel for the other). */
const FIXED_ENVELOPES = `[
  { version: 1, senderId: 7, senderUuid: "00112233-4455-6677-8899-aabbccddeeff", acks: new Map([[1, 2]]), entries: [] },
  { version: 1, senderId: 7, senderUuid: "00112233-4455-6677-8899-aabbccddeeff", acks: new Map(Array.from({ length: 120 }, (_, i) => [i * 3, i * 1000 + 1])), digest: "ab".repeat(32), entries: [] },
]`;

const CONVERGE = `async ({ init, Node, SyncManager, MemoryNetwork, sha256, hmacSha256, encodeEnvelope, decodeEnvelope }) => {
  if (kernelBytes) await init(kernelBytes);
  // The bundle's envelope CRC is the kernel's at every size (scripts/build-browser.mjs).
  const envelopes = ${FIXED_ENVELOPES}.map((e) => [...encodeEnvelope(e)]);
  const refused = envelopes.map((bytes) => {
    const b = new Uint8Array(bytes);
    b[b.length >> 1] ^= 1;
    try { decodeEnvelope(b); return "accepted"; } catch (e) { return e.code + (/checksum/.test(e.message) ? ": checksum" : ""); }
  });
  const acksBack = decodeEnvelope(new Uint8Array(envelopes[1])).acks.size;
  // The bundle's SHA-256 has its rounds in the kernel (src/kernel/sha256.ts).
  const hex = (b) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  const hashes = [hex(sha256(new TextEncoder().encode("abc"))), hex(hmacSha256(new Uint8Array(20).fill(11), new TextEncoder().encode("Hi There")))];
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
    hashes,
    envelopes,
    refused,
    acksBack,
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
    // Byte for byte what the sources encode (their CRC: TS loop, Bun's, or the kernel's).
    const fixed = new Function(`return ${FIXED_ENVELOPES}`)() as Envelope[];
    assert.equal(r.envelopes, fixed.map((e) => [...encodeEnvelope(e)]));
    assert.equal(r.refused, ["BAD_ENVELOPE: checksum", "BAD_ENVELOPE: checksum"]);
    assert.is(r.acksBack, 120);
    assert.equal(r.hashes, ["ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"]);
  });
}

test("the file-kernel bundle refuses to run before init() with a message that says so (a node, SHA-256)", async () => {
  const r = await inRealm("file", null, `async ({ Node, sha256 }) => {
    const open = await Node.open({ id: 1 }).then((n) => n.put("a", "b")).then(() => "no error", (e) => e.message);
    let hash = "no error";
    try { sha256(new Uint8Array(100)); } catch (e) { hash = e.message; }
    return { open, hash };
  }`);
  assert.match(r.open, /await init\(\)/);
  assert.match(r.hash, /await init\(\)/);
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
    // wavekv.inline.js is both wavekv/browser and wavekv/browser/memory.
    const code = example.replaceAll(/from "wavekv\/browser(\/memory)?"/g, `from ${JSON.stringify(bundleUrl)}`).replaceAll("console.log(", "globalThis.__readmeLog(");
    assert.ok(code.includes(bundleUrl) && code.includes("__readmeLog"), "the example imports wavekv/browser and prints");
    await import(`data:text/javascript;base64,${Buffer.from(code).toString("base64")}`);
  } finally {
    delete g.__readmeLog;
  }
  assert.equal(printed, ["3 apples"]);
});

test.run();
