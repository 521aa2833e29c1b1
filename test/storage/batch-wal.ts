// Atomic batches in the WAL (docs/FORMAT.md §3.1): a log cut (a kill mid-append) at each
// frame's end, at every byte of each frame header and every 5th body byte
// (WAVEKV_BATCH_CUT_STEP=1: every offset), with and without a preallocated zero tail,
// short (decoded in JS) and long (decoded by the kernel a window at a time, windows of 3
// records), opens with every
// whole record before the cut and each batch whole or not at all; open truncates at the
// cut batch's head, so a record appended after it is never taken for the batch's rest.
// Crafted batch heads (claiming 0, too many, or non-entry records) never apply a part.
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import { RecordKind, type DecodedBatch, type RecordInput } from "../../src/core/record.js";
import { files } from "../../src/storage/datadir.js";
import { openStorage } from "../../src/storage/storage.js";
import { formatInspect, inspectDir } from "../../src/storage/inspect.js";
import { MAX_BATCH_RECORDS } from "../../src/storage/wal-batches.js";
import { MAX_BATCH_ENTRIES } from "../../src/node/batch.js";
import { freshDirs, peerRecord, valueRecord } from "../helpers/storage-fixtures.js";

const fresh = freshDirs("batch-wal", test.after);

/** One append of the log: a lone record or a batch (head + entries). */
type Append = { batch: boolean; records: RecordInput[] };

/** A batch head claiming `n` records (docs/FORMAT.md §3.1), as LocalWrites.logBatch writes it. */
const head = (n: number): RecordInput => ({ kind: RecordKind.BatchHead, key: "", value: null, timestamp: 0, node: 1, seq: n });
function batchOf(ids: number[]): Append {
  return { batch: true, records: [head(ids.length), ...ids.map((id) => valueRecord(id))] };
}
const lone = (id: number): Append => ({ batch: false, records: [valueRecord(id)] });

/** Writes `appends` (one append each) to a fresh directory; returns it and the WAL's frame ends. */
async function writeLog(appends: Append[]): Promise<{ dir: string; wal: Uint8Array; ends: number[] }> {
  const dir = fresh();
  const s = await openStorage({ dir, nodeId: 1, fsync: "never" });
  for (const a of appends) await s.append(a.records);
  await s.close();
  const wal = new Uint8Array(fs.readFileSync(files(dir, 1).wal));
  const ends: number[] = [];
  const dv = new DataView(wal.buffer, wal.byteOffset);
  for (let at = 32; at + 8 <= wal.length && dv.getUint32(at, true) !== 0;) {
    at += 8 + dv.getUint32(at, true);
    ends.push(at);
  }
  return { dir, wal, ends };
}

/** The seqs of the entries open must recover from a log cut at `cut`: whole appends only for batches. */
function expected(appends: Append[], ends: number[], cut: number): { seqs: number[]; validEnd: number } {
  const seqs: number[] = [];
  let frame = 0, validEnd = 32;
  for (const a of appends) {
    const last = ends[frame + a.records.length - 1]!;
    if (a.batch) {
      if (last > cut) break;
      for (const r of a.records) if (r.kind <= RecordKind.Value) seqs.push(r.seq);
      validEnd = last;
    } else {
      if (ends[frame]! > cut) break;
      seqs.push(a.records[0]!.seq);
      validEnd = ends[frame]!;
    }
    frame += a.records.length;
  }
  return { seqs, validEnd };
}

function entrySeqs(batches: readonly DecodedBatch[]): number[] {
  const out: number[] = [];
  for (const b of batches) for (let i = 0; i < b.count; i++) if (b.kind(i) <= RecordKind.Value) out.push(b.seq(i));
  return out;
}

/** Every handed-over window holds whole batches: a head's entries are in its own window. */
function assertWholeWindows(windows: { kinds: number[]; seqs: number[] }[], where: string): void {
  for (const w of windows) {
    for (let i = 0; i < w.kinds.length; i++) {
      if (w.kinds[i] !== RecordKind.BatchHead) continue;
      const n = w.seqs[i]!;
      assert.ok(i + n < w.kinds.length, `${where}: a window ends inside a batch`);
      i += n;
    }
  }
}

/**
 * Opens copies of the log cut at offsets from `from` to its end and checks each: every
 * offset (`step` 1), or each frame end, the 9 bytes after it (the frame header) and every
 * `step`-th byte of the bodies.
 */
