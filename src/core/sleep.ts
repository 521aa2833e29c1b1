/**
 * A wait bounded by a signal (the backoff between live push stream attempts).
 *
 *   await sleep(500, signal);   // rejects with the signal's reason (abortReason) if it aborts first
 *
 * A module of its own, not part of ./abort.ts: esbuild's code splitting places whole
 * modules, so a helper only a lazily loaded chunk uses (src/node/live.ts) would otherwise
 * ride in the browser core with the abort helpers every page needs.
 */
import { abortReason, unrefTimer } from "./abort.js";

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
