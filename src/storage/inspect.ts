/**
 * `wavekv inspect <dir>`: validates and summarizes a data directory without changing
 * it (no lock taken, no truncation). The CLI prints `formatInspect(report)` and exits
 * non-zero when `report.ok` is false.
 *
 *   const report = inspectDir("./data");
 *   console.log(formatInspect(report));
 *   process.exitCode = report.ok ? 0 : 1;
 *
 * It applies the same rules as open (src/storage/storage.ts) and says what open would do:
 * which snapshot it loads, which WAL offset it starts from, whether a tail would be
 * truncated or open refused (CORRUPT_WAL, MISSING_SNAPSHOT, MISSING_WAL). Missing files
 * whose loss open would refuse or warn about are damage (exit 1), as damaged bytes are.
 */
import * as fs from "node:fs";
import { join } from "node:path";
import { decodeRecords } from "../codec/records.js";
import { D_KEY_LEN, D_KIND, D_VAL_LEN, RecordKind, forEachRecord, type DecodedBatch } from "../core/record.js";
import { LOCK_FILE, UUID_FILE, files, groupNodeFiles, processAlive, readWholeFile } from "./datadir.js";
import { WAL_HEADER_BYTES, parseWalHeader, type WalHeader } from "./wal-file.js";
import { describeTail, scanWal, tailDamage } from "./wal-scan.js";
import { SNAPSHOT_HEADER_BYTES, parseSnapshot, parseSnapshotHeader, type SnapshotHeader } from "./snapshot.js";
import { firstBadBlock } from "./snapshot-body.js";
import { judgeCoverage } from "./storage.js";
import type { ErrorCode } from "../core/errors.js";

export interface SeqRange { node: number; min: number; max: number; count: number }

export interface RecordStats {
  records: number;
  values: number;
  tombstones: number;
  addPeer: number;
  removePeer: number;
  seqMarks: number;
  /** Highest kind-4 high-water mark, 0 if none. */
  maxSeqMark: number;
  /** Per origin node, over kinds 0/1/5. */
  seqRanges: SeqRange[];
  keyBytes: number;
  valueBytes: number;
  /** Kind-6 records: atomic batches in a WAL (docs/FORMAT.md §3.1). */
  batchHeads: number;
  /** Kind-7 records: batch ranges a snapshot keeps (docs/FORMAT.md §1). */
  batchRanges: number;
}

/** One file's verdict; `H` is its header's type (the WAL's or a snapshot's). */
export interface FileReport<H extends WalHeader | SnapshotHeader = WalHeader | SnapshotHeader> {
  role: "snapshot" | "snapshot.bak" | "wal";
  path: string;
  exists: boolean;
  size: number;
  /** Exists and every byte is valid. */
  ok: boolean;
  problem?: string;
  header?: H;
  stats?: RecordStats;
  /** First damaged byte (start of the first bad record, or 0 for a bad header). */
  damagedAt?: number;
  /** WAL only: "tail" is truncated by the next open; "fatal" makes open fail with CORRUPT_WAL. */
  damage?: "tail" | "fatal";
  /** WAL only: offset replay starts from (after what the loaded snapshot covers). */
  replayFrom?: number;
  /** WAL version 2 only: zero bytes after the last record (a preallocated tail, FORMAT §3: the clean end). */
  preallocated?: number;
}

export interface NodeReport {
  nodeId: number;
  snapshot: FileReport<SnapshotHeader>;
  backup: FileReport<SnapshotHeader>;
  wal: FileReport<WalHeader>;
  /** What open would load: "snapshot", "snapshot.bak" or "none". */
  loads: "snapshot" | "snapshot.bak" | "none";
  /** Whether open would succeed (possibly repairing a torn tail). */
  opens: boolean;
  /** Why it would not: CORRUPT_WAL, MISSING_SNAPSHOT or MISSING_WAL (this one unless acceptDataLoss). */
  fails?: ErrorCode;
  /** Writes the files say existed and that are gone (missing or unreadable files): open's refusal or warning. */
  missing?: string;
}

