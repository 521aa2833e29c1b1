// The BATCH_RANGES envelope extension (ExtTag 26, src/sync/envelope-ranges.ts,
// docs/FORMAT.md §6.1): round trips, every refusal with crafted bytes, an older decoder's
// view, and a seeded fuzz loop that only ever yields BAD_ENVELOPE.
import { test } from "uvu";
import * as assert from "uvu/assert";
import {
  ENVELOPE_VERSION, ENVELOPE_VERSION_DELTA, MAX_BATCH_RANGE, MAX_ENVELOPE_BATCH_RANGES, MAX_ENVELOPE_ENTRIES, MAX_SEQ, decodeEnvelope, encodeEnvelope,
  type BatchRange, type Envelope,
} from "../../src/sync/envelope.js";
import { MAX_BATCH_RECORDS } from "../../src/storage/wal-batches.js";
import { crc32 } from "../../src/codec/crc.js";
import { WaveKVError } from "../../src/core/errors.js";
import { seededRandom } from "../../src/transport/memory.js";
import { Node } from "../../src/node/node.js";
import { SyncManager } from "../../src/node/manager.js";
import type { Entry } from "../../src/core/types.js";

const UUID = "0123abcd-4567-89ef-0123-456789abcdef";
const UUID_BYTES = new Array<number>(16).fill(0x11);
const TS = 1_764_000_000_000;

/** Two entries of each range (its first and last seq), in (node, seq) order. */
function entriesOf(ranges: readonly BatchRange[]): Entry[] {
  return ranges.flatMap((r) => [r.first, r.first + r.count - 1].map((seq) => ({
    key: `k/${r.node}/${seq}`, value: Uint8Array.of(seq & 0xff), timestamp: TS + (seq % 1000), node: r.node, seq,
  })));
}

/** No digest or cursor: the extension section starts right after the acks (byte 28). */
function envOf(ranges: BatchRange[] | undefined, version = ENVELOPE_VERSION, over: Partial<Envelope> = {}): Envelope {
  return { version, senderId: 7, senderUuid: UUID, acks: new Map([[1, 42], [7, 3]]), entries: over.entries ?? entriesOf(ranges ?? []), batchRanges: ranges, ...over };
}
const EXT_AT = 6 + 1 + 16 + 5;

/** Where each extension's tag and payload sit in bytes encoded by envOf (every count and tag here is one byte). */
function extensionsOf(bytes: Uint8Array): { tag: number; tagAt: number; payloadAt: number }[] {
  const out: { tag: number; tagAt: number; payloadAt: number }[] = [];
  let at = EXT_AT;
  const count = bytes[at++]!;
  for (let i = 0; i < count; i++) {
    const tagAt = at++;
    let len = 0, scale = 1;
    for (;;) { const b = bytes[at++]!; len += (b & 0x7f) * scale; scale *= 128; if (b < 0x80) break; }
    out.push({ tag: bytes[tagAt]!, tagAt, payloadAt: at });
    at += len;
  }
  return out;
}
const rangesAt = (bytes: Uint8Array) => extensionsOf(bytes).find((x) => x.tag === 26)!.payloadAt;

/** Fields as plain data (entries materialised) for deep equality; batchRanges as decoded. */
function plain(env: Envelope) {
  return {
    version: env.version, senderId: env.senderId, senderUuid: env.senderUuid, acks: [...env.acks],
    entries: env.entries.map((e) => ({ ...e, value: e.value === null ? null : [...e.value] })),
    features: env.features, senderClock: env.senderClock, heldAcks: env.heldAcks && [...env.heldAcks], batchRanges: env.batchRanges,
  };
}

function reseal(b: Uint8Array): Uint8Array {
  const out = b.slice();
  new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)) >>> 0, true);
  return out;
}

function varu(v: number): number[] {
  const out: number[] = [];
  for (; v >= 0x80; v = Math.floor(v / 128)) out.push((v % 128) | 0x80);
  out.push(v);
  return out;
}

/** A hand-built envelope (no acks, no entries) whose only extension is tag 26 with `payload`. */
function withPayload(payload: number[], head = ENVELOPE_VERSION): Uint8Array {
  const flat = [0x57, 0x4b, 0x56, 0x45, head, 0x40, 5, ...UUID_BYTES, 0, 1, 26, ...varu(payload.length), ...payload, 0, 0, 0, 0, 0, 0];
  return reseal(Uint8Array.from(flat));
}
/** The payload of `ranges` written field by field (no checks: crafted lists). */
function payloadOf(ranges: readonly [number, number, number][], n = ranges.length): number[] {
  return [...varu(n), ...ranges.flatMap(([node, first, count]) => [...varu(node), ...varu(first), ...varu(count)])];
}

