/**
 * The CLI's two modes (DESIGN §1). Server running (server.pid names a live pid and /health
 * answers): every command is an HTTP call with the CLI's token. Server stopped: the command starts
 * the engine in this process on an ephemeral loopback port, runs through the same client, and stops
 * it; that takes the data directory's lock, so it can never race a real server. A live pid that
 * does not answer means a server owns the directory: direct access is refused.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { rootCertificates } from 'node:tls';
import { readConfig, type Config } from '../core/index.js';
import { createClient, type ClientOptions, type EventDbxClient } from '../client/index.js';
import type { PidInfo } from '../coordinator/index.js';
import { resolveDataDir, type ConnectionFlags } from './options.js';
import { openDirectGateway } from './direct.js';
import { CliError } from './output.js';
import { loadUndici } from '../client/undici.js';

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

/** The address a local client uses: a wildcard listener is reached on loopback; https when TLS is on. */
export function localUrl(config: Config, port: number): string {
  const host = config.http.host;
  const reachable = host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return `${config.http.tls_cert_file !== undefined ? 'https' : 'http'}://${reachable}:${port}`;
}

/** Loopback only (127.0.0.0/8, ::1, localhost): nobody off this machine can connect. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\./.test(h);
}

/**
 * One short-lived connection (the npm undici the client uses; global fetch would load a second
 * copy), imported only here: with no server.pid there is nothing to probe, and a direct read never
 * loads undici. An https probe does not verify the certificate: it sends no token and only asks
 * whether the listener named in server.pid is up; every call that carries a token verifies it.
 */
export async function answersHealth(url: string, timeoutMs = 3000): Promise<boolean> {
  const { Agent, request } = await loadUndici();
  const dispatcher = url.startsWith('https:') ? new Agent({ connect: { rejectUnauthorized: false } }) : undefined;
  try {
    const res = await request(`${url}/health`, {
      reset: true,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
      ...(dispatcher ? { dispatcher } : {}),
    });
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

/** --tenant, else $EVENTDBX_TENANT (or the older $EVENTDBX_TENANT_ID), else the checked-out domain. */
export function resolveTenant(flags: ConnectionFlags, config: Config): string {
  return flags.tenant || process.env.EVENTDBX_TENANT || process.env.EVENTDBX_TENANT_ID || config.domain;
}

/**
 * --token, else $EVENTDBX_TOKEN, else the data dir's cli.token. cli.token is a never-expiring
 * root token: it is sent only to a server on this machine (a loopback address), never to a
 * `--url` elsewhere, where a plain-http hop or a wrong host would hand it out.
 */
export function resolveToken(flags: ConnectionFlags, dataDir: string, url?: string): string {
  if (flags.token) return flags.token;
  if (process.env.EVENTDBX_TOKEN) return process.env.EVENTDBX_TOKEN;
  if (url !== undefined && !isLoopbackUrl(url)) {
    throw new CliError(`no token for ${url}: pass --token or set EVENTDBX_TOKEN (the local cli.token is sent only to a server on this machine)`, 1, 'unauthorized');
  }
  const path = join(dataDir, CLI_TOKEN_FILE);
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  throw new CliError(`no token: pass --token, set EVENTDBX_TOKEN, or start the server once to create ${path}`, 1, 'unauthorized');
}

function isLoopbackUrl(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname.toLowerCase();
  } catch {
    return false;
  }
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/**
 * What the CLI trusts for an https:// server: --ca-file, else $EVENTDBX_CA_FILE, else, for the
 * local server, its `[http] tls_ca_file` or (a self-signed certificate is its own CA) the
 * certificate it serves, next to the system roots. Plain http needs nothing.
 */
export function clientTrust(flags: ConnectionFlags, dataDir: string, config: Config, local: boolean): Pick<ClientOptions, 'ca' | 'caFile'> {
  const file = flags.caFile ?? (process.env.EVENTDBX_CA_FILE || undefined);
  if (file !== undefined) return { caFile: resolve(file) };
  const { tls_cert_file: cert, tls_ca_file: ca } = config.http;
  if (!local || cert === undefined) return {};
  if (ca !== undefined) return { caFile: resolve(dataDir, ca) };
  try {
    return { ca: [...rootCertificates, readFileSync(resolve(dataDir, cert), 'utf8')] };
  } catch (err) {
    throw new CliError(`cannot read [http] tls_cert_file ${resolve(dataDir, cert)}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`, 1, 'invalid_input');
  }
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
  const tenant = resolveTenant(flags, config);
  // --url (--server) names a server anywhere (http:// or https://): no pid file, no direct mode.
  const probe = flags.server !== undefined ? undefined : await probeServer(dataDir, config);
  if (probe?.state === 'unresponsive') throw new CliError(busyMessage(dataDir, probe.info), 1, 'unavailable');
  const url = flags.server ?? (probe?.state === 'running' ? probe.url : undefined);
  if (url !== undefined) {
    const trust = clientTrust(flags, dataDir, config, flags.server === undefined);
    const client = createClient({ url, token: resolveToken(flags, dataDir, flags.server), tenant, retry: { attempts: 2 }, ...trust });
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
  const tokenFile = join(dataDir, CLI_TOKEN_FILE);
  const readCliToken = (): string | undefined => (existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() : undefined);
  // Without --token or $EVENTDBX_TOKEN the client carries a stand-in for cli.token, which the
  // gateway swaps for the file's token (a first write creates the file).
  const given = flags.token || process.env.EVENTDBX_TOKEN || undefined;
  const placeholder = given ? undefined : `direct-${randomBytes(24).toString('hex')}`;
  const gateway = await openDirectGateway(dataDir, {
    busy: (err) => {
      const info = readPidFile(dataDir);
      return new CliError(info ? busyMessage(dataDir, info) : err.message, 1, 'unavailable');
    },
    readCliToken,
    ...(placeholder !== undefined ? { placeholder } : {}),
  });
  // Ctrl-C must still release the lock (if the command started the engine).
  const onSignal = (): void => void gateway.close().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const client = createClient({ url: gateway.url, token: given || (placeholder as string), tenant, retry: { attempts: 1 }, dispatcher: gateway.dispatcher });
  try {
    return await fn(client, { dataDir, mode: 'direct', config: before });
  } catch (err) {
    // A refused read of a missing data dir, a refused start: their own words, not the client's.
    throw gateway.failure() ?? err;
  } finally {
    await client.close();
    await gateway.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

