/**
 * Sync envelopes (SPEC section 3): the one message type of the protocol, request and
 * response alike, and its binary encoding (docs/FORMAT.md section "Sync envelope").
 *
 *   const bytes = encodeEnvelope(node.prepareSync(2));
 *   const env = decodeEnvelope(bytes);   // WaveKVError BAD_ENVELOPE on junk
 *   env.entries;                         // Entry[], materialised on first access
 *
 * Layout (all integers little-endian; `varu` unsigned LEB128, `zvar` zigzag varint):
 *
 *   envelope := "WKVE" • u8 version • u8 flags • varu senderId • uuid[16]
 *               • varu ackCount • ackCount × (varu origin • varu seq)   origins ascending
 *               • digest[32]                    if flags & DIGEST
 *               • varu node • varu seq          if flags & RESUME (resumeFrom)
 *               • varu extCount • extCount × (varu tag • varu len • len bytes)   if flags & EXT
 *               • varu entryCount • zvar base • entryCount record bodies
 *               • u32 crc                       CRC-32 of every byte before it
 *
 *   version: 1 = bare bodies (FORMAT §1), 2 = delta-coded bodies (FORMAT §1.1), sent only
 *          in answer to an envelope that advertised FEATURES bit DeltaBodies (an older
 *          build refuses version 2 outright instead of misreading it)
 *
 *   flags: 0x01 DIGEST, 0x02 PAGE, 0x04 LAST (page.last; only with PAGE), 0x08 RESUME,
 *          0x10 RESET_ACKS, 0x20 PUSH_ONLY, 0x40 EXT, 0x80 reserved (must be 0)
 *   extensions (FORMAT §6.1): 16 FEATURES (bits: SummaryRoot, DeltaBodies), 17 SUMMARY_ROOT, 18 SUMMARY_GROUPS,
 *          19 SUMMARY_BUCKETS, 20 REPAIR_BUCKETS, 21 SENDER_CLOCK; unknown tags are skipped
 *
 * Decoding trusts nothing: magic, version and CRC first, then every count and length is
 * checked against the bytes that remain before anything is allocated (at most
 * MAX_ENVELOPE_ENTRIES entries), varints must be minimal and exact in a JS number (< 2^53),
 * acks and cursors at most MAX_SEQ, and the entries must parse exactly — the claimed
 * count, kinds 0/1 only, UTF-8 keys, no trailing bytes — in one WASM call. Any failure is
 * `BAD_ENVELOPE`; nothing else escapes. An entry whose seq or timestamp is out of range
 * (`entryFault`) is not an envelope error: the merge refuses that entry alone. Accepted envelopes re-encode to the same bytes
 * (extensions aside), which the property tests pin.
 *
 * A decoded envelope aliases the input buffer (its entries section is a subarray, no
 * copy): do not overwrite the buffer while the envelope is in use.
 */
import { decodeRecords, encodeRecords } from "../codec/records.js";
import { DESCRIPTOR_BYTES, RecordKind, type RecordInput } from "../core/record.js";
import { crc32 } from "../codec/crc.js";
import { isUtf8, varUintSize, writeVarUint } from "../core/encoding.js";
import { WaveKVError } from "../core/errors.js";
import type { Entry } from "../core/types.js";

/** The version this build writes with bare bodies; an envelope with delta-coded bodies is ENVELOPE_VERSION_DELTA. */
export const ENVELOPE_VERSION = 1;
export const ENVELOPE_VERSION_DELTA = 2;
export const ENVELOPE_MAGIC = Object.freeze([0x57, 0x4b, 0x56, 0x45] as const); // "WKVE"

/** Flag bits of byte 5. Frozen: new optional fields go to extensions, not new bits. */
export const enum EnvelopeFlag {
  Digest = 0x01,
  Page = 0x02,
  Last = 0x04,
  Resume = 0x08,
  ResetAcks = 0x10,
  PushOnly = 0x20,
  Ext = 0x40,
}
const KNOWN_FLAGS = 0x7f;

/**
 * Smallest valid envelope: magic 4, version 1, flags 1, senderId 1, uuid 16,
 * ackCount 1, entryCount 1, base 1, crc 4.
 */
