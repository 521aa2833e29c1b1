// The page side of test/storage/browser-store.ts, bundled by it with esbuild (kernel
// embedded): the storage conformance suite run against the IndexedDB store inside
// Chromium, and nodes on browser stores that the test drives through `window.wk`
// (expression strings evaluated in the page). Raw IndexedDB access damages a store the way
// a flipped bit or a cut-short value would.
import { Node, browserStorage, isWaveKVError } from "../../src/browser.js";
import { runStorageConformance, type ConformanceSuite, type StorageHarness } from "../../src/storage/conformance.js";
import { crashBrowserStorage, openBrowserStorage } from "../../src/storage/browser-storage.js";
import type { Storage } from "../../src/storage/interface.js";

interface CaseResult { name: string; ok: boolean; skipped?: boolean; error?: string }

const text = (v: Uint8Array | null | undefined) => (v ? new TextDecoder().decode(v) : null);
const codeOf = (e: unknown) => (isWaveKVError(e) ? e.code : `not a WaveKVError: ${String(e)}`);

/** The raw database of store `name` (its schema made by the store's first open). */
function rawDb(name: string): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open(`wavekv/${name}`);
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}
function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => { r.onsuccess = () => resolve(r.result); r.onerror = () => reject(r.error); });
}
function txDone(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => { tx.oncomplete = () => resolve(); tx.onabort = () => reject(tx.error); });
}

/** Rewrites row `which` ("last", or an index) of a closed store's `log` (or `snapshot`) with `edit` applied to its bytes. */
async function editRow(name: string, which: "last" | number, edit: (b: Uint8Array) => Uint8Array, of: "log" | "snapshot" = "log"): Promise<{ key: number; before: number; after: number }> {
  const db = await rawDb(name);
  try {
    const keys = (await req(db.transaction(of).objectStore(of).getAllKeys())) as number[];
    const key = keys[which === "last" ? keys.length - 1 : which]!;
    const tx = db.transaction(of, "readwrite");
    const store = tx.objectStore(of);
    const bytes = (await req(store.get(key))) as Uint8Array;
    const edited = edit(bytes.slice());
    store.put(edited, key);
    await txDone(tx);
    return { key, before: bytes.length, after: edited.length };
  } finally {
    db.close();
  }
}

async function countRows(name: string, store: "log" | "damaged" | "snapshot"): Promise<number> {
  const db = await rawDb(name);
  try { return await req(db.transaction(store).objectStore(store).count()); } finally { db.close(); }
}

function deleteDb(name: string): Promise<void> {
  return new Promise((resolve) => {
    const r = indexedDB.deleteDatabase(`wavekv/${name}`);
    r.onsuccess = r.onerror = () => resolve();
    setTimeout(resolve, 2000); // blocked by a connection a case left open: the case reports it
  });
}

/** A store's object stores as JSON (bytes as base64): what test/fixtures/browser-store-v1 holds. */
type Dump = Record<string, [IDBValidKey, unknown][]>;
const STORES = ["meta", "log", "snapshot", "damaged"] as const;
const b64 = (b: Uint8Array) => btoa(Array.from(b, (x) => String.fromCharCode(x)).join(""));
const unb64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const toJson = (v: unknown): unknown => (v instanceof Uint8Array ? { base64: b64(v) } : v);
const fromJson = (v: unknown): unknown => (v !== null && typeof v === "object" && "base64" in v ? unb64((v as { base64: string }).base64) : v);

async function dump(name: string): Promise<Dump> {
  const db = await rawDb(name);
  try {
    const out: Dump = {};
    for (const s of STORES) {
      const tx = db.transaction(s);
      const [keys, values] = await Promise.all([req(tx.objectStore(s).getAllKeys()), req(tx.objectStore(s).getAll())]);
      out[s] = keys.map((k, i) => [k, toJson(values[i])]);
    }
    return out;
  } finally {
    db.close();
  }
}

/** Writes a dump as store `name` (schema version 1, as docs/FORMAT.md §7 gives it), raw. */
async function load(name: string, d: Dump): Promise<void> {
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    const r = indexedDB.open(`wavekv/${name}`, 1);
    r.onupgradeneeded = () => { for (const s of STORES) r.result.createObjectStore(s); };
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  try {
    const tx = db.transaction([...STORES], "readwrite");
    for (const s of STORES) for (const [k, v] of d[s] ?? []) tx.objectStore(s).put(fromJson(v), k);
    await txDone(tx);
  } finally {
    db.close();
  }
}

const nodes = new Map<string, Node>();
const warnings = new Map<string, string[]>();
/** Per store: the fault a test arms (thrown at the next "write"). */
const armed = new Map<string, () => unknown>();
let caseNo = 0;

