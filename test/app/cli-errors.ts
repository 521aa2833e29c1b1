// Mistakes a person makes with the command line, each answered by ONE stderr line that
// says what failed and what to do: exit 1 (2 for usage), no stack unless --debug.
// Real processes of the built CLI (dist/app/cli.js: run `npm run build` first) on the runtime
// running this file, real ports on 127.0.0.1, real files. Independent cases run at once.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Node } from "../../src/node/node.js";

const cli = fileURLToPath(new URL("../../dist/app/cli.js", import.meta.url));
interface Ran { status: number | null; stdout: string; stderr: string }
const run = (...args: string[]) => new Promise<Ran>((resolve) => {
  // A command that should fail but serves instead is killed, not waited for forever.
  const child = spawn(process.execPath, [cli, ...args], { stdio: ["ignore", "pipe", "pipe"], timeout: 15_000 });
  let stdout = "", stderr = "";
  child.stdout!.on("data", (d) => { stdout += d; });
  child.stderr!.on("data", (d) => { stderr += d; });
  child.once("close", (status) => resolve({ status, stdout, stderr }));
});

/** Starts `serve` in a child; resolves its URL once it serves. */
async function startServe(args: string[]) {
  const child = spawn(process.execPath, [cli, "serve", "--port", "0", "--fsync", "never", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${out}`)), 20_000);
    child.stdout!.on("data", (d) => { out += d; const m = /serving (http:\S+)/.exec(out); if (m) { clearTimeout(timer); resolve(m[1]!); } });
    child.stderr!.on("data", (d) => { out += d; });
    child.once("exit", (code) => { clearTimeout(timer); reject(new Error(`serve exited ${code}: ${out}`)); });
  });
  const stopped = new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
  return { child, url, stop: () => { process.kill(child.pid!, "SIGTERM"); return stopped; } /* not child.kill: Deno then reports the signal, not the exit code */ };
}

/** A port nothing listens on: bound once by the OS, then closed. */
const freePort = () => new Promise<number>((resolve) => {
  const s = createServer().listen(0, "127.0.0.1", () => {
    const port = (s.address() as { port: number }).port;
    s.close(() => resolve(port));
  });
});

/** The contract for every case: this exit code, one stderr line starting `wavekv: `, no stack, these words. */
function oneActionableLine(what: string, r: Ran, exit: number, ...words: RegExp[]) {
  assert.is(r.status, exit, `${what}: exit code; stderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split("\n");
  assert.is(lines.length, 1, `${what}: one stderr line, got: ${r.stderr}`);
  assert.match(lines[0]!, /^wavekv: /, what);
  assert.not.match(r.stderr, /\n\s+at |^\s+at /m, `${what}: no stack trace`);
  for (const w of words) assert.match(lines[0]!, w, `${what}: ${lines[0]} should match ${w}`);
}

test("nine mistakes, each one line that says what to do", async () => {
  const root = mkdtempSync(join(tmpdir(), "wavekv-clierr-"));
  const secret = join(root, "secret"), wrong = join(root, "wrong"), short = join(root, "short"), file = join(root, "a-file");
  writeFileSync(secret, "0123456789abcdef0123456789abcdef\n");
  writeFileSync(wrong, "fedcba9876543210fedcba9876543210\n");
  writeFileSync(short, "tooshort\n");
  writeFileSync(file, "not a directory");
  // A WAL that is not one: serve must refuse it, not start over it.
  const corrupt = join(root, "corrupt");
  mkdirSync(corrupt);
  writeFileSync(join(corrupt, "node_4.wal"), "this is not a wavekv write-ahead log at all, just text\n");
  const held = join(root, "held");
  const s = await startServe(["--id", "1", "--dir", held, "--secret-file", secret]);
  try {
    const port = new URL(s.url).port;
    const closed = `http://127.0.0.1:${await freePort()}`;
    const cases: [string, Promise<Ran>, ...RegExp[]][] = [
      ["wrong secret", run("get", "k", "--url", s.url, "--secret-file", wrong), /refused the signature/, /--secret-file/, /cluster's secret/],
      ["no secret", run("get", "k", "--url", s.url), /signed requests/, /pass --secret-file/],
      ["missing secret file", run("get", "k", "--url", s.url, "--secret-file", join(root, "nope")), /cannot read the secret file/, /no such file/, /--secret-file/],
      ["secret too short", run("get", "k", "--url", s.url, "--secret-file", short), /8 characters/, /at least 16/],
      ["nothing listening", run("get", "k", "--url", closed), new RegExp(`nothing answers at ${closed}: is \`wavekv serve\` running there\\?`)],
      ["port in use", run("serve", "--id", "2", "--port", port), new RegExp(`port ${port} is taken`), /pass --port/],
      ["data dir is a file", run("serve", "--id", "3", "--port", "0", "--dir", file), /is a file, not a directory/, /pass --dir/],
      ["corrupt WAL", run("serve", "--id", "4", "--port", "0", "--dir", corrupt), /CORRUPT_WAL/, /node_4\.wal/, /--accept-data-loss/],
      ["locked dir", run("serve", "--id", "1", "--port", "0", "--dir", held), /in use by process \d+/, /stop it|another --dir/],
    ];
    const results = await Promise.all(cases.map((c) => c[1]));
    cases.forEach(([what, , ...words], i) => oneActionableLine(what, results[i]!, 1, ...words));
    assert.ok(!existsSync(join(corrupt, "wavekv.lock")), "a refused serve leaves no lock behind");
    const debug = await run("get", "k", "--url", closed, "--debug");
    assert.is(debug.status, 1);
    assert.match(debug.stderr, /^wavekv: nothing answers/);
    assert.match(debug.stderr, /\n\s+at /, "--debug adds the stack");
    assert.is(await s.stop(), 0);
  } finally {
    s.child.kill("SIGKILL");
    rmSync(root, { recursive: true, force: true });
  }
});

test("usage mistakes exit 2 in one line naming the command's --help", async () => {
  const [unknownFlag, missingArg, badId, unknownCommand] = await Promise.all([
    run("get", "k", "--bogus"),
    run("get"),
    run("serve", "--id", "x"),
    run("frobnicate"),
  ]);
  oneActionableLine("unknown flag", unknownFlag, 2, /unknown option '--bogus'/, /wavekv get --help/);
  oneActionableLine("missing argument", missingArg, 2, /missing required argument 'key'/, /wavekv get --help/);
  oneActionableLine("bad id", badId, 2, /integer/, /wavekv serve --help/);
  oneActionableLine("unknown command", unknownCommand, 2, /unknown command 'frobnicate'/, /wavekv --help/);
  const help = await run("serve", "--help");
  assert.is(help.status, 0, "--help is not a mistake");
  assert.match(help.stdout, /--new-node/);
});

test("serve --id 9 on a directory holding only node 2's data is refused (names node 2); --new-node starts node 9 beside it", async () => {
  const root = mkdtempSync(join(tmpdir(), "wavekv-clierr-"));
  const dir = join(root, "d");
  try {
    const node = await Node.open({ id: 2, dir, fsync: "never", onWarning: () => undefined });
    await node.put("kept", "yes");
    await node.close();
    const before = readdirSync(dir).sort();
    const refused = await run("serve", "--id", "9", "--port", "0", "--dir", dir);
    oneActionableLine("another node's directory", refused, 1, /holds node 2's data/, /node_2\.wal/, /pass --id 2/, /--new-node/);
    assert.equal(readdirSync(dir).sort(), before, "the refusal changes nothing in the directory");
    const s = await startServe(["--id", "9", "--dir", dir, "--new-node"]);
    assert.is(await s.stop(), 0);
    assert.ok(readdirSync(dir).includes("node_9.wal"), "node 9 now lives beside node 2");
    // Both ids are now there: either may be served without the flag.
    const two = await startServe(["--id", "2", "--dir", dir]);
    const got = await run("get", "kept", "--url", two.url);
    assert.is(got.status, 0, got.stderr);
    assert.is(JSON.parse(got.stdout).value, "yes");
    assert.is(await two.stop(), 0);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
