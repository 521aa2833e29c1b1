// WAL file: header, scan rules, group commit, fsync policies, failure latch, replace.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import { join } from "node:path";
import { isWaveKVError } from "../../src/core/errors.js";
import { WAL_HEADER_BYTES, encodeWalHeader, parseWalHeader } from "../../src/storage/wal-file.js";
import { scanWal } from "../../src/storage/wal-scan.js";
import { WalWriter } from "../../src/storage/wal-writer.js";
import type { FaultHook } from "../../src/storage/interface.js";
import { flatten, frameOffsets, freshDirs, plain, seqMark, valueRecord } from "../helpers/storage-fixtures.js";

const fresh = freshDirs("wal", (hook) => test.after(hook));

const header = { nodeId: 7, base: 1_700_000_000_000, generation: 3 };

function readScan(path: string) {
  const scan = scanWal(fs.readFileSync(path));
  if (typeof scan === "string") throw new Error(scan);
  return scan;
}

test("header round-trips and every damaged header is refused with a reason", () => {
  const bytes = encodeWalHeader(header);
  assert.is(bytes.length, WAL_HEADER_BYTES);
  assert.equal(parseWalHeader(bytes), header);
  assert.equal(parseWalHeader(encodeWalHeader({ nodeId: 0xffffffff, base: -5, generation: 2 ** 53 - 1 })), { nodeId: 0xffffffff, base: -5, generation: 2 ** 53 - 1 });
  assert.type(parseWalHeader(bytes.subarray(0, 31)), "string");
  for (let bit = 0; bit < WAL_HEADER_BYTES * 8; bit++) {
    const copy = bytes.slice();
    copy[bit >> 3]! ^= 1 << (bit & 7);
    assert.type(parseWalHeader(copy), "string", `bit ${bit}`);
  }
});

test("appends replay in call order, fired without awaiting", async () => {
  const path = join(fresh(), "node_7.wal");
  const wal = WalWriter.create(path, header, { fsync: "always" });
  const recs = Array.from({ length: 20 }, (_, i) => valueRecord(i + 1));
  await Promise.all(recs.map((r) => wal.append([r])));
  await wal.append([seqMark(20)]);
  await wal.close();
  const scan = readScan(path);
  assert.is(scan.damage, null);
  assert.equal(flatten([scan.batch]), [...recs, seqMark(20)].map(plain));
  assert.equal(scan.header, header);
});

test("group commit: 64 concurrent appends share a handful of fsyncs, all durable", async () => {
  const path = join(fresh(), "node_7.wal");
  const wal = WalWriter.create(path, header, { fsync: "always" });
  const before = wal.fsyncCount;
  const recs = Array.from({ length: 64 }, (_, i) => valueRecord(i + 1));
  let resolved = 0;
  await Promise.all(recs.map((r) => wal.append([r]).then(() => resolved++)));
  assert.is(resolved, 64);
  const used = wal.fsyncCount - before;
  // The first append starts an fsync alone; the other 63 ride the next one.
  assert.ok(used >= 1 && used <= 3, `64 appends used ${used} fsyncs`);
  await wal.close();
  assert.is(readScan(path).batch.count, 64);
});

/** After an awaited append the writer gathers until the next macrotask (solo mode, see #next): let it end. */
const idle = () => new Promise<void>((r) => setImmediate(r));

test("one steady writer fsyncs on its own thread; a burst after it still batches", async () => {
  const path = join(fresh(), "node_7.wal");
  let failFsync = false;
  const wal = WalWriter.create(path, header, { fsync: "always", faults: (op) => { if (failFsync && op === "fsync") throw new Error("EIO: simulated"); } });
  let seq = 1;
  for (let i = 0; i < 20; i++) await wal.append([valueRecord(seq++)], { defer: true });
  assert.is(wal.fsyncCount, 20, "one fsync per awaited append");
  let turned = false;
  setImmediate(() => { turned = true; });
  for (let i = 0; i < 3; i++) await wal.append([valueRecord(seq++)], { defer: true });
  assert.ok(turned, "a synchronous fsync still lets the event loop turn between puts");
  // 32 closed-loop writers arriving after the solo writer: they must not be fsynced one
  // at a time (each waits behind a synchronous fsync, so they are gathered for a macrotask).
  const before = wal.fsyncCount;
  await Promise.all(Array.from({ length: 32 }, async () => {
    for (let i = 0; i < 8; i++) await wal.append([valueRecord(seq++)], { defer: true });
  }));
  const used = wal.fsyncCount - before;
  assert.ok(used <= 24, `256 appends from 32 writers used ${used} fsyncs`);
  // A failed fsync in solo mode rejects its append and latches.
  await wal.append([valueRecord(seq++)], { defer: true });
  failFsync = true;
  const err = await wal.append([valueRecord(seq++)], { defer: true }).then(() => null, (e: unknown) => e);
  assert.ok(isWaveKVError(err) && err.code === "IO", String(err));
  const later = await wal.append([valueRecord(seq++)], { defer: true }).then(() => null, (e: unknown) => e);
  assert.ok(isWaveKVError(later) && later.code === "IO");
  await wal.close().catch(() => undefined);
  assert.ok(readScan(path).batch.count >= 280, "every acknowledged append is in the log");
});

