/** The CLI's version, read from the package's own package.json (dist/src/cli → the package root). */
import { readFileSync } from 'node:fs';

let cached: string | undefined;

export function cliVersion(): string {
  cached ??= (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return cached;
}