const wk = {
  /** The conformance suite against the IndexedDB store, every case's outcome. */
  async conformance(): Promise<CaseResult[]> {
    const results: CaseResult[] = [];
    let done!: Promise<void>;
    const suite = (_name: string): ConformanceSuite => {
      const cases: { title: string; fn?: () => void | Promise<void> }[] = [];
      const s = ((title: string, fn: () => void | Promise<void>) => { cases.push({ title, fn }); }) as ConformanceSuite;
      s.skip = (title: string) => { cases.push({ title }); };
      s.run = () => {
        done = (async () => {
          for (const c of cases) {
            if (!c.fn) { results.push({ name: c.title, ok: false, skipped: true }); continue; }
            try { await c.fn(); results.push({ name: c.title, ok: true }); } catch (e) { results.push({ name: c.title, ok: false, error: (e as Error).stack ?? String(e) }); }
          }
        })();
      };
      return s;
    };
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    const assert = {
      is: (a: unknown, b: unknown, m?: string) => { if (!Object.is(a, b)) throw new Error(`${m ?? "is"}: ${String(a)} !== ${String(b)}`); },
      equal: (a: unknown, b: unknown, m?: string) => { if (!same(a, b)) throw new Error(`${m ?? "equal"}: ${JSON.stringify(a).slice(0, 400)} != ${JSON.stringify(b).slice(0, 400)}`); },
      ok: (a: unknown, m?: string) => { if (!a) throw new Error(m ?? "not ok"); },
    };
    runStorageConformance("IndexedDB (Chromium)", {
      can: { crash: true, corruptTail: true, failNext: true },
      create: (): StorageHarness => {
        const name = `conformance-${Date.now()}-${caseNo++}`;
        let failNext = false;
        return {
          open: (replay) => openBrowserStorage({
            name, nodeId: 1, newUuid: () => crypto.randomUUID(), replay,
            faults: (op) => { if (op === "write" && failNext) { failNext = false; throw Object.assign(new Error("EIO: simulated write failure"), { code: "EIO" }); } },
          }),
          crash: async (storage: Storage) => crashBrowserStorage(storage),
          // Cuts the last row short inside its last record: a value whose bytes end early.
          corruptTail: async () => { await editRow(name, "last", (b) => b.subarray(0, b.length - 5)); },
          failNext: () => { failNext = true; },
          destroy: () => deleteDb(name),
        };
      },
    }, { suite, assert });
    await done;
    return results;
  },

  /** Opens a node on store `name` (snapshotting past `snapshotBytes` of log, if given): "ok" or the error code. */
  async open(name: string, id: number, snapshotBytes?: number): Promise<string> {
    const w: string[] = [];
    warnings.set(name, w);
    try {
      const storage = browserStorage(name, { snapshotBytes, faults: (op) => { const f = op === "write" ? armed.get(name) : undefined; if (f) throw f(); } });
      nodes.set(name, await Node.open({ id, storage, onWarning: (m) => w.push(m) }));
      return "ok";
    } catch (e) {
      return codeOf(e);
    }
  },
  warnings: (name: string) => warnings.get(name) ?? [],
  put: async (name: string, key: string, value: string): Promise<string> => {
    try { await nodes.get(name)!.put(key, value); return "ok"; } catch (e) { return codeOf(e); }
  },
  /** `n` puts issued together (one group commit); resolves when all did. */
  putMany: async (name: string, prefix: string, n: number, value = "v"): Promise<string[]> =>
    Promise.all(Array.from({ length: n }, (_, i) => nodes.get(name)!.put(`${prefix}${i}`, `${value}${i}`).then(() => "ok", codeOf))),
  get: (name: string, key: string) => text(nodes.get(name)!.get(key)?.value),
  keys: (name: string) => [...nodes.get(name)!.scan("")].map((e) => e.key),
  size: (name: string) => nodes.get(name)!.size,
  stats: (name: string) => nodes.get(name)!.storageStats(),
  persist: async (name: string) => { await nodes.get(name)!.persist(); return "ok"; },
  close: async (name: string) => { await nodes.get(name)?.close(); nodes.delete(name); return "ok"; },
  /** Arms the fault seam: the next commit of `name` throws a QuotaExceededError DOMException (until disarmed). */
  quotaFull: (name: string, on: boolean) => { if (on) armed.set(name, () => new DOMException("simulated: quota exceeded", "QuotaExceededError")); else armed.delete(name); },
  /** Flips one byte inside the last record's value (its CRC fails), in row `which`. */
  flipByte: (name: string, which: "last" | number) => editRow(name, which, (b) => { b[b.length - 2] ^= 0xff; return b; }),
  /** Flips one byte inside the last record of snapshot chunk `which`. */
  flipSnapshotByte: (name: string, which: number) => editRow(name, which, (b) => { b[b.length - 2] ^= 0xff; return b; }, "snapshot"),
  /** Cuts `n` bytes off row `which` (a value cut short). */
  truncate: (name: string, which: "last" | number, n: number) => editRow(name, which, (b) => b.subarray(0, b.length - n)),
  countRows,
  /**
   * `n` stores of six one-put rows, each with one row mutated at random (a flipped byte,
   * cut short, bytes appended, not bytes at all), then opened twice: open must succeed,
   * give every row before the mutated one and nothing out of order, and the second open
   * must be clean. Returns what went wrong (empty: nothing).
   */
  async fuzz(seed: number, n: number): Promise<string[]> {
    let x = seed >>> 0 || 1;
    const rnd = (m: number) => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return (x >>> 0) % m; };
    const expected = ["f0", "f1", "f2", "f3", "f4", "f5"];
    const problems: string[] = [];
    for (let it = 0; it < n; it++) {
      const name = `fuzz-${seed}-${it}`;
      await wk.open(name, 21);
      for (let i = 0; i < expected.length; i++) await wk.put(name, expected[i]!, `value ${i} ${"x".repeat(i * 7)}`);
      await wk.close(name);
      const db = await rawDb(name);
      const keys = (await req(db.transaction("log").objectStore("log").getAllKeys())) as number[];
      const row = rnd(keys.length), mode = rnd(4);
      const tx = db.transaction("log", "readwrite");
      const b = ((await req(tx.objectStore("log").get(keys[row]!))) as Uint8Array).slice();
      const extra = crypto.getRandomValues(new Uint8Array(1 + rnd(20)));
      const mutated = mode === 0 ? (b[rnd(b.length)] ^= 1 << rnd(8), b) : mode === 1 ? b.subarray(0, rnd(b.length)) : mode === 2 ? "not bytes" : Uint8Array.of(...b, ...extra);
      tx.objectStore("log").put(mutated, keys[row]!);
      await txDone(tx);
      db.close();
      const what = `${name}: row ${row} mode ${mode}`;
      const first = await wk.open(name, 21);
      if (first !== "ok") { problems.push(`${what}: open ${first}`); continue; }
      const got = wk.keys(name);
      if (got.join() !== expected.slice(0, got.length).join() || got.length < row) problems.push(`${what}: keys ${got.join()}`);
      await wk.close(name);
      const again = await wk.open(name, 21);
      if (again !== "ok" || wk.warnings(name).length > 0 || wk.keys(name).join() !== got.join()) problems.push(`${what}: second open ${again} ${wk.warnings(name).join(" | ")}`);
      await wk.close(name);
      await deleteDb(name);
    }
    return problems;
  },
  dump,
  load,
  /** Every entry, tombstones included, as [key, value or null]; and the peers. */
  entries: (name: string) => ({ entries: [...nodes.get(name)!.scan("", { includeTombstones: true })].map((e) => [e.key, text(e.value)]), peers: nodes.get(name)!.peers() }),
  /** The fixture's history: a snapshot (a put, a delete, a peer), then log rows after it. */
  async writeFixture(name: string): Promise<string> {
    const n = nodes.get(name)!;
    await n.addPeer(2);
    for (let i = 0; i < 5; i++) await n.put(`snap/${i}`, `in the snapshot ${i}`);
    await n.delete("snap/4");
    await n.put("bytes", new Uint8Array([0, 1, 254, 255]));
    await n.persist();
    await Promise.all([n.put("log/a", "after the snapshot"), n.put("log/b", "same row"), n.delete("snap/0")]);
    await n.put("ключ/🔑", "unicode, its own row");
    return "ok";
  },
};

/** A dedicated module worker running this same helper (/worker.js imports /store.js): `wk.worker(expr)` evaluates there. */
let worker: Worker | null = null;
let calls = 0;
const answers = new Map<number, (v: unknown) => void>();
(wk as Record<string, unknown>).worker = (expr: string): Promise<unknown> => {
  if (worker === null) {
    worker = new Worker("/worker.js", { type: "module" });
    worker.onmessage = (e: MessageEvent<{ id: number; value: unknown }>) => { answers.get(e.data.id)?.(e.data.value); answers.delete(e.data.id); };
  }
  const id = calls++;
  return new Promise((resolve) => { answers.set(id, resolve); worker!.postMessage({ id, expr }); });
};
(wk as Record<string, unknown>).stopWorker = () => { worker?.terminate(); worker = null; return "ok"; };

(globalThis as unknown as { wk: typeof wk }).wk = wk;
(globalThis as unknown as { wkReady: boolean }).wkReady = true;
