/**
 * Envelope extensions (docs/FORMAT.md §6.1): additive fields an older build skips, as
 * `varu extCount • extCount × (varu tag • varu len • len bytes)`, tags ascending.
 */
import { BUCKETS, BUCKETS_PER_GROUP, GROUPS } from "../index/summary.js";
import type { Envelope } from "./envelope-model.js";
import { batchRangeBytes, readBatchRanges } from "./envelope-ranges.js";
import { Reader, bad, checkSafe, checkSeq, checkU32, hexOf, invalid, pushVaru, zigzag } from "./envelope-wire.js";

/** Extension tags (frozen, append only; 0–15 left unused: tests use them as "unknown"). */
export const enum ExtTag {
  Features = 16,
  SummaryRoot = 17,
  SummaryGroups = 18,
  SummaryBuckets = 19,
  RepairBuckets = 20,
  SenderClock = 21,
  /** Fan-out hold-back: the held origins with the sender's true acks of them (laid out as the acks). */
  HeldAcks = 22,
  /** The atomic batches the entries belong to (src/sync/envelope-ranges.ts, docs/FORMAT.md §6.1). */
  BatchRanges = 26,
}
/** The range summary's shape (src/index/summary.ts): its group hashes, and the bucket hashes of one group (u64 each). */
const GROUP_HASH_BYTES = GROUPS * 8;
const BUCKET_HASH_BYTES = BUCKETS_PER_GROUP * 8;
const ROOT_RE = /^[0-9a-f]{16}$/;

/**
 * Extensions: additive fields an older build skips (tags ascend). Known tags
 * (`ExtTag`, docs/FORMAT.md §6.1) are parsed strictly — the payload must be consumed
 * exactly, id lists ascend and stay in range — unknown ones are skipped.
 */
export function readExtensions(r: Reader, env: Record<string, unknown>): void {
  const count = r.varu("extCount");
  if (count * 2 > r.remaining) throw bad(`extCount ${count} exceeds the ${r.remaining} bytes that remain`);
  let prev = -1;
  for (let i = 0; i < count; i++) {
    const tag = r.u32("extension tag");
    if (tag <= prev) throw bad(`extension tags not strictly ascending (${tag} after ${prev})`);
    prev = tag;
    const what = `extension ${tag}`;
    const body = r.take(r.varu(`${what} length`), what);
    if (tag === ExtTag.HeldAcks) { env.heldAcks = readAckList(body, what); continue; }
    if (tag === ExtTag.BatchRanges) { env.batchRanges = readBatchRanges(body); continue; }
    if (tag < ExtTag.Features || tag > ExtTag.SenderClock) continue;
    const x = new Reader(body, 0, body.length);
    if (tag === ExtTag.Features) env.features = x.varu(what);
    else if (tag === ExtTag.SummaryRoot) env.summaryRoot = hexOf(x.take(8, what));
    else if (tag === ExtTag.SummaryGroups) env.summaryGroups = x.take(GROUP_HASH_BYTES, what).slice();
    else if (tag === ExtTag.SenderClock) env.senderClock = x.timestamp(what);
    else {
      // An id list: count, then gaps (id = previous + 1 + gap; the first gap is the id).
      const limit = tag === ExtTag.SummaryBuckets ? GROUPS : BUCKETS;
      const n = x.varu(what);
      if (n > x.remaining || n > limit) throw bad(`${what}: ${n} ids in ${x.remaining} bytes`);
      const ids: number[] = [];
      for (let k = 0, id = -1; k < n; k++) {
        id += 1 + x.varu(what);
        if (id >= limit) throw bad(`${what}: id ${id} is not below ${limit}`);
        ids.push(id);
      }
      if (tag === ExtTag.SummaryBuckets) env.summaryBuckets = { groups: ids, hashes: x.take(n * BUCKET_HASH_BYTES, what).slice() };
      else env.repairBuckets = ids;
    }
    if (x.remaining !== 0) throw bad(`${what}: ${x.remaining} trailing bytes`);
  }
}

