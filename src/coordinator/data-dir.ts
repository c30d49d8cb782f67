/**
 * The data directory: first-start set-up (config with fresh Ed25519 keys, root CLI token) and the
 * ownership lock that refuses a second server on the same directory.
 */
import { mkdirDurably, removeFileDurably } from '../core/durable-file.js';
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import {
  ConfigError,
  checkClaims,
  checkKeyRegistry,
  ensureDataKey,
  resolveDataKeys,
  decodePublicKey,
  generateKeyPair,
  issueToken,
  type TokenClaims,
  keysMatch,
  readConfig,
  restrictTreeModes,
  verifySignature,
  writeConfig,
  writeFileDurably,
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

/** Start flags that config.toml keeps (`dbx start --port`, `--restrict`). */
export type StartOverrides = Partial<Pick<Config, 'port' | 'restrict'>>;

/**
 * Loads config.toml, creating it (with keys) on first start, and answers it with the overrides
 * applied. The overrides are saved only by saveStartOverrides, once the server runs: a start that
 * failed (say, its port in use) must not leave its flags behind in config.toml.
 */
export function prepareDataDir(dataDir: string, overrides: StartOverrides = {}): Config {
  // Owner-only whatever the caller's umask (ids and hashes are readable in data.mdb): process-wide, so
  // the LMDB files the shard workers create later are 0600 too. Existing, wider trees are narrowed.
  process.umask(0o077);
  mkdirDurably(dataDir);
  restrictTreeModes(dataDir);
  const { config, exists } = readConfig(dataDir);
  let changed = !exists;
  if (!config.auth.private_key || !config.auth.public_key) {
    refuseNewKeysOverData(dataDir, exists);
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
  // Encryption at rest is on by default: a first start with no key anywhere generates one (saved
  // below with config.toml, mode 0600). A data dir with plaintext values keeps reading them.
  if (ensureDataKey(config, dataDir)) changed = true;
  const now = new Date().toISOString();
  if (!config.created_at) config.created_at = now;
  if (changed) {
    config.updated_at = now;
    writeConfig(dataDir, config);
  }
  // After config.toml is saved: a key id is recorded only once its key is durable somewhere.
  checkKeyRegistry(dataDir, resolveDataKeys(config, dataDir));
  ensureCliToken(dataDir, config);
  return { ...config, ...definedOverrides(overrides) };
}

/** Saves the start flags that differ from config.toml (call once the server listens). */
export function saveStartOverrides(dataDir: string, overrides: StartOverrides): void {
  const { config } = readConfig(dataDir);
  const changes = Object.entries(definedOverrides(overrides)).filter(([key, value]) => (config as Record<string, unknown>)[key] !== value);
  if (changes.length === 0) return;
  writeConfig(dataDir, { ...config, ...Object.fromEntries(changes), updated_at: new Date().toISOString() });
}

function definedOverrides(overrides: StartOverrides): StartOverrides {
  return Object.fromEntries(Object.entries(overrides).filter(([, value]) => value !== undefined)) as StartOverrides;
}

/**
 * What the first start writes beside config.toml (the token ledger, the plugin queue, the schema
 * registry, the root token): any of them there means config.toml was lost, not never made.
 * (`shards/` alone is left to the layout check, which names an old layout more precisely.)
 */
const STORE_ENTRIES = ['tokens', 'queue', 'registry', CLI_TOKEN_FILE];

/**
 * A key pair is made on the first start only. With config.toml missing, empty (as a power cut
 * could once leave it) or without its keys while the data dir already holds a store, new keys
 * would silently invalidate every token issued here (and, with encryption at rest, the data key
 * would be lost too): refuse with one line instead, before anything is written.
 */
function refuseNewKeysOverData(dataDir: string, configExists: boolean): void {
  const found = STORE_ENTRIES.filter((name) => existsSync(join(dataDir, name)));
  if (found.length === 0) return;
  const state = configExists ? 'has no auth key pair' : 'is missing';
  throw new ConfigError(
    `${join(dataDir, 'config.toml')} ${state}, but ${dataDir} already holds data (${found.join(', ')}): new keys would invalidate every token issued for it; restore config.toml from a backup (its [auth] keys sign the tokens)`,
  );
}

/** The data directory's root token: actions ["*"], every tenant, no expiry (DESIGN §11). */
export function issueCliToken(auth: Config['auth']): { token: string; claims: TokenClaims } {
  return issueToken(auth, {
    group: 'cli',
    user: 'root',
    subject: 'cli:bootstrap',
    actions: ['*'],
    resources: ['*'],
    tenants: [],
    issued_by: 'cli-bootstrap',
    ttl_secs: 0,
  });
}

/** A root token (actions ["*"], no expiry) in <dataDir>/cli.token, mode 0600. */
export function ensureCliToken(dataDir: string, config: Config): string {
  const path = join(dataDir, CLI_TOKEN_FILE);
  if (existsSync(path)) {
    const token = readFileSync(path, 'utf8').trim();
    if (token.split('.').length === 3 && tokenStillValid(token, config)) return token;
  }
  const { token } = issueCliToken(config.auth);
  writeFileDurably(path, `${token}\n`, 0o600);
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
 * Takes the data directory for the life of this process: an OS-level exclusive lock, never a file
 * that someone may delete. The lock is a Linux abstract-namespace Unix socket named after the data
 * dir's device and inode: binding it is atomic (a second binder gets EADDRINUSE), and the kernel
 * releases it when the process dies, however it dies, so there is no stale state to clean up.
 * (The old pid-file check read, deleted and re-created the file; two starters could both win.)
 * Abstract sockets are per network namespace: two servers in different namespaces are not kept
 * apart. The pid file stays, as information for the CLI (which port, which pid), nothing more.
 */
export async function acquireDataDir(dataDir: string, info: Omit<PidInfo, 'pid'>): Promise<() => void> {
  mkdirDurably(dataDir);
  const lock = await bindLock(lockName(dataDir)).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EADDRINUSE') throw err;
    const holder = readPidFile(dataDir);
    const who = holder && holder.pid !== process.pid ? ` (pid ${holder.pid})` : '';
    throw new DataDirBusyError(`data directory ${dataDir} is already used by a running server${who}`);
  });
  writeFileDurably(join(dataDir, PID_FILE), JSON.stringify({ pid: process.pid, ...info }));
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const current = readPidFile(dataDir);
    if (current?.pid === process.pid) removeFileDurably(join(dataDir, PID_FILE));
    lock.close();
  };
}

function lockName(dataDir: string): string {
  const { dev, ino } = statSync(realpathSync(dataDir));
  return `\0eventdbx-data-dir-${dev}-${ino}`;
}

function bindLock(name: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.destroy());
    server.once('error', reject);
    server.listen(name, () => {
      server.off('error', reject);
      // The lock must not keep the event loop alive on its own.
      server.unref();
      resolve(server);
    });
  });
}

export class DataDirBusyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataDirBusyError';
  }
}

/** Updates the pid file once the real port is known (port 0 picks one). */
export function updatePidFile(dataDir: string, info: PidInfo): void {
  writeFileDurably(join(dataDir, PID_FILE), JSON.stringify(info), 0o600);
}
