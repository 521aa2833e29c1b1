// The demo, short mode: 3 `serve` processes on 127.0.0.1 with a secret, writes on every
// node, SIGKILL + restart from the data directory, a partition (SIGSTOP) and its heal.
// One run (~8 s) serves every test here.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { runDemo, type DemoResult } from "../../src/app/demo.js";

let once: Promise<{ result: DemoResult; lines: string[] }> | undefined;
function demo() {
  return (once ??= (async () => {
    const lines: string[] = [];
    const result = await runDemo({ short: true, out: (l) => lines.push(l) });
    return { result, lines };
  })());
}

test("demo converges in every phase and keeps every acknowledged write on every node", async () => {
  const { result, lines } = await demo();
  assert.ok(result.converged, lines.join("\n"));
  assert.equal(result.missing, []);
  assert.is(result.acknowledged, 10 * 3 + 10 * 2 + 10 * 2);
  assert.ok(result.events.some((e) => e.startsWith("after restart: all 3 digests equal")), lines.join("\n"));
  assert.ok(result.events.some((e) => e.startsWith("after healing: all 3 digests equal")), lines.join("\n"));
});

test("the demo's table explains itself: a legend for keys and lag, the address book counted apart", async () => {
  const { result, lines } = await demo();
  const text = lines.join("\n");
  // The legend comes before the first table and names what each column counts.
  const legend = lines.findIndex((l) => /^\s+keys\s+the demo's keys this node holds \/ keys written so far/.test(l));
  const table = lines.findIndex((l) => /^\s+node\s+keys\s+digest\s+lag/.test(l));
  assert.ok(legend >= 0 && legend < table, text);
  assert.match(lines[legend + 1] ?? "", /^\s+__wavekv\/peers\/<id> entry per node, is internal and not counted/);
  assert.ok(lines.some((l) => /^\s+lag\s+writes made on other nodes that this node has not yet confirmed in a sync round/.test(l)), text);
  // Rows read held/written: every node ends with all 70 of 70.
  assert.match(text, /node 1\s+70\/70 /);
  // The closing line counts the address book apart from the keys: 3 nodes, 3 entries.
  assert.ok(result.events.some((e) => /^done: 70 keys on every node \(and 3 address-book entries under __wavekv\/peers\/, not counted\)/.test(e)), text);
});

test.run();
