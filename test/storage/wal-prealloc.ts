// The preallocated WAL (FORMAT §3, version 2; docs/design/0013-preallocated-wal.md): a zero
// tail is the clean end, valid records after zeros are unsynced writes kept aside (version
// 1: damage, CORRUPT_WAL), a version 1 log written by
// the previous release still opens, and running out of space while growing loses nothing
// acknowledged. The SIGKILL loop over preallocated logs is test/storage/crash.ts.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { isWaveKVError } from "../../src/core/errors.js";
import { files } from "../../src/storage/datadir.js";
import { openStorage } from "../../src/storage/storage.js";
import { PREALLOC_MIN, WAL_HEADER_BYTES, encodeWalHeader, parseWalHeader, walVersion, type WalHeader } from "../../src/storage/wal-file.js";
import { formatInspect, inspectDir } from "../../src/storage/inspect.js";
import { flatten, frameOffsets, freshDirs, oracleWal, plain, seqMark, valueRecord } from "../helpers/storage-fixtures.js";

const fresh = freshDirs("prealloc", (hook) => test.after(hook));
const fixture = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "wal-v1");

/** A record of about `bytes` bytes on disk, exact per id. */
function bigRecord(id: number, bytes = 2000) {
  const r = valueRecord(id);
  const value = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) value[i] = (id * 31 + i) & 0xff;
  return { ...r, value };
}

/** What a crash leaves: the log's bytes while it is open (everything acknowledged is in them), in a fresh directory. */
function crashImage(from: string): string {
  const dir = fresh();
  for (const name of fs.readdirSync(from)) if (!name.endsWith(".lock")) fs.copyFileSync(join(from, name), join(dir, name));
  return dir;
}

test("a version 1 log written by the previous release opens, is appended to as version 1, and becomes version 2 at the next reset", async () => {
  const dir = fresh();
  for (const name of fs.readdirSync(fixture)) fs.copyFileSync(join(fixture, name), join(dir, name));
  const wal = files(dir, 1).wal;
  const before = fs.readFileSync(wal);
  assert.is(walVersion(before), 1, "the fixture is version 1");
  const s = await openStorage({ dir, nodeId: 1, fsync: "always" });
  assert.equal(s.recovered.warnings, []);
  const recs = flatten(s.recovered.batches);
  assert.is(recs.length, 41);
  assert.equal(recs[0], plain({ kind: 1, key: "fixture/1", value: new TextEncoder().encode(`v1-value-1-${"x"}`), timestamp: 1_700_000_000_001, node: 1, seq: 1 }));
  assert.equal(recs[40], plain({ kind: 0, key: "fixture/3", value: null, timestamp: 1_700_000_000_100, node: 1, seq: 41 }));
  for (let i = 42; i < 60; i++) await s.append([bigRecord(i)]);
  // Not preallocated: a version 1 reader would take a zero tail for a crash's torn tail.
  const open1 = fs.readFileSync(wal);
  assert.is(walVersion(open1), 1);
  assert.is(oracleWal(open1, 1).outcome === "ok" && (oracleWal(open1, 1) as { validEnd: number }).validEnd, open1.length, "no zero tail on a version 1 log");
  await s.close();
  const again = await openStorage({ dir, nodeId: 1, fsync: "always" });
  assert.equal(flatten(again.recovered.batches), [...recs, ...Array.from({ length: 18 }, (_, k) => plain(bigRecord(42 + k)))]);
  await again.snapshot(() => [seqMark(59)]);
  assert.is(walVersion(fs.readFileSync(wal)), 2, "the reset after a snapshot writes version 2");
  assert.ok(fs.statSync(wal).size >= again.walBytes + PREALLOC_MIN, "preallocated by the reset itself, under its fsync");
  const reset = crashImage(dir);
  const r = await openStorage({ dir: reset, nodeId: 1, fsync: "never" });
  assert.equal(r.recovered.warnings, []);
  assert.equal(flatten(r.recovered.batches), [seqMark(59), seqMark(59)].map(plain), "the snapshot (one seq mark) and the reset log's head (its marks)");
  await r.close();
  await again.append([bigRecord(60)]);
  assert.ok(fs.statSync(wal).size > again.walBytes, "and from then on the log is preallocated");
  await again.close();
});

