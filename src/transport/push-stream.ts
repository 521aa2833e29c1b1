/**
 * The server side of the live push stream (docs/PROTOCOL.md "Live push stream"): a signed
 * `GET /subscribe` is answered with a response that never ends, carrying frames
 * (src/transport/push-frames.ts) — a hello, then every change of the node as `pushOnly`
 * envelopes, heartbeats while nothing happens, a gap frame after frames were dropped.
 *
 *   const streams = new PushStreams(node, { secret, maxSubscribers: 64 });
 *   const sub = streams.open(res, nonce, from, "push"); // after the request's signature checked out
 *   if (!sub) …                                       // maxSubscribers open: the caller answers 503
 *   streams.close();
 *
 * Costs and bounds:
 * - One `watch("")` of the node, only while a push subscriber is connected; changes are
 *   coalesced per key until the next macrotask (`windowMs`, default 0) in a PushQueue
 *   bounded like the peer push (4 096 keys, 4 MiB: the oldest are evicted and every
 *   subscriber is told "gap"). Each flush encodes one envelope per distinct subscriber id
 *   (the subscriber's own entries are left out) and one MAC per frame per subscriber.
 * - A subscriber that reads too slowly: once `maxQueuedBytes` (1 MiB) wait in its
 *   response, further frames are dropped, not buffered, and a gap frame precedes the next
 *   one written (its SyncManager runs a round: the periodic round catches up anyway). A
 *   subscriber stuck over the bound for 4 heartbeats is disconnected (it reconnects).
 * - At most `maxSubscribers` (64) streams; the next is refused with 503 + Retry-After.
 *   Worst-case memory: maxSubscribers × maxQueuedBytes.
 */
import { createHmac } from "node:crypto";
import type { ServerResponse } from "node:http";
import { DEFAULT_MAX_FRAME_BYTES, FRAME, PUSH_SCHEME, encodeFrame, frameMacInput } from "./push-frames.js";
import { PushQueue, pushEnvelopes } from "../node/push.js";
import { macrotask } from "../core/abort.js";
import type { Entry } from "../core/types.js";
import type { Node } from "../node/node.js";

export interface PushStreamOptions {
  /** The cluster's shared secret: every frame carries an HMAC. Default: unsigned frames. */
  secret?: string | Uint8Array;
  /** Streams open at once (push and console feed together). Default 64. */
  maxSubscribers?: number;
  /** Bytes that may wait in one subscriber's response before frames are dropped. Default 1 MiB. */
  maxQueuedBytes?: number;
  /** A heartbeat frame after this long without another. Default 5 000 ms. */
  heartbeatMs?: number;
  /** Coalescing window of changes before they are framed. Default 0 (the next macrotask). */
  windowMs?: number;
}

export interface PushStreamStats {
  subscribers: number;
  opened: number;
  refused: number;
  framesSent: number;
  framesDropped: number;
  gapsSent: number;
  closedSlow: number;
}

/** One open stream. `send` never buffers past the bound: it drops and remembers a gap instead. */
export class StreamSubscriber {
  #seq = 0;
  #gap = false;
  #lastSent = 0;
  /** Since when (ms) the response has held more than the bound; 0: it has not. */
  stalledSince = 0;
  closed = false;

  constructor(
    readonly res: ServerResponse,
    /** The subscriber's node id (push streams), or null. */
    readonly from: number | null,
    readonly kind: "push" | "feed",
    private readonly streams: PushStreams,
    private readonly nonce: string,
  ) {}

  /** Writes one frame; false when it was dropped (the subscriber reads too slowly) or the stream is closed. */
  send(type: number, payload: Uint8Array): boolean {
    if (this.closed) return false;
    const s = this.streams;
    if (this.res.writableLength > s.maxQueuedBytes) {
      if (this.stalledSince === 0) this.stalledSince = Date.now();
      s.stats.framesDropped++;
      // A dropped heartbeat loses nothing; a dropped change does: the gap frame goes as
      // soon as the response drains (or at the next beat), not only with the next change.
      if (type !== FRAME.heartbeat && !this.#gap) {
        this.#gap = true;
        this.res.once("drain", () => this.flushGap());
      }
      return false;
    }
    this.stalledSince = 0;
    if (this.#gap && type !== FRAME.hello) {
      this.#gap = false;
      s.stats.gapsSent++;
      this.#write(FRAME.gap, new Uint8Array(0));
      if (type === FRAME.heartbeat) return true;
    }
    this.#write(type, payload);
    return true;
  }

  /** A frame was lost upstream of this subscriber (the shared queue evicted): say so with the next frame. */
  markGap(): void {
    this.#gap = true;
  }

