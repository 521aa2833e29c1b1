/**
 * A `Transport` over NATS (docs/PROTOCOL.md "NATS"): sync rounds are request/reply to a
 * node's subject, a write's push is published once on the cluster's push subject (NATS
 * fans it out), and membership comes from a presence subject.
 *
 *   const t = await NatsTransport.connect({ servers: "nats://127.0.0.1:4222", cluster: "c1", node: 1, secret });
 *   const sync = new SyncManager(node, t);
 *   await t.serve(sync, { membership: node, onPeer: (id) => sync.syncSoon(id) });
 *
 * Subjects (cluster name: letters, digits, `-`, `_`):
 *   wavekv.<cluster>.node.<id>   request/reply: one sync envelope, reply is the response
 *   wavekv.<cluster>.push        one pushOnly envelope, no reply; every node but the sender merges it
 *   wavekv.<cluster>.announce    presence: body = the sender's decimal id
 *
 * Auth (same HMAC scheme as HTTP, src/transport/auth.ts): every message carries the auth
 * headers as NATS headers, signed over method "NATS", the subject and the body; requests
 * are signed for the target id, replies for the requester id, broadcasts for node 0 (the
 * cluster). A message over `maxBytes` is dropped unread; an unsigned, forged, stale or
 * replayed one is dropped and counted in `stats.rejected` before its body is decoded.
 * NATS credentials and TLS pass through `nats` (the client's own ConnectionOptions).
 *
 * Membership (docs/design/0025): an announced id goes to `membership.discoverPeer` (a
 * Node: a discovered member under sync.maxDiscoveredPeers, in memory until its first
 * request) — never straight to addPeer, so a holder of the secret announcing many ids
 * cannot grow anyone's durable membership. Each announce interval `forgetSilentPeers`
 * drops tentative members (no request yet) silent for `forgetAfterMs`; members on record
 * stay until removePeer (GC safety). The ids this transport routes to
 * (`knows`) are bounded the same way: only ids membership accepted (at most
 * MAX_KNOWN without membership), dropped after `forgetAfterMs` of silence.
 *
 * Bounds: at most `maxPending` received messages are being handled at once; beyond it a
 * message is dropped (`stats.dropped`), so a slow node cannot grow memory without bound —
 * the anti-entropy rounds deliver what a dropped push carried. The client is an optional
 * peer dependency (`@nats-io/transport-node`), loaded here only.
 *
 * No `subscribe` (the live push stream): every node already holds a subscription to the
 * cluster's push subject, which delivers each write's push as it is published — on NATS
 * that subscription is the live channel, and SyncOptions.live adds nothing (live.ts skips
 * a transport without `subscribe`).
 *
 * @module
 */
import { WaveKVError } from "../core/errors.js";
import { warningLog } from "../core/warnings.js";
import { signRequest, RequestVerifier, sha256Hex } from "./auth.js";
import type { SyncHandler, Transport, TransportRequestOptions } from "./transport.js";
import { encodeEnvelope, ENVELOPE_VERSION } from "../sync/envelope.js";
import { clientOptions, type NatsConf } from "./nats-conf.js";

const PKG = "@nats-io/transport-node";
const METHOD = "NATS";
/** Broadcasts (push, announce) are signed for this id: every member verifies them. */
const CLUSTER = 0;
const ERROR_HEADER = "wavekv-error";
/** The local push acknowledgement names no real incarnation (push.ts checks only id and pushOnly). */
const NIL_UUID = "00000000-0000-0000-0000-000000000000";
/** Ids a transport without `membership` routes to: announcements of further ids are refused. */
export const MAX_KNOWN = 1024;
/** An announced id: canonical decimal, 1 ≤ id ≤ 2^32 − 1 (0 names the cluster). */
const ID_TEXT = /^[1-9][0-9]{0,9}$/;

