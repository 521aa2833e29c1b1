/**
 * Record codec on the kernel (assembly/codec.ts): copy in once, one call, copy out once.
 *
 *   const batch = decodeRecordsWasm(bytes, "framed", base);   // descriptors copied out
 *   const bytes = encodeRecordsWasm(records, "bare", base);
 *
 * A decoded batch stays resident (its input in R_IN, its descriptors in R_DESC) until
 * the next write to those regions, so a merge right after decode skips a second copy.
 */
import {
  DESCRIPTOR_BYTES, DESCRIPTOR_WORDS, D_KEY_LEN, D_KEY_OFF, D_KIND, D_NODE, D_SEQ_HI, D_SEQ_LO, D_TS_HI, D_TS_LO, D_VAL_LEN, D_VAL_OFF,
  FRAME_HEADER_BYTES, RecordKind, STOP_REASONS, hasValue, type DecodedBatch, type Framing, type RecordInput,
} from "../core/record.js";
import { DESC_MAX, ENCODE_TOO_LARGE, R_AUX, R_DESC, R_IN, R_OUT, MB_STOP_OFFSET, MB_STOP_REASON } from "../kernel/abi.js";
import { WaveKVError } from "../core/errors.js";
import { hi32, lo32, writeUtf8 } from "../core/encoding.js";
import { BatchView, checkRecord, maxRecordsOf } from "./batch.js";
import { kernel, type Kernel } from "../kernel/instance.js";
import type { PinnedBytes } from "../kernel/memory.js";

/** The kernel's `mode` argument for a framing. */
const modeOf = (framing: Framing): number => (framing === "framed" ? 1 : framing === "delta" ? 2 : 0);

export function decodeRecordsWasm(bytes: Uint8Array, framing: Framing, base: number, maxRecords?: number): DecodedBatch {
  const k = kernel();
  const len = bytes.length;
  const inp = k.reserve(R_IN, Math.max(len, 16));
  k.u8.set(bytes, inp);
  return decodeResident(k, inp, len, framing, base, maxRecords, bytes);
}

/**
 * Decodes `len` bytes at `inp` in the input region; `from` is the JS buffer they were
 * copied from, or the block (and offset in it) they were read into (./windows.ts).
 */
export function decodeResident(k: Kernel, inp: number, len: number, framing: Framing, base: number, maxRecords: number | undefined, from: Uint8Array | { block: PinnedBytes; offset: number }): DecodedBatch {
  const wanted = maxRecordsOf(maxRecords);
  const max = Math.min(wanted, DESC_MAX);
  const count = k.exports.decode(inp, len, modeOf(framing), lo32(base), hi32(base), max) >>> 0;
  const desc = k.regionPtr(R_DESC);
  if (count === DESC_MAX && wanted > DESC_MAX && STOP_REASONS[k.mailbox(MB_STOP_REASON)] === "limit") {
    // Not a "limit" the caller asked for: the descriptors would not fit one region.
    k.generation++;
    throw new WaveKVError("INVALID_ARGUMENT", `more than ${DESC_MAX} records in one batch (descriptors over 1 GiB): pass maxRecords <= ${DESC_MAX} and decode from stop.offset`);
  }
  const stop = { reason: STOP_REASONS[k.mailbox(MB_STOP_REASON)]!, offset: k.mailbox(MB_STOP_OFFSET) };
  // Descriptors are read where the decoder wrote them; the kernel copies them out only
  // if something reuses R_IN/R_DESC while the batch is alive (Kernel.reserve).
  const inMemory = !(from instanceof Uint8Array);
  // A window's bytes end where its records do (a window handed to a replay is what the
  // state retains and measures its live values against), not at the end of the block.
  const batch = inMemory
    ? BatchView.inMemory(from.block, from.offset, stop.reason === "end" ? len : stop.offset, k, desc, count, stop)
    : BatchView.inPlace(from, k, desc, count, stop);
  k.generation++; // the decoder rewrote R_DESC
  k.setResident(batch, inp, desc, inMemory ? from.block : null);
  return batch;
}

export function findNextValidFrameWasm(bytes: Uint8Array, from: number): number {
  const f = from > 0 ? Math.floor(from) : 0;
  if (f + FRAME_HEADER_BYTES > bytes.length) return -1;
  const k = kernel();
  // Bytes in linear memory (a batch decoded there) may move or be overwritten by the
  // reserve below: copy them out first. Damage path only.
  const src = bytes.buffer === k.exports.memory.buffer ? bytes.slice() : bytes;
  const inp = k.reserve(R_IN, src.length);
  k.u8.set(src, inp);
  return k.exports.findFrame(inp, src.length, f);
}

