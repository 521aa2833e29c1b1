/**
 * The push channels of a SyncManager.
 *
 * Out (rule R3): the node's own writes, from its change feed, coalesced per key for
 * `windowMs`, then sent to every peer as `pushOnly` envelopes, which the receiver merges
 * and which move no acks. Bounded on both sides: the queue (PushQueue) holds at most
 * `maxEntries` keys and `maxBytes` of key and value bytes (the oldest are evicted: the
 * periodic round still delivers them), and a peer with a push still in flight, or backing
 * off, is skipped, so a dead peer cannot pile pushes up. Best effort: a failed push is
 * counted, nothing more.
 *
 * In (`SyncOptions.live`): a subscription to each peer's live push stream
 * (`Transport.subscribe`, docs/PROTOCOL.md "Live push stream"), whose envelopes are merged
 * as a POST /push body is. Reconnects with jittered, capped backoff; a round runs at each
 * (re)connect and at each gap the server reports, and the periodic rounds never stop:
 * they are the safety net whenever the stream is down or dropped something.
 */
import { ENVELOPE_VERSION, MAX_ENVELOPE_ENTRIES, decodeEnvelope, encodeEnvelope } from "../sync/envelope.js";
import type { BatchRange } from "../sync/envelope-model.js";
import type { RangeGroup } from "../state/batch-ranges.js";
import { WaveKVError } from "../core/errors.js";
import { raceAbort, unrefTimer } from "../core/abort.js";
import type { Entry } from "../core/types.js";
import { utf8Length } from "../core/encoding.js";
import type { Node } from "./node.js";
import type { PeerLinks } from "./links.js";
import type { Transport } from "../transport/transport.js";

/**
 * Coalesced writes waiting to be pushed, by key (insertion order = age). Bounded: past
 * `maxEntries` keys or `maxBytes` of key and value bytes the oldest are evicted (`onEvict`).
 */
export class PushQueue {
  readonly #queue = new Map<string, Entry>();
  #bytes = 0;

  constructor(private readonly bounds: { maxEntries: number; maxBytes: number }, private readonly onEvict: () => void) {}

  get size(): number {
    return this.#queue.size;
  }

  add(e: Entry): void {
    const old = this.#queue.get(e.key);
    if (old) {
      if (old.node === e.node && old.seq >= e.seq) return;
      this.#queue.delete(e.key);
      this.#bytes -= entryBytes(old);
    }
    this.#queue.set(e.key, e);
    this.#bytes += entryBytes(e);
    const { maxEntries, maxBytes } = this.bounds;
    while (this.#queue.size > maxEntries || (this.#bytes > maxBytes && this.#queue.size > 1)) {
      const [key, oldest] = this.#queue.entries().next().value as [string, Entry];
      this.#queue.delete(key);
      this.#bytes -= entryBytes(oldest);
      this.onEvict();
    }
  }

  /** Everything queued, oldest first; the queue is empty after. */
  drain(): Entry[] {
    const out = [...this.#queue.values()];
    this.clear();
    return out;
  }

  clear(): void {
    this.#queue.clear();
    this.#bytes = 0;
  }
}

/**
 * `entries` as `pushOnly` envelopes from `node` (R3: no acks). A receiver takes at most
 * MAX_ENVELOPE_ENTRIES an envelope: a larger burst goes as several.
 */
export function pushEnvelopes(node: Node, entries: readonly Entry[], onHeldBack?: (entries: number) => void): Uint8Array[] {
  // Expiring entries are not pushed: a receiver that predates them refuses kind 5 (it never
  // says which it is to a pusher); rounds carry them to peers that advertise Feature.Expiry.
  entries = entries.filter((e) => e.expiresAt === undefined);
  const bodies: Uint8Array[] = [];
  const chunks = pushChunks(entries, node.batchGroups(entries));
  const held = entries.length - chunks.reduce((n, c) => n + c.list.length, 0);
  if (held > 0) onHeldBack?.(held);
  for (const { list, batchRanges } of chunks) {
    bodies.push(encodeEnvelope({ version: ENVELOPE_VERSION, senderId: node.id, senderUuid: node.uuid, acks: new Map(), entries: list, pushOnly: true, senderClock: node.clockReading(), batchRanges }));
  }
  return bodies;
}

/**
 * `entries` in envelopes of at most MAX_ENVELOPE_ENTRIES, batches kept whole (docs/PROTOCOL.md
 * §2.3): a batch whose every entry is here goes in one envelope naming its range; one with
 * an entry missing (evicted from the queue, or overwritten within the window) is left out —
 * the periodic round delivers it whole. Batches in (node, seq) order, then the rest.
 */
export function pushChunks(entries: readonly Entry[], groups: readonly RangeGroup[]): { list: Entry[]; batchRanges?: BatchRange[] }[] {
  const inGroup = new Set<number>();
  const units: { list: Entry[]; range?: BatchRange }[] = [];
  for (const g of groups) {
    for (const i of g.members) inGroup.add(i);
    if (!g.whole) continue;
    const list = g.members.map((i) => entries[i]!).sort((a, b) => a.seq - b.seq);
    units.push({ list, range: { node: g.node, first: g.min, count: g.max - g.min + 1 } });
  }
  entries.forEach((e, i) => { if (!inGroup.has(i)) units.push({ list: [e] }); });
  const chunks: { list: Entry[]; batchRanges?: BatchRange[] }[] = [];
  let cur: { list: Entry[]; batchRanges?: BatchRange[] } | null = null;
  for (const u of units) {
    if (cur === null || cur.list.length + u.list.length > MAX_ENVELOPE_ENTRIES) chunks.push((cur = { list: [] }));
    cur.list.push(...u.list);
    if (u.range !== undefined) (cur.batchRanges ??= []).push(u.range);
  }
  return chunks;
}

/** What the channel uses of its SyncManager. */
export interface PushHost {
  readonly node: Node;
  readonly transport: Transport;
  readonly links: PeerLinks;
  /** The manager's counters the channel moves (SyncManager.stats). */
  readonly stats: { pushesSent: number; pushFailures: number; pushEvicted: number; pushSkipped: number; pushHeldBack: number; bytesSent: number; bytesReceived: number };
  running(): boolean;
  /** A signal for one exchange, aborted after the manager's timeout or by stop(). */
  deadline(what: string): { signal: AbortSignal; dispose(): void };
  /** Work in flight that stop() awaits. */
  track(p: Promise<unknown>): void;
  warn(message: string): void;
}

export interface PushBounds {
  windowMs: number;
  maxEntries: number;
  maxBytes: number;
}

export class PushChannel {
  readonly #host: PushHost;
  readonly #bounds: PushBounds;
  #timer: ReturnType<typeof setTimeout> | null = null;
  /** Coalesced own writes waiting for the push window. */
  readonly #queue: PushQueue;

