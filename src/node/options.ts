/**
 * The options a caller hands to `Node.open` (NodeOptions, documented here) and `new
 * SyncManager`, and their checks before anything is opened: a value the code would silently misread (`fsync: "sometimes"`
 * never fsyncs, `intervalMs: 3e9` overflows setTimeout into a busy loop, `limits:
 * { maxKeys: "10" }` compares as a string) is refused with INVALID_ARGUMENT naming the
 * field and what it accepts. `undefined` always means "the default".
 *
 * Bounds are what the code can honour exactly: lengths the wire format carries
 * (≤ 2^31 − 1), sums that stay exact in a double (≤ 2^52), timers setTimeout can hold
 * (≤ 2^31 − 1 ms), and what a receiver accepts per envelope (MAX_ENVELOPE_ENTRIES).
 * Unknown fields are refused in the closed records (`limits`, `sync`, an fsync object)
 * where a typo would otherwise silently keep the default.
 */
import { MAX_ENVELOPE_ENTRIES } from "../sync/envelope.js";
import { WaveKVError } from "../core/errors.js";
import type { AdmitFn, FsyncPolicy, Limits } from "../core/types.js";
import type { SyncTuning } from "../sync/protocol.js";
import type { ReplayTarget, Storage, StorageTuning } from "../storage/interface.js";

export interface NodeOptions {
  /** This node's id, uint32, unique in the cluster. */
  id: number;
  /**
   * Initial peers (uint32 ids; our own id is ignored); more are discovered. Added to the durable membership.
   * @defaultValue `[]` (and the peers a data directory already records)
   */
  peers?: readonly number[];
  /** Data directory (a non-empty path); omit for an in-memory node (no WAL, no snapshot). */
  dir?: string;
  /** `"always"` (default), `"never"`, or `{ intervalMs }` with intervalMs an integer from 1 to 3 600 000. */
  fsync?: FsyncPolicy;
  /**
   * Each an integer (default `DEFAULT_LIMITS`): maxKeyBytes 1..65 536, maxValueBytes 1..2^31 − 1,
   * maxKeys 1..2^32 − 1, maxTotalBytes 1..2^52, maxClockDriftMs 1..2^48. Unknown fields are refused.
   */
  limits?: Partial<Limits>;
  /**
   * Return true to admit a remote entry, or a string: the reason to refuse it. Also applied to local writes.
   * @defaultValue none: every entry within `limits` is admitted
   */
  admit?: AdmitFn;
  /**
   * Wall clock in ms; injectable for tests and simulations.
   * @defaultValue `Date.now`
   */
  clock?: () => number;
  /**
   * Pagination and digest-repair tuning for sync (default `DEFAULT_SYNC_TUNING`): maxDeltaEntries
   * 1..65 536, maxDeltaBytes 1..2^31 − 1, digestCheckRounds ≥ 1, bucketRepairAttempts ≥ 0,
   * maxDiscoveredPeers 0..65 536, deltaBodies boolean, holdBack boolean. Unknown fields are refused.
   */
  sync?: Partial<SyncTuning>;
  /** WAL size that triggers an automatic snapshot (default 64 MiB; an integer ≥ 1, `Number.MAX_SAFE_INTEGER` for never). */
  snapshotWalBytes?: number;
  /** Recovery and background warnings (default: console.warn). */
  onWarning?: (message: string) => void;
  /**
   * With `dir`: `{ acceptDataLoss: true }` opens despite MISSING_SNAPSHOT / MISSING_WAL (loudly); `faults` is the I/O test seam.
   * Or, instead of `dir`, a storage factory: `browserStorage("name")` from `wavekv/browser`
   * (IndexedDB) or any `StorageFactory`; a factory together with `dir` is INVALID_ARGUMENT.
   * @defaultValue `{}`: missing files are refused, no faults
   */
  storage?: StorageTuning | StorageFactory;
}

/** What `Node.open` hands a storage factory. */
export interface StorageOpenContext {
  nodeId: number;
  /** Where the recovered records go (see `ReplayTarget`). */
  replay: ReplayTarget;
  /** The node's `fsync` option: "never" may relax durability. */
  fsync: FsyncPolicy;
  /** The node's `snapshotWalBytes`, if set. */
  snapshotWalBytes?: number;
  clock: () => number;
  /** Makes the uuid of a new store. */
  newUuid: () => string;
}

