/**
 * Per entry of an envelope, why the merge would refuse it (`entryFault`: a seq or timestamp
 * the wire carries but a node cannot take), or undefined. Read from the decoded descriptors.
 *
 * Not a test file: the runner skips test/helpers/.
 */
import { decodeRecords } from "../../src/codec/records.js";
import { encodedEntriesOf, entryFault, type Envelope } from "../../src/sync/envelope.js";
import { DESCRIPTOR_WORDS } from "../../src/core/record.js";

export function entryFaults(env: Envelope): (string | undefined)[] {
  const enc = encodedEntriesOf(env);
  const batch = decodeRecords(enc.bytes, enc.framing ?? "bare", enc.base, enc.count);
  const out = Array.from({ length: batch.count }, (_, i) => entryFault(batch.words, i * DESCRIPTOR_WORDS));
  batch.release();
  return out;
}
