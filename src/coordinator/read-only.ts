/**
 * The read side without the server: how `dbx` answers a read from a data directory that no server
 * owns (DESIGN §1, direct mode) without paying for a start — no fastify, no shard workers, no
 * plugin dispatcher or piscina pool, no data-dir lock. It opens the LMDB environments read-only
 * (LMDB lets any number of processes read beside a writer), and serves the GET route specs the
 * server registers (reads and schemas) through the steps `registerRoutes` takes — authenticate,
 * tenant, params, authorize, query, handler — answering in the same error model. The CLI's
 * equivalence test compares its answers with a real server's, so the two cannot drift silently.
 *
 * Imported on its own, not through index.ts: index.ts loads the server and with it fastify.
 *
 * `open` declines (returns a reason) when the data dir needs what only a start does: no config
 * keys or recorded layout yet, a config that asks for another layout, or a cross-worker batch a
 * crash interrupted (the start finishes it; a reader must not see half of it).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseQuery } from 'node:querystring';
import {
  DbxError,
  allowsAction,
  checkClaims,
  checkKeyRegistry,
  claimsSchema,
  loadDataCipher,
  parseInput,
  readConfig,
  resolveDataKeys,
  tenantSchema,
  type Config,
  type PlacementSettings,
  type TokenClaims,
} from '../core/index.js';
import { WorkerEnv, type ShardStore } from '../shard-worker/index.js';
import { Authenticator, authorize, type Principal } from './auth.js';
import { PATH_PARAM_CHARS_MAX } from './http-errors.js';
import { readLayout, workerEnvPath, workerOfShard } from './layout.js';
import { Reader } from './reader.js';
import { isTenantScoped, type RouteSpec } from './route-spec.js';
import { readRoutes } from './routes-reads.js';
import { schemaRoutes } from './routes-schemas.js';
import { SchemaRegistry } from './schema-registry.js';
import { SchemaVisibility } from './schema-visibility.js';
import { TenantMeta } from './tenant-meta.js';
import { TokenLedger } from './token-ledger.js';

export interface ReadOnlyRequest {
  method: string;
  /** Path and query string, as on the request line (`/v1/aggregates/person?take=5`). */
  url: string;
  authorization?: string | undefined;
  tenant?: string | undefined;
  /**
   * The caller read this token from `<data_dir>/cli.token` itself. Its signature is then not
   * checked: a process that can read that file can read the signing key beside it, so the check
   * proves nothing, and a cold Ed25519 verify in JS costs ~80 ms of a ~300 ms command. Everything
   * else is: the claims' shape, issuer, audience, expiry and the ledger's revocation list.
   */
  ownerToken?: boolean;
}

export interface ReadOnlyAnswer {
  status: number;
  /** The JSON body: the route's result, or `{ error }` in the error model. */
  body: unknown;
}

interface Matched {
  spec: RouteSpec;
  params: Record<string, string>;
}

/** One segment pattern of a route url: a literal, or a `:name` parameter. */
type Segment = { literal: string } | { param: string };

export class ReadOnlyEngine {
  private readonly routes: { spec: RouteSpec; segments: Segment[]; literals: number }[];

  private constructor(
    private readonly config: Config,
    private readonly auth: Authenticator,
    private readonly ledger: TokenLedger,
    specs: RouteSpec[],
    private readonly closers: (() => Promise<unknown>)[],
  ) {
    this.routes = specs
      .filter((spec) => spec.method === 'GET' && spec.stream === undefined)
      .map((spec) => {
        const segments: Segment[] = spec.url
          .split('/')
          .filter((s) => s.length > 0)
          .map((s) => (s.startsWith(':') ? { param: s.slice(1) } : { literal: s }));
        return { spec, segments, literals: segments.filter((s) => 'literal' in s).length };
      });
  }

