/**
 * Plugin kinds http, tcp, log and process against real receivers the test starts: node:http and
 * node:https servers, node:net servers, a log file, and small node scripts as child processes.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { httpOptions, logOptions, processOptions, tcpOptions, type Delivery, type DeliveryBody } from '../src/plugins/types.js';
import type { DelivererContext } from '../src/plugins/kinds/context.js';
import { createHttpDeliverer } from '../src/plugins/kinds/http.js';
import { createTcpDeliverer } from '../src/plugins/kinds/tcp.js';
import { createLogDeliverer } from '../src/plugins/kinds/log.js';
import { createProcessDeliverer } from '../src/plugins/kinds/process.js';
import { hasOpenssl, makeCerts } from './helpers/tls.js';

const dir = mkdtempSync(join(tmpdir(), 'edbx-kinds-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function context(name: string): { ctx: DelivererContext; logs: string[] } {
  const logs: string[] = [];
  return { ctx: { name, dataDir: dir, log: (level, msg) => logs.push(`${level} ${msg}`) }, logs };
}

function body(version: number, parts: { event?: boolean; state?: boolean; schema?: boolean } = { event: true }): DeliveryBody {
  const event_id = `ev-${version}`;
  return {
    event_id,
    tenant: 'default',
    aggregate_type: 'order',
    aggregate_id: 'o-1',
    version,
    event_type: 'line_added',
    ...(parts.event
      ? {
          event: {
            aggregate_type: 'order',
            aggregate_id: 'o-1',
            event_type: 'line_added',
            version,
            payload: { line: version },
            extensions: {},
            metadata: { event_id, created_at: '2024-01-01T00:00:00.000Z', issued_by: null },
            hash: 'h'.repeat(64),
            merkle_root: 'r'.repeat(64),
          },
        }
      : {}),
    ...(parts.state ? { state: { lines: version } } : {}),
    ...(parts.schema ? { schema: { aggregate: 'order', events: {} } } : {}),
  };
}

function delivery(version: number, parts?: Parameters<typeof body>[1], attempt = 1): Delivery {
  return { job_id: `job-${version}`, plugin: 'p', attempt, body: body(version, parts) };
}

async function listen<T extends HttpServer | NetServer>(server: T, port = 0): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

/** Stops a net server for good: live connections are cut, not waited for. */
async function stopNet(server: NetServer, sockets: Set<Socket>): Promise<void> {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

async function stopHttp(server: HttpServer): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

async function freePort(): Promise<number> {
  const s = createNetServer();
  const port = await listen(s);
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

// ---------------------------------------------------------------- http

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  remotePort: number;
}

function httpReceiver(answer: (req: IncomingMessage, res: ServerResponse) => void): { server: HttpServer; seen: Seen[] } {
  const seen: Seen[] = [];
  const server = createHttpServer(async (req, res) => {
    const text = await readBody(req);
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: text, remotePort: req.socket.remotePort ?? 0 });
    answer(req, res);
  });
  return { server, seen };
}

