/** Options and parsers shared by several commands. */
import { InvalidArgumentError } from 'commander';
import { resolve } from 'node:path';
import { defaultDataDir } from '../core/index.js';

export function resolveDataDir(flag: string | undefined): string {
  return flag ? resolve(flag) : defaultDataDir();
}

export function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) throw new InvalidArgumentError('port must be an integer from 0 to 65535');
  return port;
}

export function parsePositiveInt(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('must be a non-negative integer');
  return Number(value);
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
