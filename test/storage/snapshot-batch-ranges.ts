// Batch ranges (kind 7, docs/FORMAT.md §1, §4) in snapshots: both versions carry them
// among entries, seq marks and peers; the kernel's expander and its TS twin read the
// same records back and refuse the same crafted bodies; a node opening such a snapshot
// merges its entries and ignores the ranges; inspect counts them; a WAL replay sink
// receives them as ordinary decoded records.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import { crc32 as zcrc32 } from "node:zlib";
import { Node } from "../../src/node/node.js";
import { RecordKind, batchRangeRecord, type DecodedBatch, type RecordInput } from "../../src/core/record.js";
import { decodeRecordsReference } from "../../src/codec/reference.js";
import { files } from "../../src/storage/datadir.js";
import { formatInspect, inspectDir } from "../../src/storage/inspect.js";
import { ReplaySession } from "../../src/storage/replay.js";
import { openStorage } from "../../src/storage/storage.js";
import { SNAPSHOT_V2_HEADER_BYTES, encodeSnapshot, loadSnapshot, parseSnapshot, streamSnapshot, writeSnapshotFile } from "../../src/storage/snapshot.js";
import { encodeSnapshotBody } from "../../src/storage/snapshot-body.js";
import { expiringRecord, freshDirs, peerRecord, seqMark, tombstoneRecord, valueRecord } from "../helpers/storage-fixtures.js";

const fresh = freshDirs("snaprange", (hook) => test.after(hook));
const meta = { nodeId: 3, base: 1_700_000_000_500, walGeneration: 9, walOffset: 4242 };
const hex = (b: Uint8Array | null) => (b === null ? null : Buffer.from(b).toString("hex"));

/** Every field of every record, the count of a range (its timestamp) included. */
function fields(batches: DecodedBatch[]) {
  return batches.flatMap((b) => Array.from({ length: b.count }, (_, i) => [b.kind(i), b.node(i), b.seq(i), b.timestamp(i), hex(b.keyBytes(i)), hex(b.value(i))]));
}
function expected(records: RecordInput[]) {
  const key = (k: string | Uint8Array) => hex(typeof k === "string" ? new TextEncoder().encode(k) : k);
  return records.map((r) => [r.kind, r.node, r.seq, r.timestamp, key(r.key), r.kind === 1 || r.kind === 5 ? hex(r.value) : null]);
}

/** Ranges among the other kinds, at the edges of their bounds, some between entries with shared key prefixes. */
const records: RecordInput[] = [
  seqMark(40), peerRecord(2, 7), peerRecord(2, 9),
  batchRangeRecord(1, 1, 2),
  ...Array.from({ length: 12 }, (_, i) => valueRecord(i + 1, 1 + (i % 2))),
  batchRangeRecord(1, 5, 3), batchRangeRecord(2, 2 ** 48 - 9_999, 10_000), batchRangeRecord(0xffffffff, 2 ** 32, 10_000),
  tombstoneRecord(13), expiringRecord(14), valueRecord(15),
  batchRangeRecord(7, 13, 2),
];

/** The records of `image` by both expanders: TS (parseSnapshot, decoded by both decoders) and kernel (open's path, in windows). */
async function readBoth(image: Uint8Array): Promise<ReturnType<typeof fields>[]> {
  const parsed = parseSnapshot(image, 3);
  if (typeof parsed === "string") throw new Error(parsed);
  const out = [fields([parsed.batch]), fields([decodeRecordsReference(parsed.batch.bytes, parsed.header.version === 1 ? "framed" : "bare", meta.base, parsed.header.count)])];
  parsed.batch.release();
  const f = files(fresh(), 3);
  await writeSnapshotFile(f, image);
  for (const window of [1, 5, 1000]) {
    const session = new ReplaySession("", undefined);
    const { snapshot, warnings } = streamSnapshot(f, 3, session, window);
    assert.equal(warnings, []);
    assert.ok(snapshot !== null);
    const batches = session.finish();
    out.push(fields(batches));
    for (const b of batches) b.release();
  }
  return out;
}

