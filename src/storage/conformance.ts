/**
 * The storage conformance suite (package subpath `wavekv/conformance`): the contract of
 * `Storage` (src/storage/interface.ts) as test cases any adapter runs, as abstract-level
 * and automerge-repo ship theirs. It registers its cases through the test functions the
 * caller passes in (uvu's `suite` and `assert`, or anything shaped like them), so the
 * package has no runtime dependency on a test framework, and it imports no `node:`
 * module, so a browser adapter can run it too.
 *
 *   import { suite } from "uvu";
 *   import * as assert from "uvu/assert";
 *   import { runStorageConformance } from "wavekv/conformance";
 *   runStorageConformance("my storage", {
 *     create: () => ({                          // one harness (and empty store) per case
 *       open: (replay) => openMine({ replay }), // the same data on every call
 *       failNext: () => { … },                  // optional capabilities: see StorageHarness
 *     }),
 *     can: { crash: false, corruptTail: false, failNext: true },  // false: those cases skip, out loud
 *   }, { suite, assert });
 *
 * Cases: an empty store; durability of resolved appends across close and reopen, in
 * call order (deferred appends too); reopen keeps the uuid and appends follow; a crash
 * keeps every resolved append; a torn last append is dropped, the rest kept; a snapshot
 * then the log, appends racing the snapshot kept; the failure latch. A case needing a
 * capability the harness lacks is registered as skipped, its name saying why.
 */
import { RecordKind, type DecodedBatch, type FramedRecords, type RecordInput } from "../core/record.js";
import { decodeRecords, encodePicked, encodeRecords } from "../codec/records.js";
import type { ReplaySink, ReplayTarget, Storage } from "./interface.js";

export type { AppendOptions, FaultHook, LatencyStats, RecoveredState, ReplayExpectation, ReplaySink, ReplayTarget, Storage } from "./interface.js";
export type { DecodedBatch, FramedRecords, RecordInput } from "../core/record.js";

/** One store under test. A new harness (and an empty store) is made for every case. */
export interface StorageHarness {
  /** Opens the store (empty the first time, the same data on every later call), replaying what it holds into `replay`. */
  open(replay: ReplayTarget): Promise<Storage>;
  /**
   * Simulates the process dying now, without `close`: afterwards `open` must see what
   * a restarted process would (what the store had written). Absent: crash cases skip.
   */
  crash?(storage: Storage): Promise<void>;
  /**
   * Called with the store closed: damages its last append as a write cut short by a
   * crash does (part of its bytes reached the medium, the rest did not). Absent: the
   * torn-tail case skips.
   */
  corruptTail?(): Promise<void>;
  /** Makes the next append's write fail as the medium would (EIO, ENOSPC). Absent: the latch case skips. */
  failNext?(): void;
  /** Removes the store's data after the case (optional). */
  destroy?(): Promise<void>;
}

/** The part of a uvu-like suite the cases are registered with. */
export interface ConformanceSuite {
  (name: string, fn: () => void | Promise<void>): void;
  skip(name: string, fn: () => void | Promise<void>): void;
  run(): void;
}

/** The assertions the cases use (uvu/assert's names). */
export interface ConformanceAssert {
  is(actual: unknown, expected: unknown, message?: string): void;
  equal(actual: unknown, expected: unknown, message?: string): void;
  ok(actual: unknown, message?: string): void;
}

/** A record as the cases compare it: key and value as text/hex, no timestamp for kinds 2–4 (they carry none). */
export interface PlainRecord {
  kind: number;
  key: string;
  value: string | null;
  timestamp: number;
  node: number;
  seq: number;
}

const hex = (b: Uint8Array | null): string | null => {
  if (b === null) return null;
  let s = "";
  for (let i = 0; i < b.length; i++) s += b[i]!.toString(16).padStart(2, "0");
  return s;
};

/** `r` as the cases compare it. */
export function plainRecord(r: RecordInput): PlainRecord {
  const key = typeof r.key === "string" ? r.key : new TextDecoder().decode(r.key);
  return { kind: r.kind, key, value: r.kind === RecordKind.Value ? hex(r.value) : null, timestamp: r.kind <= RecordKind.Value ? r.timestamp : 0, node: r.node, seq: r.seq };
}

