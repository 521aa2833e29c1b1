// Record codec (docs/FORMAT.md §1–2): golden bytes, every stop reason, length claims
// checked before use, and WASM vs TS reference on random, mutated and truncated inputs, whole
// and window by window (src/codec/windows.ts).
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { crc32 as zlibCrc32 } from "node:zlib";
import { decodeRecords, encodePicked, encodeRecords, findNextValidFrame } from "../../src/codec/records.js";
import { decodeRecordsReference, encodeRecordsReference, findNextValidFrameReference } from "../../src/codec/reference.js";
import { DESCRIPTOR_BYTES, RecordKind, batchRangeRecord, type DecodedBatch, type Framing, type RecordInput } from "../../src/core/record.js";
import { crc32Spans, crc32SpansReference } from "../../src/codec/crc.js";
import { decodeWindow, readIntoKernel } from "../../src/codec/windows.js";
import { createMergeIndex } from "../../src/index/kernel-index.js";
import { createMergeIndexReference } from "../../src/index/reference.js";
import { isWaveKVError } from "../../src/core/errors.js";
import { DESC_MAX, ENCODE_TOO_LARGE, R_AUX, R_CRC, R_DESC, R_IN, R_OUT, REGION_MAX, REGIONS } from "../../src/kernel/abi.js";
import { kernel } from "../../src/kernel/instance.js";

const utf8 = (s: string) => new TextEncoder().encode(s);
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const BASE = 1_700_000_000_000;

function sameBatch(a: DecodedBatch, b: DecodedBatch, what: string): void {
  assert.is(a.count, b.count, `${what}: count`);
  assert.equal(a.stop, b.stop, `${what}: stop`);
  assert.is(a.descriptors.length, a.count * DESCRIPTOR_BYTES, `${what}: descriptor bytes`);
  assert.is(hex(a.descriptors), hex(b.descriptors), `${what}: descriptors`);
}

function frame(body: number[]): Uint8Array {
  const out = new Uint8Array(8 + body.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, body.length, true);
  dv.setUint32(4, zlibCrc32(new Uint8Array(body)) >>> 0, true);
  out.set(body, 8);
  return out;
}

const golden: RecordInput = { kind: RecordKind.Value, key: "a", value: utf8("xy"), timestamp: BASE + 5, node: 1, seq: 3 };

test("golden bytes: one value record, bare and framed", () => {
  const body = "010103" + "0a" + "0161" + "027879"; // kind 1, node 1, seq 3, zvar(5)=10, key "a", value "xy"
  for (const enc of [encodeRecords, encodeRecordsReference]) {
    assert.is(hex(enc([golden], "bare", BASE)), body);
    assert.is(hex(enc([golden], "framed", BASE)), "09000000" + hex(new Uint8Array(new Uint32Array([zlibCrc32(Buffer.from(body, "hex")) >>> 0]).buffer)) + body);
  }
  // A tombstone carries no value fields; negative deltas zigzag to odd numbers; u64 seqs take 10 bytes at most.
  const t: RecordInput = { kind: RecordKind.Tombstone, key: "", value: null, timestamp: BASE - 1, node: 0xffffffff, seq: 2 ** 53 - 1 };
  assert.is(hex(encodeRecords([t], "bare", BASE)), "00" + "ffffffff0f" + "ffffffffffffff0f" + "01" + "00");
  assert.is(hex(encodeRecordsReference([t], "bare", BASE)), hex(encodeRecords([t], "bare", BASE)));
});

test("golden bytes: delta-coded bodies (FORMAT §1.1) against the previous record", () => {
  const records: RecordInput[] = [
    golden, // node 1 ≠ 0, seq 3 (step 3), ts base + 5: head 0x39 = kind 1 | 8 | 3 << 4
    { ...golden, key: "b", seq: 4, timestamp: BASE + 4 }, // same node, step 1, ts −1: head 0x11, zvar(−1) = 01
    { kind: RecordKind.Tombstone, key: "c", value: null, timestamp: BASE + 4, node: 1, seq: 20 }, // step 16: head 0x00, zvar(16) = 20
    { kind: RecordKind.Tombstone, key: "", value: null, timestamp: BASE + 4, node: 2, seq: 19 }, // node 2, step −1: head 0x08, 02, zvar(−1) = 01
  ];
  const body = "39" + "01" + "0a" + "0161" + "027879" +
    "11" + "01" + "0162" + "027879" +
    "00" + "20" + "00" + "0163" +
    "08" + "02" + "01" + "00" + "00";
  for (const enc of [encodeRecords, encodeRecordsReference]) assert.is(hex(enc(records, "delta", BASE)), body, enc.name);
  for (const decode of [decodeRecords, decodeRecordsReference]) {
    const b = decode(Buffer.from(body, "hex"), "delta", BASE);
    assert.equal(b.stop, { reason: "end", offset: body.length / 2 });
    records.forEach((r, i) => assert.equal([b.kind(i), b.node(i), b.seq(i), b.timestamp(i), b.key(i)], [r.kind, r.node, r.seq, r.timestamp, r.key]));
    assert.equal([b.recordOffset(1), b.recordLength(1)], [8, 7]);
  }
  // A sorted run costs 4 bytes a record over its key and value: head, ts step, two lengths
  // (the first record also carries its node, 1 byte, and its seq, zvar(1000): 2 bytes).
  const run = Array.from({ length: 100 }, (_, i) => ({ ...golden, key: `k${i % 10}`, seq: 1000 + i, timestamp: BASE + i }));
  assert.is(encodeRecords(run, "delta", BASE).length, 100 * (4 + 2 + 2) + 3);
});

