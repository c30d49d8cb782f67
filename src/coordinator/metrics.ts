/** Prometheus metrics (prom-client) on a private registry, so tests can run several servers. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'eventdbx_http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['method', 'route', 'status'],
    registers: [this.registry],
  });
  readonly appendLatency = new Histogram({
    name: 'eventdbx_append_duration_seconds',
    help: 'Time from receiving a write until it is durable and answered',
    buckets: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly commitBatch = new Histogram({
    name: 'eventdbx_commit_batch_commands',
    help: 'Requests that shared one group commit in a shard worker',
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
    help: 'Events appended',
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
  readonly uptime = new Gauge({ name: 'eventdbx_uptime_seconds', help: 'Seconds since the server started', registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'eventdbx_process_' });
  }
}
