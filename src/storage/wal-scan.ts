/**
 * Reading a WAL back (docs/FORMAT.md §3): where its good records end, what stopped them,
 * and what a damaged tail is known to be. The recovery rules that act on the verdict
 * live in src/storage/storage.ts; the writer in src/storage/wal-writer.ts.
 *
 *   const scan = scanWal(bytes);                                   // pure: header + records + damage
 *   const found = scanWalFile(fd, size, header, start, session);   // a long log, window by window
 */
import { decodeRecords, decodeRecordsReference, findNextValidFrame } from "../codec/records.js";
import type { DecodedBatch, StopReason } from "../core/record.js";
import { WaveKVError } from "../core/errors.js";
import { readExactly, readFully } from "./datadir.js";
import { WAL_HEADER_BYTES, isZeroFrom, parseWalHeader, walVersion, type WalHeader } from "./wal-file.js";
import { REPLAY_WINDOW_RECORDS, applyLogWindows, type ReplaySession } from "./replay.js";
import { cutAtBatch, cutStop, type BatchCut } from "./wal-batches.js";

export interface WalDamage {
  /** Absolute offset of the first bad record. */
  offset: number;
  reason: StopReason;
  /** Absolute offset of the next valid frame after it, or -1: -1 means a tail to truncate. */
  nextValid: number;
}

export interface WalScan {
  header: WalHeader;
  fileSize: number;
  /** Absolute offset the records were decoded from. */
  start: number;
  /** Records from `start`; offsets in the batch are relative to `start`. */
  batch: DecodedBatch;
  /** Absolute end of the last good record (= fileSize when clean). */
  validEnd: number;
  damage: WalDamage | null;
  /** The header's format version (docs/FORMAT.md §3): 2 may be preallocated. */
  version: number;
}

/** Logs up to this many bytes after the header are decoded in JS (see scanWal). */
const SMALL_SCAN_BYTES = 64 << 10;

/**
 * Decodes a whole WAL image from `startAt` (clamped to [header, size]). Never throws on
 * bad record bytes: a stop is reported in `damage`, with the next valid frame after it
 * so the caller can tell a torn tail (nothing valid follows) from damage in the middle.
 * Returns a string when the header itself is unusable. Cost: one pass + CRC per record.
 */
export function scanWal(bytes: Uint8Array, startAt = WAL_HEADER_BYTES): WalScan | string {
  const header = parseWalHeader(bytes);
  if (typeof header === "string") return header;
  const start = Math.min(Math.max(startAt, WAL_HEADER_BYTES), bytes.length);
  const region = bytes.subarray(start);
  // A short log (the usual tail after a snapshot) is decoded by the TS twin: a kernel
  // decode would overwrite the snapshot batch decoded just before, which is still
  // resident in linear memory, and its merge would copy it back (~180 MB at 1M keys).
  // (A preallocated zero tail does not count: the JS decoder stops at its first header.)
  let content = region.length;
  while (content > 0 && region[content - 1] === 0) content--;
  const decode = content <= SMALL_SCAN_BYTES ? decodeRecordsReference : decodeRecords;
  const cut = cutAtBatch(decode(region, "framed", header.base), (max) => decode(region, "framed", header.base, max));
  const version = walVersion(bytes);
  return { header, fileSize: bytes.length, start, batch: cut.batch, version, ...batchVerdict(bytes.length, start, cut.decoderStop, cutStop(cut), cut.kind, region, version >= 2) };
}

/** What `scanWalFile` found; the records went to its replay session. */
export type WalFileScan = Omit<WalScan, "batch">;

/**
 * `scanWal` of the open file `fd` (`size` bytes, `header` already read from it), handing
 * the records to `session` in log order instead of returning them. A long log is read
 * straight into the decoder's input in linear memory (`ReplaySession.withBlock`: no JS
 * copy of it; on the machines measured a fresh
 * 134 MB JS buffer cost more to fault in than the whole decode, docs/design/0005-recovery-reads-into-linear-memory.md)
 * and decoded REPLAY_WINDOW_RECORDS at a time, each window handed over before the next
 * is decoded, so descriptors take ~3 MB instead of 48 B a record. Values the consumer
 * keeps are read from where they were read into (DecodedBatch.retain()).
 *
 * The damage verdict comes after every good record was handed over: when it reports
 * damage with valid frames after it, open fails with CORRUPT_WAL and the session
 * abandons what its sink took. Batches are `bytes`-relative to their window;
 * `validEnd`/`damage` are absolute file offsets, as in scanWal.
 */