test("decoded fields round-trip, including the edges of every field", () => {
  const records: RecordInput[] = [
    golden,
    { kind: RecordKind.Tombstone, key: "é😀 key", value: null, timestamp: -(2 ** 52), node: 0xffffffff, seq: 2 ** 32 + 7 },
    { kind: RecordKind.Value, key: "", value: new Uint8Array(0), timestamp: 0, node: 0, seq: 0 },
    { kind: RecordKind.Value, key: utf8("bytes-key"), value: new Uint8Array(70_000).fill(9), timestamp: 2 ** 52, node: 5, seq: 2 ** 53 - 1 },
    { kind: RecordKind.AddPeer, key: "", value: null, timestamp: BASE, node: 9, seq: 1 },
    { kind: RecordKind.RemovePeer, key: "", value: null, timestamp: BASE, node: 9, seq: 2 },
    { kind: RecordKind.SeqMark, key: "", value: null, timestamp: BASE, node: 1, seq: 1000 },
  ];
  for (const framing of ["bare", "framed", "delta"] as Framing[]) {
    const bytes = encodeRecords(records, framing, BASE);
    const batch = decodeRecords(bytes, framing, BASE);
    sameBatch(batch, decodeRecordsReference(bytes, framing, BASE), framing);
    assert.equal(batch.stop, { reason: "end", offset: bytes.length });
    records.forEach((r, i) => {
      assert.is(batch.kind(i), r.kind);
      assert.is(batch.node(i), r.node);
      assert.is(batch.seq(i), r.seq);
      assert.is(batch.timestamp(i), r.timestamp);
      assert.is(hex(batch.keyBytes(i)), hex(typeof r.key === "string" ? utf8(r.key) : r.key));
      if (typeof r.key === "string") assert.is(batch.key(i), r.key);
      assert.equal(batch.value(i), r.kind === RecordKind.Value ? r.value : null);
    });
    let at = 0;
    for (let i = 0; i < batch.count; i++) {
      assert.is(batch.recordOffset(i), at);
      at += batch.recordLength(i);
    }
    assert.is(at, bytes.length);
  }
});

test("framed stop reasons: end, torn, zero, crc, malformed, limit", () => {
  const two = encodeRecords([golden, golden], "framed", BASE);
  const rec = two.length / 2;
  const cases: [string, Uint8Array, number | undefined, string, number, number][] = [
    ["empty", new Uint8Array(0), undefined, "end", 0, 0],
    ["short header", two.subarray(0, rec + 7), undefined, "torn", 1, rec],
    ["short body", two.subarray(0, two.length - 1), undefined, "torn", 1, rec],
    ["zero fill", new Uint8Array([...two.subarray(0, rec), ...new Uint8Array(64)]), undefined, "zero", 1, rec],
    ["flipped body bit", Uint8Array.from(two, (b, i) => (i === rec + 9 ? b ^ 4 : b)), undefined, "crc", 1, rec],
    ["flipped crc bit", Uint8Array.from(two, (b, i) => (i === 5 ? b ^ 1 : b)), undefined, "crc", 0, 0],
    ["bodyLen 0, crc set", new Uint8Array([0, 0, 0, 0, 1, 0, 0, 0]), undefined, "crc", 0, 0],
    ["limit", two, 1, "limit", 1, rec],
    ["limit 0", two, 0, "limit", 0, 0],
    ["limit = count", two, 2, "end", 2, two.length],
    ["bad kind, good crc", frame([9, 1, 1, 0, 0]), undefined, "malformed", 0, 0],
    ["trailing byte in body", frame([0, 1, 1, 0, 0, 0]), undefined, "malformed", 0, 0],
    ["body shorter than its fields", frame([1, 1, 1, 0, 1, 0x61]), undefined, "malformed", 0, 0],
  ];
  for (const [name, bytes, max, reason, count, offset] of cases) {
    for (const decode of [decodeRecords, decodeRecordsReference]) {
      const b = decode(bytes, "framed", BASE, max);
      assert.equal([b.stop.reason, b.count, b.stop.offset], [reason, count, offset], `${name} (${decode.name})`);
    }
  }
});

