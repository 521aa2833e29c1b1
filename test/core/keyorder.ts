// compareKeys (src/core/keyorder.ts) must order keys exactly as their UTF-8 bytes compare:
// checked against Buffer.compare on random strings, astral characters and the
// surrogate / U+E000–U+FFFF boundary where UTF-16 code-unit order disagrees.
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { compareKeys } from "../../src/core/keyorder.js";

const utf8 = (s: string) => Buffer.from(s, "utf8");
const byteOrder = (a: string, b: string) => Math.sign(Buffer.compare(utf8(a), utf8(b)));

// Characters at every UTF-8 length boundary, both sides of the surrogate range, astral.
const EDGES = ["", "\u0000", "a", "\u007f", "\u0080", "\u07ff", "\u0800", "\ud7ff", "\ue000", "\uf8ff", "\uffef", "\ufffd", "\uffff",
  "\u{10000}", "😀", "😁", "\u{1f9ff}", "\u{10ffff}"];
const edgyString = fc.array(fc.constantFrom(...EDGES), { maxLength: 6 }).map((parts) => parts.join(""));
const anyString = fc.oneof(fc.string({ unit: "binary", maxLength: 16 }), fc.string({ maxLength: 16 }), edgyString);

test("known disagreements of UTF-16 order are resolved in UTF-8 order", () => {
  assert.ok("\uffff" > "😀", "UTF-16 puts U+FFFF after U+1F600");
  assert.ok(compareKeys("\uffff", "😀") < 0, "UTF-8 puts it before");
  assert.ok(compareKeys("\ue000", "\u{10000}") < 0);
  assert.ok(compareKeys("a😀", "a\uffff") > 0);
  assert.is(compareKeys("same", "same"), 0);
  assert.ok(compareKeys("ab", "abc") < 0, "a prefix sorts first");
  assert.ok(compareKeys("", "\u0000") < 0);
});

test("compareKeys agrees with Buffer.compare of UTF-8 bytes (property)", () => {
  fc.assert(
    fc.property(anyString, anyString, (a, b) => {
      assert.is(Math.sign(compareKeys(a, b)), byteOrder(a, b), JSON.stringify([a, b]));
    }),
    { numRuns: 5000 },
  );
});

test("shared prefixes: the first differing character decides (property)", () => {
  fc.assert(
    fc.property(anyString, anyString, anyString, (p, a, b) => {
      assert.is(Math.sign(compareKeys(p + a, p + b)), byteOrder(p + a, p + b));
    }),
    { numRuns: 2000 },
  );
});

test("sorting with compareKeys = sorting by UTF-8 bytes (property)", () => {
  fc.assert(
    fc.property(fc.array(anyString, { maxLength: 40 }), (keys) => {
      const ours = [...keys].sort(compareKeys);
      const bytes = [...keys].sort((a, b) => Buffer.compare(utf8(a), utf8(b)));
      assert.equal(ours, bytes);
    }),
    { numRuns: 500 },
  );
});

test("lone surrogates (not valid UTF-8 keys) still get a strict total order", () => {
  // TextEncoder maps every lone surrogate to U+FFFD, so no byte order exists for them;
  // compareKeys must at least stay antisymmetric and transitive, and 0 only on equality.
  const lone = fc.array(fc.constantFrom("\ud800", "\udbff", "\udc00", "\udfff", "\ue000", "\uffff", "😀", "a"), { maxLength: 4 }).map((p) => p.join(""));
  fc.assert(
    fc.property(lone, lone, lone, (a, b, c) => {
      const ab = Math.sign(compareKeys(a, b));
      assert.is(ab, -Math.sign(compareKeys(b, a)));
      assert.is(ab === 0, a === b);
      if (ab < 0 && compareKeys(b, c) < 0) assert.ok(compareKeys(a, c) < 0);
    }),
    { numRuns: 2000 },
  );
});

test.run();
