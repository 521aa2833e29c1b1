// SlotValues: where each live value's bytes are (own copy or a retained batch), and how
// long a retained batch lives: dropped when its last value leaves, compacted (survivors
// copied out) when under a quarter of it is still read, never mid-install.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { SlotValues } from "../../src/state/values.js";

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

test.run();
