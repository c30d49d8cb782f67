/**
 * Direct mode (no server owns the data dir): a loopback HTTP gateway in this process that the
 * command's ordinary client talks to, so a command behaves exactly as through a server. What stands
 * behind it is decided by the first request, since only then is it known what the command does:
 *
 * - a GET the read-only engine serves (aggregates, events, schemas): answered from LMDB read
 *   transactions by coordinator/read-only.ts — no fastify, no shard workers, no plugin pool, no
 *   lock (~0.3 s instead of a ~1.5 s engine start);
 * - anything else (a write, a plugin or queue call, a stream): the whole engine is started in
 *   this process (taking the data dir's lock, so it never races a server) and from then on every
 *   request is passed to it, reads included (they see the command's own writes).
 *
 * A read on a data directory that does not exist is refused (only `dbx start`, `dbx config` and
 * writes create one); the refusal and any start failure are rethrown by `failure()` with their own
 * message, after the command's client has seen a 4xx/5xx in the error model.
 */
import { existsSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ReadOnlyEngine } from '../coordinator/read-only.js';
import type { RunningServer } from '../coordinator/index.js';
import type { RequestDispatcher } from '../client/index.js';
import { CliError } from './output.js';
import { loadUndici } from '../client/undici.js';

export interface DirectGateway {
  url: string;
  /**
   * For the command's client (ClientOptions.dispatcher): what the read-only engine serves is
   * answered in this process, without HTTP (and without loading undici, ~100 ms of a read);
   * anything else goes to the gateway over HTTP.
   */
  dispatcher: RequestDispatcher;
  /** The error that should end the command instead of what its client saw, if any. */
  failure(): Error | undefined;
  close(): Promise<void>;
}

/** An answer made here, not by the engine: the read-only engine's, or a refusal. */
interface LocalAnswer {
  status: number;
  body: string;
}

/** What the command's client reads when the engine cannot be had (the real cause is rethrown). */
function errorAnswer(status: number, code: string, message: string): LocalAnswer {
  return { status, body: JSON.stringify({ error: { code, message } }) };
}

function send(res: ServerResponse, answer: LocalAnswer): void {
  res.writeHead(answer.status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(answer.body) }).end(answer.body);
}

export function missingDataDirError(dataDir: string): CliError {
  return new CliError(
    `data directory ${dataDir} does not exist; start a server there (\`dbx start --data-dir ${dataDir}\`), or name another with --data-dir, $EVENTDBX_DATA_DIR or --url`,
    1,
    'not_found',
  );
}

export interface GatewayOptions {
  /** Maps a refused start (another process holds the lock) to the error the command reports. */
  busy: (err: Error) => Error;
  /**
   * The token that stands for `<data_dir>/cli.token` when the command was given none: a random
   * value only this process knows, swapped here for the file's token when a request is answered
   * (a first write creates that file). The read-only engine is told the token is the owner's.
   */
  placeholder?: string;
  readCliToken: () => string | undefined;
}

