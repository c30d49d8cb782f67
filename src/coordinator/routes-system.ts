/** Health, metrics and status. */
import type { Config } from '../core/index.js';
import type { Metrics } from './metrics.js';
import type { Reader } from './reader.js';
import { defineRoute, type RouteSpec } from './route-spec.js';

/** What `/v1/status` reports; the port is only known once the listener is up. */
export interface StatusSource {
  config: Config;
  dataDir: string;
  workers: number;
  port: () => number;
  /** Throws `unauthorized` unless the header carries a valid token (no action needed). */
  authenticate: (authorization: string | undefined) => void;
}

/** Routes that need a valid token but no particular action (they declare `action: null`). */
export const ANY_TOKEN_ROUTES: ReadonlySet<string> = new Set(['GET /v1/status']);

export function systemRoutes(deps: { metrics: Metrics; reader: Reader; startedAt: string; status: StatusSource }): RouteSpec[] {
  return [
    defineRoute({
      method: 'GET',
      url: '/health',
      summary: 'Liveness: answers once the server accepts writes',
      action: null,
      handler: () => ({ status: 'ok' }),
    }),
    defineRoute({
      method: 'GET',
      url: '/metrics',
      summary: 'Prometheus metrics (token with metrics.read, or open when [metrics] public = true)',
      action: 'metrics.read',
      handler: async ({ reply }) => {
        deps.reader.aggregateCounts().forEach((count, shard) => deps.metrics.aggregatesPerShard.set({ shard: String(shard) }, count));
        deps.metrics.uptime.set((Date.now() - Date.parse(deps.startedAt)) / 1000);
        reply.header('content-type', deps.metrics.registry.contentType);
        return deps.metrics.registry.metrics();
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/status',
      summary: 'Server status for `dbx status`: pid, port, uptime, restriction, shards, workers (any valid token)',
      action: null,
      handler: ({ request }) => {
        const { config, dataDir, workers, port, authenticate } = deps.status;
        authenticate(request.headers.authorization);
        return {
          pid: process.pid,
          port: port(),
          uptime_secs: Math.max(0, Math.floor((Date.now() - Date.parse(deps.startedAt)) / 1000)),
          started_at: deps.startedAt,
          restrict: config.restrict,
          shards: config.tenants.shard_count,
          workers,
          durability: config.storage.durability,
          data_dir: dataDir,
          // Every tenant's aggregates: `dbx config --shard-count` refuses a non-empty store.
          aggregates: deps.reader.aggregateCounts().reduce((a, b) => a + b, 0),
        };
      },
    }),
  ];
}
