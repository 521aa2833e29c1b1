/**
 * Frames of the live push stream (docs/PROTOCOL.md "Live push stream"), shared by the
 * server (src/transport/push-stream.ts, node:crypto) and every reader (src/transport/fetch.ts,
 * console/app.ts: WebCrypto). No `node:` import: the browser bundle carries this file.
 *
 *   frame = type (u8) | payload length (u32 BE) | payload | MAC (32 bytes)
 *   MAC   = HMAC-SHA256(secret, "wavekv-push-v1\n<server id>\n<nonce>\n<seq>\n" | type | length | payload)
 *
 * `nonce` is the one of the signed subscription request (spent by the server's verifier,
 * so no two streams share it) and `seq` counts the stream's frames from 0: a frame copied
 * from another stream, or replayed, dropped or reordered within one, fails its MAC. An
 * unsigned stream (no secret) carries 32 zero bytes. The reader checks the declared length
 * against its bound before it keeps a byte of the payload, and verifies the MAC before it
 * decodes anything.
 */
import { WaveKVError } from "../core/errors.js";

export const PUSH_SCHEME = "wavekv-push-v1";

/** Frame types; anything else is refused (the stream is dropped and reopened). */
export const FRAME = {
  /** First frame of every stream: u32 BE heartbeat interval (ms). Proves the server holds the secret. */
  hello: 1,
  /** A `pushOnly` envelope (docs/FORMAT.md §6), merged as a POST /push body is. */
  envelope: 2,
  /** Nothing happened for a heartbeat interval; the reader's watchdog is reset. */
  heartbeat: 3,
  /** The server dropped frames for this reader (it read too slowly): a sync round catches up. */
  gap: 4,
  /** The console's change feed: UTF-8 JSON `{ latest, gap, items: ChangeRecord[] }`. */
  feed: 5,
} as const;

export const FRAME_HEADER_BYTES = 5;
export const FRAME_MAC_BYTES = 32;
/** Largest payload a reader accepts by default: a push of MAX_ENVELOPE_ENTRIES is split below it by the server. */
export const DEFAULT_MAX_FRAME_BYTES = 16 << 20;

const utf8 = new TextEncoder();

/** The bytes a frame's MAC covers. */
export function frameMacInput(server: number, nonce: string, seq: number, type: number, payload: Uint8Array): Uint8Array {
  const prefix = utf8.encode(`${PUSH_SCHEME}\n${server}\n${nonce}\n${seq}\n`);
  const out = new Uint8Array(prefix.length + FRAME_HEADER_BYTES + payload.length);
  out.set(prefix, 0);
  writeHeader(out, prefix.length, type, payload.length);
  out.set(payload, prefix.length + FRAME_HEADER_BYTES);
  return out;
}

/** One frame on the wire; `mac` null: an unsigned stream. */
export function encodeFrame(type: number, payload: Uint8Array, mac: Uint8Array | null): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.length + FRAME_MAC_BYTES);
  writeHeader(out, 0, type, payload.length);
  out.set(payload, FRAME_HEADER_BYTES);
  if (mac) out.set(mac.subarray(0, FRAME_MAC_BYTES), FRAME_HEADER_BYTES + payload.length);
  return out;
}

function writeHeader(out: Uint8Array, at: number, type: number, length: number): void {
  out[at] = type;
  new DataView(out.buffer, out.byteOffset + at + 1, 4).setUint32(0, length);
}

export interface Frame {
  type: number;
  payload: Uint8Array;
  mac: Uint8Array;
}

const KNOWN_TYPES = new Set<number>(Object.values(FRAME));

/**
 * Cuts a byte stream into frames. Memory: at most one frame (≤ `maxPayload` + 37 bytes)
 * plus the chunk being read; a declared length over the bound, or an unknown type, throws
 * BAD_ENVELOPE as soon as the 5-byte header is in.
 */
export class FrameReader {
  readonly #max: number;
  #chunks: Uint8Array[] = [];
  #held = 0;

  constructor(maxPayload = DEFAULT_MAX_FRAME_BYTES) {
    this.#max = maxPayload;
  }

