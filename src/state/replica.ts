/**
 * The replicated data of one node: every key's winning entry, tombstones included.
 *
 *   const state = new ReplicaState(1);
 *   state.applyOne("k", bytes, ts, 1, seq);        // a local write, decided under LWW
 *   state.mergeBatch(batch, { limits, now });       // a remote batch, decided in one WASM call
 *   state.get("k"); [...state.scan("pre")]; state.digest();
 *
 * LWW metadata and key bytes live in the WASM index (src/index/merge-index.ts); this module keeps,
 * by slot id, what JS callers read (values, key strings once read) plus counts, the
 * UTF-8 key order and the digest cache.
 *
 * Nothing per key is built eagerly beyond the index: recovering 1M entries must cost
 * little more than reading their bytes (issue 4). So key strings are decoded from the
 * index on first use (`#keys` caches them; every read takes a key through `keyAt`, which
 * fills it, never from `#keys` directly), `#slotOf` is a cache of key → slot filled by
 * lookups (authoritative only when it holds every key), and the values of a merged batch
 * stay in that batch's bytes — one retained buffer per batch, not one copy per value —
 * until read (see `#retain`). Invariant: `#keys[slot]`, when set, is the key of a slot
 * the index holds; `#values[slot]` is a value, null (tombstone), or undefined for a
 * value still in a retained buffer.
 */
import { encodeRecords } from "../codec/records.js";
import { RecordKind, type DecodedBatch, type RecordInput } from "../core/record.js";
import { compareKeys } from "../core/keyorder.js";
import { WaveKVError } from "../core/errors.js";
import { PrevState, type MergeIndex, type MergeLimits, type Summary } from "../index/merge-index.js";
import { createMergeIndex } from "../index/kernel-index.js";
import { DigestBuilder } from "./digest.js";
import type { BodyFraming, DeltaCursor, EncodedEntries } from "../sync/envelope.js";
import { isReservedKey, isReservedKeyBytes, reservedRefusal } from "../core/reserved.js";
import { RESERVED_LIMITS, RESERVED_PREFIX, type AdmitFn, type Entry, type Limits } from "../core/types.js";
import { joinU64, readUtf8, utf8Length } from "../core/encoding.js";
import { DESCRIPTOR_WORDS } from "../core/record.js";
import type { PinnedBytes } from "../kernel/memory.js";

/**
 * A batch's bytes kept for the values that won from it; dropped when none remain. Either
 * a JS buffer, or — a log read straight into linear memory (readIntoKernel) — a
 * block pinned there, whose values are handed out as copies (its views detach when
 * memory grows) and which is freed when dropped.
 */
interface Retained {
  bytes: Uint8Array | null;
  pinned: PinnedBytes | null;
  /** Where the batch's bytes start in `pinned` (value offsets include it). */
  base: number;
  /** Bytes of the batch the values came from (what compaction compares `live` with). */
  length: number;
  /** Value bytes still read from the buffer. */
  live: number;
  /** Slots that took a value from it (some may have moved on since): what compaction walks. */
  slots: Uint32Array;
}

/**
 * A retained batch whose live values fill less than this fraction of it is compacted
 * (its live values copied out), so overwritten entries cannot pin their batch for ever.
 */
const RETAIN_MIN_LIVE = 0.25;
/** Remote batches are retained whole only when winning values fill at least this much of them; else one copy each. */
const RETAIN_MIN_SHARE = 0.5;

export interface MergeOptions {
  limits: Limits;
  /** Wall clock now (ms): entries stamped after now + maxClockDriftMs are refused. */
  now: number;
  admit?: AdmitFn;
  /** Our own log replaying: no admission, nothing refused. */
  trusted?: boolean;
  /**
   * Called with the winners' records after admission and before anything is applied;
   * throwing aborts the whole batch (nothing applied). The WAL append goes here.
   */
  persist?: (records: RecordInput[]) => void;
  /** Entries the caller refuses before the merge, with why (counted in `rejected`). */
  refuse?: ReadonlyMap<number, string>;
  /** How many of `refuse` count as decided all the same (R1): they leave the batch complete. */
  decided?: number;
}

export interface BatchOutcome {
  /** Entries that changed state. */
  merged: number;
  /** Entries refused by limits or `admit`. */
  rejected: number;
  /** Every entry was decided (none refused, persist succeeded): rule R1 allows adopting acks. */
  complete: boolean;
  /** Why entries were refused (first few), for logs and errors. */
  reasons: string[];
}

