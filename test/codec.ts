// Record codec (docs/FORMAT.md §1–2): golden bytes, every stop reason, length claims
// checked before use, and WASM vs TS reference on random, mutated and truncated inputs.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { crc32 as zlibCrc32 } from "node:zlib";
import {
  DESCRIPTOR_BYTES, RecordKind, decodeRecords, decodeRecordsReference, encodeRecords, encodeRecordsReference,
  findNextValidFrame, findNextValidFrameReference, type DecodedBatch, type Framing, type RecordInput,
} from "../src/codec.js";

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
  for (const framing of ["bare", "framed"] as Framing[]) {
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
    ["kind 5", [5, 1, 1, 0, 0], "malformed"],
  ];
  for (const [name, body, reason] of cases) {
    for (const decode of [decodeRecords, decodeRecordsReference]) {
      const b = decode(new Uint8Array(body), "bare", 0);
      assert.equal([b.stop.reason, b.count, b.stop.offset], [reason, 0, 0], `${name} (${decode.name})`);
    }
  }
  // u64 max seq (10th byte = 1) is valid
  const max = decodeRecords(new Uint8Array([0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0]), "bare", 0);
  assert.is(max.stop.reason, "end");
  assert.is(hex(max.descriptors.subarray(8, 16)), "ffffffffffffffff");
});

test("the kernel never reads past the input, even when stale bytes follow it in memory", () => {
  const bytes = encodeRecords([golden, golden, golden], "framed", BASE);
  for (let cut = 0; cut <= bytes.length; cut++) {
    decodeRecords(bytes, "framed", BASE); // leaves the whole buffer in the kernel's input region
    const part = bytes.slice(0, cut);
    sameBatch(decodeRecords(part, "framed", BASE), decodeRecordsReference(part, "framed", BASE), `cut ${cut}`);
    assert.is(findNextValidFrame(part, 1), findNextValidFrameReference(part, 1), `find, cut ${cut}`);
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
    ["kind 7", { kind: 7 as RecordKind }],
    ["node -1", { node: -1 }],
    ["node 2^32", { node: 2 ** 32 }],
  ];
  for (const [name, patch] of bad) {
    const r = { ...golden, ...patch } as RecordInput;
    for (const enc of [encodeRecords, encodeRecordsReference]) assert.throws(() => enc([r], "bare", 0), TypeError, name);
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
  kind: fc.constantFrom(0, 1, 1, 1, 2, 3, 4) as fc.Arbitrary<RecordKind>,
  key: keyArb,
  value: fc.uint8Array({ maxLength: 200 }),
  timestamp: tsArb,
  node: fc.oneof(fc.constantFrom(0, 1, 0xffffffff), fc.integer({ min: 0, max: 0xffffffff })),
  seq: fc.oneof(fc.constantFrom(0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1), fc.integer({ min: 0, max: 2 ** 53 - 1 })),
});
const framingArb = fc.constantFrom<Framing>("bare", "framed");
const baseArb = fc.oneof(fc.constant(BASE), fc.integer({ min: -(2 ** 52), max: 2 ** 52 }));

test("WASM and reference encode identical bytes that decode to identical descriptors (property)", () => {
  fc.assert(
    fc.property(fc.array(recordArb, { maxLength: 24 }), framingArb, baseArb, (records, framing, base) => {
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
      fc.array(recordArb, { minLength: 1, maxLength: 12 }), framingArb, fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
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

test.run();
