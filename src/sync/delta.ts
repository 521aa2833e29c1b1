/**
 * What an envelope carries of our state, encoded: delta pages and bucket-repair entries
 * (docs/PROTOCOL.md §3, §5). The replica selects slots (src/state/replica.ts
 * `deltaSlots`, `slotsInBuckets`); this module turns them into entry bytes, so the state
 * knows nothing of envelopes and the wire encoding of entries has one home.
 *
 *   const page = deltaPage(state, peerAcks, cursor, 16_384, 8 << 20, "delta");
 *   envelopeWithEncodedEntries(fields, page.encoded);
 *
 * Base: the lowest timestamp of the entries sent (0 for none): bodies carry timestamps
 * relative to it (FORMAT §1.1).
 */
import { encodeRecords } from "../codec/records.js";
import { RecordKind, type RecordInput } from "../core/record.js";
import { differingGroups } from "../index/summary.js";
import type { Summary } from "../index/merge-index.js";
import type { ReplicaState } from "../state/replica.js";
import type { SeqRange } from "../state/batch-ranges.js";
import type { DeltaHold } from "../state/delta-slots.js";
import { Feature, MAX_ENVELOPE_ENTRIES, type BodyFraming, type DeltaCursor, type EncodedEntries, type Envelope } from "./envelope.js";

export interface DeltaPage {
  encoded: EncodedEntries;
  /** Total entries the acks select after the cursor (this page included). */
  total: number;
  last: boolean;
  /** The last (node, seq) included: where the next page resumes. */
  cursor?: DeltaCursor;
  bytes: number;
  /** With a hold: the origins of which entries were left out. */
  held?: number[];
  /** With a hold: per origin, the highest seq selected before the hold. */
  tops?: Map<number, number>;
  /** Expiring entries left out (a peer without Feature.Expiry): per origin, the lowest seq held back. */
  heldBack?: Map<number, number>;
}

/**
 * The entries of `slots`, in that order, encoded as envelope entries. Without `expiry`
 * (a peer that did not advertise Feature.Expiry) expiring entries are held back: such a
 * peer refuses kind 5, and could not honour the expiry if it took the value.
 */
export function encodeSlots(state: ReplicaState, slots: ArrayLike<number>, framing: BodyFraming, expiry = false, heldBack?: Map<number, number>): EncodedEntries {
  const records: RecordInput[] = [];
  let base = slots.length > 0 ? Infinity : 0;
  for (let i = 0; i < slots.length; i++) {
    const r = state.recordAt(slots[i]!);
    if (!expiry && r.kind === RecordKind.Expiring) {
      if (heldBack !== undefined && !(r.seq >= (heldBack.get(r.node) ?? Infinity))) heldBack.set(r.node, r.seq);
      continue;
    }
    if (r.timestamp < base) base = r.timestamp;
    records.push(r);
  }
  if (records.length === 0) base = 0;
  return { bytes: encodeRecords(records, framing, base), count: records.length, base, framing, ranges: rangesOf(state, records) };
}

/**
 * The batch ranges `records` belong to, as an envelope names them (docs/PROTOCOL.md §2.3):
 * each held range with two of them or more, clipped to them. Only from our own table and
 * these records, so always a list the encoder takes (ascending, disjoint, 2 … 10 000 seqs).
 */
function rangesOf(state: ReplicaState, records: readonly RecordInput[]): SeqRange[] | undefined {
  if (state.batches.size === 0 || records.length < 2) return undefined;
  const out: SeqRange[] = [];
  for (const g of state.batches.groups(records)) {
    // Two records of one stamp (a peer's forgery) make no range. (Held ranges end at MAX_SEQ at most: isBatchRange.)
    if (g.max > g.min) out.push({ node: g.node, first: g.min, count: g.max - g.min + 1 });
  }
  return out.length > 0 ? out : undefined;
}

/**
 * The delta a peer with coverage `acks` is missing, one page of it: after `after` in
 * (node, seq) order, at most `maxEntries` entries / about `maxBytes` bytes (see
 * ReplicaState.deltaSlots). Delta-coded bodies go in (node, seq) order.
 */
export function deltaPage(state: ReplicaState, acks: ReadonlyMap<number, number>, after: DeltaCursor | undefined, maxEntries: number, maxBytes: number, framing: BodyFraming = "bare", hold?: DeltaHold, expiry = false): DeltaPage {
  const page = state.deltaSlots(acks, after, maxEntries, maxBytes, framing === "delta", hold);
  const heldBack = new Map<number, number>();
  const encoded = encodeSlots(state, page.slots, framing, expiry, heldBack);
  return { encoded, total: page.total, last: page.last, cursor: page.cursor, bytes: encoded.bytes.length, held: page.held, tops: page.tops, heldBack: heldBack.size > 0 ? heldBack : undefined };
}

/**
 * `env` (carrying `page`) with its acks lowered below every entry the page held back:
 * the receiver adopts a sender's acks as its own coverage once it merged what was sent
 * (docs/PROTOCOL.md R1/R2), and must not claim an entry it never got. So it asks again
 * from there: a peer that learns Feature.Expiry meanwhile gets the entry next round.
 */
export function withHeldBack(env: Envelope, page: DeltaPage): Envelope {
  if (page.heldBack === undefined) return env;
  for (const [node, seq] of page.heldBack) {
    const ack = env.acks.get(node);
    if (ack === undefined || ack < seq) continue;
    if (seq > 1) env.acks.set(node, seq - 1);
    else env.acks.delete(node);
  }
  return env;
}

/**
 * Our entries of `buckets`, within what one envelope may carry (MAX_ENVELOPE_ENTRIES):
 * on a very large store the leading buckets that fit (the roots still differ after, and
 * the next attempt takes the rest, or the full reset pages). Our encoder must never be
 * handed more than a receiver accepts.
 */
export function bucketEntries(state: ReplicaState, buckets: readonly number[], framing: BodyFraming, expiry = false): { buckets: number[]; encoded: EncodedEntries } {
  let list = [...buckets];
  for (;;) {
    const slots = state.slotsInBuckets(list);
    if (slots.length <= MAX_ENVELOPE_ENTRIES) return { buckets: list, encoded: encodeSlots(state, slots, framing, expiry) };
    if (list.length === 1) return { buckets: [], encoded: encodeSlots(state, [], framing) };
    list = list.slice(0, Math.max(1, Math.floor((list.length * MAX_ENVELOPE_ENTRIES) / slots.length)));
  }
}

/**
 * Our bucket hashes of the summary groups that differ from a requester's `theirs`
 * (512 bytes per group): the second step of a bucket repair.
 */
export function differingBucketHashes(mine: Summary, theirs: Uint8Array): { groups: number[]; hashes: Uint8Array } {
  const groups = differingGroups(mine.groups, theirs);
  const hashes = new Uint8Array(groups.length * 512);
  groups.forEach((g, j) => hashes.set(mine.buckets.subarray(g * 512, (g + 1) * 512), j * 512));
  return { groups, hashes };
}

/**
 * Records whether `env`'s sender reads expiring entries (Feature.Expiry in its FEATURES,
 * which every request and response of a build carries): what our requests to it may hold. A peer
 * that downgrades stops getting them with its next envelope.
 */
export function noteExpiryPeer(peers: Set<number>, env: Envelope): void {
  if (env.features === undefined) return; // a push (or a hand-built envelope) says nothing
  if ((env.features & Feature.Expiry) !== 0) peers.add(env.senderId);
  else peers.delete(env.senderId);
}