export interface DeltaPage {
  encoded: EncodedEntries;
  /** Total entries the acks select after the cursor (this page included). */
  total: number;
  last: boolean;
  /** The last (node, seq) included: where the next page resumes. */
  cursor?: DeltaCursor;
  bytes: number;
}

const REFUSE_TEXT = ["", "key too large", "value too large", "timestamp beyond the clock-drift limit", "masked", "bad record kind"];

export class ReplicaState {
  readonly selfId: number;
  readonly #index: MergeIndex;
  readonly #keys: (string | undefined)[] = [];
  readonly #values: (Uint8Array | null | undefined)[] = [];
  /** Cache of key → slot (see the header); holds every key when its size equals keyCount. */
  readonly #slotOf = new Map<string, number>();
  /** Per slot, for values still in a retained buffer: buffer id (0 = none), offset, length. */
  #refBuf = new Uint32Array(0);
  #refOff = new Uint32Array(0);
  #refLen = new Uint32Array(0);
  /** Retained buffers by id (id 0 unused); `#freeIds` are ids to reuse. */
  readonly #retained: (Retained | undefined)[] = [undefined];
  readonly #freeIds: number[] = [];
  /** Id of the buffer a batch is being installed from: not dropped or compacted mid-install. */
  #applying = 0;
  #live = 0;
  #tombstones = 0;
  #bytes = 0;
  /**
   * Slots in UTF-8 key order (slots, not strings: walking them needs no key lookup);
   * `#unsorted` holds slots added since, merged in on the next ordered read.
   */
  #sorted: number[] | null = null;
  #unsorted: number[] = [];
  #removedSinceSort = false;
  /** After dispose(): a scan still in progress must not read the freed index. */
  #disposed = false;
  /** Slots released by GC so far: a scan in progress that sees it move re-seeks (see scan). */
  #releases = 0;
  #version = 0;
  #digest: { version: number; hex: string } | null = null;
  #summary: { version: number; full: Summary } | null = null;
  /** Highest seq of our own entries ever applied (seq safety). */
  ownMaxSeq = 0;
  /**
   * Slots of keys under RESERVED_PREFIX, with what each adds to the counts: they are kept
   * out of the user's limits and counts (`userKeyCount`, `userBytes`, `userLive`).
   */
  readonly #reserved = new Map<number, { keyLen: number; valueLen: number; tombstone: boolean }>();
  #reservedBytes = 0;
  #reservedLive = 0;
  /** While `admit` decides a batch: the entries its winners overwrite, as reads must see them. */
  #prior: Map<number, [timestamp: number, node: number, seq: number]> | null = null;
  /** A merge whose `admit` is running, until a read settles it (see #settleTentative). */
  #tentative: { batch: DecodedBatch; limits: MergeLimits; skip: Uint8Array | undefined; w: Uint32Array } | null = null;
  /** Called after a slot changed; the node turns it into watch events. */
  onChange: ((slot: number) => void) | null = null;

  constructor(selfId: number, index: MergeIndex = createMergeIndex()) {
    this.selfId = selfId;
    this.#index = index;
  }