/** Opens (and replays) a node's storage: `NodeOptions.storage` in place of `dir`. */
export type StorageFactory = (ctx: StorageOpenContext) => Promise<Storage>;

/** Longest delay a timer honours (setTimeout fires at once above it). */
export const MAX_TIMER_MS = 2 ** 31 - 1;
const MAX_UINT32 = 0xffffffff;
/** Longest key or value the WAL and envelope formats carry (docs/FORMAT.md: varu ≤ 2^31 − 1). */
const MAX_WIRE_LENGTH = 2 ** 31 - 1;

type Check = (v: unknown) => boolean;
interface Field { check: Check; accepts: string }

const int = (min: number, max: number): Field => ({
  check: (v) => typeof v === "number" && Number.isSafeInteger(v) && v >= min && v <= max,
  accepts: `an integer from ${fmt(min)} to ${fmt(max)}`,
});
/** A duration: any number in range (timers take fractions of a ms). */
const ms = (min: number, max: number): Field => ({
  check: (v) => typeof v === "number" && v >= min && v <= max,
  accepts: `a number of ms from ${min} to ${fmt(max)}`,
});
const fn: Field = { check: (v) => typeof v === "function", accepts: "a function" };
const bool: Field = { check: (v) => typeof v === "boolean", accepts: "true or false" };

function fmt(n: number): string {
  if (n === MAX_UINT32) return "2^32 - 1";
  if (n === MAX_WIRE_LENGTH) return "2^31 - 1";
  if (n === Number.MAX_SAFE_INTEGER) return "2^53 - 1";
  if (n >= 2 ** 40 && Number.isInteger(Math.log2(n))) return `2^${Math.log2(n)}`;
  return String(n);
}

function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (typeof v === "function") return "a function";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object" && v !== null) {
    try { return JSON.stringify(v).slice(0, 60); } catch { return "an object"; }
  }
  return String(v);
}

