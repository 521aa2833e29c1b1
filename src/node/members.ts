/**
 * A node's durable membership: the peers it syncs with and holds tombstones for.
 * Configured peers come from NodeOptions.peers and addPeer; discovered ones from requests
 * by unknown sender ids, bounded by sync tuning maxDiscoveredPeers (forged ids must not
 * become unbounded durable members). Every change is logged: the GC watermark is a
 * minimum over peers, and a peer forgotten in a crash would let us collect tombstones it
 * never saw.
 *
 * Presence (NATS announcements, docs/design/0025): an announced id is a discovered member
 * under the same bound, but *tentative* — in memory only, not logged — until the peer
 * makes its first request (then `discover` records it, as for any requester). An id that
 * only a flood of announcements names never reaches the log, so a restart forgets it.
 * `forgetSilent` removes discovered members (tentative or recorded, never configured ones)
 * heard from neither by announcement nor by request for a bound, so a ghost cannot stall
 * tombstone GC or fill the bound forever.
 *
 *   const members = new Members(host);
 *   await members.configure(2);  members.discover(3);  await members.remove(2);
 *   members.announced(4);  await members.forgetSilent(600_000);
 */
import { RecordKind, type RecordInput } from "../core/record.js";
import { WaveKVError } from "../core/errors.js";
import { isNodeId } from "../core/types.js";
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
  /** The node's clock, ms (silence is measured on it). */
  now(): number;
}

export class Members {
  readonly #h: MembersHost;
  /** Every member, configured or discovered (our own id never). Recovery fills it from the log. */
  readonly peers = new Set<number>();
  /** Peers added by auto-discovery (after a restart: every durable peer not in `opts.peers`). */
  readonly discovered = new Set<number>();
  /** The discovery bound was hit and said so: one warning, not one per request. */
  #limitWarned = false;
  /** Announced members not on record yet (subset of `discovered`): their first request records them. */
  readonly #tentative = new Set<number>();
  /** Announced discovered member → when it was last heard (announcement or request): what `forgetSilent` may forget. */
  readonly #heard = new Map<number, number>();

  constructor(host: MembersHost) {
    this.#h = host;
  }

  /** Members in id order. */
  sorted(): number[] {
    return [...this.peers].sort((a, b) => a - b);
  }

  /** Members on record, in id order (what a snapshot logs: tentative ones are left out). */
  recorded(): number[] {
    return this.sorted().filter((p) => !this.#tentative.has(p));
  }

  /** A configured member (durable, never forgotten by silence); a discovered peer becomes a configured one. */
  async configure(peer: number): Promise<void> {
    this.discovered.delete(peer);
    this.#heard.delete(peer);
    if (this.#tentative.delete(peer)) this.peers.delete(peer); // so #add records it
    await this.#add(peer);
  }

  /**
   * A request from `peer` arrived: true when it is a member on record (a tentative one is
   * not: the caller then discovers it, which records it). Notes the time for `forgetSilent`.
   */
  heardFrom(peer: number): boolean {
    if (this.#heard.has(peer)) this.#heard.set(peer, this.#h.now());
    return this.peers.has(peer) && !this.#tentative.has(peer);
  }

  /** Auto-discovery: a request from an unknown sender id. Throws TOO_MANY_PEERS past the bound. */
  discover(peer: number): void {
    if (this.#tentative.delete(peer)) {
      // Announced before, counted in the bound already: its first request records it.
      void this.#record(peer);
      return;
    }
    this.#admitDiscovered(peer, "requests");
    this.discovered.add(peer);
    void this.#add(peer).catch((e) => this.#h.warn(`could not record discovered peer ${peer}: ${(e as Error).message}`));
  }

  /**
   * Presence: `peer` announced itself (NATS). A member already: its silence clock restarts.
   * A new id: a tentative discovered member (in memory, under the same bound: TOO_MANY_PEERS).
   */
  announced(peer: number): void {
    if (!isNodeId(peer) || peer === this.#h.id) throw new WaveKVError("INVALID_ARGUMENT", `announced peer id must be a uint32 other than ours (${this.#h.id}), got ${peer}`);
    if (this.peers.has(peer)) {
      if (this.discovered.has(peer)) this.#heard.set(peer, this.#h.now());
      return;
    }
    this.#admitDiscovered(peer, "announcements");
    this.discovered.add(peer);
    this.#tentative.add(peer);
    this.peers.add(peer);
    this.#heard.set(peer, this.#h.now());
  }

  /**
   * Removes the discovered members that announced themselves in this process and have been
   * heard from neither by announcement nor by request for `silentMs`; returns their ids.
   * Never a configured one. A member recovered from the log that does not announce again
   * is left alone: the log does not say whether addPeer or discovery made it.
   */
  async forgetSilent(silentMs: number): Promise<number[]> {
    const now = this.#h.now();
    const gone: number[] = [];
    for (const [p, at] of this.#heard) if (now - at > silentMs) gone.push(p);
    gone.sort((a, b) => a - b);
    for (const p of gone) await this.remove(p);
    return gone;
  }

  #admitDiscovered(peer: number, from: string): void {
    const max = this.#h.maxDiscovered();
    if (this.discovered.size < max) return;
    const why = `${this.discovered.size} auto-discovered peers reached sync.maxDiscoveredPeers (${max}); ${from} from further unknown ids (here ${peer}) are refused: configure real peers (addPeer / --peers), remove stale ones (removePeer), or raise the bound`;
    if (!this.#limitWarned) this.#h.warn(why);
    this.#limitWarned = true;
    throw new WaveKVError("TOO_MANY_PEERS", why);
  }

  async #record(peer: number): Promise<void> {
    await this.#h.storage()?.append([peerRecord(RecordKind.AddPeer, peer)]).catch((e) => this.#h.warn(`could not record discovered peer ${peer}: ${(e as Error).message}`));
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
    this.#heard.delete(peer);
    if (!this.peers.has(peer)) return;
    this.peers.delete(peer);
    if (this.#tentative.delete(peer)) return; // never logged: nothing to undo on record
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
