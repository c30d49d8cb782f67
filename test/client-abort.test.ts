/**
 * Deadlines, aborts and retries of the client, against real sockets: a TCP server that accepts and
 * never answers (a hung server), and a TCP proxy in front of a real EventDBX server that resets the
 * first connections (a flaky network).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { AbortError, ConnectionError, createClient, EventDbxError, TimeoutError } from '../src/client/index.js';
import { removeDir, startServerInProcess, type TestServer } from './helpers/server.js';

/** Accepts connections, reads everything, answers nothing. */
interface Silent {
  url: string;
  connections: () => number;
  close: () => Promise<void>;
}

async function silentServer(): Promise<Silent> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const srv: Server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('data', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
    connections: () => connections,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => srv.close(() => resolve()));
    },
  };
}

/** Forwards to `target`, but resets the first `resets` connections it accepts (after the request arrives). */
async function flakyProxy(target: number, resets: number): Promise<{ url: string; accepted: () => number; close: () => Promise<void> }> {
  let accepted = 0;
  const sockets = new Set<Socket>();
  const srv = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    if (accepted <= resets) {
      socket.once('data', () => socket.resetAndDestroy());
      return;
    }
    const upstream = connect(target, '127.0.0.1');
    sockets.add(upstream);
    socket.pipe(upstream).pipe(socket);
    upstream.on('error', () => socket.destroy());
    socket.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
    accepted: () => accepted,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => srv.close(() => resolve()));
    },
  };
}

/** Times a call from before it starts (the call's own deadline starts inside it). */
async function timed(call: () => Promise<unknown>): Promise<{ err: unknown; ms: number }> {
  const started = performance.now();
  try {
    await call();
  } catch (err) {
    return { err, ms: performance.now() - started };
  }
  assert.fail('expected a rejection');
}

let silent: Silent;
let server: TestServer;
before(async () => {
  silent = await silentServer();
  server = await startServerInProcess();
});
after(async () => {
  await silent.close();
  await server.stop();
  removeDir(server.dataDir);
});

test('client abort - a per-call timeoutMs ends a call to a server that never answers', { timeout: 10_000 }, async () => {
  const client = createClient({ url: silent.url, token: 't', retry: { attempts: 3 } });
  try {
    const { err, ms } = await timed(() => client.get('person', 'p-1', { timeoutMs: 200 }));
    assert.ok(err instanceof TimeoutError, String(err));
    assert.ok(err instanceof EventDbxError);
    assert.equal(err.code, 'timeout');
    assert.equal(err.status, 0);
    assert.match(err.message, /GET \/v1\/aggregates\/person\/p-1 got no answer within 200 ms/);
    assert.ok(ms >= 180 && ms < 1500, `rejected after ${ms} ms`);
    // Methods without an options object take the call options last.
    const verify = await timed(() => client.verify('person', 'p-1', { timeoutMs: 150 }));
    assert.ok(verify.err instanceof TimeoutError);
    assert.ok(verify.ms < 1500, `${verify.ms} ms`);
  } finally {
    await client.close();
  }
});

test('client abort - the client-wide timeoutMs is the default deadline of every call', { timeout: 10_000 }, async () => {
  const client = createClient({ url: silent.url, token: 't', timeoutMs: 150 });
  try {
    const writes = await timed(() => client.apply('person', 'p-1', 'person_seen', { payload: { a: 1 } }));
    assert.ok(writes.err instanceof TimeoutError);
    assert.ok(writes.ms < 1500, `${writes.ms} ms`);
    const status = await timed(() => client.status());
    assert.ok(status.err instanceof TimeoutError);
    // A call's own deadline wins over the default.
    const longer = await timed(() => client.health({ timeoutMs: 400 }));
    assert.ok(longer.err instanceof TimeoutError);
    assert.ok(longer.ms >= 380, `${longer.ms} ms`);
  } finally {
    await client.close();
  }
  assert.throws(() => createClient({ url: silent.url, timeoutMs: -1 }), (err: unknown) => err instanceof EventDbxError && err.code === 'invalid_input');
});

