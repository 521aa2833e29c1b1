/**
 * What the replication tracker (src/node/replication.ts) and its waits
 * (src/node/replication-wait.ts) read from their node and its SyncManager: types only.
 */

/** The link fields read (a PeerLinkStatus of src/node/links.ts). */
export interface LinkView { peer: number; rounds: number; failures: number; consecutiveFailures: number; lastOkAt: number; retryAt: number; lastRoundMs?: number; lastError?: string }

/** What a SyncManager lends the tracker: its per-peer links, and a round with a peer now. */
export interface ReplicationLinks {
  links(): LinkView[];
  syncSoon(peer: number): void;
}

export interface ReplicationHost {
  /** This node's id (read lazily: the tracker is made before the node's fields are set). */
  id(): number;
  hasPeers(): boolean;
  /** Current peers (configured and discovered). */
  peers(): number[];
  /** The peer's ack of our id as last reported (0: none). */
  peerAck(peer: number): number;
  /** The seq of our latest write (nextSeq − 1). */
  lastSeq(): number;
  now(): number;
}