async function everyCut(appends: Append[], from: (ends: number[]) => number, window?: number, step = 1): Promise<number> {
  const { wal, ends } = await writeLog(appends);
  const content = ends[ends.length - 1]!;
  const near = new Set<number>(), boundary = new Set([32, ...ends]);
  for (const e of boundary) for (let k = 0; k <= 9; k++) near.add(e + k);
  let checked = 0;
  for (let cut = from(ends); cut <= content; cut++) {
    if (step > 1 && !near.has(cut) && cut % step !== 0) continue;
    for (const zeros of [false, true]) {
      const where = `cut at ${cut}${zeros ? " + zero tail" : ""}`;
      const dir = fresh();
      const image = new Uint8Array(zeros ? cut + 4096 : cut); // a preallocated tail (shorter than the writer's: same rule)
      image.set(wal.subarray(0, cut));
      fs.writeFileSync(files(dir, 1).wal, image);
      const windows: { kinds: number[]; seqs: number[] }[] = [];
      const got: number[] = [];
      const replay = window === undefined ? undefined : () => ({
        apply(b: DecodedBatch) {
          const w = { kinds: [] as number[], seqs: [] as number[] };
          for (let i = 0; i < b.count; i++) { w.kinds.push(b.kind(i)); w.seqs.push(b.seq(i)); if (b.kind(i) <= RecordKind.Value) got.push(b.seq(i)); }
          windows.push(w);
        },
        abandon() { got.length = 0; windows.length = 0; },
      });
      const s = await openStorage({ dir, nodeId: 1, fsync: "never", replay, replayWindow: window });
      const want = expected(appends, ends, cut);
      assert.equal(replay ? got : entrySeqs(s.recovered.batches), want.seqs, `${where}: recovered entries`);
      assertWholeWindows(windows, where);
      await s.append([valueRecord(999)]);
      await s.close();
      checked++;
      if (boundary.has(cut) || boundary.has(cut - 1)) {
        // Truncated at the cut batch's head: what is appended next follows the last whole
        // append (checked at frame ends: cuts elsewhere truncate the same way).
        const again = await openStorage({ dir, nodeId: 1, fsync: "never" });
        assert.equal(entrySeqs(again.recovered.batches), [...want.seqs, 999], `${where}: after an append and a reopen`);
        await again.close();
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  return checked;
}

/** Byte step of the cuts inside bodies (frame ends and headers are always cut): 1 = every offset. */
const STEP = Number(process.env.WAVEKV_BATCH_CUT_STEP ?? 5);

test("node.batch takes no more entries than a WAL batch head may claim", () => {
  assert.is(MAX_BATCH_ENTRIES, MAX_BATCH_RECORDS);
});

const SHORT: Append[] = [lone(1), batchOf([2, 3, 4]), lone(5), batchOf([6]), batchOf([7, 8, 9, 10])];

test("short log cut at every frame boundary and every few bytes (WAVEKV_BATCH_CUT_STEP=1: every offset): each batch whole or absent (JS decoder)", async () => {
  const n = await everyCut(SHORT, () => 32, undefined, STEP);
  assert.ok(n > 300, `checked ${n} cuts`);
});

test("long log cut at every offset of its tail: windows of 3 never split a batch (kernel decoder)", async () => {
  // 70 KiB of lone records first: past the JS decoder's 64 KiB, so the kernel decodes windows.
  const filler: Append[] = [];
  for (let id = 100; id < 100 + 70; id++) filler.push({ batch: false, records: [{ ...valueRecord(id), value: new Uint8Array(1024).fill(id) }] });
  const appends = [...filler, batchOf([2, 3, 4, 5, 6]), lone(7), batchOf([8, 9]), lone(10), batchOf([11, 12, 13, 14, 15, 16, 17])];
  const n = await everyCut(appends, (ends) => ends[filler.length - 2]!, 3, STEP * 4);
  assert.ok(n > 300, `checked ${n} cuts`);
});

/** A log of `appends` whose first batch head is replaced by `bad`, then opened. */
async function crafted(appends: Append[], bad: RecordInput): Promise<{ seqs: number[] | null; code: string | null; warnings: string[] }> {
  const dir = fresh();
  const s = await openStorage({ dir, nodeId: 1, fsync: "never" });
  for (const a of appends) await s.append(a.records.map((r) => (r.kind === RecordKind.BatchHead ? bad : r)));
  await s.close();
  try {
    const again = await openStorage({ dir, nodeId: 1, fsync: "never" });
    const seqs = entrySeqs(again.recovered.batches), warnings = [...again.recovered.warnings];
    await again.close();
    return { seqs, code: null, warnings };
  } catch (e) {
    return { seqs: null, code: (e as { code?: string }).code ?? String(e), warnings: [] };
  }
}

test("a crafted batch head in the middle of a log is CORRUPT_WAL, never a part applied", async () => {
  for (const bad of [head(0), head(MAX_BATCH_RECORDS + 1), head(2 ** 40)]) {
    const r = await crafted([lone(1), batchOf([2, 3]), lone(4)], bad);
    assert.is(r.code, "CORRUPT_WAL", `head claiming ${bad.seq}`);
  }
  // A head claiming records that are not entries (a membership record inside the batch).
  const r = await crafted([lone(1), { batch: true, records: [head(2), valueRecord(2), peerRecord(2, 5)] }, lone(4)], head(2));
  assert.is(r.code, "CORRUPT_WAL", "a peer record inside a batch");
  // Two heads: the first claims the second.
  const nested = await crafted([lone(1), { batch: true, records: [head(3), valueRecord(2), head(1), valueRecord(3)] }, lone(4)], head(3));
  assert.is(nested.code, "CORRUPT_WAL", "a head inside a batch");
});

test("a crafted batch head at the end of a log: kept aside, truncated, nothing of it applied", async () => {
  for (const bad of [head(0), head(MAX_BATCH_RECORDS + 1)]) {
    const r = await crafted([lone(1), { batch: true, records: [head(1)] }], bad);
    assert.equal(r.seqs, [1], `head claiming ${bad.seq}`);
    assert.ok(r.warnings.some((w) => w.includes("DAMAGED RECORD")), r.warnings.join("\n"));
  }
  // A head claiming more entries than follow, at the end: a batch cut short (torn).
  const r = await crafted([lone(1), batchOf([2, 3])], head(5));
  assert.equal(r.seqs, [1]);
  assert.ok(r.warnings.some((w) => w.includes("torn tail")), r.warnings.join("\n"));
});

test("a log a snapshot covers in part keeps its batch boundaries (the tail is copied raw)", async () => {
  const dir = fresh();
  const s = await openStorage({ dir, nodeId: 1, fsync: "never" });
  await s.append(batchOf([1, 2]).records);
  await s.snapshot(() => [valueRecord(1), valueRecord(2)]);
  await s.append(batchOf([3, 4, 5]).records);
  await s.close();
  const wal = files(dir, 1).wal, bytes = new Uint8Array(fs.readFileSync(wal));
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  // Cut inside the tail's batch (its last record): the snapshot's entries stay, the batch goes.
  fs.writeFileSync(wal, bytes.subarray(0, end - 5));
  const again = await openStorage({ dir, nodeId: 1, fsync: "never" });
  const seqs = entrySeqs(again.recovered.batches).sort((a, b) => a - b);
  await again.close();
  assert.equal(seqs, [1, 2]);
});

test("fixture: a WAL with a batch written by this release (test/fixtures/wal-batch-v2) still opens", async () => {
  const dir = fresh();
  fs.cpSync(new URL("../fixtures/wal-batch-v2/", import.meta.url).pathname, dir, { recursive: true });
  const s = await openStorage({ dir, nodeId: 1, fsync: "never" });
  const kinds: number[] = [];
  for (const b of s.recovered.batches) for (let i = 0; i < b.count; i++) kinds.push(b.kind(i));
  assert.equal(kinds, [1, RecordKind.BatchHead, 1, 0, 1, 1]);
  assert.equal(entrySeqs(s.recovered.batches), [1, 2, 3, 4, 5]);
  await s.close();
  // `wavekv inspect` counts the head apart from entries.
  const report = inspectDir(dir);
  assert.ok(report.ok, formatInspect(report));
  assert.is(report.nodes[0]!.wal.stats?.batchHeads, 1);
  assert.match(formatInspect(report), "1 batch heads");
  const { Node } = await import("../../src/node/node.js");
  const node = await Node.open({ id: 1, dir });
  const text = (k: string) => { const v = node.get(k)?.value; return v ? new TextDecoder().decode(v) : undefined; };
  assert.equal([text("a"), text("b"), text("c"), text("d")], [undefined, "2", "3", "4"]);
  assert.is(node.getIncludingTombstones("a")!.seq, 3);
  assert.is(node.status().nextSeq, 6);
  await node.close();
});

test.run();
