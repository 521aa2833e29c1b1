#!/usr/bin/env node
/**
 * Installs bench/'s own dependencies (the comparison peers: SQLite, LMDB, Yjs, Automerge,
 * tinybench) on first use, so the main `npm install` never pays for them (issue 16: they
 * were most of a 5-minute, 370 MB install; better-sqlite3 may compile from source).
 * Reinstalls when bench/package-lock.json is newer than what is installed. `npm run bench`
 * and `npm run bench:all` run this first.
 */
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const bench = join(dirname(fileURLToPath(import.meta.url)), "..", "bench");
const lock = join(bench, "package-lock.json");
// npm writes this file last when an install into bench/node_modules completes.
const installed = join(bench, "node_modules", ".package-lock.json");

if (existsSync(installed) && statSync(installed).mtimeMs >= statSync(lock).mtimeMs) process.exit(0);

console.log("bench: installing the comparison peers into bench/node_modules (first run only; a few minutes if better-sqlite3 builds from source)");
// Under `npm run`, npm_execpath is the npm that is running us; use it rather than whatever `npm` is on PATH.
const npmCli = process.env.npm_execpath;
const [cmd, args] = npmCli && /npm-cli\.js$/.test(npmCli)
  ? [process.execPath, [npmCli]]
  : ["npm", []];
const r = spawnSync(cmd, [...args, "ci", "--no-audit", "--no-fund", "--foreground-scripts", "--loglevel", "http"], {
  cwd: bench,
  stdio: "inherit",
  shell: cmd === "npm" && process.platform === "win32",
});
if (r.status !== 0) {
  console.error(`bench: installing bench/'s dependencies failed (exit ${r.status ?? r.signal}); retry with: npm --prefix bench ci`);
  process.exit(1);
}
