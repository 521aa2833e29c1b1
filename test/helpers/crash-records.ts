/**
 * The records of the storage crash loop (test/storage/crash.ts and its child
 * test/helpers/crash-child.ts), recomputed by the parent from the id alone. Every third
 * record is an expiring value (kind 5, issue 21): its payload carries `expiresAt`, so a
 * kill that tears it must never bring back a value without its expiry, or another expiry.
 *
 * Not a test file: the runner skips test/helpers/.
 */
import { RecordKind, expiringPayload, type RecordInput } from "../../src/core/record.js";
import { crashRecord, T0 } from "./storage-fixtures.js";

/** The expiry record `id` carries (an hour after its stamp), or undefined for a plain value. */
export function crashExpiry(id: number): number | undefined {
  return id % 3 === 0 ? T0 + id + 3_600_000 : undefined;
}

/** Record `id` of the crash loop: key `r/<id>`, seq `id`; kind 5 when `crashExpiry(id)` is set. */
export function crashRecordOf(id: number): RecordInput {
  const rec = crashRecord(id);
  const at = crashExpiry(id);
  return at === undefined ? rec : { ...rec, kind: RecordKind.Expiring, value: expiringPayload(at, rec.value!) };
}
