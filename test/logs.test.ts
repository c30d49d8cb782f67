/**
 * The server log as a person reads it: one line per 4xx/5xx answer with what is needed to find the
 * cause and nothing a request carries as data; JSON off a terminal, a short (coloured) line when
 * pretty; a start after an unclean exit says so; `[log] level` and EVENTDBX_LOG_LEVEL are honoured.
 * Runs the real `dbx start --foreground` in a child process and reads its stdout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { prettyLine } from '../src/coordinator/log-format.js';
import { httpRequest, removeDir, runDbx, spawnServer, stopSpawned, tempDataDir, type SpawnedServer } from './helpers/server.js';

/** A string that must never reach the log: it rides in a token, a body, a query value. */
const MARKER = 'S3CRET-MARKER-7f3a';

function jsonLines(out: string): Record<string, any>[] {
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, any>);
}

const requestLines = (out: string) => jsonLines(out).filter((l) => typeof l.status === 'number');

/** Waits until the child's stdout satisfies `ok` (log lines are written as the answer is sent). */
async function waitFor(server: SpawnedServer, ok: (out: string) => boolean, what: string): Promise<string> {
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline) {
    if (ok(server.stdout())) return server.stdout();
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`timed out waiting for ${what}; stdout:\n${server.stdout()}`);
}

test('logs - one JSON line per 4xx/5xx answer with method, route, status, code, request id and tenant; never a token, body or query value', { timeout: 60_000 }, async () => {
  const dataDir = tempDataDir();
  const server = await spawnServer({ dataDir, env: { EVENTDBX_LOG_LEVEL: 'info' } });
  try {
    assert.equal((await server.request('POST', '/v1/aggregates/person/p-1', { event_type: 'person_created', payload: { name: 'Ada' } })).status, 201);
    assert.equal((await server.request('GET', '/v1/aggregates/person/p-1')).status, 200);
    const notFound = await server.request('GET', '/v1/aggregates/person/nobody', undefined, { 'x-tenant-id': 'Acme' });
    assert.equal(notFound.status, 404);
    const unauthorized = await httpRequest(server.url, `${MARKER}.${MARKER}.${MARKER}`, 'GET', `/v1/aggregates?filter=name%20%3D%20%27${MARKER}%27`);
    assert.equal(unauthorized.status, 401);
    const invalid = await server.request('POST', '/v1/aggregates/person/p-2', { event_type: 'Not Snake', payload: { secret: MARKER } });
    assert.equal(invalid.status, 400);
    const noRoute = await server.request('GET', `/v1/no-such-route?q=${MARKER}`, undefined, { 'x-request-id': 'client-req-42' });
    assert.equal(noRoute.status, 404);

    const out = await waitFor(server, (o) => requestLines(o).length >= 4, 'four request lines');
    const lines = requestLines(out);
    assert.equal(lines.length, 4, 'one line per refused request, none for the successes');
    const [nf, unauth, bad, none] = lines as [Record<string, any>, Record<string, any>, Record<string, any>, Record<string, any>];
    assert.deepEqual(
      { method: nf.method, route: nf.route, status: nf.status, code: nf.code, tenant: nf.tenant, level: nf.level },
      { method: 'GET', route: '/v1/aggregates/:type/:id', status: 404, code: 'not_found', tenant: 'acme', level: 30 },
    );
    assert.equal(nf.request_id, notFound.headers.get('x-request-id'), 'the logged id is the one the answer carries');
    assert.match(String(nf.request_id), /^[0-9a-f-]{36}$/);
    assert.equal(typeof nf.ms, 'number');
    assert.match(nf.msg, /GET \/v1\/aggregates\/:type\/:id → 404 not_found/);
    assert.deepEqual([unauth.route, unauth.status, unauth.code, unauth.tenant], ['/v1/aggregates', 401, 'unauthorized', 'default']);
    assert.deepEqual([bad.method, bad.route, bad.status, bad.code], ['POST', '/v1/aggregates/:type/:id', 400, 'validation_failed']);
    assert.deepEqual([none.route, none.path, none.status, none.code, none.request_id], [null, '/v1/no-such-route', 404, 'not_found', 'client-req-42']);
    for (const line of lines) assert.equal(line.path === undefined, line.route !== null, 'a concrete path only when no route matched');
    assert.ok(!out.includes(MARKER), 'no token, payload or query value in the log');
    assert.ok(!out.includes('nobody') && !out.includes('p-2'), 'ids of a matched route stay out of the log');
  } finally {
    await stopSpawned(server);
    removeDir(dataDir);
  }
});

