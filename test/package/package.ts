// The package a user installs: `npm pack` of this checkout, installed from the tarball
// into an empty project, then used there as a user would: import, require, the bin.
// Needs dist/ (npm test builds first). The install is offline: the one runtime
// dependency (commander) is packed from this checkout's node_modules and installed
// beside it (npm's cache holds its tarball but not the registry metadata a range needs).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));
const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
const runtime = process.versions.bun ? "bun" : process.versions.deno ? "deno" : "node";

function npm(args: string[], cwd: string): SpawnSyncReturns<string> {
  // --ignore-scripts on pack: dist/ is already built; prepack would rebuild it (10 s).
  return spawnSync("npm", [...args, "--no-audit", "--no-fund", "--no-update-notifier"], { cwd, encoding: "utf8", timeout: 120_000 });
}

/** Runs `code` in the consumer project with this runtime (CommonJS unless `esm`). */
function runIn(dir: string, code: string, esm = false): SpawnSyncReturns<string> {
  const file = join(dir, esm ? "probe.mjs" : "probe.cjs");
  writeFileSync(file, code);
  return spawnSync(process.execPath, [file], { cwd: dir, encoding: "utf8", timeout: 30_000 });
}

test("npm pack ships the built package and nothing internal", () => {
  assert.ok(existsSync(join(root, "dist", "index.js")), "dist/ missing: run `npm run build` first");
  const r = npm(["pack", "--dry-run", "--json", "--ignore-scripts"], root);
  assert.is(r.status, 0, r.stderr);
  const files = new Set((JSON.parse(r.stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path));
  for (const needed of ["package.json", "README.md", "LICENSE", "dist/index.js", "dist/index.d.ts", "dist/require.cjs", "dist/app/cli.js", "dist/browser/wavekv.js", "dist/browser/wavekv.wasm", "docs/API.md"]) {
    assert.ok(files.has(needed), `${needed} is in the package`);
  }
  for (const f of files) {
    assert.not.match(f, /^(docs\/notes|src|test|bench|scripts|assembly|console)\//, `${f}: internal, not for users`);
    assert.not.match(f, /\.png$/, `${f}: the README links the picture; the package does not carry it`);
    if (f.endsWith(".map")) {
      // A map is worth shipping only with what it points at.
      const map = JSON.parse(readFileSync(join(root, f), "utf8")) as { sources: string[]; sourcesContent?: unknown[] };
      const dir = f.slice(0, f.lastIndexOf("/") + 1);
      for (const s of map.sources) {
        const shipped = files.has(new URL(s, `file:///${dir}`).pathname.slice(1)) || map.sourcesContent !== undefined;
        assert.ok(shipped, `${f} points at ${s}, which is not in the package`);
      }
    }
  }
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: Record<string, string> };
  for (const s of ["preinstall", "install", "postinstall", "prepare"]) {
    assert.is(pkg.scripts[s], undefined, `a "${s}" script runs (or warns) in every user's install`);
  }
});

test("npx wavekv in the checkout runs the built CLI as it is: no build, no install", () => {
  // npx of the project's own bin links the checkout into npx's cache; a `prepare` script
  // would run there, silently rebuilding everything on the first call (13–36 s).
  const cli = join(root, "dist", "app", "cli.js");
  if (process.platform !== "win32") assert.ok((statSync(cli).mode & 0o111) !== 0, "dist/app/cli.js is executable (npx runs it directly)");
  const before = statSync(join(root, "dist", "index.js")).mtimeMs;
  const cache = mkdtempSync(join(tmpdir(), "wavekv-npx-cache-"));
  try {
    const r = npm(["exec", "--offline", "--yes", "--cache", cache, "--", "wavekv", "--version"], root);
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stdout.trim(), version);
    assert.is(statSync(join(root, "dist", "index.js")).mtimeMs, before, "npx rebuilt dist/");
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});

test(`installed from the tarball into an empty project: import, require, the bin (${runtime})`, () => {
  const tmp = mkdtempSync(join(tmpdir(), "wavekv-package-"));
  try {
    const packed = npm(["pack", "--ignore-scripts", "--pack-destination", tmp], root);
    assert.is(packed.status, 0, packed.stderr);
    const tgz = readdirSync(tmp).find((f) => f.startsWith("wavekv-") && f.endsWith(".tgz"));
    assert.ok(tgz, `npm pack wrote no tarball: ${packed.stdout}`);
    const app = join(tmp, "app");
    mkdirSync(app);
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", version: "1.0.0", private: true }));
    const dep = npm(["pack", "--ignore-scripts", "--pack-destination", tmp], join(root, "node_modules", "commander"));
    assert.is(dep.status, 0, dep.stderr);
    const depTgz = readdirSync(tmp).find((f) => f.startsWith("commander-"))!;
    const installed = npm(["install", "--offline", join(tmp, tgz!), join(tmp, depTgz)], app);
    assert.is(installed.status, 0, `offline install from the tarball failed: ${installed.stderr}`);
    assert.not.match(installed.stderr, /wavekv@[^\s]* \((preinstall|install|postinstall|prepare):/, "the package runs no install script");

    const esm = runIn(app, `
      const m = await import("wavekv");
      console.log([typeof m.Node, typeof m.startServer, typeof m.KvClient, typeof m.DEFAULT_LIMITS].join(" "));
    `, true);
    assert.is(esm.status, 0, esm.stderr);
    assert.is(esm.stdout.trim(), "function function function object");
    // The storage conformance suite is a subpath of its own (no test framework inside).
    const conformance = runIn(app, `
      const c = await import("wavekv/conformance");
      console.log([typeof c.runStorageConformance, typeof c.collectingReplay].join(" "));
    `, true);
    assert.is(conformance.status, 0, conformance.stderr);
    assert.is(conformance.stdout.trim(), "function function");

    // require() gives the same module: a node and a server, driven through the client.
    const cjs = runIn(app, `
      const { Node, startServer, KvClient } = require("wavekv");
      (async () => {
        const node = await Node.open({ id: 1 });
        await node.put("k", "v");
        const local = new TextDecoder().decode(node.get("k").value);
        await node.close();
        const server = await startServer({ id: 2, port: 0, console: false, log: () => {} });
        const kv = new KvClient(server.http.url);
        await kv.put("greeting", "hello");
        const remote = (await kv.get("greeting")).value;
        await server.stop();
        console.log(local, remote, require("wavekv") === require("wavekv"));
      })().catch((e) => { console.error(e); process.exit(1); });
    `);
    assert.is(cjs.status, 0, cjs.stderr);
    assert.is(cjs.stdout.trim(), "v hello true");

    if (runtime === "node") {
      // Node before 20.19 (or 22.12) cannot require() an ES module: that is said in words.
      const old = spawnSync(process.execPath, ["--no-experimental-require-module", "-e", `require("wavekv")`], { cwd: app, encoding: "utf8", timeout: 30_000 });
      assert.is.not(old.status, 0);
      assert.match(old.stderr, /wavekv is an ES module .*await import\("wavekv"\)/);
    }

    const bin = join(app, "node_modules", ".bin", "wavekv");
    assert.ok(existsSync(bin), "npm linked the wavekv bin");
    const cli = join(app, "node_modules", "wavekv", "dist", "app", "cli.js");
    const v = spawnSync(process.execPath, [cli, "--version"], { cwd: app, encoding: "utf8", timeout: 30_000 });
    assert.is(v.status, 0, v.stderr);
    assert.is(v.stdout.trim(), version);
    const bench = spawnSync(process.execPath, [cli, "bench"], { cwd: app, encoding: "utf8", timeout: 30_000 });
    assert.is(bench.status, 1);
    assert.match(bench.stderr, /runs in a checkout of the wavekv repository/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test.run();
