/**
 * The browser store: a node's `Storage` (src/storage/interface.ts) in IndexedDB, for pages
 * and workers. Layout and bytes: docs/FORMAT.md §7; why IndexedDB and not OPFS:
 * docs/design/0019-browser-store.md. Loaded only when a node opens one (src/browser.ts
 * `browserStorage`: a dynamic import, a separate chunk of the bundle).
 *
 *   const storage = await openBrowserStorage({ name: "notes", nodeId: 7, newUuid, replay });
 *   await storage.append(records);   // resolved once its commit transaction completed ("strict")
 *
 * - Appends are framed when they are made (the WAL record codec: CRC per record, against
 *   the store's timestamp base), so call order is log order. Everything appended in one
 *   tick, and everything appended while a commit is in flight, goes out as one log row in
 *   one transaction with `durability: "strict"` (group commit; one commit in flight).
 * - A snapshot is one transaction: its chunks, the meta, and the deletion of the rows it
 *   covers commit together or not at all (no .bak, no interrupted reset to finish).
 * - Open takes the store's Web Lock (LOCKED in a second tab), replays the snapshot
 *   chunks, then the log rows decoded as one block. A damaged row (a record failing its
 *   CRC, bytes cut short, not bytes at all) opens to the valid prefix with a warning: the
 *   row and every later one are moved to the "damaged" object store, never deleted.
 * - The failure latch: after one failed commit (STORAGE_FULL on quota, else IO) every
 *   later append and snapshot rejects until the node is reopened. A failed transaction
 *   left nothing behind, so what was acknowledged before it is all there.
 */
import { WaveKVError } from "../core/errors.js";
import type { FsyncPolicy } from "../core/types.js";
import type { FramedRecords, RecordInput, StopReason } from "../core/record.js";
import { decodeRecords, encodeRecords } from "../codec/records.js";
import type { AppendOptions, FaultHook, LatencyStats, RecoveredState, ReplayTarget, Storage } from "./interface.js";
import { LatencyHistogram } from "./latency.js";
import { Serial } from "./serial.js";
import { REPLAY_WINDOW_RECORDS, ReplaySession, applyLogWindows } from "./replay.js";
import { DAMAGED, LOG, META, META_KEY, SNAPSHOT, acquireLock, databaseName, openDatabase, request, settled, storageError } from "./browser-idb.js";

/** The format of the store's contents (meta.format, docs/FORMAT.md §7); open refuses a newer one. */
export const BROWSER_STORE_FORMAT = 1;
/** Log bytes that ask for a snapshot (`needsSnapshot`) unless the node says otherwise. */
export const DEFAULT_BROWSER_SNAPSHOT_BYTES = 16 << 20;
/** Records per snapshot chunk (one IDB value each: no single multi-hundred-MB clone). */
const SNAPSHOT_CHUNK_RECORDS = 1 << 14;

/** Options of `browserStorage(name, opts)` (src/browser.ts). */
export interface BrowserStorageOptions {
  /** Log bytes after which the node snapshots (default: the node's snapshotWalBytes, else 16 MiB). */
  snapshotBytes?: number;
  /**
   * Test seam at the IndexedDB boundary: called with "open" before the database opens and
   * "write" before each commit and snapshot transaction; what it throws fails that step
   * (an error named QuotaExceededError, or code ENOSPC: STORAGE_FULL).
   */
  faults?: FaultHook;
}

/** What `openBrowserStorage` takes: the options, the store's name, and what Node.open hands a storage factory. */
export interface BrowserStoreOpen extends BrowserStorageOptions {
  /** The store's name: database `wavekv/<name>` of this origin. */
  name: string;
  nodeId: number;
  /** Makes the uuid of a new store. */
  newUuid: () => string;
  replay?: ReplayTarget;
  clock?: () => number;
  /** "never": commits with `durability: "relaxed"`; anything else "strict" (resolved once the browser flushed it). */
  fsync?: FsyncPolicy;
  snapshotWalBytes?: number;
  replayWindow?: number;
}

