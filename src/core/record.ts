/**
 * Records as every layer sees them: kinds, the decoded-batch contract and the 48-byte
 * descriptor each decoded record has (docs/FORMAT.md §1 for the bytes on disk and wire;
 * this is the in-memory view both the WASM decoder and its TS twin produce).
 *
 *   forEachRecord(batch, (w, at) => { if (w[at + D_KIND] === RecordKind.Value) … });
 *
 * Descriptor: 12 little-endian u32 words per record, read through `batch.words`.
 *
 * | word | name | field |
 * |---|---|---|
 * | 0, 1 | D_TS_LO, D_TS_HI | timestamp i64 (lo, hi), base already added |
 * | 2, 3 | D_SEQ_LO, D_SEQ_HI | seq u64 (lo, hi) |
 * | 4 | D_NODE | node u32 |
 * | 5 | D_KIND | kind u32 (RecordKind) |
 * | 6, 7 | D_KEY_OFF, D_KEY_LEN | key offset and length in `bytes` |
 * | 8, 9 | D_VAL_OFF, D_VAL_LEN | value offset and length (0, 0 unless kind 1 or 5; kind 5: the expiry + value payload) |
 * | 10, 11 | D_REC_OFF, D_REC_LEN | the whole record (framed: the 8-byte header included) |
 *
 * The AssemblyScript side writes the same words (assembly/codec.ts); a test checks that
 * both decoders agree word for word. No other module indexes descriptor words by number.
 */
import type { Entry } from "./types.js";

export const enum RecordKind { Tombstone = 0, Value = 1, AddPeer = 2, RemovePeer = 3, SeqMark = 4, Expiring = 5,
  /** WAL only: the next `seq` records (kinds 0/1) are one atomic batch (src/node/batch.ts). */
  BatchHead = 6,
  /**
   * Snapshot only (never in an envelope, never merged as an entry): a batch range, the
   * seqs `seq … seq + timestamp − 1` of origin `node` are one atomic batch. `node` = the
   * batch's origin, `seq` = its first seq, `timestamp` = its length (BATCH_RANGE_MIN …
   * BATCH_RANGE_MAX), empty key, no value (docs/FORMAT.md §1). The decoders refuse any
   * other shape as malformed, so a decoded kind-7 record always satisfies these bounds.
   */
  BatchRange = 7 }

/**
 * Kinds that carry a value field: 1, and 5 (an expiring value), whose value field is the
 * payload `i64 LE expiresAt • value` (docs/FORMAT.md §1). The codec and the kernel treat
 * both alike; only the state reads the expiry out of the payload (src/state/expiry.ts).
 */
export function hasValue(kind: number): boolean {
  return kind === RecordKind.Value || kind === RecordKind.Expiring;
}

/** Bytes of the expiry in front of a kind-5 value (an i64 LE, ms since the epoch). */
export const EXPIRY_BYTES = 8;

/**
 * "framed": `u32 len | u32 crc | body` per record (WAL, snapshot). "bare": bodies back to
 * back (envelopes). "delta": delta-coded bodies back to back (envelopes of version 2).
 */
export type Framing = "framed" | "bare" | "delta";

export type StopReason = "end" | "torn" | "zero" | "crc" | "malformed" | "limit";

/** Stop reasons by the numeric code the kernel reports (frozen, append only). */
export const STOP_REASONS: readonly StopReason[] = ["end", "torn", "zero", "crc", "malformed", "limit"];

export interface RecordInput {
  kind: RecordKind;
  key: string | Uint8Array;       // string → UTF-8
  value: Uint8Array | null;       // kind 1 only; kind 5: the payload (expiry + value, see hasValue)
  timestamp: number;
  node: number;
  seq: number;
}

/** The 8-byte `u32 bodyLen | u32 crc32(body)` header of a framed record. */
export const FRAME_HEADER_BYTES = 8;

