// filesync: two nodes mirror a directory tree (nested, binary), deletions propagate.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Node } from "../../src/node/node.js";
import { SyncManager } from "../../src/node/manager.js";
import { MemoryNetwork } from "../../src/transport/memory.js";
import { checkFileSync, filesOf, startFileSync } from "../../src/app/filesync.js";

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("two nodes mirror nested and binary files; deletions and edits propagate; oversized files are refused", async () => {
  const root = mkdtempSync(join(tmpdir(), "wavekv-filesync-"));
  const dirA = join(root, "a"), dirB = join(root, "b");
  mkdirSync(join(dirA, "nested", "deeper"), { recursive: true });
  writeFileSync(join(dirA, "hello.txt"), "hello");
  const binary = new Uint8Array(4096).map((_, i) => (i * 131) & 255);
  writeFileSync(join(dirA, "nested", "deeper", "blob.bin"), binary);
  writeFileSync(join(dirA, "huge.bin"), new Uint8Array(5000));
  const net = new MemoryNetwork({ seed: 7 });
  const logs: string[] = [];
  const a = await Node.open({ id: 1, peers: [2], limits: { maxValueBytes: 4096 } });
  const b = await Node.open({ id: 2, peers: [1], limits: { maxValueBytes: 4096 } });
  const sa = new SyncManager(a, net.transport(1), { intervalMs: 100, pushWindowMs: 20, onWarning: () => undefined });
  const sb = new SyncManager(b, net.transport(2), { intervalMs: 100, pushWindowMs: 20, onWarning: () => undefined });
  net.register(1, sa);
  net.register(2, sb);
  const fa = await startFileSync(a, dirA, { intervalMs: 50, log: (l) => logs.push(l) });
  const fb = await startFileSync(b, dirB, { intervalMs: 50, log: (l) => logs.push(l) });
  sa.start();
  sb.start();
  try {
    await until("files on b", () => existsSync(join(dirB, "nested", "deeper", "blob.bin")) && existsSync(join(dirB, "hello.txt")));
    assert.equal([...readFileSync(join(dirB, "nested", "deeper", "blob.bin"))], [...binary]);
    assert.is(readFileSync(join(dirB, "hello.txt"), "utf8"), "hello");
    assert.ok(!existsSync(join(dirB, "huge.bin")), "a file above the value limit is not mirrored");
    assert.ok(logs.some((l) => l.includes("huge.bin") && l.includes("above the value limit")), logs.join("\n"));

    writeFileSync(join(dirB, "from-b.txt"), "written on b");
    writeFileSync(join(dirB, "hello.txt"), "hello, edited on b");
    rmSync(join(dirB, "nested", "deeper", "blob.bin"));
    await until("b's changes on a", () =>
      existsSync(join(dirA, "from-b.txt")) && !existsSync(join(dirA, "nested", "deeper", "blob.bin")) && readFileSync(join(dirA, "hello.txt"), "utf8") === "hello, edited on b");
    await until("digests equal", () => a.digest() === b.digest());
    const check = await checkFileSync(dirB, filesOf(b));
    assert.equal(check, { missing: [], extra: [], different: [] });
    const checkA = await checkFileSync(dirA, filesOf(a));
    assert.equal(checkA.missing, []);
    assert.equal(checkA.different, []);
    assert.equal(checkA.extra, ["huge.bin"], "the refused file exists only where it was written");
  } finally {
    await fa.stop();
    await fb.stop();
    await sa.stop();
    await sb.stop();
    await a.close();
    await b.close();
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
