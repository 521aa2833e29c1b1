/**
 * Shared fixtures for the storage tests (a helper: never a test file, never runs uvu).
 *
 *   const dir = tempDir("wal");           // fresh dir under os.tmpdir(); removeDir(dir) after
 *   const r = valueRecord(7);             // deterministic record #7
 *   flatten(storage.recovered.batches)    // plain objects, comparable with assert.equal
 *   oracleWal(bytes, nodeId)              // the recovery rules, re-implemented independently
 *
 * The oracle shares no code with src/: its own frame walker, body parser and CRC
 * (node:zlib.crc32), so a test that compares with it can fail for real.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import { join } from "node:path";
import { crc32 as zcrc32 } from "node:zlib";
import { expiringPayload, type DecodedBatch, type RecordInput } from "../../src/core/record.js";
import { seededRandom } from "../../src/transport/memory.js";

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(join(os.tmpdir(), `wavekv-${prefix}-`));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** A suite's `fresh()`: each call makes a temp dir; `after` (uvu's test.after) removes them all. */
export function freshDirs(prefix: string, after: (hook: () => void) => void): () => string {
  const dirs: string[] = [];
  after(() => { for (const d of dirs.splice(0)) removeDir(d); });
  return () => {
    const d = tempDir(prefix);
    dirs.push(d);
    return d;
  };
}

/** Seeded test data: the same mulberry32 the MemoryNetwork uses (a PRNG, not oracle logic). */
export const rng = seededRandom;

/** Value bytes of record `id`: length and content derived from the id alone. */
export function valueOf(id: number, maxLen = 96): Uint8Array {
  const r = rng(id * 7919 + 1);
  const out = new Uint8Array(1 + Math.floor(r() * maxLen));
  for (let i = 0; i < out.length; i++) out[i] = Math.floor(r() * 256);
  return out;
}

export const T0 = 1_700_000_000_000;

export function valueRecord(id: number, node = 1): RecordInput {
  return { kind: 1, key: `key/${id}`, value: valueOf(id), timestamp: T0 + id, node, seq: id };
}

/** An expiring value (kind 5): its value field is `i64 LE expiresAt • value` (docs/FORMAT.md §1). */
export function expiringRecord(id: number, node = 1): RecordInput {
  return { kind: 5, key: `key/${id}`, value: expiringPayload(T0 + id + 60_000, valueOf(id)), timestamp: T0 + id, node, seq: id };
}

export function tombstoneRecord(id: number, node = 1): RecordInput {
  return { kind: 0, key: `key/${id}`, value: null, timestamp: T0 + id, node, seq: id };
}

export function seqMark(seq: number): RecordInput {
  return { kind: 4, key: "", value: null, timestamp: 0, node: 0, seq };
}

export function peerRecord(kind: 2 | 3, peer: number): RecordInput {
  return { kind, key: "", value: null, timestamp: 0, node: peer, seq: 0 };
}

/** Record `id` of the crash loop (test/storage/crash.ts): exact bytes recomputable from the id. */
export function crashRecord(id: number): RecordInput {
  return { kind: 1, key: `r/${id}`, value: valueOf(id, 300), timestamp: T0 + id, node: 1, seq: id };
}

/** A mix of every kind, deterministic in `id`. */
export function mixedRecord(id: number): RecordInput {
  switch (id % 9) {
    case 3: return tombstoneRecord(id);
    case 4: return expiringRecord(id, 1 + (id % 3));
    case 5: return peerRecord(2, 100 + (id % 5));
    case 7: return peerRecord(3, 100 + (id % 5));
    case 8: return seqMark(id);
    default: return valueRecord(id, 1 + (id % 3));
  }
}

export interface Plain { kind: number; key: string; value: string | null; timestamp: number; node: number; seq: number }

const hex = (b: Uint8Array | null) => (b === null ? null : Buffer.from(b).toString("hex"));
const keyText = (k: string | Uint8Array) => (typeof k === "string" ? k : new TextDecoder().decode(k));

/** Kinds 2/3/4 carry no timestamp (the container base); compare them without it. */
export function plain(r: RecordInput): Plain {
  const entry = r.kind <= 1 || r.kind === 5; // 5: an expiring value (its value field: 8 expiry bytes + value)
  return { kind: r.kind, key: keyText(r.key), value: entry && r.kind !== 0 ? hex(r.value) : null, timestamp: entry || r.kind === 7 ? r.timestamp : 0, node: r.node, seq: r.seq };
}