export function scanWalFile(fd: number, size: number, header: WalHeader, startAt: number, session: ReplaySession, windowRecords = REPLAY_WINDOW_RECORDS): WalFileScan | string {
  const start = Math.min(Math.max(startAt, WAL_HEADER_BYTES), size);
  // A preallocated log's zero tail does not make it long: what decides is where its
  // non-zero bytes end (a log of a few records in a 4 MiB file is read whole into JS,
  // ~1 ms, rather than through linear memory).
  if (contentEnd(fd, size, start) - start <= SMALL_SCAN_BYTES) {
    const scan = scanWal(readFully(fd, size, 0), startAt);
    if (typeof scan === "string") return scan;
    const { batch, ...rest } = scan;
    session.apply(batch);
    return rest;
  }
  const version = walVersion(readFully(fd, 8, 0));
  return session.withBlock(size - start, (dst) => readExactly(fd, dst, start), (block) => {
    const { at, stop, decoderStop, cut } = applyLogWindows(session, block, header.base, windowRecords, size - start);
    return { header, fileSize: size, start, version, ...batchVerdict(size, start + at, decoderStop, stop, cut, block.view().subarray(at), version >= 2) };
  });
}

/** Where the file's last non-zero byte after `start` ends (`start` if none): read backwards, 64 KiB at a time. */
function contentEnd(fd: number, size: number, start: number): number {
  const CHUNK = 64 << 10;
  for (let end = size; end > start;) {
    const from = Math.max(start, end - CHUNK);
    const chunk = readFully(fd, end - from, from);
    for (let i = chunk.length - 1; i >= 0; i--) if (chunk[i] !== 0) return from + i + 1;
    if (chunk.length < end - from) return end;
    end = from;
  }
  return start;
}

/**
 * `verdict` for records cut back to a whole batch (src/storage/wal-batches.ts) at `stop`:
 * a batch the log ends inside is a torn tail from its head (what follows the head is the
 * batch's own records, not valid records after damage), unless the records themselves
 * stopped at damage followed by valid records (CORRUPT_WAL, as without batches). A
 * malformed batch is judged like a malformed record at its head.
 */
function batchVerdict(fileSize: number, start: number, decoderStop: DecodedBatch["stop"], stop: DecodedBatch["stop"], cut: BatchCut["kind"], bytes: Uint8Array, zeroEnd: boolean): { validEnd: number; damage: WalDamage | null } {
  if (cut !== "incomplete") return verdict(fileSize, start, stop, bytes, zeroEnd);
  const d = verdict(fileSize, start, decoderStop, bytes, zeroEnd).damage;
  const after = d !== null && d.nextValid >= 0;
  // Valid records after damage: CORRUPT_WAL names the damage itself. A version 2 zero
  // run before valid records (unsynced writes) is kept and truncated from the head on.
  if (after && !(zeroEnd && d.reason === "zero")) return { validEnd: d.offset, damage: d };
  const at = start + stop.offset;
  return { validEnd: at, damage: { offset: at, reason: after ? d.reason : stop.reason, nextValid: after ? d.nextValid : -1 } };
}

/**
 * Where the good records end and what stopped them: `bytes` is the log from `start`
 * (absolute), decoding of it stopped at `stop` (relative). `zeroEnd` (WAL version 2): a
 * zero frame header followed by nothing but zeros is the clean end of a preallocated
 * log, not damage; a valid frame after zeros is still damage in the middle.
 */
function verdict(fileSize: number, start: number, stop: DecodedBatch["stop"], bytes: Uint8Array, zeroEnd: boolean): { validEnd: number; damage: WalDamage | null } {
  if (stop.reason === "end") return { validEnd: fileSize, damage: null };
  const validEnd = start + stop.offset;
  if (zeroEnd && stop.reason === "zero" && isZeroFrom(bytes, stop.offset)) return { validEnd, damage: null };
  // Search from the byte after the bad record's start: any valid frame beyond it means
  // the bad record is not a torn tail.
  const next = findNextValidFrame(bytes, stop.offset + 1);
  return { validEnd, damage: { offset: validEnd, reason: stop.reason, nextValid: next < 0 ? -1 : start + next } };
}

