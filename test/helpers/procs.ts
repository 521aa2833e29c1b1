/**
 * Process and port checks for tests that run the CLI as a user would (real processes,
 * real sockets on 127.0.0.1).
 *
 *   const child = spawnCli(["serve", "--id", "1", "--port", "0"], { cwd });
 *   const url = (await child.waitFor(/serving (\S+)/))[1];
 *   const kids = childrenOf(child.pid);          // before the signal: who it started
 *   child.kill("SIGTERM"); await child.exited;
 *   assert.ok(await refused(port)); assert.ok(kids.every((p) => !alive(p)));
 *
 * Not a test file: the runner skips test/helpers/.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createConnection, createServer } from "node:net";
import { fileURLToPath } from "node:url";

/** The built CLI (npm run build). Spawned with Node on either runtime, as `npx wavekv` would. */
export const builtCli = fileURLToPath(new URL("../../dist/app/cli.js", import.meta.url));

export interface Spawned {
  child: ChildProcess;
  pid: number;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** Resolves with the first match of `re` in the output; rejects if the process exits first or after `ms`. */
  waitFor(re: RegExp, ms?: number): Promise<RegExpExecArray>;
  /** Resolves with the exit code (or the signal's name) once the process has exited. */
  exited: Promise<number | string>;
  /** `exited`, or "still running" after `ms`. */
  exitedWithin(ms: number): Promise<number | string>;
}

/** The checkout's src/ directory (a path ending in /), for scripts that import the sources. */
export const srcDir = fileURLToPath(new URL("../../src/", import.meta.url));

/**
 * Runs `script` (an ES module's text; import the sources from `srcDir`) in a child of this
 * runtime — Bun as it is, Node through tsx — from the checkout's root, and waits for it:
 * its status, output and wall time (`ms`). The file lives in a fresh temp directory,
 * removed after.
 */
export function runScript(script: string, timeoutMs: number): SpawnSyncReturns<string> & { ms: number } {
  const dir = mkdtempSync(join(tmpdir(), "wavekv-script-"));
  const file = join(dir, "script.mts");
  writeFileSync(file, script);
  const args = process.versions.bun ? [file] : ["--import", "tsx", file];
  const t0 = Date.now();
  try {
    const out = spawnSync(process.execPath, args, { encoding: "utf8", timeout: timeoutMs, cwd: fileURLToPath(new URL("../..", import.meta.url)) });
    return Object.assign(out, { ms: Date.now() - t0 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function spawnCli(args: string[], opts: { cwd?: string } = {}): Spawned {
  return watch(spawn("node", [builtCli, ...args], { cwd: opts.cwd, stdio: ["ignore", "pipe", "pipe"] }));
}

export function watch(child: ChildProcess): Spawned {
  let out = "";
  const waiters = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const w of waiters) w();
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  const exited = new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? -1)));
  void exited.then(() => { for (const w of waiters) w(); });
  let done = false;
  void exited.then(() => { done = true; });
  return {
    child,
    pid: child.pid!,
    output: () => out,
    exited,
    exitedWithin: (ms) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      return Promise.race([exited, new Promise<string>((r) => { timer = setTimeout(() => r(`still running ${ms} ms later`), ms); })]).finally(() => clearTimeout(timer));
    },
    waitFor: (re, ms = 20_000) => new Promise((resolve, reject) => {
      const timer = setTimeout(() => { waiters.delete(check); reject(new Error(`no ${re} within ${ms} ms; output:\n${out}`)); }, ms);
      const check = () => {
        const m = re.exec(out);
        if (m) { clearTimeout(timer); waiters.delete(check); resolve(m); }
        else if (done) { clearTimeout(timer); waiters.delete(check); reject(new Error(`exited before ${re}; output:\n${out}`)); }
      };
      waiters.add(check);
      check();
    }),
  };
}

/** Direct children of `pid` (Linux /proc; `ps` elsewhere). */
export function childrenOf(pid: number): number[] {
  if (existsSync("/proc/self/stat")) {
    const kids: number[] = [];
    for (const name of readdirSync("/proc")) {
      if (!/^\d+$/.test(name)) continue;
      const stat = readStat(Number(name));
      if (stat && stat.ppid === pid) kids.push(Number(name));
    }
    return kids;
  }
  const r = spawnSync("ps", ["-o", "pid=", "-o", "ppid=", "-A"], { encoding: "utf8" });
  return r.stdout.split("\n").map((l) => l.trim().split(/\s+/).map(Number)).filter(([, ppid]) => ppid === pid).map(([p]) => p!);
}

/** The process exists and is not a zombie (a zombie holds no port; PID 1 here may never reap it). */
export function alive(pid: number): boolean {
  if (existsSync("/proc/self/stat")) {
    const stat = readStat(pid);
    return stat !== undefined && stat.state !== "Z" && stat.state !== "X";
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function readStat(pid: number): { state: string; ppid: number } | undefined {
  try {
    // "pid (comm) state ppid …": comm may hold spaces and parentheses, so parse after the last ")".
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const [state, ppid] = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return { state: state!, ppid: Number(ppid) };
  } catch {
    return undefined;
  }
}

/** True when nothing listens on 127.0.0.1:port (the connection is refused). */
export function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.once("connect", () => { socket.destroy(); resolve(false); });
    socket.once("error", (err: NodeJS.ErrnoException) => resolve(err.code === "ECONNREFUSED"));
  });
}

/** `n` distinct ports that were free a moment ago (the OS picks them; nothing else here binds them). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => resolve(s));
  })));
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** Splits one shell command line into words (quotes and backslashes; no expansion). */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "'" || c === '"') {
      const end = line.indexOf(c, i + 1);
      if (end < 0) throw new Error(`unbalanced ${c} in: ${line}`);
      word = (word ?? "") + line.slice(i + 1, end);
      i = end;
    } else if (c === "\\" && i + 1 < line.length) {
      word = (word ?? "") + line[++i];
    } else if (/\s/.test(c)) {
      if (word !== null) words.push(word);
      word = null;
    } else {
      word = (word ?? "") + c;
    }
  }
  if (word !== null) words.push(word);
  return words;
}
