// The storage conformance suite (src/storage/conformance.ts, shipped as `wavekv/conformance`)
// run against the file storage: every case, each on a fresh data directory, fsync "always".
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
import type { FaultHook } from "../../src/storage/interface.js";
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
