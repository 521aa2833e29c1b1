// Sync envelope codec (src/sync/envelope.ts, docs/FORMAT.md section 3).
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import {
  ENCODED_ENTRIES, ENVELOPE_VERSION, ENVELOPE_VERSION_DELTA, Feature, MIN_ENVELOPE_BYTES, decodeEnvelope, encodeEnvelope, encodedEntriesOf,
  MAX_ENVELOPE_ENTRIES, MAX_SEQ, envelopeWithEncodedEntries, type Envelope,
} from "../../src/sync/envelope.js";
import { isUtf8 } from "../../src/core/encoding.js";
import { entryFaults } from "../helpers/faults.js";
import { encodeRecords } from "../../src/codec/records.js";
import { RecordKind, type Framing } from "../../src/core/record.js";
import { crc32 } from "../../src/codec/crc.js";
import { WaveKVError } from "../../src/core/errors.js";
import { MemoryNetwork } from "../../src/transport/memory.js";
import { Node } from "../../src/node/node.js";
import { SyncManager } from "../../src/node/manager.js";
import type { Entry } from "../../src/core/types.js";

const UUID = "0123abcd-4567-89ef-0123-456789abcdef";
const DIGEST = "ab".repeat(32);
const bytesOf = (s: string) => new TextEncoder().encode(s);

function sample(over: Partial<Envelope> = {}): Envelope {
  return {
    version: ENVELOPE_VERSION,
    senderId: 7,
    senderUuid: UUID,
    acks: new Map([[1, 42], [7, 3], [300, 2 ** 40]]),
    entries: [
      { key: "k", value: bytesOf("v"), timestamp: 1_700_000_000_000, node: 1, seq: 42 },
      { key: "gone", value: null, timestamp: 1_700_000_000_500, node: 7, seq: 3 },
      { key: "ключ", value: new Uint8Array(0), timestamp: 1_699_999_999_000, node: 300, seq: 2 ** 40 },
    ],
    digest: DIGEST,
    page: { last: false },
    resumeFrom: { node: 300, seq: 17 },
    resetAcks: true,
    ...over,
  };
}

/** Recompute the trailing CRC, so a test reaches the field checks behind it. */
function reseal(b: Uint8Array): Uint8Array {
  const out = b.slice();
  new DataView(out.buffer).setUint32(out.length - 4, crc32(out.subarray(0, out.length - 4)) >>> 0, true);
  return out;
}

/** The fields of an envelope as plain data (entries materialised), for deep equality. */
function plain(env: Envelope) {
  return {
    version: env.version, senderId: env.senderId, senderUuid: env.senderUuid, acks: [...env.acks].sort((a, b) => a[0] - b[0]),
    entries: env.entries.map((e) => ({ ...e, value: e.value === null ? null : [...e.value] })),
    digest: env.digest, page: env.page && { last: env.page.last }, resumeFrom: env.resumeFrom && { node: env.resumeFrom.node, seq: env.resumeFrom.seq }, resetAcks: env.resetAcks ?? false, pushOnly: env.pushOnly ?? false,
  };
}

function badEnvelope(bytes: Uint8Array, match?: RegExp): void {
  try {
    decodeEnvelope(bytes);
  } catch (e) {
    assert.instance(e, WaveKVError);
    assert.is((e as WaveKVError).code, "BAD_ENVELOPE", (e as Error).message);
    if (match) assert.match((e as Error).message, match);
    return;
  }
  assert.unreachable(`decoded ${bytes.length} bad bytes`);
}

/** LEB128 bytes of `v` (exact up to 2^53). */
function varu(v: number): number[] {
  const out: number[] = [];
  for (; v >= 0x80; v = Math.floor(v / 128)) out.push((v % 128) | 0x80);
  out.push(v);
  return out;
}

test("every field survives a round trip", () => {
  const env = sample();
  const back = decodeEnvelope(encodeEnvelope(env));
  assert.equal(plain(back), plain(env));
  const last = decodeEnvelope(encodeEnvelope(sample({ page: { last: true }, resumeFrom: undefined, resetAcks: undefined, pushOnly: true })));
  assert.equal(last.page, { last: true });
  assert.is(last.pushOnly, true);
  assert.not.ok("resumeFrom" in last, "absent optional fields stay absent");
  assert.not.ok("resetAcks" in last);
  assert.not.ok("digest" in decodeEnvelope(encodeEnvelope(sample({ digest: undefined }))));
});

