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
 *
 * @module
 */
export interface TransportRequestOptions {
  signal: AbortSignal;
}

export interface Transport {
  request(peer: number, body: Uint8Array, opts: TransportRequestOptions): Promise<Uint8Array>;
  push?(peer: number, body: Uint8Array, opts: TransportRequestOptions): Promise<Uint8Array>;
}

/** The server side a transport delivers to: `SyncManager` implements it. */
export interface SyncHandler {
  handle(body: Uint8Array): Promise<Uint8Array>;
}