/**
 * What a damaged tail is known to be. With no valid record after it: "torn", the bytes
 * end inside a record or are zero-filled — a write cut short by a crash, whose fsync
 * never completed, so it was never acknowledged (fsync "always"); "damaged", a record of
 * complete length that fails its CRC (or parses wrong): damaged after it was written, or
 * written whole and not synced before a crash — it may have been acknowledged, so its
 * bytes are kept (open copies them to `<wal>.damaged-<offset>`) and the warning says so.
 * "unsynced" (WAL version 2 only): a zero frame header with valid records after it. In a
 * preallocated log that is two writes whose pages reached the disk out of order in a
 * machine crash: the one at the zeros never did, so no fsync covered it or anything after
 * it, and nothing from there on was acknowledged under fsync "always" (under an fsync
 * interval, writes of the last interval may be among them, as a machine crash may lose
 * them anyway). Those bytes are kept like a damaged record's and not replayed.
 */
export interface TailDamage {
  kind: "torn" | "damaged" | "unsynced";
  /** Absolute offset of the first bad byte. */
  offset: number;
  /** Bytes from `offset` to the end of the file. */
  bytes: number;
  /** "damaged" only: length of the complete frame at `offset` (8 + bodyLen). */
  recordBytes: number;
}

/**
 * The damaged tail of a scan of a version-`version` log (null if none, or if valid
 * records follow anything but a version 2 zero run: CORRUPT_WAL); the file holds
 * `tailBytes` bytes from the damage on, `head` being their first (at least 4, for a
 * "damaged" record's length): the verdict needs no more of them.
 */
export function tailDamage(d: WalDamage | null, tailBytes: number, head: Uint8Array, version: number): TailDamage | null {
  if (d === null) return null;
  if (d.nextValid >= 0) return d.reason === "zero" && version >= 2 ? { kind: "unsynced", offset: d.offset, bytes: tailBytes, recordBytes: 0 } : null;
  if (d.reason === "torn" || d.reason === "zero") return { kind: "torn", offset: d.offset, bytes: tailBytes, recordBytes: 0 };
  // crc/malformed: the decoder checked that bodyLen fits in the file (else "torn").
  const bodyLen = new DataView(head.buffer, head.byteOffset, 4).getUint32(0, true);
  return { kind: "damaged", offset: d.offset, bytes: tailBytes, recordBytes: 8 + bodyLen };
}

/** The warning (or inspect line) for a damaged tail: honest about what may have been acknowledged. */
export function describeTail(path: string, t: TailDamage, reason: string, copy: string | null): string {
  if (t.kind === "unsynced") {
    return `${path}: UNSYNCED WRITES NOT REPLAYED at offset ${t.offset}: zeros there, valid records after them — two writes reached the disk out of order ` +
      `in a machine crash (the log is preallocated). No fsync covered them: under fsync "always" none was acknowledged; under an fsync interval, ` +
      `writes of the last interval may be among them. ` + (copy ? `Their ${t.bytes} byte(s) are kept in ${copy}` : `Open keeps their ${t.bytes} byte(s) in ${path}.damaged-${t.offset}`);
  }
  if (t.kind === "torn") {
    const how = reason === "zero" ? "are zero-filled (the file system extended the file in a crash)" : "end inside a record";
    return `${path}: ${t.bytes} byte(s) of ${reason} tail at offset ${t.offset} ${how}: a write cut short by a crash, never acknowledged (its fsync never completed)`;
  }
  const rest = t.bytes - t.recordBytes;
  return `${path}: DAMAGED RECORD at offset ${t.offset}: 1 record of ${t.recordBytes} bytes (complete length, ${reason === "crc" ? "CRC mismatch" : "body does not parse"})` +
    `${rest > 0 ? ` and ${rest} byte(s) after it that hold no valid record` : ""}. It was damaged after it was written (e.g. a bit flip), ` +
    `or written whole but not synced before a crash: it MAY HAVE BEEN ACKNOWLEDGED, and its write is lost locally unless a peer holds it. ` +
    (copy ? `Its ${t.bytes} byte(s) are kept in ${copy}` : `Open keeps its ${t.bytes} byte(s) in ${path}.damaged-${t.offset}`);
}

export function corruptWal(path: string, offset: number, what: string): WaveKVError {
  return new WaveKVError(
    "CORRUPT_WAL",
    `${path}: ${what} at offset ${offset}, followed by valid records; refusing to drop them silently. ` +
      `Run \`wavekv inspect\` on the directory; restore the file, or move it aside and open with acceptDataLoss (Node.open option storage: { acceptDataLoss: true }, CLI --accept-data-loss) to start from the snapshot and re-sync from peers.`,
  );
}