/* Minimal structural types of the client: the package stays optional at compile time too. */
interface NatsHeaders { get(k: string): string; set(k: string, v: string): void }
interface NatsMsg { subject: string; reply?: string; data: Uint8Array; headers?: NatsHeaders; respond(data?: Uint8Array, opts?: { headers?: NatsHeaders }): boolean }
interface NatsSub { unsubscribe(): void }
interface NatsConn {
  publish(subject: string, data?: Uint8Array, opts?: { headers?: NatsHeaders }): void;
  request(subject: string, data: Uint8Array, opts: { timeout: number; headers?: NatsHeaders }): Promise<NatsMsg>;
  subscribe(subject: string, opts: { callback: (err: Error | null, msg: NatsMsg) => void }): NatsSub;
  flush(): Promise<void>;
  close(): Promise<void>;
  isClosed(): boolean;
}
interface NatsModule {
  connect(opts: Record<string, unknown>): Promise<NatsConn>;
  headers(): NatsHeaders;
  nkeyAuthenticator(seed: Uint8Array): unknown;
  credsAuthenticator(creds: Uint8Array): unknown;
}

export interface NatsTransportOptions {
  /** nats:// URL(s) of the NATS server(s). */
  servers: string | string[];
  /** Cluster name: the subject namespace of this wavekv cluster. */
  cluster: string;
  /** This node's id (requests are addressed to `wavekv.<cluster>.node.<id>`). */
  node: number;
  /** Shared HMAC secret, as for HTTP. Without it messages are unsigned (NATS auth only). */
  secret?: string | Uint8Array;
  /** Request timeout, ms. @defaultValue `10_000` */
  timeoutMs?: number;
  /** Largest message accepted, bytes. @defaultValue `8 MiB` (the server's max_payload also applies) */
  maxBytes?: number;
  /** Received messages handled at once; more are dropped. @defaultValue `64` */
  maxPending?: number;
  /** Announce interval, ms. @defaultValue `5_000` */
  announceMs?: number;
  /**
   * A peer that has not announced for this long is forgotten: dropped from routing, and
   * from membership if it is tentative (no request yet; configured and recorded peers stay
   * members: GC safety, docs/design/0025). At least 3
   * announce intervals. @defaultValue `600_000` (10 min), or 3 announce intervals if longer
   */
  forgetAfterMs?: number;
  /** Credentials and TLS (src/transport/nats-conf.ts: what `serve --nats-conf` reads). */
  conf?: NatsConf;
  /** Passed to the client's connect() last (overrides `conf`): user/pass, token, authenticator, tls, ... */
  nats?: Record<string, unknown>;
  /** Warnings: every rejected message is counted (`stats.rejected`); each reason is reported once, then at 10, 100, … repeats (core/warnings.ts, as the HTTP server does). */
  onWarning?: (msg: string) => void;
}

/** Where announced ids go: a `Node` (Node.discoverPeer, Node.forgetSilentPeers). */
export interface NatsMembership {
  /** An announced id (every announcement, so its silence clock restarts); throws TOO_MANY_PEERS past the bound. */
  discoverPeer(id: number): void;
  /** Forgets announced, discovered members that have not announced for `silentMs`; resolves to their ids. */
  forgetSilentPeers(silentMs: number): Promise<number[]>;
}

export interface NatsServeOptions {
  /** Bounded discovery (recommended: the Node). Without it announced ids only reach `onPeer`. */
  membership?: NatsMembership;
  /** An announcement from an id not known before and accepted by `membership` (authenticated when a secret is set). */
  onPeer?: (id: number) => void | Promise<void>;
}

export interface NatsStats {
  published: number;
  /** Body bytes this node put on the wire: requests, replies and publishes (headers excluded). */
  bytesSent: number;
  requests: number;
  handled: number;
  rejected: number;
  dropped: number;
  announced: number;
}

/** `o` without its undefined fields: `{ maxPending: undefined }` keeps the default. */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

