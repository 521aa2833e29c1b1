/**
 * `wavekv filesync`: mirrors a directory between nodes, as upstream's example does.
 * Each file is a key `__file/<relative/path>` whose value is the file's bytes; a deleted
 * file is a tombstone. Local changes are found by polling (portable to every runtime and
 * file system; cost: one stat per file per interval, a read only when size or mtime moved)
 * and remote changes are written atomically (temporary file + rename).
 *
 *   const mirror = await startFileSync(node, "./shared", { intervalMs: 500 });
 *   await mirror.stop();
 */
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import type { Node } from "../node/node.js";

export const FILE_PREFIX = "__file/";

export interface FileSyncOptions {
  intervalMs?: number;
  log?: (line: string) => void;
}

export interface FileSync {
  /** Scan the directory once now (also what the timer does). */
  scanNow(): Promise<void>;
  stop(): Promise<void>;
}

interface Known { size: number; mtimeMs: number; hash: string }

const hashOf = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

function walk(root: string, dir = root, out: string[] = []): string[] {
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, d.name);
    if (d.name.endsWith(".wavekv-tmp")) continue;
    if (d.isDirectory()) walk(root, full, out);
    else if (d.isFile()) out.push(relative(root, full).split(sep).join("/"));
  }
  return out;
}

export async function startFileSync(node: Node, dir: string, opts: FileSyncOptions = {}): Promise<FileSync> {
  const log = opts.log ?? ((l: string) => console.log(l));
  mkdirSync(dir, { recursive: true });
  const known = new Map<string, Known>();
  const refused = new Set<string>();
  let scanning: Promise<void> | null = null;

  const writeLocal = (path: string, value: Uint8Array | null) => {
    const full = join(dir, ...path.split("/"));
    if (!full.startsWith(dir)) return; // a key with ".." never escapes the directory
    if (value === null) {
      rmSync(full, { force: true });
      known.delete(path);
      return;
    }
    const current = known.get(path);
    const hash = hashOf(value);
    if (current?.hash === hash) return;
    mkdirSync(dirname(full), { recursive: true });
    const tmp = `${full}.${process.pid}.wavekv-tmp`;
    writeFileSync(tmp, value);
    renameSync(tmp, full);
    const st = statSync(full);
    known.set(path, { size: st.size, mtimeMs: st.mtimeMs, hash });
  };

  // The store is the truth at start: materialise it, then publish local-only files.
  for (const e of node.scan(FILE_PREFIX, { includeTombstones: true })) writeLocal(e.key.slice(FILE_PREFIX.length), e.value);

  const scan = async () => {
    const seen = new Set<string>();
    for (const path of walk(dir)) {
      seen.add(path);
      const full = join(dir, ...path.split("/"));
      let st;
      try { st = statSync(full); } catch { continue; }
      const k = known.get(path);
      if (k && k.size === st.size && k.mtimeMs === st.mtimeMs) continue;
      if (st.size > node.limits.maxValueBytes) {
        if (!refused.has(path)) log(`filesync: ${path} is ${st.size} bytes, above the value limit of ${node.limits.maxValueBytes}: not mirrored`);
        refused.add(path);
        continue;
      }
      const bytes = new Uint8Array(readFileSync(full));
      const hash = hashOf(bytes);
      known.set(path, { size: st.size, mtimeMs: st.mtimeMs, hash });
      if (k?.hash === hash) continue;
      try {
        await node.put(FILE_PREFIX + path, bytes);
        refused.delete(path);
      } catch (e) {
        log(`filesync: ${path} not mirrored: ${(e as Error).message}`);
      }
    }
    for (const path of [...known.keys()]) {
      if (seen.has(path)) continue;
      known.delete(path);
      if (node.get(FILE_PREFIX + path)) await node.delete(FILE_PREFIX + path).catch((e: Error) => log(`filesync: deletion of ${path} not mirrored: ${e.message}`));
    }
  };
  const scanNow = () => (scanning ??= scan().finally(() => { scanning = null; }));

  const watching = new AbortController();
  const applying = (async () => {
    for await (const e of node.watch(FILE_PREFIX, { signal: watching.signal })) {
      if (e.node === node.id) continue;
      try { writeLocal(e.key.slice(FILE_PREFIX.length), e.value); } catch (err) { log(`filesync: cannot write ${e.key}: ${(err as Error).message}`); }
    }
  })();
  await scanNow();
  const timer = setInterval(() => { void scanNow().catch((e) => log(`filesync: scan failed: ${(e as Error).message}`)); }, opts.intervalMs ?? 500);
  timer.unref?.();
  return {
    scanNow,
    async stop() {
      clearInterval(timer);
      watching.abort();
      // Never rejects: a scan's failure was logged already, and a stop that threw would
      // leave the caller's server running (`wavekv filesync` stops it after this).
      await applying.catch(() => undefined);
      await scanning?.catch(() => undefined);
    },
  };
}

/** Compares a directory with the files a store holds (`key` → bytes): missing, extra or different. */
export async function checkFileSync(dir: string, files: AsyncIterable<{ path: string; bytes: Uint8Array }> | Iterable<{ path: string; bytes: Uint8Array }>): Promise<{ missing: string[]; extra: string[]; different: string[] }> {
  const onDisk = new Set(walk(dir));
  const missing: string[] = [], different: string[] = [];
  for await (const f of files) {
    if (!onDisk.has(f.path)) { missing.push(f.path); continue; }
    onDisk.delete(f.path);
    if (hashOf(new Uint8Array(readFileSync(join(dir, ...f.path.split("/"))))) !== hashOf(f.bytes)) different.push(f.path);
  }
  return { missing, extra: [...onDisk], different };
}

/** The mirrored files of a node, for `checkFileSync`. */
export function* filesOf(node: Node): IterableIterator<{ path: string; bytes: Uint8Array }> {
  for (const e of node.scan(FILE_PREFIX)) yield { path: e.key.slice(FILE_PREFIX.length), bytes: e.value! };
}
