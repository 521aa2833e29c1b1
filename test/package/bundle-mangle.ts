// The browser bundles shorten the property names listed in INTERNAL_PROPS
// (scripts/build-browser.mjs, esbuild `mangleProps`). A name wrongly listed breaks the
// bundle silently (a user's field or a built-in renamed on one side only), so each one is
// checked here against everything it must not be, and a mangled bundle must behave, and
// show its results, exactly as the plain one does.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Metafile } from "esbuild";
// @ts-expect-error: a plain .mjs build script, no type declarations
import { bundleBrowser, kernelWasm, INTERNAL_PROPS, root } from "../../scripts/build-browser.mjs";

interface Bundle { js: Uint8Array; text: string; metafile: Metafile; chunks: { name: string; js: Uint8Array }[] }

const NAMES = INTERNAL_PROPS as string[];
const words = (s: string): Set<string> => new Set(s.match(/[A-Za-z_$][\w$]*/g) ?? []);
const read = (p: string): string => readFileSync(join(root as string, p), "utf8");
const textOf = (b: Bundle): string => [b.text, ...b.chunks.map((c) => new TextDecoder().decode(c.js))].join("\n");

test("no INTERNAL_PROPS name is public API, a contract a user implements, a built-in, a kernel export, a lazily imported export or a string in the sources", async () => {
  const plain = (await bundleBrowser({ kernel: "file", split: true, mangle: false })) as Bundle;
  const taken = new Map<string, string>();
  const take = (what: string, ws: Iterable<string>) => { for (const w of ws) if (!taken.has(w)) taken.set(w, what); };
  // The public API and the interfaces a user implements or receives (Storage, Transport, DecodedBatch, Sha256Hasher).
  for (const f of ["docs/API.md", "src/browser.ts", "src/browser-memory.ts", "src/storage/interface.ts", "src/core/record.ts", "src/transport/transport.ts", "src/core/types.ts"]) take(f, words(read(f)));
  // What the browser store persists in IndexedDB (its meta and damage records) is read back by
  // later builds, whose shortened names may differ: none of its source's words may be listed.
  take("src/storage/browser-storage.ts (records it persists)", words(read("src/storage/browser-storage.ts")));
  // Every name the TypeScript libraries (the DOM, workers, ES2024) and Node's types declare:
  // properties of built-ins and host globals (a bundle also runs in Node, Bun and Deno).
  const lib = join(root as string, "node_modules", "typescript", "lib");
  for (const f of readdirSync(lib)) if (/^lib\..*\.d\.ts$/.test(f)) take(`TypeScript ${f}`, words(readFileSync(join(lib, f), "utf8")));
  const nodeTypes = join(root as string, "node_modules", "@types", "node");
  for (const f of readdirSync(nodeTypes, { recursive: true }) as string[]) if (f.endsWith(".d.ts")) take(`@types/node ${f}`, words(readFileSync(join(nodeTypes, f), "utf8")));
  // The kernel's imports and exports are looked up by name.
  const module = new WebAssembly.Module((await kernelWasm()) as Uint8Array<ArrayBuffer>);
  take("the WASM kernel's ABI", [...WebAssembly.Module.exports(module), ...WebAssembly.Module.imports(module)].map((e) => e.name));
  // A dynamically imported module's exports are read as properties of its namespace.
  const inputs = plain.metafile.inputs;
  for (const i of Object.values(inputs)) {
    for (const imp of i.imports) {
      if (imp.kind !== "dynamic-import" || !imp.path.startsWith("src/")) continue;
      take(`an export of ${imp.path} (dynamic import)`, [...read(imp.path).matchAll(/export\s+(?:async\s+)?(?:function\*?|class|const|let|var)\s+([\w$]+)/g)].map((m) => m[1]!));
    }
  }
  // A name spelled as a string is read or written by that spelling (obj["name"], "name" in obj, JSON).
  for (const m of textOf(plain).matchAll(/"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|`((?:[^`\\]|\\.)*)`/g)) take("a string literal in the bundle", words(m[1] ?? m[2] ?? m[3] ?? ""));
  const wrong = NAMES.filter((n) => taken.has(n)).map((n) => `${n}: ${taken.get(n)}`);
  assert.equal(wrong, [], `INTERNAL_PROPS lists names that must keep their spelling:\n${wrong.join("\n")}`);
  assert.is(new Set(NAMES).size, NAMES.length, "no name listed twice");
});

test("every INTERNAL_PROPS name is a property in the plain core and gone from the mangled one (the list does not rot)", async () => {
  const [plain, mangled] = (await Promise.all([false, true].map((mangle) => bundleBrowser({ kernel: "file", split: true, mangle })))) as Bundle[];
  const used = (text: string, n: string) => new RegExp(`[.{,]${n.replace(/\$/g, "\\$")}\\b`).test(text);
  const unused = NAMES.filter((n) => !used(textOf(plain!), n));
  assert.equal(unused, [], `listed but no longer a property in the bundle: drop them from INTERNAL_PROPS`);
  const left = NAMES.filter((n) => used(textOf(mangled!), n));
  assert.equal(left, [], "listed names still spelled out in the mangled bundle");
  assert.ok(mangled!.text.length + mangled!.chunks.reduce((n, c) => n + c.js.length, 0) < plain!.text.length + plain!.chunks.reduce((n, c) => n + c.js.length, 0));
});

/** Every key path of a JSON value (arrays by their elements), sorted: what a user can see of its shape. */
function shape(v: unknown, at = "", out = new Set<string>()): Set<string> {
  if (Array.isArray(v)) for (const x of v) shape(x, `${at}[]`, out);
  else if (typeof v === "object" && v !== null) for (const [k, x] of Object.entries(v)) { out.add(`${at}.${k}`); shape(x, `${at}.${k}`, out); }
  return out;
}

/**
 * Three nodes over a lossy, seeded MemoryNetwork with a fixed clock: writes, deletes, a
 * refused write, rounds until the digests agree, then every public result a page can
 * read (statuses, reports, stats, links, repair stats, errors).
 */
const SCENARIO = `
  const { Node, SyncManager, MemoryNetwork, init } = lib;
  await init();
  let now = 1_700_000_000_000;
  const clock = () => (now += 7);
  const net = new MemoryNetwork({ seed: 21, drop: 0.15, duplicate: 0.1, reorder: true });
  const ids = [1, 2, 3];
  const nodes = await Promise.all(ids.map((id) => Node.open({ id, peers: ids.filter((p) => p !== id), clock, limits: { maxValueBytes: 64 } })));
  const syncs = nodes.map((n, i) => new SyncManager(n, net.transport(ids[i]), { onWarning: () => {}, random: () => 0.5 }));
  syncs.forEach((s, i) => net.register(ids[i], s));
  for (let i = 0; i < 40; i++) await nodes[i % 3].put("k/" + (i % 17), "v" + i);
  await nodes[1].delete("k/4");
  const refused = await nodes[0].put("big", "x".repeat(65)).then(() => null, (e) => ({ code: e.code, message: e.message }));
  const reports = [];
  let rounds = 0;
  while (new Set(nodes.map((n) => n.digest())).size > 1 && rounds < 40) {
    for (const r of await Promise.allSettled(syncs.map((s) => s.syncOnce()))) reports.push(r.status === "fulfilled" ? r.value : { code: r.reason.code });
    rounds++;
  }
  const out = {
    digests: nodes.map((n) => n.digest()), sizes: nodes.map((n) => n.size), summaryRoots: nodes.map((n) => n.summaryRoot()),
    keys: [...nodes[2].scan("k/")].map((e) => [e.key, e.node, e.seq, e.timestamp]),
    status: nodes.map((n) => n.status()), stats: syncs.map((s) => s.stats), links: syncs.map((s) => s.links()),
    repair: nodes.map((n) => n.repairStats()), envelope: lib.decodeEnvelope(lib.encodeEnvelope(nodes[0].prepareSync(2))),
    refused, reports,
  };
  await Promise.all(syncs.map((s) => s.stop()));
  await Promise.all(nodes.map((n) => n.close()));
  return JSON.parse(JSON.stringify(out, (k, v) => (/uuid/i.test(k) ? "(random)" : v instanceof Uint8Array ? [...v] : typeof v === "bigint" ? String(v) : v)));
`;

test("a mangled bundle does and shows exactly what the plain one does (same digests, same result shapes)", async () => {
  const run = async (mangle: boolean) => {
    const b = (await bundleBrowser({ kernel: "inline", mangle })) as Bundle;
    const lib = await import(`data:text/javascript;base64,${Buffer.from(b.js).toString("base64")}`);
    return new Function("lib", `return (async () => {${SCENARIO}})();`)(lib) as Promise<Record<string, unknown>>;
  };
  const plain = await run(false);
  const mangled = await run(true);
  assert.is(new Set(plain.digests as string[]).size, 1, "sanity: the plain bundle's nodes converged");
  assert.equal([...shape(mangled)].sort(), [...shape(plain)].sort(), "a mangled name leaked into a result a user sees");
  for (const k of ["digests", "sizes", "summaryRoots", "keys", "refused", "envelope"]) assert.equal(mangled[k], plain[k], k);
});

test.run();
