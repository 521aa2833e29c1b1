// Fuzz: mutated WAL and snapshot files (bit flips, truncations, absurd length fields,
// random bytes) → open either succeeds with exactly the records the rules keep (computed
// by an independent oracle, test/helpers/storage-fixtures.ts) or fails with CORRUPT_*
// (or MISSING_SNAPSHOT: a WAL header mutated to claim snapshots that never existed);
// never any other exception. Mutations happen in memory; one temp dir is reused.
//   WAVEKV_FUZZ_CASES=100000 WAVEKV_FUZZ_SEED=123 node --import tsx test/storage/fuzz-storage.ts
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import { crc32 as zcrc32 } from "node:zlib";
import { isWaveKVError } from "../../src/core/errors.js";
import { files } from "../../src/storage/datadir.js";
import { openStorage } from "../../src/storage/storage.js";
import type { RecordInput } from "../../src/core/record.js";
import { type Plain, flatten, frameOffsets, mixedRecord, oracleSnapshot, oracleWal, removeDir, rng, seqMark, tempDir } from "../helpers/storage-fixtures.js";

const CASES = Number(process.env.WAVEKV_FUZZ_CASES ?? 10_000);
const SEED = Number(process.env.WAVEKV_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));

interface Scenario { name: string; wal: Uint8Array; snapshot: Uint8Array | null; bak: Uint8Array | null }

/** Builds real files through the real storage, then keeps their bytes. */
async function buildScenarios(dir: string): Promise<Scenario[]> {
  const out: Scenario[] = [];
  const f = files(dir, 1);
  // Plain Uint8Array copies: Buffer#slice is a view, and the mutators rely on slice() copying.
  const read = (p: string) => (fs.existsSync(p) ? new Uint8Array(fs.readFileSync(p)) : null);
  const grab = (name: string): Scenario => ({ name, wal: read(f.wal)!, snapshot: read(f.snapshot), bak: read(f.snapshotBak) });
  const state: RecordInput[] = [];
  let id = 0;
  const more = (n: number) => Array.from({ length: n }, () => mixedRecord(++id));

  // 1. WAL only.
  let s = await openStorage({ dir, nodeId: 1, fsync: "never" });
  for (let i = 0; i < 8; i++) await s.append(more(2));
  await s.close();
  out.push(grab("wal-only"));

  // 2. snapshot + .bak + WAL (normal life).
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir);
  s = await openStorage({ dir, nodeId: 1, fsync: "never" });
  for (let g = 0; g < 2; g++) {
    const recs = more(6);
    state.push(...recs);
    await s.append(recs);
    await s.snapshot(() => [...state, seqMark(id)]);
  }
  for (let i = 0; i < 5; i++) await s.append(more(2));
  await s.close();
  out.push(grab("snapshot+bak+wal"));

  // 3. reset interrupted: the snapshot covers the WAL's generation up to an offset.
  let failReset = false;
  s = await openStorage({ dir, nodeId: 1, fsync: "never", faults: (op, p) => { if (failReset && op === "write" && p.endsWith(".wal.tmp")) throw new Error("simulated"); } });
  const recs = more(4);
  state.push(...recs);
  await s.append(recs);
  failReset = true;
  await s.snapshot(() => [...state, seqMark(id)]).catch(() => {});
  failReset = false;
  for (let i = 0; i < 4; i++) await s.append(more(2));
  await s.close();
  out.push(grab("interrupted-reset"));
  return out;
}

type Mutator = (b: Uint8Array, r: () => number) => Uint8Array;
const int = (r: () => number, n: number) => Math.floor(r() * n);

