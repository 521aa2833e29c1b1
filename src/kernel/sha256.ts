/**
 * SHA-256 and HMAC-SHA256 with the compression rounds in the WASM kernel (assembly/sha256.ts):
 * the browser bundle's hash (scripts/build-browser.mjs resolves src/core/sha256.ts to this
 * module there), the same API and bytes as src/core/sha256.ts, its TS twin, which stays the
 * hash from source and the oracle of test/kernel/sha256.ts. The state, the partial block
 * and the padding stay in JS (Sha256Stream: any number of hashers at once); whole blocks
 * are copied into R_CRC after the state and compressed there, up to CHUNK bytes a call.
 * Needs the kernel: in the bundle that loads wavekv.wasm, hashing works after `init()`.
 */
import { R_CRC } from "./abi.js";
import { kernel } from "./instance.js";
import { Sha256Stream, hmacWith, toHex } from "../core/sha256.js";

export { toHex };

/** Bytes compressed per kernel call: the copy stays in cache (as crc32's chunks do). */
const CHUNK = 64 * 1024;

/** SHA-256 with the rounds in the kernel; message handling shared with the twin (Sha256Stream). */
export class Sha256 extends Sha256Stream {
  protected compressBlocks(h: Int32Array, d: DataView, start: number, end: number): void {
    const k = kernel();
    for (let off = start; off < end; off += CHUNK) {
      const len = Math.min(CHUNK, end - off);
      const p = k.reserve(R_CRC, 32 + len);
      k.u32.set(h, p >>> 2);
      k.u8.set(new Uint8Array(d.buffer, d.byteOffset + off, len), p + 32);
      k.exports.sha256Blocks(p, p + 32, len >>> 6);
      h.set(k.u32.subarray(p >>> 2, (p >>> 2) + 8));
    }
  }
}

export function sha256(data: Uint8Array): Uint8Array {
  return new Sha256().update(data).digest();
}

/** HMAC-SHA256 (RFC 2104); a string key is its UTF-8 bytes, as node:crypto's createHmac takes it. */
export function hmacSha256(key: string | Uint8Array, message: Uint8Array): Uint8Array {
  return hmacWith(Sha256, key, message);
}
