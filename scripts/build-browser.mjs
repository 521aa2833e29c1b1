#!/usr/bin/env node
/**
 * Bundles src/browser.ts (`wavekv/browser`) for browsers and edge workers with esbuild,
 * and fails if any `node:` (or bare builtin) module would be imported.
 *
 *   node scripts/build-browser.mjs [outdir]     # or: npm run build:browser (after build:wasm)
 *
 * Writes to outdir (default dist/browser/):
 *   wavekv.js          ESM, minified; `await init()` loads wavekv.wasm from beside it
 *                      (compileStreaming when served as application/wasm). Built with
 *                      code splitting: it imports its shared chunk (wavekv-chunk-*.js)
 *                      statically, and the browser store (IndexedDB, `browserStorage`)
 *                      is a chunk of its own (wavekv-browser-storage-*.js) loaded on the
 *                      first open of one: a node that keeps nothing never fetches it
 *   wavekv.wasm        the kernel (the same bytes src/kernel/kernel-bytes.ts embeds)
 *   wavekv.inline.js   ESM, minified, kernel embedded as base64: one file, nothing to
 *                      serve beside it (edge workers, quick pages); ~16 KiB larger
 * and prints their sizes against the targets (the core — wavekv.js with the chunks it
 * imports statically — ≤ TARGETS.js; the browser store chunk ≤ TARGETS.store; WASM).
 *
 * What the bundle changes against the sources, and why:
 * - `Node.open({ dir })` imports src/storage/storage.ts dynamically; here that import resolves
 *   to a stub that rejects with INVALID_ARGUMENT, so the file WAL (node:fs) stays out
 *   of a one-file bundle. test/package/portability.ts checks that the sources need nothing
 *   else: without the stub, every `node:` import hangs off that one dynamic import. (In the
 *   split wavekv.js the stub is a ~0.2 KiB chunk of its own, wavekv-storage-*.js.)
 * - a free `setImmediate` resolves to scripts/browser-shims.mjs (browsers have none).
 * - the envelope's `crc32` is the kernel's (`crc32Wasm`) at every size: the TS loop, faster
 *   below 256 B by ~40 ns a call on Node, is 0.9 KiB of tables code the page would parse.
 * - src/core/sha256.ts resolves to src/kernel/sha256.ts: the same API and bytes with the
 *   rounds in the kernel (−1.0 KiB of JS, +1.2 KiB of WASM); Node keeps node:crypto or the TS twin.
 * - internal-only property names (INTERNAL_PROPS) are shortened.
 * Anything else Node-only (`process`, `Buffer`) is NOT papered over: test/package/portability.ts
 * runs the bundle in a realm without them, and test/package/browser.ts in Chromium.
 * Test code imports `bundleBrowser` (in memory, nothing written).
 */
