/**
 * The waits of `Node.replicated()` (docs/design/0029): a chunk of its own in the browser
 * bundle, loaded on the first wait (src/node/replication.ts imports it on demand).
 *
 * A wait is settled only by news: an ack of our id that moved (`acked`, from
 * Replication.heard, so from an envelope merged), a peer removed, an abort, close. No timer,
 * no polling. Cost: O(waits) per ack that moved.
 */
import { WaveKVError } from "../core/errors.js";
import type { Entry, ReplicatedOptions } from "../core/types.js";
import type { ReplicationHost, ReplicationLinks } from "./replication-host.js";

interface Waiter {
  seq: number;
  /** "all": the peers at call time still awaited; n: null. */
  pending: Set<number> | null;
  /** n: the peers that confirmed (a removed one still counts), and how many are needed. */
  confirmed: Set<number>;
  need: number;
  settle(err: Error | null): void;
}

const bad = (m: string) => Promise.reject(new WaveKVError("INVALID_ARGUMENT", m));

export class Waits {
  readonly #h: ReplicationHost;
  readonly #waiters = new Set<Waiter>();

  constructor(host: ReplicationHost) {
    this.#h = host;
  }

  /** `atCall`: the peers when replicated() was called (this chunk may have loaded since). */
  wait(entry: Entry, opts: ReplicatedOptions, links: ReplicationLinks | null, atCall: readonly number[]): Promise<Entry> {
    const h = this.#h, want = opts.peers ?? "all", signal = opts.signal;
    if (entry === null || typeof entry !== "object" || entry.node !== h.id() || !Number.isSafeInteger(entry.seq) || entry.seq < 1 || entry.seq > h.lastSeq()) {
      return bad(`replicated() takes a write of this node (${h.id()}), as put, forcePut or delete resolved it; got ${entry === null || typeof entry !== "object" ? String(entry) : `node ${entry.node} seq ${entry.seq}`}`);
    }
    if (want !== "all" && !(Number.isSafeInteger(want) && want >= 0)) return bad(`peers must be "all" or a whole number ≥ 0, got ${JSON.stringify(want)}`);
    if (want !== "all" && want > atCall.length) return bad(`peers: ${want} asks for more confirmations than this node has peers (${atCall.length})`);
    // A peer removed since the call is not waited for ("all"), as if removed after.
    const peers = h.peers(), now = new Set(peers);
    if (signal !== undefined && !(signal instanceof AbortSignal)) return bad("signal must be an AbortSignal");
    const need = want === "all" ? atCall.length : want;
    const confirmed = new Set(peers.filter((p) => h.peerAck(p) >= entry.seq));
    if (signal?.aborted) return Promise.reject(aborted(entry.seq, signal, confirmed.size, need));
    const pending = want === "all" ? new Set(atCall.filter((p) => now.has(p) && !confirmed.has(p))) : null;
    if (pending ? pending.size === 0 : confirmed.size >= need) return Promise.resolve(entry);
    if (!pending && peers.length < need) return Promise.reject(new WaveKVError("NOT_REPLICATED", `peers were removed: ${confirmed.size} of the ${need} peers asked for confirmed seq ${entry.seq}, and the ${peers.length} left cannot make up the rest; the write itself stands and still replicates`));
    return new Promise<Entry>((resolve, reject) => {
      const onAbort = () => this.#settle(w, aborted(entry.seq, signal!, w.pending ? need - w.pending.size : w.confirmed.size, need));
      const w: Waiter = {
        seq: entry.seq, pending, confirmed, need,
        settle: (err) => {
          signal?.removeEventListener("abort", onAbort);
          if (err) reject(err);
          else resolve(entry);
        },
      };
      this.#waiters.add(w);
      signal?.addEventListener("abort", onAbort, { once: true });
      // A round now with each peer still needed, unless it is backing off (its own retry
      // brings the ack then): otherwise the ack would come with the next periodic round.
      if (links) {
        const now = h.now();
        const backing = new Set(links.links().filter((l) => l.retryAt > now).map((l) => l.peer));
        for (const p of peers) if (!confirmed.has(p) && !backing.has(p)) links.syncSoon(p);
      }
    });
  }

  /** `peer`'s ack of our id moved up to `ack`. */
  acked(peer: number, ack: number): void {
    for (const w of [...this.#waiters]) {
      if (ack < w.seq) continue;
      if (w.pending) {
        w.pending.delete(peer);
        if (w.pending.size === 0) this.#settle(w, null);
      } else {
        w.confirmed.add(peer);
        if (w.confirmed.size >= w.need) this.#settle(w, null);
      }
    }
  }

  /** `peer` is no longer a peer (`left`: the peers that are): "all" stops waiting for it; an n the rest cannot make fails. */
  removed(peer: number, left: readonly number[]): void {
    for (const w of [...this.#waiters]) {
      if (w.pending) {
        w.pending.delete(peer);
        if (w.pending.size === 0) this.#settle(w, null);
        continue;
      }
      const possible = w.confirmed.size + left.filter((p) => !w.confirmed.has(p)).length;
      if (possible < w.need) this.#settle(w, new WaveKVError("NOT_REPLICATED", `peer ${peer} was removed: ${w.confirmed.size} of the ${w.need} peers asked for confirmed seq ${w.seq}, and the ${left.length} left cannot make up the rest; the write itself stands and still replicates`));
    }
  }

  close(): void {
    for (const w of [...this.#waiters]) this.#settle(w, new WaveKVError("CLOSED", `the node closed while waiting for peers to confirm seq ${w.seq}; the write itself is durable here`));
  }

  #settle(w: Waiter, err: Error | null): void {
    if (this.#waiters.delete(w)) w.settle(err);
  }
}

function aborted(seq: number, signal: AbortSignal, got: number, need: number): WaveKVError {
  const r: unknown = signal.reason;
  const why = r instanceof Error ? r.message : r === undefined ? "aborted" : String(r);
  return new WaveKVError("NOT_REPLICATED", `stopped waiting (${why}): ${got} of ${need} peer(s) confirmed seq ${seq}; the write itself stands and still replicates`, { cause: r });
}
