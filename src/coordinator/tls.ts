/**
 * HTTPS from `[http] tls_cert_file` / `tls_key_file` (PEM; relative paths are relative to the data
 * directory, where config.toml lives). Read once at start: a missing, unreadable or mismatched pair
 * refuses the start with one line instead of failing on the first connection.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { ConfigError, type Config } from '../core/index.js';

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

function readPem(dataDir: string, key: string, file: string): Buffer {
  const path = resolve(dataDir, file);
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(`cannot read [http] ${key} ${path}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
}

/** The certificate and key to serve, or undefined when TLS is off. */
export function readTlsFiles(http: Config['http'], dataDir: string): TlsFiles | undefined {
  if (http.tls_cert_file === undefined || http.tls_key_file === undefined) return undefined;
  const files = { cert: readPem(dataDir, 'tls_cert_file', http.tls_cert_file), key: readPem(dataDir, 'tls_key_file', http.tls_key_file) };
  try {
    // Parses both and checks that the key belongs to the certificate.
    createSecureContext(files);
  } catch (err) {
    const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new ConfigError(`[http] tls_cert_file and tls_key_file are not a PEM certificate and its private key (${reason})`);
  }
  return files;
}