export const MIN_ENVELOPE_BYTES = 30;
/**
 * Smallest entry body (a tombstone with 1-byte varints and an empty key): bounds a
 * claimed count. Bare: kind, node, seq, timestamp, keyLen; delta: head, timestamp, keyLen.
 */
const MIN_BODY_BYTES = 5;
const MIN_DELTA_BODY_BYTES = 3;
const MAX_U32 = 0xffffffff;

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
/** Timestamps are exact JS numbers: ±(2^53 − 1). The base travels as a zvar of up to 2^54. */
const MAX_TIMESTAMP_ABS = Number.MAX_SAFE_INTEGER;

/** A cursor in (origin node, seq) order: the last entry a page included. */
export interface DeltaCursor { node: number; seq: number }

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
}

/** Feature bits of the FEATURES extension (frozen, append only). */
export const enum Feature {
  /** Answer with the range-summary root instead of the SHA-256 digest. */
  SummaryRoot = 1,
  /** Decodes delta-coded bodies (envelope version 2): answer with them. */
  DeltaBodies = 2,
}

/** Extension tags (frozen, append only; 0–15 left unused: tests use them as "unknown"). */
export const enum ExtTag {
  Features = 16,
  SummaryRoot = 17,
  SummaryGroups = 18,
  SummaryBuckets = 19,
  RepairBuckets = 20,
  SenderClock = 21,
}
const GROUP_BYTES = 512;     // 64 × u64 group hashes, or 64 × u64 buckets of one group
const SUMMARY_GROUPS = 64;
const SUMMARY_BUCKETS = 4096;
const ROOT_RE = /^[0-9a-f]{16}$/;

/**
 * The fast path: entries as encoded record bodies ("bare" framing, docs/FORMAT.md §1)
 * with their count and base timestamp. A node builds envelopes with this attached and
 * merges it without materialising `Entry` objects; encodeEnvelope writes it as is.
 */
export interface EncodedEntries {
  bytes: Uint8Array;
  count: number;
  base: number;
  /** How the bodies are coded (absent: "bare"); "delta" makes the envelope version 2. */
  framing?: BodyFraming;
}

/** The record framings an envelope's entries may use. */
export type BodyFraming = "bare" | "delta";

/**
 * Key of the encoded entries attached to an envelope (non-enumerable, so `{ ...env }`
 * yields a plain envelope whose `entries` were materialised). Registered with
 * `Symbol.for` so that two copies of this module agree on it.
 */
export const ENCODED_ENTRIES: unique symbol = Symbol.for("wavekv.envelope.encodedEntries");

type WithEncoded = Envelope & { [ENCODED_ENTRIES]?: EncodedEntries };

const EMPTY: EncodedEntries = Object.freeze({ bytes: new Uint8Array(0), count: 0, base: 0 }) as EncodedEntries;
const EMPTY_DELTA: EncodedEntries = Object.freeze({ bytes: new Uint8Array(0), count: 0, base: 0, framing: "delta" }) as EncodedEntries;

function bad(message: string, cause?: unknown): WaveKVError {
  return new WaveKVError("BAD_ENVELOPE", `${message}; the peer sent a malformed sync envelope (or one from an incompatible wavekv)`, cause === undefined ? undefined : { cause });
}

function invalid(message: string): WaveKVError {
  return new WaveKVError("INVALID_ARGUMENT", `cannot encode envelope: ${message}`);
}

// ------------------------------------------------------------------ lazy entries

const WORDS = DESCRIPTOR_BYTES / 4;

/**
 * Entries of already validated bodies, materialised now (one kernel call). The section
 * is copied once and every value is a view into that copy: one buffer instead of one
 * per value (V8 gives each small `slice` its own backing store), and nothing aliases
 * the caller's input.
 */
function materialise(enc: EncodedEntries): Entry[] {
  if (enc.count === 0) return [];
  const own = enc.bytes.slice();
  const batch = decodeRecords(own, enc.framing ?? "bare", enc.base, enc.count);
  const w = batch.words;
  const out = new Array<Entry>(batch.count);
  for (let i = 0, d = 0; i < batch.count; i++, d += WORDS) {
    const value = w[d + 5] === RecordKind.Value ? own.subarray(w[d + 8]!, w[d + 8]! + w[d + 9]!) : null;
    out[i] = { key: batch.key(i), value, timestamp: batch.timestamp(i), node: batch.node(i), seq: batch.seq(i) };
  }
  batch.release();
  return out;
}

