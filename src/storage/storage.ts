/**
 * The file storage of one node: WAL + snapshots in a data directory (SPEC section 4),
 * implementing the `Storage` interface (src/storage/interface.ts) that src/node/node.ts
 * codes against; the design is in docs/ARCHITECTURE.md "Durability", the bytes in
 * docs/FORMAT.md §3–5.
 *
 *   const storage = await openStorage({ dir, nodeId: 1, fsync: "always", replay });
 *   const state = storage.recovered;            // uuid, warnings (records went to `replay`)
 *   await storage.append(records);              // durable per policy when it resolves
 *   await storage.snapshot(() => allRecords()); // persist(): snapshot, then reset the WAL
 *
 * Recovery rules (open):
 * - snapshot: the newest readable of `.snapshot`, `.snapshot.bak`; else none (warning).
 * - missing files (`judgeCoverage`): a WAL of generation g > 1 says g − 1 snapshots were
 *   taken; with both snapshot files absent open refuses MISSING_SNAPSHOT, and a snapshot
 *   without its WAL refuses MISSING_WAL — unless `acceptDataLoss`. A snapshot older than
 *   the generation before the WAL's (the newest one lost, .bak loaded) is a warning that
 *   names the generations whose writes are missing.
 * - WAL: a damaged header is CORRUPT_WAL. Records are read from where the snapshot's
 *   coverage ends (same WAL generation) or from the start. A damaged record with no valid
 *   record after it is a tail, truncated (ftruncate + fsync) with a warning: a torn one
 *   (bytes end inside a record) was never acknowledged; a complete record failing its
 *   CRC may have been, so its bytes are first kept in `<wal>.damaged-<offset>` and the
 *   warning says so. A damaged record followed by a valid one is CORRUPT_WAL naming the
 *   file and offset.
 * - A snapshot that covers the current WAL generation means a reset was interrupted:
 *   open finishes it (new generation = seq marks + the records after the covered offset).
 */
import * as fs from "node:fs";
import { RecordKind, type FramedRecords, type RecordInput } from "../core/record.js";
import { WaveKVError } from "../core/errors.js";
import { isNodeId, type FsyncPolicy } from "../core/types.js";
import { acquireLock, type DataFiles, type DirLock, exists, files, loadOrCreateUuid, readFully, removeIfExists } from "./datadir.js";
import type { AppendOptions, FaultHook, LatencyStats, RecoveredState, ReplayTarget, Storage } from "./interface.js";
import { ReplaySession } from "./replay.js";
import { Serial } from "./serial.js";
import { encodeSnapshot, streamSnapshot, writeSnapshotFile, type SnapshotHeader } from "./snapshot.js";
import { WAL_HEADER_BYTES, buildWalImage, parseWalHeader, truncateWal, writeWalFile, type WalHeader } from "./wal-file.js";
import { corruptWal, describeTail, scanWalFile, tailDamage, type TailDamage, type WalFileScan } from "./wal-scan.js";
import { WalWriter } from "./wal-writer.js";

export type { AppendOptions, FaultHook, RecoveredState, ReplaySink, ReplayTarget, Storage, StorageTuning } from "./interface.js";

export interface StorageOptions {
  dir: string;
  nodeId: number;
  fsync: FsyncPolicy;
  /** WAL size that triggers an automatic snapshot request (see `needsSnapshot`). Default 64 MiB. */
  snapshotWalBytes?: number;
  /** Clock for the container base timestamps; defaults to Date.now. */
  clock?: () => number;
  /**
   * Test seam at the file boundary: called before each write and fsync of the WAL and
   * snapshots and before the lock file is created ("open"); throw from it (an Error with
   * `code: "EIO" | "ENOSPC" | "EROFS"`...) to simulate the OS failing that call.
   */
  faults?: FaultHook;
  /**
   * Open even though files the WAL or snapshot says existed are missing
   * (MISSING_SNAPSHOT, MISSING_WAL): start from what remains with a loud warning, and
   * record the loss (an empty snapshot of the lost generation, or a new log) so later
   * opens do not refuse again. Default false: refuse, so the files can be restored.
   */
  acceptDataLoss?: boolean;
  /**
   * Takes the recovered records as they are decoded — the snapshot's, then the WAL's a
   * window at a time — instead of `recovered.batches` collecting them: a long log is then
   * never decoded (48 B of descriptors a record) all at once. See `ReplaySink` for who
   * owns what; open abandons the sink if it fails after handing records over.
   */
  replay?: ReplayTarget;
  /** Records per window when a long WAL is decoded (default REPLAY_WINDOW_RECORDS; tests use small ones). */
  replayWindow?: number;
}

