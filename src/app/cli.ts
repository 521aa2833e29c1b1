#!/usr/bin/env node
/**
 * The `wavekv` command line. Every command has `--help`.
 *
 *   wavekv serve --id 1 --port 8001 --peer 2=http://127.0.0.1:8002 --dir ./data
 *   wavekv put k v --url http://127.0.0.1:8001
 *   wavekv demo
 */
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { existsSync, readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { isNodeId, type FsyncPolicy } from "../core/types.js";
import { parseTtl, readDuration } from "../core/duration.js";

function parseId(v: string): number {
  const n = Number(v);
  if (!isNodeId(n)) throw new InvalidArgumentError("must be an integer in [0, 4294967295]");
  return n;
}
function parsePeer(v: string, acc: Record<number, string> = {}): Record<number, string> {
  const m = /^(\d+)=(https?:\/\/.+)$/.exec(v);
  if (!m) throw new InvalidArgumentError("expected id=url, e.g. 2=http://127.0.0.1:8002");
  acc[parseId(m[1]!)] = m[2]!;
  return acc;
}
function parseFsync(v: string): FsyncPolicy {
  if (v === "always" || v === "never") return v;
  const ms = Number(v);
  if (!Number.isFinite(ms) || ms <= 0) throw new InvalidArgumentError('expected "always", "never" or an interval in ms');
  return { intervalMs: ms };
}
function parsePositive(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("must be a positive number");
  return n;
}
function parseCount(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError("must be a positive integer");
  return n;
}
/** `--timeout` of put --wait: 10s, 500ms, 2m, or plain ms. */
function parseDuration(v: string): number {
  const ms = readDuration(v, { decimals: true });
  if (!(ms >= 1 && ms <= 600_000)) throw new InvalidArgumentError("expected a duration from 1ms to 10m, e.g. 10s, 500ms, 2m");
  return ms;
}
function parseWait(v: string): "all" | number {
  if (v === "all") return v;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('expected "all" or a number of peers');
  return n;
}
function readSecret(file: string | undefined, env = false): string | undefined {
  // Client commands also take the secret from WAVEKV_SECRET (a file wins): secrets stay out of `ps`.
  if (file === undefined) return env ? envSecret() : undefined;
  let s: string;
  try {
    s = readFileSync(file, "utf8").trim();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a directory" : code === "EACCES" ? "permission denied" : String(code ?? e);
    throw new Error(`cannot read the secret file ${file} (${why}): pass --secret-file with the path of a file holding the cluster's secret`);
  }
  if (s.length < 16) {
    throw new Error(`the secret in ${file} is ${s.length} characters; at least 16 are needed: write the cluster's secret there (a new cluster can use \`head -c 32 /dev/urandom | base64 > ${file}\`)`);
  }
  return s;
}

function envSecret(): string | undefined {
  const s = process.env.WAVEKV_SECRET?.trim();
  if (s === undefined || s === "") return undefined;
  if (s.length < 16) throw new Error(`WAVEKV_SECRET is ${s.length} characters; at least 16 are needed`);
  return s;
}

/** `serve`'s TLS files and client credentials (src/transport/tls.ts, credentials.ts), each mistake one line naming the flag or file. */
async function accessOptions(o: { tlsCert?: string; tlsKey?: string; tlsCa?: string; clientKey?: string[]; clientKeysFile?: string }, secret: string | undefined) {
  const { readTlsFiles } = await import("../transport/tls.js");
  const { parseClientKeys, parseClientKeysFile } = await import("../transport/credentials.js");
  if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) throw new Error(`--tls-cert and --tls-key go together: pass both (the certificate and its private key, PEM)`);
  if (o.tlsCa !== undefined && o.tlsCert === undefined) throw new Error(`--tls-ca is the CA this node trusts for its https:// peers: pass --tls-cert and --tls-key too`);
  const tls = o.tlsCert === undefined ? undefined : readTlsFiles({ cert: o.tlsCert, key: o.tlsKey!, ...(o.tlsCa === undefined ? {} : { ca: o.tlsCa }) });
  let text = "";
  if (o.clientKeysFile !== undefined) {
    try { text = readFileSync(o.clientKeysFile, "utf8"); } catch (e) { throw new Error(`cannot read the client keys file ${o.clientKeysFile} (${(e as NodeJS.ErrnoException).code ?? e}): pass --client-keys-file with a file of NAME:SECRET:ro|rw[:PREFIX] lines`); }
  }
  const credentials = o.clientKeysFile === undefined ? parseClientKeys(o.clientKey ?? []) : parseClientKeysFile(text, o.clientKeysFile, o.clientKey ?? []);
  if (credentials.length > 0 && secret === undefined) throw new Error(`--client-key needs --secret-file too: the cluster secret stays the peers' key, and without it nothing is checked`);
  return { ...(tls ? { tls } : {}), ...(credentials.length ? { credentials } : {}) };
}

