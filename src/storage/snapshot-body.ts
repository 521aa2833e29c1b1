/**
 * The body of a version-2 snapshot (docs/FORMAT.md §4.2): records in blocks, each
 * block under one CRC, each record coded against the previous one of its block — a head
 * byte and stamp steps as the delta bodies (§1.1), and the key as the length of the
 * prefix it shares with the previous key plus the rest. 1M keys of 100-byte values:
 * ~114 B a record against 135 B framed (§2), which is what keeps disk per key under
 * lmdb's and SQLite's.
 *
 *   const body = encodeSnapshotBody(records, base);           // null: not representable
 *   const why = expandSnapshotBody(u8, at, body.bytes.length, body.expandedLen, base, count, crc);
 *   // now u8[0, expandedLen) holds the records as bare bodies (§1): decode them "bare"
 *
 * Why expansion in place: the decoder's descriptors point at a key and a value in one
 * buffer, and a prefix-coded key is not in the file whole. The body is read into the
 * tail of a block of `expandedLen + slack` bytes and rewritten, front to back, as bare
 * bodies from the block's start: one buffer of fresh memory (about the size of the v1
 * file), no second copy of the file. It works because no record's bare form ends past
 * the end of its own coded form in the block; the encoder records the `slack` that makes
 * that true for its records, and the expander refuses any record for which it is not
 * (a crafted body can never make it overwrite bytes it has not read yet).
 */
import { EXPIRY_BYTES, RecordKind, hasValue, type RecordInput } from "../core/record.js";
import { readVarU64, varOut, varUintSize, writeUtf8, writeVarUint } from "../core/encoding.js";
import { checkRecord } from "../codec/batch.js";
import { crc32 } from "../codec/crc.js";

/** Target payload bytes a block: damage costs at most this much of context, and the CRC call is amortized over ~500 records. */
export const SNAPSHOT_BLOCK_BYTES = 64 * 1024;
/** Block header: u32 payload length, u32 CRC-32 of the payload. */
export const BLOCK_HEADER_BYTES = 8;
/** Longest shared prefix a record may take from the previous key (the expansion bound below rests on it). */
export const MAX_SHARED_PREFIX = 255;
/** Bytes a record's bare form may exceed its coded form, prefix aside: varint widths of node, seq, timestamp and the key length. */
const MAX_FIELD_GROWTH = 40;
/** Stamps are exact JS numbers: timestamps within 2^51 of `base` and seq steps within 2^52 keep every zigzag (≤ 2^53) exact. */
const MAX_TS_OFFSET = 2 ** 51;
const MAX_STEP = 2 ** 52;

export interface SnapshotBody {
  bytes: Uint8Array;
  /** Bytes of the records as bare bodies (§1), what expansion writes. */
  expandedLen: number;
  /** Extra bytes past `expandedLen` that in-place expansion needs (usually 0). */
  slack: number;
}

/** Upper bound of the expanded length of a `bodyLen`-byte body of `count` records (a claimed size is checked against it before anything is allocated). */
export function maxExpandedLen(bodyLen: number, count: number): number {
  return bodyLen + count * (MAX_SHARED_PREFIX + MAX_FIELD_GROWTH);
}

const zigzag = (d: number): number => (d >= 0 ? d * 2 : -d * 2 - 1);
const unzigzag = (z: number): number => (z % 2 === 0 ? z / 2 : -(z + 1) / 2);

/**
 * The v2 body of `records`, in their order; null when a record's stamps do not fit the
 * v2 coding (a timestamp more than 2^51 from `base`, a seq step over 2^52): the caller
 * writes version 1 then. Throws TypeError on what no format can carry (checkRecord), and
 * on a kind-6 record (WAL only: the expander refuses it, so the snapshot would not open).
 */
