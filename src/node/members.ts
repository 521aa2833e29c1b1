/**
 * A node's durable membership: the peers it syncs with and holds tombstones for.
 * Configured peers come from NodeOptions.peers and addPeer; discovered ones from requests
 * by unknown sender ids, bounded by sync tuning maxDiscoveredPeers (forged ids must not
 * become unbounded durable members). Every change is logged: the GC watermark is a
 * minimum over peers, and a peer forgotten in a crash would let us collect tombstones it
 * never saw.
 *
 *   const members = new Members(host);
 *   await members.configure(2);  members.discover(3);  await members.remove(2);
 */
import { RecordKind, type RecordInput } from "../core/record.js";
import { WaveKVError } from "../core/errors.js";
import type { Storage } from "../storage/interface.js";

/** What membership reads from and reports to its node. */
export interface MembersHost {
  readonly id: number;
  /** The log (null: an in-memory node). */
  storage(): Storage | null;
  /** Sync tuning maxDiscoveredPeers. */
  maxDiscovered(): number;
  /** Forget everything sync knows of `peer` (uuid, acks, rounds). */
  forget(peer: number): void;
  warn(message: string): void;
}

export class Members {
  readonly #h: MembersHost;
  /** Every member, configured or discovered (our own id never). Recovery fills it from the log. */
  readonly peers = new Set<number>();
  /** Peers added by auto-discovery (after a restart: every durable peer not in `opts.peers`). */
  readonly discovered = new Set<number>();
  /** The discovery bound was hit and said so: one warning, not one per request. */
  #limitWarned = false;

  constructor(host: MembersHost) {
    this.#h = host;
  }

  /** Members in id order. */
  sorted(): number[] {
    return [...this.peers].sort((a, b) => a - b);
  }

  /** A configured member (durable); a discovered peer becomes a configured one. */
  async configure(peer: number): Promise<void> {
    this.discovered.delete(peer);
    await this.#add(peer);
  }

  /** Auto-discovery: a request from an unknown sender id. Throws TOO_MANY_PEERS past the bound. */
  discover(peer: number): void {
    const max = this.#h.maxDiscovered();
    if (this.discovered.size >= max) {
      const why = `${this.discovered.size} auto-discovered peers reached sync.maxDiscoveredPeers (${max}); requests from further unknown ids (here ${peer}) are refused: configure real peers (addPeer / --peers), remove stale ones (removePeer), or raise the bound`;
      if (!this.#limitWarned) this.#h.warn(why);
      this.#limitWarned = true;
      throw new WaveKVError("TOO_MANY_PEERS", why);
    }
    this.discovered.add(peer);
    void this.#add(peer).catch((e) => this.#h.warn(`could not record discovered peer ${peer}: ${(e as Error).message}`));
  }

  async #add(peer: number): Promise<void> {
    if (peer === this.#h.id || this.peers.has(peer)) return;
    this.peers.add(peer);
    await this.#h.storage()?.append([peerRecord(RecordKind.AddPeer, peer)]);
  }

  /** Forgets `peer` completely (durable); if it makes requests again it is discovered anew. */
  async remove(peer: number): Promise<void> {
    this.#h.forget(peer);
    if (this.discovered.delete(peer)) this.#limitWarned = false;
    if (!this.peers.has(peer)) return;
    this.peers.delete(peer);
    await this.#h.storage()?.append([peerRecord(RecordKind.RemovePeer, peer)]);
  }

  /** A membership record of our own log, replayed: applied, not logged again. */
  replayed(kind: RecordKind, peer: number): void {
    if (kind === RecordKind.RemovePeer) {
      this.peers.delete(peer);
      this.#h.forget(peer);
    } else if (peer !== this.#h.id) this.peers.add(peer);
  }
}

/** A membership record (AddPeer or RemovePeer) for `peer`. */
export function peerRecord(kind: RecordKind, peer: number): RecordInput {
  return { kind, key: "", value: null, timestamp: 0, node: peer, seq: 0 };
}
