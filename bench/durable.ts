/**
 * Storage-layer durability benchmarks (src/storage/storage.ts), each against its floor measured
 * in the same run on the same disk:
 * - `Storage.append` with fsync "always" at 1, 8 and 64 concurrent writers (and at 64
 *   with `{ defer: true }`, the group write local puts can use), against the
 *   raw floor of one positional write + fdatasync per record (what a log without group
 *   commit pays), in records/s; the fsyncs each case used are in `note`.
 *   The writes and fsyncs are counted through the `faults` hook (called before each), so
 *   the note shows appends per fsync and writes per fsync on both runtimes.
 * - `Node.put` with fsync "always" at 64 concurrent writers, against the raw floor (sampled
 *   just before and after the case) × the batch size it achieved (puts per fsync, from
 *   `storageStats()`): the issue #7 target is ≥ 0.5x.
 * - Recovery: `openStorage` of a directory holding a 1M-record WAL (100k with `quick`),
 *   against plain JS reading the same file, splitting it into frames and checking every
 *   CRC with the TS slicing-by-8 twin (`crc32Reference`).
 *
 *   const rows = await runDurableBenchmarks({ quick: true, onProgress: console.error });
 *   node --import tsx bench/durable.ts [--quick] [--no-recovery] [--put-only]
 *   bun bench/durable.ts [--quick] [--no-recovery] [--put-only]
 *
 * This VM's fsync costs 0.13–5 ms depending on the neighbours: only ratios within one
 * run mean anything. Records are 120 B on disk (16 B key, 100 B value, framing).
 */
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RecordInput } from "../src/core/record.js";
import { crc32Reference } from "../src/codec/crc.js";
import { Node } from "../src/node/node.js";
import { openStorage } from "../src/storage/storage.js";

export interface Row { group: string; name: string; value: number; unit: string; baseline?: string; ratio?: number; note?: string; lower?: boolean; target?: string }

const APPEND_GROUP = "storage append, fsync always";
const RECOVERY_GROUP = "storage recovery (WAL replay)";
const FLOOR_APPEND = "raw write+fdatasync per record";
const FLOOR_RECOVERY = "plain JS read + split + CRC";

function record(i: number, value: Uint8Array): RecordInput {
  return { kind: 1, key: `bench/${String(i).padStart(10, "0")}`, value, timestamp: 1_700_000_000_000 + i, node: 1, seq: i + 1 };
}

function valueBytes(seed: number): Uint8Array {
  const v = new Uint8Array(100);
  for (let i = 0; i < v.length; i++) v[i] = (seed * 31 + i * 7) & 0xff;
  return v;
}

/** The floor: one write + fdatasync per record, nothing shared. */
function rawFloor(dir: string, ms: number): number {
  const fd = fs.openSync(join(dir, "raw.log"), "w");
  const rec = new Uint8Array(120).fill(7);
  let n = 0;
  let pos = 0;
  const t0 = performance.now();
  try {
    while (performance.now() - t0 < ms) {
      fs.writeSync(fd, rec, 0, rec.length, pos);
      fs.fdatasyncSync(fd);
      pos += rec.length;
      n++;
    }
  } finally {
    fs.closeSync(fd);
  }
  return (n * 1000) / (performance.now() - t0);
}

async function appendRate(dir: string, writers: number, ms: number, defer = false): Promise<{ rate: number; fsyncs: number; writes: number; appends: number }> {
  let writes = 0;
  let counting = false;
  const faults = (op: "write" | "fsync") => { if (counting && op === "write") writes++; };
  const storage = await openStorage({ dir, nodeId: 1, fsync: "always", faults });
  const value = valueBytes(writers);
  let next = 0;
  const before = storage.fsyncCount;
  counting = true;
  const t0 = performance.now();
  try {
    await Promise.all(
      Array.from({ length: writers }, async () => {
        while (performance.now() - t0 < ms) await storage.append([record(next++, value)], { defer });
      }),
    );
  } finally {
    await storage.close();
  }
  const elapsed = performance.now() - t0;
  return { rate: (next * 1000) / elapsed, fsyncs: storage.fsyncCount - before, writes, appends: next };
}

