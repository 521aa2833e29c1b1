/**
 * A small client for a running `wavekv serve` (the CLI's put/get/del/scan/status).
 *
 *   const kv = new KvClient("http://127.0.0.1:8001", secret);
 *   await kv.put("a", "1"); await kv.get("a"); await kv.scan("prefix/");
 */
import { signRequest } from "./auth.js";
import type { NodeStatus } from "./types.js";

export interface KvEntryJson {
  key: string;
  value?: string;
  valueBase64?: string;
  deleted?: boolean;
  timestamp: number;
  node: number;
  seq: number;
}

export class KvClient {
  constructor(readonly url: string, private readonly secret?: string, private readonly timeoutMs = 10_000) {
    this.url = url.replace(/\/+$/, "");
  }

  async #call(method: string, path: string, body?: Uint8Array): Promise<{ status: number; json: any }> {
    const headers: Record<string, string> = {};
    if (this.secret !== undefined) Object.assign(headers, signRequest(this.secret, method, path, body ?? new Uint8Array(0)));
    const res = await fetch(this.url + path, { method, headers, body: body as Uint8Array<ArrayBuffer> | undefined, signal: AbortSignal.timeout(this.timeoutMs) });
    const text = await res.text();
    let json: any;
    try { json = JSON.parse(text); } catch { json = { message: text }; }
    if (res.status >= 400 && res.status !== 404) throw new Error(`${method} ${path}: ${res.status} ${json?.error ?? ""} ${json?.message ?? ""}`.trim());
    return { status: res.status, json };
  }

  async put(key: string, value: string | Uint8Array): Promise<KvEntryJson> {
    const body = typeof value === "string" ? new TextEncoder().encode(value) : value;
    return (await this.#call("PUT", `/kv/${encodeURIComponent(key)}`, body)).json;
  }

  async get(key: string): Promise<KvEntryJson | undefined> {
    const r = await this.#call("GET", `/kv/${encodeURIComponent(key)}`);
    return r.status === 404 ? undefined : r.json;
  }

  async del(key: string): Promise<KvEntryJson | undefined> {
    const r = await this.#call("DELETE", `/kv/${encodeURIComponent(key)}`);
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
    return (await this.#call("GET", "/status")).json;
  }
}
