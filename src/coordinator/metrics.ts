/**
 * Prometheus metrics (prom-client) on a private registry, so tests can run several servers.
 * Conventions (prometheus.io/docs/practices/naming): base units in the name (`_seconds`, `_bytes`),
 * `_total` on counters, help text on every series; the process_* and nodejs_* defaults keep their
 * standard names so stock dashboards and alerts find them. Labels stay bounded: `route` is the
 * route pattern (`/v1/aggregates/:type/:id`), never a path, and every unmatched URL is one value.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The `route` label of a request no route matched (404s, scans): one value, whatever the URL. */
export const UNMATCHED_ROUTE = 'unmatched';
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);
const REQUEST_SERIES_MAX = 4096;

/** Per-tenant numbers for the tenant-labelled series, already cut to the top N plus `_other` (tenant-metrics.ts). */
export interface TenantMetricsSource {
  appended(): Map<string, number>;
  storage(): Promise<{ aggregates: Map<string, number>; events: Map<string, number>; bytes: Map<string, number> }>;
  /**
   * The same numbers for the named tenants only, uncut (no top N, no `_other`): what a tenant's own
   * scraper is shown when its tenant is not among the top N (routes-system.ts).
   */
  exact(tenants: readonly string[]): Promise<{ appended: Map<string, number>; storage: { aggregates: Map<string, number>; events: Map<string, number>; bytes: Map<string, number> } }>;
}

