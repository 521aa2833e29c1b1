/**
 * A throwaway CA and a node certificate for 127.0.0.1/localhost, made with the openssl CLI
 * at test time (P-256, valid 2 days), plus a second, unrelated CA for "wrong CA" cases.
 * `makeTestCerts()` returns undefined when openssl is missing: the caller skips loudly.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestCerts {
  dir: string;
  /** Paths of the PEM files. */
  files: { ca: string; cert: string; key: string; otherCa: string };
  ca: string;
  cert: string;
  key: string;
  otherCa: string;
}

function openssl(dir: string, args: string[]): void {
  const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${r.stderr || r.error}`);
}

export function makeTestCerts(): TestCerts | undefined {
  if (spawnSync("openssl", ["version"]).status !== 0) return undefined;
  const dir = mkdtempSync(join(tmpdir(), "wavekv-tls-"));
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  openssl(dir, ["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=wavekv-test-ca"]);
  openssl(dir, ["req", "-x509", ...ec, "-keyout", "other.key", "-out", "other.crt", "-days", "2", "-subj", "/CN=wavekv-other-ca"]);
  openssl(dir, ["req", ...ec, "-keyout", "node.key", "-out", "node.csr", "-subj", "/CN=localhost"]);
  writeFileSync(join(dir, "ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n");
  openssl(dir, ["x509", "-req", "-in", "node.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "node.crt", "-days", "2", "-extfile", "ext.cnf"]);
  const files = { ca: join(dir, "ca.crt"), cert: join(dir, "node.crt"), key: join(dir, "node.key"), otherCa: join(dir, "other.crt") };
  const read = (f: string) => readFileSync(f, "utf8");
  return { dir, files, ca: read(files.ca), cert: read(files.cert), key: read(files.key), otherCa: read(files.otherCa) };
}