/**
 * Refuses to start node `id` in a directory that holds only other nodes' data: an empty
 * node there looks like the data was lost. `--new-node` says it is meant. (Node.open allows
 * it: tests and embedders put several nodes in one directory on purpose.)
 */
async function checkDataDir(dir: string | undefined, id: number, newNode: boolean): Promise<void> {
  if (dir === undefined || newNode) return;
  const { nodeFilesIn } = await import("../storage/datadir.js");
  const found = nodeFilesIn(dir);
  if (found.size === 0 || found.has(id)) return;
  const ids = [...found.keys()];
  const names = [...found.values()].map((f) => f.find((n) => n.endsWith(".wal")) ?? f[0]).join(", ");
  const whose = ids.length === 1 ? `node ${ids[0]}'s data` : `the data of nodes ${ids.join(", ")}`;
  throw new Error(`${dir} holds ${whose} (${names}), not node ${id}'s: pass ${ids.map((i) => `--id ${i}`).join(" or ")}, or --new-node to start node ${id} beside ${ids.length === 1 ? "it" : "them"}`);
}

// dist/app/cli.js and package.json are siblings of dist/ both in a checkout and in the installed package.
const packageRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const { version } = JSON.parse(readFileSync(join(packageRoot, "package.json"), "utf8")) as { version: string };

const program = new Command("wavekv")
  .description("An embeddable, eventually consistent, leaderless replicated key-value store")
  .option("--debug", "print stack traces of errors")
  .version(version, "-V, --version", "print the version");

/** The options of the command that failed: what the user typed is what the advice names. */
let failedOptions: { url?: string; secretFile?: string; port?: number; host?: string; key?: string } = {};
program.hook("preAction", (_program, action) => { failedOptions = action.opts(); });

/** A 401 from a node, as what the user should change: the secret, or the clock. */
function describeUnauthorized(message: string): string {
  const { url, secretFile } = failedOptions;
  if (secretFile === undefined && !process.env.WAVEKV_SECRET) return `the node at ${url} accepts only signed requests: pass --secret-file with the cluster's secret`;
  // The node's reason follows the status (src/app/client.ts: "METHOD /path: 401 <reason>").
  const reason = /: 401 (?:unauthorized: )?(.*)$/.exec(message)?.[1] ?? message;
  if (/unknown credential|for credential/.test(reason)) return `the node at ${url} refused credential ${failedOptions.key} (${reason}): check --key and that --secret-file holds that credential's secret`;
  if (/timestamp/.test(reason)) return `the node at ${url} refused the request's time (${reason}): this machine's clock and the node's disagree; fix the clock (NTP) and retry`;
  return `the node at ${url} refused the signature (${reason}): pass --secret-file with the cluster's secret (${secretFile ?? "WAVEKV_SECRET"} holds another)`;
}

/** An OS error from binding the HTTP port, as the option to change. */
function describeListen(code: string): string | undefined {
  const { port, host } = failedOptions;
  if (code === "EADDRINUSE") return `port ${port} is taken${host === "127.0.0.1" ? "" : ` on ${host}`} (another wavekv serve?): pass --port with a free port (0 picks one), or stop what listens there`;
  if (code === "EACCES") return `port ${port} needs privileges here: pass --port above 1023`;
  if (code === "EADDRNOTAVAIL") return `${host} is not an address of this machine: pass --host with one of its addresses (127.0.0.1, 0.0.0.0 for all)`;
  return undefined;
}

/**
 * Any failure is one line on stderr and exit 1; `--debug` adds the stack. A refusal with a
 * code says what happened in words (SUPERSEDED names the entry that won), and a mistake the
 * user can fix names the option to change.
 */
