/**
 * Durable storage of one node: WAL + snapshots in a data directory (SPEC section 4).
 * src/node.ts codes against the `Storage` interface; the design is in
 * docs/ARCHITECTURE.md "Durability", the bytes in docs/FORMAT.md §3–5.
 *
 *   const storage = await openStorage({ dir, nodeId: 1, fsync: "always" });
 *   const state = storage.recovered;            // replay into memory, in order
 *   await storage.append(records);              // durable per policy when it resolves
 *   await storage.snapshot(() => allRecords()); // persist(): snapshot, then reset the WAL
 *
 * Recovery rules (open):
 * - snapshot: the newest readable of `.snapshot`, `.snapshot.bak`; else none (warning).
 * - WAL: a damaged header is CORRUPT_WAL. Records are read from where the snapshot's
 *   coverage ends (same WAL generation) or from the start. A damaged record with no valid
 *   record after it is a torn tail: truncated (ftruncate + fsync) with a warning. A
 *   damaged record followed by a valid one is CORRUPT_WAL naming the file and offset.
 * - A snapshot that covers the current WAL generation means a reset was interrupted:
 *   open finishes it (new generation = seq marks + the records after the covered offset).
 */
import * as fs from "node:fs";
import { RecordKind, type DecodedBatch, type RecordInput } from "./codec.js";
import { WaveKVError } from "./errors.js";
import type { FsyncPolicy } from "./types.js";
import { acquireLock, type DataFiles, type DirLock, files, loadOrCreateUuid, readFully, readWholeFile, removeIfExists } from "./datadir.js";
import { type AppendOptions, type FaultHook, type LatencyHistogram, WAL_HEADER_BYTES, WalWriter, buildWalImage, corruptWal, parseWalHeader, scanWalFile, writeWalFile, type ReplayExpectation, type WalHeader, type WalFileScan } from "./wal.js";
import { encodeSnapshot, streamSnapshot, writeSnapshotFile } from "./snapshot.js";

export type { AppendOptions, FaultHook } from "./wal.js";

export interface StorageOptions {
  dir: string;
  nodeId: number;
  fsync: FsyncPolicy;
  /** WAL size that triggers an automatic snapshot request (see `needsSnapshot`). Default 64 MiB. */
  snapshotWalBytes?: number;
  /** Clock for the container base timestamps; defaults to Date.now. */
  clock?: () => number;
  /** Test hook at the process boundary: throw from it to simulate a failed write/fsync. */
  faults?: FaultHook;
  /**
   * Takes the recovered records as they are decoded — the snapshot's, then the WAL's a
   * window at a time — instead of `recovered.batches` collecting them: a long log is then
   * never decoded (48 B of descriptors a record) all at once. Called with the
   * directory's uuid once it is known, it returns the consumer. If open then fails
   * (CORRUPT_WAL), whatever was handed over must be discarded.
   */
  replay?: (uuid: string) => (batch: DecodedBatch, expected?: ReplayExpectation) => void;
  /** Records per window when a long WAL is decoded (default REPLAY_WINDOW_RECORDS; tests use small ones). */
  replayWindow?: number;
}

export interface RecoveredState {
  /** Created once per data directory and kept there. */
  uuid: string;
  /**
   * Records in apply order: the snapshot's, then the WAL's (a long one in windows).
   * Kinds 0/1 are entries to merge under LWW, 2/3 peer membership changes, 4 a seq
   * high-water mark. Empty when `StorageOptions.replay` took them.
   */
  batches: DecodedBatch[];
  /** Human-readable notes (e.g. "snapshot damaged, loaded .bak", "torn WAL tail truncated at 1234"). */
  warnings: string[];
}