test('http - POSTs the JSON body with identity and configured headers over one kept-alive connection; 2xx acks', { timeout: 10_000 }, async () => {
  const { server, seen } = httpReceiver((_req, res) => res.writeHead(204).end());
  const port = await listen(server);
  const { ctx } = context('hook');
  // No scheme and https=false → http:// (the original's rule); a configured Idempotency-Key cannot replace ours.
  const options = httpOptions.parse({ kind: 'http', endpoint: `127.0.0.1:${port}/hook?x=1`, headers: { 'X-Token': 'abc', 'Idempotency-Key': 'mine' } });
  const deliverer = createHttpDeliverer(options, ctx);
  try {
    await deliverer.deliver(delivery(1));
    await deliverer.deliver(delivery(2, { event: true, state: true }, 3));
    await deliverer.deliver(delivery(3));
    await deliverer.deliver(delivery(4));
    assert.equal(seen.length, 4);
    const [first, second] = seen as [Seen, Seen];
    assert.equal(first.method, 'POST');
    assert.equal(first.url, '/hook?x=1');
    assert.equal(first.headers['content-type'], 'application/json');
    assert.equal(first.headers['x-token'], 'abc');
    assert.equal(first.headers['idempotency-key'], 'ev-1');
    assert.equal(first.headers['x-eventdbx-event-id'], 'ev-1');
    assert.equal(first.headers['x-eventdbx-job-id'], 'job-1');
    assert.equal(first.headers['x-eventdbx-attempt'], '1');
    assert.deepEqual(JSON.parse(first.body), body(1));
    assert.equal(second.headers['x-eventdbx-attempt'], '3');
    assert.deepEqual(JSON.parse(second.body), body(2, { event: true, state: true }));
    // undici may open a second connection while the first finishes its answer, but no more.
    assert.ok(new Set(seen.map((r) => r.remotePort)).size <= 2, 'connections are kept alive and reused');
  } finally {
    await deliverer.close();
    await stopHttp(server);
  }
});

test('http - a non-2xx answer fails with the status and the first 256 characters of the body', { timeout: 10_000 }, async () => {
  const { server } = httpReceiver((_req, res) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`boom\n${'x'.repeat(400)}`));
  const port = await listen(server);
  const deliverer = createHttpDeliverer(httpOptions.parse({ kind: 'http', endpoint: `http://127.0.0.1:${port}/` }), context('hook').ctx);
  try {
    await assert.rejects(deliverer.deliver(delivery(1)), (err: Error) => {
      assert.match(err.message, /^http plugin request failed \(500\): boom x+…$/);
      assert.equal(err.message.length, 'http plugin request failed (500): '.length + 256 + 1);
      return true;
    });
  } finally {
    await deliverer.close();
    await stopHttp(server);
  }
});

test('http - connection refused fails delivery and the readiness check with a short reason', { timeout: 10_000 }, async () => {
  const port = await freePort();
  const deliverer = createHttpDeliverer(httpOptions.parse({ kind: 'http', endpoint: `http://127.0.0.1:${port}/` }), context('hook').ctx);
  try {
    await assert.rejects(deliverer.deliver(delivery(1)), { message: 'http plugin request failed: connection refused' });
    await assert.rejects(deliverer.check(), { message: "failed to establish connection for 'hook': connection refused" });
  } finally {
    await deliverer.close();
  }
});

test('http - an endpoint that never answers times out within timeout_ms', { timeout: 10_000 }, async () => {
  const server = createHttpServer(() => undefined); // takes the request, never answers
  const port = await listen(server);
  const deliverer = createHttpDeliverer(httpOptions.parse({ kind: 'http', endpoint: `http://127.0.0.1:${port}/`, timeout_ms: 300 }), context('hook').ctx);
  try {
    const started = Date.now();
    await assert.rejects(deliverer.deliver(delivery(1)), { message: 'http plugin request timed out after 300 ms' });
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 250 && elapsed < 1500, `timed out after ${elapsed} ms`);
  } finally {
    await deliverer.close();
    await stopHttp(server);
  }
});

test('http - check passes on any HEAD answer below 500 and fails on 5xx', { timeout: 10_000 }, async () => {
  let status = 405;
  const { server, seen } = httpReceiver((_req, res) => res.writeHead(status).end());
  const port = await listen(server);
  const deliverer = createHttpDeliverer(httpOptions.parse({ kind: 'http', endpoint: `http://127.0.0.1:${port}/hook` }), context('hook').ctx);
  try {
    await deliverer.check();
    assert.equal(seen[0]?.method, 'HEAD');
    status = 503;
    await assert.rejects(deliverer.check(), { message: "failed to establish connection for 'hook': HEAD answered 503" });
  } finally {
    await deliverer.close();
    await stopHttp(server);
  }
});

