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

export interface NodeStatus {
  id: number;
  uuid: string;
  keys: number;
  tombstones: number;
  nextSeq: number;
  digest: string;
  wal: boolean;
  entriesMerged: number;
  entriesRejected: number;
  peers: PeerStatus[];
}