test("version 2 carries batch ranges among entries, seq marks and peers: both expanders read the same records back", async () => {
  const image = encodeSnapshot(records, meta);
  assert.is(new DataView(image.buffer).getUint32(4, true), 2);
  for (const got of await readBoth(image)) assert.equal(got, expected(records));
});

test("version 1 (framed) carries them too", async () => {
  const image = encodeSnapshot(records, meta, 1);
  assert.is(new DataView(image.buffer).getUint32(4, true), 1);
  for (const got of await readBoth(image)) assert.equal(got, expected(records));
});

test("the snapshot encoder refuses a batch head (WAL only) and a range outside its bounds; the record constructor too", () => {
  const head: RecordInput = { kind: RecordKind.BatchHead, key: "", value: null, timestamp: meta.base, node: 3, seq: 2 };
  assert.throws(() => encodeSnapshotBody([valueRecord(1), head], meta.base), /WAL only/);
  for (const r of [{ ...batchRangeRecord(1, 1, 2), timestamp: 1 }, { ...batchRangeRecord(1, 1, 2), seq: 0 }, { ...batchRangeRecord(1, 1, 2), key: "k" }]) {
    assert.throws(() => encodeSnapshot([r], meta), TypeError);
    assert.throws(() => encodeSnapshot([r], meta, 1), TypeError);
  }
  for (const [node, first, count] of [[1, 1, 1], [1, 1, 10_001], [1, 0, 2], [1, 2 ** 48, 2], [1, 1.5, 2], [-1, 1, 2], [2 ** 32, 1, 2]]) {
    assert.throws(() => batchRangeRecord(node!, first!, count!), TypeError, `${node} ${first} ${count}`);
  }
});

/** A record to hand-code into a v2 block, whatever its shape (seq and timestamp absolute). */
interface Raw { kind: number; node: number; seq: number; ts: number; key?: number[]; value?: number[] }

const varu = (n: number): number[] => { const out: number[] = []; let v = BigInt(n); while (v >= 0x80n) { out.push(Number(v & 0x7fn) | 0x80); v >>= 7n; } out.push(Number(v)); return out; };
const zig = (d: number): number => (d >= 0 ? 2 * d : -2 * d - 1);

/**
 * A v2 image of `raws` in one block (every record with its node and an explicit seq step,
 * sharing no key prefix), its block and header CRCs valid, its header sizes exact: the
 * bare length the records expand to, and slack = the body length (the body sits past the
 * expanded bytes: expansion in place never meets a byte unread). What refuses it is the record.
 */
function craftedV2(raws: Raw[]): Uint8Array {
  const payload: number[] = [];
  let seq = 0, ts = meta.base, expanded = 0;
  for (const r of raws) {
    const key = r.key ?? [];
    payload.push(r.kind | 8, ...varu(r.node), ...varu(zig(r.seq - seq)), ...varu(zig(r.ts - ts)), 0, ...varu(key.length), ...key);
    expanded += 1 + varu(r.node).length + varu(r.seq).length + varu(zig(r.ts - meta.base)).length + varu(key.length).length + key.length;
    if (r.value) {
      payload.push(...varu(r.value.length), ...r.value);
      expanded += varu(r.value.length).length + r.value.length;
    }
    seq = r.seq; ts = r.ts;
  }
  const bodyLen = 8 + payload.length;
  const image = new Uint8Array(SNAPSHOT_V2_HEADER_BYTES + bodyLen);
  const dv = new DataView(image.buffer);
  dv.setUint32(0, 0x53564b57, true); // "WKVS"
  dv.setUint32(4, 2, true);
  dv.setUint32(8, 3, true);
  dv.setBigInt64(16, BigInt(meta.base), true);
  dv.setBigUint64(24, BigInt(raws.length), true);
  dv.setBigUint64(32, BigInt(bodyLen), true);
  dv.setBigUint64(56, BigInt(expanded), true);
  dv.setBigUint64(64, BigInt(bodyLen), true);
  dv.setUint32(76, zcrc32(image.subarray(0, 76)) >>> 0, true);
  dv.setUint32(SNAPSHOT_V2_HEADER_BYTES, payload.length, true);
  dv.setUint32(SNAPSHOT_V2_HEADER_BYTES + 4, zcrc32(Uint8Array.from(payload)) >>> 0, true);
  image.set(payload, SNAPSHOT_V2_HEADER_BYTES + 8);
  return image;
}

