/**
 * The IndexedDB database of a browser store (docs/FORMAT.md §7) and the few promise
 * wrappers over IDB requests, transactions and Web Locks that src/storage/browser-storage.ts
 * needs. No wrapper library: `idb` would replace these ~60 lines with a runtime dependency
 * and ~1.2 KiB more in the chunk, and it hides the one thing this store depends on
 * (`durability: "strict"` on each commit transaction).
 *
 *   const db = await openDatabase("notes");            // database "wavekv/notes", version 1
 *   const tx = db.transaction(["log"], "readwrite", { durability: "strict" });
 *   tx.objectStore("log").put(bytes, 7);
 *   await settled(tx);                                  // rejects with the transaction's error
 */
import { WaveKVError } from "../core/errors.js";

/** The database's schema version (IDB `version`): the object stores below. */
export const IDB_SCHEMA = 1;
/** Object stores: the store's identity, commit rows, snapshot chunks, damaged rows set aside at open. */
export const META = "meta", LOG = "log", SNAPSHOT = "snapshot", DAMAGED = "damaged";
/** The one key of META. */
export const META_KEY = "store";

/** The IndexedDB database name of the browser store `name`. */
export const databaseName = (name: string): string => `wavekv/${name}`;

/** The Web Locks name that keeps one open per origin. */
export const lockName = (name: string): string => `wavekv/${name}`;

/** `indexedDB` of this realm (a page, a worker), or an error saying there is none. */
function factory(): IDBFactory {
  const f = (globalThis as { indexedDB?: IDBFactory }).indexedDB;
  if (!f) throw new WaveKVError("IO", "IndexedDB is not available in this runtime: a browser store needs a page or a worker of a browser (omit storage for an in-memory node)");
  return f;
}

/** A request's result (or its error). */
export function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error ?? new Error("IndexedDB request failed"));
  });
}

/** Resolves when `tx` commits (durably, for a strict one); rejects with its error when it aborts. */
export function settled(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    // A request's error aborts the transaction: the abort carries it (QuotaExceededError among them).
    tx.onabort = () => reject(tx.error ?? new DOMException("transaction aborted", "AbortError"));
    tx.onerror = (e) => e.preventDefault(); // reported by onabort, once
  });
}

/** Opens (creating on first use) the database of store `name`. */
export function openDatabase(name: string): Promise<IDBDatabase> {
  const r = factory().open(databaseName(name), IDB_SCHEMA);
  r.onupgradeneeded = () => {
    const db = r.result;
    for (const s of [META, LOG, SNAPSHOT, DAMAGED]) if (!db.objectStoreNames.contains(s)) db.createObjectStore(s);
  };
  return request(r).catch((e: unknown) => {
    throw e instanceof WaveKVError ? e : storageError(e, `cannot open IndexedDB database ${databaseName(name)}`);
  });
}

/** Deletes store `name` (its database) for good. */
export function deleteDatabase(name: string): Promise<void> {
  return request(factory().deleteDatabase(databaseName(name))).then(() => undefined);
}

/** True for the errors a full quota shows as (DOMException QuotaExceededError; a fault seam's ENOSPC). */
export function isQuotaError(e: unknown): boolean {
  const o = e as { name?: unknown; code?: unknown } | null;
  return o?.name === "QuotaExceededError" || o?.code === "ENOSPC" || o?.code === "EDQUOT";
}

/** An IndexedDB failure as STORAGE_FULL (quota) or IO, saying what failed and what to do. */
export function storageError(e: unknown, what: string): WaveKVError {
  if (e instanceof WaveKVError) return e;
  const detail = e instanceof Error || e instanceof DOMException ? `${e.name}: ${e.message}` : String(e);
  if (isQuotaError(e)) {
    return new WaveKVError("STORAGE_FULL", `${what}: the origin's storage quota is used up (${detail}); nothing of this write was stored. Free space (delete data, other stores), or ask for more (navigator.storage.persist()), then reopen the node`, { cause: e });
  }
  return new WaveKVError("IO", `${what} (${detail})`, { cause: e });
}

/**
 * Takes the exclusive Web Lock of store `name` without waiting: its release function, or
 * LOCKED when another tab or worker of this origin holds it. The browser releases it when
 * the holder's page or worker goes away (a crash included). Without Web Locks (an
 * insecure context): null, and the caller says so.
 */
export async function acquireLock(name: string): Promise<(() => void) | null> {
  const locks = (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks;
  if (!locks) return null;
  let release!: () => void;
  const held = new Promise<void>((resolve) => { release = resolve; });
  const granted = await new Promise<boolean>((resolve, reject) => {
    locks.request(lockName(name), { mode: "exclusive", ifAvailable: true }, (lock) => {
      resolve(lock !== null);
      return lock !== null ? held : undefined;
    }).catch(reject);
  });
  if (!granted) {
    throw new WaveKVError("LOCKED", `browser store ${JSON.stringify(name)} is open in another tab or worker of this origin (Web Lock ${lockName(name)}): close the node there first, or share one node through a worker`);
  }
  return release;
}
