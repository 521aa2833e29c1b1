#!/usr/bin/env node
/**
 * `npm run build:ts`: tsc -p tsconfig.json (src/ → dist/), skipped when every output is
 * newer than every input (src/, tsconfig.json, this script, the installed TypeScript),
 * then dist/app/cli.js made executable (tsc writes 0644; npx runs the bin file directly).
 *
 *   node scripts/build-ts.mjs [--force]
 *
 * Why not `tsc --incremental`: it does not re-emit outputs deleted behind its back
 * (`rm -rf dist` then a build leaves dist/ empty), and it still costs a type-check pass.
 * Skipping saves ~5 s a build on a quiet 2-vCPU machine, 10 s on a busy one: `npm install`
 * builds, then `npm run demo`/`npm test`/`npm run bench` do not redo it.
 */
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { filesUnder, upToDate } from "./freshness.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
process.chdir(root);

const sources = filesUnder("src", (p) => /\.c?ts$/.test(p) && !/\.d\.c?ts$/.test(p));
const outputs = sources.map((p) => join("dist", relative("src", p)).replace(/\.ts$/, ".js").replace(/\.cts$/, ".cjs"));
// tsc emits even when it reports type errors: only a run that passed leaves this stamp,
// so a failed build is not taken for an up-to-date one next time.
const STAMP = "build/tsc.ok";
const inputs = ["src", "tsconfig.json", fileURLToPath(import.meta.url), "node_modules/typescript/package.json"];

if (upToDate([...outputs, STAMP], inputs)) {
  console.log("build-ts: dist/ is newer than src/ and tsconfig.json: not recompiled (--force to)");
} else {
  rmSync(STAMP, { force: true });
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  const r = spawnSync(process.execPath, [tsc, "-p", "tsconfig.json"], { stdio: "inherit" });
  if (r.status !== 0) process.exit(r.status ?? 1);
  mkdirSync("build", { recursive: true });
  writeFileSync(STAMP, "");
}
chmodSync("dist/app/cli.js", 0o755);
// No source maps are emitted (their sources are not shipped): ones an older build left in
// dist/ would point at files the package does not have.
for (const map of filesUnder("dist", (p) => p.endsWith(".js.map") || p.endsWith(".d.ts.map"))) rmSync(map);