  /** Opens the data dir for reading, or says why only a started engine can serve it. */
  static open(dataDir: string): ReadOnlyEngine | { declined: string } {
    const { config, exists } = readConfig(dataDir);
    if (!exists || !config.auth.public_key) return { declined: 'the data directory has not been initialised by a start' };
    // The start's own refusal, with its message, when the configured keys cannot open the data.
    checkKeyRegistry(dataDir, resolveDataKeys(config, dataDir), { record: false });
    const layout = readLayout(dataDir);
    if (!layout) return { declined: 'no storage layout recorded yet' };
    const shardCount = config.tenants.shard_count;
    const workers = Math.min(config.storage.workers > 0 ? config.storage.workers : layout.workers, shardCount);
    if (layout.shard_count !== shardCount || layout.workers !== workers) return { declined: 'the config asks for another layout (a start decides)' };
    for (let w = 0; w < layout.workers; w++) {
      if (!existsSync(join(workerEnvPath(dataDir, w), 'data.mdb'))) return { declined: `worker environment ${w} does not exist yet` };
    }
    const closers: (() => Promise<unknown>)[] = [];
    const decline = (reason: { declined: string }): { declined: string } => {
      void Promise.all(closers.map((close) => close().catch(() => undefined)));
      return reason;
    };
    try {
      const cipher = loadDataCipher(config, dataDir);
      const envs: WorkerEnv[] = [];
      for (let w = 0; w < layout.workers; w++) {
        let env: WorkerEnv;
        try {
          env = new WorkerEnv(workerEnvPath(dataDir, w), { mapSizeMib: config.storage.map_size_mib, cipher, readOnly: true });
        } catch (err) {
          // A read-only open cannot create what this version adds (a new named database): a start can.
          void Promise.all(closers.map((close) => close().catch(() => undefined)));
          return { declined: `worker environment ${w} needs a start to open (${err instanceof Error ? err.message : String(err)})` };
        }
        closers.push(() => env.close());
        envs.push(env);
        for (const _ of env.intents.getRange({ limit: 1 })) {
          void Promise.all(closers.map((close) => close().catch(() => undefined)));
          return { declined: 'a cross-worker batch interrupted by a crash is waiting to be finished' };
        }
      }
      const placement: PlacementSettings = { shardCount: layout.shard_count, multiTenant: config.tenants.multi_tenant };
      if (config.tenants.multi_tenant) {
        const meta = openOrDecline('the tenant metadata', () => new TenantMeta(dataDir, { readOnly: true }));
        if ('declined' in meta) return decline(meta);
        closers.push(() => meta.close());
        placement.assignments = meta.assignments;
      }
      const stores: ShardStore[] = [];
      for (let s = 0; s < layout.shard_count; s++) stores.push((envs[workerOfShard(s, layout)] as WorkerEnv).shard(s));
      // Read-only like the worker envs: a writable open runs write txns, and direct reads running
      // side by side then broke lmdb's shared lock region ("No transaction to renew").
      const registry = openOrDecline('the schema registry', () => new SchemaRegistry(dataDir, { mapSizeMib: config.storage.map_size_mib, readOnly: true, cipher }));
      if ('declined' in registry) return decline(registry);
      closers.push(() => registry.close());
      const ledger = openOrDecline('the token ledger', () => new TokenLedger(dataDir, cipher, { readOnly: true }));
      if ('declined' in ledger) return decline(ledger);
      closers.push(() => ledger.close());
      const specs = [...readRoutes(new Reader(stores, placement), config, new SchemaVisibility(registry)), ...schemaRoutes(registry, config)];
      return new ReadOnlyEngine(config, new Authenticator(config.auth, ledger), ledger, specs, closers);
    } catch (err) {
      void Promise.all(closers.map((close) => close().catch(() => undefined)));
      throw err;
    }
  }

  /** Whether a request with this method and url is one this engine answers (else a start must). */
  serves(method: string, url: string): boolean {
    try {
      return method === 'GET' && this.match(pathOf(url)) !== undefined;
    } catch {
      return true; // a malformed URL: answered here, with the server's 400
    }
  }

  async handle(request: ReadOnlyRequest): Promise<ReadOnlyAnswer> {
    try {
      // The server's edge limits, in its words (installUrlLimit, the router's maxParamLength).
      if (request.url.length > this.config.http.url_bytes_max) throw new DbxError('uri_too_long', `the URL is longer than ${this.config.http.url_bytes_max} bytes`);
      const matched = request.method === 'GET' ? this.match(pathOf(request.url)) : undefined;
      if (!matched) throw new DbxError('not_found', `no route ${request.method} ${pathOf(request.url)}`);
      const body = await this.run(matched, request);
      // As fastify sends it: JSON.stringify drops undefined fields.
      return { status: matched.spec.status ?? 200, body: JSON.parse(JSON.stringify(body ?? null)) as unknown };
    } catch (err) {
      const error = err instanceof DbxError ? err : new DbxError('internal', 'internal error');
      return { status: error.status, body: { error: error.toWire() } };
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.closers.splice(0).map((close) => close().catch(() => undefined)));
  }

