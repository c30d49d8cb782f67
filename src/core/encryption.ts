/**
 * Encryption at rest: AES-256-GCM (node:crypto) over single stored values, with a named key so a
 * rotated-out key keeps old values readable.
 *
 * Sealed value format (binary, version 1), 39 bytes of overhead:
 *
 *   offset  bytes  field
 *   0       2      magic 0xEE 0xDB (no JSON text starts with it; a one-byte msgpack value could,
 *                  but the minimum length rules that out)
 *   2       1      format version, 0x01
 *   3       8      key id = first 8 bytes of SHA-256("eventdbx-dek-id-v1\0" ‖ key): names the key,
 *                  never reveals it
 *   11      12     nonce, fresh random per value (CSPRNG)
 *   23      n      ciphertext
 *   23+n    16     GCM tag
 *
 * No AAD: an altered header can only name another key (or none), whose tag check then fails, and
 * setAAD is one more native call per value (~1.5 µs measured here).
 *
 * The original (EventDBX 3.14.2) wrote "ENCv1:" + base64(nonce ‖ ct ‖ tag); this one adds the key
 * id and stays binary (no base64 round trip on the write path). Cost: one createCipheriv per value,
 * a few µs for values under a few KiB.
 *
 * Random 96-bit nonces: NIST SP 800-38D bounds one key to 2^32 values; `dbx config --rotate-dek`
 * starts a new key for new writes long before that matters.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, createSecretKey, hkdfSync, randomBytes, randomFillSync, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { ConfigError, type Config } from './config.js';
import { DbxError } from './errors.js';

export const DEK_ENV = 'EVENTDBX_DATA_ENCRYPTION_KEY';
export const DEK_BYTES = 32;
const MAGIC_0 = 0xee;
const MAGIC_1 = 0xdb;
const FORMAT_V1 = 0x01;
const KEY_ID_BYTES = 8;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 3 + KEY_ID_BYTES;
export const SEALED_OVERHEAD_BYTES = HEADER_BYTES + NONCE_BYTES + TAG_BYTES;
const KEY_ID_LABEL = Buffer.from('eventdbx-dek-id-v1\0', 'utf8');
/** HKDF info of the key that tags lookup keys (lookupTags): never the DEK itself. */
const TAG_KEY_INFO = 'eventdbx-lookup-tag-v1';
/** 32 base64url characters = 192 bits of HMAC-SHA256. */
const TAG_CHARS = 32;
/** Starts every tag: U+0000 then a format marker (a key as given that starts so is vanishingly unlikely to equal a tag). */
const TAG_PREFIX = '\u0000t1';
/** Nonces are taken from a pool: one CSPRNG call per 340 values instead of one per value. */
const NONCE_POOL_BYTES = NONCE_BYTES * 340;

export interface ValueCipher {
  /** Encrypts with the newest key; output names the key id. */
  seal(plain: Uint8Array | string): Buffer;
  /** Decrypts anything sealed by any configured key; throws DbxError('integrity_failed') on a bad tag or unknown key id. */
  open(sealed: Uint8Array): Buffer;
  /** true when the bytes are a sealed value (lets plaintext legacy values stay readable). */
  isSealed(bytes: Uint8Array): boolean;
  /** Hex key id of the key new values are sealed with. */
  readonly activeKeyId: string;
  /** Hex ids of every configured key (active first). */
  readonly keyIds: readonly string[];
  /**
   * Stored forms of a lookup key that must not reach the disk as given (an idempotency key): a
   * keyed tag (HMAC-SHA256 under a key derived from each DEK with HKDF), one per configured key,
   * the active key's first. Deterministic, so an entry is found again; per key, so an entry
   * written before a rotation is still found after it.
   */
  lookupTags(text: string): string[];
}

/** Hex id of a key: names it in sealed values and in the data dir's key list, never reveals it. */
export function dataKeyId(key: Uint8Array): string {
  return createHash('sha256').update(KEY_ID_LABEL).update(key).digest().subarray(0, KEY_ID_BYTES).toString('hex');
}

/** A fresh random DEK, base64 (standard, padded) as config.toml holds it. */
export function generateDataKey(): string {
  return randomBytes(DEK_BYTES).toString('base64');
}