export class Metrics {
  readonly registry = new Registry();
  /** Set by the server (tenant-hosting.ts); absent, the tenant series stay empty. */
  tenantSource: TenantMetricsSource | undefined;
  readonly requests = new Counter({
    name: 'eventdbx_http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status code',
    labelNames: ['method', 'route', 'status'],
    registers: [this.registry],
  });
  readonly requestDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from receiving a request to sending its answer, by method, route pattern and status class (2xx, 4xx, 5xx)',
    labelNames: ['method', 'route', 'status_class'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly appendLatency = new Histogram({
    name: 'eventdbx_append_duration_seconds',
    help: 'Time from receiving a write until it is durable and answered, in seconds',
    buckets: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly commitBatch = new Histogram({
    name: 'eventdbx_commit_batch_commands',
    help: 'Requests (commands) that shared one group commit in a shard worker',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
    registers: [this.registry],
  });
  readonly commitPipelineDepth = new Histogram({
    name: 'eventdbx_commit_pipeline_depth',
    help: 'Group commits in flight when a group was handed to LMDB (1 = it waited for no other; more = it was prepared while earlier ones flushed)',
    buckets: [1, 2, 3, 4, 8, 16, 32, 64],
    registers: [this.registry],
  });
  readonly eventsAppended = new Counter({
    name: 'eventdbx_events_appended_total',
    help: 'Events appended (writes, batches and imports)',
    registers: [this.registry],
  });
  readonly aggregatesPerShard = new Gauge({
    name: 'eventdbx_shard_aggregates',
    help: 'Aggregates stored per shard',
    labelNames: ['shard'],
    registers: [this.registry],
  });
  readonly pluginQueueJobs = new Gauge({
    name: 'eventdbx_plugin_queue_jobs',
    help: 'Plugin jobs by plugin and state (pending, processing, done, dead)',
    labelNames: ['plugin', 'state'],
    registers: [this.registry],
  });
  readonly pluginJobsInMemory = new Gauge({
    name: 'eventdbx_plugin_jobs_in_memory',
    help: 'Open plugin jobs the dispatcher holds in memory, per plugin (at most [plugins] jobs_in_memory_max, plus loaded lanes)',
    labelNames: ['plugin'],
    registers: [this.registry],
  });
  readonly pluginLag = new Gauge({
    name: 'eventdbx_plugin_lag_seconds',
    help: 'Age of the oldest job not yet delivered, per plugin (0 = caught up)',
    labelNames: ['plugin'],
    registers: [this.registry],
  });
  readonly pluginDeliveryLag = new Histogram({
    name: 'eventdbx_plugin_delivery_seconds',
    help: 'Time from an event being committed to its delivery being acknowledged, per plugin',
    labelNames: ['plugin'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
  readonly pluginDelivered = new Counter({ name: 'eventdbx_plugin_delivered_total', help: 'Jobs delivered, per plugin', labelNames: ['plugin'], registers: [this.registry] });
  readonly pluginAttempts = new Counter({ name: 'eventdbx_plugin_attempts_total', help: 'Delivery attempts of delivered jobs, per plugin', labelNames: ['plugin'], registers: [this.registry] });
  readonly pluginFailures = new Counter({ name: 'eventdbx_plugin_failures_total', help: 'Failed delivery attempts, per plugin', labelNames: ['plugin'], registers: [this.registry] });
  readonly pluginDead = new Counter({ name: 'eventdbx_plugin_dead_total', help: 'Jobs that became dead, per plugin', labelNames: ['plugin'], registers: [this.registry] });
  readonly tenantEventsAppended = new Counter({
    name: 'eventdbx_tenant_events_appended_total',
    help: 'Events appended since start, per tenant (the [tenants] metrics_top_n busiest; the rest as tenant="_other")',
    labelNames: ['tenant'],
    registers: [this.registry],
    collect: () => {
      const values = this.tenantSource?.appended();
      if (!values) return;
      this.tenantEventsAppended.reset();
      for (const [tenant, n] of values) this.tenantEventsAppended.inc({ tenant }, n);
    },
  });
  readonly tenantStorage = new Gauge({
    name: 'eventdbx_tenant_storage',
    help: 'Stored per tenant: kind="aggregates" | "events" (exact) | "bytes" (approximate), for the metrics_top_n largest, the rest as tenant="_other"; refreshed at most every 5 s',
    labelNames: ['tenant', 'kind'],
    registers: [this.registry],
    collect: async () => {
      const storage = await this.tenantSource?.storage();
      if (!storage) return;
      this.tenantStorage.reset();
      for (const kind of ['aggregates', 'events', 'bytes'] as const) {
        for (const [tenant, n] of storage[kind]) this.tenantStorage.set({ tenant, kind }, n);
      }
    },
  });
  /** Set by the server: per worker environment, LMDB's last committed write transaction id. */
  storageSource: (() => number[]) | undefined;
  readonly storageTransactions = new Gauge({
    name: 'eventdbx_storage_transactions',
    help: "LMDB write transactions committed so far in each worker's environment (its last transaction id); each one is a flush: an fdatasync of its pages and a synchronous meta page write. Against eventdbx_commit_batch_commands_count it gives group commits per flush",
    labelNames: ['worker'],
    registers: [this.registry],
    collect: () => {
      const ids = this.storageSource?.();
      if (!ids) return;
      ids.forEach((id, worker) => this.storageTransactions.set({ worker: String(worker) }, id));
    },
  });
  readonly uptime = new Gauge({ name: 'eventdbx_uptime_seconds', help: 'Seconds since the server started', registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** Counts one answered request; `route` is the matched pattern, undefined when none matched. */
  observeRequest(method: string, route: string | undefined, status: number, seconds: number): void {
    const key = `${method} ${status} ${route ?? ''}`;
    let series = this.requestSeries.get(key);
    if (!series) {
      const labels = { method: METHODS.has(method) ? method : 'OTHER', route: route ?? UNMATCHED_ROUTE };
      series = { count: this.requests.labels({ ...labels, status }), duration: this.requestDuration.labels({ ...labels, status_class: `${Math.floor(status / 100)}xx` }) };
      // Bounded like the labels: route patterns × methods × statuses (an unknown method is one key per spelling, so cap it).
      if (this.requestSeries.size < REQUEST_SERIES_MAX) this.requestSeries.set(key, series);
    }
    series.count.inc();
    series.duration.observe(seconds);
  }

  /** Bound label children per (method, status, route): hashing a label object per request costs ~2× the observe itself. */
  private readonly requestSeries = new Map<string, { count: { inc(): void }; duration: { observe(value: number): void } }>();
}
