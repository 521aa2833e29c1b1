/**
 * `wavekv serve`: one node with HTTP sync and the key-value API, until SIGINT/SIGTERM.
 *
 *   const running = await startServer({ id: 1, port: 8001, dir: "./data", peers: { 2: "http://127.0.0.1:8002" } });
 *   await running.stop();
 *
 * Peer addresses given with `--peer` are written to the store under
 * `__wavekv/peers/<id>` (and so is this node's own address), so they replicate: a new
 * node configured with one seed address learns every other node's address and adds it
 * as a peer.
 *
 * The web console (src/console.ts) is at GET / unless `console: false`.
 */
import { WebConsole } from "./console.js";
import { HttpTransport, PEER_ADDRESS_PREFIX, serveHttp, type HttpServer } from "./http.js";
import { Node } from "./node.js";
import { SyncManager } from "./sync.js";
import type { FsyncPolicy } from "./types.js";

export interface ServerConfig {
  id: number;
  port: number;
  host?: string;
  dir?: string;
  peers?: Record<number, string>;
  secret?: string;
  fsync?: FsyncPolicy;
  intervalMs?: number;
  timeoutMs?: number;
  pushWindowMs?: number;
  /** The URL other nodes should use for this one (default http://host:port). */
  advertise?: string;
  /** Serve the web console at GET / (default true). */
  console?: boolean;
  log?: (line: string) => void;
}

export interface RunningServer {
  node: Node;
  sync: SyncManager;
  http: HttpServer;
  stop(): Promise<void>;
}

export async function startServer(cfg: ServerConfig): Promise<RunningServer> {
  const log = cfg.log ?? ((line: string) => console.log(line));
  const node = await Node.open({
    id: cfg.id,
    dir: cfg.dir,
    fsync: cfg.fsync ?? "always",
    peers: Object.keys(cfg.peers ?? {}).map(Number),
    onWarning: (m) => log(`warning: ${m}`),
  });
  const addressOf = (peer: number) => {
    const e = node.get(PEER_ADDRESS_PREFIX + peer);
    return e?.value ? new TextDecoder().decode(e.value) : undefined;
  };
  const transport = new HttpTransport({ peers: cfg.peers, secret: cfg.secret, timeoutMs: cfg.timeoutMs ?? 5_000, resolve: addressOf });
  // Declared before the manager, whose onRound reports to it (the console needs the manager too).
  let web: WebConsole | undefined = undefined;
  const sync = new SyncManager(node, transport, { intervalMs: cfg.intervalMs ?? 1_000, timeoutMs: cfg.timeoutMs ?? 5_000, pushWindowMs: cfg.pushWindowMs ?? 200, onWarning: (m) => log(`warning: ${m}`), onRound: (r) => web?.recordRounds(r) });
  if (cfg.console !== false) web = new WebConsole({ node, sync, addressOf: (p) => transport.addressOf(p), dir: cfg.dir, fsync: cfg.fsync ?? "always", secretRequired: cfg.secret !== undefined });
  const http = await serveHttp(sync, { node, port: cfg.port, host: cfg.host ?? "127.0.0.1", secret: cfg.secret, console: web, onWarning: (m) => log(`warning: ${m}`) });
  const self = cfg.advertise ?? http.url;

  // Address book: ours and the configured ones, replicated; learned ones become peers.
  const learn = async (peer: number, url: string) => {
    if (peer === cfg.id) return;
    transport.setPeer(peer, url);
    if (!node.peers().includes(peer)) await node.addPeer(peer);
  };
  const publish = async (peer: number, url: string) => {
    if (addressOf(peer) !== url) await node.put(PEER_ADDRESS_PREFIX + peer, url);
  };
  await publish(cfg.id, self);
  // Only our own entry: `__wavekv/peers/<N>` is admitted from node N alone (src/reserved.ts).
  for (const e of node.scan(PEER_ADDRESS_PREFIX)) {
    const peer = Number(e.key.slice(PEER_ADDRESS_PREFIX.length));
    if (Number.isInteger(peer) && e.value) await learn(peer, new TextDecoder().decode(e.value));
  }
  const watching = new AbortController();
  void (async () => {
    for await (const e of node.watch(PEER_ADDRESS_PREFIX, { signal: watching.signal })) {
      const peer = Number(e.key.slice(PEER_ADDRESS_PREFIX.length));
      if (Number.isInteger(peer) && e.value) await learn(peer, new TextDecoder().decode(e.value)).catch(() => undefined);
    }
  })();

  await sync.bootstrap().then((r) => web?.recordRounds(r)).catch((e) => log(`bootstrap incomplete: ${(e as Error).message} (sync loop will retry)`));
  sync.start();
  log(`node ${cfg.id} (${node.uuid}) serving ${http.url}${web ? ` (console: ${http.url}/)` : ""}${cfg.dir ? ` with data in ${cfg.dir}` : " in memory"}; peers ${node.peers().join(", ") || "none"}`);

  let stopping: Promise<void> | null = null;
  const stop = () =>
    (stopping ??= (async () => {
      watching.abort();
      web?.close();
      await sync.stop();
      await http.close();
      await node.close();
    })());
  return { node, sync, http, stop };
}