/** Decodes a base64 DEK; `origin` names where it came from in the one-line refusal. */
export function decodeDataKey(text: string, origin: string): Buffer {
  const trimmed = text.trim();
  const bytes = Buffer.from(trimmed, 'base64');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed) || bytes.length !== DEK_BYTES || bytes.toString('base64') !== trimmed) {
    throw new ConfigError(`${origin}: data encryption key must be base64 of ${DEK_BYTES} bytes (256 bits)`);
  }
  return bytes;
}

export function isSealedValue(bytes: Uint8Array): boolean {
  return bytes.length >= SEALED_OVERHEAD_BYTES && bytes[0] === MAGIC_0 && bytes[1] === MAGIC_1 && bytes[2] === FORMAT_V1;
}

/** The hex key id a sealed value names (for diagnostics and rotation tests). */
export function sealedKeyId(bytes: Uint8Array): string {
  if (!isSealedValue(bytes)) throw new DbxError('integrity_failed', 'a stored value is not a sealed value');
  return Buffer.from(bytes.buffer, bytes.byteOffset + 3, KEY_ID_BYTES).toString('hex');
}

class AesGcmCipher implements ValueCipher {
  readonly activeKeyId: string;
  readonly keyIds: readonly string[];
  private readonly activeKey: KeyObject;
  private readonly header: Buffer;
  private readonly keys = new Map<string, KeyObject>();
  /** Per key id (active first): the HMAC key of lookupTags. */
  private readonly tagKeys: { id: string; key: KeyObject }[] = [];
  private noncePool = Buffer.alloc(0);
  private nonceAt = 0;

  /** `keys[0]` seals; every key opens. */
  constructor(keys: readonly Buffer[]) {
    const first = keys[0];
    if (!first) throw new Error('a cipher needs at least one key');
    for (const key of keys) {
      const id = dataKeyId(key);
      if (this.keys.has(id)) continue;
      this.keys.set(id, createSecretKey(key));
      this.tagKeys.push({ id, key: createSecretKey(Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), TAG_KEY_INFO, 32))) });
    }
    this.activeKeyId = dataKeyId(first);
    this.activeKey = this.keys.get(this.activeKeyId)!;
    this.keyIds = [...this.keys.keys()];
    this.header = Buffer.concat([Buffer.from([MAGIC_0, MAGIC_1, FORMAT_V1]), Buffer.from(this.activeKeyId, 'hex')]);
  }

  seal(plain: Uint8Array | string): Buffer {
    const input = typeof plain === 'string' ? Buffer.from(plain, 'utf8') : plain;
    const out = Buffer.allocUnsafe(SEALED_OVERHEAD_BYTES + input.length);
    this.header.copy(out, 0);
    this.takeNonce(out, HEADER_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.activeKey, out.subarray(HEADER_BYTES, HEADER_BYTES + NONCE_BYTES), { authTagLength: TAG_BYTES });
    let at = HEADER_BYTES + NONCE_BYTES;
    at += cipher.update(input).copy(out, at);
    at += cipher.final().copy(out, at);
    cipher.getAuthTag().copy(out, at);
    return out;
  }

  open(sealed: Uint8Array): Buffer {
    if (!isSealedValue(sealed)) throw new DbxError('integrity_failed', 'a stored value is not a sealed value');
    const bytes = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    const id = bytes.toString('hex', 3, HEADER_BYTES);
    const key = this.keys.get(id);
    if (!key) throw new DbxError('integrity_failed', `a stored value is sealed with data encryption key ${id}, which is not configured`);
    const tagAt = bytes.length - TAG_BYTES;
    const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(HEADER_BYTES, HEADER_BYTES + NONCE_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAuthTag(bytes.subarray(tagAt));
    const body = decipher.update(bytes.subarray(HEADER_BYTES + NONCE_BYTES, tagAt));
    try {
      const tail = decipher.final();
      return tail.length === 0 ? body : Buffer.concat([body, tail]);
    } catch {
      throw new DbxError('integrity_failed', `a stored value failed its encryption check (key ${id}): wrong key or altered bytes`);
    }
  }

  isSealed(bytes: Uint8Array): boolean {
    return isSealedValue(bytes);
  }

  lookupTags(text: string): string[] {
    return this.tagKeys.map(({ id, key }) => `${TAG_PREFIX}${id}${createHmac('sha256', key).update(text, 'utf8').digest('base64url').slice(0, TAG_CHARS)}`);
  }

  private takeNonce(out: Buffer, at: number): void {
    if (this.nonceAt + NONCE_BYTES > this.noncePool.length) {
      this.noncePool = randomFillSync(Buffer.allocUnsafe(NONCE_POOL_BYTES));
      this.nonceAt = 0;
    }
    // Each 12 bytes of the pool are handed out once: the pointer only moves forward.
    this.noncePool.copy(out, at, this.nonceAt, this.nonceAt + NONCE_BYTES);
    this.nonceAt += NONCE_BYTES;
  }
}

