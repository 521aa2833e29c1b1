// Data lost without a word (issue 15 items 4, 5, 7, 13, the I/O fault seam): deleted
// snapshot / WAL files, a data directory deleted under a running node, a damaged last WAL
// record, failed fsync / ENOSPC / EROFS / EACCES. Real files in fresh temp dirs, Node.open
// as users call it; faults come only through StorageOptions.faults (the file boundary).
import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Node, type NodeOptions } from "../../src/node/node.js";
import { isWaveKVError, type WaveKVError } from "../../src/core/errors.js";
import { files } from "../../src/storage/datadir.js";
import { inspectDir, formatInspect } from "../../src/storage/inspect.js";
import { UNLINK_CHECK_MS } from "../../src/storage/wal-writer.js";
import type { FaultHook } from "../../src/storage/interface.js";
import { frameOffsets, freshDirs } from "../helpers/storage-fixtures.js";

const fresh = freshDirs("faults", (hook) => test.after(hook));
const text = (b: Uint8Array | null | undefined) => (b == null ? undefined : new TextDecoder().decode(b));

function openNode(dir: string, extra: Partial<NodeOptions> = {}, warnings: string[] = []): Promise<Node> {
  return Node.open({ id: 1, dir, fsync: "never", onWarning: (m) => warnings.push(m), ...extra });
}

async function rejection(p: Promise<unknown>): Promise<WaveKVError> {
  return p.then(() => { throw new Error("expected a rejection"); }, (e) => e as WaveKVError);
}

function osError(code: string, path: string): Error {
  return Object.assign(new Error(`${code}: simulated, ${path}`), { code });
}

/** 100 keys, persist(), 100 more keys, persist(), 5 keys: .bak holds a*, .snapshot a*+b*, the WAL (generation 3) c*. */
async function threeGenerations(dir: string): Promise<void> {
  const node = await openNode(dir);
  for (let i = 0; i < 100; i++) await node.put(`a/${i}`, `a${i}`);
  await node.persist();
  for (let i = 0; i < 100; i++) await node.put(`b/${i}`, `b${i}`);
  await node.persist();
  for (let i = 0; i < 5; i++) await node.put(`c/${i}`, `c${i}`);
  assert.is(node.size, 205);
  await node.close();
}

const count = (node: Node, prefix: string) => [...node.scan(prefix)].length;

// ---------------------------------------------------------------------------------
// 4. deleted snapshot / WAL files

test("both snapshot files deleted: MISSING_SNAPSHOT naming the generation, inspect exit 1; acceptDataLoss opens loudly and is recorded", async () => {
  const dir = fresh();
  await threeGenerations(dir);
  const f = files(dir, 1);
  fs.rmSync(f.snapshot);
  fs.rmSync(f.snapshotBak);
  const wal = fs.readFileSync(f.wal);

  const err = await rejection(openNode(dir));
  assert.ok(isWaveKVError(err, "MISSING_SNAPSHOT"), String(err));
  assert.match(err.message, "is generation 3");
  assert.match(err.message, f.snapshotBak);
  assert.match(err.message, "acceptDataLoss");
  assert.ok(fs.readFileSync(f.wal).equals(wal), "a refused open changes nothing");
  assert.not.ok(fs.existsSync(f.snapshot));

  const report = inspectDir(dir);
  assert.not.ok(report.ok, formatInspect(report));
  assert.is(report.nodes[0]!.fails, "MISSING_SNAPSHOT");
  assert.match(formatInspect(report), /FAIL \(MISSING_SNAPSHOT\)/);

  const warnings: string[] = [];
  let node = await openNode(dir, { storage: { acceptDataLoss: true } }, warnings);
  assert.equal([count(node, "a/"), count(node, "b/"), count(node, "c/")], [0, 0, 5]);
  assert.ok(node.status().nextSeq > 205, "the WAL's seq marks keep spent seqs spent");
  assert.match(warnings.join("\n"), /DATA LOSS ACCEPTED.*generations 1\.\.2/);
  await node.put("d", "after");
  await node.close();

  // Accepted once: the next open (without the flag) neither refuses nor loses more.
  const again: string[] = [];
  node = await openNode(dir, {}, again);
  assert.equal([node.size, text(node.get("d")?.value)], [6, "after"]);
  assert.equal(again, []);
  await node.close();
  assert.ok(inspectDir(dir).ok, formatInspect(inspectDir(dir)));
});

