/**
 * The `require("wavekv")` entry. wavekv is an ES module; Node ≥ 20.19 (22.12 on the 22
 * line) and Bun load an ES module from `require`, so this hands back the very module
 * `import("wavekv")` gives (one instance: no dual-package state). Older Node refuses
 * with a code this turns into a sentence that says what to do.
 * Invariant: nothing in dist/index.js's import graph may use top-level await, or
 * `require` fails with ERR_REQUIRE_ASYNC_MODULE on every runtime (test/package/package.ts).
 */
try {
  module.exports = require("./index.js");
} catch (err) {
  const code = (err as { code?: unknown }).code;
  if (code !== "ERR_REQUIRE_ESM" && code !== "ERR_REQUIRE_ASYNC_MODULE") throw err;
  throw new Error(
    `wavekv is an ES module and this runtime cannot require() it (${String(code)}): ` +
      `use \`await import("wavekv")\`, or Node >= 20.19 / >= 22.12, or Bun`,
    { cause: err },
  );
}
