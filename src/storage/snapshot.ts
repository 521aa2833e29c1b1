/**
 * Snapshot files `node_<id>.snapshot` and `.snapshot.bak` (docs/FORMAT.md §4): a
 * header, then every record of the state — version 2 (written): an 80-byte header and
 * blocks of prefix-coded records under one CRC each (./snapshot-body.ts, §4.2);
 * version 1 (still read): a 64-byte header and framed records (§2, §4.1).
 *
 *   const image = encodeSnapshot(records, { nodeId: 1, base: Date.now(), walGeneration: 3, walOffset: 4096 });
 *   await writeSnapshotFile(files(dir, 1), image);     // tmp, fsync, keep .bak, rename, fsync(dir)
 *   const { snapshot, warnings } = loadSnapshot(files(dir, 1), 1);  // newest readable generation
 *
 * Integrity: each block (v1: each record) has its own CRC, and the header — itself
 * under a CRC — fixes the record count and the body length (v2: and the expanded
 * length), so a truncated, extended or partially rewritten file is refused.
 */
import * as fs from "node:fs";
import { dirname } from "node:path";
import { crc32 } from "../codec/crc.js";
import { decodeRecords, encodeRecords } from "../codec/records.js";
import { decodeWindow } from "../codec/windows.js";
import { D_KIND, DESCRIPTOR_WORDS, RecordKind, seqMarkRecord, type DecodedBatch, type Framing, type RecordInput } from "../core/record.js";
import type { PinnedBytes } from "../kernel/memory.js";
import { MB_COUNT, MB_PREV, MB_STOP_OFFSET } from "../kernel/abi.js";
import { hi32, lo32 } from "../core/encoding.js";
import { encodeSnapshotBody, expandSnapshotBody, maxExpandedLen } from "./snapshot-body.js";
import { WaveKVError } from "../core/errors.js";
import { type DataFiles, fsyncDir, readExactly, readFully, removeIfExists } from "./datadir.js";
import type { FaultHook, ReplayExpectation } from "./interface.js";
import { REPLAY_WINDOW_RECORDS, ReplaySession, expectation } from "./replay.js";

/** "WKVS" in file order. */
export const SNAPSHOT_MAGIC = 0x53564b57;
/** What this build writes (it reads 1 and 2). */
export const SNAPSHOT_VERSION = 2;
/** Header bytes of a version-1 snapshot (framed records, §4.1). */
export const SNAPSHOT_HEADER_BYTES = 64;
/** Header bytes of a version-2 snapshot (blocks, §4.2): v1's fields, then the expanded length and slack. */
export const SNAPSHOT_V2_HEADER_BYTES = 80;

export interface SnapshotHeader {
  /** 1: framed records; 2: blocks of prefix-coded records (docs/FORMAT.md §4). */
  version: number;
  /** Bytes of the header (64 or 80): the body starts there. */
  headerBytes: number;
  nodeId: number;
  base: number;
  /** Records in the body. */
  count: number;
  /** Bytes after the header; the file is exactly header + body. */
  bodyLen: number;
  /** The WAL generation whose records up to `walOffset` this snapshot already contains. */
  walGeneration: number;
  walOffset: number;
  /** Version 2: bytes of the records as bare bodies once expanded (0 in version 1). */
  expandedLen: number;
  /** Version 2: extra bytes in-place expansion needs past `expandedLen` (≤ bodyLen; 0 in version 1). */
  slack: number;
}

export interface Snapshot {
  header: SnapshotHeader;
  batch: DecodedBatch;
  /** Which file it came from. */
  path: string;
}

type SnapshotMeta = Omit<SnapshotHeader, "version" | "headerBytes" | "count" | "bodyLen" | "expandedLen" | "slack">;

/**
 * The snapshot file of `records`: version 2 (§4.2), or version 1 when a record's stamps do
 * not fit version 2's coding (a timestamp 2^51 ms from `base`: no real clock), or when
 * asked for (tests of the files the previous release wrote).
 */
