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

/** Rewrites log row `which` ("last", or an index) of a closed store with `edit` applied to its bytes. */
async function editRow(name: string, which: "last" | number, edit: (b: Uint8Array) => Uint8Array): Promise<{ key: number; before: number; after: number }> {
  const db = await rawDb(name);
  try {
    const keys = (await req(db.transaction("log").objectStore("log").getAllKeys())) as number[];
    const key = keys[which === "last" ? keys.length - 1 : which]!;
    const tx = db.transaction("log", "readwrite");
    const store = tx.objectStore("log");
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

  /** Opens a node on store `name`: "ok" or the error code. */
  async open(name: string, id: number): Promise<string> {
    const w: string[] = [];
    warnings.set(name, w);
    try {
      const storage = browserStorage(name, { faults: (op) => { const f = op === "write" ? armed.get(name) : undefined; if (f) throw f(); } });
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
  persist: async (name: string) => { await nodes.get(name)!.persist(); return "ok"; },
  close: async (name: string) => { await nodes.get(name)?.close(); nodes.delete(name); return "ok"; },
  /** Arms the fault seam: the next commit of `name` throws a QuotaExceededError DOMException (until disarmed). */
  quotaFull: (name: string, on: boolean) => { if (on) armed.set(name, () => new DOMException("simulated: quota exceeded", "QuotaExceededError")); else armed.delete(name); },
  /** Flips one byte inside the last record's value (its CRC fails), in row `which`. */
  flipByte: (name: string, which: "last" | number) => editRow(name, which, (b) => { b[b.length - 2] ^= 0xff; return b; }),
  /** Cuts `n` bytes off row `which` (a value cut short). */
  truncate: (name: string, which: "last" | number, n: number) => editRow(name, which, (b) => b.subarray(0, b.length - n)),
  countRows,
};

(globalThis as unknown as { wk: typeof wk }).wk = wk;
(globalThis as unknown as { wkReady: boolean }).wkReady = true;
