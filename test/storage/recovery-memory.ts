// Recovery reads logs and snapshots straight into linear memory (readIntoKernel, decodeWindow), and
// the replica state keeps values in that pinned block: values must survive memory
// growth, overwrites and compaction; blocks must be freed; damage must be reported as
// for a JS buffer. Real files in fresh temp dirs.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import { Node } from "../../src/node/node.js";
import { isWaveKVError } from "../../src/core/errors.js";
import { encodeRecords } from "../../src/codec/records.js";
import { decodeWindow, readIntoKernel } from "../../src/codec/windows.js";
import { type DecodedBatch, type RecordInput } from "../../src/core/record.js";
import { openStorage, type Storage } from "../../src/storage/storage.js";
import { ReplicaState } from "../../src/state/replica.js";
import { DEFAULT_LIMITS } from "../../src/core/types.js";
import { files } from "../../src/storage/datadir.js";
import { kernel } from "../../src/kernel/instance.js";
import { encodeSnapshot, parseSnapshot } from "../../src/storage/snapshot.js";
import { REGIONS, R_DESC, R_IN, R_OUT } from "../../src/kernel/abi.js";
import { flatten, frameOffsets, freshDirs, mixedRecord, oracleSnapshot, oracleWal, plain, rng } from "../helpers/storage-fixtures.js";

const fresh = freshDirs("recovery-memory", (hook) => test.after(hook));

const text = (v: Uint8Array | null | undefined) => (v == null ? String(v) : new TextDecoder().decode(v));
const valueOf = (i: number, tag = "v") => `${tag}-${i}-${"x".repeat(80 + (i % 17))}`;
const memoryBytes = () => kernel().exports.memory.buffer.byteLength;

/** Grows linear memory by `bytes` (from JS, as any kernel allocation may): detaches every view of it. */
function growMemory(bytes: number): void {
  const memory = kernel().exports.memory;
  const old = memory.buffer;
  memory.grow(Math.ceil(bytes / 65536));
  assert.is(old.byteLength, 0, "the old buffer is detached");
}

function records(n: number, tag: string, node = 2, ts = 10): RecordInput[] {
  return Array.from({ length: n }, (_, i) => ({ kind: 1, key: `k${i}`, value: new TextEncoder().encode(valueOf(i, tag)), timestamp: ts, node, seq: i + 1 }));
}

/** A batch decoded the way recovery decodes a file: bytes written into the kernel's input. */
function inMemoryBatch(recs: RecordInput[]) {
  const image = encodeRecords(recs, "framed", 0);
  const holder = {};
  const block = readIntoKernel(image.length, (dst) => dst.set(image), holder);
  const batch = decodeWindow(block, 0, "framed", 0);
  block.drop(holder); // the batch holds its own reference
  return batch;
}

async function writeNode(dir: string, n: number, tag = "v"): Promise<void> {
  const node = await Node.open({ id: 1, dir, fsync: "never", snapshotWalBytes: Number.MAX_SAFE_INTEGER });
  for (let i = 0; i < n; i += 500) await Promise.all(Array.from({ length: Math.min(500, n - i) }, (_, j) => node.put(`k${i + j}`, valueOf(i + j, tag))));
  await node.close();
}

const openNode = (dir: string) => Node.open({ id: 1, dir, fsync: "never", snapshotWalBytes: Number.MAX_SAFE_INTEGER, onWarning: () => undefined });

test("an input block: decoded in place while in the region, kept where it is when the region is reused, freed by its last drop", () => {
  const k = kernel();
  const image = encodeRecords(records(50, "p"), "framed", 0);
  const holder = {};
  const before = k.pinnedBytes;
  const block = readIntoKernel(image.length, (dst) => dst.set(image), holder);
  assert.ok(block.inRegion);
  assert.is(k.pinnedBytes - before, image.length);
  const first = decodeWindow(block, 0, "framed", 0, 20);
  assert.is(first.count, 20);
  assert.is(first.stop.reason, "limit");
  const second = decodeWindow(block, first.stop.offset, "framed", 0);
  assert.is(second.count, 30);
  assert.is(second.key(0), "k20", "window offsets are relative to the window");
  assert.is(first.key(19), "k19", "the first window's descriptors were copied out, not overwritten");
  const q = k.reserve(R_IN, 4096); // the region is reused: the block leaves it
  assert.not.ok(block.inRegion);
  assert.is.not(q, block.ptr);
  k.u8.fill(9, q, q + 4096);
  assert.is(text(second.value(29)), valueOf(49, "p"), "the block's bytes are untouched");
  assert.throws(() => decodeWindow(block, 0, "framed", 0), /left the input region/);
  assert.throws(() => k.exports.unpin(q), /current region block/, "a region's own block is never freed by unpin");
  first.release();
  second.release();
  block.drop(holder);
  assert.is(k.pinnedBytes, before);
  assert.throws(() => block.view(), /after its last drop/);
});

