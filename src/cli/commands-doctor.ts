/**
 * `dbx doctor`: checks what a start or a command would trip over, without changing anything, and
 * says what to do about each problem — the data dir, config.toml, the key pair, cli.token, the
 * data encryption key, the server and its port, disk space and the durability mode. Exit 0 when
 * nothing failed (warnings are advice), 1 otherwise; `--json` for scripts.
 */
import { accessSync, constants, existsSync, readFileSync, statSync, statfsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Command } from 'commander';
import {
  checkClaims,
  checkKeyRegistry,
  decodePublicKey,
  keysMatch,
  readConfig,
  resolveDataKeys,
  resolveKeyFilePath,
  verifySignature,
  type Config,
} from '../core/index.js';
import { resolveDataDir } from './options.js';
import { printJson, printLine } from './output.js';
import { probeServer } from './session.js';
import { paint } from './terminal.js';

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface Check {
  name: string;
  status: CheckStatus;
  message: string;
  /** What to do about a warn or fail. */
  fix?: string;
}

const MIB = 1024 * 1024;
/** Below this a start or a commit may fail outright: LMDB grows its file as it writes. */
const DISK_FAIL_BYTES = 100 * MIB;
const DISK_WARN_BYTES = 1024 * MIB;
const TMPFS_MAGIC = 0x01021994;

function check(name: string, status: CheckStatus, message: string, fix?: string): Check {
  return { name, status, message, ...(fix !== undefined ? { fix } : {}) };
}

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

