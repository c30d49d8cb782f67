/**
 * A hardened edge (issue 10 item 7): loopback by default with a warning beyond it without TLS;
 * header, URL and body limits; deep and huge-number JSON refused with 400; CORS off unless
 * configured; an optional per-token rate limit (429 + Retry-After); no stack, path or library text
 * in any answer; nothing about tenants or tokens for a caller without a token.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { request } from 'undici';
import { ERROR_CATALOGUE, configSchema, issueToken, readConfig } from '../src/core/index.js';
import { RateLimiter } from '../src/coordinator/rate-limit.js';
import { exposureWarning } from '../src/cli/commands-server.js';
import { isLoopbackHost } from '../src/cli/session.js';
import { httpRequest, removeDir, spawnServer, startServerInProcess, stopSpawned, type TestServer } from './helpers/server.js';

/** A (defaults): everything off. B: CORS for one origin, a per-token rate limit, public metrics. */
let a: TestServer;
let b: TestServer;
const ALLOWED_ORIGIN = 'https://app.example';
const HIDDEN_TENANT = 'acme-hidden';

before(async () => {
  a = await startServerInProcess();
  b = await startServerInProcess({
    configToml: [
      '[http.cors]',
      'enabled = true',
      `origins = ["${ALLOWED_ORIGIN}"]`,
      'max_age_secs = 120',
      '[http.rate_limit]',
      // One request per 2 s after a burst of 3: the test's quick requests never earn a refill.
      'per_token_per_sec = 0.5',
      'burst = 3',
      '[metrics]',
      'public = true',
      '',
    ].join('\n'),
  });
});
after(async () => {
  for (const s of [a, b]) {
    await s.stop();
    removeDir(s.dataDir);
  }
});

function tokenFor(server: TestServer): { token: string; jti: string } {
  const { token, claims } = issueToken(readConfig(server.dataDir).config.auth, { group: 'team', user: 'edge', actions: ['*'] });
  return { token, jti: claims.jti };
}

const jtiOf = (token: string): string => JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString('utf8')).jti;

/** Text that must never be in an answer: stacks, file paths, library names and their messages. */
const LEAK = new RegExp(
  [
    '\\bat [\\w.<>]+ \\(', 'node_modules', '/tmp/', '/work/', '\\.[cm]?[jt]s:\\d+', 'FST_ERR', 'SyntaxError', 'RangeError', 'TypeError', 'Maximum call stack',
    'Unexpected token', 'zod', 'lmdb', 'fastify', 'undici', 'secure-json-parse', 'Client Error', 'Bad Request"',
    // fastify's own sentences for what a client can get wrong
    'content-type is set to', 'is not a valid url component', 'exceeding the max param length', 'Request body is too large', 'Unsupported Media Type',
    'did not match Content-Length', 'Exceeded maximum allowed HTTP header size', 'forbidden prototype property',
  ].join('|'),
  'i',
);

/** An answer in the error model (DESIGN §6) and nothing else. */
function assertCleanError(res: { status: number; body: unknown; text: string }, status: number, code: string, what: string): void {
  assert.equal(res.status, status, `${what}: status (${res.text.slice(0, 200)})`);
  const body = res.body as { error?: Record<string, unknown> };
  assert.ok(body && typeof body === 'object' && body.error, `${what}: error envelope`);
  assert.deepEqual(Object.keys(body).sort(), ['error'], `${what}: only "error" at the top`);
  assert.equal(body.error.code, code, `${what}: code`);
  assert.ok(code in ERROR_CATALOGUE, `${what}: a catalogued code`);
  assert.equal(typeof body.error.message, 'string', `${what}: a message`);
  for (const key of Object.keys(body.error)) assert.ok(['code', 'message', 'details'].includes(key), `${what}: unexpected field ${key}`);
  assert.doesNotMatch(res.text, LEAK, `${what}: nothing internal in the answer`);
}

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  body: unknown;
}

async function send(server: TestServer, method: string, path: string, options: { headers?: Record<string, string>; body?: string; token?: string | null } = {}): Promise<Raw> {
  const token = options.token === undefined ? server.token : options.token;
  const res = await request(`${server.url}${path}`, {
    method: method as 'GET',
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...options.headers },
    ...(options.body !== undefined ? { body: options.body } : {}),
    headersTimeout: 20_000,
    bodyTimeout: 20_000,
  });
  const text = await res.body.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  return { status: res.statusCode, headers: res.headers, text, body };
}

const json = (body: string): { headers: Record<string, string>; body: string } => ({ headers: { 'content-type': 'application/json' }, body });