function describeError(e: unknown): string {
  const err = e as { message?: string; code?: string; status?: number; syscall?: string; winner?: { value?: string; valueBase64?: string; node: number; timestamp: number } };
  const message = String(err?.message ?? e).split("\n")[0]!;
  if (err?.status === 401) return describeUnauthorized(message);
  if (err?.status === 403 && err.code === "FORBIDDEN") return `the node at ${failedOptions.url} refused: ${message.replace(/^.*: 403 (forbidden: )?/, "")}`;
  if (err?.syscall === "listen" && typeof err.code === "string") return describeListen(err.code) ?? message;
  if (err?.code === "SUPERSEDED" && err.winner) {
    const w = err.winner;
    const value = w.value !== undefined ? JSON.stringify(w.value) : w.valueBase64 !== undefined ? `(binary, base64 ${w.valueBase64.slice(0, 40)})` : "(deleted)";
    return `not written: a newer entry wins (value ${value}, written by node ${w.node} at ${new Date(w.timestamp).toISOString()}); ${message}`;
  }
  if (err?.code === "NOT_REPLICATED") return `written, not confirmed as asked (exit 1): ${message}`;
  if (err?.code === "CLOCK_SKEW") return `not written: this node's clock is ahead of the cluster; fix its clock (NTP) and retry. ${message}`;
  return message;
}

function fail(e: unknown): never {
  console.error(`wavekv: ${describeError(e)}`);
  if (process.argv.includes("--debug")) console.error((e as Error)?.stack ?? e);
  process.exit(1);
}

program
  .command("serve")
  .description("run a node with HTTP sync and a key-value API")
  .requiredOption("--id <id>", "this node's id (uint32)", parseId)
  .option("--port <port>", "port to listen on (0 picks one)", (v) => parseId(v), 8001)
  .option("--host <host>", "address to bind", "127.0.0.1")
  .option("--peer <id=url>", "a peer and its address (repeatable)", parsePeer, {})
  .option("--dir <dir>", "data directory (omit for an in-memory node)")
  .option("--secret-file <file>", "shared secret for HMAC request signing")
  .option("--tls-cert <file>", "serve HTTPS with this certificate (PEM; with --tls-key)")
  .option("--tls-key <file>", "the private key of --tls-cert (PEM)")
  .option("--tls-ca <file>", "the CA that signed the peers' certificates (PEM): trusted for https:// peers")
  .option("--client-key <name:secret:ro|rw[:prefix]>", "a client credential, read-only or read-write, optionally only keys under prefix (repeatable; needs --secret-file)", (v: string, acc: string[] = []) => [...acc, v])
  .option("--client-keys-file <file>", "client credentials, one NAME:SECRET:ro|rw[:PREFIX] a line (keeps secrets out of ps)")
  .addOption(new Option("--fsync <policy>", "always | never | <interval ms>").default("always").argParser(parseFsync))
  .option("--interval <ms>", "sync interval", parsePositive, 30_000)
  .option("--timeout <ms>", "per-request timeout", parsePositive, 10_000)
  .option("--advertise <url>", "URL other nodes should use to reach this one")
  .option("--nats <url>", "also sync over NATS (comma-separated server URLs; needs @nats-io/transport-node)")
  .option("--cluster <name>", "cluster name: the NATS subject namespace (with --nats)")
  .option("--nats-conf <file>", "NATS credentials and TLS, `key = value` lines: user + password, token, nkey (seed) or creds (file); tls_ca, tls_cert + tls_key")
  .option("--no-console", "do not serve the web console at GET /")
  .option("--accept-data-loss", "open even if snapshot or WAL files the directory says existed are missing (re-sync the rest from peers)")
  .option("--new-node", "start this id in a --dir that holds only other nodes' data (refused otherwise: it looks like lost data)")
  .option("--max-keys <n>", "limits.maxKeys: keys held, tombstones included (default 1000000)", parseCount)
  .option("--max-value-bytes <n>", "limits.maxValueBytes (default 1048576)", parseCount)
  .option("--max-total-bytes <n>", "limits.maxTotalBytes: key + value bytes of all entries (default 1073741824)", parseCount)
  .option("--max-clock-drift <ms>", "limits.maxClockDriftMs: refuse entries stamped further in the future (default 300000)", parseCount)
  .action(async (o) => {
    const { startServer } = await import("./serve.js");
    const secret = readSecret(o.secretFile);
    const access = await accessOptions(o, secret);
    await checkDataDir(o.dir, o.id, o.newNode === true);
    const natsConf = o.natsConf === undefined ? undefined : (await import("./serve.js")).readNatsConf(o.natsConf);
    const limits = Object.fromEntries(Object.entries({ maxKeys: o.maxKeys, maxValueBytes: o.maxValueBytes, maxTotalBytes: o.maxTotalBytes, maxClockDriftMs: o.maxClockDrift }).filter(([, v]) => v !== undefined));
    await untilSignal(() => startServer({
      id: o.id, port: o.port, host: o.host, dir: o.dir, peers: o.peer, secret,
      fsync: o.fsync, intervalMs: o.interval, timeoutMs: o.timeout, advertise: o.advertise, console: o.console,
      limits, acceptDataLoss: o.acceptDataLoss === true, nats: o.nats, cluster: o.cluster, natsConf, ...access,
    }));
  });

