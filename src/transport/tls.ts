/**
 * TLS for the HTTP server and its clients (docs/design/0028-tls-and-credentials.md).
 *
 *   const tls = readTlsFiles({ cert: "node.crt", key: "node.key", ca: "ca.crt" });
 *   await serveHttp(sync, { node, tls });                        // https://…
 *   new HttpTransport({ peers, secret, ca: tls.ca });            // trusts that CA
 *   const f = fetchWithCa(tls.ca); await f("https://…/status"); // any fetch caller
 *
 * Server: `node:https` on every runtime (Node, Bun and Deno implement it).
 * Client: a fetch that trusts one CA (PEM) besides nothing else. No runtime has one
 * fetch option for that, so per runtime, without a dependency:
 * - Bun: its fetch's `tls: { ca }` option;
 * - Deno: `Deno.createHttpClient({ caCerts })` passed as the `client` option;
 * - Node: its global fetch (undici) takes no CA and undici is not importable without the
 *   package, so requests go through `node:https.request` with an Agent holding the CA,
 *   answered as a WHATWG Response (streamed body: the push stream works too).
 * Plain http:// URLs keep the global fetch everywhere.
 */
import { readFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Agent, createServer as createHttpsServer, request } from "node:https";
import { createSecureContext } from "node:tls";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { Readable } from "node:stream";
import { WaveKVError } from "../core/errors.js";
import type { FetchTransportOptions } from "./fetch.js";

/** PEM text (or bytes) of the server's certificate chain and private key. */
export interface TlsServerOptions {
  cert: string | Uint8Array;
  key: string | Uint8Array;
  /**
   * The CA that signs the peers' certificates: what this node trusts for its https:// peers
   * (`startServer` passes it to the transport). Not used to ask clients for certificates.
   * @defaultValue none: the runtime's trust store
   */
  ca?: string | Uint8Array;
}

export interface TlsClientOptions {
  /**
   * PEM of the CA (or CAs, concatenated) that signed the peers' certificates: https:// peers
   * are verified against it instead of the system's list (src/transport/tls.ts).
   * @defaultValue none: the runtime's own trust store
   */
  ca?: string | Uint8Array;
}

const why = (e: unknown): string => {
  const code = (e as NodeJS.ErrnoException).code;
  return code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a directory" : code === "EACCES" ? "permission denied" : String(code ?? (e as Error).message);
};

/** One PEM file, or an INVALID_ARGUMENT naming the file and what is wrong (one line). */
export function readPemFile(file: string, what: string, flag: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new WaveKVError("INVALID_ARGUMENT", `cannot read the ${what} file ${file} (${why(e)}): pass ${flag} with a readable PEM file`);
  }
  if (!/-----BEGIN [A-Z0-9 ]+-----/.test(text)) throw new WaveKVError("INVALID_ARGUMENT", `${file} (${flag}) holds no PEM block ("-----BEGIN …-----"): pass the ${what} in PEM form`);
  return text;
}

/**
 * The server's certificate, key and (optional) CA from files, checked together: a key that
 * does not match the certificate is refused here, at start, not at the first handshake.
 */
export function readTlsFiles(files: { cert: string; key: string; ca?: string }): TlsServerOptions {
  const cert = readPemFile(files.cert, "TLS certificate", "--tls-cert");
  const key = readPemFile(files.key, "TLS private key", "--tls-key");
  const ca = files.ca === undefined ? undefined : readPemFile(files.ca, "TLS CA certificate", "--tls-ca");
  try {
    createSecureContext({ cert, key, ...(ca ? { ca } : {}) });
    // Deno's createSecureContext accepts any pair: compare the keys ourselves (first certificate of the chain).
    if (!new X509Certificate(cert).checkPrivateKey(createPrivateKey(key))) throw new Error("the key is not the certificate's");
  } catch (e) {
    const reason = String((e as Error).message).split("\n")[0];
    throw new WaveKVError("INVALID_ARGUMENT", `the TLS certificate ${files.cert} and key ${files.key} cannot be used together (${reason}): pass the key that belongs to the certificate`);
  }
  return { cert, key, ...(ca ? { ca } : {}) };
}

type Listener = (req: IncomingMessage, res: ServerResponse) => void;

/** An HTTP server, or an HTTPS one with `tls` (same request and response types). */
export function createNodeServer(tls: TlsServerOptions | undefined, listener: Listener): Server {
  if (!tls) return createHttpServer(listener);
  return createHttpsServer({ cert: pem(tls.cert), key: pem(tls.key) }, listener) as unknown as Server;
}

