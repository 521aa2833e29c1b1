// Fuzz: random, mutated and hostile envelopes through decodeEnvelope and
// SyncManager.handle. Only BAD_ENVELOPE (or a clean UUID_MISMATCH refusal) may come out,
// a refused envelope changes nothing, and no claimed length is trusted.
//   WAVEKV_FUZZ=1000000 node --import tsx test/sync/fuzz-envelope.ts   (default 100 000 per target)
//   WAVEKV_FUZZ_SEED=123 ...                                         (default: random, printed)
import { test } from "uvu";
import * as assert from "uvu/assert";
import { decodeEnvelope, encodeEnvelope, encodedEntriesOf, ENVELOPE_VERSION, ENVELOPE_VERSION_DELTA, MAX_SEQ, type Envelope } from "../../src/sync/envelope.js";
import { encodeRecords } from "../../src/codec/records.js";
import { RecordKind } from "../../src/core/record.js";
import { entryFaults } from "../helpers/faults.js";
import { crc32 } from "../../src/codec/crc.js";
import { WaveKVError } from "../../src/core/errors.js";
import { seededRandom } from "../../src/transport/memory.js";
import { Node } from "../../src/node/node.js";
import { SyncManager } from "../../src/node/manager.js";
import type { Entry } from "../../src/core/types.js";

const N = Number(process.env.WAVEKV_FUZZ ?? 100_000);
// Refusals are the common case here; a full stack per WaveKVError would dominate the run.
Error.stackTraceLimit = 2;
const SEED = Number(process.env.WAVEKV_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const where = `(seed ${SEED}; rerun with WAVEKV_FUZZ_SEED=${SEED})`;

function reseal(b: Uint8Array): Uint8Array {
  if (b.length < 4) return b;
  const out = b.slice();
  new DataView(out.buffer).setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)) >>> 0, true);
  return out;
}