/**
 * Defines `entries` as a getter that decodes `encoded` on first access and caches the
 * result; assigning `entries` replaces them and detaches the encoded form.
 */
function attachEncoded(env: Record<PropertyKey, unknown>, encoded: EncodedEntries): void {
  let cache: Entry[] | null = null;
  Object.defineProperty(env, ENCODED_ENTRIES, { value: encoded, enumerable: false, configurable: true, writable: true });
  Object.defineProperty(env, "entries", {
    enumerable: true,
    configurable: true,
    get: () => (cache ??= materialise(encoded)),
    set: (entries: Entry[]) => {
      delete env[ENCODED_ENTRIES];
      Object.defineProperty(env, "entries", { value: entries, enumerable: true, configurable: true, writable: true });
    },
  });
}

/** Builds an envelope whose `entries` decode lazily from `encoded`. */
export function envelopeWithEncodedEntries(fields: Omit<Envelope, "entries">, encoded: EncodedEntries): Envelope {
  const env = { ...fields } as Record<PropertyKey, unknown>;
  delete env.entries;
  attachEncoded(env, encoded);
  return env as unknown as Envelope;
}

/** The encoded entries of an envelope: attached ones, or `entries` encoded now (delta-coded when `version` is 2). */
export function encodedEntriesOf(env: Envelope): EncodedEntries {
  const attached = (env as WithEncoded)[ENCODED_ENTRIES];
  if (attached) return attached;
  const entries = env.entries;
  if (!Array.isArray(entries)) throw invalid("entries must be an array");
  const framing: BodyFraming = env.version === ENVELOPE_VERSION_DELTA ? "delta" : "bare";
  if (entries.length === 0) return framing === "delta" ? EMPTY_DELTA : EMPTY;
  let base = Infinity;
  const records = new Array<RecordInput>(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    if (!Number.isSafeInteger(e.timestamp)) throw invalid(`entry ${i} has timestamp ${e.timestamp}`);
    if (e.timestamp < base) base = e.timestamp;
    records[i] = { kind: e.value === null ? RecordKind.Tombstone : RecordKind.Value, key: e.key, value: e.value, timestamp: e.timestamp, node: e.node, seq: e.seq };
  }
  return { bytes: encodeRecords(records, framing, base), count: entries.length, base, framing };
}

// ------------------------------------------------------------------ varints

/**
 * The zvar of a timestamp, as bytes. Through bigint: a timestamp is exact to ±(2^53 − 1)
 * and its zigzag goes to 2^54, past what a JS number holds exactly (one value an envelope).
 */
function zigzag(v: number): Uint8Array {
  let z = v >= 0 ? BigInt(v) * 2n : -BigInt(v) * 2n - 1n;
  const out: number[] = [];
  for (; z >= 0x80n; z >>= 7n) out.push(Number(z & 0x7fn) | 0x80);
  out.push(Number(z));
  return Uint8Array.from(out);
}

/** Bounds-checked reader; every failure is BAD_ENVELOPE naming the field. */
class Reader {
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

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const DIGEST_RE = /^[0-9a-fA-F]{64}$/;

function writeHex(out: Uint8Array, pos: number, hex: string): number {
  for (let i = 0; i < hex.length; i += 2) out[pos++] = parseInt(hex.slice(i, i + 2), 16);
  return pos;
}

function hexOf(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i]!];
  return s;
}

/** Canonical lowercase 8-4-4-4-12 form of 16 raw bytes. */
function uuidOf(bytes: Uint8Array): string {
  const h = hexOf(bytes);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// ------------------------------------------------------------------ encode

function checkU32(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > MAX_U32) throw invalid(`${what} must be a uint32, got ${String(v)}`);
  return v;
}

function checkSafe(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw invalid(`${what} must be a non-negative safe integer, got ${String(v)}`);
  return v;
}

function checkSeq(v: unknown, what: string): number {
  if (checkSafe(v, what) > MAX_SEQ) throw invalid(`${what} is ${String(v)}, above MAX_SEQ (2^48), which no receiver accepts`);
  return v as number;
}

