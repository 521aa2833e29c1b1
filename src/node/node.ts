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
import type { DecodedBatch } from "../core/record.js";
import type { Envelope } from "../sync/envelope.js";
import { WaveKVError } from "../core/errors.js";
import { DEFAULT_SYNC_TUNING, SyncProtocol, type MergeOutcome, type MergeSlicing } from "../sync/protocol.js";
import { IdConflicts } from "../sync/identity.js";
import { checkNodeOptions, withDefaults, type NodeOptions } from "./options.js";
import { ReplicaState, type BatchOutcome, type MergeGroups, type RangeGroup } from "../state/replica.js";
import type { ReplaySink, Storage, StorageTuning } from "../storage/interface.js";
import { DEFAULT_LIMITS, isNodeId, type AdmitFn, type Entry, type Limits, type NodeStatus } from "../core/types.js";
import { toBytes } from "../core/encoding.js";
import { Watchers } from "./watch.js";
import { randomUuid } from "./uuid.js";
import { LocalWrites } from "./writes.js";
import { writeBatch, type BatchOperation } from "./batch.js";
import { Members } from "./members.js";
import { OwnSeqs } from "./seqs.js";
import { isWellFormed, scanOptions, type ScanOptions } from "./scan-options.js";
import { logMerged, replayLog, snapshotRecords } from "./log-records.js";
import { seqMarkRecord } from "../core/record.js";
import { Replication, type ReplicatedOptions, type ReplicationStatus } from "./replication.js";
import { ExpiryTimer, ttlOption as ttlOf } from "./expiry-timer.js";
import { nodeStatus, storageStatsOf, type StorageStats } from "./node-status.js";

