/**
 * Client errors against a real server: one class per failure under EventDbxError, imported from the
 * built package entry (dist/src/client/index.js, and by the package's own name), with the typed
 * fields read from the server's details and headers, and a failed batch item's index.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as pkg from '../src/client/index.js';
import {
  AlreadyExistsError,
  ArchivedError,
  ConnectionError,
  createClient,
  ERROR_CODES,
  EventDbxError,
  ForbiddenError,
  InvalidInputError,
  NotFoundError,
  RateLimitedError,
  UnauthorizedError,
  UnavailableError,
  ValidationError,
  VersionConflictError,
  WriteLimitError,
  type EventDbxClient,
} from '../src/client/index.js';
import { ERROR_CATALOGUE } from '../src/core/index.js';
import { removeDir, startServerInProcess, type TestServer } from './helpers/server.js';

let server: TestServer;
let client: EventDbxClient;
before(async () => {
  server = await startServerInProcess();
  client = createClient({ url: server.url, token: server.token, retry: { attempts: 1 } });
});
after(async () => {
  await client.close();
  await server.stop();
  removeDir(server.dataDir);
});

/** The rejection of `promise`, which must be an instance of `cls` (and of EventDbxError). */
async function rejection<E extends EventDbxError>(promise: Promise<unknown>, cls: abstract new (...args: never[]) => E): Promise<E> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${String(err)}`);
    assert.ok(err instanceof EventDbxError);
    assert.equal((err as Error).name, cls.name);
    return err;
  }
  assert.fail(`expected ${cls.name}`);
}

test('client errors - the union covers every code of the server catalogue, plus timeout and aborted', () => {
  assert.deepEqual(new Set(ERROR_CODES), new Set([...Object.keys(ERROR_CATALOGUE), 'timeout', 'aborted']));
  for (const code of Object.keys(ERROR_CATALOGUE)) {
    const err = pkg.createError(code, 'm', { status: 400 });
    assert.equal(err.code, code);
    assert.notEqual(err.constructor, EventDbxError, `${code} has its own class`);
  }
});

test('client errors - the package name resolves to the same entry, so instanceof holds for its errors', { timeout: 10_000 }, async () => {
  // By name through package.json `exports` (a variable, so tsc does not need the built types first).
  const name: string = 'eventdbx';
  const byName = (await import(name)) as typeof pkg;
  assert.equal(byName.NotFoundError, NotFoundError, 'one module: import "eventdbx" is dist/src/client/index.js');
  const other = createClient({ url: server.url, token: server.token });
  try {
    const err = await rejection(other.get('person', 'nobody'), byName.NotFoundError);
    assert.ok(err instanceof NotFoundError);
  } finally {
    await other.close();
  }
  // A second copy of the module (two installs in one process) still matches by class name.
  const copy = (await import(`../src/client/errors.js?copy=${Date.now()}`)) as typeof import('../src/client/errors.js');
  assert.notEqual(copy.NotFoundError, NotFoundError);
  const foreign = new copy.VersionConflictError('version_conflict', 'x', { details: { current_version: 3 } });
  assert.ok(foreign instanceof VersionConflictError);
  assert.ok(foreign instanceof EventDbxError);
  assert.ok(!(foreign instanceof NotFoundError));
  assert.ok(!(new Error('plain') instanceof EventDbxError));
});

test('client errors - version conflict carries currentVersion; not found, already exists, archived', { timeout: 10_000 }, async () => {
  await client.create('person', 'e-1', 'person_created', { payload: { name: 'Ada' } });
  await client.apply('person', 'e-1', 'person_renamed', { payload: { name: 'Grace' } });
  const conflict = await rejection(client.apply('person', 'e-1', 'person_renamed', { payload: {}, expectedVersion: 1 }), VersionConflictError);
  assert.equal(conflict.code, 'version_conflict');
  assert.equal(conflict.status, 409);
  assert.equal(conflict.currentVersion, 2);
  assert.equal(conflict.expectedVersion, 1);
  assert.equal(conflict.index, undefined, 'not a batch');

  const missing = await rejection(client.get('person', 'nobody'), NotFoundError);
  assert.equal(missing.status, 404);
  await rejection(client.create('person', 'e-1', 'person_created'), AlreadyExistsError);
  await client.archive('person', 'e-1');
  const archived = await rejection(client.apply('person', 'e-1', 'person_renamed'), ArchivedError);
  assert.equal(archived.code, 'aggregate_archived');
  assert.equal((await client.get('person', 'e-1')).version, 3, 'refused writes changed nothing');
});

test('client errors - validation lists the violations (request fields and schema rules)', { timeout: 10_000 }, async () => {
  const bad = await rejection(client.apply('Person', 'x', 'e'), ValidationError);
  assert.equal(bad.status, 400);
  assert.deepEqual(bad.violations.map((v) => v.path), ['params.type']);
  assert.match(bad.violations[0]?.message ?? '', /snake_case/);

  await client.putSchema('account', { events: { account_opened: { fields: [] } }, columnTypes: { balance: { type: 'integer' } } });
  const schema = await rejection(client.create('account', 'a-1', 'account_opened', { payload: { balance: 'lots' } }), ValidationError);
  assert.ok(schema.violations.length >= 1);
  assert.equal(schema.violations[0]?.path, 'balance');
  assert.equal(schema.violations[0]?.rule, 'type');
  await rejection(client.get('account', 'a-1'), NotFoundError);
  await rejection(client.get('person', 'x', { version: -1 }), ValidationError);
  await rejection(client.list('person', { cursor: 'not a cursor' }), InvalidInputError);
});

test('client errors - unauthorized, forbidden and write limit', { timeout: 10_000 }, async () => {
  const anonymous = createClient({ url: server.url, token: 'not-a-token' });
  const issued = await client.issueToken({ group: 'readers', user: 'r', actions: ['aggregate.read'] });
  assert.equal(issued.record.group, 'readers');
  assert.equal(issued.record.writesRemaining, null);
  const reader = createClient({ url: server.url, token: issued.token });
  const limited = await client.issueToken({ group: 'writers', user: 'w', actions: ['aggregate.*'], writeLimit: 1 });
  assert.equal(limited.record.limits.writeEvents, 1);
  const writer = createClient({ url: server.url, token: limited.token });
  try {
    assert.equal((await rejection(anonymous.get('person', 'e-1'), UnauthorizedError)).status, 401);
    await reader.get('person', 'e-1');
    assert.equal((await rejection(reader.apply('person', 'e-9', 'person_created'), ForbiddenError)).status, 403);
    await writer.create('person', 'w-1', 'person_created');
    const spent = await rejection(writer.create('person', 'w-2', 'person_created'), WriteLimitError);
    assert.equal(spent.status, 429);
    const recorded = await client.token(limited.record.jti);
    assert.equal(recorded.group, 'writers');
    assert.equal(recorded.writesRemaining, 0, 'the one write is spent');
    assert.equal(spent.retryAfterSecs, undefined, 'an allowance does not refill: no Retry-After');
  } finally {
    await Promise.all([anonymous.close(), reader.close(), writer.close()]);
  }
});

test('client errors - rate limited carries retryAfterSecs from the Retry-After header', { timeout: 20_000 }, async () => {
  const limited = await startServerInProcess({ configToml: '[http.rate_limit]\nper_token_per_sec = 0.2\nburst = 2\n' });
  const c = createClient({ url: limited.url, token: limited.token, retry: { attempts: 1 } });
  try {
    await c.list();
    await c.list();
    const err = await rejection(c.list(), RateLimitedError);
    assert.equal(err.status, 429);
    assert.equal(typeof err.retryAfterSecs, 'number');
    assert.ok((err.retryAfterSecs as number) >= 1 && (err.retryAfterSecs as number) <= 5, String(err.retryAfterSecs));
  } finally {
    await c.close();
    await limited.stop();
    removeDir(limited.dataDir);
  }
});

test('client errors - a failed batch item names its index (worker refusals and request validation)', { timeout: 20_000 }, async () => {
  await client.create('order', 'b-0', 'order_placed');
  await client.create('order', 'b-1', 'order_placed');
  const items = [0, 1, 2, 3].map((i) => ({ aggregateType: 'order', aggregateId: `b-${i}`, eventType: 'order_paid', payload: { i } }));
  const conflict = await rejection(
    client.batch([items[0]!, items[2]!, { ...items[1]!, expectedVersion: 7 }, items[3]!]),
    VersionConflictError,
  );
  assert.equal(conflict.index, 2);
  assert.equal(conflict.currentVersion, 1);
  assert.deepEqual(conflict.details, { current_version: 1, expected_version: 7, index: 2 }, 'details as the server sent them');

  const patch = await rejection(
    client.batch([items[0]!, { aggregateType: 'order', aggregateId: 'b-1', eventType: 'order_fixed', patch: [{ op: 'remove', path: '/nothing' }] }]),
    ValidationError,
  );
  assert.equal(patch.index, 1);
  assert.equal(patch.violations[0]?.path, 'patch.0');

  const request = await rejection(client.batch([items[0]!, { ...items[1]!, aggregateType: 'Order' }]), ValidationError);
  assert.equal(request.index, 1, 'from the path body.events.1.aggregate_type');
  const missing = await rejection(client.batch([items[0]!, { aggregateType: 'order', aggregateId: 'b-9', eventType: 'order_fixed', patch: [{ op: 'add', path: '/a', value: 1 }] }]), NotFoundError);
  assert.equal(missing.index, 1);

  // Nothing of the refused batches was written.
  assert.equal((await client.get('order', 'b-0')).version, 1);
  await rejection(client.get('order', 'b-2'), NotFoundError);
});

test('client errors - a batch across shard workers names the index within the whole batch', { timeout: 20_000 }, async () => {
  const spread = await startServerInProcess({ configToml: '[storage]\nworkers = 2\n' });
  const c = createClient({ url: spread.url, token: spread.token });
  try {
    const ids = Array.from({ length: 12 }, (_, i) => `x-${i}`);
    await c.batch(ids.map((id) => ({ aggregateType: 'order', aggregateId: id, eventType: 'order_placed' })));
    for (const bad of [0, 7, 11]) {
      const err = await rejection(
        c.batch(ids.map((id, i) => ({ aggregateType: 'order', aggregateId: id, eventType: 'order_paid', expectedVersion: i === bad ? 5 : 1 }))),
        VersionConflictError,
      );
      assert.equal(err.index, bad);
      assert.match(err.message, new RegExp(`order/x-${bad} `));
    }
    assert.equal((await c.list('order', { take: 100 })).items.every((a) => a.version === 1), true);
  } finally {
    await c.close();
    await spread.stop();
    removeDir(spread.dataDir);
  }
});

test('client errors - 503 is UnavailableError; no answer at all is ConnectionError (also unavailable)', { timeout: 10_000 }, async () => {
  const peer: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'unavailable', message: 'draining' } }));
    });
  });
  await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
  const draining = createClient({ url: `http://127.0.0.1:${(peer.address() as AddressInfo).port}`, token: 't', retry: { attempts: 1 } });
  const dead = createClient({ url: 'http://127.0.0.1:1', token: 't', retry: { attempts: 1 } });
  try {
    const busy = await rejection(draining.get('person', 'p'), UnavailableError);
    assert.equal(busy.status, 503);
    assert.ok(!(busy instanceof ConnectionError));
    const down = await rejection(dead.get('person', 'p'), ConnectionError);
    assert.ok(down instanceof UnavailableError);
    assert.equal(down.code, 'unavailable');
    assert.equal(down.status, 0);
    assert.match(down.message, /cannot reach EventDBX at http:\/\/127\.0\.0\.1:1: ECONNREFUSED/);
  } finally {
    await Promise.all([draining.close(), dead.close()]);
    await new Promise((resolve) => peer.close(resolve));
  }
});
