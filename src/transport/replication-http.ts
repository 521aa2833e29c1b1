/**
 * The HTTP side of replication status (docs/design/0029), mounted by src/transport/http.ts:
 *
 * - `PUT` / `DELETE /kv/<key>?wait=all|N[&timeoutMs=10000]`: the write, then the server waits until
 *   that many peers confirmed it (Node.replicated) and answers 200 with the entry; after
 *   `timeoutMs` (or if the peers left cannot make it) 504 with code NOT_REPLICATED, a
 *   one-line reason, and the entry: the write itself was acknowledged either way. A bad
 *   `wait` / `timeoutMs` is refused with 400 before anything is written.
 * - `GET /replication` (signed like /kv: error messages may name peer addresses) →
 *   Node.replication() as JSON. /status stays public and small: its peers' `peerAck` already
 *   says how far each confirmed.
 */
import type { ServerResponse } from "node:http";
import { WaveKVError, isWaveKVError } from "../core/errors.js";
import type { Entry } from "../core/types.js";
import type { Node } from "../node/node.js";

export interface ReplicationWait {
  peers: "all" | number;
  timeoutMs: number;
}

const DEFAULT_WAIT_MS = 10_000;
/** Longest wait a request may ask for: 10 minutes. */
const MAX_WAIT_MS = 600_000;

/** `wait` and `timeoutMs` of a PUT, checked before the write (INVALID_ARGUMENT → 400); null without `wait`. */
export function replicationWait(query: URLSearchParams, node: Node): ReplicationWait | null {
  const wait = query.get("wait"), timeout = query.get("timeoutMs");
  if (wait === null) {
    if (timeout !== null) throw new WaveKVError("INVALID_ARGUMENT", "timeoutMs bounds a wait: give wait=all or wait=<n> with it");
    return null;
  }
  if (wait !== "all" && !/^(0|[1-9][0-9]{0,5})$/.test(wait)) throw new WaveKVError("INVALID_ARGUMENT", `wait must be "all" or a number of peers, got ${JSON.stringify(wait.slice(0, 40))}`);
  const peers = wait === "all" ? "all" : Number(wait);
  const have = node.peers().length;
  if (peers !== "all" && peers > have) throw new WaveKVError("INVALID_ARGUMENT", `wait=${peers} asks for more confirmations than node ${node.id} has peers (${have}); nothing was written`);
  if (timeout !== null && !/^[1-9][0-9]{0,8}$/.test(timeout)) throw new WaveKVError("INVALID_ARGUMENT", `timeoutMs must be a whole number of ms ≥ 1, got ${JSON.stringify(timeout.slice(0, 40))}`);
  const timeoutMs = timeout === null ? DEFAULT_WAIT_MS : Number(timeout);
  if (timeoutMs > MAX_WAIT_MS) throw new WaveKVError("INVALID_ARGUMENT", `timeoutMs ${timeoutMs} is over the ${MAX_WAIT_MS} ms a request may wait`);
  return { peers, timeoutMs };
}

/**
 * Waits for `entry` to be confirmed as `wait` asks: [200, the entry] or [504, NOT_REPLICATED
 * with the entry]. A client that hangs up ends the wait. `entryText`: the entry as the
 * server answers it (JSON).
 */
export async function replicatedReply(node: Node, entry: Entry, wait: ReplicationWait, res: ServerResponse, entryText: string): Promise<[number, string]> {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(new Error(`no confirmation within ${wait.timeoutMs} ms`)), wait.timeoutMs);
  const gone = () => ctrl.abort(new Error("the client hung up"));
  res.once("close", gone);
  try {
    await node.replicated(entry, { peers: wait.peers, signal: ctrl.signal });
    return [200, entryText];
  } catch (err) {
    if (!isWaveKVError(err)) throw err;
    const status = err.code === "NOT_REPLICATED" ? 504 : err.code === "CLOSED" ? 503 : 500;
    const message = `written on node ${node.id} (seq ${entry.seq}) and acknowledged there; ${err.message.replace(/^[A-Z_]+: /, "")}`;
    return [status, `{"error":${JSON.stringify(err.code)},"code":${JSON.stringify(err.code)},"message":${JSON.stringify(message)},"entry":${entryText}}`];
  } finally {
    clearTimeout(timer);
    res.off("close", gone);
  }
}
