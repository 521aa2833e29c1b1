/**
 * The request-signing scheme (version 2), shared by the server's verifier (src/transport/auth.ts,
 * node:crypto) and every signer: src/transport/auth.ts for Node clients and peers, RequestSigner in
 * src/transport/fetch.ts for browsers and workers. No `node:` import: the browser bundle
 * carries this file.
 *
 * Signed string, HMAC-SHA256 keyed with the secret's bytes, lowercase hex:
 *
 *   wavekv-hmac-v2\nMETHOD\npath\ntimestamp\nnonce\nnode\ncontent-sha256
 *
 * `node` is the id of the node the request is for (a signature taken to another node is
 * refused there); `content-sha256` is the hex SHA-256 of the body, sent in a header so the
 * server can verify the signature before it reads a byte of body (docs/PROTOCOL.md,
 * "HTTP authentication").
 *
 * A client credential (src/transport/credentials.ts) signs the same string with its own
 * secret and names itself in `x-wavekv-key`; without that header the key is the cluster secret.
 */
export const AUTH_SCHEME = "wavekv-hmac-v2";

export const AUTH_HEADERS = {
  scheme: "x-wavekv-auth",
  timestamp: "x-wavekv-timestamp",
  nonce: "x-wavekv-nonce",
  node: "x-wavekv-node",
  contentSha256: "x-wavekv-content-sha256",
  signature: "x-wavekv-signature",
  /** Optional: the client credential whose secret keyed the MAC (absent: the cluster secret). */
  key: "x-wavekv-key",
} as const;

/** Canonical encodings: anything else is refused, so one MAC has exactly one spelling. */
export const CANONICAL = {
  hex64: /^[0-9a-f]{64}$/,
  nonce: /^[0-9a-f]{16,64}$/,
  timestamp: /^(0|[1-9][0-9]{0,15})$/,
  node: /^(0|[1-9][0-9]{0,9})$/,
} as const;

export function signedString(method: string, path: string, timestamp: string, nonce: string, node: number | string, contentSha256: string): string {
  return `${AUTH_SCHEME}\n${method.toUpperCase()}\n${path}\n${timestamp}\n${nonce}\n${node}\n${contentSha256}`;
}

/**
 * The headers of one signed request, given its MAC (hex) computed over `signedString`;
 * `key` names the client credential that keyed it (none: the cluster secret).
 */
export function authHeaders(timestamp: string, nonce: string, node: number, contentSha256: string, signature: string, key?: string): Record<string, string> {
  return {
    ...(key === undefined ? {} : { [AUTH_HEADERS.key]: key }),
    [AUTH_HEADERS.scheme]: AUTH_SCHEME,
    [AUTH_HEADERS.timestamp]: timestamp,
    [AUTH_HEADERS.nonce]: nonce,
    [AUTH_HEADERS.node]: String(node),
    [AUTH_HEADERS.contentSha256]: contentSha256,
    [AUTH_HEADERS.signature]: signature,
  };
}