test("bare stop reasons and claimed lengths checked against the remaining bytes", () => {
  const cases: [string, number[], string][] = [
    ["key length 2^31-1 with 1 byte left", [0, 1, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x07, 0x61], "torn"],
    ["key length 2^31 (over the format's limit)", [0, 1, 1, 0, 0x80, 0x80, 0x80, 0x80, 0x08], "malformed"],
    ["value length runs past the end", [1, 1, 1, 0, 0, 0x90, 0x4e, 1, 2], "torn"],
    ["node above u32", [0, 0x80, 0x80, 0x80, 0x80, 0x10, 1, 0, 0], "malformed"],
    ["11-byte varint", [0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0], "malformed"],
    ["10th varint byte above 1", [0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0], "malformed"],
    ["varint cut short", [0, 1, 0xff], "torn"],
    ["kind 8 (6 is a batch head, valid in the WAL; 7 a batch range)", [8, 1, 1, 4, 0], "malformed"],
    ["kind 7 claiming 0 seqs", [7, 1, 1, 0, 0], "malformed"],
    ["kind 5 with a value shorter than its 8 expiry bytes", [5, 1, 1, 0, 0, 7, 1, 2, 3, 4, 5, 6, 7], "malformed"],
  ];
  for (const [name, body, reason] of cases) {
    for (const decode of [decodeRecords, decodeRecordsReference]) {
      const b = decode(new Uint8Array(body), "bare", 0);
      assert.equal([b.stop.reason, b.count, b.stop.offset], [reason, 0, 0], `${name} (${decode.name})`);
    }
  }
  // delta-coded: the kind shares the head byte; the node and seq step are optional fields
  const delta: [string, number[], string][] = [
    ["kind 7 in the head, claiming 0 seqs", [0x17, 0, 0], "malformed"],
    ["kind 7 with a node flag, seq 0", [0x0f, 1, 0, 4, 0], "malformed"],
    ["node above u32", [0x18, 0x80, 0x80, 0x80, 0x80, 0x10, 0, 0], "malformed"],
    ["node cut short", [0x18, 0x80], "torn"],
    ["seq step cut short", [0x00, 0xff], "torn"],
    ["11-byte seq step", [0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0], "malformed"],
    ["no timestamp", [0x10], "torn"],
    ["key runs past the end", [0x10, 0, 2, 0x61], "torn"],
    ["value length over the limit", [0x11, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x08], "malformed"],
  ];
  for (const [name, body, reason] of delta) {
    for (const decode of [decodeRecords, decodeRecordsReference]) {
      const b = decode(new Uint8Array(body), "delta", 0);
      assert.equal([b.stop.reason, b.count, b.stop.offset], [reason, 0, 0], `delta: ${name} (${decode.name})`);
    }
  }
  // Steps wrap in u64 / i64: from u64 max, +1 is 0; two records stop at the second's offset.
  for (const decode of [decodeRecords, decodeRecordsReference]) {
    const wrap = decode(new Uint8Array([0x00, 0x01, 0, 0, 0x10, 0, 0, 0x17, 0, 0]), "delta", 0); // the third: a batch range of 0 seqs
    assert.equal([wrap.count, wrap.seq(1), wrap.stop], [2, 0, { reason: "malformed", offset: 7 }]);
    assert.is(hex(wrap.descriptors.subarray(8, 16)), "ffffffffffffffff");
  }
  // u64 max seq (10th byte = 1) is valid
  const max = decodeRecords(new Uint8Array([0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0]), "bare", 0);
  assert.is(max.stop.reason, "end");
  assert.is(hex(max.descriptors.subarray(8, 16)), "ffffffffffffffff");
});

test("the kernel never reads past the input, even when stale bytes follow it in memory", () => {
  for (const framing of ["framed", "delta"] as Framing[]) {
    const bytes = encodeRecords([golden, golden, golden], framing, BASE);
    for (let cut = 0; cut <= bytes.length; cut++) {
      decodeRecords(bytes, framing, BASE); // leaves the whole buffer in the kernel's input region
      const part = bytes.slice(0, cut);
      sameBatch(decodeRecords(part, framing, BASE), decodeRecordsReference(part, framing, BASE), `${framing} cut ${cut}`);
      assert.is(findNextValidFrame(part, 1), findNextValidFrameReference(part, 1), `find, cut ${cut}`);
    }
  }
});

test("findNextValidFrame tells a torn tail from damage followed by valid records", () => {
  const three = encodeRecords([golden, golden, golden], "framed", BASE);
  const rec = three.length / 3;
  const damaged = three.slice();
  damaged[rec + 10] ^= 0x40;
  for (const find of [findNextValidFrame, findNextValidFrameReference]) {
    assert.is(find(damaged, rec + 1), 2 * rec, "valid record after the damaged one");
    assert.is(find(three.subarray(0, three.length - 3), 2 * rec + 1), -1, "torn tail");
    assert.is(find(three, 0), 0);
    assert.is(find(three, -5), 0);
    assert.is(find(three, 1e9), -1);
    assert.is(find(new Uint8Array(100), 0), -1, "zeros are not frames");
  }
});

