/** Runs `dbx` for argv once main.ts has ruled out `--version`: the program for the command, then its action. */
import { loadProgram } from './command-groups.js';
import { exitWithError } from './output.js';

export async function launch(argv: string[]): Promise<void> {
  let program: Awaited<ReturnType<typeof loadProgram>>;
  try {
    program = await loadProgram(argv.slice(2));
  } catch (err) {
    exitWithError(err);
  }
  // Not awaited by main.ts: `start --foreground` never settles, and an unsettled top-level await
  // would make Node exit with code 13 once the server's handles close.
  program
    .parseAsync(argv)
    // Exit as soon as the command is done (once stdout has drained) instead of waiting ~100 ms for
    // closed sockets and worker teardown; `start --foreground` never resolves, its server keeps running.
    .then(() => process.stdout.write('', () => process.exit(process.exitCode ?? 0)))
    .catch((err: unknown) => exitWithError(err));
}