/** `Node.put` at `writers` concurrent loops, fsync "always"; fsyncs from `storageStats()`. */
async function putRate(dir: string, writers: number, ms: number): Promise<{ rate: number; fsyncs: number; puts: number; fsyncMs: number; elapsed: number }> {
  const node = await Node.open({ id: 1, dir, fsync: "always", snapshotWalBytes: 1 << 30, onWarning: () => undefined });
  const value = valueBytes(writers);
  let next = 0;
  const start = node.storageStats()!;
  const before = start.fsyncCount;
  const t0 = performance.now();
  let elapsed = 0;
  let fsyncs = 0;
  let fsyncMs = 0;
  try {
    await Promise.all(
      Array.from({ length: writers }, async () => {
        while (performance.now() - t0 < ms) {
          const i = next++;
          await node.put(`user/${i.toString(36)}/profile`, value);
        }
      }),
    );
    elapsed = performance.now() - t0;
    const end = node.storageStats()!;
    fsyncs = end.fsyncCount - before;
    fsyncMs = (end.fsyncLatency.sum - start.fsyncLatency.sum) / Math.max(1, end.fsyncLatency.count - start.fsyncLatency.count);
  } finally {
    await node.close();
  }
  return { rate: (next * 1000) / elapsed, fsyncs, puts: next, fsyncMs, elapsed };
}

/** Read + split + CRC of a WAL image, the least any reader of these bytes does. */
function floorScan(path: string): number {
  const buf = fs.readFileSync(path);
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  let off = 32;
  let n = 0;
  while (off + 8 <= bytes.length) {
    const len = dv.getUint32(off, true);
    if (len === 0 || off + 8 + len > bytes.length) break;
    if (crc32Reference(bytes.subarray(off + 8, off + 8 + len)) !== dv.getUint32(off + 4, true)) throw new Error(`bad CRC at ${off}`);
    off += 8 + len;
    n++;
  }
  return n;
}

async function bestOf<T>(reps: number, fn: () => Promise<T> | T): Promise<{ ms: number; result: T }> {
  let ms = Infinity;
  let result!: T;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    result = await fn();
    ms = Math.min(ms, performance.now() - t0);
  }
  return { ms, result };
}

