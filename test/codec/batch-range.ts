// Batch ranges (kind 7, docs/FORMAT.md §1): golden bytes in every framing, and the bounds
// both decoders (kernel and TS twin) hold a range to, one past each edge refused alike.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { crc32 as zlibCrc32 } from "node:zlib";
import { decodeRecords, encodeRecords } from "../../src/codec/records.js";
import { decodeRecordsReference, encodeRecordsReference } from "../../src/codec/reference.js";
import { BATCH_RANGE_MAX, BATCH_RANGE_MAX_SEQ, RecordKind, batchRangeRecord, type Framing } from "../../src/core/record.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const DECODERS = [decodeRecords, decodeRecordsReference];

const varu = (v: bigint): number[] => { const out: number[] = []; while (v >= 0x80n) { out.push(Number(v & 0x7fn) | 0x80); v >>= 7n; } out.push(Number(v)); return out; };
const zvar = (d: bigint): number[] => varu(d >= 0n ? 2n * d : -2n * d - 1n);

/** A kind-7 record in `framing` against base 0 (delta: against node 0, seq 0, timestamp 0), whatever its fields. */
function body(framing: Framing, node: number, first: bigint, count: bigint, key: number[] = []): Uint8Array {
  const fields = [...zvar(count), ...varu(BigInt(key.length)), ...key];
  const bytes = framing === "delta" ? [7 | 8, ...varu(BigInt(node)), ...zvar(first), ...fields] : [7, ...varu(BigInt(node)), ...varu(first), ...fields];
  if (framing !== "framed") return Uint8Array.from(bytes);
  const out = new Uint8Array(8 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length, true);
  new DataView(out.buffer).setUint32(4, zlibCrc32(Uint8Array.from(bytes)) >>> 0, true);
  out.set(bytes, 8);
  return out;
}

test("golden bytes: kind 7, the node, the first seq, the count as the timestamp, an empty key, no value field", () => {
  const r = batchRangeRecord(3, 5, 4);
  assert.equal(r, { kind: RecordKind.BatchRange, key: "", value: null, timestamp: 4, node: 3, seq: 5 });
  const golden: [Framing, string][] = [["bare", "0703050800"], ["delta", "5f030800"], ["framed", `05000000${(zlibCrc32(Buffer.from("0703050800", "hex")) >>> 0).toString(16).padStart(8, "0").match(/../g)!.reverse().join("")}0703050800`]];
  for (const [framing, want] of golden) {
    for (const enc of [encodeRecords, encodeRecordsReference]) assert.is(hex(enc([r], framing, 0)), want, `${framing} (${enc.name})`);
    for (const decode of DECODERS) {
      const b = decode(Buffer.from(want, "hex"), framing, 0);
      assert.equal([b.count, b.stop.reason, b.kind(0), b.node(0), b.seq(0), b.timestamp(0), b.keyBytes(0).length, b.valueLength(0), b.value(0)], [1, "end", 7, 3, 5, 4, 0, 0, null], `${framing} (${decode.name})`);
    }
  }
});

test("bounds: count 2…10 000, first ≥ 1, last seq ≤ 2^48, no key; one past each edge is malformed in both decoders and every framing", () => {
  const MAX = BigInt(BATCH_RANGE_MAX_SEQ), N = BigInt(BATCH_RANGE_MAX);
  const cases: [string, bigint, bigint, number[], boolean][] = [
    ["2 seqs from 1", 1n, 2n, [], true],
    ["1 seq", 1n, 1n, [], false],
    ["0 seqs", 1n, 0n, [], false],
    ["a negative count", 1n, -2n, [], false],
    ["10 000 seqs", 1n, N, [], true],
    ["10 001 seqs", 1n, N + 1n, [], false],
    ["a count past 2^32 (only its low word in range)", 1n, 2n ** 32n + 2n, [], false],
    ["from seq 0", 0n, 2n, [], false],
    ["ending at 2^48", MAX - 1n, 2n, [], true],
    ["ending at 2^48 + 1", MAX, 2n, [], false],
    ["10 000 ending at 2^48", MAX - N + 1n, N, [], true],
    ["10 000 ending at 2^48 + 1", MAX - N + 2n, N, [], false],
    ["from seq 2^32 (only its high word set)", 2n ** 32n, 2n, [], true],
    ["from seq 2^64 − 1", 2n ** 64n - 1n, 2n, [], false],
    ["with a key", 1n, 2n, [0x61], false],
  ];
  for (const framing of ["bare", "delta", "framed"] as Framing[]) {
    for (const [name, first, count, key, ok] of cases) {
      const bytes = body(framing, 9, first, count, key);
      for (const decode of DECODERS) {
        const b = decode(bytes, framing, 0);
        const what = `${framing}: ${name} (${decode.name})`;
        assert.equal([b.count, b.stop.reason], ok ? [1, "end"] : [0, "malformed"], what);
        if (ok) assert.equal([b.node(0), BigInt(b.seq(0)), BigInt(b.timestamp(0))], [9, first, count], what);
      }
    }
  }
});

test("a range among entries in one batch: each record decoded as written, twins byte-identical", () => {
  const records = [
    { kind: RecordKind.Value, key: "a", value: new Uint8Array([1]), timestamp: 1_700_000_000_000, node: 2, seq: 7 },
    batchRangeRecord(2, 7, 3),
    { kind: RecordKind.Tombstone, key: "b", value: null, timestamp: 1_700_000_000_001, node: 2, seq: 8 },
    batchRangeRecord(0xffffffff, BATCH_RANGE_MAX_SEQ - 1, 2),
  ];
  for (const framing of ["bare", "delta", "framed"] as Framing[]) {
    const bytes = encodeRecords(records, framing, 1_700_000_000_000);
    assert.is(hex(bytes), hex(encodeRecordsReference(records, framing, 1_700_000_000_000)), framing);
    for (const decode of DECODERS) {
      const b = decode(bytes, framing, 1_700_000_000_000);
      assert.equal(Array.from({ length: b.count }, (_, i) => [b.kind(i), b.node(i), b.seq(i), b.timestamp(i), b.key(i)]), records.map((r) => [r.kind, r.node, r.seq, r.timestamp, r.key]), `${framing} (${decode.name})`);
    }
  }
});

test.run();