/** The message naming a range that breaks a bound or the order (src/sync/envelope-ranges.ts). */
const breaks = (node: number, first: number, count: number) =>
  new RegExp(`${JSON.stringify({ node, first, count }).replace(/[{}+]/g, "\\$&")} is out of bounds or order`);

function badEnvelope(bytes: Uint8Array, match: RegExp): void {
  try {
    decodeEnvelope(bytes);
  } catch (e) {
    assert.instance(e, WaveKVError);
    assert.is((e as WaveKVError).code, "BAD_ENVELOPE", (e as Error).message);
    assert.match((e as Error).message, match);
    return;
  }
  assert.unreachable(`decoded ${bytes.length} bad bytes`);
}

function invalidArgument(ranges: BatchRange[], match: RegExp): void {
  try {
    encodeEnvelope(envOf(ranges, ENVELOPE_VERSION, { entries: [] }));
  } catch (e) {
    assert.is((e as WaveKVError).code, "INVALID_ARGUMENT", (e as Error).message);
    assert.match((e as Error).message, match);
    return;
  }
  assert.unreachable(`encoded ${JSON.stringify(ranges)}`);
}

test("the limits: a range spans at most a WAL batch; an envelope lists at most one range per two entries", () => {
  assert.is(MAX_BATCH_RANGE, MAX_BATCH_RECORDS);
  assert.is(MAX_ENVELOPE_BATCH_RANGES, MAX_ENVELOPE_ENTRIES / 2);
  assert.is(MAX_ENVELOPE_BATCH_RANGES, 32_768);
});

test("round trips, bare and delta-coded bodies: one range, many, many nodes, the extremes", () => {
  const many: BatchRange[] = Array.from({ length: 50 }, (_, i) => ({ node: 3, first: 1 + i * 20, count: 2 + (i % 19) }));
  const manyNodes: BatchRange[] = Array.from({ length: 40 }, (_, i) => ({ node: i * 1000 + (i % 3), first: 1 + i, count: 2 + i }));
  const extremes: BatchRange[] = [
    { node: 0, first: 1, count: 2 },
    { node: 0, first: 3, count: MAX_BATCH_RANGE }, // adjacent to the previous one: two batches
    { node: 5, first: MAX_SEQ - MAX_BATCH_RANGE + 1, count: MAX_BATCH_RANGE }, // ends at MAX_SEQ
    { node: 2 ** 32 - 1, first: MAX_SEQ - 1, count: 2 },
  ];
  for (const ranges of [[{ node: 1, first: 10, count: 3 }], many, manyNodes, extremes]) {
    for (const version of [ENVELOPE_VERSION, ENVELOPE_VERSION_DELTA]) {
      const env = envOf(ranges, version, { features: 15, senderClock: TS, heldAcks: new Map([[9, 4]]) });
      const bytes = encodeEnvelope(env);
      const back = decodeEnvelope(bytes);
      assert.is(back.version, version);
      assert.equal(plain(back), plain(env));
      assert.equal(encodeEnvelope(back), bytes, "canonical");
    }
  }
});

test("32 768 ranges (the bound) round-trip; an empty list is not written at all", () => {
  const ranges: BatchRange[] = Array.from({ length: MAX_ENVELOPE_BATCH_RANGES }, (_, i) => ({ node: i >> 8, first: 1 + (i & 255) * 3, count: 2 }));
  const env = envOf(ranges, ENVELOPE_VERSION, { entries: entriesOf(ranges.slice(0, 4)) });
  const back = decodeEnvelope(encodeEnvelope(env));
  assert.equal(back.batchRanges, ranges);
  assert.is(back.entries.length, 8);
  invalidArgument([...ranges, { node: 999_999, first: 1, count: 2 }], /batchRanges: 32769 is out of bounds/);

  const none = encodeEnvelope(envOf(undefined));
  assert.equal(encodeEnvelope(envOf([])), none);
  assert.is(decodeEnvelope(none).batchRanges, undefined);
  assert.is(none[5]! & 0x40, 0, "no extension section at all");
});

