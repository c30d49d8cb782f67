/**
 * `/v1/plugins…` and `/v1/queue…` (issue 11) for a token holding `plugin.admin`. Plugins are
 * server-wide: a `plugin.admin` token valid for every tenant (`*`) manages every plugin and the
 * queue; one of some tenants manages only plugins bound to tenants it holds (a plugin with no
 * tenant filter sees every tenant's events). Kinds that reach the server host need a server
 * administrator (`*` actions) whatever the tenants.
 */
import { z } from 'zod';
import { DbxError, aggregateIdSchema, aggregateTypeSchema, allowsTenant, type TokenClaims } from '../core/index.js';
import { PAYLOAD_MODES, type PluginDefinition } from '../plugins/types.js';
import type { PluginService } from './plugin-service.js';
import * as responses from './response-schemas.js';
import { defineRoute, type RouteSpec } from './route-spec.js';
import { isServerAdmin } from './routes-system.js';

/** Open jobs GET /v1/queue lists (the response schema says so). */
const QUEUE_LIST_MAX = 1000;
const nameParams = z.strictObject({ name: z.string().min(1).max(64).regex(/^[A-Za-z0-9_.-]+$/) });
const replayBody = z.strictObject({
  aggregate_type: aggregateTypeSchema,
  aggregate_id: aggregateIdSchema.optional(),
  payload_mode: z.enum(PAYLOAD_MODES).optional(),
});
const retryBody = z.strictObject({ event_id: z.string().regex(/^\d{1,20}$/).optional() });
const clearBody = z.strictObject({ plugin: z.string().min(1).max(64).optional() });

/** The route's `plugin.admin` holds for every tenant: every plugin and the queue are its to manage. */
function everyTenant(claims: TokenClaims): boolean {
  return isServerAdmin(claims) || claims.tenants.includes('*');
}

function manages(claims: TokenClaims, definition: Pick<PluginDefinition, 'tenants'>): boolean {
  if (everyTenant(claims)) return true;
  return definition.tenants.length > 0 && definition.tenants.every((t) => allowsTenant(claims, t));
}

/**
 * What in a plugin's options reaches the server host itself (runs a command, writes or reads its
 * files), or undefined. Only a server administrator may configure those: a tenant's administrator
 * running a command as the server's user could read cli.token and config.toml's keys.
 */
function hostAccess(options: unknown): string | undefined {
  if (typeof options !== 'object' || options === null) return undefined;
  const o = options as Record<string, unknown>;
  if (o.kind === 'process') return 'a process plugin runs a command on the server host';
  if (o.kind === 'csv' || o.kind === 'json') return `a ${o.kind} plugin writes files on the server host`;
  if (o.kind === 'log' && o.file !== undefined) return 'a log plugin with a file writes on the server host';
  if (o.kind === 'http' && o.ca_file !== undefined) return 'an http plugin with a ca_file reads a file of the server host';
  if (o.kind === 'postgres' && typeof o.url === 'string' && postgresUrlReachesHost(o.url)) {
    return 'a postgres plugin URL naming certificate files, a service or password file, or a unix socket reaches the server host';
  }
  return undefined;
}

/** Connection-string parameters the pg client reads as host files (or that pick a unix socket). */
const PG_HOST_PARAMS: ReadonlySet<string> = new Set(['sslrootcert', 'sslcert', 'sslkey', 'sslcrl', 'passfile', 'service', 'servicefile', 'host']);

/** True unless `url` is a plain postgres:// URL to a network host without file parameters. */
function postgresUrlReachesHost(url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return true;
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') return true;
  const host = decodeURIComponent(parsed.hostname);
  if (host === '' || host.startsWith('/')) return true;
  return [...parsed.searchParams.keys()].some((key) => PG_HOST_PARAMS.has(key.toLowerCase()));
}

