// Storage: open/recovery rules, torn tails, CORRUPT_WAL, snapshots (+ concurrent appends),
// .bak fallback, seq marks, uuid, lock, inspect. Real files in fresh temp dirs.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { isWaveKVError } from "../../src/core/errors.js";
import { files } from "../../src/storage/datadir.js";
import { openStorage, type Storage, type StorageOptions } from "../../src/storage/storage.js";
import { inspectDir, formatInspect } from "../../src/storage/inspect.js";
import type { DecodedBatch, RecordInput } from "../../src/core/record.js";
import { parseSnapshot } from "../../src/storage/snapshot.js";
import { encodeWalHeader, parseWalHeader, type WalHeader } from "../../src/storage/wal-file.js";
import { flatten, frameOffsets, freshDirs, mixedRecord, oracleWal, peerRecord, plain, type Plain, rng, seqMark, T0, tombstoneRecord, valueOf, valueRecord } from "../helpers/storage-fixtures.js";

const fresh = freshDirs("storage", (hook) => test.after(hook));

const open = (dir: string, extra: Partial<StorageOptions> = {}) => openStorage({ dir, nodeId: 1, fsync: "always", ...extra });

async function reopen(dir: string, extra: Partial<StorageOptions> = {}): Promise<{ records: Plain[]; warnings: string[]; storage: Storage }> {
  const storage = await open(dir, extra);
  return { records: flatten(storage.recovered.batches), warnings: storage.recovered.warnings, storage };
}

async function recordsAfterReopen(dir: string): Promise<Plain[]> {
  const r = await reopen(dir);
  await r.storage.close();
  return r.records;
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(() => { throw new Error("expected a rejection"); }, (e) => e);
}

test("fresh directory: empty, no warnings, uuid created once and kept", async () => {
  const dir = fresh();
  const a = await reopen(dir);
  assert.equal(a.records, []);
  assert.equal(a.warnings, []);
  const uuid = a.storage.recovered.uuid;
  assert.match(uuid, /^[0-9a-f-]{36}$/);
  await a.storage.close();
  const b = await reopen(dir);
  assert.is(b.storage.recovered.uuid, uuid);
  await b.storage.close();
  assert.ok(fs.existsSync(files(dir, 1).wal));
  assert.not.ok(fs.existsSync(files(dir, 1).lock), "close releases the lock");
});

test("every kind round-trips through close and reopen, in order", async () => {
  const dir = fresh();
  const s = await open(dir);
  const recs = Array.from({ length: 50 }, (_, i) => mixedRecord(i + 1));
  for (let i = 0; i < recs.length; i += 5) await s.append(recs.slice(i, i + 5));
  await s.close();
  assert.equal(await recordsAfterReopen(dir), recs.map(plain));
});

test("a node id must be a uint32", async () => {
  assert.ok(isWaveKVError(await rejection(openStorage({ dir: fresh(), nodeId: -1, fsync: "never" })), "INVALID_ARGUMENT"));
});

test("append after close rejects CLOSED", async () => {
  const s = await open(fresh());
  await s.close();
  assert.ok(isWaveKVError(await rejection(s.append([valueRecord(1)])), "CLOSED"));
  assert.ok(isWaveKVError(await rejection(s.snapshot(() => [])), "CLOSED"));
});

// ---------------------------------------------------------------------------------
// lock

test("LOCKED: the same directory twice in one process; free again after close", async () => {
  const dir = fresh();
  const s = await open(dir);
  const err = await rejection(open(dir));
  assert.ok(isWaveKVError(err, "LOCKED"), String(err));
  assert.match((err as Error).message, /this process/);
  await s.close();
  const again = await open(dir);
  await again.close();
});

