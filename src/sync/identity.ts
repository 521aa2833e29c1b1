/**
 * Duplicate node ids, seen from both sides (docs/PROTOCOL.md §4 "Duplicate ids"):
 *
 * - the refusing side: a request (or push) whose sender uuid disagrees with the one on
 *   record for its id is refused with UUID_MISMATCH; the id, both uuids and when are kept
 *   here (`NodeStatus.duplicateIds`), logged once per claimant, and confirmed when the node
 *   at the address we hold for that id answers with the uuid on record (two nodes share
 *   the id) or resolved when it answers with the other one (it was rebuilt);
 * - the refused side: a peer that answered our request with UUID_MISMATCH is kept in
 *   `NodeStatus.refusedBy` (logged once) until it answers one of our requests. A node
 *   that every peer refuses acknowledges writes no peer will take: the CLI warns.
 *
 * Bounded: one record per peer id (ids are bounded by membership), each dropped
 * `FORGET_MS` after its last refusal, so a duplicate that was stopped stops showing.
 */
import type { DuplicateIdStatus } from "../core/types.js";

/** A record not refreshed by a refusal for this long is dropped (3 × the longest default sync backoff). */
export const FORGET_MS = 15 * 60_000;

export class IdConflicts {
  readonly #claims = new Map<number, DuplicateIdStatus>();
  /** Peer id → when it last refused our request as a duplicate. */
  readonly #refusedBy = new Map<number, number>();

  constructor(
    private readonly self: { readonly id: number; readonly uuid: string },
    private readonly now: () => number,
    private readonly warn: (message: string) => void,
  ) {}

  /** We refused a request from `id` sent by `seenUuid`: `uuid` is on record for it. */
  refused(id: number, uuid: string, seenUuid: string): void {
    const at = this.now();
    const c = this.#claims.get(id);
    if (c !== undefined && c.uuid === uuid && c.seenUuid === seenUuid) {
      c.lastSeenAt = at;
      c.refused++;
      return;
    }
    this.#claims.set(id, { id, uuid, seenUuid, firstSeenAt: at, lastSeenAt: at, refused: 1, confirmed: false });
    this.warn(`refused requests from a node claiming id ${id} with uuid ${seenUuid}: id ${id} is on record with uuid ${uuid}. If two nodes run with id ${id}, give one of them a new id: writes the other one acknowledges never reach this node. If node ${id} was rebuilt with a new directory, this clears once its address answers our next round`);
  }

  /** `id` answered our request with `uuid`: the node at the address we hold for it. */
  answered(id: number, uuid: string): void {
    if (this.#refusedBy.delete(id)) this.warn(`peer ${id} accepts this node's requests again`);
    const c = this.#claims.get(id);
    if (c === undefined) return;
    if (uuid === c.seenUuid) {
      // The refused uuid is the one at the address: a rebuilt node. Its record follows the answer.
      this.#claims.delete(id);
      this.warn(`node ${id}'s address answered with uuid ${uuid}: it is on record now and its requests are accepted (a rebuilt node)`);
    } else if (uuid === c.uuid) c.confirmed = true;
  }

  /** `peer` refused our request with UUID_MISMATCH: it holds another uuid for our id. */
  refusedUs(peer: number): void {
    const first = !this.#refusedBy.has(peer);
    this.#refusedBy.set(peer, this.now());
    if (first) this.warn(`peer ${peer} refuses this node's requests: it holds another uuid for id ${this.self.id} (ours is ${this.self.uuid}). If another node runs with id ${this.self.id}, writes acknowledged here do not replicate to peer ${peer}: stop this node and give it a new id. If this node was rebuilt with a new directory, this clears once peer ${peer} reaches it`);
  }

  forget(id: number): void {
    this.#claims.delete(id);
    this.#refusedBy.delete(id);
  }

  /** Ids other nodes claim with a uuid not on record, most recent first. */
  duplicateIds(): DuplicateIdStatus[] {
    this.#expire();
    return [...this.#claims.values()].map((c) => ({ ...c })).sort((a, b) => b.lastSeenAt - a.lastSeenAt || a.id - b.id);
  }

  /** Peers that refuse our requests as coming from a duplicate of their record for our id. */
  refusedBy(): number[] {
    this.#expire();
    return [...this.#refusedBy.keys()].sort((a, b) => a - b);
  }

  #expire(): void {
    const cutoff = this.now() - FORGET_MS;
    for (const [id, c] of this.#claims) if (c.lastSeenAt < cutoff) this.#claims.delete(id);
    for (const [peer, at] of this.#refusedBy) if (at < cutoff) this.#refusedBy.delete(peer);
  }
}