test("the smallest envelope is exactly MIN_ENVELOPE_BYTES and holds nothing", () => {
  const bytes = encodeEnvelope({ version: 1, senderId: 0, senderUuid: UUID, acks: new Map(), entries: [] });
  assert.is(bytes.length, MIN_ENVELOPE_BYTES);
  assert.equal([...bytes.subarray(0, 6)], [0x57, 0x4b, 0x56, 0x45, 1, 0]);
  const env = decodeEnvelope(bytes);
  assert.equal(env.entries, []);
  assert.is(env.acks.size, 0);
  badEnvelope(bytes.subarray(0, MIN_ENVELOPE_BYTES - 1), /shorter/);
});

test("a uuid is 16 raw bytes and decodes to the canonical lowercase form", () => {
  const bytes = encodeEnvelope(sample({ senderUuid: UUID.toUpperCase() }));
  const at = 6 + 1; // magic+version+flags, senderId 7 is one byte
  assert.equal([...bytes.subarray(at, at + 16)], [0x01, 0x23, 0xab, 0xcd, 0x45, 0x67, 0x89, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
  assert.is(decodeEnvelope(bytes).senderUuid, UUID);
});

test("entries are materialised lazily, once, and reassigning them detaches the encoded form", () => {
  const env = decodeEnvelope(encodeEnvelope(sample()));
  const enc = (env as Envelope & { [ENCODED_ENTRIES]?: unknown })[ENCODED_ENTRIES];
  assert.ok(enc, "a decoded envelope carries its encoded entries");
  assert.is(encodedEntriesOf(env), enc, "and hands them out without re-encoding");
  assert.not.ok(Object.keys(env).includes(String(ENCODED_ENTRIES)));
  const first = env.entries;
  assert.is(env.entries, first, "materialised once");
  env.entries = first.slice(1);
  assert.is((env as Envelope & { [ENCODED_ENTRIES]?: unknown })[ENCODED_ENTRIES], undefined);
  assert.is(encodedEntriesOf(env).count, 2);
  assert.is(decodeEnvelope(encodeEnvelope(env)).entries.length, 2);
});

test("envelopeWithEncodedEntries writes the attached bytes verbatim", () => {
  const records = [{ kind: RecordKind.Value, key: "a", value: bytesOf("1"), timestamp: 1000, node: 2, seq: 5 }];
  const encoded = { bytes: encodeRecords(records, "bare", 1000), count: 1, base: 1000 };
  const env = envelopeWithEncodedEntries({ version: 1, senderId: 2, senderUuid: UUID, acks: new Map([[2, 5]]) }, encoded);
  const bytes = encodeEnvelope(env);
  // header: magic 4, version, flags, senderId, uuid 16, ackCount, (2,5), count, base zvar(1000) = 2 bytes
  const at = 4 + 1 + 1 + 1 + 16 + 1 + 2 + 1 + 2;
  assert.equal([...bytes.subarray(at, at + encoded.bytes.length)], [...encoded.bytes]);
  assert.is(bytes.length, at + encoded.bytes.length + 4);
  assert.equal(decodeEnvelope(bytes).entries, [{ key: "a", value: bytesOf("1"), timestamp: 1000, node: 2, seq: 5 }]);
  assert.equal({ ...env }.entries.length, 1, "spreading materialises entries into a plain envelope");
});

test("every truncation and every single-bit flip is BAD_ENVELOPE", () => {
  const bytes = encodeEnvelope(sample());
  for (let n = 0; n < bytes.length; n++) badEnvelope(bytes.subarray(0, n));
  for (let i = 0; i < bytes.length; i++) {
    for (let bit = 0; bit < 8; bit++) {
      const b = bytes.slice();
      b[i]! ^= 1 << bit;
      badEnvelope(b);
    }
  }
});

test("magic, version and checksum are checked with precise messages", () => {
  const bytes = encodeEnvelope(sample());
  const wrongMagic = bytes.slice(); wrongMagic[0] = 0x58;
  badEnvelope(wrongMagic, /magic/);
  const v3 = bytes.slice(); v3[4] = 3;
  badEnvelope(reseal(v3), /unsupported envelope version 3/);
  const flipped = bytes.slice(); flipped[10]! ^= 1;
  badEnvelope(flipped, /checksum/);
});

test("flags: unknown bits and LAST without PAGE are refused", () => {
  const bytes = encodeEnvelope(sample({ page: undefined, resumeFrom: undefined, digest: undefined, resetAcks: undefined }));
  const unknown = bytes.slice(); unknown[5] = 0x80;
  badEnvelope(reseal(unknown), /unknown flag/);
  const lastOnly = bytes.slice(); lastOnly[5] = 0x04;
  badEnvelope(reseal(lastOnly), /LAST flag without PAGE/);
});

/** Hand-assembles an envelope body (everything but the CRC) from byte pieces. */
function assemble(...parts: (number | number[] | Uint8Array)[]): Uint8Array {
  const flat: number[] = [];
  for (const p of parts) {
    if (typeof p === "number") flat.push(p);
    else flat.push(...p);
  }
  const out = new Uint8Array(flat.length + 4);
  out.set(flat);
  return reseal(out);
}
const HEAD = [0x57, 0x4b, 0x56, 0x45, 1];
const HEAD2 = [0x57, 0x4b, 0x56, 0x45, 2];
const UUID_BYTES = new Array<number>(16).fill(0x11);

test("hand-assembled envelopes: the minimal one decodes, each malformed field is refused", () => {
  const ok = assemble(HEAD, 0, 5, UUID_BYTES, 0, 0, 0);
  assert.is(decodeEnvelope(ok).senderId, 5);
  badEnvelope(assemble(HEAD, 0, [0x85, 0x00], UUID_BYTES, 0, 0, 0), /non-minimal varint/);
  badEnvelope(assemble(HEAD, 0, [0xff, 0xff, 0xff, 0xff, 0x1f], UUID_BYTES, 0, 0, 0), /not a uint32/);
  badEnvelope(assemble(HEAD, 0, 5, UUID_BYTES, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], 0, 0), /exceeds 2\^53|remain/);
  badEnvelope(assemble(HEAD, 0, 5, UUID_BYTES, [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], 0, 0), /longer than 8 bytes/);
  badEnvelope(assemble(HEAD, 0, 5, UUID_BYTES, [0xff, 0xff, 0x03], 0, 0), /ackCount 65535 exceeds/);
  badEnvelope(assemble(HEAD, 0, 5, UUID_BYTES, 2, 3, 1, 3, 1, 0, 0), /strictly ascending/);
  badEnvelope(assemble(HEAD, 0, 5, UUID_BYTES, 2, 4, 1, 3, 1, 0, 0), /strictly ascending/);
  badEnvelope(assemble(HEAD, 0, 5, UUID_BYTES, 0, [0xff, 0xff, 0x03], 0), /entryCount 65535 cannot fit/);
  badEnvelope(assemble(HEAD, 0, 5, UUID_BYTES, 0, 0, 0, 0x99), /trailing/);
  badEnvelope(assemble(HEAD, 0, 5, UUID_BYTES, 0, 0, 2), /non-zero base/);
  badEnvelope(assemble(HEAD, 0x01, 5, UUID_BYTES, 0, 0, 0), /digest|remain/);
  badEnvelope(assemble(HEAD, 0x08, 5, UUID_BYTES, 0, 0, 0), /./);
});

test("entries must parse exactly: count, kinds 0/1, no trailing bytes, exact numbers, UTF-8 keys", () => {
  const body = (kind: RecordKind, key: string | Uint8Array = "k", seq = 1, timestamp = 10) =>
    encodeRecords([{ kind, key, value: kind === RecordKind.Value ? bytesOf("v") : null, timestamp, node: 1, seq }], "bare", 0);
  const env = (count: number, ...bodies: Uint8Array[]) => assemble(HEAD, 0, 5, UUID_BYTES, 0, count, 0, ...bodies);
  assert.is(decodeEnvelope(env(1, body(RecordKind.Value))).entries[0]!.key, "k");
  assert.is(decodeEnvelope(env(2, body(RecordKind.Value), body(RecordKind.Tombstone))).entries[1]!.value, null);
  badEnvelope(env(2, body(RecordKind.Value, "a longer key")), /1 of 2/);
  badEnvelope(env(2, body(RecordKind.Value)), /cannot fit/);
  badEnvelope(env(1, body(RecordKind.Value), body(RecordKind.Value)), /2 of 1|limit/);
  badEnvelope(env(1, body(RecordKind.Value), new Uint8Array([7])), /malformed|torn/);
  for (const kind of [RecordKind.AddPeer, RecordKind.RemovePeer, RecordKind.SeqMark]) badEnvelope(env(1, body(kind)), /kind/);
  // Seqs and timestamps out of range decode (the envelope is well formed) and are refused
  // per entry at merge (entryFault): one such entry never costs the rest of the envelope.
  assert.is(entryFaults(decodeEnvelope(env(1, body(RecordKind.Value, "k", 2 ** 48))))[0], undefined);
  for (const seq of [0, 2 ** 48 + 1, 2 ** 53 - 1, 2 ** 53, 2 ** 60]) assert.match(entryFaults(decodeEnvelope(env(1, body(RecordKind.Value, "k", seq))))[0] ?? "", /seq outside/, `seq ${seq}`);
  for (const ts of [2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 32, -(2 ** 32), -1]) {
    const e = decodeEnvelope(env(1, body(RecordKind.Value, "k", 1, ts)));
    assert.is(e.entries[0]!.timestamp, ts, `timestamp ${ts}`);
    assert.is(entryFaults(e)[0], undefined);
  }
  for (const ts of [2 ** 53, -(2 ** 53), 2 ** 60]) assert.match(entryFaults(decodeEnvelope(env(1, body(RecordKind.Value, "k", 1, ts))))[0] ?? "", /timestamp beyond/, `timestamp ${ts}`);
  badEnvelope(env(1, body(RecordKind.Value, new Uint8Array([0x6b, 0xff]))), /UTF-8/);
  badEnvelope(env(1, body(RecordKind.Value, new Uint8Array([0xed, 0xa0, 0x80]))), /UTF-8/); // a surrogate
  badEnvelope(env(1, body(RecordKind.Value, new Uint8Array([0xc0, 0xaf]))), /UTF-8/); // overlong "/"
});

test("ingress range: acks and cursors above MAX_SEQ, and more than MAX_ENVELOPE_ENTRIES entries, are BAD_ENVELOPE", () => {
  const base = { version: 1, senderId: 2, senderUuid: UUID, entries: [] as Entry[] };
  assert.is(decodeEnvelope(encodeEnvelope({ ...base, acks: new Map([[1, MAX_SEQ]]) })).acks.get(1), MAX_SEQ);
  // What a hostile peer would send: assembled by hand (our encoder refuses to write it).
  const ackOf = (seq: number) => assemble(HEAD, 0, 2, UUID_BYTES, 1, 1, varu(seq), 0, 0);
  for (const seq of [MAX_SEQ + 1, 2 ** 53 - 1]) badEnvelope(ackOf(seq), /MAX_SEQ/);
  badEnvelope(assemble([...HEAD.slice(0, 5), 0x08], 2, UUID_BYTES, 0, 1, varu(2 ** 53 - 1), 0, 0), /resumeFrom.seq.*MAX_SEQ/);
  for (const seq of [MAX_SEQ + 1, 2 ** 53 - 1]) {
    try {
      encodeEnvelope({ ...base, acks: new Map([[1, seq]]) });
      assert.unreachable("encoded an ack above MAX_SEQ");
    } catch (e) {
      assert.is((e as WaveKVError).code, "INVALID_ARGUMENT");
    }
  }
  // The count is refused before anything is allocated for it.
  badEnvelope(assemble(HEAD, 0, 2, UUID_BYTES, 0, varu(MAX_ENVELOPE_ENTRIES + 1), 0, new Uint8Array(8)), /exceeds the 65536 entries/);
  const many = Array.from({ length: MAX_ENVELOPE_ENTRIES + 1 }, (_, i) => ({ key: `k${i}`, value: null, timestamp: 1, node: 1, seq: i + 1 }));
  try {
    encodeEnvelope({ ...base, acks: new Map(), entries: many });
    assert.unreachable("encoded too many entries");
  } catch (e) {
    assert.is((e as WaveKVError).code, "INVALID_ARGUMENT");
  }
});

test("timestamps: the encoder carries every exact timestamp (±(2^53 - 1)), bare and delta-coded, base included", () => {
  for (const version of [1, 2]) {
    for (const ts of [-(2 ** 52), -(2 ** 52) - 1, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 2 ** 52]) {
      const entries: Entry[] = [{ key: "a", value: bytesOf("v"), timestamp: ts, node: 1, seq: 1 }, { key: "b", value: null, timestamp: 1_764_000_000_000, node: 1, seq: 2 }];
      const bytes = encodeEnvelope({ version, senderId: 1, senderUuid: UUID, acks: new Map(), entries });
      const back = decodeEnvelope(bytes);
      assert.equal(back.entries.map((e) => e.timestamp), [ts, 1_764_000_000_000], `version ${version}, timestamp ${ts}`);
      assert.equal(entryFaults(back), [undefined, undefined]);
      assert.equal([...encodeEnvelope(back)], [...bytes]);
    }
  }
});

test("version 2: delta-coded bodies (FORMAT §1.1) round-trip, re-encode to themselves, and are smaller", () => {
  const env = sample({ version: ENVELOPE_VERSION_DELTA });
  const bytes = encodeEnvelope(env);
  assert.is(bytes[4], 2);
  const back = decodeEnvelope(bytes);
  assert.equal(plain(back), plain(env));
  assert.is(encodedEntriesOf(back).framing, "delta");
  assert.equal([...encodeEnvelope(back)], [...bytes]);
  // Attached entries decide the version byte; a spread (materialised) copy keeps version 2.
  assert.is(encodeEnvelope({ ...back })[4], 2);
  assert.is(encodeEnvelope(envelopeWithEncodedEntries({ ...sample(), version: 1 }, encodedEntriesOf(back)))[4], 2);
  const empty = encodeEnvelope({ version: 2, senderId: 0, senderUuid: UUID, acks: new Map(), entries: [] });
  assert.equal([empty[4], empty.length, decodeEnvelope(empty).version], [2, MIN_ENVELOPE_BYTES, 2]);
  assert.equal([...encodeEnvelope(decodeEnvelope(empty))], [...empty]);
  // One origin's run: 4 bytes of overhead an entry instead of ~8.
  const run: Entry[] = Array.from({ length: 1000 }, (_, i) => ({ key: `k${i}`, value: bytesOf("v"), timestamp: 1_764_000_000_000 + i, node: 3, seq: 20_000 + i }));
  const v1 = encodeEnvelope({ version: 1, senderId: 1, senderUuid: UUID, acks: new Map(), entries: run }).length;
  const v2 = encodeEnvelope({ version: 2, senderId: 1, senderUuid: UUID, acks: new Map(), entries: run }).length;
  assert.ok(v1 - v2 >= 4 * 1000, `bare ${v1} B, delta ${v2} B`);
});

test("version 2: hand-assembled bodies decode against the previous entry; each malformed one is refused", () => {
  // head 0x19: kind 1, node follows (1), seq step 1; ts +0; key "k"; value "v"
  // head 0x10: kind 0, same node, seq step 1; ts zvar(3) = 6; key "l"
  const two = [0x19, 1, 0, 1, 0x6b, 1, 0x76, 0x10, 6, 1, 0x6c];
  const env = (count: number, ...bodies: number[][]) => assemble(HEAD2, 0, 5, UUID_BYTES, 0, count, [0xd0, 0x0f], ...bodies);
  const back = decodeEnvelope(env(2, two));
  assert.is(back.version, 2);
  assert.equal(back.entries, [
    { key: "k", value: bytesOf("v"), timestamp: 1000, node: 1, seq: 1 },
    { key: "l", value: null, timestamp: 1003, node: 1, seq: 2 },
  ]);
  // The smallest delta body is 3 bytes (head, ts, keyLen): claims are checked against that.
  assert.is(decodeEnvelope(env(1, [0x10, 0, 0])).entries[0]!.seq, 1);
  badEnvelope(env(2, [0x10, 0, 0]), /entryCount 2 cannot fit in 3/);
  badEnvelope(env(1, two), /2 of 1|limit/);
  badEnvelope(env(2, [0x19, 1, 0, 1, 0x6b, 1, 0x76, 0x15, 0, 0]), /1 of 2 .*malformed/);
  for (const kind of [2, 3, 4]) badEnvelope(env(1, [0x18 | kind, 1, 0, 0]), /kind/);
  // Exact numbers are checked on the accumulated values, not on each step.
  const z52 = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]; // zvar(2^52) = varu(2^53)
  assert.equal(entryFaults(decodeEnvelope(env(2, [0x00, ...z52, 0, 0], [0x00, ...z52, 0, 0]))), ["seq outside 1..2^48", "seq outside 1..2^48"]);
  assert.equal(entryFaults(decodeEnvelope(assemble(HEAD2, 0, 5, UUID_BYTES, 0, 2, 0, [0x10, ...z52, 0], [0x10, ...z52, 0]))), [undefined, "timestamp beyond ±(2^53 - 1)"]);
  badEnvelope(env(1, [0x10, 0, 2, 0x6b, 0xff]), /UTF-8/);
  // The same bodies under version 1 are read as bare bodies: a different (here invalid) meaning.
  badEnvelope(assemble(HEAD, 0, 5, UUID_BYTES, 0, 2, [0xd0, 0x0f], two));
});

