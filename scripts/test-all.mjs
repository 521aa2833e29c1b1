#!/usr/bin/env node
// Runs the suite on Node, then on Bun, then its Deno subset (scripts/run-tests.ts
// `--subset deno` says which files and why), streaming output, and prints one final line
// `N passed, N failed` summed over the three runtimes. Exit code non-zero on any failure,
// or if a runtime printed no summary (it crashed). Extra args filter test files.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", process.platform === "win32" ? `${name}.exe` : name);
const bun = bin("bun");
const deno = bin("deno");
const args = process.argv.slice(2);
const runs = [
  ["node", [process.execPath, "--import", "tsx", "scripts/run-tests.ts", ...args]],
  ["bun", [bun, "scripts/run-tests.ts", ...args]],
  // --sloppy-imports: the sources import ./x.js for x.ts (docs/design/0020-deno-and-workerd.md).
  ["deno", [deno, "run", "-A", "--sloppy-imports", "scripts/run-tests.ts", "--subset", "deno", ...args]],
];

let passed = 0, failed = 0, broken = false;
for (const [label, [cmd, ...rest]] of runs) {
  console.log(`\n=== ${label} ===`);
  const started = Date.now();
  const { code, summary } = await new Promise((resolveRun) => {
    const child = spawn(cmd, rest, { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
    let tail = "";
    child.stdout.on("data", (chunk) => {
      process.stdout.write(chunk);
      tail = (tail + chunk.toString()).slice(-4096);
    });
    child.on("error", (err) => { console.error(`cannot start ${label}: ${err.message}`); resolveRun({ code: 1, summary: null }); });
    child.on("close", (code) => {
      const m = [...tail.matchAll(/^(\d+) passed, (\d+) failed$/gm)].pop();
      resolveRun({ code, summary: m ? [Number(m[1]), Number(m[2])] : null });
    });
  });
  console.log(`=== ${label}: ${((Date.now() - started) / 1000).toFixed(0)} s ===`);
  if (!summary) { console.log(`\n${label}: no summary line (exit ${code}); counted as a failure`); failed++; broken = true; continue; }
  passed += summary[0];
  failed += summary[1];
  if (code !== 0 && summary[1] === 0) { failed++; broken = true; }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 || broken || passed === 0 ? 1 : 0);
