/**
 * The byte-level pieces of the envelope codec (src/sync/envelope.ts): its two errors, a
 * bounds-checked reader (strict: minimal varints, errors naming the field), the varint and
 * timestamp-zvar writers (on core/encoding.ts), hex and uuid, and the encode-side
 * range checks. Every decode failure is BAD_ENVELOPE naming the field; every value that
 * cannot be encoded is INVALID_ARGUMENT.
 */
import { WaveKVError } from "../core/errors.js";
import { hi32, lo32, varU64Size, writeVarU64, writeVarUint, zigzagHi, zigzagLo } from "../core/encoding.js";
import { MAX_SEQ } from "./envelope-model.js";
import { toHex } from "../core/sha256.js";

const MAX_U32 = 0xffffffff;
/** Timestamps are exact JS numbers: ±(2^53 − 1). The base travels as a zvar of up to 2^54. */
const MAX_TIMESTAMP_ABS = Number.MAX_SAFE_INTEGER;

export function bad(message: string, cause?: unknown): WaveKVError {
  return new WaveKVError("BAD_ENVELOPE", `${message}; the peer sent a malformed sync envelope (or one from an incompatible wavekv)`, cause === undefined ? undefined : { cause });
}

export function invalid(message: string): WaveKVError {
  return new WaveKVError("INVALID_ARGUMENT", `cannot encode envelope: ${message}`);
}

// ------------------------------------------------------------------ writing

/** Appends the varu of `v` (an integer 0..2^53 − 1) to a byte list: core/encoding's writer. */
export function pushVaru(out: number[], v: number): void {
  const n = writeVarUint(scratch, 0, v);
  for (let i = 0; i < n; i++) out.push(scratch[i]!);
}
const scratch = new Uint8Array(10);

/** The zvar of a timestamp (exact to ±(2^53 − 1); its zigzag reaches 2^54), as bytes. */
export function zigzag(v: number): Uint8Array {
  const lo = lo32(v), hi = hi32(v);
  const zlo = zigzagLo(lo, hi), zhi = zigzagHi(lo, hi);
  const out = new Uint8Array(varU64Size(zlo, zhi));
  writeVarU64(out, 0, zlo, zhi);
  return out;
}

export function checkU32(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > MAX_U32) throw invalid(`${what} must be a uint32, got ${String(v)}`);
  return v;
}

export function checkSafe(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw invalid(`${what} must be a non-negative safe integer, got ${String(v)}`);
  return v;
}

export function checkSeq(v: unknown, what: string): number {
  if (checkSafe(v, what) > MAX_SEQ) throw invalid(`${what} is ${String(v)}, above MAX_SEQ (2^48), which no receiver accepts`);
  return v as number;
}

// ------------------------------------------------------------------ reading

/** Bounds-checked reader; every failure is BAD_ENVELOPE naming the field. */
export class Reader {
  pos: number;
  constructor(readonly bytes: Uint8Array, start: number, readonly end: number) { this.pos = start; }

  get remaining(): number { return this.end - this.pos; }

  /** A minimal LEB128 varint whose value is exact in a JS number (≤ 2^53 − 1). */
  varu(field: string): number {
    const b = this.bytes;
    let value = 0;
    let scale = 1;
    for (let i = 0; ; i++) {
      if (this.pos >= this.end) throw bad(`${field}: truncated varint at byte ${this.pos}`);
      if (i === 8) throw bad(`${field}: varint longer than 8 bytes at byte ${this.pos} (values above 2^53 are not supported)`);
      const byte = b[this.pos++]!;
      value += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) {
        if (byte === 0 && i > 0) throw bad(`${field}: non-minimal varint ending at byte ${this.pos - 1}`);
        if (value > Number.MAX_SAFE_INTEGER) throw bad(`${field}: ${value} exceeds 2^53 - 1`);
        return value;
      }
      scale *= 128;
    }
  }

  u32(field: string): number {
    const v = this.varu(field);
    if (v > MAX_U32) throw bad(`${field}: ${v} is not a uint32`);
    return v;
  }

  /** A minimal zigzag varint of up to 2^54 (10 bytes allowed), exact as a JS number: |v| ≤ 2^53 − 1. */
  timestamp(field: string): number {
    const b = this.bytes;
    let z = 0n;
    for (let i = 0; ; i++) {
      if (this.pos >= this.end) throw bad(`${field}: truncated varint at byte ${this.pos}`);
      if (i === 8) throw bad(`${field}: varint longer than 8 bytes at byte ${this.pos} (timestamps beyond ±(2^53 - 1) are not supported)`);
      const byte = b[this.pos++]!;
      z |= BigInt(byte & 0x7f) << BigInt(7 * i);
      if ((byte & 0x80) === 0) {
        if (byte === 0 && i > 0) throw bad(`${field}: non-minimal varint ending at byte ${this.pos - 1}`);
        const v = (z & 1n) === 0n ? z >> 1n : -((z + 1n) >> 1n);
        if (v > BigInt(MAX_TIMESTAMP_ABS) || v < -BigInt(MAX_TIMESTAMP_ABS)) throw bad(`${field}: ${v} is beyond ±(2^53 - 1)`);
        return Number(v);
      }
    }
  }

  /** A seq or ack: a varu of at most MAX_SEQ. */
  seq(field: string): number {
    const v = this.varu(field);
    if (v > MAX_SEQ) throw bad(`${field}: ${v} exceeds the protocol's MAX_SEQ (2^48)`);
    return v;
  }

  take(n: number, field: string): Uint8Array {
    if (n > this.remaining) throw bad(`${field}: needs ${n} bytes, ${this.remaining} remain`);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

// ------------------------------------------------------------------ uuid and digest

export function writeHex(out: Uint8Array, pos: number, hex: string): number {
  for (let i = 0; i < hex.length; i += 2) out[pos++] = parseInt(hex.slice(i, i + 2), 16);
  return pos;
}

/** Lowercase hex of `bytes` (the one hex table: src/core/sha256.ts). */
export { toHex as hexOf };

/** Canonical lowercase 8-4-4-4-12 form of 16 raw bytes. */
export function uuidOf(bytes: Uint8Array): string {
  const h = toHex(bytes);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