/**
 * The bytes of `env`. Cost: one allocation of the exact size, one copy of the encoded
 * entries (encoded now unless attached), one CRC pass. Throws INVALID_ARGUMENT for a
 * field that cannot be represented (a non-uuid sender, a digest that is not 64 hex).
 */
export function encodeEnvelope(env: Envelope): Uint8Array {
  if (env.version !== ENVELOPE_VERSION && env.version !== ENVELOPE_VERSION_DELTA) throw invalid(`version ${env.version} (this build writes ${ENVELOPE_VERSION} and ${ENVELOPE_VERSION_DELTA})`);
  const senderId = checkU32(env.senderId, "senderId");
  if (typeof env.senderUuid !== "string" || !UUID_RE.test(env.senderUuid)) throw invalid(`senderUuid must be a uuid (8-4-4-4-12 hex), got ${JSON.stringify(env.senderUuid)}`);
  const acks = [...env.acks].sort((a, b) => a[0] - b[0]);
  let size = 4 + 1 + 1 + varUintSize(senderId) + 16 + varUintSize(acks.length);
  for (const [origin, seq] of acks) size += varUintSize(checkU32(origin, "ack origin")) + varUintSize(checkSeq(seq, `ack of ${origin}`));
  let flags = 0;
  if (env.digest !== undefined) {
    if (typeof env.digest !== "string" || !DIGEST_RE.test(env.digest)) throw invalid("digest must be 64 hex characters");
    flags |= EnvelopeFlag.Digest;
    size += 32;
  }
  if (env.page !== undefined) flags |= EnvelopeFlag.Page | (env.page.last ? EnvelopeFlag.Last : 0);
  if (env.resumeFrom !== undefined) {
    flags |= EnvelopeFlag.Resume;
    size += varUintSize(checkU32(env.resumeFrom.node, "resumeFrom.node")) + varUintSize(checkSeq(env.resumeFrom.seq, "resumeFrom.seq"));
  }
  if (env.resetAcks) flags |= EnvelopeFlag.ResetAcks;
  if (env.pushOnly) flags |= EnvelopeFlag.PushOnly;
  const ext = encodeExtensions(env);
  if (ext !== null) {
    flags |= EnvelopeFlag.Ext;
    size += ext.length;
  }
  const enc = encodedEntriesOf(env);
  const base = enc.count === 0 ? 0 : enc.base;
  if (!Number.isSafeInteger(base)) throw invalid(`base timestamp ${base} out of range`);
  if (enc.count > MAX_ENVELOPE_ENTRIES) throw invalid(`${enc.count} entries; one envelope carries at most ${MAX_ENVELOPE_ENTRIES} (page or split them)`);
  const zbase = zigzag(base);
  size += varUintSize(enc.count) + zbase.length + enc.bytes.length + 4;

  const out = new Uint8Array(size);
  out.set(ENVELOPE_MAGIC, 0);
  out[4] = enc.framing === "delta" ? ENVELOPE_VERSION_DELTA : ENVELOPE_VERSION;
  out[5] = flags;
  let pos = writeVarUint(out, 6, senderId);
  pos = writeHex(out, pos, env.senderUuid.replace(/-/g, ""));
  pos = writeVarUint(out, pos, acks.length);
  for (const [origin, seq] of acks) {
    pos = writeVarUint(out, pos, origin);
    pos = writeVarUint(out, pos, seq);
  }
  if (env.digest !== undefined) pos = writeHex(out, pos, env.digest);
  if (env.resumeFrom !== undefined) {
    pos = writeVarUint(out, pos, env.resumeFrom.node);
    pos = writeVarUint(out, pos, env.resumeFrom.seq);
  }
  if (ext !== null) {
    out.set(ext, pos);
    pos += ext.length;
  }
  pos = writeVarUint(out, pos, enc.count);
  out.set(zbase, pos);
  pos += zbase.length;
  out.set(enc.bytes, pos);
  pos += enc.bytes.length;
  new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(pos, crc32(out.subarray(0, pos)) >>> 0, true);
  return out;
}

// ------------------------------------------------------------------ decode

const MAX_SEQ_HI = MAX_SEQ / 2 ** 32; // 0x10000: seq ≤ MAX_SEQ ⇔ hi < it, or hi = it and lo = 0

