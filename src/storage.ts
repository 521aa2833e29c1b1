/**
 * Durable storage of one node: WAL + snapshots in a data directory (SPEC section 4).
 * CONTRACT — implemented by the durability work (issue 4); src/node.ts codes against it.
 *
 *   const storage = await openStorage({ dir, nodeId: 1, fsync: "always" });
 *   const state = storage.recovered;            // replay into memory, in order
 *   await storage.append(records);              // durable per policy when it resolves
 *   await storage.snapshot(() => allRecords()); // persist(): snapshot, then reset the WAL
 */
import type { DecodedBatch, RecordInput } from "./codec.js";
import type { FsyncPolicy } from "./types.js";

export interface StorageOptions {
  dir: string;
  nodeId: number;
  fsync: FsyncPolicy;
  /** WAL size that triggers an automatic snapshot request (see `needsSnapshot`). */
  snapshotWalBytes?: number;
  /** Clock for the container base timestamps; defaults to Date.now. */
  clock?: () => number;
}

export interface RecoveredState {
  /** Created once per data directory and kept there. */
  uuid: string;
  /**
   * Records in apply order: the snapshot's, then the WAL's. Kinds 0/1 are entries to
   * merge under LWW, 2/3 peer membership changes, 4 a seq high-water mark.
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
   * `append` returns, so call order is log order. Rejects with WaveKVError IO; after
   * one IO failure every later append rejects until the node is reopened.
   */
  append(records: readonly RecordInput[]): Promise<void>;
  /**
   * Writes a snapshot of the state `collect` returns (called synchronously, once, so
   * the records come from one consistent state), then drops from the WAL what the
   * snapshot covers. Appends made while the snapshot is written are kept.
   */
  snapshot(collect: () => Iterable<RecordInput>): Promise<void>;
  /** True when the WAL has grown past `snapshotWalBytes`. */
  readonly needsSnapshot: boolean;
  readonly walBytes: number;
  readonly fsyncCount: number;
  /** Flushes, fsyncs, releases the directory lock. */
  close(): Promise<void>;
}

export declare function openStorage(options: StorageOptions): Promise<Storage>;
