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
  /** The uuid that answered this round's pages: a page from another one starts the round over. */
  uuid?: string;
  /** Aborts since the last page applied (`resumeAfterAbort`). */
  resumes?: number;
  /**
   * The responder's bucket hashes (a bucket repair's second step) when they came on a page
   * that was not the last: the first response carries them, the round ends on the last.
   */
  summaryBuckets?: { groups: number[]; hashes: Uint8Array };
}

/**
 * Failed exchanges in a row a paged round survives (`resumeAfterAbort`). A resumed round
 * is safe however long the gap (docs/PROTOCOL.md §2, "Resuming a paged round"); the bound
 * only keeps a dead or hostile peer's cursor from living forever. 8: at 36 % of
 * exchanges failing (20 % of legs dropped) eight in a row happen once in ~3 500 exchanges,
 * while eight failures against a peer that is down take ~25 s of the manager's backoff
 * (100 ms doubling) or 8 intervals: the link is down, not lossy, and a round started over
 * costs the pages resent, no more than before.
 */
export const MAX_ROUND_RESUMES = 8;

/**
 * On abort: whether `round` is kept so the next request continues from its cursor. Only
 * a round with a cursor (a page was applied: a failed first exchange has nothing to
 * keep), not one that carries a reset request (it starts over, as before), and at most
 * MAX_ROUND_RESUMES aborts since its last applied page.
 */
export function resumeAfterAbort(round: Round | undefined, resetting: boolean): boolean {
  if (round?.cursor === undefined || resetting) return false;
  round.resumes = (round.resumes ?? 0) + 1;
  return round.resumes <= MAX_ROUND_RESUMES;
}

/**
 * On a page applied: false when it comes from another uuid than the round's earlier
 * pages (the peer was rebuilt: its pages are not one delta), and the round starts over.
 * Otherwise records the uuid and clears the abort count (`resumes` counts in a row).
 */
export function samePeer(round: Round, uuid: string): boolean {
  if (round.uuid !== undefined && round.uuid !== uuid) return false;
  round.uuid = uuid;
  round.resumes = 0;
  return true;
}
