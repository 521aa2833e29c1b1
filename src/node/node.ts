/**
 * A wavekv node: the whole data set in memory, every mutation logged (when `dir` is
 * set), and the low-level sync calls a SyncManager drives.
 *
 *   const node = await Node.open({ id: 1, peers: [2, 3], dir: "./data" });
 *   await node.put("user/1", "alice");          // resolves once durable per `fsync`
 *   node.get("user/1")?.value;                  // Uint8Array of "alice"
 *   for (const e of node.scan("user/")) {}      // UTF-8 key order
 *   await node.close();
 */
import { PeerClocks } from "../sync/clock.js";
import { RecordKind, type DecodedBatch, type RecordInput } from "../core/record.js";
import { MAX_SEQ, type Envelope } from "../sync/envelope.js";
import { WaveKVError } from "../core/errors.js";
import { DEFAULT_SYNC_TUNING, SyncProtocol, type MergeOutcome, type MergeSlicing, type SyncTuning } from "../sync/protocol.js";
import { compareStamps } from "../core/stamp.js";
import { IdConflicts } from "../sync/identity.js";
import { checkNodeOptions, withDefaults } from "./options.js";
import { isReservedKey, reservedRefusal } from "../core/reserved.js";
import { ReplicaState, type BatchOutcome } from "../state/replica.js";
import { joinU64, toBytes, utf8Length } from "../core/encoding.js";
import { D_KIND, D_NODE, D_SEQ_HI, D_SEQ_LO, DESCRIPTOR_WORDS } from "../core/record.js";
import type { ReplaySink, Storage, StorageTuning } from "../storage/interface.js";
import { DEFAULT_LIMITS, RESERVED_LIMITS, RESERVED_PREFIX, type AdmitFn, type Entry, type FsyncPolicy, type Limits, type NodeStatus } from "../core/types.js";
import { Watchers } from "./watch.js";


export interface NodeOptions {
  /** This node's id, uint32, unique in the cluster. */
  id: number;
  /**
   * Initial peers (uint32 ids; our own id is ignored); more are discovered. Added to the durable membership.
   * @defaultValue `[]` (and the peers a data directory already records)
   */
  peers?: readonly number[];
  /** Data directory (a non-empty path); omit for an in-memory node (no WAL, no snapshot). */
  dir?: string;
  /** `"always"` (default), `"never"`, or `{ intervalMs }` with intervalMs an integer from 1 to 3 600 000. */
  fsync?: FsyncPolicy;
  /**
   * Each an integer (default `DEFAULT_LIMITS`): maxKeyBytes 1..65 536, maxValueBytes 1..2^31 − 1,
   * maxKeys 1..2^32 − 1, maxTotalBytes 1..2^52, maxClockDriftMs 1..2^48. Unknown fields are refused.
   */
  limits?: Partial<Limits>;
  /**
   * Return true to admit a remote entry, or a string: the reason to refuse it. Also applied to local writes.
   * @defaultValue none: every entry within `limits` is admitted
   */
  admit?: AdmitFn;
  /**
   * Wall clock in ms; injectable for tests and simulations.
   * @defaultValue `Date.now`
   */
  clock?: () => number;
  /**
   * Pagination and digest-repair tuning for sync (default `DEFAULT_SYNC_TUNING`): maxDeltaEntries
   * 1..65 536, maxDeltaBytes 1..2^31 − 1, digestCheckRounds ≥ 1, bucketRepairAttempts ≥ 0,
   * maxDiscoveredPeers 0..65 536, deltaBodies boolean. Unknown fields are refused.
   */
  sync?: Partial<SyncTuning>;
  /** WAL size that triggers an automatic snapshot (default 64 MiB; an integer ≥ 1, `Number.MAX_SAFE_INTEGER` for never). */
  snapshotWalBytes?: number;
  /** Recovery and background warnings (default: console.warn). */
  onWarning?: (message: string) => void;
  /**
   * With `dir`: `{ acceptDataLoss: true }` opens despite MISSING_SNAPSHOT / MISSING_WAL (loudly); `faults` is the I/O test seam.
   * @defaultValue `{}`: missing files are refused, no faults
   */
  storage?: StorageTuning;
}

export type { MergeOutcome } from "../sync/protocol.js";

const MAX_NODE_ID = 0xffffffff;