test('http - https endpoint with a self-signed certificate is trusted through ca_file only', { timeout: 30_000, skip: hasOpenssl() ? false : 'openssl not installed' }, async () => {
  const certs = makeCerts(mkdtempSync(join(dir, 'tls-')));
  const seen: string[] = [];
  const server = createHttpsServer({ cert: readFileSync(certs.selfCertFile), key: readFileSync(certs.selfKeyFile) }, async (req, res) => {
    seen.push(await readBody(req));
    res.writeHead(200).end('ok');
  });
  const port = await listen(server);
  // No scheme + https=true → https:// (the original's rule).
  const trusted = createHttpDeliverer(httpOptions.parse({ kind: 'http', endpoint: `localhost:${port}/in`, https: true, ca_file: certs.selfCertFile }), context('tls').ctx);
  const untrusted = createHttpDeliverer(httpOptions.parse({ kind: 'http', endpoint: `localhost:${port}/in`, https: true }), context('tls').ctx);
  try {
    await trusted.deliver(delivery(7));
    assert.deepEqual(seen.map((s) => JSON.parse(s)), [body(7)]);
    await trusted.check();
    await assert.rejects(untrusted.deliver(delivery(8)), /^Error: http plugin request failed: TLS /);
    assert.equal(seen.filter((s) => s !== '').length, 1, 'nothing reached the receiver over the untrusted connection');
    const missingCa = createHttpDeliverer(httpOptions.parse({ kind: 'http', endpoint: `localhost:${port}`, https: true, ca_file: join(dir, 'nope.pem') }), context('tls').ctx);
    await assert.rejects(missingCa.deliver(delivery(9)), { message: 'http plugin ca_file cannot be read: not found' });
    await missingCa.close();
  } finally {
    await trusted.close();
    await untrusted.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

// ---------------------------------------------------------------- tcp

interface TcpReceiver {
  server: NetServer;
  sockets: Set<Socket>;
  lines: string[];
  connections: number;
}

/** A line receiver; `reply` answers each line (undefined = no answer, 'close' = cut the connection). */
function tcpReceiver(reply: (line: string) => string | undefined | 'close'): TcpReceiver {
  const state: TcpReceiver = { server: createNetServer(), sockets: new Set(), lines: [], connections: 0 };
  state.server.on('connection', (socket) => {
    state.connections++;
    state.sockets.add(socket);
    socket.on('close', () => state.sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        state.lines.push(line);
        const answer = reply(line);
        if (answer === 'close') socket.destroy();
        else if (answer !== undefined) socket.write(`${answer}\n`);
      }
    });
  });
  return state;
}

test('tcp - each job is one JSON line, acknowledged by "ok" or {"ack":event_id}; jobs pipeline on one connection', { timeout: 10_000 }, async () => {
  const receiver = tcpReceiver((line) => {
    const parsed = JSON.parse(line) as DeliveryBody;
    return parsed.version % 2 ? 'ok' : JSON.stringify({ ack: parsed.event_id });
  });
  const port = await listen(receiver.server);
  const deliverer = createTcpDeliverer(tcpOptions.parse({ kind: 'tcp', host: '127.0.0.1', port }), context('sink').ctx);
  try {
    await deliverer.check();
    await Promise.all([1, 2, 3, 4].map((v) => deliverer.deliver(delivery(v))));
    assert.deepEqual(receiver.lines.map((l) => JSON.parse(l)), [1, 2, 3, 4].map((v) => body(v)));
    assert.equal(receiver.connections, 2, 'one connection for the check, one shared by all four jobs');
  } finally {
    await deliverer.close();
    await stopNet(receiver.server, receiver.sockets);
  }
});

test('tcp - any other answer refuses the job; an ack for another event fails it; the connection stays usable after a refusal', { timeout: 10_000 }, async () => {
  let answer = 'no';
  const receiver = tcpReceiver(() => answer);
  const port = await listen(receiver.server);
  const deliverer = createTcpDeliverer(tcpOptions.parse({ kind: 'tcp', host: '127.0.0.1', port }), context('sink').ctx);
  try {
    await assert.rejects(deliverer.deliver(delivery(1)), { message: 'tcp plugin receiver refused the job: no' });
    answer = 'ok';
    await deliverer.deliver(delivery(2));
    assert.equal(receiver.connections, 1);
    answer = JSON.stringify({ ack: 'ev-999' });
    await assert.rejects(deliverer.deliver(delivery(3)), { message: 'tcp plugin receiver acknowledged another event (out of step)' });
  } finally {
    await deliverer.close();
    await stopNet(receiver.server, receiver.sockets);
  }
});

test('tcp - a receiver that closes the connection, or never answers, fails the job', { timeout: 10_000 }, async () => {
  const closing = tcpReceiver(() => 'close');
  const silent = tcpReceiver(() => undefined);
  const closingPort = await listen(closing.server);
  const silentPort = await listen(silent.server);
  const a = createTcpDeliverer(tcpOptions.parse({ kind: 'tcp', host: '127.0.0.1', port: closingPort }), context('sink').ctx);
  const b = createTcpDeliverer(tcpOptions.parse({ kind: 'tcp', host: '127.0.0.1', port: silentPort, timeout_ms: 200 }), context('sink').ctx);
  try {
    await assert.rejects(a.deliver(delivery(1)), /^Error: tcp plugin (receiver closed the connection before acknowledging|connection failed: connection reset|connection closed before the ack)$/);
    assert.equal(closing.lines.length, 1, 'the line reached the receiver');
    const started = Date.now();
    await assert.rejects(b.deliver(delivery(1)), { message: 'tcp plugin got no ack within 200 ms' });
    assert.ok(Date.now() - started < 1000);
  } finally {
    await a.close();
    await b.close();
    await stopNet(closing.server, closing.sockets);
    await stopNet(silent.server, silent.sockets);
  }
});

test('tcp - the persistent connection is reopened after the receiver restarts', { timeout: 10_000 }, async () => {
  let receiver = tcpReceiver(() => 'ok');
  const port = await listen(receiver.server);
  const deliverer = createTcpDeliverer(tcpOptions.parse({ kind: 'tcp', host: '127.0.0.1', port }), context('sink').ctx);
  try {
    await deliverer.deliver(delivery(1));
    await stopNet(receiver.server, receiver.sockets);
    await assert.rejects(deliverer.deliver(delivery(2)), { message: 'tcp plugin connection failed: connection refused' });
    await assert.rejects(deliverer.check(), { message: "failed to establish connection for 'sink': connection refused" });
    receiver = tcpReceiver(() => 'ok');
    await listen(receiver.server, port);
    await deliverer.deliver(delivery(2));
    await deliverer.deliver(delivery(3));
    assert.deepEqual(receiver.lines.map((l) => (JSON.parse(l) as DeliveryBody).version), [2, 3]);
    assert.equal(receiver.connections, 1);
  } finally {
    await deliverer.close();
    await stopNet(receiver.server, receiver.sockets);
  }
});

test('tcp - a kept connection the receiver dropped while idle is replaced without failing the next job', { timeout: 10_000 }, async () => {
  const receiver = tcpReceiver(() => 'ok');
  // Answer, then hang up: the next job is written before (or just as) the client sees the close.
  receiver.server.prependListener('connection', (socket: Socket) => socket.on('data', () => setImmediate(() => socket.end())));
  const port = await listen(receiver.server);
  const deliverer = createTcpDeliverer(tcpOptions.parse({ kind: 'tcp', host: '127.0.0.1', port }), context('sink').ctx);
  try {
    for (let v = 1; v <= 5; v++) await deliverer.deliver(delivery(v));
    assert.deepEqual([...new Set(receiver.lines.map((l) => (JSON.parse(l) as DeliveryBody).version))], [1, 2, 3, 4, 5]);
  } finally {
    await deliverer.close();
    await stopNet(receiver.server, receiver.sockets);
  }
});

// ---------------------------------------------------------------- log

const LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|WARN) eventdbx\.plugin\.log (.*)$/;