async function loadClient(): Promise<NatsModule> {
  try {
    return (await import(PKG)) as unknown as NatsModule;
  } catch (err) {
    throw new WaveKVError("INVALID_ARGUMENT", `NATS transport needs the optional package ${PKG}: npm install ${PKG} (${(err as Error).message})`);
  }
}

export class NatsTransport implements Transport {
  readonly stats: NatsStats = { published: 0, bytesSent: 0, requests: 0, handled: 0, rejected: 0, dropped: 0, announced: 0 };
  readonly #nc: NatsConn;
  readonly #mod: NatsModule;
  readonly #o: Required<Pick<NatsTransportOptions, "timeoutMs" | "maxBytes" | "maxPending" | "announceMs" | "forgetAfterMs">> & NatsTransportOptions;
  readonly #verifyOwn?: RequestVerifier;
  readonly #verifyCluster?: RequestVerifier;
  /** Push bodies already published: SyncManager hands the same body once per peer. */
  readonly #published = new WeakSet<Uint8Array>();
  readonly #subs: NatsSub[] = [];
  /** Id → when last announced (Date.now): what `knows` answers; bounded (see the module doc). */
  readonly #known = new Map<number, number>();
  #membership: NatsMembership | undefined;
  #pending = 0;
  #timer: ReturnType<typeof setInterval> | null = null;
  /** Each reason once, then at 10, 100, … repeats (as the HTTP server warns). */
  readonly #warn: (message: string) => void;

  private constructor(mod: NatsModule, nc: NatsConn, o: NatsTransportOptions) {
    this.#mod = mod;
    this.#nc = nc;
    this.#o = { timeoutMs: 10_000, maxBytes: 8 << 20, maxPending: 64, announceMs: 5_000, forgetAfterMs: Math.max(600_000, 3 * (o.announceMs ?? 5_000)), ...defined(o) };
    this.#warn = warningLog(o.onWarning ?? (() => undefined));
    if (o.secret !== undefined) {
      this.#verifyOwn = new RequestVerifier(o.secret, { node: o.node });
      this.#verifyCluster = new RequestVerifier(o.secret, { node: CLUSTER });
    }
  }