/**
 * Why the entry whose descriptor starts at word `d` cannot be merged, or undefined: a seq
 * of 0 or above MAX_SEQ, or a timestamp beyond ±(2^53 − 1) (the wire carries 64 bits; a
 * JS number is exact to 2^53, and an inexact one could never be sent on again). Read from
 * the descriptor words, nothing allocated.
 */
export function entryFault(w: Uint32Array, d: number): string | undefined {
  const lo = w[d + 2]!, hi = w[d + 3]!;
  if ((lo === 0 && hi === 0) || hi > MAX_SEQ_HI || (hi === MAX_SEQ_HI && lo !== 0)) return "seq outside 1..2^48";
  const tsHi = w[d + 1]! | 0;
  if (tsHi < -0x200000 || tsHi >= 0x200000 || (tsHi === -0x200000 && w[d]! === 0)) return "timestamp beyond ±(2^53 - 1)";
  return undefined;
}


/**
 * Parses and validates `bytes`. Throws `WaveKVError("BAD_ENVELOPE")` for anything but
 * a well-formed envelope of a version this build understands — never another error.
 * Allocation is bounded by the input: a claimed count or length is checked against
 * the bytes that remain before it is used.
 */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  try {
    return decodeUnchecked(bytes);
  } catch (err) {
    if (err instanceof WaveKVError && err.code === "BAD_ENVELOPE") throw err;
    // A kernel or runtime failure on hostile input is still the peer's bad envelope.
    throw bad(`undecodable (${(err as Error)?.message ?? String(err)})`, err);
  }
}

