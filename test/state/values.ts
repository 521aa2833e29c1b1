// SlotValues: where each live value's bytes are (the arena or a retained batch), and how
// long a buffer lives: dropped when its last value leaves, compacted (survivors copied
// into the arena) when under a quarter of it is still read, never mid-install.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ARENA_CHUNK, SlotValues } from "../../src/state/values.js";

/** Winner triples (entry, slot, prev) for `slots`: what beginApply reads (slots at 1 mod 3). */
const triples = (slots: number[]) => new Uint32Array(slots.flatMap((s, i) => [i, s, 0]));

test("own copies and retained ranges read back; lengths without reading", () => {
  const v = new SlotValues();
  v.ensure(4);
  v.set(0, new Uint8Array([9, 9]));
  const bytes = Uint8Array.from({ length: 100 }, (_, i) => i);
  const id = v.beginApply(null, bytes, triples([1, 2]));
  v.setRetained(1, id, 10, 30);
  v.setRetained(2, id, 50, 40);
  v.endApply(id);
  assert.equal([...v.get(0)], [9, 9]);
  assert.equal([...v.get(1)], Array.from({ length: 30 }, (_, i) => 10 + i));
  assert.is(v.get(1).buffer, bytes.buffer, "a view of the retained batch, not a copy");
  assert.equal([v.lengthAt(0), v.lengthAt(1), v.lengthAt(2), v.lengthAt(3)], [2, 30, 40, 0]);
  assert.is(v.get(3).length, 0, "a slot with no bytes reads empty");
  assert.is(v.retainedBytes, 100);
});

test("a retained batch is compacted under a quarter live, dropped when nothing reads it", () => {
  const v = new SlotValues();
  v.ensure(3);
  const bytes = Uint8Array.from({ length: 100 }, (_, i) => i);
  const id = v.beginApply(null, bytes, triples([0, 1, 2]));
  v.setRetained(0, id, 0, 40);
  v.setRetained(1, id, 40, 40);
  v.setRetained(2, id, 80, 20);
  v.endApply(id);
  v.clear(0);
  assert.is(v.retainedBytes, 100, "60 of 100 still live: kept");
  v.clear(1);
  assert.is(v.retainedBytes, 0, "20 of 100 live: the survivor is copied out");
  assert.equal([...v.get(2)], Array.from({ length: 20 }, (_, i) => 80 + i));
  assert.is.not(v.get(2).buffer, bytes.buffer, "an own copy now");
  v.clear(2);
  assert.is(v.lengthAt(2), 0);

  const again = v.beginApply(null, new Uint8Array(10), triples([0]));
  v.setRetained(0, again, 0, 10);
  v.endApply(again);
  v.clear(0);
  assert.is(v.retainedBytes, 0, "the last value left: dropped");
});

test("not dropped mid-install: a batch that overwrites its own value keeps the buffer until endApply", () => {
  const v = new SlotValues();
  v.ensure(1);
  const bytes = new Uint8Array(20).fill(7);
  const id = v.beginApply(null, bytes, triples([0, 0]));
  v.setRetained(0, id, 0, 10);
  v.clear(0); // the same key again, later in the batch: live drops to 0 mid-install
  v.setRetained(0, id, 10, 10);
  v.endApply(id);
  assert.is(v.retainedBytes, 20);
  assert.is(v.lengthAt(0), 10);
  v.dispose();
  assert.is(v.retainedBytes, 0);
});

test("a put value is a copy in the arena: the caller's array may change, no object per value", () => {
  const v = new SlotValues();
  const mine = new Uint8Array([1, 2, 3]);
  v.set(5, mine);
  mine[0] = 99;
  assert.equal([...v.get(5)], [1, 2, 3]);
  v.set(6, new Uint8Array(0));
  assert.is(v.lengthAt(6), 0, "an empty value holds no bytes");
  assert.is(v.get(5).buffer, v.get(5).buffer, "slots share one chunk");
  assert.is(v.arenaBytes, 3);
  assert.is(v.retainedBytes, 0, "the arena is not a retained batch");
  const big = new Uint8Array(ARENA_CHUNK).fill(4);
  v.set(7, big);
  assert.is(v.get(7).length, ARENA_CHUNK);
  assert.is.not(v.get(7).buffer, v.get(5).buffer, "a large value gets a buffer of its own");
  v.clear(7);
  assert.is(v.arenaBytes, 3, "and it goes with its value");
});

test("overwrites cannot pin dead chunks: the arena stays within 4x its live bytes plus a chunk", () => {
  const v = new SlotValues();
  const keys = 2_000, len = 700;
  const held = new Map<number, Uint8Array>();
  const view = v.get(0);
  for (let round = 0; round < 12; round++) {
    for (let k = 0; k < keys; k++) {
      if ((k * 7 + round) % 3 === 0 && round > 0) continue;
      const val = new Uint8Array(len).fill((k + round) & 255);
      v.clear(k);
      v.set(k, val);
      held.set(k, val);
    }
    const live = keys * len;
    assert.ok(v.arenaBytes <= live * 4 + ARENA_CHUNK, `round ${round}: ${v.arenaBytes} B for ${live} live`);
  }
  for (const [k, val] of held) assert.equal(v.get(k), val, `slot ${k}`);
  assert.is(view.length, 0);
});

test("a chunk emptied while it was filled is dropped when the next one opens", () => {
  const v = new SlotValues();
  const fit = Math.floor(ARENA_CHUNK / 1000);
  for (let k = 0; k < fit; k++) v.set(k, new Uint8Array(1000));
  for (let k = 0; k < fit; k++) v.clear(k); // the chunk being filled is not checked on clear
  assert.is(v.arenaBytes, fit * 1000);
  v.set(0, new Uint8Array(1000)); // opens the next chunk: the first is closed and checked
  assert.is(v.arenaBytes, 1000);
});

