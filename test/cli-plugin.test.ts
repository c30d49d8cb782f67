/**
 * `dbx plugin …` and `dbx queue …` against the real server (the `dbx` binary, spawned) and a real
 * HTTP receiver in this process: configure, the connectivity refusal, test, delivery of appends,
 * replay, disable/enable, retries to dead, the queue's listing, retry and clear, and remove.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { removeDir, runDbx, spawnServer, stopSpawned, tempDataDir, writeConfigToml, type SpawnedServer } from './helpers/server.js';

interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: any;
}

/** An HTTP endpoint that records every POST; `failing` makes it answer 500 (HEAD always answers 200). */
class Receiver {
  readonly posts: Received[] = [];
  failing = false;
  private readonly server: Server = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk: Buffer) => (text += chunk.toString()));
    req.on('end', () => {
      if (req.method !== 'POST') return res.writeHead(200).end();
      if (this.failing) return res.writeHead(500, { 'content-type': 'text/plain' }).end('boom');
      this.posts.push({ method: req.method, url: req.url ?? '', headers: req.headers, body: JSON.parse(text) });
      res.writeHead(204).end();
    });
  });

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  eventIds(): string[] {
    return this.posts.filter((p) => p.body.aggregate_type !== 'plugin_test').map((p) => p.body.event_id);
  }
}

/** A port nothing listens on: bound once, then closed. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

let home: string;
let dataDir: string;
let server: SpawnedServer | undefined;
const receiver = new Receiver();
let endpoint: string;

before(async () => {
  home = tempDataDir('edbx-cli-plugin-');
  dataDir = join(home, '.eventdbx');
  // Two attempts and a 10 ms base backoff: a failing job is dead within a few tens of ms.
  writeConfigToml(dataDir, 'plugin_max_attempts = 2\n\n[plugins]\nretry_base_ms = 10\nretry_max_ms = 50\n');
  endpoint = `http://127.0.0.1:${await receiver.listen()}/events`;
});

after(async () => {
  if (server) await stopSpawned(server);
  await receiver.close();
  removeDir(home);
});

function dbx(args: string[]): ReturnType<typeof runDbx> {
  return runDbx(args, { env: { HOME: home, EVENTDBX_DATA_DIR: dataDir, EVENTDBX_TOKEN: '', EVENTDBX_TENANT_ID: '' }, timeoutMs: 30_000 });
}

async function ok(args: string[]): Promise<string> {
  const res = await dbx(args);
  assert.equal(res.code, 0, `dbx ${args.join(' ')} → ${res.code}: ${res.stdout}${res.stderr}`);
  return res.stdout;
}

async function fails(args: string[], code: number, pattern: RegExp): Promise<string> {
  const res = await dbx(args);
  assert.equal(res.code, code, `dbx ${args.join(' ')} → ${res.code}: ${res.stdout}${res.stderr}`);
  assert.match(res.stderr, pattern);
  assert.doesNotMatch(res.stderr, /\n\s+at |node_modules/, 'no stack trace');
  return res.stderr;
}

/** Polls until `check` returns a value (not undefined), failing after `timeoutMs`. */
async function until<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The queue over HTTP: polling through the CLI would cost a process start per look. */
async function queued(): Promise<any> {
  const res = await (server as SpawnedServer).request('GET', '/v1/queue');
  assert.equal(res.status, 200);
  return res.body;
}

