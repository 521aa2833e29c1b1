/**
 * `wavekv serve`: one node with HTTP sync and the key-value API, until SIGINT/SIGTERM.
 *
 *   const running = await startServer({ id: 1, port: 8001, dir: "./data", peers: { 2: "http://127.0.0.1:8002" } });
 *   await running.stop();
 *
 * Address book: this node publishes only its own address, under `__wavekv/peers/<id>`,
 * and it replicates, so a node configured with one seed address learns every other node's
 * address and discovers it as a peer (tentative and bounded, like a NATS announcement: on
 * record once it makes a request). Addresses given with `--peer` stay local to the transport.
 * A learned address is a candidate: the transport keeps the one a peer answered at until
 * the candidate answers (src/transport/fetch.ts), so a bogus entry cannot cut a link.
 *
 * The web console (src/app/console.ts) is at GET / unless `console: false`.
 */
import { WebConsole } from "./console.js";
import { HttpTransport, PEER_ADDRESS_PREFIX, serveHttp, type HttpServer } from "../transport/http.js";
import { warningLog } from "../core/warnings.js";
import { unrefTimer } from "../core/abort.js";
import { Node } from "../node/node.js";
import { SyncManager } from "../node/manager.js";
import type { Entry, FsyncPolicy, Limits } from "../core/types.js";
import { WaveKVError } from "../core/errors.js";
import type { Transport } from "../transport/transport.js";
import type { NatsTransport } from "../transport/nats.js";
import { fetchWithCa, type TlsServerOptions } from "../transport/tls.js";
import type { ClientCredential } from "../transport/credentials.js";
import { parseNatsConf, type NatsConf } from "../transport/nats-conf.js";
import { readFileSync } from "node:fs";

