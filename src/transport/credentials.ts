/**
 * Scoped client credentials (docs/design/0028-tls-and-credentials.md): the cluster secret
 * stays with peers; a client gets a named credential that reads only, or reads and writes,
 * optionally only keys under some prefixes.
 *
 *   const creds = parseClientKeys(["app:0123456789abcdef0123:rw:app/"]);
 *   const why = forbidden(creds[0], "PUT", "/kv/app%2Fx", query);   // undefined: allowed
 *
 * Text form (`serve --client-key`, one per line in `--client-keys-file`):
 *   NAME:SECRET:ro|rw[:PREFIX]
 * NAME is 1-64 of [A-Za-z0-9._-] (it travels in the x-wavekv-key header and in log lines);
 * SECRET is 16-1024 characters without ':' (never logged); PREFIX is the rest of the
 * line, verbatim (a key prefix may hold ':'). Repeating a NAME with the same secret and
 * mode adds a prefix; anything else about a repeated NAME is refused.
 *
 * What a credential may do (checked from method and raw target, before any body byte):
 * - GET /kv/<key>, /kv?key=: read, the key under one of its prefixes (or no prefixes).
 * - PUT, DELETE of a key: rw, and the key under one of its prefixes.
 * - GET /kv?prefix=P listing: P itself must start with one of its prefixes (refused, not
 *   clipped: a listing that silently drops keys reads as "those keys do not exist").
 * - GET /peers, GET /whoami: any credential. GET /console/api/state: any credential, but
 *   a prefix-limited one only with feed=0 (the change feed shows every key's value).
 * - Everything else — /sync, /push, /subscribe (envelopes), the console's feed stream
 *   (its frames are MACed with the cluster secret), DELETE /peers, routes added later — is
 *   the cluster secret's alone: a credential gets 403.
 */
import { WaveKVError } from "../core/errors.js";
import type { TlsServerOptions } from "./tls.js";

/** The access part of `ServeOptions` (src/transport/http.ts). */
export interface ServeAccessOptions {
  /**
   * Client credentials accepted besides `secret` (which stays the peers' key): each is
   * read-only or read-write, optionally limited to key prefixes, and checked on every /kv
   * and console request (403 outside its scope). Needs `secret`.
   * @defaultValue none: only the cluster secret
   */
  credentials?: readonly ClientCredential[];
  /**
   * Serve HTTPS with this PEM certificate and key (`readTlsFiles` reads and checks them).
   * @defaultValue none: plain HTTP
   */
  tls?: TlsServerOptions;
}

/** The verifier for a server without a cluster secret: none, and credentials are refused (nothing would check them). */
export function noVerifier(credentials: readonly ClientCredential[] | undefined): null {
  if (credentials?.length) throw new WaveKVError("INVALID_ARGUMENT", "client credentials need the cluster secret too (serve --secret-file): without it no request is checked");
  return null;
}

export type CredentialMode = "ro" | "rw";

export interface ClientCredential {
  /** Named in the x-wavekv-key header and in log lines; never secret. */
  readonly name: string;
  readonly secret: string;
  readonly mode: CredentialMode;
  /** Key prefixes it may touch; empty: every key. */
  readonly prefixes: readonly string[];
}

export const CREDENTIAL_NAME = /^[A-Za-z0-9._-]{1,64}$/;
const MIN_SECRET = 16;
const MAX_SECRET = 1024;

function bad(message: string): WaveKVError {
  return new WaveKVError("INVALID_ARGUMENT", message);
}

/** One `NAME:SECRET:ro|rw[:PREFIX]`; `where` names its origin in the error ("--client-key", "keys.txt line 3"). */
export function parseClientKey(text: string, where = "--client-key"): ClientCredential {
  const usage = "expected NAME:SECRET:ro|rw[:PREFIX], e.g. app:$(head -c 24 /dev/urandom | base64 | tr -d '/+='):rw:app/";
  const first = text.indexOf(":");
  const second = first < 0 ? -1 : text.indexOf(":", first + 1);
  if (first < 0 || second < 0) throw bad(`${where}: ${usage}`);
  const name = text.slice(0, first);
  const secret = text.slice(first + 1, second);
  const rest = text.slice(second + 1);
  const third = rest.indexOf(":");
  const mode = third < 0 ? rest : rest.slice(0, third);
  const prefix = third < 0 ? undefined : rest.slice(third + 1);
  if (!CREDENTIAL_NAME.test(name)) throw bad(`${where}: the name ${JSON.stringify(name.slice(0, 70))} must be 1-64 of A-Z a-z 0-9 . _ - (${usage})`);
  if (secret.length < MIN_SECRET || secret.length > MAX_SECRET) throw bad(`${where}: the secret of credential ${name} is ${secret.length} characters; ${MIN_SECRET} to ${MAX_SECRET} are needed`);
  if (mode !== "ro" && mode !== "rw") throw bad(`${where}: the mode of credential ${name} must be ro or rw, got ${JSON.stringify(mode.slice(0, 20))}`);
  if (prefix === "") throw bad(`${where}: credential ${name} has an empty prefix; leave out the last ':' to allow every key`);
  return { name, secret, mode, prefixes: prefix === undefined ? [] : [prefix] };
}

