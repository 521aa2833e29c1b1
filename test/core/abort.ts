// The abort and timer helpers (src/core/abort.ts) that bound every wait on a peer: what
// they settle with, and that nothing they leave behind can reject unhandled. No timing is
// asserted: timers here only decide which of two events comes first by a wide margin.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { abortReason, deadline, raceAbort } from "../../src/core/abort.js";
import { sleep } from "../../src/core/sleep.js";
import { WaveKVError } from "../../src/core/errors.js";

async function settled<T>(p: Promise<T>): Promise<string> {
  try {
    return `ok:${String(await p)}`;
  } catch (e) {
    return `err:${(e as Error).message}`;
  }
}

/** Rejections nobody handled while `fn` ran (and a few macrotasks after it). */
async function unhandledDuring(fn: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const onUnhandled = (reason: unknown) => void seen.push(reason);
  process.on("unhandledRejection", onUnhandled);
  try {
    await fn();
    for (let i = 0; i < 3; i++) await new Promise((r) => setTimeout(r, 0));
  } finally {
    process.off("unhandledRejection", onUnhandled);
  }
  return seen;
}

test("abortReason: an Error reason as is; anything else becomes an IO error naming it", () => {
  const boom = new Error("boom");
  const a = new AbortController();
  a.abort(boom);
  assert.is(abortReason(a.signal), boom);
  const b = new AbortController();
  b.abort("shutting down");
  const r = abortReason(b.signal);
  assert.instance(r, WaveKVError);
  assert.is((r as WaveKVError).code, "IO");
  assert.is(r.message, "IO: aborted: shutting down");
});

test("raceAbort: the promise's outcome when it settles first", async () => {
  const signal = new AbortController().signal;
  assert.is(await settled(raceAbort(Promise.resolve(7), signal)), "ok:7");
  assert.is(await settled(raceAbort(Promise.reject(new WaveKVError("BAD_ENVELOPE", "no")), signal)), "err:BAD_ENVELOPE: no");
});

test("raceAbort: the signal's reason when it aborts first; the late outcome is swallowed", async () => {
  const unhandled = await unhandledDuring(async () => {
    const ctrl = new AbortController();
    let reject!: (e: Error) => void;
    const never = new Promise<number>((_, rej) => { reject = rej; });
    const raced = raceAbort(never, ctrl.signal);
    ctrl.abort(new WaveKVError("IO", "stopped"));
    assert.is(await settled(raced), "err:IO: stopped");
    reject(new Error("late failure of a transport that ignored its signal"));
  });
  assert.equal(unhandled, []);
});

test("raceAbort: an already aborted signal rejects at once, and the promise's failure is swallowed", async () => {
  const unhandled = await unhandledDuring(async () => {
    const ctrl = new AbortController();
    ctrl.abort("gone");
    assert.is(await settled(raceAbort(Promise.reject(new Error("x")), ctrl.signal)), "err:IO: aborted: gone");
  });
  assert.equal(unhandled, []);
});

test("deadline: aborts with an IO error naming the operation when the time is up", async () => {
  const limit = deadline(undefined, 1, "request to peer 2");
  try {
    await new Promise((resolve) => limit.signal.addEventListener("abort", resolve, { once: true }));
    const r = abortReason(limit.signal);
    assert.is((r as WaveKVError).code, "IO");
    assert.is(r.message, "IO: request to peer 2 timed out after 1 ms");
  } finally {
    limit.dispose();
  }
});

test("deadline: follows its parent (already aborted, or aborting later), until disposed", async () => {
  const gone = new AbortController();
  gone.abort(new Error("stopped before"));
  const a = deadline(gone.signal, 60_000, "x");
  assert.ok(a.signal.aborted);
  assert.is(abortReason(a.signal).message, "stopped before");
  a.dispose();

  const parent = new AbortController();
  const b = deadline(parent.signal, 60_000, "x");
  assert.not.ok(b.signal.aborted);
  parent.abort(new Error("stopped"));
  assert.ok(b.signal.aborted);
  assert.is(abortReason(b.signal).message, "stopped");
  b.dispose();

  // Disposed: the parent's listener is gone, so a later abort no longer reaches it.
  const parent2 = new AbortController();
  const c = deadline(parent2.signal, 60_000, "x");
  c.dispose();
  parent2.abort(new Error("after dispose"));
  assert.not.ok(c.signal.aborted);
});

test("sleep: resolves; rejects with the reason when its signal aborts (before or during)", async () => {
  // sleep's timer is unref'd (a library timer keeps nothing alive): hold the loop meanwhile.
  const keepAlive = setInterval(() => undefined, 1_000);
  try {
    assert.is(await settled(sleep(1)), "ok:undefined");
  } finally {
    clearInterval(keepAlive);
  }
  const before = new AbortController();
  before.abort(new Error("early"));
  assert.is(await settled(sleep(60_000, before.signal)), "err:early");
  const during = new AbortController();
  const p = sleep(60_000, during.signal);
  during.abort(new Error("late"));
  assert.is(await settled(p), "err:late");
});

test.run();
