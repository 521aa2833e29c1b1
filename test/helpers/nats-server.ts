/**
 * A real nats-server for tests: started on a free 127.0.0.1 port with a temp config,
 * stopped by its pid (never by name). `natsServerPath` is undefined when the binary is
 * missing: the test then prints a loud NOT RUN (apt-get install -y nats-server).
 *
 *   const srv = await startNats();  ... await srv.stop(); await srv.start();  // same port
 *   await srv.close();              // stops it and removes the temp dir
 *
 * Not a test file: the runner skips test/helpers/.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePorts, watch, type Spawned } from "./procs.js";

export const natsServerPath: string | undefined = [process.env.WAVEKV_NATS_SERVER, "/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]
  .find((p): p is string => !!p && existsSync(p));

export interface NatsServer {
  url: string;
  port: number;
  /** Kills the server (SIGKILL: a crash, not a drain). */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startNats(config = ""): Promise<NatsServer> {
  if (!natsServerPath) throw new Error("nats-server not installed");
  const bin = natsServerPath;
  const [port] = await freePorts(1);
  const dir = mkdtempSync(join(tmpdir(), "wavekv-nats-"));
  const conf = join(dir, "nats.conf");
  writeFileSync(conf, `listen: 127.0.0.1:${port}\nmax_payload: 8MB\n${config}\n`);
  let proc: Spawned | null = null;
  const srv: NatsServer = {
    url: `nats://127.0.0.1:${port}`,
    port,
    async start() {
      proc = watch(spawn(bin, ["-c", conf], { stdio: ["ignore", "pipe", "pipe"] }));
      await proc.waitFor(/Server is ready/, 10_000);
    },
    async stop() {
      if (!proc) return;
      const p = proc;
      proc = null;
      p.child.kill("SIGKILL");
      await p.exited;
    },
    async close() {
      await srv.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await srv.start();
  return srv;
}
