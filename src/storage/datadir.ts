/**
 * The data directory of one node: file names, the directory lock, the node's uuid, and
 * the two durable-file primitives every writer here needs (docs/FORMAT.md §5).
 *
 *   const lock = acquireLock(dir);              // WaveKVError LOCKED if a live process holds it
 *   const uuid = loadOrCreateUuid(dir, warnings);
 *   writeFileDurably(files(dir, 1).wal, bytes); // tmp + fsync + rename + fsync(dir)
 *   lock.release();
 *
 * One node per directory: the uuid and the lock belong to the directory, the WAL and
 * snapshot files carry the node id in their names and headers.
 */
import * as fs from "node:fs";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { WaveKVError } from "../core/errors.js";

export interface DataFiles {
  wal: string;
  walTmp: string;
  snapshot: string;
  snapshotTmp: string;
  snapshotBak: string;
  uuid: string;
  lock: string;
}

export const UUID_FILE = "wavekv.uuid";
export const LOCK_FILE = "wavekv.lock";

export function files(dir: string, nodeId: number): DataFiles {
  const base = join(dir, `node_${nodeId}`);
  return {
    wal: `${base}.wal`,
    walTmp: `${base}.wal.tmp`,
    snapshot: `${base}.snapshot`,
    snapshotTmp: `${base}.snapshot.tmp`,
    snapshotBak: `${base}.snapshot.bak`,
    uuid: join(dir, UUID_FILE),
    lock: join(dir, LOCK_FILE),
  };
}

/** A node's own files in a data directory: its WAL, snapshot and snapshot backup. */
const NODE_FILE = /^node_(\d+)\.(wal|snapshot|snapshot\.bak)$/;

/**
 * The node ids whose files `dir` holds, each with its file names, ids ascending; empty
 * for a missing or empty directory (or a path that is not a directory: open reports that).
 */
export function nodeFilesIn(dir: string): Map<number, string[]> {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return new Map();
    throw e;
  }
  return groupNodeFiles(names);
}

/** `names` (a directory listing) grouped by the node id of each `node_<id>` file, ids ascending. */
export function groupNodeFiles(names: readonly string[]): Map<number, string[]> {
  const found = new Map<number, string[]>();
  for (const name of [...names].sort()) {
    const m = NODE_FILE.exec(name);
    if (m) found.set(Number(m[1]), [...(found.get(Number(m[1])) ?? []), name]);
  }
  return new Map([...found].sort(([a], [b]) => a - b));
}

/** fsync a directory so that renames and creations inside it survive a machine crash. */
export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes all of `bytes` at `position` (writeSync may write less than asked). */
export function writeFully(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) {
    const n = fs.writeSync(fd, bytes, done, bytes.length - done, position + done);
    if (n <= 0) throw new Error(`write returned ${n}`);
    done += n;
  }
}

/** Reads exactly `length` bytes at `position`, or fewer if the file is shorter. */
export function readFully(fd: number, length: number, position: number): Uint8Array {
  const out = new Uint8Array(length);
  const done = readInto(fd, out, position);
  return done === length ? out : out.subarray(0, done);
}

