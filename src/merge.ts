/**
 * Batched LWW merge against a resident index (docs/ARCHITECTURE.md). CONTRACT — to be filled in.
 */
import type { DecodedBatch } from "./codec.js";

/** Stamps compared as (timestamp, node, seq); >0 when a is newer. The one TS definition of LWW. */
export declare function compareStamps(aTs: number, aNode: number, aSeq: number, bTs: number, bNode: number, bSeq: number): number;

export const enum PrevState { Absent = 0, Value = 1, Tombstone = 2 }
export const enum RefuseReason { KeyTooLarge = 1, ValueTooLarge = 2, ClockDrift = 3, Masked = 4, BadKind = 5 }

export interface MergeLimits { maxKeyBytes: number; maxValueBytes: number; maxTimestamp: number }

export interface MergeResult {
  /** Triples (entryIndex, slot, PrevState) for every entry that won, in batch order. */
  readonly winners: Uint32Array;
  /** Pairs (entryIndex, RefuseReason) for entries refused by limits. */
  readonly refused: Uint32Array;
}

export interface SlotMeta { timestamp: number; node: number; seq: number; tombstone: boolean }

export interface MergeIndex {
  /** Number of slots in use (live + tombstones). */
  readonly size: number;
  /**
   * Decide every entry of `batch` (kinds 0/1; others refused BadKind) in order; apply
   * winners tentatively. `skip[i] !== 0` refuses entry i with Masked. Must be followed
   * by commit() or rollback() before the next merge.
   */
  merge(batch: DecodedBatch, limits: MergeLimits, skip?: Uint8Array): MergeResult;
  commit(): void;
  rollback(): void;
  /**
   * Decide one entry now and apply it if it wins (local writes, WAL replay of a single
   * record). No commit/rollback. Returns null when the resident version is not older.
   */
  upsert(key: string | Uint8Array, timestamp: number, node: number, seq: number, tombstone: boolean): { slot: number; prev: PrevState } | null;
  /** Slot of a key, or -1. */
  find(key: Uint8Array): number;
  meta(slot: number): SlotMeta;
  keyBytes(slot: number): Uint8Array;   // a copy
  /** Drop a slot (tombstone GC); its id may be reused. */
  release(slot: number): void;
  /** Slots whose seq > acks.get(node) ?? 0, in slot order. */
  selectDelta(acks: ReadonlyMap<number, number>): Uint32Array;
  /** Highest seq among slots authored by `node`, or 0. */
  maxSeqOf(node: number): number;
  dispose(): void;
}

export declare function createMergeIndex(): MergeIndex;            // WASM
export declare function createMergeIndexReference(): MergeIndex;   // same algorithm, TS
