/**
 * Runs every uvu file in test/ (not test/helpers/) in this runtime and prints, last,
 * one line `N passed, N failed`. Works unchanged on Node (via tsx) and Bun.
 *
 *   node --import tsx scripts/run-tests.ts [filter...]
 *   bun scripts/run-tests.ts [filter...]
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
const filters = process.argv.slice(2);
const runtime = process.versions.bun ? `bun ${process.versions.bun}` : `node ${process.versions.node}`;

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
const files = listTests(testDir).filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
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
