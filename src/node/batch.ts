/**
 * Atomic batches of local writes (docs/design/0027-atomic-batches.md): the operations'
 * shape and limits, the stamps and checks through LocalWrites, one append, one apply.
 *
 *   await writeBatch(writes, [{ type: "put", key: "a", value: "1" }, { type: "delete", key: "b" }]);
 *
 * Every refusal throws WaveKVError before anything is written: a batch is refused whole.
 * Node.batch imports this module on first use (it stays out of the browser bundle's core).
 */
// Imports kept to errors (already a chunk of its own) and types: each other core module
// imported here would be split out of the browser bundle's core into a shared chunk, which
// costs bytes of the core's size target (docs/design/0027-atomic-batches.md).
import { WaveKVError } from "../core/errors.js";
import type { Entry, Limits } from "../core/types.js";
import type { ReplicaState } from "../state/replica.js";
import type { LocalWrites } from "./writes.js";

/** Most operations one batch takes (= MAX_BATCH_RECORDS, the most a WAL batch head may claim). */
export const MAX_BATCH_ENTRIES = 10_000;

/** Most key + value bytes one batch carries (16 MiB): one WAL append, one envelope's worth. */
export const MAX_BATCH_BYTES = 16 << 20;

/** One operation of `node.batch` (abstract-level's shape; "del" is accepted for "delete"). */
export type BatchOperation =
  | { type: "put"; key: string; value: string | Uint8Array }
  | { type: "delete" | "del"; key: string };

/** An operation checked for shape: its value as bytes (null: a delete), its key's UTF-8 length. */
export interface BatchItem {
  key: string;
  value: Uint8Array | null;
  keyLen: number;
}

function invalid(i: number, what: string): WaveKVError {
  return new WaveKVError("INVALID_ARGUMENT", `batch operation ${i}: ${what}; nothing was written`);
}

/**
 * The operations as items, refused whole (INVALID_ARGUMENT) when: not a
 * non-empty array of at most MAX_BATCH_ENTRIES operations, an operation of another shape,
 * a key named twice (which write would win is not obvious: write one), or more than MAX_BATCH_BYTES of
 * keys and values; or `signal` aborted (its reason). Key and value sizes against
 * `limits` are checked with the stamps.
 */
export function batchItems(ops: unknown, writes: LocalWrites, signal?: AbortSignal): BatchItem[] {
  // Checked once: everything up to the log append is synchronous, and after it the batch
  // is written. (The reason as core/abort.ts abortReason gives it.)
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new WaveKVError("IO", `aborted: ${String(signal.reason)}`);
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
    let v: Uint8Array | null;
    if (type === "put") {
      if (typeof value !== "string" && !(value instanceof Uint8Array)) throw invalid(i, "a put needs a string or Uint8Array value");
      v = typeof value === "string" ? new TextEncoder().encode(value) : value;
    } else if (type === "delete" || type === "del") {
      if (value !== undefined) throw invalid(i, "a delete carries no value");
      v = null;
    } else throw invalid(i, `type must be "put" or "delete", got ${JSON.stringify(type)}`);
    // Well-formed, within limits.maxKeyBytes (KEY_TOO_LARGE), and its UTF-8 length.
    const keyLen = writes.checkKey(key);
    bytes += keyLen + (v?.length ?? 0);
    if (bytes > MAX_BATCH_BYTES) throw new WaveKVError("INVALID_ARGUMENT", `batch of more than ${MAX_BATCH_BYTES} bytes of keys and values (at operation ${i}); nothing was written`);
    items.push({ key, value: v, keyLen });
  }
  return items;
}

/**
 * STORE_FULL unless the whole batch fits `limits.maxKeys` and `limits.maxTotalBytes`
 * together (each write was checked alone; this adds them up): new keys, tombstones
 * included, count once; an overwrite grows the total by its value's growth.
 */
export function checkBatchCapacity(state: ReplicaState, limits: Readonly<Limits>, items: readonly BatchItem[]): void {
  let keys = 0, grow = 0;
  for (let i = 0; i < items.length; i++) {
    const it = items[i]!, slot = state.slotOf(it.key), len = it.value?.length ?? 0;
    if (slot < 0) { keys++; grow += it.keyLen + len; } else grow += len - state.valueLengthAt(slot);
  }
  if (state.userKeyCount + keys > limits.maxKeys) throw new WaveKVError("STORE_FULL", `the batch adds ${keys} keys; the store holds ${state.userKeyCount} of limits.maxKeys = ${limits.maxKeys} (tombstones included); nothing was written`);
  if (grow > 0 && state.userBytes + grow > limits.maxTotalBytes) throw new WaveKVError("STORE_FULL", `the batch would exceed limits.maxTotalBytes = ${limits.maxTotalBytes}; nothing was written`);
}


/**
 * Writes `ops` as one batch: every item stamped and checked as a put or delete would be
 * (LocalWrites.stamped), and the batch's capacity as a whole, before any seq is spent; then
 * consecutive seqs, one append (the head and the records: one write, one fsync) and, once
 * durable, one synchronous apply, so no reader or watcher runs between two of its entries.
 * LWW decides each key: an entry that loses to one merged during the fsync is returned all
 * the same (logged, its seq spent) and `get` shows the winner. `onSeq` hears each entry once
 * its seq is taken, before anything is logged (Node's replication tracker: bytes behind).
 */
export function writeBatch(writes: LocalWrites, ops: unknown, signal?: AbortSignal, onSeq?: (e: Entry) => void): Promise<Entry[]> {
  const items = batchItems(ops, writes, signal);
  const h = writes.host, first = h.seqs.next;
  const entries = items.map((it, i) => writes.stamped(it.key, it.value, false, first + i, it.keyLen));
  checkBatchCapacity(h.state, h.limits, items);
  h.seqs.next += entries.length;
  // One range from now on (src/state/batch-ranges.ts): our pages and pushes keep it whole.
  if (entries.length > 1) h.state.batches.add(h.id, first, first + entries.length - 1);
  // Each entry's seq is spent now (whatever the append does): the node's write log learns them in seq order.
  if (onSeq) for (const e of entries) onSeq(e);
  const storage = h.storage();
  if (storage === null) return Promise.resolve(applyAll(writes, entries, items));
  return settleBatch(writes, writes.logBatch(storage, entries), entries, items);
}

async function settleBatch(writes: LocalWrites, durable: Promise<void>, entries: Entry[], items: BatchItem[]): Promise<Entry[]> {
  let failed = true;
  try {
    await durable;
    failed = false;
  } catch (err) {
    throw err instanceof WaveKVError ? err : new WaveKVError("IO", `batch write failed: ${(err as Error).message}`, { cause: err });
  } finally {
    for (const e of entries) writes.settle(e.key, e.seq, failed);
  }
  return applyAll(writes, entries, items);
}

/** The batch applied in one synchronous step (LWW per key); then our coverage moves. */
function applyAll(writes: LocalWrites, entries: Entry[], items: BatchItem[]): Entry[] {
  const h = writes.host, state = h.state;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    state.applyOne(e.key, e.value, e.timestamp, h.id, e.seq, items[i]!.keyLen);
  }
  for (const e of entries) h.applied(e.seq);
  return entries;
}
