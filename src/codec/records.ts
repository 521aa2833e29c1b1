/**
 * Entry record codec (docs/FORMAT.md §1–2): the entry points, all on the WASM kernel
 * (./kernel-codec.ts). The pure-TS twin (./reference.ts) is re-exported here.
 * A file read into kernel memory is decoded window by window by ./windows.ts (the stores' replay).
 *
 *   const bytes = encodeRecords(entries, "framed", base);
 *   const batch = decodeRecords(bytes, "framed", base);
 *   for (let i = 0; i < batch.count; i++) use(batch.key(i), batch.value(i), batch.seq(i));
 *
 * Entry record body (self-delimiting; varu = unsigned LEB128 ≤ 10 bytes, zvar = zigzag varu):
 *
 * | field | encoding | note |
 * |---|---|---|
 * | kind | u8 | 0 tombstone, 1 value, 2 add peer, 3 remove peer, 4 seq mark, 5 expiring value, 6 batch head, 7 batch range; others malformed |
 * | node | varu ≤ 2^32−1 | |
 * | seq | varu ≤ 2^64−1 | |
 * | timestamp | zvar | timestamp − base (i64, wrapping) |
 * | keyLen | varu ≤ 2^31−1 | checked against the remaining bytes before the key is read |
 * | key | keyLen bytes | UTF-8 |
 * | valueLen | varu ≤ 2^31−1 | kinds 1 and 5 only |
 * | value | valueLen bytes | kinds 1 and 5 only |
 *
 * Kind 7 (a batch range) has a shape the decoders enforce: keyLen 0, timestamp (the count)
 * 2…10 000, 1 ≤ seq ≤ 2^48 − count + 1; any other is malformed (src/core/record.ts).
 *
 * Delta-coded bodies (docs/FORMAT.md §1.1, envelopes of version 2): back to back, each
 * against the previous record of the batch (the first against node 0, seq 0, base):
 * `u8 head (kind | 8 if node follows | S << 4) | [varu node] | [S = 0: zvar seq delta]
 * | zvar (timestamp − previous timestamp) | keyLen, key, [valueLen, value]` as above;
 * S = 1–15 is the seq step itself. Stops as bare.
 *
 * Framed record: `u32 bodyLen | u32 crc32(body) | body`. Decoding stops at the first
 * record that is `torn` (< 8 header bytes, or bodyLen past the end), `zero` (8 zero
 * header bytes), `crc` (mismatch) or `malformed` (CRC fine, body bad or not exactly
 * bodyLen). Bare: bodies back to back; a body running past the end is `torn`, bad
 * content is `malformed`. `limit` = `maxRecords` reached with bytes left. The stop
 * offset is the start of the record that stopped decoding (the input length at `end`).
 */
import { decodeRecordsWasm, encodePickedWasm, encodeRecordsWasm, findNextValidFrameWasm } from "./kernel-codec.js";
import type { DecodedBatch, Framing, RecordInput } from "../core/record.js";

export { decodeRecordsReference, encodeRecordsReference, findNextValidFrameReference } from "./reference.js";

// ---------------------------------------------------------------------------------
// public entry points

/**
 * Encodes records on the kernel: one copy of keys/values in, one call, one copy out.
 * Throws TypeError on what the format cannot carry (see checkRecord).
 */
export function encodeRecords(records: readonly RecordInput[], framing: Framing, base: number): Uint8Array {
  return encodeRecordsWasm(records, framing, base);
}

/**
 * Records `picks[0]`, `picks[stride]`, … of a decoded batch, encoded in one kernel call
 * from the batch's own bytes (no record objects, no value copies): how a merge's winner
 * triples (stride 3) are framed for the log. Bytes equal `encodeRecords` of the same
 * records.
 */
export function encodePicked(batch: DecodedBatch, picks: Uint32Array, stride: number, framing: Framing, base: number): Uint8Array {
  return encodePickedWasm(batch, picks, stride, framing, base);
}

/**
 * Decodes up to `maxRecords` records on the kernel; never throws on bad bytes (see
 * `stop`). The batch reads its descriptors in place in linear memory until the kernel
 * reuses that memory, when they are copied out (so don't hold `descriptors`/`words`
 * across another decode, encode or merge: read them again). `bytes` is kept by
 * reference (do not mutate it while the batch is in use).
 */
export function decodeRecords(bytes: Uint8Array, framing: Framing, base: number, maxRecords?: number): DecodedBatch {
  return decodeRecordsWasm(bytes, framing, base, maxRecords);
}

/**
 * Offset of the first valid framed record starting at or after `from` (header not zero,
 * body inside the buffer, CRC matching, body well formed), or -1. The WAL uses it to
 * tell a torn tail (nothing valid follows) from a damaged record followed by valid ones.
 * Cost: O(bytes scanned); a CRC only where a header's length fits.
 */
export function findNextValidFrame(bytes: Uint8Array, from: number): number {
  return findNextValidFrameWasm(bytes, from);
}
