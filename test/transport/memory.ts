// MemoryNetwork (src/transport/memory.ts): delivery, seeded faults, partitions, determinism.
// The handlers here are plain recorders: this file tests the network, not the protocol.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { MemoryNetwork, dropOneEntry, seededRandom, type MemoryNetworkOptions } from "../../src/transport/memory.js";
import { decodeEnvelope, encodeEnvelope, ENVELOPE_VERSION } from "../../src/sync/envelope.js";
import { WaveKVError } from "../../src/core/errors.js";
import type { SyncHandler } from "../../src/transport/transport.js";

const never = () => new AbortController().signal;
const u8 = (...b: number[]) => new Uint8Array(b);

/** A handler that records what it was sent and answers [id, ...body]. */
function recorder(id: number) {
  const seen: number[][] = [];
  const handler: SyncHandler & { seen: number[][] } = {
    seen,
    async handle(body) {
      seen.push([...body]);
      return u8(id, ...body);
    },
  };
  return handler;
}

async function outcome(p: Promise<Uint8Array>): Promise<string> {
  try {
    return `ok:${[...(await p)].join(",")}`;
  } catch (e) {
    return `err:${(e as WaveKVError).code ?? (e as Error).message}`;
  }
}

test("a request reaches the registered handler and its answer comes back; bytes are copied", async () => {
  const net = new MemoryNetwork({ seed: 1 });
  const h2 = recorder(2);
  net.register(2, h2);
  const body = u8(1, 2, 3);
  const p = net.transport(1).request(2, body, { signal: never() });
  body[0] = 99; // the sender reusing its buffer must not change what is delivered
  assert.equal([...(await p)], [2, 1, 2, 3]);
  assert.equal(h2.seen, [[1, 2, 3]]);
  assert.equal(net.stats.requests, 1);
  assert.equal(net.stats.responses, 1);
});

test("no handler registered is an immediate IO refusal", async () => {
  const net = new MemoryNetwork();
  assert.is(await outcome(net.transport(1).request(9, u8(1), { signal: never() })), "err:IO");
});

test("a handler's error travels back as the rejection, code intact", async () => {
  const net = new MemoryNetwork();
  net.register(2, { handle: async () => { throw new WaveKVError("UUID_MISMATCH", "reused id"); } });
  assert.is(await outcome(net.transport(1).request(2, u8(1), { signal: never() })), "err:UUID_MISMATCH");
});

/** Sends `n` requests 1→2 one after another and returns each outcome plus what 2 saw. */
async function run(opts: MemoryNetworkOptions, n: number) {
  const net = new MemoryNetwork(opts);
  const h = recorder(2);
  net.register(2, h);
  const t = net.transport(1);
  const results: string[] = [];
  for (let i = 0; i < n; i++) results.push(await outcome(t.request(2, u8(i), { signal: never() })));
  await net.settled();
  return { results, seen: h.seen.map((b) => b[0]!), stats: { ...net.stats } };
}

test("the same seed gives the same fates; another seed does not", async () => {
  const opts = { drop: 0.3, duplicate: 0.2 };
  const a = await run({ ...opts, seed: 42 }, 200);
  const b = await run({ ...opts, seed: 42 }, 200);
  const c = await run({ ...opts, seed: 43 }, 200);
  assert.equal(a.results, b.results, "seed 42 twice");
  assert.equal(a.seen, b.seen);
  assert.not.equal(a.results, c.results, "seed 43");
});

test("drop: both legs are lost at the configured rate; a lost response was still handled", async () => {
  const { results, seen, stats } = await run({ seed: 7, drop: 0.3 }, 2000);
  const ok = results.filter((r) => r.startsWith("ok")).length;
  // Both legs survive with probability 0.7 * 0.7 = 0.49.
  assert.ok(ok > 2000 * 0.44 && ok < 2000 * 0.54, `${ok} of 2000 delivered`);
  assert.ok(seen.length > ok, "some requests were handled whose responses were lost");
  assert.is(stats.dropped, 2000 - ok);
  assert.ok(results.every((r) => r.startsWith("ok") || r === "err:IO"));
});