test("group commit: an append resolves only after an fsync that started after its write", async () => {
  const path = join(fresh(), "node_7.wal");
  const fsyncs: number[] = [];
  let wal!: WalWriter;
  const faults: FaultHook = (op) => { if (op === "fsync") fsyncs.push(wal.size); };
  wal = WalWriter.create(path, header, { fsync: "always", faults });
  const sizes: number[] = [];
  const done: Promise<void>[] = [];
  for (let i = 1; i <= 10; i++) {
    done.push(wal.append([valueRecord(i)]).then(() => {
      // Some fsync began when the file already held this append.
      assert.ok(fsyncs.some((s) => s >= sizes[i - 1]!), `append ${i} resolved before an fsync covering it`);
    }));
    sizes.push(wal.size);
  }
  await Promise.all(done);
  await wal.close();
});

test('"never" policy: appends resolve without any fsync, even at close', async () => {
  const path = join(fresh(), "node_7.wal");
  const wal = WalWriter.create(path, header, { fsync: "never" });
  for (let i = 1; i <= 10; i++) await wal.append([valueRecord(i)]);
  await wal.close();
  assert.is(wal.fsyncCount, 0);
  assert.is(readScan(path).batch.count, 10);
});

test("interval policy: appends resolve before the fsync; one fsync per window", async () => {
  const path = join(fresh(), "node_7.wal");
  const wal = WalWriter.create(path, header, { fsync: { intervalMs: 40 } });
  for (let i = 1; i <= 10; i++) await wal.append([valueRecord(i)]);
  assert.is(wal.fsyncCount, 0, "no fsync before the window ends");
  await new Promise((r) => setTimeout(r, 120));
  assert.is(wal.fsyncCount, 1, "one fsync for the whole window");
  await new Promise((r) => setTimeout(r, 80));
  assert.is(wal.fsyncCount, 1, "an idle log costs nothing");
  await wal.append([valueRecord(11)]);
  await wal.close();
  assert.is(wal.fsyncCount, 2, "close syncs what the window still held");
  assert.is(readScan(path).batch.count, 11);
});

test("failed fsync rejects that append with IO and latches every later one", async () => {
  const path = join(fresh(), "node_7.wal");
  let failFsync = false;
  const wal = WalWriter.create(path, header, { fsync: "always", faults: (op) => { if (failFsync && op === "fsync") throw new Error("EIO: simulated"); } });
  await wal.append([valueRecord(1)]);
  failFsync = true;
  const err = await wal.append([valueRecord(2)]).then(() => null, (e) => e);
  assert.ok(isWaveKVError(err, "IO"), String(err));
  assert.match(err.message, /EIO: simulated/);
  failFsync = false; // the disk "recovers": the latch must hold anyway
  const size = wal.size;
  const later = await wal.append([valueRecord(3)]).then(() => null, (e) => e);
  assert.ok(isWaveKVError(later, "IO"));
  assert.is(wal.size, size, "a latched log writes nothing");
  assert.ok(wal.failure);
  await wal.close();
});

test("failed write rejects with IO, latches, and earlier appends still get their fsync", async () => {
  const path = join(fresh(), "node_7.wal");
  let failWrite = false;
  const wal = WalWriter.create(path, header, { fsync: "always", faults: (op) => { if (failWrite && op === "write") throw new Error("ENOSPC: simulated"); } });
  const first = wal.append([valueRecord(1)]);
  const second = wal.append([valueRecord(2)]); // written, waits for the next fsync
  failWrite = true;
  const err = await wal.append([valueRecord(3)]).then(() => null, (e) => e);
  assert.ok(isWaveKVError(err, "IO"));
  await first;
  await second;
  failWrite = false;
  assert.ok(isWaveKVError(await wal.append([valueRecord(4)]).then(() => null, (e) => e), "IO"));
  await wal.close();
  assert.equal(flatten([readScan(path).batch]), [valueRecord(1), valueRecord(2)].map(plain));
});

