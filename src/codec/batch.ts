/**
 * The decoded-batch view shared by the WASM decoder and its TS twin, plus the 64-bit
 * helpers both sides use to move i64/u64 values as two u32 halves.
 *
 *   const batch = new BatchView(bytes, descriptors, count, { reason: "end", offset: bytes.length });
 *   batch.key(0); batch.timestamp(0);
 *
 * Descriptor (48 B, little-endian; docs/ARCHITECTURE.md), as u32 words:
 *
 * | word | field |
 * |---|---|
 * | 0, 1 | timestamp i64 (lo, hi), base already added |
 * | 2, 3 | seq u64 (lo, hi) |
 * | 4 | node u32 |
 * | 5 | kind u32 |
 * | 6, 7 | keyOff, keyLen (offsets from the start of `bytes`) |
 * | 8, 9 | valOff, valLen (0, 0 unless kind 1) |
 * | 10, 11 | recOff, recLen (framed: the 8-byte header included) |
 *
 * Words are read through a Uint32Array: every runtime wavekv targets is little-endian
 * (checked once below), so the view matches the byte layout without a DataView.
 */
import { DESCRIPTOR_WORDS, type DecodedBatch, type RecordInput, type RecordKind, type StopReason } from "../core/record.js";
import type { PinnedBytes } from "../kernel/memory.js";


/**
 * What both encoders refuse (TypeError): a kind outside 0–4, a node outside u32, kind 1
 * without a Uint8Array value, a value over 2^31−1 bytes. Key length is checked once encoded.
 */
export function checkRecord(r: RecordInput, i: number): void {
  const kind = r.kind as number;
  if (!(kind >= 0 && kind <= 4) || (kind | 0) !== kind) throw new TypeError(`record ${i}: bad kind ${kind}`);
  if (!(r.node >= 0 && r.node <= 0xffffffff)) throw new TypeError(`record ${i}: node ${r.node} is not a u32`);
  if (typeof r.key !== "string" && !(r.key instanceof Uint8Array)) throw new TypeError(`record ${i}: key must be a string or a Uint8Array`);
  if (kind === 1) {
    if (!(r.value instanceof Uint8Array)) throw new TypeError(`record ${i}: kind 1 (value) needs a Uint8Array value`);
    if (r.value.length > 0x7fffffff) throw new TypeError(`record ${i}: value too large`);
  }
}

export const TWO32 = 4294967296;

if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) {
  throw new Error("wavekv needs a little-endian platform (descriptors and linear memory are LE)");
}

/** Low u32 half of an integer-valued number (two's complement for negatives). */
export function lo32(n: number): number {
  return (n - Math.floor(n / TWO32) * TWO32) >>> 0;
}
/** High half as a signed i32 (i64 view); for u64 values below 2^63 it is the same bits. */
export function hi32(n: number): number {
  return Math.floor(n / TWO32) | 0;
}
/** u64 from halves; exact below 2^53. */
export function joinU64(lo: number, hi: number): number {
  return (hi >>> 0) * TWO32 + (lo >>> 0);
}
/** i64 from halves; exact for |v| < 2^53. */
export function joinI64(lo: number, hi: number): number {
  return (hi | 0) * TWO32 + (lo >>> 0);
}

/** A limit as u32: ≥ 2^32−1 (Infinity included) saturates, negatives and NaN become 0. */
export function clampU32(n: number): number {
  return n >= 0xffffffff ? 0xffffffff : n > 0 ? Math.floor(n) : 0;
}

/** `maxRecords` as both decoders read it: undefined = no limit, NaN/negative = 0. */
export function maxRecordsOf(m: number | undefined): number {
  return m === undefined ? Infinity : m > 0 ? Math.floor(m) : 0;
}

/** An i64 limit as (lo, hi) halves, saturating outside ±2^63 (±Infinity included). */
export function i64Halves(n: number): [lo: number, hi: number] {
  if (n >= 2 ** 63) return [0xffffffff, 0x7fffffff];
  if (n < -(2 ** 63) || Number.isNaN(n)) return [0, -0x80000000];
  return [lo32(n), hi32(n)];
}

