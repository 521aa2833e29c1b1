/**
 * Child process of test/node/batch-crash.ts (a helper: never run by the test runner; the
 * parent imports only BATCH_KEYS and `batchValue`).
 *
 *   node --import tsx test/helpers/batch-crash-child.ts <dir> <seed>
 *
 * Opens `Node.open({ id: 1, dir, fsync: "always" })`, prints `ready <n>` (n: the batch
 * number the keys hold, 0 if none), then until killed writes batches n+1, n+2, …: each
 * puts every one of BATCH_KEYS keys to `batchValue(i, key)` (a few as deletes), 1–4
 * batches in flight, printing `ack <i>` once batch i resolved; every few acks persist()
 * runs with batches in flight. Batches are ordered (seqs, stamps), so after any crash
 * every key must hold the same batch number: the last batch that reached the log whole.
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Node } from "../../src/node/node.js";
import type { BatchOperation } from "../../src/node/batch.js";
import { rng } from "./storage-fixtures.js";

export const BATCH_KEYS = 24;

/** The value key `k` gets from batch `i`, "" meaning the batch deletes it; sizes vary so batches straddle preallocation steps. */
export function batchValue(i: number, k: number): string {
  if ((i * 31 + k * 7) % 11 === 0) return "";
  return `${i}:${k}:`.padEnd(8 + ((i * 13 + k * 5) % 300), "x");
}

/** The batch number an entry's value names (a delete: the tombstone's batch is read from its seq by the parent). */
export function batchOfValue(value: string): number {
  return Number(value.slice(0, value.indexOf(":")));
}

async function main(): Promise<void> {
  const [dir, seedArg] = process.argv.slice(2);
  if (!dir || seedArg === undefined) throw new Error("usage: batch-crash-child <dir> <seed>");
  const r = rng(Number(seedArg) ^ 0x27d4eb2d);
  const node = await Node.open({ id: 1, dir, fsync: "always", onWarning: (m) => process.stderr.write(`warning: ${m}\n`) });
  const held = node.get("n");
  let next = (held ? Number(new TextDecoder().decode(held.value!)) : 0) + 1;
  process.stdout.write(`ready ${next - 1}\n`);
  const maxInFlight = 1 + Math.floor(r() * 4), persistEvery = 3 + Math.floor(r() * 10);
  let inFlight = 0, acks = 0;
  const die = (what: string) => (e: unknown) => {
    process.stderr.write(`${what}: ${e instanceof Error ? e.stack : e}\n`);
    process.exit(2);
  };
  function issue(): void {
    const i = next++;
    const ops: BatchOperation[] = [{ type: "put", key: "n", value: String(i) }];
    for (let k = 0; k < BATCH_KEYS; k++) {
      const v = batchValue(i, k);
      ops.push(v === "" ? { type: "delete", key: `k/${k}` } : { type: "put", key: `k/${k}`, value: v });
    }
    inFlight++;
    node.batch(ops).then(() => {
      process.stdout.write(`ack ${i}\n`);
      inFlight--;
      if (++acks % persistEvery === 0) node.persist().catch(die("persist failed"));
      pump();
    }, die("batch failed"));
  }
  function pump(): void {
    while (inFlight < maxInFlight) issue();
  }
  pump();
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    process.stderr.write(`${e instanceof Error ? e.stack : e}\n`);
    process.exit(1);
  });
}