export interface InspectReport {
  dir: string;
  uuid: string | null;
  lock: { pid: number | null; alive: boolean } | null;
  nodes: NodeReport[];
  /** No damage anywhere (a missing snapshot is not damage). */
  ok: boolean;
  problems: string[];
  /**
   * `node_<id>.wal.damaged-<offset>` files: damaged last records an earlier open kept
   * before truncating them (they may have been acknowledged). Listed, not damage: the
   * log itself is consistent again.
   */
  keptDamaged: string[];
  /**
   * The subset of `keptDamaged` that holds unsynced writes (a version 2 log's valid
   * records after a run of zeros: the copy starts with a zero frame header), not a
   * damaged record: no fsync covered them.
   */
  keptUnsynced: string[];
}

export function inspectDir(dir: string, nodeId?: number): InspectReport {
  const problems: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (e) {
    return { dir, uuid: null, lock: null, nodes: [], ok: false, problems: [`cannot read ${dir}: ${(e as Error).message}`], keptDamaged: [], keptUnsynced: [] };
  }
  let uuid: string | null = null;
  if (names.includes(UUID_FILE)) uuid = fs.readFileSync(join(dir, UUID_FILE), "utf8").trim();
  let lock: InspectReport["lock"] = null;
  if (names.includes(LOCK_FILE)) {
    const pid = Number(fs.readFileSync(join(dir, LOCK_FILE), "utf8").split("\n", 1)[0]);
    const valid = Number.isSafeInteger(pid) && pid > 0;
    lock = { pid: valid ? pid : null, alive: valid && processAlive(pid) };
  }
  const ids = new Set<number>();
  if (nodeId !== undefined) ids.add(nodeId);
  else for (const id of groupNodeFiles(names).keys()) ids.add(id);
  if (ids.size === 0) problems.push(`no node files (node_<id>.wal / .snapshot) in ${dir}`);
  const nodes = [...ids].sort((a, b) => a - b).map((id) => inspectNode(dir, id));
  for (const n of nodes) {
    for (const fr of [n.snapshot, n.backup, n.wal]) if (fr.exists && !fr.ok) problems.push(`${fr.path}: ${fr.problem}`);
    if (n.missing) problems.push(n.missing);
  }
  const keptDamaged = names.filter((n) => /^node_\d+\.wal\.damaged-\d+(-\d+)?$/.test(n)).sort().map((n) => join(dir, n));
  return { dir, uuid, lock, nodes, ok: problems.length === 0, problems, keptDamaged, keptUnsynced: keptDamaged.filter(startsWithZeroHeader) };
}