test("a record the format cannot carry rejects INVALID_ARGUMENT, writes nothing, latches nothing", async () => {
  const wal = WalWriter.create(join(fresh(), "node_7.wal"), header, { fsync: "never" });
  const size = wal.size;
  const bad = { kind: 1, key: "k", value: null, timestamp: 0, node: 1, seq: 1 } as const;
  const err = await wal.append([valueRecord(1), bad]).then(() => null, (e) => e);
  assert.ok(isWaveKVError(err, "INVALID_ARGUMENT"), String(err));
  assert.is(wal.size, size);
  assert.is(wal.failure, null);
  await wal.append([valueRecord(2)]);
  await wal.close();
});

test("append after close rejects CLOSED", async () => {
  const wal = WalWriter.create(join(fresh(), "node_7.wal"), header, { fsync: "never" });
  await wal.close();
  assert.ok(isWaveKVError(await wal.append([valueRecord(1)]).then(() => null, (e) => e), "CLOSED"));
});

test("scan: torn, zero and CRC tails are reported with no valid record after them", async () => {
  const path = join(fresh(), "node_7.wal");
  const wal = WalWriter.create(path, header, { fsync: "never" });
  for (let i = 1; i <= 5; i++) await wal.append([valueRecord(i)]);
  await wal.close();
  const full = fs.readFileSync(path);
  const offs = frameOffsets(full);
  const last = offs[4]!;
  const torn = scanWal(full.subarray(0, full.length - 3));
  assert.ok(typeof torn !== "string" && torn.damage?.reason === "torn" && torn.damage.offset === last && torn.damage.nextValid === -1);
  // Version 2: an all-zero rest of the file is a preallocated tail, the clean end.
  const zero = scanWal(Buffer.concat([full, Buffer.alloc(64)]));
  assert.ok(typeof zero !== "string" && zero.damage === null && zero.validEnd === full.length && zero.batch.count === 5);
  // ... but zeros followed by anything else are a torn tail, and by a valid frame damage in the middle.
  const junk = scanWal(Buffer.concat([full, Buffer.alloc(64), Buffer.from([1, 2, 3])]));
  assert.ok(typeof junk !== "string" && junk.damage?.reason === "zero" && junk.damage.offset === full.length && junk.damage.nextValid === -1);
  const valid = scanWal(Buffer.concat([full, Buffer.alloc(64), full.subarray(offs[1]!, offs[2]!)]));
  assert.ok(typeof valid !== "string" && valid.damage?.reason === "zero" && valid.damage.nextValid === full.length + 64);
  // Version 1 (no preallocation): a zero tail is what a crash left, reported as before.
  const v1 = Buffer.concat([encodeWalHeader(header, 1), full.subarray(WAL_HEADER_BYTES), Buffer.alloc(64)]);
  const zero1 = scanWal(v1);
  assert.ok(typeof zero1 !== "string" && zero1.damage?.reason === "zero" && zero1.damage.offset === full.length && zero1.damage.nextValid === -1 && zero1.batch.count === 5);
  const flipped = Buffer.from(full);
  flipped[full.length - 1]! ^= 0x40;
  const crc = scanWal(flipped);
  assert.ok(typeof crc !== "string" && crc.damage?.reason === "crc" && crc.damage.nextValid === -1 && crc.batch.count === 4);
  const middle = Buffer.from(full);
  middle[offs[1]! + 9]! ^= 0x01;
  const mid = scanWal(middle);
  assert.ok(typeof mid !== "string" && mid.damage?.offset === offs[1] && mid.damage.nextValid === offs[2], JSON.stringify(typeof mid === "string" ? mid : mid.damage));
});

test("replace: keeps the tail after `from`, puts head records first, bumps the generation, settles waiters", async () => {
  const path = join(fresh(), "node_7.wal");
  const wal = WalWriter.create(path, header, { fsync: "always" });
  for (let i = 1; i <= 5; i++) await wal.append([valueRecord(i)]);
  const from = wal.size;
  const pending = [6, 7, 8].map((i) => wal.append([valueRecord(i)]));
  wal.replace({ ...header, generation: 4 }, [seqMark(8)], from);
  await Promise.all(pending);
  await wal.append([valueRecord(9)]);
  await wal.close();
  const scan = readScan(path);
  assert.is(scan.header.generation, 4);
  assert.equal(flatten([scan.batch]), [seqMark(8), valueRecord(6), valueRecord(7), valueRecord(8), valueRecord(9)].map(plain));
  assert.not.ok(fs.existsSync(`${path}.tmp`));
});

