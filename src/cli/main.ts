#!/usr/bin/env node
/** The `dbx` binary: one commander program, one file per command group. */
import { buildProgram } from './program.js';
import { exitWithError } from './output.js';

buildProgram()
  .parseAsync(process.argv)
  // Exit as soon as the command is done (once stdout has drained) instead of waiting ~100 ms for
  // closed sockets and worker teardown; `start --foreground` never resolves, its server keeps running.
  .then(() => process.stdout.write('', () => process.exit(process.exitCode ?? 0)))
  .catch((err: unknown) => exitWithError(err));