function childHoldingLock(dir: string): Promise<{ pid: number; kill: () => Promise<void> }> {
  // A plain-JS child that creates the lock like a live node would (pid + token).
  const code = `const fs=require("fs");fs.writeFileSync(${JSON.stringify(join(dir, "wavekv.lock"))}, process.pid+"\\nchild\\n",{flag:"wx"});console.log("ready");setInterval(()=>{},1000);`;
  const child = spawn(process.execPath, ["-e", code], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    child.stdout.once("data", () => resolve({
      pid: child.pid!,
      kill: () => new Promise<void>((r) => { child.once("exit", () => r()); child.kill("SIGKILL"); }),
    }));
    child.once("error", reject);
  });
}

test("LOCKED across processes; a SIGKILLed owner's stale lock does not block the next open", async () => {
  const dir = fresh();
  const holder = await childHoldingLock(dir);
  const err = await rejection(open(dir));
  assert.ok(isWaveKVError(err, "LOCKED"), String(err));
  assert.match((err as Error).message, new RegExp(`process ${holder.pid}`));
  await holder.kill();
  assert.ok(fs.existsSync(files(dir, 1).lock), "the killed owner left its lock behind");
  const s = await open(dir);
  await s.close();
});

test("an empty or garbled lock file (owner died mid-create) is taken over", async () => {
  const dir = fresh();
  fs.writeFileSync(files(dir, 1).lock, "");
  await (await open(dir)).close();
  fs.writeFileSync(files(dir, 1).lock, "not a pid\n");
  await (await open(dir)).close();
});

// ---------------------------------------------------------------------------------
// torn tails and damage

async function writeWal(dir: string, n: number): Promise<{ bytes: Buffer; offsets: number[]; recs: RecordInput[] }> {
  const s = await open(dir, { fsync: "never" });
  const recs = Array.from({ length: n }, (_, i) => mixedRecord(i + 1));
  for (const r of recs) await s.append([r]);
  await s.close();
  const bytes = fs.readFileSync(files(dir, 1).wal);
  return { bytes, offsets: frameOffsets(bytes), recs };
}

test("torn tail: a cut at every byte of the last 3 records keeps exactly the complete records before it", async () => {
  const dir = fresh();
  const { bytes, offsets, recs } = await writeWal(dir, 12);
  const walPath = files(dir, 1).wal;
  const from = offsets[offsets.length - 3]!;
  for (let cut = from; cut <= bytes.length; cut++) {
    fs.writeFileSync(walPath, bytes.subarray(0, cut));
    const complete = offsets.filter((o, i) => (offsets[i + 1] ?? bytes.length) <= cut && o < cut).length;
    const r = await reopen(dir);
    assert.equal(r.records, recs.slice(0, complete).map(plain), `cut at ${cut}`);
    const atBoundary = cut === bytes.length || offsets.includes(cut);
    assert.is(r.warnings.length, atBoundary ? 0 : 1, `cut at ${cut}: ${r.warnings}`);
    if (!atBoundary) assert.match(r.warnings[0]!, /truncated/);
    // The tail is gone from the file, so a write after recovery survives the next restart.
    await r.storage.append([valueRecord(999)]);
    await r.storage.close();
    assert.equal(await recordsAfterReopen(dir), [...recs.slice(0, complete), valueRecord(999)].map(plain), `cut at ${cut}, after a new write`);
  }
});

test("zero-filled tail (file system extended the file) of a version 1 WAL is truncated", async () => {
  const dir = fresh();
  const { bytes, recs } = await writeWal(dir, 5);
  // Version 1 (no preallocation; a version 2 zero tail is the clean end: test/storage/wal-prealloc.ts).
  const v1 = encodeWalHeader(parseWalHeader(bytes) as WalHeader, 1);
  fs.writeFileSync(files(dir, 1).wal, Buffer.concat([v1, bytes.subarray(v1.length), Buffer.alloc(4096)]));
  const r = await reopen(dir);
  assert.equal(r.records, recs.map(plain));
  assert.match(r.warnings.join(), /zero tail at offset/);
  await r.storage.close();
  assert.is(fs.statSync(files(dir, 1).wal).size, bytes.length);
});

