/**
 * wavekv: an embeddable, eventually consistent, leaderless replicated key-value store.
 *
 * ```ts
 * import { Node } from "wavekv";            // or: const { Node } = require("wavekv");
 * const node = await Node.open({ id: 1, dir: "./data" });
 * ```
 *
 * `require("wavekv")` (Node ≥ 20.19, Bun) returns this same module. Browsers and edge
 * workers: `wavekv/browser`, which has no `node:` import.
 *
 * @packageDocumentation
 */
// docs/API.md is generated from this file's exports and their doc comments
// (`npm run docs:api`; test/package/api-docs.ts fails when it is stale). A re-export's doc comment
// documents a declaration that has none of its own.
import { createHash } from "node:crypto";
import { nodeSha256, useSha256 } from "./state/digest.js";

// The digest's hash: native on Node and Bun, whatever their version (src/state/digest.ts
// falls back to pure TS where `process.getBuiltinModule` is missing, Node < 20.16).
useSha256(nodeSha256(createHash));

export { Node, type NodeOptions, type MergeOutcome, type ScanOptions, type StorageFactory, type StorageOpenContext, type StorageStats } from "./node/node.js";
export { MAX_BATCH_BYTES, MAX_BATCH_ENTRIES, type BatchOperation } from "./node/batch.js";
export { MAX_TTL_MS } from "./core/expiry.js";
export { WaveKVError, isWaveKVError, type ErrorCode } from "./core/errors.js";
export { DEFAULT_LIMITS, RESERVED_PREFIX, RESERVED_LIMITS, type ClockStatus, type DuplicateIdStatus, type Entry, type Limits, type AdmitFn, type NodeStatus, type PeerStatus } from "./core/types.js";
export type { PeerReplication, ReplicationStatus, ReplicatedOptions } from "./core/types.js";
/**
 * When a write to a node with a `dir` is durable (`NodeOptions.fsync`, `serve --fsync`).
 * - `"always"`: `put`/`delete` resolve only after an fdatasync that started after the
 *   write; concurrent writes share one write and one fsync (group commit).
 * - `{ intervalMs }`: writes resolve once written; an fsync follows within `intervalMs`
 *   (a crash may lose that window).
 * - `"never"`: no fsync at all (tests, caches); still atomic against a process crash.
 *
 * @defaultValue `"always"`
 */
export type { FsyncPolicy } from "./core/types.js";
export { DEFAULT_SYNC_TUNING, type SyncTuning } from "./sync/protocol.js";
export { encodeEnvelope, decodeEnvelope, envelopeWithEncodedEntries, encodedEntriesOf, ENCODED_ENTRIES, ENVELOPE_VERSION, type Envelope, type DeltaCursor, type EncodedEntries, type BodyFraming } from "./sync/envelope.js";
export type { BatchRange } from "./sync/envelope.js";
export { compareKeys } from "./core/keyorder.js";
export { SyncManager, type SyncOptions, type PeerReport, type SyncStats, type PeerLinkStatus } from "./node/manager.js";
export { MemoryNetwork, dropOneEntry, seededRandom, type MemoryNetworkOptions, type NetworkFaults, type NetworkMessage, type NetworkStats, type Direction, type EntryDropper, type Tamper } from "./transport/memory.js";
export { type Transport, type TransportRequestOptions, type TransportSubscribeOptions, type SyncHandler } from "./transport/transport.js";
export { type PushStreamOptions, type PushStreamStats } from "./transport/push-stream.js";
export { HttpTransport, serveHttp, PEER_ADDRESS_PREFIX, type HttpTransportOptions, type ServeOptions, type HttpServer } from "./transport/http.js";
export { NatsTransport, type NatsTransportOptions, type NatsServeOptions, type NatsStats } from "./transport/nats.js";
export { parseClientKey, parseClientKeys, type ClientCredential, type CredentialMode, type ServeAccessOptions } from "./transport/credentials.js";
export { readTlsFiles, fetchWithCa, type TlsServerOptions, type TlsClientOptions } from "./transport/tls.js";
export { MAX_KNOWN, type NatsMembership } from "./transport/nats.js";
export { parseNatsConf, type NatsConf } from "./transport/nats-conf.js";
export { useSha256, type Sha256Hasher, type Sha256Factory } from "./state/digest.js";
/**
 * A node with everything `wavekv serve` runs, from code: HTTP API, sync with its peers,
 * the replicated address book (`__wavekv/peers/<id>`) and the web console. `stop()`
 * stops sync, closes the server and flushes and closes the node.
 *
 * ```ts
 * const running = await startServer({ id: 1, port: 8001, dir: "./data", peers: { 2: "http://127.0.0.1:8002" } });
 * await running.stop();
 * ```
 */
export { startServer } from "./app/serve.js";
export type { ServerConfig, RunningServer } from "./app/serve.js";
/**
 * A client for a running node's HTTP API (what the CLI's put/get/del/scan/status use);
 * pass the cluster's secret when the node has one. Errors other than 404 reject.
 *
 * ```ts
 * const kv = new KvClient("http://127.0.0.1:8001", secret);
 * await kv.put("a", "1"); await kv.get("a"); await kv.scan("prefix/");
 * ```
 */
export { KvClient } from "./app/client.js";
export { KvClientError } from "./app/client.js";
export type { KvEntryJson, KvPeerJson, KvClientOptions } from "./app/client.js";
export { FetchTransport, RequestSigner, PeerAddresses, kvPath, type FetchTransportOptions } from "./transport/fetch.js";
export type { Storage, StorageTuning, FaultHook, AppendOptions, RecoveredState, ReplaySink, ReplayTarget, ReplayExpectation, LatencyStats } from "./storage/interface.js";
export type { MergeSlicing } from "./sync/ingress.js";
