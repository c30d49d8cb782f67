/**
 * Child processes the benchmark starts: the real `dbx start --foreground` server (through the test
 * harness), and its own small servers (floor, PostgreSQL comparison) that print {"port"} on stdout.
 * Every child is registered so that an aborted run still stops them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { spawnServer, type SpawnedServer } from '../test/helpers/server.js';

export interface ChildServer {
  url: string;
  port: number;
  /** Set for the EventDBX server: the root token from cli.token. */
  token?: string;
  /** Set for the EventDBX server: its process, whose threads the CPU table reads. */
  pid?: number;
  stderr(): string;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();

/** Last-resort cleanup when the benchmark process exits with children still running. */
process.on('exit', () => {
  for (const child of live) if (child.exitCode === null) child.kill('SIGTERM');
});
// Ctrl-C: exit through the handler above so no server is left holding its data directory.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

/**
 * EVENTDBX_BENCH_SERVER_NODE_ARGS (space-separated) goes to the server's node, for profiling the
 * server under a benchmark: `--cpu-prof --cpu-prof-dir=/tmp/prof` writes one profile per thread.
 */
const serverNodeArgs = (process.env.EVENTDBX_BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter((a) => a.length > 0);

export async function startEventDbx(dataDir: string): Promise<ChildServer> {
  const server: SpawnedServer = await spawnServer({ dataDir, env: { EVENTDBX_LOG_LEVEL: 'warn' }, nodeArgs: serverNodeArgs });
  live.add(server.child);
  return {
    url: server.url,
    port: server.port,
    token: server.token,
    ...(server.child.pid !== undefined ? { pid: server.child.pid } : {}),
    stderr: server.stderr,
    // Not server.stop(): its 15 s guard timer is not unref'd and would hold the benchmark open.
    stop: async () => {
      await stopChild(server.child, server.exited.then(() => undefined), 30_000);
      live.delete(server.child);
      if (server.child.exitCode === null && server.child.signalCode === null) throw new Error(`EventDBX server pid ${server.child.pid} did not stop within 30 s`);
    },
  };
}

/** Runs dist/bench/<script>.js with args; resolves once it printed its port. */
export async function startBenchChild(script: string, args: string[] = [], timeoutMs = 20_000): Promise<ChildServer> {
  const path = fileURLToPath(new URL(`./${script}.js`, import.meta.url));
  const child = spawn(process.execPath, [path, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not print its port within ${timeoutMs} ms; stderr: ${err}`)), timeoutMs);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) {
        clearTimeout(timer);
        try {
          resolve((JSON.parse(line) as { port: number }).port);
        } catch {
          reject(new Error(`${script} printed '${line}' instead of {"port"}`));
        }
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${script} exited before it was ready (code ${child.exitCode}); stderr: ${err}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    stderr: () => err,
    stop: async () => {
      await stopChild(child, exited, 10_000);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      live.delete(child);
    },
  };
}

/** SIGTERM, then wait for the exit at most `timeoutMs` (the timer never holds the process open). */
async function stopChild(child: ChildProcess, exited: Promise<void>, timeoutMs: number): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
}
