// Shared encodings (src/core/encoding.ts): varints, zigzag and 64-bit halves at their
// boundaries and against BigInt oracles; UTF-8 writers and readers against TextEncoder /
// TextDecoder, lone surrogates, 4-byte sequences and invalid bytes.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import {
  TWO32, VAR_INVALID, VAR_TRUNCATED, ackHalves, clampU32, hi32, i64Halves, isUtf8, joinI64, joinU64, lo32, readUtf8, readVarU64, toBytes,
  unzigzagHi, unzigzagLo, utf8Length, varOut, varU64Size, varUintSize, writeUtf8, writeVarU64, writeVarUint, zigzagHi, zigzagLo,
} from "../../src/core/encoding.js";

const U64_MAX = (1n << 64n) - 1n;
const halvesOf = (v: bigint): [number, number] => [Number(v & 0xffffffffn), Number((v >> 32n) & 0xffffffffn)];
const bigOf = (lo: number, hi: number): bigint => (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
/** LEB128 of a u64, the slow obvious way. */
function leb(v: bigint): number[] {
  const out: number[] = [];
  for (; v >= 0x80n; v >>= 7n) out.push(Number(v & 0x7fn) | 0x80);
  out.push(Number(v));
  return out;
}

test("varint u64 round trips at the boundaries and matches LEB128", () => {
  const values = [0n, 1n, 0x7fn, 0x80n, 0x3fffn, 0x4000n, 0xfffffffn, 0x10000000n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 35n - 1n, 2n ** 35n,
    2n ** 53n - 1n, 2n ** 53n, 2n ** 56n, 2n ** 63n - 1n, 2n ** 63n, U64_MAX];
  for (const v of values) {
    const [lo, hi] = halvesOf(v);
    const out = new Uint8Array(12).fill(0xee);
    const end = writeVarU64(out, 1, lo, hi);
    assert.equal([...out.subarray(1, end)], leb(v), `bytes of ${v}`);
    assert.is(varU64Size(lo, hi), end - 1, `size of ${v}`);
    assert.is(out[end], 0xee, `nothing past the varint of ${v}`);
    assert.is(readVarU64(out, 1, end), end, `read end of ${v}`);
    assert.is(bigOf(varOut.lo, varOut.hi), v, `read value of ${v}`);
    assert.is(readVarU64(out, 1, end - 1), VAR_TRUNCATED, `truncated ${v}`);
  }
  assert.is(varU64Size(...halvesOf(U64_MAX)), 10);
});

test("readVarU64 refuses an 11-byte varint and a 10th byte past 2^64", () => {
  const eleven = Uint8Array.from([...Array(10).fill(0x80), 0x00]);
  assert.is(readVarU64(eleven, 0, eleven.length), VAR_INVALID);
  const over = Uint8Array.from([...Array(9).fill(0xff), 0x02]);
  assert.is(readVarU64(over, 0, over.length), VAR_INVALID);
  const max = Uint8Array.from([...Array(9).fill(0xff), 0x01]);
  assert.is(readVarU64(max, 0, max.length), 10);
  assert.is(bigOf(varOut.lo, varOut.hi), U64_MAX);
  // Non-minimal encodings are the record format's to accept.
  assert.is(readVarU64(Uint8Array.from([0x80, 0x00]), 0, 2), 2);
  assert.is(bigOf(varOut.lo, varOut.hi), 0n);
  assert.is(readVarU64(new Uint8Array(0), 0, 0), VAR_TRUNCATED);
});

test("varint u64 round trips any u64 (property)", () => {
  fc.assert(fc.property(fc.bigInt({ min: 0n, max: U64_MAX }), (v) => {
    const [lo, hi] = halvesOf(v);
    const out = new Uint8Array(10);
    const end = writeVarU64(out, 0, lo, hi);
    return end === varU64Size(lo, hi) && readVarU64(out, 0, end) === end && bigOf(varOut.lo, varOut.hi) === v;
  }), { numRuns: 5000 });
});

test("writeVarUint / varUintSize: numbers up to 2^53 − 1, as the envelope's division-based writer did", () => {
  const old = (v: number) => { const b: number[] = []; for (; v >= 0x80; v = Math.floor(v / 128)) b.push((v % 128) | 0x80); b.push(v); return b; };
  const check = (v: number) => {
    const out = new Uint8Array(10);
    const end = writeVarUint(out, 0, v);
    assert.equal([...out.subarray(0, end)], old(v), String(v));
    assert.is(varUintSize(v), end, String(v));
  };
  for (const v of [0, 127, 128, 2 ** 32 - 1, 2 ** 32, 2 ** 48, Number.MAX_SAFE_INTEGER]) check(v);
  fc.assert(fc.property(fc.maxSafeNat(), (v) => { check(v); }), { numRuns: 3000 });
});

test("zigzag halves: 0, −1, 1, −2 … ↦ 0, 1, 2, 3 … and back, for every i64", () => {
  const zz = (v: bigint) => (v >= 0n ? v * 2n : -v * 2n - 1n);
  const edges = [0n, -1n, 1n, -2n, 2n ** 31n, -(2n ** 31n), 2n ** 32n, -(2n ** 32n) - 1n, 2n ** 53n - 1n, -(2n ** 53n) + 1n, 2n ** 63n - 1n, -(2n ** 63n)];
  const check = (v: bigint) => {
    const [lo, hi] = halvesOf(BigInt.asUintN(64, v));
    const zlo = zigzagLo(lo, hi), zhi = zigzagHi(lo, hi);
    assert.is(bigOf(zlo, zhi), zz(v), `zigzag ${v}`);
    assert.is(BigInt.asIntN(64, bigOf(unzigzagLo(zlo, zhi), unzigzagHi(zlo, zhi))), v, `unzigzag ${v}`);
  };
  for (const v of edges) check(v);
  fc.assert(fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), (v) => { check(v); }), { numRuns: 3000 });
});

