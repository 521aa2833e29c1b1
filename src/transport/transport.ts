/**
 * The one thing wavekv needs from a network: deliver request bytes to a peer's
 * `SyncManager.handle` and bring its response bytes back.
 *
 *   const transport: Transport = {
 *     async request(peer, body, { signal }) {
 *       const res = await fetch(`${urlOf(peer)}/sync`, { method: "POST", body, signal });
 *       return new Uint8Array(await res.arrayBuffer());
 *     },
 *   };
 *   const sync = new SyncManager(node, transport);   // and on the peer: sync.handle(body)
 *
 * Contract (what SyncManager relies on, and what `MemoryNetwork` and `HttpTransport` do):
 * - `request` resolves with exactly the bytes the peer's `handle(body)` returned, or
 *   rejects. A peer's refusal (`handle` threw) should reject with a `WaveKVError` of the
 *   same code when the transport can carry it (UUID_MISMATCH, BAD_ENVELOPE); any
 *   other failure rejects with anything (SyncManager reports it and backs off).
 * - It should honour `signal`; SyncManager does not depend on it (it races every call
 *   against the signal), but a transport that ignores it leaks the work.
 * - Delivery may be lost, duplicated, delayed or reordered: the protocol tolerates all
 *   of it. Authentication is the transport's business (see src/transport/http.ts).
 * - `push`, when present, is the channel for opportunistic pushes (the HTTP transport
 *   posts them to a separate route); without it pushes go through `request`.
 * - `subscribe`, when present, opens the peer's live push stream (FetchTransport: GET
 *   /subscribe, docs/PROTOCOL.md "Live push stream") and delivers its authenticated
 *   `pushOnly` envelopes until the stream ends (resolves) or fails (rejects); SyncManager
 *   with `live: true` keeps one open per peer and reconnects.
 *
 * @module
 */
export interface TransportRequestOptions {
  signal: AbortSignal;
}

export interface TransportSubscribeOptions {
  /** Ends the stream: `subscribe` then resolves or rejects soon after. */
  signal: AbortSignal;
  /** The subscriber's node id: the peer leaves that node's own entries out. */
  from: number;
  /** The stream is up and authenticated (its first frame verified). */
  onOpen(): void;
  /** One `pushOnly` envelope; the next is not read before the returned promise settles. */
  onPush(body: Uint8Array): Promise<void> | void;
  /** The peer dropped envelopes for this subscriber (it read too slowly): a round catches up. */
  onGap(): void;
}

export interface Transport {
  request(peer: number, body: Uint8Array, opts: TransportRequestOptions): Promise<Uint8Array>;
  push?(peer: number, body: Uint8Array, opts: TransportRequestOptions): Promise<Uint8Array>;
  subscribe?(peer: number, opts: TransportSubscribeOptions): Promise<void>;
}

/** The server side a transport delivers to: `SyncManager` implements it. */
export interface SyncHandler {
  handle(body: Uint8Array): Promise<Uint8Array>;
}
