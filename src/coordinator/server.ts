/**
 * Server lifecycle: data dir → shard workers → read stores → crash recovery → HTTP. `stop()` closes
 * the listener (in-flight requests finish), drains the workers until everything is flushed, then
 * releases the data directory.
 */
import { availableParallelism } from 'node:os';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import { DbxError, allowsTenant, createSnowflakeState, decodeUtf8Strict, jsonTextProblem, loadDataCipher, writeLimitsFrom, type Config, type PlacementSettings } from '../core/index.js';
import { WorkerEnv, type ShardStore } from '../shard-worker/index.js';
import { Authenticator } from './auth.js';
import { TokenLedger } from './token-ledger.js';
import { ensureCliTokenRecorded } from './token-service.js';
import { tokenRoutes } from './routes-tokens.js';
import { PluginService } from './plugin-service.js';
import { pluginRoutes } from './routes-plugins.js';
import { WriteAllowance } from './write-allowance.js';
import { acquireDataDir, prepareDataDir, saveStartOverrides, updatePidFile, type StartOverrides } from './data-dir.js';
import { PATH_PARAM_CHARS_MAX, clientErrorHandler, frameworkErrors, installErrorHandling, installUrlLimit, jsonBodyRefusal } from './http-errors.js';
import { installCors } from './cors.js';
import { tokenRateLimit } from './rate-limit.js';
import { readTlsFiles } from './tls.js';
import { LayoutError, refuseFirstLayout, resolveLayout, workerEnvPath, workerOfShard, type StorageLayout } from './layout.js';
import { Metrics } from './metrics.js';
import { LogSettingsError, loggerOptions, resolveLogSettings } from './log-format.js';
import { installRequestLog, requestId } from './request-log.js';
import { markRunning, markStopped, previousRun, uncleanExitMessage } from './run-marker.js';
import { openApiRoute } from './openapi.js';
import { Reader } from './reader.js';
import { registerRoutes, verifiedClaims, type RouteSpec } from './route-spec.js';
import { schemaRoutes } from './routes-schemas.js';
import { importRoutes } from './routes-import.js';
import { exportRoutes } from './routes-export.js';
import { readRoutes } from './routes-reads.js';
import { streamRoutes } from './routes-stream.js';
import { StreamHub } from './stream.js';
import { systemRoutes } from './routes-system.js';
import { writeRoutes } from './routes-writes.js';
import { SchemaRegistry } from './schema-registry.js';
import { SchemaVisibility } from './schema-visibility.js';
import { ShardPool } from './shard-pool.js';
import { Writer } from './writes.js';
import { TenantMeta } from './tenant-meta.js';
import { createTenantHosting } from './tenant-hosting.js';
import { finishInterruptedRemovals } from './tenant-remove.js';
import { TenantMoveService, flippedMoveBarriers } from './tenant-move.js';
import { TenantBusy } from './tenant-export.js';
import { tenantDataRoutes } from './routes-tenant-data.js';
import { ImportIdGuard } from './import-ids.js';
import { tenantRoutes } from './routes-tenants.js';
import type { TenantService } from './tenant-service.js';

export interface StartOptions {
  dataDir: string;
  /** Saved to config.toml (like `dbx start --port`). */
  port?: number;
  /** Listen here without saving it (tests and the CLI's direct mode use 0). */
  listenPort?: number;
  host?: string;
  restrict?: Config['restrict'];
  /** pino level, over EVENTDBX_LOG_LEVEL and `[log] level`; 'silent' in tests and the CLI's direct mode. */
  logLevel?: string;
  /** Plain HTTP even when [http] configures TLS (the CLI's direct mode: a loopback listener for one command). */
  plainHttp?: boolean;
}

/**
 * Options for Node's own server. requestTimeout goes here too, not only to fastify: on Node 20 a
 * requestTimeout set after the server is made (what fastify does) never fires for a request whose
 * body stops arriving (measured: no 408 in 40 s with 1.5 s set), and the check runs only every
 * connectionsCheckingInterval (default 30 s): a tenth of the timeout, within 0.1–1 s.
 */