export const DEFAULT_SNAPSHOT_WAL_BYTES = 64 << 20;

export async function openStorage(options: StorageOptions): Promise<Storage> {
  const { dir, nodeId } = options;
  if (!isNodeId(nodeId)) {
    throw new WaveKVError("INVALID_ARGUMENT", `nodeId must be a uint32, got ${nodeId}`);
  }
  let lock: DirLock;
  try {
    fs.mkdirSync(dir, { recursive: true });
    lock = acquireLock(dir, (path) => options.faults?.("open", path));
  } catch (e) {
    throw dirError(dir, e);
  }
  try {
    return await recover(options, lock);
  } catch (e) {
    try { lock.release(); } catch { /* the directory may be unwritable: the lock is stale then */ }
    throw dirError(dir, e);
  }
}

/**
 * An OS error while opening `dir`, as IO saying what to do (EROFS, EACCES...); a
 * WaveKVError or a non-OS error passes through unchanged.
 */
function dirError(dir: string, e: unknown): unknown {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (e instanceof WaveKVError || typeof code !== "string") return e;
  const message = (e as Error).message; // Node's own messages start with the code
  const what = message.startsWith(code) ? message : `${code}: ${message}`;
  const advice: Record<string, string> = {
    EROFS: `data directory ${dir} is read-only (${what}); pass a writable --dir`,
    EACCES: `data directory ${dir} is not writable by this user (${what}); fix its permissions or pass another --dir`,
    EPERM: `data directory ${dir} is not writable by this user (${what}); fix its permissions or pass another --dir`,
    ENOSPC: `no space left for data directory ${dir} (${what}); free space or pass another --dir`,
    EDQUOT: `disk quota exceeded for data directory ${dir} (${what}); free space or pass another --dir`,
    ENOTDIR: `data directory ${dir} is not a directory (${what}); pass a directory as --dir`,
    EEXIST: `data directory ${dir} is a file, not a directory (${what}); pass --dir with a directory (it is created if missing)`,
  };
  return new WaveKVError("IO", advice[code] ?? `cannot open data directory ${dir} (${what})`, { cause: e });
}

/** What the files say about records that are gone; see `judgeCoverage`. */
export interface Coverage {
  /** Open refuses with this unless `acceptDataLoss`. */
  refuse: WaveKVError | null;
  /** Said when open goes ahead: a loss known but not refused, or the refusal accepted. */
  warning: string | null;
}

const when = (ms: number) => (Number.isFinite(ms) && Math.abs(ms) < 8.64e15 ? new Date(ms).toISOString() : `t=${ms}`);

/**
 * The rules for missing files, shared by open and `wavekv inspect`. A WAL of generation g
 * was started by the reset after the snapshot that covered generation g − 1, so:
 * - g > 1, no snapshot file at all → MISSING_SNAPSHOT (every write before the last reset
 *   was only in the snapshots);
 * - a snapshot exists, the WAL does not → MISSING_WAL (every write after the snapshot
 *   was only in the log);
 * - the loaded snapshot covers generation s < g − 1 (the newest lost, `.bak` loaded) →
 *   a warning: the writes of generations s + 1 … g − 1 are missing.
 * Damaged snapshot files are not refused: their loader warns (open never fails on a
 * snapshot's bytes: the state is replicated).
 */
