// Snapshot files: encode/parse, validation of every field, install with .bak, fallback.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import { crc32 as zcrc32 } from "node:zlib";
import { files } from "../../src/storage/datadir.js";
import { SNAPSHOT_V2_HEADER_BYTES, encodeSnapshot, loadSnapshot, parseSnapshot, streamSnapshot, writeSnapshotFile } from "../../src/storage/snapshot.js";
import { encodeSnapshotBody } from "../../src/storage/snapshot-body.js";
import { ReplaySession } from "../../src/storage/replay.js";
import type { RecordInput } from "../../src/core/record.js";
import { flatten, freshDirs, mixedRecord, oracleSnapshot, peerRecord, plain, seqMark, tombstoneRecord, valueRecord } from "../helpers/storage-fixtures.js";

const fresh = freshDirs("snap", (hook) => test.after(hook));

const meta = { nodeId: 3, base: 1_700_000_000_500, walGeneration: 9, walOffset: 4242 };
const records = Array.from({ length: 40 }, (_, i) => mixedRecord(i + 1));

test("encode → parse round-trips records and header; the independent oracle agrees", () => {
  const image = encodeSnapshot(records, meta);
  const parsed = parseSnapshot(image, 3);
  if (typeof parsed === "string") throw new Error(parsed);
  const body = encodeSnapshotBody(records, meta.base)!;
  const sizes = { count: 40, bodyLen: image.length - SNAPSHOT_V2_HEADER_BYTES, expandedLen: body.expandedLen, slack: body.slack };
  assert.equal(parsed.header, { version: 2, headerBytes: SNAPSHOT_V2_HEADER_BYTES, ...meta, ...sizes });
  assert.equal(flatten([parsed.batch]), records.map(plain));
  assert.equal(oracleSnapshot(image, 3)?.records, records.map(plain));
});