import * as esbuild from "esbuild";
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { gzipSync } from "node:zlib";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..");
export const ENTRY = join(root, "src", "browser.ts");
/** `wavekv/browser/memory` (MemoryNetwork): a second entry of the split build, dist/browser/memory.js. */
export const MEMORY_ENTRY = join(root, "src", "browser-memory.ts");
// Issue 8 targets js <= 60 KiB; since issue 9 (range summary, bucket repair: envelope extensions,
// protocol steps, +5 KiB) it is ~61.5 KiB: a reported miss (README). Session 2 added ~4.5 KiB
// (kernel region guards with their errors, lazy per-key state for recovery, delta-body
// negotiation): 66 KiB. The hard stop moved from 64 to 72 KiB then, so that growth stays visible.
// Issue 15's write path (peer clock evidence and CLOCK_SKEW, SUPERSEDED, the reserved-key
// rules; their messages say what to do) took it from 67.9 to 72.4 KiB: the stop moves to 76 KiB.
// Issue 15 (hostile peers: ingress bounds and sliced merges, HTTP auth v2 with body digests and
// target binding, peer address candidates, admit reads before their batch) took it to 81 KiB:
// the stop moves to 84 KiB. Issue 16 (every Node.open / SyncManager option checked with a
// message naming the field, duplicate ids shown on both sides) took it to 86.5 KiB: the stop
// moves to 88 KiB. Issue 19 owns the way back to 60 KiB.
// Issue 17 (modules split by concept, the kernel's ABI fingerprint check) took it to 90.0 KiB: the stop moves to 92 KiB.
// Issue 19's browser store is a chunk of its own (~12 KiB, loaded on the first open of a store),
// with a hard stop of its own. The core grew by 1.9 KiB to 93.7 KiB: 0.5 KiB for Node.open's
// storage factory and browserStorage, 1.4 KiB for code splitting itself (the import/export
// lists between wavekv.js and its shared chunk): the stop moves to 94 KiB.
// Issue 19's live push (H5: the stream reader with its frame MACs and bounds, SyncManager's live
// subscriptions with reconnect backoff, FetchTransport.subscribe) took it from 91.8 to 97.5 KiB: the stop moves to 98 KiB.
// Both together: 99.4 KiB. Then the live push client became chunks of their own too (the
// subscriptions and the stream reader, 4.6 KiB, loaded when SyncOptions.live first
// subscribes): the core is 96.5 KiB (the split saves 3.5 KiB of the 4.6: more shared chunks
// to import from); the stop is 97 KiB.
// Issue 19, helper B1: MemoryNetwork left wavekv/browser for wavekv/browser/memory (memory.js,
// a second entry sharing the core's chunks): the core is 92.5 KiB; memory.js has a stop of its own.
// Then internal-only property names shortened (INTERNAL_PROPS, esbuild mangleProps): 90.9 KiB, the stop 91 KiB.
// Then SHA-256's rounds moved into the kernel (src/kernel/sha256.ts; wavekv.wasm 24.2 → 25.5 KiB):
// 89.9 KiB, the stop 90 KiB. Then the envelope's CRC through the kernel only (no TS tables) and one hex table: 88.9 KiB,
// the stop 89.5 KiB.
// Issue 21's replication status (per-peer acks, bytes behind from a log of our writes, 3.3 KiB; the
// write-concern waits are a chunk of their own) took it to 99.9 KiB: the stop moves to 100 KiB.
// Issue 20's fan-out hold-back (horizons per peer, capped acks, the HELD_ACKS codec): 96.4 to 98.9 KiB: the stop moves to 99 KiB.
// All of session 8 merged (the bundle work above; replication status +3.3 KiB, fan-out hold-back +2.5,
// NATS bounded membership +0.6, expiry +5.1 minus a lazy watch timer, batches with node.batch a lazy
// chunk +0.5): the core is 101.6 KiB (36.1 gzip). The ≤ 60 KiB target stays missed (bench/analysis.md
// "Browser bundle", docs/design/0024): the stop is 102 KiB.
// Then node.batch imports its module statically again (+2.4 KiB: 104.0 KiB): loaded lazily it took
// its seqs in a later job, so batches and puts could be stamped out of call order (a crash loop
// found acknowledged batches superseded by earlier ones). The stop is 105 KiB.
// Issue 21's batch ranges (peers apply a batch as a unit: the range table, merged winners behind
// batch heads, the BATCH_RANGES extension) took it to 111.2 KiB; 33 more INTERNAL_PROPS names,
// `sleep` out of the core, one dead method and the store's window decode out of the codec: 109.2 KiB.
// The lead moved the stop to 110 KiB: the growth is the required feature, measured per
// module; what 105 would take (~4 KiB more: bucket repair as a lazy chunk, a smaller range table)
// is in bench/analysis.md "Browser bundle" and docs/design/0024.
export const TARGETS = { js: 110 * 1024, wasm: 64 * 1024, store: 16 * 1024, live: 8 * 1024, memory: 6 * 1024 };
const KERNEL_FILE = "wavekv.wasm";

/**
 * Property names esbuild shortens to one or two letters in the browser bundles (its
 * `mangleProps`): members of internal objects only — the node ↔ protocol host, the
 * replica, the kernel glue, the push queue — never a field or method of the public API
 * (docs/API.md, the Storage / Transport / DecodedBatch contracts a user implements), of
 * a built-in, of the WASM kernel's exports, of a module loaded by dynamic import, or a
 * name the sources spell as a string. A name not listed is never touched, so a new
 * internal name costs bytes, never correctness; test/package/bundle-mangle.ts checks each
 * listed name against all of the above, and that a mangled bundle behaves as the plain one.
 * Saves ~3 KiB of the core (each name saves its length − 2 per use; the second batch of 33
 * names, issue 21's round, 0.9 KiB). Names persisted by the browser store (its meta and
 * damage records) must never be listed: a later build may shorten them differently.
 */
