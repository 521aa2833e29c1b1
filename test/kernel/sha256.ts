// SHA-256 with its rounds in the kernel (src/kernel/sha256.ts + assembly/sha256.ts, the
// browser bundle's hash) against its TS twin (src/core/sha256.ts) and node:crypto: the same
// bytes for every length, chunking and key, two hashers interleaved, a digest through the
// digest builder; and the export refuses a range outside the kernel's regions.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createHash, createHmac } from "node:crypto";
import { Sha256, hmacSha256, sha256 } from "../../src/kernel/sha256.js";
import * as twin from "../../src/core/sha256.js";
import { kernel } from "../../src/kernel/instance.js";
import { REGIONS, R_CRC } from "../../src/kernel/abi.js";
import { DigestBuilder, nodeSha256, useSha256 } from "../../src/state/digest.js";
import { isWaveKVError } from "../../src/core/errors.js";
import { seededRandom } from "../../src/transport/memory.js";

const seed = Number(process.env.SEED ?? Date.now() % 1_000_000);
console.log(`kernel sha256: seed ${seed} (SEED=${seed} reproduces)`);
const random = seededRandom(seed);
const int = (n: number) => Math.floor(random() * n);
const bytes = (n: number) => Uint8Array.from({ length: n }, () => int(256));
const hex = twin.toHex;
const native = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const ascii = (s: string) => new TextEncoder().encode(s);

test("published vectors (FIPS 180-2 examples)", () => {
  assert.is(new Sha256().hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert.is(hex(sha256(ascii("abc"))), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert.is(hex(sha256(ascii("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const h = new Sha256();
  const chunk = new Uint8Array(1000).fill(0x61);
  for (let i = 0; i < 1000; i++) h.update(chunk); // one million 'a'
  assert.is(h.hex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
});

test("every length around the padding boundaries equals the TS twin and node:crypto", () => {
  for (let n = 0; n <= 260; n++) {
    const b = bytes(n);
    const k = hex(sha256(b));
    assert.is(k, hex(twin.sha256(b)), `length ${n}`);
    assert.is(k, native(b), `length ${n}`);
  }
});

test("random chunkings (empty chunks, chunks over the kernel's 64 KiB per call) give the one-shot hash", () => {
  for (let round = 0; round < 40; round++) {
    const b = bytes(int(3) === 0 ? 64 * 1024 * 2 + int(5000) : int(3000));
    const h = new Sha256();
    const t = new twin.Sha256();
    for (let at = 0; at < b.length;) {
      const step = int(4) === 0 ? 0 : 1 + int(int(2) === 0 ? 70 : 70_000);
      h.update(b.subarray(at, at + step));
      t.update(b.subarray(at, at + step));
      at += step;
    }
    const k = h.hex();
    assert.is(k, t.hex(), `round ${round}: ${b.length} bytes`);
    assert.is(k, native(b), `round ${round}`);
  }
});

test("two hashers interleaved keep their own state; reset() starts over; digest() finalizes", () => {
  const a = bytes(1000), b = bytes(777);
  const ha = new Sha256(), hb = new Sha256();
  for (let i = 0; i < 1000; i += 100) {
    ha.update(a.subarray(i, i + 100));
    if (i < 777) hb.update(b.subarray(i, Math.min(i + 100, 777)));
  }
  assert.is(ha.hex(), native(a));
  assert.is(hb.hex(), native(b));
  assert.is(ha.reset().update(b).hex(), native(b));
});

test("HMAC-SHA256 equals the twin and node:crypto: RFC 4231 case 1, string keys, keys over a block", () => {
  const key = new Uint8Array(20).fill(0x0b);
  assert.is(hex(hmacSha256(key, ascii("Hi There"))), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  for (let i = 0; i < 60; i++) {
    const k = int(3) === 0 ? "secret-" + i : bytes(int(200));
    const m = bytes(int(500));
    const mac = hex(hmacSha256(k, m));
    assert.is(mac, hex(twin.hmacSha256(k, m)), `case ${i}`);
    assert.is(mac, createHmac("sha256", k).update(m).digest("hex"), `case ${i}`);
  }
});

test("the digest builder gives the same digest with the kernel's hash as with the twin", () => {
  const entries = Array.from({ length: 300 }, (_, i) => ({ key: `k/${i}`, value: i % 7 === 0 ? null : bytes(int(200)), node: i % 5, seq: i + 1, timestamp: 1_700_000_000_000 + i }));
  const run = (factory: () => { update(b: Uint8Array): unknown; hex(): string }) => {
    useSha256(factory);
    const d = new DigestBuilder();
    for (const e of entries) d.add(e.key, e.node, e.seq, e.timestamp, e.value);
    return d.hex();
  };
  try {
    const k = run(() => new Sha256());
    assert.is(k, run(() => new twin.Sha256()));
    assert.is(k, run(nodeSha256(createHash)));
  } finally {
    useSha256(nodeSha256(createHash)); // what Node and Bun use by default
  }
});

test("sha256Blocks refuses a state or block range outside every region (INVALID_ARGUMENT), touching nothing", () => {
  const k = kernel();
  const p = k.reserve(R_CRC, 32 + 64);
  const before = k.u8.slice(p, p + 96);
  const cap = k.u32[(REGIONS >>> 2) + R_CRC * 2 + 1]!; // the block's capacity, the bound the kernel checks
  for (const [state, data, blocks] of [[p, p + 32, Math.ceil(cap / 64) + 1], [p + cap - 16, p + 32, 1], [0xfffffff0, p + 32, 1], [p, 0xfffffff0, 1], [p, p + 32, 0x7ffffff]]) {
    let err: unknown;
    try { k.exports.sha256Blocks(state!, data!, blocks!); } catch (e) { err = e; }
    assert.ok(isWaveKVError(err, "INVALID_ARGUMENT"), `(${state}, ${data}, ${blocks}): ${String(err)}`);
  }
  assert.equal(k.u8.slice(p, p + 96), before);
});

test.run();