export function encodeSnapshotBody(records: readonly RecordInput[], base: number): SnapshotBody | null {
  let bound = 0;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    checkRecord(r, i);
    if (r.kind === RecordKind.BatchHead) throw new TypeError(`record ${i}: kind 6 (a batch head) is WAL only; the snapshot expander refuses it`);
    if (!Number.isSafeInteger(r.seq) || r.seq < 0 || !Number.isSafeInteger(r.timestamp) || Math.abs(r.timestamp - base) > MAX_TS_OFFSET) return null;
    bound += 48 + (typeof r.key === "string" ? r.key.length * 3 : r.key.length) + (hasValue(r.kind) ? r.value!.length : 0);
  }
  bound += Math.ceil(bound / SNAPSHOT_BLOCK_BYTES + 1) * BLOCK_HEADER_BYTES;
  const out = new Uint8Array(bound);
  // Keys are written into `keys` (two halves, swapped per record) to compare with the previous one.
  let keys = new Uint8Array(256), prevKeyAt = 128, keyAt = 0, prevKeyLen = 0;
  let p = 0, blockStart = -1, expanded = 0, slackNeeded = 0;
  let node = 0, seq = 0, ts = base;
  const closeBlock = () => {
    if (blockStart < 0) return;
    const len = p - blockStart - BLOCK_HEADER_BYTES;
    new DataView(out.buffer, blockStart, BLOCK_HEADER_BYTES).setUint32(0, len, true);
    blockStart = -1;
  };
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    if (blockStart < 0 || p - blockStart >= SNAPSHOT_BLOCK_BYTES) {
      closeBlock();
      blockStart = p;
      p += BLOCK_HEADER_BYTES;
      node = 0; seq = 0; ts = base; prevKeyLen = 0;
    }
    // The key, beside the previous one.
    const maxKey = typeof r.key === "string" ? r.key.length * 3 : r.key.length;
    if (maxKey > keys.length >>> 1) {
      const grown = new Uint8Array(Math.max(keys.length * 2, 4 * maxKey + 16));
      grown.set(keys.subarray(prevKeyAt, prevKeyAt + prevKeyLen), 0);
      keys = grown;
      prevKeyAt = 0;
    }
    keyAt = prevKeyAt === 0 ? keys.length >>> 1 : 0;
    let keyLen: number;
    if (typeof r.key === "string") keyLen = writeUtf8(keys, keyAt, r.key) - keyAt;
    else { keys.set(r.key, keyAt); keyLen = r.key.length; }
    if (keyLen > 0x7fffffff) throw new TypeError(`record ${i}: key too large`);
    let shared = 0;
    const most = Math.min(keyLen, prevKeyLen, MAX_SHARED_PREFIX);
    while (shared < most && keys[keyAt + shared] === keys[prevKeyAt + shared]) shared++;
    const kind = r.kind as number;
    const step = r.seq - seq;
    if (Math.abs(step) > MAX_STEP) return null;
    const s = step >= 1 && step <= 15 ? step : 0;
    const newNode = r.node !== node;
    out[p++] = kind | (newNode ? 8 : 0) | (s << 4);
    if (newNode) p = writeVarUint(out, p, r.node);
    if (s === 0) p = writeVarUint(out, p, zigzag(step));
    p = writeVarUint(out, p, zigzag(r.timestamp - ts));
    p = writeVarUint(out, p, shared);
    p = writeVarUint(out, p, keyLen - shared);
    out.set(keys.subarray(keyAt + shared, keyAt + keyLen), p);
    p += keyLen - shared;
    let bare = 1 + varUintSize(r.node) + varUintSize(r.seq) + varUintSize(zigzag(r.timestamp - base)) + varUintSize(keyLen) + keyLen;
    if (hasValue(kind)) {
      const v = r.value!;
      p = writeVarUint(out, p, v.length);
      out.set(v, p);
      p += v.length;
      bare += varUintSize(v.length) + v.length;
    }
    // In place, record i's bare form ends at `expanded + bare`, its coded form at `p` plus
    // the final offset of the coded body in the block (expandedLen + slack − bodyLen):
    // the slack is what makes every such end come no later.
    expanded += bare;
    slackNeeded = Math.max(slackNeeded, expanded - p);
    node = r.node; seq = r.seq; ts = r.timestamp;
    prevKeyAt = keyAt; prevKeyLen = keyLen;
  }
  closeBlock();
  // Block CRCs, now that every block is complete.
  const dv = new DataView(out.buffer);
  for (let at = 0; at < p;) {
    const len = dv.getUint32(at, true);
    dv.setUint32(at + 4, crc32(out.subarray(at + BLOCK_HEADER_BYTES, at + BLOCK_HEADER_BYTES + len)), true);
    at += BLOCK_HEADER_BYTES + len;
  }
  const slack = Math.max(0, slackNeeded - (expanded - p));
  return { bytes: out.slice(0, p), expandedLen: expanded, slack };
}

/**
 * Rewrites a v2 body of `bodyLen` bytes at `u8[at…]` as `count` bare bodies (§1) at
 * `u8[0, expandedLen)`, in place; `at` must be `expandedLen + slack − bodyLen`. `crc(pos, len)`
 * is the CRC-32 of `u8[pos, pos + len)` (a block is checked before any byte of it is
 * rewritten). Returns null, or why the body is unusable; never throws on bad bytes and
 * never writes a byte past `at + bodyLen` or over a byte not yet read. What a refused
 * body left in `u8` is garbage: the caller drops the block.
 */
