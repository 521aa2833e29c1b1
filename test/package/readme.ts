// The README's embedding example runs as written (only the import path is pointed at src/).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

test("README embedding example prints what its comment says", () => {
  const readme = readFileSync(fileURLToPath(new URL("../../README.md", import.meta.url)), "utf8");
  const section = readme.slice(readme.indexOf("## Embedding"));
  const code = /```ts\n([\s\S]*?)```/.exec(section)![1]!;
  assert.ok(code.split("\n").length <= 20, "the example stays short");
  const entry = fileURLToPath(new URL("../../src/index.ts", import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), "wavekv-readme-"));
  try {
    const file = join(dir, "example.mts");
    writeFileSync(file, code.replace(`from "wavekv"`, `from ${JSON.stringify(entry)}`));
    const r = spawnSync(process.execPath, [...process.execArgv, file], { encoding: "utf8", timeout: 60_000 });
    assert.is(r.status, 0, r.stderr);
    // Each console.log line says what it prints in its comment: `// "fast"` (a string) or `// 60000`.
    const said = [...code.matchAll(/console\.log\(.*\);\s*\/\/\s*(.+)$/gm)].map((m) => m[1]!.trim().replace(/^"(.*)"$/, "$1"));
    assert.ok(said.length > 0, "the example prints something");
    assert.equal(r.stdout.trim().split("\n"), said);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
