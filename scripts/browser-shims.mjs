/**
 * Injected by scripts/build-browser.mjs (esbuild `inject`) into the browser bundle only:
 * every free `setImmediate` in the bundled sources resolves to this export. Node and Bun
 * keep their own; browsers and workers have none (src/transport/memory.ts delivers every leg on
 * the next macrotask with it).
 *
 * Why MessageChannel and not setTimeout(0): browsers clamp nested timeouts to >= 4 ms
 * after five levels, and a simulated network nests one per message leg. The channel is
 * closed whenever the queue drains: a port with a listener keeps a Deno or Node event
 * loop alive forever. Cost: one channel per burst of jobs.
 */
const native = globalThis.setImmediate;
const queue = [];
let channel = null;

function drain() {
  const job = queue.shift();
  if (queue.length === 0 && channel !== null) {
    channel.port1.close();
    channel = null;
  }
  if (job) job();
}

export function setImmediate(fn, ...args) {
  if (typeof native === "function") return native(fn, ...args);
  if (channel === null && typeof MessageChannel === "function") {
    channel = new MessageChannel();
    channel.port1.onmessage = drain;
  }
  if (channel === null) return setTimeout(fn, 0, ...args);
  queue.push(() => fn(...args));
  channel.port2.postMessage(0);
  return undefined;
}
