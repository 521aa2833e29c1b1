// The replay session (src/storage/replay.ts): storage owns what a replay borrows from the
// kernel. A sink sees each batch only during `apply`; bytes it keeps are its own
// (retain(): opaque) until it releases them; a failed open abandons the sink and leaves
// no pin; an open with a sink gives the kernel's scratch back. Pin counts exact: every
// batch and block in this file is released or dropped, so the GC has nothing to drop.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import { isWaveKVError } from "../../src/core/errors.js";
import { D_VAL_OFF, DESCRIPTOR_WORDS, type DecodedBatch, type RetainedBytes } from "../../src/core/record.js";
import { kernel } from "../../src/kernel/instance.js";
import { REGIONS, R_DESC } from "../../src/kernel/abi.js";
import { files } from "../../src/storage/datadir.js";
import type { ReplaySink } from "../../src/storage/interface.js";
import { openStorage } from "../../src/storage/storage.js";
import { flatten, frameOffsets, freshDirs, plain, valueRecord } from "../helpers/storage-fixtures.js";

const fresh = freshDirs("replay", (hook) => test.after(hook));
const records = Array.from({ length: 3000 }, (_, i) => valueRecord(i + 1));

/** A data directory whose WAL is past the JS-decoded size: it is read into linear memory. */
async function bigWal(): Promise<string> {
  const dir = fresh();
  const s = await openStorage({ dir, nodeId: 1, fsync: "never" });
  for (let i = 0; i < records.length; i += 500) await s.append(records.slice(i, i + 500));
  await s.close();
  assert.ok(fs.statSync(files(dir, 1).wal).size > 128 << 10, "past the JS-decoded size");
  return dir;
}

test("a sink sees each batch only during apply; what it keeps it holds by its own reference, to the exact byte", async () => {
  const dir = await bigWal();
  const k = kernel();
  const before = k.pinnedBytes;
  const seen: DecodedBatch[] = [];
  const kept: { bytes: RetainedBytes; off: number; value: Uint8Array }[] = [];
  const copied: ReturnType<typeof flatten> = [];
  const sink: ReplaySink = {
    apply(batch) {
      seen.push(batch);
      copied.push(...flatten([batch]));
      const bytes = batch.retain();
      // Where this window's last value is, and its bytes now: read again from the kept bytes later.
      const at = (batch.count - 1) * DESCRIPTOR_WORDS;
      if (bytes) kept.push({ bytes, off: batch.words[at + D_VAL_OFF]!, value: batch.value(batch.count - 1)! });
    },
    abandon() { throw new Error("not abandoned: the open succeeds"); },
  };
  const s = await openStorage({ dir, nodeId: 1, fsync: "never", replay: () => sink, replayWindow: 700 });
  assert.equal(copied, records.map(plain), "every record, in order, through the sink");
  assert.ok(seen.length >= 5, `windows of 700 records (${seen.length})`);
  assert.equal(s.recovered.batches, [], "nothing collected when a sink took them");
  for (const b of seen) assert.throws(() => b.key(0), /after release/, "released when apply returned");
  const walBytes = fs.statSync(files(dir, 1).wal).size - 32;
  assert.is(k.pinnedBytes - before, walBytes, "the log's bytes stay pinned while the sink holds them");
  assert.is(kept.length, seen.length, "every window's bytes kept (one block: pinned bytes = the log's, not more)");
  for (const { bytes, off, value } of kept) assert.equal(bytes.slice(off, value.length), value, "a kept value reads back after its batch is released");
  for (const { bytes } of kept) bytes.release();
  kept[0]!.bytes.release(); // idempotent
  assert.throws(() => kept[0]!.bytes.slice(0, 1), /after release/, "released bytes cannot be read");
  assert.is(k.pinnedBytes, before, "the sink's references were the last: none left");
  await s.close();
});

test("an open with a sink gives the kernel's scratch back; a failed open abandons the sink and leaves no pin", async () => {
  const dir = await bigWal();
  const k = kernel();
  k.reserve(R_DESC, 8 << 20); // as a big replay leaves it
  const sink = (log: string[]): ReplaySink => ({ apply: () => { log.push("apply"); }, abandon: () => { log.push("abandon"); } });
  const ok: string[] = [];
  const s = await openStorage({ dir, nodeId: 1, fsync: "never", replay: () => sink(ok) });
  assert.ok(ok.length > 0 && !ok.includes("abandon"));
  assert.ok(k.u32[(REGIONS >>> 2) + R_DESC * 2 + 1]! <= 4 << 20, "the descriptor region is trimmed at the end of the replay");
  await s.close();

  const walPath = files(dir, 1).wal;
  const bytes = fs.readFileSync(walPath);
  const offsets = frameOffsets(bytes);
  bytes[offsets[1500]! + 12]! ^= 0x40; // valid records follow: CORRUPT_WAL, after 1500 were handed over
  fs.writeFileSync(walPath, bytes);
  const before = k.pinnedBytes;
  const log: string[] = [];
  const kept: RetainedBytes[] = [];
  const failing: ReplaySink = {
    apply(batch) { log.push("apply"); const ref = batch.retain(); if (ref) kept.push(ref); },
    abandon() { log.push("abandon"); for (const ref of kept.splice(0)) ref.release(); },
  };
  const err = await openStorage({ dir, nodeId: 1, fsync: "never", replay: () => failing, replayWindow: 500 }).then(() => null, (e: unknown) => e);
  assert.ok(isWaveKVError(err, "CORRUPT_WAL"), String(err));
  assert.equal(log.slice(-1), ["abandon"], "abandoned once, last");
  assert.is(log.filter((x) => x === "abandon").length, 1);
  assert.is(k.pinnedBytes, before, "the session dropped its block; the abandoned sink dropped its references");
});

test.run();
