#!/usr/bin/env node
/**
 * The `dbx` binary: one commander program, one file per command group. Start-up cost is paid per
 * command, so this file imports nothing heavy: `--version` answers before the program (commander,
 * zod, the client) is even loaded, and every command loads only what it runs (the server, fastify,
 * piscina and the plugin kinds only when a command starts an engine; see program.ts).
 */
import { cliVersion } from './version.js';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  process.stdout.write(`${cliVersion()}\n`);
} else {
  const [{ buildProgram }, { exitWithError }] = await Promise.all([import('./program.js'), import('./output.js')]);
  // Not awaited: `start --foreground` never settles, and an unsettled top-level await would make
  // Node exit with code 13 once the server's handles close.
  void buildProgram()
    .parseAsync(process.argv)
    // Exit as soon as the command is done (once stdout has drained) instead of waiting ~100 ms for
    // closed sockets and worker teardown; `start --foreground` never resolves, its server keeps running.
    .then(() => process.stdout.write('', () => process.exit(process.exitCode ?? 0)))
    .catch((err: unknown) => exitWithError(err));
}