/**
 * Runs `start`, then on SIGINT/SIGTERM stops what it started and exits 0. The handlers go in
 * first: a signal that arrives while the node opens (or just after it says "serving") still
 * ends in a clean stop once it is up, not the default kill; a second signal kills.
 */
async function untilSignal(start: () => Promise<{ stop(): Promise<void> }>): Promise<void> {
  const { stopOnProcessEnd } = await import("./serve.js");
  let why: string | undefined;
  let started: { stop(): Promise<void> } | undefined;
  const stop = (s: { stop(): Promise<void> }) => {
    console.log(`received ${why}: stopping sync, flushing, closing`);
    s.stop().then(() => process.exit(0), fail);
  };
  // SIGINT, SIGTERM, or (under npm/npx) the end of the npm process that started us.
  stopOnProcessEnd((w) => { why = w; if (started) stop(started); });
  started = await start();
  if (why !== undefined) stop(started);
}

/** The options of every command that talks to a running node. */
const clientOptions = (c: Command) => c
  .option("--url <url>", "a running node", "http://127.0.0.1:8001")
  .option("--secret-file <file>", "shared secret for HMAC request signing (or WAVEKV_SECRET); with --key, that credential's secret")
  .addOption(new Option("--key <name>", "sign as this client credential (serve --client-key) instead of with the cluster secret").env("WAVEKV_KEY"))
  .addOption(new Option("--ca <file>", "the CA (PEM) that signed an https:// node's certificate").env("WAVEKV_CA"));
function clientCommand(name: string, description: string) {
  return clientOptions(program.command(name).description(description));
}
async function client(o: { url: string; secretFile?: string; key?: string; ca?: string }) {
  const { KvClient } = await import("./client.js");
  const { readPemFile } = await import("../transport/tls.js");
  const secret = readSecret(o.secretFile, true);
  if (o.key !== undefined && secret === undefined) throw new Error(`--key ${o.key} needs that credential's secret: pass --secret-file (or set WAVEKV_SECRET)`);
  return new KvClient(o.url, secret, 10_000, { key: o.key, ...(o.ca === undefined ? {} : { ca: readPemFile(o.ca, "CA certificate", "--ca") }) });
}
const printEntry = (e: unknown) => console.log(JSON.stringify(e));

/**
 * After a write: a node whose peers refuse it as a duplicate id stores writes no peer takes.
 * Say so on stderr (the write itself succeeded on that node: exit 0). /status is public.
 */
async function warnIfRefused(kv: import("./client.js").KvClient): Promise<void> {
  const s = await kv.status().catch(() => undefined);
  const refusing = s?.refusedBy ?? [];
  if (s === undefined || refusing.length === 0) return;
  const all = s.peers.length > 0 && s.peers.every((p) => refusing.includes(p.id));
  console.error(`warning: ${all ? "every peer" : `peer${refusing.length > 1 ? "s" : ""} ${refusing.join(", ")}`} of node ${s.id} ${!all && refusing.length > 1 ? "refuse" : "refuses"} it as a duplicate of id ${s.id}: this write is stored on node ${s.id}${all ? " only and will not replicate" : " and will not reach them"}; give one of the nodes with id ${s.id} a new id (if node ${s.id} was just rebuilt, this clears once its peers reach it)`);
}

