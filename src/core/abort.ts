/**
 * Abort and timer helpers for code that awaits something it does not control (a peer, a
 * transport, a timer): every wait is bounded by a signal, and a library timer never keeps
 * the process alive unless someone awaits what it bounds.
 *
 *   const limit = deadline(parentSignal, 10_000, "request to peer 2");
 *   try { await raceAbort(transport.request(2, body, { signal: limit.signal }), limit.signal); }
 *   finally { limit.dispose(); }
 */
import { WaveKVError } from "./errors.js";

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

/**
 * Resolves on the next macrotask: timers and I/O callbacks (other requests) run before it
 * does, unlike after a microtask. setImmediate where there is one (Node, Bun, the browser
 * bundle's shim); setTimeout(0) elsewhere (browsers clamp nested ones to 4 ms).
 */
export function macrotask(): Promise<void> {
  return new Promise((resolve) => (typeof setImmediate === "function" ? setImmediate(resolve) : setTimeout(resolve, 0)));
}