function dataDirCheck(dataDir: string): Check {
  if (!existsSync(dataDir)) return check('data directory', 'fail', `${dataDir} does not exist`, `\`dbx start --data-dir ${dataDir}\` creates it (or point --data-dir / $EVENTDBX_DATA_DIR at yours)`);
  if (!statSync(dataDir).isDirectory()) return check('data directory', 'fail', `${dataDir} is not a directory`, 'give --data-dir a directory');
  try {
    accessSync(dataDir, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch {
    return check('data directory', 'fail', `${dataDir} is not readable and writable by this user`, 'run dbx as the user that owns it');
  }
  const m = mode(dataDir);
  if (m & 0o077) return check('data directory', 'warn', `${dataDir} is mode ${m.toString(8).padStart(4, '0')}: other users can look inside`, `chmod 700 ${dataDir} (a start narrows it too)`);
  return check('data directory', 'ok', `${dataDir} (mode 0700)`);
}

function configCheck(dataDir: string): { check: Check; config?: Config } {
  if (!existsSync(join(dataDir, 'config.toml'))) {
    return { check: check('config', 'fail', 'no config.toml', '`dbx start` writes one (with a fresh key pair); `dbx config --port N` writes one without starting') };
  }
  try {
    const { config } = readConfig(dataDir);
    return { check: check('config', 'ok', `${join(dataDir, 'config.toml')} is valid`), config };
  } catch (err) {
    return { check: check('config', 'fail', err instanceof Error ? err.message : String(err), 'fix that key in config.toml (config.example.toml lists every key and its default)') };
  }
}

function keyPairCheck(config: Config): Check {
  if (!config.auth.private_key || !config.auth.public_key) return check('key pair', 'fail', '[auth] has no signing key pair', 'the next `dbx start` generates one');
  try {
    if (!keysMatch(config.auth)) return check('key pair', 'fail', 'auth.public_key does not match auth.private_key', 'restore both from a backup, or `dbx token rotate-keys` for a new pair (every token is revoked)');
  } catch (err) {
    return check('key pair', 'fail', err instanceof Error ? err.message : String(err), 'restore [auth] from a backup, or `dbx token rotate-keys`');
  }
  return check('key pair', 'ok', `Ed25519 key pair ${config.auth.key_id || '(no key id)'} matches`);
}

function tokenCheck(dataDir: string, config: Config): Check {
  const path = join(dataDir, 'cli.token');
  if (!existsSync(path)) return check('cli token', 'fail', `no ${path}`, 'the next `dbx start` (or `dbx restart`) issues it');
  const fix = '`dbx restart` (or the next start) issues a new one';
  try {
    const claims = verifySignature(readFileSync(path, 'utf8').trim(), decodePublicKey(config.auth.public_key));
    checkClaims(claims, config.auth);
    if (!claims.actions.includes('*')) return check('cli token', 'fail', `${path} is not a root token (actions ${claims.actions.join(',')})`, fix);
  } catch (err) {
    return check('cli token', 'fail', `${path}: ${err instanceof Error ? err.message : String(err)}`, fix);
  }
  const m = mode(path);
  if (m & 0o077) return check('cli token', 'warn', `${path} is valid but mode ${m.toString(8).padStart(4, '0')}: other users can read a root token`, `chmod 600 ${path}`);
  return check('cli token', 'ok', `${path} is a valid root token for this key pair`);
}

function dataKeyCheck(dataDir: string, config: Config): Check {
  if (!config.encryption_at_rest) return check('data key', 'warn', 'encryption_at_rest = false: values are stored in plaintext', 'set encryption_at_rest = true before the first start (README: Encryption at rest)');
  try {
    checkKeyRegistry(dataDir, resolveDataKeys(config, dataDir), { record: false });
  } catch (err) {
    return check('data key', 'fail', err instanceof Error ? err.message : String(err), 'configure the key that sealed the data (EVENTDBX_DATA_ENCRYPTION_KEY, data_encryption_key_file or data_encryption_key)');
  }
  if (config.data_encryption_key && !resolveKeyFilePath(config, dataDir) && !process.env.EVENTDBX_DATA_ENCRYPTION_KEY) {
    return check('data key', 'warn', 'the data encryption key is stored in config.toml, inside the data dir: a copy of the dir carries its key', '`dbx config --dek-file <path on another volume>` moves it out');
  }
  return check('data key', 'ok', 'the configured key opens the data');
}

/** Whether the port is free, ours, or someone else's (a bind attempt, released at once). */
async function portCheck(dataDir: string, config: Config): Promise<Check[]> {
  const probe = await probeServer(dataDir, config);
  const checks: Check[] = [];
  if (probe.state === 'running') {
    checks.push(check('server', 'ok', `running (pid ${probe.info.pid}) at ${probe.url}`));
    checks.push(check('port', 'ok', `${probe.info.port} is in use by this data dir's server`));
    return checks;
  }
  if (probe.state === 'unresponsive') {
    checks.push(check('server', 'fail', `pid ${probe.info.pid} owns the data dir but does not answer on port ${probe.info.port}`, 'wait for it to finish starting, or `dbx stop` (see <data_dir>/logs/eventdbx.log)'));
  } else {
    checks.push(
      probe.stale
        ? check('server', 'warn', `not running; server.pid names pid ${probe.stale.pid}, which has exited (an unclean stop)`, '`dbx status` removes the stale pid file; the next start says whether anything was recovered')
        : check('server', 'ok', 'not running (commands open the data dir directly)'),
    );
  }
  const port = config.port;
  if (port === 0) {
    checks.push(check('port', 'ok', '0: each start picks a free port'));
    return checks;
  }
  const outcome = await new Promise<string>((resolve) => {
    const probeServer = createServer();
    probeServer.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    probeServer.listen({ port, host: config.http.host, exclusive: true }, () => probeServer.close(() => resolve('free')));
  });
  if (outcome === 'free') checks.push(check('port', 'ok', `${port} on ${config.http.host} is free`));
  else if (outcome === 'EADDRINUSE') checks.push(check('port', 'fail', `${port} on ${config.http.host} is in use by another process`, `stop that process, or pick another port: \`dbx config --port N\` or \`dbx start --port N\``));
  else if (outcome === 'EACCES') checks.push(check('port', 'fail', `no permission to listen on ${port}`, 'ports below 1024 need privileges: pick another with `dbx config --port N`'));
  else checks.push(check('port', 'fail', `cannot listen on ${config.http.host}:${port} (${outcome})`, 'check [http] host in config.toml'));
  return checks;
}

function diskCheck(dataDir: string): Check {
  const fs = statfsSync(dataDir);
  const free = fs.bavail * fs.bsize;
  const text = `${(free / MIB / 1024).toFixed(1)} GiB free`;
  if (fs.type === TMPFS_MAGIC) return check('disk', 'warn', `${text}, but the data dir is on tmpfs: everything is lost at reboot`, 'move the data dir to a disk');
  if (free < DISK_FAIL_BYTES) return check('disk', 'fail', `only ${Math.floor(free / MIB)} MiB free on the data dir's filesystem`, 'free some space: writes fail when the disk fills');
  if (free < DISK_WARN_BYTES) return check('disk', 'warn', `only ${Math.floor(free / MIB)} MiB free on the data dir's filesystem`, 'free some space before the store grows');
  return check('disk', 'ok', text);
}

function durabilityCheck(config: Config): Check {
  if (config.storage.durability === 'sync') return check('durability', 'ok', 'sync: a write is acknowledged once it is on disk');
  return check(
    'durability',
    'warn',
    `async: a power cut may lose the writes acknowledged in the last ${config.storage.flush_interval_ms} ms (a crash loses nothing)`,
    'keep it if that is acceptable; else set [storage] durability = "sync"',
  );
}

export async function diagnose(dataDir: string): Promise<Check[]> {
  const checks = [dataDirCheck(dataDir)];
  if (checks[0]?.status === 'fail') {
    for (const name of ['config', 'key pair', 'cli token', 'data key', 'server', 'port', 'disk', 'durability']) checks.push(check(name, 'skip', 'no data directory'));
    return checks;
  }
  const { check: configResult, config } = configCheck(dataDir);
  checks.push(configResult);
  if (!config) {
    for (const name of ['key pair', 'cli token', 'data key', 'server', 'port']) checks.push(check(name, 'skip', 'config.toml is missing or invalid'));
  } else {
    const keys = keyPairCheck(config);
    checks.push(keys);
    checks.push(keys.status === 'ok' ? tokenCheck(dataDir, config) : check('cli token', 'skip', 'no valid key pair to check it against'));
    checks.push(dataKeyCheck(dataDir, config), ...(await portCheck(dataDir, config)));
  }
  checks.push(diskCheck(dataDir));
  if (config) checks.push(durabilityCheck(config));
  return checks;
}

const LABELS: Record<CheckStatus, [string, 'green' | 'yellow' | 'red' | 'dim']> = { ok: ['ok', 'green'], warn: ['warn', 'yellow'], fail: ['FAIL', 'red'], skip: ['skip', 'dim'] };

export function doctorCommand(): Command {
  return new Command('doctor')
    .description('Check the data directory, config, keys, token, port, disk and durability, and say what to fix')
    .option('--data-dir <dir>', 'data directory (default $EVENTDBX_DATA_DIR or ~/.eventdbx)')
    .option('--json', 'print the checks as JSON')
    .addHelpText('after', '\nExit code 0 when nothing failed (warnings are advice), 1 otherwise. It changes nothing.\n\nExample:\n  dbx doctor --data-dir ./data\n')
    .action(async (opts: { dataDir?: string; json?: boolean }) => {
      const dataDir = resolveDataDir(opts.dataDir);
      const checks = await diagnose(dataDir);
      const failed = checks.filter((c) => c.status === 'fail').length;
      const warned = checks.filter((c) => c.status === 'warn').length;
      if (opts.json) printJson({ healthy: failed === 0, data_dir: dataDir, checks });
      else {
        const width = Math.max(...checks.map((c) => c.name.length));
        for (const c of checks) {
          const [label, colour] = LABELS[c.status];
          printLine(`${paint(label.padEnd(4), colour)}  ${c.name.padEnd(width)}  ${c.message}`);
          if (c.fix !== undefined) printLine(`${' '.repeat(width + 8)}fix: ${c.fix}`);
        }
        printLine(failed === 0 ? `healthy${warned > 0 ? ` (${warned} warning${warned === 1 ? '' : 's'})` : ''}` : `${failed} problem${failed === 1 ? '' : 's'} to fix`);
      }
      if (failed > 0) process.exitCode = 1;
    });
}
