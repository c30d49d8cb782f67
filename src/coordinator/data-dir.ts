/**
 * The data directory: first-start set-up (config with fresh Ed25519 keys, root CLI token) and the
 * ownership lock that refuses a second server on the same directory.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ConfigError,
  checkClaims,
  decodePublicKey,
  generateKeyPair,
  issueToken,
  keysMatch,
  readConfig,
  verifySignature,
  writeConfig,
  type Config,
} from '../core/index.js';

export const PID_FILE = 'server.pid';
export const CLI_TOKEN_FILE = 'cli.token';

export interface PidInfo {
  pid: number;
  port: number;
  started_at: string;
  restrict: string;
}

/** Loads config.toml, creating it (with keys) on first start; applies overrides and saves them. */
export function prepareDataDir(dataDir: string, overrides: Partial<Pick<Config, 'port' | 'restrict'>> = {}): Config {
  mkdirSync(dataDir, { recursive: true });
  const { config, exists } = readConfig(dataDir);
  let changed = !exists;
  if (!config.auth.private_key || !config.auth.public_key) {
    Object.assign(config.auth, generateKeyPair());
    if (!config.auth.key_id) config.auth.key_id = `key-${new Date().toISOString().replace(/[-:TZ.]/g, '').slice(0, 14)}`;
    changed = true;
  } else {
    let matches = false;
    try {
      matches = keysMatch(config.auth);
    } catch (err) {
      throw new ConfigError(`invalid ${join(dataDir, 'config.toml')}: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!matches) throw new ConfigError(`invalid ${join(dataDir, 'config.toml')}: auth.public_key does not match auth.private_key`);
  }
  for (const [key, value] of Object.entries(overrides)) {
    if (value !== undefined && (config as Record<string, unknown>)[key] !== value) {
      (config as Record<string, unknown>)[key] = value;
      changed = true;
    }
  }
  const now = new Date().toISOString();
  if (!config.created_at) config.created_at = now;
  if (changed) {
    config.updated_at = now;
    writeConfig(dataDir, config);
  }
  ensureCliToken(dataDir, config);
  return config;
}

/** A root token (actions ["*"], no expiry) in <dataDir>/cli.token, mode 0600. */
export function ensureCliToken(dataDir: string, config: Config): string {
  const path = join(dataDir, CLI_TOKEN_FILE);
  if (existsSync(path)) {
    const token = readFileSync(path, 'utf8').trim();
    if (token.split('.').length === 3 && tokenStillValid(token, config)) return token;
  }
  const { token } = issueToken(config.auth, {
    group: 'cli',
    user: 'root',
    subject: 'cli:bootstrap',
    actions: ['*'],
    resources: ['*'],
    tenants: [],
    issued_by: 'cli-bootstrap',
    ttl_secs: 0,
  });
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  return token;
}

function tokenStillValid(token: string, config: Config): boolean {
  try {
    const claims = verifySignature(token, decodePublicKey(config.auth.public_key));
    checkClaims(claims, config.auth);
    return claims.actions.includes('*');
  } catch {
    return false;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function readPidFile(dataDir: string): PidInfo | undefined {
  try {
    return JSON.parse(readFileSync(join(dataDir, PID_FILE), 'utf8')) as PidInfo;
  } catch {
    return undefined;
  }
}

/**
 * Takes the data directory: creates the pid file exclusively (O_EXCL). A file left by a dead
 * process is stale and replaced; one held by a live process refuses the start.
 */
export function acquireDataDir(dataDir: string, info: Omit<PidInfo, 'pid'>): () => void {
  const path = join(dataDir, PID_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, JSON.stringify({ pid: process.pid, ...info }), { flag: 'wx' });
      return () => {
        const current = readPidFile(dataDir);
        if (current?.pid === process.pid) rmSync(path, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = readPidFile(dataDir);
      if (holder && holder.pid !== process.pid && isAlive(holder.pid)) {
        throw new DataDirBusyError(`data directory ${dataDir} is already used by a running server (pid ${holder.pid})`);
      }
      rmSync(path, { force: true });
    }
  }
  throw new DataDirBusyError(`could not take the data directory ${dataDir}`);
}

export class DataDirBusyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataDirBusyError';
  }
}

/** Updates the pid file once the real port is known (port 0 picks one). */
export function updatePidFile(dataDir: string, info: PidInfo): void {
  writeFileSync(join(dataDir, PID_FILE), JSON.stringify(info));
}
