/**
 * Findings of an audit of issue 11 (plugins, 2026-12-07), each pinned: checking a configuration
 * that is then refused leaves the running plugin's deliveries alone; http headers that would break
 * every delivery are refused when configured; a `plugin.admin` token valid for every tenant manages
 * every plugin and the queue (the host-reaching kinds stay for a server administrator); a refused
 * configuration names the key and the reason in its message, which the CLI prints.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { httpRequest, removeDir, startServerInProcess, type TestServer } from './helpers/server.js';
import { assertError } from './helpers/assertions.js';
import { until } from './helpers/deadline.js';

let server: TestServer;
before(async () => {
  // One attempt: a delivery the check broke would go dead at once (before the fix: all of them).
  server = await startServerInProcess({ configToml: 'plugin_max_attempts = 1\n[tenants]\nmulti_tenant = true\n[plugins]\nretry_base_ms = 10\nretry_max_ms = 20\n' });
});
after(async () => {
  await server.stop();
  removeDir(server.dataDir);
});

const D = { 'x-tenant-id': 'default' };

async function listen(onSocket: (socket: Socket) => void): Promise<Server> {
  const tcp = createServer(onSocket);
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
  return tcp;
}

async function closedPort(): Promise<number> {
  const probe = await listen(() => undefined);
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

test('review-findings-13 - a configuration refused by its connectivity check leaves the running plugin delivering', { timeout: 30_000 }, async () => {
  const received: string[] = [];
  // Acks each line 1.5 s late, so deliveries are in flight when the refused configuration is checked.
  const receiver = await listen((socket) => {
    let buffer = '';
    socket.on('error', () => undefined);
    socket.on('data', (chunk) => {
      buffer += chunk.toString('utf8');
      let at: number;
      while ((at = buffer.indexOf('\n')) >= 0) {
        const event = JSON.parse(buffer.slice(0, at)) as { aggregate_id: string; version: number };
        buffer = buffer.slice(at + 1);
        received.push(`${event.aggregate_id}@${event.version}`);
        setTimeout(() => socket.writable && socket.write('ok\n'), 1500);
      }
    });
  });
  try {
    const port = (receiver.address() as AddressInfo).port;
    assert.equal((await server.request('PUT', '/v1/plugins/feed', { options: { kind: 'tcp', host: '127.0.0.1', port } }, D)).status, 200);
    for (let a = 0; a < 6; a++) assert.equal((await server.request('POST', `/v1/aggregates/feed/f-${a}/events`, { event_type: 'fed', payload: { a } }, D)).status, 201);
    await until(5000, () => received.length === 6, 'six deliveries in flight');
    const refused = await server.request('PUT', '/v1/plugins/feed', { options: { kind: 'tcp', host: '127.0.0.1', port: await closedPort() } }, D);
    assertError(refused, 503, 'unavailable');
    assert.equal((await server.request('GET', '/v1/plugins/feed', undefined, D)).body.options.port, port, 'the stored configuration is unchanged');
    await until(10_000, async () => (await server.request('GET', '/v1/queue', undefined, D)).body.plugins.find((p: { plugin: string }) => p.plugin === 'feed')?.done === 6, 'all six delivered');
    const counts = (await server.request('GET', '/v1/queue', undefined, D)).body.plugins.find((p: { plugin: string }) => p.plugin === 'feed');
    assert.equal(counts.dead, 0, 'no delivery failed because of the check');
    assert.equal(received.length, 6, `each event delivered once: ${received.join(' ')}`);
    await server.request('POST', '/v1/plugins/feed/disable', {}, D);
    await server.request('DELETE', '/v1/plugins/feed', undefined, D);
  } finally {
    receiver.close();
  }
});

test('review-findings-13 - http headers that would break every delivery are refused, naming the header, and nothing is stored', { timeout: 20_000 }, async () => {
  const bad: [Record<string, string>, RegExp][] = [
    [{ 'x-a': 'v\r\nx-injected: 1' }, /options\.headers\.x-a: .*CR, LF/],
    [{ 'x-nul': 'a\u0000b' }, /options\.headers\.x-nul/],
    [{ 'Content-Length': '1' }, /options\.headers\.Content-Length: is set by the HTTP connection/],
    [{ 'transfer-encoding': 'chunked' }, /options\.headers\.transfer-encoding/],
    [{ host: 'elsewhere' }, /options\.headers\.host/],
    [{ 'idempotency-key': 'mine' }, /options\.headers\.idempotency-key: is set by the deliverer/],
  ];
  for (const [headers, named] of bad) {
    const res = await server.request('PUT', '/v1/plugins/hdr', { enabled: false, options: { kind: 'http', endpoint: 'http://127.0.0.1:1/x', headers } }, D);
    assertError(res, 400, 'validation_failed');
    assert.match(res.body.error.message, named, JSON.stringify(res.body));
    assert.ok(Array.isArray(res.body.error.details) && res.body.error.details.length >= 1, 'details list the key');
    assertError(await server.request('GET', '/v1/plugins/hdr', undefined, D), 404, 'not_found');
  }
  const fine = await server.request('PUT', '/v1/plugins/hdr', { enabled: false, options: { kind: 'http', endpoint: 'http://127.0.0.1:1/x', headers: { authorization: 'Bearer x', 'x-tab': 'a\tb' } } }, D);
  assert.equal(fine.status, 200, JSON.stringify(fine.body));
  await server.request('DELETE', '/v1/plugins/hdr', undefined, D);
  // A schema failure names its key in the message too.
  const unknown = await server.request('PUT', '/v1/plugins/hdr', { enabled: false, options: { kind: 'http', endpoint: 'http://127.0.0.1:1/x', timeout_ms: 50 } }, D);
  assertError(unknown, 400, 'validation_failed');
  assert.match(unknown.body.error.message, /the plugin configuration is invalid: options\.timeout_ms: /);
});

test('review-findings-13 - a plugin.admin token for every tenant manages server-wide plugins and the queue; host-reaching kinds stay for a server administrator', { timeout: 20_000 }, async () => {
  const issue = async (tenants: string[]) => {
    const res = await server.request('POST', '/v1/tokens', { group: 'ops', user: 'plugins', actions: ['plugin.admin'], tenants }, D);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body.token as string;
  };
  const every = await issue(['*']);
  const as = (token: string, method: string, path: string, body?: unknown) => httpRequest(server.url, token, method, path, body, D);
  assert.equal((await server.request('PUT', '/v1/plugins/wide', { enabled: false, options: { kind: 'http', endpoint: 'http://127.0.0.1:1/x' } }, D)).status, 200);
  const listed = await as(every, 'GET', '/v1/plugins');
  assert.ok(listed.body.items.some((p: { name: string }) => p.name === 'wide'), JSON.stringify(listed.body));
  assert.equal((await as(every, 'GET', '/v1/plugins/wide')).status, 200);
  const queue = await as(every, 'GET', '/v1/queue');
  assert.equal(queue.status, 200, JSON.stringify(queue.body));
  assert.ok(queue.body.plugins.some((p: { plugin: string }) => p.plugin === 'wide'));
  assert.equal((await as(every, 'POST', '/v1/queue/retry', {})).status, 200);
  assert.equal((await as(every, 'POST', '/v1/queue/clear', {})).status, 200);
  const replaced = await as(every, 'PUT', '/v1/plugins/wide', { enabled: false, options: { kind: 'http', endpoint: 'http://127.0.0.1:2/y' } });
  assert.equal(replaced.status, 200, JSON.stringify(replaced.body));
  const hostly = await as(every, 'PUT', '/v1/plugins/cmd', { enabled: false, options: { kind: 'process', command: '/bin/true' } });
  assertError(hostly, 403, 'forbidden');
  assert.match(hostly.body.error.message, /server administrator/);
  assert.equal((await as(every, 'DELETE', '/v1/plugins/wide')).status, 200);
  // A token of some tenants still sees neither the queue nor server-wide plugins.
  const some = await issue(['default']);
  assertError(await as(some, 'GET', '/v1/queue'), 403, 'forbidden');
  assertError(await as(some, 'PUT', '/v1/plugins/wide2', { enabled: false, options: { kind: 'http', endpoint: 'http://127.0.0.1:1/x' } }), 403, 'forbidden');
});
