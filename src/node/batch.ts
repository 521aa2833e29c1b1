/**
 * Atomic batches of local writes (docs/design/0027-atomic-batches.md): the operations'
 * shape and limits, checked before any stamp is taken; the write itself is LocalWrites.batch.
 *
 *   const items = batchItems([{ type: "put", key: "a", value: "1" }, { type: "delete", key: "b" }]);
 *   await writes.batch(items);       // all logged by one append (one fsync), applied in one step
 *
 * Everything here throws WaveKVError before anything is written: a batch is refused whole.
 */
import { WaveKVError } from "../core/errors.js";
import { abortReason } from "../core/abort.js";
import { toBytes, utf8Length } from "../core/encoding.js";
import { RecordKind, type RecordInput } from "../core/record.js";
import { isReservedKey } from "../core/reserved.js";
import type { Limits } from "../core/types.js";
import type { ReplicaState } from "../state/replica.js";
import { MAX_BATCH_ENTRIES } from "../storage/wal-batches.js";

export { MAX_BATCH_ENTRIES };

/** Most key + value bytes one batch carries (16 MiB): one WAL append, one envelope's worth. */
export const MAX_BATCH_BYTES = 16 << 20;

/** One operation of `node.batch` (abstract-level's shape; "del" is accepted for "delete"). */
export type BatchOperation =
  | { type: "put"; key: string; value: string | Uint8Array }
  | { type: "delete" | "del"; key: string };

/** An operation checked for shape: its value as bytes (null: a delete). */
export interface BatchItem {
  key: string;
  value: Uint8Array | null;
}

function invalid(i: number, what: string): WaveKVError {
  return new WaveKVError("INVALID_ARGUMENT", `batch operation ${i}: ${what}; nothing was written`);
}

/**
 * The operations as items, refused whole (INVALID_ARGUMENT, RESERVED_KEY) when: not a
 * non-empty array of at most MAX_BATCH_ENTRIES operations, an operation of another shape,
 * a key named twice (which write would win is not obvious: write one), a reserved key
 * (the node's own bookkeeping never goes in a batch), or more than MAX_BATCH_BYTES of
 * keys and values; or `signal` aborted (its reason). Key and value sizes against
 * `limits` are checked with the stamps.
 */
export function batchItems(ops: unknown, signal?: AbortSignal): BatchItem[] {
  // Checked once: everything up to the log append is synchronous, and after it the batch is written.
  if (signal?.aborted) throw abortReason(signal);
  if (!Array.isArray(ops)) throw new WaveKVError("INVALID_ARGUMENT", `batch takes an array of operations, got ${ops === null ? "null" : typeof ops}`);
  if (ops.length === 0) throw new WaveKVError("INVALID_ARGUMENT", "batch of no operations: nothing to write");
  if (ops.length > MAX_BATCH_ENTRIES) throw new WaveKVError("INVALID_ARGUMENT", `batch of ${ops.length} operations; at most ${MAX_BATCH_ENTRIES}; nothing was written`);
  const items: BatchItem[] = [];
  const seen = new Set<string>();
  let bytes = 0;
  for (let i = 0; i < ops.length; i++) {
    const op: unknown = ops[i];
    if (op === null || typeof op !== "object") throw invalid(i, "not an object");
    const { type, key, value } = op as { type?: unknown; key?: unknown; value?: unknown };
    if (typeof key !== "string") throw invalid(i, "key must be a string");
    if (seen.has(key)) throw invalid(i, `key ${JSON.stringify(key)} is named twice`);
    seen.add(key);
    if (isReservedKey(key)) throw new WaveKVError("RESERVED_KEY", `batch operation ${i}: ${JSON.stringify(key)} is reserved; batches write user keys only; nothing was written`);
    let v: Uint8Array | null;
    if (type === "put") {
      if (typeof value !== "string" && !(value instanceof Uint8Array)) throw invalid(i, "a put needs a string or Uint8Array value");
      v = toBytes(value);
    } else if (type === "delete" || type === "del") {
      if (value !== undefined) throw invalid(i, "a delete carries no value");
      v = null;
    } else throw invalid(i, `type must be "put" or "delete", got ${JSON.stringify(type)}`);
    bytes += utf8Length(key);
    bytes += v?.length ?? 0;
    if (bytes > MAX_BATCH_BYTES) throw new WaveKVError("INVALID_ARGUMENT", `batch of more than ${MAX_BATCH_BYTES} bytes of keys and values (at operation ${i}); nothing was written`);
    items.push({ key, value: v });
  }
  return items;
}

/**
 * STORE_FULL unless the whole batch fits `limits.maxKeys` and `limits.maxTotalBytes`
 * together (each write was checked alone; this adds them up): new keys, tombstones
 * included, count once; an overwrite grows the total by its value's growth.
 */
export function checkBatchCapacity(state: ReplicaState, limits: Readonly<Limits>, items: readonly BatchItem[], keyLens: readonly number[]): void {
  let keys = 0, grow = 0;
  for (let i = 0; i < items.length; i++) {
    const it = items[i]!, slot = state.slotOf(it.key), len = it.value?.length ?? 0;
    if (slot < 0) { keys++; grow += keyLens[i]! + len; } else grow += len - state.valueLengthAt(slot);
  }
  if (state.userKeyCount + keys > limits.maxKeys) throw new WaveKVError("STORE_FULL", `the batch adds ${keys} keys; the store holds ${state.userKeyCount} of limits.maxKeys = ${limits.maxKeys} (tombstones included); nothing was written`);
  if (grow > 0 && state.userBytes + grow > limits.maxTotalBytes) throw new WaveKVError("STORE_FULL", `the batch would exceed limits.maxTotalBytes = ${limits.maxTotalBytes}; nothing was written`);
}

/** The WAL record that makes the `count` records after it one batch (docs/FORMAT.md §3.1). */
export function batchHeadRecord(node: number, count: number, timestamp: number): RecordInput {
  return { kind: RecordKind.BatchHead, key: "", value: null, timestamp, node, seq: count };
}