test('client abort - an AbortSignal ends a pending call with AbortError (its reason as cause)', { timeout: 10_000 }, async () => {
  const client = createClient({ url: silent.url, token: 't', timeoutMs: 0 });
  try {
    const controller = new AbortController();
    const reason = new Error('user went away');
    setTimeout(() => controller.abort(reason), 100);
    const { err, ms } = await timed(() => client.list('person', { signal: controller.signal }));
    assert.ok(err instanceof AbortError, String(err));
    assert.equal(err.name, 'AbortError');
    assert.equal(err.code, 'aborted');
    assert.equal(err.cause, reason);
    assert.ok(ms >= 90 && ms < 1000, `rejected after ${ms} ms`);

    // Already aborted: rejects at once, without opening a connection.
    const before = silent.connections();
    const early = await timed(() => client.batch([{ aggregateType: 'person', aggregateId: 'p', eventType: 'e' }], { signal: AbortSignal.abort() }));
    assert.ok(early.err instanceof AbortError);
    assert.ok(early.ms < 50, `${early.ms} ms`);
    assert.equal(silent.connections(), before);

    // AbortSignal.timeout works like any signal.
    const viaTimeout = await timed(() => client.event('123', { signal: AbortSignal.timeout(120) }));
    assert.ok(viaTimeout.err instanceof AbortError);
    assert.ok(viaTimeout.ms < 1000);
  } finally {
    await client.close();
  }
});

test('client abort - reads retry a reset connection with back-off; writes only with an idempotency key', { timeout: 20_000 }, async () => {
  // Reads: two resets, the third try gets through.
  let proxy = await flakyProxy(server.port, 2);
  let client = createClient({ url: proxy.url, token: server.token, retry: { attempts: 3, initialDelayMs: 20, maxDelayMs: 50 } });
  try {
    await assert.rejects(client.get('person', 'nobody'), (err: unknown) => err instanceof EventDbxError && err.code === 'not_found');
    assert.equal(proxy.accepted(), 3, 'two reset connections, then one that reached the server');
  } finally {
    await client.close();
    await proxy.close();
  }

  // A write without a key is never sent twice: the reset is the caller's to judge.
  proxy = await flakyProxy(server.port, 1);
  client = createClient({ url: proxy.url, token: server.token, retry: { attempts: 3, initialDelayMs: 20, maxDelayMs: 50 } });
  try {
    const err = await timed(() => client.create('person', 'r-1', 'person_created'));
    assert.ok(err.err instanceof ConnectionError, String(err.err));
    assert.equal(proxy.accepted(), 1);
    // With a key it is retried, and applied once.
    const created = await client.create('person', 'r-1', 'person_created', { payload: { n: 1 }, idempotencyKey: 'r-1-create' });
    assert.equal(created.version, 1);
  } finally {
    await client.close();
    await proxy.close();
  }
  proxy = await flakyProxy(server.port, 1);
  client = createClient({ url: proxy.url, token: server.token, retry: { attempts: 2, initialDelayMs: 20, maxDelayMs: 50 } });
  try {
    const event = await client.apply('person', 'r-1', 'person_seen', { payload: { n: 2 }, idempotencyKey: 'r-1-seen' });
    assert.equal(event.version, 2);
    assert.equal(proxy.accepted(), 2, 'one reset, one retry');
  } finally {
    await client.close();
    await proxy.close();
  }

  // attempts: 1 turns retries off.
  proxy = await flakyProxy(server.port, 1);
  client = createClient({ url: proxy.url, token: server.token, retry: { attempts: 1 } });
  try {
    assert.ok((await timed(() => client.get('person', 'r-1'))).err instanceof ConnectionError);
    assert.equal(proxy.accepted(), 1);
  } finally {
    await client.close();
    await proxy.close();
  }
});

test('client abort - the deadline covers retries and back-off: an abort during back-off ends the call', { timeout: 10_000 }, async () => {
  // Every connection is reset, and the back-off is long: the signal must end the sleep.
  const proxy = await flakyProxy(server.port, 1_000);
  const client = createClient({ url: proxy.url, token: server.token, retry: { attempts: 10, initialDelayMs: 5_000, maxDelayMs: 5_000 } });
  try {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const aborted = await timed(() => client.get('person', 'r-1', { signal: controller.signal }));
    assert.ok(aborted.err instanceof AbortError, String(aborted.err));
    assert.ok(aborted.ms < 1500, `${aborted.ms} ms`);
    const timedOut = await timed(() => client.get('person', 'r-1', { timeoutMs: 300 }));
    assert.ok(timedOut.err instanceof TimeoutError, String(timedOut.err));
    assert.ok(timedOut.ms < 1500, `${timedOut.ms} ms`);
  } finally {
    await client.close();
    await proxy.close();
  }
});
