/** Where the client connects and what it trusts: options, else the environment, else defaults. */
import { readFileSync } from 'node:fs';
import { InvalidInputError } from './errors.js';
import type { ClientOptions } from './types.js';

export const DEFAULT_RETRY = { attempts: 3, initialDelayMs: 100, maxDelayMs: 1_000 };
export const DEFAULT_TIMEOUT_MS = 30_000;

export function resolveUrl(options: ClientOptions): URL {
  const env = process.env;
  let text = options.url;
  if (text === undefined && (options.ip !== undefined || options.port !== undefined)) {
    text = `http://${options.ip ?? '127.0.0.1'}:${options.port ?? 7070}`;
  }
  text ??= env.EVENTDBX_URL || `http://${env.EVENTDBX_HOST || '127.0.0.1'}:${env.EVENTDBX_PORT || '7070'}`;
  try {
    const url = new URL(text);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('protocol');
    return url;
  } catch {
    throw new InvalidInputError('invalid_input', `invalid server URL '${text}' (expected http://host:port)`);
  }
}

/** The CA to trust for https://: `ca`, else the file `caFile` or $EVENTDBX_CA_FILE names, else the system roots. */
export function resolveCa(options: ClientOptions): ClientOptions['ca'] {
  if (options.ca !== undefined) return options.ca;
  const file = options.caFile ?? (process.env.EVENTDBX_CA_FILE || undefined);
  if (file === undefined) return undefined;
  try {
    return readFileSync(file);
  } catch (err) {
    throw new InvalidInputError('invalid_input', `cannot read the CA file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
}

/** A deadline is a non-negative number of milliseconds (0 = none). */
export function checkTimeout(ms: number | undefined, name: string): void {
  if (ms !== undefined && !(Number.isFinite(ms) && ms >= 0)) throw new InvalidInputError('invalid_input', `${name} must be a number of milliseconds ≥ 0 (0 = no deadline)`);
}