test("replace failing before the rename keeps the old log authoritative and writable", async () => {
  const path = join(fresh(), "node_7.wal");
  let fail = false;
  const wal = WalWriter.create(path, header, { fsync: "always", faults: (op, p) => { if (fail && p.endsWith(".tmp") && op === "fsync") throw new Error("EIO: simulated"); } });
  for (let i = 1; i <= 3; i++) await wal.append([valueRecord(i)]);
  fail = true;
  assert.throws(() => wal.replace({ ...header, generation: 4 }, [], WAL_HEADER_BYTES), (e: unknown) => isWaveKVError(e, "IO"));
  assert.is(wal.failure, null, "a failed reset is not a failed append");
  await wal.append([valueRecord(4)]);
  await wal.close();
  const scan = readScan(path);
  assert.is(scan.header.generation, 3);
  assert.is(scan.batch.count, 4);
  assert.not.ok(fs.existsSync(`${path}.tmp`));
});

// ---- deferred appends (group write): local writes queue while an fsync is in flight

/** A FaultHook that logs every write/fsync this layer issues, in order. */
function opLog(): { ops: ("write" | "fsync")[]; faults: FaultHook } {
  const ops: ("write" | "fsync")[] = [];
  return { ops, faults: (op, p) => { if (!p.endsWith(".tmp") && op !== "preallocate") ops.push(op); } };
}

/** Writes issued between consecutive fsyncs (the ones before the first fsync included). */
function writesPerFsync(ops: readonly ("write" | "fsync")[]): number[] {
  const out: number[] = [];
  let n = 0;
  for (const op of ops) {
    if (op === "write") n++;
    else { out.push(n); n = 0; }
  }
  if (n > 0) out.push(n);
  return out;
}

test("defer: 64 appends during an fsync go out in one write, in call order, all durable", async () => {
  const path = join(fresh(), "node_7.wal");
  const { ops, faults } = opLog();
  const wal = WalWriter.create(path, header, { fsync: "always", faults });
  const recs = Array.from({ length: 65 }, (_, i) => valueRecord(i + 1));
  // The first finds the log idle: written at once, fsync started (a lone writer waits for nothing).
  const first = wal.append([recs[0]!], { defer: true });
  assert.equal(ops, ["write", "fsync"]);
  const sizeAfterFirst = wal.size;
  let resolved = 0;
  const rest = recs.slice(1).map((r) => wal.append([r], { defer: true }).then(() => resolved++));
  assert.is(wal.queued, 64, "queued behind the fsync in flight");
  assert.is(wal.size, sizeAfterFirst, "nothing written while the fsync runs");
  await first;
  await Promise.all(rest);
  assert.is(resolved, 64);
  assert.equal(ops, ["write", "fsync", "write", "fsync"], "one write for the 64, then one fsync");
  await wal.close();
  const scan = readScan(path);
  assert.is(scan.damage, null);
  assert.equal(flatten([scan.batch]), recs.map(plain));
});

test("defer: 64 closed-loop writers keep one write and ~64 appends per fsync", async () => {
  const path = join(fresh(), "node_7.wal");
  const { ops, faults } = opLog();
  const wal = WalWriter.create(path, header, { fsync: "always", faults });
  const rounds = 8;
  let next = 1;
  const order: number[] = [];
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      for (let r = 0; r < rounds; r++) {
        const id = next++;
        order.push(id);
        await wal.append([valueRecord(id)], { defer: true });
      }
    }),
  );
  const fsyncs = wal.fsyncCount;
  await wal.close();
  const appends = 64 * rounds;
  const perFsync = writesPerFsync(ops);
  assert.ok(perFsync.every((w) => w <= 2), `writes per fsync: ${perFsync.join(",")}`);
  assert.ok(appends / fsyncs >= 40, `${appends} appends used ${fsyncs} fsyncs`);
  assert.equal(flatten([readScan(path).batch]), order.map((id) => plain(valueRecord(id))));
});