/** One sync round of `a` pulling from `b` over encoded bytes, every page; returns the bytes seen. */
function round(a: Node, b: Node): { requests: Uint8Array[]; responses: Uint8Array[] } {
  const requests: Uint8Array[] = [], responses: Uint8Array[] = [];
  for (;;) {
    const req = encodeEnvelope(a.prepareSync(b.id));
    const resp = encodeEnvelope(b.handleEnvelope(decodeEnvelope(req)));
    requests.push(req);
    responses.push(resp);
    if (!a.applyEnvelope(decodeEnvelope(resp)).more) return { requests, responses };
  }
}

test("negotiation: delta bodies only when the requester advertised them and the responder has them (4 combinations)", async () => {
  const sizes = new Map<string, number>();
  for (const reqNew of [false, true]) {
    for (const respNew of [false, true]) {
      const name = `requester ${reqNew ? "new" : "old"}, responder ${respNew ? "new" : "old"}`;
      // An "old" build neither advertises nor answers with delta bodies (deltaBodies: false).
      const a = await Node.open({ id: 1, peers: [2], sync: { deltaBodies: reqNew, maxDeltaEntries: 150 } });
      const b = await Node.open({ id: 2, peers: [1], sync: { deltaBodies: respNew, maxDeltaEntries: 150 } });
      for (let i = 0; i < 400; i++) await b.put(`key/${i}`, `value ${i}`.padEnd(40, "."));
      for (let i = 0; i < 50; i++) await a.put(`mine/${i}`, `a ${i}`);
      await b.delete("key/7");
      const { requests, responses } = round(a, b);
      assert.ok(responses.length >= 3, `${name}: paged (${responses.length} pages)`);
      for (const req of requests) {
        // Requests always travel as version 1: an old responder must be able to read them.
        assert.is(req[4], 1, `${name}: request version`);
        assert.is(((decodeEnvelope(req).features ?? 0) & Feature.DeltaBodies) !== 0, reqNew, `${name}: advert`);
      }
      for (const resp of responses) assert.is(resp[4], reqNew && respNew ? 2 : 1, `${name}: response version`);
      assert.is(a.digest(), b.digest(), `${name}: converged`);
      round(b, a); // and the other direction, roles swapped
      assert.is(a.digest(), b.digest(), `${name}: converged both ways`);
      sizes.set(name, responses.reduce((n, r) => n + r.length, 0));
      await a.close();
      await b.close();
    }
  }
  const newNew = sizes.get("requester new, responder new")!;
  for (const [name, bytes] of sizes) if (!name.endsWith("new, responder new")) assert.ok(bytes - newNew >= 2 * 400, `${name}: ${bytes} B vs ${newNew} B delta-coded`);
});

