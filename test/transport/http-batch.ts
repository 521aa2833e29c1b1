// POST /kv/_batch (src/transport/http-batch.ts): an atomic batch over HTTP, signed like
// every /kv route; malformed bodies and refused batches answer one-line JSON errors and
// write nothing.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Node } from "../../src/node/node.js";
import { SyncManager } from "../../src/node/manager.js";
import { serveHttp, type HttpServer } from "../../src/transport/http.js";
import { signRequest } from "../../src/transport/auth.js";
import { MAX_BATCH_ENTRIES } from "../../src/node/batch.js";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { builtCli } from "../helpers/procs.js";

const SECRET = "a-shared-secret-of-some-length";
const quiet = () => undefined;

async function serve(secret?: string) {
  const node = await Node.open({ id: 1 });
  const sync = new SyncManager(node, { request: () => Promise.reject(new Error("does not dial out")) }, { onWarning: quiet });
  const http = await serveHttp(sync, { node, secret, onWarning: quiet });
  return { node, http, close: async () => { await sync.stop(); await http.close(); await node.close(); } };
}

async function post(server: HttpServer, body: string, secret?: string): Promise<{ status: number; json: any }> {
  const bytes = new TextEncoder().encode(body);
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (secret) Object.assign(headers, signRequest(secret, "POST", "/kv/_batch", bytes, 1));
  const res = await fetch(`${server.url}/kv/_batch`, { method: "POST", body: bytes, headers });
  return { status: res.status, json: await res.json() };
}

test("a batch over HTTP: text and base64 values, deletes; the entries come back", async () => {
  const s = await serve();
  await s.node.put("old", "x");
  const r = await post(s.http, JSON.stringify([
    { type: "put", key: "a", value: "1" },
    { type: "put", key: "bin", valueBase64: Buffer.from([0xff, 0, 1]).toString("base64") },
    { type: "delete", key: "old" },
  ]));
  assert.is(r.status, 200, JSON.stringify(r.json));
  assert.equal(r.json.entries.map((e: any) => [e.key, e.seq, e.value ?? e.valueBase64 ?? null, e.deleted ?? false]), [["a", 2, "1", false], ["bin", 3, "/wAB", false], ["old", 4, null, true]]);
  assert.equal([...s.node.get("bin")!.value!], [0xff, 0, 1]);
  assert.is(s.node.get("old"), undefined);
  // "_batch" stays an ordinary key for PUT and GET.
  const put = await fetch(`${s.http.url}/kv/_batch`, { method: "PUT", body: "k" });
  assert.is(put.status, 200);
  await s.close();
});

test("bad bodies and refused batches: one-line JSON error, status by code, nothing written", async () => {
  const s = await serve();
  const digest = s.node.digest();
  const cases: [string, number, string][] = [
    ["not json", 400, "INVALID_ARGUMENT"],
    ["{\"type\":\"put\"}", 400, "INVALID_ARGUMENT"],
    ["[]", 400, "INVALID_ARGUMENT"],
    ["[1]", 400, "INVALID_ARGUMENT"],
    [JSON.stringify([{ type: "put", key: "a" }]), 400, "INVALID_ARGUMENT"],
    [JSON.stringify([{ type: "put", key: "a", value: "1", valueBase64: "MQ==" }]), 400, "INVALID_ARGUMENT"],
    [JSON.stringify([{ type: "put", key: "a", valueBase64: "not base64!" }]), 400, "INVALID_ARGUMENT"],
    [JSON.stringify([{ type: "put", key: "a", value: "1", ttl: 5 }]), 400, "INVALID_ARGUMENT"],
    [JSON.stringify([{ type: "delete", key: "a", value: "1" }]), 400, "INVALID_ARGUMENT"],
    [JSON.stringify([{ type: "put", key: "a", value: "1" }, { type: "put", key: "a", value: "2" }]), 400, "INVALID_ARGUMENT"],
    [JSON.stringify(Array.from({ length: MAX_BATCH_ENTRIES + 1 }, (_, i) => ({ type: "delete", key: `k${i}` }))), 400, "INVALID_ARGUMENT"],
    [JSON.stringify([{ type: "put", key: "a", value: "1" }, { type: "put", key: "__wavekv/x", value: "1" }]), 422, "RESERVED_KEY"],
    // The node's own address key: node.batch takes it as put does, the API refuses it as PUT does.
    [JSON.stringify([{ type: "put", key: "__wavekv/peers/1", value: "http://x" }]), 422, "RESERVED_KEY"],
    [JSON.stringify([{ type: "put", key: "a", value: "1" }, { type: "put", key: "x".repeat(2000), value: "1" }]), 422, "KEY_TOO_LARGE"],
  ];
  for (const [body, status, code] of cases) {
    const r = await post(s.http, body);
    assert.is(r.status, status, `${body.slice(0, 60)}: ${JSON.stringify(r.json)}`);
    assert.is(r.json.code, code, body.slice(0, 60));
    assert.not.match(r.json.message, /\n/);
  }
  assert.is(s.node.digest(), digest, "nothing written");
  await s.close();
});

