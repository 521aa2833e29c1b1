/**
 * A node's local writes (put, forcePut, delete): stamp, check, log, apply — the path
 * docs/PROTOCOL.md "Clocks" describes. OwnSeqs owns the seq counter, Node the storage; this
 * module owns what is in flight between the log append and the apply.
 *
 *   const writes = new LocalWrites(host);
 *   await writes.write("k", bytes, false);      // the Entry written, or SUPERSEDED / CLOCK_SKEW / …
 *   writes.pendingRecords.values();              // logged, not yet applied (snapshots include them)
 */
import { RecordKind, entryToRecord, type RecordInput } from "../core/record.js";
import { WaveKVError } from "../core/errors.js";
import { compareStamps } from "../core/stamp.js";
import { isReservedKey, reservedRefusal } from "../core/reserved.js";
import { RESERVED_LIMITS, RESERVED_PREFIX, type AdmitFn, type Entry, type Limits } from "../core/types.js";
import { utf8Length } from "../core/encoding.js";
import type { PeerClocks } from "../sync/clock.js";
import type { ReplicaState } from "../state/replica.js";
import type { Storage } from "../storage/interface.js";
import type { OwnSeqs } from "./seqs.js";
import { isWellFormed } from "./scan-options.js";

/** What the write path reads from and reports to its node. */
export interface WriteHost {
  readonly id: number;
  readonly limits: Readonly<Limits>;
  readonly state: ReplicaState;
  readonly admit: AdmitFn | undefined;
  readonly clock: () => number;
  /** Peers' clock readings, to refuse a write peers would refuse by the drift rule. */
  readonly clocks: PeerClocks;
  /** The log (null: an in-memory node). */
  storage(): Storage | null;
  /** Our seqs: a write takes `next`, and spends it once checked (before it is logged). */
  readonly seqs: OwnSeqs;
  /** A write of ours with `seq` applied: our coverage moves, a snapshot may be due. */
  applied(seq: number): void;
}

export class LocalWrites {
  readonly #h: WriteHost;
  /**
   * Records of local writes logged but not yet applied (awaiting their fsync), by seq.
   * A snapshot taken meanwhile must include them: it supersedes the WAL up to its end,
   * which already holds them, while memory does not yet.
   */
  readonly pendingRecords = new Map<number, RecordInput>();
  /**
   * Keys with a local write logged but not yet applied (awaiting its fsync): the seq of
   * the latest. Its record (in pendingRecords) carries the key's highest pending stamp,
   * since each write to a key stamps at least its pending predecessor's; a write leaving
   * removes the key only if it is still the latest. One number per key, no object per put.
   */
  readonly #pendingKeys = new Map<string, number>();
  /** close() waiting for the logged writes to settle (see `settled`). */
  #drained: (() => void) | null = null;
  /** The stamp of the key a write replaces (scratch: one read per write, no Entry built). */
  readonly #stamp = new Float64Array(4);

  constructor(host: WriteHost) {
    this.#h = host;
  }

  /** Its node (read by src/node/batch.ts, which writes batches through this class). */
  get host(): WriteHost {
    return this.#h;
  }