/** An (origin, seq) list laid out as the acks section (FORMAT §6): count, then u32 origin (ascending) • seq. */
function readAckList(body: Uint8Array, what: string): Map<number, number> {
  const x = new Reader(body, 0, body.length);
  const n = x.varu(what);
  if (n * 2 > x.remaining) throw bad(`${what}: ${n} acks in ${x.remaining} bytes`);
  const acks = new Map<number, number>();
  for (let k = 0, prev = -1; k < n; k++) {
    const origin = x.u32(what);
    if (origin <= prev) throw bad(`${what}: origins not strictly ascending (${origin} after ${prev})`);
    prev = origin;
    acks.set(origin, x.seq(`${what}: ack of ${origin}`));
  }
  if (x.remaining !== 0) throw bad(`${what}: ${x.remaining} trailing bytes`);
  return acks;
}

function ackListBytes(acks: ReadonlyMap<number, number>): number[] {
  const b: number[] = [];
  const list = [...acks].sort((p, q) => p[0] - q[0]);
  pushVaru(b, list.length);
  for (const [origin, seq] of list) {
    pushVaru(b, checkU32(origin, "heldAcks origin"));
    pushVaru(b, checkSeq(seq, `heldAcks of ${origin}`));
  }
  return b;
}

/** The extension section (count, then tag • len • payload in tag order), or null when there is none. */
export function encodeExtensions(env: Envelope): Uint8Array | null {
  const out: number[] = [];
  let n = 0;
  const part = (tag: ExtTag, bytes: ArrayLike<number>) => {
    n++;
    pushVaru(out, tag);
    pushVaru(out, bytes.length);
    for (let i = 0; i < bytes.length; i++) out.push(bytes[i]!);
  };
  const ids = (list: readonly number[], limit: number, tail?: Uint8Array) => {
    const b: number[] = [];
    pushVaru(b, list.length);
    let prev = -1;
    for (const id of list) {
      if (!Number.isInteger(id) || id <= prev || id >= limit) throw invalid(`id lists must ascend strictly and stay below ${limit}`);
      pushVaru(b, id - prev - 1);
      prev = id;
    }
    if (tail) for (let i = 0; i < tail.length; i++) b.push(tail[i]!);
    return b;
  };
  if (env.features !== undefined) {
    const f: number[] = [];
    pushVaru(f, checkSafe(env.features, "features"));
    part(ExtTag.Features, f);
  }
  if (env.summaryRoot !== undefined) {
    if (!ROOT_RE.test(env.summaryRoot)) throw invalid("summaryRoot must be 16 lowercase hex characters");
    part(ExtTag.SummaryRoot, Uint8Array.from(env.summaryRoot.match(/../g)!, (h) => parseInt(h, 16)));
  }
  if (env.summaryGroups !== undefined) {
    if (env.summaryGroups.length !== GROUP_HASH_BYTES) throw invalid(`summaryGroups must be ${GROUP_HASH_BYTES} bytes`);
    part(ExtTag.SummaryGroups, env.summaryGroups);
  }
  const sb = env.summaryBuckets;
  if (sb !== undefined) {
    if (sb.hashes.length !== sb.groups.length * BUCKET_HASH_BYTES) throw invalid(`summaryBuckets needs ${BUCKET_HASH_BYTES} hash bytes per group`);
    part(ExtTag.SummaryBuckets, ids(sb.groups, GROUPS, sb.hashes));
  }
  if (env.repairBuckets !== undefined) part(ExtTag.RepairBuckets, ids(env.repairBuckets, BUCKETS));
  if (env.senderClock !== undefined) {
    const t = env.senderClock;
    if (!Number.isSafeInteger(t)) throw invalid(`senderClock ${t} is not an integer within ±(2^53 − 1)`);
    part(ExtTag.SenderClock, zigzag(t));
  }
  if (env.heldAcks !== undefined) part(ExtTag.HeldAcks, ackListBytes(env.heldAcks));
  // Tag 26: keep it the last part (tags ascend); an empty list is not written at all.
  if (env.batchRanges?.length) part(ExtTag.BatchRanges, batchRangeBytes(env.batchRanges));
  if (n === 0) return null;
  const head: number[] = [];
  pushVaru(head, n);
  const bytes = new Uint8Array(head.length + out.length);
  bytes.set(head);
  bytes.set(out, head.length);
  return bytes;
}
