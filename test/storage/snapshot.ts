// Snapshot files: encode/parse, validation of every field, install with .bak, fallback.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import { crc32 as zcrc32 } from "node:zlib";
import { files } from "../../src/storage/datadir.js";
import { SNAPSHOT_HEADER_BYTES, encodeSnapshot, loadSnapshot, parseSnapshot, writeSnapshotFile } from "../../src/storage/snapshot.js";
import { flatten, freshDirs, mixedRecord, oracleSnapshot, plain, valueRecord } from "../helpers/storage-fixtures.js";

const fresh = freshDirs("snap", (hook) => test.after(hook));

const meta = { nodeId: 3, base: 1_700_000_000_500, walGeneration: 9, walOffset: 4242 };
const records = Array.from({ length: 40 }, (_, i) => mixedRecord(i + 1));

test("encode → parse round-trips records and header; the independent oracle agrees", () => {
  const image = encodeSnapshot(records, meta);
  const parsed = parseSnapshot(image, 3);
  if (typeof parsed === "string") throw new Error(parsed);
  assert.equal(parsed.header, { ...meta, count: 40, bodyLen: image.length - SNAPSHOT_HEADER_BYTES });
  assert.equal(flatten([parsed.batch]), records.map(plain));
  assert.equal(oracleSnapshot(image, 3)?.records, records.map(plain));
});

test("an empty snapshot is valid", () => {
  const image = encodeSnapshot([], meta);
  assert.is(image.length, SNAPSHOT_HEADER_BYTES);
  const parsed = parseSnapshot(image, 3);
  assert.ok(typeof parsed !== "string" && parsed.batch.count === 0);
});

test("every single-bit flip anywhere is refused", () => {
  const image = encodeSnapshot(records.slice(0, 6), meta);
  for (let bit = 0; bit < image.length * 8; bit++) {
    const copy = image.slice();
    copy[bit >> 3]! ^= 1 << (bit & 7);
    assert.type(parseSnapshot(copy, 3), "string", `bit ${bit} accepted`);
  }
});

test("truncated, extended, wrong node: refused with a reason", () => {
  const image = encodeSnapshot(records, meta);
  for (let cut = 0; cut < image.length; cut += 7) assert.type(parseSnapshot(image.subarray(0, cut), 3), "string", `cut ${cut}`);
  const longer = new Uint8Array(image.length + 8);
  longer.set(image);
  assert.match(parseSnapshot(longer, 3) as string, /truncated or extended/);
  assert.match(parseSnapshot(image, 4) as string, /node 3, not node 4/);
});

test("record count is checked against the header (a file holding fewer whole records is refused)", () => {
  const forged = encodeSnapshot([valueRecord(1)], meta).slice();
  const dv = new DataView(forged.buffer);
  dv.setBigUint64(24, 2n, true); // claim two records
  dv.setUint32(60, zcrc32(forged.subarray(0, 60)) >>> 0, true); // with a valid header CRC
  assert.match(parseSnapshot(forged, 3) as string, /2 records, body holds 1/);
});

test("install: tmp → snapshot, previous generation kept as .bak, no tmp left", async () => {
  const dir = fresh();
  const f = files(dir, 3);
  await writeSnapshotFile(f, encodeSnapshot([valueRecord(1)], meta));
  assert.not.ok(fs.existsSync(f.snapshotBak));
  await writeSnapshotFile(f, encodeSnapshot([valueRecord(2)], { ...meta, walGeneration: 10 }));
  await writeSnapshotFile(f, encodeSnapshot([valueRecord(3)], { ...meta, walGeneration: 11 }));
  assert.not.ok(fs.existsSync(f.snapshotTmp));
  const cur = parseSnapshot(fs.readFileSync(f.snapshot), 3);
  const bak = parseSnapshot(fs.readFileSync(f.snapshotBak), 3);
  assert.ok(typeof cur !== "string" && cur.header.walGeneration === 11);
  assert.ok(typeof bak !== "string" && bak.header.walGeneration === 10);
});

test("load: newest, else .bak with a warning, else nothing with a warning", async () => {
  const dir = fresh();
  const f = files(dir, 3);
  assert.equal(loadSnapshot(f, 3), { snapshot: null, warnings: [] }, "fresh directory: silent");
  await writeSnapshotFile(f, encodeSnapshot([valueRecord(1)], meta));
  await writeSnapshotFile(f, encodeSnapshot([valueRecord(2)], meta));
  let r = loadSnapshot(f, 3);
  assert.is(r.snapshot?.path, f.snapshot);
  assert.equal(r.warnings, []);
  const bytes = fs.readFileSync(f.snapshot);
  bytes[bytes.length - 2]! ^= 0xff;
  fs.writeFileSync(f.snapshot, bytes);
  r = loadSnapshot(f, 3);
  assert.is(r.snapshot?.path, f.snapshotBak);
  assert.equal(flatten([r.snapshot!.batch]), [plain(valueRecord(1))]);
  assert.is(r.warnings.length, 1);
  assert.match(r.warnings[0]!, /damaged/);
  fs.writeFileSync(f.snapshotBak, "junk");
  r = loadSnapshot(f, 3);
  assert.is(r.snapshot, null);
  assert.match(r.warnings.join(), /no readable snapshot/);
  fs.unlinkSync(f.snapshot);
  fs.unlinkSync(f.snapshotBak);
  await writeSnapshotFile(f, encodeSnapshot([valueRecord(5)], meta));
  fs.renameSync(f.snapshot, f.snapshotBak); // crash window of a rename-based install
  r = loadSnapshot(f, 3);
  assert.is(r.snapshot?.path, f.snapshotBak);
  assert.match(r.warnings[0]!, /missing/);
});

test.run();
