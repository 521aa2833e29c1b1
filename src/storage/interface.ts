/**
 * What a node needs of durable storage (SPEC section 4): append a batch durably, replay
 * into a consumer at open, write a snapshot, stats, close, and the failure latch. The
 * file storage (src/storage/storage.ts, `openStorage`) implements it; src/node/node.ts
 * codes against it only. `runStorageConformance` (src/storage/conformance.ts, package
 * subpath `wavekv/conformance`) checks an implementation against the contract below.
 *
 *   const storage = await openStorage({ dir, nodeId: 1, fsync: "always", replay });
 *   await storage.append(records);              // durable per policy when it resolves
 *   await storage.snapshot(() => allRecords()); // persist(): snapshot, then reset the log
 *   await storage.close();
 *
 * Types only: no runtime code, so anything may import it. The record types it names
 * (`RecordInput`, `DecodedBatch`: src/core/record.ts) are exported, with these, by the
 * `wavekv/conformance` subpath, for adapter authors; the main entry exports the
 * interface alone.
 */
import type { DecodedBatch, FramedRecords, RecordInput } from "../core/record.js";
import type { WaveKVError } from "../core/errors.js";

/**
 * A fault hook at the process boundary, for tests: called before each write and fsync
 * this layer issues, and before open creates the directory lock ("open"); whatever it
 * throws (e.g. an Error with `code: "EROFS"`, "ENOSPC", "EIO") is handled exactly as the
 * OS error would be. A WAL append's write honours `bytesWritten: n` on the thrown error:
 * the first n bytes reach the file before it fails (a short write, as ENOSPC leaves).
 */
export type FaultHook = (op: "open" | "write" | "fsync" | "preallocate", path: string) => void;

/** Options of `Storage.append`. */
export interface AppendOptions {
  /**
   * Let the write wait for the next group write. Policies other than "always": until
   * the end of the current run of microtasks (one write for every append deferred in
   * it; resolved once written). "always": while an fsync is in flight, or while the writer gathers the appends
   * of writers an fsync just released, the records are queued in call order instead of
   * written; they go out in one write with everything queued around them. Otherwise they
   * are written before `append` returns, as without the option.
   *
   * The difference for the caller: a deferred append's write may fail after `append`
   * returned, so `failure` right after the call says nothing about it; the promise
   * rejects IO (and the log latches) then. A caller that must know synchronously whether
   * its records reached the file (a merged remote batch, rolled back on failure) must not
   * defer.
   * @defaultValue false
   */
  defer?: boolean;
}

/** How many records (and key bytes) a replay expects in all: a hint to grow an index once. */
export interface ReplayExpectation {
  records: number;
  keyBytes: number;
}

/**
 * Where a storage replays what it recovered at open, in apply order: the snapshot's
 * records, then the log's (a long one in windows). The storage owns every batch: it is
 * valid only during `apply` (the storage releases it when `apply` returns), so a sink
 * copies out what it keeps, or keeps the batch's bytes with `batch.retain()` (when the
 * decoder holds them) and releases that when done.
 */
export interface ReplaySink {
  /** One batch of recovered records; `expected`, with the first window of a long file, is the whole replay's likely size. */
  apply(batch: DecodedBatch, expected?: ReplayExpectation): void;
  /**
   * Everything this sink took is void: drop it. Called when a damaged snapshot was
   * partly replayed (the storage then starts over with a new sink from the same
   * factory) and when open fails after batches were handed over. Never called after a
   * successful open.
   */
  abandon(): void;
}

/** Creates the sink a replay goes into, once the directory's uuid is known (again after an `abandon`). */
export type ReplayTarget = (uuid: string) => ReplaySink;

