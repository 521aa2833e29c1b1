// The live push stream (src/transport/push-stream.ts server, push-frames.ts framing, FetchTransport.subscribe,
// SyncManager `live`) between a real HTTP server and a real client on 127.0.0.1, on this runtime
// (Node or Bun): a server write reaches the client without a round; the subscription is signed
// and each frame MAC'd (bad signature, replayed request, replayed / reordered / forged /
// oversized frames refused); a client that never reads costs the server a bounded buffer and
// is cut; the subscriber cap; reconnect after the server restarts; stop() ends everything.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { connect } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Node } from "../../src/node/node.js";
import { SyncManager } from "../../src/node/manager.js";
import { serveHttp, type HttpServer } from "../../src/transport/http.js";
import { WaveKVError } from "../../src/core/errors.js";
import { FetchTransport, RequestSigner } from "../../src/transport/fetch.js";
import { FRAME, FrameReader, encodeFrame, readPushStream } from "../../src/transport/push-frames.js";
import type { PushStreamOptions } from "../../src/transport/push-stream.js";

const SECRET = "push-stream-secret-0123456789";
const quiet = () => undefined;
const text = (v: Uint8Array | null | undefined) => (v ? new TextDecoder().decode(v) : v);

// A liveness bound, not a timing claim: generous, so a loaded CI machine (Deno under the full suite once took over 5 s to its connect round) does not fail it.
async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function serve(port = 0, streams?: Omit<PushStreamOptions, "secret">, dir?: string) {
  const node = await Node.open({ id: 1, dir, fsync: "never" });
  const sync = new SyncManager(node, { request: () => Promise.reject(new Error("the server does not dial out")) }, { onWarning: quiet });
  const http = await serveHttp(sync, { node, port, secret: SECRET, onWarning: quiet, streams });
  return { node, sync, http, async close() { await sync.stop(); await http.close(); await node.close(); } };
}

async function client(url: string, opts: { secret?: string } = { secret: SECRET }) {
  const node = await Node.open({ id: 2, peers: [1] });
  const warnings: string[] = [];
  const sync = new SyncManager(node, new FetchTransport({ peers: { 1: url }, secret: opts.secret, timeoutMs: 3_000 }), {
    live: true, intervalMs: 600_000, retryMs: 50, onWarning: (m) => warnings.push(m),
  });
  return { node, sync, warnings, async close() { await sync.stop(); await node.close(); } };
}

/** The raw bytes of a signed subscription to `http`, until `bytes` arrived. */
async function rawStream(http: HttpServer, bytes: number, secret = SECRET) {
  const headers = await new RequestSigner(secret).sign("GET", "/subscribe?from=7", new Uint8Array(0), 1);
  const ctrl = new AbortController();
  const res = await fetch(`${http.url}/subscribe?from=7`, { headers, signal: ctrl.signal });
  assert.is(res.status, 200);
  const reader = res.body!.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  while (n < bytes) {
    const { value, done } = await reader.read();
    if (done) break;
    chunks.push(value);
    n += value.length;
  }
  ctrl.abort();
  await reader.cancel().catch(() => undefined);
  const out = new Uint8Array(n);
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.length; }
  return { bytes: out, nonce: headers["x-wavekv-nonce"]! };
}

/** Splits captured bytes into whole frames (bytes on the wire). */
function cut(bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  while (at + 5 <= bytes.length) {
    const len = new DataView(bytes.buffer, bytes.byteOffset + at + 1, 4).getUint32(0);
    const end = at + 5 + len + 32;
    if (end > bytes.length) break;
    out.push(bytes.subarray(at, end));
    at = end;
  }
  return out;
}

function streamOf(...parts: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({ start(c) { for (const p of parts) c.enqueue(p); c.close(); } });
}

async function readAll(parts: Uint8Array[], nonce: string, secret = SECRET, maxFrameBytes?: number): Promise<{ types: number[]; error?: WaveKVError }> {
  const signer = new RequestSigner(secret);
  const types: number[] = [];
  try {
    await readPushStream(streamOf(...parts), { server: 1, nonce, mac: (i) => signer.mac(i), maxFrameBytes, onFrame: (t) => { types.push(t); } });
    return { types };
  } catch (e) {
    assert.instance(e, WaveKVError);
    return { types, error: e as WaveKVError };
  }
}

