/**
 * Which data encryption keys a data dir's values may be sealed with: `<data_dir>/data_keys.json`
 * lists their ids (never the keys) with a check value sealed by each. A start whose configured keys
 * miss one of them, or whose key of the same id cannot open its check value, is refused with one
 * line before anything is read or written: a wrong DEK must not start a server that then fails
 * every read (or, worse, seals new values under a key nobody keeps).
 *
 * Deleting the file disables the check (ids are re-recorded from the keys configured at the next
 * start); values under a missing key then fail at read time with `integrity_failed`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError, type Config } from './config.js';
import { writeFileDurably } from './durable-file.js';
import { createValueCipher, dataKeyId, generateDataKey, resolveDataKeys, resolveKeyFilePath, type DataKeys } from './encryption.js';

export const KEY_REGISTRY_FILE = 'data_keys.json';
const CHECK_PLAINTEXT = 'eventdbx data key check v1';

const registrySchema = z.strictObject({
  format: z.literal(1),
  keys: z
    .array(z.strictObject({ id: z.string().regex(/^[0-9a-f]{16}$/), check: z.string().min(1), added_at: z.string() }))
    .max(1024),
});
export type KeyRegistry = z.output<typeof registrySchema>;

export function keyRegistryPath(dataDir: string): string {
  return join(dataDir, KEY_REGISTRY_FILE);
}

export function readKeyRegistry(dataDir: string): KeyRegistry | undefined {
  const path = keyRegistryPath(dataDir);
  if (!existsSync(path)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    throw new ConfigError(`${path} is not valid JSON; restore it from a backup (it lists the ids of the data encryption keys)`);
  }
  const parsed = registrySchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(`${path} is not a data key list; restore it from a backup`);
  return parsed.data;
}

/** The ids a data dir needs, newest first (empty when nothing was ever sealed there). */
export function recordedKeyIds(dataDir: string): string[] {
  return (readKeyRegistry(dataDir)?.keys ?? []).map((k) => k.id);
}

/**
 * First start with no key anywhere: generates a DEK into `config` (the caller saves config.toml,
 * mode 0600) and returns true. Never generates while the data dir records keys: that would hide a
 * missing key behind a fresh one (checkKeyRegistry refuses instead), nor when a key file is
 * configured (the operator keeps that file).
 */
export function ensureDataKey(config: Config, dataDir: string): boolean {
  if (!config.encryption_at_rest || resolveKeyFilePath(config, dataDir)) return false;
  if (resolveDataKeys(config, dataDir) !== null) return false;
  if (recordedKeyIds(dataDir).length > 0) return false;
  config.data_encryption_key = generateDataKey();
  return true;
}

/**
 * Refuses (ConfigError, one line) when the configured keys cannot open what the data dir needs;
 * records keys configured for the first time (a new data dir, or a rotation) unless `record` is
 * false (the CLI checks, only the starting server records).
 */
export function checkKeyRegistry(dataDir: string, keys: DataKeys | null, options: { record: boolean } = { record: true }): void {
  const registry = readKeyRegistry(dataDir) ?? { format: 1 as const, keys: [] };
  const configured = new Map((keys?.keys ?? []).map((key) => [dataKeyId(key), key]));
  if (!keys && registry.keys.length > 0) {
    throw new ConfigError(
      `this data dir holds values sealed with data encryption key ${registry.keys[0]?.id ?? ''}, but no key is configured (encryption_at_rest = false, or none of EVENTDBX_DATA_ENCRYPTION_KEY, data_encryption_key, data_encryption_key_file is set)`,
    );
  }
  for (const entry of registry.keys) {
    const key = configured.get(entry.id);
    if (!key) {
      const source = keys?.source === 'env' ? 'EVENTDBX_DATA_ENCRYPTION_KEY' : keys?.source === 'file' ? 'the data_encryption_key_file' : 'data_encryption_key';
      throw new ConfigError(
        `wrong data encryption key: this data dir holds values sealed with key ${entry.id}, which ${source} does not provide (configured: ${[...configured.keys()].join(', ')}); set the key that wrote them, or keep it in data_encryption_keys_retired`,
      );
    }
    let opened = '';
    try {
      opened = createValueCipher([key]).open(Buffer.from(entry.check, 'base64')).toString('utf8');
    } catch {
      // falls through to the refusal below
    }
    if (opened !== CHECK_PLAINTEXT) throw new ConfigError(`wrong data encryption key: key ${entry.id} does not open its check value in ${keyRegistryPath(dataDir)}`);
  }
  const known = new Set(registry.keys.map((k) => k.id));
  const added = [...configured].filter(([id]) => !known.has(id));
  if (added.length === 0 || !options.record) return;
  const now = new Date().toISOString();
  const fresh = added.map(([id, key]) => ({ id, check: createValueCipher([key]).seal(CHECK_PLAINTEXT).toString('base64'), added_at: now }));
  // Newest first, as the keys are configured: the active key leads.
  const next: KeyRegistry = { format: 1, keys: [...fresh, ...registry.keys] };
  writeFileDurably(keyRegistryPath(dataDir), `${JSON.stringify(next, null, 2)}\n`, 0o600);
}