  /** registerRoutes' handler without fastify: the same checks in the same order. */
  private async run({ spec, params: rawParams }: Matched, request: ReadOnlyRequest): Promise<unknown> {
    const open = spec.action === null || (spec.url === '/metrics' && this.config.metrics.public);
    const claims: TokenClaims | undefined = open ? undefined : request.ownerToken ? this.ownerClaims(request.authorization) : this.auth.authenticate(request.authorization);
    const named = typeof request.tenant === 'string' && request.tenant.length > 0;
    if (!named && this.config.tenants.multi_tenant && !open && isTenantScoped(spec)) {
      throw new DbxError('invalid_input', 'this server hosts several tenants ([tenants] multi_tenant = true): name the tenant with the X-Tenant-Id header');
    }
    const tenant = parseInput(tenantSchema, named ? request.tenant : 'default', 'header.x-tenant-id');
    const params = spec.params ? parseInput(spec.params, rawParams, 'params') : undefined;
    const principal = { claims: claims ?? anonymous, tenant } as Principal;
    if (claims && spec.action !== null) {
      if (spec.tenantScope === 'none') {
        if (!allowsAction(claims, spec.action)) throw new DbxError('forbidden', `token lacks the '${spec.action}' action`);
      } else {
        authorize(principal, spec.action, spec.resource && params !== undefined ? spec.resource(params) : undefined);
      }
    }
    const search = request.url.indexOf('?');
    const query = spec.query ? parseInput(spec.query, search < 0 ? {} : { ...parseQuery(request.url.slice(search + 1)) }, 'query') : undefined;
    // GET routes read no body, request or reply.
    return spec.handler({ body: undefined, query, params, principal, tenant, request: undefined as never, reply: undefined as never });
  }

  private ownerClaims(authorization: string | undefined): TokenClaims {
    const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
    const parts = token?.split('.');
    if (!parts || parts.length !== 3) throw new DbxError('unauthorized', 'token is malformed');
    let raw: unknown;
    try {
      raw = JSON.parse(Buffer.from(parts[1] as string, 'base64url').toString('utf8'));
    } catch {
      throw new DbxError('unauthorized', 'token is malformed');
    }
    const parsed = claimsSchema.safeParse(raw);
    if (!parsed.success) throw new DbxError('unauthorized', 'token claims are malformed');
    checkClaims(parsed.data, this.config.auth);
    if (this.ledger.isRevoked(parsed.data.jti)) throw new DbxError('unauthorized', 'token has been revoked');
    return parsed.data;
  }

  /** find-my-way's choice: literal segments win over parameters. */
  private match(path: string): Matched | undefined {
    let segments: string[];
    try {
      segments = path.split('/').filter((s) => s.length > 0).map((s) => decodeURIComponent(s));
    } catch {
      throw new DbxError('invalid_input', 'the URL is not valid percent-encoded UTF-8');
    }
    let best: (Matched & { literals: number }) | undefined;
    for (const route of this.routes) {
      if (route.segments.length !== segments.length) continue;
      const params: Record<string, string> = {};
      const fits = route.segments.every((pattern, i) => {
        const value = segments[i] as string;
        if ('literal' in pattern) return pattern.literal === value;
        if (value.length > PATH_PARAM_CHARS_MAX) throw new DbxError('invalid_input', 'a path segment is too long');
        params[pattern.param] = value;
        return true;
      });
      if (fits && (!best || route.literals > best.literals)) best = { spec: route.spec, params, literals: route.literals };
    }
    return best;
  }
}

/** A read-only open fails where only a start can help (the store or one of its databases is not created yet). */
function openOrDecline<T>(what: string, opener: () => T): T | { declined: string } {
  try {
    return opener();
  } catch (err) {
    return { declined: `${what} needs a start to open (${err instanceof Error ? err.message : String(err)})` };
  }
}

function pathOf(url: string): string {
  const search = url.indexOf('?');
  return search < 0 ? url : url.slice(0, search);
}

/** Claims of an open route (none of the GET routes served here is open today). */
const anonymous: TokenClaims = {
  iss: '',
  aud: '',
  sub: 'anonymous',
  jti: 'anonymous',
  iat: 0,
  group: '',
  user: '',
  actions: [],
  resources: [],
  tenants: [],
  issued_by: '',
  limits: { write_events: null, keep_alive: false },
};