/** Several credentials; a NAME given again with the same secret and mode adds its prefix. */
export function parseClientKeys(texts: readonly string[], where: (i: number) => string = () => "--client-key"): ClientCredential[] {
  const byName = new Map<string, ClientCredential>();
  texts.forEach((text, i) => {
    const c = parseClientKey(text, where(i));
    const had = byName.get(c.name);
    if (!had) return void byName.set(c.name, c);
    if (had.secret !== c.secret || had.mode !== c.mode) throw bad(`${where(i)}: credential ${c.name} is given twice with another secret or mode`);
    if (had.prefixes.length === 0 || c.prefixes.length === 0) throw bad(`${where(i)}: credential ${c.name} is given both with and without a prefix`);
    byName.set(c.name, { ...had, prefixes: [...had.prefixes, ...c.prefixes] });
  });
  return [...byName.values()];
}

/**
 * The credentials of `--client-key` flags (`flags`) and of a file's lines: blank lines and
 * lines starting with '#' are skipped; an error names the flag or the file and line.
 */
export function parseClientKeysFile(text: string, file: string, flags: readonly string[] = []): ClientCredential[] {
  const lines = [...flags];
  const where = flags.map(() => "--client-key");
  text.split(/\r?\n/).forEach((line, i) => {
    const t = line.trim();
    if (t === "" || t.startsWith("#")) return;
    lines.push(t);
    where.push(`${file} line ${i + 1}`);
  });
  return parseClientKeys(lines, (i) => where[i]!);
}

const within = (c: ClientCredential, key: string) => c.prefixes.length === 0 || c.prefixes.some((p) => key.startsWith(p));

/** The key of a /kv/<key> or /kv?key= target, as http.ts reads it; undefined when there is none or it does not decode. */
function keyOf(path: string, query: URLSearchParams): string | undefined {
  if (path === "/kv") return query.get("key") ?? undefined;
  if (!path.startsWith("/kv/")) return undefined;
  try {
    return decodeURIComponent(path.slice(4));
  } catch {
    return undefined;
  }
}

/**
 * Why `c` may not make this request (a sentence for the 403 and the log line: it names the
 * credential, never a key, so a credential holder cannot make a log line per key), or
 * undefined when it may. `path` is the raw path, `query` the raw query, as received.
 */
export function forbidden(c: ClientCredential, method: string, path: string, query: URLSearchParams): string | undefined {
  const scope = c.prefixes.length === 0 ? "every key" : `keys under ${c.prefixes.map((p) => JSON.stringify(p)).join(", ")}`;
  if (path === "/kv" && !query.has("key")) {
    if (method !== "GET") return undefined; // no such route: the server's 404
    const prefix = query.get("prefix") ?? "";
    return within(c, prefix) ? undefined : `credential ${c.name} lists only ${scope}; pass prefix= with one of them`;
  }
  // A batch names its keys in its body: `batchForbidden` checks them once it is parsed.
  if (method === "POST" && path === "/kv/_batch") return c.mode === "rw" ? undefined : `credential ${c.name} is read-only`;
  const key = keyOf(path, query);
  if (key !== undefined) {
    if (method === "GET" || method === "HEAD") return within(c, key) ? undefined : `credential ${c.name} reads only ${scope}`;
    if (method !== "PUT" && method !== "DELETE") return `only the cluster secret may ${method} a key, not credential ${c.name}`;
    if (c.mode !== "rw") return `credential ${c.name} is read-only`;
    return within(c, key) ? undefined : `credential ${c.name} writes only ${scope}`;
  }
  if (method === "GET" && (path === "/peers" || path === "/whoami")) return undefined;
  if (method === "GET" && path === "/console/api/state") {
    return c.prefixes.length === 0 || query.get("feed") === "0" ? undefined : `credential ${c.name} reads only ${scope}, not the change feed; ask with feed=0`;
  }
  return `this route accepts only the cluster secret, not credential ${c.name}`;
}

/** Why `c` may not write every key of a batch (POST /kv/_batch, after its body is parsed), or undefined. */
export function batchForbidden(c: ClientCredential, keys: readonly string[]): string | undefined {
  if (keys.every((k) => within(c, k))) return undefined;
  return `credential ${c.name} writes only keys under ${c.prefixes.map((p) => JSON.stringify(p)).join(", ")}, and the batch names others`;
}

/** The route of `path` for a log line: its first segment ("/kv", "/sync"), never a key. */
export function routeOf(path: string): string {
  return "/" + (path.split("/")[1] ?? "").slice(0, 24);
}

/** What GET /whoami answers: who signed, and what it may do (no secret). */
export function scopeJson(c: ClientCredential | undefined | null): { credential: string | null; mode: CredentialMode | "cluster"; prefixes: string[] } {
  return c ? { credential: c.name, mode: c.mode, prefixes: [...c.prefixes] } : { credential: null, mode: "cluster", prefixes: [] };
}