test("negotiation through SyncManager: bootstrap, repair and pushes between old and new builds converge", async () => {
  for (const [oneNew, twoNew] of [[true, true], [true, false], [false, true]]) {
    const versions = new Set<string>();
    const net = new MemoryNetwork({ seed: 3, tamper: (m) => { versions.add(`${m.channel} ${m.direction} v${m.body[4]}`); return undefined; } });
    const open = async (id: number, isNew: boolean) => {
      const node = await Node.open({ id, peers: [3 - id], sync: { deltaBodies: isNew, maxDeltaEntries: 64 } });
      const sync = new SyncManager(node, net.transport(id), { pushWindowMs: 1, onWarning: () => undefined });
      net.register(id, sync);
      return { node, sync };
    };
    const one = await open(1, oneNew), two = await open(2, twoNew);
    for (let i = 0; i < 300; i++) await two.node.put(`k${i}`, `v${i}`);
    await one.sync.bootstrap();
    assert.is(one.node.digest(), two.node.digest());
    two.sync.start();
    await two.node.put("pushed", "p");
    for (let i = 0; i < 50 && one.node.get("pushed") === undefined; i++) await new Promise((r) => setTimeout(r, 5));
    await two.sync.stop();
    await one.sync.syncOnce();
    assert.is(one.node.digest(), two.node.digest());
    const both = oneNew && twoNew;
    assert.is(versions.has("sync response v2"), both, `${[...versions]}`);
    assert.not.ok(versions.has("sync request v2") || versions.has("push request v2"), "requests and pushes stay version 1");
    await net.settled();
    await new Promise((r) => setImmediate(r)); // the network's last idle check
    await one.node.close();
    await two.node.close();
  }
});