test("KvClient.batch (the CLI's `wavekv batch FILE|-`) signs and posts, and reports refusals with their code", async () => {
  const s = await serve(SECRET);
  const { KvClient } = await import("../../src/app/client.js");
  const kv = new KvClient(s.http.url, SECRET);
  const out = await kv.batch(JSON.stringify([{ type: "put", key: "a", value: "1" }, { type: "delete", key: "b" }]));
  assert.equal(out.map((e) => e.key), ["a", "b"]);
  try {
    await kv.batch("[]");
    assert.unreachable("an empty batch");
  } catch (e) {
    assert.is((e as { code?: string }).code, "INVALID_ARGUMENT");
  }
  await s.close();
});

test("the built CLI: `wavekv batch FILE` and `wavekv batch -` (stdin), signed; a refusal exits 1 with one line (npm run build first)", async () => {
  const s = await serve(SECRET);
  const dir = mkdtempSync(join(tmpdir(), "wavekv-cli-batch-"));
  try {
    writeFileSync(join(dir, "secret"), SECRET);
    writeFileSync(join(dir, "ops.json"), JSON.stringify([{ type: "put", key: "f", value: "file" }]));
    // Spawned asynchronously: this process serves the node the CLI talks to.
    const cli = (args: string[], input?: string) => new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn("node", [builtCli, "batch", ...args, "--url", s.http.url, "--secret-file", join(dir, "secret")], { stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "", stderr = "";
      child.stdout.on("data", (d: Buffer) => { stdout += d; });
      child.stderr.on("data", (d: Buffer) => { stderr += d; });
      child.stdin.end(input ?? "");
      child.once("close", (status: number | null) => resolve({ status, stdout, stderr }));
    });
    const fromFile = await cli([join(dir, "ops.json")]);
    assert.is(fromFile.status, 0, fromFile.stderr);
    assert.is(JSON.parse(fromFile.stdout.trim()).key, "f");
    const fromStdin = await cli(["-"], JSON.stringify([{ type: "put", key: "g", value: "in" }, { type: "delete", key: "f" }]));
    assert.is(fromStdin.status, 0, fromStdin.stderr);
    assert.equal(fromStdin.stdout.trim().split("\n").map((l) => JSON.parse(l).key), ["g", "f"]);
    const refused = await cli(["-"], "[]");
    assert.is(refused.status, 1);
    assert.match(refused.stderr, /INVALID_ARGUMENT/);
    assert.is(refused.stderr.trim().split("\n").length, 1, refused.stderr);
    assert.is(s.node.get("f"), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await s.close();
  }
});

test("with a secret, an unsigned batch is refused unread; a signed one is written", async () => {
  const s = await serve(SECRET);
  const body = JSON.stringify([{ type: "put", key: "a", value: "1" }]);
  assert.is((await post(s.http, body)).status, 401);
  assert.is(s.node.get("a"), undefined);
  const r = await post(s.http, body, SECRET);
  assert.is(r.status, 200, JSON.stringify(r.json));
  assert.is(s.node.size, 1);
  await s.close();
});

test.run();