  static async connect(o: NatsTransportOptions): Promise<NatsTransport> {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(o.cluster)) throw new WaveKVError("INVALID_ARGUMENT", `NATS cluster name ${JSON.stringify(o.cluster)}: use 1-64 letters, digits, - or _`);
    if (!Number.isInteger(o.node) || o.node < 1 || o.node > 0xffffffff) throw new WaveKVError("INVALID_ARGUMENT", `NATS node id ${o.node}: an integer in [1, 4294967295]`);
    const announceMs = o.announceMs ?? 5_000;
    if (o.forgetAfterMs !== undefined && !(o.forgetAfterMs >= 3 * announceMs)) throw new WaveKVError("INVALID_ARGUMENT", `NATS forgetAfterMs ${o.forgetAfterMs}: at least 3 announce intervals (${3 * announceMs} ms)`);
    const mod = await loadClient();
    const auth = o.conf && clientOptions(o.conf, mod);
    let nc: NatsConn;
    try {
      nc = await mod.connect({ servers: o.servers, maxReconnectAttempts: -1, reconnectTimeWait: 250, ...auth, ...o.nats });
    } catch (err) {
      throw new WaveKVError("IO", `cannot connect to NATS at ${String(o.servers)}: ${(err as Error).message}`);
    }
    return new NatsTransport(mod, nc, o);
  }

  /** A peer heard on the presence subject (routing: NATS for these, another transport for the rest). */
  knows(peer: number): boolean {
    return this.#known.has(peer);
  }

  subject(kind: "push" | "announce" | number): string {
    return `wavekv.${this.#o.cluster}.${typeof kind === "number" ? `node.${kind}` : kind}`;
  }

  async request(peer: number, body: Uint8Array, opts: TransportRequestOptions): Promise<Uint8Array> {
    if (opts.signal.aborted) throw opts.signal.reason;
    const subject = this.subject(peer);
    this.stats.requests++;
    this.stats.bytesSent += body.length;
    let reply: NatsMsg;
    try {
      reply = await this.#nc.request(subject, body, { timeout: this.#o.timeoutMs, headers: this.#sign(subject, body, peer) });
    } catch (err) {
      throw new WaveKVError("IO", `NATS request to node ${peer}: ${(err as Error).message}`);
    }
    if (reply.data.length > this.#o.maxBytes) throw new WaveKVError("IO", `NATS reply from node ${peer} over ${this.#o.maxBytes} bytes`);
    const why = this.#check(this.#verifyOwn, reply.subject, reply);
    if (why) { this.#reject("reply", why); throw new WaveKVError("IO", `NATS reply from node ${peer} refused: ${why}`); }
    const code = reply.headers?.get(ERROR_HEADER);
    if (code) throw new WaveKVError(code === "UUID_MISMATCH" || code === "BAD_ENVELOPE" ? code : "IO", `node ${peer}: ${new TextDecoder().decode(reply.data)}`);
    return reply.data;
  }

  /**
   * Publishes `body` once on the push subject; later calls with the same body (one per
   * peer) only acknowledge. The acknowledgement is local: NATS publish is fire-and-forget,
   * and what a node misses the next round delivers.
   */
  async push(peer: number, body: Uint8Array, _opts: TransportRequestOptions): Promise<Uint8Array> {
    if (!this.#published.has(body)) {
      this.#published.add(body);
      const subject = this.subject("push");
      this.#nc.publish(subject, body, { headers: this.#sign(subject, body, CLUSTER) });
      this.stats.published++;
      this.stats.bytesSent += body.length;
    }
    return encodeEnvelope({ version: ENVELOPE_VERSION, senderId: peer, senderUuid: NIL_UUID, acks: new Map(), entries: [], pushOnly: true });
  }

  /** Answers requests to this node, merges pushes, announces itself and learns peers. */
  async serve(sync: SyncHandler, opts: NatsServeOptions = {}): Promise<void> {
    const own = this.#o.node;
    this.#subs.push(this.#nc.subscribe(this.subject(own), { callback: (_e, m) => this.#admit(m, this.#verifyOwn, "request", async () => {
      let out: Uint8Array, hdr: NatsHeaders | undefined;
      try {
        out = await sync.handle(m.data);
      } catch (err) {
        out = new TextEncoder().encode((err as Error).message);
        hdr = this.#mod.headers();
        hdr.set(ERROR_HEADER, err instanceof WaveKVError ? err.code : "IO");
      }
      const from = Number(m.headers?.get("wavekv-from") ?? "0");
      this.stats.bytesSent += out.length;
      if (m.reply) m.respond(out, { headers: this.#sign(m.reply, out, from, hdr) });
    }) }));
    this.#subs.push(this.#nc.subscribe(this.subject("push"), { callback: (_e, m) => this.#admit(m, this.#verifyCluster, "push", async () => {
      if (m.headers?.get("wavekv-from") === String(own)) return;
      await sync.handle(m.data);
    }) }));
    this.#membership = opts.membership;
    this.#subs.push(this.#nc.subscribe(this.subject("announce"), { callback: (_e, m) => this.#admit(m, this.#verifyCluster, "announce", async () => {
      const text = new TextDecoder().decode(m.data);
      const id = Number(text);
      if (!ID_TEXT.test(text) || id > 0xffffffff) return void this.#reject("announce", "malformed id (a node id is canonical decimal in [1, 4294967295])");
      if (id === own || !this.#heardAnnouncement(id)) return;
      await opts.onPeer?.(id);
      this.#announce(); // the newcomer learns us without waiting an interval
    }) }));
    await this.#nc.flush();
    this.#announce();
    this.#timer = setInterval(() => { this.#announce(); void this.#forgetSilent(); }, this.#o.announceMs);
    (this.#timer as { unref?: () => void }).unref?.();
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    for (const s of this.#subs.splice(0)) s.unsubscribe();
    if (!this.#nc.isClosed()) await this.#nc.close();
  }

  /** Records an announcement of `id`; true when it is newly known (and membership accepted it). */
  #heardAnnouncement(id: number): boolean {
    try {
      this.#membership?.discoverPeer(id);
    } catch (err) {
      // TOO_MANY_PEERS (the bound) or CLOSED: not known, not routed to; the node logged the bound once.
      const code = err instanceof WaveKVError ? err.code : (err as Error).message;
      this.#warn(`NATS announcement of a new id not admitted (${code}): see the node's warning`);
      return false;
    }
    const fresh = !this.#known.has(id);
    if (fresh && !this.#membership && this.#known.size >= MAX_KNOWN) {
      this.#warn(`NATS announcement of a new id ignored: ${MAX_KNOWN} ids known already (serve with membership to bound discovery by sync.maxDiscoveredPeers)`);
      return false;
    }
    this.#known.set(id, Date.now());
    return fresh;
  }

  /** Each announce interval: ids silent for forgetAfterMs leave routing, and discovered ones membership. */
  async #forgetSilent(): Promise<void> {
    const since = Date.now() - this.#o.forgetAfterMs;
    for (const [id, at] of this.#known) if (at < since) this.#known.delete(id);
    try {
      const gone = (await this.#membership?.forgetSilentPeers(this.#o.forgetAfterMs)) ?? [];
      for (const id of gone) {
        this.#known.delete(id);
        this.#warn(`NATS: forgot discovered peer ${id}, silent for ${this.#o.forgetAfterMs} ms (it is discovered again when it announces)`);
      }
    } catch { /* the node is closing */ }
  }

  #announce(): void {
    if (this.#nc.isClosed()) return;
    const body = new TextEncoder().encode(String(this.#o.node));
    const subject = this.subject("announce");
    try {
      this.#nc.publish(subject, body, { headers: this.#sign(subject, body, CLUSTER) });
      this.stats.announced++;
    } catch { /* reconnecting: the next interval announces */ }
  }

  #sign(subject: string, body: Uint8Array, target: number, into?: NatsHeaders): NatsHeaders {
    const h = into ?? this.#mod.headers();
    h.set("wavekv-from", String(this.#o.node));
    if (this.#o.secret !== undefined) for (const [k, v] of Object.entries(signRequest(this.#o.secret, METHOD, subject, body, target))) h.set(k, v);
    return h;
  }

  /** null when `m` is authentic for `verifier`'s node (or no secret is configured). */
  #check(verifier: RequestVerifier | undefined, subject: string, m: NatsMsg): string | null {
    if (!verifier) return null;
    const v = verifier.verifyHeaders(METHOD, subject, (k) => m.headers?.get(k) || undefined);
    if (!v.ok) return v.reason;
    return sha256Hex(m.data) === v.contentSha256 ? null : "body does not match its signed digest";
  }

  #admit(m: NatsMsg, verifier: RequestVerifier | undefined, kind: string, work: () => Promise<void>): void {
    if (m.data.length > this.#o.maxBytes) return void this.#reject(kind, `over ${this.#o.maxBytes} bytes`);
    const why = this.#check(verifier, m.subject, m);
    if (why) return void this.#reject(kind, why);
    if (this.#pending >= this.#o.maxPending) { this.stats.dropped++; return; }
    this.#pending++;
    this.stats.handled++;
    void work().catch(() => { /* a refused push or announce: the round reports real failures */ }).finally(() => { this.#pending--; });
  }

  #reject(kind: string, why: string): void {
    this.stats.rejected++;
    this.#warn(`NATS ${kind} dropped: ${why}`);
  }
}