function nodeServerOptions(config: Config): Record<string, unknown> {
  return {
    // maxHeaderSize bounds the request line and all headers together (beyond: 431).
    maxHeaderSize: config.http.header_bytes_max,
    // Off: a request without Host is answered by our routes (in the error model) instead of by Node's bare 400.
    requireHostHeader: false,
    requestTimeout: config.http.request_timeout_ms,
    connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(config.http.request_timeout_ms / 10))),
  };
}

export class ServerStartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ServerStartError';
  }
}

export interface RunningServer {
  app: FastifyInstance;
  config: Config;
  port: number;
  url: string;
  routes: RouteSpec[];
  /** The schema registry (the enforcement subscribes to its changes). */
  registry: SchemaRegistry;
  /** Tenant placement, quotas, rates and views (issue 12); the live move registers itself here. */
  tenants: TenantService;
  stop(): Promise<void>;
}

export async function startServer(options: StartOptions): Promise<RunningServer> {
  const startedAt = new Date().toISOString();
  // The lock comes first: two starters must never both write config.toml, the layout or the store.
  // Port 0 until listen succeeds: a reader of the pid file must not probe a port we do not own.
  const release = await acquireDataDir(options.dataDir, { port: 0, started_at: startedAt, restrict: options.restrict ?? 'default' });
  const cleanups: (() => Promise<void> | void)[] = [release];
  try {
    const overrides: StartOverrides = {
      ...(options.port !== undefined ? { port: options.port } : {}),
      ...(options.restrict !== undefined ? { restrict: options.restrict } : {}),
    };
    // Before anything is written: a refused dir of the first layout stays as 0.1 left it.
    refuseOrThrow(() => refuseFirstLayout(options.dataDir));
    const config = prepareDataDir(options.dataDir, overrides);
    // Before any worker starts: a bad EVENTDBX_LOG_LEVEL is refused at once, with one line.
    const log = resolveLogSettingsOrRefuse(config, options.logLevel);
    const layout = resolveLayoutOrRefuse(options.dataDir, config);
    // Tenant assignments (tenant_meta): a live map, so a change places the next write at once.
    const tenantMeta = new TenantMeta(options.dataDir);
    cleanups.unshift(() => tenantMeta.close());
    const placement: PlacementSettings = { shardCount: layout.shard_count, multiTenant: config.tenants.multi_tenant, assignments: tenantMeta.assignments };
    const metrics = new Metrics();
    // Before the pool, so the shard workers can be handed the schemas in force when they start.
    const cipher = loadDataCipher(config, options.dataDir);
    const registry = new SchemaRegistry(options.dataDir, { mapSizeMib: config.storage.map_size_mib, cipher });
    cleanups.unshift(() => registry.close());
    const envs: WorkerEnv[] = [];
    const pool = new ShardPool(
      config,
      options.dataDir,
      layout,
      createSnowflakeState(),
      (size, depth) => {
        metrics.commitBatch.observe(size);
        metrics.commitPipelineDepth.observe(depth);
      },
      () => {
        for (const env of envs) env.env.resetReadTxn();
      },
    );
    cleanups.unshift(() => pool.stop());
    // The workers compile every schema in force before they take a write; every later change is
    // awaited on every worker before the schema route answers (writes after it are checked by it).
    await pool.start([...registry.all()]);
    registry.onChange((change) => pool.schemaChanged(change.tenant, change.aggregate, change.record));
    const visibility = new SchemaVisibility(registry);
    for (let w = 0; w < layout.workers; w++) envs.push(new WorkerEnv(workerEnvPath(options.dataDir, w), { mapSizeMib: config.storage.map_size_mib, cipher }));
    const stores: ShardStore[] = [];
    for (let s = 0; s < layout.shard_count; s++) stores.push((envs[workerOfShard(s, layout)] as WorkerEnv).shard(s));
    metrics.storageSource = () => envs.map((e) => (e.env.getStats() as { lastTxnId: number }).lastTxnId);
    const reader = new Reader(stores, placement);
    const importIds = ImportIdGuard.of(pool, stores);
    const writer = new Writer(pool, placement, metrics);
    const recovered = await writer.recoverIntents();

    const tls = options.plainHttp ? undefined : readTlsFiles(config.http, options.dataDir);
    // Under the lock, so a marker found here is the previous run's. A silent server (tests, the
    // CLI's direct mode) neither reports nor consumes it: the next server that logs still will.
    const unclean = log.level === 'silent' ? undefined : previousRun(options.dataDir);
    const app = Fastify({
      logger: loggerOptions(log),
      genReqId: requestId,
      http: nodeServerOptions(config),
      // fastify serves HTTPS when `https` is set (the type stays the http one: same API for us).
      ...(tls ? ({ https: { ...tls, ...nodeServerOptions(config) } } as object) : {}),
      clientErrorHandler,
      // One log line per request costs ~36 µs: log errors and slow requests only.
      logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
      bodyLimit: config.http.body_limit_bytes,
      requestTimeout: config.http.request_timeout_ms,
      // On stop: finish requests in flight, close idle keep-alive sockets at once (not after 72 s).
      forceCloseConnections: 'idle',
      // Our own onRequest hook answers 503 in the error model while draining.
      return503OnClosing: false,
      // fastify's default (100) would refuse valid 101–128 character ids outside the error model.
      routerOptions: { maxParamLength: PATH_PARAM_CHARS_MAX },
      frameworkErrors,
    });
    // A failure after this point (say, the pid file cannot be written) must not leave a listener.
    cleanups.unshift(() => app.close());
    if (unclean) app.log.warn({ previous_pid: unclean.pid, previous_started_at: unclean.started_at, unclean_exit: true }, uncleanExitMessage(unclean));
    if (recovered > 0) app.log.warn({ recovered }, 'finished cross-shard batches interrupted by a crash');
    installErrorHandling(app);
    installUrlLimit(app, config.http.url_bytes_max);
    installCors(app, config.http.cors);
    // An empty body with Content-Type: application/json means "no body" (archive, restore and
    // snapshots take an optional one; a 404 must stay a 404); anything else must be I-JSON
    // (json-text.ts: UTF-8, unique member names, no __proto__) and is parsed with fastify's own
    // prototype-poisoning-safe parser. `__proto__` is refused by the scan above (JSON.parse would
    // drop or re-link it); `"constructor": {"prototype": …}` is plain data to JSON.parse (an own
    // property, polluting nothing), so it is accepted here as import and the stored state carry it.
    const parseJson = app.getDefaultJsonParser('error', 'ignore');
    app.removeContentTypeParser('application/json');
    app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
      const refused = jsonBodyRefusal(request.headers['content-type']);
      if (refused) return done(refused);
      const text = typeof body === 'string' ? body : decodeUtf8Strict(body);
      if (text === undefined) return done(new DbxError('validation_failed', 'body: not UTF-8 (I-JSON, RFC 7493 §2.1)', [{ path: 'body', message: 'not UTF-8' }]));
      if (text.trim().length === 0) return done(null, undefined);
      const problem = jsonTextProblem(text);
      if (problem) {
        const at = problem.path ? `body.${problem.path}` : 'body';
        return done(new DbxError(problem.code, `${at}: ${problem.message}`, [{ path: at, message: problem.message }]));
      }
      parseJson(request, text, done);
    });
    // No reader observes part of a cross-worker batch: a read of a tenant with one in flight waits
    // for all its parts (see BatchVisibility). Callback style: no promise on the common path.
    app.addHook('preHandler', (request, _reply, done) => {
      if (request.method !== 'GET') return done();
      const raw = request.headers['x-tenant-id'];
      const tenant = (typeof raw === 'string' && raw.length > 0 ? raw : 'default').toLowerCase();
      if (!writer.visibility.busy(tenant)) return done();
      writer.visibility.settled(tenant).then(() => done(), done);
    });
    let draining = false;
    app.addHook('onRequest', async () => {
      if (draining) throw new DbxError('unavailable', 'the server is shutting down');
    });
    // While draining, every answer closes its connection: a keep-alive socket that was busy when
    // the stop began would otherwise hold close() open until its keep-alive timeout (72 s).
    app.addHook('onSend', async (_request, reply) => {
      if (draining) reply.header('connection', 'close');
    });
    installRequestLog(app, metrics);
    app.addHook('onResponse', (request, reply, done) => {
      const route = request.routeOptions.url ?? 'unmatched';
      if (reply.elapsedTime > config.http.slow_request_ms) {
        request.log.warn({ method: request.method, route, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'slow request');
      }
      done();
    });
    // The token ledger: revocations and write allowances, shared with the CLI (see TokenLedger).
    const ledger = new TokenLedger(options.dataDir, cipher);
    cleanups.unshift(() => ledger.close());
    await ensureCliTokenRecorded(options.dataDir, config, ledger);
    ledger.watch();
    // Plugins: the dispatcher reads the outboxes on its own timers; writes never wait for it.
    const plugins = new PluginService({
      dataDir: options.dataDir,
      config,
      cipher,
      stores,
      reader,
      registry,
      metrics,
      log: (level, message, extra) => app.log[level](extra ?? {}, message),
      outboxBarriers: flippedMoveBarriers(tenantMeta),
      pruneOutbox: async (shard, through) => {
        // Shutting down: the workers take no more requests; the next start prunes what is left.
        if (pool.state !== 'running') return;
        await pool.request(shard, { kind: 'prune_outbox', shard, through });
      },
    });
    cleanups.unshift(() => plugins.stop());
    pool.onDurableOutbox = (shard, sequence) => plugins.dispatcher.durableAt(shard, sequence);
    // The global stream (GET /v1/stream): live readers wake on the workers' durable commit notices.
    const stream = new StreamHub({
      stores,
      placement,
      durability: config.storage.durability,
      durableSeqs: (shard, tenants) => pool.control(pool.workerOf(shard)).durableStreamSeqs(shard, tenants),
      settings: config.stream,
      batchSettled: (tenant) => (writer.visibility.busy(tenant) ? writer.visibility.settled(tenant) : undefined),
    });
    cleanups.unshift(() => stream.close());
    pool.onStreamMarks = (marks) => stream.noteDurable(marks);
    await plugins.start();
    const tenants = createTenantHosting({ meta: tenantMeta, config, placement, stores, writer, metrics, plugins });
    app.addHook('preParsing', async (request, reply, payload) => {
      const raw = request.headers['x-tenant-id'];
      const tenant = typeof raw === 'string' && raw.length > 0 ? raw.toLowerCase() : 'default';
      // Only a caller whose token covers the tenant learns that it is rate limited, or parks in one
      // of its hold slots (a foreign token filling them got the tenant's own clients' connections
      // closed); any other is answered 403 by the handler, as without a limit.
      const claims = verifiedClaims(request);
      if (claims === undefined || !allowsTenant(claims, tenant)) return payload;
      const held = tenants.refuseEarly(request.method, request.routeOptions.url, tenant, reply);
      if (held) await held;
      return payload;
    });
    // The live move (tenant-move.ts): assigning a tenant that has data moves it; a move a crash or
    // a stop interrupted resumes once the server listens.
    const tenantBusy = new TenantBusy();
    const mover = new TenantMoveService({
      pool,
      busy: tenantBusy,
      stores,
      placement,
      meta: tenantMeta,
      admission: tenants.admission,
      outboxTaken: (shard) => plugins.queue.position(shard),
      log: (level, message, extra) => app.log[level](extra ?? {}, message),
    });
    tenants.service.registerMover(mover);
    pool.admit = (body) => mover.admitImport(body);
    const removeDeps = { stores, placement, pool, meta: tenantMeta, admission: tenants.admission, busy: tenantBusy, plugins };
    const auth = new Authenticator(config.auth, ledger);
    const allowance = new WriteAllowance(ledger);
    let listenPort = config.port;
    const status = {
      config,
      dataDir: options.dataDir,
      workers: layout.workers,
      port: () => listenPort,
      authenticate: (header: string | undefined) => auth.authenticate(header),
    };
    const routes: RouteSpec[] = [
      ...systemRoutes({ metrics, reader, startedAt, status, plugins }),
      ...writeRoutes(writer, reader, writeLimitsFrom(config.limits), visibility, allowance),
      ...readRoutes(reader, config, visibility),
      ...streamRoutes({ hub: stream, limits: config, visibility, authenticate: (header) => auth.authenticate(header) }),
      ...exportRoutes({ stores, placement, visibility, schemaOf: (tenant, type) => registry.get(tenant, type) }),
      ...importRoutes({ pool, placement, config, limits: writeLimitsFrom(config.limits), metrics, tenantGate: tenants.gate, visibility, cipher, importIds }),
      ...schemaRoutes(registry, config),
      ...tokenRoutes({ dataDir: options.dataDir, config, ledger, auth, allowance }),
      ...pluginRoutes(plugins),
      ...tenantRoutes(tenants.service),
      ...tenantDataRoutes({
        config,
        limits: writeLimitsFrom(config.limits),
        ...removeDeps,
        moving: (tenant) => (tenantMeta.get(tenant)?.move ?? null) !== null,
        importSession: (tenant) => tenants.gate.importSession(tenant),
        importIds,
      }),
    ];
    const listenHost = options.host ?? config.http.host;
    const publicHost = listenHost === '0.0.0.0' || listenHost === '::' ? '127.0.0.1' : listenHost.includes(':') ? `[${listenHost}]` : listenHost;
    routes.push(openApiRoute(() => routes, { servers: () => [{ url: `${tls ? 'https' : 'http'}://${publicHost}:${listenPort}`, description: 'where this server listens' }] }));
    registerRoutes(app, routes, auth, (spec) => spec.url === '/metrics' && config.metrics.public, {
      afterAuth: tokenRateLimit(config.http.rate_limit),
      requireTenant: config.tenants.multi_tenant,
    });
    try {
      await app.listen({ port: options.listenPort ?? config.port, host: options.host ?? config.http.host });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE') throw new ServerStartError(`port ${options.listenPort ?? config.port} is already in use`);
      if (code === 'EACCES') throw new ServerStartError(`no permission to listen on port ${config.port}`);
      const host = options.host ?? config.http.host;
      if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_FAIL') throw new ServerStartError(`[http] host '${host}' does not resolve to an address of this machine (${code})`);
      if (code === 'EADDRNOTAVAIL') throw new ServerStartError(`[http] host '${host}' is not an address of this machine`);
      throw err;
    }
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    listenPort = port;
    // Only now that it runs: a start that failed leaves config.toml as it was.
    saveStartOverrides(options.dataDir, overrides);
    updatePidFile(options.dataDir, { pid: process.pid, port, started_at: startedAt, restrict: config.restrict });
    if (log.level !== 'silent') markRunning(options.dataDir, { pid: process.pid, started_at: startedAt });
    mover.resumeAll();
    // A removal a crash interrupted: its marker has kept the tenant's writes refused since the start.
    let stopRequested = false;
    const removals = finishInterruptedRemovals(removeDeps, (level, message, extra) => app.log[level](extra ?? {}, message), () => stopRequested);

    let stopping: Promise<void> | undefined;
    const stop = (): Promise<void> => {
      stopping ??= (async () => {
        draining = true;
        // A move stops at its next step (its record stays; the next start resumes it), so an
        // assign request waiting on it answers instead of holding close() open.
        await mover.stop();
        stopRequested = true;
        await Promise.allSettled(removals);
        // In-flight requests get request_timeout_ms to finish; then their sockets are cut.
        const cutoff = setTimeout(() => app.server.closeAllConnections(), config.http.request_timeout_ms);
        // Live streams never end by themselves: each is told why and closed, or close() would wait.
        stream.close();
        await app.close();
        clearTimeout(cutoff);
        await pool.stop();
        await registry.close();
        await plugins.stop();
        await allowance.flush();
        await ledger.close();
        await tenants.close();
        // Everything is drained and flushed: the next start has nothing to report.
        if (log.level !== 'silent') markStopped(options.dataDir);
        release();
      })();
      return stopping;
    };
    return { app, config, port, url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`, routes, registry, tenants: tenants.service, stop };
  } catch (err) {
    for (const cleanup of cleanups) await cleanup();
    throw err;
  }
}

function resolveLogSettingsOrRefuse(config: Config, explicit: string | undefined): ReturnType<typeof resolveLogSettings> {
  try {
    return resolveLogSettings(config.log, explicit);
  } catch (err) {
    if (err instanceof LogSettingsError) throw new ServerStartError(err.message);
    throw err;
  }
}

/** The layout check refuses with one line, like every other start-up refusal. */
function resolveLayoutOrRefuse(dataDir: string, config: Config): StorageLayout {
  return refuseOrThrow(() => resolveLayout(dataDir, config, availableParallelism(), config.storage.map_size_mib));
}

function refuseOrThrow<T>(check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof LayoutError) throw new ServerStartError(err.message);
    throw err;
  }
}
