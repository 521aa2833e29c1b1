/**
 * Appending to the WAL file `node_<id>.wal` (docs/FORMAT.md §3): the group-commit
 * writer. This module owns the fsync schedule; the file's bytes (header, whole images)
 * are src/storage/wal-file.ts, reading the log back is src/storage/wal-scan.ts.
 *
 *   const wal = WalWriter.open(path, header, end, { fsync: "always" });
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
 * splitting into cohorts; one steady writer fsyncs synchronously (see #next).
 * `fsyncCount` counts fsyncs so tests pin the batching. Other
 * policies: a deferred append waits for the end of the current run of microtasks (one
 * encode, one write for all), and resolves once written. Version 2 logs are preallocated.
 */
import * as fs from "node:fs";
import { dirname } from "node:path";
import type { FramedRecords, RecordInput } from "../core/record.js";
import { WaveKVError } from "../core/errors.js";
import type { FsyncPolicy } from "../core/types.js";
import { fsyncDir, readFully, writeFully } from "./datadir.js";
import type { AppendOptions, FaultHook } from "./interface.js";
import { LatencyHistogram } from "./latency.js";
import { PREALLOC_MAX, PREALLOC_MIN, WAL_HEADER_BYTES, assertLinked, buildWalImage, encodeAppends, encodeWalHeader, invalidRecords, isFramed, openReplacement, walVersion, writeWalFile, writeZeros, type WalHeader } from "./wal-file.js";

/**
 * Under fsync policies that acknowledge a write when it is written ("never", intervals),
 * the log is checked for having been deleted at most this often (ms): a write acknowledged
 * within this window after `rm -rf` of the data directory can still vanish, as it can
 * within the interval on a machine crash.
 */
export const UNLINK_CHECK_MS = 10;

interface Waiter {
  target: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/** An append accepted, not yet written (`defer`); written under "always", it is its own fsync Waiter. */
interface Pending extends Waiter {
  /** Records to encode at write time, or (`FramedRecords`) the bytes they framed at append. */
  records: readonly RecordInput[] | Uint8Array;
}

export interface WalWriterOptions {
  fsync: FsyncPolicy;
  faults?: FaultHook;
}

export class WalWriter {
  readonly path: string;
  #header: WalHeader;
  #fd: number;
  /** Bytes of records in the file (its valid end); the next append goes here. */
  #written: number;
  /** The file's size: from #written to here it is preallocated zeros. */
  #allocated: number;
  /** The header is version 2: the file may carry a zero tail (a version 1 log is not grown). */
  #preallocate: boolean;
  /** Bytes known to be on disk. */
  #synced: number;
  #waiters: Waiter[] = [];
  /** Deferred appends not yet written, in call order. */
  #queue: Pending[] = [];
  #syncing = false;
  /** An fsync released more writers than queued: appends queue until `#expect` arrived or the macrotask. */
  #gathering = false;
  #expect = 0;
  #arrived = 0;
  #gatherId = 0;
  #solo = false; // the last fsync released one writer, nothing queued (see #next)
  /** Bumped by `replace`: an fsync that completes for an older file changes nothing. */
  #epoch = 0;
  /** fds of replaced files, closed once the fsync running on them returns. */
  #retired: number[] = [];
  #timer: ReturnType<typeof setTimeout> | null = null;
  /** Not "always": a microtask will write the appends deferred in this run of microtasks. */
  #tick = false;
  readonly #endTick = (): void => { this.#tick = false; this.#flush(); };
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
    this.#allocated = Math.max(size, fs.fstatSync(fd).size);
    this.#preallocate = walVersion(readFully(fd, 8, 0)) >= 2;
    this.#synced = size;
    this.#policy = opts.fsync;
    this.#faults = opts.faults;
  }