const mutators: Array<[string, Mutator]> = [
  ["bitflip", (b, r) => { const c = b.slice(); if (c.length) c[int(r, c.length)]! ^= 1 << int(r, 8); return c; }],
  ["byte", (b, r) => { const c = b.slice(); if (c.length) c[int(r, c.length)] = int(r, 256); return c; }],
  ["truncate", (b, r) => b.slice(0, int(r, b.length + 1))],
  ["truncate-tail", (b, r) => b.slice(0, Math.max(0, b.length - 1 - int(r, 40)))],
  ["absurd-length", (b, r) => {
    const c = b.slice();
    const offs = frameOffsets(c, c.length > 64 && r() < 0.5 ? 64 : 32).filter((o) => o + 4 <= c.length);
    if (!offs.length) return c;
    const at = offs[int(r, offs.length)]!;
    const choices = [0xffffffff, 0x7fffffff, 0x80000000, c.length - at, c.length - at - 7, 0, 1 + int(r, 1 << 20)];
    new DataView(c.buffer).setUint32(at, choices[int(r, choices.length)]! >>> 0, true);
    return c;
  }],
  ["random-run", (b, r) => {
    const c = b.slice();
    const at = int(r, c.length + 1);
    const n = Math.min(c.length - at, 1 + int(r, 24));
    for (let i = 0; i < n; i++) c[at + i] = int(r, 256);
    return c;
  }],
  ["zero-run", (b, r) => { const c = b.slice(); const at = int(r, c.length + 1); c.fill(0, at, Math.min(c.length, at + 1 + int(r, 64))); return c; }],
  ["append-garbage", (b, r) => { const c = new Uint8Array(b.length + 1 + int(r, 40)); c.set(b); for (let i = b.length; i < c.length; i++) c[i] = int(r, 256); return c; }],
  ["append-zeros", (b, r) => { const c = new Uint8Array(b.length + 1 + int(r, 300)); c.set(b); return c; }],
  ["duplicate-frame", (b, r) => {
    const offs = frameOffsets(b).filter((o, i, a) => (a[i + 1] ?? b.length) <= b.length);
    if (offs.length < 2) return b.slice();
    const i = int(r, offs.length - 1);
    const frame = b.subarray(offs[i]!, offs[i + 1]!);
    const out = new Uint8Array(b.length + frame.length);
    out.set(b);
    out.set(frame, b.length);
    return out;
  }],
  ["header-field", (b, r) => {
    // Change a header field and re-seal the header CRC, so deeper checks are reached.
    const c = b.slice();
    if (c.length < 32) return c;
    const isSnap = c.length >= 64 && new DataView(c.buffer).getUint32(0, true) === 0x53564b57;
    const crcAt = isSnap ? 60 : 28;
    c[4 + int(r, crcAt - 4)] = int(r, 256);
    new DataView(c.buffer).setUint32(crcAt, zcrc32(c.subarray(0, crcAt)) >>> 0, true);
    return c;
  }],
  ["random-file", (_b, r) => { const c = new Uint8Array(int(r, 200)); for (let i = 0; i < c.length; i++) c[i] = int(r, 256); return c; }],
];

function mutate(b: Uint8Array, r: () => number): { bytes: Uint8Array; how: string[] } {
  let bytes = b;
  const how: string[] = [];
  const n = 1 + (r() < 0.3 ? int(r, 3) : 0);
  for (let i = 0; i < n; i++) {
    const [name, fn] = mutators[int(r, mutators.length)]!;
    bytes = fn(bytes, r);
    how.push(name);
  }
  return { bytes, how };
}

function oracleWalHeader(b: Uint8Array): { generation: number } | null {
  const o = oracleWal(b.subarray(0, Math.min(32, b.length)), 1);
  return o.outcome === "ok" ? { generation: o.generation } : null;
}

/** What open must return: records, "corrupt", or "missing" (MISSING_SNAPSHOT). */
function expected(wal: Uint8Array | null, snap: Uint8Array | null, bak: Uint8Array | null): Plain[] | "corrupt" | "missing" {
  const loaded = (snap && oracleSnapshot(snap, 1)) || (bak && oracleSnapshot(bak, 1)) || null;
  const fromSnap = loaded?.records ?? [];
  if (wal === null) return fromSnap;
  const h = oracleWalHeader(wal);
  // Generation g > 1 says snapshots were taken; with no snapshot file at all, open refuses.
  if (h !== null && h.generation > 1 && snap === null && bak === null) return "missing";
  const covers = loaded !== null && h !== null && loaded.walGeneration === h.generation;
  const o = oracleWal(wal, 1, covers ? loaded!.walOffset : 32);
  if (o.outcome === "corrupt") return "corrupt";
  return [...fromSnap, ...o.records];
}