test("crafted lists that break a rule are BAD_ENVELOPE", () => {
  const ok = payloadOf([[5, 10, 3], [5, 13, 2], [6, 1, 2]]);
  assert.equal(decodeEnvelope(withPayload(ok)).batchRanges, [{ node: 5, first: 10, count: 3 }, { node: 5, first: 13, count: 2 }, { node: 6, first: 1, count: 2 }]);
  assert.equal(decodeEnvelope(withPayload(ok, ENVELOPE_VERSION_DELTA)).batchRanges!.length, 3);
  badEnvelope(withPayload(payloadOf([[5, 1, 2], [3, 1, 2]])), breaks(3, 1, 2)); // nodes descend
  badEnvelope(withPayload(payloadOf([[5, 10, 2], [5, 9, 2]])), breaks(5, 9, 2)); // firsts descend
  badEnvelope(withPayload(payloadOf([[5, 10, 2], [5, 10, 2]])), breaks(5, 10, 2)); // the same range twice
  badEnvelope(withPayload(payloadOf([[5, 10, 3], [5, 12, 2]])), breaks(5, 12, 2)); // overlaps the last seq of the previous
  for (const count of [0, 1, MAX_BATCH_RANGE + 1]) badEnvelope(withPayload(payloadOf([[5, 10, count]])), breaks(5, 10, count));
  badEnvelope(withPayload(payloadOf([[5, 0, 2]])), breaks(5, 0, 2));
  badEnvelope(withPayload(payloadOf([[5, MAX_SEQ - 8, 10]])), breaks(5, MAX_SEQ - 8, 10)); // last seq MAX_SEQ + 1
  badEnvelope(withPayload(payloadOf([[5, MAX_SEQ + 1, 2]])), breaks(5, MAX_SEQ + 1, 2));
  badEnvelope(withPayload(payloadOf([[2 ** 32, 1, 2]])), breaks(2 ** 32, 1, 2));
  badEnvelope(withPayload(payloadOf([])), /extension 26: 0 ranges in 0 bytes/);
  const over = Array.from({ length: MAX_ENVELOPE_BATCH_RANGES + 1 }, (_, i): [number, number, number] => [i, 1, 2]);
  const overBytes = payloadOf(over);
  badEnvelope(withPayload(overBytes), new RegExp(`: 32769 ranges in ${overBytes.length - 3} bytes`));
  badEnvelope(withPayload([...payloadOf([[1, 1, 2], [2, 1, 2], [3, 1, 2]], 4), 1, 1]), /: 4 ranges in 11 bytes/);
  badEnvelope(withPayload([...payloadOf([[5, 10, 2]]), 0]), /extension 26: 1 trailing bytes/);
  badEnvelope(withPayload([2, 1, 1, 2, 1, 5, 0x80]), /extension 26: truncated varint/);
  badEnvelope(withPayload([0x82, 0x00, 1, 1, 2, 2, 1, 2]), /extension 26: non-minimal varint/); // n
  badEnvelope(withPayload([1, 0x85, 0x00, 1, 2]), /extension 26: non-minimal varint/); // node
  badEnvelope(withPayload([1, 5, 0x81, 0x00, 2]), /extension 26: non-minimal varint/); // first
  badEnvelope(withPayload([1, 5, 1, 0x82, 0x00]), /extension 26: non-minimal varint/); // count
});

test("a claimed count of 2^40 with 5 bytes of payload refuses at once (no allocation by the claim)", () => {
  const before = process.memoryUsage().heapUsed;
  for (const n of [2 ** 40, 2 ** 20, 100]) badEnvelope(withPayload([...varu(n), 1, 1, 2, 1, 1]), new RegExp(`: ${n} ranges in 5 bytes`));
  assert.ok(process.memoryUsage().heapUsed - before < 64 * 1024 * 1024, "no buffer sized by the claim");
});

test("the encoder refuses the same rules (INVALID_ARGUMENT)", () => {
  invalidArgument([{ node: 5, first: 1, count: 2 }, { node: 3, first: 1, count: 2 }], breaks(3, 1, 2));
  invalidArgument([{ node: 5, first: 10, count: 2 }, { node: 5, first: 9, count: 2 }], breaks(5, 9, 2));
  invalidArgument([{ node: 5, first: 10, count: 3 }, { node: 5, first: 12, count: 2 }], breaks(5, 12, 2));
  for (const count of [0, 1, MAX_BATCH_RANGE + 1, 2.5]) invalidArgument([{ node: 5, first: 10, count }], breaks(5, 10, count));
  invalidArgument([{ node: 5, first: 0, count: 2 }], breaks(5, 0, 2));
  invalidArgument([{ node: 5, first: MAX_SEQ, count: 2 }], breaks(5, MAX_SEQ, 2));
  invalidArgument([{ node: 2 ** 32, first: 1, count: 2 }], breaks(2 ** 32, 1, 2));
  invalidArgument([{ node: -1, first: 1, count: 2 }], breaks(-1, 1, 2));
  invalidArgument([null as unknown as BatchRange], /batchRanges: null is out of bounds/);
});