/** Fills `dst` from `position`; returns the bytes read (fewer only at end of file). */
function readInto(fd: number, dst: Uint8Array, position: number): number {
  let done = 0;
  while (done < dst.length) {
    const n = fs.readSync(fd, dst, done, dst.length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** Fills all of `dst` from `position`, or throws IO: the file ended early (it shrank under us). */
export function readExactly(fd: number, dst: Uint8Array, position: number): void {
  const done = readInto(fd, dst, position);
  if (done !== dst.length) throw new WaveKVError("IO", `file ended at ${position + done} while reading ${dst.length} bytes from ${position} (did it shrink while open?)`);
}

/** Reads a whole file through one fd: the size comes from fstat, never from the bytes. */
export function readWholeFile(path: string): Uint8Array {
  const fd = fs.openSync(path, "r");
  try {
    return readFully(fd, fs.fstatSync(fd).size, 0);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Replaces `path` with `bytes` atomically and durably: write `path.tmp`, fsync it,
 * rename over `path`, fsync the directory. A crash leaves either the old file or the
 * new one, never a mix. Cost: two fsyncs.
 */
export function writeFileDurably(path: string, bytes: Uint8Array, dir: string): void {
  const tmp = `${path}.tmp`;
  const fd = fs.openSync(tmp, "w");
  try {
    writeFully(fd, bytes, 0);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, path);
  fsyncDir(dir);
}

export function exists(path: string): boolean {
  try {
    fs.statSync(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw e;
  }
}

export function removeIfExists(path: string): void {
  try {
    fs.unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
}

// ---------------------------------------------------------------------------------
// uuid

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The node's identity, created once per directory and kept in `wavekv.uuid` (one line).
 * An unreadable file is replaced by a fresh uuid with a warning rather than refusing to
 * start: peers then see a new identity, exactly as if the directory had been wiped.
 */
export function loadOrCreateUuid(dir: string, warnings: string[]): string {
  const path = join(dir, UUID_FILE);
  let text: string | null = null;
  try {
    text = fs.readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  if (text !== null) {
    const uuid = text.trim();
    if (UUID_RE.test(uuid)) return uuid;
    warnings.push(`${path} does not hold a uuid; replaced it with a new identity (peers will see a new node)`);
  }
  const uuid = randomUUID();
  writeFileDurably(path, new TextEncoder().encode(`${uuid}\n`), dir);
  return uuid;
}

// ---------------------------------------------------------------------------------
// lock

export interface DirLock {
  readonly path: string;
  release(): void;
}

/** What a lock file holds: `<pid>\n<token>\n`. */
function parseLock(text: string): number | null {
  const pid = Number(text.split("\n", 1)[0]);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
}

/** True if a process with this pid exists (EPERM: it exists but belongs to another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Takes `wavekv.lock` in `dir`: created with O_EXCL, holding this process's pid and a
 * random token. A lock whose pid is not alive (a SIGKILLed owner) or that is unreadable
 * (the owner died between create and write) is stale and taken over.
 *
 * Take-over renames the stale file to a private name first, then re-reads it: if two
 * processes race to take over the same stale lock, the loser sees a live pid in what
 * it renamed, puts it back and reports LOCKED. Known limit: a pid reused by an
 * unrelated live process keeps the lock held; the error message says how to clear it.
 */
export function acquireLock(dir: string, beforeCreate?: (path: string) => void): DirLock {
  const path = join(dir, LOCK_FILE);
  const token = randomUUID();
  for (let attempt = 0; attempt < 5; attempt++) {
    let fd: number;
    try {
      beforeCreate?.(path); // the storage fault seam (StorageOptions.faults, op "open")
      fd = fs.openSync(path, "wx");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const owner = readLockOwner(path);
      if (owner === undefined) continue; // vanished between open and read: retry
      if (owner !== null && processAlive(owner)) throw lockedError(dir, path, owner);
      takeOverStale(dir, path, owner);
      continue;
    }
    try {
      writeFully(fd, new TextEncoder().encode(`${process.pid}\n${token}\n`), 0);
    } finally {
      fs.closeSync(fd);
    }
    let released = false;
    return {
      path,
      release() {
        if (released) return;
        released = true;
        // Remove only our own lock: never a lock someone else took over meanwhile.
        try {
          if (fs.readFileSync(path, "utf8").includes(token)) fs.unlinkSync(path);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
        }
      },
    };
  }
  throw new WaveKVError("LOCKED", `could not take the lock ${path} (it keeps changing hands); is another process opening ${dir}?`);
}

/** pid in the lock file; null if unreadable; undefined if the file is gone. */
function readLockOwner(path: string): number | null | undefined {
  try {
    return parseLock(fs.readFileSync(path, "utf8"));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

function takeOverStale(dir: string, path: string, stalePid: number | null): void {
  const aside = `${path}.stale-${randomUUID()}`;
  try {
    fs.renameSync(path, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw e;
  }
  const owner = parseLock(safeRead(aside));
  if (owner !== null && owner !== stalePid && processAlive(owner)) {
    // We moved a lock that a live process took between our read and our rename.
    try {
      fs.linkSync(aside, path);
    } catch {
      /* someone holds `path` again; either way we do not own it */
    }
    removeIfExists(aside);
    throw lockedError(dir, path, owner);
  }
  removeIfExists(aside);
}

function safeRead(path: string): string {
  try {
    return fs.readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

function lockedError(dir: string, path: string, pid: number): WaveKVError {
  const who = pid === process.pid ? "this process (close the other Node first)" : `process ${pid}`;
  return new WaveKVError(
    "LOCKED",
    `${dir} is in use by ${who}: open each data directory once; stop it, or pass another --dir. If no such process uses it, delete ${path}.`,
  );
}