test("an empty snapshot is valid", () => {
  const image = encodeSnapshot([], meta);
  assert.is(image.length, SNAPSHOT_V2_HEADER_BYTES);
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
  dv.setUint32(76, zcrc32(forged.subarray(0, 76)) >>> 0, true); // with a valid header CRC
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

/** Records whose in-place expansion needs slack: long shared prefixes first (they grow), then seq jumps coded longer than they expand. */
function slackRecords(): RecordInput[] {
  const out: RecordInput[] = [];
  const long = "p".repeat(200);
  for (let i = 0; i < 30; i++) out.push({ kind: 1, key: `${long}${i}`, value: new Uint8Array([i]), timestamp: meta.base, node: 1, seq: i + 1 });
  for (let i = 0; i < 60; i++) out.push({ kind: 0, key: String.fromCharCode(65 + (i % 26)), value: null, timestamp: meta.base, node: 1, seq: i % 2 ? 1 : 2 ** 45 });
  return out;
}

/** Rewrites `image`'s header field at `off` (u64) and its header CRC. */
function forgeU64(image: Uint8Array, off: number, v: bigint): Uint8Array {
  const copy = image.slice();
  const dv = new DataView(copy.buffer);
  dv.setBigUint64(off, v, true);
  dv.setUint32(76, zcrc32(copy.subarray(0, 76)) >>> 0, true);
  return copy;
}

test("v2 codes keys against the previous one: under 120 B a record for the bench's keys and 100-byte values, v1 took 135; open expands it over several kernel calls", async () => {
  const recs: RecordInput[] = Array.from({ length: 30_000 }, (_, i) => ({ kind: 1, key: `user/${i.toString(36)}/profile`, value: new Uint8Array(100).fill(i), timestamp: meta.base + (i >> 4), node: 1, seq: i + 1 }));
  const image = encodeSnapshot(recs, meta);
  assert.ok(image.length / recs.length < 116, `${image.length / recs.length} B a record`);
  const parsed = parseSnapshot(image, 3);
  if (typeof parsed === "string") throw new Error(parsed);
  assert.equal(flatten([parsed.batch]), recs.map(plain));
  const f = files(fresh(), 3);
  await writeSnapshotFile(f, image); // ~50 blocks: the kernel expands 16 a call
  const { snapshot, warnings } = loadSnapshot(f, 3);
  assert.equal(warnings, []);
  assert.equal(flatten([snapshot!.batch]), recs.map(plain));
  snapshot!.batch.release();
});

test("long, binary, empty and shared keys; a value larger than a block; keys sharing more than 255 bytes", () => {
  const big = new Uint8Array(200_000).map((_, i) => i * 7);
  const recs: RecordInput[] = [
    { kind: 1, key: "", value: new Uint8Array(0), timestamp: meta.base - 5, node: 0, seq: 0 },
    { kind: 1, key: "x".repeat(1000) + "a", value: big, timestamp: meta.base + 2 ** 40, node: 2 ** 32 - 1, seq: 2 ** 50 },
    { kind: 1, key: "x".repeat(1000) + "b", value: new Uint8Array([1]), timestamp: meta.base - 2 ** 40, node: 5, seq: 3 },
    { kind: 0, key: new Uint8Array([0xff, 0xfe, 0]), value: null, timestamp: meta.base, node: 5, seq: 4 },
    { kind: 1, key: "ключ/🙂", value: new Uint8Array([9]), timestamp: meta.base, node: 5, seq: 20 },
    { kind: 1, key: "ключ/🙂/2", value: new Uint8Array([9]), timestamp: meta.base, node: 5, seq: 19 },
  ];
  const image = encodeSnapshot(recs, meta);
  assert.is(new DataView(image.buffer).getUint32(4, true), 2);
  const parsed = parseSnapshot(image, 3);
  if (typeof parsed === "string") throw new Error(parsed);
  assert.equal(flatten([parsed.batch]), recs.map(plain));
  assert.equal(oracleSnapshot(image, 3)?.records, recs.map(plain));
});

test("tiny snapshots (one seq mark, a few empty keys), whose blocks are larger than their records expand to, open", async () => {
  const f = files(fresh(), 3);
  for (const recs of [[seqMark(5)], [peerRecord(2, 9), seqMark(1)], [tombstoneRecord(1), { ...tombstoneRecord(2), key: "" }]]) {
    const image = encodeSnapshot(recs, { ...meta, base: 0 });
    const parsed = parseSnapshot(image, 3);
    if (typeof parsed === "string") throw new Error(parsed);
    assert.equal(flatten([parsed.batch]), recs.map(plain));
    await writeSnapshotFile(f, image);
    const { snapshot, warnings } = loadSnapshot(f, 3);
    assert.equal(warnings, []);
    assert.equal(flatten([snapshot!.batch]), recs.map(plain));
    snapshot!.batch.release();
  }
});

test("stamps v2 cannot code (a timestamp 2^52 ms from base) are written as version 1, which still opens", () => {
  const recs = [valueRecord(1), { ...valueRecord(2), timestamp: meta.base + 2 ** 52 }];
  const image = encodeSnapshot(recs, meta);
  assert.is(new DataView(image.buffer).getUint32(4, true), 1);
  const parsed = parseSnapshot(image, 3);
  if (typeof parsed === "string") throw new Error(parsed);
  assert.equal(flatten([parsed.batch]), recs.map(plain));
});

test("in-place expansion: the slack the encoder records is needed, and a header claiming less is refused", async () => {
  const recs = slackRecords();
  const body = encodeSnapshotBody(recs, meta.base)!;
  assert.ok(body.slack > 0, "the case needs slack");
  const image = encodeSnapshot(recs, meta);
  const parsed = parseSnapshot(image, 3);
  if (typeof parsed === "string") throw new Error(parsed);
  assert.equal(flatten([parsed.batch]), recs.map(plain));
  for (const slack of [0n, BigInt(body.slack - 1)]) assert.match(parseSnapshot(forgeU64(image, 64, slack), 3) as string, /in place|expands|sizes/);
  assert.match(parseSnapshot(forgeU64(image, 56, BigInt(body.expandedLen + 1)), 3) as string, /expan/);
  assert.match(parseSnapshot(forgeU64(image, 56, 10n ** 12n), 3) as string, /sizes do not fit/);
  // The same through open's path (read into linear memory, expanded there, small windows).
  const f = files(fresh(), 3);
  await writeSnapshotFile(f, image);
  for (const window of [1, 7, 1000]) {
    const session = new ReplaySession("", undefined);
    const { snapshot, warnings } = streamSnapshot(f, 3, session, window);
    const batches = session.finish();
    assert.equal(warnings, []);
    assert.ok(snapshot !== null);
    assert.equal(flatten(batches), recs.map(plain));
    for (const b of batches) b.release();
  }
  fs.writeFileSync(f.snapshot, forgeU64(image, 64, 0n));
  const { snapshot, warnings } = loadSnapshot(f, 3);
  assert.is(snapshot, null);
  assert.match(warnings.join(), /in place/);
});

test("crafted v2 bodies (bytes changed, block CRC and header made valid again): refused by the kernel and its TS twin alike, or exactly what the oracle reads", () => {
  const image = encodeSnapshot([...records, ...slackRecords()], meta);
  let seed = 12345;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
  let refused = 0, accepted = 0;
  const f = files(fresh(), 3);
  for (let round = 0; round < 3000; round++) {
    const copy = image.slice();
    const dv = new DataView(copy.buffer);
    // Pick a block, change 1–3 of its payload bytes, re-CRC it.
    const blocks: number[] = [];
    for (let at = SNAPSHOT_V2_HEADER_BYTES; at < copy.length; at += 8 + dv.getUint32(at, true)) blocks.push(at);
    const at = blocks[rand(blocks.length)]!;
    const len = dv.getUint32(at, true);
    for (let k = 1 + rand(3); k > 0; k--) copy[at + 8 + rand(len)] = rand(4) === 0 ? rand(256) : copy[at + 8 + rand(len)]! ^ (1 << rand(8));
    dv.setUint32(at + 4, zcrc32(copy.subarray(at + 8, at + 8 + len)) >>> 0, true);
    if (rand(2) === 0) { // and sometimes the header's sizes
      dv.setBigUint64(56, BigInt(Number(dv.getBigUint64(56, true)) + rand(9) - 4), true);
      dv.setUint32(76, zcrc32(copy.subarray(0, 76)) >>> 0, true);
    }
    const parsed = parseSnapshot(copy, 3);
    // Open's path (the kernel's expansion, in linear memory) refuses exactly what the TS twin refuses.
    fs.writeFileSync(f.snapshot, copy);
    const loaded = loadSnapshot(f, 3).snapshot;
    assert.is(loaded === null, typeof parsed === "string", `round ${round}: kernel and TS twin disagree (${typeof parsed === "string" ? parsed : "accepted"})`);
    if (typeof parsed === "string") { refused++; continue; }
    const records = flatten([parsed.batch]);
    assert.equal(records, oracleSnapshot(copy, 3)?.records, `round ${round}`);
    assert.equal(flatten([loaded!.batch]), records, `round ${round}: kernel`);
    loaded!.batch.release();
    accepted++;
  }
  assert.ok(refused > 100 && accepted > 100, `${refused} refused, ${accepted} accepted`);
});

test.run();
