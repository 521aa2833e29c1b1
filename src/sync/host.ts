/**
 * What the sync protocol (src/sync/protocol.ts) is given: its host, the node whose state
 * it reads and merges into, and its tuning (NodeOptions.sync: paging, divergence repair,
 * delta-coded bodies, the discovery bound; checked by src/node/options.ts).
 */
import type { DecodedBatch } from "../core/record.js";
import type { BatchOutcome, ReplicaState } from "../state/replica.js";
import type { MergeGroups } from "../state/batch-ranges.js";
import type { IdConflicts } from "./identity.js";

/** What the protocol needs from its node. */
export interface ProtocolHost {
  readonly id: number;
  readonly uuid: string;
  readonly state: ReplicaState;
  /**
   * Admission, one log append, apply. `refuse`: entries refused before the merge
   * (`decided` of them leave the batch complete). `relearn`: our own entries in the batch
   * prove their seqs spent (the relearning window, see `relearning`).
   */
  mergeRemote(batch: DecodedBatch, refuse: ReadonlyMap<number, string> | undefined, decided: number, relearn: boolean, groups?: MergeGroups): BatchOutcome;
  /** The next seq this node would hand out. */
  nextSeq(): number;
  /** Auto-discovery: make `peer` a (durable) member. Throws TOO_MANY_PEERS past the bound. */
  discoverPeer(peer: number): void;
  isPeer(peer: number): boolean;
  /** Never hand out a seq at or below `seq` again (relearning only; `from`: the peer that showed it). */
  ensureSeqAbove(seq: number, from: number): void;
  /** Our wall clock: every envelope we build carries it (docs/PROTOCOL.md "Clocks"). */
  now?(): number | undefined;
  /** A sender's clock reading, from every envelope received (request, response, push). */
  noteClock?(peer: number, senderClock: number): void;
  /** Where refused and answered identities are recorded (duplicate ids, src/sync/identity.ts). */
  readonly conflicts?: IdConflicts;
}

export interface SyncTuning {
  /** Entries per envelope before the delta is paged. */
  maxDeltaEntries: number;
  /** Encoded entry bytes per envelope before the delta is paged. */
  maxDeltaBytes: number;
  /** Consecutive quiescent rounds with unequal digests (or summary roots) before repair. */
  digestCheckRounds: number;
  /** Bucket repairs tried (without the roots becoming equal) before the full reset. */
  bucketRepairAttempts: number;
  /**
   * Advertise delta-coded entry bodies (FEATURES bit DeltaBodies) and answer requests that
   * advertise them with such bodies (envelope version 2, docs/PROTOCOL.md §2.1). false
   * behaves as a build that predates them (tests; a peer that refuses version 2).
   */
  deltaBodies: boolean;
  /**
   * Peers a node adds by itself when an unknown sender id makes a request (durable
   * members, each one holding back tombstone collection). Past it such requests are
   * refused with TOO_MANY_PEERS; configure the peer or removePeer() one.
   */
  maxDiscoveredPeers: number;
  /**
   * Fan-out hold-back (FEATURES bit HoldBack, docs/PROTOCOL.md §2.2): hold third-party
   * entries back from a peer until two of our rounds with it went by. false behaves as a
   * build that predates it (tests, benchmarks): never holds, does not read heldAcks.
   */
  holdBack?: boolean;
}

export const DEFAULT_SYNC_TUNING: Readonly<SyncTuning> = Object.freeze({
  // A quarter of MAX_ENVELOPE_ENTRIES: a page merges in a few slices (SyncManager).
  maxDeltaEntries: 16_384,
  maxDeltaBytes: 8 << 20,
  digestCheckRounds: 3,
  bucketRepairAttempts: 2,
  deltaBodies: true,
  maxDiscoveredPeers: 64,
  holdBack: true,
});
