/**
 * The write-ahead log file `node_<id>.wal` (docs/FORMAT.md §3): a 32-byte header, then
 * framed records (§2). This module owns the bytes and the fsync schedule; the recovery
 * rules that combine it with a snapshot live in src/storage/storage.ts.
 *
 *   const scan = scanWal(bytes, path);                  // pure: header + records + damage
 *   const wal = WalWriter.open(path, scan.header, end, { fsync: "always" });
 *   await wal.append(records);                         // written now, durable on resolve
 *   await wal.append(records, { defer: true });        // may join the next group write
 *   wal.replace(nextHeader, headRecords, fromOffset);  // after a snapshot (synchronous)
 *   await wal.close();
 *
 * Group commit ("always"): at most one fsync is in flight, and an append resolves only
 * after an fsync that started after its bytes were written. `append` writes before it
 * returns (call order = log order). `append(records, { defer: true })` (local writes)
 * may instead queue while an fsync is in flight: when it completes, every queued append
 * is encoded with one kernel call and written with one write, and the next fsync starts
 * at once. If the fsync just released more writers than are queued, the writer waits
 * for them instead (until as many appends as were released and queued have arrived, or
 * the next macrotask): closed-loop writers then stay one batch of N per fsync rather than
 * splitting into cohorts. `fsyncCount` counts fsyncs so tests pin the batching.
 */
import * as fs from "node:fs";
import { dirname } from "node:path";
import { crc32 } from "../codec/crc.js";
import { decodeRecords, decodeRecordsReference, decodeWindow, encodeRecords, readIntoKernel, findNextValidFrame } from "../codec/records.js";
import { type DecodedBatch, type RecordInput, type StopReason } from "../core/record.js";
import { WaveKVError } from "../core/errors.js";
import type { FsyncPolicy } from "../core/types.js";
import { fsyncDir, readExactly, readFully, removeIfExists, writeFully } from "./datadir.js";
import { DESCRIPTOR_WORDS } from "../core/record.js";

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

/**
 * A fault hook at the process boundary, for tests: called before each write and fsync
 * this layer issues, and before open creates the directory lock ("open"); whatever it
 * throws (e.g. an Error with `code: "EROFS"`, "ENOSPC", "EIO") is handled exactly as the
 * OS error would be. A WAL append's write honours `bytesWritten: n` on the thrown error:
 * the first n bytes reach the file before it fails (a short write, as ENOSPC leaves).
 */
export type FaultHook = (op: "open" | "write" | "fsync", path: string) => void;

// ---------------------------------------------------------------------------------
// header

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

// ---------------------------------------------------------------------------------
// scan (pure)

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
}

/**
 * Under fsync policies that acknowledge a write when it is written ("never", intervals),
 * the log is checked for having been deleted at most this often (ms): a write acknowledged
 * within this window after `rm -rf` of the data directory can still vanish, as it can
 * within the interval on a machine crash.
 */
export const UNLINK_CHECK_MS = 10;

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
  const batch = region.length <= SMALL_SCAN_BYTES ? decodeRecordsReference(region, "framed", header.base) : decodeRecords(region, "framed", header.base);
  return { header, fileSize: bytes.length, start, batch, ...verdict(bytes.length, start, batch.stop, batch.bytes) };
}

/** How many records (and key bytes) a replay expects in all: a hint to grow the index once. */
export interface ReplayExpectation { records: number; keyBytes: number }

/** What a log of `total` bytes holds, judged by its first window, with 5 % to spare. */
export function expectation(first: DecodedBatch, total: number): ReplayExpectation {
  const span = first.stop.offset;
  const d = first.words;
  let keyBytes = 0;
  for (let i = 0, at = 7; i < first.count; i++, at += DESCRIPTOR_WORDS) keyBytes += d[at]!;
  const scale = (total / span) * 1.05;
  return { records: Math.ceil(first.count * scale), keyBytes: Math.ceil(keyBytes * scale) };
}

