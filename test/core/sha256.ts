// Pure-TS SHA-256 and HMAC (src/core/sha256.ts) against node:crypto as the oracle, and the
// digest's pluggable hash (src/state/digest.ts): every implementation gives the same digest.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createHash, createHmac } from "node:crypto";
import { Sha256, hmacSha256, sha256, toHex } from "../../src/core/sha256.js";
import { DigestBuilder, nodeSha256, useSha256 } from "../../src/state/digest.js";
import { Node } from "../../src/node/node.js";
import { seededRandom } from "../../src/transport/memory.js";

const seed = Number(process.env.SEED ?? Date.now() % 1_000_000);
console.log(`sha256: seed ${seed} (SEED=${seed} reproduces)`);
const random = seededRandom(seed);
const int = (n: number) => Math.floor(random() * n);
const bytes = (n: number) => {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 4) {
    const r = (random() * 4294967296) >>> 0;
    out[i] = r; out[i + 1] = r >>> 8; out[i + 2] = r >>> 16; out[i + 3] = r >>> 24;
  }
  return out;
};
const native = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

test("published vectors (FIPS 180-2 examples)", () => {
  const ascii = (s: string) => new TextEncoder().encode(s);
  assert.is(new Sha256().hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert.is(toHex(sha256(ascii("abc"))), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert.is(toHex(sha256(ascii("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const h = new Sha256();
  const chunk = new Uint8Array(1000).fill(0x61);
  for (let i = 0; i < 1000; i++) h.update(chunk); // one million 'a'
  assert.is(h.hex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
});

test("every length around the padding boundaries equals node:crypto", () => {
  for (let n = 0; n <= 260; n++) {
    const b = bytes(n);
    assert.is(toHex(sha256(b)), native(b), `length ${n}`);
  }
});

test("random inputs in random chunkings equal node:crypto one-shot", () => {
  for (let round = 0; round < 200; round++) {
    const b = bytes(int(round < 190 ? 3000 : 100_000));
    const h = new Sha256();
    let p = 0;
    while (p < b.length) {
      const take = int(4) === 0 ? int(200) : int(b.length - p + 1); // empty chunks included
      h.update(b.subarray(p, p + take));
      p += take;
    }
    assert.is(h.hex(), native(b), `round ${round}, ${b.length} bytes`);
  }
});

test("reset() starts a new message; unaligned subarray views hash their own bytes", () => {
  const h = new Sha256();
  h.update(bytes(100)).hex();
  const b = bytes(777);
  assert.is(h.reset().update(b).hex(), native(b));
  const view = b.subarray(3, 700);
  assert.is(toHex(sha256(view)), native(view));
});

test("HMAC-SHA256 equals node:crypto createHmac: string and byte keys, short and over-block keys", () => {
  for (let round = 0; round < 300; round++) {
    const message = bytes(int(500));
    const keyBytes = bytes(int(3) === 0 ? 64 + int(200) : int(65));
    const keyText = "sécret-" + String(int(1e9)) + "🔑";
    assert.is(toHex(hmacSha256(keyBytes, message)), createHmac("sha256", keyBytes).update(message).digest("hex"), `bytes key round ${round}`);
    assert.is(toHex(hmacSha256(keyText, message)), createHmac("sha256", keyText).update(message).digest("hex"), `string key round ${round}`);
  }
});

test("the digest is the same with the pure-TS hash and with node:crypto", async () => {
  const node = await Node.open({ id: 1 });
  for (let i = 0; i < 500; i++) await node.put(`k/${int(1000)}`, bytes(int(10) === 0 ? 70_000 : int(300)));
  await node.delete("k/1");
  // A fresh builder per implementation, fed the same entries in key order.
  const build = () => {
    const d = new DigestBuilder();
    const utf8 = new TextEncoder();
    for (const e of node.scan("", { includeTombstones: true })) d.add(utf8.encode(e.key), e.node, e.seq, e.timestamp, e.value);
    return d.hex();
  };
  try {
    useSha256(() => new Sha256());
    const ts = build();
    useSha256(nodeSha256(createHash));
    assert.is(ts, build());
    assert.is(ts, node.digest());
  } finally {
    useSha256(nodeSha256(createHash));
    await node.close();
  }
});

test.run();
