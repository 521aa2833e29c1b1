/**
 * Kernel benchmarks: each WASM kernel against its pure-TS twin and the native or
 * straightforward alternative, measured in the same run (tinybench, median latency).
 *
 *   node --import tsx bench/kernels.ts [--quick]
 *   bun bench/kernels.ts [--quick]
 *   const rows = await runKernelBenchmarks({ quick: true });   // from bench/index.ts
 *
 * Cases: CRC-32 of a 64 MiB buffer and of 100-byte records; encode/decode of 100-byte
 * entries; a merge's winners framed for the WAL (the kernel picking them from the batch,
 * against record objects with value copies encoded again); a batched LWW merge of 100k
 * entries that all lose, all win, or half and half, with the JS heap growth per entry of
 * the all-lose case.
 */
import { Bench } from "tinybench";
import * as v8 from "node:v8";
import * as vm from "node:vm";
import * as zlib from "node:zlib";
import { crc32, crc32Reference, crc32Spans, crc32SpansReference, crc32Wasm } from "../src/codec/crc.js";
import { decodeRecords, decodeRecordsReference, encodePicked, encodeRecords, encodeRecordsReference } from "../src/codec/records.js";
import { RecordKind, type DecodedBatch, type Framing, type RecordInput } from "../src/core/record.js";
import type { MergeIndex, MergeLimits } from "../src/index/merge-index.js";
import { createMergeIndex } from "../src/index/kernel-index.js";
import { createMergeIndexReference } from "../src/index/reference.js";
import { compareStamps } from "../src/core/stamp.js";
import { R_DESC, R_IN, R_REFUSED } from "../src/kernel/abi.js";
import { kernel } from "../src/kernel/instance.js";
import { benchKeys, benchValues, isBun, randomBytes } from "./measure.js";
import { formatTable, machine, runtimeName, withRatios, withVerdicts, type Row } from "./report.js";

export type { Row };

type Crc = (data: Uint8Array, seed?: number) => number;
const zlibCrc32 = (zlib as { crc32?: Crc }).crc32;
const bunCrc32 = (globalThis as { Bun?: { hash: { crc32: Crc } } }).Bun?.hash.crc32;
const onNode = !isBun;

/** A full GC where the runtime allows it (Node: flag set at run time, then `gc` from a fresh context). */
function fullGc(): void {
  const bun = (globalThis as { Bun?: { gc(force: boolean): void } }).Bun;
  if (bun) return bun.gc(true);
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return g();
  v8.setFlagsFromString("--expose-gc");
  (vm.runInNewContext("gc") as () => void)();
}

interface Case { name: string; fn: () => unknown; before?: () => void; after?: () => void }

/** Runs cases in one tinybench and returns median latency (ms) by name. */
async function measure(cases: Case[], quick: boolean, onProgress?: (m: string) => void, label = ""): Promise<Map<string, number>> {
  const bench = new Bench({ time: quick ? 100 : 600, warmupTime: quick ? 20 : 100, iterations: 3, warmupIterations: 1 });
  for (const c of cases) {
    bench.add(c.name, c.fn, { beforeEach: c.before, afterEach: c.after });
  }
  onProgress?.(`kernels: ${label} (${cases.length} cases)`);
  fullGc(); // the setup's garbage must not be collected inside the first case's samples
  await bench.run();
  const out = new Map<string, number>();
  for (const t of bench.tasks) {
    const r = t.result as { state: string; latency?: { p50: number }; error?: unknown };
    if (r.state !== "completed" || !r.latency) throw new Error(`bench case ${t.name} did not complete: ${String(r.error ?? r.state)}`);
    out.set(t.name, r.latency.p50);
  }
  return out;
}

const gbps = (bytes: number, ms: number) => bytes / (ms / 1000) / 1e9;
const perSec = (n: number, ms: number) => n / (ms / 1000);

// ---------------------------------------------------------------------------------