/** An ack (u64) as both delta selectors read it: floor, saturating; NaN/negative = 0. */
export function ackHalves(a: number): [lo: number, hi: number] {
  if (a >= 2 ** 64) return [0xffffffff, 0xffffffff];
  if (!(a > 0)) return [0, 0];
  const f = Math.floor(a);
  return [lo32(f), hi32(f) >>> 0];
}

const textDecoder = new TextDecoder("utf-8", { fatal: false });

/**
 * UTF-8 → string. Short ASCII keys (the common case) skip TextDecoder, whose per-call
 * cost dominates for a 10–20 byte key; anything else goes through it (U+FFFD for junk).
 */
export function decodeUtf8(bytes: Uint8Array, start: number, end: number): string {
  if (end - start <= 24) {
    let s = "";
    let i = start;
    for (; i < end; i++) {
      const c = bytes[i]!;
      if (c >= 0x80) break;
      s += String.fromCharCode(c);
    }
    if (i === end) return s;
  }
  return textDecoder.decode(bytes.subarray(start, end));
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

  /** A batch whose `count` descriptors stay at `ptr` in linear memory until evicted (no 48 B/entry copy). */
  static inPlace(bytes: Uint8Array, memory: LinearMemory, ptr: number, count: number, stop: { reason: StopReason; offset: number }): BatchView {
    if (count === 0) return new BatchView(bytes, new Uint8Array(0), 0, stop);
    const view = new BatchView(bytes, memory.u8.subarray(ptr, ptr + count * DESCRIPTOR_WORDS * 4), count, stop);
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
   * For bytes in linear memory: one more reference to their block for `holder`, who
   * drops it when done (values can be read from it for as long as needed), and where in
   * the block `bytes` starts. null for a batch whose bytes are a JS buffer.
   */
  keepBytes(holder: object): { block: PinnedBytes; offset: number } | null {
    const at = this.#bytesAt;
    return at === null ? null : { block: at.block.retain(holder), offset: at.offset };
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
    const copy = at.memory.u8.slice(at.ptr, at.ptr + this.count * DESCRIPTOR_WORDS * 4);
    this.#descriptors = copy;
    this.#words = new Uint32Array(copy.buffer, 0, this.count * DESCRIPTOR_WORDS);
  }

  /** `count` × 48 bytes, layout above. In place, valid until the next kernel call that decodes or stages a batch: do not keep it. */
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
    this.#descriptors = memory.u8.subarray(ptr, ptr + this.count * DESCRIPTOR_WORDS * 4);
    return (this.#words = memory.u32.subarray(ptr >>> 2, (ptr >>> 2) + this.count * DESCRIPTOR_WORDS));
  }

  #at(i: number): number {
    if (!(i >= 0 && i < this.count)) throw new RangeError(`record index ${i} out of range [0, ${this.count})`);
    return i * DESCRIPTOR_WORDS;
  }

  kind(i: number): RecordKind {
    return this.words[this.#at(i) + 5]! as RecordKind;
  }
  node(i: number): number {
    return this.words[this.#at(i) + 4]!;
  }
  seq(i: number): number {
    const w = this.#at(i);
    return joinU64(this.words[w + 2]!, this.words[w + 3]!);
  }
  timestamp(i: number): number {
    const w = this.#at(i);
    return joinI64(this.words[w]!, this.words[w + 1]!);
  }
  keyBytes(i: number): Uint8Array {
    const w = this.#at(i);
    const off = this.words[w + 6]!;
    return this.bytes.subarray(off, off + this.words[w + 7]!);
  }
  key(i: number): string {
    const w = this.#at(i);
    const off = this.words[w + 6]!;
    return decodeUtf8(this.bytes, off, off + this.words[w + 7]!);
  }
  value(i: number): Uint8Array | null {
    const w = this.#at(i);
    if (this.words[w + 5] !== 1) return null;
    const off = this.words[w + 8]!;
    return this.bytes.slice(off, off + this.words[w + 9]!);
  }
  /** Value length without copying (0 for non-value kinds). */
  valueLength(i: number): number {
    return this.words[this.#at(i) + 9]!;
  }
  recordOffset(i: number): number {
    return this.words[this.#at(i) + 10]!;
  }
  recordLength(i: number): number {
    return this.words[this.#at(i) + 11]!;
  }
}
