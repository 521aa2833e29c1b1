// docs/API.md is what TypeDoc makes of src/index.ts's exports today: a changed export or
// doc comment without `npm run docs:api` fails here. TypeDoc always runs on Node (the
// output must not depend on the runtime running the suite).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));

test("docs/API.md is generated from the current sources", () => {
  const node = process.versions.bun ? "node" : process.execPath;
  const r = spawnSync(node, ["scripts/api-docs.mjs", "--check"], { cwd: root, encoding: "utf8", timeout: 120_000 });
  assert.is(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /up to date/);
});

test.run();
