/**
 * Sync envelopes (SPEC section 3). CONTRACT — implemented by the replication work
 * (issue 5); src/node.ts codes against it.
 *
 *   const bytes = encodeEnvelope(node.prepareSync(2));
 *   const env = decodeEnvelope(bytes);   // WaveKVError BAD_ENVELOPE on junk
 */
import type { Entry } from "./types.js";

export const ENVELOPE_VERSION = 1;

/** A cursor in (origin node, seq) order: the last entry a page included. */
export interface DeltaCursor { node: number; seq: number }

export interface Envelope {
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
}

/**
 * The fast path: entries as encoded record bodies ("bare" framing, docs/FORMAT.md §1)
 * with their count and base timestamp. A node builds envelopes with this attached and
 * merges it without materialising `Entry` objects; encodeEnvelope writes it as is.
 */
export interface EncodedEntries { bytes: Uint8Array; count: number; base: number }
export declare const ENCODED_ENTRIES: unique symbol;

/** Builds an envelope whose `entries` decode lazily from `encoded`. */
export declare function envelopeWithEncodedEntries(fields: Omit<Envelope, "entries">, encoded: EncodedEntries): Envelope;
/** The encoded entries of an envelope: attached ones, or `entries` encoded now. */
export declare function encodedEntriesOf(env: Envelope): EncodedEntries;
export declare function encodeEnvelope(env: Envelope): Uint8Array;
export declare function decodeEnvelope(bytes: Uint8Array): Envelope;