test("defer: an append resolves only after an fsync that started after its bytes were written", async () => {
  const path = join(fresh(), "node_7.wal");
  const fsyncAt: number[] = [];
  let wal!: WalWriter;
  wal = WalWriter.create(path, header, { fsync: "always", faults: (op) => { if (op === "fsync") fsyncAt.push(wal.size); } });
  // Where each record ends in the file, from its frame offsets at the end.
  const done = Array.from({ length: 40 }, (_, i) => {
    const id = i + 1;
    return wal.append([valueRecord(id)], { defer: true }).then(() => {
      const scan = readScan(path);
      const ids = flatten([scan.batch]).map((r) => r.seq);
      assert.ok(ids.includes(valueRecord(id).seq), `record ${id} in the file when it resolved`);
      const ends = [...frameOffsets(fs.readFileSync(path)).slice(1), scan.validEnd];
      const end = ends[ids.indexOf(valueRecord(id).seq)]!;
      assert.ok(fsyncAt.some((s) => s >= end), `append ${id} resolved before an fsync covering it`);
    });
  });
  await Promise.all(done);
  await wal.close();
});

test("defer: a plain append during an fsync writes at once, after the queue (call order), failure visible at once", async () => {
  const path = join(fresh(), "node_7.wal");
  let failWrite = false;
  const { ops, faults: log } = opLog();
  const wal = WalWriter.create(path, header, { fsync: "always", faults: (op, p) => { log(op, p); if (failWrite && op === "write") throw new Error("ENOSPC: simulated"); } });
  const a = wal.append([valueRecord(1)], { defer: true }); // idle: written, fsync starts
  const b = wal.append([valueRecord(2)], { defer: true }); // queued
  const c = wal.append([valueRecord(3)], { defer: true }); // queued
  const size = wal.size;
  const d = wal.append([valueRecord(4), valueRecord(5)]); // not deferred: queue + this, one write, now
  assert.ok(wal.size > size, "written before append returned");
  assert.is(wal.queued, 0);
  assert.equal(ops, ["write", "fsync", "write"]);
  await Promise.all([a, b, c, d]);
  await new Promise((r) => setImmediate(r)); // idle again (no fsync, no writers being gathered)
  failWrite = true;
  const e = wal.append([valueRecord(6)], { defer: true }); // idle: written at once, fails
  e.catch(() => undefined);
  assert.ok(wal.failure, "a write that fails at once latches at once");
  assert.ok(isWaveKVError(await e.then(() => null, (x) => x), "IO"));
  await wal.close();
  assert.equal(flatten([readScan(path).batch]), [1, 2, 3, 4, 5].map((i) => plain(valueRecord(i))));
});

test("defer, interval policy: appends of one run of microtasks share one write, resolve only once written, in call order", async () => {
  const path = join(fresh(), "node_7.wal");
  const { ops, faults } = opLog();
  const wal = WalWriter.create(path, header, { fsync: { intervalMs: 60_000 }, faults });
  const recs = Array.from({ length: 64 }, (_, i) => valueRecord(i + 1));
  const sizes: number[] = [];
  // Each resolves only after its bytes are in the file (a process crash then loses nothing).
  const all = recs.map((r) => wal.append([r], { defer: true }).then(() => sizes.push(wal.size)));
  assert.is(wal.queued, 64, "queued until the end of this run of microtasks");
  assert.is(ops.length, 0, "nothing written yet");
  // A plain append writes the queue first, then its own records: call order is log order.
  const plainRec = valueRecord(65);
  await wal.append([plainRec]);
  assert.equal(ops, ["write"], "one write for the 64 deferred and the plain append");
  await Promise.all(all);
  const size = wal.size;
  assert.ok(sizes.every((s) => s === size));
  // Closed-loop writers: one write per round of 64.
  ops.length = 0;
  let next = 66;
  await Promise.all(Array.from({ length: 64 }, async () => { for (let k = 0; k < 3; k++) await wal.append([valueRecord(next++)], { defer: true }); }));
  assert.equal(ops, ["write", "write", "write"]);
  await wal.close();
  const scan = readScan(path);
  assert.is(scan.damage, null);
  assert.is(scan.batch.count, 65 + 192);
  assert.equal(flatten([scan.batch]).slice(0, 65), [...recs, plainRec].map(plain));
});