/** Records per window when a long log is replayed window by window (descriptors: 48 B each). */
export const REPLAY_WINDOW_RECORDS = 1 << 16;

/** What `scanWalFile` found; the records went to its `onBatch`. */
export type WalFileScan = Omit<WalScan, "batch">;

/**
 * `scanWal` of the open file `fd` (`size` bytes, `header` already read from it), handing
 * the records to `onBatch` in log order instead of returning them. A long log is read straight into the decoder's input
 * in linear memory (`readIntoKernel`: no JS copy of it; on the machines measured a fresh
 * 134 MB JS buffer cost more to fault in than the whole decode, docs/design/0005-recovery-reads-into-linear-memory.md)
 * and decoded REPLAY_WINDOW_RECORDS at a time, each window handed over before the next
 * is decoded, so descriptors take ~3 MB instead of 48 B a record. Values the consumer
 * keeps are read from where they were read into (DecodedBatch.keepBytes).
 *
 * The damage verdict comes after every good record was handed over: a consumer that
 * applies them must discard its state when the result reports damage with valid frames
 * after it (open fails with CORRUPT_WAL then). Batches are `bytes`-relative to their
 * window; `validEnd`/`damage` are absolute file offsets, as in scanWal.
 */
export function scanWalFile(fd: number, size: number, header: WalHeader, startAt: number, onBatch: (batch: DecodedBatch, expected?: ReplayExpectation) => void, windowRecords = REPLAY_WINDOW_RECORDS): WalFileScan | string {
  const start = Math.min(Math.max(startAt, WAL_HEADER_BYTES), size);
  if (size - start <= SMALL_SCAN_BYTES) {
    const scan = scanWal(readFully(fd, size, 0), startAt);
    if (typeof scan === "string") return scan;
    const { batch, ...rest } = scan;
    onBatch(batch);
    return rest;
  }
  const holder = {};
  const block = readIntoKernel(size - start, (dst) => readExactly(fd, dst, start), holder);
  try {
    let at = 0;
    for (;;) {
      const batch = decodeWindow(block, at, "framed", header.base, Math.max(1, windowRecords));
      const stop = batch.stop;
      // With the first of several windows: what the whole log likely holds, extrapolated
      // from it, so the consumer can grow its index once (see ReplicaState.reserve).
      onBatch(batch, at === 0 && stop.reason === "limit" ? expectation(batch, size - start) : undefined);
      if (stop.reason === "limit") {
        at += stop.offset;
        continue;
      }
      return { header, fileSize: size, start, ...verdict(size, start + at, stop, block.view().subarray(at)) };
    }
  } finally {
    block.drop(holder);
  }
}

/**
 * Where the good records end and what stopped them: `bytes` is the log from `start`
 * (absolute), decoding of it stopped at `stop` (relative).
 */
function verdict(fileSize: number, start: number, stop: DecodedBatch["stop"], bytes: Uint8Array): { validEnd: number; damage: WalDamage | null } {
  if (stop.reason === "end") return { validEnd: fileSize, damage: null };
  const validEnd = start + stop.offset;
  // Search from the byte after the bad record's start: any valid frame beyond it means
  // the bad record is not a torn tail.
  const next = findNextValidFrame(bytes, stop.offset + 1);
  return { validEnd, damage: { offset: validEnd, reason: stop.reason, nextValid: next < 0 ? -1 : start + next } };
}

/**
 * What a damaged tail (no valid record after it) is known to be. "torn": the bytes end
 * inside a record, or are zero-filled — a write cut short by a crash, whose fsync never
 * completed, so it was never acknowledged (fsync "always"). "damaged": a record of
 * complete length that fails its CRC (or parses wrong): damaged after it was written, or
 * written whole and not synced before a crash — it may have been acknowledged, so its
 * bytes are kept (open copies them to `<wal>.damaged-<offset>`) and the warning says so.
 */
