// Expiring entries (record kind 5) on disk: a data directory written by this release
// (test/fixtures/ttl-v1: a v2 snapshot and a WAL tail, both holding kind 5) opens with
// every expiry; version-1 snapshots carry kind 5 too; a damaged kind 5 is refused by
// both decoders. docs/FORMAT.md §1.2.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import { join } from "node:path";
import { crc32 as zcrc32 } from "node:zlib";
import { Node } from "../../src/node/node.js";
import { files } from "../../src/storage/datadir.js";
import { inspectDir } from "../../src/storage/inspect.js";
import { encodeSnapshot, loadSnapshot, parseSnapshot } from "../../src/storage/snapshot.js";
import { decodeRecords, decodeRecordsReference, encodeRecords, encodeRecordsReference } from "../../src/codec/records.js";
import { RecordKind, expiringPayload, type RecordInput } from "../../src/core/record.js";
import { expiringRecord, flatten, freshDirs, oracleSnapshot, plain, valueRecord } from "../helpers/storage-fixtures.js";

const fixture = new URL("../fixtures/ttl-v1/", import.meta.url).pathname;
interface Expected { node: number; writtenAt: number; digest: string; entries: Record<string, { value: string | null; expiresAt?: number; timestamp: number }> }
const expected = JSON.parse(fs.readFileSync(join(fixture, "expected.json"), "utf8")) as Expected;
const fresh = freshDirs("ttlv1", (hook) => test.after(hook));

function copy(): string {
  const dir = join(fresh(), "data");
  fs.cpSync(join(fixture, "data"), dir, { recursive: true });
  return dir;
}

async function open(dir: string, now: number): Promise<Node> {
  return Node.open({ id: expected.node, dir, fsync: "never", clock: () => now, onWarning: () => undefined });
}

test("the committed snapshot is version 2 and holds kind-5 records; inspect counts them as values", () => {
  const f = files(join(fixture, "data"), expected.node);
  const image = fs.readFileSync(f.snapshot);
  assert.is(new DataView(image.buffer, image.byteOffset).getUint32(4, true), 2);
  const parsed = parseSnapshot(image, expected.node);
  if (typeof parsed === "string") throw new Error(parsed);
  const kinds = flatten([parsed.batch]).map((r) => r.kind);
  assert.ok(kinds.includes(RecordKind.Expiring), `kinds ${kinds}`);
  assert.equal(oracleSnapshot(image, expected.node)?.records, flatten([parsed.batch]));
  const report = inspectDir(copy(), expected.node);
  assert.ok(report.ok, report.problems.join("; "));
});

test("opens with every expiry and the same digest; at a later clock the expired entries read as absent", async () => {
  const dir = copy();
  let node = await open(dir, expected.writtenAt);
  const seen: Expected["entries"] = {};
  for (const e of node.scan("", { includeTombstones: true })) seen[e.key] = { value: e.value === null ? null : Buffer.from(e.value).toString("utf8"), ...(e.expiresAt !== undefined ? { expiresAt: e.expiresAt } : {}), timestamp: e.timestamp };
  assert.equal(seen, expected.entries);
  assert.is(node.digest(), expected.digest);
  // A snapshot of the opened state (kind 5 re-encoded) opens the same.
  await node.persist();
  await node.close();
  const last = Math.max(...Object.values(expected.entries).map((e) => e.expiresAt ?? 0));
  node = await open(dir, last);
  assert.is(node.digest(), expected.digest);
  const live = [...node.scan("")].map((e) => e.key);
  assert.equal(live, Object.keys(expected.entries).filter((k) => expected.entries[k]!.value !== null && expected.entries[k]!.expiresAt === undefined));
  await node.close();
});

test("a version-1 snapshot (stamps v2 cannot code) carries kind 5 as well", () => {
  const meta = { nodeId: 3, base: 1_700_000_000_500, walGeneration: 2, walOffset: 32 };
  const recs: RecordInput[] = [expiringRecord(1), valueRecord(2), { ...expiringRecord(3), timestamp: meta.base + 2 ** 52 }];
  const image = encodeSnapshot(recs, meta);
  assert.is(new DataView(image.buffer).getUint32(4, true), 1);
  const parsed = parseSnapshot(image, 3);
  if (typeof parsed === "string") throw new Error(parsed);
  assert.equal(flatten([parsed.batch]), recs.map(plain));
  const f = files(fresh(), 3);
  fs.writeFileSync(f.snapshot, image);
  const loaded = loadSnapshot(f, 3).snapshot!;
  assert.equal(flatten([loaded.batch]), recs.map(plain));
  loaded.batch.release();
});

test("a kind 5 whose value field is shorter than its 8 expiry bytes: refused by both encoders, malformed to both decoders", () => {
  const short: RecordInput = { kind: RecordKind.Expiring, key: "k", value: new Uint8Array(7), timestamp: 5, node: 1, seq: 1 };
  for (const encode of [encodeRecords, encodeRecordsReference]) {
    assert.throws(() => encode([short], "framed", 0), /expiry/);
  }
  // A framed kind 1 with a 7-byte value, turned into kind 5 (CRC fixed): malformed.
  const bytes = encodeRecords([{ ...short, kind: RecordKind.Value }], "framed", 0);
  bytes[8] = RecordKind.Expiring;
  new DataView(bytes.buffer).setUint32(4, zcrc32(bytes.subarray(8)) >>> 0, true);
  for (const decode of [decodeRecords, decodeRecordsReference]) {
    const b = decode(bytes, "framed", 0);
    assert.equal([b.count, b.stop.reason], [0, "malformed"], decode.name);
  }
  // With 8 bytes it decodes, its value field the payload.
  const ok = encodeRecords([{ ...short, value: expiringPayload(100, new Uint8Array([9])) }], "delta", 0);
  for (const decode of [decodeRecords, decodeRecordsReference]) {
    const b = decode(ok, "delta", 0);
    assert.equal([b.count, b.kind(0), b.valueLength(0)], [1, RecordKind.Expiring, 9], decode.name);
  }
});

test.run();