  /** Sends a pending gap frame now, if the response has room. */
  flushGap(): void {
    if (this.#gap) this.send(FRAME.heartbeat, new Uint8Array(0));
  }

  get idleMs(): number {
    return Date.now() - this.#lastSent;
  }

  #write(type: number, payload: Uint8Array): void {
    const mac = this.streams.mac(frameMacInput(this.streams.node.id, this.nonce, this.#seq++, type, payload));
    this.res.write(encodeFrame(type, payload, mac));
    this.#lastSent = Date.now();
    this.streams.stats.framesSent++;
  }
}

export class PushStreams {
  readonly node: Node;
  readonly maxQueuedBytes: number;
  readonly stats: PushStreamStats = { subscribers: 0, opened: 0, refused: 0, framesSent: 0, framesDropped: 0, gapsSent: 0, closedSlow: 0 };
  readonly #secret: string | Uint8Array | undefined;
  readonly #max: number;
  readonly #heartbeatMs: number;
  readonly #windowMs: number;
  readonly #subs = new Set<StreamSubscriber>();
  readonly #queue: PushQueue;
  #watching: AbortController | null = null;
  #flushing = false;
  #heartbeat: ReturnType<typeof setInterval> | null = null;

  constructor(node: Node, opts: PushStreamOptions = {}) {
    this.node = node;
    this.#secret = opts.secret;
    this.#max = opts.maxSubscribers ?? 64;
    this.maxQueuedBytes = opts.maxQueuedBytes ?? 1 << 20;
    this.#heartbeatMs = opts.heartbeatMs ?? 5_000;
    this.#windowMs = opts.windowMs ?? 0;
    this.#queue = new PushQueue({ maxEntries: 4096, maxBytes: 4 << 20 }, () => {
      for (const s of this.#subs) if (s.kind === "push") s.markGap();
    });
  }

  get size(): number {
    return this.#subs.size;
  }

  /** The frame MAC (32 zero bytes on an unsigned stream). */
  mac(input: Uint8Array): Uint8Array {
    return this.#secret === undefined ? new Uint8Array(32) : createHmac("sha256", this.#secret).update(input).digest();
  }

  /**
   * Starts a stream on `res` (its request already authenticated) and sends the hello;
   * null when `maxSubscribers` are open (the caller answers 503).
   */
  open(res: ServerResponse, nonce: string, from: number | null, kind: "push" | "feed"): StreamSubscriber | null {
    if (this.#subs.size >= this.#max) {
      this.stats.refused++;
      return null;
    }
    const sub = new StreamSubscriber(res, from, kind, this, nonce);
    this.#subs.add(sub);
    this.stats.opened++;
    this.stats.subscribers = this.#subs.size;
    res.writeHead(200, { "content-type": "application/octet-stream", "cache-control": "no-store", "x-content-type-options": "nosniff", "x-wavekv-push": PUSH_SCHEME });
    res.flushHeaders?.();
    // Frames are small and latency is the point: no Nagle delay behind an unacknowledged one.
    res.socket?.setNoDelay?.(true);
    const hello = new Uint8Array(4);
    new DataView(hello.buffer).setUint32(0, this.#heartbeatMs);
    sub.send(FRAME.hello, hello);
    const done = () => this.#drop(sub);
    res.once("close", done);
    res.once("error", done);
    this.#heartbeat ??= setInterval(() => this.#beat(), Math.max(50, Math.min(1_000, this.#heartbeatMs / 2)));
    (this.#heartbeat as { unref?: () => void }).unref?.();
    if (kind === "push") this.#watch();
    return sub;
  }

  /** Ends every stream and the node's watch (server close). */
  close(): void {
    for (const s of [...this.#subs]) {
      s.res.end();
      this.#drop(s);
    }
  }

  #drop(sub: StreamSubscriber): void {
    if (sub.closed) return;
    sub.closed = true;
    this.#subs.delete(sub);
    this.stats.subscribers = this.#subs.size;
    if (this.#subs.size === 0 && this.#heartbeat) {
      clearInterval(this.#heartbeat);
      this.#heartbeat = null;
    }
    if (![...this.#subs].some((s) => s.kind === "push")) {
      this.#watching?.abort();
      this.#watching = null;
      this.#queue.clear();
    }
  }

  #beat(): void {
    const now = Date.now();
    for (const s of [...this.#subs]) {
      if (s.stalledSince > 0 && now - s.stalledSince > 4 * this.#heartbeatMs) {
        // Over the bound for four heartbeats: it is not reading. Cut it; it will reconnect.
        this.stats.closedSlow++;
        s.res.destroy();
        this.#drop(s);
        continue;
      }
      if (s.idleMs >= this.#heartbeatMs) s.send(FRAME.heartbeat, new Uint8Array(0));
      else s.flushGap();
    }
  }

  #watch(): void {
    if (this.#watching || this.node.closed) return;
    const ctrl = (this.#watching = new AbortController());
    void (async () => {
      for await (const e of this.node.watch("", { signal: ctrl.signal })) {
        this.#queue.add(e);
        if (!this.#flushing) {
          this.#flushing = true;
          void this.#flushSoon();
        }
      }
    })().catch(() => undefined);
  }

  async #flushSoon(): Promise<void> {
    try {
      if (this.#windowMs > 0) await new Promise((r) => setTimeout(r, this.#windowMs));
      else await macrotask();
    } finally {
      this.#flushing = false;
    }
    const entries = this.#queue.drain();
    if (entries.length === 0 || this.node.closed) return;
    // One encoding per distinct subscriber id: a subscriber's own writes are not echoed back.
    const bodies = new Map<number | null, Uint8Array[]>();
    for (const s of this.#subs) {
      if (s.kind !== "push") continue;
      let out = bodies.get(s.from);
      if (!out) bodies.set(s.from, (out = pushEnvelopes(this.node, s.from === null ? entries : entries.filter((e: Entry) => e.node !== s.from))));
      for (const body of out) {
        // Larger than a reader accepts (a huge value, a burst of 65 536 entries): a round carries it instead.
        if (body.length > DEFAULT_MAX_FRAME_BYTES) s.markGap();
        else s.send(FRAME.envelope, body);
      }
    }
  }
}