test("bit flip in a middle record followed by valid ones: CORRUPT_WAL naming file and offset; file untouched", async () => {
  const dir = fresh();
  const { bytes, offsets } = await writeWal(dir, 10);
  const walPath = files(dir, 1).wal;
  for (const victim of [0, 4, 8]) {
    for (const at of [0, 3, 4, 8, 10]) {
      const damaged = Buffer.from(bytes);
      const pos = offsets[victim]! + at;
      damaged[pos]! ^= 0x10;
      fs.writeFileSync(walPath, damaged);
      const err = await rejection(open(dir));
      assert.ok(isWaveKVError(err, "CORRUPT_WAL"), `record ${victim} byte ${at}: ${err}`);
      assert.ok((err as Error).message.includes(walPath), (err as Error).message);
      assert.ok((err as Error).message.includes(`offset ${offsets[victim]}`), (err as Error).message);
      assert.equal(fs.readFileSync(walPath), damaged, "a refused WAL is not modified");
      assert.not.ok(fs.existsSync(files(dir, 1).lock), "a failed open releases the lock");
    }
  }
});

test("bit flip in the last record: truncated with a warning that it may have been acknowledged; its bytes kept", async () => {
  const dir = fresh();
  const { bytes, offsets, recs } = await writeWal(dir, 6);
  const damaged = Buffer.from(bytes);
  damaged[bytes.length - 1]! ^= 1;
  fs.writeFileSync(files(dir, 1).wal, damaged);
  const r = await reopen(dir);
  assert.equal(r.records, recs.slice(0, 5).map(plain));
  assert.match(r.warnings.join(), /DAMAGED RECORD at offset \d+: 1 record .*CRC mismatch.*MAY HAVE BEEN ACKNOWLEDGED/);
  assert.ok(fs.readFileSync(`${files(dir, 1).wal}.damaged-${offsets[5]}`).equals(damaged.subarray(offsets[5]!)));
  await r.storage.close();
});

test("damaged WAL header: CORRUPT_WAL", async () => {
  const dir = fresh();
  const { bytes } = await writeWal(dir, 3);
  for (const pos of [0, 5, 9, 14, 22, 29]) {
    const damaged = Buffer.from(bytes);
    damaged[pos]! ^= 0x80;
    fs.writeFileSync(files(dir, 1).wal, damaged);
    assert.ok(isWaveKVError(await rejection(open(dir)), "CORRUPT_WAL"), `byte ${pos}`);
  }
  fs.writeFileSync(files(dir, 1).wal, bytes.subarray(0, 20));
  assert.ok(isWaveKVError(await rejection(open(dir)), "CORRUPT_WAL"));
});

test("a WAL of another node id: CORRUPT_WAL", async () => {
  const dir = fresh();
  await writeWal(dir, 2);
  fs.renameSync(files(dir, 1).wal, files(dir, 2).wal);
  const err = await rejection(openStorage({ dir, nodeId: 2, fsync: "never" }));
  assert.ok(isWaveKVError(err, "CORRUPT_WAL"));
  assert.match((err as Error).message, /names node 1/);
});

// ---------------------------------------------------------------------------------
// snapshots

test("snapshot: state moves to the snapshot, WAL restarts with the seq marks, reopen sees both", async () => {
  const dir = fresh();
  const s = await open(dir);
  const state = [valueRecord(1), valueRecord(2), tombstoneRecord(3), peerRecord(2, 5), seqMark(3)];
  await s.append(state);
  const before = s.walBytes;
  const gen = s.walGeneration;
  await s.snapshot(() => state);
  assert.is(s.walGeneration, gen + 1);
  assert.ok(s.walBytes < before);
  await s.append([valueRecord(4)]);
  await s.close();
  const r = await reopen(dir);
  assert.equal(r.records, [...state, seqMark(3), valueRecord(4)].map(plain));
  assert.equal(r.warnings, []);
  await r.storage.close();
  assert.not.ok(fs.existsSync(files(dir, 1).snapshotTmp));
  assert.not.ok(fs.existsSync(files(dir, 1).walTmp));
});

