/**
 * The CLI's two modes (DESIGN §1). Server running (server.pid names a live pid and /health
 * answers): every command is an HTTP call with the CLI's token. Server stopped: the command starts
 * the engine in this process on an ephemeral loopback port, runs through the same client, and stops
 * it; that takes the data directory's lock, so it can never race a real server. A live pid that
 * does not answer means a server owns the directory: direct access is refused.
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { configPath, readConfig, writeConfig, type Config } from '../core/index.js';
import { createClient, type EventDbxClient } from '../client/index.js';
import type { PidInfo } from '../coordinator/index.js';
import { resolveDataDir, type ConnectionFlags } from './options.js';
import { CliError } from './output.js';

/**
 * The data directory's contract files (DESIGN §11), read here without loading the coordinator:
 * fastify, lmdb and the workers cost ~150 ms to import, which only direct mode needs.
 */
export const PID_FILE = 'server.pid';
const CLI_TOKEN_FILE = 'cli.token';

export function readPidFile(dataDir: string): PidInfo | undefined {
  try {
    const info = JSON.parse(readFileSync(join(dataDir, PID_FILE), 'utf8')) as Partial<PidInfo>;
    return typeof info.pid === 'number' && info.pid > 0 ? { port: 0, started_at: '', restrict: 'default', ...info, pid: info.pid } : undefined;
  } catch {
    return undefined;
  }
}

export type ServerProbe =
  | { state: 'running'; info: PidInfo; url: string }
  | { state: 'unresponsive'; info: PidInfo }
  | { state: 'stopped'; stale?: PidInfo };

/** The address a local client uses: a wildcard listener is reached on loopback. */
export function localUrl(config: Config, port: number): string {
  const host = config.http.host;
  const reachable = host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return `http://${reachable}:${port}`;
}

/** One short-lived connection (the npm undici the client loads anyway; global fetch would load a second copy). */
export async function answersHealth(url: string, timeoutMs = 1500): Promise<boolean> {
  try {
    const res = await request(`${url}/health`, { reset: true, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, signal: AbortSignal.timeout(timeoutMs) });
    await res.body.dump();
    return res.statusCode === 200;
  } catch {
    return false;
  }
}

const HAS_PROC = existsSync('/proc/self/stat');

/** Alive and not a zombie (an exited child nobody reaped still answers kill(pid, 0)). */
export function processRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (!HAS_PROC) return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.charAt(stat.lastIndexOf(')') + 2) !== 'Z';
  } catch {
    return false;
  }
}

export async function probeServer(dataDir: string, config?: Config): Promise<ServerProbe> {
  const info = readPidFile(dataDir);
  if (!info) return { state: 'stopped' };
  if (!processRunning(info.pid)) return { state: 'stopped', stale: info };
  if (info.port > 0) {
    const url = localUrl(config ?? readConfig(dataDir).config, info.port);
    if (await answersHealth(url)) return { state: 'running', info, url };
  }
  return { state: 'unresponsive', info };
}

export function removeStalePidFile(dataDir: string, stale: PidInfo): void {
  const current = readPidFile(dataDir);
  if (current && current.pid === stale.pid && !processRunning(current.pid)) rmSync(join(dataDir, PID_FILE), { force: true });
}

export function resolveToken(flags: ConnectionFlags, dataDir: string): string {
  if (flags.token) return flags.token;
  if (process.env.EVENTDBX_TOKEN) return process.env.EVENTDBX_TOKEN;
  const path = join(dataDir, CLI_TOKEN_FILE);
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  throw new CliError(`no token: pass --token, set EVENTDBX_TOKEN, or start the server once to create ${path}`, 1, 'unauthorized');
}

export interface SessionContext {
  dataDir: string;
  mode: 'server' | 'direct';
  config: Config;
}

export function busyMessage(dataDir: string, info: PidInfo): string {
  return (
    `the EventDBX server (pid ${info.pid}) owns ${dataDir} but does not answer on port ${info.port}; ` +
    'direct access is refused while it runs. Wait until it is ready, or run `dbx stop`.'
  );
}

/** Runs `fn` with a client in whichever mode applies; the client (and a direct engine) is closed after. */
export async function withClient<T>(flags: ConnectionFlags, fn: (client: EventDbxClient, ctx: SessionContext) => Promise<T>): Promise<T> {
  const dataDir = resolveDataDir(flags.dataDir);
  const { config } = readConfig(dataDir);
  const tenant = flags.tenant || process.env.EVENTDBX_TENANT_ID || config.domain;
  const probe = await probeServer(dataDir, config);
  if (probe.state === 'unresponsive') throw new CliError(busyMessage(dataDir, probe.info), 1, 'unavailable');
  if (probe.state === 'running') {
    const client = createClient({ url: probe.url, token: resolveToken(flags, dataDir), tenant, retry: { attempts: 2 } });
    try {
      return await fn(client, { dataDir, mode: 'server', config });
    } finally {
      await client.close();
    }
  }
  return runDirect(dataDir, config, flags, tenant, fn);
}

async function runDirect<T>(
  dataDir: string,
  before: Config,
  flags: ConnectionFlags,
  tenant: string,
  fn: (client: EventDbxClient, ctx: SessionContext) => Promise<T>,
): Promise<T> {
  const { startServer, DataDirBusyError } = await import('../coordinator/index.js');
  let server;
  try {
    server = await startServer({ dataDir, listenPort: 0, host: '127.0.0.1', logLevel: 'silent' });
  } catch (err) {
    if (err instanceof DataDirBusyError) {
      const info = readPidFile(dataDir);
      throw new CliError(info ? busyMessage(dataDir, info) : err.message, 1, 'unavailable');
    }
    throw err;
  }
  const running = server;
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= running.stop());
  // Ctrl-C must still release the lock.
  const onSignal = (): void => void stop().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const client = createClient({ url: running.url, token: resolveToken(flags, dataDir), tenant, retry: { attempts: 1 } });
  try {
    return await fn(client, { dataDir, mode: 'direct', config: running.config });
  } finally {
    await client.close();
    await stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