export async function runDurableBenchmarks(opts: { quick: boolean; recovery?: boolean; append?: boolean; onProgress?: (m: string) => void }): Promise<Row[]> {
  const say = opts.onProgress ?? (() => {});
  const rows: Row[] = [];
  const root = fs.mkdtempSync(join(tmpdir(), "wavekv-bench-durable-"));
  try {
    const ms = opts.quick ? 400 : 2000;
    say(`raw write+fdatasync floor (${ms} ms)`);
    const floorDir = join(root, "raw");
    fs.mkdirSync(floorDir);
    const floor = rawFloor(floorDir, ms);
    rows.push({ group: APPEND_GROUP, name: FLOOR_APPEND, value: floor, unit: "records/s" });
    const cases: [number, boolean][] = [[1, false], [8, false], [64, false], [64, true]];
    for (const [writers, defer] of opts.append === false ? [] : cases) {
      const label = `Storage.append${defer ? " { defer }" : ""}, ${writers} writer${writers === 1 ? "" : "s"}`;
      say(`${label} (${ms} ms)`);
      const dir = join(root, `append-${writers}${defer ? "-defer" : ""}`);
      const r = await appendRate(dir, writers, ms, defer);
      rows.push({
        group: APPEND_GROUP,
        name: label,
        value: r.rate,
        unit: "records/s",
        baseline: FLOOR_APPEND,
        ratio: r.rate / floor,
        note: `${r.appends} appends, ${r.fsyncs} fsyncs (${(r.appends / Math.max(1, r.fsyncs)).toFixed(1)} appends/fsync, ${(r.writes / Math.max(1, r.fsyncs)).toFixed(1)} writes/fsync)`,
      });
    }

    {
      const writers = 64;
      say(`Node.put, ${writers} writers (${ms} ms), floor sampled before and after`);
      const around = [rawFloor(floorDir, ms / 4)];
      const r = await putRate(join(root, `put-${writers}`), writers, ms);
      around.push(rawFloor(floorDir, ms / 4));
      const floorAround = (around[0]! + around[1]!) / 2;
      const batch = r.puts / Math.max(1, r.fsyncs);
      const ideal = floorAround * batch;
      const cycle = r.elapsed / Math.max(1, r.fsyncs);
      rows.push({
        group: APPEND_GROUP,
        name: `Node.put, ${writers} writers`,
        value: r.rate,
        unit: "puts/s",
        baseline: "raw floor × batch size",
        ratio: r.rate / ideal,
        target: ">= 0.50x",
        note: `${r.puts} puts, ${r.fsyncs} fsyncs (${batch.toFixed(1)} puts/fsync; a cycle ${cycle.toFixed(2)} ms = fsync ${r.fsyncMs.toFixed(2)} ms + ${(cycle - r.fsyncMs).toFixed(2)} ms between fsyncs); floor around: ${around.map((x) => x.toFixed(0)).join(", ")}/s; floor × batch = ${ideal.toFixed(0)} puts/s`,
      });
    }
    if (opts.recovery === false) return rows;

    const n = opts.quick ? 100_000 : 1_000_000;
    say(`building a ${n}-record WAL`);
    const dir = join(root, "recovery");
    const build = await openStorage({ dir, nodeId: 1, fsync: "never" });
    const value = valueBytes(1);
    for (let i = 0; i < n; i += 1000) {
      const batch: RecordInput[] = [];
      for (let j = i; j < Math.min(n, i + 1000); j++) batch.push(record(j, value));
      await build.append(batch);
    }
    await build.close();
    const walPath = join(dir, "node_1.wal");
    const size = fs.statSync(walPath).size;
    const reps = opts.quick ? 2 : 3;
    say(`recovery floor: read + split + CRC of ${(size / 2 ** 20).toFixed(0)} MiB`);
    const f = await bestOf(reps, () => floorScan(walPath));
    if (f.result !== n) throw new Error(`floor saw ${f.result} records, expected ${n}`);
    rows.push({ group: RECOVERY_GROUP, name: `${FLOOR_RECOVERY}, ${n} records`, value: f.ms, unit: "ms", lower: true });
    say(`openStorage of the same directory`);
    const o = await bestOf(reps, async () => {
      const s = await openStorage({ dir, nodeId: 1, fsync: "never" });
      const count = s.recovered.batches.reduce((k, b) => k + b.count, 0);
      await s.close();
      return count;
    });
    if (o.result !== n) throw new Error(`openStorage recovered ${o.result} records, expected ${n}`);
    rows.push({
      group: RECOVERY_GROUP,
      name: `openStorage, ${n} records`,
      value: o.ms,
      unit: "ms",
      lower: true,
      baseline: `${FLOOR_RECOVERY}, ${n} records`,
      ratio: o.ms / f.ms,
      note: `${(size / 2 ** 20).toFixed(0)} MiB WAL; decode to descriptors, no index rebuild`,
    });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  return rows;
}

// Run directly: print the rows.
const direct = process.argv[1] && /durable\.ts$/.test(process.argv[1]);
if (direct) {
  const rows = await runDurableBenchmarks({
    quick: process.argv.includes("--quick"),
    recovery: !process.argv.includes("--no-recovery") && !process.argv.includes("--put-only"),
    append: !process.argv.includes("--put-only"),
    onProgress: (m) => console.error(m),
  });
  for (const r of rows) {
    console.log(`${r.group.padEnd(32)} ${r.name.padEnd(44)} ${r.value.toFixed(r.unit === "ms" ? 1 : 0).padStart(10)} ${r.unit.padEnd(10)} ${r.ratio !== undefined ? `${r.ratio.toFixed(2)}x` : ""} ${r.note ?? ""}`);
  }
}