/** Calls `append` once a macrotask until `snap` settles; returns how many times it ran. */
/**
 * After a snapshot raced by appends: the snapshot holds the first `atSnapshot` records of
 * `state` (collect ran when snapshot() was called), and a reopen replays every record of
 * `state` once, in call order (the racing appends from the log).
 */
async function snapshotThenLog(dir: string, state: RecordInput[], atSnapshot: number): Promise<void> {
  const snapFile = parseSnapshot(fs.readFileSync(files(dir, 1).snapshot), 1);
  assert.ok(typeof snapFile !== "string");
  assert.equal(flatten([(snapFile as { batch: DecodedBatch }).batch]), state.slice(0, atSnapshot).map(plain), "collect ran when snapshot() was called");
  const r = await reopen(dir);
  assert.equal(r.records, state.map(plain), "every append once, in call order");
  await r.storage.close();
}

/**
 * Snapshots `state` (every record appended so far) while appends of 3 race it, then
 * appends 5 more; waits for every append (`inFlight` too); returns how many records the
 * snapshot collected.
 */
async function raceSnapshot(s: Storage, state: RecordInput[], write: (n: number) => Promise<void>, inFlight: Promise<void>[] = []): Promise<number> {
  const snap = s.snapshot(() => state.slice());
  const atSnapshot = state.length;
  const during = await appendWhile(snap, () => inFlight.push(write(3)));
  inFlight.push(write(5));
  await Promise.all(inFlight);
  assert.ok(during > 0, "some appends raced the snapshot");
  return atSnapshot;
}

async function appendWhile(snap: Promise<unknown>, append: () => void): Promise<number> {
  let done = false, n = 0;
  snap.then(() => { done = true; }, () => { done = true; });
  while (!done) {
    append();
    n++;
    await new Promise((r) => setImmediate(r));
  }
  await snap;
  return n;
}

test("snapshot with concurrent appends: none lost, none duplicated", async () => {
  const dir = fresh();
  const s = await open(dir);
  const state: RecordInput[] = [];
  let next = 1;
  const write = (n: number) => {
    const recs = Array.from({ length: n }, () => valueRecord(next++));
    state.push(...recs);
    return s.append(recs);
  };
  // A state large enough that writing the snapshot takes a while.
  for (let i = 0; i < 50; i++) await write(200);
  const atSnapshot = await raceSnapshot(s, state, write);
  await s.close();
  await snapshotThenLog(dir, state, atSnapshot);
});

test("snapshot with deferred appends queued when it starts and while it runs: none lost, none duplicated", async () => {
  const dir = fresh();
  let walWrites = 0;
  const s = await open(dir, { faults: (op, p) => { if (op === "write" && p.endsWith(".wal")) walWrites++; } });
  const state: RecordInput[] = [];
  let next = 1;
  let appends = 0;
  const write = (n: number) => {
    const recs = Array.from({ length: n }, () => valueRecord(next++));
    state.push(...recs); // a node's pending set: collected by a snapshot before they apply
    appends++;
    return s.append(recs, { defer: true });
  };
  for (let i = 0; i < 50; i++) await write(200);
  // One written with its fsync in flight, two queued behind it when the snapshot starts:
  // the snapshot collects them, so its WAL offset must cover them (else they replay twice).
  const inFlight: Promise<void>[] = [write(1), write(2), write(3)];
  const appendsBefore = appends;
  const writesBefore = walWrites;
  const atSnapshot = await raceSnapshot(s, state, write, inFlight);
  assert.ok(walWrites - writesBefore < appends - appendsBefore + 2, `appends were grouped (${walWrites - writesBefore} writes for ${appends - appendsBefore} appends)`);
  await s.close();
  await snapshotThenLog(dir, state, atSnapshot);
});

test("deferred appends still queued at close() are written and synced", async () => {
  const dir = fresh();
  const s = await open(dir);
  const recs = Array.from({ length: 20 }, (_, i) => valueRecord(i + 1));
  const all = recs.map((r) => s.append([r], { defer: true }));
  await s.close();
  await Promise.all(all);
  assert.equal(await recordsAfterReopen(dir), recs.map(plain));
});