export interface TailDamage {
  kind: "torn" | "damaged";
  /** Absolute offset of the first bad byte. */
  offset: number;
  /** Bytes from `offset` to the end of the file. */
  bytes: number;
  /** "damaged" only: length of the complete frame at `offset` (8 + bodyLen). */
  recordBytes: number;
}

/** The damaged tail of a scan (null if none, or if valid records follow: CORRUPT_WAL); `tail` is the file from the damage on. */
export function tailDamage(d: WalDamage | null, tail: Uint8Array): TailDamage | null {
  if (d === null || d.nextValid >= 0) return null;
  if (d.reason === "torn" || d.reason === "zero") return { kind: "torn", offset: d.offset, bytes: tail.length, recordBytes: 0 };
  // crc/malformed: the decoder checked that bodyLen fits in the file (else "torn").
  const bodyLen = new DataView(tail.buffer, tail.byteOffset, 4).getUint32(0, true);
  return { kind: "damaged", offset: d.offset, bytes: tail.length, recordBytes: 8 + bodyLen };
}

/** The warning (or inspect line) for a damaged tail: honest about what may have been acknowledged. */
export function describeTail(path: string, t: TailDamage, reason: string, copy: string | null): string {
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

// ---------------------------------------------------------------------------------
// writer

interface Waiter {
  target: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** An append accepted but not yet written (`defer`), or being written now. */
interface Pending {
  records: readonly RecordInput[];
  resolve: () => void;
  reject: (e: unknown) => void;
}

export interface WalWriterOptions {
  fsync: FsyncPolicy;
  faults?: FaultHook;
}

export interface AppendOptions {
  /**
   * Let the write wait for the next group write (fsync "always" only; other policies
   * write at once). While an fsync is in flight, or while the writer gathers the appends
   * of writers an fsync just released, the records are queued in call order instead of
   * written; they go out in one write with everything queued around them. Otherwise they
   * are written before `append` returns, as without the option.
   *
   * The difference for the caller: a deferred append's write may fail after `append`
   * returned, so `failure` right after the call says nothing about it; the promise
   * rejects IO (and the log latches) then. A caller that must know synchronously whether
   * its records reached the file (a merged remote batch, rolled back on failure) must not
   * defer.
   */
  defer?: boolean;
}

export class WalWriter {
  readonly path: string;
  #header: WalHeader;
  #fd: number;
  /** Bytes in the file; the next append goes here. */
  #written: number;
  /** Bytes known to be on disk. */
  #synced: number;
  #waiters: Waiter[] = [];
  /** Deferred appends not yet written, in call order. */
  #queue: Pending[] = [];
  #syncing = false;
  /**
   * An fsync just released more writers than were queued: appends queue (and no fsync
   * starts) until `#expect` appends have arrived or the next macrotask (`#gatherId`).
   */
  #gathering = false;
  #expect = 0;
  #arrived = 0;
  #gatherId = 0;
  /** Bumped by `replace`: an fsync that completes for an older file changes nothing. */
  #epoch = 0;
  /** fds of replaced files, closed once the fsync running on them returns. */
  #retired: number[] = [];
  #timer: ReturnType<typeof setTimeout> | null = null;
  #failure: WaveKVError | null = null;
  /** An fsync failed: no later fsync may be trusted, so none is issued. */
  #fsyncFailed = false;
  #closed = false;
  #fsyncs = 0;
  /** The write path may check for an unlinked log again (see #checkLinked; not "always"). */
  #checkDue = true;
  readonly #policy: FsyncPolicy;
  readonly #faults: FaultHook | undefined;

  private constructor(path: string, fd: number, header: WalHeader, size: number, opts: WalWriterOptions) {
    this.path = path;
    this.#fd = fd;
    this.#header = header;
    this.#written = size;
    this.#synced = size;
    this.#policy = opts.fsync;
    this.#faults = opts.faults;
  }

  /** Opens an existing, already validated log for appending at `size` (the valid end). */
  static open(path: string, header: WalHeader, size: number, opts: WalWriterOptions): WalWriter {
    return new WalWriter(path, fs.openSync(path, "r+"), header, size, opts);
  }

  /** Creates (or replaces) the log with a bare header, durably (tmp + fsync + rename + fsync dir). */
  static create(path: string, header: WalHeader, opts: WalWriterOptions): WalWriter {
    writeWalFile(path, encodeWalHeader(header), opts.fsync !== "never");
    return WalWriter.open(path, header, WAL_HEADER_BYTES, opts);
  }

  get header(): Readonly<WalHeader> { return this.#header; }
  /** Bytes in the file (deferred appends still queued are not counted until written). */
  get size(): number { return this.#written; }
  /** Deferred appends accepted and not yet written. */
  get queued(): number { return this.#queue.length; }
  get fsyncCount(): number { return this.#fsyncs; }
  /** Group-commit fsync latencies, for /metrics and the console. */
  readonly fsyncLatency = new LatencyHistogram();
  get failure(): WaveKVError | null { return this.#failure; }

  /**
   * Encodes and writes `records` in one write before returning (together with any
   * deferred appends queued before it, which go first); the promise settles per the fsync
   * policy. Rejects IO (and latches) if the write fails. With `defer` (see
   * `AppendOptions`) the records may be queued for the next group write instead.
   */
  append(records: readonly RecordInput[], opts?: AppendOptions): Promise<void> {
    if (this.#closed) return Promise.reject(new WaveKVError("CLOSED", `${this.path} is closed; reopen the node`));
    if (this.#failure) return Promise.reject(this.#failure);
    if (records.length === 0) return Promise.resolve();
    if (this.#gathering) this.#arrived++;
    // Queued only while something will write the queue: the fsync in flight completing,
    // or the gather ending. Otherwise written now (with anything queued, first).
    const queue = opts?.defer === true && this.#policy === "always" && (this.#syncing || this.#gathering);
    const done = new Promise<void>((resolve, reject) => { this.#queue.push({ records, resolve, reject }); });
    if (!queue) this.flush();
    // Every writer the last fsync released is back: write their batch and fsync now.
    if (this.#gathering && this.#arrived >= this.#expect) this.#release();
    return done;
  }

  /**
   * Writes every queued deferred append now (one encode, one write); their promises then
   * wait for the next fsync. Snapshots call it so that the WAL offset they record covers
   * every append made so far. A failed write latches (see `failure`).
   */
  flush(): void {
    this.#flush();
    if (this.#policy === "always") this.#kick();
  }

  /** Resolves once every append so far is on disk (shares an fsync with concurrent callers). */
  sync(): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    this.#flush();
    if (this.#failure) return Promise.reject(this.#failure);
    const target = this.#written;
    if (this.#synced >= target) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({ target, resolve, reject });
      this.#kick();
    });
  }

  /**
   * Writes the queue: one `encodeRecords` over every queued append's records, one write.
   * A record the format cannot carry rejects its own append (INVALID_ARGUMENT, nothing
   * latched) and the rest are written; a failed write rejects every append in it and
   * latches. Settles non-"always" appends at once; "always" ones become fsync waiters.
   */
  #flush(): void {
    if (this.#queue.length === 0) return;
    let batch = this.#queue;
    this.#queue = [];
    let bytes: Uint8Array;
    try {
      bytes = encodeRecords(batch.length === 1 ? batch[0]!.records : batch.flatMap((p) => p.records), "framed", this.#header.base);
    } catch (e) {
      if (batch.length === 1) {
        batch[0]!.reject(invalidRecords(e));
        return;
      }
      // Rare: find the append(s) at fault, one encode each, and write the others.
      const parts: Uint8Array[] = [];
      const ok: Pending[] = [];
      for (const p of batch) {
        try {
          parts.push(encodeRecords(p.records, "framed", this.#header.base));
          ok.push(p);
        } catch (err) {
          p.reject(invalidRecords(err));
        }
      }
      if (ok.length === 0) return;
      batch = ok;
      bytes = concatBytes(parts);
    }
    try {
      this.#faults?.("write", this.path);
      // Policies that acknowledge on write ("never", intervals) check for an unlinked log
      // here, at most every UNLINK_CHECK_MS; "always" checks after each fsync instead.
      if (this.#policy !== "always" && this.#checkDue) {
        // A flag re-armed by a timer: a put pays one boolean test, not a clock read.
        this.#checkDue = false;
        this.#checkLinked();
        setTimeout(() => { this.#checkDue = true; }, UNLINK_CHECK_MS).unref?.();
      }
      writeFully(this.#fd, bytes, this.#written);
    } catch (e) {
      const short = (e as { bytesWritten?: unknown } | null)?.bytesWritten;
      if (typeof short === "number") {
        try { writeFully(this.#fd, bytes.subarray(0, short), this.#written); } catch { /* the seam's short write: best effort */ }
      }
      // Part of the batch may be in the file: a torn tail that the next open truncates.
      // Nothing may be appended after it, so the log is latched.
      const err = this.#fail("write", e);
      for (const p of batch) p.reject(err);
      return;
    }
    this.#written += bytes.length;
    const policy = this.#policy;
    if (policy === "always") {
      const target = this.#written;
      for (const p of batch) this.#waiters.push({ target, resolve: p.resolve, reject: p.reject });
      return;
    }
    for (const p of batch) p.resolve();
    if (policy !== "never" && this.#timer === null) {
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.sync().catch(() => { /* latched; the next append reports it */ });
      }, policy.intervalMs);
      this.#timer.unref?.();
    }
  }

  #kick(): void {
    // After a failed write, appends written before it still get their fsync.
    if (this.#syncing || this.#gathering || this.#waiters.length === 0 || this.#fsyncFailed) return;
    this.#syncing = true;
    const fd = this.#fd;
    const epoch = this.#epoch;
    const covers = this.#written;
    const started = performance.now();
    const done = (err: unknown) => {
      this.#syncing = false;
      this.#fsyncs++;
      this.fsyncLatency.observe(performance.now() - started);
      this.#closeRetired();
      if (epoch !== this.#epoch) {
        // The file was replaced meanwhile; `replace` settled everyone it covered.
        this.#next(0);
        return;
      }
      if (err) {
        this.#fail("fsync", err);
        return;
      }
      try {
        this.#checkLinked();
      } catch (e) {
        // Synced into a file nobody can open again: nothing it covers may be acknowledged.
        this.#fail("write", e, true);
        return;
      }
      if (covers > this.#synced) this.#synced = covers;
      this.#next(this.#settle());
    };
    try {
      this.#faults?.("fsync", this.path);
    } catch (e) {
      queueMicrotask(() => done(e));
      return;
    }
    // fdatasync suffices for appends: it flushes the file size, which reading the data needs.
    fs.fdatasync(fd, done);
  }

  /**
   * After an fsync: what arrived during it is queued. If the fsync released no more
   * writers than that, write the queue and start the next fsync at once (the released
   * writers' next appends queue behind it). If it released more, wait for them: their
   * continuations run before the next macrotask, and gathering them keeps N steady
   * writers in one batch of N per fsync instead of alternating cohorts. The wait ends as
   * soon as as many appends as were released and queued have arrived, else at the next
   * macrotask. (Measured, 64 closed-loop writers: always starting at once settles into
   * alternating cohorts of 1 and 63 — 32 puts per fsync, twice the fsyncs, and fewer
   * puts/s than one batch of 64 on this VM's disk.)
   */
  #next(released: number): void {
    const queued = this.#queue.length;
    if (released > queued) {
      this.#gathering = true;
      this.#expect = released + queued;
      this.#arrived = queued;
      const id = ++this.#gatherId;
      setImmediate(() => { if (id === this.#gatherId) this.#release(); });
      return;
    }
    this.#flush();
    this.#kick();
  }

  #release(): void {
    if (!this.#gathering) return;
    this.#gathering = false;
    this.#gatherId++;
    this.#flush();
    this.#kick();
  }

  /** Resolves every waiter the synced offset covers; returns how many. */
  #settle(): number {
    const keep: Waiter[] = [];
    let n = 0;
    for (const w of this.#waiters) {
      if (w.target <= this.#synced) {
        w.resolve();
        n++;
      } else keep.push(w);
    }
    this.#waiters = keep;
    return n;
  }

  /**
   * Throws if the log file has been unlinked (nlink 0: the file or the whole data
   * directory was deleted under the running node): writes to it would succeed and vanish
   * at close. One fstat: 4–12 µs measured here (Node 20, Bun 1.4), against milliseconds
   * for the fsync it follows — once per group commit under "always", at most every
   * UNLINK_CHECK_MS under the other policies, so never per put.
   */
  #checkLinked(): void {
    if (fs.fstatSync(this.#fd).nlink > 0) return;
    throw new Error(`it was deleted while the node was running: is the data directory ${dirname(this.path)} gone? Writes to it would vanish`);
  }

  /**
   * Latches the log. A failed fsync (or `dropWaiters`: the file is gone) also fails every
   * append written and waiting for its fsync; a failed write keeps them (their bytes
   * precede the failure and still get their fsync).
   */
  #fail(op: string, cause: unknown, dropWaiters = op === "fsync"): WaveKVError {
    if (!this.#failure) {
      const msg = cause instanceof Error ? cause.message : String(cause);
      this.#failure = new WaveKVError(
        "IO",
        `${op} of ${this.path} failed (${msg}); this write and every later one are refused until the node is reopened`,
        { cause },
      );
    }
    // Deferred appends not yet written come after the failure in log order: refused.
    for (const p of this.#queue.splice(0)) p.reject(this.#failure);
    // After a failed fsync the kernel may have dropped the dirty pages: nothing waiting
    // can be called durable, and a later fsync that "succeeds" proves nothing.
    if (dropWaiters) {
      this.#fsyncFailed = true;
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const w of waiters) w.reject(this.#failure);
    }
    return this.#failure;
  }

  #closeRetired(): void {
    if (this.#syncing) return;
    for (const fd of this.#retired) {
      try { fs.closeSync(fd); } catch { /* already gone */ }
    }
    this.#retired = [];
  }

  /**
   * Replaces the log with `next` header + `head` records + the bytes this log holds
   * from `from` to its end (records appended after a snapshot captured `from`).
   * Deferred appends still queued are first written to this log (one write), so they
   * are part of that tail: nothing accepted is lost, and a snapshot that captured `from`
   * before they were written does not cover them. A failure of that write latches
   * (as any failed append write does) and is thrown.
   * Synchronous on purpose: no append can slip between copying the tail and switching
   * files. Cost: writing the tail + two fsyncs (file, directory) on the event loop.
   * The tail is copied raw, so its records keep their base: `next.base` must equal the
   * current base unless the tail is empty.
   *
   * Failure before the rename leaves this log authoritative and untouched (throws IO,
   * no latch). Failure after it latches: appends could no longer be proven durable.
   */
  replace(next: WalHeader, head: readonly RecordInput[], from: number): void {
    if (this.#closed) throw new WaveKVError("CLOSED", `${this.path} is closed`);
    if (this.#failure) throw this.#failure;
    this.#flush();
    if (this.#failure) throw this.#failure;
    const tailLen = Math.max(0, this.#written - from);
    if (tailLen > 0 && next.base !== this.#header.base) throw new Error("replace: a non-empty tail keeps its base");
    const tmp = `${this.path}.tmp`;
    let image: Uint8Array;
    let newFd = -1;
    try {
      const tail = tailLen > 0 ? readFully(this.#fd, tailLen, from) : new Uint8Array(0);
      if (tail.length !== tailLen) throw new Error(`short read of the WAL tail (${tail.length} of ${tailLen} bytes)`);
      image = buildWalImage(next, head, tail);
      newFd = fs.openSync(tmp, "w+");
      this.#faults?.("write", tmp);
      writeFully(newFd, image, 0);
      if (this.#policy !== "never") {
        this.#faults?.("fsync", tmp);
        fs.fsyncSync(newFd);
      }
      fs.renameSync(tmp, this.path);
    } catch (e) {
      if (newFd >= 0) try { fs.closeSync(newFd); } catch { /* ignore */ }
      try { removeIfExists(tmp); } catch { /* ignore */ }
      const msg = e instanceof Error ? e.message : String(e);
      throw new WaveKVError("IO", `resetting ${this.path} after a snapshot failed (${msg}); the old log is kept`, { cause: e });
    }
    // The new file is in place: from here on it is the log, whatever happens.
    const old = this.#fd;
    this.#fd = newFd;
    this.#header = { ...next };
    this.#written = image.length;
    this.#epoch++;
    if (this.#syncing) this.#retired.push(old);
    else try { fs.closeSync(old); } catch { /* ignore */ }
    try {
      if (this.#policy !== "never") fsyncDir(dirname(this.path));
    } catch (e) {
      this.#fail("fsync", e);
      throw this.#failure!;
    }
    // Everything ever appended is now in a file that is fsynced and durably linked. The
    // waiters' targets are offsets in the old file, so they are settled wholesale.
    this.#synced = this.#written;
    for (const w of this.#waiters.splice(0)) w.resolve();
  }

  /** Truncates a damaged tail away before the first append (open path). */
  static truncate(path: string, size: number, durable = true): void {
    const fd = fs.openSync(path, "r+");
    try {
      fs.ftruncateSync(fd, size);
      if (durable) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Writes what is queued, makes everything durable (unless the policy is "never"), then closes the file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    let error: unknown = null;
    if (this.#policy !== "never" && !this.#failure) {
      try { await this.sync(); } catch (e) { error = e; }
    } else {
      this.#flush();
    }
    // Wait for an fsync still running on this fd (it may belong to no waiter).
    while (this.#syncing || this.#gathering) await new Promise((r) => setTimeout(r, 1));
    this.#closed = true;
    const refused = this.#failure ?? new WaveKVError("CLOSED", `${this.path} closed`);
    for (const p of this.#queue.splice(0)) p.reject(refused);
    for (const w of this.#waiters.splice(0)) w.reject(refused);
    this.#closeRetired();
    try { fs.closeSync(this.#fd); } catch { /* ignore */ }
    if (error) throw error;
  }
}

function invalidRecords(e: unknown): WaveKVError {
  // A record the format cannot carry: nothing of its append was written, nothing is latched.
  return new WaveKVError("INVALID_ARGUMENT", `cannot log these records: ${(e as Error).message}`, { cause: e });
}

function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
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

/** Cumulative latency histogram in ms (Prometheus `le` buckets). */
export class LatencyHistogram {
  static readonly BOUNDS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000] as const;
  readonly bounds: readonly number[] = LatencyHistogram.BOUNDS;
  /** counts[i]: observations in (bounds[i-1], bounds[i]]; the last one above every bound. */
  readonly counts = new Array<number>(LatencyHistogram.BOUNDS.length + 1).fill(0);
  sum = 0;
  count = 0;

  observe(ms: number): void {
    let i = 0;
    while (i < LatencyHistogram.BOUNDS.length && ms > LatencyHistogram.BOUNDS[i]!) i++;
    this.counts[i]!++;
    this.sum += ms;
    this.count++;
  }
}