export function encodeSnapshot(records: readonly RecordInput[], meta: SnapshotMeta, version: 1 | 2 = 2): Uint8Array {
  const v2 = version === 2 ? encodeSnapshotBody(records, meta.base) : null;
  const body = v2 === null ? encodeRecords(records, "framed", meta.base) : v2.bytes;
  const headerBytes = v2 === null ? SNAPSHOT_HEADER_BYTES : SNAPSHOT_V2_HEADER_BYTES;
  const out = new Uint8Array(headerBytes + body.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, SNAPSHOT_MAGIC, true);
  dv.setUint32(4, v2 === null ? 1 : 2, true);
  dv.setUint32(8, meta.nodeId, true);
  dv.setUint32(12, 0, true); // flags, reserved
  dv.setBigInt64(16, BigInt(meta.base), true);
  dv.setBigUint64(24, BigInt(records.length), true);
  dv.setBigUint64(32, BigInt(body.length), true);
  dv.setBigUint64(40, BigInt(meta.walGeneration), true);
  dv.setBigUint64(48, BigInt(meta.walOffset), true);
  if (v2 !== null) {
    dv.setBigUint64(56, BigInt(v2.expandedLen), true);
    dv.setBigUint64(64, BigInt(v2.slack), true);
  }
  dv.setUint32(headerBytes - 8, 0, true); // reserved
  dv.setUint32(headerBytes - 4, crc32(out.subarray(0, headerBytes - 4)), true);
  out.set(body, headerBytes);
  return out;
}

/** The header alone, or why it is unusable. Never throws. */
export function parseSnapshotHeader(bytes: Uint8Array): SnapshotHeader | string {
  if (bytes.length < 8) return `file is ${bytes.length} bytes, shorter than the ${SNAPSHOT_HEADER_BYTES}-byte header`;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, SNAPSHOT_V2_HEADER_BYTES));
  if (dv.getUint32(0, true) !== SNAPSHOT_MAGIC) return "bad magic (not a wavekv snapshot)";
  const version = dv.getUint32(4, true);
  if (version !== 1 && version !== 2) return `unsupported snapshot version ${version} (this build reads 1 and 2)`;
  const headerBytes = version === 1 ? SNAPSHOT_HEADER_BYTES : SNAPSHOT_V2_HEADER_BYTES;
  if (bytes.length < headerBytes) return `file is ${bytes.length} bytes, shorter than the ${headerBytes}-byte header`;
  if (dv.getUint32(headerBytes - 4, true) !== crc32(bytes.subarray(0, headerBytes - 4))) return "header CRC mismatch";
  if (dv.getUint32(12, true) !== 0 || dv.getUint32(headerBytes - 8, true) !== 0) return "reserved header fields are not zero";
  const h: SnapshotHeader = {
    version,
    headerBytes,
    nodeId: dv.getUint32(8, true),
    base: Number(dv.getBigInt64(16, true)),
    count: Number(dv.getBigUint64(24, true)),
    bodyLen: Number(dv.getBigUint64(32, true)),
    walGeneration: Number(dv.getBigUint64(40, true)),
    walOffset: Number(dv.getBigUint64(48, true)),
    expandedLen: version === 2 ? Number(dv.getBigUint64(56, true)) : 0,
    slack: version === 2 ? Number(dv.getBigUint64(64, true)) : 0,
  };
  for (const v of Object.values(h)) if (!Number.isSafeInteger(v)) return "header fields out of range";
  // Nothing is allocated from a claimed size a body of this length cannot have.
  if (version === 2 && (h.expandedLen > maxExpandedLen(h.bodyLen, h.count) || h.count * 4 > h.bodyLen || h.slack > h.bodyLen)) return "header sizes do not fit the body length";
  return h;
}

/**
 * Validates a whole snapshot image and decodes its records. Never throws on bad bytes:
 * returns the reason instead. The body length is checked against the file before the
 * body is decoded, so nothing is allocated from a claimed size.
 */