test("snapshot() calls are serialized: each collects its own state, the last one wins", async () => {
  const dir = fresh();
  const s = await open(dir);
  const state: RecordInput[] = [];
  const calls: number[] = [];
  const all: Promise<void>[] = [];
  for (let i = 1; i <= 4; i++) {
    state.push(valueRecord(i));
    await s.append([valueRecord(i)]);
    all.push(s.snapshot(() => { calls.push(i); return state.slice(); }));
  }
  await Promise.all(all);
  assert.equal(calls, [1, 2, 3, 4]);
  await s.close();
  assert.equal(await recordsAfterReopen(dir), state.map(plain));
});

test("damaged snapshot falls back to .bak (+ WAL); both damaged → WAL alone with a warning; seq mark survives", async () => {
  const dir = fresh();
  const f = files(dir, 1);
  const s = await open(dir);
  const gen1 = [valueRecord(1), seqMark(1)];
  await s.append([valueRecord(1)]);
  await s.snapshot(() => gen1);
  const gen2 = [valueRecord(1), valueRecord(2), seqMark(2)];
  await s.append([valueRecord(2)]);
  await s.snapshot(() => gen2);
  await s.append([valueRecord(3)]);
  await s.close();

  const good = fs.readFileSync(f.snapshot);
  const bad = Buffer.from(good);
  bad[bad.length - 3]! ^= 4;
  fs.writeFileSync(f.snapshot, bad);
  let r = await reopen(dir);
  // .bak holds the first generation; the WAL holds what came after the second snapshot:
  // valueRecord(2) was only in the lost snapshot, and the warning says so.
  assert.equal(r.records, [...gen1, seqMark(2), valueRecord(3)].map(plain));
  assert.match(r.warnings.join(), /loaded the previous generation/);
  await r.storage.close();

  fs.writeFileSync(f.snapshotBak, bad.subarray(0, 10));
  r = await reopen(dir);
  assert.equal(r.records, [seqMark(2), valueRecord(3)].map(plain), "the WAL head carries the high-water mark");
  assert.match(r.warnings.join(), /no readable snapshot/);
  await r.storage.close();
});

test("a reset interrupted after the snapshot was installed is finished by the next open", async () => {
  const dir = fresh();
  let failReset = false;
  const s = await open(dir, { faults: (op, p) => { if (failReset && p.endsWith(".wal.tmp") && op === "write") throw new Error("EIO: simulated"); } });
  await s.append([valueRecord(1), valueRecord(2)]);
  failReset = true;
  const err = await rejection(s.snapshot(() => [valueRecord(1), valueRecord(2), seqMark(2)]));
  assert.ok(isWaveKVError(err, "IO"), String(err));
  const gen = s.walGeneration;
  await s.append([valueRecord(3)]); // the old log is still authoritative and writable
  await s.close();
  const r = await reopen(dir);
  // Records 1 and 2 come from the snapshot only (not replayed twice from the old log).
  assert.equal(r.records, [valueRecord(1), valueRecord(2), seqMark(2), valueRecord(3)].map(plain));
  assert.is(r.storage.walGeneration, gen + 1);
  await r.storage.close();
  assert.equal(await recordsAfterReopen(dir), [valueRecord(1), valueRecord(2), seqMark(2), seqMark(2), valueRecord(3)].map(plain));
});

test("a failed snapshot write keeps the previous snapshot and the WAL", async () => {
  const dir = fresh();
  let fail = false;
  const s = await open(dir, { faults: (op, p) => { if (fail && p.endsWith(".snapshot.tmp") && op === "fsync") throw new Error("EIO: simulated"); } });
  await s.append([valueRecord(1)]);
  await s.snapshot(() => [valueRecord(1)]);
  await s.append([valueRecord(2)]);
  fail = true;
  assert.ok(isWaveKVError(await rejection(s.snapshot(() => [valueRecord(1), valueRecord(2)])), "IO"));
  assert.is(s.failure, null);
  await s.append([valueRecord(3)]);
  await s.close();
  assert.equal(await recordsAfterReopen(dir), [valueRecord(1), valueRecord(2), valueRecord(3)].map(plain));
});

