/**
 * The WAL file's bytes (docs/FORMAT.md §3): the 32-byte header (magic, version, node id,
 * the base timestamp of every record body in the file, the generation, under a CRC) and
 * whole images written atomically (a new log, the reset after a snapshot, open's repairs).
 *
 *   const bytes = encodeWalHeader({ nodeId: 1, base: Date.now(), generation: 1 });
 *   const h = parseWalHeader(bytes);   // the header, or why it is not one (never throws)
 *   writeWalFile(path, buildWalImage(h, headRecords, tail));   // tmp, fsync, rename, fsync(dir)
 *   const { ok, bytes } = encodeAppends(queue, h.base);          // the body of one group write
 */
import * as fs from "node:fs";
import { dirname } from "node:path";
import { crc32 } from "../codec/crc.js";
import { encodeRecords } from "../codec/records.js";
import type { RecordInput } from "../core/record.js";
import { WaveKVError } from "../core/errors.js";
import { fsyncDir, writeFully } from "./datadir.js";

/** "WKVW" in file order. */
export const WAL_MAGIC = 0x57564b57;
export const WAL_VERSION = 1;
export const WAL_HEADER_BYTES = 32;

export interface WalHeader {
  nodeId: number;
  /** Base timestamp of every record body in this file (FORMAT §1 `timestamp`). */
  base: number;
  /** Bumped each time the log is reset after a snapshot; a snapshot names the generation it covers. */
  generation: number;
}

export function encodeWalHeader(h: WalHeader): Uint8Array {
  const out = new Uint8Array(WAL_HEADER_BYTES);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, WAL_MAGIC, true);
  dv.setUint32(4, WAL_VERSION, true);
  dv.setUint32(8, h.nodeId, true);
  dv.setBigInt64(12, BigInt(h.base), true);
  dv.setBigUint64(20, BigInt(h.generation), true);
  dv.setUint32(28, crc32(out.subarray(0, 28)), true);
  return out;
}

/** The header, or the reason it is not one. Never throws. */
export function parseWalHeader(bytes: Uint8Array): WalHeader | string {
  if (bytes.length < WAL_HEADER_BYTES) return `file is ${bytes.length} bytes, shorter than the ${WAL_HEADER_BYTES}-byte header`;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, WAL_HEADER_BYTES);
  if (dv.getUint32(0, true) !== WAL_MAGIC) return "bad magic (not a wavekv WAL)";
  if (dv.getUint32(28, true) !== crc32(bytes.subarray(0, 28))) return "header CRC mismatch";
  const version = dv.getUint32(4, true);
  if (version !== WAL_VERSION) return `unsupported WAL version ${version} (this build reads ${WAL_VERSION})`;
  const base = Number(dv.getBigInt64(12, true));
  const generation = Number(dv.getBigUint64(20, true));
  if (!Number.isSafeInteger(base) || !Number.isSafeInteger(generation)) return "header fields out of range";
  return { nodeId: dv.getUint32(8, true), base, generation };
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** header + `head` records (encoded with `header.base`) + `tail` (framed records copied raw). */
export function buildWalImage(header: WalHeader, head: readonly RecordInput[], tail: Uint8Array): Uint8Array {
  const headBytes = head.length > 0 ? encodeRecords(head, "framed", header.base) : new Uint8Array(0);
  return concatBytes([encodeWalHeader(header), headBytes, tail]);
}

/**
 * Writes a complete WAL image atomically: tmp, fsync, rename, fsync(dir). `durable`
 * false (policy "never") skips both fsyncs: still atomic against a process crash.
 */
export function writeWalFile(path: string, image: Uint8Array, durable = true): void {
  const tmp = `${path}.tmp`;
  const fd = fs.openSync(tmp, "w");
  try {
    writeFully(fd, image, 0);
    if (durable) fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, path);
  if (durable) fsyncDir(dirname(path));
}

/** An append as the writer queues it: records to encode, or bytes framed when it was made. */
export interface QueuedAppend {
  records: readonly RecordInput[] | Uint8Array;
  reject(e: unknown): void;
}

/**
 * The bytes of one group write: one `encodeRecords` over each run of appends that carry
 * records, framed bytes as they are, in queue order. An append with a record the format
 * cannot carry is rejected (INVALID_ARGUMENT) and left out; `ok` are the others.
 */
export function encodeAppends<P extends QueuedAppend>(queue: P[], base: number): { ok: P[]; bytes: Uint8Array } {
  const first = queue[0]!.records;
  if (queue.length === 1 && first instanceof Uint8Array) return { ok: queue, bytes: first };
  const parts: Uint8Array[] = [];
  const ok: P[] = [];
  for (let i = 0; i < queue.length;) {
    const p = queue[i]!;
    if (p.records instanceof Uint8Array) {
      parts.push(p.records);
      ok.push(p);
      i++;
      continue;
    }
    let end = i + 1;
    while (end < queue.length && !(queue[end]!.records instanceof Uint8Array)) end++;
    const run = queue.slice(i, end);
    try {
      parts.push(encodeRecords(run.length === 1 ? p.records : run.flatMap((q) => q.records as readonly RecordInput[]), "framed", base));
      ok.push(...run);
    } catch {
      // Rare: find the append(s) at fault, one encode each, and write the others.
      for (const q of run) {
        try {
          parts.push(encodeRecords(q.records as readonly RecordInput[], "framed", base));
          ok.push(q);
        } catch (err) {
          q.reject(invalidRecords(err));
        }
      }
    }
    i = end;
  }
  return { ok, bytes: parts.length === 1 ? parts[0]! : concatBytes(parts) };
}

/** Records the format cannot carry: nothing of their append was written, nothing is latched. */
export function invalidRecords(e: unknown): WaveKVError {
  return new WaveKVError("INVALID_ARGUMENT", `cannot log these records: ${(e as Error).message}`, { cause: e });
}