async function crcLarge(quick: boolean, onProgress?: (m: string) => void): Promise<Row[]> {
  const group = "crc32 64 MiB";
  const n = 64 * 1024 * 1024;
  const data = randomBytes(n, 7);
  const want = crc32Reference(data);
  // The kernel alone: data already in linear memory (what the copy costs is the difference).
  const k = kernel();
  const ptr = k.reserve(R_IN, n); // a region crc32Wasm does not use
  k.u8.set(data, ptr);
  const cases: Case[] = [
    { name: "wasm (with copy-in)", fn: () => crc32Wasm(data) },
    { name: "wasm, data in linear memory", fn: () => k.exports.crc32(ptr, n, 0) },
    { name: "ts reference", fn: () => crc32Reference(data) },
  ];
  if (zlibCrc32) cases.push({ name: "node:zlib.crc32", fn: () => zlibCrc32(data) });
  if (bunCrc32) cases.push({ name: "Bun.hash.crc32", fn: () => bunCrc32(data) });
  cases.push({ name: "crc32() (public)", fn: () => crc32(data) });
  for (const c of cases) if (((c.fn() as number) >>> 0) !== want) throw new Error(`${c.name}: wrong CRC`);
  const ms = await measure(cases, quick, onProgress, group);
  return cases.map((c) => ({
    group, name: c.name, value: gbps(n, ms.get(c.name)!), unit: "GB/s",
    baseline: c.name === "ts reference" ? undefined : "ts reference",
    ...(c.name.startsWith("wasm") && onNode ? { target: ">= 4 GB/s" } : {}),
  }));
}

async function crcRecords(quick: boolean, onProgress?: (m: string) => void): Promise<Row[]> {
  const group = "crc32 100 B records";
  const count = quick ? 50_000 : 200_000;
  const size = 100;
  const data = randomBytes(count * size, 9);
  const spans = new Uint32Array(count * 2);
  for (let i = 0; i < count; i++) { spans[2 * i] = i * size; spans[2 * i + 1] = size; }
  const views = Array.from({ length: count }, (_, i) => data.subarray(i * size, (i + 1) * size));
  const perRecord = (f: Crc) => () => { let x = 0; for (let i = 0; i < count; i++) x ^= f(views[i]!); return x; };
  // The kernel alone: records and spans already in linear memory (as after a decode's copy).
  // Regions crc32Spans does not touch (it uses CRC, AUX, OUT): a pointer from reserve() is
  // only good until the next reserve() of the same region.
  const k = kernel();
  const base = k.reserve(R_IN, data.length), sp = k.reserve(R_DESC, count * 8), out = k.reserve(R_REFUSED, count * 4);
  k.u8.set(data, base);
  k.u32.set(spans, sp >>> 2);
  const cases: Case[] = [
    { name: "wasm batch (4 in lockstep)", fn: () => crc32Spans(data, spans) },
    { name: "wasm batch, data in linear memory", fn: () => k.exports.crc32Spans(base, sp, count, out) },
    { name: "wasm, one call per record", fn: perRecord(crc32Wasm) },
    { name: "crc32() per record", fn: perRecord(crc32) },
    { name: "ts reference per record", fn: perRecord(crc32Reference) },
    { name: "ts reference batch", fn: () => crc32SpansReference(data, spans) },
  ];
  if (zlibCrc32) cases.push({ name: "node:zlib.crc32 per record", fn: perRecord(zlibCrc32) });
  if (bunCrc32) cases.push({ name: "Bun.hash.crc32 per record", fn: perRecord(bunCrc32) });
  const check = crc32SpansReference(data, spans);
  if (crc32Spans(data, spans).some((c, i) => c !== check[i])) throw new Error("crc32Spans disagrees with the reference");
  const ms = await measure(cases, quick, onProgress, group);
  return cases.map((c) => ({
    group, name: c.name, value: gbps(count * size, ms.get(c.name)!), unit: "GB/s",
    baseline: c.name === "ts reference per record" ? undefined : "ts reference per record",
    ...(c.name.startsWith("wasm batch") && onNode ? { target: ">= 3 GB/s" } : {}),
  }));
}