/** A cipher over explicit keys (newest first); for tests and tooling. */
export function createValueCipher(keys: readonly Buffer[]): ValueCipher {
  return new AesGcmCipher(keys);
}

export type DataKeySource = 'env' | 'file' | 'config';

export interface DataKeys {
  /** Newest first: [0] seals new values, all open. */
  keys: Buffer[];
  source: DataKeySource;
}

/** Resolves a path in config.toml: relative paths are relative to the data dir that holds it. */
export function resolveKeyFilePath(config: Config, dataDir: string): string | undefined {
  const file = config.data_encryption_key_file;
  if (!file) return undefined;
  return isAbsolute(file) ? file : resolve(dataDir, file);
}

/**
 * The DEKs this process should use (newest first), or null when encryption is off or no key is
 * configured. Stored keys: the lines of `data_encryption_key_file` (first = active), else
 * `data_encryption_key`; then `data_encryption_keys_retired` (read only). The env var
 * EVENTDBX_DATA_ENCRYPTION_KEY replaces the active stored key (it is not added beside it: a wrong
 * env key must fail the start, not become a silent rotation). Inline key and key file together
 * are refused.
 */
export function resolveDataKeys(config: Config, dataDir: string, env: NodeJS.ProcessEnv = process.env): DataKeys | null {
  if (!config.encryption_at_rest) return null;
  const keyFile = resolveKeyFilePath(config, dataDir);
  if (keyFile && config.data_encryption_key) {
    throw new ConfigError('config.toml sets both data_encryption_key and data_encryption_key_file: keep one');
  }
  const stored = keyFile ? readKeyFile(keyFile) : config.data_encryption_key ? [decodeDataKey(config.data_encryption_key, 'data_encryption_key')] : [];
  const retired = config.data_encryption_keys_retired.map((k, i) => decodeDataKey(k, `data_encryption_keys_retired[${i}]`));
  const fromEnv = env[DEK_ENV];
  if (fromEnv !== undefined && fromEnv.trim() !== '') {
    return { keys: [decodeDataKey(fromEnv, DEK_ENV), ...stored.slice(1), ...retired], source: 'env' };
  }
  if (stored.length === 0) {
    if (retired.length > 0) throw new ConfigError('config.toml lists data_encryption_keys_retired but no data_encryption_key');
    return null;
  }
  return { keys: [...stored, ...retired], source: keyFile ? 'file' : 'config' };
}

/** Reads a key file: one base64 key a line, first = active; blank lines and # comments skipped. */
export function readKeyFile(path: string): Buffer[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError(`data_encryption_key_file ${path}: cannot read it (${code})`);
  }
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  if (lines.length === 0) throw new ConfigError(`data_encryption_key_file ${path}: holds no key`);
  return lines.map((line, i) => decodeDataKey(line, `data_encryption_key_file ${path} line ${i + 1}`));
}

/**
 * The cipher for this data dir's stored values, or null when no DEK is configured (encryption
 * off). Pure: reads config and the key file, writes nothing, so each worker thread builds its own.
 */
export function loadDataCipher(config: Config, dataDir: string): ValueCipher | null {
  const resolved = resolveDataKeys(config, dataDir);
  return resolved ? new AesGcmCipher(resolved.keys) : null;
}

/** Opens a sealed value, or returns plaintext legacy bytes unchanged. */
export function openIfSealed(cipher: ValueCipher | null, bytes: Uint8Array): Uint8Array {
  if (!isSealedValue(bytes)) return bytes;
  if (!cipher) throw new DbxError('integrity_failed', 'a stored value is encrypted but no data encryption key is configured');
  return cipher.open(bytes);
}