export class Node {
  readonly id: number;
  readonly uuid: string;
  readonly limits: Readonly<Limits>;
  readonly #state: ReplicaState;
  readonly #protocol: SyncProtocol;
  #storage: Storage | null;
  readonly #clock: () => number;
  readonly #admit: AdmitFn | undefined;
  readonly #warn: (message: string) => void;
  readonly #peers = new Set<number>();
  /** Peers added by auto-discovery (after a restart: every durable peer not in `opts.peers`). Bounded by sync tuning maxDiscoveredPeers. */
  readonly #discovered = new Set<number>();
  /** The discovery bound was hit and said so: one warning, not one per request. */
  #peerLimitWarned = false;
  /** When a relearning move was last logged (#relearned). */
  #relearnLoggedAt = 0;
  readonly #watchers = new Watchers();
  #nextSeq = 1;
  /** True while a remote batch is being applied: its changes are not local writes. */
  #merging = false;
  #closed = false;
  #snapshotting: Promise<void> | null = null;
  /** Writes issued and not yet settled; close() waits for them. */
  readonly #inflight = new Set<Promise<unknown>>();
  /**
   * Records of local writes logged but not yet applied (awaiting their fsync), by seq.
   * A snapshot taken meanwhile must include them: it supersedes the WAL up to its end,
   * which already holds them, while memory does not yet.
   */
  readonly #pendingRecords = new Map<number, RecordInput>();
  /** Keys with a local write logged but not yet applied (awaiting its fsync): how many, and their highest stamp. */
  readonly #pendingKeys = new Map<string, { count: number; timestamp: number }>();
  /** The stamp of the key a write replaces (scratch: one read per write, no Entry built). */
  readonly #stamp = new Float64Array(4);
  /** Peers' clock readings, to refuse a write peers would refuse by the drift rule. */
  readonly #clocks: PeerClocks;
  /** Duplicate ids seen from both sides (status().duplicateIds, refusedBy). */
  readonly #conflicts: IdConflicts;