export function flatten(batches: readonly DecodedBatch[]): Plain[] {
  const out: Plain[] = [];
  for (const b of batches) {
    for (let i = 0; i < b.count; i++) {
      const kind = b.kind(i);
      out.push({ kind, key: b.key(i), value: kind === 1 || kind === 5 ? hex(b.value(i)) : null, timestamp: kind <= 1 || kind === 5 || kind === 7 ? b.timestamp(i) : 0, node: b.node(i), seq: b.seq(i) });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------
// Independent oracle for docs/FORMAT.md §1–3.

function readVaru(b: Uint8Array, p: number): [bigint, number] | null {
  let v = 0n;
  for (let i = 0; i < 10; i++) {
    if (p + i >= b.length) return null;
    const byte = b[p + i]!;
    if (i === 9 && byte > 1) return null;
    v |= BigInt(byte & 0x7f) << BigInt(7 * i);
    if ((byte & 0x80) === 0) return [v, p + i + 1];
  }
  return null;
}

/** Parses one body; null if malformed (bad kind, ranges, lengths, trailing bytes). */
export function oracleBody(body: Uint8Array, base: number): Plain | null {
  if (body.length < 1) return null;
  const kind = body[0]!;
  if (kind > 5 && kind !== 7) return null; // 7: a batch range (snapshots; its timestamp field is the count)
  let p = 1;
  const n = readVaru(body, p); if (!n) return null; p = n[1];
  if (n[0] > 0xffffffffn) return null;
  const s = readVaru(body, p); if (!s) return null; p = s[1];
  const z = readVaru(body, p); if (!z) return null; p = z[1];
  const delta = (z[0] >> 1n) ^ -(z[0] & 1n);
  const kl = readVaru(body, p); if (!kl) return null; p = kl[1];
  if (kl[0] > 0x7fffffffn || Number(kl[0]) > body.length - p) return null;
  const key = body.subarray(p, p + Number(kl[0])); p += Number(kl[0]);
  let value: Uint8Array | null = null;
  if (kind === 1 || kind === 5) {
    const vl = readVaru(body, p); if (!vl) return null; p = vl[1];
    if (vl[0] > 0x7fffffffn || Number(vl[0]) > body.length - p || (kind === 5 && vl[0] < 8n)) return null;
    value = body.subarray(p, p + Number(vl[0])); p += Number(vl[0]);
  }
  if (p !== body.length) return null;
  const keyStr = new TextDecoder().decode(key);
  return { kind, key: keyStr, value: hex(value), timestamp: kind <= 1 || kind === 5 || kind === 7 ? base + Number(delta) : 0, node: Number(n[0]), seq: Number(s[0]) };
}

/** The frame at `p`: its parsed record and end, or null if not a valid frame. */
export function oracleFrame(b: Uint8Array, p: number, base: number): { rec: Plain; end: number } | null {
  if (b.length - p < 8) return null;
  const dv = new DataView(b.buffer, b.byteOffset + p, 8);
  const len = dv.getUint32(0, true);
  const crc = dv.getUint32(4, true);
  if (len < 1 || len > 0x7fffffff || len > b.length - p - 8) return null;
  const body = b.subarray(p + 8, p + 8 + len);
  if ((zcrc32(body) >>> 0) !== crc) return null;
  const rec = oracleBody(body, base);
  return rec ? { rec, end: p + 8 + len } : null;
}

export type OracleWal =
  | { outcome: "corrupt" }
  | { outcome: "ok"; records: Plain[]; validEnd: number; generation: number; base: number };

/** What open must do with a WAL image (snapshot not covering it). */
export function oracleWal(b: Uint8Array, nodeId: number, start = 32): OracleWal {
  if (b.length < 32) return { outcome: "corrupt" };
  const dv = new DataView(b.buffer, b.byteOffset, 32);
  if (dv.getUint32(0, true) !== 0x57564b57) return { outcome: "corrupt" };
  if ((zcrc32(b.subarray(0, 28)) >>> 0) !== dv.getUint32(28, true)) return { outcome: "corrupt" };
  const version = dv.getUint32(4, true);
  if ((version !== 1 && version !== 2) || dv.getUint32(8, true) !== nodeId) return { outcome: "corrupt" };
  const base = Number(dv.getBigInt64(12, true));
  const generation = Number(dv.getBigUint64(20, true));
  // Header numbers must be exact in JS (timestamps and seqs are exact up to 2^53).
  if (!Number.isSafeInteger(base) || !Number.isSafeInteger(generation)) return { outcome: "corrupt" };
  const records: Plain[] = [];
  let p = Math.min(Math.max(start, 32), b.length);
  while (p < b.length) {
    const f = oracleFrame(b, p, base);
    if (!f) {
      // Version 2 (FORMAT §3): 8 zero header bytes with valid frames after them are unsynced
      // writes, kept aside and not replayed; open keeps what precedes them.
      const zeroHeader = version === 2 && p + 8 <= b.length && b.subarray(p, p + 8).every((x) => x === 0);
      if (!zeroHeader) for (let q = p + 1; q < b.length; q++) if (oracleFrame(b, q, base)) return { outcome: "corrupt" };
      // A torn tail or (version 2, FORMAT §3) an all-zero preallocated tail: open keeps what precedes it.
      return { outcome: "ok", records, validEnd: p, generation, base };
    }
    records.push(f.rec);
    p = f.end;
  }
  return { outcome: "ok", records, validEnd: p, generation, base };
}

/** Records of a snapshot image if fully valid, else null. */
export function oracleSnapshot(b: Uint8Array, nodeId: number): { records: Plain[]; walGeneration: number; walOffset: number } | null {
  if (b.length < 8) return null;
  const version = new DataView(b.buffer, b.byteOffset, 8).getUint32(4, true);
  const hb = version === 1 ? 64 : version === 2 ? 80 : 0;
  if (hb === 0 || b.length < hb) return null;
  const dv = new DataView(b.buffer, b.byteOffset, hb);
  if (dv.getUint32(0, true) !== 0x53564b57 || dv.getUint32(8, true) !== nodeId) return null;
  if (dv.getUint32(12, true) !== 0 || dv.getUint32(hb - 8, true) !== 0) return null;
  if ((zcrc32(b.subarray(0, hb - 4)) >>> 0) !== dv.getUint32(hb - 4, true)) return null;
  const base = Number(dv.getBigInt64(16, true));
  const count = Number(dv.getBigUint64(24, true));
  const bodyLen = Number(dv.getBigUint64(32, true));
  const exact = [base, count, bodyLen, Number(dv.getBigUint64(40, true)), Number(dv.getBigUint64(48, true))];
  if (!exact.every(Number.isSafeInteger)) return null;
  if (bodyLen !== b.length - hb) return null;
  const records = version === 1 ? oracleFramedBody(b, 64, base) : oracleBlocks(b.subarray(80), base);
  if (records === null || records.length !== count) return null;
  return { records, walGeneration: Number(dv.getBigUint64(40, true)), walOffset: Number(dv.getBigUint64(48, true)) };
}

function oracleFramedBody(b: Uint8Array, p: number, base: number): Plain[] | null {
  const records: Plain[] = [];
  while (p < b.length) {
    const f = oracleFrame(b, p, base);
    if (!f) return null;
    records.push(f.rec);
    p = f.end;
  }
  return records;
}

/** A version-2 body (docs/FORMAT.md §4.2): blocks under a CRC, records coded against the previous one of the block. */
function oracleBlocks(body: Uint8Array, base: number): Plain[] | null {
  const records: Plain[] = [];
  let p = 0;
  while (p < body.length) {
    if (body.length - p < 8) return null;
    const dv = new DataView(body.buffer, body.byteOffset + p, 8);
    const len = dv.getUint32(0, true);
    if (len < 1 || len > body.length - p - 8) return null;
    const block = body.subarray(p + 8, p + 8 + len);
    if ((zcrc32(block) >>> 0) !== dv.getUint32(4, true)) return null;
    p += 8 + len;
    let q = 0, node = 0n, seq = 0n, ts = BigInt(base);
    let prev = new Uint8Array(0);
    const zz = (z: bigint) => (z >> 1n) ^ -(z & 1n);
    while (q < block.length) {
      const head = block[q++]!;
      const kind = head & 7;
      if (kind > 5 && kind !== 7) return null; // 7: a batch range (snapshots; its timestamp field is the count)
      let r: [bigint, number] | null;
      if (head & 8) { r = readVaru(block, q); if (!r || r[0] > 0xffffffffn) return null; node = r[0]; q = r[1]; }
      if (head >> 4) seq += BigInt(head >> 4);
      else { r = readVaru(block, q); if (!r) return null; seq += zz(r[0]); q = r[1]; }
      r = readVaru(block, q); if (!r) return null; ts += zz(r[0]); q = r[1];
      r = readVaru(block, q); if (!r || r[0] > BigInt(prev.length) || r[0] > 255n) return null;
      const shared = Number(r[0]); q = r[1];
      r = readVaru(block, q); if (!r || r[0] > BigInt(block.length - r[1])) return null;
      const key = new Uint8Array(shared + Number(r[0]));
      key.set(prev.subarray(0, shared));
      key.set(block.subarray(r[1], r[1] + Number(r[0])), shared);
      q = r[1] + Number(r[0]);
      let value: Uint8Array | null = null;
      if (kind === 1 || kind === 5) {
        r = readVaru(block, q); if (!r || r[0] > BigInt(block.length - r[1]) || (kind === 5 && r[0] < 8n)) return null;
        value = block.subarray(r[1], r[1] + Number(r[0]));
        q = r[1] + Number(r[0]);
      }
      if (seq < 0n || seq > BigInt(Number.MAX_SAFE_INTEGER)) return null;
      records.push({ kind, key: new TextDecoder().decode(key), value: hex(value), timestamp: kind <= 1 || kind === 5 ? Number(ts) : 0, node: Number(node), seq: Number(seq) });
      prev = key;
    }
  }
  return records;
}

/** Offsets of every record frame in a valid WAL image (for cutting exactly at boundaries). */
export function frameOffsets(b: Uint8Array, start = 32): number[] {
  const out: number[] = [];
  let p = start;
  while (p + 8 <= b.length) {
    out.push(p);
    p += 8 + new DataView(b.buffer, b.byteOffset + p, 4).getUint32(0, true);
  }
  return out;
}
