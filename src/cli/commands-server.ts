/** Server lifecycle: `dbx start`, `stop`, `status`, `restart`, `destroy` (reference §14.6). */
import { existsSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { parseRestrictMode, type RestrictMode } from '../core/schema/index.js';
import { configPath, readConfig, type Config } from '../core/index.js';
import { createClient, type ServerStatus } from '../client/index.js';
import { dataDirLooksOurs, describeStop, logFile, startDaemon, stopServer, type StartFlags } from './daemon.js';
import { parsePort, resolveDataDir, type ConnectionFlags } from './options.js';
import { CliError, UsageError, formatUptime, keyValues, printJson, printLine } from './output.js';
import { clientTrust, isLoopbackHost, probeServer, removeStalePidFile, resolveToken } from './session.js';

type StartOpts = StartFlags & { dataDir?: string; foreground?: boolean };

function startOptions(command: Command): Command {
  return command
    .option('--port <port>', 'HTTP port (saved to config.toml)', parsePort)
    .option('--data-dir <dir>', 'data directory (default $EVENTDBX_DATA_DIR or ~/.eventdbx)')
    .option('--foreground', 'run in this process instead of as a daemon')
    .addOption(
      new Option('--restrict [mode]', 'schema restriction mode: off | default | strict, or an alias (true, false, prod, dev, …) (saved to config.toml)')
        .argParser(restrictArg)
        .preset('default'),
    );
}

/** The original's aliases (reference §6.3): `--restrict=prod` → default, `--restrict=dev` → off. */
function restrictArg(text: string): RestrictMode {
  try {
    return parseRestrictMode(text);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** Beyond loopback without TLS, tokens and data cross the network readable by anyone on the path. */
export function exposureWarning(config: Config): string | undefined {
  const { host, tls_cert_file: cert } = config.http;
  if (isLoopbackHost(host) || cert !== undefined) return undefined;
  return (
    `warning: listening on ${host}, beyond loopback, without TLS: tokens and data cross the network unencrypted. ` +
    'Set [http] tls_cert_file and tls_key_file, or host = "127.0.0.1" (README: "Listening beyond loopback")\n'
  );
}

async function start(opts: StartOpts): Promise<void> {
  const dataDir = resolveDataDir(opts.dataDir);
  if (opts.foreground) return runForeground(dataDir, opts);
  const info = await startDaemon(dataDir, opts);
  printLine(`EventDBX server is running on port ${info.port} (pid ${info.pid}) since ${info.started_at} (restrict=${info.restrict})`);
  printLine(`log: ${logFile(dataDir)}`);
  const warning = exposureWarning(readConfig(dataDir).config);
  if (warning) process.stderr.write(warning);
}

export function startCommand(): Command {
  return startOptions(new Command('start').description('Start the EventDBX server'))
    .addHelpText(
      'after',
      '\nWithout --foreground the server runs as a daemon; its output goes to <data_dir>/logs/eventdbx.log.\n\nExamples:\n  dbx start --port 7070\n  dbx start --foreground --port 7070 --data-dir ./data\n',
    )
    .action(start);
}

export async function runForeground(dataDir: string, opts: StartFlags): Promise<void> {
  const { startServer } = await import('../coordinator/index.js');
  const server = await startServer({
    dataDir,
    ...(opts.port !== undefined ? { port: opts.port } : {}),
    // Only a given --restrict overrides (and is saved to) config.toml.
    ...(opts.restrict !== undefined ? { restrict: opts.restrict } : {}),
    logLevel: process.env.EVENTDBX_LOG_LEVEL ?? 'info',
  });
  server.app.log.info({ port: server.port, dataDir, pid: process.pid, restrict: server.config.restrict }, 'EventDBX server listening');
  const warning = exposureWarning(server.config);
  if (warning) process.stderr.write(warning);
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
  // Never settles: the process lives until a signal stops the server (main.ts exits when a command resolves).
  await new Promise<never>(() => {});
}

export function stopCommand(): Command {
  return new Command('stop')
    .description('Stop the EventDBX server')
    .option('--data-dir <dir>', 'data directory')
    .option('--timeout <secs>', 'seconds to wait for the drain before SIGKILL', (v) => Number(v), 10)
    .addHelpText('after', '\nSends SIGTERM (in-flight writes drain), then SIGKILL after --timeout.\n\nExample:\n  dbx stop\n')
    .action(async (opts: { dataDir?: string; timeout: number }) => {
      if (!Number.isFinite(opts.timeout) || opts.timeout < 0) throw new UsageError('--timeout must be a number of seconds');
      printLine(describeStop(await stopServer(resolveDataDir(opts.dataDir), opts.timeout * 1000)));
    });
}

export function restartCommand(): Command {
  return startOptions(new Command('restart').description('Restart the EventDBX server'))
    .addHelpText('after', '\nStops the server (if running), then starts it with the given start options.\n\nExample:\n  dbx restart --port 7071\n')
    .action(async (opts: StartOpts) => {
      try {
        printLine(describeStop(await stopServer(resolveDataDir(opts.dataDir))));
      } catch (err) {
        process.stderr.write(`warning: ${err instanceof Error ? err.message : String(err)}\n`);
      }
      await start(opts);
    });
}

export function statusCommand(): Command {
  return new Command('status')
    .description('Display EventDBX server status')
    .option('--data-dir <dir>', 'data directory')
    .option('--token <jwt>', 'token (default $EVENTDBX_TOKEN, else <data_dir>/cli.token)')
    .option('--ca-file <path>', 'PEM CA certificate(s) to trust when the server serves https (default $EVENTDBX_CA_FILE)')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  dbx status --json\n')
    .action(async (opts: ConnectionFlags & { json?: boolean }) => {
      const dataDir = resolveDataDir(opts.dataDir);
      const { config } = readConfig(dataDir);
      const probe = await probeServer(dataDir, config);
      if (probe.state === 'stopped') {
        if (probe.stale) removeStalePidFile(dataDir, probe.stale);
        if (opts.json) return printJson({ running: false, data_dir: dataDir });
        printLine(`EventDBX server is not running.${probe.stale ? ' (removed stale pid file)' : ''}`);
        return printLine(`Active domain: ${config.domain}`);
      }
      if (probe.state === 'unresponsive') {
        if (opts.json) return printJson({ running: true, responding: false, pid: probe.info.pid, port: probe.info.port, data_dir: dataDir });
        return printLine(`EventDBX server (pid ${probe.info.pid}) is not answering on port ${probe.info.port} (starting, or stuck).`);
      }
      const client = createClient({ url: probe.url, token: resolveToken(opts, dataDir), ...clientTrust(opts, dataDir, config, true) });
      let status: ServerStatus;
      try {
        status = await client.status();
      } finally {
        await client.close();
      }
      if (opts.json) return printJson({ running: true, responding: true, ...status });
      printLine(
        `EventDBX server is running on port ${status.port} (pid ${status.pid}) — restrict=${status.restrict} — domain=${config.domain} — up for ${formatUptime(status.uptime_secs)} (since ${status.started_at})`,
      );
      printLine(keyValues({ shards: status.shards, workers: status.workers, durability: status.durability, aggregates: status.aggregates, data_dir: status.data_dir }));
      for (const p of status.plugins ?? []) printLine(`plugins: ${keyValues({ name: p.name, enabled: p.enabled, pending: p.pending, dead: p.dead, lag_secs: p.lag_secs })}`);
    });
}

async function confirmDestroy(dataDir: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  // A closed stdin (no answer at all) must cancel, not hang.
  const closed = new Promise<string>((resolve) => rl.once('close', () => resolve('')));
  try {
    const answer = await Promise.race([
      rl.question(`This will permanently delete all EventDBX data under ${dataDir} and remove the config file at ${configPath(dataDir)}.\nType "destroy" to continue: `),
      closed,
    ]);
    return answer.trim() === 'destroy';
  } catch {
    return false;
  } finally {
    rl.close();
  }
}

export function destroyCommand(): Command {
  return new Command('destroy')
    .description('Destroy all EventDBX data and configuration')
    .option('--data-dir <dir>', 'data directory')
    .option('-y, --yes', 'do not ask for confirmation')
    .addHelpText('after', '\nStops the server if it runs, then deletes the data directory (config.toml included).\n\nExample:\n  dbx destroy --data-dir ./data --yes\n')
    .action(async (opts: { dataDir?: string; yes?: boolean }) => {
      const dataDir = resolveDataDir(opts.dataDir);
      if (!existsSync(dataDir)) return printLine(`Nothing to destroy: ${dataDir} does not exist.`);
      if (!dataDirLooksOurs(dataDir)) throw new CliError(`${dataDir} does not look like an EventDBX data directory (no config.toml, cli.token or shards/); refusing to delete it`);
      // Without --yes the answer is read from stdin, a terminal or a pipe (`echo destroy | dbx destroy`);
      // no answer (closed stdin) cancels.
      if (!opts.yes && !(await confirmDestroy(dataDir))) throw new CliError('Destroy command cancelled.');
      const stopped = await stopServer(dataDir);
      if (stopped.kind === 'stopped') printLine(describeStop(stopped));
      rmSync(dataDir, { recursive: true, force: true });
      printLine(`All EventDBX data and configuration removed from ${dataDir}`);
    });
}