test("crafted v2 bodies: a batch head, and ranges of a bad shape (a key, count or first out of bounds), refused by both expanders alike", () => {
  const range = (node: number, first: number, count: number, key?: number[]): Raw => ({ kind: 7, node, seq: first, ts: count, key });
  const cases: [string, Raw[], boolean][] = [
    ["a well-formed range", [range(1, 5, 4)], true],
    ["ranges at their bounds", [range(0, 1, 2), range(0xffffffff, 2 ** 48 - 9_999, 10_000), range(1, 2 ** 48 - 1, 2)], true],
    ["a range among entries", [{ kind: 1, node: 1, seq: 3, ts: meta.base, key: [0x61], value: [1] }, range(1, 5, 4), { kind: 0, node: 2, seq: 1, ts: meta.base + 9, key: [0x61] }], true],
    ["a batch head (kind 6, WAL only)", [{ kind: 6, node: 1, seq: 2, ts: meta.base }], false],
    ["a range with a key", [range(1, 5, 4, [0x61])], false],
    ["a range of 1 seq", [range(1, 5, 1)], false],
    ["a range of 10 001 seqs", [range(1, 5, 10_001)], false],
    ["a range of a negative count", [range(1, 5, -4)], false],
    ["a range from seq 0", [range(1, 0, 4)], false],
    ["a range past seq 2^48", [range(1, 2 ** 48 - 2, 4)], false],
    ["a good range, then a bad one", [range(1, 5, 4), range(1, 9, 0)], false],
  ];
  const f = files(fresh(), 3);
  for (const [name, raws, ok] of cases) {
    const image = craftedV2(raws);
    const parsed = parseSnapshot(image, 3);
    fs.writeFileSync(f.snapshot, image);
    const loaded = loadSnapshot(f, 3).snapshot;
    assert.is(typeof parsed !== "string", ok, `${name}: TS ${typeof parsed === "string" ? parsed : "accepted"}`);
    assert.is(loaded !== null, ok, `${name}: kernel`);
    if (typeof parsed === "string") continue;
    const want = raws.map((r) => [r.kind, r.node, r.seq, r.ts, hex(Uint8Array.from(r.key ?? [])), r.value ? hex(Uint8Array.from(r.value)) : null]);
    assert.equal(fields([parsed.batch]), want, name);
    assert.equal(fields([loaded!.batch]), want, `${name}: kernel`);
    loaded!.batch.release();
    parsed.batch.release();
  }
});

test("mutated v2 bodies holding ranges: the kernel and its TS twin refuse alike or read the same records", () => {
  const image = encodeSnapshot(records, meta);
  let seed = 777;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
  const f = files(fresh(), 3);
  let refused = 0, accepted = 0;
  for (let round = 0; round < 1500; round++) {
    const copy = image.slice();
    const dv = new DataView(copy.buffer);
    const len = dv.getUint32(SNAPSHOT_V2_HEADER_BYTES, true);
    const at = SNAPSHOT_V2_HEADER_BYTES + 8;
    for (let k = 1 + rand(2); k > 0; k--) copy[at + rand(len)] ^= 1 << rand(8);
    dv.setUint32(SNAPSHOT_V2_HEADER_BYTES + 4, zcrc32(copy.subarray(at, at + len)) >>> 0, true);
    const parsed = parseSnapshot(copy, 3);
    fs.writeFileSync(f.snapshot, copy);
    const loaded = loadSnapshot(f, 3).snapshot;
    assert.is(loaded === null, typeof parsed === "string", `round ${round}: kernel and TS twin disagree (${typeof parsed === "string" ? parsed : "accepted"})`);
    if (typeof parsed === "string") { refused++; continue; }
    assert.equal(fields([loaded!.batch]), fields([parsed.batch]), `round ${round}`);
    loaded!.batch.release();
    parsed.batch.release();
    accepted++;
  }
  assert.ok(refused > 100 && accepted > 100, `${refused} refused, ${accepted} accepted`);
});