function decodeUnchecked(bytes: Uint8Array): Envelope {
  if (!(bytes instanceof Uint8Array)) throw bad("not a byte array");
  const n = bytes.length;
  if (n < MIN_ENVELOPE_BYTES) throw bad(`${n} bytes is shorter than the smallest envelope (${MIN_ENVELOPE_BYTES})`);
  for (let i = 0; i < 4; i++) if (bytes[i] !== ENVELOPE_MAGIC[i]) throw bad("wrong magic (not a wavekv sync envelope)");
  const version = bytes[4]!;
  if (version !== ENVELOPE_VERSION && version !== ENVELOPE_VERSION_DELTA) throw bad(`unsupported envelope version ${version} (this build understands ${ENVELOPE_VERSION} and ${ENVELOPE_VERSION_DELTA})`);
  const framing: BodyFraming = version === ENVELOPE_VERSION_DELTA ? "delta" : "bare";
  const stored = (bytes[n - 4]! | (bytes[n - 3]! << 8) | (bytes[n - 2]! << 16) | (bytes[n - 1]! << 24)) >>> 0;
  const actual = crc32(bytes.subarray(0, n - 4)) >>> 0;
  if (stored !== actual) throw bad(`checksum mismatch (stored ${stored.toString(16)}, computed ${actual.toString(16)})`);

  const flags = bytes[5]!;
  if ((flags & ~KNOWN_FLAGS) !== 0) throw bad(`unknown flag bits 0x${(flags & ~KNOWN_FLAGS).toString(16)}`);
  if ((flags & EnvelopeFlag.Last) !== 0 && (flags & EnvelopeFlag.Page) === 0) throw bad("LAST flag without PAGE");
  const r = new Reader(bytes, 6, n - 4);
  const senderId = r.u32("senderId");
  const senderUuid = uuidOf(r.take(16, "senderUuid"));

  const ackCount = r.varu("ackCount");
  // Each ack takes at least 2 bytes: check the claim before building anything.
  if (ackCount * 2 > r.remaining) throw bad(`ackCount ${ackCount} exceeds the ${r.remaining} bytes that remain`);
  const acks = new Map<number, number>();
  let prev = -1;
  for (let i = 0; i < ackCount; i++) {
    const origin = r.u32("ack origin");
    if (origin <= prev) throw bad(`ack origins not strictly ascending (${origin} after ${prev})`);
    prev = origin;
    acks.set(origin, r.seq(`ack of ${origin}`));
  }

  const env: Record<string, unknown> = { version, senderId, senderUuid, acks };
  if (flags & EnvelopeFlag.Digest) env.digest = hexOf(r.take(32, "digest"));
  if (flags & EnvelopeFlag.Page) env.page = { last: (flags & EnvelopeFlag.Last) !== 0 };
  if (flags & EnvelopeFlag.Resume) env.resumeFrom = { node: r.u32("resumeFrom.node"), seq: r.seq("resumeFrom.seq") };
  if (flags & EnvelopeFlag.ResetAcks) env.resetAcks = true;
  if (flags & EnvelopeFlag.PushOnly) env.pushOnly = true;
  if (flags & EnvelopeFlag.Ext) readExtensions(r, env);

  const count = r.varu("entryCount");
  if (count > MAX_ENVELOPE_ENTRIES) throw bad(`entryCount ${count} exceeds the ${MAX_ENVELOPE_ENTRIES} entries one envelope may carry`);
  const base = r.timestamp("base");
  const bodies = r.take(r.remaining, "entries");
  if (count * (framing === "delta" ? MIN_DELTA_BODY_BYTES : MIN_BODY_BYTES) > bodies.length) throw bad(`entryCount ${count} cannot fit in ${bodies.length} bytes`);
  if (count === 0) {
    if (bodies.length !== 0) throw bad(`${bodies.length} trailing bytes after an empty entry list`);
    if (base !== 0) throw bad("non-zero base timestamp with no entries");
    attachEncoded(env, framing === "delta" ? EMPTY_DELTA : EMPTY);
    return env as unknown as Envelope;
  }
  // One kernel call decodes and validates every body. Asking for one record more than
  // claimed is how "no trailing records" is seen: the stop must be a clean end.
  const batch = decodeRecords(bodies, framing, base, count + 1);
  if (batch.count !== count || batch.stop.reason !== "end") {
    throw bad(`entries: ${batch.count} of ${count} claimed records parsed, then ${batch.stop.reason} at byte ${batch.stop.offset}`);
  }
  // Per entry, straight from the descriptor words (docs/ARCHITECTURE.md; no accessor
  // calls, nothing allocated): ~0.1 µs an entry next to the kernel's decode.
  const w = batch.words;
  for (let i = 0, d = 0; i < count; i++, d += WORDS) {
    const kind = w[d + 5]!;
    if (kind !== RecordKind.Tombstone && kind !== RecordKind.Value) throw bad(`entry ${i} has record kind ${kind}; envelopes carry only kinds 0 and 1`);
    // Seqs and timestamps out of range (entryFault) are refused per entry at merge, not
    // here: one such entry must not cost the rest of the envelope.
    // Keys are compared by bytes in the index and by string in JS: bytes that are not
    // UTF-8 would decode to a string whose encoding differs, splitting one key in two.
    const keyOff = w[d + 6]!, keyEnd = keyOff + w[d + 7]!;
    let ascii = true;
    for (let k = keyOff; k < keyEnd; k++) if (bodies[k]! >= 0x80) { ascii = false; break; }
    if (!ascii && !isUtf8(bodies, keyOff, keyEnd)) throw bad(`entry ${i} has a key that is not valid UTF-8`);
  }
  batch.release(); // validation only: the merge decodes the bodies again
  attachEncoded(env, { bytes: bodies, count, base, framing });
  return env as unknown as Envelope;
}

/**
 * Extensions: additive fields an older build skips (tags ascend). Known tags
 * (`ExtTag`, docs/FORMAT.md §6.1) are parsed strictly — the payload must be consumed
 * exactly, id lists ascend and stay in range — unknown ones are skipped.
 */