export interface Storage {
  readonly recovered: RecoveredState;
  /**
   * Appends records to the WAL in one write. The returned promise resolves when the
   * records are durable per the fsync policy ("always": after an fsync shared with
   * every write issued meanwhile — group commit). The write itself happens before
   * `append` returns, so call order is log order, and `failure` is set right after the
   * call if that write failed. Rejects with WaveKVError IO; after one IO failure every
   * later append rejects until the node is reopened.
   *
   * `{ defer: true }` (fsync "always"; for local writes, which await the promise): while
   * an fsync is in flight the records are queued, still in call order, and written with
   * everything else queued in one encode + one write when it completes (see
   * `AppendOptions` in src/wal.ts). A write failure then only shows in the promise (IO)
   * and in `failure` afterwards: callers that roll back on a synchronous failure must
   * not defer. Snapshots write the queue before recording their WAL offset.
   */
  append(records: readonly RecordInput[], opts?: AppendOptions): Promise<void>;
  /**
   * Writes a snapshot of the state `collect` returns (called synchronously, once, so
   * the records come from one consistent state), then drops from the WAL what the
   * snapshot covers. Appends made while the snapshot is written are kept. Calls are
   * serialized: a second call waits for the first, then collects its own state.
   */
  snapshot(collect: () => Iterable<RecordInput>): Promise<void>;
  /** True when the WAL has grown past `snapshotWalBytes`. */
  readonly needsSnapshot: boolean;
  readonly walBytes: number;
  readonly fsyncCount: number;
  /** Latencies of the WAL's fsyncs (ms). */
  readonly fsyncLatency: LatencyHistogram;
  /** The WAL generation (bumped by every completed snapshot). */
  readonly walGeneration: number;
  /** The first IO failure, once the log is latched; null while healthy. */
  readonly failure: WaveKVError | null;
  /** Flushes, fsyncs, releases the directory lock. */
  close(): Promise<void>;
}

export const DEFAULT_SNAPSHOT_WAL_BYTES = 64 << 20;

export async function openStorage(options: StorageOptions): Promise<Storage> {
  const { dir, nodeId } = options;
  if (!Number.isInteger(nodeId) || nodeId < 0 || nodeId > 0xffffffff) {
    throw new WaveKVError("INVALID_ARGUMENT", `nodeId must be a uint32, got ${nodeId}`);
  }
  fs.mkdirSync(dir, { recursive: true });
  const lock = acquireLock(dir);
  try {
    return recover(options, lock);
  } catch (e) {
    lock.release();
    throw e;
  }
}

