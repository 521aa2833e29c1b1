/**
 * Peer-side batch atomicity (issue 21, docs/design/0027-atomic-batches.md): a seeded
 * workload of batches, single puts and deletes, and the invariant every receiver keeps.
 *
 *   const w = await workload(node, { seed: 7, ops: 40, prefix: "a/" });
 *   assert.equal(halfBatches(peer, w.batches), []);   // each batch: 0 or all of its keys
 *   await pull(peer, node, { slicing: { sliceEntries: 3, pause }, afterPage: check });
 *
 * INV (disjoint keys: each batch writes keys nobody else writes): for every batch, the
 * number of its keys a node holds at exactly the batch's (node, seq) stamp is 0 or all.
 * Not a test file: the runner skips test/helpers/.
 */
import type { Node } from "../../src/node/node.js";
import type { Entry } from "../../src/core/types.js";
import type { BatchOperation } from "../../src/node/batch.js";
import { decodeEnvelope, encodeEnvelope, type Envelope } from "../../src/sync/envelope.js";
import type { MergeSlicing } from "../../src/sync/protocol.js";
import { seededRandom } from "../../src/transport/memory.js";

/** What a workload wrote: every batch (its entries in order), and every write. */
export interface Written {
  batches: Entry[][];
  singles: Entry[];
}

export interface WorkloadOptions {
  seed: number;
  /** Calls to make (a batch counts as one). */
  ops: number;
  /** Key prefix of this writer (keys are disjoint between writers). */
  prefix: string;
  /** Batch sizes are drawn from [minBatch, maxBatch] (default 2..60). */
  minBatch?: number;
  maxBatch?: number;
  /** Sizes of the first batches, before the random ones (e.g. one larger than a page). */
  leading?: number[];
  /** Values carry up to this many padding bytes (default 40). */
  pad?: number;
}

/**
 * Seeded mix: about half the calls are batches (puts and deletes of keys of their own:
 * `<prefix>b<n>/<i>`), the rest single puts and deletes of `<prefix>s/<n>`. Calls are
 * awaited one by one, so seqs follow the calls.
 */
export async function workload(node: Node, o: WorkloadOptions, into: Written = { batches: [], singles: [] }): Promise<Written> {
  const r = seededRandom(o.seed);
  const [lo, hi] = [o.minBatch ?? 2, o.maxBatch ?? 60];
  const sizes = [...(o.leading ?? [])];
  let singles = 0;
  for (let i = 0; i < o.ops; i++) {
    const size = sizes.shift() ?? (r() < 0.5 ? lo + Math.floor(r() * (hi - lo + 1)) : 0);
    if (size > 0) {
      const n = into.batches.length;
      const ops: BatchOperation[] = Array.from({ length: size }, (_, k) => (r() < 0.2 ? { type: "delete", key: `${o.prefix}b${n}/${k}` } : { type: "put", key: `${o.prefix}b${n}/${k}`, value: `batch ${n} item ${k} ${"x".repeat(Math.floor(r() * (o.pad ?? 40)))}` }));
      into.batches.push(await node.batch(ops));
    } else if (singles > 0 && r() < 0.3) {
      into.singles.push(await node.delete(`${o.prefix}s/${Math.floor(r() * singles)}`));
    } else {
      into.singles.push(await node.put(`${o.prefix}s/${singles++}`, `single ${singles}`));
    }
  }
  return into;
}

/** How many of `batch`'s keys `node` holds at exactly the batch's stamps. */
export function heldOf(node: Node, batch: readonly Entry[]): number {
  let held = 0;
  for (const e of batch) {
    const got = node.getIncludingTombstones(e.key);
    if (got !== undefined && got.node === e.node && got.seq === e.seq) held++;
  }
  return held;
}

/** INV broken: one line per batch `node` holds part of (empty when it holds each whole or not at all). */
export function halfBatches(node: Node, batches: readonly (readonly Entry[])[]): string[] {
  const out: string[] = [];
  for (const b of batches) {
    const held = heldOf(node, b);
    if (held !== 0 && held !== b.length) out.push(`node ${node.id} holds ${held} of the ${b.length} keys of batch ${b[0]!.node}:${b[0]!.seq}..${b[b.length - 1]!.seq}`);
  }
  return out;
}

/**
 * An observer that checks INV on every event-loop turn (a setImmediate loop) until stopped;
 * the first violations are kept (a check that throws would be lost in the loop).
 */
export function observer(check: () => string[]): { stop(): string[]; close(): void; checks: () => number } {
  const seen: string[] = [];
  let running = true, checks = 0;
  const turn = () => {
    if (!running) return;
    checks++;
    if (seen.length < 5) seen.push(...check().slice(0, 5 - seen.length));
    setImmediate(turn);
  };
  setImmediate(turn);
  return { stop: () => { running = false; return seen; }, close: () => { running = false; }, checks: () => checks };
}

/**
 * Closes what a test opened even when an assertion fails (uvu runs `after.each` then too),
 * so a failing test leaves no observer loop or open node behind to hang the run.
 *   const own = closers(test.after.each);  const a = own(await Node.open(…));
 */
export function closers(afterEach: (hook: () => Promise<void>) => void): <T extends { close(): unknown }>(x: T) => T {
  const open: { close(): unknown }[] = [];
  afterEach(async () => { for (const x of open.splice(0).reverse()) await x.close(); });
  return (x) => { open.push(x); return x; };
}

/** INV over several nodes (closed ones skipped). */
export function halfBatchesOn(nodes: readonly Node[], batches: readonly (readonly Entry[])[]): string[] {
  return nodes.filter((n) => !n.closed).flatMap((n) => halfBatches(n, batches));
}

/** Through the wire format and back, as a peer receives it. */
export const wire = (env: Envelope): Envelope => decodeEnvelope(encodeEnvelope(env));

/** What an older build sees: the batch ranges (ExtTag 26) skipped as an unknown extension. */
export function withoutRanges(env: Envelope): Envelope {
  delete (env as { batchRanges?: unknown }).batchRanges;
  return env;
}

export interface PullOptions {
  /** Merge each response page in slices (applyEnvelopeInSlices). */
  slicing?: MergeSlicing;
  /** Rewrites each decoded response before it is applied. */
  received?: (env: Envelope) => Envelope;
  /** Called after each page is applied. */
  afterPage?: (page: number) => void;
}

/**
 * One round of `receiver` with `sender`, page by page, as SyncManager runs it (prepareSync
 * continues a paged round itself), through the wire format. Returns the pages.
 */
export async function pull(receiver: Node, sender: Node, o: PullOptions = {}): Promise<number> {
  for (let page = 1; ; page++) {
    const response = (o.received ?? ((e) => e))(wire(sender.handleEnvelope(wire(receiver.prepareSync(sender.id)))));
    const out = o.slicing ? await receiver.applyEnvelopeInSlices(response, o.slicing) : receiver.applyEnvelope(response);
    o.afterPage?.(page);
    if (!out.more) return page;
    if (page > 10_000) throw new Error("a round of more than 10 000 pages");
  }
}