function readExtensions(r: Reader, env: Record<string, unknown>): void {
  const count = r.varu("extCount");
  if (count * 2 > r.remaining) throw bad(`extCount ${count} exceeds the ${r.remaining} bytes that remain`);
  let prev = -1;
  for (let i = 0; i < count; i++) {
    const tag = r.u32("extension tag");
    if (tag <= prev) throw bad(`extension tags not strictly ascending (${tag} after ${prev})`);
    prev = tag;
    const what = `extension ${tag}`;
    const body = r.take(r.varu(`${what} length`), what);
    if (tag < ExtTag.Features || tag > ExtTag.SenderClock) continue;
    const x = new Reader(body, 0, body.length);
    if (tag === ExtTag.Features) env.features = x.varu(what);
    else if (tag === ExtTag.SummaryRoot) env.summaryRoot = hexOf(x.take(8, what));
    else if (tag === ExtTag.SummaryGroups) env.summaryGroups = x.take(GROUP_BYTES, what).slice();
    else if (tag === ExtTag.SenderClock) env.senderClock = x.timestamp(what);
    else {
      // An id list: count, then gaps (id = previous + 1 + gap; the first gap is the id).
      const limit = tag === ExtTag.SummaryBuckets ? SUMMARY_GROUPS : SUMMARY_BUCKETS;
      const n = x.varu(what);
      if (n > x.remaining || n > limit) throw bad(`${what}: ${n} ids in ${x.remaining} bytes`);
      const ids: number[] = [];
      for (let k = 0, id = -1; k < n; k++) {
        id += 1 + x.varu(what);
        if (id >= limit) throw bad(`${what}: id ${id} is not below ${limit}`);
        ids.push(id);
      }
      if (tag === ExtTag.SummaryBuckets) env.summaryBuckets = { groups: ids, hashes: x.take(n * GROUP_BYTES, what).slice() };
      else env.repairBuckets = ids;
    }
    if (x.remaining !== 0) throw bad(`${what}: ${x.remaining} trailing bytes`);
  }
}

function pushVaru(out: number[], v: number): void {
  for (; v >= 0x80; v = Math.floor(v / 128)) out.push((v % 128) | 0x80);
  out.push(v);
}

/** The extension section (count, then tag • len • payload in tag order), or null when there is none. */
function encodeExtensions(env: Envelope): Uint8Array | null {
  const out: number[] = [];
  let n = 0;
  const part = (tag: ExtTag, bytes: ArrayLike<number>) => {
    n++;
    pushVaru(out, tag);
    pushVaru(out, bytes.length);
    for (let i = 0; i < bytes.length; i++) out.push(bytes[i]!);
  };
  const ids = (list: readonly number[], limit: number, tail?: Uint8Array) => {
    const b: number[] = [];
    pushVaru(b, list.length);
    let prev = -1;
    for (const id of list) {
      if (!Number.isInteger(id) || id <= prev || id >= limit) throw invalid(`id lists must ascend strictly and stay below ${limit}`);
      pushVaru(b, id - prev - 1);
      prev = id;
    }
    if (tail) for (let i = 0; i < tail.length; i++) b.push(tail[i]!);
    return b;
  };
  if (env.features !== undefined) {
    const f: number[] = [];
    pushVaru(f, checkSafe(env.features, "features"));
    part(ExtTag.Features, f);
  }
  if (env.summaryRoot !== undefined) {
    if (!ROOT_RE.test(env.summaryRoot)) throw invalid("summaryRoot must be 16 lowercase hex characters");
    part(ExtTag.SummaryRoot, Uint8Array.from(env.summaryRoot.match(/../g)!, (h) => parseInt(h, 16)));
  }
  if (env.summaryGroups !== undefined) {
    if (env.summaryGroups.length !== GROUP_BYTES) throw invalid(`summaryGroups must be ${GROUP_BYTES} bytes`);
    part(ExtTag.SummaryGroups, env.summaryGroups);
  }
  const sb = env.summaryBuckets;
  if (sb !== undefined) {
    if (sb.hashes.length !== sb.groups.length * GROUP_BYTES) throw invalid("summaryBuckets needs 512 hash bytes per group");
    part(ExtTag.SummaryBuckets, ids(sb.groups, SUMMARY_GROUPS, sb.hashes));
  }
  if (env.repairBuckets !== undefined) part(ExtTag.RepairBuckets, ids(env.repairBuckets, SUMMARY_BUCKETS));
  if (env.senderClock !== undefined) {
    const t = env.senderClock;
    if (!Number.isSafeInteger(t)) throw invalid(`senderClock ${t} is not an integer within ±(2^53 − 1)`);
    part(ExtTag.SenderClock, zigzag(t));
  }
  if (n === 0) return null;
  const head: number[] = [];
  pushVaru(head, n);
  const bytes = new Uint8Array(head.length + out.length);
  bytes.set(head);
  bytes.set(out, head.length);
  return bytes;
}
