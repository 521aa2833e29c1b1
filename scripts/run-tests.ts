/**
 * Runs every uvu file in test/ (not test/helpers/) in this runtime and prints, last,
 * one line `N passed, N failed`. Works unchanged on Node (via tsx) and Bun.
 *
 *   node --import tsx scripts/run-tests.ts [filter...]
 *   bun scripts/run-tests.ts [filter...]
 *   deno run -A --sloppy-imports scripts/run-tests.ts --subset deno [filter...]
 *
 * Under Deno, `--sloppy-imports` resolves the sources' `./x.js` to `x.ts` (as tsx and Bun do),
 * and DENO_UNSTABLE_SLOPPY_IMPORTS=1 in the environment does the same for the Deno children
 * that tests spawn with process.execPath (Deno turns those into `deno run -A` without the flag);
 * this runner sets it when missing. See docs/design/0020-deno-and-workerd.md.
 *
 * Why not uvu's CLI: its summary has no failed count, a throwing `before` hook exits 0,
 * and on Bun it misdetects dynamic import. Here a file that fails to import, and a suite
 * whose hook throws (uvu then reports fewer tests run than declared), count as failures.
 * This file must never be imported by a test: it would start another run.
 */
import { readdirSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";

type SuiteRun = () => Promise<[true | string, number, number, number]>;
const g = globalThis as unknown as { UVU_DEFER: number; UVU_QUEUE: Array<Array<string | null | SuiteRun>>; UVU_INDEX: number };

const root = resolve(import.meta.dirname ?? new URL(".", import.meta.url).pathname, "..");
const testDir = join(root, "test");
const args = process.argv.slice(2);
const runtime = process.versions.deno ? `deno ${process.versions.deno}` : process.versions.bun ? `bun ${process.versions.bun}` : `node ${process.versions.node}`;
if (process.versions.deno) process.env.DENO_UNSTABLE_SLOPPY_IMPORTS ??= "1";

/**
 * Named subsets (`--subset NAME`): the files a further runtime runs, as path prefixes
 * relative to the checkout, and the files under them left out.
 *
 * deno: what meets the runtime rather than the engine (Deno runs V8, as Node does): the WASM
 * kernel's loading, Node.open with a directory, WAL, snapshots, crash loops and torn or
 * fuzzed files, fault paths, the HTTP server and FetchTransport, the CLI and demo as child
 * processes, real nodes syncing over sockets, and the packed tarball installed and run.
 * Left out: pure computation already run on V8 under Node (core, codec, index, state, the
 * envelope codec, its fuzzer, the sync simulation); tools over the sources (layers,
 * api-docs); Chromium-driven files (browser, console: there the browser is the runtime);
 * readme-cli.ts, which spawns `node` by name; test/transport/nats-auth.ts (NATS credentials
 * and TLS): under Deno's node:net/tls compatibility the NATS client once threw an uncaught
 * ECONNRESET out of a refused TLS connection (CI, 2026-12-05); the README's matrix does not
 * claim NATS on Deno, and test/transport/nats.ts still runs there.
 */
const SUBSETS: Record<string, { include: string[]; exclude: string[] }> = {
  deno: {
    include: ["test/kernel/", "test/node/", "test/storage/", "test/transport/", "test/app/",
      "test/sync/adversarial-peer.ts", "test/sync/clock.ts", "test/sync/duplicate-id.ts", "test/sync/repair.ts",
      "test/package/package.ts", "test/package/readme.ts", "test/package/portability.ts",
      "test/package/bundle-exports.ts"],
    exclude: ["test/app/console.ts", "test/app/console-access.ts", "test/app/console-charts.ts", "test/transport/nats-auth.ts"],
  },
};
const subsetAt = args.indexOf("--subset");
const subsetName = subsetAt >= 0 ? args[subsetAt + 1] : undefined;
const subset = subsetName === undefined ? undefined : SUBSETS[subsetName];
if (subsetAt >= 0 && subset === undefined) {
  console.error(`unknown --subset ${subsetName ?? "(missing)"}; known: ${Object.keys(SUBSETS).join(", ")}`);
  process.exit(2);
}
const filters = subsetAt >= 0 ? args.filter((_, i) => i !== subsetAt && i !== subsetAt + 1) : args;
const inSubset = (rel: string) => subset === undefined
  || (subset.include.some((p) => rel.startsWith(p)) && !subset.exclude.includes(rel));

function listTests(dir: string): string[] {
  const out: string[] = [];
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    if (d.isDirectory()) {
      if (d.name !== "helpers" && d.name !== "fixtures") out.push(...listTests(join(dir, d.name)));
    } else if (/\.(ts|mjs|js)$/.test(d.name) && !d.name.endsWith(".d.ts")) {
      out.push(join(dir, d.name));
    }
  }
  return out.sort();
}

g.UVU_DEFER = 1;
g.UVU_QUEUE = [];
const uvu = await import("uvu");

let passed = 0;
let failed = 0;
const files = listTests(testDir)
  .filter((f) => inSubset(relative(root, f).split("\\").join("/")))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
if (files.length === 0 && subset !== undefined && filters.length > 0) {
  // `npm test -- test/core/` names files this runtime's subset leaves out: nothing to run here, not a failure.
  console.log(`[${runtime}] no file of --subset ${subsetName} matches ${filters.join(" ")}\n0 passed, 0 failed`);
  process.exit(0);
}
for (const [i, file] of files.entries()) {
  const name = relative(root, file);
  g.UVU_QUEUE.push([name]);
  g.UVU_INDEX = i;
  try {
    await import(pathToFileURL(file).href);
  } catch (err) {
    failed++;
    console.error(`\n✘ ${name} failed to load:`, err);
  }
}

// Tally each suite as it finishes; a suite that ran fewer tests than it declared failed.
for (const group of g.UVU_QUEUE) {
  for (let j = 1; j < group.length; j++) {
    const run = group[j] as SuiteRun;
    group[j] = async () => {
      const result = await run();
      const [, ran, , total] = result;
      passed += ran;
      failed += total - ran;
      if (total === 0 && result[0] !== true) failed++;
      return result;
    };
  }
}

const started = Date.now();
await uvu.exec();
console.log(`\n[${runtime}] ${files.length} files in ${((Date.now() - started) / 1000).toFixed(1)} s`);
// A test that leaves a timer, socket or child behind would keep this process alive
// forever: name what is left, then exit regardless.
const leftovers = (process.getActiveResourcesInfo?.() ?? []).filter((r) => r !== "TTYWrap" && r !== "PipeWrap");
if (leftovers.length > 0) console.log(`note: still active after the suite: ${[...new Set(leftovers)].join(", ")}`);
const code = failed > 0 || passed === 0 ? 1 : 0;
process.stdout.write(`${passed} passed, ${failed} failed\n`, () => process.exit(code));
