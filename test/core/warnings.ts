// The throttled warning log (src/core/warnings.ts): each reason once, runs of 4+ digits do
// not make a reason new, repeats counted at 10, 100, 1000, and the memory of reasons bounded.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { warningLog } from "../../src/core/warnings.js";

test("each reason is logged once, then at 10, 100 and 1000 repeats; 4+ digit runs are the same reason", () => {
  const out: string[] = [];
  const warn = warningLog((m) => out.push(m));
  for (let i = 0; i < 1000; i++) warn(`peer 7 refused at ${1_700_000_000_000 + i}: bad signature`);
  assert.equal(out.map((m) => m.replace(/\d{13}/g, "#")), [
    "peer 7 refused at #: bad signature",
    "(repeated 10 times) peer 7 refused at #: bad signature",
    "(repeated 100 times) peer 7 refused at #: bad signature",
    "(repeated 1000 times) peer 7 refused at #: bad signature",
  ]);
  warn("peer 8 refused at 1: bad signature"); // short numbers do make a reason new
  assert.is(out.length, 5);
});

test("at most maxReasons reasons are remembered: a flood of distinct reasons cannot grow memory without bound", () => {
  const out: string[] = [];
  const warn = warningLog((m) => out.push(m), 3);
  for (const r of ["a", "b", "c"]) warn(r);
  warn("a"); // remembered: counted, not logged
  assert.is(out.length, 3);
  warn("d"); // a fourth reason: the memory starts over
  warn("a"); // forgotten, so logged again
  assert.equal(out, ["a", "b", "c", "d", "a"]);
});

test.run();
