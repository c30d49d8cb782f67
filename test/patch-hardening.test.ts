/**
 * Fuzz findings turned into fixed cases: patch pointers resolve own members only (an inherited
 * `toString` once made the stored state diverge from the fold of its events), `__proto__` is
 * refused in our words, no library or runtime message reaches an answer, `select` answers a field
 * named `__proto__`, and a request without Host is answered in the error model.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { removeDir, startServerInProcess, type TestServer } from './helpers/server.js';
import { assertError } from './helpers/assertions.js';

let server: TestServer;
before(async () => {
  server = await startServerInProcess();
  assert.equal((await server.request('POST', '/v1/aggregates/t/x', { event_type: 'e', payload: { a: 1 } })).status, 201);
});
after(async () => {
  await server.stop();
  removeDir(server.dataDir);
});

const patch = (ops: unknown[]) => server.request('POST', '/v1/aggregates/t/x/patch', { event_type: 'p', patch: ops });
const LEAKS = /Buffer|argument|Cannot read|banPrototypeModifications|fast-json-patch|undefined|TypeError/;

test('patch - inherited members are not members: move/copy/remove/replace of /toString and friends are refused, the aggregate still verifies', { timeout: 30_000 }, async () => {
  for (const from of ['/toString', '/constructor', '/valueOf', '/hasOwnProperty', '/propertyIsEnumerable', '/toLocaleString']) {
    for (const op of [{ op: 'move', from, path: '/x' }, { op: 'copy', from, path: '/x' }, { op: 'remove', path: from }, { op: 'replace', path: from, value: 1 }]) {
      const res = await patch([op]);
      assertError(res, 400, 'validation_failed');
      assert.doesNotMatch(res.body.error.message, LEAKS, JSON.stringify(op));
    }
  }
  const batch = await server.request('POST', '/v1/batch', { events: [{ aggregate_type: 't', aggregate_id: 'x', event_type: 'p', patch: [{ op: 'move', from: '/toString', path: '/y' }] }] });
  assertError(batch, 400, 'validation_failed');
  const verify = await server.request('GET', '/v1/aggregates/t/x/verify');
  assert.equal(verify.body.valid, true);
  assert.equal(verify.body.version, 1, 'nothing was appended');
});

test('patch - __proto__ anywhere in a pointer is refused in our words; a runtime failure is not echoed', { timeout: 30_000 }, async () => {
  for (const op of [{ op: 'add', path: '/__proto__/polluted', value: 1 }, { op: 'add', path: '/__proto__', value: {} }, { op: 'copy', from: '/a', path: '/constructor/prototype/x' }]) {
    const res = await patch([op]);
    assertError(res, 400, 'validation_failed');
    assert.doesNotMatch(res.body.error.message, LEAKS);
  }
  const res = await patch([{ op: 'remove', path: '' }, { op: 'remove', path: '/toString' }]);
  assertError(res, 400, 'validation_failed');
  assert.doesNotMatch(res.body.error.message, LEAKS);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  // Own members named like inherited ones are ordinary data.
  assert.equal((await patch([{ op: 'add', path: '/constructor', value: 1 }, { op: 'move', from: '/constructor', path: '/toString' }])).status, 201);
  assert.equal((await server.request('GET', '/v1/aggregates/t/x')).body.state.toString, 1);
  assert.equal((await server.request('GET', '/v1/aggregates/t/x/verify')).body.valid, true);
});

test('select - a field named __proto__ is answered like any missing field', { timeout: 10_000 }, async () => {
  const res = await server.request('GET', '/v1/aggregates/t/x/select?fields=__proto__,a');
  assert.equal(res.status, 200);
  assert.deepEqual(Object.entries(res.body), [['__proto__', null], ['a', 1]]);
});

test('http - a request without a Host header is answered in the error model', { timeout: 10_000 }, async () => {
  const text = await new Promise<string>((resolve, reject) => {
    const socket = net.connect(server.port, '127.0.0.1', () => socket.write('GET /v1/aggregates HTTP/1.1\r\nConnection: close\r\n\r\n'));
    let out = '';
    socket.on('data', (d: Buffer) => (out += d.toString()));
    socket.on('end', () => resolve(out));
    socket.on('error', reject);
  });
  assert.match(text, /^HTTP\/1\.1 401/);
  assert.match(text, /"code":"unauthorized"/);
});