const pem = (v: string | Uint8Array) => (typeof v === "string" ? v : new TextDecoder().decode(v));

/** A fetch that verifies https:// servers against `ca` (PEM) and uses the global fetch for http://. */
export function fetchWithCa(ca: string | Uint8Array): typeof fetch {
  const caText = pem(ca);
  const g = globalThis as { Bun?: unknown; Deno?: { createHttpClient(o: { caCerts: string[] }): unknown } };
  const plain: typeof fetch = (input, init) => globalThis.fetch(input, init);
  const isHttps = (input: Parameters<typeof fetch>[0]) => String(input instanceof Request ? input.url : input).startsWith("https:");
  if (g.Bun) return ((input, init) => isHttps(input) ? globalThis.fetch(input, { ...init, tls: { ca: caText } } as RequestInit) : plain(input, init)) as typeof fetch;
  if (g.Deno) {
    const client = g.Deno.createHttpClient({ caCerts: [caText] });
    return ((input, init) => isHttps(input) ? globalThis.fetch(input, { ...init, client } as RequestInit) : plain(input, init)) as typeof fetch;
  }
  const agent = new Agent({ ca: caText, keepAlive: true });
  return ((input, init) => isHttps(input) ? httpsFetch(agent, String(input instanceof Request ? input.url : input), init ?? {}) : plain(input, init)) as typeof fetch;
}

/** The transport's options with `ca` turned into its fetch (an explicit `fetch` wins). */
export function withCa(opts: FetchTransportOptions & TlsClientOptions): FetchTransportOptions {
  if (opts.ca === undefined || opts.fetch) return opts;
  return { ...opts, fetch: fetchWithCa(opts.ca) };
}

/** fetch over node:https with `agent` (Node): the subset the transport and client use (method, headers, byte or string body, signal). */
function httpsFetch(agent: Agent, url: string, init: RequestInit): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((v, k) => { headers[k] = v; });
    const body = init.body === undefined || init.body === null ? undefined : typeof init.body === "string" ? Buffer.from(init.body) : Buffer.from(init.body as Uint8Array);
    if (body) headers["content-length"] = String(body.length);
    const method = (init.method ?? "GET").toUpperCase();
    const req = request(url, { method, headers, agent, ...(init.signal ? { signal: init.signal } : {}) }, (res) => {
      const h = new Headers();
      for (const [k, v] of Object.entries(res.headers)) {
        if (v === undefined) continue;
        for (const one of Array.isArray(v) ? v : [v]) h.append(k, one);
      }
      const status = res.statusCode ?? 502;
      const empty = method === "HEAD" || status === 204 || status === 304;
      if (empty) res.resume();
      resolve(new Response(empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), { status, statusText: res.statusMessage ?? "", headers: h }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** OpenSSL's verdicts on a server certificate, as what to change. */
const CERT_CODES: Record<string, string> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "its certificate is not signed by a trusted CA",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "its certificate is not signed by a trusted CA",
  SELF_SIGNED_CERT_IN_CHAIN: "its certificate chain ends in a CA this client does not trust",
  DEPTH_ZERO_SELF_SIGNED_CERT: "its certificate is self-signed and not trusted",
  CERT_HAS_EXPIRED: "its certificate has expired",
  CERT_NOT_YET_VALID: "its certificate is not valid yet",
  ERR_TLS_CERT_ALTNAME_INVALID: "its certificate does not name this host",
};

/**
 * A TLS failure reaching `url` as one line naming the cause, or undefined when `e` is not
 * one. Node puts the code on the error or its cause; Bun on the error; Deno only in words.
 */
export function describeTlsError(e: unknown, url: string): string | undefined {
  const err = e as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = err?.cause?.code ?? err?.code;
  const words = `${err?.message ?? ""} ${err?.cause?.message ?? ""}`;
  const known = code !== undefined ? CERT_CODES[code] : undefined;
  if (known) return `TLS refused ${url}: ${known} (${code}); pass --ca with the CA that signed the node's certificate`;
  const cert = (/invalid peer certificate: \w+/i.exec(words) ?? /[^:;()]*certificate[^:;()]*/i.exec(words))?.[0]?.trim();
  if (cert) return `TLS refused ${url}: its certificate is not trusted (${cert}); pass --ca with the CA that signed the node's certificate`;
  if (code === "EPROTO" || /wrong version number|packet length too long/i.test(words)) return `TLS handshake with ${url} failed (${code ?? "protocol error"}): does the node serve ${url.startsWith("https:") ? "plain HTTP (use http://)" : "HTTPS (use https://)"}?`;
  return undefined;
}