test("defer: a failed group write rejects exactly the queued appends with IO and latches", async () => {
  const path = join(fresh(), "node_7.wal");
  let writes = 0;
  let failAt = -1;
  const wal = WalWriter.create(path, header, { fsync: "always", faults: (op) => { if (op === "write" && ++writes === failAt) throw new Error("ENOSPC: simulated"); } });
  await wal.append([valueRecord(1)], { defer: true });
  await idle(); // the solo writer's macrotask gather ends: the log is idle
  const first = wal.append([valueRecord(2)], { defer: true }); // idle: write #2, fsync starts
  failAt = 3; // the group write of everything queued behind that fsync
  const queued = Array.from({ length: 10 }, (_, i) => wal.append([valueRecord(i + 3)], { defer: true }));
  assert.is(wal.queued, 10);
  assert.is(wal.failure, null, "nothing is written (or failed) yet");
  await first; // its fsync started before the failure: it holds
  const results = await Promise.all(queued.map((p) => p.then(() => null, (e) => e)));
  assert.ok(results.every((e) => isWaveKVError(e, "IO")), "every queued append refused");
  assert.match(String(results[0]), /ENOSPC: simulated/);
  assert.ok(wal.failure);
  const size = wal.size;
  const later = await wal.append([valueRecord(99)], { defer: true }).then(() => null, (e) => e);
  assert.ok(isWaveKVError(later, "IO"), "latched");
  assert.is(wal.size, size);
  await wal.close();
  assert.equal(flatten([readScan(path).batch]), [1, 2].map((i) => plain(valueRecord(i))));
});

test("defer: a failed fsync rejects the written appends and the queued ones", async () => {
  const path = join(fresh(), "node_7.wal");
  let fail = false;
  const wal = WalWriter.create(path, header, { fsync: "always", faults: (op) => { if (fail && op === "fsync") throw new Error("EIO: simulated"); } });
  fail = true;
  const first = wal.append([valueRecord(1)], { defer: true }); // its fsync fails
  const queued = [2, 3, 4].map((i) => wal.append([valueRecord(i)], { defer: true }));
  const all = await Promise.all([first, ...queued].map((p) => p.then(() => null, (e) => e)));
  assert.ok(all.every((e) => isWaveKVError(e, "IO")), all.map(String).join("; "));
  await wal.close();
});

test("defer: a record the format cannot carry rejects only its own append", async () => {
  const path = join(fresh(), "node_7.wal");
  const wal = WalWriter.create(path, header, { fsync: "always" });
  const bad = { kind: 1, key: "k", value: null, timestamp: 0, node: 1, seq: 1 } as const;
  const first = wal.append([valueRecord(1)], { defer: true });
  const a = wal.append([valueRecord(2)], { defer: true });
  const b = wal.append([valueRecord(3), bad], { defer: true }).then(() => null, (e) => e);
  const c = wal.append([valueRecord(4)], { defer: true });
  assert.is(wal.queued, 3);
  await Promise.all([first, a, c]);
  assert.ok(isWaveKVError(await b, "INVALID_ARGUMENT"));
  assert.is(wal.failure, null);
  await wal.close();
  assert.equal(flatten([readScan(path).batch]), [1, 2, 4].map((i) => plain(valueRecord(i))));
});

test("defer: close() writes and syncs the queue", async () => {
  const path = join(fresh(), "node_7.wal");
  const { ops, faults } = opLog();
  const wal = WalWriter.create(path, header, { fsync: "always", faults });
  const all = [1, 2, 3, 4, 5].map((i) => wal.append([valueRecord(i)], { defer: true }));
  assert.is(wal.queued, 4);
  await wal.close();
  assert.is(wal.queued, 0);
  await Promise.all(all);
  assert.equal(ops.filter((o) => o === "write").length, 2);
  assert.equal(ops[ops.length - 1], "fsync", "the queue's write was fsynced");
  assert.equal(flatten([readScan(path).batch]), [1, 2, 3, 4, 5].map((i) => plain(valueRecord(i))));
});

test("defer: replace() with a non-empty queue writes it into the tail first; nothing is lost", async () => {
  const path = join(fresh(), "node_7.wal");
  const wal = WalWriter.create(path, header, { fsync: "always" });
  for (let i = 1; i <= 3; i++) await wal.append([valueRecord(i)]);
  await idle();
  const from = wal.size; // a snapshot covers 1..3
  const pending = [4, 5, 6, 7].map((i) => wal.append([valueRecord(i)], { defer: true })); // 4 written, 5..7 queued
  assert.is(wal.queued, 3);
  wal.replace({ ...header, generation: 4 }, [seqMark(3)], from);
  assert.is(wal.queued, 0);
  await Promise.all(pending);
  await wal.append([valueRecord(8)], { defer: true });
  await wal.close();
  const scan = readScan(path);
  assert.is(scan.header.generation, 4);
  assert.equal(flatten([scan.batch]), [seqMark(3), ...[4, 5, 6, 7, 8].map((i) => valueRecord(i))].map(plain));
});

test.run();
