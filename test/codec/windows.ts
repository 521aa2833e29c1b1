// Window decoding (src/codec/windows.ts): a file read into kernel memory and decoded a window
// at a time must decode exactly as the TS twin (src/codec/reference.ts) decodes the same bytes
// from the same offset, on clean, mutated and truncated inputs, with earlier windows still held;
// and the windows of a bare or framed file together are the whole file's records.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { encodeRecords } from "../../src/codec/records.js";
import { decodeRecordsReference } from "../../src/codec/reference.js";
import { decodeWindow, readIntoKernel } from "../../src/codec/windows.js";
import { DESCRIPTOR_BYTES, RecordKind, type DecodedBatch, type Framing, type RecordInput } from "../../src/core/record.js";
import { kernel } from "../../src/kernel/instance.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const BASE = 1_700_000_000_000;

function sameBatch(a: DecodedBatch, b: DecodedBatch, what: string): void {
  assert.is(a.count, b.count, `${what}: count`);
  assert.equal(a.stop, b.stop, `${what}: stop`);
  assert.is(a.descriptors.length, a.count * DESCRIPTOR_BYTES, `${what}: descriptor bytes`);
  assert.is(hex(a.descriptors), hex(b.descriptors), `${what}: descriptors`);
  for (let i = 0; i < a.count; i++) {
    assert.is(hex(a.keyBytes(i)), hex(b.keyBytes(i)), `${what}: key ${i}`);
    assert.is(hex(a.value(i) ?? new Uint8Array(0)), hex(b.value(i) ?? new Uint8Array(0)), `${what}: value ${i}`);
  }
}

const recordArb: fc.Arbitrary<RecordInput> = fc.record({
  kind: fc.constantFrom(RecordKind.Tombstone, RecordKind.Value, RecordKind.Value, RecordKind.SeqMark),
  key: fc.oneof(fc.string({ maxLength: 20 }), fc.uint8Array({ maxLength: 12 })),
  value: fc.uint8Array({ maxLength: 120 }),
  timestamp: fc.integer({ min: BASE - 100_000, max: BASE + 100_000 }),
  node: fc.integer({ min: 0, max: 0xffffffff }),
  seq: fc.integer({ min: 0, max: 2 ** 53 - 1 }),
});
const framingArb = fc.constantFrom<Framing>("framed", "bare", "delta");
const mutationArb = fc.oneof(
  fc.record({ op: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant("cut" as const), at: fc.nat() }),
  fc.record({ op: fc.constant("set" as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
);

function mutate(bytes: Uint8Array, ms: { op: string; at: number; bit?: number; byte?: number }[]): Uint8Array {
  let b = bytes.slice();
  for (const m of ms) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    if (m.op === "flip") b[at] ^= 1 << m.bit!;
    else if (m.op === "cut") b = b.slice(0, at);
    else b[at] = m.byte!;
  }
  return b;
}

/**
 * Decodes `image` as recovery does: read into the kernel, windows of `window` records from
 * where the previous one stopped, every window kept until the end (so the later decodes copy
 * the earlier descriptors out). Each window is checked against the twin as it is decoded and
 * again after the last; returns the records decoded and where decoding stopped.
 */
function windows(image: Uint8Array, framing: Framing, window: number): { count: number; stop: DecodedBatch["stop"] } {
  // Stale bytes past the block in linear memory: a decoder reading past it would see them.
  encodeRecords([{ kind: RecordKind.Value, key: "stale", value: new Uint8Array(300).fill(7), timestamp: BASE, node: 1, seq: 1 }], framing, BASE);
  const holder = {};
  const block = readIntoKernel(image.length, (dst) => dst.set(image), holder);
  const kept: { batch: DecodedBatch; at: number }[] = [];
  let at = 0, count = 0;
  try {
    for (;;) {
      const batch = decodeWindow(block, at, framing, BASE, window);
      sameBatch(batch, decodeRecordsReference(image.subarray(at), framing, BASE, window), `window at ${at}`);
      kept.push({ batch, at });
      count += batch.count;
      if (batch.stop.reason !== "limit") return { count, stop: { reason: batch.stop.reason, offset: at + batch.stop.offset } };
      at += batch.stop.offset;
    }
  } finally {
    for (const { batch, at: from } of kept) {
      sameBatch(batch, decodeRecordsReference(image.subarray(from), framing, BASE, window), `kept window at ${from}`);
      batch.release();
    }
    block.drop(holder);
  }
}

test("windows decode as the twin decodes the same bytes from the same offset; bare and framed windows add up to the whole file (property)", () => {
  const pinned = kernel().pinnedBytes;
  fc.assert(
    fc.property(fc.array(recordArb, { maxLength: 40 }), framingArb, fc.integer({ min: 1, max: 12 }), (records, framing, window) => {
      const image = encodeRecords(records, framing, BASE);
      const got = windows(image, framing, window);
      if (framing === "delta") return; // each window restarts the delta chain: only the per-window check applies
      const whole = decodeRecordsReference(image, framing, BASE);
      assert.is(got.count, records.length);
      assert.equal(got.stop, whole.stop);
    }),
    { numRuns: 300 },
  );
  assert.is(kernel().pinnedBytes, pinned, "every block freed");
});

test("mutated and truncated files: every window decodes as the twin, the windows stop where the twin stops (property)", () => {
  const pinned = kernel().pinnedBytes;
  fc.assert(
    fc.property(
      fc.array(recordArb, { minLength: 1, maxLength: 30 }), framingArb, fc.array(mutationArb, { minLength: 1, maxLength: 4 }), fc.integer({ min: 1, max: 8 }),
      (records, framing, ms, window) => {
        const image = mutate(encodeRecords(records, framing, BASE), ms);
        const got = windows(image, framing, window);
        if (framing === "delta") return;
        const whole = decodeRecordsReference(image, framing, BASE);
        assert.is(got.count, whole.count);
        assert.equal(got.stop, whole.stop);
      },
    ),
    { numRuns: 300 },
  );
  assert.is(kernel().pinnedBytes, pinned, "every block freed");
});

test("random junk read into the kernel decodes as the twin, window by window (property)", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), framingArb, fc.integer({ min: 1, max: 6 }), (image, framing, window) => {
      windows(image, framing, window);
    }),
    { numRuns: 300 },
  );
});

test.run();