export function parseSnapshot(bytes: Uint8Array, nodeId?: number): { header: SnapshotHeader; batch: DecodedBatch } | string {
  const header = checkedHeader(bytes, bytes.length, nodeId);
  if (typeof header === "string") return header;
  if (header.version === 1) return checkedBody(header, decodeRecords(bytes.subarray(SNAPSHOT_HEADER_BYTES), "framed", header.base));
  // Expanded in a buffer of its own (the same in-place rewrite as open, on a JS copy).
  const { expandedLen: e, slack, bodyLen } = header;
  const buf = new Uint8Array(e + slack);
  buf.set(bytes.subarray(header.headerBytes), e + slack - bodyLen);
  const why = expandSnapshotBody(buf, e + slack - bodyLen, bodyLen, e, header.base, header.count, (pos, len) => crc32(buf.subarray(pos, pos + len)));
  return why ?? checkedBody(header, decodeRecords(buf.subarray(0, e), "bare", header.base));
}

/** The header of a `fileSize`-byte snapshot whose first bytes are `head`, or why it is unusable. */
function checkedHeader(head: Uint8Array, fileSize: number, nodeId: number | undefined): SnapshotHeader | string {
  const header = parseSnapshotHeader(head);
  if (typeof header === "string") return header;
  if (nodeId !== undefined && header.nodeId !== nodeId) return `written by node ${header.nodeId}, not node ${nodeId}`;
  const actual = fileSize - header.headerBytes;
  if (header.bodyLen !== actual) return `header says ${header.bodyLen} body bytes, file holds ${actual} (truncated or extended)`;
  return header;
}

/** The decoded body, if it holds exactly the header's records; else the batch is released and the reason returned. */
function checkedBody(header: SnapshotHeader, batch: DecodedBatch): { header: SnapshotHeader; batch: DecodedBatch } | string {
  let why: string | undefined;
  if (batch.stop.reason !== "end") {
    why = `record ${batch.count} is damaged (${batch.stop.reason}) at offset ${SNAPSHOT_HEADER_BYTES + batch.stop.offset}`;
  } else if (batch.count !== header.count) {
    why = `header says ${header.count} records, body holds ${batch.count}`;
  }
  if (why === undefined) return { header, batch };
  batch.release();
  return why;
}