test("encoders refuse what the format cannot carry, identically", () => {
  const bad: [string, Partial<RecordInput>][] = [
    ["kind 1 without a value", { kind: RecordKind.Value, value: null }],
    ["kind 8", { kind: 8 as RecordKind }],
    ["kind 7 with a key", { kind: RecordKind.BatchRange, timestamp: 2 }],
    ["kind 7 of 1 seq", { kind: RecordKind.BatchRange, key: "", timestamp: 1 }],
    ["kind 7 of 10 001 seqs", { kind: RecordKind.BatchRange, key: "", timestamp: 10_001 }],
    ["kind 7 from seq 0", { kind: RecordKind.BatchRange, key: "", timestamp: 2, seq: 0 }],
    ["kind 7 past seq 2^48", { kind: RecordKind.BatchRange, key: "", timestamp: 2, seq: 2 ** 48 }],
    ["node -1", { node: -1 }],
    ["node 2^32", { node: 2 ** 32 }],
  ];
  for (const [name, patch] of bad) {
    const r = { ...golden, ...patch } as RecordInput;
    for (const enc of [encodeRecords, encodeRecordsReference]) {
      for (const framing of ["bare", "delta"] as Framing[]) assert.throws(() => enc([r], framing, 0), TypeError, name);
    }
  }
});

// ---------------------------------------------------------------------------------
// differential properties

const keyArb = fc.oneof(
  fc.string({ unit: "binary", maxLength: 12 }),
  fc.string({ maxLength: 30 }),
  fc.constantFrom("", "é", "😀", "\u{10FFFF}", "\uFFFF", "a\u0000b"),
  fc.uint8Array({ maxLength: 16 }),
);
const tsArb = fc.oneof(fc.integer({ min: -(2 ** 52), max: 2 ** 52 }), fc.integer({ min: BASE - 100_000, max: BASE + 100_000 }));
const recordArb: fc.Arbitrary<RecordInput> = fc.record({
  kind: fc.constantFrom(0, 1, 1, 1, 2, 3, 4, 5, 6, 7) as fc.Arbitrary<RecordKind>,
  key: keyArb,
  value: fc.uint8Array({ maxLength: 200 }),
  timestamp: tsArb,
  node: fc.oneof(fc.constantFrom(0, 1, 0xffffffff), fc.integer({ min: 0, max: 0xffffffff })),
  seq: fc.oneof(fc.constantFrom(0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1), fc.integer({ min: 0, max: 2 ** 53 - 1 })),
  // Kind 5 (an expiring value): its value field starts with the 8 expiry bytes.
  // Kind 7 (a batch range): no key, its count in the timestamp, within 2^48.
  count: fc.oneof(fc.constantFrom(2, 10_000), fc.integer({ min: 2, max: 10_000 })),
  first: fc.oneof(fc.constantFrom(1, 2 ** 32, 2 ** 48 - 9_999), fc.integer({ min: 1, max: 2 ** 48 - 9_999 })),
}).map(({ count, first, ...r }) => (r.kind === RecordKind.Expiring && r.value!.length < 8 ? { ...r, value: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, ...r.value!]) }
  : r.kind === RecordKind.BatchRange ? batchRangeRecord(r.node, first, count) : r));
const framingArb = fc.constantFrom<Framing>("bare", "framed", "delta");
/**
 * Records as a node's delta holds them: runs of one origin with rising seqs (steps of
 * 1–20, so the 1–15 head codes and the explicit step both occur) and close timestamps,
 * mixed with arbitrary records (steps and timestamps that wrap).
 */
const recordsArb: fc.Arbitrary<RecordInput[]> = fc.oneof(
  fc.array(recordArb, { maxLength: 24 }),
  fc.tuple(recordArb, fc.array(fc.tuple(fc.integer({ min: 1, max: 20 }), fc.integer({ min: -3, max: 300 }), keyArb, fc.boolean(), fc.boolean()), { maxLength: 24 })).map(([first, steps]) => {
    const out = [first];
    for (const [step, dt, key, tomb, jump] of steps) {
      const p = out[out.length - 1]!;
      const r = jump ? { ...p, node: (p.node + 1) % 4 } : p;
      out.push({ ...r, key, kind: tomb ? RecordKind.Tombstone : RecordKind.Value, value: r.value ?? new Uint8Array(0), seq: Math.min(r.seq + step, 2 ** 53 - 1), timestamp: Math.max(-(2 ** 52), Math.min(r.timestamp + dt, 2 ** 52)) });
    }
    return out;
  }),
);
const baseArb = fc.oneof(fc.constant(BASE), fc.integer({ min: -(2 ** 52), max: 2 ** 52 }));

