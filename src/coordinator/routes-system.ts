/** Health and metrics. */
import type { Metrics } from './metrics.js';
import type { Reader } from './reader.js';
import { defineRoute, type RouteSpec } from './route-spec.js';

export function systemRoutes(deps: { metrics: Metrics; reader: Reader; startedAt: string }): RouteSpec[] {
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
  ];
}