function bad(where: string, field: string, accepts: string, got: unknown): WaveKVError {
  return new WaveKVError("INVALID_ARGUMENT", `${field === "" ? `${where}s` : `${where} ${field}`} must be ${accepts}, got ${show(got)}`);
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Checks a record: every known field present is valid; a `closed` one also refuses
 * unknown fields (a typo would silently keep the default).
 */
function record(where: string, name: string, value: unknown, fields: Record<string, Field>, closed: boolean): void {
  const names = Object.keys(fields);
  if (!isRecord(value)) throw bad(where, name, `an object with some of ${names.join(", ")}`, value);
  for (const [k, v] of Object.entries(value)) {
    const f = Object.hasOwn(fields, k) ? fields[k] : undefined;
    const path = name === "" ? k : `${name}.${k}`;
    if (f === undefined) {
      if (closed) throw bad(where, path, `one of the known fields (${names.join(", ")}), not an unknown one; it`, v);
      continue;
    }
    if (v !== undefined && !f.check(v)) throw bad(where, path, f.accepts, v);
  }
}

const LIMIT_FIELDS: Record<string, Field> = {
  maxKeyBytes: int(1, 65_536),
  maxValueBytes: int(1, MAX_WIRE_LENGTH),
  maxKeys: int(1, MAX_UINT32),
  // Sums of sizes are compared against it: exact in a double up to 2^53.
  maxTotalBytes: int(1, 2 ** 52),
  // Added to timestamps (≤ 2^53 in magnitude): kept far inside exact range.
  maxClockDriftMs: int(1, 2 ** 48),
};

const SYNC_TUNING_FIELDS: Record<string, Field> = {
  maxDeltaEntries: int(1, MAX_ENVELOPE_ENTRIES),
  maxDeltaBytes: int(1, MAX_WIRE_LENGTH),
  digestCheckRounds: int(1, 1_000_000),
  bucketRepairAttempts: int(0, 1_000_000),
  deltaBodies: bool,
  maxDiscoveredPeers: int(0, 65_536),
  holdBack: bool,
};

const FSYNC_ACCEPTS = `"always", "never" or { intervalMs: 1 to 3600000 }`;
const MAX_FSYNC_INTERVAL_MS = 3_600_000;

/** Every `Node.open` option (NodeOptions above). Throws INVALID_ARGUMENT; changes nothing. */
export function checkNodeOptions(opts: unknown): void {
  const where = "Node.open option";
  if (!isRecord(opts)) throw new WaveKVError("INVALID_ARGUMENT", `Node.open takes an options object ({ id, peers?, dir?, ... }), got ${show(opts)}`);
  const o = opts;
  if (!int(0, MAX_UINT32).check(o.id)) throw bad(where, "id", "an integer from 0 to 2^32 - 1 (unique in the cluster)", o.id);
  if (o.peers !== undefined) {
    if (!Array.isArray(o.peers)) throw bad(where, "peers", "an array of node ids (integers from 0 to 2^32 - 1)", o.peers);
    o.peers.forEach((p: unknown, i) => {
      if (!int(0, MAX_UINT32).check(p)) throw bad(where, `peers[${i}]`, "a node id (an integer from 0 to 2^32 - 1)", p);
    });
  }
  if (o.dir !== undefined && (typeof o.dir !== "string" || o.dir === "" || o.dir.includes("\0"))) {
    throw bad(where, "dir", "a non-empty path string (omit it for an in-memory node)", o.dir);
  }
  const f = o.fsync;
  if (f !== undefined && f !== "always" && f !== "never") {
    if (!isRecord(f) || Object.keys(f).some((k) => k !== "intervalMs")) throw bad(where, "fsync", FSYNC_ACCEPTS, f);
    if (!ms(1, MAX_FSYNC_INTERVAL_MS).check(f.intervalMs)) throw bad(where, "fsync.intervalMs", `a number of ms from 1 to ${MAX_FSYNC_INTERVAL_MS} between fsyncs`, f.intervalMs);
  }
  if (o.limits !== undefined) record(where, "limits", o.limits, LIMIT_FIELDS, true);
  for (const name of ["admit", "clock", "onWarning"] as const) {
    if (o[name] !== undefined && !fn.check(o[name])) throw bad(where, name, fn.accepts, o[name]);
  }
  if (o.sync !== undefined) record(where, "sync", o.sync, SYNC_TUNING_FIELDS, true);
  if (o.snapshotWalBytes !== undefined && !int(1, Number.MAX_SAFE_INTEGER).check(o.snapshotWalBytes)) {
    throw bad(where, "snapshotWalBytes", "an integer from 1 to 2^53 - 1 (WAL bytes that trigger a snapshot)", o.snapshotWalBytes);
  }
  if (typeof o.storage === "function") {
    if (o.dir !== undefined) throw bad(where, "dir", "omitted when storage is a storage factory (it keeps the data itself); it", o.dir);
  } else if (o.storage !== undefined) {
    // Open to new fields (it is the storage layer's tuning): only the known ones are typed here.
    if (!isRecord(o.storage)) throw bad(where, "storage", "an object { acceptDataLoss?, faults? } or a storage factory", o.storage);
    const s = o.storage;
    if (s.acceptDataLoss !== undefined && !bool.check(s.acceptDataLoss)) throw bad(where, "storage.acceptDataLoss", bool.accepts, s.acceptDataLoss);
    if (s.faults !== undefined && !fn.check(s.faults)) throw bad(where, "storage.faults", fn.accepts, s.faults);
  }
}

const SYNC_OPTION_FIELDS: Record<string, Field> = {
  intervalMs: ms(1, MAX_TIMER_MS),
  timeoutMs: ms(1, MAX_TIMER_MS),
  pushWindowMs: ms(0, MAX_TIMER_MS),
  push: bool,
  live: bool,
  maxPushEntries: int(1, 1 << 20),
  maxPushBytes: int(1, MAX_WIRE_LENGTH),
  mergeSliceEntries: int(1, MAX_ENVELOPE_ENTRIES),
  maxBackoffMs: ms(1, MAX_TIMER_MS),
  retryMs: ms(1, MAX_TIMER_MS),
  random: fn,
  onRound: fn,
  onWarning: fn,
};

/**
 * Every `new SyncManager(node, transport, opts)` option (src/node/manager.ts SyncOptions) this
 * module knows; fields it does not know are left to SyncManager's own checks.
 */
export function checkSyncOptions(opts: unknown): void {
  if (opts === undefined) return;
  record("SyncManager option", "", opts, SYNC_OPTION_FIELDS, false);
}

/** `over` on top of `base`, fields left undefined keeping the base value (as "the default" does everywhere). */
export function withDefaults<T extends object>(base: Readonly<T>, over: Partial<T> | undefined): T {
  const out = { ...base };
  for (const [k, v] of Object.entries(over ?? {})) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