test("needsSnapshot turns on past snapshotWalBytes and off after a snapshot", async () => {
  const dir = fresh();
  const s = await open(dir, { snapshotWalBytes: 2000, fsync: "never" });
  const state: RecordInput[] = [];
  while (!s.needsSnapshot) {
    const r = valueRecord(state.length + 1);
    state.push(r);
    await s.append([r]);
  }
  assert.ok(s.walBytes > 2000);
  await s.snapshot(() => state);
  assert.not.ok(s.needsSnapshot);
  await s.close();
});

test("failed fsync through Storage: IO for that append and every later one; reopen recovers", async () => {
  const dir = fresh();
  let fail = false;
  const s = await open(dir, { faults: (op) => { if (fail && op === "fsync") throw new Error("EIO: simulated"); } });
  await s.append([valueRecord(1)]);
  fail = true;
  assert.ok(isWaveKVError(await rejection(s.append([valueRecord(2)])), "IO"));
  fail = false;
  assert.ok(isWaveKVError(await rejection(s.append([valueRecord(3)])), "IO"));
  assert.ok(isWaveKVError(await rejection(s.snapshot(() => [])), "IO"));
  await s.close();
  const recs = await recordsAfterReopen(dir);
  // Record 2 was written before its fsync failed: it may be there, 3 never is.
  assert.equal(recs.slice(0, 1), [plain(valueRecord(1))]);
  assert.not.ok(recs.some((r) => r.seq === 3));
});

// ---------------------------------------------------------------------------------
// property: random appends, snapshots and reopens against an in-memory model

interface Model { entries: Map<string, Plain>; peers: Set<number>; mark: number }

/** What a node does with recovered records: LWW per key, membership in order, max mark. */
function replay(records: readonly Plain[]): Model {
  const m: Model = { entries: new Map(), peers: new Set(), mark: 0 };
  for (const r of records) {
    if (r.kind <= 1) {
      const cur = m.entries.get(r.key);
      if (!cur || r.timestamp > cur.timestamp || (r.timestamp === cur.timestamp && (r.node > cur.node || (r.node === cur.node && r.seq > cur.seq)))) m.entries.set(r.key, r);
    } else if (r.kind === 2) m.peers.add(r.node);
    else if (r.kind === 3) m.peers.delete(r.node);
    else m.mark = Math.max(m.mark, r.seq);
  }
  return m;
}

function modelRecords(m: Model): RecordInput[] {
  const out: RecordInput[] = [];
  for (const e of m.entries.values()) out.push({ kind: e.kind, key: e.key, value: e.value === null ? null : Buffer.from(e.value, "hex"), timestamp: e.timestamp, node: e.node, seq: e.seq });
  for (const p of m.peers) out.push(peerRecord(2, p));
  out.push(seqMark(m.mark));
  return out;
}