test("version 2: a crash image with a zero tail opens clean (no warning, nothing truncated) across several growths; appends go after the last record", async () => {
  const dir = fresh();
  const s = await openStorage({ dir, nodeId: 1, fsync: "always" });
  const recs = Array.from({ length: 200 }, (_, i) => bigRecord(i + 1)); // ~400 KB: several growths
  for (const r of recs) await s.append([r]);
  const wal = files(dir, 1).wal;
  const image = fs.readFileSync(wal);
  assert.ok(image.length > s.walBytes && image.length - s.walBytes >= PREALLOC_MIN / 2, `preallocated: ${image.length} bytes for ${s.walBytes} of records`);
  const crashed = crashImage(dir);
  await s.close();
  assert.is(fs.statSync(wal).size, oracleEnd(fs.readFileSync(wal)), "a clean close trims the zero tail");

  const r = await openStorage({ dir: crashed, nodeId: 1, fsync: "always" });
  assert.equal(r.recovered.warnings, [], "a zero tail is the clean end");
  assert.equal(flatten(r.recovered.batches), recs.map(plain));
  assert.is(fs.statSync(files(crashed, 1).wal).size, image.length, "nothing truncated while open");
  const report = inspectDir(crashed);
  assert.ok(report.ok, "inspect agrees");
  assert.is(report.nodes[0]!.wal.preallocated, image.length - oracleEnd(image));
  assert.match(formatInspect(report), `records end at offset ${oracleEnd(image)}; ${image.length - oracleEnd(image)} preallocated zero bytes follow`);
  await r.append([bigRecord(201)]);
  const again = crashImage(crashed);
  await r.close();
  const back = await openStorage({ dir: again, nodeId: 1, fsync: "never" });
  assert.equal(flatten(back.recovered.batches), [...recs, bigRecord(201)].map(plain), "the next record overwrote zeros right after the last one");
  await back.close();
});

test("a write of PREALLOC_MAX or more appends past the end without zeros first; small ones after it are preallocated again", async () => {
  const dir = fresh();
  const s = await openStorage({ dir, nodeId: 1, fsync: "never" });
  const wal = files(dir, 1).wal;
  await s.append([bigRecord(1)]);
  const big = Array.from({ length: 2200 }, (_, i) => bigRecord(i + 2)); // ~4.4 MB in one write
  await s.append(big);
  assert.is(fs.statSync(wal).size, s.walBytes, "the large write ended the file");
  await s.append([bigRecord(3000)]);
  assert.ok(fs.statSync(wal).size > s.walBytes, "preallocated again");
  const image = crashImage(dir);
  await s.close();
  const r = await openStorage({ dir: image, nodeId: 1, fsync: "never" });
  assert.equal(r.recovered.warnings, []);
  assert.equal(flatten(r.recovered.batches), [bigRecord(1), ...big, bigRecord(3000)].map(plain));
  await r.close();
});

function oracleEnd(b: Uint8Array): number {
  const o = oracleWal(b, 1);
  if (o.outcome !== "ok") throw new Error("oracle: corrupt");
  return o.validEnd;
}

/** A log of records 1..5 whose record 5 reached the disk after a gap of zeros (its page written before the one at the gap), in a fresh directory; `version` 1 rewrites the header's version. */
async function zeroGapImage(version: 1 | 2): Promise<{ dir: string; end: number; tail: Buffer }> {
  const dir = fresh();
  const s = await openStorage({ dir, nodeId: 1, fsync: "always" });
  for (let i = 1; i <= 5; i++) await s.append([valueRecord(i)]);
  const image = fs.readFileSync(files(dir, 1).wal);
  await s.close();
  const offs = frameOffsets(image.subarray(0, oracleEnd(image)));
  const end = oracleEnd(image);
  const frame = image.subarray(offs[4]!, end);
  const damaged = Buffer.from(image);
  damaged.fill(0, offs[4]!, end);
  damaged.set(frame, end + 4096);
  if (version === 1) {
    // The same bytes under a version 1 header (its CRC recomputed), cut after the frame.
    const v1 = Buffer.from(encodeWalHeader(parseWalHeader(damaged) as WalHeader, 1));
    v1.copy(damaged, 0);
  }
  const crashed = fresh();
  const bytes = version === 1 ? damaged.subarray(0, end + 4096 + frame.length) : damaged;
  fs.writeFileSync(files(crashed, 1).wal, bytes);
  return { dir: crashed, end: offs[4]!, tail: Buffer.from(bytes.subarray(offs[4]!)) };
}

