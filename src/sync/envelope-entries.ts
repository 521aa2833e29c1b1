/**
 * The entries section of an envelope: record bodies back to back ("bare", docs/FORMAT.md
 * §1, or "delta", §1.1) with their count and base timestamp. A node attaches them encoded
 * and merges them without materialising `Entry` objects; `entries` decodes them lazily on
 * first access. Also the per-entry checks: what makes the section malformed (decode:
 * BAD_ENVELOPE) and what only refuses one entry at merge (`entryFault`).
 */
import { decodeRecords, encodeRecords } from "../codec/records.js";
import { DESCRIPTOR_WORDS, D_KEY_LEN, D_KEY_OFF, D_KIND, D_SEQ_HI, D_SEQ_LO, D_TS_HI, D_TS_LO, D_VAL_LEN, D_VAL_OFF, EXPIRY_BYTES, RecordKind, entryToRecord, readExpiry, type RecordInput } from "../core/record.js";
import { expiryProblem } from "../core/expiry.js";
import type { Entry } from "../core/types.js";
import { ENVELOPE_VERSION_DELTA, MAX_SEQ, type BatchRange as SeqRange, type Envelope } from "./envelope-model.js";
import { bad, invalid } from "./envelope-wire.js";
import { isUtf8, joinI64 } from "../core/encoding.js";

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
  /** The batch ranges of these entries (src/sync/delta.ts): the envelope's `batchRanges`. */
  ranges?: SeqRange[];
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

/**
 * Smallest entry body (a tombstone with 1-byte varints and an empty key): bounds a
 * claimed count. Bare: kind, node, seq, timestamp, keyLen; delta: head, timestamp, keyLen.
 */
const MIN_BODY_BYTES = 5;
const MIN_DELTA_BODY_BYTES = 3;

// ------------------------------------------------------------------ lazy entries

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
  for (let i = 0, d = 0; i < batch.count; i++, d += DESCRIPTOR_WORDS) {
    const kind = w[d + D_KIND]!, off = w[d + D_VAL_OFF]!;
    const value = kind !== RecordKind.Tombstone ? own.subarray(off + (kind === RecordKind.Expiring ? EXPIRY_BYTES : 0), off + w[d + D_VAL_LEN]!) : null;
    out[i] = { key: batch.key(i), value, timestamp: batch.timestamp(i), node: batch.node(i), seq: batch.seq(i) };
    if (kind === RecordKind.Expiring) out[i]!.expiresAt = readExpiry(own, off);
  }
  batch.release();
  return out;
}

/**
 * Defines `entries` as a getter that decodes `encoded` on first access and caches the
 * result; assigning `entries` replaces them and detaches the encoded form.
 */
export function attachEncoded(env: Record<PropertyKey, unknown>, encoded: EncodedEntries): void {
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
  if (encoded.ranges !== undefined) env.batchRanges = encoded.ranges;
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
    const why = e.expiresAt === undefined || e.value === null ? undefined : expiryProblem(e.timestamp, e.expiresAt);
    if (why !== undefined) throw invalid(`entry ${i} ${why}`);
    records[i] = entryToRecord(e);
  }
  return { bytes: encodeRecords(records, framing, base), count: entries.length, base, framing };
}

// ------------------------------------------------------------------ checks

/**
 * The entries section of an envelope being decoded, checked: the claimed count fits,
 * the bodies parse exactly (kinds 0, 1 and 5 only, an expiry a peer may send, UTF-8
 * keys, no trailing bytes) in one WASM
 * call. Throws BAD_ENVELOPE; the result aliases `bodies`.
 */
export function checkedEntries(bodies: Uint8Array, framing: BodyFraming, base: number, count: number): EncodedEntries {
  if (count * (framing === "delta" ? MIN_DELTA_BODY_BYTES : MIN_BODY_BYTES) > bodies.length) throw bad(`entryCount ${count} cannot fit in ${bodies.length} bytes`);
  if (count === 0) {
    if (bodies.length !== 0) throw bad(`${bodies.length} trailing bytes after an empty entry list`);
    if (base !== 0) throw bad("non-zero base timestamp with no entries");
    return framing === "delta" ? EMPTY_DELTA : EMPTY;
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
  for (let i = 0, d = 0; i < count; i++, d += DESCRIPTOR_WORDS) {
    const kind = w[d + D_KIND]!;
    if (kind !== RecordKind.Tombstone && kind !== RecordKind.Value && kind !== RecordKind.Expiring) throw bad(`entry ${i} has record kind ${kind}; envelopes carry only kinds 0, 1 and 5`);
    if (kind === RecordKind.Expiring) {
      const why = expiryProblem(joinI64(w[d + D_TS_LO]!, w[d + D_TS_HI]!), readExpiry(bodies, w[d + D_VAL_OFF]!));
      if (why !== undefined) throw bad(`entry ${i} ${why}`);
    }
    // Seqs and timestamps out of range (entryFault) are refused per entry at merge, not
    // here: one such entry must not cost the rest of the envelope.
    // Keys are compared by bytes in the index and by string in JS: bytes that are not
    // UTF-8 would decode to a string whose encoding differs, splitting one key in two.
    const keyOff = w[d + D_KEY_OFF]!, keyEnd = keyOff + w[d + D_KEY_LEN]!;
    let ascii = true;
    for (let k = keyOff; k < keyEnd; k++) if (bodies[k]! >= 0x80) { ascii = false; break; }
    if (!ascii && !isUtf8(bodies, keyOff, keyEnd)) throw bad(`entry ${i} has a key that is not valid UTF-8`);
  }
  batch.release(); // validation only: the merge decodes the bodies again
  return { bytes: bodies, count, base, framing };
}

const MAX_SEQ_HI = MAX_SEQ / 2 ** 32; // 0x10000: seq ≤ MAX_SEQ ⇔ hi < it, or hi = it and lo = 0

/**
 * Why the entry whose descriptor starts at word `d` cannot be merged, or undefined: a seq
 * of 0 or above MAX_SEQ, or a timestamp beyond ±(2^53 − 1) (the wire carries 64 bits; a
 * JS number is exact to 2^53, and an inexact one could never be sent on again). Read from
 * the descriptor words, nothing allocated.
 */
export function entryFault(w: Uint32Array, d: number): string | undefined {
  const lo = w[d + D_SEQ_LO]!, hi = w[d + D_SEQ_HI]!;
  if ((lo === 0 && hi === 0) || hi > MAX_SEQ_HI || (hi === MAX_SEQ_HI && lo !== 0)) return "seq outside 1..2^48";
  const tsHi = w[d + D_TS_HI]! | 0;
  if (tsHi < -0x200000 || tsHi >= 0x200000 || (tsHi === -0x200000 && w[d + D_TS_LO]! === 0)) return "timestamp beyond ±(2^53 - 1)";
  return undefined;
}