export function expandSnapshotBody(u8: Uint8Array, at: number, bodyLen: number, expandedLen: number, base: number, count: number, crc: (pos: number, len: number) => number): string | null {
  const end = at + bodyLen;
  let p = at, w = 0, n = 0;
  const where = () => `at body offset ${p - at}`;
  while (p < end) {
    if (end - p < BLOCK_HEADER_BYTES) return `block header truncated ${where()}`;
    const len = (u8[p]! | (u8[p + 1]! << 8) | (u8[p + 2]! << 16) | (u8[p + 3]! << 24)) >>> 0;
    const sum = (u8[p + 4]! | (u8[p + 5]! << 8) | (u8[p + 6]! << 16) | (u8[p + 7]! << 24)) >>> 0;
    if (len === 0 || len > end - p - BLOCK_HEADER_BYTES) return `block length ${len} does not fit ${where()}`;
    if (crc(p + BLOCK_HEADER_BYTES, len) !== sum) return `block CRC mismatch ${where()}`;
    p += BLOCK_HEADER_BYTES;
    const blockEnd = p + len;
    let node = 0, seq = 0, ts = base, prevKey = 0, prevKeyLen = 0;
    while (p < blockEnd) {
      const recAt = p;
      const bad = (what: string) => `record ${n} ${what} at body offset ${recAt - at}`;
      const head = u8[p++]!;
      const kind = head & 7;
      if (kind === RecordKind.BatchHead) return bad(`has kind ${kind}`); // WAL only; 0–5 and 7 (a batch range) are snapshot kinds
      if (head & 8) {
        p = readVarU64(u8, p, blockEnd);
        if (p < 0 || varOut.hi !== 0) return bad("has a bad node");
        node = varOut.lo;
      }
      const s = head >>> 4;
      if (s !== 0) seq += s;
      else {
        p = readVarU64(u8, p, blockEnd);
        if (p < 0 || varOut.hi >= 0x200000) return bad("has a bad seq step");
        seq += unzigzag(varOut.hi * 0x100000000 + varOut.lo);
      }
      if (!(seq >= 0 && seq <= Number.MAX_SAFE_INTEGER)) return bad("has a seq out of range");
      p = readVarU64(u8, p, blockEnd);
      if (p < 0 || varOut.hi >= 0x200000) return bad("has a bad timestamp step");
      ts += unzigzag(varOut.hi * 0x100000000 + varOut.lo);
      if (!(Math.abs(ts - base) <= MAX_TS_OFFSET)) return bad("has a timestamp out of range");
      p = readVarU64(u8, p, blockEnd);
      if (p < 0 || varOut.hi !== 0 || varOut.lo > prevKeyLen || varOut.lo > MAX_SHARED_PREFIX) return bad("shares more of the previous key than it has");
      const shared = varOut.lo;
      p = readVarU64(u8, p, blockEnd);
      if (p < 0 || varOut.hi !== 0 || varOut.lo > blockEnd - p) return bad("has a key running past its block");
      const suffix = p, keyLen = shared + varOut.lo;
      p += varOut.lo;
      let valueAt = 0, valueLen = 0;
      if (hasValue(kind)) {
        p = readVarU64(u8, p, blockEnd);
        if (p < 0 || varOut.hi !== 0 || varOut.lo > blockEnd - p) return bad("has a value running past its block");
        if (kind === RecordKind.Expiring && varOut.lo < EXPIRY_BYTES) return bad("has no expiry in front of its value");
        valueLen = varOut.lo;
        valueAt = p;
        p += valueLen;
      }
      // Bare form: kind, node, seq, timestamp − base, key length, key, [value length, value].
      const tz = zigzag(ts - base);
      const keyOut = w + 1 + varUintSize(node) + varUintSize(seq) + varUintSize(tz) + varUintSize(keyLen);
      const recEnd = keyOut + keyLen + (hasValue(kind) ? varUintSize(valueLen) + valueLen : 0);
      if (recEnd > p) return bad("does not expand in place (slack too small)");
      // Order matters (see the header): the suffix, then the prefix from the previous
      // key, then the fields, then the value; none overwrites a byte still to be read.
      u8.copyWithin(keyOut + shared, suffix, suffix + keyLen - shared);
      if (shared > 0) u8.copyWithin(keyOut, prevKey, prevKey + shared);
      u8[w] = kind;
      let q = writeVarUint(u8, w + 1, node);
      q = writeVarUint(u8, q, seq);
      q = writeVarUint(u8, q, tz);
      writeVarUint(u8, q, keyLen);
      if (hasValue(kind)) {
        q = writeVarUint(u8, keyOut + keyLen, valueLen);
        u8.copyWithin(q, valueAt, valueAt + valueLen);
      }
      prevKey = keyOut;
      prevKeyLen = keyLen;
      w = recEnd;
      n++;
    }
  }
  if (n !== count) return `header says ${count} records, body holds ${n}`;
  if (w !== expandedLen) return `header says ${expandedLen} expanded bytes, body expands to ${w}`;
  return null;
}

/** Offset of the first block of `body` whose length or CRC is wrong (`wavekv inspect`), or `body.length`. */
export function firstBadBlock(body: Uint8Array): number {
  const dv = new DataView(body.buffer, body.byteOffset, body.length);
  let p = 0;
  while (p < body.length) {
    if (body.length - p < BLOCK_HEADER_BYTES) return p;
    const len = dv.getUint32(p, true);
    if (len === 0 || len > body.length - p - BLOCK_HEADER_BYTES) return p;
    if (crc32(body.subarray(p + BLOCK_HEADER_BYTES, p + BLOCK_HEADER_BYTES + len)) !== dv.getUint32(p + 4, true)) return p;
    p += BLOCK_HEADER_BYTES + len;
  }
  return p;
}