test("property: random appends, snapshots (some racing appends) and reopens keep exactly the model's state", async () => {
  const seed = Math.floor(Math.random() * 2 ** 31);
  const r = rng(seed);
  const where = (step: number) => `seed ${seed}, step ${step}`;
  for (const fsync of ["always", "never", { intervalMs: 5 }] as const) {
    const dir = fresh();
    let s = await open(dir, { fsync });
    const model: Model = { entries: new Map(), peers: new Set(), mark: 0 };
    let seq = 0;
    let pending: Promise<void>[] = [];
    for (let step = 0; step < 150; step++) {
      const x = r();
      if (x < 0.7) {
        const batch: RecordInput[] = [];
        for (let i = 0, n = 1 + Math.floor(r() * 4); i < n; i++) {
          const y = r();
          seq++;
          const key = `k${Math.floor(r() * 12)}`;
          if (y < 0.6) batch.push({ kind: 1, key, value: valueOf(seq), timestamp: T0 + seq, node: 1, seq });
          else if (y < 0.8) batch.push({ kind: 0, key, value: null, timestamp: T0 + seq, node: 1, seq });
          else if (y < 0.9) batch.push(peerRecord(r() < 0.5 ? 2 : 3, 2 + Math.floor(r() * 4)));
          else batch.push(seqMark(seq));
        }
        const applied = replay([...modelRecordsPlain(model), ...batch.map(plain)]);
        Object.assign(model, applied);
        pending.push(s.append(batch));
      } else if (x < 0.85) {
        pending.push(s.snapshot(() => modelRecords(model)));
      } else {
        await Promise.all(pending);
        pending = [];
        await s.close();
        s = await open(dir, { fsync });
        const got = replay(flatten(s.recovered.batches));
        assert.equal([...got.entries.entries()].sort(), [...model.entries.entries()].sort(), where(step));
        assert.equal([...got.peers].sort(), [...model.peers].sort(), where(step));
        assert.is(got.mark, model.mark, where(step));
      }
    }
    await Promise.all(pending);
    await s.close();
    const final = await recordsAfterReopen(dir);
    assert.equal([...replay(final).entries.entries()].sort(), [...model.entries.entries()].sort(), where(-1));
  }
});

function modelRecordsPlain(m: Model): Plain[] {
  return modelRecords(m).map(plain);
}

// ---------------------------------------------------------------------------------
// inspect

test("inspect: counts, seq ranges, damaged offset; ok only when nothing is damaged", async () => {
  const dir = fresh();
  const s = await open(dir);
  await s.append([valueRecord(1, 1), valueRecord(2, 1), valueRecord(3, 2), tombstoneRecord(4, 2), peerRecord(2, 9), seqMark(4)]);
  await s.snapshot(() => [valueRecord(1, 1), valueRecord(2, 1), seqMark(4)]);
  await s.append([valueRecord(10, 1), valueRecord(11, 1)]);
  await s.close();
  let report = inspectDir(dir);
  assert.ok(report.ok, formatInspect(report));
  const n = report.nodes[0]!;
  assert.is(n.nodeId, 1);
  assert.is(n.loads, "snapshot");
  assert.is(n.snapshot.stats?.records, 3);
  assert.equal(n.snapshot.stats?.seqRanges, [{ node: 1, min: 1, max: 2, count: 2 }]);
  assert.is(n.wal.stats?.records, 3); // seq mark carried + 2 values
  assert.is(n.wal.stats?.maxSeqMark, 4);
  assert.equal(n.wal.stats?.seqRanges, [{ node: 1, min: 10, max: 11, count: 2 }]);
  assert.match(formatInspect(report), /origin 1: seq 10\.\.11/);

  const wal = fs.readFileSync(files(dir, 1).wal);
  const offs = frameOffsets(wal);
  const dmg = Buffer.from(wal);
  dmg[offs[1]! + 9]! ^= 2;
  fs.writeFileSync(files(dir, 1).wal, dmg);
  report = inspectDir(dir);
  assert.not.ok(report.ok);
  assert.is(report.nodes[0]!.wal.damagedAt, offs[1]);
  assert.is(report.nodes[0]!.wal.damage, "fatal");
  assert.not.ok(report.nodes[0]!.opens);
  assert.match(formatInspect(report), new RegExp(`first damaged offset: ${offs[1]}`));
  assert.equal(fs.readFileSync(files(dir, 1).wal), dmg, "inspect changes nothing");

  fs.writeFileSync(files(dir, 1).wal, wal.subarray(0, wal.length - 2));
  report = inspectDir(dir);
  assert.not.ok(report.ok);
  assert.is(report.nodes[0]!.wal.damage, "tail");
  assert.ok(report.nodes[0]!.opens);
});

test("the independent oracle agrees with open on a clean multi-batch WAL", async () => {
  const dir = fresh();
  const { bytes, recs } = await writeWal(dir, 30);
  const o = oracleWal(bytes, 1);
  assert.ok(o.outcome === "ok" && o.records.length === 30);
  assert.equal(o.outcome === "ok" ? o.records : [], recs.map(plain));
});

test.run();