test("isUtf8 agrees with a fatal TextDecoder on random and edge bytes", () => {
  const fatal = new TextDecoder("utf-8", { fatal: true });
  const oracle = (b: Uint8Array) => {
    try {
      fatal.decode(b);
      return true;
    } catch {
      return false;
    }
  };
  const edges = [[0xf4, 0x8f, 0xbf, 0xbf], [0xf4, 0x90, 0x80, 0x80], [0xe0, 0x9f, 0xbf], [0xe0, 0xa0, 0x80], [0xef, 0xbf, 0xbf], [0xc2], [0xf0, 0x90, 0x80]];
  for (const e of edges) assert.is(isUtf8(new Uint8Array(e), 0, e.length), oracle(new Uint8Array(e)), String(e));
  fc.assert(fc.property(fc.uint8Array({ maxLength: 12 }), (b) => isUtf8(b, 0, b.length) === oracle(b)), { numRuns: 20_000 });
  fc.assert(fc.property(fc.string({ unit: "grapheme", maxLength: 12 }), (s) => {
    const b = bytesOf(s);
    return isUtf8(b, 0, b.length);
  }));
});

test("extensions are skipped (additive fields from a newer build)", () => {
  const plainEnv = assemble(HEAD, 0, 5, UUID_BYTES, 1, 2, 9, 0, 0);
  const withExt = assemble(HEAD, 0x40, 5, UUID_BYTES, 1, 2, 9, 2, 1, 3, [1, 2, 3], 7, 0, 0, 0);
  assert.equal(plain(decodeEnvelope(withExt)), plain(decodeEnvelope(plainEnv)));
  badEnvelope(assemble(HEAD, 0x40, 5, UUID_BYTES, 0, 1, 1, 9, [1, 2], 0, 0), /extension 1/);
  badEnvelope(assemble(HEAD, 0x40, 5, UUID_BYTES, 0, 2, 3, 0, 3, 0, 0, 0), /strictly ascending/);
});