/** A kept copy whose first frame header (8 bytes) is all zero begins at a run of zeros: unsynced writes, not a damaged record. */
function startsWithZeroHeader(path: string): boolean {
  const head = new Uint8Array(8);
  let fd: number | undefined;
  try {
    fd = fs.openSync(path, "r");
    return fs.readSync(fd, head, 0, 8, 0) === 8 && head.every((b) => b === 0);
  } catch {
    return false;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function inspectNode(dir: string, nodeId: number): NodeReport {
  const f = files(dir, nodeId);
  const snapshot = inspectSnapshot("snapshot", f.snapshot, nodeId);
  const backup = inspectSnapshot("snapshot.bak", f.snapshotBak, nodeId);
  const loaded = snapshot.ok ? snapshot : backup.ok ? backup : null;
  const wal = inspectWal(f.wal, nodeId, loaded?.header);
  const report: NodeReport = {
    nodeId,
    snapshot,
    backup,
    wal,
    loads: loaded === null ? "none" : loaded.role === "snapshot" ? "snapshot" : "snapshot.bak",
    opens: !wal.exists || wal.damage !== "fatal",
  };
  if (!report.opens) report.fails = "CORRUPT_WAL";
  // Open's rules for missing files, on the headers read above (a WAL it refuses anyway is not judged).
  if (report.opens) {
    const walHeader = wal.exists ? wal.header ?? null : null;
    const snap = loaded?.header ? { header: loaded.header, path: loaded.path } : null;
    const c = judgeCoverage(f, walHeader, snap, snapshot.exists || backup.exists);
    if (c.refuse) {
      report.opens = false;
      report.fails = c.refuse.code;
      report.missing = `${c.refuse.message} (open fails with ${c.refuse.code})`;
    } else if (c.warning) report.missing = c.warning;
  }
  return report;
}

function readIfExists(path: string): Uint8Array | null {
  try {
    return readWholeFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw e;
  }
}

function inspectSnapshot(role: "snapshot" | "snapshot.bak", path: string, nodeId: number): FileReport<SnapshotHeader> {
  const bytes = readIfExists(path);
  if (bytes === null) return { role, path, exists: false, size: 0, ok: false, problem: "missing" };
  const report: FileReport<SnapshotHeader> = { role, path, exists: true, size: bytes.length, ok: false };
  const header = parseSnapshotHeader(bytes);
  if (typeof header !== "string") report.header = { ...header };
  const parsed = parseSnapshot(bytes, nodeId);
  if (typeof parsed === "string") {
    report.problem = parsed;
    report.damagedAt = typeof header === "string" ? 0 : damagedOffsetInSnapshot(bytes, header);
    return report;
  }
  report.ok = true;
  report.stats = statsOf(parsed.batch);
  return report;
}

/** Start of the first bad record (v2: block) in a snapshot body, or the file end if they are fine (a count/length mismatch). */
function damagedOffsetInSnapshot(bytes: Uint8Array, header: SnapshotHeader): number {
  if (header.version === 2) return header.headerBytes + firstBadBlock(bytes.subarray(header.headerBytes));
  const b = decodeRecords(bytes.subarray(SNAPSHOT_HEADER_BYTES), "framed", header.base);
  return b.stop.reason === "end" ? bytes.length : SNAPSHOT_HEADER_BYTES + b.stop.offset;
}

function inspectWal(path: string, nodeId: number, snapHeader?: SnapshotHeader): FileReport<WalHeader> {
  const bytes = readIfExists(path);
  if (bytes === null) return { role: "wal", path, exists: false, size: 0, ok: true };
  const report: FileReport<WalHeader> = { role: "wal", path, exists: true, size: bytes.length, ok: false };
  const header = parseWalHeader(bytes);
  if (typeof header === "string") {
    return { ...report, problem: `bad header: ${header} (open fails with CORRUPT_WAL)`, damagedAt: 0, damage: "fatal" };
  }
  report.header = { ...header };
  if (header.nodeId !== nodeId) {
    return { ...report, problem: `header names node ${header.nodeId} (open fails with CORRUPT_WAL)`, damagedAt: 8, damage: "fatal" };
  }
  const covers = snapHeader !== undefined && snapHeader.walGeneration === header.generation;
  const scan = scanWal(bytes, covers ? snapHeader!.walOffset : WAL_HEADER_BYTES);
  if (typeof scan === "string") return { ...report, problem: scan, damagedAt: 0, damage: "fatal" };
  report.replayFrom = scan.start;
  report.stats = statsOf(scan.batch);
  if (scan.damage) {
    report.damagedAt = scan.damage.offset;
    const tail = tailDamage(scan.damage, bytes.length - scan.damage.offset, bytes.subarray(scan.damage.offset), scan.version);
    if (tail === null) {
      report.damage = "fatal";
      report.problem = `damaged record (${scan.damage.reason}) at offset ${scan.damage.offset}, valid record at ${scan.damage.nextValid} (open fails with CORRUPT_WAL)`;
    } else {
      report.damage = "tail";
      report.problem = `${describeTail(path, tail, scan.damage.reason, null)} (open truncates it)`;
    }
    return report;
  }
  if (scan.validEnd < bytes.length) report.preallocated = bytes.length - scan.validEnd;
  report.ok = true;
  return report;
}

export function statsOf(batch: DecodedBatch): RecordStats {
  const s: RecordStats = { records: batch.count, values: 0, tombstones: 0, addPeer: 0, removePeer: 0, seqMarks: 0, maxSeqMark: 0, seqRanges: [], keyBytes: 0, valueBytes: 0, batchHeads: 0, batchRanges: 0 };
  const ranges = new Map<number, SeqRange>();
  forEachRecord(batch, (w, at, i) => {
    const kind = w[at + D_KIND]!;
    if (kind === RecordKind.Value || kind === RecordKind.Tombstone || kind === RecordKind.Expiring) {
      if (kind !== RecordKind.Tombstone) s.values++; // kind 5: an expiring value, its 8 expiry bytes in valueBytes
      else s.tombstones++;
      s.keyBytes += w[at + D_KEY_LEN]!;
      s.valueBytes += kind !== RecordKind.Tombstone ? w[at + D_VAL_LEN]! : 0;
      const node = batch.node(i);
      const seq = batch.seq(i);
      const r = ranges.get(node);
      if (!r) ranges.set(node, { node, min: seq, max: seq, count: 1 });
      else {
        r.count++;
        if (seq < r.min) r.min = seq;
        if (seq > r.max) r.max = seq;
      }
    } else if (kind === RecordKind.BatchHead) s.batchHeads++;
    else if (kind === RecordKind.BatchRange) s.batchRanges++;
    else if (kind === RecordKind.AddPeer) s.addPeer++;
    else if (kind === RecordKind.RemovePeer) s.removePeer++;
    else if (kind === RecordKind.SeqMark) {
      s.seqMarks++;
      if (batch.seq(i) > s.maxSeqMark) s.maxSeqMark = batch.seq(i);
    }
  });
  s.seqRanges = [...ranges.values()].sort((a, b) => a.node - b.node);
  return s;
}

export function formatInspect(r: InspectReport): string {
  const out: string[] = [`data directory ${r.dir}`];
  out.push(`  uuid: ${r.uuid ?? "(none)"}`);
  if (r.lock) out.push(`  lock: held by pid ${r.lock.pid ?? "?"} (${r.lock.alive ? "running" : "not running: stale, the next open takes it over"})`);
  for (const n of r.nodes) {
    out.push(`node ${n.nodeId}: open would load ${n.loads === "none" ? "no snapshot" : n.loads} and ${n.opens ? "succeed" : `FAIL (${n.fails})`}`);
    for (const fr of [n.snapshot, n.backup, n.wal]) out.push(...formatFile(fr));
  }
  for (const k of r.keptDamaged) {
    out.push(r.keptUnsynced.includes(k)
      ? `kept: ${k} holds unsynced writes an earlier open found after a run of zeros and did not replay (no fsync covered them); delete it once examined`
      : `kept: ${k} holds a damaged WAL record an earlier open truncated (it may have been acknowledged); delete it once examined`);
  }
  for (const p of r.problems) out.push(`problem: ${p}`);
  out.push(r.ok ? "OK" : `DAMAGED (${r.problems.length} problem${r.problems.length === 1 ? "" : "s"})`);
  return out.join("\n");
}

function formatFile(fr: FileReport): string[] {
  if (!fr.exists) return [`  ${fr.role.padEnd(12)} missing`];
  const lines = [`  ${fr.role.padEnd(12)} ${fr.path}  ${fr.size} bytes  ${fr.ok ? "valid" : "DAMAGED"}`];
  if (fr.header) lines.push(`    header: ${Object.entries(fr.header).map(([k, v]) => `${k}=${v}`).join(" ")}`);
  if (fr.replayFrom !== undefined) lines.push(`    replay from offset ${fr.replayFrom}`);
  if (fr.preallocated !== undefined) lines.push(`    records end at offset ${fr.size - fr.preallocated}; ${fr.preallocated} preallocated zero bytes follow (the clean end)`);
  if (fr.stats) {
    const s = fr.stats;
    lines.push(`    records ${s.records}: ${s.values} values, ${s.tombstones} tombstones, ${s.addPeer} add-peer, ${s.removePeer} remove-peer, ${s.seqMarks} seq marks (max ${s.maxSeqMark})${s.batchHeads > 0 ? `, ${s.batchHeads} batch heads` : ""}${s.batchRanges > 0 ? `, ${s.batchRanges} batch ranges` : ""}; keys ${s.keyBytes} B, values ${s.valueBytes} B`);
    for (const q of s.seqRanges) lines.push(`    origin ${q.node}: seq ${q.min}..${q.max} (${q.count} records)`);
  }
  if (fr.damagedAt !== undefined) lines.push(`    first damaged offset: ${fr.damagedAt}`);
  if (fr.problem && !fr.ok) lines.push(`    ${fr.problem}`);
  return lines;
}

/**
 * The CLI action: prints the report (text, or JSON with `json`) through `out` and
 * returns the exit code: 0 when nothing is damaged, 1 otherwise.
 */
export async function runInspect(dir: string, opts: { id?: number; json?: boolean; out?: (line: string) => void } = {}): Promise<number> {
  const out = opts.out ?? ((l: string) => console.log(l));
  const report = inspectDir(dir, opts.id);
  out(opts.json ? JSON.stringify(report, null, 2) : formatInspect(report));
  return report.ok ? 0 : 1;
}