/** META's one value. Read hostile: `parseMeta` checks every field. */
interface StoreMeta {
  format: number;
  uuid: string;
  node: number;
  /** Timestamp base of every record in the store (framed records carry timestamp − base). */
  base: number;
  /** Bumped by every snapshot (Storage.walGeneration). */
  generation: number;
  /** The current snapshot: its chunk count (keys 0..chunks−1) and records; null: none. */
  snapshot: { chunks: number; records: number } | null;
}

const isInt = (v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= min && v <= max;

function parseMeta(v: unknown): StoreMeta | string {
  if (typeof v !== "object" || v === null) return "the meta record is not an object";
  const m = v as Record<string, unknown>;
  if (!isInt(m.format, 1)) return `meta.format ${String(m.format)} is not a format number`;
  if (m.format > BROWSER_STORE_FORMAT) return `format ${m.format} was written by a newer wavekv (this one reads format ${BROWSER_STORE_FORMAT})`;
  if (typeof m.uuid !== "string" || m.uuid === "") return "meta.uuid is missing";
  if (!isInt(m.node, 0, 0xffffffff) || !isInt(m.base, -(2 ** 52), 2 ** 52) || !isInt(m.generation, 1)) return "meta.node, base or generation is not an integer in range";
  const s = m.snapshot as Record<string, unknown> | null;
  if (s !== null && (typeof s !== "object" || !isInt(s.chunks, 0) || !isInt(s.records, 0))) return "meta.snapshot is neither null nor { chunks, records }";
  return { format: m.format, uuid: m.uuid, node: m.node, base: m.base, generation: m.generation, snapshot: s === null ? null : { chunks: s.chunks as number, records: s.records as number } };
}

/** A stored value as bytes (IDB hands back what was cloned in), or null for anything else. */
function asBytes(v: unknown): Uint8Array | null {
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  return null;
}

/** One value to store: a view of part of a larger buffer would clone the whole buffer. */
function ownBytes(parts: readonly Uint8Array[], total: number): Uint8Array {
  const one = parts.length === 1 ? parts[0]! : null;
  if (one && one.byteOffset === 0 && one.byteLength === one.buffer.byteLength) return one;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

const durability = (o: BrowserStoreOpen): "strict" | "relaxed" => (o.fsync === "never" ? "relaxed" : "strict");

const corrupt = (name: string, what: string) =>
  new WaveKVError("CORRUPT_WAL", `browser store ${JSON.stringify(name)} (IndexedDB ${databaseName(name)}): ${what}. Delete the store (indexedDB.deleteDatabase) and re-sync from peers, or open it with a wavekv that reads it`);

/** Opens (creating on first use) and replays store `o.name`. LOCKED while another tab or worker holds it. */
export async function openBrowserStorage(o: BrowserStoreOpen): Promise<Storage> {
  if (typeof o.name !== "string" || o.name === "") throw new WaveKVError("INVALID_ARGUMENT", `a browser store name must be a non-empty string, got ${JSON.stringify(o.name)}`);
  const release = await acquireLock(o.name);
  const warnings: string[] = [];
  if (release === null) warnings.push(`browser store ${JSON.stringify(o.name)}: no Web Locks here (an insecure context?): nothing stops a second tab from opening it at the same time`);
  let db: IDBDatabase | null = null;
  try {
    o.faults?.("open", databaseName(o.name));
    db = await openDatabase(o.name);
    return await recover(db, o, release, warnings);
  } catch (e) {
    db?.close();
    release?.();
    throw storageError(e, `cannot open browser store ${JSON.stringify(o.name)}`);
  }
}

/** Where decoding the log stopped, as a row: its key, its index, and the offset inside it. */
interface RowDamage { index: number; offset: number; reason: StopReason | "not bytes" | "bad key" }

async function recover(db: IDBDatabase, o: BrowserStoreOpen, release: (() => void) | null, warnings: string[]): Promise<BrowserStorage> {
  const clock = o.clock ?? Date.now;
  const who = `browser store ${JSON.stringify(o.name)}`;
  const read = db.transaction([META, SNAPSHOT, LOG], "readonly");
  const [metaValue, snapKeys, snapValues, logKeys, logValues] = await Promise.all([
    request(read.objectStore(META).get(META_KEY)),
    request(read.objectStore(SNAPSHOT).getAllKeys()),
    request(read.objectStore(SNAPSHOT).getAll()),
    request(read.objectStore(LOG).getAllKeys()),
    request(read.objectStore(LOG).getAll()),
  ]);
  let meta: StoreMeta;
  if (metaValue === undefined) {
    if (snapKeys.length > 0 || logKeys.length > 0) throw corrupt(o.name, `its meta record is missing but it holds ${snapKeys.length} snapshot chunk(s) and ${logKeys.length} log row(s)`);
    meta = { format: BROWSER_STORE_FORMAT, uuid: o.newUuid(), node: o.nodeId, base: clock(), generation: 1, snapshot: null };
    const tx = db.transaction([META], "readwrite", { durability: durability(o) });
    tx.objectStore(META).put(meta, META_KEY);
    await settled(tx);
  } else {
    const parsed = parseMeta(metaValue);
    if (typeof parsed === "string") throw corrupt(o.name, parsed);
    meta = parsed;
  }
  if (meta.node !== o.nodeId) throw new WaveKVError("INVALID_ARGUMENT", `${who} holds node ${meta.node}'s data, not node ${o.nodeId}'s: open it with id ${meta.node}, or use another store name`);

  const session = new ReplaySession(meta.uuid, o.replay);
  let rows: Map<number, number>;
  try {
    replaySnapshot(session, meta, snapKeys, snapValues, who, warnings);
    const found = replayLog(session, meta.base, logKeys, logValues, o.replayWindow);
    rows = found.rows;
    // The row's valid prefix stays under its key: the next row must come after it.
    if (found.damage && await setAside(db, o, logKeys, logValues, found.damage, found.prefix, warnings, clock)) rows.set(logKeys[found.damage.index] as number, found.damage.offset);
    const batches = session.finish();
    const recovered: RecoveredState = { uuid: meta.uuid, batches, warnings };
    return new BrowserStorage(db, o, meta, release, recovered, rows);
  } catch (e) {
    session.fail();
    throw e;
  }
}

/** The snapshot's chunks, each decoded on its own: a damaged chunk loses its rest, not the others. */
function replaySnapshot(session: ReplaySession, meta: StoreMeta, keys: IDBValidKey[], values: unknown[], who: string, warnings: string[]): void {
  const want = meta.snapshot?.chunks ?? 0;
  if (keys.length !== want) warnings.push(`${who}: the snapshot has ${keys.length} chunk(s) where its meta says ${want}: records of the missing ones are gone from this node unless peers hold them`);
  for (let i = 0; i < values.length; i++) {
    const bytes = asBytes(values[i]);
    if (bytes === null) { warnings.push(`${who}: snapshot chunk ${String(keys[i])} is not bytes: skipped, its records are missing`); continue; }
    const batch = decodeRecords(bytes, "framed", meta.base);
    const stop = batch.stop;
    session.apply(batch);
    if (stop.reason !== "end") warnings.push(`${who}: snapshot chunk ${String(keys[i])} is damaged at byte ${stop.offset} (${stop.reason}): the records before it were loaded, ${bytes.length - stop.offset} byte(s) after it were not`);
  }
}

/**
 * The log rows, in key order, copied into one block of the kernel's memory and decoded a
 * window at a time (one decode call for many small rows). Returns the row sizes that are
 * kept and, when decoding stopped early, where: the valid bytes of that row (`prefix`).
 */
function replayLog(session: ReplaySession, base: number, keys: IDBValidKey[], values: unknown[], window?: number): { rows: Map<number, number>; damage: RowDamage | null; prefix: Uint8Array | null } {
  const rows = new Map<number, number>();
  const bytes: Uint8Array[] = [];
  let damage: RowDamage | null = null;
  let total = 0;
  for (let i = 0; i < keys.length; i++) {
    const b = asBytes(values[i]);
    const key = keys[i];
    if (!isInt(key, 1) || b === null) { damage = { index: i, offset: 0, reason: b === null ? "not bytes" : "bad key" }; break; }
    bytes.push(b);
    total += b.length;
  }
  let stopAt = total;
  let reason: StopReason = "end";
  if (total > 0) {
    [stopAt, reason] = session.withBlock(total, (dst) => {
      let at = 0;
      for (const b of bytes) { dst.set(b, at); at += b.length; }
    }, (block): [number, StopReason] => {
      const { at, stop } = applyLogWindows(session, block, base, window ?? REPLAY_WINDOW_RECORDS, total);
      return [at + stop.offset, stop.reason];
    });
  }
  let prefix: Uint8Array | null = null;
  let at = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (reason !== "end" && stopAt < at + b.length) {
      damage = { index: i, offset: stopAt - at, reason };
      prefix = b.subarray(0, stopAt - at);
      break;
    }
    rows.set(keys[i] as number, b.length);
    at += b.length;
  }
  return { rows, damage, prefix };
}

/**
 * Moves the damaged row and every row after it to DAMAGED (one value, under a key naming
 * the row and the time) and puts back the row's valid prefix, in one transaction: the
 * next open sees a clean log, and the bytes stay for whoever wants to look at them.
 */
async function setAside(db: IDBDatabase, o: BrowserStoreOpen, keys: IDBValidKey[], values: unknown[], d: RowDamage, prefix: Uint8Array | null, warnings: string[], clock: () => number): Promise<boolean> {
  const key = keys[d.index]!;
  const later = keys.length - d.index - 1;
  const aside = `log-${String(key)}-at-${clock()}`;
  const tx = db.transaction([LOG, DAMAGED], "readwrite", { durability: durability(o) });
  tx.objectStore(DAMAGED).put({ reason: d.reason, offset: d.offset, rows: keys.slice(d.index).map((k, i) => ({ key: k, value: values[d.index + i] })) }, aside);
  const log = tx.objectStore(LOG);
  for (const k of keys.slice(d.index)) log.delete(k);
  const kept = prefix !== null && prefix.length > 0;
  if (kept) log.put(prefix.slice(), key);
  await settled(tx);
  const size = asBytes(values[d.index])?.length ?? 0;
  warnings.push(`browser store ${JSON.stringify(o.name)}: DAMAGED LOG ROW ${String(key)} at byte ${d.offset} (${d.reason}): opened to the valid prefix — ` +
    `${kept ? `its first ${d.offset} byte(s) kept, ` : ""}${size - d.offset} byte(s) of it${later > 0 ? ` and ${later} later row(s)` : ""} not replayed, set aside in object store "${DAMAGED}" under ${JSON.stringify(aside)}. ` +
    `A write acknowledged among them is lost here unless a peer holds it.`);
  return kept;
}

interface PendingRow {
  key: number;
  parts: Uint8Array[];
  bytes: number;
  waiters: { resolve: () => void; reject: (e: unknown) => void }[];
}

class BrowserStorage implements Storage {
  readonly recovered: RecoveredState;
  readonly #db: IDBDatabase;
  readonly #name: string;
  readonly #durability: "strict" | "relaxed";
  readonly #threshold: number;
  readonly #faults: FaultHook | undefined;
  readonly #release: (() => void) | null;
  #meta: StoreMeta;
  /** Committed rows: key → bytes, in key order. */
  readonly #rows: Map<number, number>;
  #walBytes = 0;
  #nextKey: number;
  /** Rows made but not committed, in key order; `#open` (the last) still takes appends. */
  #pending: PendingRow[] = [];
  #open: PendingRow | null = null;
  #scheduled = false;
  #inflight: Promise<void> | null = null;
  /** Key of the first row of the commit in flight (Infinity: none). */
  #inflightFirst = Infinity;
  #failure: WaveKVError | null = null;
  #closed = false;
  #crashed = false;
  /** Snapshots, one at a time. */
  readonly #snapshots = new Serial();
  #commits = 0;
  readonly #latency = new LatencyHistogram();

  constructor(db: IDBDatabase, o: BrowserStoreOpen, meta: StoreMeta, release: (() => void) | null, recovered: RecoveredState, rows: Map<number, number>) {
    this.#db = db;
    this.#name = o.name;
    this.#durability = durability(o);
    this.#threshold = o.snapshotBytes ?? o.snapshotWalBytes ?? DEFAULT_BROWSER_SNAPSHOT_BYTES;
    this.#faults = o.faults;
    this.#release = release;
    this.#meta = meta;
    this.recovered = recovered;
    this.#rows = rows;
    let last = 0;
    for (const [k, n] of rows) { this.#walBytes += n; last = k; }
    this.#nextKey = last + 1;
    // The store deleted or upgraded from another tab, or the browser clearing site data.
    db.onversionchange = () => { this.#latch(new WaveKVError("IO", `browser store ${JSON.stringify(this.#name)} is being deleted or upgraded by another tab: closed here`)); db.close(); };
    db.onclose = () => this.#latch(new WaveKVError("IO", `browser store ${JSON.stringify(this.#name)}: the browser closed its database (site data cleared?)`));
  }

  get needsSnapshot(): boolean { return this.#walBytes > this.#threshold; }
  get walBytes(): number { return this.#walBytes; }
  get fsyncCount(): number { return this.#commits; }
  get fsyncLatency(): LatencyStats { return this.#latency; }
  get walGeneration(): number { return this.#meta.generation; }
  get failure(): WaveKVError | null { return this.#failure; }

  append(records: readonly RecordInput[] | FramedRecords, _opts?: AppendOptions): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError());
    if (this.#failure) return Promise.reject(this.#failure);
    const framed = typeof (records as FramedRecords).frame === "function";
    if ((framed ? (records as FramedRecords).count : (records as readonly RecordInput[]).length) === 0) return Promise.resolve();
    let bytes: Uint8Array;
    try {
      bytes = framed ? (records as FramedRecords).frame(this.#meta.base) : encodeRecords(records as readonly RecordInput[], "framed", this.#meta.base);
    } catch (e) {
      return Promise.reject(new WaveKVError("INVALID_ARGUMENT", `cannot log these records: ${(e as Error).message}`, { cause: e }));
    }
    let row = this.#open;
    if (row === null) {
      row = { key: this.#nextKey++, parts: [], bytes: 0, waiters: [] };
      this.#open = row;
      this.#pending.push(row);
    }
    row.parts.push(bytes);
    row.bytes += bytes.length;
    const done = new Promise<void>((resolve, reject) => row.waiters.push({ resolve, reject }));
    // Every append of this tick joins the row; one made while a commit runs waits for it.
    if (!this.#scheduled && this.#inflight === null) {
      this.#scheduled = true;
      queueMicrotask(() => { this.#scheduled = false; this.#commit(); });
    }
    return done;
  }

  /** Writes every pending row in one transaction; the next commit starts when it settles. */
  #commit(): void {
    if (this.#inflight !== null || this.#pending.length === 0 || this.#crashed || this.#failure) return;
    const rows = this.#pending;
    this.#pending = [];
    this.#open = null;
    const started = performance.now();
    let tx: IDBTransaction | null = null;
    try {
      this.#faults?.("write", databaseName(this.#name));
      tx = this.#db.transaction([LOG], "readwrite", { durability: this.#durability });
      const log = tx.objectStore(LOG);
      for (const r of rows) log.put(ownBytes(r.parts, r.bytes), r.key);
    } catch (e) {
      try { tx?.abort(); } catch { /* already finished */ }
      this.#reject(rows, this.#latch(storageError(e, `browser store ${JSON.stringify(this.#name)}: a commit failed`)));
      return;
    }
    this.#inflightFirst = rows[0]!.key;
    this.#inflight = settled(tx).then(
      () => {
        this.#commits++;
        this.#latency.observe(performance.now() - started);
        for (const r of rows) {
          this.#rows.set(r.key, r.bytes);
          this.#walBytes += r.bytes;
          for (const w of r.waiters) w.resolve();
        }
      },
      (e: unknown) => this.#reject(rows, this.#latch(storageError(e, `browser store ${JSON.stringify(this.#name)}: a commit failed`))),
    ).finally(() => {
      this.#inflight = null;
      this.#inflightFirst = Infinity;
      this.#commit();
    });
  }

  /** The first failure latches; every row not committed is rejected with it. */
  #latch(e: WaveKVError): WaveKVError {
    this.#failure ??= e;
    const pending = this.#pending;
    this.#pending = [];
    this.#open = null;
    this.#reject(pending, this.#failure);
    return this.#failure;
  }

  #reject(rows: readonly PendingRow[], e: unknown): void {
    for (const r of rows) for (const w of r.waiters) w.reject(e);
  }

  #closedError(): WaveKVError {
    return new WaveKVError("CLOSED", `browser store ${JSON.stringify(this.#name)} is closed; reopen the node`);
  }

  /** Until every row below `upTo` is committed (throws the latched failure). */
  async #drain(upTo: number): Promise<void> {
    for (;;) {
      if (this.#failure) throw this.#failure;
      if (this.#crashed) throw this.#closedError();
      if (this.#inflight !== null && this.#inflightFirst < upTo) { await this.#inflight; continue; }
      const first = this.#pending[0];
      if (first === undefined || first.key >= upTo) return;
      if (this.#inflight !== null) { await this.#inflight; continue; }
      this.#commit();
    }
  }

  snapshot(collect: () => Iterable<RecordInput>): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError());
    return this.#snapshots.run(() => this.#snapshotNow(collect));
  }

  /**
   * Same tick: seal the open row (later appends start a new one), note the first key the
   * snapshot does not cover, collect and encode the state. Then wait for the covered rows
   * to commit, and write chunks + meta + the deletion of the covered rows in one
   * transaction. A failed snapshot changed nothing (and latches nothing).
   */
  async #snapshotNow(collect: () => Iterable<RecordInput>): Promise<void> {
    if (this.#closed) throw this.#closedError();
    if (this.#failure) throw this.#failure;
    this.#open = null;
    const covers = this.#nextKey;
    const records = Array.from(collect());
    const base = this.#meta.base;
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < records.length; i += SNAPSHOT_CHUNK_RECORDS) chunks.push(encodeRecords(records.slice(i, i + SNAPSHOT_CHUNK_RECORDS), "framed", base));
    await this.#drain(covers);
    const meta: StoreMeta = { ...this.#meta, generation: this.#meta.generation + 1, snapshot: { chunks: chunks.length, records: records.length } };
    try {
      this.#faults?.("write", databaseName(this.#name));
      const tx = this.#db.transaction([META, SNAPSHOT, LOG], "readwrite", { durability: this.#durability });
      const snap = tx.objectStore(SNAPSHOT);
      snap.clear();
      chunks.forEach((c, i) => snap.put(ownBytes([c], c.length), i));
      tx.objectStore(LOG).delete(IDBKeyRange.upperBound(covers, true));
      tx.objectStore(META).put(meta, META_KEY);
      await settled(tx);
    } catch (e) {
      throw storageError(e, `browser store ${JSON.stringify(this.#name)}: the snapshot failed (nothing changed)`);
    }
    this.#meta = meta;
    for (const [k, n] of this.#rows) {
      if (k >= covers) break;
      this.#rows.delete(k);
      this.#walBytes -= n;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#snapshots.idle();
      await this.#drain(Infinity).catch(() => undefined); // a latched store has nothing more to write
    } finally {
      this.#db.onclose = null;
      this.#db.close();
      this.#release?.();
    }
  }

  /** Test seam (`crashBrowserStorage`): drop the store as a dying page would, without writing what is queued. */
  crash(): void {
    if (this.#closed) return;
    this.#closed = this.#crashed = true;
    const pending = this.#pending;
    this.#pending = [];
    this.#open = null;
    this.#reject(pending, this.#closedError());
    this.#db.onclose = null;
    this.#db.close(); // a transaction already committing still completes, as it may in a real crash
    this.#release?.();
  }
}

/** For tests: drops a browser store without close (the conformance suite's "crash"). */
export function crashBrowserStorage(storage: Storage): void {
  if (!(storage instanceof BrowserStorage)) throw new TypeError("not a browser store");
  storage.crash();
}