function recover(options: StorageOptions, lock: DirLock): Storage {
  const { dir, nodeId } = options;
  const clock = options.clock ?? Date.now;
  const f = files(dir, nodeId);
  const warnings: string[] = [];
  const uuid = loadOrCreateUuid(dir, warnings);
  // Leftover temporaries were never renamed into place: never authoritative.
  removeIfExists(f.snapshotTmp);
  removeIfExists(f.walTmp);

  // The consumer of recovered records: the caller's (a node replaying as they are
  // decoded), else `recovered.batches`. A fresh one after a damaged snapshot was partly
  // handed over (see streamSnapshot).
  const batches: DecodedBatch[] = [];
  const newConsumer = (): ((batch: DecodedBatch, expected?: ReplayExpectation) => void) => {
    for (const b of batches) b.release();
    batches.length = 0;
    return options.replay?.(uuid) ?? ((batch) => void batches.push(batch));
  };
  let consume = newConsumer();
  const loaded = streamSnapshot(f, nodeId, (batch, expected) => consume(batch, expected), () => { consume = newConsumer(); }, options.replayWindow);
  warnings.push(...loaded.warnings);
  const snap = loaded.snapshot;

  const walOpts = { fsync: options.fsync, faults: options.faults };
  // "never" (tests, caches) skips every fsync, the repair paths' included.
  const durable = options.fsync !== "never";
  let wal: WalWriter;
  let scan: WalFileScan | string | null = null;
  let covers = false;
  let tail: Uint8Array = new Uint8Array(0);
  let fd = -1;
  try {
    fd = fs.openSync(f.wal, "r");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw ioError(`cannot read ${f.wal}`, e);
  }
  try {
    const size = fd >= 0 ? fs.fstatSync(fd).size : 0;
    const peek = fd >= 0 ? parseWalHeader(readFully(fd, Math.min(size, WAL_HEADER_BYTES), 0)) : "missing";
    covers = snap !== null && typeof peek !== "string" && snap.header.walGeneration === peek.generation;
    if (fd >= 0) {
      scan = typeof peek === "string" ? peek : scanWalFile(fd, size, peek, covers ? snap!.header.walOffset : WAL_HEADER_BYTES, consume, options.replayWindow);
      // The records after the snapshot's offset, carried into the next generation (below).
      if (covers && typeof scan !== "string") tail = readFully(fd, scan.validEnd - scan.start, scan.start);
    }
  } catch (e) {
    throw e instanceof WaveKVError ? e : ioError(`cannot read ${f.wal}`, e);
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
  if (scan === null) {
    if (snap) warnings.push(`${f.wal} is missing; started a new log after the snapshot`);
    const header = { nodeId, base: clock(), generation: snap ? snap.header.walGeneration + 1 : 1 };
    wal = WalWriter.create(f.wal, header, walOpts);
  } else {
    if (typeof scan === "string") {
      throw new WaveKVError("CORRUPT_WAL", `${f.wal}: ${scan} at offset 0. Move the file aside to start from the snapshot and re-sync from peers.`);
    }
    if (scan.header.nodeId !== nodeId) {
      throw new WaveKVError("CORRUPT_WAL", `${f.wal}: header names node ${scan.header.nodeId}, not node ${nodeId}, at offset 8`);
    }
    if (snap && snap.header.walGeneration > scan.header.generation) {
      warnings.push(
        `${f.wal} (generation ${scan.header.generation}) is older than the snapshot (covers generation ${snap.header.walGeneration}); replayed it whole`,
      );
    }
    if (scan.damage) {
      if (scan.damage.nextValid >= 0) {
        throw corruptWal(f.wal, scan.damage.offset, `damaged record (${scan.damage.reason}), next valid record at ${scan.damage.nextValid},`);
      }
      warnings.push(
        `${f.wal}: ${scan.fileSize - scan.validEnd} byte(s) of ${scan.damage.reason} tail at offset ${scan.validEnd} were never acknowledged; truncated`,
      );
    }
    if (covers) {
      // A reset was interrupted after the snapshot was installed: finish it now, so the
      // log never again holds records the snapshot covers.
      const header: WalHeader = { nodeId, base: tail.length > 0 ? scan.header.base : clock(), generation: scan.header.generation + 1 };
      writeWalFile(f.wal, buildWalImage(header, snap!.marks, tail), durable);
      wal = WalWriter.open(f.wal, header, fs.statSync(f.wal).size, walOpts);
    } else {
      if (scan.damage) WalWriter.truncate(f.wal, scan.validEnd, durable);
      wal = WalWriter.open(f.wal, scan.header, scan.validEnd, walOpts);
    }
  }
  return new DirStorage(f, lock, wal, { uuid, batches, warnings }, options, clock);
}

function ioError(what: string, cause: unknown): WaveKVError {
  return new WaveKVError("IO", `${what}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
}

class DirStorage implements Storage {
  readonly recovered: RecoveredState;
  readonly #files: DataFiles;
  readonly #lock: DirLock;
  readonly #wal: WalWriter;
  readonly #threshold: number;
  readonly #clock: () => number;
  readonly #faults: FaultHook | undefined;
  readonly #durable: boolean;
  /** Settles when the last requested snapshot has finished (null: none in flight). */
  #snapshotTail: Promise<void> | null = null;
  #closed = false;

  constructor(f: DataFiles, lock: DirLock, wal: WalWriter, recovered: RecoveredState, opts: StorageOptions, clock: () => number) {
    this.#files = f;
    this.#lock = lock;
    this.#wal = wal;
    this.recovered = recovered;
    this.#threshold = opts.snapshotWalBytes ?? DEFAULT_SNAPSHOT_WAL_BYTES;
    this.#clock = clock;
    this.#faults = opts.faults;
    this.#durable = opts.fsync !== "never";
  }

  get needsSnapshot(): boolean { return this.#wal.size > this.#threshold; }
  get walBytes(): number { return this.#wal.size; }
  get fsyncCount(): number { return this.#wal.fsyncCount; }
  get fsyncLatency(): LatencyHistogram { return this.#wal.fsyncLatency; }
  get walGeneration(): number { return this.#wal.header.generation; }
  get failure(): WaveKVError | null { return this.#wal.failure; }

  append(records: readonly RecordInput[], opts?: AppendOptions): Promise<void> {
    if (this.#closed) return Promise.reject(closedError(this.#files.wal));
    return this.#wal.append(records, opts);
  }

  snapshot(collect: () => Iterable<RecordInput>): Promise<void> {
    if (this.#closed) return Promise.reject(closedError(this.#files.wal));
    // Idle: run now, so `collect` is called before snapshot() returns. Busy: queue.
    const prev = this.#snapshotTail;
    const run = prev ? prev.then(() => this.#snapshotNow(collect)) : this.#snapshotNow(collect);
    const tail: Promise<void> = run.then(
      () => { if (this.#snapshotTail === tail) this.#snapshotTail = null; },
      () => { if (this.#snapshotTail === tail) this.#snapshotTail = null; },
    );
    this.#snapshotTail = tail;
    return run;
  }

  /**
   * 1. Same tick: write the deferred appends still queued (so the WAL end offset covers
   *    every append made so far), note the WAL generation and end offset, collect and
   *    encode the state. Every record before that offset is in the state (a local write
   *    logged but not yet applied is collected from the caller's pending set); every
   *    later one is not (yet).
   * 2. Install the snapshot (async; appends keep flowing into the WAL).
   * 3. Replace the WAL (sync): new generation = the snapshot's seq marks + the records
   *    appended since step 1. The marks make the seq high-water mark survive the loss
   *    of this snapshot; the tail keeps the writes that raced the snapshot.
   * A crash between 2 and 3 is finished by the next open (the snapshot names the
   * generation and offset it covers).
   */
  async #snapshotNow(collect: () => Iterable<RecordInput>): Promise<void> {
    if (this.#closed) throw closedError(this.#files.wal);
    if (this.#wal.failure) throw this.#wal.failure;
    this.#wal.flush();
    if (this.#wal.failure) throw this.#wal.failure;
    const walGeneration = this.#wal.header.generation;
    const walOffset = this.#wal.size;
    const records = Array.from(collect());
    const base = this.#clock();
    const image = encodeSnapshot(records, { nodeId: this.#wal.header.nodeId, base, walGeneration, walOffset });
    const marks = records.filter((r) => r.kind === RecordKind.SeqMark);
    await writeSnapshotFile(this.#files, image, this.#faults, this.#durable);
    if (this.#wal.failure) throw this.#wal.failure;
    // Appends deferred while the snapshot was written join the tail (replace would write
    // them first anyway; the base decision below must see them).
    this.#wal.flush();
    if (this.#wal.failure) throw this.#wal.failure;
    const tailEmpty = this.#wal.size === walOffset;
    // A non-empty tail is copied raw, so it keeps the old base; an empty one gets a fresh
    // base (smaller timestamp deltas for the records to come).
    const next = { nodeId: this.#wal.header.nodeId, base: tailEmpty ? this.#clock() : this.#wal.header.base, generation: walGeneration + 1 };
    this.#wal.replace(next, marks, walOffset);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#snapshotTail) await this.#snapshotTail;
    try {
      await this.#wal.close();
    } finally {
      this.#lock.release();
    }
  }
}

function closedError(path: string): WaveKVError {
  return new WaveKVError("CLOSED", `storage for ${path} is closed; reopen the node`);
}