test("a server write reaches a live client without a sync round; the client's own writes are not echoed", async () => {
  const s = await serve();
  const c = await client(s.http.url);
  try {
    c.sync.start();
    await until("stream up", () => c.sync.liveStreams().includes(1));
    // The round of start() and the one the stream's opening asks for (it catches up what came before).
    await until("connect round", () => c.sync.stats.rounds >= 2);
    const rounds = c.sync.stats.rounds;
    for (let i = 0; i < 20; i++) {
      await s.node.put(`k${i}`, `v${i}`);
      await until(`k${i} on the client`, () => text(c.node.get(`k${i}`)?.value) === `v${i}`);
    }
    await s.node.delete("k3");
    await until("delete on the client", () => c.node.get("k3") === undefined);
    assert.is(c.sync.stats.rounds, rounds, "no round was needed");
    assert.ok(c.sync.stats.livePushes >= 21);
    // A write merged into the server from the client goes to every other subscriber, not back to it.
    const pushedBefore = c.sync.stats.livePushes;
    await c.node.put("from/client", "c");
    await c.sync.syncOnce();
    await s.node.put("after", "x");
    await until("after", () => c.node.get("after") !== undefined);
    assert.is(c.sync.stats.livePushes, pushedBefore + 1);
    assert.is(c.node.digest(), s.node.digest());
    assert.is(s.http.streams.size, 1);
  } finally {
    await c.close();
    await s.close();
  }
});

test("a peer removed while its stream is up: the stream closes and nothing more from it is merged", async () => {
  const s = await serve();
  const node = await Node.open({ id: 2, peers: [1] });
  const sync = new SyncManager(node, new FetchTransport({ peers: { 1: s.http.url }, secret: SECRET, timeoutMs: 3_000 }), { live: true, intervalMs: 100, retryMs: 50, onWarning: quiet });
  try {
    sync.start();
    await until("stream up", () => sync.liveStreams().includes(1) && s.http.streams.size === 1);
    await s.node.put("before", "1");
    await until("before on the client", () => node.get("before") !== undefined);
    await node.removePeer(1);
    await until("stream closed on both sides", () => sync.liveStreams().length === 0 && s.http.streams.size === 0);
    await s.node.put("after", "2");
    await new Promise((r) => setTimeout(r, 300));
    assert.is(node.get("after"), undefined, "no push from a removed peer");
  } finally {
    await sync.stop();
    await node.close();
    await s.close();
  }
});

test("the subscription is signed: no, wrong or replayed signature → 401, and no stream", async () => {
  const s = await serve();
  try {
    for (const secret of [undefined, "not the secret"]) {
      const c = new FetchTransport({ peers: { 1: s.http.url }, secret });
      const opened: string[] = [];
      try {
        await c.subscribe(1, { signal: AbortSignal.timeout(3_000), from: 2, onOpen: () => opened.push("open"), onPush: () => undefined, onGap: () => undefined });
        assert.unreachable("subscribed");
      } catch (e) {
        assert.match((e as Error).message, /HTTP 401/);
      }
      assert.equal(opened, []);
    }
    const headers = await new RequestSigner(SECRET).sign("GET", "/subscribe?from=2", new Uint8Array(0), 1);
    const first = await fetch(`${s.http.url}/subscribe?from=2`, { headers });
    assert.is(first.status, 200);
    await first.body!.cancel();
    const replay = await fetch(`${s.http.url}/subscribe?from=2`, { headers });
    assert.is(replay.status, 401);
    assert.match(await replay.text(), /replayed/);
    const bad = await fetch(`${s.http.url}/subscribe?from=x`, { headers: await new RequestSigner(SECRET).sign("GET", "/subscribe?from=x", new Uint8Array(0), 1) });
    assert.is(bad.status, 400);
    assert.match(await bad.text(), /"code":"INVALID_ARGUMENT".*from must be a decimal integer/);
  } finally {
    await s.close();
  }
});