test("WASM and reference encode identical bytes that decode to identical descriptors (property)", () => {
  fc.assert(
    fc.property(recordsArb, framingArb, baseArb, (records, framing, base) => {
      const a = encodeRecords(records, framing, base);
      assert.is(hex(a), hex(encodeRecordsReference(records, framing, base)));
      const batch = decodeRecords(a, framing, base);
      sameBatch(batch, decodeRecordsReference(a, framing, base), "round trip");
      assert.is(batch.count, records.length);
      records.forEach((r, i) => {
        assert.equal([batch.kind(i), batch.node(i), batch.seq(i), batch.timestamp(i)], [r.kind, r.node, r.seq, r.timestamp]);
        assert.is(hex(batch.keyBytes(i)), hex(typeof r.key === "string" ? utf8(r.key) : r.key));
      });
    }),
    { numRuns: 300 },
  );
});

test("encodePicked: chosen records of a batch, framed by the kernel from the batch itself, equal the reference encoding of those records; the batch is untouched (property)", () => {
  fc.assert(
    fc.property(recordsArb, framingArb, baseArb, fc.array(fc.nat(), { maxLength: 40 }), fc.integer({ min: 1, max: 3 }), fc.boolean(), (records, framing, base, raw, stride, evicted) => {
      if (records.length === 0) return;
      const batch = decodeRecords(encodeRecords(records, "bare", 0), "bare", 0);
      const descBefore = hex(batch.descriptors);
      // Strides of `stride` words, the first of each a record index (winner triples: stride 3).
      const picks = new Uint32Array(raw.length * stride);
      raw.forEach((r, j) => { picks[j * stride] = r % records.length; for (let x = 1; x < stride; x++) picks[j * stride + x] = 0xdeadbeef; });
      // Not resident any more (another batch decoded since): staged again from its copy.
      if (evicted) decodeRecords(encodeRecords(records.slice(0, 1), "bare", 0), "bare", 0).release();
      const got = encodePicked(batch, picks, stride, framing, base);
      const chosen = raw.map((r) => records[r % records.length]!);
      assert.is(hex(got), hex(encodeRecordsReference(chosen, framing, base)));
      assert.is(hex(batch.descriptors), descBefore, "the batch's descriptors are only read");
      batch.release();
    }),
    { numRuns: 300 },
  );
  const batch = decodeRecords(encodeRecords([golden], "bare", 0), "bare", 0);
  assert.throws(() => encodePicked(batch, Uint32Array.of(1), 1, "framed", 0), /out of range/, "a pick past the batch");
  assert.throws(() => encodePicked(batch, Uint32Array.of(0, 0), 3, "framed", 0), /strides/, "picks that are not whole strides");
  assert.is(encodePicked(batch, new Uint32Array(0), 3, "framed", 0).length, 0, "no picks, no bytes");
});

const mutationArb = fc.oneof(
  fc.record({ op: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant("cut" as const), at: fc.nat() }),
  fc.record({ op: fc.constant("zero" as const), at: fc.nat(), len: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ op: fc.constant("set" as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
);

function mutate(bytes: Uint8Array, ms: { op: string; at: number; bit?: number; len?: number; byte?: number }[]): Uint8Array {
  let b = bytes.slice();
  for (const m of ms) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    if (m.op === "flip") b[at] ^= 1 << m.bit!;
    else if (m.op === "cut") b = b.slice(0, at);
    else if (m.op === "zero") b.fill(0, at, at + m.len!);
    else b[at] = m.byte!;
  }
  return b;
}

test("mutated and truncated buffers: identical descriptors, stop reasons and next valid frames (property)", () => {
  fc.assert(
    fc.property(
      recordsArb.filter((r) => r.length > 0), framingArb, fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
      fc.option(fc.nat(14), { nil: undefined }), fc.nat(),
      (records, framing, ms, max, from) => {
        const clean = encodeRecords(records, framing, BASE);
        decodeRecords(clean, framing, BASE); // stale bytes beyond a cut stay in linear memory
        const b = mutate(clean, ms);
        sameBatch(decodeRecords(b, framing, BASE, max), decodeRecordsReference(b, framing, BASE, max), "mutated");
        const f = b.length === 0 ? 0 : from % b.length;
        assert.is(findNextValidFrame(b, f), findNextValidFrameReference(b, f), "next valid frame");
      },
    ),
    { numRuns: 400 },
  );
});

test("random junk decodes identically on both sides (property)", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), framingArb, (b, framing) => {
      sameBatch(decodeRecords(b, framing, 0), decodeRecordsReference(b, framing, 0), "junk");
      assert.is(findNextValidFrame(b, 0), findNextValidFrameReference(b, 0));
    }),
    { numRuns: 400 },
  );
});

// ---------------------------------------------------------------------------------
// Window decoding (src/codec/windows.ts): a file read into kernel memory, decoded a window at a time

/**
 * Decodes `image` as recovery does: read into the kernel, windows of `window` records from
 * where the previous one stopped, each kept to the end (later decodes copy the earlier
 * descriptors out). Every window must equal the twin's decode of the same bytes from the
 * same offset, when decoded and after the last; returns the records and where they stopped.
 */
