// Every option of Node.open and new SyncManager is checked before anything is opened
// (issue 16 §3): a bad value is INVALID_ARGUMENT naming the field and what it accepts,
// no directory is created or locked, and every good value still opens a working node.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Node, type NodeOptions } from "../../src/node/node.js";
import { SyncManager, type SyncOptions } from "../../src/node/manager.js";
import { MemoryNetwork } from "../../src/transport/memory.js";
import { WaveKVError } from "../../src/core/errors.js";
import { DEFAULT_LIMITS } from "../../src/core/types.js";
import { DEFAULT_SYNC_TUNING } from "../../src/sync/protocol.js";
import { rejectsWith } from "../helpers/cluster.js";
import { freshDirs } from "../helpers/storage-fixtures.js";

const fresh = freshDirs("options", test.after);

/** [what the caller passed (over { id: 1 }), the message must name this]. */
const BAD_NODE_OPTIONS: [Record<string, unknown>, RegExp][] = [
  [{ id: -1 }, /\bid must be an integer from 0 to 2\^32 - 1/],
  [{ id: 1.5 }, /\bid must be/],
  [{ id: 2 ** 32 }, /\bid must be/],
  [{ id: "1" }, /\bid must be.*got "1"/],
  [{ peers: 2 }, /\bpeers must be an array/],
  [{ peers: [2, -3] }, /peers\[1\] must be a node id/],
  [{ peers: [2, "3"] }, /peers\[1\] must be a node id/],
  [{ dir: 7 }, /\bdir must be a non-empty path string/],
  [{ dir: "" }, /\bdir must be/],
  [{ fsync: "sometimes" }, /fsync must be "always", "never" or \{ intervalMs/],
  [{ fsync: 10 }, /fsync must be "always", "never"/],
  [{ fsync: true }, /fsync must be/],
  [{ fsync: null }, /fsync must be/],
  [{ fsync: { intervalMs: -5 } }, /fsync\.intervalMs must be a number of ms from 1 to 3600000/],
  [{ fsync: { intervalMs: 0 } }, /fsync\.intervalMs must be/],
  [{ fsync: { intervalMs: "5" } }, /fsync\.intervalMs must be/],
  [{ fsync: { intervalMs: Infinity } }, /fsync\.intervalMs must be/],
  [{ fsync: { interval: 5 } }, /fsync must be/],
  [{ limits: 5 }, /limits must be an object/],
  [{ limits: { maxKeys: 0 } }, /limits\.maxKeys must be an integer from 1 to 2\^32 - 1, got 0/],
  [{ limits: { maxKeys: "10" } }, /limits\.maxKeys must be.*got "10"/],
  [{ limits: { maxKeys: NaN } }, /limits\.maxKeys must be/],
  [{ limits: { maxKeyBytes: 1e6 } }, /limits\.maxKeyBytes must be an integer from 1 to 65536/],
  [{ limits: { maxValueBytes: 2 ** 31 } }, /limits\.maxValueBytes must be an integer from 1 to 2\^31 - 1/],
  [{ limits: { maxValueBytes: Infinity } }, /limits\.maxValueBytes must be/],
  [{ limits: { maxTotalBytes: -1 } }, /limits\.maxTotalBytes must be an integer from 1 to 2\^52/],
  [{ limits: { maxClockDriftMs: 0.5 } }, /limits\.maxClockDriftMs must be an integer from 1 to 2\^48/],
  [{ limits: { maxKey: 10 } }, /limits\.maxKey must be one of the known fields \(maxKeyBytes, maxValueBytes, maxKeys, maxTotalBytes, maxClockDriftMs\)/],
  [{ admit: true }, /\badmit must be a function/],
  [{ clock: 1_764_000_000_000 }, /\bclock must be a function/],
  [{ onWarning: "console" }, /\bonWarning must be a function/],
  [{ sync: [] }, /\bsync must be an object/],
  [{ sync: { maxDeltaEntries: 0 } }, /sync\.maxDeltaEntries must be an integer from 1 to 65536/],
  [{ sync: { maxDeltaEntries: 100_000 } }, /sync\.maxDeltaEntries must be/],
  [{ sync: { maxDeltaBytes: -1 } }, /sync\.maxDeltaBytes must be/],
  [{ sync: { digestCheckRounds: 0 } }, /sync\.digestCheckRounds must be an integer from 1/],
  [{ sync: { bucketRepairAttempts: -1 } }, /sync\.bucketRepairAttempts must be an integer from 0/],
  [{ sync: { deltaBodies: "yes" } }, /sync\.deltaBodies must be true or false/],
  [{ sync: { holdBack: 1 } }, /sync\.holdBack must be true or false/],
  [{ sync: { maxDiscoveredPeers: 1e9 } }, /sync\.maxDiscoveredPeers must be an integer from 0 to 65536/],
  [{ sync: { digestRounds: 2 } }, /sync\.digestRounds must be one of the known fields/],
  [{ snapshotWalBytes: 0 }, /snapshotWalBytes must be an integer from 1 to 2\^53 - 1/],
  [{ snapshotWalBytes: "64M" }, /snapshotWalBytes must be/],
  [{ storage: true }, /\bstorage must be an object/],
  [{ storage: { acceptDataLoss: "yes" } }, /storage\.acceptDataLoss must be true or false/],
  [{ storage: { faults: {} } }, /storage\.faults must be a function/],
];

test("Node.open refuses each bad option with INVALID_ARGUMENT naming the field and the accepted values, and creates no directory", async () => {
  for (const [bad, message] of BAD_NODE_OPTIONS) {
    const dir = join(fresh(), "data");
    const opts = { id: 1, dir, ...bad } as unknown as NodeOptions;
    const err = await rejectsWith(Node.open(opts), "INVALID_ARGUMENT", message).catch((e: Error) => {
      throw new Error(`${JSON.stringify(bad)}: ${e.message}`);
    });
    assert.match(err.message, /^INVALID_ARGUMENT: Node\.open option /, `${JSON.stringify(bad)}: ${err.message}`);
    // Refused before anything was opened: bad input changes nothing.
    assert.not.ok(existsSync(dir), `${JSON.stringify(bad)} created ${dir}`);
  }
});

test("Node.open refuses what is not an options object", async () => {
  for (const v of [undefined, null, 1, "id=1", [1]]) {
    await rejectsWith(Node.open(v as unknown as NodeOptions), "INVALID_ARGUMENT", /Node\.open takes an options object/);
  }
});

test("every good value opens a working node: fsync modes, limits at their bounds, sync tuning, storage, and undefined meaning the default", async () => {
  const goods: Partial<NodeOptions>[] = [
    {},
    { fsync: "always" },
    { fsync: "never" },
    { fsync: { intervalMs: 5 } },
    { fsync: { intervalMs: 3_600_000 } },
    { fsync: { intervalMs: 2.5 } }, // `serve --fsync 2.5`: timers take fractions
    { peers: [], fsync: undefined, dir: undefined, storage: undefined, limits: undefined, sync: undefined },
    { peers: [1, 2, 0xffffffff] }, // our own id among the peers is ignored, as addPeer does
    { limits: { maxKeyBytes: 65_536, maxValueBytes: 2 ** 31 - 1, maxKeys: 0xffffffff, maxTotalBytes: 2 ** 52, maxClockDriftMs: 2 ** 48 } },
    { limits: { maxKeyBytes: 1, maxValueBytes: 1, maxKeys: 1, maxTotalBytes: 1 << 20, maxClockDriftMs: 1 } },
    { sync: { maxDeltaEntries: 65_536, maxDeltaBytes: 1, digestCheckRounds: 1, bucketRepairAttempts: 0, deltaBodies: false, maxDiscoveredPeers: 0, holdBack: false } },
    { snapshotWalBytes: Number.MAX_SAFE_INTEGER },
    { snapshotWalBytes: 1 },
    { storage: { acceptDataLoss: true, faults: () => undefined } },
    { admit: () => true, clock: () => 1_764_000_000_000, onWarning: () => undefined },
  ];
  for (const [i, good] of goods.entries()) {
    for (const durable of [false, true]) {
      const node = await Node.open({ id: 1, ...(durable ? { dir: join(fresh(), "data") } : {}), onWarning: () => undefined, ...good });
      try {
        const e = await node.put("k", "v");
        assert.is(node.get("k")?.seq, e.seq, `good option set ${i}`);
      } finally {
        await node.close();
      }
    }
  }
});

test("a limit or sync field left undefined keeps its default (it used to override it with undefined)", async () => {
  const node = await Node.open({ id: 1, limits: { maxKeys: undefined, maxValueBytes: 10 }, sync: { maxDeltaEntries: undefined } });
  assert.is(node.limits.maxKeys, DEFAULT_LIMITS.maxKeys);
  assert.is(node.limits.maxValueBytes, 10);
  // The default page size still pages: 3 entries go in one page.
  for (const k of ["a", "b", "c"]) await node.put(k, "v");
  assert.is(node.prepareSync(2).entries.length, 3);
  assert.ok(DEFAULT_SYNC_TUNING.maxDeltaEntries > 3);
  await node.close();
});

const BAD_SYNC_OPTIONS: [Record<string, unknown>, RegExp][] = [
  [{ intervalMs: 0 }, /SyncManager option intervalMs must be a number of ms from 1 to 2\^31 - 1/],
  [{ intervalMs: 3e9 }, /intervalMs must be/], // setTimeout would fire at once: a busy loop
  [{ intervalMs: "1000" }, /intervalMs must be.*got "1000"/],
  [{ timeoutMs: -1 }, /timeoutMs must be/],
  [{ timeoutMs: Infinity }, /timeoutMs must be/],
  [{ pushWindowMs: -1 }, /pushWindowMs must be a number of ms from 0/],
  [{ pushWindowMs: NaN }, /pushWindowMs must be/],
  [{ push: "no" }, /push must be true or false/],
  [{ maxPushEntries: 0 }, /maxPushEntries must be/],
  [{ maxPushBytes: 1.5 }, /maxPushBytes must be/],
  [{ mergeSliceEntries: 0 }, /mergeSliceEntries must be/],
  [{ maxBackoffMs: 2 ** 31 }, /maxBackoffMs must be/],
  [{ retryMs: 0 }, /SyncManager option retryMs must be a number of ms from 1 to 2\^31 - 1/],
  [{ retryMs: "100" }, /retryMs must be/],
  [{ random: 0.5 }, /random must be a function/],
  [{ onRound: {} }, /onRound must be a function/],
  [{ onWarning: null }, /onWarning must be a function/],
];

test("new SyncManager refuses each bad option the same way; good ones start and stop", async () => {
  const node = await Node.open({ id: 1, peers: [2] });
  const net = new MemoryNetwork({ seed: 1 });
  for (const [bad, message] of BAD_SYNC_OPTIONS) {
    try {
      new SyncManager(node, net.transport(1), bad as SyncOptions);
      assert.unreachable(`${JSON.stringify(bad)} was accepted`);
    } catch (e) {
      assert.instance(e, WaveKVError, String(e));
      assert.is((e as WaveKVError).code, "INVALID_ARGUMENT", `${JSON.stringify(bad)}: ${(e as Error).message}`);
      assert.match((e as Error).message, message, `${JSON.stringify(bad)}: ${(e as Error).message}`);
    }
  }
  assert.throws(() => new SyncManager(node, net.transport(1), 5 as unknown as SyncOptions), /SyncManager options must be an object/);
  const good: SyncOptions = { intervalMs: 1.5, timeoutMs: 1, pushWindowMs: 0, push: false, maxPushEntries: 1, maxPushBytes: 1, mergeSliceEntries: 1, maxBackoffMs: 1, retryMs: 1, random: () => 0.5, onRound: () => undefined, onWarning: () => undefined };
  const sync = new SyncManager(node, net.transport(1), good);
  sync.start();
  await sync.stop();
  await node.close();
});

test.run();