export interface ServerConfig {
  /** This node's id, unique in the cluster. */
  id: number;
  /** Port to listen on; 0 picks a free one (`RunningServer.http.port` says which). */
  port: number;
  /**
   * Address to bind.
   * @defaultValue `"127.0.0.1"` (this machine only)
   */
  host?: string;
  /**
   * Data directory (WAL and snapshots).
   * @defaultValue none: the node lives in memory and forgets everything at stop
   */
  dir?: string;
  /**
   * Peer id → base URL, to reach at start; the replicated address book adds the rest.
   * @defaultValue `{}` (no peers until one is learned)
   */
  peers?: Record<number, string>;
  /**
   * The cluster's shared secret: every request but /status, /metrics and the console's page is signed.
   * @defaultValue none: requests are not signed, and the server warns that anyone who reaches the port can write
   */
  secret?: string;
  /**
   * Client credentials (read-only or read-write, optionally limited to key prefixes) accepted
   * besides `secret`, which then stays the peers' key (`ServeOptions.credentials`). Needs `secret`.
   * @defaultValue none
   */
  credentials?: readonly ClientCredential[];
  /**
   * Serve HTTPS (`readTlsFiles` reads `--tls-cert`, `--tls-key`, `--tls-ca`); its `ca`, when
   * set, is what this node trusts when it reaches https:// peers.
   * @defaultValue none: plain HTTP
   */
  tls?: TlsServerOptions;
  /**
   * NATS server URL(s) (needs the optional package `@nats-io/transport-node`): peers
   * announced on the cluster's NATS subjects are synced over NATS, the others over HTTP.
   * An announced id is a *discovered* peer (bounded by sync.maxDiscoveredPeers, forgotten
   * after `natsForgetAfterMs` of silence), never a configured one. A URL with credentials
   * (`user:pass@`) is refused: put them in `natsConf`.
   * @defaultValue none: HTTP only
   */
  nats?: string;
  /**
   * NATS credentials and TLS (src/transport/nats-conf.ts; the CLI's `--nats-conf FILE`).
   * @defaultValue none: no credentials, plain TCP
   */
  natsConf?: NatsConf;
  /**
   * A discovered NATS peer that has not announced for this long is forgotten.
   * @defaultValue `600_000` (10 min)
   */
  natsForgetAfterMs?: number;
  /**
   * Without `nats`: a peer learned from the address book that has made no request for this
   * long after it was learned is forgotten (it never reached the log), so forged entries
   * cannot hold the discovery bound (`maxDiscoveredPeers`) against real nodes for ever.
   * @defaultValue `600_000` (10 min)
   */
  bookForgetAfterMs?: number;
  /**
   * Cluster name: the NATS subject namespace (`wavekv.<cluster>.*`); required with `nats`.
   * @defaultValue none
   */
  cluster?: string;
  /**
   * When the WAL is fsynced (`NodeOptions.fsync`).
   * @defaultValue `"always"` (the `serve` CLI's `--fsync` defaults to the same)
   */
  fsync?: FsyncPolicy;
  /**
   * The steady interval between sync rounds with each peer (`SyncManager` `intervalMs`).
   * @defaultValue `1_000` (1 s) from code; the `serve` CLI's `--interval` defaults to `30_000` (30 s)
   */
  intervalMs?: number;
  /**
   * Per-request timeout, for the HTTP transport and for each sync round.
   * @defaultValue `5_000` (5 s) from code; the `serve` CLI's `--timeout` defaults to `10_000` (10 s)
   */
  timeoutMs?: number;
  /**
   * How long local writes gather before one push carries them to every peer.
   * @defaultValue `200` ms
   */
  pushWindowMs?: number;
  /** The URL other nodes should use for this one (default http://host:port). */
  advertise?: string;
  /** Serve the web console at GET / (default true). */
  console?: boolean;
  /** The node's limits (`NodeOptions.limits`); unset fields keep DEFAULT_LIMITS. */
  limits?: Partial<Limits>;
  /**
   * Open even though snapshot or WAL files the data directory says existed are missing
   * (MISSING_SNAPSHOT, MISSING_WAL): start from what remains, warn, re-sync from peers.
   * @defaultValue false
   */
  acceptDataLoss?: boolean;
  /**
   * Largest request body accepted (`ServeOptions.maxBodyBytes`).
   * @defaultValue `64 << 20` (64 MiB)
   */
  maxBodyBytes?: number;
  /**
   * Bytes all request bodies in flight may buffer together (`ServeOptions.maxBufferedBytes`).
   * @defaultValue `256 << 20` (256 MiB), and never less than `maxBodyBytes`
   */
  maxBufferedBytes?: number;
  /**
   * Where the server's log lines (start, warnings) go.
   * @defaultValue `console.log`
   */
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
  const warn = warningLog((m) => log(`warning: ${m}`));
  const node = await Node.open({
    id: cfg.id,
    dir: cfg.dir,
    fsync: cfg.fsync ?? "always",
    peers: Object.keys(cfg.peers ?? {}).map(Number),
    limits: cfg.limits,
    storage: cfg.acceptDataLoss ? { acceptDataLoss: true } : undefined,
    onWarning: warn,
  });
  try {
    return await run(cfg, node, log, warn);
  } catch (err) {
    await node.close().catch(() => undefined);
    throw err;
  }
}

