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

/** `# HELP name text` / `# TYPE name kind` lines → name → { help, type }. */
function families(text: string): Map<string, { help?: string; type?: string }> {
  const out = new Map<string, { help?: string; type?: string }>();
  for (const line of text.split('\n')) {
    const m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) ?(.*)$/.exec(line);
    if (!m) continue;
    const entry = out.get(m[2] as string) ?? {};
    if (m[1] === 'HELP') entry.help = m[3];
    else entry.type = m[3];
    out.set(m[2] as string, entry);
  }
  return out;
}

/** The family a sample belongs to: histogram and summary samples carry suffixes. */
function familyOf(name: string, known: Map<string, unknown>): string | undefined {
  if (known.has(name)) return name;
  const base = name.replace(/_(bucket|sum|count|created)$/, '');
  return known.has(base) ? base : undefined;
}

test('metrics - Prometheus conventions: standard process/nodejs names, a request histogram by route pattern, help, types and base units', { timeout: 20_000 }, async () => {
  assert.equal((await server.request('POST', '/v1/aggregates/conv/c-1', { event_type: 'created' })).status, 201);
  assert.equal((await server.request('GET', '/v1/aggregates/conv/c-1')).status, 200);
  assert.equal((await server.request('GET', '/v1/aggregates/conv/c-404')).status, 404);
  // Three different unknown URLs: one bounded label value, and none of the paths in any label.
  for (const path of ['/nope-a1b2', '/v1/nope-c3d4/x', '/v2/aggregates?x=nope-e5f6']) assert.equal((await server.request('GET', path)).status, 404);

  const text = (await server.request('GET', '/metrics')).body as string;
  const samples = parseProm(text);
  const known = families(text);

  // Default metrics under their standard names, not a doubled prefix.
  for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
    assert.ok(samples.some((s) => s.name === name), `${name} is exported`);
  }
  assert.deepEqual(samples.filter((s) => /^eventdbx_(process|nodejs)_/.test(s.name)).map((s) => s.name), [], 'no eventdbx_process_… duplicates');

  // The request histogram: route patterns, status classes, cumulative buckets.
  const duration = (labels: Record<string, string>) => samples.filter((s) => s.name === 'http_request_duration_seconds_bucket' && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.equal(known.get('http_request_duration_seconds')?.type, 'histogram');
  const getOk = duration({ method: 'GET', route: '/v1/aggregates/:type/:id', status_class: '2xx', le: '+Inf' });
  assert.equal(getOk.length, 1);
  assert.ok((getOk[0]?.value ?? 0) >= 1);
  // (Earlier tests in this file answered on these routes too: at least this test's requests.)
  assert.ok((duration({ method: 'GET', route: '/v1/aggregates/:type/:id', status_class: '4xx', le: '+Inf' })[0]?.value ?? 0) >= 1);
  assert.ok((duration({ method: 'POST', route: '/v1/aggregates/:type/:id', status_class: '2xx', le: '+Inf' })[0]?.value ?? 0) >= 1);
  assert.equal(duration({ method: 'GET', route: 'unmatched', status_class: '4xx', le: '+Inf' })[0]?.value, 3, 'unknown routes share one label');
  assert.ok(!/nope-/.test(text), 'no request path reaches a label');
  const routes = new Set(samples.filter((s) => s.name === 'http_request_duration_seconds_count').map((s) => s.labels.route));
  for (const route of routes) assert.ok(route === 'unmatched' || route?.startsWith('/'), `route label ${route} is a pattern`);
  assert.ok([...routes].every((r) => !/c-1|c-404/.test(r ?? '')), 'patterns, never concrete ids');

  // Every sample belongs to a family with help text and a type; units are base units.
  for (const s of samples) {
    const family = familyOf(s.name, known);
    assert.ok(family, `${s.name} has # HELP and # TYPE`);
    const meta = known.get(family);
    assert.ok(meta?.help && meta.help.length > 3, `${family} has help text`);
    assert.ok(meta?.type, `${family} has a type`);
  }
  for (const [name, meta] of known) {
    assert.doesNotMatch(name, /_(ms|milliseconds|millis|kb|mb|percent)(_|$)/, `${name} uses base units`);
    if (meta.type === 'counter') assert.match(name, /_total$/, `counter ${name} ends in _total`);
  }
});

test('metrics - eventdbx_storage_transactions counts the LMDB write transactions (flushes) of each worker environment', { timeout: 20_000 }, async () => {
  const read = async () => parseProm((await server.request('GET', '/metrics')).body).filter((s) => s.name === 'eventdbx_storage_transactions');
  const before = await read();
  assert.ok(before.length >= 1 && before.every((s) => s.labels.worker !== undefined && s.value >= 1), 'one series per worker, each past its first transaction');
  // Sequential writes: each group commit of one request is its own transaction.
  for (const i of range(4)) assert.equal((await server.request('POST', `/v1/aggregates/flushes/f-${i}/events`, { event_type: 'ticked' })).status, 201);
  const after = await read();
  const total = (samples: typeof before) => samples.reduce((n, s) => n + s.value, 0);
  assert.ok(total(after) - total(before) >= 4, `4 sequential writes made ${total(after) - total(before)} transactions`);
});