test("duplicate: the handler runs twice; settled() waits for the second run", async () => {
  const { seen, stats } = await run({ seed: 3, duplicate: 1 }, 20);
  assert.is(stats.duplicated, 20);
  assert.is(seen.length, 40);
  for (let i = 0; i < 20; i++) assert.is(seen.filter((x) => x === i).length, 2);
});

test("fates are per link: traffic on another link does not shift them", async () => {
  const fates = async (interleave: boolean) => {
    const net = new MemoryNetwork({ seed: 11, drop: 0.4 });
    net.register(2, recorder(2));
    net.register(3, recorder(3));
    const t = net.transport(1);
    const out: string[] = [];
    for (let i = 0; i < 100; i++) {
      if (interleave && i % 3 === 0) await outcome(t.request(3, u8(i), { signal: never() }));
      out.push(await outcome(t.request(2, u8(i), { signal: never() })));
    }
    return out;
  };
  assert.equal(await fates(true), await fates(false));
});

test("delay: each leg waits within [min, max] ms", async () => {
  const net = new MemoryNetwork({ seed: 1, delayMs: [15, 20] });
  net.register(2, recorder(2));
  const t0 = performance.now();
  await net.transport(1).request(2, u8(1), { signal: never() });
  const took = performance.now() - t0;
  assert.ok(took >= 29, `two legs of >= 15 ms took ${took.toFixed(1)} ms`);
  assert.ok(took < 200, `took ${took.toFixed(1)} ms`);
});

test("without reorder a link is FIFO; with reorder later messages overtake earlier ones", async () => {
  const order = async (reorder: boolean, delayMs: [number, number]) => {
    const net = new MemoryNetwork({ seed: 5, reorder, delayMs });
    const h = recorder(2);
    net.register(2, h);
    const t = net.transport(1);
    await Promise.all(Array.from({ length: 30 }, (_, i) => t.request(2, u8(i), { signal: never() })));
    return h.seen.map((b) => b[0]!);
  };
  const inOrder = Array.from({ length: 30 }, (_, i) => i);
  assert.equal(await order(false, [0, 0]), inOrder);
  assert.equal(await order(false, [0, 5]), inOrder, "random delays do not reorder a FIFO link");
  const shuffled = await order(true, [0, 0]);
  assert.not.equal(shuffled, inOrder, "zero-delay reordering still reorders");
  assert.equal([...shuffled].sort((a, b) => a - b), inOrder, "nothing lost or invented");
  assert.not.equal(await order(true, [0, 5]), inOrder);
});

test("partition, heal, down and up", async () => {
  const net = new MemoryNetwork({ seed: 1 });
  for (const id of [1, 2, 3, 4]) net.register(id, recorder(id));
  const req = (from: number, to: number) => outcome(net.transport(from).request(to, u8(from), { signal: never() }));
  net.partition([1, 2], [3]);
  assert.is(await req(1, 2), "ok:2,1");
  assert.is(await req(1, 3), "err:IO");
  assert.is(await req(3, 2), "err:IO");
  assert.is(await req(4, 3), "err:IO", "node 4 is in no group: it is in the rest, apart from 3");
  assert.is(net.reachable(4, 1), false);
  net.heal();
  assert.is(await req(1, 3), "ok:3,1");
  net.down(2);
  assert.is(await req(1, 2), "err:IO");
  assert.is(await req(2, 1), "err:IO", "a down node cannot send either");
  net.up(2);
  assert.is(await req(2, 1), "ok:1,2");
});