  get liveKeys(): number { return this.#live; }
  get tombstones(): number { return this.#tombstones; }
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
  get userLive(): number { return this.#live - this.#reservedLive; }
  /** Tombstones outside the reserved prefix. */
  get userTombstones(): number { return this.#tombstones - (this.#reserved.size - this.#reservedLive); }
  /** Bytes of merged batches kept because values are read from them (see the header). */
  get retainedBytes(): number {
    let n = 0;
    for (const r of this.#retained) if (r !== undefined) n += r.length;
    return n;
  }
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
    // A slot the index holds but JS has not installed is a tentative merge's new key
    // (an `admit` callback reading mid-merge): not there yet.
    if (slot < 0 || !this.#installed(slot)) return -1;
    this.#slotOf.set(key, slot);
    this.#keys[slot] ??= key;
    return slot;
  }

  #installed(slot: number): boolean {
    return this.#values[slot] !== undefined || (slot < this.#refBuf.length && this.#refBuf[slot] !== 0);
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
    this.#keys[slot] = key;
    return key;
  }

  /**
   * The value of a held slot: bytes, or null for a tombstone. A value still in a
   * retained buffer comes as a fresh view of it (not cached: a view costs ~90 B a key),
   * or as a copy when that buffer is pinned in linear memory. (Offsets are the buffer's:
   * for a pinned block, the batch's offset in it is already added.)
   */
  valueAt(slot: number): Uint8Array | null {
    const v = this.#values[slot];
    if (v !== undefined) return v;
    return this.#retainedValue(this.#retained[this.#refBuf[slot]!]!, slot);
  }

  #retainedValue(r: Retained, slot: number): Uint8Array {
    const off = this.#refOff[slot]!, len = this.#refLen[slot]!;
    return r.pinned !== null ? r.pinned.slice(off, len) : r.bytes!.subarray(off, off + len);
  }

  /** Byte length of the value at `slot` (0 for a tombstone), without building an Entry. */
  valueLengthAt(slot: number): number {
    const v = this.#values[slot];
    return v === undefined ? this.#refLen[slot]! : v?.length ?? 0;
  }

  entryAt(slot: number): Entry {
    if (this.#tentative !== null) this.#settleTentative();
    const m = this.#meta;
    this.#index.metaInto(slot, m);
    const prior = this.#prior?.get(slot);
    if (prior !== undefined) m.set(prior);
    return { key: this.keyAt(slot), value: this.valueAt(slot), timestamp: m[0]!, node: m[1]!, seq: m[2]! };
  }
  /** metaInto's output: one Entry per read, not an Entry and a metadata object. */
  readonly #meta = new Float64Array(4);

  get(key: string): Entry | undefined {
    const slot = this.slotOf(key);
    return slot < 0 ? undefined : this.entryAt(slot);
  }

  /**
   * The LWW stamp of `key`'s entry into `out` (timestamp, node, seq), or false when the
   * key is absent: what a local write compares with, without building an Entry.
   */
  stampInto(key: string, out: Float64Array): boolean {
    const slot = this.slotOf(key);
    if (slot < 0) return false;
    this.#index.metaInto(slot, out);
    return true;
  }

  /** Decide one local (or replayed) entry under LWW now. Returns false if it lost. */
  applyOne(key: string, value: Uint8Array | null, timestamp: number, node: number, seq: number, keyLen = utf8Length(key)): boolean {
    const r = this.#index.upsert(key, timestamp, node, seq, value === null, value);
    this.#noteOwn(node, seq);
    if (r === null) return false;
    this.#install(r.slot, r.prev, key, value, keyLen);
    return true;
  }

  /**
   * Merge a decoded batch (kinds 0/1) in one kernel call. Losing entries cost no JS
   * allocation; winners are admitted (limits, capacity, `admit`), persisted, then applied.
   * A refusal masks that entry and re-runs the batch (rare path: one more kernel pass).
   */
  mergeBatch(batch: DecodedBatch, opts: MergeOptions): BatchOutcome {
    const { limits } = opts;
    const mergeLimits = opts.trusted
      ? { maxKeyBytes: 0x7fffffff, maxValueBytes: 0x7fffffff, maxTimestamp: Number.MAX_SAFE_INTEGER }
      : { maxKeyBytes: limits.maxKeyBytes, maxValueBytes: limits.maxValueBytes, maxTimestamp: opts.now + limits.maxClockDriftMs };
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
      // An `admit` that reads the store must see it as before the batch (see #settleTentative).
      if (opts.admit !== undefined) this.#tentative = { batch, limits: mergeLimits, skip, w };
      let refusedHere: number[];
      try {
        refusedHere = opts.trusted ? [] : this.#admitWinners(batch, w, opts, reasons, refusedForGood);
      } catch (err) {
        // An `admit` that throws refuses the batch: undecided, the tentative stamps would stay.
        this.#index.rollback();
        throw err;
      } finally {
        this.#tentative = null;
        this.#prior = null;
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
      if (opts.persist && w.length > 0) {
        try {
          opts.persist(this.#winnerRecords(batch, w));
        } catch (err) {
          this.#index.rollback();
          return { merged: 0, rejected, complete: false, reasons: [...why, `log append failed: ${(err as Error).message}`] };
        }
      }
      if (!final) this.#index.commit();
      this.#applyWinners(batch, w, opts.trusted === true);
      return { merged: w.length / 3, rejected, complete: rejected === (opts.decided ?? 0) + refusedForGood.size, reasons: why };
    }
  }

  /**
   * The first read while `admit` runs: the kernel has stamped overwritten slots with the
   * winners' metadata already, so roll back, note what those slots held (for entryAt),
   * and decide the batch again — the same inputs on the same index give the same
   * winners. Costs one more kernel pass, only for a batch whose `admit` reads.
   */
  #settleTentative(): void {
    const t = this.#tentative!;
    this.#tentative = null;
    const w = t.w, m = this.#meta;
    this.#index.rollback();
    const prior = new Map<number, [number, number, number]>();
    for (let j = 0; j < w.length; j += 3) {
      const slot = w[j + 1]!;
      if (w[j + 2] === PrevState.Absent || prior.has(slot)) continue;
      this.#index.metaInto(slot, m);
      prior.set(slot, [m[0]!, m[1]!, m[2]!]);
    }
    this.#prior = prior;
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
      if (d[at + 5] === RecordKind.Value) valueBytes += d[at + 9]!;
      if (w[j + 1]! >= high) high = w[j + 1]! + 1;
    }
    let id = 0;
    let bytes = batch.bytes;
    let base = 0;
    if (valueBytes > 0 && (owned || valueBytes >= bytes.length * RETAIN_MIN_SHARE)) {
      if (!owned) bytes = bytes.slice();
      id = this.#retain(owned ? batch : null, bytes, w);
      base = this.#retained[id]!.base;
    }
    this.#ensureSlots(high);
    const r = id === 0 ? undefined : this.#retained[id]!;
    this.#applying = id;
    for (let j = 0; j < w.length; j += 3) {
      const at = w[j]! * DESCRIPTOR_WORDS, slot = w[j + 1]!, prev = w[j + 2]!;
      this.#noteOwn(d[at + 4]!, joinU64(d[at + 2]!, d[at + 3]!));
      if (prev === PrevState.Absent) this.#addKey(slot, undefined, d[at + 7]!, isReservedKeyBytes(bytes, d[at + 6]!, d[at + 7]!));
      else this.#dropValue(slot);
      const len = d[at + 9]!;
      if (d[at + 5] !== RecordKind.Value) this.#setValue(slot, null);
      // An empty value holds no bytes of the buffer: kept apart, the buffer's live count stays exact.
      else if (r === undefined || len === 0) this.#setValue(slot, bytes.slice(d[at + 8]!, d[at + 8]! + len));
      else {
        this.#values[slot] = undefined;
        this.#refBuf[slot] = id;
        this.#refOff[slot] = base + d[at + 8]!;
        this.#refLen[slot] = len;
        r.live += len;
        this.#live++;
        this.#bytes += len;
      }
      this.#changed(slot);
    }
    this.#applying = 0;
    // A key written twice in the batch left its first value behind already.
    if (r !== undefined) this.#checkRetained(id);
  }

  /**
   * Room for `records` more keys of `keyBytes` bytes, taken at once: a replay that comes
   * in windows says how much the whole log holds, so the index and the per-slot arrays
   * grow once instead of doubling (and copying) as the windows arrive. A hint.
   */
  reserve(records: number, keyBytes: number): void {
    this.#index.reserve(records, keyBytes);
    this.#ensureSlots(this.keyCount + records);
  }

  /**
   * Per-slot arrays cover `slots` slots: grown to it (holes read as undefined), so stores
   * stay in bounds; by half again at least, so a replay in windows does not copy them
   * once per window.
   */
  #ensureSlots(slots: number): void {
    this.#ensureRefCapacity(slots);
    if (this.#keys.length < slots) this.#keys.length = Math.max(slots, this.#keys.length + (this.#keys.length >> 1));
    if (this.#values.length < slots) this.#values.length = Math.max(slots, this.#values.length + (this.#values.length >> 1));
  }

  /**
   * Keep `bytes` for the values that win from it; `w` are the winner triples (slots at
   * 1 mod 3). An owned `batch` whose bytes sit in linear memory is pinned there instead.
   */
  #retain(batch: DecodedBatch | null, bytes: Uint8Array, w: Uint32Array): number {
    const slots = new Uint32Array(w.length / 3);
    for (let j = 1, k = 0; j < w.length; j += 3, k++) slots[k] = w[j]!;
    const id = this.#freeIds.pop() ?? this.#retained.length;
    const r: Retained = { bytes, pinned: null, base: 0, length: bytes.length, live: 0, slots };
    const kept = batch?.keepBytes(r) ?? null;
    if (kept !== null) {
      r.pinned = kept.block;
      r.base = kept.offset;
      r.bytes = null;
    }
    this.#retained[id] = r;
    return id;
  }

  #ensureRefCapacity(slots: number): void {
    if (this.#refBuf.length >= slots) return;
    const n = Math.max(slots, this.#refBuf.length * 2, 1024);
    const grow = (a: Uint32Array) => { const g = new Uint32Array(n); g.set(a); return g; };
    this.#refBuf = grow(this.#refBuf);
    this.#refOff = grow(this.#refOff);
    this.#refLen = grow(this.#refLen);
  }

  /** Drop a retained buffer that nothing reads any more; compact one that is mostly garbage. */
  #checkRetained(id: number): void {
    const r = this.#retained[id]!;
    if (r.live === 0) {
      this.#dropRetained(id);
    } else if (r.live < r.length * RETAIN_MIN_LIVE) {
      for (const slot of r.slots) {
        if (this.#refBuf[slot] !== id) continue;
        const v = this.#retainedValue(r, slot);
        this.#values[slot] = r.pinned !== null ? v : v.slice();
        this.#refBuf[slot] = 0;
      }
      this.#dropRetained(id);
    }
  }

  #dropRetained(id: number): void {
    const r = this.#retained[id]!;
    r.pinned?.drop(r);
    this.#retained[id] = undefined;
    this.#freeIds.push(id);
  }

  /** The slot's current value leaves it (counts and bytes follow); the caller sets the next one. */
  #dropValue(slot: number): void {
    const v = this.#values[slot];
    if (v === null) { this.#tombstones--; return; }
    this.#live--;
    const id = slot < this.#refBuf.length ? this.#refBuf[slot]! : 0;
    if (id === 0) { this.#bytes -= v!.length; return; }
    const len = this.#refLen[slot]!;
    this.#bytes -= len;
    this.#refBuf[slot] = 0;
    this.#retained[id]!.live -= len;
    if (id !== this.#applying) this.#checkRetained(id);
  }

  #setValue(slot: number, value: Uint8Array | null): void {
    this.#values[slot] = value;
    if (value === null) this.#tombstones++;
    else { this.#live++; this.#bytes += value.length; }
  }

  /** A new key at `slot`: its string if known, else decoded from the index when first read. */
  #addKey(slot: number, key: string | undefined, keyLen: number, reserved: boolean): void {
    this.#keys[slot] = key;
    this.#bytes += keyLen;
    if (reserved) {
      this.#reserved.set(slot, { keyLen, valueLen: 0, tombstone: true });
      this.#reservedBytes += keyLen;
    }
    if (this.#sorted !== null) this.#unsorted.push(slot);
  }

  #changed(slot: number): void {
    if (this.#reserved.size > 0) this.#recountReserved(slot);
    this.#version++;
    this.onChange?.(slot);
  }

  /** A reserved slot's value changed: move its share of the reserved counts (a map miss otherwise). */
  #recountReserved(slot: number): void {
    const r = this.#reserved.get(slot);
    if (r === undefined) return;
    const tombstone = this.#values[slot] === null;
    const valueLen = this.valueLengthAt(slot);
    this.#reservedBytes += valueLen - r.valueLen;
    this.#reservedLive += (tombstone ? 0 : 1) - (r.tombstone ? 0 : 1);
    r.valueLen = valueLen;
    r.tombstone = tombstone;
  }

  /** Capacity and `admit` for the winners of one pass; returns the entries refused. */
  #admitWinners(batch: DecodedBatch, w: Uint32Array, opts: MergeOptions, reasons: Map<number, string>, refusedForGood: Set<number>): number[] {
    const { limits } = opts;
    const refused: number[] = [];
    let keys = this.userKeyCount;
    let bytes = this.userBytes;
    let reservedKeys = this.#reserved.size;
    const d = batch.words;
    for (let j = 0; j < w.length; j += 3) {
      const i = w[j]!, slot = w[j + 1]!, prev = w[j + 2]!;
      const valueLen = batch.kind(i) === RecordKind.Value ? batch.valueLength(i) : 0;
      let why: string | undefined;
      const at = i * DESCRIPTOR_WORDS;
      if (isReservedKeyBytes(batch.bytes, d[at + 6]!, d[at + 7]!)) {
        // Bookkeeping: its own bounds and owner rule instead of the user's limits.
        why = reservedRefusal(batch.key(i), batch.node(i), valueLen);
        if (why !== undefined) refusedForGood.add(i);
        else if (prev === PrevState.Absent) {
          if (reservedKeys + 1 > RESERVED_LIMITS.maxKeys) why = `store full (${RESERVED_LIMITS.maxKeys} keys under ${RESERVED_PREFIX})`;
          else reservedKeys++;
        }
      } else if (prev === PrevState.Absent) {
        const keyLen = batch.keyBytes(i).length;
        if (keys + 1 > limits.maxKeys) why = "store full (maxKeys)";
        else if (bytes + keyLen + valueLen > limits.maxTotalBytes) why = "store full (maxTotalBytes)";
        else { keys++; bytes += keyLen + valueLen; }
      } else {
        const oldLen = this.valueLengthAt(slot);
        if (valueLen > oldLen && bytes + valueLen - oldLen > limits.maxTotalBytes) why = "store full (maxTotalBytes)";
        else bytes += valueLen - oldLen;
      }
      if (why === undefined && opts.admit) {
        const verdict = opts.admit(entryOf(batch, i));
        if (verdict !== true) why = `rejected by admit: ${verdict}`;
      }
      if (why !== undefined) {
        refused.push(i);
        reasons.set(i, why);
      }
    }
    return refused;
  }

  #winnerRecords(batch: DecodedBatch, w: Uint32Array): RecordInput[] {
    const out: RecordInput[] = [];
    for (let j = 0; j < w.length; j += 3) {
      const i = w[j]!;
      const kind = batch.kind(i);
      out.push({ kind, key: batch.keyBytes(i), value: kind === RecordKind.Value ? batch.value(i) : null, timestamp: batch.timestamp(i), node: batch.node(i), seq: batch.seq(i) });
    }
    return out;
  }

  #noteOwn(node: number, seq: number): void {
    if (node === this.selfId && seq > this.ownMaxSeq) this.ownMaxSeq = seq;
  }

  /** `keyLen`: the key's UTF-8 length (read for a new key only); a local write measured it already. */
  #install(slot: number, prev: PrevState, key: string, value: Uint8Array | null, keyLen: number): void {
    if (prev === PrevState.Absent) this.#addKey(slot, key, keyLen, isReservedKey(key));
    else {
      this.#keys[slot] ??= key;
      this.#dropValue(slot);
    }
    this.#setValue(slot, value);
    this.#changed(slot);
  }

