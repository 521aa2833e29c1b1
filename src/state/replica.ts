/**
 * The replicated data of one node: every key's winning entry, tombstones included.
 *
 *   const state = new ReplicaState(1);
 *   state.applyOne("k", bytes, ts, 1, seq);        // a local write, decided under LWW
 *   state.mergeBatch(batch, { limits, now });       // a remote batch, decided in one WASM call
 *   state.get("k"); [...state.scan("pre")]; state.digest();
 *
 * One owner per fact. The WASM index (src/index/kernel-index.ts) owns slots, key bytes and the
 * LWW metadata, the tombstone flag included: read there, never mirrored. ./values.ts owns
 * the live values' bytes and the batches retained for them; ./order.ts the slots in key
 * order; ./digest.ts the cached digest and summary; ./admission.ts the rules a merged
 * winner must pass; ./delta-slots.ts which slots a peer misses (the protocol encodes them:
 * src/sync/delta.ts). This module composes them: merges, installs winners, keeps counts.
 *
 * Nothing per key is built eagerly beyond the index (issue 4; values: ./values.ts). Two
 * caches of what the index knows, kept right by install and release, are filled by reads
 * only (a put-built 1M-key store holds no key string: docs/design/0014): `#keys` (slot →
 * key string: keyAt) and `#slotOf` (key → slot; authoritative when it holds every key).
 * Measured without them (bench/store.ts, 100k keys): get 1.0 vs 2.6 M/s, scan 0.5 vs 1.1
 * M/s — a get would be a kernel find, and every key a scan or seek compares decoded again.
 */
import { D_KEY_LEN, D_KEY_OFF, D_KIND, D_NODE, D_SEQ_HI, D_SEQ_LO, D_VAL_LEN, D_VAL_OFF, DESCRIPTOR_WORDS, EXPIRY_BYTES, RecordKind, expiringPayload, hasValue, readExpiry, type DecodedBatch, type RecordInput } from "../core/record.js";
import { Expiries } from "./expiry.js";
import { PrevState, type MergeIndex, type MergeLimits, type Summary } from "../index/merge-index.js";
import { createMergeIndex } from "../index/kernel-index.js";
import { digestOf, PerVersion } from "./digest.js";
import { KeyOrder, type OrderSource } from "./order.js";
import { RETAIN_MIN_SHARE, SlotValues } from "./values.js";
import { selectDelta, type DeltaHold, type DeltaSlots, type SlotCursor } from "./delta-slots.js";
import { BatchRanges } from "./batch-ranges.js";
import { framedWithHeads, winnerRuns } from "./batch-winners.js";
import { admitWinners, dropRefusedReserved, mergeLimitsOf, REFUSE_TEXT, type Admitting, type BatchOutcome, type MergeOptions } from "./admission.js";
import { isReservedKey, isReservedKeyBytes } from "../core/reserved.js";
import type { Entry } from "../core/types.js";
import { joinU64, readUtf8, utf8Length } from "../core/encoding.js";

export type { BatchOutcome, MergeOptions } from "./admission.js";
export type { MergeGroups, RangeGroup } from "./batch-ranges.js";
export type { DeltaSlots, SlotCursor } from "./delta-slots.js";

export class ReplicaState implements OrderSource {
  readonly selfId: number;
  readonly #index: MergeIndex;
  readonly #values = new SlotValues();
  readonly #order = new KeyOrder(this);
  readonly #digest = new PerVersion<string>();
  readonly #summary = new PerVersion<Summary>();
  /** Key strings by slot, decoded on first read (see the header); sized by reads, not installs (#cacheKey). */
  readonly #keys: (string | undefined)[] = [];
  /** Cache of key → slot (see the header); holds every key when its size equals keyCount. */
  readonly #slotOf = new Map<string, number>();
  #live = 0;
  #tombstones = 0;
  #bytes = 0;
  #version = 0;
  /** Highest seq of our own entries ever applied (seq safety). */
  ownMaxSeq = 0;
  /** Slots of keys under RESERVED_PREFIX, kept out of the user's limits and counts (`userKeyCount`, `userBytes`, `userLive` subtract what these add). */
  readonly #reserved = new Set<number>();
  #reservedBytes = 0;
  #reservedLive = 0;
  /** The merge whose `admit` is running, if any: what reads see meanwhile (see #settle). */
  #admitting: Admitting | null = null;
  /** Called after a slot changed; the node turns it into watch events. */
  onChange: ((slot: number) => void) | null = null;
  /** Expiring entries by slot (./expiry.ts), and the clock reads compare them with (the node's). */
  readonly expiries = new Expiries();
  now: () => number = Date.now;
  /** Batch ranges of the entries (./batch-ranges.ts): pages and merges keep each whole. */ readonly batches = new BatchRanges();