export function judgeCoverage(f: DataFiles, wal: WalHeader | null, snap: { header: SnapshotHeader; path: string } | null, snapshotFiles: boolean): Coverage {
  const retry = "or open with acceptDataLoss (Node.open option storage: { acceptDataLoss: true }, CLI --accept-data-loss) to start from what remains and re-sync the rest from peers";
  if (wal === null) {
    if (!snapshotFiles) return { refuse: null, warning: null }; // a new directory
    const what = snap ? `${snap.path} (covers WAL generation ${snap.header.walGeneration}, taken ${when(snap.header.base)})` : `${f.snapshot} or ${f.snapshotBak}`;
    return {
      refuse: new WaveKVError("MISSING_WAL", `${f.wal} is missing but ${what} exists: the log of every write after that snapshot was deleted. Restore ${f.wal}, ${retry}.`),
      warning: `DATA LOSS ACCEPTED: ${f.wal} was missing; started a new log after ${what}: every write made after that snapshot is gone from this node (re-sync from peers).`,
    };
  }
  const g = wal.generation;
  if (snap === null && !snapshotFiles && g > 1) {
    return {
      refuse: new WaveKVError(
        "MISSING_SNAPSHOT",
        `${f.wal} is generation ${g}: snapshots were taken and the log was reset after the last one (covering generation ${g - 1}), ` +
          `but ${f.snapshot} and ${f.snapshotBak} are both missing, so every write made before that reset would be lost. Restore the snapshot files, ${retry}.`,
      ),
      warning: `DATA LOSS ACCEPTED: ${f.snapshot} and ${f.snapshotBak} are missing while ${f.wal} is generation ${g}: opened from the log alone; every write made before its last reset (generations 1..${g - 1}) is gone from this node (re-sync from peers).`,
    };
  }
  if (snap === null && g > 1) {
    return { refuse: null, warning: `${f.wal} is generation ${g}: the writes of generations 1..${g - 1} were only in the unreadable snapshots and are missing from this node` };
  }
  if (snap !== null && snap.header.walGeneration + 1 < g) {
    const s = snap.header.walGeneration;
    const gens = s + 1 === g - 1 ? `generation ${s + 1}` : `generations ${s + 1}..${g - 1}`;
    return {
      refuse: null,
      warning: `${snap.path} covers WAL generation ${s} (taken ${when(snap.header.base)}) but ${f.wal} is generation ${g}: the writes logged in ${gens} ` +
        `were only in a newer snapshot, which is missing or damaged; they are missing from this node and come back only from peers that hold them.`,
    };
  }
  return { refuse: null, warning: null };
}

async function recover(options: StorageOptions, lock: DirLock): Promise<Storage> {
  const { dir, nodeId } = options;
  const clock = options.clock ?? Date.now;
  const f = files(dir, nodeId);
  const warnings: string[] = [];
  const uuid = loadOrCreateUuid(dir, warnings);
  // Leftover temporaries were never renamed into place: never authoritative.
  removeIfExists(f.snapshotTmp);
  removeIfExists(f.walTmp);

  // The replay's scope: its sink (or `recovered.batches`), the file blocks, the restart
  // after a damaged snapshot, the abandon if open fails, the scratch trimmed at the end.
  const session = new ReplaySession(uuid, options.replay);
  try {
    return await recoverInto(session, options, lock, f, uuid, warnings, clock);
  } catch (e) {
    session.fail();
    throw e;
  }
}