test('log - the template is substituted; state and schema get their own lines, appended to a file under the data dir', { timeout: 10_000 }, async () => {
  const options = logOptions.parse({ kind: 'log', template: 'saw {event} on {aggregate}/{id} ({event})', file: 'plugin-a.log' });
  const deliverer = createLogDeliverer(options, context('audit').ctx);
  try {
    await deliverer.check();
    await deliverer.deliver(delivery(1, { event: true, state: true, schema: true }));
    await deliverer.deliver(delivery(2, {}));
  } finally {
    await deliverer.close();
  }
  const lines = readFileSync(join(dir, 'plugin-a.log'), 'utf8').trimEnd().split('\n');
  const texts = lines.map((l) => {
    const m = LINE.exec(l);
    assert.ok(m, `log line format: ${l}`);
    assert.equal(m[1], 'INFO');
    return m[2];
  });
  assert.deepEqual(texts, [
    'saw line_added on order/o-1 (line_added)',
    'aggregate=order id=o-1 state={"lines":1}',
    'schema=order payload={"aggregate":"order","events":{}}',
    'plugin job contained no data',
  ]);
});

test('log - the default format at a level; check refuses a file whose directory does not exist', { timeout: 10_000 }, async () => {
  const file = join(dir, 'plugin-b.log');
  writeFileSync(file, 'existing\n');
  const deliverer = createLogDeliverer(logOptions.parse({ kind: 'log', level: 'warn', file }), context('audit').ctx);
  try {
    await deliverer.deliver(delivery(5));
  } finally {
    await deliverer.close();
  }
  const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
  assert.equal(lines[0], 'existing', 'appended, not truncated');
  const m = LINE.exec(lines[1] ?? '');
  assert.ok(m);
  assert.equal(m[1], 'WARN');
  assert.equal(m[2], 'aggregate=order id=o-1 event=line_added payload={"line":5}');
  const nowhere = createLogDeliverer(logOptions.parse({ kind: 'log', file: join(dir, 'missing', 'x.log') }), context('audit').ctx);
  await assert.rejects(nowhere.check(), { message: "failed to establish connection for 'audit': log file is not writable: not found" });
  await assert.rejects(nowhere.deliver(delivery(1)), { message: 'log plugin cannot open its file: not found' });
  await nowhere.close();
});

