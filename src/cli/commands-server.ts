/** `dbx start` (foreground server). */
import { Command, Option } from 'commander';
import { startServer } from '../coordinator/index.js';
import { parsePort, resolveDataDir } from './options.js';

export function startCommand(): Command {
  return new Command('start')
    .description('Start the EventDBX server')
    .option('--port <port>', 'HTTP port (saved to config.toml)', parsePort)
    .option('--data-dir <dir>', 'data directory (default $EVENTDBX_DATA_DIR or ~/.eventdbx)')
    .option('--foreground', 'run in this process instead of as a daemon')
    .addOption(new Option('--restrict [mode]', 'schema restriction mode').choices(['off', 'default', 'strict']).preset('default'))
    .addHelpText('after', '\nExample:\n  dbx start --foreground --port 7070 --data-dir ./data\n')
    .action(async (opts: { port?: number; dataDir?: string; foreground?: boolean; restrict?: 'off' | 'default' | 'strict' }) => {
      const dataDir = resolveDataDir(opts.dataDir);
      if (!opts.foreground) throw new Error('daemon mode is not available yet; run with --foreground');
      await runForeground(dataDir, opts);
    });
}

export async function runForeground(dataDir: string, opts: { port?: number; restrict?: 'off' | 'default' | 'strict' }): Promise<void> {
  const server = await startServer({
    dataDir,
    ...(opts.port !== undefined ? { port: opts.port } : {}),
    restrict: opts.restrict ?? 'default',
    logLevel: process.env.EVENTDBX_LOG_LEVEL ?? 'info',
  });
  server.app.log.info({ port: server.port, dataDir, pid: process.pid, restrict: server.config.restrict }, 'EventDBX server listening');
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    server.app.log.info({ signal }, 'draining and stopping');
    server.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        server.app.log.error({ err }, 'unclean stop');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