  private constructor(opts: NodeOptions, uuid: string, storage: Storage | null) {
    this.id = opts.id;
    this.uuid = uuid;
    this.limits = Object.freeze(withDefaults(DEFAULT_LIMITS, opts.limits));
    this.#clock = opts.clock ?? Date.now;
    this.#clocks = new PeerClocks(this.#clock);
    this.#admit = opts.admit;
    this.#warn = opts.onWarning ?? ((m) => console.warn(`wavekv node ${opts.id}: ${m}`));
    this.#storage = storage;
    this.#state = new ReplicaState(opts.id);
    this.#conflicts = new IdConflicts(this, this.#clock, this.#warn);
    this.#state.onChange = (slot) => {
      if (this.#watchers.size === 0 || (this.#merging && !this.#watchers.wantsRemote)) return;
      this.#watchers.emit(this.#state.entryAt(slot), !this.#merging);
    };
    const tuning = withDefaults(DEFAULT_SYNC_TUNING, opts.sync);
    this.#protocol = new SyncProtocol(
      {
        id: this.id,
        uuid,
        state: this.#state,
        mergeRemote: (batch, refuse, decided, relearn) => this.#mergeRemote(batch, refuse, decided, relearn),
        nextSeq: () => this.#nextSeq,
        discoverPeer: (peer) => this.#discover(peer),
        isPeer: (peer) => this.#peers.has(peer),
        ensureSeqAbove: (seq, from) => this.#relearn(seq, `peer ${from}'s ack of our id`),
        now: () => this.clockReading(),
        noteClock: (peer, senderClock) => this.#clocks.note(peer, senderClock),
        conflicts: this.#conflicts,
      },
      tuning,
    );
  }

  /**
   * Opens (and recovers) a node. With `dir`, replays the snapshot and WAL first. Every
   * option is checked first: INVALID_ARGUMENT names the field and what it accepts.
   */
  static async open(opts: NodeOptions): Promise<Node> {
    // Every option, before anything is opened (src/node/options.ts).
    checkNodeOptions(opts);
    let node: Node;
    if (opts.dir !== undefined) {
      // Loaded on demand: an in-memory node (browsers, edge workers) needs no file system.
      const { openStorage } = await import("../storage/storage.js");
      // The node is built as soon as the directory's uuid is known, and replays the
      // records as storage decodes them (a long log window by window, never whole).
      // Storage owns the replay's scope: it abandons a sink whose records are void (and
      // makes another) and gives the kernel's scratch back at the end.
      let built: Node | null = null;
      const replay = (uuid: string): ReplaySink => {
        const n = new Node(opts, uuid, null);
        built = n;
        return {
          apply: (batch, expected) => {
            if (expected) n.#state.reserve(expected.records, expected.keyBytes);
            n.#replay(batch);
          },
          abandon: () => n.#state.dispose(), // nothing it replayed is kept (pinned file bytes included)
        };
      };
      const storage: Storage = await openStorage({ ...opts.storage, dir: opts.dir, nodeId: opts.id, fsync: opts.fsync ?? "always", snapshotWalBytes: opts.snapshotWalBytes, clock: opts.clock, replay });
      node = built ?? new Node(opts, storage.recovered.uuid, null);
      node.#storage = storage;
      for (const w of storage.recovered.warnings) node.#warn(w);
    } else {
      node = new Node(opts, randomUuid(), null);
    }
    const dropped = node.#state.dropRefusedReserved();
    if (dropped.length > 0) node.#warn(`dropped ${dropped.length} entries an older build wrote against the reserved-key rule: ${dropped.slice(0, 5).join(", ")}`);
    node.#nextSeq = Math.max(node.#nextSeq, node.#state.ownMaxSeq + 1);
    node.#protocol.noteOwnWrite(node.#nextSeq - 1);
    if (node.#nextSeq - 1 > MAX_SEQ) node.#warn(`this directory holds seqs of this node up to ${node.#nextSeq - 1}, above the protocol's MAX_SEQ (2^48): peers refuse its writes; likely left by a seq-poisoning attack on an older build; rebuild the node (new directory, then bootstrap)`);
    // A recovery that reported damage may have lost writes peers already hold: let the
    // next round's responses teach their seqs (docs/PROTOCOL.md "Hostile peers").
    if (opts.dir !== undefined && node.#storage !== null && node.#storage.recovered.warnings.length > 0) node.#protocol.relearnUntilRound = true;
    const configured = new Set(opts.peers ?? []);
    for (const p of node.#peers) if (!configured.has(p)) node.#discovered.add(p);
    for (const p of configured) await node.addPeer(p);
    return node;
  }

  /**
   * Apply our own log: entries under LWW in one kernel call (no admission: they were
   * admitted once; the kernel skips the non-entry kinds), then membership and seq marks
   * in log order. Entries and membership commute, so the split changes nothing.
   */
  #replay(batch: DecodedBatch): void {
    this.#state.mergeBatch(batch, { limits: this.limits, now: this.#clock(), trusted: true });
    const d = batch.words;
    for (let i = 0, at = 0; i < batch.count; i++, at += DESCRIPTOR_WORDS) {
      const kind = d[at + D_KIND]!, node = d[at + D_NODE]!;
      if (kind === RecordKind.AddPeer) { if (node !== this.id) this.#peers.add(node); }
      else if (kind === RecordKind.RemovePeer) { this.#peers.delete(node); this.#protocol.forgetPeer(node); }
      else if (kind === RecordKind.SeqMark) { const seq = joinU64(d[at + D_SEQ_LO]!, d[at + D_SEQ_HI]!); if (seq >= this.#nextSeq) this.#nextSeq = seq + 1; }
    }
    this.#noteOwnSeqs(batch);
  }

  // ---------------------------------------------------------------- writes

  #checkOpen(): void {
    if (this.#closed) throw new WaveKVError("CLOSED", "the node is closed; open it again to use it");
  }

  #checkKey(key: string): number {
    if (typeof key !== "string") throw new WaveKVError("INVALID_ARGUMENT", "keys are strings");
    // A lone surrogate has no UTF-8 form: "a\uD800" and "a\uDC00" would both become
    // "a\uFFFD" on the wire and in the index while staying two keys in JS.
    if (!(key as string & { isWellFormed(): boolean }).isWellFormed()) throw new WaveKVError("INVALID_ARGUMENT", "key is not well-formed Unicode (it contains a lone surrogate)");
    const len = utf8Length(key);
    if (len > this.limits.maxKeyBytes) throw new WaveKVError("KEY_TOO_LARGE", `key is ${len} bytes; limits.maxKeyBytes is ${this.limits.maxKeyBytes}`);
    return len;
  }

  #checkWrite(entry: Entry, keyLen: number, exists: boolean): void {
    const valueLen = entry.value?.length ?? 0;
    if (valueLen > this.limits.maxValueBytes) throw new WaveKVError("VALUE_TOO_LARGE", `value is ${valueLen} bytes; limits.maxValueBytes is ${this.limits.maxValueBytes}`);
    const state = this.#state;
    if (isReservedKey(entry.key)) {
      // This node's own bookkeeping: not the user's limits, but the reserved prefix's own rules.
      const why = reservedRefusal(entry.key, this.id, valueLen);
      if (why !== undefined) throw new WaveKVError("RESERVED_KEY", `${why}: use another key`);
      if (!exists && state.reservedKeys + 1 > RESERVED_LIMITS.maxKeys) throw new WaveKVError("STORE_FULL", `${RESERVED_LIMITS.maxKeys} keys under ${RESERVED_PREFIX} are held; collect garbage`);
    } else if (state.userKeyCount + 1 > this.limits.maxKeys || state.userBytes + keyLen + valueLen > this.limits.maxTotalBytes) {
      // With room for one more key of this size the write fits whether or not the key
      // exists (an overwrite grows the total by at most valueLen): the common path reads nothing more.
      if (!exists) {
        if (state.userKeyCount + 1 > this.limits.maxKeys) throw new WaveKVError("STORE_FULL", `the store holds limits.maxKeys = ${this.limits.maxKeys} keys (tombstones included); delete and collect garbage, or raise the limit`);
        throw new WaveKVError("STORE_FULL", `the write would exceed limits.maxTotalBytes = ${this.limits.maxTotalBytes}`);
      }
      const grow = valueLen - state.valueLengthAt(state.slotOf(entry.key));
      if (grow > 0 && state.userBytes + grow > this.limits.maxTotalBytes) throw new WaveKVError("STORE_FULL", `the write would exceed limits.maxTotalBytes = ${this.limits.maxTotalBytes}`);
    }
    if (this.#admit) {
      const verdict = this.#admit(entry);
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
   * drift rule), then the limits, the reserved prefix and `admit`.
   */
  async #write(key: string, value: Uint8Array | null, force: boolean): Promise<Entry> {
    this.#checkOpen();
    const keyLen = this.#checkKey(key);
    const m = this.#stamp, exists = this.#state.stampInto(key, m);
    const pending = this.#pendingKeys.get(key);
    let timestamp = this.#clock();
    if (exists && m[1] === this.id && m[0]! > timestamp) timestamp = m[0]!;
    if (pending !== undefined && pending.timestamp > timestamp) timestamp = pending.timestamp;
    if (force && exists && m[0]! >= timestamp) timestamp = m[0]! + 1;
    const entry: Entry = { key, value, timestamp, node: this.id, seq: this.#nextSeq };
    if (exists && compareStamps(m[0]!, m[1]!, m[2]!, timestamp, this.id, entry.seq) > 0) throw this.#superseded(key, "was refused");
    this.#checkClock(timestamp, key);
    this.#checkWrite(entry, keyLen, exists);
    this.#nextSeq++;
    if (this.#storage) {
      const record = recordOf(entry);
      // Deferred: while an fsync runs, concurrent puts queue and go out as one encode and
      // one write when it completes (group write); an idle log writes at once.
      const durable = this.#storage.append([record], { defer: true });
      this.#pendingRecords.set(entry.seq, record);
      this.#inflight.add(durable);
      // Reserve the stamp: a later write of ours to this key is ordered after it even before it applies.
      this.#pendingKeys.set(key, { count: (pending?.count ?? 0) + 1, timestamp: Math.max(timestamp, pending?.timestamp ?? timestamp) });
      try {
        await durable;
      } catch (err) {
        throw err instanceof WaveKVError ? err : new WaveKVError("IO", `write failed: ${(err as Error).message}`, { cause: err });
      } finally {
        this.#inflight.delete(durable);
        this.#pendingRecords.delete(entry.seq);
        const p = this.#pendingKeys.get(key)!;
        if (--p.count === 0) this.#pendingKeys.delete(key);
      }
    }
    // Applied only once durable, so memory never shows a write the log refused.
    const won = this.#state.applyOne(key, value, entry.timestamp, this.id, entry.seq, keyLen);
    this.#protocol.noteOwnWrite(entry.seq);
    this.#maybeSnapshot();
    if (!won) throw this.#superseded(key, "was logged, then lost to an entry merged during its fsync");
    return entry;
  }

  #superseded(key: string, what: string): WaveKVError {
    const winner = this.#state.get(key)!;
    return new WaveKVError("SUPERSEDED", `the write to ${JSON.stringify(key)} ${what}: node ${winner.node}'s entry, stamped ${winner.timestamp - this.#clock()} ms from now, wins (err.winner); forcePut writes over it`, { winner });
  }

  /**
   * CLOCK_SKEW when `timestamp` is further ahead of the cluster's clock (our clock plus
   * the peers' median offset, src/sync/clock.ts) than limits.maxClockDriftMs: peers would
   * refuse the entry until their clocks caught up, and it must not be acknowledged.
   * No recent peer evidence: no check.
   */
  #checkClock(timestamp: number, key: string): void {
    const offset = this.#clocks.offset();
    if (offset === null) return;
    const ahead = timestamp - this.#clock() - offset, drift = this.limits.maxClockDriftMs;
    if (ahead <= drift) return;
    // Our clock itself, or only this key's stamp (an entry written while a clock was ahead)?
    const ours = -offset > drift;
    throw new WaveKVError("CLOCK_SKEW", `${ours ? "this node's clock" : `the stamp ${JSON.stringify(key)} needs to order after its entry`} is ${ahead} ms ahead of its peers' clocks (limits.maxClockDriftMs ${drift}): nothing was written; ${ours ? "fix this machine's clock (NTP)" : `retry in ${ahead - drift} ms`}`);
  }

  /**
   * Write `value` (a string is stored as UTF-8) stamped now. Resolves once durable per
   * `fsync`. Rejects with SUPERSEDED (`err.winner`: the entry that wins) when the key
   * holds an entry stamped after now by another node, before anything is logged; and
   * also when the write loses only as it applies (a peer's entry merged during its
   * fsync): then it was logged, lost last-writer-wins legitimately, and its seq is spent.
   * Rejects with CLOCK_SKEW when this node's clock is ahead of its peers' by more than
   * limits.maxClockDriftMs (peers would refuse the write).
   */
  put(key: string, value: string | Uint8Array): Promise<Entry> {
    return this.#guard(() => this.#write(key, toBytes(value), false));
  }

  /**
   * Write with `timestamp = max(existing.timestamp + 1, now)`: wins over the current value
   * even under clock skew (never SUPERSEDED), unless that stamp is beyond what peers
   * accept: CLOCK_SKEW.
   */
  forcePut(key: string, value: string | Uint8Array): Promise<Entry> {
    return this.#guard(() => this.#write(key, toBytes(value), true));
  }

  /**
   * Replicated delete: writes a tombstone and resolves to it — also when this node does
   * not hold the key (a peer may hold an older put of it that the caller wants gone, as
   * upstream). Rejects like `put` (SUPERSEDED, CLOCK_SKEW).
   */
  delete(key: string): Promise<Entry> {
    return this.#guard(() => this.#write(key, null, false));
  }

  /** Turns synchronous throws of an async API into rejections. */
  #guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return fn();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #mergeRemote(batch: DecodedBatch, refuse: ReadonlyMap<number, string> | undefined, decided: number, relearn: boolean): BatchOutcome {
    this.#checkOpen();
    const storage = this.#storage;
    this.#merging = true;
    let out: BatchOutcome;
    try {
      out = this.#state.mergeBatch(batch, {
      limits: this.limits,
      now: this.#clock(),
      admit: this.#admit,
      refuse,
      decided,
      // One log append for the whole batch. Its fsync is not awaited: acks are not
      // durable, so an entry lost in a crash is simply sent again by its peer.
      persist: storage ? (records) => {
        // A latched log, or a write that failed just now (the write is synchronous),
        // refuses the batch: throwing makes mergeBatch roll it back — nothing applied,
        // incomplete, so no acks move (R1).
        if (storage.failure) throw storage.failure;
        storage.append(records).catch((e) => this.#warn(`log append of a merged batch failed: ${(e as Error).message}`));
        if (storage.failure) throw storage.failure;
      } : undefined,
      });
    } finally {
      this.#merging = false;
    }
    // Outside the relearning window the protocol refused every entry of ours at or above
    // nextSeq: nothing a peer sends moves it then.
    if (relearn) {
      const before = this.#nextSeq;
      this.#noteOwnSeqs(batch);
      if (this.#nextSeq !== before) this.#relearned(before, "entries of ours a peer holds");
    }
    if (out.merged > 0) this.#maybeSnapshot();
    return out;
  }

  /**
   * Every entry of ours proves its seq spent, whether it won, lost or was refused: a
   * write that lost LWW leaves no other trace, and a seq must never be handed out twice.
   * One pass over the descriptors, no allocation. Seqs above MAX_SEQ (refused at ingress;
   * in our log only if an older build was poisoned) prove nothing.
   */
  #noteOwnSeqs(batch: DecodedBatch): void {
    const d = batch.words;
    for (let i = 0, at = 0; i < batch.count; i++, at += DESCRIPTOR_WORDS) {
      if (d[at + D_NODE] !== this.id || d[at + D_KIND]! > RecordKind.Value) continue;
      const seq = joinU64(d[at + D_SEQ_LO]!, d[at + D_SEQ_HI]!);
      if (seq >= this.#nextSeq && seq <= MAX_SEQ) this.#nextSeq = seq + 1;
    }
  }

  /** Relearning (bootstrap, damaged recovery): a peer shows `seq` of ours spent. */
  #relearn(seq: number, what: string): void {
    if (seq < this.#nextSeq || seq > MAX_SEQ) return;
    const before = this.#nextSeq;
    this.#nextSeq = seq + 1;
    this.#relearned(before, what);
  }

  /** Logs a relearning move; at most one line per 10 s (a rebuilt node moves once per slice of its bootstrap). */
  #relearned(before: number, what: string): void {
    const now = Date.now();
    if (now - this.#relearnLoggedAt < 10_000) return;
    this.#relearnLoggedAt = now;
    this.#warn(`relearned spent seqs from ${what}: nextSeq ${before} -> ${this.#nextSeq} (a rebuilt node, or a log that lost its tail)`);
  }

  // ---------------------------------------------------------------- reads

  /**
   * The live entry of `key`, or undefined (absent or deleted). The value must not be
   * mutated. A value merged from a large remote batch is a view of that batch's bytes:
   * `value.slice()` one you keep for long, or it keeps the batch alive. (A value
   * recovered from disk comes as a copy: those bytes live in the kernel's memory.)
   */
  get(key: string): Entry | undefined {
    const e = this.getIncludingTombstones(key);
    return e && e.value !== null ? e : undefined;
  }

  /** The entry of `key`, a tombstone (`value: null`) included, or undefined. */
  getIncludingTombstones(key: string): Entry | undefined {
    this.#checkOpen();
    if (typeof key !== "string") throw new WaveKVError("INVALID_ARGUMENT", `key must be a string, got ${typeof key}`);
    return this.#state.get(key);
  }

  /**
   * Entries whose key starts with `prefix` (default `""`: every key), in UTF-8 key order,
   * read lazily: each step reads the current value, and nothing is built for the whole
   * range. Pages like `GET /kv?prefix=&limit=&after=`:
   *
   *   let after: string | undefined;
   *   for (;;) {
   *     const page = [...node.scan("user/", { limit: 100, after })];
   *     // ... use page
   *     if (page.length < 100) break;
   *     after = page[page.length - 1]!.key;
   *   }
   *
   * Options (`includeTombstones` default false, `after` default none, `limit` default
   * none) are checked at the call: INVALID_ARGUMENT naming the field. A scan left open
   * walks the keys held at its first step (keys written later may be missed) and yields
   * each key held throughout once, in order, GC meanwhile included; after close() its
   * next step throws CLOSED.
   */
  scan(prefix = "", opts: ScanOptions = {}): IterableIterator<Entry> {
    this.#checkOpen();
    const o = scanOptions(prefix, opts);
    return this.#state.scan(prefix, o.includeTombstones, o.after, o.limit);
  }

  /**
   * Live keys (tombstones not counted), like `status().keys`: the node's own bookkeeping
   * under `__wavekv/` (the address book) is left out and counted in `status().reservedKeys`;
   * `scan` still shows it.
   */
  get size(): number {
    this.#checkOpen();
    return this.#state.userLive;
  }

  /**
   * Every change (local or merged, deletes included) under `prefix`, until `signal`
   * aborts or the node closes. `localOnly` yields this node's own writes only (and lets
   * a merge skip building entries nobody reads).
   */
  watch(prefix = "", opts: { signal?: AbortSignal; localOnly?: boolean } = {}): AsyncIterableIterator<Entry> {
    this.#checkOpen();
    if (typeof prefix !== "string" || !isWellFormed(prefix)) throw new WaveKVError("INVALID_ARGUMENT", `watch prefix must be a well-formed string ("" for every key), got ${typeof prefix === "string" ? JSON.stringify(prefix) : typeof prefix}`);
    return this.#watchers.subscribe(prefix, opts.signal, opts.localOnly ?? false);
  }

  /** SPEC section 5: SHA-256 over every entry in UTF-8 key order, as 64 hex chars. Cached until the state changes. */
  digest(): string {
    return this.#state.digest();
  }

  // ---------------------------------------------------------------- membership

  peers(): number[] {
    return [...this.#peers].sort((a, b) => a - b);
  }

  /** Adds `peer` as a configured member (durable). A discovered peer becomes a configured one. */
  async addPeer(peer: number): Promise<void> {
    this.#checkOpen();
    if (!Number.isInteger(peer) || peer < 0 || peer > MAX_NODE_ID) throw new WaveKVError("INVALID_ARGUMENT", `peer id must be a uint32, got ${peer}`);
    this.#discovered.delete(peer);
    await this.#addMember(peer);
  }

  /**
   * Auto-discovery: a request from an unknown sender id. Bounded (sync tuning
   * maxDiscoveredPeers): forged ids must not become unbounded durable members.
   */
  #discover(peer: number): void {
    const max = this.#protocol.tuning.maxDiscoveredPeers;
    if (this.#discovered.size >= max) {
      const why = `${this.#discovered.size} auto-discovered peers reached sync.maxDiscoveredPeers (${max}); requests from further unknown ids (here ${peer}) are refused: configure real peers (addPeer / --peers), remove stale ones (removePeer), or raise the bound`;
      if (!this.#peerLimitWarned) this.#warn(why);
      this.#peerLimitWarned = true;
      throw new WaveKVError("TOO_MANY_PEERS", why);
    }
    this.#discovered.add(peer);
    void this.#addMember(peer).catch((e) => this.#warn(`could not record discovered peer ${peer}: ${(e as Error).message}`));
  }

  async #addMember(peer: number): Promise<void> {
    if (peer === this.id || this.#peers.has(peer)) return;
    this.#peers.add(peer);
    // Membership is durable: the GC watermark is a minimum over peers, and a peer forgotten
    // in a crash would let us collect tombstones it never saw.
    await this.#storage?.append([{ kind: RecordKind.AddPeer, key: "", value: null, timestamp: 0, node: peer, seq: 0 }]);
  }

  /**
   * Forgets `peer` completely: membership (durable), the uuid on record for its id, acks
   * and rounds in progress. If it makes requests again it is discovered anew.
   */
  async removePeer(peer: number): Promise<void> {
    this.#checkOpen();
    this.#protocol.forgetPeer(peer);
    if (this.#discovered.delete(peer)) this.#peerLimitWarned = false;
    if (!this.#peers.has(peer)) return;
    this.#peers.delete(peer);
    await this.#storage?.append([{ kind: RecordKind.RemovePeer, key: "", value: null, timestamp: 0, node: peer, seq: 0 }]);
  }

  // ---------------------------------------------------------------- sync (SPEC section 3)

  /** The request to send to `peer` (or the next page of a paged round). */
  prepareSync(peer: number): Envelope {
    this.#checkOpen();
    return this.#protocol.prepareSync(peer);
  }

  /**
   * This node's clock as every envelope carries it (SENDER_CLOCK, docs/PROTOCOL.md §6.1),
   * for envelopes built outside the protocol (SyncManager's pushes). A reading the
   * envelope cannot carry is left out (undefined), never a reason for an encoder to fail.
   */
  clockReading(): number | undefined {
    const t = this.#clock();
    return Number.isSafeInteger(t) && Math.abs(t) < 2 ** 52 ? t : undefined;
  }

  /** Responder: merge a request or push, build the response. Throws UUID_MISMATCH for a reused id. */
  handleEnvelope(env: Envelope): Envelope {
    this.#checkOpen();
    return this.#protocol.handleEnvelope(env);
  }

  /** Requester: merge a response. */
  applyEnvelope(env: Envelope): MergeOutcome {
    this.#checkOpen();
    return this.#protocol.applyEnvelope(env);
  }

  /**
   * handleEnvelope / applyEnvelope for a large envelope: merged `sliceEntries` at a time
   * with `await pause()` between slices, so other requests run meanwhile. Acks move only
   * after the last slice, and only if every slice merged completely (R1).
   */
  handleEnvelopeInSlices(env: Envelope, slicing: MergeSlicing): Promise<Envelope> {
    return this.#guard(() => { this.#checkOpen(); return this.#protocol.handleEnvelopeInSlices(env, slicing); });
  }

  applyEnvelopeInSlices(env: Envelope, slicing: MergeSlicing): Promise<MergeOutcome> {
    return this.#guard(() => { this.#checkOpen(); return this.#protocol.applyEnvelopeInSlices(env, slicing); });
  }

  /**
   * Divergence-repair counters since open: full resets, bucket repairs started, and the
   * entries that bucket-repair envelopes carried out of / into this node.
   */
  repairStats(): { digestResets: number; bucketRepairs: number; repairEntriesSent: number; repairEntriesReceived: number } {
    const p = this.#protocol;
    return { digestResets: p.digestResets, bucketRepairs: p.bucketRepairs, repairEntriesSent: p.repairEntriesSent, repairEntriesReceived: p.repairEntriesReceived };
  }

  /** The range-summary root (docs/PROTOCOL.md §5): what sync rounds compare instead of digest(). */
  summaryRoot(): string {
    this.#checkOpen();
    return this.#state.summaryRoot();
  }

  /**
   * `peer` refused our request with UUID_MISMATCH (it holds another uuid for our id):
   * listed in `status().refusedBy` until it answers one of our requests (SyncManager calls
   * this; a caller driving rounds itself may too).
   */
  noteRefusedBy(peer: number): void {
    this.#conflicts.refusedUs(peer);
  }

  /** Abandon a round with `peer` whose response never came: nothing is adopted. */
  abortSync(peer: number): void {
    this.#protocol.abortRound(peer);
  }

  /** While bootstrapping a node does not adopt a requester's acks (its own coverage is unknown). */
  beginBootstrap(): void { this.#protocol.beginBootstrap(); }
  finishBootstrap(): void { this.#protocol.finishBootstrap(); }

  /** Drops tombstones that every known peer's reported coverage includes. */
  async collectGarbage(): Promise<number> {
    this.#checkOpen();
    const peers = this.peers();
    const drop: number[] = [];
    for (const t of this.#state.tombstoneSlots()) {
      if (this.#protocol.collectable(peers, t.node, t.seq)) drop.push(t.slot);
    }
    for (const slot of drop) this.#state.release(slot);
    // Collection is not logged record by record: a snapshot makes it durable, so that a
    // restart neither brings the tombstones back nor changes the digest.
    if (drop.length > 0 && this.#storage) await this.persist();
    return drop.length;
  }

  /** Key + value bytes of every entry, tombstones included (what `maxTotalBytes` limits). */
  get totalBytes(): number {
    return this.#state.totalBytes;
  }

  /** WAL size and fsync statistics; null for an in-memory node. */
  storageStats(): { walBytes: number; fsyncCount: number; fsyncLatency: { bounds: readonly number[]; counts: readonly number[]; sum: number; count: number } } | null {
    const s = this.#storage;
    if (!s) return null;
    const h = s.fsyncLatency;
    return { walBytes: s.walBytes, fsyncCount: s.fsyncCount, fsyncLatency: { bounds: h.bounds, counts: [...h.counts], sum: h.sum, count: h.count } };
  }

  status(): NodeStatus {
    return {
      id: this.id,
      uuid: this.uuid,
      keys: this.#state.userLive,
      tombstones: this.#state.userTombstones,
      reservedKeys: this.#state.reservedKeys,
      clock: { offsetMs: this.#clocks.offset(), peers: this.#clocks.samples() },
      nextSeq: this.#nextSeq,
      digest: this.digest(),
      wal: this.#storage !== null,
      entriesMerged: this.#protocol.entriesMerged,
      entriesRejected: this.#protocol.entriesRejected,
      peers: this.peers().map((p) => ({ ...this.#protocol.peerStatus(p), discovered: this.#discovered.has(p) })),
      duplicateIds: this.#conflicts.duplicateIds(),
      refusedBy: this.#conflicts.refusedBy(),
    };
  }

  // ---------------------------------------------------------------- durability

  #maybeSnapshot(): void {
    if (this.#storage?.needsSnapshot && this.#snapshotting === null && !this.#closed) {
      void this.persist().catch((e) => this.#warn(`automatic snapshot failed: ${(e as Error).message}`));
    }
  }

  /** Snapshot now, then reset the WAL. A no-op for an in-memory node. */
  async persist(): Promise<void> {
    this.#checkOpen();
    const storage = this.#storage;
    if (!storage) return;
    if (this.#snapshotting) return this.#snapshotting;
    const run = (async () => {
      await storage.snapshot(() => this.#snapshotRecords());
      // The high-water mark also goes to the fresh WAL, so that losing this snapshot
      // (falling back to .bak) can never hand out a seq a peer already holds.
      await storage.append([seqMark(this.#nextSeq - 1)]);
    })();
    this.#snapshotting = run;
    try {
      await run;
    } finally {
      this.#snapshotting = null;
    }
  }

  *#snapshotRecords(): IterableIterator<RecordInput> {
    yield seqMark(this.#nextSeq - 1);
    for (const p of this.peers()) yield { kind: RecordKind.AddPeer, key: "", value: null, timestamp: 0, node: p, seq: 0 };
    yield* this.#state.records();
    // Logged, not yet applied: replay decides them by LWW like everything else. If one
    // later fails its fsync, the snapshot may still hold it — an unacknowledged write may
    // or may not survive a failure, as with any log.
    yield* this.#pendingRecords.values();
  }

  /** Flushes pending writes and releases the directory. Later calls reject with CLOSED. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await Promise.allSettled([...this.#inflight]);
    if (this.#snapshotting) await this.#snapshotting.catch(() => undefined);
    this.#closed = true;
    this.#watchers.closeAll();
    await this.#storage?.close();
    this.#state.dispose();
  }

  get closed(): boolean {
    return this.#closed;
  }
}

/** Options of `Node.scan`. */
export interface ScanOptions {
  /** Yield tombstones (deleted keys, `value: null`) too. Default false. */
  includeTombstones?: boolean;
  /**
   * Only keys after this one (exclusive), in UTF-8 key order: the last key of the previous
   * page. Need not be a key held. Default: none (from the first key under the prefix).
   */
  after?: string;
  /** At most this many entries (tombstones skipped do not count); a positive integer. Default: no limit. */
  limit?: number;
}

const isWellFormed = (s: string) => (s as string & { isWellFormed(): boolean }).isWellFormed();

/** Checked `Node.scan` arguments. Strings must be well-formed: a lone surrogate has no UTF-8 order. */
function scanOptions(prefix: unknown, opts: unknown): { includeTombstones: boolean; after: string | undefined; limit: number } {
  const bad = (field: string, want: string, got: unknown) =>
    new WaveKVError("INVALID_ARGUMENT", `scan ${field} must be ${want}, got ${typeof got === "string" ? JSON.stringify(got) : String(got)}`);
  if (typeof prefix !== "string" || !isWellFormed(prefix)) throw bad("prefix", "a well-formed string (\"\" for every key)", prefix);
  if (typeof opts !== "object" || opts === null) throw bad("options", "an object { includeTombstones?, after?, limit? }", opts);
  const { includeTombstones, after, limit } = opts as ScanOptions;
  if (includeTombstones !== undefined && typeof includeTombstones !== "boolean") throw bad("includeTombstones", "true or false", includeTombstones);
  if (after !== undefined && (typeof after !== "string" || !isWellFormed(after))) throw bad("after", "a well-formed string (the last key of the previous page)", after);
  if (limit !== undefined && !(Number.isSafeInteger(limit) && limit > 0)) throw bad("limit", "a positive integer (omit it for no limit)", limit);
  return { includeTombstones: includeTombstones ?? false, after, limit: limit ?? Infinity };
}

function recordOf(e: Entry): RecordInput {
  return { kind: e.value === null ? RecordKind.Tombstone : RecordKind.Value, key: e.key, value: e.value, timestamp: e.timestamp, node: e.node, seq: e.seq };
}

function seqMark(seq: number): RecordInput {
  return { kind: RecordKind.SeqMark, key: "", value: null, timestamp: 0, node: 0, seq: Math.max(0, seq) };
}

/** A v4 uuid. `crypto.randomUUID` exists only in secure contexts; `getRandomValues` everywhere. */
function randomUuid(): string {
  const c = globalThis.crypto;
  if (typeof c.randomUUID === "function") return c.randomUUID();
  const b = c.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
