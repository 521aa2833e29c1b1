// CRC-32: published vectors, streaming = one-shot, WASM = TS reference = zlib on random
// inputs around every size threshold of the kernel (single chain, m·256 split, 48 KiB rounds, JS chunks).
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { crc32 as zlibCrc32 } from "node:zlib";
import { crc32, crc32Combine, crc32Reference, crc32Spans, crc32SpansReference, crc32Wasm } from "../../src/codec/crc.js";

const text = (s: string) => new TextEncoder().encode(s);
const zlib = (b: Uint8Array, seed = 0) => zlibCrc32(b, seed) >>> 0;
const ALL = { crc32, crc32Reference, crc32Wasm };

function pseudoRandom(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    b[i] = x >>> 24;
  }
  return b;
}

test("published vectors, every implementation", () => {
  for (const [name, f] of Object.entries(ALL)) {
    assert.is(f(text("123456789")), 0xcbf43926, name);
    assert.is(f(new Uint8Array(0)), 0, name);
    assert.is(f(text("a")), 0xe8b7be43, name);
    assert.is(f(text("The quick brown fox jumps over the lazy dog")), 0x414fa339, name);
    assert.is(f(new Uint8Array(32)), 0x190a55ad, name); // 32 zero bytes (iSCSI test set, CRC-32/IEEE value)
    assert.is(f(new Uint8Array(32).fill(0xff)), 0xff6cab0b, name);
  }
});

test("sizes around every kernel threshold agree with zlib, with and without a seed", () => {
  const sizes = [1, 7, 8, 9, 63, 64, 65, 100, 255, 767, 768, 769, 1535, 1536, 4096, 49151, 49152, 49153, 98304 + 767,
    245759, 245760, 245761, 491520 + 5, 1 << 20];
  for (const n of sizes) {
    const b = pseudoRandom(n, n);
    const want = zlib(b);
    for (const [name, f] of Object.entries(ALL)) {
      assert.is(f(b), want, `${name} n=${n}`);
      assert.is(f(b, 0xdeadbeef), zlib(b, 0xdeadbeef), `${name} seeded n=${n}`);
    }
  }
});

test("WASM = reference = zlib on random buffers (property)", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 5000 }), fc.integer({ min: 0, max: 0xffffffff }), (b, seed) => {
      const want = zlib(b, seed);
      return crc32Wasm(b, seed) === want && crc32Reference(b, seed) === want && crc32(b, seed) === want;
    }),
    { numRuns: 300 },
  );
});

test("streaming in random chunks equals one-shot (property)", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 70000 }), fc.array(fc.nat(), { maxLength: 12 }), (b, cuts) => {
      const points = [...new Set(cuts.map((c) => c % (b.length + 1)))].sort((x, y) => x - y);
      const oneShot = crc32(b);
      for (const f of [crc32, crc32Reference, crc32Wasm]) {
        let c = 0, at = 0;
        for (const p of [...points, b.length]) {
          c = f(b.subarray(at, p), c);
          at = p;
        }
        if (c !== oneShot) return false;
      }
      return true;
    }),
    { numRuns: 60 },
  );
});

test("crc32Combine joins two CRCs without the data (property)", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 3000 }), fc.uint8Array({ maxLength: 3000 }), (a, b) => {
      const ab = new Uint8Array(a.length + b.length);
      ab.set(a);
      ab.set(b, a.length);
      return crc32Combine(crc32(a), crc32(b), b.length) === zlib(ab);
    }),
    { numRuns: 200 },
  );
});

test("batched spans: four in lockstep = one by one = zlib", () => {
  const data = pseudoRandom(200_000, 3);
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(200_000), fc.nat(3000)), { maxLength: 40 }), (pairs) => {
      const spans = new Uint32Array(pairs.flatMap(([off, len]) => [off, Math.min(len, data.length - off)]));
      const got = crc32Spans(data, spans);
      const ref = crc32SpansReference(data, spans);
      assert.equal([...got], [...ref]);
      for (let i = 0; i < pairs.length; i++) assert.is(got[i], zlib(data.subarray(spans[2 * i]!, spans[2 * i]! + spans[2 * i + 1]!)));
    }),
    { numRuns: 100 },
  );
  assert.throws(() => crc32Spans(data, new Uint32Array([199_999, 2])), RangeError);
});

test("a 64 MiB buffer (three chains, many JS chunks) matches zlib", () => {
  const b = pseudoRandom(64 * 1024 * 1024 + 13, 99);
  assert.is(crc32Wasm(b), zlib(b));
  assert.is(crc32(b), zlib(b));
});

test.run();
