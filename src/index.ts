/**
 * wavekv: an embeddable, eventually consistent, leaderless replicated key-value store.
 *
 *   import { Node } from "wavekv";
 *   const node = await Node.open({ id: 1, dir: "./data" });
 *
 * Browsers and edge workers: `wavekv/browser` (src/browser.ts), which has no `node:` import.
 */
import { createHash } from "node:crypto";
import { nodeSha256, useSha256 } from "./digest.js";

// The digest's hash: native on Node and Bun, whatever their version (src/digest.ts
// falls back to pure TS where `process.getBuiltinModule` is missing, Node < 20.16).
useSha256(nodeSha256(createHash));

export { Node, type NodeOptions, type MergeOutcome, type ScanOptions } from "./node.js";
export { WaveKVError, isWaveKVError, type ErrorCode } from "./errors.js";
export { DEFAULT_LIMITS, type Entry, type Limits, type FsyncPolicy, type AdmitFn, type NodeStatus, type PeerStatus } from "./types.js";
export { DEFAULT_SYNC_TUNING, type SyncTuning } from "./protocol.js";
export { encodeEnvelope, decodeEnvelope, envelopeWithEncodedEntries, encodedEntriesOf, ENCODED_ENTRIES, ENVELOPE_VERSION, type Envelope, type DeltaCursor, type EncodedEntries } from "./envelope.js";
export { compareKeys } from "./keyorder.js";
export { SyncManager, type SyncOptions, type PeerReport, type SyncStats, type PeerLinkStatus } from "./sync.js";
export { MemoryNetwork, dropOneEntry, seededRandom, type MemoryNetworkOptions, type NetworkFaults, type NetworkMessage, type Tamper } from "./memnet.js";
export { type Transport, type SyncHandler } from "./transport.js";
export { HttpTransport, serveHttp, PEER_ADDRESS_PREFIX, type HttpTransportOptions, type ServeOptions, type HttpServer } from "./http.js";
export { useSha256, type Sha256Hasher, type Sha256Factory } from "./digest.js";
