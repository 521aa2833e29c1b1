/**
 * The decoded-batch view shared by the WASM decoder and its TS twin (DecodedBatch, with
 * the descriptor layout, is in src/core/record.ts), and the input checks both codecs share.
 *
 *   const batch = new BatchView(bytes, descriptors, count, { reason: "end", offset: bytes.length });
 *   batch.key(0); batch.timestamp(0);
 *
 * Words are read through a Uint32Array: every runtime wavekv targets is little-endian
 * (checked in src/core/encoding.ts), so the view matches the byte layout without a DataView.
 */
import {
  DESCRIPTOR_BYTES, DESCRIPTOR_WORDS, D_KEY_LEN, D_KEY_OFF, D_KIND, D_NODE, D_REC_LEN, D_REC_OFF, D_SEQ_HI, D_SEQ_LO, D_TS_HI, D_TS_LO,
  D_VAL_LEN, D_VAL_OFF, EXPIRY_BYTES, RecordKind, hasValue, isBatchRange, type DecodedBatch, type RecordInput, type RetainedBytes, type StopReason,
} from "../core/record.js";
import { joinI64, joinU64, readUtf8 } from "../core/encoding.js";
import type { PinnedBytes } from "../kernel/memory.js";

/**
 * What both encoders refuse (TypeError): a kind outside 0–7, a node outside u32, kind 1
 * or 5 without a Uint8Array value (kind 5: of at least the 8 expiry bytes), a value over 2^31−1 bytes,
 * a kind-7 record with a key or outside isBatchRange's bounds (the decoders would refuse
 * it). Key length is checked once encoded.
 */
export function checkRecord(r: RecordInput, i: number): void {
  const kind = r.kind as number;
  if (!(kind >= 0 && kind <= RecordKind.BatchRange) || (kind | 0) !== kind) throw new TypeError(`record ${i}: bad kind ${kind}`);
  if (!(r.node >= 0 && r.node <= 0xffffffff)) throw new TypeError(`record ${i}: node ${r.node} is not a u32`);
  if (typeof r.key !== "string" && !(r.key instanceof Uint8Array)) throw new TypeError(`record ${i}: key must be a string or a Uint8Array`);
  if (kind === RecordKind.BatchRange && (r.key.length !== 0 || !isBatchRange(r.seq, r.timestamp))) throw new TypeError(`record ${i}: batch range with a key or out of bounds`);
  if (hasValue(kind)) {
    if (!(r.value instanceof Uint8Array)) throw new TypeError(`record ${i}: kind ${kind} (value) needs a Uint8Array value`);
    if (kind === 5 && r.value.length < EXPIRY_BYTES) throw new TypeError(`record ${i}: kind 5 needs the ${EXPIRY_BYTES} expiry bytes in front of its value`);
    if (r.value.length > 0x7fffffff) throw new TypeError(`record ${i}: value too large`);
  }
}

/** `maxRecords` as both decoders read it: undefined = no limit, NaN/negative = 0. */
export function maxRecordsOf(m: number | undefined): number {
  return m === undefined ? Infinity : m > 0 ? Math.floor(m) : 0;
}

/** Linear memory as the kernel wrapper exposes it (views rebuilt after growth). */
export interface LinearMemory {
  readonly u8: Uint8Array;
  readonly u32: Uint32Array;
}

export class BatchView implements DecodedBatch {
  #bytes: Uint8Array;
  /**
   * Bytes that are a window of a file read into linear memory (readIntoKernel,
   * decodeWindow): `length` bytes at `offset` in `block`, which this batch holds a
   * reference to until released. `bytes` rebuilds its view after memory growth.
   */
  #bytesAt: { block: PinnedBytes; offset: number; length: number } | null = null;
  readonly count: number;
  readonly stop: { reason: StopReason; offset: number };
  #descriptors: Uint8Array;
  /** Word view of the descriptors (4-aligned: a fresh buffer, a slice or linear memory). */
  #words: Uint32Array;
  /**
   * While the descriptors are read in place in linear memory: where. The kernel wrapper
   * calls `evict()` before anything overwrites them; a view detached by memory growth
   * (length 0) is rebuilt at the same address.
   */
  #inPlace: { memory: LinearMemory; ptr: number } | null = null;

  constructor(bytes: Uint8Array, descriptors: Uint8Array, count: number, stop: { reason: StopReason; offset: number }) {
    this.#bytes = bytes;
    this.#descriptors = descriptors;
    this.count = count;
    this.stop = stop;
    this.#words = new Uint32Array(descriptors.buffer, descriptors.byteOffset, count * DESCRIPTOR_WORDS);
  }

  /** A batch whose `count` descriptors stay at `ptr` in linear memory until evicted (no DESCRIPTOR_BYTES-per-entry copy). */
  static inPlace(bytes: Uint8Array, memory: LinearMemory, ptr: number, count: number, stop: { reason: StopReason; offset: number }): BatchView {
    if (count === 0) return new BatchView(bytes, new Uint8Array(0), 0, stop);
    const view = new BatchView(bytes, memory.u8.subarray(ptr, ptr + count * DESCRIPTOR_BYTES), count, stop);
    view.#inPlace = { memory, ptr };
    return view;
  }

  /**
   * A batch whose bytes too stay in linear memory: `length` bytes at `offset` in `block`
   * (a file read into the input region), descriptors at `desc`. Takes a reference to the
   * block, dropped by `release()`.
   */
  static inMemory(block: PinnedBytes, offset: number, length: number, memory: LinearMemory, desc: number, count: number, stop: { reason: StopReason; offset: number }): BatchView {
    const view = BatchView.inPlace(block.view().subarray(offset, offset + length), memory, desc, count, stop);
    view.#bytesAt = { block: block.retain(view), offset, length };
    return view;
  }

