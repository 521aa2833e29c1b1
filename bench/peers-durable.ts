/**
 * Durable put/s: wavekv with `fsync: "always"` and with an interval window, at 1, 8 and
 * 64 concurrent writers, against SQLite (WAL mode, one transaction per put, synchronous
 * FULL and NORMAL), lmdb (`putSync`, and concurrent `put` that lmdb batches itself) and
 * the disk's raw write+fdatasync floor — all in one process, one disk, one run.
 *
 *   const rows = await runDurablePeers({ quick: true, onProgress: console.error });
 *
 * Every case is time-boxed (see `throughput`): this VM's fsync costs 0.13–1.5 ms
 * depending on the neighbours, so only ratios within one run mean anything. SQLite is
 * better-sqlite3 12.x on Node and bun:sqlite on Bun (better-sqlite3 does not load there).
 */
import { mkdtempSync, rmSync } from "node:fs";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Node } from "../src/node/node.js";
import { benchKey, benchValues, isBun, throughput } from "./measure.js";
import type { BenchFn, Row } from "./report.js";

export const FSYNC_GROUP = "durable put, fsync before ack";
export const WINDOW_GROUP = "durable put, 10 ms fsync window";
const SQLITE_FULL = "SQLite WAL FULL, 1 txn/put";
const SQLITE_NORMAL = "SQLite WAL NORMAL, 1 txn/put";
const RECORD_BYTES = 120;
const IN_MEMORY = "in-memory Node.put (no log)";
const WINDOW_MS = 10;

interface SqlStatement { run(...args: unknown[]): unknown }
interface SqlDb { exec(sql: string): unknown; prepare(sql: string): SqlStatement; close(): unknown }

