// The browser subpaths of package.json's exports map: `wavekv/browser` and
// `wavekv/browser/memory` (MemoryNetwork, split out of the browser core: docs/design/0024).
// Every file a condition names exists after `npm run build`, and this runtime resolves
// both subpaths by the package's own name and runs them together.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { exports: Record<string, string | Record<string, string>> };

test("every condition of ./browser and ./browser/memory names a built file", () => {
  assert.ok(existsSync(join(root, "dist", "index.js")), "dist/ missing: run `npm run build` first");
  for (const sub of ["./browser", "./browser/memory"]) {
    const conditions = pkg.exports[sub];
    assert.type(conditions, "object", `${sub} is in the exports map`);
    for (const [cond, target] of Object.entries(conditions as Record<string, string>)) {
      assert.ok(existsSync(join(root, target)), `${sub} (${cond}) → ${target}: not built`);
    }
  }
  // The browser build's memory.js is the split build's second entry, not a bundle of its own.
  const memory = readFileSync(join(root, "dist", "browser", "memory.js"), "utf8");
  assert.match(memory, /from"\.\/wavekv-chunk-[\w-]+\.js"/, "memory.js imports the core's chunks");
});

test("wavekv/browser and wavekv/browser/memory, imported by name, sync two nodes together", async () => {
  const { init, Node, SyncManager, isWaveKVError } = await import("wavekv/browser");
  const { MemoryNetwork } = await import("wavekv/browser/memory");
  await init();
  const net = new MemoryNetwork({ seed: 4 });
  const a = await Node.open({ id: 1, peers: [2] });
  const b = await Node.open({ id: 2, peers: [1] });
  const sa = new SyncManager(a, net.transport(1), { onWarning: () => {} });
  const sb = new SyncManager(b, net.transport(2), { onWarning: () => {} });
  net.register(1, sa);
  net.register(2, sb);
  try {
    await a.put("x", "1");
    await sa.syncOnce();
    assert.is(new TextDecoder().decode(b.get("x")?.value), "1");
    net.down(2);
    const err = await net.transport(1).request(2, new Uint8Array(0), { signal: new AbortController().signal }).then(() => null, (e: unknown) => e);
    assert.ok(isWaveKVError(err, "IO"), String(err));
  } finally {
    await Promise.all([sa.stop(), sb.stop()]);
    await Promise.all([a.close(), b.close()]);
  }
});

test.run();
