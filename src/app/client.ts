/**
 * A small client for a running `wavekv serve` (the CLI's put/get/del/scan/status/peers).
 *
 *   const kv = new KvClient("http://127.0.0.1:8001", secret);
 *   await kv.put("a", "1"); await kv.get("a"); await kv.scan("prefix/");
 *
 * Signed requests name the node they are for (docs/PROTOCOL.md "HTTP authentication");
 * the client learns that id from the public GET /status once and keeps it.
 *
 *   new KvClient("https://kv:8001", credentialSecret, 10_000, { key: "app", ca: caPem });
 *
 * `key` names a client credential (`serve --client-key`): `secret` is then that
 * credential's secret. `ca` trusts the CA that signed an https:// node's certificate.
 */
import { signRequest } from "../transport/auth.js";
import { kvPath } from "../transport/fetch.js";
import { describeTlsError, fetchWithCa } from "../transport/tls.js";
import type { NodeStatus, ReplicationStatus } from "../core/types.js";

export interface KvEntryJson {
  key: string;
  value?: string;
  valueBase64?: string;
  deleted?: boolean;
  timestamp: number;
  node: number;
  seq: number;
  /** When the entry expires (ms since the epoch), for an entry written with a TTL. */
  expiresAt?: number;
}

export interface KvPeerJson {
  id: number;
  address: string | null;
  ack?: number;
  peerAck?: number;
  heardFrom?: boolean;
  [more: string]: unknown;
}

/** A refusal from the server: its HTTP status, its code (e.g. "SUPERSEDED") and, for SUPERSEDED, the winning entry. */
export class KvClientError extends Error {
  constructor(message: string, readonly status: number, readonly code: string, readonly winner?: KvEntryJson) {
    super(message);
    this.name = "KvClientError";
  }
}

/** Deno's fetch error carries no OS code: its cause says "tcp connect error: Connection refused" or "dns error". */
function denoFetchCode(message: string | undefined): string | undefined {
  if (message === undefined) return undefined;
  if (/tcp connect error: Connection refused/.test(message)) return "ECONNREFUSED";
  if (/dns error/.test(message)) return "ENOTFOUND";
  return undefined;
}

export interface KvClientOptions {
  /** The client credential `secret` belongs to (sent as x-wavekv-key). @defaultValue none: `secret` is the cluster secret */
  key?: string;
  /** PEM of the CA that signed an https:// node's certificate. @defaultValue none: the runtime's trust store */
  ca?: string | Uint8Array;
}

export class KvClient {
  #node: Promise<number> | undefined;
  readonly #fetch: typeof fetch;
  readonly #key: string | undefined;

  constructor(readonly url: string, private readonly secret?: string, private readonly timeoutMs = 10_000, opts: KvClientOptions = {}) {
    this.url = url.replace(/\/+$/, "");
    this.#key = opts.key;
    this.#fetch = opts.ca === undefined ? (input, init) => fetch(input, init) : fetchWithCa(opts.ca);
  }

