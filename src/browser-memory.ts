/**
 * `wavekv/browser/memory`: the in-process network with seeded faults (MemoryNetwork), for
 * tests, demos and simulations in a browser, an edge worker or any runtime `wavekv/browser`
 * runs in. A subpath of its own so that a page syncing over FetchTransport does not load
 * it (3.9 KiB of the minified core, docs/design/0024-browser-bundle-size.md):
 *
 *   import { init, Node, SyncManager } from "wavekv/browser";
 *   import { MemoryNetwork } from "wavekv/browser/memory";
 *
 * dist/browser/memory.js shares its chunks with dist/browser/wavekv.js (one WaveKVError
 * class, one kernel instance); dist/browser/wavekv.inline.js (one file) exports these too.
 */
export { MemoryNetwork, seededRandom, type MemoryNetworkOptions, type NetworkFaults, type NetworkMessage, type Tamper } from "./transport/memory.js";