export const INTERNAL_PROPS = [
  "pendingRecords", "mailbox", "regionPtr", "metaInto", "relearnUntilRound", "lengthAt", "nextAt", "exchanged",
  "dropRefusedReserved", "keyAt", "valueLengthAt", "totalFailures", "evictResident", "seenMono", "minAcks",
  "maxTimestamp", "noteOwnWrite", "conflicts", "setResident", "slotsInBuckets", "ensureSeqAbove",
  "reusable", "keyCount", "mergeBatch", "maxDiscovered", "noteClock", "readEntry", "userBytes", "usedSlots",
  "ownMaxSeq", "noteBatch", "keyView", "entryAt", "pushing", "recordAt", "mergeRemote",
  "setRetained", "relearnFrom", "collectable", "pinnedBytes", "deltaSlots", "slotOf", "mergeFinal", "beginApply",
  "forgetPeer", "abortRound", "peerStatus", "backingOff", "residentOf", "maxEntries", "heldSlots", "stampInto", "refusedUs", "compressBlocks",
  "expiries", "peerAcks", "expiryPeers", "slots", "varu", "horizon", "contactAt", "noteFeatures", "heldBack", "uuids", "tops", "exempt",
  "selfId", "onChange", "checkKey", "settle", "applyOne", "hasPeers", "userLive", "userTombstones", "tombstoneSlots", "inRegion",
  "retainedBytes", "expiredCount", "forgetSilent", "onEvict", "forWatchers", "wantsRemote", "isPeer", "relearning", "isRecorded",
  "retainLive", "inPlace",
];

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const NODE_BUILTIN = new RegExp(`^(node:.*|(${builtinModules.map(escape).join("|")})(/.*)?)$`);

/** Records every builtin import (and who imports it) instead of failing on the first. */
function recordNodeImports(found) {
  return {
    name: "wavekv-record-node-imports",
    setup(build) {
      build.onResolve({ filter: /.*/ }, (args) => {
        if (!NODE_BUILTIN.test(args.path)) return undefined;
        found.push({ module: args.path, importer: relative(root, args.importer), kind: args.kind });
        return { path: args.path, external: true };
      });
    },
  };
}

/** Virtual modules replacing a source module for the browser. */
function stubs(kernel) {
  const src = join(root, "src");
  const modules = {
    storage: `import { WaveKVError } from "../core/errors.js";
export async function openStorage() {
  throw new WaveKVError("INVALID_ARGUMENT", "this build of wavekv has no file system: omit \`dir\` for an in-memory node");
}`,
    crc: `export { crc32Wasm as crc32 } from "./crc.ts";`,
    "kernel-bytes": `import { WaveKVError } from "../core/errors.js";
export function kernelBytes() {
  throw new WaveKVError("INVALID_ARGUMENT", "the wavekv kernel is not loaded: \`await init()\` before opening a node (this bundle loads ${KERNEL_FILE} from beside it)");
}`,
  };
  return {
    name: "wavekv-browser-stubs",
    setup(build) {
      build.onResolve({ filter: /^\.\.\/storage\/storage\.js$/ }, (args) =>
        args.importer === join(src, "node", "node.ts") ? { path: "storage", namespace: "wavekv-stub", pluginData: join(src, "node") } : undefined);
      if (kernel === "file") {
        build.onResolve({ filter: /^\.\/kernel-bytes\.js$/ }, (args) =>
          args.importer === join(src, "kernel", "instance.ts") ? { path: "kernel-bytes", namespace: "wavekv-stub", pluginData: join(src, "kernel") } : undefined);
      }
      // SHA-256 with its rounds in the kernel (src/kernel/sha256.ts) instead of its TS twin.
      build.onResolve({ filter: /\/core\/sha256\.js$/ }, (args) =>
        args.importer === join(src, "kernel", "sha256.ts") ? undefined : { path: join(src, "kernel", "sha256.ts") });
      // The envelope's CRC through the kernel only: no TS slicing tables (built at load) or Bun path.
      build.onResolve({ filter: /^\.\.\/codec\/crc\.js$/ }, (args) =>
        args.importer === join(src, "sync", "envelope.ts") ? { path: "crc", namespace: "wavekv-stub", pluginData: join(src, "codec") } : undefined);
      build.onLoad({ filter: /.*/, namespace: "wavekv-stub" }, (args) => ({ contents: modules[args.path], resolveDir: args.pluginData, loader: "js" }));
    },
  };
}

