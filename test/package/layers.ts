// The layout is the architecture (docs/ARCHITECTURE.md, "Layers"): this file checks it.
// Every src/**/*.ts and .cts import, value and type, is read with TypeScript's own scanner
// (`ts.preProcessFile`, cross-checked against a walk of the parsed file that tells type-only
// imports apart), and the test fails on:
//   (a) a file-level import circle, type imports included (the cycle is printed);
//   (b) a value import from a higher layer (`import type` may point anywhere);
//   (c) a module over MAX_LINES lines, unless ALLOWED_OVER names it with a reason;
//   (d) a test/ folder that is not a src layer (or helpers, package, fixtures), a src/ folder that is
//       not a layer, or a file in src/ itself that is not a public entry.
// Known violations are listed below with a TODO: the test passes with them and prints them,
// and it fails when an entry is no longer true, so each list only shrinks (remove the entry
// in the commit that fixes it).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const root = fileURLToPath(new URL("../..", import.meta.url));
const src = join(root, "src");

/** Lowest first. A module may import values from its own layer or a lower one. */
const LAYERS = ["core", "kernel", "codec", "index", "state", "storage", "sync", "node", "transport", "app"];
/** The public entries, in src/ itself: they may import anything, and nothing imports them. */
const ENTRIES = ["src/index.ts", "src/browser.ts", "src/browser-memory.ts", "src/require.cts"];
/** Test folders that are not layers (fixtures: files written by earlier releases, issue 18). */
const TEST_EXTRA = ["helpers", "package", "fixtures"];
/** Generated at build time (gitignored); neither scanned nor sized. */
const GENERATED = ["src/kernel/kernel-bytes.ts", "src/app/console-assets.ts"];
const MAX_LINES = 500;

// Known exceptions: each list may only shrink (an entry no longer true fails the test).
/** Circles as their sorted member files joined by " | ". */
const KNOWN_CYCLES: string[] = [];
/** Value imports from a higher layer, as "importer -> imported". */
const KNOWN_UPWARD: string[] = [];
/** Files in src/ itself that are not entries. */
const KNOWN_STRAY: string[] = [];
/** Modules allowed over MAX_LINES, with the reason. */
const ALLOWED_OVER: Record<string, string> = {};

interface Edge { from: string; to: string; type: boolean }

function rel(p: string): string { return relative(root, p).split("\\").join("/"); }

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, d.name);
    if (d.isDirectory()) out.push(...walk(p));
    else if (/\.c?ts$/.test(d.name) && !d.name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

/** "./x.js" from src/a/b.ts → src/a/x.ts (or .cts, or the .d.ts of a generated module). */
function resolveSpecifier(from: string, spec: string): string | undefined {
  const base = join(dirname(join(root, from)), spec);
  const stem = base.replace(/\.(c?js|c?ts)$/, "");
  const isC = /\.c(js|ts)$/.test(base);
  for (const cand of isC ? [`${stem}.cts`, `${stem}.d.cts`] : [`${stem}.ts`, `${stem}.d.ts`, join(base, "index.ts")]) {
    if (existsSync(cand) && statSync(cand).isFile()) return rel(cand).replace(/\.d\.(c?ts)$/, ".$1");
  }
  return undefined;
}

/**
 * The file's relative imports, each marked type-only or not. Value means the module is
 * loaded at run time: under `verbatimModuleSyntax` (tsconfig.json) `import { type A } from`
 * is kept as `import {} from`, so only `import type`/`export type` and `import("x").T`
 * type nodes are type-only.
 */
function importsOf(file: string, text: string): { spec: string; type: boolean }[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: { spec: string; type: boolean }[] = [];
  const visit = (n: ts.Node): void => {
    if (ts.isImportDeclaration(n) && ts.isStringLiteral(n.moduleSpecifier)) {
      out.push({ spec: n.moduleSpecifier.text, type: n.importClause?.isTypeOnly ?? false });
    } else if (ts.isExportDeclaration(n) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) {
      out.push({ spec: n.moduleSpecifier.text, type: n.isTypeOnly });
    } else if (ts.isImportEqualsDeclaration(n) && ts.isExternalModuleReference(n.moduleReference) && ts.isStringLiteral(n.moduleReference.expression)) {
      out.push({ spec: n.moduleReference.expression.text, type: n.isTypeOnly });
    } else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument) && ts.isStringLiteral(n.argument.literal)) {
      out.push({ spec: n.argument.literal.text, type: true });
    } else if (ts.isCallExpression(n) && n.arguments.length > 0 && ts.isStringLiteral(n.arguments[0]!) &&
      (n.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(n.expression) && n.expression.text === "require"))) {
      out.push({ spec: (n.arguments[0] as ts.StringLiteral).text, type: false });
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  // The scanner TypeScript itself uses to find a file's imports must see the same modules:
  // a form the walk above does not know would otherwise drop an edge silently.
  const scanned = new Set(ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName).filter((s) => s.startsWith(".")));
  const walked = new Set(out.map((i) => i.spec).filter((s) => s.startsWith(".")));
  assert.equal([...walked].sort(), [...scanned].sort(), `${file}: the import walk and ts.preProcessFile disagree`);
  return out.filter((i) => i.spec.startsWith("."));
}

