/** Metrics (DESIGN §6): Prometheus text behind metrics.read, with the series operators rely on. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { issueToken, readConfig } from '../src/core/index.js';
import { httpRequest, removeDir, startServerInProcess, useServer } from './helpers/server.js';
import { assertError, range } from './helpers/assertions.js';

const server = useServer();

/** `name{a="x",b="y"} value` lines → [{ name, labels, value }] (comments skipped). */
function parseProm(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  const out: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const pair of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1] as string] = pair[2] as string;
    out.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return out;
}

function value(samples: ReturnType<typeof parseProm>, name: string, labels: Record<string, string> = {}): number {
  const hit = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return hit.reduce((sum, s) => sum + s.value, 0);
}

test('metrics - /metrics needs a token with metrics.read', { timeout: 20_000 }, async () => {
  const auth = readConfig(server.dataDir).config.auth;
  assertError(await httpRequest(server.url, undefined, 'GET', '/metrics'), 401, 'unauthorized');
  const reader = issueToken(auth, { group: 'g', user: 'u', actions: ['aggregate.read'] }).token;
  assertError(await httpRequest(server.url, reader, 'GET', '/metrics'), 403, 'forbidden');
  const scraper = issueToken(auth, { group: 'g', user: 'u', actions: ['metrics.read'] }).token;
  const res = await httpRequest(server.url, scraper, 'GET', '/metrics');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  assert.match(res.body, /# TYPE eventdbx_http_requests_total counter/);
});

test('metrics - requests by route and status, append latency, commit batches, events appended, aggregates per shard', { timeout: 20_000 }, async () => {
  for (const i of range(5)) assert.equal((await server.request('POST', `/v1/aggregates/meter/m-${i}`, { event_type: 'created' })).status, 201);
  assert.equal((await server.request('POST', '/v1/aggregates/meter/m-1', { event_type: 'created' })).status, 409);
  const burst = await Promise.all(range(20).map((i) => server.request('POST', `/v1/aggregates/meter/m-${(i % 6) + 1}/events`, { event_type: 'ticked' })));
  assert.ok(burst.every((r) => r.status === 201));
  assert.equal((await server.request('GET', '/v1/aggregates/meter/m-404')).status, 404);

  const res = await server.request('GET', '/metrics');
  assert.equal(res.status, 200);
  const samples = parseProm(res.body);
  const requests = (route: string, status: string) => value(samples, 'eventdbx_http_requests_total', { method: 'POST', route, status });
  assert.equal(requests('/v1/aggregates/:type/:id', '201'), 5);
  assert.equal(requests('/v1/aggregates/:type/:id', '409'), 1);
  assert.equal(requests('/v1/aggregates/:type/:id/events', '201'), 20);
  assert.equal(value(samples, 'eventdbx_http_requests_total', { method: 'GET', route: '/v1/aggregates/:type/:id', status: '404' }), 1);

  // Histogram: cumulative buckets ending in +Inf, count equal to the acknowledged writes.
  assert.equal(value(samples, 'eventdbx_append_duration_seconds_count'), 25);
  assert.equal(value(samples, 'eventdbx_append_duration_seconds_bucket', { le: '+Inf' }), 25);
  const buckets = samples.filter((s) => s.name === 'eventdbx_append_duration_seconds_bucket').map((s) => s.value);
  assert.ok(buckets.length > 3);
  assert.deepEqual(buckets, [...buckets].sort((a, b) => a - b), 'buckets are cumulative');
  assert.ok(value(samples, 'eventdbx_append_duration_seconds_sum') > 0);

  const batches = value(samples, 'eventdbx_commit_batch_commands_count');
  const commands = value(samples, 'eventdbx_commit_batch_commands_sum');
  assert.ok(batches >= 1 && batches <= commands, `${batches} batches of ${commands} commands`);
  assert.ok(commands >= 26, 'every command sent to a worker is counted, refused ones too');

  assert.equal(value(samples, 'eventdbx_events_appended_total'), 25);
  const perShard = samples.filter((s) => s.name === 'eventdbx_shard_aggregates');
  assert.deepEqual(perShard.map((s) => s.labels.shard).sort(), ['0', '1', '2', '3']);
  assert.equal(perShard.reduce((n, s) => n + s.value, 0), 6);
});

test('metrics - [metrics] public = true opens /metrics without a token', { timeout: 20_000 }, async () => {
  const open = await startServerInProcess({ configToml: '[metrics]\npublic = true\n' });
  try {
    const res = await httpRequest(open.url, undefined, 'GET', '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.body, /eventdbx_uptime_seconds/);
    assertError(await httpRequest(open.url, undefined, 'GET', '/v1/aggregates'), 401, 'unauthorized');
  } finally {
    await open.stop();
    removeDir(open.dataDir);
  }
});
