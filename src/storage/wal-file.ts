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
import type { FramedRecords, RecordInput } from "../core/record.js";
import { WaveKVError } from "../core/errors.js";
import { fsyncDir, removeIfExists, writeFully } from "./datadir.js";
import type { FaultHook } from "./interface.js";

/** "WKVW" in file order. */
export const WAL_MAGIC = 0x57564b57;
/**
 * Written by this build: version 2 may carry a zero-filled preallocated tail (an all-zero
 * rest of the file is its clean end, FORMAT §3). Version 1 files (no preallocation) still
 * open, and are appended to as version 1 until the next reset writes a version 2 header.
 */
export const WAL_VERSION = 2;
/** The oldest version this build reads. */
export const WAL_VERSION_MIN = 1;
export const WAL_HEADER_BYTES = 32;

export interface WalHeader {
  nodeId: number;
  /** Base timestamp of every record body in this file (FORMAT §1 `timestamp`). */
  base: number;
  /** Bumped each time the log is reset after a snapshot; a snapshot names the generation it covers. */
  generation: number;
}

/** `version`: tests write older versions (a version 1 header is the same bytes but that field). */
export function encodeWalHeader(h: WalHeader, version = WAL_VERSION): Uint8Array {
  const out = new Uint8Array(WAL_HEADER_BYTES);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, WAL_MAGIC, true);
  dv.setUint32(4, version, true);
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
  if (version < WAL_VERSION_MIN || version > WAL_VERSION) return `unsupported WAL version ${version} (this build reads ${WAL_VERSION_MIN} to ${WAL_VERSION})`;
  const base = Number(dv.getBigInt64(12, true));
  const generation = Number(dv.getBigUint64(20, true));
  if (!Number.isSafeInteger(base) || !Number.isSafeInteger(generation)) return "header fields out of range";
  return { nodeId: dv.getUint32(8, true), base, generation };
}

/** The version of a header `parseWalHeader` accepted. */
export function walVersion(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, 8).getUint32(4, true);
}

/** Whether every byte of `bytes` from `from` on is zero (a preallocated tail). */
export function isZeroFrom(bytes: Uint8Array, from: number): boolean {
  let i = from;
  // Four bytes at a time where aligned: a 4 MiB tail is checked in about a millisecond.
  while (i < bytes.length && ((bytes.byteOffset + i) & 3) !== 0) if (bytes[i++] !== 0) return false;
  const words = (bytes.length - i) >>> 2;
  if (words > 0) {
    const w = new Uint32Array(bytes.buffer, bytes.byteOffset + i, words);
    for (let k = 0; k < words; k++) if (w[k] !== 0) return false;
    i += words * 4;
  }
  for (; i < bytes.length; i++) if (bytes[i] !== 0) return false;
  return true;
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

/**
 * Preallocation (WAL version 2, docs/design/0013-preallocated-wal.md): the writer grows
 * the file ahead of the appends with written zeros, fsynced once, so a group write
 * overwrites space that already exists and its fdatasync has no file size to journal.
 * Each growth is the file's current size, at least PREALLOC_MIN and at most PREALLOC_MAX
 * bytes: a small log wastes little, a busy one grows a few times a second at most.
 */
export const PREALLOC_MIN = 64 << 10;
export const PREALLOC_MAX = 4 << 20;
let zeros: Uint8Array | null = null;

/** Writes zeros over [from, to) of `fd`, 1 MiB at a time. Throws what the write throws. */
export function writeZeros(fd: number, from: number, to: number): void {
  zeros ??= new Uint8Array(1 << 20);
  for (let at = from; at < to;) {
    const n = Math.min(zeros.length, to - at);
    writeFully(fd, n === zeros.length ? zeros : zeros.subarray(0, n), at);
    at += n;
  }
}

/**
 * The reset after a snapshot: `image` written to `<path>.tmp`, fsynced (`durable`),
 * renamed over `path`; returns the open fd of the new log (the caller fsyncs the
 * directory). `zeroTail` zero bytes follow the image (preallocated under the same fsync).
 * On failure nothing replaced the old log: the tmp is removed and the error thrown.
 */
export function openReplacement(path: string, image: Uint8Array, durable: boolean, faults?: FaultHook, zeroTail = 0): number {
  const tmp = `${path}.tmp`;
  let fd = -1;
  try {
    fd = fs.openSync(tmp, "w+");
    faults?.("write", tmp);
    writeFully(fd, image, 0);
    if (zeroTail > 0) {
      faults?.("preallocate", tmp);
      writeZeros(fd, image.length, image.length + zeroTail);
    }
    if (durable) {
      faults?.("fsync", tmp);
      fs.fsyncSync(fd);
    }
    fs.renameSync(tmp, path);
    return fd;
  } catch (e) {
    if (fd >= 0) try { fs.closeSync(fd); } catch { /* ignore */ }
    try { removeIfExists(tmp); } catch { /* ignore */ }
    throw e;
  }
}

/** Truncates a damaged tail away before the first append (open path). */
export function truncateWal(path: string, size: number, durable = true): void {
  const fd = fs.openSync(path, "r+");
  try {
    fs.ftruncateSync(fd, size);
    if (durable) fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
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

export function isFramed(input: readonly RecordInput[] | FramedRecords): input is FramedRecords {
  return typeof (input as FramedRecords).frame === "function";
}

/**
 * Throws if the log file has been unlinked (nlink 0: the file or the whole data
 * directory was deleted under the running node): writes to it would succeed and vanish
 * at close. One fstat: 4–12 µs measured here (Node 20, Bun 1.4), against milliseconds
 * for the fsync it follows — once per group commit under "always", at most every
 * UNLINK_CHECK_MS under the other policies, so never per put.
 */
export function assertLinked(fd: number, path: string): void {
  if (fs.fstatSync(fd).nlink > 0) return;
  throw new Error(`it was deleted while the node was running: is the data directory ${dirname(path)} gone? Writes to it would vanish`);
}
