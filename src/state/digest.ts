/**
 * State digest (SPEC section 5): SHA-256 over every entry, tombstones included, in
 * UTF-8 key order, each as
 *   u32 keyLen | key | u32 node | u64 seq | i64 timestamp | 0x00            (tombstone)
 *   u32 keyLen | key | u32 node | u64 seq | i64 timestamp | 0x01 | u32 valueLen | value
 * little-endian — byte for byte upstream wavekv 2.1's `StateDigest::compute`. An entry
 * with an expiry (record kind 5, which upstream has not) hashes, expired or not, as
 *   u32 keyLen | key | u32 node | u64 seq | i64 timestamp | 0x02 | i64 expiresAt | u32 valueLen | value
 * (docs/FORMAT.md §1.2): a state without expiring entries digests as upstream's.
 *
 *   const d = new DigestBuilder(); d.add(keyBytes, node, seq, timestamp, value); d.hex()
 *
 * Cost: one pass over the state. Entries are packed into a 64 KiB buffer and hashed a
 * chunk at a time: one native call per entry field would dominate at a million keys.
 *
 * The hash is pluggable and this module imports no `node:` module, so the browser entry
 * can bundle it: Node and Bun get node:crypto's native SHA-256 (src/index.ts registers
 * it; `process.getBuiltinModule` finds it too when a module imports src/node/node.ts
 * directly), every other runtime the pure-TS src/core/sha256.ts — about 10x slower
 * (numbers in src/core/sha256.ts), which matters only for a state of many MB.
 *
 *   useSha256(() => myIncrementalSha256());   // any { update(bytes), hex() }
 *
 * `PerVersion` caches a replica's two whole-state hashes (this digest and the kernel's
 * range summary) by state version: equal versions mean equal state.
 */
import type { createHash as CreateHash } from "node:crypto";
import { Sha256 } from "../core/sha256.js";
import type { Entry } from "../core/types.js";

const CHUNK = 64 * 1024;
const encoder = new TextEncoder();

/** What the digest needs from a SHA-256: incremental update, then the hex digest once. */
export interface Sha256Hasher {
  update(bytes: Uint8Array): unknown;
  hex(): string;
}

export type Sha256Factory = () => Sha256Hasher;

/** Adapts node:crypto's (or Bun's compatible) `createHash`. */
export function nodeSha256(createHash: typeof CreateHash): Sha256Factory {
  return () => {
    const h = createHash("sha256");
    return { update: (b: Uint8Array) => h.update(b), hex: () => h.digest("hex") };
  };
}

/**
 * Node >= 20.16 and Bun hand out builtins synchronously through
 * `process.getBuiltinModule`: native speed with no static `node:` import for a browser
 * bundler to trip on. Elsewhere (browsers, workers, older Node) the pure-TS hash.
 */
function detectSha256(): Sha256Factory {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const crypto = proc?.getBuiltinModule?.("node:crypto") as { createHash?: typeof CreateHash } | undefined;
  return crypto?.createHash ? nodeSha256(crypto.createHash) : () => new Sha256();
}

let factory: Sha256Factory = detectSha256();

/** Replaces the SHA-256 every later digest uses (all produce the same bytes; only speed differs). */
export function useSha256(next: Sha256Factory): void {
  factory = next;
}

export class DigestBuilder {
  readonly #hash: Sha256Hasher = factory();
  readonly #buf = new Uint8Array(CHUNK);
  readonly #view = new DataView(this.#buf.buffer);
  #len = 0;

  /**
   * `key` as a string is encoded straight into the chunk (no per-key allocation: a copy
   * of every key into its own Uint8Array dominated the digest at 100k keys).
   */
  add(key: Uint8Array | string, node: number, seq: number, timestamp: number, value: Uint8Array | null, expiresAt?: number): void {
    const fixed = 4 + 4 + 8 + 8 + 1 + 8 + 4;
    const v = this.#view;
    let p: number;
    if (typeof key === "string" && 4 + key.length * 3 + fixed <= CHUNK) {
      if (this.#len + 4 + key.length * 3 + fixed > CHUNK) this.#flush();
      const start = this.#len + 4;
      const written = encoder.encodeInto(key, this.#buf.subarray(start)).written;
      v.setUint32(this.#len, written, true);
      p = start + written;
    } else {
      const bytes = typeof key === "string" ? encoder.encode(key) : key;
      if (this.#len + fixed + bytes.length > CHUNK) this.#flush();
      p = this.#len;
      v.setUint32(p, bytes.length, true); p += 4;
      this.#len = p;
      this.#bytes(bytes);
      p = this.#len;
    }
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
    this.#buf[p++] = expiresAt === undefined ? 1 : 2;
    if (expiresAt !== undefined) {
      const hi = Math.floor(expiresAt / 4294967296);
      v.setUint32(p, expiresAt - hi * 4294967296, true); v.setInt32(p + 4, hi, true); p += 8;
    }
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
    return this.#hash.hex();
  }
}

/** The SPEC section 5 digest over `slots` (key order), each entry read by `entryAt`. */
export function digestOf(slots: readonly number[], entryAt: (slot: number) => Entry): string {
  const d = new DigestBuilder();
  for (const slot of slots) {
    const e = entryAt(slot);
    d.add(e.key, e.node, e.seq, e.timestamp, e.value, e.expiresAt);
  }
  return d.hex();
}

/**
 * A value of the whole state (the digest, the range summary) computed once per state
 * version: a status() poll or a quiescent sync round costs nothing after the first.
 */
export class PerVersion<T> {
  #version = -1;
  #value: T | undefined;

  get(version: number, compute: () => T): T {
    if (this.#version !== version) {
      this.#value = compute();
      this.#version = version;
    }
    return this.#value!;
  }
}