async function recoverInto(session: ReplaySession, options: StorageOptions, lock: DirLock, f: DataFiles, uuid: string, warnings: string[], clock: () => number): Promise<Storage> {
  const { nodeId } = options;
  const loaded = streamSnapshot(f, nodeId, session, options.replayWindow);
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
  let damaged: TailDamage | null = null;
  let damagedBytes: Uint8Array | null = null;
  let coverage: Coverage | null = null;
  try {
    fd = fs.openSync(f.wal, "r");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw ioError(`cannot read ${f.wal}`, e);
  }
  try {
    const size = fd >= 0 ? fs.fstatSync(fd).size : 0;
    const peek = fd >= 0 ? parseWalHeader(readFully(fd, Math.min(size, WAL_HEADER_BYTES), 0)) : null;
    // Before any WAL record is replayed: a refusal hands nothing over. (Another node's
    // log is CORRUPT_WAL below, whatever its generation says.)
    if (typeof peek !== "string" && (peek === null || peek.nodeId === nodeId)) {
      coverage = judgeCoverage(f, peek, snap, snap !== null || exists(f.snapshot) || exists(f.snapshotBak));
      if (coverage.refuse && options.acceptDataLoss !== true) throw coverage.refuse;
    }
    covers = snap !== null && peek !== null && typeof peek !== "string" && snap.header.walGeneration === peek.generation;
    if (fd >= 0 && peek !== null) {
      scan = typeof peek === "string" ? peek : scanWalFile(fd, size, peek, covers ? snap!.header.walOffset : WAL_HEADER_BYTES, session, options.replayWindow);
      if (typeof scan !== "string") {
        // The records after the snapshot's offset, carried into the next generation (below).
        if (covers) tail = readFully(fd, scan.validEnd - scan.start, scan.start);
        if (scan.damage) {
          // The verdict reads 8 bytes; only a tail that open keeps a copy of is read whole
          // (CORRUPT_WAL in the middle of a long log reads nothing more before it refuses).
          const tailBytes = scan.fileSize - scan.validEnd;
          damaged = tailDamage(scan.damage, tailBytes, readFully(fd, Math.min(8, tailBytes), scan.validEnd), scan.version);
          if (damaged !== null && damaged.kind !== "torn") damagedBytes = readFully(fd, tailBytes, scan.validEnd);
        }
      }
    }
  } catch (e) {
    throw e instanceof WaveKVError ? e : ioError(`cannot read ${f.wal}`, e);
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
  if (coverage?.warning) warnings.push(coverage.warning);
  if (scan === null) {
    const header = { nodeId, base: clock(), generation: snap ? snap.header.walGeneration + 1 : 1 };
    wal = WalWriter.create(f.wal, header, walOpts);
  } else {
    if (typeof scan === "string") {
      throw new WaveKVError("CORRUPT_WAL", `${f.wal}: ${scan} at offset 0. Restore the file, or move it aside and open with acceptDataLoss (Node.open option storage: { acceptDataLoss: true }, CLI --accept-data-loss) to start from the snapshot and re-sync from peers.`);
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
      if (damaged === null) {
        throw corruptWal(f.wal, scan.damage.offset, `damaged record (${scan.damage.reason}), next valid record at ${scan.damage.nextValid},`);
      }
      // Kept before the truncation below drops them: they may hold an acknowledged write
      // (a damaged record; the unsynced writes after a version 2 zero run, wal-scan.ts).
      const copy = damagedBytes ? keepDamaged(f.wal, damaged!.offset, damagedBytes, durable) : null;
      warnings.push(`${describeTail(f.wal, damaged!, scan.damage.reason, copy)}; truncated`);
    }
    if (covers) {
      // A reset was interrupted after the snapshot was installed: finish it now, so the
      // log never again holds records the snapshot covers.
      const header: WalHeader = { nodeId, base: tail.length > 0 ? scan.header.base : clock(), generation: scan.header.generation + 1 };
      writeWalFile(f.wal, buildWalImage(header, snap!.marks, tail), durable);
      wal = WalWriter.open(f.wal, header, fs.statSync(f.wal).size, walOpts);
    } else {
      if (scan.damage) truncateWal(f.wal, scan.validEnd, durable);
      wal = WalWriter.open(f.wal, scan.header, scan.validEnd, walOpts);
    }
  }
  if (coverage?.refuse?.code === "MISSING_SNAPSHOT" && scan !== null && typeof scan !== "string") {
    // The loss was accepted: record it as an empty snapshot of the lost generation, so
    // the next open finds generation g − 1 covered and does not refuse again.
    const image = encodeSnapshot([], { nodeId, base: clock(), walGeneration: scan.header.generation - 1, walOffset: 0 });
    try {
      await writeSnapshotFile(f, image, options.faults, durable);
    } catch (e) {
      await wal.close().catch(() => {});
      throw e;
    }
  }
  return new DirStorage(f, lock, wal, { uuid, batches: session.finish(), warnings }, options, clock);
}

/** Copies a damaged WAL tail to `<wal>.damaged-<offset>` (a fresh name), atomically (and durably unless fsync "never"); returns its path. */
function keepDamaged(wal: string, offset: number, bytes: Uint8Array, durable: boolean): string {
  let path = `${wal}.damaged-${offset}`;
  for (let n = 2; exists(path); n++) path = `${wal}.damaged-${offset}-${n}`;
  try {
    writeWalFile(path, bytes, durable);
  } catch (e) {
    throw ioError(`cannot keep the damaged WAL tail in ${path} (nothing was truncated)`, e);
  }
  return path;
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
  /** Snapshots, one at a time. */
  readonly #snapshots = new Serial();
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
  get fsyncLatency(): LatencyStats { return this.#wal.fsyncLatency; }
  get walGeneration(): number { return this.#wal.header.generation; }
  get failure(): WaveKVError | null { return this.#wal.failure; }

  append(records: readonly RecordInput[] | FramedRecords, opts?: AppendOptions): Promise<void> {
    if (this.#closed) return Promise.reject(closedError(this.#files.wal));
    return this.#wal.append(records, opts);
  }

  snapshot(collect: () => Iterable<RecordInput>): Promise<void> {
    if (this.#closed) return Promise.reject(closedError(this.#files.wal));
    return this.#snapshots.run(() => this.#snapshotNow(collect));
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
    await this.#snapshots.idle();
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