/** "core" for src/core/x.ts; undefined for src/ itself. */
function layerOf(file: string): string | undefined {
  const parts = file.split("/");
  return parts.length > 2 ? parts[1] : undefined;
}
function rank(file: string): number {
  const layer = layerOf(file);
  return layer === undefined ? LAYERS.length : LAYERS.indexOf(layer);
}

const files = walk(src).map(rel).filter((f) => !GENERATED.includes(f)).sort();
const texts = new Map(files.map((f) => [f, readFileSync(join(root, f), "utf8")] as const));
const edges: Edge[] = [];
const unresolved: string[] = [];
for (const f of files) {
  for (const { spec, type } of importsOf(f, texts.get(f)!)) {
    const to = resolveSpecifier(f, spec);
    if (to === undefined) unresolved.push(`${f}: ${spec}`);
    else edges.push({ from: f, to, type });
  }
}

/** Strongly connected components of more than one file (or a file importing itself). */
function circles(): string[][] {
  const next = new Map<string, string[]>();
  for (const e of edges) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  let counter = 0;
  const index = new Map<string, number>(), low = new Map<string, number>(), stack: string[] = [], on = new Set<string>();
  const out: string[][] = [];
  const connect = (v: string): void => {
    index.set(v, counter); low.set(v, counter++); stack.push(v); on.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) { connect(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); }
      else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do { w = stack.pop()!; on.delete(w); scc.push(w); } while (w !== v);
      if (scc.length > 1 || (next.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const f of files) if (!index.has(f)) connect(f);
  return out;
}

/** One concrete cycle through the component's first file, for the message. */
function cyclePath(scc: string[]): string {
  const inside = new Set(scc);
  const start = scc[0]!;
  const prev = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const e of edges) {
      if (e.from !== v || !inside.has(e.to)) continue;
      if (e.to === start) {
        const path = [start];
        for (let x: string | undefined = v; x !== undefined && x !== start; x = prev.get(x)) path.splice(1, 0, x);
        return [...path, start].join(" → ");
      }
      if (!prev.has(e.to)) { prev.set(e.to, v); queue.push(e.to); }
    }
  }
  return scc.join(" | ");
}

function report(title: string, items: string[]): void {
  if (items.length > 0) console.log(`  ${title}:\n${items.map((i) => `    ${i}`).join("\n")}`);
}

function checkKnown(kind: string, found: string[], known: string[]): void {
  const fresh = found.filter((x) => !known.includes(x));
  const stale = known.filter((x) => !found.includes(x));
  assert.equal(fresh, [], `new ${kind} (fix it; the known list only shrinks):\n${fresh.join("\n")}`);
  assert.equal(stale, [], `${kind} no longer present: remove from its known list in test/package/layers.ts:\n${stale.join("\n")}`);
}

test("every relative import resolves to a file in src/", () => {
  assert.ok(files.length > 30, `sanity: ${files.length} files scanned`);
  assert.equal(unresolved, []);
});

test("(a) no file-level import circle, type imports included", () => {
  const found = circles();
  report("import circles (known, TODO)", found.map(cyclePath));
  checkKnown("import circles", found.map((c) => c.join(" | ")), KNOWN_CYCLES);
});

test("(b) no value import from a higher layer; nothing imports an entry", () => {
  const upward = edges.filter((e) => !e.type && !ENTRIES.includes(e.from) && rank(e.to) > rank(e.from))
    .map((e) => `${e.from} -> ${e.to}`);
  report("upward value imports (known, TODO)", upward);
  checkKnown("upward value imports", upward, KNOWN_UPWARD);
  const intoEntries = edges.filter((e) => ENTRIES.includes(e.to) && !ENTRIES.includes(e.from)).map((e) => `${e.from} -> ${e.to}`);
  assert.equal(intoEntries, [], "a module imports a public entry (entries are the top of the graph)");
});

test(`(c) no module over ${MAX_LINES} lines unless ALLOWED_OVER says why`, () => {
  const sizes = files.map((f) => ({ f, lines: texts.get(f)!.split("\n").length - (texts.get(f)!.endsWith("\n") ? 1 : 0) }));
  const over = sizes.filter((s) => s.lines > MAX_LINES).sort((a, b) => b.lines - a.lines);
  report(`modules over ${MAX_LINES} lines (allowed, TODO)`, over.map((s) => `${s.f} ${s.lines}: ${ALLOWED_OVER[s.f] ?? "NOT ALLOWED"}`));
  checkKnown(`modules over ${MAX_LINES} lines`, over.map((s) => s.f), Object.keys(ALLOWED_OVER));
});

test("(d) src/ is the entries plus one folder per layer; test/ mirrors the layers", () => {
  const srcDirs = readdirSync(src, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  assert.equal(srcDirs.filter((d) => !LAYERS.includes(d)), [], "a src/ folder that is not a layer");
  const rootFiles = files.filter((f) => layerOf(f) === undefined);
  const stray = rootFiles.filter((f) => !ENTRIES.includes(f));
  report("files in src/ that are not entries (known, TODO)", stray);
  checkKnown("files in src/ that are not entries", stray, KNOWN_STRAY);
  const testDirs = readdirSync(join(root, "test"), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  assert.equal(testDirs.filter((d) => !LAYERS.includes(d) && !TEST_EXTRA.includes(d)), [], "a test/ folder that mirrors no src layer");
  const testRoot = readdirSync(join(root, "test"), { withFileTypes: true }).filter((d) => d.isFile()).map((d) => d.name);
  assert.equal(testRoot, [], "test files live in a layer's folder");
});

test.run();
