/**
 * Daemon lifecycle: `dbx start` spawns a detached `dbx start --foreground` whose output goes to
 * <data_dir>/logs/eventdbx.log and waits until it answers /health; `dbx stop` sends SIGTERM (the
 * server drains in-flight writes), then SIGKILL if it overstays (no acknowledged write is lost).
 */
import { mkdirDurably } from '../core/durable-file.js';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { readConfig, writeFileDurably } from '../core/index.js';
import type { PidInfo } from '../coordinator/index.js';
import { CliError, formatUptime } from './output.js';
import { PID_FILE, answersHealth, localUrl, probeServer, processRunning, readPidFile, removeStalePidFile } from './session.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));
const READY_TIMEOUT_MS = 30_000;

export interface StartFlags {
  port?: number;
  restrict?: 'off' | 'default' | 'strict';
}

/**
 * The options the running server was started with, rewritten at every start: `dbx restart` reuses
 * them (pg_ctl's postmaster.opts), so `dbx start --restrict=strict --port 7171` stays strict on 7171
 * after a restart whatever config.toml says meanwhile; options given to restart replace them.
 */
export const START_OPTIONS_FILE = 'start-options.json';

const startFlagsSchema = z.strictObject({
  port: z.number().int().min(0).max(65535).optional(),
  restrict: z.enum(['off', 'default', 'strict']).optional(),
});

export function recordStartOptions(dataDir: string, flags: StartFlags): void {
  const given: StartFlags = {
    ...(flags.port !== undefined ? { port: flags.port } : {}),
    ...(flags.restrict !== undefined ? { restrict: flags.restrict } : {}),
  };
  writeFileDurably(join(dataDir, START_OPTIONS_FILE), `${JSON.stringify(given)}\n`);
}

/** The recorded options ({} when there are none); a damaged file is ignored rather than trusted. */
export function rememberedStartOptions(dataDir: string): StartFlags {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(join(dataDir, START_OPTIONS_FILE), 'utf8'));
  } catch {
    return {};
  }
  const parsed = startFlagsSchema.safeParse(raw);
  if (!parsed.success) return {};
  const { port, restrict } = parsed.data;
  return { ...(port !== undefined ? { port } : {}), ...(restrict !== undefined ? { restrict } : {}) };
}

export function logFile(dataDir: string): string {
  return join(dataDir, 'logs', 'eventdbx.log');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Last non-empty line the log gained since `offset` (what the child said before dying). */
function lastLogLine(path: string, offset: number): string | undefined {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size - offset, 64 * 1024);
    if (length <= 0) return undefined;
    const buf = Buffer.alloc(length);
    readSync(fd, buf, 0, length, size - length);
    return buf
      .toString('utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.length > 0)
      .pop();
  } finally {
    closeSync(fd);
  }
}

/** Spawns the daemon and resolves with its pid file once /health answers. */
export async function startDaemon(dataDir: string, flags: StartFlags): Promise<PidInfo> {
  const probe = await probeServer(dataDir);
  if (probe.state === 'running' || probe.state === 'unresponsive') throw new CliError(`EventDBX server already running (pid ${probe.info.pid})`, 1, 'already_exists');
  if (probe.stale) removeStalePidFile(dataDir, probe.stale);
  mkdirDurably(join(dataDir, 'logs'), 0o777);
  const log = logFile(dataDir);
  const fd = openSync(log, 'a');
  const offset = fstatSync(fd).size;
  const args = [MAIN, 'start', '--foreground', '--data-dir', dataDir];
  if (flags.port !== undefined) args.push('--port', String(flags.port));
  if (flags.restrict !== undefined) args.push(`--restrict=${flags.restrict}`);
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', fd, fd], env: process.env });
  closeSync(fd);
  let exitCode: number | null | undefined;
  child.on('exit', (code, signal) => (exitCode = code ?? (signal ? 128 : 1)));
  child.unref();
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    await sleep(100);
    if (exitCode !== undefined) {
      const line = lastLogLine(log, offset);
      throw new CliError(`EventDBX server failed to start (exit code ${exitCode})${line ? `: ${line}` : ''}; log: ${log}`, 1, 'unavailable');
    }
    const info = readPidFile(dataDir);
    if (info && info.pid === child.pid && info.port > 0 && (await answersHealth(localUrl(readConfig(dataDir).config, info.port), 1000))) return info;
  }
  child.kill('SIGTERM');
  throw new CliError(`EventDBX server did not answer /health within ${READY_TIMEOUT_MS / 1000}s and was stopped; see ${log}`, 1, 'unavailable');
}

