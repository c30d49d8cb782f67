/**
 * `dbx config --dek <base64> | --rotate-dek | --dek-file <path>`: the data encryption keys.
 * Keys are never printed (only their ids); every change leaves the keys a data dir's values need
 * configured, or is refused before anything is written:
 * - `--dek` sets the key, refused when it would drop a key this data dir may hold values under;
 * - `--rotate-dek` (optionally with `--dek`) makes a new key active for new writes and keeps the
 *   others for reading (config.toml's `data_encryption_keys_retired`, or the key file's later lines);
 * - `--dek-file` moves the keys into a file outside the data dir (README "Encryption at rest").
 */
import { existsSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import {
  DEK_ENV,
  dataKeyId,
  decodeDataKey,
  generateDataKey,
  readKeyFile,
  recordedKeyIds,
  resolveDataKeys,
  resolveKeyFilePath,
  writeConfig,
  writeFileDurably,
  type Config,
} from '../core/index.js';
import { CliError, UsageError, printLine } from './output.js';

export interface KeyChange {
  dek?: string;
  rotate: boolean;
  dekFile?: string;
}

export function wantsKeyChange(change: KeyChange): boolean {
  return change.dek !== undefined || change.rotate || change.dekFile !== undefined;
}

function keyFileText(keys: Buffer[]): string {
  return `# EventDBX data encryption keys: first line seals new values, every line opens old ones.\n${keys.map((k) => k.toString('base64')).join('\n')}\n`;
}

/** Applies one key change to config.toml (and the key file); prints what it did, never a key. */
export function changeKeys(dataDir: string, config: Config, change: KeyChange): void {
  if (process.env[DEK_ENV]) {
    throw new CliError(`${DEK_ENV} is set and overrides the stored key: change the key there (and keep the old one in data_encryption_keys_retired)`);
  }
  if (!config.encryption_at_rest) throw new CliError('encryption_at_rest = false in config.toml: turn it on before setting a key');
  if (change.dekFile !== undefined) {
    if (change.dek !== undefined || change.rotate) throw new UsageError('--dek-file cannot be combined with --dek or --rotate-dek');
    return moveToKeyFile(dataDir, config, change.dekFile);
  }
  const current = resolveDataKeys(config, dataDir)?.keys ?? [];
  const fresh = change.dek !== undefined ? decodeDataKey(change.dek, '--dek') : Buffer.from(generateDataKey(), 'base64');
  const freshId = dataKeyId(fresh);
  const currentIds = current.map(dataKeyId);
  if (change.rotate) {
    if (currentIds.includes(freshId)) throw new CliError(`key ${freshId} is already configured; --rotate-dek needs a new key`);
  } else {
    if (currentIds[0] === freshId) return printLine(`data encryption key ${freshId} is already the active key; nothing changed`);
    const needed = [...new Set([...recordedKeyIds(dataDir), ...currentIds.slice(0, 1)])].filter((id) => id !== freshId && !currentIds.slice(1).includes(id));
    if (needed.length > 0) {
      throw new CliError(
        `--dek would drop key ${needed.join(', ')}, which this data dir may hold values under; add --rotate-dek to make the new key active and keep the old one for reading`,
      );
    }
  }
  const keyFile = resolveKeyFilePath(config, dataDir);
  if (keyFile) {
    const stored = readKeyFile(keyFile);
    writeFileDurably(keyFile, keyFileText(change.rotate ? [fresh, ...stored] : [fresh, ...stored.slice(1)]), 0o600);
  } else {
    const old = config.data_encryption_key;
    config.data_encryption_key = fresh.toString('base64');
    if (change.rotate && old) config.data_encryption_keys_retired = [old, ...config.data_encryption_keys_retired];
  }
  config.updated_at = new Date().toISOString();
  writeConfig(dataDir, config);
  const kept = change.rotate ? currentIds : currentIds.slice(1);
  printLine(`data encryption key ${freshId} seals new values${kept.length ? `; ${kept.join(', ')} stay configured to read older ones` : ''} (saved to ${keyFile ?? 'config.toml'})`);
}

function moveToKeyFile(dataDir: string, config: Config, target: string): void {
  const path = resolve(target);
  const keys = resolveDataKeys(config, dataDir)?.keys ?? [Buffer.from(generateDataKey(), 'base64')];
  if (resolveKeyFilePath(config, dataDir) === path) return printLine(`the keys are already in ${path}; nothing changed`);
  if (existsSync(path)) {
    const there = readKeyFile(path);
    if (there.length !== keys.length || there.some((k, i) => !k.equals(keys[i] as Buffer))) {
      throw new CliError(`${path} already exists and holds other keys; choose a new path (it is never overwritten)`);
    }
  } else {
    writeFileDurably(path, keyFileText(keys), 0o600);
  }
  config.data_encryption_key_file = path;
  config.data_encryption_key = '';
  config.data_encryption_keys_retired = [];
  config.updated_at = new Date().toISOString();
  writeConfig(dataDir, config);
  const inside = !relative(resolve(dataDir), path).startsWith('..') && !isAbsolute(relative(resolve(dataDir), path));
  printLine(`data encryption key(s) ${keys.map(dataKeyId).join(', ')} moved to ${path}; config.toml no longer holds them`);
  if (inside) printLine('warning: that file is inside the data dir, so a copy of the data dir still carries the key');
}