/** The records of `batch`, copied out (a batch is the storage's only during `ReplaySink.apply`). */
export function plainRecords(batch: DecodedBatch): PlainRecord[] {
  const out: PlainRecord[] = [];
  for (let i = 0; i < batch.count; i++) {
    const kind = batch.kind(i);
    out.push({ kind, key: batch.key(i), value: kind === RecordKind.Value ? hex(batch.value(i)) : null, timestamp: kind <= RecordKind.Value ? batch.timestamp(i) : 0, node: batch.node(i), seq: batch.seq(i) });
  }
  return out;
}

/** A replay target that copies every record out; `abandon` empties it (the store starts over). */
export function collectingReplay(): { replay: ReplayTarget; records: PlainRecord[]; uuid: () => string | null } {
  const records: PlainRecord[] = [];
  let uuid: string | null = null;
  const replay: ReplayTarget = (id): ReplaySink => {
    uuid = id;
    return {
      apply: (batch) => { records.push(...plainRecords(batch)); },
      abandon: () => { records.length = 0; },
    };
  };
  return { replay, records, uuid: () => uuid };
}

const T0 = 1_700_000_000_000;

/** Record `id` of a case: a value (or every 5th a tombstone), deterministic in `id`. */
function rec(id: number, tag = "v"): RecordInput {
  if (id % 5 === 4) return { kind: RecordKind.Tombstone, key: `k/${id}`, value: null, timestamp: T0 + id, node: 1 + (id % 3), seq: id };
  const value = new TextEncoder().encode(`${tag}${id}:${"x".repeat(id % 23)}`);
  return { kind: RecordKind.Value, key: `k/${id}`, value, timestamp: T0 + id, node: 1 + (id % 3), seq: id };
}

const recs = (from: number, n: number, tag?: string): RecordInput[] => Array.from({ length: n }, (_, i) => rec(from + i, tag));
const plains = (rs: readonly RecordInput[]): PlainRecord[] => rs.map(plainRecord);

/** Capabilities a harness may lack: the cases that need them are skipped (and say so) where `false`. */
export type Capability = "crash" | "corruptTail" | "failNext";

/** What `runStorageConformance` tests: a factory of fresh stores and the capabilities its harnesses have. */
export interface StorageAdapter {
  /** A new harness over a new, empty store (one per case). */
  create(): StorageHarness | Promise<StorageHarness>;
  /** Declared, not guessed: a case whose capability is `true` fails if the harness lacks the method. */
  can: Record<Capability, boolean>;
}

/**
 * Registers the conformance cases for `adapter` on a suite named after `name` and runs
 * it. Cases needing a capability the adapter declares `false` are registered with
 * `suite.skip`, their names ending in why.
 */