async function run(cfg: ServerConfig, node: Node, log: (line: string) => void, warn: (m: string) => void): Promise<RunningServer> {
  const forgetAfter = cfg.bookForgetAfterMs ?? 600_000;
  if (!(forgetAfter >= 0 && forgetAfter <= 2 ** 31 - 1)) throw new WaveKVError("INVALID_ARGUMENT", `bookForgetAfterMs ${forgetAfter}: 0 to 2^31 - 1 ms`);
  const transport = new HttpTransport({ peers: cfg.peers, secret: cfg.secret, timeoutMs: cfg.timeoutMs ?? 5_000, ca: cfg.tls?.ca });
  const nats = cfg.nats === undefined ? undefined : await connectNats(cfg, warn);
  // A peer heard on NATS is reached over NATS (one publish per push), any other over HTTP.
  const routed: Transport = !nats ? transport : {
    request: (p, b, o) => (nats.knows(p) ? nats : transport).request(p, b, o),
    push: (p, b, o) => (nats.knows(p) ? nats.push(p, b, o) : transport.push(p, b, o)),
  };
  // Declared before the manager, whose onRound reports to it (the console needs the manager too).
  let web: WebConsole | undefined = undefined;
  const sync = new SyncManager(node, routed, { intervalMs: cfg.intervalMs ?? 1_000, timeoutMs: cfg.timeoutMs ?? 5_000, pushWindowMs: cfg.pushWindowMs ?? 200, onWarning: warn, onRound: (r) => web?.recordRounds(r) });
  const addressOf = (p: number) => transport.addressOf(p);
  if (cfg.console !== false) web = new WebConsole({ node, sync, addressOf, dir: cfg.dir, fsync: cfg.fsync ?? "always", secretRequired: cfg.secret !== undefined, ...(cfg.tls?.ca ? { fetch: fetchWithCa(cfg.tls.ca) } : {}) });
  const http = await serveHttp(sync, { node, port: cfg.port, host: cfg.host ?? "127.0.0.1", secret: cfg.secret, credentials: cfg.credentials, tls: cfg.tls, console: web, addressOf, maxBodyBytes: cfg.maxBodyBytes, maxBufferedBytes: cfg.maxBufferedBytes, onWarning: (m) => log(`warning: ${m}`) });
  const self = cfg.advertise ?? http.url;
  // Announced ids are discovered members (bounded, not durable until they make a request), never configured ones.
  await nats?.serve(sync, { membership: node, onPeer: (p) => sync.syncSoon(p) });

  // A new peer or a new address is news: a round with that peer now, not an interval
  // later (nodes 2 and 3 started with node 1's address meet within a second, not a minute).
  const learned = new Map<number, string>();
  const learn = async (e: Entry) => {
    const peer = Number(e.key.slice(PEER_ADDRESS_PREFIX.length));
    if (!Number.isInteger(peer) || peer === cfg.id || !e.value) return;
    const url = new TextDecoder().decode(e.value);
    if (learned.get(peer) === url && node.peers().includes(peer)) return;
    learned.set(peer, url);
    transport.learnPeer(peer, url);
    // An address is discovery, never configuration (with or without NATS): anyone holding
    // the secret can write book entries, so each is a tentative member under
    // sync.maxDiscoveredPeers, logged only once that peer makes a request (a restart
    // forgets the rest). `--peer` peers are configured at open. docs/design/0025.
    if (!node.peers().includes(peer)) {
      try {
        node.discoverPeer(peer);
      } catch (err) {
        // The bound is full: membership warned once already; one line per entry would flood.
        if (err instanceof WaveKVError && err.code === "TOO_MANY_PEERS") return;
        throw err;
      }
    }
    sync.syncSoon(peer);
  };
  // Only our own entry: `__wavekv/peers/<N>` is admitted from node N alone (src/core/reserved.ts).
  const mine = node.get(PEER_ADDRESS_PREFIX + cfg.id);
  if (!mine?.value || new TextDecoder().decode(mine.value) !== self) {
    await node.put(PEER_ADDRESS_PREFIX + cfg.id, self).catch((e: Error) => warn(`could not publish this node's address (peers must be given it with --peer): ${e.message}`));
  }
  for (const e of node.scan(PEER_ADDRESS_PREFIX)) await learn(e).catch((err: Error) => warn(`address book entry ${e.key} not used: ${err.message}`));
  const watching = new AbortController();
  void (async () => {
    for await (const e of node.watch(PEER_ADDRESS_PREFIX, { signal: watching.signal })) {
      await learn(e).catch((err: Error) => warn(`address book entry ${e.key} not used: ${err.message}`));
    }
  })().catch(() => undefined);

  // Without NATS nothing else forgets a tentative book peer (NatsTransport does, each announce).
  const forgetting = nats ? undefined : setInterval(() => void node.forgetSilentPeers(forgetAfter).catch((e: Error) => warn(e.message)), Math.min(60_000, Math.max(100, forgetAfter / 3)));
  unrefTimer(forgetting);

  await sync.bootstrap().then((r) => web?.recordRounds(r)).catch((e) => log(`bootstrap incomplete: ${(e as Error).message} (sync loop will retry)`));
  sync.start();
  log(`node ${cfg.id} (${node.uuid}) serving ${http.url}${web ? ` (console: ${http.url}/)` : ""}${nats ? ` and NATS ${cfg.nats} cluster ${cfg.cluster}` : ""}${cfg.dir ? ` with data in ${cfg.dir}` : " in memory"}; peers ${node.peers().join(", ") || "none"}`);

  let stopping: Promise<void> | null = null;
  const stop = () =>
    (stopping ??= (async () => {
      watching.abort();
      clearInterval(forgetting);
      web?.close();
      await sync.stop();
      await nats?.close();
      await http.close();
      await node.close();
    })());
  return { node, sync, http, stop };
}