  /** Bytes held for a frame not yet complete. */
  get held(): number {
    return this.#held;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#held += chunk.length;
    // Check the header as soon as it is complete, before more of the payload is kept.
    if (this.#held >= FRAME_HEADER_BYTES) this.#checkHeader(this.#peek(FRAME_HEADER_BYTES));
  }

  /** The next complete frame, or null. */
  next(): Frame | null {
    if (this.#held < FRAME_HEADER_BYTES) return null;
    const head = this.#peek(FRAME_HEADER_BYTES);
    const length = this.#checkHeader(head);
    const total = FRAME_HEADER_BYTES + length + FRAME_MAC_BYTES;
    if (this.#held < total) return null;
    const bytes = this.#take(total);
    const frame = { type: bytes[0]!, payload: bytes.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length), mac: bytes.subarray(FRAME_HEADER_BYTES + length) };
    if (this.#held >= FRAME_HEADER_BYTES) this.#checkHeader(this.#peek(FRAME_HEADER_BYTES));
    return frame;
  }

  #checkHeader(head: Uint8Array): number {
    if (!KNOWN_TYPES.has(head[0]!)) throw new WaveKVError("BAD_ENVELOPE", `push stream: unknown frame type ${head[0]}`);
    const length = new DataView(head.buffer, head.byteOffset, 5).getUint32(1);
    if (length > this.#max) throw new WaveKVError("BAD_ENVELOPE", `push stream: a frame declares ${length} bytes, over the reader's bound of ${this.#max}`);
    return length;
  }

  #peek(n: number): Uint8Array {
    const first = this.#chunks[0]!;
    if (first.length >= n) return first.subarray(0, n);
    return this.#gather(n, false);
  }

  #take(n: number): Uint8Array {
    const out = this.#gather(n, true);
    this.#held -= n;
    return out;
  }

  /** The first n held bytes; `consume` drops them from the queue. */
  #gather(n: number, consume: boolean): Uint8Array {
    const first = this.#chunks[0]!;
    if (first.length >= n && consume) {
      const out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      return out;
    }
    const out = new Uint8Array(n);
    let at = 0;
    let i = 0;
    while (at < n) {
      const c = this.#chunks[i]!;
      const k = Math.min(c.length, n - at);
      out.set(c.subarray(0, k), at);
      at += k;
      if (!consume) { i++; continue; }
      if (k === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(k);
    }
    return out;
  }
}

/** Constant-time equality of two MACs (a stream reader compares every frame's). */
export function sameMac(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export interface ReadStreamOptions {
  /** Id of the node serving the stream and the nonce of the subscription request (both under the MAC). */
  server: number;
  nonce: string;
  /** The frame MAC (HMAC-SHA256 with the shared secret); absent: the stream is unsigned and frames are not checked. */
  mac?: (input: Uint8Array) => Promise<Uint8Array>;
  maxFrameBytes?: number;
  /** Each verified frame but heartbeats, in order; the next is not read before the returned promise settles. */
  onFrame(type: number, payload: Uint8Array): Promise<void> | void;
}

/**
 * Reads a push stream to its end: resolves when the server ends it, rejects on a frame
 * that fails its MAC, a bad frame, or silence for 3 heartbeat intervals (the hello
 * announces it; clamped to 1–60 s). The first frame must be a hello.
 */
export async function readPushStream(body: ReadableStream<Uint8Array>, opts: ReadStreamOptions): Promise<void> {
  const reader = body.getReader();
  const frames = new FrameReader(opts.maxFrameBytes);
  let seq = 0;
  let silentMs = 30_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let silent = false;
  const watchdog = () => {
    clearTimeout(timer);
    timer = setTimeout(() => { silent = true; void reader.cancel().catch(() => undefined); }, silentMs);
  };
  try {
    watchdog();
    for (;;) {
      const { done, value } = await reader.read();
      if (silent) throw new WaveKVError("IO", `push stream from node ${opts.server}: no frame for ${silentMs} ms`);
      if (done) {
        if (frames.held > 0) throw new WaveKVError("IO", `push stream from node ${opts.server} ended inside a frame`);
        return;
      }
      watchdog();
      frames.push(value);
      for (let f = frames.next(); f; f = frames.next()) {
        const n = seq++;
        if (opts.mac && !sameMac(f.mac, await opts.mac(frameMacInput(opts.server, opts.nonce, n, f.type, f.payload)))) {
          throw new WaveKVError("BAD_ENVELOPE", `push stream from node ${opts.server}: frame ${n} fails its MAC (replayed, reordered, forged, or another secret)`);
        }
        if ((n === 0) !== (f.type === FRAME.hello)) throw new WaveKVError("BAD_ENVELOPE", `push stream from node ${opts.server}: ${n === 0 ? "the first frame is not a hello" : "a second hello"}`);
        if (f.type === FRAME.hello) {
          const beat = f.payload.length === 4 ? new DataView(f.payload.buffer, f.payload.byteOffset, 4).getUint32(0) : 0;
          silentMs = 3 * Math.min(60_000, Math.max(1_000, beat));
          watchdog();
        }
        if (f.type !== FRAME.heartbeat) await opts.onFrame(f.type, f.payload);
      }
    }
  } finally {
    clearTimeout(timer);
    reader.releaseLock?.();
    void body.cancel?.().catch(() => undefined);
  }
}
