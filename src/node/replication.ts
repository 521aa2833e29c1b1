/**
 * Replication status and write concern of a node (docs/design/0029): what each peer has
 * confirmed of our writes, and the waits of `Node.replicated()` (src/node/replication-wait.ts,
 * loaded on the first wait: a chunk of its own in the browser bundle).
 *
 *   const tracker = Replication.of(node, host);     // Node owns one
 *   tracker.wrote(written, key, value);             // each local write, once it took its seq
 *   tracker.heard(peer, out);                       // after each envelope of `peer` merged
 *   await tracker.replicated(entry, { peers: "all", signal });
 *   tracker.status();                               // ReplicationStatus
 *
 * Where the numbers come from: a peer's ack of our id is what the protocol recorded from
 * its last request or answer (SyncProtocol.peerAcks; pushes move no acks, rule R3), so it
 * moves only with an envelope, and `heard` is where that is noticed: waits wake there, never
 * by polling. A SyncManager lends its links (`attachTo`, from src/node/links.ts): their
 * errors and round times join status(), and a new wait asks it for a round with each peer
 * still needed, so a wait costs about one round trip rather than an interval.
 *
 * Costs: `heard` is O(1) unless the peer's ack moved, then O(peers + waits). `status()` is
 * O(peers · log W), W the writes logged (src/node/replication-log.ts): never a scan of the store.
 */
import { WaveKVError } from "../core/errors.js";
import type { Entry, PeerReplication, ReplicatedOptions, ReplicationStatus } from "../core/types.js";
import { utf8Length } from "../core/encoding.js";
import { OwnWriteLog } from "./replication-log.js";
import type { Waits } from "./replication-wait.js";
import type { ReplicationHost, ReplicationLinks } from "./replication-host.js";

export type { ReplicatedOptions, ReplicationStatus } from "../core/types.js";

export type { ReplicationHost, ReplicationLinks } from "./replication-host.js";

/** The tracker of each node, for its SyncManager to find (attachTo). */
const trackers = new WeakMap<object, Replication>();

/** A SyncManager of `node` lends it its links (src/node/links.ts calls this as the manager makes them). */
export function attachTo(node: object, links: ReplicationLinks): void {
  const r = trackers.get(node);
  if (r) r.links = links;
}

interface PeerSeen { ack: number; ackedAt: number; contactAt: number }

export class Replication {
  readonly #h: ReplicationHost;
  readonly #log = new OwnWriteLog();
  readonly #seen = new Map<number, PeerSeen>();
  #waits: Waits | null = null;
  #loading: Promise<Waits> | null = null;
  #closed = false;
  /** The SyncManager's links, once one attached. */
  links: ReplicationLinks | null = null;

  private constructor(host: ReplicationHost) {
    this.#h = host;
  }

  /** The tracker of `node`, made once (its SyncManager finds it through attachTo). */
  static of(node: object, host: ReplicationHost): Replication {
    const r = new Replication(host);
    trackers.set(node, r);
    return r;
  }

  /**
   * A local write just took our latest seq (called as LocalWrites.write returns, which it
   * does only once the seq is spent): logged for bytes-behind while the node has peers. A
   * write failing later (fsync, LWW lost as it applied) stays counted: its seq is spent,
   * and no peer's ack passes it sooner. Returns `written`.
   */
  wrote<T>(written: T, key: string, value: Uint8Array | null, seq = this.#h.lastSeq()): T {
    if (this.#h.hasPeers()) this.#log.add(seq, utf8Length(key) + (value?.length ?? 0));
    else this.#log.skipThrough(seq);
    return written;
  }

  /** An envelope of `peer` was merged: contact noted; if its ack of our id moved, waits wake. Returns `out`. */
  heard<T>(peer: number, out: T): T {
    const now = this.#h.now(), ack = this.#h.peerAck(peer);
    let seen = this.#seen.get(peer);
    if (!seen) this.#seen.set(peer, (seen = { ack: 0, ackedAt: 0, contactAt: now }));
    seen.contactAt = now;
    const moved = ack > seen.ack;
    seen.ack = ack; // a peer that reset reports less: shown as it is
    if (moved) {
      seen.ackedAt = now;
      this.#waits?.acked(peer, ack);
      this.#prune();
    }
    return out;
  }

  /** `peer` is no longer a peer (removePeer, or a discovered one forgotten). */
  removed(peer: number): void {
    this.#seen.delete(peer);
    this.#waits?.removed(peer, this.#h.peers().filter((p) => p !== peer));
    this.#prune();
  }

  /** Node.replicated(): resolves once enough peers confirmed `entry` (src/node/replication-wait.ts). */
  async replicated(entry: Entry, opts: ReplicatedOptions = {}): Promise<Entry> {
    const closed = () => new WaveKVError("CLOSED", "the node is closed; open it again to use it");
    if (this.#closed) throw closed();
    const atCall = this.#h.peers();
    const waits = this.#waits ?? (await (this.#loading ??= import("./replication-wait.js").then((m) => (this.#waits = new m.Waits(this.#h)))));
    if (this.#closed) throw closed();
    return waits.wait(entry, opts ?? {}, this.links, atCall);
  }

  /** Forgets logged writes every peer confirmed (no peer: all of them). */
  #prune(): void {
    let min = Infinity;
    for (const p of this.#h.peers()) min = Math.min(min, this.#h.peerAck(p));
    this.#log.dropThrough(min === Infinity ? this.#h.lastSeq() : min);
  }

  /** Per peer: acked seq, writes and bytes behind, last contact, and the manager's link state. */
  status(): ReplicationStatus {
    if (this.#closed) throw new WaveKVError("CLOSED", "the node is closed; open it again to use it");
    const h = this.#h, last = h.lastSeq();
    const links = new Map((this.links?.links() ?? []).map((l) => [l.peer, l]));
    this.#prune();
    const peers = h.peers().map((peer): PeerReplication => {
      const ack = Math.min(h.peerAck(peer), last);
      const seen = this.#seen.get(peer);
      const behind = this.#log.bytesAbove(ack, last);
      const out: PeerReplication = {
        peer, ackedSeq: ack, entriesBehind: last - ack, bytesBehind: behind.bytes, bytesExact: behind.exact,
        lastContactAt: seen?.contactAt ?? 0, ackedAt: seen?.ackedAt ?? 0,
      };
      const l = links.get(peer);
      if (l) out.link = { rounds: l.rounds, failures: l.failures, consecutiveFailures: l.consecutiveFailures, lastOkAt: l.lastOkAt, retryAt: l.retryAt, lastRoundMs: l.lastRoundMs ?? null, ...(l.lastError ? { lastError: l.lastError } : {}) };
      return out;
    });
    return { id: h.id(), lastSeq: last, managed: this.links !== null, peers };
  }

  /** Every wait rejects with CLOSED; later calls too. */
  close(): void {
    this.#closed = true;
    this.#waits?.close();
  }
}