const regionCap = (r: number) => kernel().u32[(REGIONS >>> 2) + r * 2 + 1]!;

test("trim frees region blocks over the limit and keeps the rest", () => {
  const k = kernel();
  k.reserve(R_DESC, 6 << 20);
  k.reserve(R_OUT, 64 << 10);
  k.trim(4 << 20);
  assert.is(regionCap(R_DESC), 0, "the 6 MB descriptor block is freed");
  assert.ok(regionCap(R_OUT) >= 64 << 10, "a small region is kept");
  assert.ok(k.reserve(R_DESC, 1024) > 0, "and regrows on demand");
});

test("after opening a 100k-record WAL the kernel's scratch regions are back under 4 MB", async () => {
  const dir = fresh();
  await writeNode(dir, 100_000);
  const node = await openNode(dir);
  assert.is(node.size, 100_000);
  for (const r of [R_IN, R_DESC, R_OUT]) assert.ok(regionCap(r) <= 4 << 20, `region ${r}: ${regionCap(r)} B kept`);
  assert.is(text(node.get("k99999")!.value), valueOf(99999));
  await node.close();
});

test("values replayed from linear memory survive memory growth; handed-out values are copies", () => {
  const s = new ReplicaState(1);
  const batch = inMemoryBatch(records(2000, "a"));
  s.mergeBatch(batch, { limits: DEFAULT_LIMITS, now: 1_000, trusted: true });
  batch.release();
  assert.ok(s.retainedBytes > 150_000, `the block is kept (${s.retainedBytes} B)`);
  const v = s.get("k5")!.value!;
  growMemory(16 << 20);
  assert.is(text(v), valueOf(5, "a"), "a value handed out before growth is intact (a copy, not a view)");
  for (let i = 0; i < 2000; i += 7) assert.is(text(s.get(`k${i}`)!.value), valueOf(i, "a"), `k${i} after growth`);
  v.fill(0x21);
  assert.is(text(s.get("k5")!.value), valueOf(5, "a"), "mutating a returned value changes nothing stored");
  // Overwrite 80 %: the block falls under a quarter live and its survivors are copied out.
  // Every batch here is released: a pin dropped later by the GC would move pinnedBytes under another test.
  const overwrite = inMemoryBatch(records(1600, "b", 3, 20));
  s.mergeBatch(overwrite, { limits: DEFAULT_LIMITS, now: 1_000, trusted: true });
  overwrite.release();
  for (let i = 0; i < 2000; i += 13) assert.is(text(s.get(`k${i}`)!.value), valueOf(i, i < 1600 ? "b" : "a"), `k${i} after overwrite`);
  let bytes = 0;
  for (const e of s.scan("", true)) bytes += e.key.length + (e.value?.length ?? 0);
  assert.is(s.totalBytes, bytes, "every live byte counted once");
  s.dispose();
});

test("a batch evicted from the input region keeps its bytes pinned, not copied, and still merges", () => {
  const s = new ReplicaState(1);
  const batch = inMemoryBatch(records(300, "c"));
  inMemoryBatch(records(10, "d")).release(); // reuses the input region: the first batch is pinned
  growMemory(16 << 20);
  s.mergeBatch(batch, { limits: DEFAULT_LIMITS, now: 1_000, trusted: true });
  batch.release();
  for (let i = 0; i < 300; i += 11) assert.is(text(s.get(`k${i}`)!.value), valueOf(i, "c"));
  s.dispose();
});