  constructor(selfId: number, index: MergeIndex = createMergeIndex()) {
    this.selfId = selfId;
    this.#index = index;
  }

  get liveKeys(): number { return this.#live; }
  /** Keys held, tombstones and reserved keys included. */
  get keyCount(): number { return this.#live + this.#tombstones; }
  /** Key + value bytes of every entry, reserved ones included. */
  get totalBytes(): number { return this.#bytes; }
  /** Keys under RESERVED_PREFIX, tombstones included (bounded by RESERVED_LIMITS.maxKeys). */
  get reservedKeys(): number { return this.#reserved.size; }
  /** Keys held outside the reserved prefix, tombstones included: what `maxKeys` limits. */
  get userKeyCount(): number { return this.keyCount - this.#reserved.size; }
  /** Key + value bytes outside the reserved prefix: what `maxTotalBytes` limits. */
  get userBytes(): number { return this.#bytes - this.#reservedBytes; }
  /** Live keys outside the reserved prefix. */
  get userLive(): number { return this.#live - this.#reservedLive - (this.expiries.size === 0 ? 0 : this.expiries.expiredCount(this.now())); }
  /** Tombstones outside the reserved prefix. */
  get userTombstones(): number { return this.#tombstones - (this.#reserved.size - this.#reservedLive); }
  /** Bytes of merged batches kept because values are read from them (./values.ts). */
  get retainedBytes(): number { return this.#values.retainedBytes; }
  /** Changes on every state change; equal versions mean equal state. */
  get version(): number { return this.#version; }

  /** Slot of `key`, or -1: the cache, else one kernel probe (whose answer is cached). */
  slotOf(key: string): number {
    const cached = this.#slotOf.get(key);
    if (cached !== undefined) return cached;
    // A complete cache is authoritative. A string that is not well-formed Unicode has no
    // UTF-8 form, so it names no key (its U+FFFD encoding would name another one).
    if (this.#slotOf.size === this.keyCount || !(key as string & { isWellFormed(): boolean }).isWellFormed()) return -1;
    const slot = this.#index.find(key);
    // A tentative merge's new key (an `admit` callback reading mid-merge) is not there yet.
    if (slot < 0 || this.#tentativeNew(slot)) return -1;
    this.#slotOf.set(key, slot);
    if (this.#keys[slot] === undefined) this.#cacheKey(slot, key);
    return slot;
  }

  /** Whether the index holds `slot` only as a new key of the merge whose `admit` runs. */
  #tentativeNew(slot: number): boolean {
    const t = this.#admitting;
    if (t === null) return false;
    if (t.fresh === null) {
      const w = t.w;
      t.fresh = new Set();
      for (let j = 0; j < w.length; j += 3) if (w[j + 2] === PrevState.Absent) t.fresh.add(w[j + 1]!);
    }
    return t.fresh.has(slot);
  }

  /** Slots the replica holds (OrderSource), a tentative merge's new keys left out. */
  heldSlots(): number[] {
    const used = Array.from(this.#index.usedSlots());
    return this.#admitting === null ? used : used.filter((slot) => !this.#tentativeNew(slot));
  }

  /**
   * The key of a held slot (decoded from the index on first use): the one way a read
   * gets a key string. (A sort of one element, or a merge nothing compared, leaves
   * `#keys` unfilled: nothing may assume an earlier pass filled it.)
   */
  keyAt(slot: number): string {
    const known = this.#keys[slot];
    if (known !== undefined) return known;
    const view = this.#index.keyView(slot);
    const key = readUtf8(view, 0, view.length);
    this.#cacheKey(slot, key);
    return key;
  }

  /** Caches `key`, the array grown to cover every key at once (slot by slot past its end, it turns into a dictionary); not sized at install: docs/design/0017. */
  #cacheKey(slot: number, key: string): void {
    const keys = this.#keys;
    if (slot >= keys.length) keys.length = Math.max(slot + 1, this.keyCount, keys.length + (keys.length >> 1));
    keys[slot] = key;
  }

  /** Byte length of the value at `slot` (0 for a tombstone), without building an Entry. */
  valueLengthAt(slot: number): number {
    return this.#values.lengthAt(slot);
  }

  /** The slot's metadata into #meta, as reads must see it: while `admit` runs, the stamps from before the batch (see #settle). */
  #metaOf(slot: number): Float64Array {
    const t = this.#admitting, m = this.#meta;
    if (t !== null && t.prior === null) this.#settle(t);
    this.#index.metaInto(slot, m);
    const prior = t?.prior!.get(slot);
    if (prior !== undefined) m.set(prior);
    return m;
  }
  /** metaInto's output: one Entry per read, not an Entry and a metadata object. */
  readonly #meta = new Float64Array(4);

  entryAt(slot: number): Entry {
    return this.readEntry(slot, true)!;
  }

  /** entryAt, or undefined for a tombstone unless `includeTombstones`; `key` when known (a scan's: a second lookup cost it 20–30 % CPU). */
  readEntry(slot: number, includeTombstones: boolean, key?: string): Entry | undefined {
    const m = this.#metaOf(slot);
    if (m[3] !== 0 && !includeTombstones) return undefined;
    const expiresAt = m[3] !== 0 ? undefined : this.expiries.at(slot);
    if (expiresAt !== undefined) {
      // Expired: absent to reads, a deletion to reads that show tombstones (and to watchers).
      const expired = expiresAt <= this.now();
      if (expired && !includeTombstones) return undefined;
      return { key: key ?? this.keyAt(slot), value: expired ? null : this.#values.get(slot).subarray(EXPIRY_BYTES), timestamp: m[0]!, node: m[1]!, seq: m[2]!, expiresAt };
    }
    return { key: key ?? this.keyAt(slot), value: m[3] !== 0 ? null : this.#values.get(slot), timestamp: m[0]!, node: m[1]!, seq: m[2]! };
  }

  /** The entry as stored, expired or not (the digest's view: it hashes what replicas hold, not what a clock shows). */
  #storedEntry(slot: number): Entry {
    const e = this.readEntry(slot, true)!;
    if (e.expiresAt !== undefined && e.value === null) e.value = this.#values.get(slot).subarray(EXPIRY_BYTES);
    return e;
  }

  get(key: string): Entry | undefined {
    const slot = this.slotOf(key);
    return slot < 0 ? undefined : this.entryAt(slot);
  }

  /** The LWW stamp of `key`'s entry into `out` (timestamp, node, seq), or false when absent: what a local write compares with, without an Entry. */
  stampInto(key: string, out: Float64Array): boolean {
    const slot = this.slotOf(key);
    if (slot < 0) return false;
    this.#index.metaInto(slot, out);
    return true;
  }

  /** Decide one local (or replayed) entry under LWW now. Returns false if it lost. */
  applyOne(key: string, value: Uint8Array | null, timestamp: number, node: number, seq: number, keyLen = utf8Length(key), expiresAt?: number): boolean {
    // An expiring value is stored (and hashed into the summary) as its kind-5 payload.
    if (expiresAt !== undefined && value !== null) value = expiringPayload(expiresAt, value);
    else expiresAt = undefined;
    const r = this.#index.upsert(key, timestamp, node, seq, value === null, value);
    this.#noteOwn(node, seq);
    if (r === null) return false;
    const { slot, prev } = r;
    if (prev === PrevState.Absent) this.#addKey(slot, keyLen, isReservedKey(key));
    const oldLen = this.#values.lengthAt(slot);
    this.#values.clear(slot);
    if (value !== null) this.#values.set(slot, value);
    if (expiresAt !== undefined) this.expiries.set(slot, expiresAt);
    else this.expiries.delete(slot);
    this.#changed(slot, prev, oldLen, value === null ? -1 : value.length);
    return true;
  }

  /**
   * Merge a decoded batch (kinds 0/1) in one kernel call. Losing entries cost no JS
   * allocation; winners are admitted (limits, capacity, `admit`), persisted, then applied.
   * A refusal masks that entry and re-runs the batch (rare path: one more kernel pass).
   */
  mergeBatch(batch: DecodedBatch, opts: MergeOptions): BatchOutcome {
    const mergeLimits = mergeLimitsOf(opts);
    let skip: Uint8Array | undefined;
    const reasons = new Map<number, string>();
    if (opts.refuse !== undefined && opts.refuse.size > 0) {
      skip = new Uint8Array(batch.count);
      for (const [i, why] of opts.refuse) { skip[i] = 1; reasons.set(i, why); }
    }
    /** Refused for good by the reserved-key rule: never admissible, so they do not hold back acks (R1). */
    const refusedForGood = new Set<number>();
    // Our own log: nothing below can refuse an entry, so no undo records are needed.
    const final = opts.trusted === true && opts.persist === undefined;
    for (;;) {
      const result = final ? this.#index.mergeFinal(batch, mergeLimits) : this.#index.merge(batch, mergeLimits, skip);
      for (let j = 0; j < result.refused.length; j += 2) {
        const i = result.refused[j]!, reason = result.refused[j + 1]!;
        if (!reasons.has(i)) reasons.set(i, REFUSE_TEXT[reason] ?? "refused");
      }
      const w = result.winners;
      // Rules only JS can apply run on winners alone: a losing entry changes nothing.
      // An `admit` that reads the store must see it as before the batch (see #settle).
      if (opts.admit !== undefined) this.#admitting = { batch, limits: mergeLimits, skip, w, prior: null, fresh: null };
      let refusedHere: number[];
      try {
        refusedHere = opts.trusted ? [] : admitWinners(this, batch, w, opts, reasons, refusedForGood);
      } catch (err) {
        // An `admit` that throws refuses the batch: undecided, the tentative stamps would stay.
        this.#index.rollback();
        throw err;
      } finally {
        this.#admitting = null;
      }
      if (refusedHere.length > 0) {
        // Undo the tentative decisions and decide again without the refused entries,
        // so that a lower version of the same key in this batch can still win.
        this.#index.rollback();
        skip ??= new Uint8Array(batch.count);
        for (const i of refusedHere) skip[i] = 1;
        continue;
      }
      const rejected = reasons.size;
      const why = [...reasons].slice(0, 8).map(([i, r]) => `${batch.key(i)}: ${r}`);
      const runs = winnerRuns(batch, w, opts.groups); // a received batch's winners (./batch-winners.ts)
      if (opts.persist && w.length > 0) {
        try {
          opts.persist(framedWithHeads(batch, w, runs));
        } catch (err) {
          this.#index.rollback();
          return { merged: 0, rejected, complete: false, reasons: [...why, `log append failed: ${(err as Error).message}`] };
        }
      }
      if (!final) this.#index.commit();
      this.#applyWinners(batch, w, opts.trusted === true);
      if (runs.length > 0) this.batches.addRuns(runs, this.#index);
      return { merged: w.length / 3, rejected, complete: rejected === (opts.decided ?? 0) + refusedForGood.size, reasons: why };
    }
  }

  /**
   * The first read while `admit` runs: the kernel has stamped overwritten slots with the
   * winners' metadata already, so roll back, note what those slots held (for #metaOf),
   * and decide the batch again — the same inputs on the same index give the same
   * winners. Costs one more kernel pass, only for a batch whose `admit` reads.
   */
  #settle(t: Admitting): void {
    const w = t.w, m = this.#meta;
    this.#index.rollback();
    const prior = new Map<number, [number, number, number, number]>();
    for (let j = 0; j < w.length; j += 3) {
      const slot = w[j + 1]!;
      if (w[j + 2] === PrevState.Absent || prior.has(slot)) continue;
      this.#index.metaInto(slot, m);
      prior.set(slot, [m[0]!, m[1]!, m[2]!, m[3]!]);
    }
    t.prior = prior;
    const again = this.#index.merge(t.batch, t.limits, t.skip).winners;
    if (again.length !== w.length || again.some((x, k) => x !== w[k])) throw new Error("internal: a batch merged again decided differently");
  }

  /**
   * Install a committed batch's winners straight from its descriptors: no key string, no
   * per-value copy. Values stay in the batch's bytes (retained) when they are most of
   * them — our own log always (we own those bytes), a remote batch only then, after one
   * copy (the caller may reuse its buffer); otherwise each value is copied.
   */
  #applyWinners(batch: DecodedBatch, w: Uint32Array, owned: boolean): void {
    if (w.length === 0) return;
    const d = batch.words;
    let valueBytes = 0, high = 0;
    for (let j = 0; j < w.length; j += 3) {
      const at = w[j]! * DESCRIPTOR_WORDS;
      if (hasValue(d[at + D_KIND]!)) valueBytes += d[at + D_VAL_LEN]!;
      if (w[j + 1]! >= high) high = w[j + 1]! + 1;
    }
    const values = this.#values;
    let id = 0;
    let bytes = batch.bytes;
    if (valueBytes > 0 && (owned || valueBytes >= bytes.length * RETAIN_MIN_SHARE)) {
      if (!owned) bytes = bytes.slice();
      id = values.beginApply(owned ? batch : null, bytes, w);
    }
    this.#values.ensure(high);
    for (let j = 0; j < w.length; j += 3) {
      const at = w[j]! * DESCRIPTOR_WORDS, slot = w[j + 1]!, prev = w[j + 2]!;
      this.#noteOwn(d[at + D_NODE]!, joinU64(d[at + D_SEQ_LO]!, d[at + D_SEQ_HI]!));
      if (prev === PrevState.Absent) this.#addKey(slot, d[at + D_KEY_LEN]!, isReservedKeyBytes(bytes, d[at + D_KEY_OFF]!, d[at + D_KEY_LEN]!));
      const oldLen = values.lengthAt(slot);
      values.clear(slot);
      let len = -1;
      const kind = d[at + D_KIND]!;
      if (kind === RecordKind.Expiring) this.expiries.set(slot, readExpiry(bytes, d[at + D_VAL_OFF]!));
      else this.expiries.delete(slot);
      if (kind !== RecordKind.Tombstone) {
        len = d[at + D_VAL_LEN]!;
        const off = d[at + D_VAL_OFF]!;
        // An empty value holds no bytes of the buffer: kept apart, the buffer's live count stays exact.
        if (id === 0 || len === 0) values.set(slot, bytes.subarray(off, off + len));
        else values.setRetained(slot, id, off, len);
      }
      this.#changed(slot, prev, oldLen, len);
    }
    if (id !== 0) values.endApply(id);
  }

  /**
   * Room for `records` more keys of `keyBytes` bytes, taken at once: a replay that comes
   * in windows says how much the whole log holds, so the index and the per-slot arrays
   * grow once instead of doubling (and copying) as the windows arrive. A hint.
   */
  reserve(records: number, keyBytes: number): void {
    this.#index.reserve(records, keyBytes);
    this.#values.ensure(this.keyCount + records);
  }

  #noteOwn(node: number, seq: number): void {
    if (node === this.selfId && seq > this.ownMaxSeq) this.ownMaxSeq = seq;
  }

  /**
   * A slot changed (counts, version, watchers): it held a value of `oldLen` bytes, a tombstone
   * or nothing (`prev`, the index's answer), and now a value of `newLen` bytes (-1: a tombstone).
   */
  #changed(slot: number, prev: PrevState, oldLen: number, newLen: number): void {
    if (prev === PrevState.Value) this.#live--;
    else if (prev === PrevState.Tombstone) this.#tombstones--;
    if (newLen < 0) this.#tombstones++;
    else this.#live++;
    const grow = Math.max(newLen, 0) - oldLen;
    this.#bytes += grow;
    if (this.#reserved.size > 0 && this.#reserved.has(slot)) {
      this.#reservedBytes += grow;
      this.#reservedLive += (newLen < 0 ? 0 : 1) - (prev === PrevState.Value ? 1 : 0);
    }
    this.#version++;
    this.onChange?.(slot);
  }

  /** A new key at `slot` (its string decoded when first read; a slot past the cache's end has none). */
  #addKey(slot: number, keyLen: number, reserved: boolean): void {
    if (slot < this.#keys.length) this.#keys[slot] = undefined;
    this.#bytes += keyLen;
    if (reserved) {
      this.#reserved.add(slot);
      this.#reservedBytes += keyLen;
    }
    this.#order.added(slot);
  }

  /** Drop the reserved entries the reserved-key rule refuses (./admission.ts dropRefusedReserved). Returns their keys. */
  dropRefusedReserved(): string[] { return dropRefusedReserved(this, this.#reserved); }

  /** Drop a slot (tombstone GC; a refused reserved entry). The caller has checked it may go. */
  release(slot: number): void {
    const keyLen = this.#index.keyView(slot).length;
    this.#index.metaInto(slot, this.#meta);
    const tombstone = this.#meta[3] !== 0;
    const valueLen = this.#values.lengthAt(slot);
    // Not keyAt: a key never decoded is not in `#slotOf` either (slotOf fills both).
    const key = this.#keys[slot];
    this.#index.release(slot);
    this.expiries.delete(slot);
    if (key !== undefined) this.#slotOf.delete(key);
    if (this.#reserved.delete(slot)) {
      this.#reservedBytes -= keyLen + valueLen;
      if (!tombstone) this.#reservedLive--;
    }
    this.#values.clear(slot);
    if (tombstone) this.#tombstones--;
    else this.#live--;
    if (slot < this.#keys.length) this.#keys[slot] = undefined;
    this.#bytes -= keyLen + valueLen;
    this.#order.removed();
    this.#version++;
  }

  /** Entries in key order, lazily (./order.ts KeyOrder.scan). */
  scan(prefix: string, includeTombstones: boolean, after?: string, limit = Infinity): IterableIterator<Entry> {
    return this.#order.scan(prefix, includeTombstones, after, limit);
  }

  /** SPEC section 5 digest, cached until the state changes. */
  digest(): string {
    // entryAt, not the index's meta: while `admit` runs, the stamps before the batch.
    return this.#digest.get(this.#version, () => digestOf(this.#order.slots(), (slot) => this.#storedEntry(slot)));
  }

  /**
   * Range-summary root (src/index/summary.ts), cached until the state changes. The buckets are
   * kept by the kernel as entries change, so this costs one 33 KiB hash in WASM after a
   * change and nothing otherwise — unlike digest(), which rehashes every entry.
   */
  summaryRoot(): string {
    return this.summary().root;
  }

  /** Root, group and bucket hashes (copies: 33 KiB, a few µs), cached until the state changes. */
  summary(): Summary {
    // While `admit` runs the kernel's buckets include the batch: not cached at this version.
    if (this.#admitting !== null) return this.#index.summary();
    return this.#summary.get(this.#version, () => this.#index.summary());
  }

  /** Every held slot (tombstones included) whose key falls in one of `buckets`, in slot order: what a bucket repair sends. */
  slotsInBuckets(buckets: readonly number[]): Uint32Array {
    return this.#index.selectBuckets(buckets);
  }

  /** The entry of a held slot as a record (the encoders' input: snapshots, deltas, repairs). */
  recordAt(slot: number): RecordInput & { timestamp: number; node: number; seq: number } {
    const m = this.#meta;
    this.#index.metaInto(slot, m);
    const tombstone = m[3] !== 0;
    const timestamp = m[0]!, node = m[1]!, seq = m[2]!;
    const kind = tombstone ? RecordKind.Tombstone : this.expiries.at(slot) !== undefined ? RecordKind.Expiring : RecordKind.Value;
    return { kind, key: this.keyAt(slot), value: tombstone ? null : this.#values.get(slot), timestamp, node, seq };
  }

  /** The slots of the delta a peer with coverage `acks` is missing, one page of them (./delta-slots.ts). */
  deltaSlots(acks: ReadonlyMap<number, number>, after: SlotCursor | undefined, maxEntries: number, maxBytes: number, seqOrder: boolean, hold?: DeltaHold): DeltaSlots {
    return selectDelta(this.#index, (slot) => utf8Length(this.keyAt(slot)) + this.#values.lengthAt(slot) + 16, acks, after, maxEntries, maxBytes, seqOrder, hold, this.batches);
  }

  /** Drops the batch ranges that group fewer than two held entries (one walk of the slots). */
  pruneBatchRanges(): void { this.batches.retainLive(this.#index); }

  /** Tombstone slots with their stamps, for GC; with `now`, the entries expired then too (they read as absent alike). */
  *tombstoneSlots(now?: number): IterableIterator<{ slot: number; node: number; seq: number }> {
    const m = new Float64Array(4);
    for (const slot of this.#index.usedSlots()) {
      this.#index.metaInto(slot, m);
      if (m[3] === 0 && !(now !== undefined && (this.expiries.at(slot) ?? Infinity) <= now)) continue;
      yield { slot, node: m[1]!, seq: m[2]! };
    }
  }

  /** Every entry as a record, in key order (snapshots). */
  *records(): IterableIterator<RecordInput> {
    for (const slot of this.#order.slots()) yield this.recordAt(slot);
  }

  dispose(): void {
    this.#order.closed = true;
    this.#index.dispose();
    this.#values.dispose();
  }
}