/** Appends over HTTP (the writes are not under test here); returns the event id. */
async function append(id: string, event: string, name: string): Promise<string> {
  const res = await (server as SpawnedServer).request('POST', `/v1/aggregates/person/${id}/events`, { event_type: event, payload: { name } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.metadata.event_id as string;
}

test('cli plugin - direct mode: list with the server stopped', { timeout: 60_000 }, async () => {
  assert.equal(await ok(['plugin', 'list']), '(no plugins configured)\n');
  server = await spawnServer({ dataDir });
});

test('cli plugin - config, enable and test refuse an endpoint that refuses connections, with the reason', { timeout: 60_000 }, async () => {
  const dead = `http://127.0.0.1:${await closedPort()}/`;
  await fails(['plugin', 'config', 'http', '--name', 'refused', '--endpoint', dead], 1, /^error: unavailable: failed to establish connection for 'refused': .*refused/);
  assert.deepEqual((await (server as SpawnedServer).request('GET', '/v1/plugins')).body.items, [], 'a refused config is not stored');
  assert.equal(await ok(['plugin', 'config', 'http', '--name', 'refused', '--endpoint', dead, '--disable']), "HTTP plugin 'refused' disabled\n");
  await fails(['plugin', 'enable', 'refused'], 1, /^error: unavailable: failed to establish connection for 'refused': .*refused/);
  const tested = await dbx(['plugin', 'test', 'refused']);
  assert.equal(tested.code, 1);
  assert.match(tested.stdout, /^http \(refused\) - FAILED \(http plugin request failed: connection refused\)\n$/);
  assert.equal(await ok(['plugin', 'remove', 'refused']), "Plugin 'refused' removed\n");
  // Independent of one another: run together (each is a process start).
  await Promise.all([
    fails(['plugin', 'enable', 'refused'], 1, /^error: not_found: no plugin named 'refused' is configured/),
    fails(['plugin', 'config', 'http', '--name', 'nowhere'], 2, /--endpoint is required for a new http plugin/),
    fails(['plugin', 'config', 'http', '--name', 'bad', '--endpoint', endpoint, '--header', 'novalue'], 2, /--header novalue: expected KEY=VALUE/),
    fails(['plugin', 'config', 'http', '--name', 'bad', '--endpoint', endpoint, '--payload', 'most'], 2, /argument 'most' is invalid/),
  ]);
});

test('cli plugin - config http, list, update keeps what is not given, test sends a synthetic event', { timeout: 60_000 }, async () => {
  assert.equal(await ok(['plugin', 'config', 'http', '--name', 'hook', '--endpoint', endpoint, '--header', 'x-secret=s=1']), "HTTP plugin 'hook' configured\n");
  assert.match(await ok(['plugin', 'list']), /^plugin=hook kind=http enabled=true payload=all pending=0 processing=0 dead=0 lag_ms=0\n$/);
  // Only the payload mode changes; endpoint and header stay.
  await ok(['plugin', 'config', 'http', '--name', 'hook', '--payload', 'event-only']);
  await ok(['plugin', 'config', 'http', '--name', 'hook', '--timeout-ms', '2000']);
  const [listing] = await Promise.all([
    ok(['plugin', 'list', '--json']),
    fails(['plugin', 'config', 'tcp', '--name', 'hook', '--host', '127.0.0.1', '--port', '9'], 1, /^error: already_exists: plugin name 'hook' is already used by http/),
  ]);
  const [listed] = JSON.parse(listing);
  assert.equal(listed.payload_mode, 'event-only', 'kept when --payload is not given');
  assert.deepEqual(listed.options, { kind: 'http', endpoint, headers: { 'x-secret': 's=1' }, https: false, timeout_ms: 2000 });

  const tested = await ok(['plugin', 'test', 'hook']);
  assert.match(tested, /^http \(hook\) - ok \(\d+(\.\d+)? ms\)\n$/);
  const synthetic = receiver.posts.find((p) => p.body.aggregate_type === 'plugin_test');
  assert.ok(synthetic, 'the receiver saw the synthetic event');
  assert.equal(synthetic.headers['x-secret'], 's=1');
  assert.equal(synthetic.body.event.event_type, 'plugin_tested');
  assert.equal(synthetic.body.state, undefined, 'event-only: no state');
});

test('cli plugin - appends reach the receiver in order, replay sends the stored events again', { timeout: 60_000 }, async () => {
  await append('p-1', 'person_created', 'Ada');
  const second = await append('p-1', 'person_renamed', 'Grace');
  await until('two deliveries', () => (receiver.eventIds().length >= 2 ? true : undefined));
  const delivered = receiver.posts.filter((p) => p.body.aggregate_id === 'p-1');
  assert.deepEqual(delivered.map((p) => p.body.version), [1, 2], 'per-aggregate order');
  assert.equal(delivered[1]?.body.event_id, second);
  assert.equal(delivered[1]?.headers['idempotency-key'], second, 'receivers deduplicate on the event id');
  assert.equal(delivered[1]?.body.event.payload.name, 'Grace');

  assert.equal(await ok(['plugin', 'replay', 'hook', 'person', 'p-1']), 'queued 2 event(s) for hook\n');
  await until('the replayed deliveries', () => (receiver.eventIds().length >= 4 ? true : undefined));
  assert.deepEqual(receiver.eventIds().slice(2), receiver.eventIds().slice(0, 2), 'the same events, in order');
  assert.equal(await ok(['plugin', 'replay', 'hook', 'person', 'p-404']), 'no events found for person::p-404\n');
  // Another payload mode for the replayed jobs only: these arrive with the state, the plugin keeps its mode.
  assert.equal(await ok(['plugin', 'replay', 'hook', 'person', 'p-1', '--payload-mode', 'all']), 'queued 2 event(s) for hook\n');
  await until('the replay in mode all', () => (receiver.eventIds().length >= 6 ? true : undefined));
  const replayed = receiver.posts.filter((p) => p.body.aggregate_id === 'p-1').slice(-2);
  assert.ok(replayed.every((p) => p.body.state && typeof p.body.state === 'object' && p.body.event), 'mode all: event and state');
  assert.equal(JSON.parse(await ok(['plugin', 'list', '--json'])).find((d: { name: string }) => d.name === 'hook').payload_mode, 'event-only');
});

test('cli plugin - disabled, its jobs wait (queue and status show them) and appends are not queued; enabled, the jobs arrive', { timeout: 60_000 }, async () => {
  assert.equal(await ok(['plugin', 'disable', 'hook']), "Plugin 'hook' disabled\n");
  assert.equal(await ok(['plugin', 'disable', 'hook']), "Plugin 'hook' is already disabled\n");
  const before = receiver.eventIds().length;
  // One job per enabled plugin (DESIGN §8): an event committed while the plugin is off gets none.
  const skipped = await append('p-2', 'person_created', 'Lin');
  assert.equal(await ok(['plugin', 'replay', 'hook', 'person', 'p-1']), 'queued 2 event(s) for hook\n');
  const waiting = receiver.eventIds().slice(0, 2);
  await until('two pending jobs', async () => ((await queued()).plugins[0]?.pending === 2 ? true : undefined));
  const text = await ok(['queue']);
  assert.match(text, /^pending=2 processing=0 done=\d+ dead=0\n/);
  assert.match(text, /\nPlugins:\n {2}plugin=hook enabled=false pending=2 processing=0 done=\d+ dead=0 lag_ms=\d+\n/);
  for (const id of waiting) assert.match(text, new RegExp(`\\nPending jobs:\\n(.*\\n)*? {2}plugin=hook event_id=${id} attempts=0 next_retry=- last_error=-\\n`));
  assert.match(await ok(['status']), /\nplugins: name=hook enabled=false pending=2 dead=0 lag_secs=[\d.]+\n/);
  assert.equal(receiver.eventIds().length, before, 'nothing delivered while disabled');

  assert.equal(await ok(['plugin', 'enable', 'hook']), "Plugin 'hook' enabled\n");
  await until('the waiting deliveries', () => (receiver.eventIds().length >= before + 2 ? true : undefined));
  assert.deepEqual(receiver.eventIds().slice(before), waiting, 'in version order');
  assert.ok(!receiver.eventIds().includes(skipped), 'the event committed while disabled was not queued');
  await fails(['plugin', 'remove', 'hook'], 1, /disable plugin 'hook' before removing it \(use plugin disable hook or pass --disable\)/);
});

test('cli queue - a failing receiver makes jobs dead; queue lists them, retry delivers, clear removes', { timeout: 60_000 }, async () => {
  receiver.failing = true;
  const doomed = await append('p-3', 'person_created', 'Kim');
  await until('a dead job', async () => ((await queued()).plugins[0]?.dead === 1 ? true : undefined));
  const text = await ok(['queue']);
  assert.match(text, /^pending=0 processing=0 done=\d+ dead=1\n/);
  assert.match(text, new RegExp(`\\nDead jobs:\\n {2}plugin=hook event_id=${doomed} attempts=2 last_error=http plugin request failed \\(500\\): boom\\n`));
  const [noMatch] = await Promise.all([ok(['queue', 'retry', '--event-id', '1']), fails(['queue', 'retry', '--event-id', 'x1'], 2, /an event id is a decimal snowflake id/)]);
  assert.equal(noMatch, 'no dead plugin jobs match the provided id\n');

  receiver.failing = false;
  assert.equal(await ok(['queue', 'retry']), 'retry summary: retried 1 job(s), 0 still dead\n');
  await until('the retried delivery', () => (receiver.eventIds().includes(doomed) ? true : undefined));
  assert.equal(await ok(['queue', 'retry']), 'no dead plugin jobs to retry\n');

  receiver.failing = true;
  const cleared = await append('p-4', 'person_created', 'Ola');
  await until('another dead job', async () => ((await queued()).jobs.some((j: any) => j.event_id === cleared && j.status === 'dead') ? true : undefined));
  receiver.failing = false;
  const [, none] = await Promise.all([fails(['queue', 'clear'], 2, /pass --yes/), ok(['queue', 'clear', '--yes', '--plugin', 'other'])]);
  assert.equal(none, 'no dead plugin jobs to clear\n');
  assert.equal(await ok(['queue', 'clear', '--yes']), 'cleared 1 dead job(s) from the plugin queue\n');
  const after = await queued();
  assert.equal(after.plugins[0].dead, 0);
  assert.equal(after.jobs.length, 0, 'nothing left open');
  assert.ok(!receiver.eventIds().includes(cleared), 'a cleared job is never delivered');

  assert.equal(await ok(['plugin', 'remove', 'hook', '--disable']), "Plugin 'hook' removed\n");
  assert.equal(await ok(['plugin', 'list']), '(no plugins configured)\n');
});