clientCommand("put", "write a key").argument("<key>").argument("<value>")
  .option("--ttl <duration>", "expire the entry after this long: 500ms, 30s, 5m, 2h, 7d, or plain ms")
  .option("--wait <all|n>", "answer once that many peers confirmed the write (exit 1 with the reason if not within --timeout; the write stands)", parseWait)
  .option("--timeout <duration>", "how long --wait waits (e.g. 10s, 500ms)", parseDuration)
  .action(async (key, value, o, cmd: Command) => {
  if (o.timeout !== undefined && o.wait === undefined) cmd.error("--timeout bounds --wait: give --wait all or --wait <n> with it");
  const kv = await client(o);
  const ttlMs = o.ttl === undefined ? undefined : parseTtl(o.ttl);
  printEntry(await kv.put(key, value, { ttlMs, wait: o.wait, timeoutMs: o.timeout }));
  await warnIfRefused(kv);
});
clientCommand("batch", "write operations all or nothing: a JSON array of {type: put|delete, key, value|valueBase64}").argument("<file>", "the JSON file, - for stdin").action(async (file, o) => {
  const kv = await client(o);
  for (const e of await kv.batch(readFileSync(file === "-" ? 0 : file))) printEntry(e);
  await warnIfRefused(kv);
});
clientCommand("get", "read a key").argument("<key>").action(async (key, o) => {
  const e = await (await client(o)).get(key);
  if (!e) { console.error(`${key}: not found`); process.exitCode = 1; return; }
  printEntry(e);
});
clientCommand("del", "delete a key").argument("<key>")
  .option("--wait <all|n>", "answer once that many peers confirmed the delete (exit 1 with the reason if not within --timeout; the delete stands)", parseWait)
  .option("--timeout <duration>", "how long --wait waits (e.g. 10s, 500ms)", parseDuration)
  .action(async (key, o, cmd: Command) => {
  if (o.timeout !== undefined && o.wait === undefined) cmd.error("--timeout bounds --wait: give --wait all or --wait <n> with it");
  const kv = await client(o);
  const e = await kv.del(key, { wait: o.wait, timeoutMs: o.timeout });
  if (!e) { console.error(`${key}: not found`); process.exitCode = 1; return; }
  printEntry(e);
  await warnIfRefused(kv);
});
clientCommand("scan", "list keys under a prefix").argument("[prefix]", "key prefix", "").action(async (prefix, o) => {
  for await (const e of (await client(o)).scan(prefix)) printEntry(e);
});
clientCommand("status", "show a node's status").action(async (o) => console.log(JSON.stringify(await (await client(o)).status(), null, 2)));

const peers = program.command("peers").description("list a node's peers, or remove one");
clientOptions(peers.command("list", { isDefault: true }).description("one JSON line per peer: id, address and sync state"))
  .action(async (o) => { for (const p of await (await client(o)).peers()) console.log(JSON.stringify(p)); });
clientOptions(peers.command("remove").description("forget a peer (e.g. one a forged sender id added)").argument("<id>", "peer id", parseId))
  .action(async (id: number, o) => {
    if (await (await client(o)).removePeer(id)) console.log(`removed peer ${id}`);
    else { console.error(`${id}: not a peer`); process.exitCode = 1; }
  });

program
  .command("demo")
  .description("start a local 3-node cluster, kill, restart, partition and heal nodes, and show convergence live")
  .option("--short", "fewer writes, shorter waits")
  .action(async (o) => {
    const { runDemo } = await import("./demo.js");
    const { converged } = await runDemo({ short: o.short });
    process.exitCode = converged ? 0 : 1;
  });

