// The storage conformance suite (src/storage/conformance.ts, shipped as `wavekv/conformance`)
// run against the file storage: every case, each on a fresh data directory, fsync "always";
// then against a store in memory written from the interface alone (see memoryHarness).
// Crash: the directory as a killed process leaves it (the bytes written so far, copied
// aside, without the lock); torn tail: the last 3 bytes of the WAL cut off; failNext: the
// fault seam fails the next write with EIO.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import { join } from "node:path";
import { runStorageConformance, type StorageHarness } from "../../src/storage/conformance.js";
import { openStorage } from "../../src/storage/storage.js";
import { LOCK_FILE, files } from "../../src/storage/datadir.js";
import type { FaultHook, Storage } from "../../src/storage/interface.js";
import { decodeRecords, encodeRecords } from "../../src/codec/records.js";
import { WaveKVError } from "../../src/core/errors.js";
import { removeDir, tempDir } from "../helpers/storage-fixtures.js";

function fileHarness(): StorageHarness {
  const dirs = [tempDir("conformance")];
  const dir = () => dirs[dirs.length - 1]!;
  let failNext = false;
  const faults: FaultHook = (op) => {
    if (op !== "write" || !failNext) return;
    failNext = false;
    throw Object.assign(new Error("EIO: i/o error (injected)"), { code: "EIO" });
  };
  return {
    open: (replay) => openStorage({ dir: dir(), nodeId: 1, fsync: "always", faults, replay }),
    async crash(storage) {
      // What the files hold now is what a restarted process finds: written bytes survive
      // a process crash (fsync is about machine crashes). The old storage is closed
      // later, into its own directory, so nothing it does after the "crash" is seen.
      const copy = tempDir("conformance-crash");
      fs.cpSync(dir(), copy, { recursive: true });
      fs.rmSync(join(copy, LOCK_FILE), { force: true });
      dirs.push(copy);
      await storage.close().catch(() => {});
    },
    async corruptTail() {
      const wal = files(dir(), 1).wal;
      fs.truncateSync(wal, fs.statSync(wal).size - 3);
    },
    failNext() {
      failNext = true;
    },
    async destroy() {
      for (const d of dirs) removeDir(d);
    },
  };
}

runStorageConformance("file storage (openStorage)", { create: fileHarness, can: { crash: true, corruptTail: true, failNext: true } }, { suite, assert });

/**
 * A second adapter: a store in memory (framed record bytes per append, a snapshot image),
 * written against the interface alone. It shows the suite holds no file-storage
 * assumption, and that an undeclared capability (no torn tail in memory) is skipped out loud.
 */
function memoryHarness(): StorageHarness {
  const uuid = `mem-${Math.random().toString(16).slice(2)}`;
  let log: Uint8Array[] = [];
  let snapshot: Uint8Array | null = null;
  let failNext = false;
  const open = async (replay: Parameters<StorageHarness["open"]>[0]): Promise<Storage> => {
    const sink = replay(uuid);
    for (const bytes of snapshot ? [snapshot, ...log] : log) {
      const batch = decodeRecords(bytes, "framed", 0);
      try { sink.apply(batch); } finally { batch.release(); }
    }
    let failure: WaveKVError | null = null;
    let closed = false;
    const gate = () => {
      if (closed) throw new WaveKVError("CLOSED", "closed");
      if (failure) throw failure;
      if (failNext) {
        failNext = false;
        failure = new WaveKVError("IO", "write failed (injected)");
        throw failure;
      }
    };
    return {
      recovered: { uuid, batches: [], warnings: [] },
      async append(records) {
        gate();
        // Framed records (a merged batch's winners) come framed against our base, 0.
        const bytes = "frame" in records ? (records.count > 0 ? records.frame(0) : null) : encodeRecords(records, "framed", 0);
        if (bytes !== null && bytes.length > 0) log.push(bytes);
      },
      async snapshot(collect) {
        const image = encodeRecords([...collect()], "framed", 0);
        gate();
        snapshot = image;
        log = [];
      },
      get needsSnapshot() { return false; },
      get walBytes() { return log.reduce((n, b) => n + b.length, 0); },
      fsyncCount: 0,
      fsyncLatency: { bounds: [], counts: [0], sum: 0, count: 0 },
      walGeneration: 1,
      get failure() { return failure; },
      async close() { closed = true; },
    };
  };
  return {
    open,
    async crash(storage) { await storage.close(); }, // what was appended stays, as written bytes survive a process crash
    failNext() { failNext = true; },
  };
}

runStorageConformance("in-memory reference adapter", { create: memoryHarness, can: { crash: true, corruptTail: false, failNext: true } }, { suite, assert });
