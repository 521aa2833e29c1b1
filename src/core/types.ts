/** Public data types (SPEC sections 1–3). */

export interface Entry {
  /** UTF-8, at most `limits.maxKeyBytes` bytes. */
  key: string;
  /** `null` is a tombstone: a replicated delete. */
  value: Uint8Array | null;
  /** Wall clock, ms since the Unix epoch (int64 on the wire). */
  timestamp: number;
  /** Origin node id, uint32. */
  node: number;
  /** Per-origin sequence number, starts at 1 (uint64 on the wire, exact up to 2^53). */
  seq: number;
  /**
   * When the entry expires, ms since the Unix epoch, in the writer's timestamp domain
   * (`timestamp + ttlMs` of `put(…, { ttlMs })`); absent for an entry that never expires.
   * From that moment every replica reads the key as absent (compared with the reader's
   * clock), and watchers see a change. docs/design/0026-expiry.md.
   */
  expiresAt?: number;
}

export interface Limits {
  maxKeyBytes: number;
  maxValueBytes: number;
  maxKeys: number;
  maxTotalBytes: number;
  maxClockDriftMs: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxKeyBytes: 1024,
  maxValueBytes: 1 << 20,
  maxKeys: 1_000_000,
  maxTotalBytes: 1 << 30,
  maxClockDriftMs: 300_000,
});

/**
 * Keys under this prefix are the nodes' own bookkeeping (the address book lives at
 * `__wavekv/peers/<id>`). They do not count against `maxKeys`/`maxTotalBytes` nor in
 * `status().keys`, and have bounds of their own (`RESERVED_LIMITS`): only node N writes
 * `__wavekv/peers/<N>`, and every other key under the prefix is refused (RESERVED_KEY
 * locally, counted in `entriesRejected` when a peer sends it).
 */
export const RESERVED_PREFIX = "__wavekv/";
/** Where each node publishes its own address: `__wavekv/peers/<id>`, written by node `<id>` only. */
export const PEER_ADDRESS_PREFIX = "__wavekv/peers/";
/** Bounds of the reserved keys, so that a peer cannot use them to bypass `limits`. */
export const RESERVED_LIMITS: Readonly<{ maxKeys: number; maxValueBytes: number }> = Object.freeze({ maxKeys: 1024, maxValueBytes: 2048 });

export type FsyncPolicy = "always" | "never" | { intervalMs: number };

/** `true` admits; a string is the reason the entry is refused. */
export type AdmitFn = (entry: Entry) => true | string;

export interface PeerStatus {
  id: number;
  ack: number;
  peerAck: number;
  heardFrom: boolean;
  /** The uuid on record for this id (learned from its requests and from its answers to ours). */
  uuid?: string;
  /** Added by auto-discovery (a request from an unknown id), not by configuration or addPeer(). */
  discovered: boolean;
}

/** This node's estimate of the cluster's clock (docs/PROTOCOL.md "Clocks"). */
export interface ClockStatus {
  /**
   * The cluster's clock minus ours, in ms: the lower median of the recent peer samples,
   * or null when no peer was heard from recently (then no write is checked).
   */
  offsetMs: number | null;
  /** Per peer heard from recently: its clock minus ours (ms) and how old the sample is. */
  peers: { id: number; offsetMs: number; ageMs: number }[];
}

/**
 * A node id claimed by a second node: its requests carry a uuid other than the one on
 * record for the id, and are refused (UUID_MISMATCH). docs/PROTOCOL.md §4 "Duplicate ids".
 */
export interface DuplicateIdStatus {
  /** The id two nodes claim. */
  id: number;
  /** The uuid on record for it: requests from it are accepted. */
  uuid: string;
  /** The other uuid: requests from it are refused. */
  seenUuid: string;
  /** When a request from `seenUuid` was first and last refused (ms, this node's clock). */
  firstSeenAt: number;
  lastSeenAt: number;
  /** Requests and pushes from `seenUuid` refused. */
  refused: number;
  /**
   * The node at the address we hold for `id` has answered with `uuid` since: two nodes
   * really run with this id (false: not yet known; a rebuilt node is dropped from the list
   * once it answers with its new uuid).
   */
  confirmed: boolean;
}

export interface NodeStatus {
  id: number;
  uuid: string;
  /** Live keys, the reserved `__wavekv/` ones left out (they are in `reservedKeys`). */
  keys: number;
  /** Tombstones, the reserved ones left out. */
  tombstones: number;
  /** Keys under `RESERVED_PREFIX` (the address book), tombstones included. */
  reservedKeys: number;
  clock: ClockStatus;
  nextSeq: number;
  digest: string;
  wal: boolean;
  entriesMerged: number;
  entriesRejected: number;
  peers: PeerStatus[];
  /** Ids claimed by a node whose uuid is not the one on record: their requests are refused. Empty normally. */
  duplicateIds: DuplicateIdStatus[];
  /**
   * Peers that refuse this node's requests because they hold another uuid for its id
   * (another node runs with this id, or this node was rebuilt and they have not reached it
   * yet). Writes acknowledged here do not replicate to them; when it lists every peer,
   * nothing written here leaves this node. Empty normally.
   */
  refusedBy: number[];
}

/**
 * What one peer has confirmed of this node's writes (`Node.replication()`, docs/design/0029).
 * "Behind" counts this node's writes (seqs it handed out: puts and deletes, a write later
 * overwritten included) above the peer's ack of this node: an upper bound on what the next
 * round sends it (a round sends only each key's latest entry).
 */
export interface PeerReplication {
  peer: number;
  /** The peer's ack of this node's id, as it last reported it: it holds every write of ours up to this seq (0: none, or not heard from since open). */
  ackedSeq: number;
  /** Writes of ours above `ackedSeq` (our last seq − ackedSeq). */
  entriesBehind: number;
  /** Key + value bytes of those writes, as written (exact when `bytesExact`; see the design record for the bound kept in memory). */
  bytesBehind: number;
  /** False when some of those writes predate this node's open (or the bounded log was thinned): `bytesBehind` then counts only those it logged. */
  bytesExact: boolean;
  /** Epoch ms of the last envelope from the peer merged here (its request, push, or answer to ours); 0: none since open. */
  lastContactAt: number;
  /** Epoch ms when `ackedSeq` last moved up; 0: never since open. */
  ackedAt: number;
  /** From the SyncManager driving this node (absent without one): its rounds with the peer. */
  link?: { rounds: number; failures: number; consecutiveFailures: number; lastOkAt: number; retryAt: number; lastRoundMs: number | null; lastError?: string };
}

/** `Node.replication()`: how far each peer has confirmed this node's writes. */
export interface ReplicationStatus {
  id: number;
  /** The seq of this node's latest write (nextSeq − 1). */
  lastSeq: number;
  /** Whether a SyncManager reports its links here (`link` of each peer). */
  managed: boolean;
  peers: PeerReplication[];
}

/** `Node.replicated(entry, opts)`: how many peers must confirm, and when to stop waiting. */
export interface ReplicatedOptions {
  /**
   * "all": every peer at call time (a peer removed meanwhile is no longer waited for); n: any n peers.
   * @defaultValue `"all"`
   */
  peers?: "all" | number;
  /**
   * Stops the wait: rejects with NOT_REPLICATED (the write itself stands).
   * @defaultValue none: waits until confirmed, the peers left cannot confirm, or the node closes
   */
  signal?: AbortSignal;
}

/** A node id: a uint32 (SPEC section 1), the one spelling of that check. */
export function isNodeId(x: unknown): x is number {
  return typeof x === "number" && Number.isInteger(x) && x >= 0 && x <= 0xffffffff;
}
