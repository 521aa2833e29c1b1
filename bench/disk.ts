/**
 * Disk per key: the snapshot of 1M keys (the keys of bench/memory.ts, 100-byte values)
 * against SQLite holding the same keys and values, measured in this run, and lmdb as
 * the issue cites it (lmdb is not a dependency; issue 18: 129 B a key).
 *
 * wavekv: the snapshot file a node writes (`persist`), bytes / keys. SQLite: one table
 * `kv (k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID` filled in one transaction, then
 * checkpointed and vacuumed (its smallest form), bytes / keys; better-sqlite3 on Node,
 * bun:sqlite on Bun, as bench/peers-durable.ts.
 *
 *   node --import tsx bench/disk.ts [--quick]      bun bench/disk.ts [--quick]
 */
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Node } from "../src/node/node.js";
import { benchKey, benchValues, payloadBytes, benchKeys } from "./measure.js";
import { openSqlite } from "./peers-durable.js";
import { formatTable, withRatios, withVerdicts, type BenchFn, type Row } from "./report.js";

/** The same keys and values in SQLite (bench/peers-durable.ts's table and driver); its file once closed (the WAL checkpointed into it) and vacuumed. */
async function sqliteBytes(path: string, n: number, values: Uint8Array[]): Promise<{ bytes: number; driver: string }> {
  const { db, driver } = await openSqlite(path, "NORMAL");
  const put = db.prepare("INSERT INTO kv (k, v) VALUES (?, ?)");
  db.exec("BEGIN");
  for (let i = 0; i < n; i++) put.run(benchKey(i), values[i]!);
  db.exec("COMMIT");
  db.exec("PRAGMA journal_mode = DELETE; VACUUM");
  db.close();
  return { bytes: fs.statSync(path).size, driver: driver.replace(/ [0-9.]+$/, "") };
}

export const runDiskBenchmarks: BenchFn = async ({ quick, onProgress }) => {
  const n = quick ? 100_000 : 1_000_000;
  const label = quick ? `${n / 1000}k` : "1M";
  const group = `disk per key: snapshot of ${label} keys, 100 B values`;
  const root = fs.mkdtempSync(join(tmpdir(), "wavekv-bench-disk-"));
  const values = benchValues(n, 100, 21);
  const rows: Row[] = [];
  try {
    const dir = join(root, "wavekv");
    const node = await Node.open({ id: 1, dir, fsync: "never", snapshotWalBytes: Number.MAX_SAFE_INTEGER, limits: { maxKeys: n + 1 }, onWarning: () => undefined });
    for (let i = 0; i < n; i += 1_000) await Promise.all(Array.from({ length: Math.min(1_000, n - i) }, (_, j) => node.put(benchKey(i + j), values[i + j]!)));
    await node.persist();
    await node.close();
    const snap = fs.readdirSync(dir).find((f) => f.endsWith(".snapshot"))!;
    const snapBytes = fs.statSync(join(dir, snap)).size;
    onProgress?.(`disk: wavekv snapshot ${snapBytes} B`);
    const sql = await sqliteBytes(join(root, "kv.sqlite"), n, values);
    onProgress?.(`disk: SQLite ${sql.bytes} B`);
    const raw = payloadBytes(benchKeys(n), 100);
    const SQLITE = `SQLite (${sql.driver}), WITHOUT ROWID, vacuumed`;
    rows.push({ group, name: SQLITE, value: sql.bytes / n, unit: "B", note: "same keys and values, measured in this run" });
    rows.push({ group, name: "lmdb (issue 18)", value: 129, unit: "B", reference: "issue 18's figure; lmdb is not a dependency, not measured in this run" });
    rows.push({ group, name: "raw key + value", value: raw / n, unit: "B", note: "UTF-8 key bytes + value bytes: what any store holds at least" });
    rows.push({ group, name: "wavekv snapshot (v2)", value: snapBytes / n, unit: "B", baseline: SQLITE, target: "<= 120 B", note: `${snapBytes} B file; docs/FORMAT.md §4.2` });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  return withVerdicts(withRatios(rows));
};

if ((import.meta as { main?: boolean }).main ?? process.argv[1]?.endsWith("disk.ts")) {
  const rows = await runDiskBenchmarks({ quick: process.argv.includes("--quick"), onProgress: (m) => console.error(m) });
  console.log(formatTable(rows));
}