test("version 2: valid records after a run of zeros (writes that reached the disk out of order) are kept aside, not replayed, and open goes on", async () => {
  const { dir, end, tail } = await zeroGapImage(2);
  assert.is(inspectDir(dir).nodes[0]!.wal.damage, "tail", "inspect: open repairs it");
  const opened = await openStorage({ dir, nodeId: 1, fsync: "always" });
  assert.equal(flatten(opened.recovered.batches), [1, 2, 3, 4].map((i) => plain(valueRecord(i))), "records before the zeros, nothing after");
  const warning = opened.recovered.warnings.find((w) => w.includes("UNSYNCED WRITES NOT REPLAYED"));
  assert.ok(warning, opened.recovered.warnings.join("\n"));
  assert.match(warning!, `at offset ${end}`);
  const kept = `${files(dir, 1).wal}.damaged-${end}`;
  assert.ok(warning!.includes(kept), "the warning names the copy");
  assert.ok(Buffer.from(fs.readFileSync(kept)).equals(tail), "every byte from the zeros on is kept");
  await opened.append([valueRecord(9)]);
  await opened.close();
  const again = await openStorage({ dir, nodeId: 1, fsync: "never" });
  assert.equal(flatten(again.recovered.batches), [1, 2, 3, 4, 9].map((i) => plain(valueRecord(i))), "appends after the repair follow; record 5 never comes back");
  assert.equal(again.recovered.warnings, [], "consistent again");
  await again.close();
});

test("version 1: a valid frame after a run of zeros is damage in the middle (CORRUPT_WAL), the file untouched", async () => {
  const { dir, end } = await zeroGapImage(1);
  const before = fs.readFileSync(files(dir, 1).wal);
  const opened = await openStorage({ dir, nodeId: 1, fsync: "never" }).then((x) => x, (e) => e);
  assert.ok(isWaveKVError(opened, "CORRUPT_WAL"), String(opened));
  assert.match(String(opened), `at offset ${end}`);
  assert.ok(fs.readFileSync(files(dir, 1).wal).equals(before), "not modified");
  assert.is(inspectDir(dir).nodes[0]!.wal.damage, "fatal");
});

test("ENOSPC while preallocating: the append that needed the space fails IO and latches; everything acknowledged reopens", async () => {
  const dir = fresh();
  let grows = 0;
  const faults = (op: string) => { if (op === "preallocate" && ++grows === 3) throw Object.assign(new Error("ENOSPC: no space left on device (simulated)"), { code: "ENOSPC" }); };
  const s = await openStorage({ dir, nodeId: 1, fsync: "always", faults });
  const acked: number[] = [];
  let failure: unknown = null;
  for (let i = 1; i <= 400 && failure === null; i++) {
    try {
      await s.append([bigRecord(i)], { defer: true });
      acked.push(i);
    } catch (e) {
      failure = e;
    }
  }
  assert.ok(isWaveKVError(failure, "IO") && /ENOSPC/.test(String(failure)), String(failure));
  assert.is(grows, 3);
  const later = await s.append([bigRecord(999)]).then(() => null, (e) => e);
  assert.ok(isWaveKVError(later, "IO"), "latched until reopened");
  const image = crashImage(dir);
  await s.close().catch(() => {});
  for (const d of [dir, image]) {
    const r = await openStorage({ dir: d, nodeId: 1, fsync: "never" });
    assert.equal(r.recovered.warnings, [], "nothing of the failed append was written");
    assert.equal(flatten(r.recovered.batches), acked.map((i) => plain(bigRecord(i))));
    await r.close();
  }
});

test.run();