// ---------------------------------------------------------------- process

/** Writes a node script answering jobs; `handle(job, count)` returns the answer line, or null for none. */
function script(name: string, source: string): string {
  const file = join(dir, name);
  writeFileSync(
    file,
    `import { createInterface } from 'node:readline';
let count = 0;
const answer = (msg) => process.stdout.write(JSON.stringify(msg) + '\\n');
${source}
createInterface({ input: process.stdin }).on('line', (line) => { count++; handle(JSON.parse(line), count); }).on('close', () => process.exit(0));
`,
  );
  return file;
}

function processDeliverer(file: string, name: string, timeout_ms = 5000) {
  const { ctx, logs } = context(name);
  return { deliverer: createProcessDeliverer(processOptions.parse({ kind: 'process', command: process.execPath, args: [file], timeout_ms }), ctx), logs };
}

async function waitFor(condition: () => boolean, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('process - jobs in flight together are answered out of order and matched by job_id (ack and nack)', { timeout: 15_000 }, async () => {
  // Odd versions are acked, even ones nacked; the later the job, the sooner its answer.
  const file = script(
    'ack-odd.mjs',
    `function handle(job) {
  console.error('got ' + job.job_id);
  const ok = job.event_id === job.body.event_id && job.body.version % 2 === 1;
  setTimeout(() => answer(ok ? { ack: job.job_id } : { nack: job.job_id, error: 'even version ' + job.body.version }), (6 - job.body.version) * 40);
}`,
  );
  const { deliverer, logs } = processDeliverer(file, 'proc');
  try {
    await deliverer.check();
    const results = await Promise.allSettled([1, 2, 3, 4, 5].map((v) => deliverer.deliver(delivery(v))));
    assert.deepEqual(
      results.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as Error).message)),
      ['ok', 'process plugin refused the job: even version 2', 'ok', 'process plugin refused the job: even version 4', 'ok'],
    );
    await waitFor(() => logs.filter((l) => l.startsWith("warn process plugin 'proc' stderr: got job-")).length === 5, 2000);
  } finally {
    await deliverer.close();
  }
});