class Gen {
  readonly r: () => number;
  constructor(seed: number) { this.r = seededRandom(seed); }
  int(n: number): number { return Math.floor(this.r() * n); }
  pick<T>(xs: readonly T[]): T { return xs[this.int(xs.length)]!; }
  chance(p: number): boolean { return this.r() < p; }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  uuid(): string {
    const h = [...this.bytes(16)].map((x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
  /** Interesting numbers: small, boundaries of varint widths, u32 and 2^53 edges. */
  num(max = Number.MAX_SAFE_INTEGER): number {
    const edges = [0, 1, 127, 128, 16383, 16384, 2 ** 21, 2 ** 31 - 1, 2 ** 32 - 1, 2 ** 32, 2 ** 52, Number.MAX_SAFE_INTEGER];
    const v = this.chance(0.5) ? this.int(1000) : this.pick(edges);
    return Math.min(v, max);
  }
  entry(): Entry {
    const key = this.pick(["", "k", "user/1", "ключ", "🙂", `key/${this.int(100)}`]);
    const value = this.chance(0.2) ? null : this.bytes(this.int(40));
    // Timestamps and seqs sometimes at the edges of what the wire carries (refused per entry, not per envelope).
    const timestamp = this.chance(0.9) ? 1_764_000_000_000 + this.int(100_000) - 50_000 : this.pick([-Number.MAX_SAFE_INTEGER, -(2 ** 52) - 1, Number.MAX_SAFE_INTEGER]);
    const e: Entry = { key, value, timestamp, node: this.pick([1, 2, 3, this.num(2 ** 32 - 1)]), seq: this.chance(0.95) ? 1 + this.num(2 ** 40) : this.pick([0, MAX_SEQ, MAX_SEQ + 1, Number.MAX_SAFE_INTEGER]) };
    return this.withExpiry(e);
  }
  /** Sometimes an expiring value (record kind 5), its expiry after its stamp as the encoder requires. */
  withExpiry(e: Entry): Entry {
    if (e.value === null || Math.abs(e.timestamp) > 2 ** 52 || !this.chance(0.25)) return e;
    return { ...e, expiresAt: e.timestamp + 1 + this.num(2 ** 30) };
  }
  /** One origin's entries with rising seqs and close timestamps, as a responder sends them delta-coded. */
  run(): Entry[] {
    const first = this.entry();
    return Array.from({ length: this.int(8) }, (_, i) => this.withExpiry({ ...this.entry(), node: first.node, seq: first.seq + i * (1 + this.int(this.pick([2, 20]))), timestamp: Math.min(first.timestamp + i, Number.MAX_SAFE_INTEGER), expiresAt: undefined }));
  }
  envelope(): Envelope {
    const acks = new Map<number, number>();
    for (let i = this.int(5); i > 0; i--) acks.set(this.num(2 ** 32 - 1), this.num(MAX_SEQ));
    const env: Envelope = {
      // Half of them with delta-coded bodies (version 2), often in runs that use the short seq steps.
      version: this.chance(0.5) ? ENVELOPE_VERSION : ENVELOPE_VERSION_DELTA,
      senderId: this.pick([2, 3, 4, this.num(2 ** 32 - 1)]),
      senderUuid: this.uuid(),
      acks,
      entries: this.chance(0.5) ? this.run() : Array.from({ length: this.int(6) }, () => this.entry()),
    };
    if (this.chance(0.5)) env.features = this.int(4);
    if (this.chance(0.3)) env.digest = [...this.bytes(32)].map((x) => x.toString(16).padStart(2, "0")).join("");
    if (this.chance(0.3)) env.page = { last: this.chance(0.5) };
    if (this.chance(0.2)) env.resumeFrom = { node: this.num(2 ** 32 - 1), seq: this.num(MAX_SEQ) };
    if (this.chance(0.1)) env.resetAcks = true;
    if (this.chance(0.2)) env.pushOnly = true;
    return env;
  }
  /** One mutation of a valid encoding. */
  mutate(b: Uint8Array): Uint8Array {
    const out = Array.from(b);
    const edits = 1 + this.int(4);
    for (let e = 0; e < edits; e++) {
      const at = this.int(out.length + 1);
      switch (this.int(7)) {
        case 0: out[at % out.length] = this.int(256); break;
        case 1: out[at % out.length]! ^= 1 << this.int(8); break;
        case 2: out.splice(at, 0, ...this.bytes(1 + this.int(8))); break;
        case 3: out.splice(at, 1 + this.int(8)); break;
        case 4: out.length = Math.min(out.length, at); break;
        case 5: out.splice(at, 0, ...new Array<number>(1 + this.int(10)).fill(0xff)); break;
        default: out[at % out.length] = this.pick([0x00, 0x7f, 0x80, 0xff]);
      }
    }
    return new Uint8Array(out);
  }
  /** Any input: random junk, a random body behind a valid header, or a mutated valid envelope. */
  input(): { bytes: Uint8Array; kind: string } {
    const k = this.int(10);
    if (k === 0) return { bytes: this.bytes(this.int(120)), kind: "random" };
    if (k <= 2) {
      const body = new Uint8Array([0x57, 0x4b, 0x56, 0x45, this.pick([1, 2]), this.int(128), ...this.bytes(this.int(100)), 0, 0, 0, 0]);
      return { bytes: reseal(body), kind: "random body, valid header and crc" };
    }
    if (k <= 3) return { bytes: bomb(this), kind: "claim bomb" };
    const valid = encodeEnvelope(this.envelope());
    if (k === 4) return { bytes: valid, kind: "valid" };
    const m = this.mutate(valid);
    return this.chance(0.6) ? { bytes: reseal(m), kind: "mutated, resealed" } : { bytes: m, kind: "mutated" };
  }
}

function varu(v: number): number[] {
  const out: number[] = [];
  while (v >= 0x80) { out.push((v % 128) | 0x80); v = Math.floor(v / 128); }
  out.push(v);
  return out;
}

/** A small envelope whose counts or lengths claim far more than it holds. */
function bomb(g: Gen): Uint8Array {
  const huge = g.pick([2 ** 31 - 1, 2 ** 32 - 1, 2 ** 40, Number.MAX_SAFE_INTEGER]);
  const delta = g.chance(0.5);
  const head = [0x57, 0x4b, 0x56, 0x45, delta ? 2 : 1];
  const uuid = Array.from(g.bytes(16));
  const body = encodeRecords([{ kind: RecordKind.Value, key: "k", value: new Uint8Array([1]), timestamp: 0, node: 1, seq: 1 }], delta ? "delta" : "bare", 0);
  // bare: kind, node, seq, ts, keyLen…; delta: head (kind 1 | node follows | seq step 1), node, ts, keyLen…
  const fields = delta ? [0x19, 1, 0] : [1, 1, 1, 0];
  const hugeKey = [...fields, ...varu(huge)];
  const parts: number[][] = [
    [...head, 0, 2, ...uuid, ...varu(huge), 1, 1],
    [...head, 0, 2, ...uuid, 0, ...varu(huge), 0, ...body],
    [...head, 0x40, 2, ...uuid, 0, 1, 1, ...varu(huge), 0, 0],
    [...head, 0x40, 2, ...uuid, 0, ...varu(huge), 0, 0],
    [...head, 0, 2, ...uuid, 0, 1, 0, ...hugeKey],
    [...head, 0, 2, ...uuid, 0, 1, 0, ...fields, 1, 0x6b, ...varu(huge)],
  ];
  return reseal(new Uint8Array([...g.pick(parts), 0, 0, 0, 0]));
}

/** A refusal is clean when it is a WaveKVError of an allowed code raised by the validator itself, not a wrapped crash. */
function checkRefusal(e: unknown, allowed: string[], bytes: Uint8Array, kind: string): void {
  const what = `${kind} input ${Buffer.from(bytes).toString("hex")} ${where}`;
  if (!(e instanceof WaveKVError)) throw new Error(`non-WaveKVError escaped: ${String(e)} for ${what}`, { cause: e });
  if (!allowed.includes(e.code)) throw new Error(`unexpected code ${e.code} (${e.message}) for ${what}`);
  if (e.cause !== undefined) throw new Error(`an internal error was wrapped into ${e.code}: ${String(e.cause)} for ${what}`, { cause: e.cause });
}

test(`decodeEnvelope: ${N} random, mutated and hostile inputs yield an envelope or BAD_ENVELOPE ${where}`, () => {
  const g = new Gen(SEED);
  const counts: Record<string, [number, number]> = {};
  const memBefore = process.memoryUsage().arrayBuffers;
  let maxInput = 0;
  for (let i = 0; i < N; i++) {
    const { bytes, kind } = g.input();
    maxInput = Math.max(maxInput, bytes.length);
    const c = (counts[kind] ??= [0, 0]);
    let env: Envelope;
    try {
      env = decodeEnvelope(bytes);
    } catch (e) {
      checkRefusal(e, ["BAD_ENVELOPE"], bytes, kind);
      c[1]++;
      continue;
    }
    c[0]++;
    // Accepted input is fully usable: entries materialise, and (extensions aside) it re-encodes byte for byte.
    void env.entries.length;
    if ((bytes[5]! & 0x40) === 0) {
      const again = encodeEnvelope(env);
      if (Buffer.compare(Buffer.from(again), Buffer.from(bytes)) !== 0) throw new Error(`accepted ${kind} input does not re-encode to itself ${where}`);
    }
  }
  // Claims are checked before allocating: decoding ~100-byte inputs that claim 2^53 items
  // must leave no large buffer behind (a buffer sized by a claim would be gigabytes).
  const grown = process.memoryUsage().arrayBuffers - memBefore;
  assert.ok(grown < 64 << 20, `array buffers grew by ${grown} bytes (largest input ${maxInput})`);
  assert.ok(counts["valid"]![1] === 0, "every valid envelope decodes");
  assert.ok(counts["claim bomb"]![0] === 0, "no claim bomb is accepted");
  assert.ok((counts["mutated, resealed"]?.[0] ?? 0) > 0, "the mutator reaches acceptance sometimes (it explores the parser, not just the CRC)");
  console.log(`  decode: ${JSON.stringify(counts)} [accepted, refused] ${where}`);
});

test(`SyncManager.handle: ${N} inputs; a refusal is BAD_ENVELOPE or UUID_MISMATCH and changes nothing ${where}`, async () => {
  const g = new Gen(SEED ^ 0x5eed);
  const node = await Node.open({ id: 1, onWarning: () => undefined, clock: () => 1_764_000_000_000 });
  const sync = new SyncManager(node, { request: () => Promise.reject(new Error("no network")) }, { onWarning: () => undefined });
  // Known identities, so that some inputs meet the uuid check.
  const known = [2, 3, 4].map((id) => ({ id, uuid: g.uuid() }));
  for (const k of known) await sync.handle(encodeEnvelope({ version: 1, senderId: k.id, senderUuid: k.uuid, acks: new Map(), entries: [] }));
  let accepted = 0, refused = 0, uuidRefused = 0;
  for (let i = 0; i < N; i++) {
    let { bytes, kind } = g.input();
    if (kind === "valid") {
      // A valid envelope from a known id, with either its uuid or an impostor's.
      const env = g.envelope();
      // Few distinct senders: every accepted one becomes a peer (auto-discovery).
      const k = g.pick(known);
      env.senderId = k.id;
      env.senderUuid = g.chance(0.7) ? k.uuid : g.uuid();
      bytes = encodeEnvelope(env);
    }
    const before = node.digest();
    try {
      const response = await sync.handle(bytes);
      accepted++;
      decodeEnvelope(response); // the answer is itself a valid envelope
    } catch (e) {
      checkRefusal(e, ["BAD_ENVELOPE", "UUID_MISMATCH", "TOO_MANY_PEERS"], bytes, kind);
      if ((e as WaveKVError).code === "UUID_MISMATCH") uuidRefused++;
      refused++;
      // Never a partial merge: a refused envelope leaves the state as it was (any merged
      // entry changes the digest: a merge happens only when the entry is newer).
      if (node.digest() !== before) {
        throw new Error(`a refused ${kind} envelope changed the node ${where}`);
      }
    }
  }
  assert.ok(accepted > 0 && refused > 0);
  assert.ok(uuidRefused > 0, "the uuid check was exercised");
  console.log(`  handle: ${accepted} accepted, ${refused} refused (${uuidRefused} uuid mismatches); ${node.status().keys} keys merged ${where}`);
  await node.close();
});

/** Where the entry bodies of an encoded envelope start (they run up to the CRC). */
function bodiesStart(bytes: Uint8Array): number {
  return bytes.length - 4 - encodedEntriesOf(decodeEnvelope(bytes)).bytes.length;
}

test(`version 2: ${N / 10} mutations inside the delta-coded bodies; decode is all or nothing, a merge is never partial ${where}`, async () => {
  const g = new Gen(SEED ^ 0xde17a);
  const node = await Node.open({ id: 1, onWarning: () => undefined, clock: () => 1_764_000_000_000 });
  const sync = new SyncManager(node, { request: () => Promise.reject(new Error("no network")) }, { onWarning: () => undefined, mergeSliceEntries: 2 });
  const sender = { id: 2, uuid: g.uuid() };
  let accepted = 0, refused = 0, entryRefusals = 0;
  for (let i = 0; i < N / 10; i++) {
    const env = g.envelope();
    Object.assign(env, { version: ENVELOPE_VERSION_DELTA, senderId: sender.id, senderUuid: sender.uuid, entries: [...g.run(), ...g.run()], page: undefined, resumeFrom: undefined, resetAcks: undefined, repairBuckets: undefined });
    if (env.entries.length === 0) continue;
    const valid = encodeEnvelope(env);
    const start = bodiesStart(valid);
    // Edit only the bodies (head bytes, seq steps, timestamps, lengths), then reseal.
    const bodies = g.mutate(valid.subarray(start, valid.length - 4));
    const bytes = reseal(new Uint8Array([...valid.subarray(0, start), ...bodies, 0, 0, 0, 0]));
    let decoded: Envelope;
    try {
      decoded = decodeEnvelope(bytes);
    } catch (e) {
      checkRefusal(e, ["BAD_ENVELOPE"], bytes, "v2 body mutation");
      refused++;
      const before = node.digest();
      try { await sync.handle(bytes); } catch (e2) { checkRefusal(e2, ["BAD_ENVELOPE"], bytes, "v2 body mutation"); }
      if (node.digest() !== before) throw new Error(`a refused v2 envelope changed the node ${where}`);
      continue;
    }
    accepted++;
    void decoded.entries.length;
    assert.equal([...encodeEnvelope(decoded)], [...bytes], `an accepted v2 envelope re-encodes to itself ${where}`);
    const bad = entryFaults(decoded).filter((f) => f !== undefined).length;
    const rejectedBefore = node.status().entriesRejected;
    await sync.handle(bytes);
    // Entries out of range are refused one by one, counted, never the whole envelope.
    const rejected = node.status().entriesRejected - rejectedBefore;
    if (rejected < bad) throw new Error(`${bad} out-of-range entries, ${rejected} counted as refused ${where}`);
    entryRefusals += bad;
  }
  assert.ok(accepted > 0 && refused > 0, `accepted ${accepted}, refused ${refused}`);
  console.log(`  v2 bodies: ${accepted} accepted (${entryRefusals} entries refused one by one), ${refused} refused ${where}`);
  await node.close();
});

test.run();