test("summary extensions (FORMAT §6.1) round-trip; malformed payloads of known tags are BAD_ENVELOPE", () => {
  const groups = Uint8Array.from({ length: 512 }, (_, i) => i * 7);
  const hashes = Uint8Array.from({ length: 1024 }, (_, i) => i * 3);
  const env = sample({ features: 1, summaryRoot: "0123456789abcdef", summaryGroups: groups, summaryBuckets: { groups: [0, 63], hashes }, repairBuckets: [0, 1, 4095] });
  const back = decodeEnvelope(encodeEnvelope(env));
  assert.equal([back.features, back.summaryRoot, [...back.summaryGroups!], back.summaryBuckets!.groups, [...back.summaryBuckets!.hashes], back.repairBuckets],
    [1, "0123456789abcdef", [...groups], [0, 63], [...hashes], [0, 1, 4095]]);
  assert.equal(encodeEnvelope(back), encodeEnvelope(env), "canonical");
  // tag 17 with 7 bytes; tag 20 with an id past 4095; tag 20 with a trailing byte; tag 19 with missing hashes
  badEnvelope(assemble(HEAD, 0x40, 5, UUID_BYTES, 0, 1, 17, 7, [1, 2, 3, 4, 5, 6, 7], 0, 0), /extension 17/);
  badEnvelope(assemble(HEAD, 0x40, 5, UUID_BYTES, 0, 1, 20, 3, [1, 0x80, 0x20], 0, 0), /extension 20/);
  badEnvelope(assemble(HEAD, 0x40, 5, UUID_BYTES, 0, 1, 20, 3, [1, 5, 9], 0, 0), /trailing/);
  badEnvelope(assemble(HEAD, 0x40, 5, UUID_BYTES, 0, 1, 19, 2, [1, 0], 0, 0), /extension 19/);
  for (const bad of [{ repairBuckets: [3, 3] }, { repairBuckets: [4096] }, { summaryRoot: "xyz" }, { summaryGroups: new Uint8Array(5) }]) {
    assert.throws(() => encodeEnvelope(sample(bad as Partial<Envelope>)), (e: unknown) => (e as WaveKVError).code === "INVALID_ARGUMENT");
  }
});

