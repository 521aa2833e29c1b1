// Node.open({ storage: factory }): a storage factory in place of `dir` (how a browser node
// gets its IndexedDB store, `browserStorage(name)`), checked on Node and Bun with the file
// storage wrapped as a factory; the option checks; and browserStorage where there is no
// IndexedDB (a clear IO error, not a crash).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Node, browserStorage, isWaveKVError, type StorageOpenContext } from "../../src/browser.js";
import { openStorage } from "../../src/storage/storage.js";
import { freshDirs } from "../helpers/storage-fixtures.js";

const dirs = { make: freshDirs("wavekv-factory-", test.after) };

const rejection = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => e);

test("a factory opens the node's storage: it gets the node's id, fsync, clock, replay and a uuid maker; data survives a reopen", async () => {
  const dir = dirs.make();
  const seen: StorageOpenContext[] = [];
  const factory = async (ctx: StorageOpenContext) => {
    seen.push(ctx);
    return openStorage({ dir, nodeId: ctx.nodeId, fsync: ctx.fsync, clock: ctx.clock, replay: ctx.replay, snapshotWalBytes: ctx.snapshotWalBytes });
  };
  const clock = () => 1_700_000_000_000;
  const a = await Node.open({ id: 4, storage: factory, fsync: "never", clock, snapshotWalBytes: 1 << 20 });
  await a.put("k", "v");
  await a.addPeer(9);
  assert.ok(a.status().wal, "the node has storage");
  await a.close();
  const b = await Node.open({ id: 4, storage: factory });
  assert.is(new TextDecoder().decode(b.get("k")!.value!), "v");
  assert.equal(b.peers(), [9]);
  assert.is(b.uuid, a.uuid, "the uuid is the storage's");
  await b.close();
  assert.is(seen[0]!.nodeId, 4);
  assert.is(seen[0]!.fsync, "never");
  assert.is(seen[0]!.clock, clock);
  assert.is(seen[0]!.snapshotWalBytes, 1 << 20);
  assert.is(seen[1]!.fsync, "always", "the default policy");
  assert.match(seen[0]!.newUuid(), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

test("a factory and dir together are INVALID_ARGUMENT naming dir; a factory's failure is Node.open's, nothing opened", async () => {
  const both = await rejection(Node.open({ id: 1, dir: dirs.make(), storage: browserStorage("x") }));
  assert.ok(isWaveKVError(both, "INVALID_ARGUMENT"), String(both));
  assert.match(String(both), /option dir must be omitted when storage is a storage factory/);
  const bad = await rejection(Node.open({ id: 1, storage: 7 as never }));
  assert.match(String(bad), /storage must be an object \{ acceptDataLoss\?, faults\? \} or a storage factory, got 7/);
  const failing = await rejection(Node.open({ id: 1, storage: async () => { throw new Error("no room"); } }));
  assert.match(String(failing), /no room/);
});

test("browserStorage where there is no IndexedDB (Node, Bun): IO saying what it needs", async () => {
  const err = await rejection(Node.open({ id: 1, storage: browserStorage("notes") }));
  if ((globalThis as { indexedDB?: unknown }).indexedDB === undefined) {
    assert.ok(isWaveKVError(err, "IO"), String(err));
    assert.match(String(err), /IndexedDB is not available in this runtime/);
  }
  const empty = await rejection(Node.open({ id: 1, storage: browserStorage("") }));
  assert.ok(isWaveKVError(empty, "INVALID_ARGUMENT"), String(empty));
});

test.run();
