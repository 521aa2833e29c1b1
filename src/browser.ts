/**
 * `wavekv/browser`: the in-memory node, the sync protocol and transports for browsers,
 * edge workers and any runtime with WebAssembly and fetch. No `node:` module is
 * reachable from here (test/package/portability.ts bundles this file and checks).
 *
 *   import { init, Node, SyncManager, FetchTransport } from "wavekv/browser";
 *   await init();                      // loads the kernel (wavekv.wasm beside the bundle)
 *   const node = await Node.open({ id: 7, peers: [1] });
 *   const sync = new SyncManager(node, new FetchTransport({ peers: { 1: "/wavekv" }, secret }));
 *   await node.put("greeting", "hello");
 *   await sync.syncOnce();             // one round each way with node 1
 *
 * A node that keeps its data in the browser (IndexedDB; pages and workers):
 *
 *   const node = await Node.open({ id: 7, storage: browserStorage("notes") });  // LOCKED in a second tab
 *
 * In the bundles (dist/browser/), `Sha256`, `sha256` and `hmacSha256` run their rounds in
 * the WASM kernel (src/kernel/sha256.ts; from source and in Node, the TS twin
 * src/core/sha256.ts, same bytes): with wavekv.js, call them after `init()`.
 *
 * What is not here: data directories (`dir`), the HTTP server and the CLI — they need a
 * file system or a listening socket. The in-process network with seeded faults
 * (`MemoryNetwork`, for tests and simulations) is the subpath `wavekv/browser/memory`
 * (src/browser-memory.ts): a page that syncs over FetchTransport does not load it.
 */
import { initKernel } from "./kernel/instance.js";
import type { StorageFactory } from "./node/options.js";
import type { BrowserStorageOptions } from "./storage/browser-storage.js";

export type { BrowserStorageOptions } from "./storage/browser-storage.js";

export { Node, type NodeOptions, type MergeOutcome, type ScanOptions, type StorageFactory, type StorageOpenContext } from "./node/node.js";
export type { BatchOperation } from "./node/batch.js";
export { MAX_TTL_MS } from "./core/expiry.js";
export { WaveKVError, isWaveKVError, type ErrorCode } from "./core/errors.js";
export { DEFAULT_LIMITS, type Entry, type Limits, type AdmitFn, type NodeStatus, type PeerStatus } from "./core/types.js";
export type { PeerReplication, ReplicationStatus, ReplicatedOptions } from "./core/types.js";
export { DEFAULT_SYNC_TUNING, type SyncTuning } from "./sync/protocol.js";
export { encodeEnvelope, decodeEnvelope, ENVELOPE_VERSION, type Envelope } from "./sync/envelope.js";
export { compareKeys } from "./core/keyorder.js";
export { SyncManager, type SyncOptions, type PeerReport, type SyncStats, type PeerLinkStatus } from "./node/manager.js";
export { type Transport, type TransportSubscribeOptions, type SyncHandler } from "./transport/transport.js";
export { FetchTransport, RequestSigner, PeerAddresses, kvPath, type FetchTransportOptions } from "./transport/fetch.js";
export { useSha256, type Sha256Hasher, type Sha256Factory } from "./state/digest.js";
export { Sha256, sha256, hmacSha256 } from "./core/sha256.js";

/**
 * Set by scripts/build-browser.mjs (esbuild `define`) in the bundle that ships the
 * kernel as a separate file: its path relative to the bundle. Unset (the bundle with
 * the kernel inlined, or this module run from source) means: the kernel's bytes are
 * embedded.
 */
declare const WAVEKV_KERNEL_FILE: string | undefined;

/** What `init` accepts: a URL (fetched; compiled while streaming when served as application/wasm), bytes, a compiled module (edge workers that import .wasm), or a fetch Response. */
export type KernelSource = URL | string | BufferSource | WebAssembly.Module | Response;

/**
 * Loads the WASM kernel, once; later calls return at once. Call it before the first
 * `Node.open` (or SHA-256 call): required with the kernel in a separate file (dist/browser/wavekv.js);
 * with the kernel embedded it compiles asynchronously what the first write would
 * otherwise compile synchronously (fine in Chromium 156 for this ~12 KB module, but
 * some engines limit synchronous compilation on a page's main thread).
 */
export async function init(source?: KernelSource): Promise<void> {
  await initKernel(source ?? (typeof WAVEKV_KERNEL_FILE === "string" ? new URL(WAVEKV_KERNEL_FILE, import.meta.url) : undefined));
}

/**
 * A node's storage in this origin's IndexedDB (database `wavekv/<name>`, docs/FORMAT.md
 * §7), for `Node.open({ id, storage: browserStorage(name) })` in a page or a worker. A
 * put resolves once its commit transaction completed with `durability: "strict"`
 * ("relaxed" with fsync "never"); concurrent puts share one transaction. One open per
 * origin at a time (Web Locks): LOCKED in a second tab. The store's code is a chunk of
 * its own, loaded on the first open; the name is checked then (INVALID_ARGUMENT).
 */
export function browserStorage(name: string, opts: BrowserStorageOptions = {}): StorageFactory {
  return async (ctx) => (await import("./storage/browser-storage.js")).openBrowserStorage({ ...opts, ...ctx, name });
}
