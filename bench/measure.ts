/**
 * Measurement for the bench modules: timers, seeded data shaped like the issues' cases,
 * and child processes of the current runtime (for numbers no earlier case has touched).
 *
 *   const ms = await best(() => work(), 3);          // best of 3 wall-clock runs
 *   rows.push({ ..., value: rate(n, ms), unit: "ops/s" });
 *   const keys = benchKeys(100_000); const values = benchValues(100_000, 100, 1);
 *   const out = await runChild("bench/memory.ts", ["--child", "map", "1000000"]);
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const isBun = (process.versions as Record<string, string | undefined>).bun !== undefined;

export function rate(ops: number, ms: number): number {
  return ms > 0 ? (ops / ms) * 1000 : 0;
}

export async function time(fn: () => Promise<void> | void): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/** The fastest of `reps` runs, in ms: on a shared VM the minimum is the least disturbed run. */
export async function best(fn: () => Promise<void> | void, reps = 3): Promise<number> {
  let ms = Infinity;
  for (let r = 0; r < reps; r++) ms = Math.min(ms, await time(fn));
  return ms;
}

/**
 * Runs `workers` concurrent loops of `op` until `ms` have passed; returns operations per
 * second. Time-boxed rather than count-boxed: disk-bound rates here vary 10x with the
 * neighbours, and a fixed count would either take minutes or measure nothing.
 */
export async function throughput(workers: number, ms: number, op: (i: number) => Promise<unknown> | unknown): Promise<{ ops: number; ms: number; rate: number }> {
  let next = 0;
  const t0 = performance.now();
  const deadline = t0 + ms;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (performance.now() < deadline) await op(next++);
    }),
  );
  const elapsed = performance.now() - t0;
  return { ops: next, ms: elapsed, rate: rate(next, elapsed) };
}

/** Keys like the issues' cases: short, ASCII, sharing a prefix (`user/<base36>/profile`). */
export function benchKey(i: number): string {
  return `user/${i.toString(36)}/profile`;
}

export function benchKeys(n: number, from = 0): string[] {
  return Array.from({ length: n }, (_, i) => benchKey(from + i));
}

/** xorshift32: deterministic and incompressible enough that no peer wins by compressing. */
function fillRandom(out: Uint8Array, seed: number): void {
  let x = seed >>> 0 || 0x9e3779b9;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
}

/** `n` random bytes (xorshift32 from `seed`). */
export function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  fillRandom(out, seed);
  return out;
}

const POOL = new Uint8Array(1 << 16);
fillRandom(POOL, 0x5eed);

/**
 * One fresh `Uint8Array` (its own buffer): what a decoder or a caller hands to a store.
 * Copied from a 64 KiB random pool at a seed-dependent offset: cheap enough for 1M values.
 */
export function benchValue(size: number, seed: number): Uint8Array {
  if (size > POOL.length) { const v = new Uint8Array(size); fillRandom(v, seed + 1); return v; }
  const off = (Math.imul(seed, 2654435761) >>> 0) % (POOL.length - size + 1);
  return POOL.slice(off, off + size);
}

/** `n` distinct values of `size` bytes, views into one slab (so holding them costs no per-value buffer). */
export function benchValues(n: number, size: number, seed: number): Uint8Array[] {
  const slab = new Uint8Array(n * size);
  fillRandom(slab, seed);
  return Array.from({ length: n }, (_, i) => slab.subarray(i * size, (i + 1) * size));
}

/** Raw payload of a key set: UTF-8 key bytes + value bytes, the floor any encoding is judged against. */
export function payloadBytes(keys: readonly string[], valueSize: number): number {
  let n = 0;
  for (const k of keys) n += Buffer.byteLength(k) + valueSize;
  return n;
}

/** Full garbage collection where the runtime allows it (Node needs --expose-gc). */
export function collectGarbage(): void {
  const bun = (globalThis as { Bun?: { gc(force: boolean): void } }).Bun;
  if (bun) bun.gc(true);
  else (globalThis as { gc?: () => void }).gc?.();
}

/** Path of a bench module beside this file. */
export function benchFile(name: string): string {
  return fileURLToPath(new URL(name, import.meta.url));
}

/**
 * Runs `file` in a child of the current runtime (Node with tsx and --expose-gc, or Bun)
 * and returns its stdout; rejects with its stderr on a non-zero exit.
 */
export function runChild(file: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
  const argv = isBun ? [file, ...args] : ["--expose-gc", "--import", "tsx", file, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const timer = opts.timeoutMs ? setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs) : undefined;
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${file} ${args.join(" ")}: exit ${code ?? signal}\n${err.slice(-2000)}`));
    });
  });
}