export function encodeRecordsWasm(records: readonly RecordInput[], framing: Framing, base: number): Uint8Array {
  const n = records.length;
  let bound = 0;
  for (let i = 0; i < n; i++) {
    const r = records[i]!;
    checkRecord(r, i);
    bound += typeof r.key === "string" ? r.key.length * 3 : r.key.length;
    if (hasValue(r.kind)) bound += r.value!.length;
  }
  const k = kernel();
  const desc = k.reserve(R_DESC, Math.max(n * DESCRIPTOR_BYTES, 16));
  const data = k.reserve(R_IN, Math.max(bound, 16));
  const u8 = k.u8, u32 = k.u32; // after both reserves: they may grow memory
  let at = 0;
  for (let i = 0, w = desc >>> 2; i < n; i++, w += DESCRIPTOR_WORDS) {
    const r = records[i]!;
    const keyOff = at;
    if (typeof r.key === "string") at = writeUtf8(u8, data + at, r.key) - data;
    else {
      u8.set(r.key, data + at);
      at += r.key.length;
    }
    const keyLen = at - keyOff;
    if (keyLen > 0x7fffffff) throw new TypeError(`record ${i}: key too large`);
    let valOff = 0, valLen = 0;
    if (hasValue(r.kind)) {
      const v = r.value!;
      valOff = at;
      valLen = v.length;
      u8.set(v, data + at);
      at += valLen;
    }
    u32[w + D_TS_LO] = lo32(r.timestamp);
    u32[w + D_TS_HI] = hi32(r.timestamp);
    u32[w + D_SEQ_LO] = lo32(r.seq);
    u32[w + D_SEQ_HI] = hi32(r.seq);
    u32[w + D_NODE] = r.node;
    u32[w + D_KIND] = r.kind;
    u32[w + D_KEY_OFF] = keyOff;
    u32[w + D_KEY_LEN] = keyLen;
    u32[w + D_VAL_OFF] = valOff;
    u32[w + D_VAL_LEN] = valLen;
  }
  return encodeOut(k, n, k.exports.encode(desc, n, data, modeOf(framing), lo32(base), hi32(base), 0, 0));
}

/** The bytes an `encode` call left in R_OUT (a copy: the region is reused). */
function encodeOut(k: Kernel, n: number, result: number): Uint8Array {
  const total = result >>> 0;
  if (total === ENCODE_TOO_LARGE) throw new WaveKVError("INVALID_ARGUMENT", `${n} records encode to more than 1 GiB: encode them in parts`);
  const out = k.regionPtr(R_OUT);
  return k.u8.slice(out, out + total);
}

/**
 * Where `batch`'s bytes and descriptors are for a kernel call: in place while it is the
 * resident batch, else copied into R_IN / R_DESC (and made resident).
 */
export function stageBatch(k: Kernel, batch: DecodedBatch): { inp: number; desc: number } {
  const where = k.residentOf(batch);
  if (where !== null) return where;
  const n = batch.count;
  const inp = k.reserve(R_IN, Math.max(batch.bytes.length, 16));
  const desc = k.reserve(R_DESC, Math.max(n * DESCRIPTOR_BYTES, 16));
  const u8 = k.u8;
  // Read `bytes` after the reserves: a batch held in linear memory gets a new view if they grew it.
  u8.set(batch.bytes, inp);
  u8.set(batch.descriptors.subarray(0, n * DESCRIPTOR_BYTES), desc);
  k.setResident(batch, inp, desc);
  return { inp, desc };
}

/**
 * Records `picks[0]`, `picks[stride]`, … of `batch`, encoded in one kernel call from the
 * batch's own bytes and descriptors: no record objects, no value copies (a merge's
 * winner triples, stride 3, framed for the log). Each pick must be a record of the batch.
 */
export function encodePickedWasm(batch: DecodedBatch, picks: Uint32Array, stride: number, framing: Framing, base: number): Uint8Array {
  if (!(stride >= 1) || picks.length % stride !== 0) throw new RangeError(`encodePicked: ${picks.length} picks do not divide into strides of ${stride}`);
  const n = picks.length / stride;
  for (let j = 0; j < picks.length; j += stride) {
    if (picks[j]! >= batch.count) throw new RangeError(`encodePicked: record ${picks[j]} out of range [0, ${batch.count})`);
  }
  const k = kernel();
  const where = stageBatch(k, batch);
  const pick = k.reserve(R_AUX, Math.max(picks.length * 4, 16));
  k.u32.set(picks, pick >>> 2);
  return encodeOut(k, n, k.exports.encode(where.desc, n, where.inp, modeOf(framing), lo32(base), hi32(base), n === 0 ? 0 : pick, stride));
}
