/** How the CLI reports: errors as one line with the API's code, never a stack trace; exit 1. */
import { CommanderError } from 'commander';
import { ConfigError, DbxError } from '../core/index.js';

export function exitWithError(err: unknown): never {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  if (err instanceof DbxError) {
    process.stderr.write(`error: ${err.code}: ${err.message}\n`);
  } else if (err instanceof ConfigError || (err instanceof Error && err.name !== 'Error')) {
    process.stderr.write(`error: ${err.message}\n`);
  } else if (err instanceof Error) {
    process.stderr.write(`error: ${err.message}\n`);
  } else {
    process.stderr.write(`error: ${String(err)}\n`);
  }
  process.exit(1);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