  /** Resolves once no write is between its log append and its apply (close() waits for it). */
  settled(): Promise<void> {
    if (this.pendingRecords.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const prev = this.#drained;
      this.#drained = prev ? () => { prev(); resolve(); } : resolve;
    });
  }

  checkKey(key: string): number {
    if (typeof key !== "string") throw new WaveKVError("INVALID_ARGUMENT", "keys are strings");
    // A lone surrogate has no UTF-8 form: "a\uD800" and "a\uDC00" would both become
    // "a\uFFFD" on the wire and in the index while staying two keys in JS.
    if (!isWellFormed(key)) throw new WaveKVError("INVALID_ARGUMENT", "key is not well-formed Unicode (it contains a lone surrogate)");
    const len = utf8Length(key), max = this.#h.limits.maxKeyBytes;
    if (len > max) throw new WaveKVError("KEY_TOO_LARGE", `key is ${len} bytes; limits.maxKeyBytes is ${max}`);
    return len;
  }

  #checkWrite(entry: Entry, keyLen: number, exists: boolean): void {
    const h = this.#h, limits = h.limits, state = h.state;
    const valueLen = entry.value?.length ?? 0;
    if (valueLen > limits.maxValueBytes) throw new WaveKVError("VALUE_TOO_LARGE", `value is ${valueLen} bytes; limits.maxValueBytes is ${limits.maxValueBytes}`);
    if (isReservedKey(entry.key)) {
      // This node's own bookkeeping: not the user's limits, but the reserved prefix's own rules.
      const why = reservedRefusal(entry.key, h.id, valueLen);
      if (why !== undefined) throw new WaveKVError("RESERVED_KEY", `${why}: use another key`);
      if (!exists && state.reservedKeys + 1 > RESERVED_LIMITS.maxKeys) throw new WaveKVError("STORE_FULL", `${RESERVED_LIMITS.maxKeys} keys under ${RESERVED_PREFIX} are held; collect garbage`);
    } else if (state.userKeyCount + 1 > limits.maxKeys || state.userBytes + keyLen + valueLen > limits.maxTotalBytes) {
      // With room for one more key of this size the write fits whether or not the key
      // exists (an overwrite grows the total by at most valueLen): the common path reads nothing more.
      if (!exists) {
        if (state.userKeyCount + 1 > limits.maxKeys) throw new WaveKVError("STORE_FULL", `the store holds limits.maxKeys = ${limits.maxKeys} keys (tombstones included); delete and collect garbage, or raise the limit`);
        throw new WaveKVError("STORE_FULL", `the write would exceed limits.maxTotalBytes = ${limits.maxTotalBytes}`);
      }
      const grow = valueLen - state.valueLengthAt(state.slotOf(entry.key));
      if (grow > 0 && state.userBytes + grow > limits.maxTotalBytes) throw new WaveKVError("STORE_FULL", `the write would exceed limits.maxTotalBytes = ${limits.maxTotalBytes}`);
    }
    if (h.admit) {
      const verdict = h.admit(entry);
      if (verdict !== true) throw new WaveKVError("REJECTED", `admit refused ${JSON.stringify(entry.key)}: ${verdict}`);
    }
  }

  /**
   * Stamp, check, log and apply one local write (docs/PROTOCOL.md "Clocks").
   *
   * Stamp: the clock, except that this node's own writes to ONE key stay ordered: when
   * the key's entry, or a pending (logged, not yet applied) write of ours to it, is ours
   * and stamped after now, the write takes that stamp and its higher seq orders it after.
   * No other key is touched: a clock that was once ahead leaves no floor behind it, and
   * a peer's message never moves our clock. forcePut: at least the entry's stamp + 1.
   *
   * Refused before anything is logged or a seq spent: SUPERSEDED (a put or delete that
   * would lose LWW to the key's entry), CLOCK_SKEW (a stamp peers would refuse by the
   * drift rule), then the limits, the reserved prefix and `admit`. A refusal throws
   * synchronously (Node's guard makes it a rejection); an in-memory write is applied
   * before this returns, with no async function frame (on JSC that frame was a tenth
   * of an in-memory put).
   */
  write(key: string, value: Uint8Array | null, force: boolean, ttlMs?: number): Promise<Entry> {
    const keyLen = this.checkKey(key);
    if (ttlMs !== undefined && isReservedKey(key)) throw new WaveKVError("INVALID_ARGUMENT", `keys under ${RESERVED_PREFIX} do not expire (ttlMs given for ${JSON.stringify(key)})`);
    const h = this.#h;
    const entry = this.stamped(key, value, force, h.seqs.next, keyLen, ttlMs);
    h.seqs.next++;
    const storage = h.storage();
    if (storage) return this.#logged(storage, entry, keyLen);
    return Promise.resolve(this.#apply(entry, keyLen));
  }

  /**
   * `key`'s write stamped (see write) with `seq`, checked: SUPERSEDED, CLOCK_SKEW, limits,
   * reserved prefix, `admit`. Leaves the key's current stamp in #stamp.
   */
  stamped(key: string, value: Uint8Array | null, force: boolean, seq: number, keyLen: number, ttlMs?: number): Entry {
    const h = this.#h, id = h.id;
    const m = this.#stamp, exists = h.state.stampInto(key, m);
    const pendingSeq = this.#pendingKeys.get(key);
    let timestamp = h.clock();
    if (exists && m[1] === id && m[0]! > timestamp) timestamp = m[0]!;
    if (pendingSeq !== undefined) {
      const pending = this.pendingRecords.get(pendingSeq)!.timestamp;
      if (pending > timestamp) timestamp = pending;
    }
    if (force && exists && m[0]! >= timestamp) timestamp = m[0]! + 1;
    const entry: Entry = { key, value, timestamp, node: id, seq };
    // The expiry is in the stamp's domain: every replica compares it with its own clock.
    if (ttlMs !== undefined && value !== null) entry.expiresAt = timestamp + ttlMs;
    if (exists && compareStamps(m[0]!, m[1]!, m[2]!, timestamp, id, seq) > 0) throw this.#superseded(key, "was refused");
    this.#checkClock(timestamp, key);
    this.#checkWrite(entry, keyLen, exists);
    return entry;
  }

  /**
   * Logs a batch's entries behind their head (docs/FORMAT.md §3.1) in one deferred append
   * and holds them pending like a put's until `settle` (src/node/batch.ts writes batches).
   */
  logBatch(storage: Storage, entries: readonly Entry[]): Promise<void> {
    const records = entries.map(entryToRecord);
    const head: RecordInput = { kind: RecordKind.BatchHead, key: "", value: null, timestamp: entries[0]!.timestamp, node: this.#h.id, seq: entries.length };
    const durable = storage.append([head, ...records], { defer: true });
    for (const r of records) {
      this.pendingRecords.set(r.seq, r);
      this.#pendingKeys.set(r.key as string, r.seq);
    }
    return durable;
  }

  /** Log `entry` (a group write while an fsync runs), then apply it once durable. */
  async #logged(storage: Storage, entry: Entry, keyLen: number): Promise<Entry> {
    const key = entry.key, seq = entry.seq;
    const record = entryToRecord(entry);
    // Deferred: while an fsync runs, concurrent puts queue and go out as one encode and
    // one write when it completes (group write); an idle log writes at once.
    const durable = storage.append([record], { defer: true });
    this.pendingRecords.set(seq, record);
    // Reserve the stamp: a later write of ours to this key is ordered after it even before it applies.
    this.#pendingKeys.set(key, seq);
    let failed = true;
    try {
      await durable;
      failed = false;
    } catch (err) {
      throw err instanceof WaveKVError ? err : new WaveKVError("IO", `write failed: ${(err as Error).message}`, { cause: err });
    } finally {
      this.settle(key, seq, failed);
    }
    // Applied only once durable, so memory never shows a write the log refused.
    return this.#apply(entry, keyLen);
  }

  /** The logged write `seq` to `key` left the pending set (applied next, or `failed`). */
  settle(key: string, seq: number, failed: boolean): void {
    this.pendingRecords.delete(seq);
    if (this.#pendingKeys.get(key) === seq) {
      this.#pendingKeys.delete(key);
      // Appends succeed in log (= seq) order, so none of this key's is still pending, unless
      // this one was refused alone (INVALID_ARGUMENT) ahead of an earlier one: rare, so a scan.
      if (failed) for (const r of this.pendingRecords.values()) if (r.key === key) this.#pendingKeys.set(key, r.seq);
    }
    if (this.#drained !== null && this.pendingRecords.size === 0) {
      const drained = this.#drained;
      this.#drained = null;
      drained();
    }
  }

  #apply(entry: Entry, keyLen: number): Entry {
    const h = this.#h;
    const won = h.state.applyOne(entry.key, entry.value, entry.timestamp, h.id, entry.seq, keyLen, entry.expiresAt);
    h.applied(entry.seq);
    if (!won) throw this.#superseded(entry.key, "was logged, then lost to an entry merged during its fsync");
    return entry;
  }

  #superseded(key: string, what: string): WaveKVError {
    const winner = this.#h.state.get(key)!;
    return new WaveKVError("SUPERSEDED", `the write to ${JSON.stringify(key)} ${what}: node ${winner.node}'s entry, stamped ${winner.timestamp - this.#h.clock()} ms from now, wins (err.winner); forcePut writes over it`, { winner });
  }

  /**
   * CLOCK_SKEW when `timestamp` is further ahead of the cluster's clock (our clock plus
   * the peers' median offset, src/sync/clock.ts) than limits.maxClockDriftMs: peers would
   * refuse the entry until their clocks caught up, and it must not be acknowledged.
   * No recent peer evidence: no check.
   */
  #checkClock(timestamp: number, key: string): void {
    const h = this.#h, offset = h.clocks.offset();
    if (offset === null) return;
    const ahead = timestamp - h.clock() - offset, drift = h.limits.maxClockDriftMs;
    if (ahead <= drift) return;
    // Our clock itself, or only this key's stamp (an entry written while a clock was ahead)?
    const ours = -offset > drift;
    throw new WaveKVError("CLOCK_SKEW", `${ours ? "this node's clock" : `the stamp ${JSON.stringify(key)} needs to order after its entry`} is ${ahead} ms ahead of its peers' clocks (limits.maxClockDriftMs ${drift}): nothing was written; ${ours ? "fix this machine's clock (NTP)" : `retry in ${ahead - drift} ms`}`);
  }
}
