/**
 * Test clusters: real Nodes and SyncManagers wired through a MemoryNetwork, so that a
 * test's only double is the network (and, where it says so, the clock).
 *
 *   const c = await cluster([1, 2, 3], { net: { seed } });
 *   await c.node(1).put("k", "v");
 *   await c.rounds(2);                   // every node syncs with every peer, twice
 *   assert.ok(c.converged());
 *   await c.close();
 *
 * Not a test file: the runner skips test/helpers/.
 */
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Node, type NodeOptions } from "../../src/node/node.js";
import { MemoryNetwork, type MemoryNetworkOptions } from "../../src/transport/memory.js";
import { SyncManager, type PeerReport, type SyncOptions } from "../../src/node/manager.js";
import { WaveKVError } from "../../src/core/errors.js";

export interface Member {
  id: number;
  node: Node;
  sync: SyncManager;
  dir?: string;
}

export interface ClusterOptions {
  net?: MemoryNetworkOptions | MemoryNetwork;
  /** Node options for every member, or per member id. */
  node?: Partial<NodeOptions> | ((id: number) => Partial<NodeOptions>);
  sync?: SyncOptions;
  /** Give every member a data directory (under one temp root removed by close()). */
  durable?: boolean;
  /** Parent of the temp root (default os.tmpdir()); /dev/shm makes fsync free. */
  tmpRoot?: string;
  /** Peers of each member (default: every other member). */
  peers?: (id: number, all: readonly number[]) => number[];
}

/** A clock tests move by hand. */
export function manualClock(start = 1_764_000_000_000) {
  let now = start;
  const clock = () => now;
  clock.set = (t: number) => { now = t; };
  clock.advance = (ms: number) => { now += ms; };
  return clock;
}

/** Warnings go here instead of the console; tests can read them. */
export function warningSink() {
  const lines: string[] = [];
  const sink = (m: string) => { lines.push(m); };
  sink.lines = lines;
  return sink;
}

export async function rejectsWith(p: Promise<unknown>, code: string, message?: RegExp): Promise<WaveKVError> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, WaveKVError, `expected WaveKVError ${code}, got ${String(e)}`);
    assert.is((e as WaveKVError).code, code, (e as Error).message);
    if (message) assert.match((e as Error).message, message);
    return e as WaveKVError;
  }
  assert.unreachable(`expected ${code}`);
  throw new Error("unreachable");
}

export class Cluster {
  readonly net: MemoryNetwork;
  readonly members = new Map<number, Member>();
  readonly #opts: ClusterOptions;
  readonly #root: string | undefined;
  readonly #ids: number[];
  readonly warnings = warningSink();

  constructor(ids: number[], opts: ClusterOptions) {
    this.#ids = ids;
    this.#opts = opts;
    this.net = opts.net instanceof MemoryNetwork ? opts.net : new MemoryNetwork(opts.net);
    this.#root = opts.durable ? mkdtempSync(join(opts.tmpRoot ?? tmpdir(), "wavekv-cluster-")) : undefined;
  }

  dirOf(id: number): string | undefined {
    return this.#root === undefined ? undefined : join(this.#root, `n${id}`);
  }

  #nodeOptions(id: number): Partial<NodeOptions> {
    const n = this.#opts.node;
    return typeof n === "function" ? n(id) : (n ?? {});
  }

  /** Opens (or reopens, from its directory when durable) member `id` and registers it. */
  async open(id: number, extra: Partial<NodeOptions> = {}, syncExtra: SyncOptions = {}): Promise<Member> {
    const peers = this.#opts.peers ? this.#opts.peers(id, this.#ids) : this.#ids.filter((p) => p !== id);
    const node = await Node.open({ id, peers, dir: this.dirOf(id), fsync: "never", onWarning: this.warnings, ...this.#nodeOptions(id), ...extra });
    const sync = new SyncManager(node, this.net.transport(id), { onWarning: this.warnings, ...this.#opts.sync, ...syncExtra });
    this.net.register(id, sync);
    const m: Member = { id, node, sync, dir: this.dirOf(id) };
    this.members.set(id, m);
    return m;
  }

  node(id: number): Node {
    return this.member(id).node;
  }

  sync(id: number): SyncManager {
    return this.member(id).sync;
  }

  member(id: number): Member {
    const m = this.members.get(id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  get ids(): number[] {
    return [...this.members.keys()].sort((a, b) => a - b);
  }

  /** Every member runs one round with every peer, all concurrently. */
  async round(): Promise<PeerReport[]> {
    const all = await Promise.all([...this.members.values()].map((m) => (m.node.closed ? [] : m.sync.syncOnce())));
    await this.net.settled();
    return all.flat();
  }

  async rounds(n: number): Promise<void> {
    for (let i = 0; i < n; i++) await this.round();
  }

  digests(): Map<number, string> {
    return new Map([...this.members].map(([id, m]) => [id, m.node.digest()]));
  }

  converged(): boolean {
    return new Set(this.digests().values()).size === 1;
  }

  /** Rounds until every digest is equal; returns the rounds it took, or throws after `max`. */
  async converge(max = 20): Promise<number> {
    for (let i = 0; i <= max; i++) {
      if (this.converged()) return i;
      await this.round();
    }
    throw new Error(`no convergence after ${max} rounds: ${[...this.digests()].map(([id, d]) => `${id}=${d.slice(0, 8)}`).join(" ")}`);
  }

  /** Closes member `id` (its manager stopped, its directory kept) and unregisters it. */
  async kill(id: number): Promise<void> {
    const m = this.member(id);
    this.net.unregister(id);
    await m.sync.stop();
    await m.node.close();
  }

  async close(): Promise<void> {
    for (const m of this.members.values()) {
      await m.sync.stop();
      await m.node.close();
    }
    await this.net.settled();
    if (this.#root) rmSync(this.#root, { recursive: true, force: true });
  }
}

/** Opens a cluster of `ids`, every node a peer of every other unless `peers` says otherwise. */
export async function cluster(ids: number[], opts: ClusterOptions = {}): Promise<Cluster> {
  const c = new Cluster(ids, opts);
  for (const id of ids) await c.open(id);
  return c;
}

export const text = (b: Uint8Array | null | undefined): string | null | undefined => (b ? new TextDecoder().decode(b) : b);
