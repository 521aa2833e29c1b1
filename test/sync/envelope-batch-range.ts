// A batch range (kind 7) is a snapshot record, never an entry on the wire: an envelope
// whose entries hold one (well formed as a record, anywhere among them, bare or delta
// coded) is BAD_ENVELOPE as a whole, and nothing of it is applied.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Node } from "../../src/node/node.js";
import { encodeRecords } from "../../src/codec/records.js";
import { decodeEnvelope, encodeEnvelope, envelopeWithEncodedEntries } from "../../src/sync/envelope.js";
import { RecordKind, batchRangeRecord, type RecordInput } from "../../src/core/record.js";
import { WaveKVError } from "../../src/core/errors.js";

const value = (k: string, seq: number): RecordInput => ({ kind: RecordKind.Value, key: k, value: new TextEncoder().encode("v"), timestamp: Date.now(), node: 2, seq });
const header = { senderId: 2, senderUuid: "00000000-0000-4000-8000-000000000002", acks: new Map<number, number>(), pushOnly: true };

test("an envelope carrying a batch range (kind 7) is BAD_ENVELOPE, nothing of it applied", async () => {
  const node = await Node.open({ id: 1 });
  try {
    const range = batchRangeRecord(2, 1, 2);
    for (const framing of ["bare", "delta"] as const) {
      for (const records of [[range, value("a", 1), value("b", 2)], [value("a", 1), range, value("b", 2)], [value("a", 1), value("b", 2), range]]) {
        const bytes = encodeRecords(records, framing, 0);
        const env = envelopeWithEncodedEntries({ ...header, version: framing === "delta" ? 2 : 1 }, { bytes, count: records.length, base: 0, framing });
        const wire = encodeEnvelope(env);
        const at = records.indexOf(range);
        let err: unknown;
        try {
          node.handleEnvelope(decodeEnvelope(wire)); // as a peer's bytes arrive
        } catch (e) {
          err = e;
        }
        assert.instance(err, WaveKVError, `${framing}, range at ${at}`);
        assert.is((err as WaveKVError).code, "BAD_ENVELOPE", `${framing}, range at ${at}: ${(err as Error).message}`);
        assert.match((err as Error).message, /kind/);
        assert.is(node.size, 0, `${framing}, range at ${at}: nothing applied`);
      }
    }
    // The same entries without the range apply: what refused them was the range.
    const bytes = encodeRecords([value("a", 1), value("b", 2)], "bare", 0);
    node.handleEnvelope(decodeEnvelope(encodeEnvelope(envelopeWithEncodedEntries({ ...header, version: 1 }, { bytes, count: 2, base: 0, framing: "bare" }))));
    assert.is(node.size, 2);
  } finally {
    await node.close();
  }
});

test.run();
