#!/usr/bin/env node
/** The `dbx` binary: one commander program, one file per command group. */
import { buildProgram } from './program.js';
import { exitWithError } from './output.js';

buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => exitWithError(err));