function decodeWindows(image: Uint8Array, framing: Framing, base: number, window: number): { count: number; stop: DecodedBatch["stop"] } {
  encodeRecords([{ ...golden, value: new Uint8Array(300).fill(7) }], framing, base); // stale bytes past the block
  const holder = {};
  const block = readIntoKernel(image.length, (dst) => dst.set(image), holder);
  const kept: [DecodedBatch, number][] = [];
  const check = (batch: DecodedBatch, at: number, what: string) => {
    const ref = decodeRecordsReference(image.subarray(at), framing, base, window);
    sameBatch(batch, ref, `${what} at ${at}`);
    for (let i = 0; i < batch.count; i++) assert.is(hex(batch.keyBytes(i)) + hex(batch.value(i) ?? utf8("-")), hex(ref.keyBytes(i)) + hex(ref.value(i) ?? utf8("-")), `${what} at ${at}: record ${i}`);
  };
  try {
    for (let at = 0, count = 0; ; at += kept[kept.length - 1]![0].stop.offset) {
      const batch = decodeWindow(block, at, framing, base, window);
      check(batch, at, "window");
      kept.push([batch, at]);
      count += batch.count;
      if (batch.stop.reason !== "limit") return { count, stop: { reason: batch.stop.reason, offset: at + batch.stop.offset } };
    }
  } finally {
    for (const [batch, at] of kept) check(batch, at, "kept window");
    for (const [batch] of kept) batch.release();
    block.drop(holder);
  }
}

test("windows of a file read into kernel memory decode as the twin decodes the same bytes from the same offset; bare and framed windows add up to the whole file (property)", () => {
  const pinned = kernel().pinnedBytes;
  fc.assert(
    fc.property(
      recordsArb, framingArb, baseArb, fc.option(fc.array(mutationArb, { minLength: 1, maxLength: 4 }), { nil: undefined }), fc.integer({ min: 1, max: 12 }),
      (records, framing, base, ms, window) => {
        const clean = encodeRecords(records, framing, base);
        const image = ms ? mutate(clean, ms) : clean;
        const got = decodeWindows(image, framing, base, window);
        if (framing === "delta") return; // each window restarts the delta chain: only the per-window check applies
        const whole = decodeRecordsReference(image, framing, base);
        assert.equal([got.count, got.stop], [whole.count, whole.stop]);
        if (!ms) assert.is(got.count, records.length);
      },
    ),
    { numRuns: 400 },
  );
  fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), framingArb, fc.integer({ min: 1, max: 6 }), (b, framing, window) => void decodeWindows(b, framing, 0, window)), { numRuns: 200 });
  assert.is(kernel().pinnedBytes, pinned, "every block freed");
});

// ---------------------------------------------------------------------------------
// Kernel memory: stale region pointers and sizes near the 1 GiB region limit
// (docs/design/0004-kernel-checks-caller-ranges.md).

const refused = (e: unknown) => isWaveKVError(e, "INVALID_ARGUMENT");
const capOf = (r: number) => kernel().u32[(REGIONS >>> 2) + r * 2 + 1]!;
/** Is [p, p + len) inside a current region block (what the kernel's guard checks)? */
function insideRegion(p: number, len: number): boolean {
  const k = kernel();
  for (let r = 0; r < 6; r++) {
    const q = k.regionPtr(r), cap = capOf(r);
    if (q !== 0 && p >= q && p - q + len <= cap) return true;
  }
  return false;
}

/** Decode + merge of 100k records on the kernel, checked against the twin: fails if the heap is corrupt. */
function heapStillWorks(): void {
  const records: RecordInput[] = Array.from({ length: 100_000 }, (_, i) => ({
    kind: RecordKind.Value, key: `k/${i}`, value: new Uint8Array(16).fill(i & 255), timestamp: 1_000_000 + (i % 1000), node: 1 + (i % 3), seq: i + 1,
  }));
  const bytes = encodeRecordsReference(records, "bare", 0);
  const w = createMergeIndex(), t = createMergeIndexReference();
  try {
    const limits = { maxKeyBytes: 1024, maxValueBytes: 1 << 20, maxTimestamp: Number.MAX_SAFE_INTEGER };
    const batch = decodeRecords(bytes, "bare", 0);
    sameBatch(batch, decodeRecordsReference(bytes, "bare", 0), "100k after the refused call");
    assert.is(w.merge(batch, limits).winners.length, t.merge(decodeRecordsReference(bytes, "bare", 0), limits).winners.length);
    w.commit();
    assert.is(w.size, 100_000);
  } finally {
    w.dispose();
  }
}