test("a large WAL (read into linear memory): every value after reopen, overwrites and growth", async () => {
  const dir = fresh();
  await writeNode(dir, 3000);
  assert.ok(fs.statSync(files(dir, 1).wal).size > 256 << 10, "past the JS-decoded size");
  const node = await openNode(dir);
  assert.is(node.size, 3000);
  growMemory(16 << 20);
  for (let i = 0; i < 3000; i += 3) assert.is(text(node.get(`k${i}`)!.value), valueOf(i), `k${i}`);
  await node.put("k1", "new");
  assert.is(text(node.get("k1")!.value), "new");
  await node.close();
  const again = await openNode(dir);
  assert.is(text(again.get("k1")!.value), "new");
  assert.is(text(again.get("k2999")!.value), valueOf(2999));
  await again.close();
});

test("a snapshot and a large WAL after it: both read into linear memory, all values correct", async () => {
  const dir = fresh();
  await writeNode(dir, 2000, "s");
  const node = await openNode(dir);
  await node.persist();
  for (let i = 1000; i < 4000; i += 500) await Promise.all(Array.from({ length: 500 }, (_, j) => node.put(`k${i + j}`, valueOf(i + j, "w"))));
  await node.close();
  assert.ok(fs.statSync(files(dir, 1).wal).size > 256 << 10);
  const back = await openNode(dir);
  assert.is(back.size, 4000);
  growMemory(16 << 20);
  for (let i = 0; i < 4000; i += 7) assert.is(text(back.get(`k${i}`)!.value), valueOf(i, i < 1000 ? "s" : "w"), `k${i}`);
  await back.close();
});

test("opening and closing a large WAL again and again frees its pinned blocks; linear memory stops growing", async () => {
  const dir = fresh();
  await writeNode(dir, 4000);
  const k = kernel();
  const before = k.pinnedBytes;
  const node = await openNode(dir);
  // Exact counts: every batch and state in this file is released or disposed, and the
  // replay scopes its own, so no pin is left for the GC to drop under another test.
  assert.is(k.pinnedBytes - before, fs.statSync(files(dir, 1).wal).size - 32, "the log's bytes (after its header) stay pinned while the node is open");
  await node.close();
  assert.is(k.pinnedBytes, before, "close frees them");
  for (let i = 0; i < 2; i++) await (await openNode(dir)).close();
  const settled = memoryBytes();
  for (let i = 0; i < 5; i++) await (await openNode(dir)).close();
  // Blocks freed by the GC's finalizers meanwhile may shift the heap's layout a little.
  assert.ok(memoryBytes() - settled <= 1 << 20, `five more opens reuse the blocks the closed nodes freed (grew ${memoryBytes() - settled} B)`);
  assert.is(k.pinnedBytes, before);
});

test("large WAL damage: torn tail truncated, a damaged middle record is CORRUPT_WAL at its offset", async () => {
  const dir = fresh();
  await writeNode(dir, 2500);
  const walPath = files(dir, 1).wal;
  const bytes = fs.readFileSync(walPath);
  const offsets = frameOffsets(bytes);
  assert.ok(bytes.length > 128 << 10);
  // A bit flip in record 100, with valid records after it.
  const damaged = Buffer.from(bytes);
  damaged[offsets[100]! + 12]! ^= 0x40;
  fs.writeFileSync(walPath, damaged);
  const held = kernel().pinnedBytes;
  const err = await openNode(dir).then(() => null, (e) => e);
  assert.ok(isWaveKVError(err, "CORRUPT_WAL"), String(err));
  assert.is(kernel().pinnedBytes, held, "the failed open dropped the file bytes it had replayed");
  assert.ok((err as Error).message.includes(`offset ${offsets[100]}`), (err as Error).message);
  assert.equal(fs.readFileSync(walPath), damaged, "a refused WAL is not modified");
  // A torn last record: the rest opens, the tail is cut.
  fs.writeFileSync(walPath, bytes.subarray(0, bytes.length - 5));
  const warnings: string[] = [];
  const node = await Node.open({ id: 1, dir, fsync: "never", onWarning: (w) => warnings.push(String(w)) });
  assert.is(node.size, 2499);
  assert.match(warnings.join("\n"), /truncated/);
  assert.is(text(node.get("k2498")!.value), valueOf(2498));
  await node.close();
  assert.is(fs.statSync(walPath).size, offsets[offsets.length - 1]);
});

