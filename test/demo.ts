// The demo, short mode: 3 `serve` processes on 127.0.0.1 with a secret, writes on every
// node, SIGKILL + restart from the data directory, a partition (SIGSTOP) and its heal.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { runDemo } from "../src/demo.js";

test("demo converges in every phase and keeps every acknowledged write on every node", async () => {
  const lines: string[] = [];
  const result = await runDemo({ short: true, out: (l) => lines.push(l) });
  assert.ok(result.converged, lines.join("\n"));
  assert.equal(result.missing, []);
  assert.is(result.acknowledged, 10 * 3 + 10 * 2 + 10 * 2);
  assert.ok(result.events.some((e) => e.startsWith("after restart: all 3 digests equal")), lines.join("\n"));
  assert.ok(result.events.some((e) => e.startsWith("after healing: all 3 digests equal")), lines.join("\n"));
});

test.run();