test("a region pointer kept across a reserve that moved the region is refused; the heap stays intact (the bench OOB)", () => {
  // bench/kernels.ts at a4fa217 kept `out = reserve(R_AUX, n·4)`; crc32Spans() then
  // re-reserved R_AUX (n·8), freeing that block, and the "data in linear memory" case wrote
  // n CRCs into it: TLSF's free-list links became CRC values and the next allocation that
  // unlinked the block (decode growing R_DESC) trapped: "Out of bounds memory access".
  const k = kernel();
  // R_IN and R_DESC are grown first, past what this test stages in them: reserved later
  // at a size they already hold, they stay put and cannot land on the freed block.
  k.reserve(R_IN, 4 * (capOf(R_CRC) + capOf(R_AUX)) + (1 << 20));
  k.reserve(R_DESC, 4 * capOf(R_AUX) + (1 << 20));
  let stale = 0, n = 0, data = new Uint8Array(0), spans = new Uint32Array(0);
  // Where TLSF puts the moved region depends on the heap's history; a round whose freed
  // block got merged into the new R_AUX (the pointer then aliases live memory) is retried.
  // A round is also retried when TLSF grew R_AUX in place (nothing moved, nothing to test).
  for (let round = 0; round < 8 && (round === 0 || insideRegion(stale, n * 4) || k.regionPtr(R_AUX) === stale); round++) {
    const crcCap = capOf(R_CRC), auxCap = capOf(R_AUX);
    stale = k.reserve(R_AUX, auxCap + 16); // a fresh block, like the bench's
    n = Math.floor(capOf(R_AUX) / 8) + 1; // spans that no longer fit: crc32Spans moves R_AUX
    const size = Math.max(16, Math.ceil((crcCap + 16) / n)); // and R_CRC: a fresh block after `stale`
    data = new Uint8Array(n * size).map((_, i) => (i * 31) & 255);
    spans = new Uint32Array(2 * n);
    for (let i = 0; i < n; i++) { spans[2 * i] = i * size; spans[2 * i + 1] = size; }
    assert.equal(crc32Spans(data, spans), crc32SpansReference(data, spans));
  }
  assert.is.not(k.regionPtr(R_AUX), stale, "R_AUX moved");
  const base = k.reserve(R_IN, data.length), sp = k.reserve(R_DESC, n * 8);
  assert.not.ok(insideRegion(stale, n * 4), "the stale block is freed, in no region");
  k.u8.set(data, base);
  k.u32.set(spans, sp >>> 2);
  try {
    k.exports.crc32Spans(base, sp, n, stale);
    assert.unreachable("a write through a stale pointer was accepted");
  } catch (e) {
    assert.ok(refused(e), String(e));
  }
  k.exports.crc32Spans(base, sp, n, k.reserve(R_OUT, n * 4)); // a current pointer is fine
  heapStillWorks();
});

test("every export that takes a caller range refuses one outside the regions, before touching anything", () => {
  const k = kernel();
  const inp = k.reserve(R_IN, 64), out = k.regionPtr(R_OUT), outCap = capOf(R_OUT);
  const end = k.u8.length; // past linear memory: the old kernel trapped here
  const heapRoot = 0x4000 + 64; // TLSF's own bookkeeping, below every region
  const h = k.exports.indexNew(); // a real handle: a guard that let a call through must not write at random
  const bad: [string, () => unknown][] = [
    ["decode past the end of memory", () => k.exports.decode(end - 8, 16, 0, 0, 0, 10)],
    ["decode straddling a region's end", () => k.exports.decode(out + outCap - 8, 16, 1, 0, 0, 10)],
    ["findFrame outside", () => k.exports.findFrame(heapRoot, 64, 0)],
    ["crc32 straddling", () => k.exports.crc32(out + outCap - 4, 8, 0)],
    ["crc32Spans out in the heap root", () => k.exports.crc32Spans(inp, inp, 2, heapRoot)],
    ["crc32Spans count × 8 wrapping u32", () => k.exports.crc32Spans(inp, inp, 0x20000001, out)],
    ["encode descriptors outside", () => k.exports.encode(heapRoot, 1, inp, 1, 0, 0, 0, 0)],
    ["encode n × 48 wrapping u32", () => k.exports.encode(inp, 0x5555556, inp, 0, 0, 0, 0, 0)],
    ["encode picks outside", () => k.exports.encode(inp, 1, inp, 1, 0, 0, heapRoot, 1)],
    ["encode a picked descriptor outside", () => { k.u32[inp >>> 2] = 0x7ffffff; return k.exports.encode(inp, 1, inp, 1, 0, 0, inp, 1); }],
    ["encode a picked descriptor past 2^32", () => { k.u32[inp >>> 2] = 0xffffffff; return k.exports.encode(inp, 1, inp, 1, 0, 0, inp, 1); }],
    ["merge descriptors outside", () => k.exports.merge(h, inp, heapRoot, 1, 0, 9, 9, 0, 0)],
    ["merge skip mask past a region's end", () => k.exports.merge(h, inp, inp, 1, out + outCap, 9, 9, 0, 0)],
    ["upsert key outside", () => k.exports.upsert(h, heapRoot, 8, inp, 0, 1, 0, 1, 1, 0, 0)],
    ["find key straddling", () => k.exports.find(h, out + outCap - 2, 4)],
    ["selectDelta acks outside", () => k.exports.selectDelta(h, heapRoot, 3)],
    ["selectBuckets mask straddling", () => k.exports.selectBuckets(h, out + outCap - 256)],
  ];
  for (const [what, call] of bad) {
    try {
      call();
      assert.unreachable(`${what}: accepted`);
    } catch (e) {
      assert.ok(refused(e), `${what}: ${String(e)}`);
    }
  }
  assert.is(k.exports.findFrame(inp, 16, 17), -1, "findFrame from past the input");
  assert.is(k.exports.decode(inp, 0, 0, 0, 0, 10), 0, "an empty input is fine anywhere in a region");
  assert.is(k.exports.find(h, inp, 4), -1, "the handle was never touched: still empty");
  k.exports.indexFree(h);
  heapStillWorks();
});

