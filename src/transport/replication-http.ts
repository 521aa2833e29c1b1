/**
 * The HTTP side of replication status (docs/design/0029), mounted by src/transport/http.ts:
 *
 * - `PUT /kv/<key>?wait=all|N[&timeoutMs=10000]`: the write, then the server waits until
 *   that many peers confirmed it (Node.replicated) and answers 200 with the entry; after
 *   `timeoutMs` (or if the peers left cannot make it) 504 with code NOT_REPLICATED, a
 *   one-line reason, and the entry: the write itself was acknowledged either way. A bad
 *   `wait` / `timeoutMs` is refused with 400 before anything is written.
 * - `GET /replication` (signed like /kv: error messages may name peer addresses) →
 *   Node.replication() as JSON. /status stays public and small: its peers' `peerAck` already
 *   says how far each confirmed.
 * - /metrics gauges per peer: writes and bytes behind, last contact, last round time.
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

/** Per-peer lag gauges for /metrics (Prometheus text lines); none once the node is closed. */
export function replicationMetrics(node: Node): string[] {
  if (node.closed) return [];
  const r = node.replication();
  const out: string[] = [];
  const gauge = (name: string, help: string, value: (p: (typeof r.peers)[number]) => number | null) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const p of r.peers) {
      const v = value(p);
      if (v !== null) out.push(`${name}{peer="${p.peer}"} ${v}`);
    }
  };
  gauge("wavekv_peer_entries_behind", "Writes of this node the peer has not confirmed (this node's last seq minus the peer's ack of it).", (p) => p.entriesBehind);
  gauge("wavekv_peer_bytes_behind", "Key and value bytes of those writes (a lower bound when some predate this process).", (p) => p.bytesBehind);
  gauge("wavekv_peer_last_contact_timestamp_seconds", "When an envelope of the peer was last merged here (0: not since start).", (p) => p.lastContactAt / 1000);
  gauge("wavekv_peer_round_seconds", "Duration of the last sync round with the peer.", (p) => (p.link?.lastRoundMs ?? null) === null ? null : p.link!.lastRoundMs! / 1000);
  return out;
}