/** Bytes the HTTP parser itself refuses (a raw socket: no client would send them). */
function rawExchange(port: number, bytes: string): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => socket.destroy(new Error('no answer in 5 s')), 5000);
    socket.on('data', (d: Buffer) => (out += d.toString('utf8')));
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      const [head = '', text = ''] = out.split('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      resolve({ status, headers: {}, text: out, body });
    });
    socket.write(bytes);
  });
}

test('security-edge - [http] host defaults to loopback; dbx start warns beyond loopback without TLS', () => {
  const config = configSchema.parse({});
  assert.equal(config.http.host, '127.0.0.1');
  assert.equal(config.http.cors.enabled, false);
  assert.equal(config.http.rate_limit.per_token_per_sec, 0, 'the rate limit is off by default');
  for (const host of ['127.0.0.1', '127.8.9.10', 'localhost', '::1', '[::1]']) {
    assert.ok(isLoopbackHost(host), host);
    assert.equal(exposureWarning(configSchema.parse({ http: { host } })), undefined, host);
  }
  for (const host of ['0.0.0.0', '::', '192.0.2.7', 'db.example.com']) {
    assert.ok(!isLoopbackHost(host), host);
    assert.match(exposureWarning(configSchema.parse({ http: { host } })) ?? '', /^warning: listening on .* without TLS/, host);
  }
  const tls = configSchema.parse({ http: { host: '0.0.0.0', tls_cert_file: 'c.pem', tls_key_file: 'k.pem' } });
  assert.equal(exposureWarning(tls), undefined, 'TLS on: no warning');
});