const filesync = program.command("filesync").description("mirror a directory between nodes (run, or check)");
filesync
  .command("run", { isDefault: true })
  .description("run a node that mirrors --dir with its peers")
  .requiredOption("--dir <dir>", "directory to mirror")
  .requiredOption("--id <id>", "this node's id (uint32)", parseId)
  .option("--port <port>", "port to listen on", (v) => parseId(v), 8001)
  .option("--peer <id=url>", "a peer and its address (repeatable)", parsePeer, {})
  .option("--data-dir <dir>", "where the node keeps its WAL and snapshots (default: <dir>/../.wavekv-<id>)")
  .option("--secret-file <file>", "shared secret for HMAC request signing")
  .option("--interval <ms>", "sync interval", parsePositive, 1_000)
  .option("--new-node", "start this id in a --data-dir that holds only other nodes' data")
  .action(async (o) => {
    const { startServer } = await import("./serve.js");
    const { startFileSync } = await import("./filesync.js");
    const dataDir = o.dataDir ?? join(dirname(o.dir.replace(/\/+$/, "")), `.wavekv-${o.id}`);
    const secret = readSecret(o.secretFile);
    await checkDataDir(dataDir, o.id, o.newNode === true);
    await untilSignal(async () => {
      const running = await startServer({ id: o.id, port: o.port, dir: dataDir, peers: o.peer, secret, intervalMs: o.interval });
      const mirror = await startFileSync(running.node, o.dir).catch(async (e: unknown) => { await running.stop(); throw e; });
      console.log(`mirroring ${o.dir}`);
      return { stop: () => mirror.stop().then(() => running.stop()) };
    });
  });
filesync
  .command("check")
  .description("compare a directory with the files a running node holds")
  .requiredOption("--dir <dir>", "mirrored directory")
  .option("--url <url>", "the node", "http://127.0.0.1:8001")
  .option("--secret-file <file>", "shared secret for HMAC request signing")
  .action(async (o) => {
    const { checkFileSync, FILE_PREFIX } = await import("./filesync.js");
    const kv = await client(o);
    async function* files() {
      for await (const e of kv.scan(FILE_PREFIX)) {
        const bytes = e.valueBase64 !== undefined ? new Uint8Array(Buffer.from(e.valueBase64, "base64")) : new TextEncoder().encode(e.value ?? "");
        yield { path: e.key.slice(FILE_PREFIX.length), bytes };
      }
    }
    const r = await checkFileSync(o.dir, files());
    for (const p of r.missing) console.log(`missing   ${p}`);
    for (const p of r.extra) console.log(`extra     ${p}`);
    for (const p of r.different) console.log(`different ${p}`);
    const ok = r.missing.length + r.extra.length + r.different.length === 0;
    console.log(ok ? "in sync" : "NOT in sync");
    process.exitCode = ok ? 0 : 1;
  });

program
  .command("inspect")
  .description("validate and summarize a node's WAL and snapshots")
  .argument("<dir>", "data directory")
  .option("--id <id>", "node id (default: every node found in the directory)", parseId)
  .option("--json", "machine-readable output")
  .action(async (dir, o) => {
    const inspect = await import("../storage/inspect.js");
    const code = await inspect.runInspect(dir, { id: o.id, json: o.json, out: (l: string) => console.log(l) });
    process.exitCode = code;
  });

program
  .command("bench")
  .description("run the benchmark suite (npm run bench)")
  .option("--quick", "CI-sized run")
  .action((o) => {
    // The installed package ships no bench/ (nor its peers): the suite runs from a checkout.
    if (!existsSync(join(packageRoot, "bench", "index.ts"))) {
      console.error("wavekv bench runs in a checkout of the wavekv repository (git clone, then `npm run bench`); the installed package does not include it");
      process.exitCode = 1;
      return;
    }
    const r = spawnSync("npm", ["run", "bench", "--", ...(o.quick ? ["--quick"] : [])], { cwd: packageRoot, stdio: "inherit" });
    process.exitCode = r.status ?? 1;
  });

/**
 * Usage mistakes (unknown flag or command, missing or malformed argument) are one line naming
 * the command's --help, exit 2; commander's own print is the full help and exit 1.
 */
let usageMistake = false;
(function usageErrors(cmd: Command, path: string): void {
  cmd.exitOverride().configureOutput({
    outputError: (str, write) => {
      usageMistake = true;
      write(`wavekv: ${str.replace(/^error: /, "").trim().replace(/\s*\n\s*/g, " ")} (see \`${path} --help\`)\n`);
    },
  });
  for (const sub of cmd.commands) usageErrors(sub, `${path} ${sub.name()}`);
})(program, "wavekv");

await program.parseAsync(process.argv).catch((e: unknown) => {
  if (!(e instanceof CommanderError)) fail(e);
  if (e.exitCode === 0) process.exit(0); // --help, --version
  if (usageMistake || e.code === "commander.help") process.exit(2); // `wavekv` alone printed the help
  fail(e);
});