/** Open never changes snapshot files: rewrite them only when the case's bytes differ. */
const onDisk = new Map<string, Uint8Array | null>();
function put(path: string, bytes: Uint8Array | null, mayHaveChanged: boolean): void {
  if (!mayHaveChanged && onDisk.has(path) && onDisk.get(path) === bytes) return;
  onDisk.set(path, bytes);
  if (bytes === null) return fs.rmSync(path, { force: true });
  // Overwrite in place, then cut to length: truncating to zero (O_TRUNC) or renaming over
  // a file makes ext4 flush it (auto_da_alloc), which would make this test disk-bound.
  const fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT);
  try {
    fs.writeSync(fd, bytes, 0, bytes.length, 0);
    fs.ftruncateSync(fd, bytes.length);
  } finally {
    fs.closeSync(fd);
  }
}

test(`fuzz: ${CASES} mutated directories open exactly per the rules or fail CORRUPT_* (seed ${SEED})`, async () => {
  console.log(`fuzz-storage seed ${SEED} (WAVEKV_FUZZ_SEED to replay)`);
  const dir = tempDir("fuzz");
  try {
    const buildDir = tempDir("fuzz-build");
    const scenarios = await buildScenarios(buildDir).finally(() => removeDir(buildDir));
    const f = files(dir, 1);
    const r = rng(SEED);
    const tally = { opened: 0, corrupt: 0 };
    for (let n = 0; n < CASES; n++) {
      const sc = scenarios[int(r, scenarios.length)]!;
      let wal: Uint8Array | null = sc.wal;
      let snap = sc.snapshot;
      let bak = sc.bak;
      const target = r();
      let how: string[];
      if (target < 0.6 || snap === null) ({ bytes: wal, how } = mutate(sc.wal, r));
      else if (target < 0.85) ({ bytes: snap, how } = mutate(snap, r));
      else {
        const a = mutate(snap, r);
        snap = a.bytes;
        how = a.how;
        if (bak) { const m = mutate(bak, r); bak = m.bytes; how.push(...m.how.map((x) => `bak:${x}`)); }
        if (r() < 0.3) { const m = mutate(sc.wal, r); wal = m.bytes; how.push(...m.how.map((x) => `wal:${x}`)); }
      }
      put(f.wal, wal, true);
      put(f.snapshot, snap, false);
      put(f.snapshotBak, bak, false);
      const want = expected(wal, snap, bak);
      const label = `case ${n} (seed ${SEED}, ${sc.name}, ${how.join("+")})`;
      let got: Plain[] | "corrupt" | "missing";
      try {
        const s = await openStorage({ dir, nodeId: 1, fsync: "never" });
        got = flatten(s.recovered.batches);
        await s.close();
      } catch (e) {
        if (isWaveKVError(e, "MISSING_SNAPSHOT")) got = "missing";
        else if (isWaveKVError(e, "CORRUPT_WAL") || isWaveKVError(e, "CORRUPT_SNAPSHOT")) got = "corrupt";
        else throw new Error(`${label}: open threw something other than CORRUPT_* / MISSING_SNAPSHOT: ${(e as Error)?.stack ?? e}`);
      }
      // Copies of damaged WAL tails (open keeps them) are not part of the next case.
      for (const name of fs.readdirSync(dir)) if (name.includes(".wal.damaged-")) fs.rmSync(`${dir}/${name}`);
      if (got === "corrupt") tally.corrupt++;
      else if (got !== "missing") tally.opened++;
      assert.equal(got, want, label);
    }
    console.log(`fuzz-storage: ${tally.opened} opened, ${tally.corrupt} refused CORRUPT_*`);
    assert.ok(tally.opened > CASES / 10 && tally.corrupt > CASES / 20, "both outcomes are exercised");
  } finally {
    removeDir(dir);
  }
});

test.run();