test("encoding refuses what the format cannot carry", () => {
  const refuses = (env: Envelope, what: RegExp) => {
    try { encodeEnvelope(env); } catch (e) {
      assert.is((e as WaveKVError).code, "INVALID_ARGUMENT");
      assert.match((e as Error).message, what);
      return;
    }
    assert.unreachable("encoded");
  };
  refuses(sample({ senderUuid: "not-a-uuid" }), /senderUuid/);
  refuses(sample({ digest: "abc" }), /digest/);
  refuses(sample({ senderId: 2 ** 32 }), /senderId/);
  refuses(sample({ acks: new Map([[1, -1]]) }), /ack of 1/);
  refuses(sample({ acks: new Map([[1, 2 ** 53]]) }), /ack of 1/);
  refuses(sample({ version: 3 }), /version/);
});

// ------------------------------------------------------------------ properties

const arbEntry: fc.Arbitrary<Entry> = fc.record({
  key: fc.string({ unit: "grapheme", maxLength: 16 }),
  value: fc.option(fc.uint8Array({ maxLength: 40 }), { nil: null }),
  timestamp: fc.oneof(fc.integer({ min: 1_600_000_000_000, max: 1_800_000_000_000 }), fc.integer({ min: -(2 ** 51), max: 2 ** 51 }), fc.constantFrom(Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, -(2 ** 52), -(2 ** 52) - 1)),
  node: fc.integer({ min: 0, max: 0xffffffff }),
  seq: fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })),
});