function entries(n: number, ts: number, valueSize = 100): RecordInput[] {
  const keys = benchKeys(n);
  const values = benchValues(n, valueSize, 3);
  return keys.map((key, i) => ({ kind: RecordKind.Value, key, value: values[i]!, timestamp: ts + (i % 1000), node: 1 + (i % 3), seq: i + 1 }));
}

async function codec(quick: boolean, onProgress?: (m: string) => void): Promise<Row[]> {
  const rows: Row[] = [];
  const n = quick ? 5_000 : 20_000;
  const records = entries(n, 1_700_000_000_000);
  const base = 1_700_000_000_000;
  for (const framing of ["framed", "bare"] as Framing[]) {
    const bytes = encodeRecords(records, framing, base);
    const group = `codec ${framing}, ${n / 1000}k × 100 B`;
    const cases: Case[] = [
      { name: "encode wasm", fn: () => encodeRecords(records, framing, base) },
      { name: "encode ts reference", fn: () => encodeRecordsReference(records, framing, base) },
      { name: "decode wasm", fn: () => decodeRecords(bytes, framing, base) },
      { name: "decode ts reference", fn: () => decodeRecordsReference(bytes, framing, base) },
    ];
    const ms = await measure(cases, quick, onProgress, group);
    for (const c of cases) {
      const op = c.name.split(" ")[0]!;
      rows.push({ group, name: c.name, value: perSec(n, ms.get(c.name)!), unit: "entries/s", baseline: c.name.endsWith("reference") ? undefined : `${op} ts reference` });
    }
  }
  return rows;
}

/**
 * A merged remote batch's winners framed for the WAL: the kernel encodes them from the
 * batch's own bytes and descriptors (`encodePicked`, what the node does), against the
 * route it replaced — a record object per winner with a value copy, encoded again (copied
 * back into linear memory). Every other record wins.
 */
async function frameWinners(quick: boolean, onProgress?: (m: string) => void): Promise<Row[]> {
  const n = quick ? 4_096 : 16_384;
  const group = `frame merge winners for the WAL, ${n / 2 / 1000}k of ${n / 1000}k × 100 B`;
  const base = 1_700_000_000_000;
  const batch = decodeRecords(encodeRecords(entries(n, base), "bare", 0), "bare", 0);
  const w = new Uint32Array((n / 2) * 3);
  for (let j = 0; j < n / 2; j++) { w[j * 3] = j * 2; w[j * 3 + 1] = j; }
  const asObjects = () => {
    const out: RecordInput[] = [];
    for (let j = 0; j < w.length; j += 3) {
      const i = w[j]!;
      const kind = batch.kind(i);
      out.push({ kind, key: batch.keyBytes(i), value: kind === RecordKind.Value ? batch.value(i) : null, timestamp: batch.timestamp(i), node: batch.node(i), seq: batch.seq(i) });
    }
    return encodeRecords(out, "framed", base);
  };
  const cases: Case[] = [
    { name: "kernel, picked from the batch", fn: () => encodePicked(batch, w, 3, "framed", base) },
    { name: "record objects + value copies, encoded", fn: asObjects },
  ];
  if (Buffer.compare(encodePicked(batch, w, 3, "framed", base), asObjects()) !== 0) throw new Error("encodePicked disagrees with encoding the records");
  const ms = await measure(cases, quick, onProgress, group);
  return cases.map((c) => ({
    group, name: c.name, value: perSec(n / 2, ms.get(c.name)!), unit: "entries/s",
    baseline: c.name.startsWith("kernel") ? "record objects + value copies, encoded" : undefined,
  }));
}

// ---------------------------------------------------------------------------------
// merge

