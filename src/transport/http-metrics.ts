/**
 * GET /metrics: the node, its HTTP server and its SyncManager as Prometheus text
 * (version 0.0.4). Read-only: every figure comes from the module that owns it.
 */
import type { Node } from "../node/node.js";
import type { SyncHandler } from "./transport.js";
import type { PushStreams } from "./push-stream.js";

/** Request body bytes held and read by the server (its body budget), and 503s for a spent budget. */
export interface BodyGauge { buffered: number; read: number; busy: number }

/** What /metrics reads from a SyncManager, when the handler is one. */
interface SyncMetricsSource {
  stats?: { rounds: number; roundFailures: number; handled: number; handleFailures: number; pushesSent: number; bytesSent: number; bytesReceived: number };
  links?(): { peer: number; rounds: number; failures: number; bytesSent: number; bytesReceived: number; consecutiveFailures: number }[];
}

export function renderMetrics(node: Node, sync: SyncHandler, counters: Record<string, number>, gauge: BodyGauge, streams: PushStreams): string {
  const s = node.status();
  const out: string[] = [];
  const metric = (name: string, type: "gauge" | "counter", help: string, samples: [string, number][]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of samples) out.push(`${name}${labels} ${v}`);
  };
  metric("wavekv_keys", "gauge", "Live keys.", [["", s.keys]]);
  metric("wavekv_tombstones", "gauge", "Deleted keys still held.", [["", s.tombstones]]);
  metric("wavekv_bytes", "gauge", "Key and value bytes held, tombstones included.", [["", node.totalBytes]]);
  metric("wavekv_next_seq", "gauge", "The seq of the next local write.", [["", s.nextSeq]]);
  metric("wavekv_entries_merged_total", "counter", "Remote entries merged.", [["", s.entriesMerged]]);
  metric("wavekv_entries_rejected_total", "counter", "Remote entries refused.", [["", s.entriesRejected]]);
  metric("wavekv_kv_puts_total", "counter", "Writes through the HTTP API.", [["", counters.kvPuts!]]);
  metric("wavekv_kv_deletes_total", "counter", "Deletes through the HTTP API.", [["", counters.kvDeletes!]]);
  metric("wavekv_http_requests_total", "counter", "HTTP requests.", [["", counters.requests!]]);
  metric("wavekv_http_unauthorized_total", "counter", "Requests refused for a missing, wrong or replayed signature.", [["", counters.unauthorized!]]);
  metric("wavekv_http_forbidden_total", "counter", "Requests a client credential made outside its scope (403; the log names the credential).", [["", counters.forbidden!]]);
  metric("wavekv_http_buffered_bytes", "gauge", "Request body bytes held by in-flight requests (bounded by maxBufferedBytes).", [["", gauge.buffered]]);
  metric("wavekv_http_body_bytes_read_total", "counter", "Request body bytes read.", [["", gauge.read]]);
  metric("wavekv_http_busy_total", "counter", "Requests refused with 503 because the body budget was spent.", [["", gauge.busy]]);
  metric("wavekv_bad_envelopes_total", "counter", "Sync bodies refused as BAD_ENVELOPE.", [["", counters.badEnvelopes!]]);
  const ps = streams.stats;
  metric("wavekv_push_streams", "gauge", "Live push streams open (GET /subscribe and the console feed).", [["", ps.subscribers]]);
  metric("wavekv_push_frames_dropped_total", "counter", "Stream frames dropped because a subscriber read too slowly.", [["", ps.framesDropped]]);
  metric("wavekv_duplicate_ids", "gauge", "Node ids claimed by a second node (another uuid): its requests are refused. 0 normally.", [["", s.duplicateIds.length]]);
  metric("wavekv_refused_by_peers", "gauge", "Peers refusing this node's requests because they hold another uuid for its id: writes here do not reach them. 0 normally.", [["", s.refusedBy.length]]);
  metric("wavekv_peer_ack", "gauge", "How far this node covers the peer's writes.", s.peers.map((p) => [`{peer="${p.id}"}`, p.ack]));
  metric("wavekv_peer_reported_ack", "gauge", "How far the peer reported covering this node's writes.", s.peers.map((p) => [`{peer="${p.id}"}`, p.peerAck]));
  metric("wavekv_peer_heard_from", "gauge", "1 once the peer has been heard from.", s.peers.map((p) => [`{peer="${p.id}"}`, p.heardFrom ? 1 : 0]));
  const src = sync as SyncHandler & SyncMetricsSource;
  if (src.stats) {
    metric("wavekv_sync_requests_handled_total", "counter", "Sync requests and pushes served.", [["", src.stats.handled]]);
    metric("wavekv_sync_pushes_sent_total", "counter", "Opportunistic pushes sent.", [["", src.stats.pushesSent]]);
  }
  if (typeof src.links === "function") {
    const links = src.links();
    metric("wavekv_sync_rounds_total", "counter", "Sync rounds started with the peer.", links.map((l) => [`{peer="${l.peer}"}`, l.rounds]));
    metric("wavekv_sync_errors_total", "counter", "Sync rounds with the peer that failed.", links.map((l) => [`{peer="${l.peer}"}`, l.failures]));
    metric("wavekv_sync_sent_bytes_total", "counter", "Bytes sent to the peer in rounds.", links.map((l) => [`{peer="${l.peer}"}`, l.bytesSent]));
    metric("wavekv_sync_received_bytes_total", "counter", "Bytes received from the peer in rounds.", links.map((l) => [`{peer="${l.peer}"}`, l.bytesReceived]));
    metric("wavekv_sync_consecutive_failures", "gauge", "Failed rounds in a row (0: reachable).", links.map((l) => [`{peer="${l.peer}"}`, l.consecutiveFailures]));
  }
  if (!node.closed) {
    // Per-peer lag (Node.replication(), docs/design/0029); a peer without a figure gets no sample.
    const peers = node.replication().peers;
    const perPeer = (value: (p: (typeof peers)[number]) => number | null): [string, number][] =>
      peers.flatMap((p) => { const v = value(p); return v === null ? [] : [[`{peer="${p.peer}"}`, v] as [string, number]]; });
    metric("wavekv_peer_entries_behind", "gauge", "Writes of this node the peer has not confirmed (this node's last seq minus the peer's ack of it).", perPeer((p) => p.entriesBehind));
    metric("wavekv_peer_bytes_behind", "gauge", "Key and value bytes of those writes (a lower bound when some predate this process).", perPeer((p) => p.bytesBehind));
    metric("wavekv_peer_last_contact_timestamp_seconds", "gauge", "When an envelope of the peer was last merged here (0: not since start).", perPeer((p) => p.lastContactAt / 1000));
    metric("wavekv_peer_round_seconds", "gauge", "Duration of the last sync round with the peer.", perPeer((p) => (p.link?.lastRoundMs ?? null) === null ? null : p.link!.lastRoundMs! / 1000));
  }
  const st = node.storageStats();
  if (st) {
    metric("wavekv_wal_bytes", "gauge", "Size of the write-ahead log.", [["", st.walBytes]]);
    const h = st.fsyncLatency;
    out.push("# HELP wavekv_fsync_seconds Latency of WAL fsyncs (group commit).", "# TYPE wavekv_fsync_seconds histogram");
    let cumulative = 0;
    h.bounds.forEach((b, i) => { cumulative += h.counts[i]!; out.push(`wavekv_fsync_seconds_bucket{le="${b / 1000}"} ${cumulative}`); });
    out.push(`wavekv_fsync_seconds_bucket{le="+Inf"} ${h.count}`, `wavekv_fsync_seconds_sum ${h.sum / 1000}`, `wavekv_fsync_seconds_count ${h.count}`);
  }
  return out.join("\n") + "\n";
}