  /** The id of the node behind `url` (public /status), asked once. */
  nodeId(): Promise<number> {
    this.#node ??= this.#call("GET", "/status", undefined, false).then((r) => {
      if (typeof r.json?.id !== "number") throw new KvClientError(`${this.url}/status did not answer a node status; is this a wavekv node?`, r.status, "IO");
      return r.json.id as number;
    });
    this.#node.catch(() => { this.#node = undefined; });
    return this.#node;
  }

  /** Why fetch failed, as what to check. Node puts the OS code on `cause`, Bun on the error, Deno only in the cause's words. */
  #unreachable(e: Error): string {
    const cause = e.cause as { code?: string; message?: string } | undefined;
    const code = cause?.code ?? (e as { code?: string }).code ?? denoFetchCode(cause?.message);
    const tls = describeTlsError(e, this.url);
    if (tls) return tls;
    if (code === "ECONNREFUSED") return `nothing answers at ${this.url}: is \`wavekv serve\` running there?`;
    if (e.name === "TimeoutError") return `${this.url} did not answer within ${this.timeoutMs} ms: is the node overloaded, or the address wrong?`;
    if (code === "ENOTFOUND" || code === "EAI_AGAIN") return `cannot find the host of ${this.url} (${code}): check the URL`;
    return `cannot reach ${this.url}: ${cause?.message ?? e.message}`;
  }

  async #call(method: string, path: string, body?: Uint8Array, sign = this.secret !== undefined, timeoutMs = this.timeoutMs): Promise<{ status: number; json: any }> {
    const headers: Record<string, string> = {};
    if (sign && this.secret !== undefined) Object.assign(headers, signRequest(this.secret, method, path, body ?? new Uint8Array(0), await this.nodeId(), Date.now(), this.#key));
    const res = await this.#fetch(this.url + path, { method, headers, body: body as Uint8Array<ArrayBuffer> | undefined, signal: AbortSignal.timeout(timeoutMs) }).catch((e: Error) => {
      throw new KvClientError(this.#unreachable(e), 0, "IO");
    });
    const text = await res.text();
    let json: any;
    try { json = JSON.parse(text); } catch { json = undefined; }
    if (json === undefined && res.ok) throw new KvClientError(`${method} ${path}: ${this.url} answered ${res.status} with something other than JSON; is this a wavekv node?`, res.status, "IO");
    if (res.status >= 400 && !(res.status === 404 && json?.error === "NOT_FOUND")) {
      const code = String(json?.code ?? json?.error ?? `HTTP_${res.status}`);
      const reason = json?.message ?? text.slice(0, 200).replace(/\s+/g, " ");
      throw new KvClientError(`${method} ${path}: ${res.status} ${reason}`, res.status, code, json?.winner);
    }
    return { status: res.status, json };
  }

  /**
   * Writes `key`; with `ttlMs`, the entry expires that long after its timestamp. With
   * `wait`, the server answers once that many peers ("all", or n) confirmed the write, or
   * rejects with code NOT_REPLICATED (HTTP 504) after `timeoutMs` (default 10 s): the
   * write itself stands then too.
   */
  async put(key: string, value: string | Uint8Array, opts: { ttlMs?: number; wait?: "all" | number; timeoutMs?: number } = {}): Promise<KvEntryJson> {
    const body = typeof value === "string" ? new TextEncoder().encode(value) : value;
    const q = new URLSearchParams();
    if (opts.ttlMs !== undefined) q.set("ttlMs", String(opts.ttlMs));
    const { target, timeoutMs } = this.#waitTarget(key, q, opts);
    return (await this.#call("PUT", target, body, undefined, timeoutMs)).json;
  }

  /** `key`'s path with `q` and, with `wait`, the write concern's parameters; the request's deadline covers the wait. */
  #waitTarget(key: string, q: URLSearchParams, opts: { wait?: "all" | number; timeoutMs?: number }): { target: string; timeoutMs: number } {
    const wait = opts.timeoutMs ?? 10_000;
    if (opts.wait !== undefined) { q.set("wait", String(opts.wait)); q.set("timeoutMs", String(wait)); }
    const path = kvPath(key), query = q.toString();
    const target = query === "" ? path : `${path}${path.includes("?") ? "&" : "?"}${query}`;
    return { target, timeoutMs: opts.wait === undefined ? this.timeoutMs : Math.max(this.timeoutMs, wait + 5_000) };
  }

  /** POST /kv/_batch: a JSON array of operations written as one atomic batch; the entries written. */
  async batch(ops: string | Uint8Array): Promise<KvEntryJson[]> {
    return (await this.#call("POST", "/kv/_batch", typeof ops === "string" ? new TextEncoder().encode(ops) : ops)).json.entries;
  }

  async get(key: string): Promise<KvEntryJson | undefined> {
    const r = await this.#call("GET", kvPath(key));
    return r.status === 404 ? undefined : r.json;
  }

  /** Deletes `key` (undefined: it was not there). `wait` and `timeoutMs` as for put. */
  async del(key: string, opts: { wait?: "all" | number; timeoutMs?: number } = {}): Promise<KvEntryJson | undefined> {
    const { target, timeoutMs } = this.#waitTarget(key, new URLSearchParams(), opts);
    const r = await this.#call("DELETE", target, undefined, undefined, timeoutMs);
    return r.status === 404 ? undefined : r.json;
  }

  async *scan(prefix = "", pageSize = 1000): AsyncIterableIterator<KvEntryJson> {
    let after: string | undefined;
    for (;;) {
      const q = new URLSearchParams({ prefix, limit: String(pageSize) });
      if (after !== undefined) q.set("after", after);
      const { json } = await this.#call("GET", `/kv?${q}`);
      for (const e of json.entries as KvEntryJson[]) yield e;
      if (!json.more || json.entries.length === 0) return;
      after = json.entries[json.entries.length - 1].key;
    }
  }

  /** Who the node takes this client for: its credential's name, mode and prefixes (GET /whoami). */
  async whoami(): Promise<{ credential: string | null; mode: "ro" | "rw" | "cluster"; prefixes: string[] }> {
    return (await this.#call("GET", "/whoami")).json;
  }

  /** Per peer, what it confirmed of the node's writes (signed GET /replication: Node.replication()). */
  async replication(): Promise<ReplicationStatus> {
    return (await this.#call("GET", "/replication")).json;
  }

  async status(): Promise<NodeStatus> {
    return (await this.#call("GET", "/status", undefined, false)).json;
  }

  async peers(): Promise<KvPeerJson[]> {
    return (await this.#call("GET", "/peers")).json.peers;
  }

  /** Forgets a peer; false when it was not one. */
  async removePeer(id: number): Promise<boolean> {
    return (await this.#call("DELETE", `/peers/${id}`)).status !== 404;
  }
}