  constructor(host: PushHost, bounds: PushBounds) {
    this.#host = host;
    this.#bounds = bounds;
    this.#queue = new PushQueue(bounds, () => { host.stats.pushEvicted++; });
  }

  /** Entries waiting for the push window. */
  get size(): number {
    return this.#queue.size;
  }

  /** Follows the node's own writes until `signal` aborts. */
  watch(signal: AbortSignal): void {
    const node = this.#host.node;
    const feed = node.watch("", { signal, localOnly: true });
    const id = node.id;
    const run = (async () => {
      for await (const e of feed) {
        if (e.node === id) this.#enqueue(e);
      }
    })().catch((err: unknown) => {
      if (!signal.aborted) this.#host.warn(`change feed ended: ${(err as Error).message}`);
    });
    this.#host.track(run);
  }

  /** Drops the window and everything queued (stop()). */
  clear(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#queue.clear();
  }

  #enqueue(e: Entry): void {
    this.#queue.add(e);
    if (this.#timer === null && this.#host.running()) {
      this.#timer = setTimeout(() => this.#flush(), this.#bounds.windowMs);
      unrefTimer(this.#timer);
    }
  }

  #flush(): void {
    this.#timer = null;
    const { node, links, stats } = this.#host;
    if (this.#queue.size === 0 || !this.#host.running() || node.closed) return;
    // R3: no acks ride a push; the receiver merges and moves nothing.
    const bodies = pushEnvelopes(node, this.#queue.drain(), (n) => { stats.pushHeldBack += n; });
    const now = Date.now();
    for (const peer of node.peers()) {
      const link = links.of(peer);
      if (link.pushing || link.retryAt > now) {
        stats.pushSkipped++;
        continue;
      }
      link.pushing = true;
      this.#host.track(this.#pushAll(peer, bodies).finally(() => { link.pushing = false; }));
    }
  }

  async #pushAll(peer: number, bodies: Uint8Array[]): Promise<void> {
    for (const body of bodies) await this.#pushTo(peer, body);
  }

  async #pushTo(peer: number, body: Uint8Array): Promise<void> {
    const { transport, stats } = this.#host;
    const limit = this.#host.deadline(`push to peer ${peer}`);
    try {
      const send = transport.push ?? transport.request;
      const bytes = await raceAbort(send.call(transport, peer, body, { signal: limit.signal }), limit.signal);
      const ack = decodeEnvelope(bytes);
      if (ack.senderId !== peer || !ack.pushOnly) throw new WaveKVError("BAD_ENVELOPE", `peer ${peer} did not acknowledge the push as one`);
      stats.pushesSent++;
      stats.bytesSent += body.length;
      stats.bytesReceived += bytes.length;
    } catch {
      // Best effort by design: the periodic round is the backstop for anything lost here.
      stats.pushFailures++;
    } finally {
      limit.dispose();
    }
  }
}

function entryBytes(e: Entry): number {
  return utf8Length(e.key) + (e.value?.length ?? 0);
}