async function connectNats(cfg: ServerConfig, warn: (m: string) => void): Promise<NatsTransport> {
  if (!cfg.cluster) throw new WaveKVError("INVALID_ARGUMENT", "--nats needs --cluster NAME (the NATS subject namespace of this cluster)");
  const servers = cfg.nats!.split(",");
  // Credentials in a URL would show in `ps` and in the start-up line: only the settings file carries them.
  if (servers.some((u) => /^[a-z]+:\/\/[^/]*@/i.test(u))) throw new WaveKVError("INVALID_ARGUMENT", "--nats URL with credentials (user:pass@): put them in a file given with --nats-conf (user = ..., password = ...), which `ps` does not show");
  const { NatsTransport } = await import("../transport/nats.js");
  return NatsTransport.connect({ servers, cluster: cfg.cluster, node: cfg.id, secret: cfg.secret, conf: cfg.natsConf, timeoutMs: cfg.timeoutMs ?? 5_000, forgetAfterMs: cfg.natsForgetAfterMs, onWarning: warn });
}

/** `--nats-conf FILE`: the settings, with a `creds` file read in. Errors name the file, never a value. */
export function readNatsConf(file: string): NatsConf {
  const read = (f: string, what: string) => {
    try { return readFileSync(f); } catch (err) { throw new WaveKVError("INVALID_ARGUMENT", `cannot read the NATS ${what} ${f}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`); }
  };
  const conf = parseNatsConf(read(file, "settings file").toString("utf8"));
  return conf.credsFile === undefined ? conf : { ...conf, creds: new Uint8Array(read(conf.credsFile, "creds file")) };
}

/**
 * For a command-line process that runs a server: calls `stop` once, on SIGINT, SIGTERM, or
 * when the npm process that started this one is gone. `npx wavekv serve` and `npm run`
 * start npm → sh → node, and npm forwards SIGTERM to the sh only, which dies without
 * passing it on: the node would live on as an orphan holding its port. So, under npm
 * (`npm_lifecycle_event` set), a parent that changes (we were re-parented) means stop.
 * Cost: one getppid every 500 ms on an unref'd timer. Outside npm nothing is polled: a
 * server started with `cmd &` from a shell that then exits keeps running, as it should.
 */
export function stopOnProcessEnd(stop: (why: string) => void): void {
  let stopped = false;
  let timer: ReturnType<typeof setInterval> | undefined;
  const once = (why: string) => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    stop(why);
  };
  process.once("SIGINT", () => once("SIGINT"));
  process.once("SIGTERM", () => once("SIGTERM"));
  if (process.env.npm_lifecycle_event === undefined) return;
  const parent = process.ppid;
  timer = setInterval(() => { if (process.ppid !== parent) once("the exit of the npm process that started it"); }, 500);
  timer.unref?.();
}