/** The straightforward merge a TS author would write first: decode each key, one Map. */
class PlainIndex {
  readonly map = new Map<string, { ts: number; node: number; seq: number }>();
  readonly decoder = new TextDecoder();
  merge(batch: DecodedBatch): number[] {
    const winners: number[] = [];
    for (let i = 0; i < batch.count; i++) {
      const key = this.decoder.decode(batch.keyBytes(i));
      const ts = batch.timestamp(i), node = batch.node(i), seq = batch.seq(i);
      const cur = this.map.get(key);
      if (cur === undefined || compareStamps(ts, node, seq, cur.ts, cur.node, cur.seq) > 0) {
        this.map.set(key, { ts, node, seq });
        winners.push(i);
      }
    }
    return winners;
  }
}

const LIMITS: MergeLimits = { maxKeyBytes: 1024, maxValueBytes: 1 << 20, maxTimestamp: Number.MAX_SAFE_INTEGER };

async function merge(quick: boolean, onProgress?: (m: string) => void): Promise<Row[]> {
  const n = 100_000;
  const base = 1_000_000;
  const resident = entries(n, base, 16);
  // Batches against a resident state stamped `base`: older (lose), newer (win), alternating.
  const shapes: [string, (i: number) => number][] = [
    ["all-lose", () => -5000],
    ["all-win", () => 5000],
    ["50/50", (i) => (i % 2 === 0 ? -5000 : 5000)],
  ];
  const residentBytes = encodeRecordsReference(resident, "bare", 0);
  const wasm = createMergeIndex(), twin = createMergeIndexReference(), plain = new PlainIndex();
  wasm.merge(decodeRecords(residentBytes, "bare", 0), LIMITS); wasm.commit();
  twin.merge(decodeRecordsReference(residentBytes, "bare", 0), LIMITS); twin.commit();
  plain.merge(decodeRecordsReference(residentBytes, "bare", 0));
  const snapshot = new Map(plain.map);

  const rows: Row[] = [];
  for (const [shape, shift] of shapes) {
    const group = `merge 100k, ${shape}`;
    const batchBytes = encodeRecordsReference(resident.map((e, i) => ({ ...e, timestamp: e.timestamp + shift(i) })), "bare", 0);
    const wBatch = decodeRecords(batchBytes, "bare", 0);
    const tBatch = decodeRecordsReference(batchBytes, "bare", 0);
    // Each timed call is one merge; the state is restored outside the timing (before and
    // after each call: tinybench also calls a task once, hook-free, to detect async-ness).
    const restoreWasm = () => wasm.rollback(), restoreTwin = () => twin.rollback();
    const restorePlain = shape === "all-lose" ? undefined : () => { for (const [k, v] of snapshot) plain.map.set(k, v); };
    const cases: Case[] = [
      { name: "wasm", fn: () => wasm.merge(wBatch, LIMITS), before: restoreWasm, after: restoreWasm },
      { name: "ts twin", fn: () => twin.merge(tBatch, LIMITS), before: restoreTwin, after: restoreTwin },
      { name: "straightforward ts", fn: () => plain.merge(tBatch), before: restorePlain, after: restorePlain },
      // The whole path from bytes: decode, then merge (the twin pipeline decodes in TS).
      { name: "wasm decode + merge", fn: () => wasm.merge(decodeRecords(batchBytes, "bare", 0), LIMITS), before: restoreWasm, after: restoreWasm },
      { name: "ts decode + twin merge", fn: () => twin.merge(decodeRecordsReference(batchBytes, "bare", 0), LIMITS), before: restoreTwin, after: restoreTwin },
      { name: "ts decode + straightforward", fn: () => plain.merge(decodeRecordsReference(batchBytes, "bare", 0)), before: restorePlain, after: restorePlain },
    ];
    // Same decisions everywhere before anything is timed.
    const w = wasm.merge(wBatch, LIMITS).winners.length / 3; wasm.rollback();
    const t = twin.merge(tBatch, LIMITS).winners.length / 3; twin.rollback();
    const p = plain.merge(tBatch).length; for (const [k, v] of snapshot) plain.map.set(k, v);
    if (w !== t || t !== p) throw new Error(`${group}: winners differ (wasm ${w}, twin ${t}, plain ${p})`);
    const ms = await measure(cases, quick, onProgress, group);
    const row = (name: string, baseline?: string, target?: string): Row => ({
      group, name, value: perSec(n, ms.get(name)!), unit: "entries/s", baseline, ...(target ? { target } : {}),
    });
    rows.push(
      row("wasm", "ts twin", shape === "all-lose" ? ">= 2.5x" : undefined),
      row("wasm ", "straightforward ts", shape === "all-lose" ? ">= 5x" : undefined),
      row("ts twin", "straightforward ts"),
      row("straightforward ts"),
      row("wasm decode + merge", "ts decode + straightforward"),
      row("ts decode + twin merge", "ts decode + straightforward"),
      row("ts decode + straightforward"),
    );
    // JSC's heap counters do not move within one synchronous call, so this is Node-only.
    if (shape === "all-lose" && !isBun) rows.push(...heapPerEntry(group, wasm, twin, plain, wBatch, tBatch, n));
  }
  wasm.dispose();
  return rows.map((r) => (r.name === "wasm " ? { ...r, name: "wasm (vs straightforward)", value: rows.find((x) => x.group === r.group && x.name === "wasm")!.value } : r));
}

