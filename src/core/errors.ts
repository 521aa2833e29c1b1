/**
 * Every failure wavekv reports is a `WaveKVError` with a stable `code`.
 *
 *   try { await node.put(k, v) } catch (e) { if (isWaveKVError(e, "STORE_FULL")) ... }
 *
 * Codes are part of the public API: append only, never renamed.
 */
import type { Entry } from "./types.js";

export type ErrorCode =
  | "KEY_TOO_LARGE"
  | "VALUE_TOO_LARGE"
  | "STORE_FULL"
  | "REJECTED"
  | "BAD_ENVELOPE"
  | "UUID_MISMATCH"
  | "CORRUPT_WAL"
  | "CORRUPT_SNAPSHOT"
  | "CLOSED"
  | "IO"
  | "LOCKED"
  | "INVALID_ARGUMENT"
  /** A sender id would be one auto-discovered peer too many (sync tuning maxDiscoveredPeers). */
  | "TOO_MANY_PEERS"
  /** A local write stamped further ahead of the cluster's clock than `limits.maxClockDriftMs`: peers would refuse it. */
  | "CLOCK_SKEW"
  /** A put or delete that loses LWW to the key's current entry; `err.winner` is that entry. */
  | "SUPERSEDED"
  /** A key under the reserved prefix `__wavekv/` that this write may not touch. */
  | "RESERVED_KEY"
  /** Snapshots the WAL header says existed are gone (Node option storage.acceptDataLoss opens anyway). */
  | "MISSING_SNAPSHOT"
  /** The WAL is gone while a snapshot says writes followed it (storage.acceptDataLoss opens anyway). */
  | "MISSING_WAL"
  /**
   * The storage has no room for the write (a browser store's origin quota): the write
   * failed whole, nothing acknowledged before it is lost, and the storage is latched
   * until the node is reopened after space was freed.
   */
  | "STORAGE_FULL"
  /** `replicated()` gave up before enough peers confirmed the write (aborted, or too few peers remain); the write itself stands and still replicates. */
  | "NOT_REPLICATED";

export class WaveKVError extends Error {
  readonly code: ErrorCode;
  /** SUPERSEDED only: the entry that wins over the refused write. */
  readonly winner?: Entry;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; winner?: Entry }) {
    super(`${code}: ${message}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "WaveKVError";
    this.code = code;
    if (options?.winner !== undefined) this.winner = options.winner;
  }
}

export function isWaveKVError(e: unknown, code?: ErrorCode): e is WaveKVError {
  return e instanceof WaveKVError && (code === undefined || e.code === code);
}