test("windowed replay of a long log matches the independent oracle under cuts, bit flips, zeroed tails, absurd lengths and random bytes", async () => {
  const dir = fresh();
  const s = await openStorage({ dir, nodeId: 1, fsync: "never" });
  const recs = Array.from({ length: 2400 }, (_, i) => mixedRecord(i + 1));
  for (let i = 0; i < recs.length; i += 50) await s.append(recs.slice(i, i + 50));
  await s.close();
  const walPath = files(dir, 1).wal;
  const clean = fs.readFileSync(walPath);
  assert.ok(clean.length > 100 << 10, `past the JS-decoded size (${clean.length} B)`);
  const offsets = frameOffsets(clean);
  const random = rng(20261202);
  const pick = (n: number) => Math.floor(random() * n);
  const cases: { what: string; bytes: Uint8Array }[] = [{ what: "clean", bytes: clean }];
  for (let i = 0; i < 12; i++) {
    const cut = offsets[offsets.length - 1 - pick(40)]! + pick(30);
    cases.push({ what: `cut at ${cut}`, bytes: clean.subarray(0, Math.min(cut, clean.length)) });
  }
  for (let i = 0; i < 12; i++) {
    const at = 32 + pick(clean.length - 32);
    const b = Buffer.from(clean);
    b[at]! ^= 1 << pick(8);
    cases.push({ what: `bit flip at ${at}`, bytes: b });
  }
  for (let i = 0; i < 4; i++) {
    const from = offsets[offsets.length - 1 - pick(200)]! + pick(10);
    const b = Buffer.from(clean);
    b.fill(0, from);
    cases.push({ what: `zeroed from ${from}`, bytes: b });
  }
  for (let i = 0; i < 8; i++) {
    // An absurd length field: past the file, huge, zero, or one byte off.
    const victim = offsets[pick(offsets.length)]!;
    const b = Buffer.from(clean);
    const len = b.readUInt32LE(victim);
    const absurd = [0xffffffff, 0x7fffffff, clean.length, 0, len + 1, len - 1, 1 << 30, len + 8][i]!;
    b.writeUInt32LE(absurd >>> 0, victim);
    cases.push({ what: `length ${absurd} at ${victim}`, bytes: b });
  }
  for (let i = 0; i < 6; i++) {
    // Random bytes over a span, or spliced in (shifting every later frame).
    const at = 32 + pick(clean.length - 600);
    const junk = new Uint8Array(1 + pick(500)).map(() => pick(256));
    const b = i % 2 === 0 ? Buffer.from(clean) : Buffer.concat([clean.subarray(0, at), junk, clean.subarray(at)]);
    if (i % 2 === 0) b.set(junk, at);
    cases.push({ what: `${junk.length} random bytes ${i % 2 === 0 ? "over" : "spliced in"} at ${at}`, bytes: b });
  }
  for (const c of cases) {
    const expected = oracleWal(c.bytes, 1);
    for (const replayWindow of [1, 97, 1 << 16]) {
      fs.writeFileSync(walPath, c.bytes);
      const opened = await openStorage({ dir, nodeId: 1, fsync: "never", replayWindow }).then((st) => st, (e) => e as Error);
      const label = `${c.what}, window ${replayWindow}`;
      if (expected.outcome === "corrupt") {
        assert.ok(isWaveKVError(opened, "CORRUPT_WAL"), `${label}: ${opened}`);
        continue;
      }
      assert.not.instance(opened, Error, `${label}: ${opened}`);
      const st = opened as Storage;
      assert.equal(flatten(st.recovered.batches), expected.records, label);
      for (const b of st.recovered.batches) b.release();
      await st.close();
      assert.is(fs.statSync(walPath).size, expected.validEnd, `${label}: truncated to the last good record`);
    }
  }
});