export function pluginRoutes(service: PluginService): RouteSpec[] {
  const mine = (claims: TokenClaims, name: string): PluginDefinition => {
    const definition = service.get(name);
    if (!manages(claims, definition)) throw new DbxError('not_found', `no plugin named '${name}' is configured`);
    return definition;
  };
  const everyTenantOnly = (claims: TokenClaims): void => {
    if (!everyTenant(claims)) throw new DbxError('forbidden', 'the queue is server-wide: this needs a plugin.admin token valid for every tenant (--tenant "*")');
  };
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/plugins',
      operationId: 'listPlugins',
      response: responses.PluginList,
      summary: 'Configured plugins with their queue counts and lag',
      action: 'plugin.admin',
      handler: ({ principal }) => ({ items: service.list().filter((d) => manages(principal.claims, d)) }),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/plugins/:name',
      operationId: 'getPlugin',
      response: responses.PluginDefinition,
      errors: [404],
      summary: 'One plugin',
      action: 'plugin.admin',
      params: nameParams,
      handler: ({ params, principal }) => mine(principal.claims, params.name),
    }),
    defineRoute({
      method: 'PUT',
      url: '/v1/plugins/:name',
      operationId: 'putPlugin',
      response: responses.PluginDefinition,
      errors: [409],
      summary: 'Create or replace a plugin (validated; an enabled plugin is checked for connectivity first)',
      action: 'plugin.admin',
      params: nameParams,
      body: z.record(z.string(), z.unknown()),
      handler: async ({ params, body, principal }) => {
        // The name is the path's: a body naming another plugin is refused, not quietly stored under the path's name.
        if (Object.hasOwn(body, 'name') && body.name !== params.name) {
          throw new DbxError('validation_failed', `body.name: '${String(body.name)}' does not match the path's plugin '${params.name}'`, [
            { path: 'body.name', field: 'name', rule: 'mismatch', message: `does not match the path's plugin '${params.name}'` },
          ]);
        }
        const input: Record<string, unknown> = { ...body, name: params.name };
        const tenants = Array.isArray(input.tenants) ? (input.tenants as unknown[]) : [];
        if (!everyTenant(principal.claims)) {
          if (tenants.length === 0 || !tenants.every((t) => typeof t === 'string' && allowsTenant(principal.claims, t))) {
            throw new DbxError('forbidden', 'a plugin for every tenant needs a plugin.admin token valid for every tenant (--tenant "*"); name your tenants in `tenants`');
          }
          // A name held by a plugin this token does not manage stays that plugin's: replacing it
          // would hand its events (other tenants') to this token's endpoint, or let it delete them.
          const existing = service.has(params.name) ? service.get(params.name) : undefined;
          if (existing && !manages(principal.claims, existing)) {
            throw new DbxError('already_exists', `the plugin name '${params.name}' is taken by a plugin this token does not manage; choose another name`);
          }
        }
        // Running a command or touching the host's files as the server's user could read its keys.
        const host = isServerAdmin(principal.claims) ? undefined : hostAccess(input.options);
        if (host) throw new DbxError('forbidden', `${host}: this needs a server administrator token (* actions for every tenant)`);
        return service.configure(input);
      },
    }),
    ...(['enable', 'disable'] as const).map((op) =>
      defineRoute({
        method: 'POST',
        url: `/v1/plugins/:name/${op}`,
        operationId: `${op}Plugin`,
        response: responses.PluginDefinition,
        errors: [404],
        summary: op === 'enable' ? 'Enable a plugin (refused with the reason when it cannot be reached)' : 'Disable a plugin (its jobs wait)',
        action: 'plugin.admin',
        params: nameParams,
        handler: async ({ params, principal }) => {
          mine(principal.claims, params.name);
          return service.setEnabled(params.name, op === 'enable');
        },
      }),
    ),
    defineRoute({
      method: 'DELETE',
      url: '/v1/plugins/:name',
      operationId: 'deletePlugin',
      response: responses.PluginRemoved,
      errors: [404],
      summary: 'Remove a disabled plugin and its jobs',
      action: 'plugin.admin',
      params: nameParams,
      handler: async ({ params, principal }) => {
        mine(principal.claims, params.name);
        await service.remove(params.name);
        return { removed: params.name };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/plugins/:name/test',
      operationId: 'testPlugin',
      response: responses.PluginTestOutcome,
      errors: [404],
      summary: 'Send a synthetic event through the plugin now (not queued) and report the outcome',
      action: 'plugin.admin',
      params: nameParams,
      handler: async ({ params, principal }) => {
        mine(principal.claims, params.name);
        return service.test(params.name);
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/plugins/:name/replay',
      operationId: 'replayPlugin',
      response: responses.PluginReplay,
      errors: [404],
      summary: "Queue the stored events of an aggregate type (or one aggregate) again for one plugin, in the request's tenant",
      action: 'plugin.admin',
      params: nameParams,
      body: replayBody,
      handler: async ({ params, body, principal, tenant }) => {
        mine(principal.claims, params.name);
        return service.replay(params.name, tenant, body.aggregate_type, body.aggregate_id, body.payload_mode);
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/queue',
      operationId: 'getQueue',
      response: responses.QueueState,
      summary: 'Queue counts per plugin and state, lag, and the jobs not yet done with their last errors',
      action: 'plugin.admin',
      handler: ({ principal }) => {
        everyTenantOnly(principal.claims);
        // The first QUEUE_LIST_MAX open jobs are listed (none further is read); the total is counted in the queue's index.
        const jobs = service.dispatcher.openJobs({ limit: QUEUE_LIST_MAX });
        return { plugins: service.counts(), jobs, jobs_total: Math.max(service.dispatcher.openTotal(), jobs.length) };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/queue/retry',
      operationId: 'retryDeadJobs',
      response: responses.QueueRetry,
      summary: 'Dead jobs (or the one with event_id) back to pending now',
      action: 'plugin.admin',
      body: retryBody.optional().transform((b) => b ?? {}),
      handler: async ({ body, principal }) => {
        everyTenantOnly(principal.claims);
        return service.retry(body.event_id);
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/queue/clear',
      operationId: 'clearDeadJobs',
      response: responses.QueueClear,
      summary: 'Remove dead jobs (all, or one plugin\'s)',
      action: 'plugin.admin',
      body: clearBody.optional().transform((b) => b ?? {}),
      handler: async ({ body, principal }) => {
        everyTenantOnly(principal.claims);
        return service.clearDead(body.plugin);
      },
    }),
  ];
}
