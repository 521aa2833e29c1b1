/**
 * The read-only reports of a Node (`status()`, `storageStats()`), assembled from the parts
 * that own each figure: the replica (keys), the protocol (acks, merge counts), membership,
 * the clocks, the storage. Nothing here is kept: every call reads its owners afresh.
 */
import type { NodeStatus } from "../core/types.js";
import type { ReplicaState } from "../state/replica.js";
import type { PeerClocks } from "../sync/clock.js";
import type { IdConflicts } from "../sync/identity.js";
import type { SyncProtocol } from "../sync/protocol.js";
import type { Storage } from "../storage/interface.js";

/** WAL size and fsync statistics of a node with storage (`Node.storageStats()`). */
export interface StorageStats {
  walBytes: number;
  fsyncCount: number;
  /** A histogram of fsync latency (ms): `counts[i]` fsyncs took ≤ `bounds[i]`. */
  fsyncLatency: { bounds: readonly number[]; counts: readonly number[]; sum: number; count: number };
}

/** The parts `status()` reads. */
export interface StatusParts {
  id: number;
  uuid: string;
  state: ReplicaState;
  clocks: PeerClocks;
  nextSeq: number;
  digest: string;
  wal: boolean;
  protocol: SyncProtocol;
  peers: readonly number[];
  discovered: ReadonlySet<number>;
  conflicts: IdConflicts;
}

export function nodeStatus(p: StatusParts): NodeStatus {
  return {
    id: p.id,
    uuid: p.uuid,
    keys: p.state.userLive,
    tombstones: p.state.userTombstones,
    reservedKeys: p.state.reservedKeys,
    clock: { offsetMs: p.clocks.offset(), peers: p.clocks.samples() },
    nextSeq: p.nextSeq,
    digest: p.digest,
    wal: p.wal,
    entriesMerged: p.protocol.entriesMerged,
    entriesRejected: p.protocol.entriesRejected,
    peers: p.peers.map((peer) => ({ ...p.protocol.peerStatus(peer), discovered: p.discovered.has(peer) })),
    duplicateIds: p.conflicts.duplicateIds(),
    refusedBy: p.conflicts.refusedBy(),
  };
}

export function storageStatsOf(s: Storage | null): StorageStats | null {
  if (!s) return null;
  const h = s.fsyncLatency;
  return { walBytes: s.walBytes, fsyncCount: s.fsyncCount, fsyncLatency: { bounds: h.bounds, counts: [...h.counts], sum: h.sum, count: h.count } };
}