/** Opens `path` and checks its header against its size: `read(fd, header)`, null if absent, or why it is unusable. IO errors throw. */
function withSnapshotFile<T>(path: string, nodeId: number, read: (fd: number, header: SnapshotHeader) => T | string): T | null | string {
  let fd: number;
  try {
    fd = fs.openSync(path, "r");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new WaveKVError("IO", `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const size = fs.fstatSync(fd).size;
    const header = checkedHeader(readFully(fd, Math.min(size, SNAPSHOT_V2_HEADER_BYTES), 0), size, nodeId);
    return typeof header === "string" ? header : read(fd, header);
  } catch (e) {
    if (e instanceof WaveKVError) throw e;
    throw new WaveKVError("IO", `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The newest readable generation: the snapshot, else `.bak` (with a warning), else
 * none — with a warning when a file existed but neither could be read. Never throws
 * CORRUPT_SNAPSHOT: the state is replicated, so a node with damaged snapshots starts
 * from what its WAL holds and re-syncs from its peers rather than not starting.
 */
export function loadSnapshot(f: DataFiles, nodeId: number): { snapshot: Snapshot | null; warnings: string[] } {
  // streamSnapshot with one window: the whole body as one batch, collected by the session.
  const session = new ReplaySession("", undefined);
  const { snapshot, warnings } = streamSnapshot(f, nodeId, session, Infinity);
  const batch = session.finish()[0];
  return { snapshot: snapshot && { header: snapshot.header, path: snapshot.path, batch: batch! }, warnings };
}

/** A snapshot whose records went to a consumer (streamSnapshot): what the rest of recovery needs of it. */
export interface StreamedSnapshot {
  header: SnapshotHeader;
  path: string;
  /** Its kind-4 records (seq marks), kept: they are carried into every new WAL generation. */
  marks: RecordInput[];
}

/**
 * `loadSnapshot` handing the records to `session` window by window (`window` records at
 * a time, read straight into linear memory) instead of decoding the body whole: 48 B of
 * descriptors a record never exist at once, and a body past the kernel's one-decode limit
 * (22M records) still opens. Damage found after windows were handed over restarts the
 * session (its sink drops everything it took) before `.bak` is tried, and again if that
 * fails too.
 */
export function streamSnapshot(f: DataFiles, nodeId: number, session: ReplaySession, window = REPLAY_WINDOW_RECORDS): { snapshot: StreamedSnapshot | null; warnings: string[] } {
  const read = (path: string) => {
    session.restart();
    return streamSnapshotFile(path, nodeId, session, window);
  };
  const { value, warnings } = loadNewest(f, read);
  if (value === null) session.restart();
  return { snapshot: value, warnings };
}

function streamSnapshotFile(path: string, nodeId: number, session: ReplaySession, window: number): StreamedSnapshot | null | string {
  return withSnapshotFile(path, nodeId, (fd, header) => {
    if (header.version === 1) {
      return session.withBlock(header.bodyLen, (dst) => readExactly(fd, dst, SNAPSHOT_HEADER_BYTES), (block) => replayWindows(block, 0, header, "framed", path, session, window));
    }
    // Version 2: the body read into the tail of the block, expanded in place to bare bodies at its start.
    const { expandedLen: e, slack, bodyLen } = header;
    const at = e + slack - bodyLen;
    return session.withBlock(e + slack, (dst) => readExactly(fd, dst.subarray(at), header.headerBytes), (block) => {
      const why = expandInKernel(block, at, header);
      return why ?? replayWindows(block, e, header, "bare", path, session, window);
    });
  });
}

const EXPAND_ERRORS = ["", "block header truncated", "block length does not fit", "block CRC mismatch", "record malformed", "record does not expand in place (slack too small)", "record count differs from the header's", "expanded length differs from the header's"];

/** The v2 body at `at` of `block` expanded in place by the kernel (the twin of expandSnapshotBody): null, or why the body is unusable. */
function expandInKernel(block: PinnedBytes, at: number, header: SnapshotHeader): string | null {
  const k = block.kernel;
  let from = 0, w = 0, n = 0;
  for (;;) {
    // A few MB a call: the kernel's code tiers up between calls (assembly/snapshot.ts).
    const code = k.exports.expandSnapshot(block.ptr, at, header.bodyLen, header.expandedLen, lo32(header.base), hi32(header.base), header.count, from, w, n, EXPAND_BLOCKS_PER_CALL) >>> 0;
    if (code === 0) return null;
    if (code !== EXPAND_MORE) return `${EXPAND_ERRORS[code] ?? `error ${code}`} at body offset ${k.mailbox(MB_STOP_OFFSET)} (record ${k.mailbox(MB_COUNT)})`;
    from = k.mailbox(MB_STOP_OFFSET);
    n = k.mailbox(MB_COUNT);
    w = k.mailbox(MB_PREV);
  }
}
const EXPAND_MORE = 8;
const EXPAND_BLOCKS_PER_CALL = 16;

/**
 * The records of `block` (up to `end` for bare bodies: an expanded v2 body is followed by
 * slack) handed to `session` a window at a time; why not, if the records are damaged or
 * not the header's count (checked before a window known to be wrong is handed over).
 */
function replayWindows(block: PinnedBytes, end: number, header: SnapshotHeader, framing: Framing, path: string, session: ReplaySession, window: number): StreamedSnapshot | string {
  const marks: RecordInput[] = [];
  let at = 0, records = 0;
  const size = framing === "bare" ? end : header.bodyLen;
  for (;;) {
    // Bare windows stop at the header's count: bytes past the last record are slack.
    const max = framing === "bare" ? Math.min(Math.max(1, window), header.count - records) : Math.max(1, window);
    const batch = decodeWindow(block, at, framing, header.base, max);
    const stop = batch.stop;
    if (stop.reason !== "end" && stop.reason !== "limit") {
      batch.release();
      return `record ${records + batch.count} is damaged (${stop.reason}) at offset ${header.headerBytes + at + stop.offset}`;
    }
    records += batch.count;
    const last = stop.reason === "end" || (framing === "bare" && records === header.count);
    if (last ? records !== header.count || (framing === "bare" && at + stop.offset !== end) : records > header.count) {
      batch.release();
      return `header says ${header.count} records, body holds ${last ? records : "more"}`;
    }
    marks.push(...seqMarksOf(batch));
    let expected: ReplayExpectation | undefined;
    if (at === 0 && !last) expected = { ...expectation(batch, size), records: header.count };
    session.apply(batch, expected);
    if (last) return { header, path, marks };
    at += stop.offset;
  }
}

/** Kind-4 records of a batch, as records to write again. (A loop, not forEachRecord: it runs over every record a snapshot replays.) */
export function seqMarksOf(b: DecodedBatch): RecordInput[] {
  const out: RecordInput[] = [];
  const d = b.words;
  for (let i = 0, at = 0; i < b.count; i++, at += DESCRIPTOR_WORDS) {
    if (d[at + D_KIND] === RecordKind.SeqMark) out.push(seqMarkRecord(b.seq(i), b.timestamp(i), b.node(i)));
  }
  return out;
}

/** The primary generation if `read` accepts it, else `.bak`, with the warnings recovery gives. */
function loadNewest<T>(f: DataFiles, read: (path: string) => T | null | string): { value: T | null; warnings: string[] } {
  const warnings: string[] = [];
  const primary = read(f.snapshot);
  if (primary !== null && typeof primary !== "string") return { value: primary, warnings };
  const backup = read(f.snapshotBak);
  const primaryState = primary === null ? "missing" : `damaged (${primary})`;
  if (backup !== null && typeof backup !== "string") {
    warnings.push(
      `${f.snapshot} is ${primaryState}; loaded the previous generation ${f.snapshotBak} ` +
        `(open warns separately if writes that only the newer snapshot held are missing).`,
    );
    return { value: backup, warnings };
  }
  if (primary !== null || backup !== null) {
    const backupState = backup === null ? "missing" : `damaged (${backup})`;
    warnings.push(
      `no readable snapshot: ${f.snapshot} is ${primaryState}, ${f.snapshotBak} is ${backupState}; ` +
        `starting from the WAL alone. Re-sync from peers to restore the rest.`,
    );
  }
  return { value: null, warnings };
}

/**
 * Installs `image` as the snapshot: write `.snapshot.tmp`, fsync it, make the current
 * snapshot the `.bak`, rename the tmp into place, fsync the directory. Asynchronous:
 * the event loop keeps serving appends while the (possibly large) file is written.
 *
 * The current snapshot becomes `.bak` by a hard link, so a crash at any point leaves a
 * `.snapshot` in place (old or new); only where links are unsupported does it fall back
 * to a rename, whose crash window leaves only `.bak` (which open then loads).
 * `durable` false (fsync policy "never") skips the fsyncs, keeping only the ordering.
 */
export async function writeSnapshotFile(f: DataFiles, image: Uint8Array, faults?: FaultHook, durable = true): Promise<void> {
  const fh = await fs.promises.open(f.snapshotTmp, "w");
  try {
    faults?.("write", f.snapshotTmp);
    let done = 0;
    while (done < image.length) {
      const { bytesWritten } = await fh.write(image, done, image.length - done, done);
      if (bytesWritten <= 0) throw new Error(`write returned ${bytesWritten}`);
      done += bytesWritten;
    }
    if (durable) {
      faults?.("fsync", f.snapshotTmp);
      await fh.sync();
    }
  } catch (e) {
    await fh.close().catch(() => {});
    removeIfExists(f.snapshotTmp);
    throw new WaveKVError("IO", `writing ${f.snapshotTmp} failed (${(e as Error).message}); the previous snapshot is kept`, { cause: e });
  }
  await fh.close();
  try {
    if (fs.existsSync(f.snapshot)) {
      removeIfExists(f.snapshotBak);
      try {
        fs.linkSync(f.snapshot, f.snapshotBak);
      } catch {
        fs.renameSync(f.snapshot, f.snapshotBak);
      }
    }
    fs.renameSync(f.snapshotTmp, f.snapshot);
    if (durable) {
      faults?.("fsync", dirname(f.snapshot));
      fsyncDir(dirname(f.snapshot));
    }
  } catch (e) {
    throw new WaveKVError("IO", `installing ${f.snapshot} failed (${(e as Error).message})`, { cause: e });
  }
}
