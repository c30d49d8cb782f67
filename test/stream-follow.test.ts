/**
 * Issue 13 item 2: following the global stream from the TypeScript client (`db.subscribe()`, an
 * async iterator that reconnects with back-off and resumes from its last position) and from the
 * CLI (`dbx events --follow`, the built binary against a running server, stopped with SIGINT).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createClient, type StreamItem } from '../src/client/index.js';
import { startServer } from '../src/coordinator/index.js';
import { DBX_BIN, readCliToken, removeDir, runDbx, startServerInProcess, tempDataDir, writeConfigToml } from './helpers/server.js';

const FAST = '[stream]\nheartbeat_ms = 300\npoll_ms = 200\n';

async function until(ms: number, check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('subscribe - follows live, survives a server restart, resumes without a gap or a repeat', { timeout: 90_000 }, async () => {
  const dataDir = tempDataDir();
  writeConfigToml(dataDir, FAST);
  let server = await startServer({ dataDir, listenPort: 0, host: '127.0.0.1', logLevel: 'silent' });
  const port = server.port;
  const db = createClient({ url: server.url, token: readCliToken(dataDir) });
  const stop = new AbortController();
  const got: StreamItem[] = [];
  const reconnects: { attempt: number; delayMs: number; code: string }[] = [];
  const subscription = db.subscribe({
    from: 'start',
    signal: stop.signal,
    reconnect: { initialDelayMs: 50, maxDelayMs: 300 },
    onReconnect: ({ attempt, delayMs, error }) => reconnects.push({ attempt, delayMs, code: error.code }),
  });
  const reading = (async () => {
    for await (const item of subscription) got.push(item);
  })();
  try {
    const written: string[] = [];
    for (let i = 0; i < 10; i++) written.push((await db.apply('order', `o-${i % 3}`, 'order_placed', { payload: { i } })).metadata.eventId);
    await until(10_000, () => got.length >= 10, 'the first 10 events');
    await server.stop();
    // Down for a while: the subscription keeps trying, with back-off.
    await new Promise((r) => setTimeout(r, 600));
    server = await startServer({ dataDir, listenPort: port, host: '127.0.0.1', logLevel: 'silent' });
    for (let i = 10; i < 20; i++) written.push((await db.apply('order', `o-${i % 3}`, 'order_placed', { payload: { i } })).metadata.eventId);
    await until(20_000, () => got.length >= 20, 'the 10 events after the restart');
    await new Promise((r) => setTimeout(r, 300));
    stop.abort();
    await reading; // aborting ends the iteration without an error
    assert.deepEqual(
      got.map((g) => g.event.metadata.eventId),
      written,
      'every event once, in commit order (one writer)',
    );
    const versions = new Map<string, number>();
    for (const { event } of got) {
      assert.equal(event.version, (versions.get(event.aggregateId) ?? 0) + 1);
      versions.set(event.aggregateId, event.version);
    }
    assert.ok(reconnects.length >= 1, 'it reconnected');
    assert.ok(reconnects.every((r) => r.code === 'unavailable'), JSON.stringify(reconnects));
    // The subscription's position is the head: a page from it is empty.
    assert.equal(subscription.position, got[got.length - 1]?.position);
    const page = await db.readStream({ after: subscription.position });
    assert.deepEqual(page.items, []);
    assert.equal(page.nextPosition, subscription.position);
  } finally {
    stop.abort();
    await db.close();
    await server.stop();
    removeDir(dataDir);
  }
});

test('subscribe - filter and from end; a bad position or filter fails at once; breaking out closes it', { timeout: 60_000 }, async () => {
  const s = await startServerInProcess({ configToml: FAST });
  const db = createClient({ url: s.url, token: s.token });
  try {
    await db.apply('order', 'o-0', 'order_placed');
    for (const bad of [{ from: 'garbage!' }, { filter: 'event_type ==== x' }]) {
      const started = Date.now();
      await assert.rejects(
        (async () => {
          for await (const _ of db.subscribe({ ...bad, reconnect: { initialDelayMs: 10 } })) assert.fail('no event expected');
        })(),
        (err: { code?: string; status?: number }) => err.status === 400,
      );
      assert.ok(Date.now() - started < 5000, 'no retries for a 400');
    }
    const paid: StreamItem[] = [];
    const sub = db.subscribe({ from: 'end', filter: 'event_type = "order_paid"' });
    const reading = (async () => {
      for await (const item of sub) {
        paid.push(item);
        if (paid.length === 2) break;
      }
    })();
    await until(5000, () => sub.position !== 'end', 'the subscription to connect');
    const expected: string[] = [];
    for (let i = 0; i < 4; i++) {
      const e = await db.apply('order', `o-${i}`, i % 2 ? 'order_paid' : 'order_placed');
      if (i % 2) expected.push(e.metadata.eventId);
    }
    await reading;
    assert.deepEqual(
      paid.map((p) => p.event.metadata.eventId),
      expected,
    );
    assert.ok(paid.every((p) => p.event.eventType === 'order_paid'));
  } finally {
    await db.close();
    await s.stop();
    removeDir(s.dataDir);
  }
});

/** Spawns the built `dbx` and collects its stdout lines. */
function spawnDbx(args: string[]) {
  const child = spawn(process.execPath, [DBX_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    partial += d.toString();
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts.filter((l) => l.length > 0));
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  void exited.then(() => clearTimeout(killer));
  return { child, lines, stderr: () => stderr, exited };
}

test('cli - dbx events --follow prints events as they commit; SIGINT exits 0 and --from continues there', { timeout: 90_000 }, async () => {
  const s = await startServerInProcess({ configToml: FAST });
  try {
    const written: string[] = [];
    const write = async (id: string, type = 'order_placed') => {
      const res = await s.request('POST', `/v1/aggregates/order/${id}/events`, { event_type: type, payload: {} });
      assert.equal(res.status, 201);
      written.push(res.body.metadata.event_id);
    };
    await write('o-1');
    await write('o-2');
    const first = spawnDbx(['events', '--follow', '--from', 'start', '--json', '--data-dir', s.dataDir]);
    await until(20_000, () => first.lines.length >= 2, `the events already stored (stderr: ${first.stderr()})`);
    await write('o-1', 'order_paid');
    await write('o-3');
    await until(10_000, () => first.lines.length >= 4, 'the events committed while following');
    first.child.kill('SIGINT');
    assert.equal(await first.exited, 0, first.stderr());
    const rows = first.lines.map((l) => JSON.parse(l) as { position: string; event: { metadata: { event_id: string }; aggregate_id: string } });
    assert.deepEqual(
      rows.map((r) => r.event.metadata.event_id),
      written,
    );
    const stopped = /stopped at position (\S+)/.exec(first.stderr());
    assert.ok(stopped, first.stderr());
    assert.equal(stopped[1], rows[3]?.position);

    // From where it stopped: only what commits after, in text form.
    const second = spawnDbx(['events', '--follow', '--from', stopped[1] as string, '--data-dir', s.dataDir]);
    await new Promise((r) => setTimeout(r, 1500));
    await write('o-9', 'order_paid');
    await until(10_000, () => second.lines.length >= 1, `the new event (stderr: ${second.stderr()})`);
    await new Promise((r) => setTimeout(r, 300));
    second.child.kill('SIGINT');
    assert.equal(await second.exited, 0, second.stderr());
    assert.equal(second.lines.length, 1, second.lines.join('\n'));
    assert.match(second.lines[0] as string, new RegExp(`^\\S+Z order/o-9 v1 order_paid ${written[4]} cli:root position=\\S+$`));

    const usage = await runDbx(['events', '--from', 'start', '--data-dir', s.dataDir]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--from needs --follow/);
    const bad = await runDbx(['events', '--follow', '--from', 'nope!', '--data-dir', s.dataDir]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /invalid_input/);
  } finally {
    await s.stop();
    removeDir(s.dataDir);
  }
});