test("only the newest snapshot deleted: .bak loaded, the warning names the generation whose writes are missing; inspect reports it", async () => {
  const dir = fresh();
  await threeGenerations(dir);
  fs.rmSync(files(dir, 1).snapshot);
  const warnings: string[] = [];
  const node = await openNode(dir, {}, warnings);
  assert.equal([count(node, "a/"), count(node, "b/"), count(node, "c/")], [100, 0, 5]);
  const all = warnings.join("\n");
  assert.match(all, /loaded the previous generation/);
  assert.match(all, /covers WAL generation 1 .* is generation 3: the writes logged in generation 2 were only in a newer snapshot/);
  await node.close();
  const report = inspectDir(dir);
  assert.not.ok(report.ok, "missing writes are damage");
  assert.ok(report.nodes[0]!.opens);
  assert.match(report.problems.join("\n"), /generation 2/);
});

test("WAL deleted, snapshot present: MISSING_WAL naming the snapshot; acceptDataLoss opens with the snapshot's keys", async () => {
  const dir = fresh();
  await threeGenerations(dir);
  const f = files(dir, 1);
  fs.rmSync(f.wal);
  const err = await rejection(openNode(dir));
  assert.ok(isWaveKVError(err, "MISSING_WAL"), String(err));
  assert.match(err.message, f.snapshot);
  assert.match(err.message, "covers WAL generation 2");
  assert.not.ok(fs.existsSync(f.wal), "a refused open creates no log");
  const report = inspectDir(dir);
  assert.equal([report.ok, report.nodes[0]!.fails], [false, "MISSING_WAL"]);

  const warnings: string[] = [];
  let node = await openNode(dir, { storage: { acceptDataLoss: true } }, warnings);
  assert.equal([count(node, "a/"), count(node, "b/"), count(node, "c/")], [100, 100, 0]);
  assert.match(warnings.join("\n"), /DATA LOSS ACCEPTED/);
  await node.close();
  node = await openNode(dir);
  assert.is(node.size, 200);
  await node.close();
});

// ---------------------------------------------------------------------------------
// 7. the last WAL record: damaged vs torn

test("a bit flip in the last WAL record: warned as possibly acknowledged, with offset and size, bytes kept; a torn tail is not", async () => {
  const dir = fresh();
  let node = await openNode(dir);
  for (let i = 0; i < 6; i++) await node.put(`k${i}`, `value-${i}`);
  await node.close();
  const f = files(dir, 1);
  const wal = fs.readFileSync(f.wal);
  const last = frameOffsets(wal).at(-1)!;
  const flipped = Buffer.from(wal);
  flipped[wal.length - 2]! ^= 0x04;
  fs.writeFileSync(f.wal, flipped);

  assert.match(formatInspect(inspectDir(dir)), /MAY HAVE BEEN ACKNOWLEDGED/);
  const warnings: string[] = [];
  node = await openNode(dir, {}, warnings);
  assert.equal([node.size, node.get("k5")], [5, undefined]);
  const w = warnings.join("\n");
  assert.match(w, `DAMAGED RECORD at offset ${last}: 1 record of ${wal.length - last} bytes`);
  assert.match(w, /CRC mismatch.*MAY HAVE BEEN ACKNOWLEDGED/);
  assert.not.match(w, /never acknowledged/);
  const copy = `${f.wal}.damaged-${last}`;
  assert.match(w, copy);
  assert.ok(fs.readFileSync(copy).equals(flipped.subarray(last)), "the damaged bytes are kept exactly");
  await node.close();
  assert.is(fs.statSync(f.wal).size, last);
  const after = inspectDir(dir);
  assert.equal([after.ok, after.keptDamaged], [true, [copy]], "inspect lists the kept bytes; the log itself is consistent");
  assert.match(formatInspect(after), `kept: ${copy} holds a damaged WAL record`);
  assert.equal(after.keptUnsynced, [], "a damaged record's copy starts with its own (non-zero) header");
  // A copy of unsynced writes (version 2: valid records after a run of zeros) starts with zeros.
  const unsynced = `${f.wal}.damaged-${last + 4096}`;
  fs.writeFileSync(unsynced, Buffer.concat([Buffer.alloc(64), flipped.subarray(last)]));
  const both = inspectDir(dir);
  assert.equal([both.keptDamaged, both.keptUnsynced], [[copy, unsynced], [unsynced]]);
  assert.match(formatInspect(both), `kept: ${unsynced} holds unsynced writes`);
  assert.not.match(formatInspect(both), `kept: ${unsynced} holds a damaged`);
  fs.rmSync(unsynced);

  // Torn: the file ends inside the record (a write cut short): never acknowledged, no copy.
  fs.rmSync(copy);
  fs.writeFileSync(f.wal, wal.subarray(0, wal.length - 3));
  const torn: string[] = [];
  node = await openNode(dir, {}, torn);
  assert.is(node.size, 5);
  assert.match(torn.join("\n"), `of torn tail at offset ${last} end inside a record: a write cut short by a crash, never acknowledged`);
  assert.not.match(torn.join("\n"), /DAMAGED/);
  assert.equal(fs.readdirSync(dir).filter((n) => n.includes("damaged")), []);
  await node.close();
});