  /**
   * Drop the reserved entries the reserved-key rule refuses: written before the rule
   * existed (a build that published every configured peer's address under that peer's
   * id). Run once recovered: every node drops the same ones, so replicas stay equal and
   * none keeps offering what the others refuse. Returns their keys.
   */
  dropRefusedReserved(): string[] {
    const dropped: string[] = [];
    for (const [slot, r] of [...this.#reserved]) {
      this.#index.metaInto(slot, this.#meta);
      const key = this.keyAt(slot);
      if (reservedRefusal(key, this.#meta[1]!, r.valueLen) === undefined) continue;
      this.release(slot);
      dropped.push(key);
    }
    return dropped;
  }

  /** Drop a slot (tombstone GC; a refused reserved entry). The caller has checked it may go. */
  release(slot: number): void {
    const keyLen = this.#index.keyView(slot).length;
    // Not keyAt: a key never decoded is not in `#slotOf` either (slotOf fills both).
    const key = this.#keys[slot];
    this.#index.release(slot);
    if (key !== undefined) this.#slotOf.delete(key);
    const r = this.#reserved.get(slot);
    if (r !== undefined) {
      this.#reservedBytes -= r.keyLen + r.valueLen;
      if (!r.tombstone) this.#reservedLive--;
      this.#reserved.delete(slot);
    }
    this.#dropValue(slot);
    this.#keys[slot] = undefined;
    this.#values[slot] = undefined;
    this.#bytes -= keyLen;
    this.#removedSinceSort = true;
    this.#releases++;
    this.#version++;
  }

  /** Slots in UTF-8 key order, maintained incrementally: new keys are sorted and merged in. */
  #sortedSlots(): number[] {
    // keyAt: keys merged in a batch are decoded from the index the first time they are compared.
    const keyAt = (slot: number) => this.keyAt(slot);
    const bySlotKey = (x: number, y: number) => compareKeys(keyAt(x), keyAt(y));
    if (this.#sorted === null || this.#removedSinceSort) {
      // Installed slots only: an `admit` callback reading mid-merge must not put a
      // tentative new slot in the order (installed, it would then be added twice).
      this.#sorted = Array.from(this.#index.usedSlots()).filter((slot) => this.#installed(slot)).sort(bySlotKey);
      this.#unsorted = [];
      this.#removedSinceSort = false;
    } else if (this.#unsorted.length > 0 && this.#unsorted.length <= 32) {
      // A few new keys: copy (ordered reads in progress keep the old array), then
      // binary-search and splice — native copies beat a merge loop in JS.
      const sorted = this.#sorted.slice();
      for (const slot of this.#unsorted) {
        const key = keyAt(slot);
        let lo = 0, hi = sorted.length;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (compareKeys(keyAt(sorted[mid]!), key) < 0) lo = mid + 1; else hi = mid;
        }
        sorted.splice(lo, 0, slot);
      }
      this.#sorted = sorted;
      this.#unsorted = [];
    } else if (this.#unsorted.length > 0) {
      const add = this.#unsorted.sort(bySlotKey);
      const old = this.#sorted;
      const merged = new Array<number>(old.length + add.length);
      let i = 0, j = 0, k = 0;
      while (i < old.length && j < add.length) merged[k++] = bySlotKey(old[i]!, add[j]!) <= 0 ? old[i++]! : add[j++]!;
      while (i < old.length) merged[k++] = old[i++]!;
      while (j < add.length) merged[k++] = add[j++]!;
      this.#sorted = merged;
      this.#unsorted = [];
    }
    return this.#sorted;
  }

  /**
   * Entries under `prefix` in UTF-8 key order, only keys after `after` (exclusive) when
   * given, at most `limit`; reads current values as it goes. Walks the key order it
   * started with (keys added meanwhile may be missed); a GC meanwhile may hand a slot to
   * another key, so then it re-seeks past the last key it passed in a fresh order. So
   * every key held throughout is yielded once, in order, whatever happens between steps.
   */
  *scan(prefix: string, includeTombstones: boolean, after?: string, limit = Infinity): IterableIterator<Entry> {
    // Keys must sort after `prev`: the last key passed, or `after` where it is past the prefix.
    let prev = after !== undefined && compareKeys(after, prefix) >= 0 ? after : undefined;
    let slots: readonly number[] = [];
    let releases = -1;
    let i = 0;
    for (let n = 0; n < limit;) {
      if (this.#disposed) throw new WaveKVError("CLOSED", "the node was closed during this scan; open it again and scan again");
      if (releases !== this.#releases) {
        releases = this.#releases;
        slots = this.#sortedSlots();
        i = prev === undefined ? this.#seek(slots, prefix, false) : this.#seek(slots, prev, true);
      }
      if (i >= slots.length) return;
      // Every slot of an order taken since the last release is held, and its keys rise
      // past `prev` (seeked past it): no per-step check of either.
      const slot = slots[i++]!;
      const key = this.keyAt(slot);
      // Keys under a prefix are contiguous in UTF-8 order: the first one past it ends the scan.
      if (!key.startsWith(prefix)) return;
      prev = key;
      if (!includeTombstones && this.#values[slot] === null) continue;
      n++;
      yield this.entryAt(slot);
    }
  }

  /** Index in `slots` (key order) of the first key at or past `key` (past it when `exclusive`). */
  #seek(slots: readonly number[], key: string, exclusive: boolean): number {
    let lo = 0, hi = slots.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = compareKeys(this.keyAt(slots[mid]!), key);
      if (c < 0 || (exclusive && c === 0)) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  /** Slots in UTF-8 key order (snapshots, digest). */
  slotsInKeyOrder(): readonly number[] {
    return this.#sortedSlots();
  }

  /** SPEC section 5 digest, cached until the state changes. */
  digest(): string {
    if (this.#digest?.version === this.#version) return this.#digest.hex;
    const d = new DigestBuilder();
    for (const slot of this.slotsInKeyOrder()) {
      // entryAt, not the index's meta: while `admit` runs, the stamps before the batch.
      const e = this.entryAt(slot);
      d.add(e.key, e.node, e.seq, e.timestamp, e.value);
    }
    const hex = d.hex();
    this.#digest = { version: this.#version, hex };
    return hex;
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
    if (this.#tentative !== null || this.#prior !== null) return this.#index.summary();
    if (this.#summary?.version !== this.#version) this.#summary = { version: this.#version, full: this.#index.summary() };
    return this.#summary.full;
  }

  /**
   * Every entry (tombstones included) whose key falls in one of `buckets`: what a bucket
   * repair sends. O(slots) in the kernel to select, then O(selected) to encode.
   */
  entriesInBuckets(buckets: readonly number[], framing: BodyFraming = "bare"): EncodedEntries {
    const records = Array.from(this.#index.selectBuckets(buckets), (slot) => this.#record(slot));
    const base = records.reduce((b, r) => Math.min(b, r.timestamp), records.length ? Infinity : 0);
    return { bytes: encodeRecords(records, framing, base), count: records.length, base, framing };
  }

  #record(slot: number): RecordInput & { timestamp: number; node: number; seq: number } {
    const m = this.#index.meta(slot);
    const value = this.valueAt(slot);
    return { kind: value === null ? RecordKind.Tombstone : RecordKind.Value, key: this.keyAt(slot), value, timestamp: m.timestamp, node: m.node, seq: m.seq };
  }

  /** Highest seq of `node`'s entries still held. */
  maxSeqOf(node: number): number {
    return this.#index.maxSeqOf(node);
  }

  /**
   * The delta a peer with coverage `acks` is missing: every entry (tombstones included)
   * whose seq is above the ack of its origin, after `after` in (node, seq) order, at
   * most `maxEntries` entries / `maxBytes` encoded bytes (at least one entry per page).
   * `framing` "delta" codes each body against the previous one (FORMAT §1.1), in (node, seq)
   * order, paged or not (slots mostly come in that order already: the sort is ~linear).
   */
  delta(acks: ReadonlyMap<number, number>, after: DeltaCursor | undefined, maxEntries: number, maxBytes: number, framing: BodyFraming = "bare"): DeltaPage {
    let slots = this.#index.selectDelta(acks);
    const metas = Array.from(slots, (s) => this.#index.meta(s));
    let order = Array.from(slots.keys());
    const paged = after !== undefined || slots.length > maxEntries;
    if (paged || framing === "delta") {
      order.sort((a, b) => metas[a]!.node - metas[b]!.node || metas[a]!.seq - metas[b]!.seq);
      if (after) order = order.filter((i) => metas[i]!.node > after.node || (metas[i]!.node === after.node && metas[i]!.seq > after.seq));
    }
    const total = order.length;
    const records: RecordInput[] = [];
    let bytes = 0;
    let base = Number.MAX_SAFE_INTEGER;
    for (const i of order) {
      if (records.length >= maxEntries) break;
      const slot = slots[i]!;
      const m = metas[i]!;
      const value = this.valueAt(slot);
      const key = this.keyAt(slot);
      const size = utf8Length(key) + (value?.length ?? 0) + 16;
      if (records.length > 0 && bytes + size > maxBytes) break;
      bytes += size;
      if (m.timestamp < base) base = m.timestamp;
      records.push({ kind: value === null ? RecordKind.Tombstone : RecordKind.Value, key, value, timestamp: m.timestamp, node: m.node, seq: m.seq });
    }
    if (records.length === 0) base = 0;
    const encodedBytes = encodeRecords(records, framing, base);
    const lastRec = records[records.length - 1];
    slots = new Uint32Array(0);
    return {
      encoded: { bytes: encodedBytes, count: records.length, base, framing },
      total,
      last: records.length === total,
      cursor: lastRec ? { node: lastRec.node, seq: lastRec.seq } : after,
      bytes: encodedBytes.length,
    };
  }

  /** Tombstone slots with their stamps, for GC. */
  *tombstoneSlots(): IterableIterator<{ slot: number; node: number; seq: number }> {
    for (const slot of this.#index.usedSlots()) {
      if (this.#values[slot] !== null) continue;
      const m = this.#index.meta(slot);
      yield { slot, node: m.node, seq: m.seq };
    }
  }

  /** Every entry as a record, in key order (snapshots). */
  *records(): IterableIterator<RecordInput> {
    for (const slot of this.slotsInKeyOrder()) yield this.#record(slot);
  }

  dispose(): void {
    this.#disposed = true;
    this.#index.dispose();
    for (let id = 1; id < this.#retained.length; id++) if (this.#retained[id] !== undefined) this.#dropRetained(id);
  }
}

/** Materialise entry `i` of a decoded batch. */
export function entryOf(batch: DecodedBatch, i: number): Entry {
  const kind = batch.kind(i);
  return { key: batch.key(i), value: kind === RecordKind.Value ? batch.value(i) : null, timestamp: batch.timestamp(i), node: batch.node(i), seq: batch.seq(i) };
}