test('security-edge - dbx start --foreground on 0.0.0.0 without TLS prints the warning on stderr', { timeout: 40_000 }, async () => {
  const spawned = await spawnServer({ configToml: '[http]\nhost = "0.0.0.0"\n' });
  try {
    const deadline = Date.now() + 5000;
    while (!/warning: listening on 0\.0\.0\.0/.test(spawned.stderr()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.match(spawned.stderr(), /warning: listening on 0\.0\.0\.0, beyond loopback, without TLS/);
    assert.match(spawned.stderr(), /tls_cert_file/);
  } finally {
    await stopSpawned(spawned);
    removeDir(spawned.dataDir);
  }
});

test('security-edge - malformed requests all answer the error model with nothing internal in them', { timeout: 30_000 }, async () => {
  const cases: [string, Promise<Raw>, number, string][] = [
    ['bad JSON', send(a, 'POST', '/v1/aggregates/person/m-1', json('{"event_type":')), 400, 'invalid_input'],
    ['a __proto__ key', send(a, 'POST', '/v1/aggregates/person/m-1', json('{"event_type":"e","payload":{"__proto__":{"admin":true}}}')), 400, 'invalid_input'],
    ['empty JSON body on create', send(a, 'POST', '/v1/aggregates/person/m-1', json('')), 400, 'invalid_input'],
    ['text/plain body', send(a, 'POST', '/v1/aggregates/person/m-1', { headers: { 'content-type': 'text/plain' }, body: 'hello' }), 400, 'validation_failed'],
    ['application/xml body', send(a, 'POST', '/v1/aggregates/person/m-1', { headers: { 'content-type': 'application/xml' }, body: '<a/>' }), 400, 'invalid_input'],
    ['a whole body of 1e999', send(a, 'POST', '/v1/aggregates/person/m-1', json('1e999')), 400, 'validation_failed'],
    ['bad percent-encoding', send(a, 'GET', '/v1/aggregates/person/%E0%A4%A'), 400, 'invalid_input'],
    ['a lone surrogate in the path', send(a, 'GET', '/v1/aggregates/person/x%ED%A0%80'), 400, 'invalid_input'],
    ['a NUL in an id', send(a, 'GET', '/v1/aggregates/person/x%00y'), 400, 'validation_failed'],
    ['an over-long path segment', send(a, 'GET', `/v1/aggregates/person/${'x'.repeat(300)}`), 400, 'invalid_input'],
    ['OPTIONS without CORS', send(a, 'OPTIONS', '/v1/aggregates', { headers: { origin: ALLOWED_ORIGIN, 'access-control-request-method': 'POST' } }), 404, 'not_found'],
    ['an unknown method', send(a, 'PATCH', '/v1/aggregates/person/m-1'), 404, 'not_found'],
    ['a body over body_limit_bytes', send(a, 'POST', '/v1/aggregates/person/m-1', json(`{"event_type":"e","payload":{"x":"${'a'.repeat(1_100_000)}"}}`)), 413, 'payload_too_large'],
    ['headers over header_bytes_max', send(a, 'GET', '/v1/aggregates', { headers: { 'x-filler': 'a'.repeat(40_000) } }), 431, 'headers_too_large'],
    ['a URL over url_bytes_max', send(a, 'GET', `/v1/aggregates?filter=${'a'.repeat(20_000)}`), 414, 'uri_too_long'],
    ['a garbage token', send(a, 'GET', '/v1/aggregates', { token: 'not.a.jwt' }), 401, 'unauthorized'],
    ['an invalid request method token', rawExchange(a.port, 'FOO / HTTP/1.1\r\nHost: x\r\n\r\n'), 400, 'invalid_input'],
    ['binary garbage', rawExchange(a.port, '\u0000\u0001\u0002 nonsense\r\n\r\n'), 400, 'invalid_input'],
    ['a NUL in a header', rawExchange(a.port, 'GET /health HTTP/1.1\r\nHost: x\r\nX-Tenant-Id: a\u0000b\r\n\r\n'), 400, 'invalid_input'],
    ['a non-numeric Content-Length', rawExchange(a.port, 'POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}'), 400, 'invalid_input'],
  ];
  for (const [what, pending, status, code] of cases) assertCleanError(await pending, status, code, what);
  assert.equal((await send(a, 'GET', '/health')).status, 200, 'still serving after all of it');
});

test('security-edge - 5,000-deep and huge-number values are refused with 400 wherever a write carries JSON, and nothing is stored', { timeout: 60_000 }, async () => {
  const deep = (levels: number): string => `${'['.repeat(levels)}1${']'.repeat(levels)}`;
  const created = await send(a, 'POST', '/v1/aggregates/person/n-1', json('{"event_type":"person_created","payload":{"a":1}}'));
  assert.equal(created.status, 201);
  const values = [deep(5000), '1e999', '-1e999', '123456789012345678901234567890'];
  for (const v of values) {
    const bodies: [string, string][] = [
      ['/v1/aggregates/person/n-new', `{"event_type":"person_created","payload":{"x":${v}}}`],
      ['/v1/aggregates/person/n-1/events', `{"event_type":"person_changed","payload":{"x":${v}}}`],
      ['/v1/aggregates/person/n-1/events', `{"event_type":"person_changed","payload":{},"metadata":{"@x":${v}}}`],
      ['/v1/aggregates/person/n-1/patch', `{"event_type":"person_patched","patch":[{"op":"add","path":"/x","value":${v}}]}`],
      ['/v1/events', `{"aggregate_type":"person","aggregate_id":"n-1","event_type":"person_changed","payload":{"x":${v}}}`],
      ['/v1/batch', `{"events":[{"aggregate_type":"person","aggregate_id":"n-new","event_type":"person_created","payload":{"x":${v}}}]}`],
      ['/v1/batch', `{"events":[{"aggregate_type":"person","aggregate_id":"n-1","event_type":"person_patched","patch":[{"op":"replace","path":"/a","value":${v}}]}]}`],
      ['/v1/schemas/person/validate', `{"event_type":"person_changed","payload":{"x":${v}}}`],
    ];
    for (const [path, body] of bodies) assertCleanError(await send(a, 'POST', path, json(body)), 400, 'validation_failed', `${path} with ${v.slice(0, 12)}`);
  }
  // A body nested half a million levels (the whole 1 MiB) is no different.
  assertCleanError(await send(a, 'POST', '/v1/aggregates/person/n-new', json(`{"event_type":"e","payload":{"x":${deep(500_000)}}}`)), 400, 'validation_failed', '500k levels');
  assertCleanError(await send(a, 'POST', '/v1/aggregates/person/n-1/events', json('{"event_type":"e","payload":{},"expected_version":1e999}')), 400, 'validation_failed', 'expected_version 1e999');
  const head = await send(a, 'GET', '/v1/aggregates/person/n-1');
  assert.equal(head.status, 200);
  assert.deepEqual((head.body as { version: number; state: unknown }).state, { a: 1 }, 'not stored as null, not stored at all');
  assert.equal((head.body as { version: number }).version, 1);
  assert.equal((await send(a, 'GET', '/v1/aggregates/person/n-new')).status, 404);
});

test('security-edge - NUL is kept exactly in payloads; lone surrogates are refused in values, keys and ids', { timeout: 20_000 }, async () => {
  const nul = await send(a, 'POST', '/v1/aggregates/person/u-1', json('{"event_type":"person_created","payload":{"x":"a\\u0000b"}}'));
  assert.equal(nul.status, 201);
  assert.equal((nul.body as { state: { x: string } }).state.x, 'a\u0000b');
  assertCleanError(await send(a, 'POST', '/v1/aggregates/person/u-2', json('{"event_type":"person_created","payload":{"x":"a\\ud800b"}}')), 400, 'validation_failed', 'lone surrogate value');
  assertCleanError(await send(a, 'POST', '/v1/aggregates/person/u-2', json('{"event_type":"person_created","payload":{"\\udc00":1}}')), 400, 'validation_failed', 'lone surrogate key');
  assertCleanError(await send(a, 'POST', '/v1/aggregates/person/u-2', json('{"event_type":"person\\u0000created","payload":{}}')), 400, 'validation_failed', 'NUL in an event type');
  assertCleanError(await send(a, 'POST', '/v1/events', json('{"aggregate_type":"person","aggregate_id":"u\\ud800","event_type":"e","payload":{}}')), 400, 'validation_failed', 'lone surrogate id');
});

test('security-edge - CORS is off by default: no CORS header, a preflight is a 404', { timeout: 20_000 }, async () => {
  const get = await send(a, 'GET', '/health', { headers: { origin: ALLOWED_ORIGIN } });
  assert.equal(get.status, 200);
  assert.equal(get.headers['access-control-allow-origin'], undefined);
  const preflight = await send(a, 'OPTIONS', '/v1/aggregates/person/c-1', { headers: { origin: ALLOWED_ORIGIN, 'access-control-request-method': 'POST' }, token: null });
  assertCleanError(preflight, 404, 'not_found', 'preflight with CORS off');
  assert.equal(preflight.headers['access-control-allow-origin'], undefined);
});

test('security-edge - CORS when enabled: listed origins only, preflights answered without a token', { timeout: 20_000 }, async () => {
  const preflight = await send(b, 'OPTIONS', '/v1/aggregates/person/c-1', {
    headers: { origin: ALLOWED_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    token: null,
  });
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers['access-control-allow-origin'], ALLOWED_ORIGIN);
  assert.match(String(preflight.headers['access-control-allow-methods']), /POST/);
  assert.match(String(preflight.headers['access-control-allow-headers']), /authorization/);
  assert.equal(preflight.headers['access-control-max-age'], '120');
  assert.equal(preflight.headers['access-control-allow-credentials'], undefined, 'bearer tokens, never cookies');
  const get = await send(b, 'GET', '/health', { headers: { origin: ALLOWED_ORIGIN } });
  assert.equal(get.headers['access-control-allow-origin'], ALLOWED_ORIGIN);
  assert.match(String(get.headers.vary), /origin/i);
  assert.match(String(get.headers['access-control-expose-headers']), /retry-after/);
  const other = await send(b, 'GET', '/health', { headers: { origin: 'https://evil.example' } });
  assert.equal(other.status, 200);
  assert.equal(other.headers['access-control-allow-origin'], undefined);
  const otherPreflight = await send(b, 'OPTIONS', '/v1/aggregates', { headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' }, token: null });
  assertCleanError(otherPreflight, 404, 'not_found', 'preflight from an unlisted origin');
});

test('security-edge - RateLimiter: a burst, then one request per refill, Retry-After in whole seconds, bounded memory', () => {
  const limiter = new RateLimiter({ perSec: 1, burst: 3, keysMax: 100 });
  for (let i = 0; i < 3; i++) assert.deepEqual(limiter.take('k', 0), { ok: true });
  assert.deepEqual(limiter.take('k', 0), { ok: false, retryAfterSecs: 1 });
  assert.deepEqual(limiter.take('k', 999), { ok: false, retryAfterSecs: 1 });
  assert.deepEqual(limiter.take('k', 1000), { ok: true }, 'refilled after a second');
  assert.deepEqual(limiter.take('other', 1000), { ok: true }, 'keys are independent');
  const slow = new RateLimiter({ perSec: 0.2, burst: 0, keysMax: 10 });
  assert.deepEqual(slow.take('k', 0), { ok: true }, 'burst 0 = one second worth, at least 1');
  assert.deepEqual(slow.take('k', 0), { ok: false, retryAfterSecs: 5 });
  const fast = new RateLimiter({ perSec: 5, burst: 0, keysMax: 10 });
  for (let i = 0; i < 5; i++) assert.ok(fast.take('k', 0).ok);
  assert.ok(!fast.take('k', 0).ok);
  // Memory: 10,000 keys through a limiter that holds 100. The most recent key keeps its state.
  for (let i = 0; i < 10_000; i++) limiter.take(`key-${i}`, 2000);
  assert.ok(limiter.size <= 100, `${limiter.size} buckets`);
  for (let i = 0; i < 3; i++) limiter.take('hot', 2000);
  assert.equal(limiter.take('hot', 2000).ok, false, 'a recently seen key is not forgotten');
  assert.throws(() => new RateLimiter({ perSec: 0, burst: 1, keysMax: 1 }), RangeError);
});

test('security-edge - the per-token rate limit answers 429 rate_limited with Retry-After, per token, after authentication', { timeout: 30_000 }, async () => {
  const first = tokenFor(b);
  const second = tokenFor(b);
  for (let i = 0; i < 3; i++) assert.equal((await send(b, 'GET', '/v1/aggregates', { token: first.token })).status, 200, `burst request ${i + 1}`);
  const limited = await send(b, 'GET', '/v1/aggregates', { token: first.token });
  assertCleanError(limited, 429, 'rate_limited', 'over the limit');
  const retryAfter = Number(limited.headers['retry-after']);
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 2, `Retry-After: ${String(limited.headers['retry-after'])}`);
  assert.equal((limited.body as { error: { details: { retry_after_secs: number } } }).error.details.retry_after_secs, retryAfter);
  // A write over the limit is refused before anything happens.
  const write = await send(b, 'POST', '/v1/aggregates/person/r-1', { ...json('{"event_type":"person_created","payload":{}}'), token: first.token });
  assert.equal(write.status, 429);
  assert.equal((await send(b, 'GET', '/v1/aggregates', { token: second.token })).status, 200, 'another token has its own bucket');
  assertCleanError(await send(b, 'GET', '/v1/aggregates', { token: 'not.a.jwt' }), 401, 'unauthorized', 'no token: 401, not 429');
  for (let i = 0; i < 5; i++) assert.equal((await send(b, 'GET', '/health', { token: null })).status, 200, '/health is not limited');
  await new Promise((r) => setTimeout(r, retryAfter * 1000));
  assert.equal((await send(b, 'GET', '/v1/aggregates', { token: first.token })).status, 200, 'after Retry-After the token works again');
  assert.equal((await send(b, 'GET', '/v1/aggregates/person/r-1', { token: second.token })).status, 404, 'the refused write was not applied');
});

test('security-edge - without the rate limit (the default) quick requests are never refused', { timeout: 20_000 }, async () => {
  const statuses = await Promise.all(Array.from({ length: 40 }, () => send(a, 'GET', '/v1/aggregates').then((r) => r.status)));
  assert.deepEqual(new Set(statuses), new Set([200]));
});

test('security-edge - /metrics, /v1/status and /openapi.json tell a caller without a token nothing about tenants or tokens', { timeout: 30_000 }, async () => {
  for (const server of [a, b]) {
    const writer = tokenFor(server);
    const wrote = await send(server, 'POST', '/v1/aggregates/person/t-1', { ...json('{"event_type":"person_created","payload":{}}'), headers: { 'content-type': 'application/json', 'x-tenant-id': HIDDEN_TENANT }, token: writer.token });
    assert.equal(wrote.status, 201, wrote.text);
    const secrets = [HIDDEN_TENANT, writer.jti, jtiOf(server.token), 'team:edge', server.dataDir];
    const clean = (text: string, what: string): void => {
      for (const secret of secrets) assert.ok(!text.includes(secret), `${what} must not mention ${secret}`);
    };
    const status = await httpRequest(server.url, undefined, 'GET', '/v1/status');
    assert.equal(status.status, 401);
    clean(JSON.stringify(status.body), '/v1/status');
    const openapi = await send(server, 'GET', '/openapi.json', { token: null });
    assert.ok(openapi.status === 200 || openapi.status === 401, `openapi ${openapi.status}`);
    clean(openapi.text, '/openapi.json');
    const metrics = await send(server, 'GET', '/metrics', { token: null });
    if (server === a) {
      assertCleanError(metrics, 401, 'unauthorized', '/metrics without a token');
    } else {
      assert.equal(metrics.status, 200, '[metrics] public = true');
      clean(metrics.text, '/metrics');
      const labels = new Set([...metrics.text.matchAll(/[{,]([a-z_]+)="/g)].map((m) => m[1]));
      for (const label of labels) assert.ok(['method', 'route', 'status', 'status_class', 'shard', 'worker', 'le', 'quantile', 'version', 'major', 'minor', 'patch', 'type', 'space', 'kind'].includes(label as string), `unexpected metrics label ${label}`);
    }
  }
});
