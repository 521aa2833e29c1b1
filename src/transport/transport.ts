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
 */
import { WaveKVError } from "../core/errors.js";

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

/** The reason a signal was aborted, as an Error (AbortSignal reasons may be anything). */
export function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  if (r instanceof Error) return r;
  return new WaveKVError("IO", r === undefined ? "aborted" : `aborted: ${String(r)}`);
}

/**
 * Settles with `promise`, or rejects with the signal's reason as soon as it aborts,
 * whichever comes first. A late settlement of `promise` is swallowed, so a transport
 * that ignores its signal can delay nothing and crashes nothing.
 */
export function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(abortReason(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortReason(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => { signal.removeEventListener("abort", onAbort); resolve(v); },
      (e: unknown) => { signal.removeEventListener("abort", onAbort); reject(e); },
    );
  });
}

/**
 * A signal that aborts when `parent` does or after `ms`. Call `dispose()` when done: it
 * clears the timer and the listener on `parent` (AbortSignal.any would keep both until
 * the parent is collected, and a long-lived parent such as a SyncManager's stop signal
 * would accumulate them). The timer is deliberately not unref'd: someone awaits the
 * operation it bounds, and an unref'd timer lets Node exit mid-await when the
 * operation itself holds nothing on the event loop (a peer that never answers).
 */
export function deadline(parent: AbortSignal | undefined, ms: number, what: string): { signal: AbortSignal; dispose(): void } {
  const ctrl = new AbortController();
  const onParent = () => ctrl.abort(parent!.reason);
  if (parent?.aborted) ctrl.abort(parent.reason);
  else parent?.addEventListener("abort", onParent, { once: true });
  const timer = setTimeout(() => ctrl.abort(new WaveKVError("IO", `${what} timed out after ${ms} ms`)), ms);
  return {
    signal: ctrl.signal,
    dispose() {
      clearTimeout(timer);
      parent?.removeEventListener("abort", onParent);
    },
  };
}

/** Timers of a library must not keep a process alive (Node, Bun); browsers have no unref. */
export function unrefTimer(timer: unknown): void {
  (timer as { unref?: () => void } | null)?.unref?.();
}

/** Resolves after `ms` (unref'd timer), or rejects when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(abortReason(signal));
    const onAbort = () => { clearTimeout(timer); reject(abortReason(signal!)); };
    const timer = setTimeout(() => { signal?.removeEventListener("abort", onAbort); resolve(); }, ms);
    unrefTimer(timer);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