test("64-bit halves: lo32/hi32/join round trip within ±2^53; limits saturate", () => {
  for (const n of [0, 1, -1, 2 ** 32 - 1, 2 ** 32, -(2 ** 32), Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER]) {
    assert.is(joinI64(lo32(n), hi32(n)), n, `i64 ${n}`);
    assert.is(bigOf(lo32(n), hi32(n)), BigInt.asUintN(64, BigInt(n)), `bits of ${n}`);
    if (n >= 0) assert.is(joinU64(lo32(n), hi32(n)), n, `u64 ${n}`);
  }
  assert.is(TWO32, 2 ** 32);
  assert.equal(i64Halves(Infinity), [0xffffffff, 0x7fffffff]);
  assert.equal(i64Halves(-Infinity), [0, -0x80000000]);
  assert.equal(i64Halves(NaN), [0, -0x80000000]);
  assert.equal(i64Halves(-2), [0xfffffffe, -1]);
  assert.equal(ackHalves(2 ** 64), [0xffffffff, 0xffffffff]);
  assert.equal(ackHalves(-3), [0, 0]);
  assert.equal(ackHalves(NaN), [0, 0]);
  assert.equal(ackHalves(2 ** 32 + 5.7), [5, 1]);
  assert.is(clampU32(Infinity), 0xffffffff);
  assert.is(clampU32(-1), 0);
  assert.is(clampU32(NaN), 0);
  assert.is(clampU32(7.9), 7);
});

test("UTF-8: length, write and read agree with TextEncoder/TextDecoder (lone surrogates, 4-byte, ASCII fast paths)", () => {
  const enc = new TextEncoder(), dec = new TextDecoder();
  const strings = ["", "a", "key/0001", "é", "€", "😀", "a😀b", "\ud800", "\udc00x", "x\ud83d", "\ud83d\ude00\ud83d", "a".repeat(24) + "é", "é".repeat(40)];
  const check = (s: string) => {
    const want = enc.encode(s);
    assert.is(utf8Length(s), want.length, `length of ${JSON.stringify(s)}`);
    const out = new Uint8Array(2 + s.length * 3).fill(0xee);
    const end = writeUtf8(out, 2, s);
    assert.equal([...out.subarray(2, end)], [...want], `bytes of ${JSON.stringify(s)}`);
    assert.is(out[end] ?? 0xee, 0xee);
    assert.is(readUtf8(out, 2, end), dec.decode(want), `read of ${JSON.stringify(s)}`);
    assert.equal([...toBytes(s)], [...want]);
  };
  for (const s of strings) check(s);
  fc.assert(fc.property(fc.string({ unit: "binary", maxLength: 40 }), (s) => { check(s); }), { numRuns: 3000 });
  const bytes = Uint8Array.of(1, 2);
  assert.is(toBytes(bytes), bytes, "bytes pass through");
  assert.throws(() => toBytes(7 as unknown as string), TypeError);
});

test("readUtf8 replaces invalid bytes as TextDecoder does; isUtf8 refuses them", () => {
  const dec = new TextDecoder();
  const cases = [[0x80], [0xc0, 0x80], [0xc2], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xf0, 0x9f, 0x98, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xff], [0x61, 0xf0, 0x9f]];
  for (const c of cases) {
    const b = Uint8Array.from([0x41, ...c, 0x42]);
    assert.is(readUtf8(b, 0, b.length), dec.decode(b), String(c));
    assert.is(isUtf8(b, 0, b.length), (() => { try { new TextDecoder("utf-8", { fatal: true }).decode(b); return true; } catch { return false; } })(), String(c));
  }
  assert.ok(isUtf8(Uint8Array.of(0xf0, 0x9f, 0x98, 0x80), 0, 4), "4-byte sequence");
  assert.not.ok(isUtf8(Uint8Array.of(0xf0, 0x9f, 0x98, 0x80), 0, 3), "cut by `end`");
});

test.run();
