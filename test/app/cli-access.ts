// The CLI with TLS and client credentials: `serve --tls-cert --tls-key --tls-ca` serves
// HTTPS; `put/get --ca --key` reach it with a credential; a wrong CA, a malformed
// --client-key, a missing TLS file, a write outside a credential's scope: one stderr line.
// Real processes of the built CLI (dist/app/cli.js: `npm run build` first), a CA made by
// openssl at test time (skipped loudly without it).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { makeTestCerts } from "../helpers/tls-certs.js";

const cli = fileURLToPath(new URL("../../dist/app/cli.js", import.meta.url));
const certs = makeTestCerts();
if (!certs) console.warn("SKIPPED test/app/cli-access.ts: no openssl on PATH, so no test CA can be made");
interface Ran { status: number | null; stdout: string; stderr: string }
const run = (args: string[], env: Record<string, string> = {}) => new Promise<Ran>((resolve) => {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ["ignore", "pipe", "pipe"], timeout: 15_000, env: { ...process.env, ...env } });
  let stdout = "", stderr = "";
  child.stdout!.on("data", (d) => { stdout += d; });
  child.stderr!.on("data", (d) => { stderr += d; });
  child.once("close", (status) => resolve({ status, stdout, stderr }));
});

function oneLine(what: string, r: Ran, exit: number, ...words: (RegExp | string)[]) {
  assert.is(r.status, exit, `${what}: exit code; stderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split("\n");
  assert.is(lines.length, 1, `${what}: one stderr line, got: ${r.stderr}`);
  assert.match(lines[0]!, /^wavekv: /, what);
  for (const w of words) assert.match(lines[0]!, w, `${what}: ${lines[0]} should match ${w}`);
}

test.after(() => { if (certs) rmSync(certs.dir, { recursive: true, force: true }); });

test("serve over HTTPS with client credentials from a file; the CLI reaches it with --ca and --key", async () => {
  if (!certs) return;
  const secretFile = join(certs.dir, "cluster"), appFile = join(certs.dir, "app"), keysFile = join(certs.dir, "clients.txt");
  writeFileSync(secretFile, "cluster-secret-0123456789abcdef\n");
  writeFileSync(appFile, "app-secret-0123456789abcdef\n");
  writeFileSync(keysFile, "# name:secret:mode:prefix\napp:app-secret-0123456789abcdef:rw:app/\n");
  const child = spawn(process.execPath, [cli, "serve", "--id", "1", "--port", "0", "--fsync", "never", "--secret-file", secretFile,
    "--tls-cert", certs.files.cert, "--tls-key", certs.files.key, "--tls-ca", certs.files.ca, "--client-keys-file", keysFile,
    "--client-key", "viewer:viewer-secret-0123456789:ro"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const stopped = new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not start: ${out}`)), 20_000);
      child.stdout!.on("data", (d) => { out += d; const m = /serving (https:\S+)/.exec(out); if (m) { clearTimeout(timer); resolve(m[1]!); } });
      child.stderr!.on("data", (d) => { out += d; });
      child.once("exit", (code) => { clearTimeout(timer); reject(new Error(`serve exited ${code}: ${out}`)); });
    });
    assert.not.match(out, "secret-0123456789", "no secret in the server's output");
    const put = await run(["put", "app/x", "1", "--url", url, "--ca", certs.files.ca, "--key", "app", "--secret-file", appFile]);
    assert.is(put.status, 0, put.stderr);
    assert.is(JSON.parse(put.stdout).key, "app/x");
    // The CA and the credential's name from the environment, the secret from WAVEKV_SECRET.
    const env = { WAVEKV_CA: certs.files.ca, WAVEKV_KEY: "viewer", WAVEKV_SECRET: "viewer-secret-0123456789" };
    const get = await run(["get", "app/x", "--url", url], env);
    assert.is(get.status, 0, get.stderr);
    assert.is(JSON.parse(get.stdout).value, "1");
    oneLine("read-only write", await run(["put", "app/x", "2", "--url", url], env), 1, "refused", "credential viewer is read-only");
    oneLine("outside the prefix", await run(["put", "other", "2", "--url", url, "--ca", certs.files.ca, "--key", "app", "--secret-file", appFile]), 1, 'credential app writes only keys under "app/"');
    oneLine("unknown credential", await run(["get", "app/x", "--url", url, "--ca", certs.files.ca, "--key", "ghost", "--secret-file", appFile]), 1, "unknown credential ghost", "--key");
    oneLine("wrong CA", await run(["get", "app/x", "--url", url, "--ca", certs.files.otherCa, "--secret-file", secretFile]), 1, "TLS refused", /not signed by a trusted CA|not trusted/, "pass --ca");
    oneLine("no CA", await run(["get", "app/x", "--url", url, "--secret-file", secretFile]), 1, "TLS refused", "pass --ca");
    oneLine("--key without a secret", await run(["get", "app/x", "--url", url, "--key", "app"]), 1, "needs that credential's secret");
  } finally {
    process.kill(child.pid!, "SIGTERM");
    await stopped;
  }
});

test("serve refuses malformed credentials and TLS files in one line naming the flag or file", async () => {
  if (!certs) return;
  const secretFile = join(certs.dir, "cluster2");
  writeFileSync(secretFile, "cluster-secret-0123456789abcdef\n");
  const serve = (...args: string[]) => run(["serve", "--id", "1", "--port", "0", "--fsync", "never", ...args]);
  const missing = join(certs.dir, "missing.crt");
  const cases: [string, Promise<Ran>, ...(RegExp | string)[]][] = [
    ["malformed --client-key", serve("--secret-file", secretFile, "--client-key", "app:short:rw"), "--client-key: the secret of credential app is 5 characters"],
    ["bad mode", serve("--secret-file", secretFile, "--client-key", "app:0123456789abcdefgh:admin"), "must be ro or rw"],
    ["credential without cluster secret", serve("--client-key", "app:0123456789abcdefgh:ro"), "needs --secret-file"],
    ["missing TLS cert", serve("--tls-cert", missing, "--tls-key", certs.files.key), `cannot read the TLS certificate file ${missing} (no such file)`],
    ["cert without key", serve("--tls-cert", certs.files.cert), "--tls-cert and --tls-key go together"],
    ["key of another cert", serve("--tls-cert", certs.files.cert, "--tls-key", join(certs.dir, "ca.key")), "cannot be used together"],
  ];
  for (const [what, ran, ...words] of cases) oneLine(what, await ran, 1, ...words);
});

test.run();
