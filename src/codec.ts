/**
 * Entry record codec (docs/FORMAT.md §1–2). CONTRACT — implementations to be filled in.
 *
 *   const bytes = encodeRecords(entries, "framed", base);
 *   const batch = decodeRecords(bytes, "framed", base);
 *   for (let i = 0; i < batch.count; i++) batch.entry(i)
 */
export const enum RecordKind { Tombstone = 0, Value = 1, AddPeer = 2, RemovePeer = 3, SeqMark = 4 }

/** "framed": `u32 len | u32 crc | body` per record (WAL, snapshot). "bare": bodies back to back (envelopes). */
export type Framing = "framed" | "bare";

export type StopReason = "end" | "torn" | "zero" | "crc" | "malformed" | "limit";

export interface RecordInput {
  kind: RecordKind;
  key: string | Uint8Array;       // string → UTF-8
  value: Uint8Array | null;       // kind 1 only
  timestamp: number;
  node: number;
  seq: number;
}

export const DESCRIPTOR_BYTES = 48;

export interface DecodedBatch {
  readonly count: number;
  /** The input the offsets refer to. */
  readonly bytes: Uint8Array;
  /** count * 48 bytes, layout in docs/ARCHITECTURE.md. */
  readonly descriptors: Uint8Array;
  readonly stop: { reason: StopReason; offset: number };
  kind(i: number): RecordKind;
  node(i: number): number;
  seq(i: number): number;
  timestamp(i: number): number;
  keyBytes(i: number): Uint8Array;   // subarray of `bytes`
  key(i: number): string;
  value(i: number): Uint8Array | null; // a copy (kind 1), else null
  recordOffset(i: number): number;
  recordLength(i: number): number;
}

export declare function encodeRecords(records: readonly RecordInput[], framing: Framing, base: number): Uint8Array;
/** Decodes up to `maxRecords` records; never throws on bad bytes (see `stop`). */
export declare function decodeRecords(bytes: Uint8Array, framing: Framing, base: number, maxRecords?: number): DecodedBatch;
export declare function encodeRecordsReference(records: readonly RecordInput[], framing: Framing, base: number): Uint8Array;
export declare function decodeRecordsReference(bytes: Uint8Array, framing: Framing, base: number, maxRecords?: number): DecodedBatch;