/** Guards against a recycled pid: on Linux the process must look like a dbx/node process. */
function looksLikeEventDbx(pid: number): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return /main\.js|dbx|eventdbx|node/.test(cmdline);
  } catch {
    return true;
  }
}

export type StopOutcome = { kind: 'none' } | { kind: 'stale'; info: PidInfo } | { kind: 'stopped'; info: PidInfo; killed: boolean };

export async function stopServer(dataDir: string, timeoutMs = 10_000): Promise<StopOutcome> {
  const info = readPidFile(dataDir);
  if (!info) return { kind: 'none' };
  if (!processRunning(info.pid) || !looksLikeEventDbx(info.pid)) {
    rmSync(join(dataDir, PID_FILE), { force: true });
    return { kind: 'stale', info };
  }
  process.kill(info.pid, 'SIGTERM');
  let killed = false;
  if (!(await waitForExit(info.pid, timeoutMs))) {
    killed = true;
    try {
      process.kill(info.pid, 'SIGKILL');
    } catch {
      // exited between the check and the kill
    }
    if (!(await waitForExit(info.pid, 2_000))) throw new CliError(`failed to stop EventDBX server (pid ${info.pid}); process is still running`, 1, 'unavailable');
  }
  const current = readPidFile(dataDir);
  if (current?.pid === info.pid) rmSync(join(dataDir, PID_FILE), { force: true });
  return { kind: 'stopped', info, killed };
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!processRunning(pid)) return true;
    await sleep(50);
  }
  return !processRunning(pid);
}

export function describeStop(outcome: StopOutcome): string {
  switch (outcome.kind) {
    case 'none':
      return 'No running EventDBX server found.';
    case 'stale':
      return 'Removed stale EventDBX server pid file.';
    case 'stopped': {
      const uptime = formatUptime((Date.now() - Date.parse(outcome.info.started_at)) / 1000);
      return `EventDBX server stopped (pid ${outcome.info.pid}) after ${uptime} (started ${outcome.info.started_at})${outcome.killed ? ' — killed after it did not drain in time' : ''}`;
    }
  }
}

/**
 * Whether `dataDir` holds an EventDBX store (what `dbx destroy` may delete whole). A file named
 * config.toml alone is not enough (static-site generators and many tools use the name): it must
 * read as our config (with the [auth] key fields), or the dir must hold the shard layout or a CLI
 * token shaped as our JWT.
 */
export function dataDirLooksOurs(dataDir: string): boolean {
  if (existsSync(join(dataDir, 'shards', 'layout.json'))) return true;
  const read = (name: string): string => {
    try {
      return readFileSync(join(dataDir, name), 'utf8');
    } catch {
      return '';
    }
  };
  // Ours: an [auth] section with our key fields (a key pair, or the empty ones `dbx config` writes
  // before the first start), in a file our strict config reader accepts (unknown keys refused).
  const config = read('config.toml');
  if (/^\s*\[auth\][^[]*^\s*(private|public)_key\s*=/ms.test(config)) {
    try {
      readConfig(dataDir);
      return true;
    } catch {
      // Not our config after all: look at the other markers.
    }
  }
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\s*$/.test(read('cli.token'));
}
