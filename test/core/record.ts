// Entry ↔ record conversions (src/core/record.ts): an entry survives entryToRecord, both
// encoders and recordToEntry unchanged; seq marks carry their seq and nothing else.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { decodeRecords, encodeRecords } from "../../src/codec/records.js";
import { decodeRecordsReference, encodeRecordsReference } from "../../src/codec/reference.js";
import { RecordKind, entryToRecord, forEachRecord, recordToEntry, seqMarkRecord, D_KIND, type Framing } from "../../src/core/record.js";
import type { Entry } from "../../src/core/types.js";

const entries: Entry[] = [
  { key: "a", value: Uint8Array.of(1, 2, 3), timestamp: 1_700_000_000_000, node: 7, seq: 1 },
  { key: "é/😀", value: null, timestamp: -5, node: 0xffffffff, seq: 2 ** 53 - 1 },
  { key: "", value: new Uint8Array(0), timestamp: 0, node: 0, seq: 0 },
];

test("entryToRecord then recordToEntry is the identity, through both codecs and every framing", () => {
  const records = entries.map(entryToRecord);
  assert.equal(records.map((r) => r.kind), [RecordKind.Value, RecordKind.Tombstone, RecordKind.Value]);
  for (const framing of ["framed", "bare", "delta"] as Framing[]) {
    for (const [encode, decode] of [[encodeRecords, decodeRecords], [encodeRecordsReference, decodeRecordsReference]] as const) {
      const batch = decode(encode(records, framing, -5), framing, -5);
      assert.is(batch.count, entries.length);
      assert.equal(entries.map((_, i) => recordToEntry(batch, i)), entries, framing);
      batch.release();
    }
  }
});

test("seqMarkRecord: kind 4, the seq (negatives as 0), an empty key, no value; copies keep timestamp and node", () => {
  const marks = [seqMarkRecord(41), seqMarkRecord(-3), seqMarkRecord(9, 123, 4)];
  const batch = decodeRecordsReference(encodeRecordsReference(marks, "framed", 0), "framed", 0);
  const kinds: number[] = [];
  forEachRecord(batch, (w, at) => kinds.push(w[at + D_KIND]!));
  assert.equal(kinds, [RecordKind.SeqMark, RecordKind.SeqMark, RecordKind.SeqMark]);
  assert.equal([0, 1, 2].map((i) => [batch.seq(i), batch.timestamp(i), batch.node(i), batch.key(i), batch.value(i)]),
    [[41, 0, 0, "", null], [0, 0, 0, "", null], [9, 123, 4, "", null]]);
});

test.run();