/** JS heap growth per entry of one all-lose merge (after a full GC; a scavenge can only lower it). */
function heapPerEntry(group: string, wasm: MergeIndex, twin: MergeIndex, plain: PlainIndex, wBatch: DecodedBatch, tBatch: DecodedBatch, n: number): Row[] {
  const probe = (run: () => void) => {
    run(); // warm
    fullGc();
    const h0 = process.memoryUsage().heapUsed;
    run();
    return Math.max(0, (process.memoryUsage().heapUsed - h0) / n);
  };
  return [
    { group, name: "heap growth, wasm", value: probe(() => { wasm.merge(wBatch, LIMITS); wasm.commit(); }), unit: "B/entry", lower: true, target: "<= 1 B/entry" },
    { group, name: "heap growth, ts twin", value: probe(() => { twin.merge(tBatch, LIMITS); twin.commit(); }), unit: "B/entry", lower: true },
    { group, name: "heap growth, straightforward", value: probe(() => { plain.merge(tBatch); }), unit: "B/entry", lower: true },
  ];
}

// ---------------------------------------------------------------------------------

export async function runKernelBenchmarks(opts: { quick: boolean; onProgress?: (msg: string) => void }): Promise<Row[]> {
  const { quick, onProgress } = opts;
  const rows: Row[] = [];
  rows.push(...await crcLarge(quick, onProgress));
  rows.push(...await crcRecords(quick, onProgress));
  rows.push(...await codec(quick, onProgress));
  rows.push(...await frameWinners(quick, onProgress));
  rows.push(...await merge(quick, onProgress));
  return withVerdicts(withRatios(rows));
}

const invokedDirectly = (() => {
  const argv1 = process.argv[1] ?? "";
  return /bench[\\/]kernels\.ts$/.test(argv1);
})();

if (invokedDirectly) {
  const quick = process.argv.includes("--quick");
  const t0 = performance.now();
  console.error(`wavekv kernel benchmarks on ${runtimeName()}, ${machine()}, ${new Date().toISOString()}${quick ? " (quick)" : ""}`);
  const rows = await runKernelBenchmarks({ quick, onProgress: (m) => console.error(`[${((performance.now() - t0) / 1000).toFixed(0).padStart(3)} s] ${m}`) });
  console.log(formatTable(rows));
  console.error(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