test("a view handed out keeps its bytes when its chunk is compacted away", () => {
  const v = new SlotValues();
  const n = Math.ceil(ARENA_CHUNK / 1000) + 1;
  for (let k = 0; k < n; k++) v.set(k, new Uint8Array(1000).fill(k & 255));
  const first = v.get(0);
  for (let k = 1; k < n; k++) v.clear(k); // the first chunk falls under a quarter live: compacted
  assert.equal([...first.subarray(0, 3)], [0, 0, 0]);
  assert.equal(v.get(0), new Uint8Array(1000).fill(0));
  assert.is.not(v.get(0).buffer, first.buffer, "moved to the chunk being filled");
});

test("a compaction that opens a chunk mid-copy keeps every value (a slot listed twice in the old chunk)", () => {
  const v = new SlotValues();
  const val = (tag: number) => new Uint8Array(1000).fill(tag);
  const fit = Math.floor(ARENA_CHUNK / 1000); // values per chunk
  v.set(0, val(1));
  v.clear(0);
  v.set(0, val(2)); // slot 0 listed twice in the first chunk
  for (let k = 1; k < fit - 1; k++) v.set(k, val(k & 255));
  for (let k = 0; k < fit; k++) v.set(10_000 + k, val(3)); // fills the second chunk but for < 1000 B
  for (let k = 1; k < fit - 1; k++) v.clear(k); // the first chunk is compacted: slot 0 opens the third
  assert.equal(v.get(0), val(2));
  for (let k = 0; k < fit; k++) assert.is(v.get(10_000 + k)[999], 3);
  assert.ok(v.arenaBytes <= 2 * ARENA_CHUNK, `${v.arenaBytes} B`);
});

test("a view handed out never shows another value: its chunk is not reused, in this store or another", () => {
  // Chunks freed with no view ever built into them are reused (no fresh pages per put);
  // one that handed out a view is left to the GC, so the caller's view stays its value.
  const fit = Math.floor(ARENA_CHUNK / 1000);
  const a = new SlotValues();
  for (let k = 0; k < 2 * fit; k++) a.set(k, new Uint8Array(1000).fill(1 + (k & 127)));
  const held = a.get(3); // a view into the first chunk
  const want = new Uint8Array(1000).fill(4);
  assert.equal(held, want);
  for (let k = 0; k < 2 * fit; k++) a.clear(k); // both chunks empty: the first is viewed, the second is not
  for (let k = 0; k < 4 * fit; k++) a.set(k, new Uint8Array(1000).fill(200)); // reuses what it may
  assert.equal(held, want, "compaction and reuse within the store");
  a.dispose();
  const b = new SlotValues();
  for (let k = 0; k < 6 * fit; k++) b.set(k, new Uint8Array(1000).fill(201));
  assert.equal(held, want, "another store's puts after dispose");
  assert.is(b.get(0)[0], 201);
  b.dispose();
});

test("a reused chunk reads as a fresh one: its old bytes are zeroed, reads see only their own value", () => {
  const fit = Math.floor(ARENA_CHUNK / 1000);
  const a = new SlotValues();
  for (let k = 0; k < fit + 1; k++) a.set(k, new Uint8Array(1000).fill(9)); // one full chunk, one opened
  a.dispose(); // nothing was read: both go back unviewed
  const b = new SlotValues();
  b.set(0, new Uint8Array([1, 2, 3]));
  const v = b.get(0);
  assert.equal([...v], [1, 2, 3]);
  const whole = new Uint8Array(v.buffer);
  assert.ok(whole.length === ARENA_CHUNK, "an arena chunk");
  let dirty = 0;
  for (let i = v.byteOffset + 3; i < whole.length; i++) dirty |= whole[i]!;
  assert.is(dirty, 0, "nothing of the disposed store is left in the chunk");
  b.dispose();
});

test("model check: random puts, clears and batches read back exactly what the model holds", () => {
  let x = 12345;
  const rnd = (n: number) => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return (x >>> 0) % n; };
  const v = new SlotValues();
  const model = new Map<number, Uint8Array>();
  const slots = 300;
  v.ensure(slots);
  for (let step = 0; step < 6_000; step++) {
    const op = rnd(10);
    if (op < 6) {
      const slot = rnd(slots);
      const len = rnd(50) === 0 ? ARENA_CHUNK / 8 + rnd(100) : rnd(3) === 0 ? 0 : rnd(3) === 0 ? rnd(100) : rnd(40_000);
      const val = new Uint8Array(len).fill(rnd(256));
      for (let i = 0; i < Math.min(len, 8); i++) val[rnd(len)] = rnd(256);
      v.clear(slot);
      v.set(slot, val);
      model.set(slot, val);
    } else if (op < 8) {
      const slot = rnd(slots);
      v.clear(slot);
      model.delete(slot);
    } else {
      const picked = Array.from({ length: 1 + rnd(20) }, () => rnd(slots));
      const bytes = Uint8Array.from({ length: picked.length * 50 }, () => rnd(256));
      const id = v.beginApply(null, bytes, triples(picked));
      picked.forEach((slot, i) => {
        v.clear(slot);
        v.setRetained(slot, id, i * 50, 50);
        model.set(slot, bytes.slice(i * 50, i * 50 + 50));
      });
      v.endApply(id);
    }
    if (step % 500 === 0 || step > 5_900) {
      for (let s = 0; s < slots; s++) {
        const want = model.get(s) ?? new Uint8Array(0);
        assert.is(v.lengthAt(s), want.length);
        assert.equal(v.get(s), want, `slot ${s} at step ${step}`);
      }
    }
  }
  v.dispose();
  assert.is(v.arenaBytes + v.retainedBytes, 0);
});

test.run();