// ---------------------------------------------------------------------------------
// 5. the data directory deleted under a running node

for (const fsync of ["always", "never"] as const) {
  test(`data directory deleted under a running node (fsync ${fsync}): the next write fails IO naming the directory, and every later one`, async () => {
    const dir = fresh();
    const node = await openNode(dir, { fsync });
    await node.put("before", "1");
    fs.rmSync(dir, { recursive: true, force: true });
    // "never" checks at most every UNLINK_CHECK_MS (one fstat); "always" after every fsync.
    if (fsync === "never") await sleep(3 * UNLINK_CHECK_MS);
    const err = await rejection(node.put("after", "2"));
    assert.ok(isWaveKVError(err, "IO"), String(err));
    assert.match(err.message, `is the data directory ${dir} gone?`);
    assert.match(err.message, "until the node is reopened");
    const later = await rejection(node.put("later", "3"));
    assert.ok(isWaveKVError(later, "IO"), "latched");
    await node.close().catch(() => {});
  });
}

test("the WAL file alone deleted under a running node (fsync always): writes fail IO, latched", async () => {
  const dir = fresh();
  const node = await openNode(dir, { fsync: "always" });
  await node.put("before", "1");
  fs.rmSync(files(dir, 1).wal);
  const all = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => node.put(`k${i}`, "v")));
  assert.ok(all.every((r) => r.status === "rejected" && isWaveKVError(r.reason, "IO")), "no write into a deleted log resolves");
  await node.close().catch(() => {});
});

// ---------------------------------------------------------------------------------
// fault seam: fsync EIO and write ENOSPC lose nothing acknowledged

for (const [op, code] of [["fsync", "EIO"], ["write", "ENOSPC"]] as const) {
  test(`${code} on ${op} under concurrent puts (fsync always): it and every later put fail IO; after reopen every resolved put is there`, async () => {
    const dir = fresh();
    let armed = false;
    let ops = 0;
    // ENOSPC as the OS leaves it: a short write (11 bytes of the group's first record), then the error.
    const fault = (path: string) => Object.assign(osError(code, path), code === "ENOSPC" ? { bytesWritten: 11 } : {});
    const faults: FaultHook = (o, path) => { if (o === op && path.endsWith(".wal") && armed && ++ops >= 3) throw fault(path); };
    const node = await openNode(dir, { fsync: "always", storage: { faults } });
    // Per key, its puts in order and the last one that resolved. A put that failed may
    // still be on disk (written before its fsync failed), so after reopen a key holds its
    // last resolved value or a later attempt — never an earlier one, never nothing.
    const tried = new Map<string, string[]>();
    const acked = new Map<string, string>();
    const failed: unknown[] = [];
    const writer = async (w: number) => {
      for (let i = 0; i < 20; i++) {
        const key = `w${w}/${i % 7}`, value = `${w}-${i}`;
        tried.set(key, [...(tried.get(key) ?? []), value]);
        try {
          await node.put(key, value);
          acked.set(key, value);
        } catch (e) {
          failed.push(e);
        }
        if (w === 0 && i === 4) armed = true;
      }
    };
    await Promise.all(Array.from({ length: 16 }, (_, w) => writer(w)));
    assert.ok(acked.size > 0 && failed.length > 0, `the fixture: some puts resolved (${acked.size}) and some failed (${failed.length})`);
    assert.ok(failed.every((e) => isWaveKVError(e, "IO") && (e as Error).message.includes(code)), String(failed[0]));
    const after = await rejection(node.put("after", "x"));
    assert.ok(isWaveKVError(after, "IO"), "latched until reopened");
    await node.close().catch(() => {});

    const reopened: string[] = [];
    const back = await openNode(dir, { fsync: "always" }, reopened);
    // The short write landed in preallocated space and was zeroed again: a clean end, no record that looks damaged.
    if (code === "ENOSPC") assert.not.match(reopened.join("\n"), /DAMAGED|MAY HAVE BEEN/, "the short write is not taken for a damaged record");
    for (const [key, value] of acked) {
      const got = text(back.get(key)?.value) ?? "(none)";
      const attempts = tried.get(key)!;
      assert.ok(attempts.indexOf(got) >= attempts.indexOf(value), `${key}: resolved ${value}, reopened with ${got}`);
    }
    assert.is(back.get("after"), undefined);
    await back.put("after", "y"); // reopened: writable again
    await back.close();
  });
}

