/**
 * A small client for a running `wavekv serve` (the CLI's put/get/del/scan/status/peers).
 *
 *   const kv = new KvClient("http://127.0.0.1:8001", secret);
 *   await kv.put("a", "1"); await kv.get("a"); await kv.scan("prefix/");
 *
 * Signed requests name the node they are for (docs/PROTOCOL.md "HTTP authentication");
 * the client learns that id from the public GET /status once and keeps it.
 */
import { signRequest } from "../transport/auth.js";
import { kvPath } from "../transport/fetch.js";
import type { NodeStatus } from "../core/types.js";

export interface KvEntryJson {
  key: string;
  value?: string;
  valueBase64?: string;
  deleted?: boolean;
  timestamp: number;
  node: number;
  seq: number;
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

export class KvClient {
  #node: Promise<number> | undefined;

  constructor(readonly url: string, private readonly secret?: string, private readonly timeoutMs = 10_000) {
    this.url = url.replace(/\/+$/, "");
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
    if (code === "ECONNREFUSED") return `nothing answers at ${this.url}: is \`wavekv serve\` running there?`;
    if (e.name === "TimeoutError") return `${this.url} did not answer within ${this.timeoutMs} ms: is the node overloaded, or the address wrong?`;
    if (code === "ENOTFOUND" || code === "EAI_AGAIN") return `cannot find the host of ${this.url} (${code}): check the URL`;
    return `cannot reach ${this.url}: ${cause?.message ?? e.message}`;
  }

  async #call(method: string, path: string, body?: Uint8Array, sign = this.secret !== undefined): Promise<{ status: number; json: any }> {
    const headers: Record<string, string> = {};
    if (sign && this.secret !== undefined) Object.assign(headers, signRequest(this.secret, method, path, body ?? new Uint8Array(0), await this.nodeId()));
    const res = await fetch(this.url + path, { method, headers, body: body as Uint8Array<ArrayBuffer> | undefined, signal: AbortSignal.timeout(this.timeoutMs) }).catch((e: Error) => {
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

  async put(key: string, value: string | Uint8Array): Promise<KvEntryJson> {
    const body = typeof value === "string" ? new TextEncoder().encode(value) : value;
    return (await this.#call("PUT", kvPath(key), body)).json;
  }

  /** POST /kv/_batch: a JSON array of operations written as one atomic batch; the entries written. */
  async batch(ops: string | Uint8Array): Promise<KvEntryJson[]> {
    return (await this.#call("POST", "/kv/_batch", typeof ops === "string" ? new TextEncoder().encode(ops) : ops)).json.entries;
  }

  async get(key: string): Promise<KvEntryJson | undefined> {
    const r = await this.#call("GET", kvPath(key));
    return r.status === 404 ? undefined : r.json;
  }

  async del(key: string): Promise<KvEntryJson | undefined> {
    const r = await this.#call("DELETE", kvPath(key));
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
