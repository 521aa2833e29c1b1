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
 * `forgetSilent` removes tentative members (announced, never a request) that stopped
 * announcing for a bound, so a ghost cannot fill the bound forever. A member on record
 * (it made a request: a node ran under that id and may hold our data) is never forgotten
 * by silence: a peer down longer than the bound may come back holding values whose
 * tombstones GC would otherwise have collected meanwhile (digest repair would then bring
 * the deleted values back). It stalls GC until `removePeer`, as an HTTP peer does.
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
  /** Announced discovered member → when it last announced: what `forgetSilent` may forget. */
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

  /** A member on record (a tentative one is not: a request from it discovers it, which records it). */
  isRecorded(peer: number): boolean {
    return this.peers.has(peer) && !this.#tentative.has(peer);
  }

  /** Auto-discovery: a request from an unknown sender id. Throws TOO_MANY_PEERS past the bound. */
  discover(peer: number): void {
    // Announced before (tentative): counted in the bound already, its first request records it.
    if (this.#tentative.delete(peer)) this.peers.delete(peer);
    else this.#admitDiscovered(peer);
    void this.#add(peer).catch((e) => this.#h.warn(`could not record discovered peer ${peer}: ${(e as Error).message}`));
  }

  /**
   * Presence: `peer` announced itself (NATS). A member already: its silence clock restarts.
   * A new id: a tentative discovered member (in memory, under the same bound: TOO_MANY_PEERS).
   */
  announced(peer: number): void {
    if (!isNodeId(peer) || peer === this.#h.id) throw new WaveKVError("INVALID_ARGUMENT", `not a peer id: ${peer}`);
    if (!this.peers.has(peer)) {
      this.#admitDiscovered(peer);
      this.#tentative.add(peer);
      this.peers.add(peer);
    }
    if (this.discovered.has(peer)) this.#heard.set(peer, this.#h.now());
  }

  /**
   * Removes the tentative members (announced, no request yet) that have not announced for
   * `silentMs`; returns their ids (in the order they were first heard). Never a configured
   * one, never one on record (see the module comment: forgetting those risks deleted data).
   */
  async forgetSilent(silentMs: number): Promise<number[]> {
    const now = this.#h.now();
    const gone: number[] = [];
    for (const [p, at] of this.#heard) if (now - at > silentMs && this.#tentative.has(p)) gone.push(p);
    for (const p of gone) await this.remove(p);
    return gone;
  }

  /** Adds `peer` to `discovered`, or throws TOO_MANY_PEERS (one warning until a discovered peer leaves). */
  #admitDiscovered(peer: number): void {
    const max = this.#h.maxDiscovered();
    if (this.discovered.size < max) return void this.discovered.add(peer);
    const why = `${max} discovered peers reached sync.maxDiscoveredPeers; id ${peer} refused: addPeer real peers, removePeer stale ones or raise the bound`;
    if (!this.#limitWarned) this.#h.warn(why);
    this.#limitWarned = true;
    throw new WaveKVError("TOO_MANY_PEERS", why);
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