export async function openDirectGateway(dataDir: string, options: GatewayOptions): Promise<DirectGateway> {
  const { busy, placeholder, readCliToken } = options;
  const missing = !existsSync(dataDir);
  let readOnly: Promise<ReadOnlyEngine | undefined> | undefined;
  let engine: Promise<RunningServer> | undefined;
  let failure: Error | undefined;

  const openReadOnly = (): Promise<ReadOnlyEngine | undefined> =>
    (readOnly ??= import('../coordinator/read-only.js').then(async ({ ReadOnlyEngine }) => {
      let opened = ReadOnlyEngine.open(dataDir);
      // An open that failed (not one declined for what the dir holds) is tried once more: direct
      // reads started side by side right after a stop can race on LMDB's lock file, and falling
      // back to a start would make this read hold the data dir against the others.
      if ('declined' in opened && /needs a start to open/.test(opened.declined)) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        opened = ReadOnlyEngine.open(dataDir);
      }
      return 'declined' in opened ? undefined : opened;
    }));
  const startEngine = (): Promise<RunningServer> =>
    (engine ??= import('../coordinator/index.js').then(async ({ startServer, DataDirBusyError }) => {
      try {
        // A loopback listener for this one command: plain HTTP even when [http] sets TLS.
        return await startServer({ dataDir, listenPort: 0, host: '127.0.0.1', logLevel: 'silent', plainHttp: true });
      } catch (err) {
        throw err instanceof DataDirBusyError ? busy(err) : err;
      }
    }));

  // LMDB must not have one environment open twice in a process (closing either drops the other's
  // POSIX locks): the read-only handles are closed, once their answers are out, before a start.
  const inFlight = new Set<Promise<unknown>>();
  let readOnlyClosed: Promise<void> | undefined;
  const closeReadOnly = (): Promise<void> =>
    (readOnlyClosed ??= (async () => {
      await Promise.allSettled([...inFlight]);
      const reader = await readOnly?.catch(() => undefined);
      await reader?.close();
    })());

  /** The answer given here (a refusal, or the read-only engine's), or undefined: the engine must answer. */
  const local = async (method: string, url: string, authorization: string | undefined, tenant: string | undefined): Promise<LocalAnswer | undefined> => {
    const swap = placeholder !== undefined && authorization === `Bearer ${placeholder}`;
    if (failure) return errorAnswer(503, 'unavailable', failure.message);
    if (missing && method === 'GET') {
      failure = missingDataDirError(dataDir);
      return errorAnswer(404, 'not_found', failure.message);
    }
    if (engine !== undefined || readOnlyClosed !== undefined || method !== 'GET') return undefined;
    const reader = await openReadOnly();
    if (engine !== undefined || readOnlyClosed !== undefined || !reader?.serves(method, url)) return undefined;
    const presented = swap ? bearer(readCliToken()) : authorization;
    const answered = reader.handle({ method, url, authorization: presented, tenant, ownerToken: swap && presented !== undefined });
    inFlight.add(answered);
    try {
      const answer = await answered;
      return { status: answer.status, body: JSON.stringify(answer.body) };
    } finally {
      inFlight.delete(answered);
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const tenant = req.headers['x-tenant-id'];
    const answer = await local(method, url, req.headers.authorization, typeof tenant === 'string' ? tenant : undefined);
    if (answer !== undefined) return send(res, answer);
    let running: RunningServer;
    try {
      if (engine === undefined) await closeReadOnly();
      running = await startEngine();
    } catch (err) {
      failure = err instanceof Error ? err : new Error(String(err));
      return send(res, errorAnswer(503, 'unavailable', failure.message));
    }
    if (placeholder !== undefined && req.headers.authorization === `Bearer ${placeholder}`) {
      const authorization = bearer(readCliToken());
      if (authorization === undefined) delete req.headers.authorization;
      else req.headers.authorization = authorization;
    }
    forward(req, res, new URL(running.url));
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      failure ??= err instanceof Error ? err : new Error(String(err));
      if (!res.headersSent) send(res, errorAnswer(500, 'internal', 'internal error'));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;

  // What the engine must answer goes over HTTP to the gateway above (undici, imported then).
  let pool: Promise<RequestDispatcher> | undefined;
  const dispatcher: RequestDispatcher = {
    async request(options) {
      const answer = await local(options.method, options.path, options.headers.authorization, options.headers['x-tenant-id']);
      if (answer !== undefined) return { statusCode: answer.status, headers: { 'content-type': 'application/json; charset=utf-8' }, body: { text: async () => answer.body } };
      pool ??= loadUndici().then(({ Pool }) => new Pool(url));
      return (await pool).request(options);
    },
    async close() {
      await (await pool)?.close();
    },
  };

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await dispatcher.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await closeReadOnly();
      // A start still running is awaited, so its lock is released too.
      const running = await engine?.catch(() => undefined);
      await running?.stop();
    })());
  return { url, dispatcher, failure: () => failure, close };
}

function bearer(token: string | undefined): string | undefined {
  return token === undefined ? undefined : `Bearer ${token}`;
}

/** Streams a request to the started engine and its answer back (imports, exports, replays). */
function forward(req: IncomingMessage, res: ServerResponse, target: URL): void {
  const upstream = httpRequest(
    { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', (err) => {
    if (!res.headersSent) send(res, errorAnswer(503, 'unavailable', `the in-process engine did not answer: ${err.message}`));
    else res.destroy();
  });
  req.pipe(upstream);
}
