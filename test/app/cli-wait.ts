// `wavekv put --wait all|N [--timeout]` against a real 3-node cluster on 127.0.0.1 (HTTP,
// signed), the CLI as a child process; GET /replication and the /metrics lag gauges.
// The nodes' periodic interval is a minute: a wait is met by the round it asks for.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer, type RunningServer } from "../../src/app/serve.js";
import { KvClient } from "../../src/app/client.js";
import { freePorts } from "../helpers/procs.js";

const SECRET = "wait-test-secret-0123456789abcdef";
const cli = fileURLToPath(new URL("../../src/app/cli.ts", import.meta.url));
const run = (...args: string[]) => new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
  const child = spawn(process.execPath, [...process.execArgv, cli, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "", stderr = "";
  child.stdout!.on("data", (d) => { stdout += d; });
  child.stderr!.on("data", (d) => { stderr += d; });
  child.once("close", (status) => resolve({ status, stdout, stderr }));
});

test("put / del --wait all / N on a 3-node cluster: 200 once confirmed, 504 with the reason when a peer is down, usage mistakes exit 2", async () => {
  const root = mkdtempSync(join(tmpdir(), "wavekv-wait-"));
  const secretFile = join(root, "secret");
  writeFileSync(secretFile, SECRET);
  const ports = await freePorts(3);
  const url = (i: number) => `http://127.0.0.1:${ports[i - 1]}`;
  const running = new Map<number, RunningServer>();
  try {
    for (const id of [1, 2, 3]) {
      const peers = Object.fromEntries([1, 2, 3].filter((p) => p !== id).map((p) => [p, url(p)]));
      running.set(id, await startServer({ id, port: ports[id - 1]!, dir: join(root, `n${id}`), peers, secret: SECRET, intervalMs: 60_000, timeoutMs: 1_000, pushWindowMs: 20, log: () => undefined }));
    }
    const put = (...args: string[]) => run("put", ...args, "--url", url(1), "--secret-file", secretFile);

    const all = await put("k1", "v1", "--wait", "all", "--timeout", "20s");
    assert.is(all.status, 0, all.stderr);
    const e = JSON.parse(all.stdout);
    assert.is(e.seq > 0 && e.node === 1, true);
    // Confirmed means held: both peers have it, by the seq it was written with.
    for (const id of [2, 3]) assert.is(running.get(id)!.node.getIncludingTombstones("k1")?.seq, e.seq, `node ${id}`);

    // del --wait: the same concern for a delete; the tombstone is on both peers when it answers.
    const gone = await run("del", "k1", "--wait", "all", "--timeout", "20s", "--url", url(1), "--secret-file", secretFile);
    assert.is(gone.status, 0, gone.stderr);
    const t = JSON.parse(gone.stdout);
    for (const id of [2, 3]) assert.is(running.get(id)!.node.getIncludingTombstones("k1")?.seq, t.seq, `node ${id} holds the tombstone`);

    // Signed GET /replication: nothing behind now.
    const kv = new KvClient(url(1), SECRET);
    const rep = await kv.replication();
    assert.is(rep.id, 1);
    assert.equal(rep.peers.map((p) => [p.peer, p.entriesBehind]), [[2, 0], [3, 0]]);
    assert.is(rep.managed, true);
    assert.is((await fetch(url(1) + "/replication")).status, 401, "unsigned: refused");

    // Node 3 down: --wait 1 is met by node 2; --wait all times out with the reason, the write stands.
    await running.get(3)!.stop();
    running.delete(3);
    const one = await put("k2", "v2", "--wait", "1", "--timeout", "20s");
    assert.is(one.status, 0, one.stderr);
    const late = await put("k3", "v3", "--wait", "all", "--timeout", "700ms");
    assert.is(late.status, 1, late.stdout);
    assert.match(late.stderr, /504/);
    assert.match(late.stderr, /written on node 1 \(seq \d+\) and acknowledged there/);
    assert.match(late.stderr, /1 of 2 peer\(s\) confirmed/);
    assert.is(late.stderr.trim().split("\n").length, 1, "one line");
    assert.ok(running.get(1)!.node.get("k3"), "the write itself stands");
    const metrics = await (await fetch(url(1) + "/metrics")).text();
    assert.match(metrics, /wavekv_peer_entries_behind\{peer="3"\} [1-9]/);
    assert.match(metrics, /wavekv_peer_entries_behind\{peer="2"\} \d/);
    assert.match(metrics, /wavekv_peer_bytes_behind\{peer="3"\} [1-9]/);

    // More confirmations than peers: refused before the write (400), nothing written.
    // And usage mistakes: exit 2, one line (the three run at once).
    const [many, noWait, badWait] = await Promise.all([put("k4", "v4", "--wait", "5"), put("k5", "v5", "--timeout", "2s"), put("k5", "v5", "--wait", "most")]);
    assert.is(many.status, 1);
    assert.match(many.stderr, /400 .*more confirmations than node 1 has peers/);
    assert.is(running.get(1)!.node.get("k4"), undefined);
    assert.is(noWait.status, 2);
    assert.match(noWait.stderr, /--timeout bounds --wait/);
    assert.is(badWait.status, 2);
    assert.is(running.get(1)!.node.get("k5"), undefined);
  } finally {
    for (const r of running.values()) await r.stop();
    rmSync(root, { recursive: true, force: true });
  }
});

test("PUT ?wait= over HTTP: bad parameters are 400 before the write", async () => {
  const r = await startServer({ id: 9, port: 0, peers: { 10: "http://127.0.0.1:9" }, intervalMs: 60_000, timeoutMs: 500, console: false, log: () => undefined });
  try {
    for (const q of ["wait=-1", "wait=all&timeoutMs=0", "wait=all&timeoutMs=1e3", "timeoutMs=10", "wait=1&timeoutMs=999999999"]) {
      const res = await fetch(`${r.http.url}/kv/x?${q}`, { method: "PUT", body: "v" });
      assert.is(res.status, 400, q);
      assert.is(((await res.json()) as { code: string }).code, "INVALID_ARGUMENT", q);
    }
    assert.is(r.node.get("x"), undefined);
    // wait=0 needs nobody.
    const ok = await fetch(`${r.http.url}/kv/x?wait=0`, { method: "PUT", body: "v" });
    assert.is(ok.status, 200);
  } finally {
    await r.stop();
  }
});

test.run();
