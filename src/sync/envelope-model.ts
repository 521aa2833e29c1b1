/**
 * What a sync envelope is (SPEC section 3), apart from its bytes: the fields every
 * request and response carries, the feature bits, and the protocol's bounds that both
 * the codec (src/sync/envelope.ts) and the merge rely on. No code here: the encoding is
 * src/sync/envelope.ts, the entries section src/sync/envelope-entries.ts.
 */
import type { Entry } from "../core/types.js";

/** The version this build writes with bare bodies; an envelope with delta-coded bodies is ENVELOPE_VERSION_DELTA. */
export const ENVELOPE_VERSION = 1;
export const ENVELOPE_VERSION_DELTA = 2;

/**
 * The largest seq the protocol carries (docs/PROTOCOL.md "Hostile peers"): 2^48, nine
 * years of 1M writes/s, far inside 2^53 so that every seq and ack stays an exact JS
 * number with room to spare. An entry whose seq is 0 or above it is refused per entry at
 * merge; an ack or cursor above it makes the envelope BAD_ENVELOPE (no honest node can
 * hold one: every seq it holds passed this bound).
 */
export const MAX_SEQ = 2 ** 48;
/**
 * Entries one envelope may carry, checked against the claimed count before anything is
 * allocated. Sized so that one envelope decodes and merges in tens of ms (the merge is
 * further sliced, src/node/manager.ts); senders page (maxDeltaEntries) and split pushes below it.
 */
export const MAX_ENVELOPE_ENTRIES = 65_536;
/**
 * Most seqs one batch range may span: the batch limit, BATCH_RANGE_MAX of src/core/record.ts
 * (which owns a range's bounds; equal to MAX_BATCH_RECORDS of src/storage/wal-batches.ts, a
 * test checks): no honest node holds a longer batch.
 */
export { BATCH_RANGE_MAX as MAX_BATCH_RANGE } from "../core/record.js";
/** Batch ranges one envelope may list: every range holds at least two of its entries. */
export const MAX_ENVELOPE_BATCH_RANGES = MAX_ENVELOPE_ENTRIES / 2;

/** A cursor in (origin node, seq) order: the last entry a page included. */
export interface DeltaCursor { node: number; seq: number }

/**
 * One atomic batch of an origin (docs/PROTOCOL.md "Batch ranges"): its consecutive seqs
 * `first` .. `first + count − 1` (2 ≤ count ≤ MAX_BATCH_RANGE, the last ≤ MAX_SEQ).
 */
export interface BatchRange { node: number; first: number; count: number }

export interface Envelope {
  /** 1: bare entry bodies; 2: delta-coded (on encode, attached encoded entries decide). */
  version: number;
  senderId: number;
  senderUuid: string;
  /** Sender's coverage: origin → highest seq covered. Empty on a push. */
  acks: Map<number, number>;
  /** Materialised lazily when the envelope came from bytes or from a node. */
  entries: Entry[];
  /** Sender's state digest (64 hex); on responses only. */
  digest?: string;
  /** Present when the delta is paged; `last` on the final page only (rule R2). */
  page?: { last: boolean };
  /** Request: continue the responder's scan after this cursor. Response: the cursor to send back for the next page. */
  resumeFrom?: DeltaCursor;
  /** Ask the receiver to forget what it believes we cover (digest repair). */
  resetAcks?: boolean;
  /** Opportunistic push: merge only, never move acks (rule R3). */
  pushOnly?: boolean;
  // ---- extensions (docs/FORMAT.md §6.1; older builds skip them)
  /** Request: feature bits the requester understands (`Feature`). */
  features?: number;
  /** Response: the sender's range-summary root (16 hex), docs/PROTOCOL.md §5. */
  summaryRoot?: string;
  /** Request: the sender's 64 group hashes (512 B): "send me your buckets of the groups that differ". */
  summaryGroups?: Uint8Array;
  /** Response: the sender's bucket hashes (64 × 8 B each) of the listed groups (ascending). */
  summaryBuckets?: { groups: number[]; hashes: Uint8Array };
  /** Bucket repair: the entries are every entry of these buckets (ascending); merge only, never move acks. */
  repairBuckets?: number[];
  /** The sender's wall clock (ms) when it built this envelope: peer clock evidence (docs/PROTOCOL.md "Clocks"). */
  senderClock?: number;
  /**
   * Fan-out hold-back (docs/PROTOCOL.md §2.2): the origins of which this envelope left out
   * entries the receiver lacks, with the sender's true ack of each. `acks` carries them
   * capped (what the receiver may adopt); these say what the sender covers.
   */
  heldAcks?: Map<number, number>;
  /**
   * The batches the entries belong to (ExtTag 26, docs/FORMAT.md §6.1), sorted by (node,
   * first), non-overlapping within a node: the entries whose (node, seq) fall in a listed
   * range are one batch (or the part of it still live at the sender). A receiver merges
   * all of a range's entries of one envelope in one merge slice; a sender never ends a
   * delta page inside a range. Never empty when present (an empty list is not written).
   */
  batchRanges?: BatchRange[];
}

/** Feature bits of the FEATURES extension (frozen, append only). */
export const enum Feature {
  /** Answer with the range-summary root instead of the SHA-256 digest. */
  SummaryRoot = 1,
  /** Decodes delta-coded bodies (envelope version 2): answer with them. */
  DeltaBodies = 2,
  /** Reads `heldAcks`: a sender may hold third-party entries back from it (and needs not resend what the sender covers). */
  HoldBack = 4,
  /** Decodes and keeps expiring entries (record kind 5): send them (docs/PROTOCOL.md "Expiry"). */
  Expiry = 8,
}
