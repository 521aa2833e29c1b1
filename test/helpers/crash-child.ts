/**
 * Child process of test/storage/crash.ts (a helper: never imported by the test runner).
 *
 *   node --import tsx test/helpers/crash-child.ts <dir> <seed>     (Bun: bun <file> <dir> <seed>)
 *
 * Opens the storage with fsync "always", prints `ready <nextId>`, then appends records
 * forever — up to 8 appends in flight, 1–3 records each, a snapshot now and then — and
 * prints `ack <id> <id> ...` once an append has resolved. The parent SIGKILLs it at a
 * random moment. Record `id` is `crashRecordOf(id)` (test/helpers/crash-records.ts: key
 * `r/<id>`, seq `id`, every third one expiring): the parent recomputes the exact bytes,
 * expiry included, from the id alone.
 */
import { RecordKind, type RecordInput } from "../../src/core/record.js";
import { openStorage } from "../../src/storage/storage.js";
import { rng } from "./storage-fixtures.js";
import { crashRecordOf } from "./crash-records.js";

const [dir, seedArg] = process.argv.slice(2);
if (!dir) throw new Error("usage: crash-child <dir> <seed>");
const r = rng(Number(seedArg ?? 1));

const storage = await openStorage({ dir, nodeId: 1, fsync: "always" });
// The whole state, so that a snapshot can be taken: recovered records + every append issued.
const state = new Map<number, RecordInput>();
let maxSeq = 0;
for (const b of storage.recovered.batches) {
  for (let i = 0; i < b.count; i++) {
    maxSeq = Math.max(maxSeq, b.seq(i));
    const kind = b.kind(i);
    if (kind === RecordKind.Value || kind === RecordKind.Expiring) state.set(b.seq(i), { kind, key: b.key(i), value: b.value(i), timestamp: b.timestamp(i), node: b.node(i), seq: b.seq(i) });
  }
}
let nextId = maxSeq + 1;
process.stdout.write(`ready ${nextId}\n`);

let inFlight = 0;
let appends = 0;
function pump(): void {
  while (inFlight < 8) {
    const n = 1 + Math.floor(r() * 3);
    const recs: RecordInput[] = [];
    for (let i = 0; i < n; i++) {
      const rec = crashRecordOf(nextId++);
      recs.push(rec);
      state.set(rec.seq, rec);
    }
    inFlight++;
    appends++;
    storage.append(recs).then(
      () => {
        inFlight--;
        process.stdout.write(`ack ${recs.map((x) => x.seq).join(" ")}\n`);
        setImmediate(pump);
      },
      (e) => {
        process.stderr.write(`append failed: ${e}\n`);
        process.exit(2);
      },
    );
    if (appends % 40 === 0) {
      const mark = nextId - 1;
      storage.snapshot(() => [...state.values(), { kind: RecordKind.SeqMark, key: "", value: null, timestamp: 0, node: 0, seq: mark }]).catch((e) => {
        process.stderr.write(`snapshot failed: ${e}\n`);
        process.exit(3);
      });
    }
  }
}
pump();