  /** The input the offsets refer to (for bytes in linear memory: a view valid until memory grows). */
  get bytes(): Uint8Array {
    const b = this.#bytes;
    const at = this.#bytesAt;
    if (b.length !== 0 || at === null || at.length === 0) return b;
    // Detached by memory growth: the same bytes, in the new buffer.
    return (this.#bytes = at.block.view().subarray(at.offset, at.offset + at.length));
  }

  /**
   * For bytes in linear memory: one more reference to their block, as an opaque handle
   * (values can be read from it for as long as needed). null for a batch whose bytes
   * are a JS buffer.
   */
  retain(): RetainedBytes | null {
    const at = this.#bytesAt;
    return at === null ? null : new RetainedBlock(at.block, at.offset, at.length);
  }

  /**
   * Done with this batch: in-place descriptors are dropped, not copied out when the kernel
   * reuses their memory (a dead batch the GC has not collected yet would otherwise cost
   * that copy), and its reference to a linear-memory block is dropped. Reading it
   * afterwards throws.
   */
  release(): void {
    if (this.#bytesAt !== null) {
      this.#bytesAt.block.drop(this);
      this.#bytesAt = null;
      this.#bytes = new Uint8Array(0);
    }
    if (this.#inPlace === null) return;
    this.#inPlace = null;
    this.#released = true;
    this.#descriptors = new Uint8Array(0);
    this.#words = new Uint32Array(0);
  }
  #released = false;

  /** Copies in-place descriptors out of linear memory (before the kernel reuses it). */
  evict(): void {
    const at = this.#inPlace;
    if (at === null) return;
    this.#inPlace = null;
    const copy = at.memory.u8.slice(at.ptr, at.ptr + this.count * DESCRIPTOR_BYTES);
    this.#descriptors = copy;
    this.#words = new Uint32Array(copy.buffer, 0, this.count * DESCRIPTOR_WORDS);
  }

  /** `count` × DESCRIPTOR_BYTES bytes (src/core/record.ts). In place, valid until the next kernel call that decodes or stages a batch: do not keep it. */
  get descriptors(): Uint8Array {
    void this.words; // rebuilds the views if memory grew
    return this.#descriptors;
  }

  get words(): Uint32Array {
    const w = this.#words;
    if (w.length !== 0 || this.count === 0) return w;
    if (this.#inPlace === null) throw new Error("DecodedBatch used after release()");
    // Memory grew (the old buffer is detached): same address, new buffer.
    const { memory, ptr } = this.#inPlace;
    this.#descriptors = memory.u8.subarray(ptr, ptr + this.count * DESCRIPTOR_BYTES);
    return (this.#words = memory.u32.subarray(ptr >>> 2, (ptr >>> 2) + this.count * DESCRIPTOR_WORDS));
  }

  #at(i: number): number {
    if (!(i >= 0 && i < this.count)) throw new RangeError(`record index ${i} out of range [0, ${this.count})`);
    return i * DESCRIPTOR_WORDS;
  }

  kind(i: number): RecordKind {
    return this.words[this.#at(i) + D_KIND]! as RecordKind;
  }
  node(i: number): number {
    return this.words[this.#at(i) + D_NODE]!;
  }
  seq(i: number): number {
    const at = this.#at(i), w = this.words;
    return joinU64(w[at + D_SEQ_LO]!, w[at + D_SEQ_HI]!);
  }
  timestamp(i: number): number {
    const at = this.#at(i), w = this.words;
    return joinI64(w[at + D_TS_LO]!, w[at + D_TS_HI]!);
  }
  keyBytes(i: number): Uint8Array {
    const at = this.#at(i), w = this.words;
    const off = w[at + D_KEY_OFF]!;
    return this.bytes.subarray(off, off + w[at + D_KEY_LEN]!);
  }
  key(i: number): string {
    const at = this.#at(i), w = this.words;
    const off = w[at + D_KEY_OFF]!;
    return readUtf8(this.bytes, off, off + w[at + D_KEY_LEN]!);
  }
  value(i: number): Uint8Array | null {
    const at = this.#at(i), w = this.words;
    if (!hasValue(w[at + D_KIND]!)) return null;
    const off = w[at + D_VAL_OFF]!;
    return this.bytes.slice(off, off + w[at + D_VAL_LEN]!);
  }
  /** Value length without copying (0 for non-value kinds). */
  valueLength(i: number): number {
    return this.words[this.#at(i) + D_VAL_LEN]!;
  }
  recordOffset(i: number): number {
    return this.words[this.#at(i) + D_REC_OFF]!;
  }
  recordLength(i: number): number {
    return this.words[this.#at(i) + D_REC_LEN]!;
  }
}

/** A batch's bytes kept in their pinned block of linear memory (values handed out as copies: views would detach when memory grows). */
class RetainedBlock implements RetainedBytes {
  #block: PinnedBytes | null;
  readonly #offset: number;
  readonly length: number;

  constructor(block: PinnedBytes, offset: number, length: number) {
    this.#block = block.retain(this);
    this.#offset = offset;
    this.length = length;
  }

  slice(off: number, len: number): Uint8Array {
    if (this.#block === null) throw new Error("RetainedBytes used after release()");
    return this.#block.slice(this.#offset + off, len);
  }

  release(): void {
    const b = this.#block;
    if (b === null) return;
    this.#block = null;
    b.drop(this);
  }
}