for (const version of [1, 2] as const) {
  test(`a snapshot (version ${version}) damaged in a later window: the node starts over from .bak, keeping nothing of the damaged one`, async () => {
    const dir = fresh();
    const n = 70_000; // more than one 65,536-record window
    const node = await Node.open({ id: 1, dir, fsync: "never", snapshotWalBytes: Number.MAX_SAFE_INTEGER });
    const putAll = async (tag: string) => {
      for (let i = 0; i < n; i += 1000) await Promise.all(Array.from({ length: 1000 }, (_, j) => node.put(`k${i + j}`, `${tag}${i + j}`)));
    };
    await putAll("a");
    await node.persist(); // becomes .bak below
    await putAll("b"); // newer: would win over "a" if any of it stayed
    await node.persist();
    await node.close();
    const snapPath = files(dir, 1).snapshot;
    let image = fs.readFileSync(snapPath);
    if (version === 1) {
      image = Buffer.from(asVersion1(image, 1));
      image[frameOffsets(image, 64)[68_000]! + 9]! ^= 0x20; // inside the second window
    } else {
      image[image.length - 3000]! ^= 0x20; // in one of the last blocks
    }
    fs.writeFileSync(snapPath, image);
    const warnings: string[] = [];
    const before = kernel().pinnedBytes;
    const back = await Node.open({ id: 1, dir, fsync: "never", onWarning: (w) => warnings.push(String(w)) });
    assert.match(warnings.join("\n"), /damaged.*loaded the previous generation/s);
    assert.is(back.size, n);
    for (let i = 0; i < n; i += 997) assert.is(text(back.get(`k${i}`)!.value), `a${i}`, `k${i} from .bak only`);
    await back.close();
    assert.is(kernel().pinnedBytes, before, "the dropped first attempt freed its file bytes");
  });
}

/** The records of a (version 2) snapshot image written again as version 1, what the previous release wrote. */
function asVersion1(image: Uint8Array, nodeId: number): Uint8Array {
  const parsed = parseSnapshot(image, nodeId);
  if (typeof parsed === "string") throw new Error(parsed);
  const b = parsed.batch;
  const records: RecordInput[] = [];
  for (let i = 0; i < b.count; i++) records.push({ kind: b.kind(i), key: b.keyBytes(i).slice(), value: b.value(i), timestamp: b.timestamp(i), node: b.node(i), seq: b.seq(i) });
  b.release();
  const v1 = encodeSnapshot(records, parsed.header, 1);
  assert.is(new DataView(v1.buffer, v1.byteOffset).getUint32(4, true), 1);
  return v1;
}

test("storage: a snapshot damaged after some windows were handed over restarts the consumer before .bak", async () => {
  const dir = fresh();
  const f = files(dir, 1);
  const s = await openStorage({ dir, nodeId: 1, fsync: "never" });
  const older = Array.from({ length: 300 }, (_, i) => mixedRecord(i + 1));
  await s.append(older);
  await s.snapshot(() => older);
  const newer = Array.from({ length: 500 }, (_, i) => mixedRecord(i + 1000));
  await s.snapshot(() => newer);
  const after = [mixedRecord(5000), mixedRecord(5001)];
  await s.append(after);
  await s.close();
  // Version 1 (framed records): its damage is found window by window; version 2's before any window is handed over.
  const image = asVersion1(fs.readFileSync(f.snapshot), 1);
  const offsets = frameOffsets(image, 64);
  image[offsets[400]! + 9]! ^= 0x01;
  fs.writeFileSync(f.snapshot, image);
  let consumers = 0, abandoned = 0;
  // A batch is the storage's only during `apply`: the sink copies the records out.
  const seen: ReturnType<typeof flatten>[] = [];
  const before = kernel().pinnedBytes;
  const st = await openStorage({
    dir, nodeId: 1, fsync: "never", replayWindow: 60,
    replay: () => {
      consumers++;
      const mine: ReturnType<typeof flatten> = [];
      seen.push(mine);
      return {
        apply: (b) => { mine.push(...flatten([b])); },
        abandon: () => { abandoned++; },
      };
    },
  });
  assert.is(consumers, 2, "a second consumer after the damaged snapshot");
  assert.is(abandoned, 1, "the first one was abandoned");
  assert.is(seen[0]!.length, 360, "the first took the six windows before the damage");
  const bak = oracleSnapshot(fs.readFileSync(f.snapshotBak), 1)!;
  assert.equal(seen[1]!, [...bak.records, ...seen[1]!.slice(bak.records.length)], "then .bak whole");
  assert.equal(seen[1]!.slice(-2), after.map(plain), "and the WAL after it");
  assert.match(st.recovered.warnings.join(), /loaded the previous generation/);
  assert.is(kernel().pinnedBytes, before, "the session dropped its blocks and released every batch");
  await st.close();
});

test.run();