export const D_TS_LO = 0;
export const D_TS_HI = 1;
export const D_SEQ_LO = 2;
export const D_SEQ_HI = 3;
export const D_NODE = 4;
export const D_KIND = 5;
export const D_KEY_OFF = 6;
export const D_KEY_LEN = 7;
export const D_VAL_OFF = 8;
export const D_VAL_LEN = 9;
export const D_REC_OFF = 10;
export const D_REC_LEN = 11;
/** Words per descriptor. */
export const DESCRIPTOR_WORDS = 12;
/** Bytes per descriptor. */
export const DESCRIPTOR_BYTES = DESCRIPTOR_WORDS * 4;

export interface DecodedBatch {
  readonly count: number;
  /** The input the offsets refer to. */
  readonly bytes: Uint8Array;
  /** count * DESCRIPTOR_BYTES bytes (the table above). */
  readonly descriptors: Uint8Array;
  /** The same descriptors as u32 words (DESCRIPTOR_WORDS per record): what loops over a batch read. */
  readonly words: Uint32Array;
  readonly stop: { reason: StopReason; offset: number };
  kind(i: number): RecordKind;
  node(i: number): number;
  seq(i: number): number;
  timestamp(i: number): number;
  keyBytes(i: number): Uint8Array;   // subarray of `bytes`
  key(i: number): string;
  value(i: number): Uint8Array | null; // a copy (kind 1), else null
  /** Value length without copying the value (0 for non-value kinds). */
  valueLength(i: number): number;
  recordOffset(i: number): number;
  recordLength(i: number): number;
  /** Done with the batch (see BatchView.release): reading it afterwards may throw. */
  release(): void;
  /**
   * For a batch whose bytes the decoder holds itself (`decodeWindow`: a file read into
   * linear memory): those bytes, kept past the batch until released. null when `bytes`
   * is the caller's buffer (keep that as it is).
   */
  retain(): RetainedBytes | null;
}

/**
 * A decoded batch's bytes, kept after the batch is released, for as long as values are
 * read from them. Opaque: where they live (and what keeps them there) is the codec's.
 * A holder that is garbage-collected without `release` is released for it (a leak
 * detector, not the rule).
 */
export interface RetainedBytes {
  /** Byte length (the batch's `bytes.length`). */
  readonly length: number;
  /** A copy of `len` bytes at `off` of the batch's `bytes`. */
  slice(off: number, len: number): Uint8Array;
  /** Done: the bytes may be freed. Idempotent; `slice` throws afterwards. */
  release(): void;
}

/**
 * Records that frame themselves for a log (framed records, docs/FORMAT.md §2) against
 * the log's timestamp base: a merged batch's winners, encoded by the kernel from the
 * batch in one call. `frame` is called at most once, synchronously, inside
 * `Storage.append` (the batch is valid only then).
 */
export interface FramedRecords {
  /** How many records `frame` returns. */
  readonly count: number;
  /** The records as framed records with timestamps relative to `base`. */
  frame(base: number): Uint8Array;
}

/**
 * Calls `fn(words, at, i)` for each record, `at` being the index of its first descriptor
 * word. The word view is read once: `fn` must not decode into or grow the kernel.
 */
export function forEachRecord(batch: DecodedBatch, fn: (words: Uint32Array, at: number, i: number) => void): void {
  const w = batch.words;
  for (let i = 0, at = 0; i < batch.count; i++, at += DESCRIPTOR_WORDS) fn(w, at, i);
}

// ---------------------------------------------------------------------------------
// entries ↔ records: the one spelling of each conversion

/** The record of an entry: kind 1 (value), or kind 0 (tombstone) when `value` is null. */
export function entryToRecord(e: Entry): RecordInput {
  if (e.expiresAt !== undefined && e.value !== null) return { kind: RecordKind.Expiring, key: e.key, value: expiringPayload(e.expiresAt, e.value), timestamp: e.timestamp, node: e.node, seq: e.seq };
  return { kind: e.value === null ? RecordKind.Tombstone : RecordKind.Value, key: e.key, value: e.value, timestamp: e.timestamp, node: e.node, seq: e.seq };
}

