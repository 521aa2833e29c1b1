// Durations as the CLI reads them (src/core/duration.ts): one unit table for --ttl (integers)
// and --timeout (decimals too); what is not a duration is NaN, and each caller bounds it.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readDuration } from "../../src/core/duration.js";

test("units, plain ms, spaces", () => {
  const got = ["500ms", "30s", "5m", "2h", "7d", "1500", " 10s "].map((t) => readDuration(t, { decimals: false }));
  assert.equal(got, [500, 30_000, 300_000, 7_200_000, 604_800_000, 1_500, 10_000]);
});

test("decimals only where asked, rounded to the ms", () => {
  assert.is(readDuration("1.5s", { decimals: true }), 1_500);
  assert.is(readDuration("0.0004s", { decimals: true }), 0);
  assert.is(readDuration("2.5m", { decimals: true }), 150_000);
  assert.ok(Number.isNaN(readDuration("1.5s", { decimals: false })));
});

test("what is not a duration is NaN", () => {
  for (const bad of ["", "s", "-1s", "10y", "1e3", "1.s", ".5s", "0x10", "3650d0", "1 s", "12345678901234567ms", "1.1234567s", "NaN", "Infinity"]) {
    assert.ok(Number.isNaN(readDuration(bad, { decimals: true })), JSON.stringify(bad));
  }
});

test.run();
