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
 *   extensions (FORMAT §6.1): 16 FEATURES (bits: SummaryRoot, DeltaBodies, HoldBack, Expiry), 17 SUMMARY_ROOT, 18 SUMMARY_GROUPS,
 *          19 SUMMARY_BUCKETS, 20 REPAIR_BUCKETS, 21 SENDER_CLOCK, 22 HELD_ACKS,
 *          26 BATCH_RANGES; unknown tags are skipped
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
import { crc32 } from "../codec/crc.js";
import { WaveKVError } from "../core/errors.js";
import { ENVELOPE_VERSION, ENVELOPE_VERSION_DELTA, MAX_ENVELOPE_ENTRIES, type Envelope } from "./envelope-model.js";
import { attachEncoded, checkedEntries, encodedEntriesOf, type BodyFraming } from "./envelope-entries.js";
import { encodeExtensions, readExtensions } from "./envelope-ext.js";
import { Reader, bad, checkSeq, checkU32, hexOf, invalid, uuidOf, writeHex, zigzag } from "./envelope-wire.js";
import { varUintSize, writeVarUint } from "../core/encoding.js";

// Every name this module exported before it was split keeps importing from here.
export { ENVELOPE_VERSION, ENVELOPE_VERSION_DELTA, MAX_SEQ, MAX_ENVELOPE_ENTRIES, Feature, type DeltaCursor, type Envelope } from "./envelope-model.js";
export { ENCODED_ENTRIES, encodedEntriesOf, entryFault, envelopeWithEncodedEntries, type BodyFraming, type EncodedEntries } from "./envelope-entries.js";
export { MAX_BATCH_RANGE, MAX_ENVELOPE_BATCH_RANGES, type BatchRange } from "./envelope-model.js";
export { ExtTag } from "./envelope-ext.js";

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
const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const DIGEST_RE = /^[0-9a-fA-F]{64}$/;

// ------------------------------------------------------------------ encode

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
  attachEncoded(env, checkedEntries(r.take(r.remaining, "entries"), framing, base, count));
  return env as unknown as Envelope;
}