const arbEnvelope: fc.Arbitrary<Envelope> = fc.record({
  version: fc.constantFrom(ENVELOPE_VERSION, ENVELOPE_VERSION_DELTA),
  senderId: fc.integer({ min: 0, max: 0xffffffff }),
  senderUuid: fc.uuid(),
  acks: fc.array(fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: MAX_SEQ })), { maxLength: 8 }).map((a) => new Map(a)),
  entries: fc.array(arbEntry, { maxLength: 8 }),
  digest: fc.option(fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString("hex")), { nil: undefined }),
  page: fc.option(fc.record({ last: fc.boolean() }), { nil: undefined }),
  resumeFrom: fc.option(fc.record({ node: fc.integer({ min: 0, max: 0xffffffff }), seq: fc.integer({ min: 0, max: MAX_SEQ }) }), { nil: undefined }),
  resetAcks: fc.option(fc.constant(true), { nil: undefined }),
  pushOnly: fc.option(fc.constant(true), { nil: undefined }),
}, { requiredKeys: ["version", "senderId", "senderUuid", "acks", "entries"] });

test("property: decode(encode(e)) equals e", () => {
  fc.assert(fc.property(arbEnvelope, (env) => {
    const back = decodeEnvelope(encodeEnvelope(env));
    assert.equal(plain(back), plain({ ...env, senderUuid: env.senderUuid.toLowerCase() }));
  }), { numRuns: 3000 });
});

test("property: accepted bytes re-encode to themselves (one encoding per envelope)", () => {
  fc.assert(fc.property(arbEnvelope, (env) => {
    const bytes = encodeEnvelope(env);
    assert.equal([...encodeEnvelope(decodeEnvelope(bytes))], [...bytes]);
  }), { numRuns: 3000 });
});

test("property: a mutated envelope decodes to a re-encodable envelope or is BAD_ENVELOPE", () => {
  fc.assert(fc.property(arbEnvelope, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.boolean(), (env, edits, sealed) => {
    const b = encodeEnvelope(env).slice();
    for (const [at, v] of edits) b[at % (b.length - 4)] = v;
    const input = sealed ? reseal(b) : b;
    let decoded: Envelope;
    try {
      decoded = decodeEnvelope(input);
    } catch (e) {
      assert.is((e as WaveKVError).code, "BAD_ENVELOPE");
      return;
    }
    decoded.entries; // materialising never throws on accepted input
    assert.equal([...encodeEnvelope(decoded)], [...input]);
  }), { numRuns: 5000 });
});

test("bootstrap size: a full envelope of ~110 raw bytes an entry costs at most 1.1x the raw bytes (1.05x delta-coded)", () => {
  const start = 1_764_000_000_000;
  const entries: Entry[] = [];
  let raw = 0;
  const value = new Uint8Array(100).fill(0x61);
  for (let i = 0; i < MAX_ENVELOPE_ENTRIES; i++) {
    // Writes from 3 origins over ~100 s, as a store filled at 1k writes/s.
    const e = { key: `key/${String(i).padStart(6, "0")}`, value, timestamp: start + i, node: 1 + (i % 3), seq: 1 + Math.floor(i / 3) };
    raw += e.key.length + value.length;
    entries.push(e);
  }
  const acks = new Map([[1, 21_846], [2, 21_845], [3, 21_845]]);
  const bytes = encodeEnvelope({ version: 1, senderId: 1, senderUuid: UUID, acks, entries, digest: DIGEST });
  const ratio = bytes.length / raw;
  assert.ok(ratio <= 1.1, `envelope is ${ratio.toFixed(3)}x raw payload (${bytes.length} / ${raw})`);
  assert.is(decodeEnvelope(bytes).entries.length, MAX_ENVELOPE_ENTRIES);
  // Delta-coded, in the (node, seq) order a responder sends them.
  entries.sort((x, y) => x.node - y.node || x.seq - y.seq);
  const delta = encodeEnvelope({ version: 2, senderId: 1, senderUuid: UUID, acks, entries, digest: DIGEST });
  assert.ok(delta.length / raw <= 1.05, `delta-coded envelope is ${(delta.length / raw).toFixed(3)}x raw payload`);
  assert.is(decodeEnvelope(delta).entries.length, MAX_ENVELOPE_ENTRIES);
});

test.run();
