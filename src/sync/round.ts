/**
 * What the sync protocol (./protocol.ts) keeps of one round with a peer while it runs
 * (pages, the minimum acks of R2, what makes it quiescent for the divergence check), and
 * what applying an envelope reports to the caller.
 */
import type { DeltaCursor } from "./envelope-model.js";

export interface MergeOutcome {
  /** Entries received in this envelope. */
  received: number;
  merged: number;
  rejected: number;
  /** Every entry was decided (rule R1). */
  complete: boolean;
  /** Acks were adopted from this envelope. */
  adopted: boolean;
  /** The responder has more pages: call prepareSync(peer) again to continue the round. */
  more: boolean;
  /** Response digests compared: equal or not (undefined when not comparable). */
  digestMatch?: boolean;
  /** Coverage for this peer was reset, or a bucket repair ran, to repair a persistent mismatch. */
  repaired: boolean;
  reasons: string[];
}

export interface Round {
  /** Our state version when the round began: a round during which it moved is not quiescent. */
  version: number;
  /** Per origin, the minimum ack over the pages of this round (see `applyEnvelope`). */
  minAcks: Map<number, number> | null;
  clean: boolean;
  cursor?: DeltaCursor;
  exchanged: number;
  /** Entries were held back either way (hold-back, ./hold-back.ts): unequal digests are expected. */
  held: boolean;
  /** Our request carried our whole delta (not paged): a response to the peer meanwhile needs not repeat our writes. */
  whole?: boolean;
}