// ---------------------------------------------------------------------------------
// 13. a data directory this process cannot write

for (const code of ["EROFS", "EACCES"] as const) {
  test(`${code} on the data directory: Node.open rejects IO naming the directory and what to do; nothing changes`, async () => {
    const dir = fresh();
    let node = await openNode(dir);
    await node.put("k", "v");
    await node.close();
    const before = fs.readdirSync(dir).sort();
    const faults: FaultHook = (op, path) => { if (op === "open") throw osError(code, path); };
    const err = await rejection(openNode(dir, { storage: { faults } }));
    assert.ok(isWaveKVError(err, "IO"), String(err));
    assert.match(err.message, `data directory ${dir} is`);
    assert.match(err.message, code);
    assert.match(err.message, "--dir");
    assert.equal(fs.readdirSync(dir).sort(), before);
    const fresher = `${fresh()}/new`;
    assert.ok(isWaveKVError(await rejection(openNode(fresher, { storage: { faults } })), "IO"), "a new directory too");
    node = await openNode(dir);
    assert.is(text(node.get("k")?.value), "v");
    await node.close();
  });
}

/** Opens the data directory argv[2] as node 1 with the built package; prints the outcome as one JSON line. */
const OPEN_DIR_CHILD = `import { Node } from "./dist/index.js";
try {
  const node = await Node.open({ id: 1, dir: process.argv[2], fsync: "never", onWarning: () => {} });
  await node.close();
  console.log(JSON.stringify({ ok: true }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, name: err.name, code: err.code, message: err.message }));
}
`;

test("a real unwritable data directory (chmod 0555, opened as another user when root): Node.open rejects IO naming it", async () => {
  const dir = fresh();
  const node = await openNode(dir);
  await node.put("k", "v");
  await node.close();
  fs.chmodSync(dir, 0o555);
  try {
    // The child runs the built package from a copy any user can read: as root the test opens
    // the directory as nobody, who may not reach this checkout (a CI clone under a 0700 dir).
    const box = fs.mkdtempSync(join(tmpdir(), "wavekv-other-user-"));
    fs.chmodSync(box, 0o755);
    fs.cpSync(fileURLToPath(new URL("../../dist", import.meta.url)), join(box, "dist"), { recursive: true });
    const child = join(box, "open-dir-child.mjs");
    fs.writeFileSync(child, OPEN_DIR_CHILD);
    const asRoot = process.getuid?.() === 0; // root ignores modes: open as nobody instead
    // The runtime too: Bun's binary lives in the checkout's node_modules.
    const runtime = asRoot ? join(box, "runtime") : process.execPath;
    if (asRoot) fs.copyFileSync(process.execPath, runtime);
    // A copy of Deno is not process.execPath: nothing adds `run -A`, and without it every write is NotCapable.
    const run = spawnSync(runtime, [...(process.versions.deno ? ["run", "-A"] : []), child, dir], { encoding: "utf8", cwd: box, ...(asRoot ? { uid: 65534, gid: 65534 } : {}) });
    assert.ok(run.error === undefined, `the child could not start: ${run.error}`);
    fs.rmSync(box, { recursive: true, force: true });
    const line = run.stdout.trim().split("\n").at(-1) ?? "";
    assert.ok(line.startsWith("{"), `child printed no outcome: ${run.stdout} ${run.stderr}`);
    const out = JSON.parse(line) as { ok: boolean; name?: string; code?: string; message?: string };
    assert.equal([out.ok, out.name, out.code], [false, "WaveKVError", "IO"], line);
    assert.match(out.message!, `data directory ${dir} is not writable by this user (EACCES`);
    assert.match(out.message!, "--dir");
  } finally {
    fs.chmodSync(dir, 0o755);
  }
});

test.run();