/**
 * Bundles src/browser.ts in memory.
 * - kernel: "file" (load wavekv.wasm at init) or "inline" (embedded bytes)
 * - stub: false leaves the dynamic storage import in (for the reachability check)
 * - format "iife" + globalName: a script for a realm without modules (tests; with the
 *   "file" kernel, pass its bytes to init(): there is no import.meta.url to find it)
 * - mangle (default: when minified): shorten the INTERNAL_PROPS property names
 * - split: true (ESM only, what ships as wavekv.js): code splitting, so the browser
 *   store's dynamic import becomes a chunk of its own; `chunks` are every other file
 *   (name relative to the bundle), `core` the bytes a page loads before any store opens
 *   (the entry and the chunks it imports statically), `store` the store's chunk. Without
 *   it the store is inlined into the one file (the inline bundle, IIFE test builds).
 * Returns the JS, the metafile, and every builtin import found (empty when clean).
 */
export async function bundleBrowser({ kernel = "file", minify = true, stub = true, format = "esm", globalName, split = false, mangle = minify } = {}) {
  const nodeImports = [];
  const outfile = join(root, "dist", "browser", kernel === "inline" ? "wavekv.inline.js" : "wavekv.js");
  // Split: wavekv.js and memory.js share their chunks (one WaveKVError class, one kernel).
  // One file (the inline bundle, test builds): both entries' exports in one module.
  const entry = split
    ? { entryPoints: { wavekv: ENTRY, memory: MEMORY_ENTRY } }
    : { stdin: { contents: `export * from ${JSON.stringify(ENTRY)};\nexport * from ${JSON.stringify(MEMORY_ENTRY)};\n`, resolveDir: root, sourcefile: "wavekv-browser-all.ts", loader: "ts" } };
  const result = await esbuild.build({
    ...entry,
    bundle: true,
    format,
    globalName,
    platform: "neutral",
    target: "es2022",
    minify,
    legalComments: "none",
    write: false,
    metafile: true,
    ...(split ? { splitting: true, outdir: dirname(outfile), entryNames: "[name]", chunkNames: "wavekv-[name]-[hash]" } : { outfile }),
    inject: [join(root, "scripts", "browser-shims.mjs")],
    define: kernel === "file" ? { WAVEKV_KERNEL_FILE: JSON.stringify(`./${KERNEL_FILE}`) } : {},
    plugins: [recordNodeImports(nodeImports), ...(stub ? [stubs(kernel)] : [])],
    logLevel: "silent",
    ...(mangle ? { mangleProps: new RegExp(`^(${INTERNAL_PROPS.join("|")})$`) } : {}),
  });
  const out = result.outputFiles.find((f) => f.path === outfile) ?? result.outputFiles.find((f) => f.path.endsWith(".js"));
  const chunks = result.outputFiles.filter((f) => f !== out && f.path.endsWith(".js")).map((f) => ({ name: relative(dirname(outfile), f.path), js: f.contents }));
  const bytesOf = (name) => (name === relative(dirname(outfile), out.path) ? out.contents : chunks.find((c) => c.name === name)?.js)?.length ?? 0;
  // The core: the entry and everything it imports statically (what a page loads up front).
  const outputs = result.metafile.outputs;
  const key = (name) => Object.keys(outputs).find((k) => resolve(root, k) === join(dirname(outfile), name));
  const closure = (first) => {
    const seen = new Set([first]);
    for (const stack = [...seen]; stack.length > 0;) {
      for (const imp of outputs[key(stack.pop())]?.imports ?? []) {
        const name = relative(dirname(outfile), resolve(root, imp.path));
        if (imp.kind === "import-statement" && !seen.has(name)) { seen.add(name); stack.push(name); }
      }
    }
    return seen;
  };
  const seen = closure(relative(dirname(outfile), out.path));
  // wavekv/browser/memory: what memory.js adds to the core (it and the chunks only it imports).
  const memoryFiles = split ? [...closure("memory.js")].filter((name) => !seen.has(name)) : [];
  const memory = memoryFiles.reduce((n, name) => n + bytesOf(name), 0);
  const core = [...seen].reduce((n, name) => n + bytesOf(name), 0);
  const store = chunks.find((c) => c.name.startsWith("wavekv-browser-storage"))?.js;
  // Live push (SyncOptions.live): the subscriptions and the stream reader, each loaded by its first use.
  const live = chunks.filter((c) => /^wavekv-(live|push-frames)-/.test(c.name)).reduce((n, c) => n + c.js.length, 0);
  return { js: out.contents, text: out.text, metafile: result.metafile, nodeImports, chunks, core, coreFiles: [...seen], store, live, memory, memoryFiles };
}