test('logs - a start after kill -9 says the previous run did not shut down cleanly; a start after a clean stop does not; pretty lines on request', { timeout: 90_000 }, async () => {
  const dataDir = tempDataDir();
  try {
    const first = await spawnServer({ dataDir, env: { EVENTDBX_LOG_LEVEL: 'info' } });
    assert.equal((await first.request('POST', '/v1/aggregates/person/p-1', { event_type: 'person_created', payload: {} })).status, 201);
    assert.ok(!first.stdout().includes('did not shut down cleanly'), 'a first start has nothing to report');
    first.kill('SIGKILL');
    await first.exited;

    // Pretty and coloured (FORCE_COLOR: the child's stdout is a pipe, not a terminal).
    const second = await spawnServer({ dataDir, env: { EVENTDBX_LOG_LEVEL: 'info', EVENTDBX_LOG_FORMAT: 'pretty', FORCE_COLOR: '1', NO_COLOR: '' } });
    const out = await waitFor(second, (o) => o.includes('did not shut down cleanly'), 'the unclean-exit warning');
    const warning = out.split('\n').find((l) => l.includes('did not shut down cleanly')) ?? '';
    assert.match(warning, /WARN/);
    assert.ok(warning.includes(`pid ${first.child.pid}`), `names the killed pid: ${warning}`);
    assert.ok(warning.includes('\u001b[33m'), 'the level is coloured');
    assert.equal((await second.request('GET', '/v1/aggregates/person/nobody')).status, 404);
    const pretty = await waitFor(second, (o) => o.includes('404 not_found'), 'a pretty request line');
    const line = pretty.split('\n').find((l) => l.includes('404 not_found')) ?? '';
    assert.match(line, /^\S*\d\d:\d\d:\d\d\.\d{3}\S* \S*INFO/);
    assert.match(line, /request_id=\S*[0-9a-f-]{36}/);
    assert.ok(!pretty.split('\n').some((l) => l.startsWith('{')), 'no JSON lines in pretty mode');
    assert.equal(await stopSpawned(second), 0, 'SIGTERM stops cleanly');

    const third = await spawnServer({ dataDir, env: { EVENTDBX_LOG_LEVEL: 'info' } });
    await third.request('GET', '/v1/aggregates/person/nobody');
    await waitFor(third, (o) => requestLines(o).length >= 1, 'a request line');
    assert.ok(!third.stdout().includes('did not shut down cleanly'), `a start after a clean stop reports nothing:\n${third.stdout()}`);
    await stopSpawned(third);
  } finally {
    removeDir(dataDir);
  }
});

test('logs - [log] level in config.toml, EVENTDBX_LOG_LEVEL over it, a bad level refused at start', { timeout: 90_000 }, async () => {
  const dataDir = tempDataDir();
  try {
    writeFileSync(join(dataDir, 'config.toml'), '[log]\nlevel = "warn"\n');
    const quiet = await spawnServer({ dataDir, env: { EVENTDBX_LOG_LEVEL: '' } });
    assert.equal((await quiet.request('GET', '/v1/aggregates/person/nobody')).status, 404);
    await stopSpawned(quiet);
    assert.deepEqual(requestLines(quiet.stdout()), [], `warn: 4xx lines (info) are not written:\n${quiet.stdout()}`);
    assert.match(readFileSync(join(dataDir, 'config.toml'), 'utf8'), /\[log\][^[]*level = "warn"/, 'the setting is kept');

    // The environment wins over the file.
    const verbose = await spawnServer({ dataDir, env: { EVENTDBX_LOG_LEVEL: 'info' } });
    assert.equal((await verbose.request('GET', '/v1/aggregates/person/nobody')).status, 404);
    await waitFor(verbose, (o) => requestLines(o).length === 1, 'the 404 line at info');
    await stopSpawned(verbose);

    const refused = await runDbx(['start', '--foreground', '--data-dir', dataDir, '--port', '0'], { env: { EVENTDBX_LOG_LEVEL: 'loud' }, timeoutMs: 20_000 });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /EVENTDBX_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent \(got 'loud'\)/);
  } finally {
    removeDir(dataDir);
  }
});

test('logs - a pretty line quotes what could forge another line and shows an error stack', () => {
  const line = JSON.stringify({ level: 50, time: Date.UTC(2025, 0, 2, 3, 4, 5, 678), pid: 1, hostname: 'h', msg: 'boom\nINFO fake', path: '/a b\n', err: { type: 'Error', message: 'x', stack: 'Error: x\n    at f (file.js:1:1)' } });
  const out = prettyLine(`${line}\n`, false);
  const [first, ...rest] = out.trimEnd().split('\n');
  assert.equal(first, '03:04:05.678 ERROR boom\\nINFO fake path="/a b\\n"');
  assert.deepEqual(rest, ['    Error: x', '        at f (file.js:1:1)']);
  assert.match(prettyLine(line, true), /\u001b\[31mERROR/);
  assert.equal(prettyLine('not json', false), 'not json\n');
});

test('logs - a pretty request line does not repeat what its message says', () => {
  const line = JSON.stringify({ level: 30, time: 0, msg: 'GET /v1/aggregates/:type/:id → 404 not_found', method: 'GET', route: '/v1/aggregates/:type/:id', status: 404, code: 'not_found', tenant: 'acme', ms: 0.4, request_id: 'r-1' });
  assert.equal(prettyLine(line, false), '00:00:00.000 INFO  GET /v1/aggregates/:type/:id → 404 not_found tenant=acme ms=0.4 request_id=r-1\n');
});