test("sizes past a region (1 GiB − 16 B): explicit errors, no u32 wrap, no trap", () => {
  const k = kernel();
  for (const bytes of [REGION_MAX + 1, 2 ** 32 - 8, 2 ** 32, -1, NaN, 1.5]) {
    try {
      k.reserve(R_AUX, bytes);
      assert.unreachable(`reserve(${bytes}) accepted`);
    } catch (e) {
      assert.ok(refused(e), String(e));
    }
  }
  const p = k.regionPtr(R_AUX), cap = capOf(R_AUX);
  // The raw export: (n + 15) & ~15 used to wrap to a 0-byte block for n near 2^32.
  for (const bytes of [0xfffffff8, 0xffffffff, REGION_MAX + 1]) assert.is(k.exports.reserve(R_AUX, bytes | 0), 0, `raw reserve(${bytes})`);
  assert.equal([k.regionPtr(R_AUX), capOf(R_AUX)], [p, cap], "a refused reserve leaves the region as it was");
  // encode: lengths are u32 in the descriptors; their sum is checked in u64 before any write.
  const desc = k.reserve(R_DESC, 96), data = k.reserve(R_IN, 16);
  const w = desc >>> 2;
  k.u32.fill(0, w, w + 24);
  for (const d of [w, w + 12]) {
    k.u32[d + 5] = 1; // kind value
    k.u32[d + 7] = 0x7fffffff; // keyLen
    k.u32[d + 9] = 0x7fffffff; // valLen: 2 × 4 GiB, wrapped to ~0 in u32 before
  }
  assert.is(k.exports.encode(desc, 2, data, 1, 0, 0) >>> 0, ENCODE_TOO_LARGE);
  assert.is(DESC_MAX * 48, REGION_MAX, "a full descriptor region is exactly the largest region");
  heapStillWorks();
});

test.run();

test("a kernel-decoded batch reads its descriptors in place, survives memory growth, and is copied out before R_IN/R_DESC are reused", () => {
  const k = kernel();
  const records = (tag: string, n: number): RecordInput[] => Array.from({ length: n }, (_, i) => ({
    kind: RecordKind.Value, key: `${tag}/${i}`, value: new Uint8Array(8).fill(i & 255), timestamp: 5_000 + i, node: 2, seq: i + 1,
  }));
  const aBytes = encodeRecordsReference(records("a", 3000), "framed", 0);
  const a = decodeRecords(aBytes, "framed", 0);
  const aRef = decodeRecordsReference(aBytes, "framed", 0);
  assert.is(a.descriptors.buffer, k.u8.buffer, "in place: a view of linear memory, not a copy");
  // Growth detaches every view of the old buffer; the batch rebuilds its view at the same address.
  k.reserve(R_CRC, capOf(R_CRC) + k.u8.length);
  sameBatch(a, aRef, "after memory growth");
  // Another decode reuses R_IN/R_DESC: `a` is copied out first and keeps reading right.
  const b = decodeRecords(encodeRecordsReference(records("b", 5000), "framed", 0), "framed", 0);
  assert.is.not(a.descriptors.buffer, k.u8.buffer, "evicted: a copy of its own");
  sameBatch(a, aRef, "after another decode reused the regions");
  assert.is(a.key(2999), "a/2999");
  assert.is(b.key(4999), "b/4999");
  // A released batch is not copied out: reading it throws; the next decode is unaffected.
  const c = decodeRecords(encodeRecordsReference(records("c", 10), "framed", 0), "framed", 0);
  c.release();
  assert.throws(() => c.key(0), /release/);
  assert.is(decodeRecords(aBytes, "framed", 0).key(7), "a/7");
  // The merge of an evicted batch stages it again; its decisions equal the twin's.
  const w = createMergeIndex(), t = createMergeIndexReference();
  try {
    const limits = { maxKeyBytes: 1024, maxValueBytes: 1024, maxTimestamp: Number.MAX_SAFE_INTEGER };
    assert.equal(Array.from(w.merge(a, limits).winners), Array.from(t.merge(aRef, limits).winners));
    w.commit();
    assert.is(w.size, 3000);
  } finally {
    w.dispose();
  }
});