export type { NodeOptions, StorageFactory, StorageOpenContext } from "./options.js";
export type { MergeOutcome } from "../sync/protocol.js";
export type { ScanOptions } from "./scan-options.js";
export type { StorageStats } from "./node-status.js";

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
  /** Durable membership (src/node/members.ts); recovery fills its sets. */
  readonly #members: Members;
  readonly #watchers = new Watchers();
  /** The seqs we hand out (src/node/seqs.ts). */
  readonly #seqs: OwnSeqs;
  /** True while a remote batch is being applied: its changes are not local writes. */
  #merging = false;
  #closed = false;
  #snapshotting: Promise<void> | null = null;
  /** The local write path (put, forcePut, delete): src/node/writes.ts. */
  readonly #writes: LocalWrites;
  /** Peers' clock readings, to refuse a write peers would refuse by the drift rule. */
  readonly #clocks: PeerClocks;
  /** Duplicate ids seen from both sides (status().duplicateIds, refusedBy). */
  readonly #conflicts: IdConflicts;
  readonly #replication: Replication = Replication.of(this, { id: () => this.id, hasPeers: () => this.#members.peers.size > 0, peers: () => this.peers(), peerAck: (p) => this.#protocol.peerAcks.get(p)?.get(this.id) ?? 0, lastSeq: () => this.#seqs.next - 1, now: Date.now });
  readonly #expiry: ExpiryTimer; // expiry events for watchers

  private constructor(opts: NodeOptions, uuid: string, storage: Storage | null) {
    this.id = opts.id;
    this.uuid = uuid;
    this.limits = Object.freeze(withDefaults(DEFAULT_LIMITS, opts.limits));
    this.#clock = opts.clock ?? Date.now;
    this.#clocks = new PeerClocks(this.#clock);
    this.#admit = opts.admit;
    this.#warn = opts.onWarning ?? ((m) => console.warn(`wavekv node ${opts.id}: ${m}`));
    this.#storage = storage;
    this.#seqs = new OwnSeqs(opts.id, this.#warn);
    this.#state = new ReplicaState(opts.id);
    this.#conflicts = new IdConflicts(this, this.#clock, this.#warn);
    this.#state.now = this.#clock;
    this.#expiry = ExpiryTimer.forWatchers(this.#state, this.#watchers, this.id);
    this.#state.onChange = (slot) => {
      this.#expiry.changed(slot);
      if (this.#watchers.size === 0 || (this.#merging && !this.#watchers.wantsRemote)) return;
      this.#watchers.emit(this.#state.entryAt(slot), !this.#merging);
    };
    const tuning = withDefaults(DEFAULT_SYNC_TUNING, opts.sync);
    this.#protocol = new SyncProtocol(
      {
        id: this.id,
        uuid,
        state: this.#state,
        mergeRemote: (batch, refuse, decided, relearn, groups) => this.#mergeRemote(batch, refuse, decided, relearn, groups),
        nextSeq: () => this.#seqs.next,
        discoverPeer: (peer) => this.#members.discover(peer),
        isPeer: (peer) => this.#members.isRecorded(peer),
        ensureSeqAbove: (seq, from) => this.#seqs.relearn(seq, `peer ${from}'s ack of our id`),
        now: () => this.clockReading(),
        noteClock: (peer, senderClock) => this.#clocks.note(peer, senderClock),
        conflicts: this.#conflicts,
      },
      tuning,
    );
    this.#members = new Members({
      id: this.id,
      storage: () => this.#storage,
      maxDiscovered: () => this.#protocol.tuning.maxDiscoveredPeers,
      forget: (peer) => { this.#protocol.forgetPeer(peer); this.#replication.removed(peer); },
      warn: this.#warn,
      now: this.#clock,
    });
    this.#writes = new LocalWrites({
      id: this.id, limits: this.limits, state: this.#state, admit: this.#admit, clock: this.#clock, clocks: this.#clocks,
      storage: () => this.#storage,
      seqs: this.#seqs,
      applied: (seq) => { this.#protocol.noteOwnWrite(seq); this.#maybeSnapshot(); },
    });
  }

  /**
   * Opens (and recovers) a node. With `dir`, replays the snapshot and WAL first. Every
   * option is checked first: INVALID_ARGUMENT names the field and what it accepts.
   */
  static async open(opts: NodeOptions): Promise<Node> {
    // Every option, before anything is opened (src/node/options.ts).
    checkNodeOptions(opts);
    let node: Node;
    const factory = typeof opts.storage === "function" ? opts.storage : undefined;
    if (opts.dir !== undefined || factory !== undefined) {
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
            // Entries under LWW in one kernel call (no admission: they were admitted once;
            // the kernel skips the non-entry kinds), then membership and seq marks.
            n.#state.mergeBatch(batch, { limits: n.limits, now: n.#clock(), trusted: true });
            replayLog(batch, n.#members, n.#seqs, n.#state.batches);
          },
          abandon: () => n.#state.dispose(), // nothing it replayed is kept (pinned file bytes included)
        };
      };
      let storage: Storage;
      if (factory !== undefined) {
        storage = await factory({ nodeId: opts.id, replay, fsync: opts.fsync ?? "always", snapshotWalBytes: opts.snapshotWalBytes, clock: opts.clock ?? Date.now, newUuid: randomUuid });
      } else {
        // Loaded on demand: an in-memory node (browsers, edge workers) needs no file system.
        const { openStorage } = await import("../storage/storage.js");
        storage = await openStorage({ ...(opts.storage as StorageTuning | undefined), dir: opts.dir!, nodeId: opts.id, fsync: opts.fsync ?? "always", snapshotWalBytes: opts.snapshotWalBytes, clock: opts.clock, replay });
      }
      node = built ?? new Node(opts, storage.recovered.uuid, null);
      node.#storage = storage;
      for (const w of storage.recovered.warnings) node.#warn(w);
    } else {
      node = new Node(opts, randomUuid(), null);
    }
    const dropped = node.#state.dropRefusedReserved();
    if (dropped.length > 0) node.#warn(`dropped ${dropped.length} entries an older build wrote against the reserved-key rule: ${dropped.slice(0, 5).join(", ")}`);
    node.#seqs.recovered(node.#state.ownMaxSeq);
    node.#protocol.noteOwnWrite(node.#seqs.next - 1);
    // A recovery that reported damage may have lost writes peers already hold: let the
    // next round's responses teach their seqs (docs/PROTOCOL.md "Hostile peers").
    if (node.#storage !== null && node.#storage.recovered.warnings.length > 0) node.#protocol.relearnUntilRound = true;
    const configured = new Set(opts.peers ?? []);
    for (const p of node.#members.peers) if (!configured.has(p)) node.#members.discovered.add(p);
    for (const p of configured) await node.addPeer(p);
    return node;
  }

  // ---------------------------------------------------------------- writes

  #checkOpen(): void {
    if (this.#closed) throw new WaveKVError("CLOSED", "the node is closed; open it again to use it");
  }

  /**
   * Write `value` (a string is stored as UTF-8) stamped now. Resolves once durable per
   * `fsync`. Rejects with SUPERSEDED (`err.winner`: the entry that wins) when the key
   * holds an entry stamped after now by another node, before anything is logged; and
   * also when the write loses only as it applies (a peer's entry merged during its
   * fsync): then it was logged, lost last-writer-wins legitimately, and its seq is spent.
   * Rejects with CLOCK_SKEW when this node's clock is ahead of its peers' by more than
   * limits.maxClockDriftMs (peers would refuse the write). `ttlMs` (1 ms–10 years, else INVALID_ARGUMENT): the entry expires at `timestamp + ttlMs` (`Entry.expiresAt`) on every replica, reads as absent from then on, and watchers see it as a change (docs/design/0026-expiry.md).
   */
  put(key: string, value: string | Uint8Array, opts?: { ttlMs?: number }): Promise<Entry> {
    return this.#guard(() => this.#write(key, toBytes(value), false, ttlOf(opts)));
  }

  /**
   * Write with `timestamp = max(existing.timestamp + 1, now)`: wins over the current value
   * even under clock skew (never SUPERSEDED), unless that stamp is beyond what peers
   * accept: CLOCK_SKEW.
   */
  forcePut(key: string, value: string | Uint8Array, opts?: { ttlMs?: number }): Promise<Entry> {
    return this.#guard(() => this.#write(key, toBytes(value), true, ttlOf(opts)));
  }

  /**
   * Replicated delete: writes a tombstone and resolves to it — also when this node does
   * not hold the key (a peer may hold an older put of it that the caller wants gone, as
   * upstream). Rejects like `put` (SUPERSEDED, CLOCK_SKEW).
   */
  delete(key: string): Promise<Entry> {
    return this.#guard(() => this.#write(key, null, false));
  }

  /** Puts and deletes written all or nothing: one log append and fsync, applied in one step (readers never see part; watchers get its events together); LWW per key. Resolves to the entries.
   *  Refused whole, nothing written: INVALID_ARGUMENT (empty, over MAX_BATCH_ENTRIES / MAX_BATCH_BYTES, a key twice, a bad operation, `signal` aborted), RESERVED_KEY, and put's codes (docs/design/0027-atomic-batches.md). */
  batch(ops: readonly BatchOperation[], opts: { signal?: AbortSignal } = {}): Promise<Entry[]> {
    // Seqs are taken now, in call order like put's (a lazily loaded batch module took them in a later job: out of program order).
    return this.#guard(() => { this.#checkOpen(); return writeBatch(this.#writes, ops, opts.signal, (e) => this.#replication.wrote(e, e.key, e.value, e.seq)); });
  }

  #write(key: string, value: Uint8Array | null, force: boolean, ttlMs?: number): Promise<Entry> {
    this.#checkOpen();
    return this.#replication.wrote(this.#writes.write(key, value, force, ttlMs), key, value);
  }

  /** Turns synchronous throws of an async API into rejections. */
  #guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return fn();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #mergeRemote(batch: DecodedBatch, refuse: ReadonlyMap<number, string> | undefined, decided: number, relearn: boolean, groups?: MergeGroups): BatchOutcome {
    this.#checkOpen();
    const storage = this.#storage;
    this.#merging = true;
    let out: BatchOutcome;
    try {
      const persist = storage ? logMerged(storage, this.#warn) : undefined;
      out = this.#state.mergeBatch(batch, { limits: this.limits, now: this.#clock(), admit: this.#admit, refuse, decided, persist, groups });
    } finally {
      this.#merging = false;
    }
    // Outside the relearning window the protocol refused every entry of ours at or above
    // nextSeq: nothing a peer sends moves it then.
    if (relearn) this.#seqs.relearnFrom(batch);
    if (out.merged > 0) this.#maybeSnapshot();
    return out;
  }

  // ---------------------------------------------------------------- reads

  /**
   * The live entry of `key`, or undefined (absent or deleted). The value must not be
   * mutated: it is a view of the store's bytes (a 1 MiB value-arena chunk, or a large
   * remote batch merged whole): `value.slice()` one you keep for long, or it keeps that
   * buffer alive. (A value recovered from disk comes as a copy: those bytes live in the
   * kernel's memory.)
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
    try { return this.#watchers.subscribe(prefix, opts.signal, opts.localOnly ?? false); } finally { this.#expiry.start(); }
  }

  /** SPEC section 5: SHA-256 over every entry in UTF-8 key order, as 64 hex chars. Cached until the state changes. */
  digest(): string {
    return this.#state.digest();
  }

  // ---------------------------------------------------------------- membership

  peers(): number[] {
    return this.#members.sorted();
  }

  /** Adds `peer` as a configured member (durable). A discovered peer becomes a configured one. */
  async addPeer(peer: number): Promise<void> {
    this.#checkOpen();
    if (!isNodeId(peer)) throw new WaveKVError("INVALID_ARGUMENT", `peer id must be a uint32, got ${peer}`);
    await this.#members.configure(peer);
  }

  /**
   * Forgets `peer` completely: membership (durable), the uuid on record for its id, acks
   * and rounds in progress. If it makes requests again it is discovered anew.
   */
  async removePeer(peer: number): Promise<void> {
    this.#checkOpen();
    await this.#members.remove(peer);
  }

  /** A peer heard on a presence channel (NATS): a discovered member, in memory until its first request records it; TOO_MANY_PEERS past sync.maxDiscoveredPeers (src/node/members.ts). */
  discoverPeer(peer: number): void { this.#members.announced(peer); }
  /** Forgets the tentative peers (announced, no request yet; never configured or recorded ones) silent for `silentMs` on the node's clock; returns their ids. */
  forgetSilentPeers(silentMs: number): Promise<number[]> { return this.#members.forgetSilent(silentMs); }

  // ---------------------------------------------------------------- sync (SPEC section 3)

  /** The request to send to `peer` (or the next page of a paged round). */
  prepareSync(peer: number): Envelope {
    this.#checkOpen();
    return this.#protocol.prepareSync(peer);
  }

  /** This node's clock as every envelope carries it (SENDER_CLOCK, docs/PROTOCOL.md §6.1), for envelopes built outside the protocol (pushes); undefined when an envelope could not carry it. */
  clockReading(): number | undefined {
    const t = this.#clock();
    return Number.isSafeInteger(t) && Math.abs(t) < 2 ** 52 ? t : undefined;
  }

  /** @internal Which of `list` (entries to push) are batches, and whether whole (src/node/push.ts; docs/PROTOCOL.md §2.3). */
  batchGroups(list: readonly { node: number; seq: number }[]): RangeGroup[] { return this.#state.batches.groups(list); }

  /** Responder: merge a request or push, build the response. Throws UUID_MISMATCH for a reused id. */
  handleEnvelope(env: Envelope): Envelope {
    this.#checkOpen();
    return this.#replication.heard(env.senderId, this.#protocol.handleEnvelope(env));
  }

  /** Requester: merge a response. */
  applyEnvelope(env: Envelope): MergeOutcome {
    this.#checkOpen();
    return this.#replication.heard(env.senderId, this.#protocol.applyEnvelope(env));
  }

  /**
   * handleEnvelope / applyEnvelope for a large envelope: merged `sliceEntries` at a time
   * with `await pause()` between slices, so other requests run meanwhile. Acks move only
   * after the last slice, and only if every slice merged completely (R1).
   */
  handleEnvelopeInSlices(env: Envelope, slicing: MergeSlicing): Promise<Envelope> {
    return this.#guard(() => { this.#checkOpen(); return this.#protocol.handleEnvelopeInSlices(env, slicing).then((out) => this.#replication.heard(env.senderId, out)); });
  }

  applyEnvelopeInSlices(env: Envelope, slicing: MergeSlicing): Promise<MergeOutcome> {
    return this.#guard(() => { this.#checkOpen(); return this.#protocol.applyEnvelopeInSlices(env, slicing).then((out) => this.#replication.heard(env.senderId, out)); });
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
    for (const t of this.#state.tombstoneSlots(this.#clock())) {
      if (this.#protocol.collectable(peers, t.node, t.seq)) drop.push(t.slot);
    }
    for (const slot of drop) this.#state.release(slot);
    // Collection is not logged record by record: a snapshot makes it durable, so that a
    // restart neither brings the tombstones back nor changes the digest.
    if (drop.length > 0 && this.#storage) await this.persist();
    return drop.length;
  }

  /** Key + value bytes of every entry, tombstones included (what `maxTotalBytes` limits). */
  get totalBytes(): number { return this.#state.totalBytes; }

  /** WAL size and fsync statistics; null for an in-memory node. */
  storageStats(): StorageStats | null { return storageStatsOf(this.#storage); }

  /** Per peer: what it confirmed of our writes (acked seq; writes and bytes behind), last contact, and a SyncManager's link errors and round time. O(peers · log W), no scan (docs/design/0029). */
  replication(): ReplicationStatus { return this.#replication.status(); }
  /** Resolves with `entry` (our write) once `opts.peers` peers ("all" at call time, default, or n) confirmed it; rejects with NOT_REPLICATED on abort or when the peers left cannot, CLOSED on close. The write stands either way. */
  replicated(entry: Entry, opts: ReplicatedOptions = {}): Promise<Entry> { return this.#replication.replicated(entry, opts); }
  status(): NodeStatus {
    const parts = { id: this.id, uuid: this.uuid, state: this.#state, clocks: this.#clocks, nextSeq: this.#seqs.next, digest: this.digest(), wal: this.#storage !== null };
    return nodeStatus({ ...parts, protocol: this.#protocol, peers: this.peers(), discovered: this.#members.discovered, conflicts: this.#conflicts });
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
      await storage.snapshot(() => snapshotRecords(this.#seqs, this.#members, this.#state, this.#writes.pendingRecords));
      // The high-water mark also goes to the fresh WAL, so that losing this snapshot
      // (falling back to .bak) can never hand out a seq a peer already holds.
      await storage.append([seqMarkRecord(this.#seqs.next - 1)]);
    })();
    this.#snapshotting = run;
    try {
      await run;
    } finally {
      this.#snapshotting = null;
    }
  }

  /** Flushes pending writes and releases the directory. Later calls reject with CLOSED. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#writes.settled();
    if (this.#snapshotting) await this.#snapshotting.catch(() => undefined);
    this.#closed = true;
    this.#replication.close();
    this.#expiry.stop();
    this.#watchers.closeAll();
    await this.#storage?.close();
    this.#state.dispose();
  }

  get closed(): boolean { return this.#closed; }
}