  /** Opens an existing, validated log for appending at `size` (its valid end; preallocated zeros may follow). */
  static open(path: string, header: WalHeader, size: number, opts: WalWriterOptions): WalWriter {
    const fd = fs.openSync(path, "r+");
    try {
      return new WalWriter(path, fd, header, size, opts);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  /** Creates (or replaces) the log with a bare header, durably (tmp + fsync + rename + fsync dir). */
  static create(path: string, header: WalHeader, opts: WalWriterOptions): WalWriter {
    writeWalFile(path, encodeWalHeader(header), opts.fsync !== "never");
    return WalWriter.open(path, header, WAL_HEADER_BYTES, opts);
  }

  get header(): Readonly<WalHeader> { return this.#header; }
  /** Bytes of records in the file, its valid end (deferred appends count once written). */
  get size(): number { return this.#written; }
  get queued(): number { return this.#queue.length; } // deferred appends not yet written
  get fsyncCount(): number { return this.#fsyncs; }
  /** Group-commit fsync latencies, for /metrics and the console. */
  readonly fsyncLatency = new LatencyHistogram();
  get failure(): WaveKVError | null { return this.#failure; }

  /**
   * Encodes and writes `records` in one write before returning (together with any
   * deferred appends queued before it, which go first); the promise settles per the fsync
   * policy. Rejects IO (and latches) if the write fails. With `defer` (see
   * `AppendOptions`) the records may be queued for the next group write instead.
   * `FramedRecords` are framed now, against this log's base (their source is valid only
   * during the call), and written as those bytes.
   */
  append(input: readonly RecordInput[] | FramedRecords, opts?: AppendOptions): Promise<void> {
    if (this.#closed) return Promise.reject(new WaveKVError("CLOSED", `${this.path} is closed; reopen the node`));
    if (this.#failure) return Promise.reject(this.#failure);
    let records: readonly RecordInput[] | Uint8Array;
    if (isFramed(input)) {
      if (input.count === 0) return Promise.resolve();
      try {
        records = input.frame(this.#header.base);
      } catch (e) {
        return Promise.reject(invalidRecords(e));
      }
    } else {
      if (input.length === 0) return Promise.resolve();
      records = input;
    }
    if (this.#gathering) this.#arrived++;
    // Queued only while something will write the queue: the fsync in flight completing,
    // or the gather ending. Otherwise written now (with anything queued, first).
    // Other policies acknowledge on write: a deferred append waits only for the end of
    // the current run of microtasks, so concurrent puts share one encode and one write.
    const always = this.#policy === "always";
    const queue = opts?.defer === true && (!always || this.#syncing || this.#gathering);
    const done = new Promise<void>((resolve, reject) => { this.#queue.push({ records, target: 0, resolve, reject }); });
    if (!queue) this.flush();
    else if (!always && !this.#tick) {
      this.#tick = true;
      queueMicrotask(this.#endTick);
    }
    // Every writer the last fsync released is back: write their batch and fsync now.
    if (this.#gathering && this.#arrived >= this.#expect) this.#release();
    return done;
  }

  /**
   * Writes every queued deferred append now (one encode, one write; they then wait for the
   * next fsync), so a snapshot's WAL offset covers every append so far. A failed write latches.
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
   * Writes the queue, one write (`encodeAppends`). A record the format cannot carry rejects
   * its own append (INVALID_ARGUMENT, nothing latched) and the rest are written; a failed
   * write rejects every append in it and latches. Settles non-"always" appends at once;
   * "always" ones become fsync waiters.
   */
  #flush(): void {
    if (this.#queue.length === 0) return;
    const queued = this.#queue;
    this.#queue = [];
    const { ok: batch, bytes } = encodeAppends(queued, this.#header.base);
    if (batch.length === 0) return;
    // A write of PREALLOC_MAX or more (a large merge) appends past the end: zeros first would double its bytes.
    const end = this.#written + bytes.length;
    const grown = end > this.#allocated && this.#preallocate && bytes.length < PREALLOC_MAX ? this.#grow(end) : null;
    if (grown) return batch.forEach((p) => p.reject(grown)); // nothing of it written; latched
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
      // Part of the batch may be in the file: a torn tail, latched (nothing may follow it).
      // In preallocated space (no new blocks needed) it is zeroed again, best effort:
      // the next open finds a clean end, not a record that looks damaged.
      if (this.#preallocate && this.#written + bytes.length <= this.#allocated) {
        try { writeFully(this.#fd, new Uint8Array(bytes.length), this.#written); } catch { /* the torn record stays: open keeps a copy and warns */ }
      }
      const err = this.#fail("write", e);
      for (const p of batch) p.reject(err);
      return;
    }
    this.#written += bytes.length;
    if (this.#written > this.#allocated) this.#allocated = this.#written;
    const policy = this.#policy;
    if (policy === "always") {
      const target = this.#written;
      for (const p of batch) {
        p.target = target;
        this.#waiters.push(p);
      }
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

  /**
   * Grows the file past `need` with written zeros + one fdatasync (not under "never"):
   * appends overwriting them change no file size. About once per PREALLOC_MAX bytes of
   * records, a few ms on the event loop. Returns the latched failure (ENOSPC, EIO: the
   * batch that needed the space is not written; what was written before keeps its fsync,
   * unless the fsync failed) or null. Zeros written before a failure are a clean end.
   */
  #grow(need: number): WaveKVError | null {
    const target = need + Math.min(PREALLOC_MAX, Math.max(PREALLOC_MIN, this.#allocated));
    try {
      this.#faults?.("preallocate", this.path);
      writeZeros(this.#fd, this.#allocated, target);
    } catch (e) {
      return this.#fail("write", e);
    }
    try {
      if (this.#policy !== "never") fs.fdatasyncSync(this.#fd);
    } catch (e) {
      return this.#fail("fsync", e);
    }
    this.#allocated = target;
    return null;
  }

  /** `solo`: the one append of a solo gather (see #next): fsync on this thread. */
  #kick(solo = false): void {
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
    if (!solo || this.#waiters.length !== 1) return fs.fdatasync(fd, done);
    let err: unknown = null;
    try { fs.fdatasyncSync(fd); } catch (e) { err = e; }
    done(err);
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
   * puts/s than one batch of 64 on this VM's disk.) Solo (it released one writer, nothing
   * queued): gather until the macrotask; if only that writer came back, its fsync runs on
   * this thread, blocking the loop but skipping the thread-pool hop (1 writer: 0.62x →
   * 0.81x of the raw floor, bench/analysis.md); writers that waited behind a synchronous
   * fsync are all gathered by then and batched as usual.
   */
  #next(released: number): void {
    const queued = this.#queue.length;
    this.#solo = released === 1 && queued === 0;
    if (released > queued) {
      this.#gathering = true;
      this.#expect = this.#solo ? Infinity : released + queued;
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
    const solo = this.#solo && this.#queue.length === 1;
    this.#solo = false;
    this.#flush();
    this.#kick(solo);
  }

  /** Resolves every waiter the synced offset covers; returns how many. */
  #settle(): number {
    // Targets never decrease in push order (replace empties the list): the covered ones are a prefix.
    const waiters = this.#waiters, synced = this.#synced;
    let n = 0;
    while (n < waiters.length && waiters[n]!.target <= synced) waiters[n++]!.resolve();
    this.#waiters = n === waiters.length ? [] : waiters.slice(n);
    return n;
  }

  /** See `assertLinked` (wal-file.ts): once per group commit, or per UNLINK_CHECK_MS. */
  #checkLinked(): void {
    assertLinked(this.#fd, this.path);
  }

  /**
   * Latches the log. A failed fsync (or `dropWaiters`: the file is gone) also fails every append
   * waiting for its fsync; a failed write keeps them (their bytes precede it, they get their fsync).
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
    for (const fd of this.#retired.splice(0)) try { fs.closeSync(fd); } catch { /* already gone */ }
  }

  /**
   * Replaces the log with `next` header + `head` records + the bytes this log holds
   * from `from` to its end (records appended after a snapshot captured `from`). Queued
   * deferred appends are first written to this log (one write), so they are in that
   * tail: nothing accepted is lost. A failure of that write latches and is thrown.
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
    let image: Uint8Array;
    let newFd: number;
    try {
      const tail = tailLen > 0 ? readFully(this.#fd, tailLen, from) : new Uint8Array(0);
      if (tail.length !== tailLen) throw new Error(`short read of the WAL tail (${tail.length} of ${tailLen} bytes)`);
      image = buildWalImage(next, head, tail);
      newFd = openReplacement(this.path, image, this.#policy !== "never", this.#faults, PREALLOC_MIN);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      throw new WaveKVError("IO", `resetting ${this.path} after a snapshot failed (${msg}); the old log is kept`, { cause: e });
    }
    // The new file is in place: from here on it is the log, whatever happens.
    const old = this.#fd;
    this.#fd = newFd;
    this.#header = { ...next };
    this.#written = image.length;
    this.#allocated = image.length + PREALLOC_MIN; // preallocated by openReplacement
    this.#preallocate = true;
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
    // A clean close trims the preallocated tail (not fsynced: zeros read the same).
    if (this.#allocated > this.#written && !this.#failure) {
      try { fs.ftruncateSync(this.#fd, this.#written); } catch { /* the zeros stay: still a clean end */ }
    }
    try { fs.closeSync(this.#fd); } catch { /* ignore */ }
    if (error) throw error;
  }
}