test("an older decoder's view: the same bytes with the tag renumbered to 30 decode with batchRanges undefined, the rest equal", () => {
  const ranges: BatchRange[] = [{ node: 1, first: 40, count: 3 }, { node: 7, first: 2, count: 2 }];
  for (const version of [ENVELOPE_VERSION, ENVELOPE_VERSION_DELTA]) {
    const env = envOf(ranges, version, { features: 15, senderClock: TS, heldAcks: new Map([[9, 4]]) });
    const bytes = encodeEnvelope(env);
    const tags = extensionsOf(bytes);
    assert.equal(tags.map((x) => x.tag), [16, 21, 22, 26]);
    bytes[tags[3]!.tagAt] = 30;
    const older = decodeEnvelope(reseal(bytes));
    assert.is(older.batchRanges, undefined);
    assert.equal(plain(older), { ...plain(env), batchRanges: undefined });
  }
});

test("a refused envelope applies nothing: SyncManager.handle leaves the node as it was", async () => {
  const node = await Node.open({ id: 1, onWarning: () => undefined, clock: () => TS });
  const sync = new SyncManager(node, { request: () => Promise.reject(new Error("no network")) }, { onWarning: () => undefined });
  const good = encodeEnvelope(envOf([{ node: 7, first: 1, count: 2 }, { node: 7, first: 3, count: 2 }]));
  // Make the second range overlap the first (first 3 → 2): the entries are intact, the ranges are not.
  const crafted = good.slice();
  const secondFirst = rangesAt(good) + 1 + 3 + 1; // n, the first range, the second's node
  assert.is(crafted[secondFirst], 3);
  crafted[secondFirst] = 2;
  const before = node.digest();
  await sync.handle(reseal(crafted)).then(() => assert.unreachable("accepted"), (e: unknown) => assert.is((e as WaveKVError).code, "BAD_ENVELOPE"));
  assert.is(node.digest(), before);
  assert.is(node.status().keys, 0);
  await sync.handle(good);
  assert.is(node.status().keys, 4);
  await node.close();
});

test("fuzz: flipped bytes of envelopes with ranges yield only BAD_ENVELOPE; whatever decodes re-encodes", () => {
  const rnd = seededRandom(0x26_26);
  const int = (n: number) => Math.floor(rnd() * n);
  const ranges: BatchRange[] = [
    { node: 1, first: 1, count: 2 }, { node: 1, first: 3, count: 500 }, { node: 300, first: 2 ** 20, count: MAX_BATCH_RANGE },
    { node: 2 ** 32 - 1, first: MAX_SEQ - 1, count: 2 },
  ];
  const seeds = [ENVELOPE_VERSION, ENVELOPE_VERSION_DELTA].map((v) => encodeEnvelope(envOf(ranges, v, { features: 15, senderClock: TS })));
  const payloadAt = seeds.map(rangesAt);
  let accepted = 0, refused = 0;
  for (let k = 0; k < 20_000; k++) {
    const s = k & 1;
    const bytes = seeds[s]!.slice();
    const flips = 1 + int(3);
    for (let f = 0; f < flips; f++) {
      // Mostly inside the ranges payload (about 25 bytes), sometimes anywhere before the CRC.
      const at = int(4) > 0 ? payloadAt[s]! + int(26) : int(bytes.length - 4);
      bytes[at] = int(4) === 0 ? int(256) : bytes[at]! ^ (1 << int(8));
    }
    const input = int(8) === 0 ? bytes : reseal(bytes);
    try {
      const env = decodeEnvelope(input);
      accepted++;
      void env.entries;
      encodeEnvelope(env); // a decoded list keeps every rule: the encoder accepts it
    } catch (e) {
      if (!(e instanceof WaveKVError) || e.code !== "BAD_ENVELOPE") throw new Error(`iteration ${k}: ${String(e)}`);
      refused++;
    }
  }
  assert.ok(accepted > 0 && refused > 0, `${accepted} accepted, ${refused} refused`);
});

test.run();