test("frames: a verified stream reads; replayed, reordered, forged, foreign and oversized frames are refused before they are decoded", async () => {
  const s = await serve(0, { heartbeatMs: 50 });
  try {
    const pending = rawStream(s.http, 400);
    await new Promise((r) => setTimeout(r, 100));
    await s.node.put("a", "1");
    await s.node.put("b", "2".repeat(100));
    const { bytes, nonce } = await pending;
    const frames = cut(bytes);
    assert.ok(frames.length >= 3, `got ${frames.length} frames`);
    assert.is(frames[0]![0], FRAME.hello);
    const good = await readAll(frames, nonce);
    assert.is(good.error, undefined);
    assert.is(good.types[0], FRAME.hello);
    assert.ok(good.types.includes(FRAME.envelope));
    // Byte by byte: the reader reassembles frames across any chunking.
    const bytewise = await readAll([...bytes.subarray(0, frames.reduce((n, f) => n + f.length, 0))].map((b) => new Uint8Array([b])), nonce);
    assert.equal(bytewise.types, good.types);

    const refused = async (parts: Uint8Array[], why: RegExp, opts: { nonce?: string; secret?: string; max?: number } = {}) => {
      const r = await readAll(parts, opts.nonce ?? nonce, opts.secret, opts.max);
      assert.ok(r.error, `accepted: ${why}`);
      assert.is(r.error!.code, "BAD_ENVELOPE");
      assert.match(r.error!.message, why);
      return r;
    };
    await refused([frames[0]!, frames[1]!, frames[1]!], /frame 2 fails its MAC/);                  // replayed in the stream
    await refused([frames[0]!, frames[2]!, frames[1]!], /frame 1 fails its MAC/);                  // reordered
    await refused(frames, /frame 0 fails its MAC/, { nonce: "00".repeat(12) });                     // from another stream
    await refused(frames, /frame 0 fails its MAC/, { secret: "another secret" });                   // forged
    const flipped = frames[1]!.slice();
    flipped[7] ^= 1;
    const r = await refused([frames[0]!, flipped], /frame 1 fails its MAC/);
    assert.equal(r.types, [FRAME.hello], "nothing of the forged frame reached the node");
    const unsigned = await readPushStream(streamOf(frames[1]!), { server: 1, nonce, onFrame: () => undefined }).then(() => "read", (e: Error) => e.message);
    assert.match(unsigned, /the first frame is not a hello/);
    // Oversized: refused from the 5-byte header, before a byte of payload is kept.
    const reader = new FrameReader(1 << 20);
    const huge = encodeFrame(FRAME.envelope, new Uint8Array(0), null);
    new DataView(huge.buffer).setUint32(1, 0xffff_fff0);
    assert.throws(() => reader.push(huge.subarray(0, 5)), /over the reader's bound/);
    await refused([frames[0]!, huge.subarray(0, 5)], /declares 4294967280 bytes/);
    const unknown = encodeFrame(99, new Uint8Array(0), null);
    await refused([frames[0]!, unknown], /unknown frame type 99/);
  } finally {
    await s.close();
  }
});

test("a stream that goes silent is dropped after 3 heartbeat intervals; a bad `live` option is refused", async () => {
  const hello = new Uint8Array(4);
  new DataView(hello.buffer).setUint32(0, 1_000);
  const silent = new ReadableStream<Uint8Array>({ start(c) { c.enqueue(encodeFrame(FRAME.hello, hello, null)); } });
  const t0 = Date.now();
  const err = await readPushStream(silent, { server: 1, nonce: "", onFrame: () => undefined }).then(() => null, (e: WaveKVError) => e);
  assert.is(err?.code, "IO");
  assert.match(err!.message, /no frame for 3000 ms/);
  assert.ok(Date.now() - t0 >= 2_900);
  const node = await Node.open({ id: 3 });
  try {
    assert.throws(() => new SyncManager(node, new FetchTransport(), { live: "yes" as unknown as boolean }), /live must be true or false/);
  } finally {
    await node.close();
  }
});

test("a client that never reads: the server buffers at most maxQueuedBytes for it, drops, then cuts it", async () => {
  const s = await serve(0, { maxQueuedBytes: 64 << 10, heartbeatMs: 100 });
  try {
    const path = "/subscribe?from=9";
    const h = await new RequestSigner(SECRET).sign("GET", path, new Uint8Array(0), 1);
    const sock = connect(s.http.port, "127.0.0.1");
    await new Promise<void>((resolve) => sock.once("connect", () => resolve()));
    sock.write(`GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\n${Object.entries(h).map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n`);
    sock.pause(); // never reads: the kernel buffers fill, then the response's
    await until("subscribed", () => s.http.streams.size === 1);
    const value = "x".repeat(60_000);
    let maxQueued = 0;
    for (let i = 0; i < 400 && s.http.streams.stats.framesDropped === 0; i++) {
      await s.node.put(`big/${i % 50}`, value);
      await new Promise((r) => setTimeout(r, 1));
      maxQueued = Math.max(maxQueued, s.http.streams.stats.subscribers);
    }
    assert.ok(s.http.streams.stats.framesDropped > 0, "frames were dropped, not buffered");
    await until("the stuck subscriber is cut", () => s.http.streams.size === 0, 5_000);
    assert.is(s.http.streams.stats.closedSlow, 1);
    sock.destroy();
    // The server still serves, and other subscribers are unaffected.
    const c = await client(s.http.url);
    try {
      c.sync.start();
      await until("stream up", () => c.sync.liveStreams().includes(1));
      await s.node.put("still", "here");
      await until("delivered", () => c.node.get("still") !== undefined);
    } finally {
      await c.close();
    }
  } finally {
    await s.close();
  }
});

test("a client that reads slowly: the server drops frames for it, then says gap; its SyncManager catches up with a round", async () => {
  const s = await serve(0, { maxQueuedBytes: 1, heartbeatMs: 60_000 });
  const node = await Node.open({ id: 2, peers: [1] });
  const inner = new FetchTransport({ peers: { 1: s.http.url }, secret: SECRET, timeoutMs: 3_000 });
  // A slow reader: each envelope takes 20 ms to "merge", so the response backs up on the server.
  const slow = {
    request: inner.request.bind(inner),
    subscribe: (peer: number, o: Parameters<FetchTransport["subscribe"]>[1]) => inner.subscribe(peer, { ...o, onPush: async (b) => { await new Promise((r) => setTimeout(r, 20)); await o.onPush(b); } }),
  };
  const sync = new SyncManager(node, slow, { live: true, intervalMs: 600_000, onWarning: quiet });
  try {
    sync.start();
    await until("stream up", () => sync.liveStreams().includes(1));
    await until("connect round", () => sync.stats.rounds >= 2);
    const rounds = sync.stats.rounds;
    const value = "y".repeat(200_000);
    for (let i = 0; i < 1_000 && s.http.streams.stats.framesDropped === 0; i++) {
      await s.node.put(`g/${i % 20}`, value + i);
      await new Promise((r) => setTimeout(r, 2));
    }
    assert.ok(s.http.streams.stats.framesDropped > 0, "nothing was dropped: the reader was not slow enough");
    await s.node.put("last", "z"); // a frame after the drops: the gap rides before it
    await until("gap heard", () => sync.stats.liveGaps >= 1, 10_000);
    await until("caught up", () => node.digest() === s.node.digest(), 10_000);
    assert.ok(sync.stats.rounds > rounds, "the gap started a round");
  } finally {
    await sync.stop();
    await node.close();
    await s.close();
  }
});

test("a burst past the stream's coalescing bound (4 096 keys in one tick) is evicted, said as a gap, and caught up by a round", async () => {
  const s = await serve();
  const c = await client(s.http.url);
  try {
    c.sync.start();
    await until("stream up", () => c.sync.liveStreams().includes(1));
    await until("connect rounds", () => c.sync.stats.rounds >= 2);
    await Promise.all(Array.from({ length: 5_000 }, (_, i) => s.node.put(`burst/${i}`, "b")));
    await until("gap heard", () => c.sync.stats.liveGaps >= 1);
    await until("caught up", () => c.node.digest() === s.node.digest(), 10_000);
  } finally {
    await c.close();
    await s.close();
  }
});

test("the subscriber cap: past maxSubscribers the next subscription gets 503 + Retry-After", async () => {
  const s = await serve(0, { maxSubscribers: 2 });
  const ctrl = new AbortController();
  try {
    const open = async () => fetch(`${s.http.url}/subscribe?from=5`, { headers: await new RequestSigner(SECRET).sign("GET", "/subscribe?from=5", new Uint8Array(0), 1), signal: ctrl.signal });
    const a = await open();
    const b = await open();
    assert.is(a.status, 200);
    assert.is(b.status, 200);
    const c = await open();
    assert.is(c.status, 503);
    assert.is(c.headers.get("retry-after"), "5");
    assert.match(await c.text(), /BUSY/);
    await a.body!.cancel();
    await until("slot freed", () => s.http.streams.size === 1);
    const d = await open();
    assert.is(d.status, 200);
    assert.match(await (await fetch(`${s.http.url}/metrics`)).text(), /wavekv_push_streams 2/);
  } finally {
    ctrl.abort();
    await s.close();
  }
});

test("the server restarts: the client reconnects with backoff, catches up with a round, and streams again; stop() ends it", async () => {
  // A durable server: restarted, it keeps its seqs (a fresh node 1 would reuse them).
  const dir = mkdtempSync(join(tmpdir(), "wavekv-push-"));
  let s = await serve(0, undefined, dir);
  const port = s.http.port;
  const c = await client(s.http.url);
  try {
    c.sync.start();
    await until("stream up", () => c.sync.liveStreams().includes(1));
    await s.node.put("before", "1");
    await until("before", () => c.node.get("before") !== undefined);
    await s.close();
    await until("stream down", () => c.sync.liveStreams().length === 0);
    s = await serve(port, undefined, dir);
    await s.node.put("while/down", "2"); // written before the client reconnects: the connect round brings it
    await until("reconnected", () => c.sync.liveStreams().includes(1) && c.sync.stats.liveConnects >= 2, 10_000);
    await until("caught up", () => c.node.get("while/down") !== undefined);
    await s.node.put("after", "3");
    await until("after", () => c.node.get("after") !== undefined);
    const t0 = Date.now();
    await c.sync.stop();
    assert.ok(Date.now() - t0 < 2_000, "stop() did not wait for the stream");
    await until("server saw it go", () => s.http.streams.size === 0);
    assert.equal(c.sync.liveStreams(), []);
  } finally {
    await c.close();
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
