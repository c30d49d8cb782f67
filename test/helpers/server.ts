/**
 * Test harness: a real server on an ephemeral port in a temp data dir, talked to over HTTP.
 * `startServerInProcess` is the quick one; `spawnServer` runs the real `dbx` binary in a child
 * process (for SIGTERM / SIGKILL / start-up refusal tests). Every wait has a hard timeout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before } from 'node:test';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, type RunningServer } from '../../src/coordinator/index.js';

const here = dirname(fileURLToPath(import.meta.url));
/** dist/src/cli/main.js, relative to dist/test/helpers. */
export const DBX_BIN = resolve(here, '../../src/cli/main.js');

export function tempDataDir(prefix = 'edbx-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Writes a config.toml before first start (keys are added by the server). */
export function writeConfigToml(dataDir: string, toml: string): void {
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(join(dataDir, 'config.toml'), toml);
}

export function readCliToken(dataDir: string): string {
  return readFileSync(join(dataDir, 'cli.token'), 'utf8').trim();
}

export interface TestServer {
  url: string;
  port: number;
  dataDir: string;
  token: string;
  stop(): Promise<void>;
  /** Request helper: JSON in, JSON out, token and tenant headers set. */
  request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Headers }>;
}

export async function startServerInProcess(options: { dataDir?: string; configToml?: string } = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? tempDataDir();
  if (options.configToml !== undefined) writeConfigToml(dataDir, options.configToml);
  const server: RunningServer = await startServer({ dataDir, listenPort: 0, host: '127.0.0.1', logLevel: 'silent' });
  const token = readCliToken(dataDir);
  return {
    url: server.url,
    port: server.port,
    dataDir,
    token,
    stop: () => server.stop(),
    request: (method, path, body, headers) => httpRequest(server.url, token, method, path, body, headers),
  };
}

export async function httpRequest(
  baseUrl: string,
  token: string | undefined,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const init: RequestInit = {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    signal: AbortSignal.timeout(30_000),
  };
  // A string or bytes go as they are (malformed bodies), anything else as JSON.
  if (body !== undefined) init.body = typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body);
  const res = await fetch(`${baseUrl}${path}`, init);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text.length ? JSON.parse(text) : undefined;
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

export interface SpawnedServer extends TestServer {
  child: ChildProcess;
  stderr(): string;
  stdout(): string;
  kill(signal: NodeJS.Signals): void;
  exited: Promise<number | null>;
}

/** Runs `dbx start --foreground` in a child process; resolves once /health answers. */
export async function spawnServer(options: { dataDir?: string; configToml?: string; extraArgs?: string[]; env?: Record<string, string>; nodeArgs?: string[] } = {}): Promise<SpawnedServer> {
  const dataDir = options.dataDir ?? tempDataDir();
  if (options.configToml !== undefined) writeConfigToml(dataDir, options.configToml);
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), DBX_BIN, 'start', '--foreground', '--data-dir', dataDir, '--port', '0', ...(options.extraArgs ?? [])], {
    env: { ...process.env, EVENTDBX_LOG_LEVEL: 'warn', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const captured = captureChild(child);
  const port = await waitForPort(dataDir, child, captured.exited, 20_000);
  return spawnedServer(child, dataDir, port, captured);
}

export interface CapturedChild {
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
}

/** Collects a child's output and its exit code. */
export function captureChild(child: ChildProcess): CapturedChild {
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  return { stdout: () => out, stderr: () => err, exited };
}

/** The test face of a child running `dbx start --foreground` that answers on `port`. */
export function spawnedServer(child: ChildProcess, dataDir: string, port: number, captured: CapturedChild): SpawnedServer {
  const url = `http://127.0.0.1:${port}`;
  const token = readCliToken(dataDir);
  const { exited } = captured;
  return {
    url,
    port,
    dataDir,
    token,
    child,
    exited,
    stderr: captured.stderr,
    stdout: captured.stdout,
    kill: (signal) => child.kill(signal),
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 15_000)))]);
      clearTimeout(timer);
    },
    request: (method, path, body, headers) => httpRequest(url, token, method, path, body, headers),
  };
}

async function waitForPort(dataDir: string, child: ChildProcess, exited: Promise<number | null>, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let done = false;
  void exited.then(() => (done = true));
  while (Date.now() < deadline) {
    if (done || child.exitCode !== null) throw new Error(`server exited before it was ready (code ${child.exitCode})`);
    try {
      const info = JSON.parse(readFileSync(join(dataDir, 'server.pid'), 'utf8')) as { pid: number; port: number };
      if (info.pid === child.pid && info.port > 0) {
        const res = await fetch(`http://127.0.0.1:${info.port}/health`, { signal: AbortSignal.timeout(1000) });
        if (res.ok) return info.port;
      }
    } catch {
      // not ready yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error('server did not become ready in time');
}

/** Runs the dbx binary to completion. */
export function runDbx(args: string[], options: { env?: Record<string, string>; input?: string; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [DBX_BIN, ...args], { env: { ...process.env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Stops a spawned server (SIGTERM, then SIGKILL after `timeoutMs`) and returns its exit code.
 * Unlike `stop()` it clears its timer, so the test process is not held open after the child exits.
 */
export async function stopSpawned(server: SpawnedServer, timeoutMs = 15_000): Promise<number | null> {
  const { child } = server;
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((res) => (timer = setTimeout(() => res('late'), timeoutMs)));
  try {
    const code = await Promise.race([server.exited, late]);
    if (code !== 'late') return code;
    child.kill('SIGKILL');
    await server.exited;
    throw new Error(`server did not stop within ${timeoutMs} ms after SIGTERM`);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * One in-process server for a whole test file: started in `before`, stopped and removed in `after`.
 * The returned object forwards to it, so tests read `server.request(…)` as usual.
 */
export function useServer(options: { configToml?: string } = {}): TestServer {
  let current: TestServer | undefined;
  before(async () => {
    current = await startServerInProcess(options);
  });
  after(async () => {
    if (!current) return;
    await current.stop();
    removeDir(current.dataDir);
  });
  const get = (): TestServer => {
    if (!current) throw new Error('the file server is not started yet (use it inside a test)');
    return current;
  };
  return {
    get url() { return get().url; },
    get port() { return get().port; },
    get dataDir() { return get().dataDir; },
    get token() { return get().token; },
    stop: () => get().stop(),
    request: (method, path, body, headers) => get().request(method, path, body, headers),
  };
}