/** better-sqlite3 on Node, bun:sqlite on Bun: the same SQL, the same pragmas. */
export async function openSqlite(path: string, synchronous: "FULL" | "NORMAL"): Promise<{ db: SqlDb; driver: string }> {
  let db: SqlDb;
  let driver: string;
  if (isBun) {
    const { Database } = (await import("bun:sqlite" as string)) as { Database: new (p: string) => SqlDb };
    db = new Database(path);
    driver = "bun:sqlite";
  } else {
    const { default: Database } = (await import("better-sqlite3" as string)) as { default: new (p: string) => SqlDb };
    db = new Database(path);
    const pkg = createRequire(import.meta.url)("better-sqlite3/package.json") as { version: string };
    driver = `better-sqlite3 ${pkg.version}`;
  }
  db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = ${synchronous};`);
  db.exec("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID");
  return { db, driver };
}

const mean = (xs: { rate: number }[]) => (xs.length ? xs.reduce((a, x) => a + x.rate, 0) / xs.length : NaN);
const range = (xs: { rate: number }[]) => `${Math.min(...xs.map((x) => x.rate)).toFixed(0)}–${Math.max(...xs.map((x) => x.rate)).toFixed(0)}`;

export const runDurablePeers: BenchFn = async ({ quick, onProgress }) => {
  const boxMs = quick ? 400 : 1_500;
  const root = mkdtempSync(join(tmpdir(), "wavekv-bench-durable-"));
  const values = benchValues(4096, 100, 7);
  const value = (i: number) => values[i & 4095]!;
  const rows: Row[] = [];
  let dirs = 0;
  const freshDir = () => { const d = join(root, `d${dirs++}`); fs.mkdirSync(d); return d; };
  const progress = (label: string, r: { rate: number; ops: number }) => onProgress?.(`durable: ${label}: ${r.rate.toFixed(0)}/s (${r.ops} ops)`);
  try {
    // ---- the disk's floor: one 120-byte record per write + fdatasync, nothing else.
    // Sampled again around each wavekv "always" case: the disk's rate drifts within seconds.
    let floorFile = 0;
    const floorSample = (ms: number) => {
      const fd = fs.openSync(join(root, `floor${floorFile++}.log`), "w");
      const rec = new Uint8Array(RECORD_BYTES).fill(1);
      let ops = 0;
      const t0 = performance.now();
      while (performance.now() - t0 < ms) { fs.writeSync(fd, rec); fs.fdatasyncSync(fd); ops++; }
      const elapsed = performance.now() - t0;
      fs.closeSync(fd);
      return { ops, ms: elapsed, rate: (ops / elapsed) * 1000 };
    };
    const floorSamples = [floorSample(boxMs)];
    progress("raw write+fdatasync", floorSamples[0]!);
    const writeOnly = (() => {
      const fd = fs.openSync(join(root, "write.log"), "w");
      const rec = new Uint8Array(RECORD_BYTES).fill(1);
      let ops = 0;
      const t0 = performance.now();
      while (performance.now() - t0 < boxMs / 4) { fs.writeSync(fd, rec); ops++; }
      const ms = performance.now() - t0;
      fs.closeSync(fd);
      return { ops, ms, rate: (ops / ms) * 1000 };
    })();
    progress("raw write, no fsync", writeOnly);

    // ---- SQLite, one transaction per put. FULL is sampled again around each wavekv
    // "always" case (same database, kept open), like the floor.
    const full = await openSqlite(join(freshDir(), "kv.db"), "FULL");
    const insFull = full.db.prepare("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)");
    let fullKeys = 0;
    const sqlFullSample = async (ms: number) => throughput(1, ms, () => insFull.run(benchKey(fullKeys++), value(fullKeys)));
    const sqlFullSamples = [await sqlFullSample(boxMs)];
    progress(`${full.driver} FULL`, sqlFullSamples[0]!);
    const sqlNormal = await (async () => {
      const { db, driver } = await openSqlite(join(freshDir(), "kv.db"), "NORMAL");
      const ins = db.prepare("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)");
      const r = await throughput(1, boxMs / 2, (i) => ins.run(benchKey(i), value(i)));
      db.close();
      progress(`${driver} NORMAL`, r);
      return { ...r, driver };
    })();

    // ---- lmdb: putSync commits (and syncs) one transaction per put; put() batches
    const { open } = await import("lmdb");
    const lmdbCase = async (label: string, workers: number, sync: boolean) => {
      const db = open<Uint8Array, string>({ path: freshDir(), encoding: "binary", compression: false });
      const r = await throughput(workers, boxMs, (i) => (sync ? db.putSync(benchKey(i), value(i)) : db.put(benchKey(i), value(i))));
      await db.close();
      progress(label, r);
      return r;
    };
    const lmdbSync = await lmdbCase("lmdb putSync", 1, true);
    const lmdbBatch = await lmdbCase("lmdb put x64", 64, false);

    // ---- wavekv
    // The window rows' baseline (issue 18): the same puts on a node without a log, sampled
    // just before and after each windowed case, same writers.
    const inMemory = async (workers: number) => {
      const node = await Node.open({ id: 1, onWarning: () => undefined });
      const r = await throughput(workers, boxMs / 2, (i) => node.put(benchKey(i), value(i)));
      await node.close();
      return r;
    };
    const wavekv = async (workers: number, policy: "always" | { intervalMs: number }) => {
      const node = await Node.open({ id: 1, dir: freshDir(), fsync: policy, snapshotWalBytes: 1 << 30, onWarning: () => undefined });
      const durable = policy === "always";
      const around = durable ? [floorSample(boxMs / 4)] : [];
      const memAround = durable ? [] : [await inMemory(workers)];
      const sqlAround = durable ? [await sqlFullSample(boxMs / 4)] : [];
      // The WAL counts its own fsyncs (storageStats): observable on every runtime.
      const before = node.storageStats()!.fsyncCount;
      const r = await throughput(workers, boxMs, (i) => node.put(benchKey(i), value(i)));
      const fsyncs = node.storageStats()!.fsyncCount - before;
      if (durable) { sqlAround.push(await sqlFullSample(boxMs / 4)); around.push(floorSample(boxMs / 4)); } else memAround.push(await inMemory(workers));
      await node.close();
      floorSamples.push(...around);
      sqlFullSamples.push(...sqlAround);
      progress(`wavekv ${workers} writer(s) ${durable ? "always" : `interval ${WINDOW_MS} ms`}`, r);
      return { ...r, fsyncs, floor: mean(around), sqlite: mean(sqlAround), memory: mean(memAround) };
    };
    const always = new Map<number, Awaited<ReturnType<typeof wavekv>>>();
    const windowed = new Map<number, Awaited<ReturnType<typeof wavekv>>>();
    try {
      for (const w of [1, 8, 64]) always.set(w, await wavekv(w, "always"));
      for (const w of [1, 8, 64]) windowed.set(w, await wavekv(w, { intervalMs: WINDOW_MS }));
    } finally {
      full.db.close();
    }

    // ---- rows: fsync before ack
    const g = FSYNC_GROUP;
    rows.push({ group: g, name: SQLITE_FULL, value: mean(sqlFullSamples), unit: "puts/s", note: `${full.driver}; journal_mode=WAL; mean of ${sqlFullSamples.length} samples (${range(sqlFullSamples)}/s)` });
    const floorRate = mean(floorSamples);
    rows.push({ group: g, name: "raw write+fdatasync (1 record each)", value: floorRate, unit: "puts/s", baseline: SQLITE_FULL, note: `${RECORD_BYTES}-byte records, synchronous loop: the disk's floor for one durable write at a time; mean of ${floorSamples.length} samples (${range(floorSamples)}/s)` });
    const one = always.get(1)!;
    rows.push({
      group: g, name: "wavekv 1 writer ÷ raw write+fdatasync", value: one.rate / one.floor, unit: "x", ratio: one.rate / one.floor, target: ">= 0.90x",
      note: `wavekv fsync "always", 1 writer: ${one.rate.toFixed(0)} puts/s; raw floor sampled just before and after: ${one.floor.toFixed(0)}/s`,
    });
    for (const [w, r] of always) {
      const batch = r.fsyncs > 0 ? r.ops / r.fsyncs : undefined;
      // Ratio to the SQLite samples taken just before and after this case: the disk's rate
      // drifts several-fold within seconds here, so a ratio across the run would measure the drift.
      rows.push({
        group: g, name: `wavekv fsync "always", ${w} writer${w > 1 ? "s" : ""}`, value: r.rate, unit: "puts/s", baseline: SQLITE_FULL, ratio: r.rate / r.sqlite,
        ...(w === 64 ? { target: ">= 10x" } : {}),
        note: `${batch !== undefined ? `${batch.toFixed(1)} puts per fdatasync (${r.fsyncs} fdatasyncs)` : "no fsync counted"}; ratio to SQLite FULL sampled just before and after (${r.sqlite.toFixed(0)}/s)`,
      });
    }
    rows.push({ group: g, name: "lmdb putSync", value: lmdbSync.rate, unit: "puts/s", baseline: SQLITE_FULL });
    rows.push({ group: g, name: "lmdb put, 64 writers", value: lmdbBatch.rate, unit: "puts/s", baseline: SQLITE_FULL, note: "lmdb batches concurrent puts into one transaction; resolves after commit" });
    const w64 = always.get(64)!;
    if (w64.fsyncs > 0) {
      const batch = w64.ops / w64.fsyncs;
      const ideal = w64.floor * batch;
      rows.push({
        group: g, name: "wavekv 64 writers ÷ (raw floor × batch size)", value: w64.rate / ideal, unit: "x", ratio: w64.rate / ideal,
        target: ">= 0.50x", note: `batch ${batch.toFixed(1)} puts per fdatasync; floor sampled just before and after: ${w64.floor.toFixed(0)}/s; floor × batch = ${ideal.toFixed(0)} puts/s`,
      });
    } else {
      rows.push({ group: g, name: "wavekv 64 writers ÷ (raw floor × batch size)", value: NaN, unit: "x", target: ">= 0.50x", note: "not measured: no fsync was counted" });
    }

    // ---- rows: interval window (a put resolves after its write; bounded loss on machine crash)
    const h = WINDOW_GROUP;
    rows.push({ group: h, name: SQLITE_NORMAL, value: sqlNormal.rate, unit: "puts/s", note: `${sqlNormal.driver}; WAL + NORMAL syncs at checkpoints, not per commit` });
    rows.push({ group: h, name: "raw write, no fsync (ceiling)", value: writeOnly.rate, unit: "puts/s", baseline: SQLITE_NORMAL, note: `${RECORD_BYTES}-byte records, one write syscall each` });
    for (const [w, r] of windowed) {
      rows.push({ group: h, name: `wavekv fsync every ${WINDOW_MS} ms, ${w} writer${w > 1 ? "s" : ""}`, value: r.rate, unit: "puts/s", baseline: SQLITE_NORMAL });
    }
    for (const [w, r] of windowed) {
      rows.push({ group: h, name: `${IN_MEMORY}, ${w} writer${w > 1 ? "s" : ""}`, value: r.memory, unit: "puts/s", baseline: SQLITE_NORMAL, note: "no dir: the same puts without a log, sampled just before and after the windowed case" });
    }
    for (const [w, r] of windowed) {
      rows.push({
        group: h, name: `wavekv fsync every ${WINDOW_MS} ms ÷ in-memory Node.put, ${w} writer${w > 1 ? "s" : ""}`, value: r.rate / r.memory, unit: "x", ratio: r.rate / r.memory,
        ...(w === 64 ? { target: ">= 0.35x" } : {}),
        note: `${r.rate.toFixed(0)} vs ${r.memory.toFixed(0)} puts/s${w === 1 ? "; one writer pays one write syscall per put (acknowledged once written)" : ""}`,
      });
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return rows;
};