/** The kernel's bytes, taken from the generated src/kernel/kernel-bytes.ts so they match the inline bundle. */
export async function kernelWasm() {
  const result = await esbuild.build({
    entryPoints: [join(root, "src", "kernel", "kernel-bytes.ts")],
    bundle: true, format: "iife", globalName: "kernel", platform: "neutral", write: false, logLevel: "silent",
  }).catch((err) => {
    throw new Error(`build-browser: cannot read src/kernel/kernel-bytes.ts (run npm run build:wasm first): ${err.message}`);
  });
  return new Function(`${result.outputFiles[0].text}; return kernel.kernelBytes();`)();
}

/** The core's files (entry + static chunks) concatenated: what its gzip size is measured on. */
function coreBytes(b) {
  return Buffer.concat([b.js, ...b.chunks.filter((c) => b.coreFiles.includes(c.name)).map((c) => c.js)]);
}

function describe(name, bytes, target) {
  const gz = gzipSync(bytes.bytes ?? bytes, { level: 9 }).length;
  const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
  const verdict = target === undefined ? "" : bytes.length <= target ? `  (target ≤ ${kib(target)}: ok)` : `  (OVER target ${kib(target)})`;
  return `  ${name.padEnd(18)} ${String(bytes.length).padStart(7)} B  ${kib(bytes.length).padStart(10)}  gzip ${kib(gz).padStart(9)}${verdict}`;
}

async function main() {
  const outdir = resolve(process.argv[2] ?? join(root, "dist", "browser"));
  const started = performance.now();
  const [file, inline, wasm] = await Promise.all([bundleBrowser({ kernel: "file", split: true }), bundleBrowser({ kernel: "inline" }), kernelWasm()]);
  const bad = [...file.nodeImports, ...inline.nodeImports];
  if (bad.length > 0) {
    for (const b of bad) console.error(`build-browser: ${b.importer} imports ${b.module} (${b.kind})`);
    console.error("build-browser: the browser bundle must not import node: modules");
    process.exit(1);
  }
  mkdirSync(outdir, { recursive: true });
  // Chunk names carry a content hash: drop the previous build's.
  for (const f of readdirSync(outdir)) if (/^wavekv-.*\.js$/.test(f)) rmSync(join(outdir, f));
  writeFileSync(join(outdir, "wavekv.js"), file.js);
  for (const c of file.chunks) writeFileSync(join(outdir, c.name), c.js);
  writeFileSync(join(outdir, KERNEL_FILE), wasm);
  writeFileSync(join(outdir, "wavekv.inline.js"), inline.js);
  console.log(`build-browser: ${relative(process.cwd(), outdir) || "."}/ in ${(performance.now() - started).toFixed(0)} ms, no node: imports`);
  console.log(describe("wavekv.js + chunk", { length: file.core, bytes: coreBytes(file) }, TARGETS.js));
  if (file.store) console.log(describe("browser store", file.store, TARGETS.store));
  const live = file.chunks.filter((c) => /^wavekv-(live|push-frames)-/.test(c.name));
  if (live.length > 0) console.log(describe("live push", Buffer.concat(live.map((c) => c.js)), TARGETS.live));
  console.log(describe("memory.js", Buffer.concat(file.memoryFiles.map((name) => file.chunks.find((c) => c.name === name).js)), TARGETS.memory));
  console.log(describe(KERNEL_FILE, wasm, TARGETS.wasm));
  console.log(describe("wavekv.inline.js", inline.js));
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await main();
}