/** A kind-5 payload: `i64 LE expiresAt • value` (one copy of the value). */
export function expiringPayload(expiresAt: number, value: Uint8Array): Uint8Array {
  const out = new Uint8Array(EXPIRY_BYTES + value.length);
  new DataView(out.buffer).setBigInt64(0, BigInt(expiresAt), true);
  out.set(value, EXPIRY_BYTES);
  return out;
}

/** The expiry at the front of a kind-5 payload `bytes[off, off + 8)` (exact up to 2^53). */
export function readExpiry(bytes: Uint8Array, off: number): number {
  const lo = bytes[off]! | (bytes[off + 1]! << 8) | (bytes[off + 2]! << 16) | (bytes[off + 3]! << 24);
  const hi = bytes[off + 4]! | (bytes[off + 5]! << 8) | (bytes[off + 6]! << 16) | (bytes[off + 7]! << 24);
  return hi * 4294967296 + (lo >>> 0);
}

/** Record `i` of a batch (kind 0, 1 or 5) as an entry: the key decoded, the value copied. */
export function recordToEntry(batch: DecodedBatch, i: number): Entry {
  if (batch.kind(i) === RecordKind.Expiring) {
    const payload = batch.value(i)!;
    return { key: batch.key(i), value: payload.subarray(EXPIRY_BYTES), timestamp: batch.timestamp(i), node: batch.node(i), seq: batch.seq(i), expiresAt: readExpiry(payload, 0) };
  }
  return { key: batch.key(i), value: batch.kind(i) === RecordKind.Value ? batch.value(i) : null, timestamp: batch.timestamp(i), node: batch.node(i), seq: batch.seq(i) };
}

/** Fewest seqs a batch range names (a range of one is not a batch). */
export const BATCH_RANGE_MIN = 2;
/** Most seqs a batch range names (= MAX_BATCH_ENTRIES of src/node/batch.ts, the largest batch). */
export const BATCH_RANGE_MAX = 10_000;
/** Highest seq a batch range may name (= the protocol's MAX_SEQ, src/sync/envelope-model.ts). */
export const BATCH_RANGE_MAX_SEQ = 2 ** 48;

/** Whether seqs `first … first + count − 1` fit a batch range's bounds (node aside): what the decoders accept. */
export function isBatchRange(first: number, count: number): boolean {
  return Number.isInteger(count) && count >= BATCH_RANGE_MIN && count <= BATCH_RANGE_MAX && Number.isInteger(first) && first >= 1 && first <= BATCH_RANGE_MAX_SEQ - count + 1;
}

/**
 * A batch range (kind 7, snapshots only): seqs `first … first + count − 1` of `node`
 * are one batch. Throws TypeError outside the bounds (isBatchRange, node a u32): no
 * decoder would read such a record back.
 */
export function batchRangeRecord(node: number, first: number, count: number): RecordInput {
  if (!(Number.isInteger(node) && node >= 0 && node <= 0xffffffff && isBatchRange(first, count))) throw new TypeError(`batch range (node ${node}, first ${first}, count ${count}) out of bounds`);
  return { kind: RecordKind.BatchRange, key: "", value: null, timestamp: count, node, seq: first };
}

/**
 * A seq mark (kind 4): the high-water mark of the seqs this node has handed out, kept so
 * a restart never reuses one (docs/FORMAT.md). Negative seqs become 0. A mark copied
 * from a log keeps its `timestamp` and `node`; a new one has both 0.
 */
export function seqMarkRecord(seq: number, timestamp = 0, node = 0): RecordInput {
  return { kind: RecordKind.SeqMark, key: "", value: null, timestamp, node, seq: Math.max(0, seq) };
}
