/** Server lifecycle: `dbx start`, `stop`, `status`, `restart`, `destroy` (reference §14.6). */
import { existsSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { parseRestrictMode, type RestrictMode } from '../core/schema/index.js';
import { configPath, readConfig, type Config } from '../core/index.js';
import { createClient, toWire, type ServerStatus, type Wire } from '../client/index.js';
import { dataDirLooksOurs, describeStop, logFile, recordStartOptions, rememberedStartOptions, startDaemon, stopServer, type StartFlags } from './daemon.js';
import { parsePort, resolveDataDir, serverOption, type ConnectionFlags } from './options.js';
import { CliError, UsageError, formatUptime, keyValues, printJson, printLine } from './output.js';
import { answersHealth, clientTrust, isLoopbackHost, probeServer, removeStalePidFile, resolveTenant, resolveToken } from './session.js';

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
  });
  // Only once it runs: a start that failed must not become what `dbx restart` repeats.
  recordStartOptions(dataDir, opts);
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
    .addHelpText(
      'after',
      '\nStops the server (if running), then starts it with the options of its last start (port, restrict),\nreplaced by any given here.\n\nExample:\n  dbx restart --port 7071\n',
    )
    .action(async (opts: StartOpts) => {
      const dataDir = resolveDataDir(opts.dataDir);
      const given: StartFlags = {
        ...(opts.port !== undefined ? { port: opts.port } : {}),
        ...(opts.restrict !== undefined ? { restrict: opts.restrict } : {}),
      };
      const flags: StartOpts = { ...rememberedStartOptions(dataDir), ...given, dataDir, ...(opts.foreground ? { foreground: true } : {}) };
      try {
        printLine(describeStop(await stopServer(dataDir)));
      } catch (err) {
        process.stderr.write(`warning: ${err instanceof Error ? err.message : String(err)}\n`);
      }
      await start(flags);
    });
}

/**
 * `dbx status` answers like pg_isready: exit 0 and the status when the server answers, exit 1 and
 * one line when it does not (stopped, or alive but not answering). `--url` asks any server.
 */
export function statusCommand(): Command {
  return new Command('status')
    .description('Display EventDBX server status')
    .option('--data-dir <dir>', 'data directory')
    .addOption(serverOption('--url <url>', "ask this server (http://host:port or https://…) instead of the data directory's own (default $EVENTDBX_URL)"))
    .addOption(serverOption('--server <url>', 'the same as --url').hideHelp())
    .option('--token <jwt>', 'token (default $EVENTDBX_TOKEN, else <data_dir>/cli.token)')
    .option('--ca-file <path>', 'PEM CA certificate(s) to trust when the server serves https (default $EVENTDBX_CA_FILE)')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExit code 0 when the server answers, 1 when it does not (like pg_isready).\n\nExamples:\n  dbx status --json\n  dbx status --url http://db.internal:7070\n')
    .action(async (opts: ConnectionFlags & { json?: boolean }) => {
      const dataDir = resolveDataDir(opts.dataDir);
      const { config } = readConfig(dataDir);
      if (opts.server !== undefined) return remoteStatus(opts, dataDir, config);
      const probe = await probeServer(dataDir, config);
      if (probe.state === 'stopped') {
        if (probe.stale) removeStalePidFile(dataDir, probe.stale);
        process.exitCode = 1;
        if (opts.json) return printJson({ running: false, data_dir: dataDir });
        const where = existsSync(dataDir) ? `data dir ${dataDir}, domain ${config.domain}` : `data dir ${dataDir} does not exist`;
        return printLine(`EventDBX server is not running (${where})${probe.stale ? ' (removed stale pid file)' : ''}.`);
      }
      if (probe.state === 'unresponsive') {
        process.exitCode = 1;
        if (opts.json) return printJson({ running: true, responding: false, pid: probe.info.pid, port: probe.info.port, data_dir: dataDir });
        return printLine(`EventDBX server (pid ${probe.info.pid}) is not answering on port ${probe.info.port} (starting, or stuck).`);
      }
      printStatus(await fetchStatus(probe.url, resolveToken(opts, dataDir), clientTrust(opts, dataDir, config, true)), opts.json === true, config.domain);
    });
}

async function fetchStatus(url: string, token: string, trust: ReturnType<typeof clientTrust>): Promise<Wire<ServerStatus>> {
  const client = createClient({ url, token, ...trust });
  try {
    return toWire(await client.status());
  } finally {
    await client.close();
  }
}

function printStatus(status: Wire<ServerStatus>, json: boolean, domain: string): void {
  if (json) return printJson({ running: true, responding: true, ...status });
  // A tenant-scoped token's answer holds no host facts (pid, shards, data dir): say whose view it is.
  const view = status as Partial<Wire<ServerStatus>> & { scope?: string; tenant?: string };
  const host = view.pid !== undefined ? ` (pid ${view.pid})` : '';
  const scope = view.scope === 'tenant' ? ` — tenant=${view.tenant} (a tenant token's view)` : ` — domain=${domain}`;
  printLine(
    `EventDBX server is running on port ${status.port}${host} — restrict=${status.restrict}${scope} — up for ${formatUptime(status.uptime_secs)} (since ${status.started_at})`,
  );
  const facts = Object.fromEntries(
    Object.entries({ shards: view.shards, workers: view.workers, durability: view.durability, aggregates: view.aggregates, data_dir: view.data_dir }).filter(([, v]) => v !== undefined),
  );
  printLine(keyValues(facts));
  for (const p of status.plugins ?? []) printLine(`plugins: ${keyValues({ name: p.name, enabled: p.enabled, pending: p.pending, dead: p.dead, lag_secs: p.lag_secs })}`);
}

/** A server named by --url: /health first (no token needed), then the full status when a token is at hand. */
async function remoteStatus(opts: ConnectionFlags & { json?: boolean }, dataDir: string, config: Config): Promise<void> {
  const url = opts.server as string;
  if (!(await answersHealth(url, 3000))) {
    process.exitCode = 1;
    if (opts.json) return printJson({ url, responding: false });
    return printLine(`EventDBX server at ${url} is not answering.`);
  }
  let token: string | undefined;
  try {
    token = resolveToken(opts, dataDir, url);
  } catch {
    token = undefined;
  }
  if (token === undefined) {
    if (opts.json) return printJson({ url, responding: true });
    return printLine(`EventDBX server at ${url} is answering (give --token for its status).`);
  }
  printStatus(await fetchStatus(url, token, clientTrust(opts, dataDir, config, false)), opts.json === true, resolveTenant(opts, config));
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
      if (!dataDirLooksOurs(dataDir)) throw new CliError(`${dataDir} does not look like an EventDBX data directory (no EventDBX config.toml, cli.token or shards/layout.json); refusing to delete it`);
      // Without --yes the answer is read from stdin, a terminal or a pipe (`echo destroy | dbx destroy`);
      // no answer (closed stdin) cancels.
      if (!opts.yes && !(await confirmDestroy(dataDir))) throw new CliError('Destroy command cancelled.');
      const stopped = await stopServer(dataDir);
      if (stopped.kind === 'stopped') printLine(describeStop(stopped));
      rmSync(dataDir, { recursive: true, force: true });
      printLine(`All EventDBX data and configuration removed from ${dataDir}`);
    });
}