test('process - when the child dies its job fails, it is restarted with growing backoff, and the next job succeeds', { timeout: 15_000 }, async () => {
  const file = script('crash.mjs', `function handle(job, n) { if (n === 3) process.exit(3); answer({ ack: job.job_id }); }`);
  const { deliverer, logs } = processDeliverer(file, 'proc');
  try {
    await deliverer.deliver(delivery(1));
    await deliverer.deliver(delivery(2));
    await assert.rejects(deliverer.deliver(delivery(3)), { message: 'process plugin exited with code 3 before answering the job' });
    await deliverer.deliver(delivery(4)); // waits for the restart
    assert.ok(logs.includes("warn process plugin 'proc' exited with code 3; restarting in 100 ms"), logs.join('\n'));
    await deliverer.deliver(delivery(5));
    await assert.rejects(deliverer.deliver(delivery(6)), /exited with code 3/);
    await deliverer.deliver(delivery(7));
    assert.ok(logs.includes("warn process plugin 'proc' exited with code 3; restarting in 200 ms"), 'the delay doubled');
  } finally {
    await deliverer.close();
  }
});

test('process - a job never answered times out; close stops even a child that ignores stdin end and SIGTERM', { timeout: 15_000 }, async () => {
  const file = script(
    'silent.mjs',
    `console.log('pid=' + process.pid);
process.on('SIGTERM', () => {});
setInterval(() => {}, 1000);
function handle() {}`,
  );
  // The generic script exits when stdin closes; this one must not.
  writeFileSync(file, readFileSync(file, 'utf8').replace(".on('close', () => process.exit(0))", ''));
  const { deliverer, logs } = processDeliverer(file, 'quiet', 300);
  try {
    const started = Date.now();
    await assert.rejects(deliverer.deliver(delivery(1)), { message: 'process plugin job timed out after 300 ms' });
    assert.ok(Date.now() - started < 2000);
    await waitFor(() => logs.some((l) => l.startsWith("info process plugin 'quiet' stdout: pid=")), 5000);
    const pid = Number(/pid=(\d+)/.exec(logs.find((l) => l.includes('pid=')) ?? '')?.[1]);
    assert.ok(pid > 0);
    await deliverer.close();
    assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, 'the child is gone');
    await assert.rejects(deliverer.deliver(delivery(2)), { message: 'process plugin closed' });
  } finally {
    await deliverer.close();
  }
});

test('process - check fails for a missing command and for a child that exits at once', { timeout: 15_000 }, async () => {
  const { ctx } = context('gone');
  const missing = createProcessDeliverer(processOptions.parse({ kind: 'process', command: join(dir, 'no-such-program') }), ctx);
  // sh, not node: it exits well inside the 200 ms even on a loaded machine.
  const quitter = createProcessDeliverer(processOptions.parse({ kind: 'process', command: '/bin/sh', args: ['-c', 'exit 2'] }), ctx);
  try {
    await assert.rejects(missing.check(), { message: "failed to establish connection for 'gone': process cannot be started (not found)" });
    await assert.rejects(quitter.check(), { message: "failed to establish connection for 'gone': process exited with code 2" });
  } finally {
    await missing.close();
    await quitter.close();
  }
});