/** `dir`'s snapshot rewritten with `extra` records spliced in (same header fields: the WAL still follows it). */
function withRanges(dir: string, id: number, extra: (records: RecordInput[]) => RecordInput[]): void {
  const f = files(dir, id);
  const parsed = parseSnapshot(fs.readFileSync(f.snapshot), id);
  if (typeof parsed === "string") throw new Error(parsed);
  const b = parsed.batch;
  const recs: RecordInput[] = Array.from({ length: b.count }, (_, i) => ({ kind: b.kind(i), key: b.keyBytes(i).slice(), value: b.value(i), timestamp: b.timestamp(i), node: b.node(i), seq: b.seq(i) }));
  b.release();
  const { nodeId, base, walGeneration, walOffset } = parsed.header;
  fs.writeFileSync(f.snapshot, encodeSnapshot(extra(recs), { nodeId, base, walGeneration, walOffset }));
}

test("a node opening a snapshot that holds ranges merges its entries and ignores the ranges; inspect counts them", async () => {
  const dir = fresh();
  let node = await Node.open({ id: 4, dir, fsync: "never" });
  await node.batch([{ type: "put", key: "a", value: new Uint8Array([1]) }, { type: "put", key: "b", value: new Uint8Array([2]) }]);
  await node.put("c", new Uint8Array([3]));
  await node.delete("a");
  await node.persist();
  const want = [...node.scan("", { includeTombstones: true })].map((e) => [e.key, hex(e.value), e.seq]);
  await node.close();
  // Ranges first, between entries and last: the decoder's prefix coding and the merge meet each.
  withRanges(dir, 4, (recs) => [batchRangeRecord(4, 1, 2), ...recs.slice(0, 2), batchRangeRecord(9, 100, 10_000), ...recs.slice(2), batchRangeRecord(4, 2 ** 48 - 1, 2)]);
  const report = inspectDir(dir, 4);
  assert.ok(report.ok, report.problems.join("; "));
  assert.is(report.nodes[0]!.snapshot.stats?.batchRanges, 3);
  assert.match(formatInspect(report), "3 batch ranges");
  const warnings: string[] = [];
  node = await Node.open({ id: 4, dir, fsync: "never", onWarning: (m) => warnings.push(m) });
  try {
    assert.equal([...node.scan("", { includeTombstones: true })].map((e) => [e.key, hex(e.value), e.seq]), want);
    assert.is(node.size, 2);
    assert.equal(warnings, []);
    await node.put("d", new Uint8Array([4]));
    await node.persist(); // a snapshot written again opens (whatever the node keeps of the ranges)
  } finally {
    await node.close();
  }
  node = await Node.open({ id: 4, dir, fsync: "never" });
  assert.is(node.get("d")?.value?.[0], 4);
  await node.close();
});

test("WAL replay hands ranges to the sink as ordinary decoded records, in log order", async () => {
  const dir = fresh();
  const s = await openStorage({ dir, nodeId: 3, fsync: "never" });
  await s.append(records.slice(0, 8));
  await s.append(records.slice(8));
  await s.close();
  const seen: ReturnType<typeof fields> = [];
  const r = await openStorage({ dir, nodeId: 3, fsync: "never", replay: () => ({ apply: (b) => { seen.push(...fields([b])); }, abandon: () => undefined }) });
  await r.close();
  assert.equal(seen, expected(records));
});

test.run();