/** What open found besides the records. */
export interface RecoveredState {
  /** Created once per data directory and kept there. */
  uuid: string;
  /**
   * Records in apply order when no `ReplayTarget` was given (the caller owns these
   * batches and releases them); empty when a sink took them.
   * Kinds 0/1 are entries to merge under LWW, 2/3 peer membership changes, 4 a seq
   * high-water mark.
   */
  batches: DecodedBatch[];
  /** Human-readable notes (e.g. "snapshot damaged, loaded .bak", "torn WAL tail truncated at 1234"). */
  warnings: string[];
}

/** A cumulative latency histogram in ms (Prometheus `le` buckets). */
export interface LatencyStats {
  /** Upper bounds of the buckets. */
  readonly bounds: readonly number[];
  /** counts[i]: observations in (bounds[i-1], bounds[i]]; the last one above every bound. */
  readonly counts: readonly number[];
  readonly sum: number;
  readonly count: number;
}

/**
 * A node's durable storage, opened (and replayed) by its factory (for files:
 * `openStorage`). The contract every implementation keeps, checked by
 * `runStorageConformance`:
 * - an append whose promise resolved is replayed by every later open, in call order;
 * - a torn last append is dropped at open and everything before it is kept;
 * - open replays the last snapshot's records, then what was appended after it;
 * - after one failed append every later one rejects (the failure latch), and nothing
 *   after the failure is replayed as if it were durable.
 */
export interface Storage {
  readonly recovered: RecoveredState;
  /**
   * Appends records to the log in one write. The returned promise resolves when the
   * records are durable per the fsync policy ("always": after an fsync shared with
   * every write issued meanwhile — group commit). The write itself happens before
   * `append` returns, so call order is log order, and `failure` is set right after the
   * call if that write failed. Rejects with WaveKVError IO; after one IO failure every
   * later append rejects until the node is reopened.
   *
   * `{ defer: true }` (for local writes, which await the promise; other policies: see `AppendOptions`): while
   * an fsync is in flight the records are queued, still in call order, and written with
   * everything else queued in one encode + one write when it completes (see
   * `AppendOptions`). A write failure then only shows in the promise (IO) and in
   * `failure` afterwards: callers that roll back on a synchronous failure must not
   * defer. Snapshots write the queue before recording their log offset.
   *
   * `records` may also be `FramedRecords` (a merged batch's winners, framed by the
   * kernel from the batch): the storage calls `frame(base)` once, before `append`
   * returns, and stores those bytes as it would the records' framed encoding.
   */
  append(records: readonly RecordInput[] | FramedRecords, opts?: AppendOptions): Promise<void>;
  /**
   * Writes a snapshot of the state `collect` returns (called synchronously, once, so
   * the records come from one consistent state), then drops from the log what the
   * snapshot covers. Appends made while the snapshot is written are kept. Calls are
   * serialized: a second call waits for the first, then collects its own state.
   */
  snapshot(collect: () => Iterable<RecordInput>): Promise<void>;
  /** True when the log has grown past the size that asks for a snapshot. */
  readonly needsSnapshot: boolean;
  readonly walBytes: number;
  readonly fsyncCount: number;
  /** Latencies of the log's fsyncs (ms). */
  readonly fsyncLatency: LatencyStats;
  /** The log generation (bumped by every completed snapshot). */
  readonly walGeneration: number;
  /** The first IO failure, once the log is latched; null while healthy. */
  readonly failure: WaveKVError | null;
  /** Flushes, fsyncs, releases the storage (for files: the directory lock). Idempotent. */
  close(): Promise<void>;
}

/** What a Node passes through to its storage (NodeOptions.storage). */
export interface StorageTuning {
  /**
   * Open even though files the WAL or snapshot says existed are missing
   * (MISSING_SNAPSHOT, MISSING_WAL): start from what remains with a loud warning, and
   * record the loss so later opens do not refuse again.
   * @defaultValue false (refuse, so the files can be restored)
   */
  acceptDataLoss?: boolean;
  /** Test seam at the file boundary (see `FaultHook`): throw to simulate the OS failing a write, fsync or open. */
  faults?: FaultHook;
}