test("a partition also cuts messages in flight", async () => {
  const net = new MemoryNetwork({ seed: 1, delayMs: [20, 20] });
  const h = recorder(2);
  net.register(2, h);
  const p = outcome(net.transport(1).request(2, u8(1), { signal: never() }));
  await new Promise((r) => setTimeout(r, 5));
  net.partition([1], [2]);
  assert.is(await p, "err:IO");
  assert.is(h.seen.length, 0, "the request never arrived");
});

test("lost: 'hang' is silence until the signal aborts; an abort rejects at once with its reason", async () => {
  const net = new MemoryNetwork({ seed: 1, drop: 1, lost: "hang" });
  net.register(2, recorder(2));
  const ctrl = new AbortController();
  let settled = false;
  const p = net.transport(1).request(2, u8(1), { signal: ctrl.signal }).finally(() => { settled = true; });
  await new Promise((r) => setTimeout(r, 20));
  assert.is(settled, false, "a lost request just hangs");
  ctrl.abort(new WaveKVError("IO", "deadline"));
  try {
    await p;
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /deadline/);
  }
  const pre = new AbortController();
  pre.abort(new Error("already"));
  assert.is(await outcome(net.transport(1).request(2, u8(1), { signal: pre.signal })), "err:already");
});

test("setFaults validates and applies from the next message on", async () => {
  const net = new MemoryNetwork({ seed: 1, drop: 1 });
  net.register(2, recorder(2));
  assert.is(await outcome(net.transport(1).request(2, u8(1), { signal: never() })), "err:IO");
  net.setFaults({ drop: 0 });
  assert.is(await outcome(net.transport(1).request(2, u8(1), { signal: never() })), "ok:2,1");
  assert.throws(() => net.setFaults({ drop: 1.5 }), /probability/);
  assert.throws(() => net.setFaults({ delayMs: [5, 1] }), /delayMs/);
});

test("dropOneEntry removes exactly one entry from the next matching response, with a valid CRC", async () => {
  const uuid = "00000000-0000-4000-8000-000000000002";
  const entries = [1, 2, 3].map((i) => ({ key: `k${i}`, value: u8(i), timestamp: 1000 + i, node: 2, seq: i }));
  const net = new MemoryNetwork({ seed: 1 });
  const dropper = dropOneEntry({ from: 2, to: 1, pick: () => 1 });
  net.setTamper(dropper);
  net.register(2, { handle: async () => encodeEnvelope({ version: ENVELOPE_VERSION, senderId: 2, senderUuid: uuid, acks: new Map([[2, 3]]), entries }) });
  const t = net.transport(1);
  const first = decodeEnvelope(await t.request(2, u8(0), { signal: never() }));
  assert.equal(first.entries.map((e) => e.key), ["k1", "k3"]);
  assert.equal(first.acks, new Map([[2, 3]]), "the acks still claim the dropped entry");
  assert.equal(dropper.dropped.map((e) => e.key), ["k2"]);
  const second = decodeEnvelope(await t.request(2, u8(0), { signal: never() }));
  assert.is(second.entries.length, 3, "only once by default");
  assert.is(net.stats.tampered, 1);
});

test("the push channel is its own and visible to tamper hooks", async () => {
  const channels: string[] = [];
  const net = new MemoryNetwork({ seed: 1, tamper: (m) => { channels.push(`${m.channel}/${m.direction}`); return undefined; } });
  net.register(2, recorder(2));
  const t = net.transport(1);
  await t.push!(2, u8(1), { signal: never() });
  await t.request(2, u8(1), { signal: never() });
  assert.equal(channels, ["push/request", "push/response", "sync/request", "sync/response"]);
});

test("seededRandom is deterministic and uniform enough", () => {
  const a = seededRandom(9), b = seededRandom(9);
  const xs = Array.from({ length: 10_000 }, () => a());
  assert.equal(xs.slice(0, 5), Array.from({ length: 5 }, () => b()));
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.02, `mean ${mean}`);
  assert.ok(xs.every((x) => x >= 0 && x < 1));
});

test.run();