export function runStorageConformance(name: string, adapter: StorageAdapter, t: { suite: (name: string) => ConformanceSuite; assert: ConformanceAssert }): void {
  const { assert } = t;
  const test = t.suite(`storage conformance: ${name}`);
  const add = (title: string, needs: readonly Capability[], body: (h: StorageHarness) => Promise<void>) => {
    const lacking = needs.filter((n) => !adapter.can[n]);
    if (lacking.length > 0) {
      const why = `the adapter declares no ${lacking.join(", ")}`;
      // Said out loud: a runner's skip count alone does not say which contract went unchecked.
      console.warn(`storage conformance: ${name}: SKIPPED "${title}": ${why}`);
      test.skip(`${title} [skipped: ${why}]`, () => {});
      return;
    }
    test(title, async () => {
      const h = await adapter.create();
      for (const n of needs) if (typeof h[n] !== "function") throw new Error(`the adapter declares ${n} but its harness has no ${n}()`);
      try {
        await body(h);
      } finally {
        await h.destroy?.();
      }
    });
  };

  /** Opens with a collecting replay: the store, what it replayed, and the uuid it gave. */
  const open = async (h: StorageHarness) => {
    const c = collectingReplay();
    const storage = await h.open(c.replay);
    return { storage, records: c.records, uuid: c.uuid() ?? storage.recovered.uuid };
  };
  const replayed = async (h: StorageHarness): Promise<PlainRecord[]> => {
    const { storage, records } = await open(h);
    await storage.close();
    return records;
  };
  /** `rest` is a prefix of `of`, shorter than it when `proper`. */
  const prefixOf = (rest: readonly PlainRecord[], of: readonly PlainRecord[], what: string, proper = false) => {
    assert.ok(proper ? rest.length < of.length : rest.length <= of.length, `${what}: ${rest.length} record(s) where at most ${of.length - (proper ? 1 : 0)} may be`);
    assert.equal(rest, of.slice(0, rest.length), `${what}: records in call order, nothing else`);
  };

  add("an empty store opens with no records, a uuid and no failure", [], async (h) => {
    const { storage, records, uuid } = await open(h);
    assert.equal(records, [], "nothing replayed");
    assert.ok(typeof uuid === "string" && uuid.length > 0, `a uuid (${uuid})`);
    assert.is(storage.recovered.uuid, uuid, "the uuid the replay was given is the recovered one");
    assert.is(storage.failure, null);
    await storage.close();
  });

  add("durability: every resolved append is replayed after close and reopen, in call order (deferred ones too)", [], async (h) => {
    const { storage } = await open(h);
    const batches = Array.from({ length: 24 }, (_, i) => recs(1 + i * 7, 1 + (i % 7)));
    // Issued together: call order is log order, whether or not an append may wait for a group write.
    await Promise.all(batches.map((b, i) => storage.append(b, i % 2 === 0 ? { defer: true } : undefined)));
    await storage.append([]); // an empty append is a no-op
    assert.is(storage.failure, null);
    await storage.close();
    assert.equal(await replayed(h), plains(batches.flat()), "every record, in call order");
    assert.equal(await replayed(h), plains(batches.flat()), "and again: open changes nothing");
  });

  add("framed appends (a merged batch's winners): framed once, before append returns, against the store's base; replayed in call order with the rest", [], async (h) => {
    const { storage } = await open(h);
    // A remote batch as a node merges it: decoded, some records win, the kernel frames those.
    const remote = recs(500, 12, "r");
    const batch = decodeRecords(encodeRecords(remote, "bare", 0), "bare", 0);
    const picks = Uint32Array.of(0, 2, 3, 7, 11);
    const winners = [...picks].map((i) => remote[i]!);
    let framed = 0;
    const framedRecords: FramedRecords = {
      count: picks.length,
      frame: (base) => { framed++; return encodePicked(batch, picks, 1, "framed", base); },
    };
    const before = recs(1, 4), after = recs(10, 3);
    const first = storage.append(before, { defer: true });
    const middle = storage.append(framedRecords);
    assert.is(framed, 1, "framed once, before append returned");
    batch.release(); // the merge is over: the batch is gone
    const last = storage.append(after, { defer: true });
    await Promise.all([first, middle, last]);
    await storage.append({ count: 0, frame: () => { throw new Error("an empty framed append is not framed"); } });
    assert.is(storage.failure, null);
    await storage.close();
    assert.equal(await replayed(h), plains([...before, ...winners, ...after]), "the winners, timestamps intact, between the appends around them");
  });

  add("reopen: the uuid is kept, appends after a reopen follow, close is idempotent and ends appends", [], async (h) => {
    const a = recs(1, 5), b = recs(6, 5);
    const first = await open(h);
    await first.storage.append(a);
    await first.storage.close();
    await first.storage.close();
    let refused: unknown = null;
    await first.storage.append(recs(100, 1)).catch((e: unknown) => { refused = e; });
    assert.ok(refused instanceof Error, "an append after close rejects");
    const second = await open(h);
    assert.is(second.uuid, first.uuid, "the uuid is the store's, kept across opens");
    assert.equal(second.records, plains(a));
    await second.storage.append(b);
    await second.storage.close();
    assert.equal(await replayed(h), plains([...a, ...b]), "the appends of both sessions, in order");
  });

  add("crash: every resolved append survives; what was not resolved is all or a prefix, never out of order", ["crash"], async (h) => {
    const { storage } = await open(h);
    const resolved = Array.from({ length: 10 }, (_, i) => recs(1 + i * 3, 3));
    for (const b of resolved) await storage.append(b);
    const pending = recs(1000, 4);
    const late = storage.append(pending).catch(() => {});
    await h.crash!(storage);
    await late;
    const got = await replayed(h);
    const acked = plains(resolved.flat());
    assert.equal(got.slice(0, acked.length), acked, "every resolved append, in order");
    prefixOf(got.slice(acked.length), plains(pending), "after them");
  });

  add("torn tail: a partial last append is dropped at open, everything before it kept, appends go on", ["corruptTail"], async (h) => {
    const a = recs(1, 12), b = recs(50, 3), c = recs(80, 2);
    const first = await open(h);
    await first.storage.append(a);
    await first.storage.append(b);
    await first.storage.close();
    await h.corruptTail!();
    const second = await open(h);
    assert.equal(second.records.slice(0, a.length), plains(a), "everything before the torn append");
    const kept = second.records.slice(a.length);
    prefixOf(kept, plains(b), "of the torn append", true);
    assert.ok(second.storage.recovered.warnings.length > 0, "open says what it dropped");
    await second.storage.append(c);
    await second.storage.close();
    assert.equal(await replayed(h), plains([...a, ...b.slice(0, kept.length), ...c]), "appends after the repair follow the kept records");
  });

  add("snapshot + log: open replays the snapshot's records, then the appends after it; appends racing the snapshot are kept", [], async (h) => {
    const { storage } = await open(h);
    await storage.append(recs(1, 10));
    // The state the snapshot holds: anything the caller says (here: newer values of the same keys).
    const state = recs(1, 10, "s");
    let collected = 0;
    const taken = storage.snapshot(() => { collected++; return state; });
    assert.is(collected, 1, "collect is called once, before snapshot() returns");
    const racing = recs(200, 3);
    const raced = storage.append(racing);
    await taken;
    await raced;
    const after = recs(300, 4);
    await storage.append(after);
    await storage.close();
    assert.equal(await replayed(h), plains([...state, ...racing, ...after]), "snapshot, then the log after it");
    // A second snapshot replaces the first.
    const again = await open(h);
    const state2 = recs(400, 6);
    await again.storage.snapshot(() => state2);
    await again.storage.close();
    assert.equal(await replayed(h), plains(state2), "only the newest snapshot");
  });

  add("failure latch: after a failed append every later one rejects, and nothing after the failure is replayed", ["failNext"], async (h) => {
    const a = recs(1, 6), b = recs(20, 3), c = recs(40, 3), d = recs(60, 2);
    const first = await open(h);
    await first.storage.append(a);
    h.failNext!();
    const outcome = (p: Promise<void>) => p.then(() => null, (e: unknown) => e);
    const failed = await outcome(first.storage.append(b));
    assert.ok(failed instanceof Error, "the failed append rejects");
    assert.ok(first.storage.failure instanceof Error, "and the store is latched");
    assert.ok((await outcome(first.storage.append(c))) instanceof Error, "a later append rejects too");
    assert.ok((await outcome(first.storage.snapshot(() => a))) instanceof Error, "so does a snapshot");
    await first.storage.close().catch(() => {});
    const second = await open(h);
    assert.equal(second.records.slice(0, a.length), plains(a), "the appends before the failure");
    // The failed write may have left part of its records (a torn tail): never anything later.
    prefixOf(second.records.slice(a.length), plains(b), "after them");
    assert.is(second.storage.failure, null, "a reopened store is healthy");
    await second.storage.append(d);
    await second.storage.close();
    const last = await replayed(h);
    assert.equal(last.slice(-d.length), plains(d), "appends after the reopen are kept");
  });

  test.run();
}
