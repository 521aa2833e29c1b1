/**
 * State digest (SPEC section 5): SHA-256 over every entry, tombstones included, in
 * UTF-8 key order, each as
 *   u32 keyLen | key | u32 node | u64 seq | i64 timestamp | 0x00            (tombstone)
 *   u32 keyLen | key | u32 node | u64 seq | i64 timestamp | 0x01 | u32 valueLen | value
 * little-endian — byte for byte upstream wavekv 2.1's `StateDigest::compute`.
 *
 *   const d = new DigestBuilder(); d.add(keyBytes, entry); d.hex()
 *
 * Cost: one pass over the state. Entries are packed into a 64 KiB buffer and hashed a
 * chunk at a time: one native call per entry field would dominate at a million keys.
 */
import { createHash, type Hash } from "node:crypto";

const CHUNK = 64 * 1024;

export class DigestBuilder {
  readonly #hash: Hash = createHash("sha256");
  readonly #buf = new Uint8Array(CHUNK);
  readonly #view = new DataView(this.#buf.buffer);
  #len = 0;

  add(key: Uint8Array, node: number, seq: number, timestamp: number, value: Uint8Array | null): void {
    const fixed = 4 + 4 + 8 + 8 + 1 + 4;
    if (this.#len + fixed + key.length > CHUNK) this.#flush();
    const v = this.#view;
    let p = this.#len;
    v.setUint32(p, key.length, true); p += 4;
    this.#len = p;
    this.#bytes(key);
    p = this.#len;
    if (p + fixed > CHUNK) { this.#flush(); p = 0; }
    v.setUint32(p, node >>> 0, true); p += 4;
    // 64-bit fields as two halves: exact for |x| < 2^53 and no BigInt per entry.
    const seqHi = Math.floor(seq / 4294967296);
    v.setUint32(p, seq - seqHi * 4294967296, true); v.setUint32(p + 4, seqHi, true); p += 8;
    const tsHi = Math.floor(timestamp / 4294967296);
    v.setUint32(p, timestamp - tsHi * 4294967296, true); v.setInt32(p + 4, tsHi, true); p += 8;
    if (value === null) {
      this.#buf[p++] = 0;
      this.#len = p;
      return;
    }
    this.#buf[p++] = 1;
    v.setUint32(p, value.length, true); p += 4;
    this.#len = p;
    this.#bytes(value);
  }

  #bytes(b: Uint8Array): void {
    if (b.length > CHUNK - this.#len) {
      this.#flush();
      if (b.length > CHUNK) { this.#hash.update(b); return; }
    }
    this.#buf.set(b, this.#len);
    this.#len += b.length;
  }

  #flush(): void {
    if (this.#len > 0) this.#hash.update(this.#buf.subarray(0, this.#len));
    this.#len = 0;
  }

  hex(): string {
    this.#flush();
    return this.#hash.digest("hex");
  }
}
