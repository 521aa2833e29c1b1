/**
 * Runs inside workerd for test/package/workerd.ts: an ES module worker that imports the
 * browser bundle (wavekv.js) and the kernel as a compiled module (wavekv.wasm: workerd
 * compiles it from the config; code may not compile WebAssembly from bytes itself, so
 * the inline bundle cannot run here). One in-memory node (id 2) per isolate, opened on the
 * first request, syncing with node 1 (env.SERVER, a Node server) through the signed
 * FetchTransport. The test drives it with plain HTTP:
 *
 *   GET  /open                    opens the node; { id, uuid }
 *   POST /put?k=K&v=V             node.put; { seq }
 *   GET  /get?k=K                 { value } (null: absent or deleted)
 *   POST /sync                    one round with node 1; { ok, error, sent, received }
 *   GET  /state                   { digest, size }
 *
 * Plain JavaScript on purpose: workerd loads it as written, no build step between.
 * Not a test file: the runner skips test/helpers/.
 */
import { init, Node, SyncManager, FetchTransport } from "./wavekv.js";
import kernel from "./wavekv.wasm";

/** @type {Promise<{ node: Node, sync: SyncManager }> | undefined} */
let opened;

function open(env) {
  opened ??= (async () => {
    await init(kernel);
    const node = await Node.open({ id: 2, peers: [1] });
    const transport = new FetchTransport({ peers: { 1: env.SERVER }, secret: env.SECRET, timeoutMs: 5_000 });
    // No start(): rounds run only when the test asks (a timer would outlive the request).
    const sync = new SyncManager(node, transport, { intervalMs: 60_000, onWarning: () => {} });
    return { node, sync };
  })();
  return opened;
}

const json = (body, status = 200) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
const text = (e) => (e ? (e.value === null ? null : new TextDecoder().decode(e.value)) : null);

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    try {
      const { node, sync } = await open(env);
      const k = url.searchParams.get("k") ?? "";
      switch (`${request.method} ${url.pathname}`) {
        case "GET /open": return json({ id: node.id, uuid: node.uuid });
        case "POST /put": return json({ seq: (await node.put(k, url.searchParams.get("v") ?? "")).seq });
        case "GET /get": return json({ value: text(node.get(k)) });
        case "POST /sync": {
          const [r] = await sync.syncOnce();
          return json({ ok: r.ok, error: r.error?.message, sent: r.sentEntries, received: r.receivedEntries });
        }
        case "GET /state": return json({ digest: node.digest(), size: node.size });
        default: return json({ error: `no route ${request.method} ${url.pathname}` }, 404);
      }
    } catch (err) {
      return json({ error: String(err?.stack ?? err) }, 500);
    }
  },
};
