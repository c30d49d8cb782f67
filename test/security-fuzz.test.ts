/**
 * Security fuzz (issue 10 item 9): at least 10,000 seeded random and mutated requests — methods,
 * paths, bodies, ids, headers, tokens, cursors, filters, sorts; prototype-pollution keys, lone
 * surrogates, NUL bytes, 5,000-deep nesting, 1e999, bodies up to the limit — against a real server.
 * Every answer must be a success or the DESIGN §6 error model (no 5xx, no stack, path or library
 * message); afterwards the server is up, nothing polluted Object.prototype (here or in the shard
 * workers) and every aggregate of every tenant the run touched still verifies.
 *
 * Replay: every failure names its seed and index. `FUZZ_SEED=<seed>` replays a whole run;
 * `FUZZ_SEED=<seed> FUZZ_ONLY=<i>[,<j>…]` sends only those requests (after the same seeding), which
 * reproduces any failure that does not depend on what earlier requests wrote.
 * `FUZZ_REQUESTS` scales the run (default 10,000), `FUZZ_CONCURRENCY` the requests in flight (8).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createWriteStream } from 'node:fs';
import net from 'node:net';
import { ERROR_CATALOGUE, generateKeyPair, issueToken, readConfig, type IssueInput } from '../src/core/index.js';
import { removeDir, startServerInProcess, type TestServer } from './helpers/server.js';
import { ID_POOL, TYPES, generate, idFor, type FuzzContext, type FuzzRequest } from './helpers/fuzz-gen.js';

const SEED = Number.parseInt(process.env.FUZZ_SEED ?? '20261210', 10) >>> 0;
const REQUESTS = Number.parseInt(process.env.FUZZ_REQUESTS ?? '10000', 10);
const CONCURRENCY = Number.parseInt(process.env.FUZZ_CONCURRENCY ?? '8', 10);
const ONLY = process.env.FUZZ_ONLY ? process.env.FUZZ_ONLY.split(',').map((s) => Number.parseInt(s, 10)) : undefined;
/** Fetch answers within this or the request counts as unanswered (the server's own timeout is 30 s). */
const ANSWER_TIMEOUT_MS = 30_000;
/** A raw request that drew no answer by then gets an end-of-stream (see sendRaw). */
const RAW_NUDGE_MS = 1_000;

interface Answer {
  /** 0 when no status line came back. */
  status: number;
  contentType: string;
  text: string;
  /** Transport failure (reset, timeout, closed without an answer). */
  error?: string;
}

interface Failure {
  request: FuzzRequest;
  answer: Answer;
  problem: string;
}

let server: TestServer;
let ctx: FuzzContext;
const prototypesBefore = prototypeNames();
/** Every tenant a request named (normalised as the server does): the final verify lists them all. */
const tenantsTouched = new Set<string>(['default', 'acme', 'fz-t2']);
let fuzzRan = false;

before(async () => {
  server = await startServerInProcess();
  ctx = await seed(server);
});
after(async () => {
  await server.stop();
  removeDir(server.dataDir);
});

test('security fuzz - every answer to 10,000 hostile requests is a success or the error model', { timeout: 240_000 }, async (t) => {
  const indexes = ONLY ?? Array.from({ length: REQUESTS }, (_, i) => i);
  if (!ONLY) assert.ok(REQUESTS >= 1, 'FUZZ_REQUESTS must be positive');
  const failures: Failure[] = [];
  const statuses = new Map<number, number>();
  /** Statuses per generator (`write`, `mutate:write`, `raw`…): shows how deep each kind reached. */
  const byKind = new Map<string, Map<number, number>>();
  // FUZZ_LOG=<file>: one line per answer, to study what the run reached (not needed to replay).
  const log = process.env.FUZZ_LOG ? createWriteStream(process.env.FUZZ_LOG) : undefined;
  const started = Date.now();
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < indexes.length) {
      const request = generate(SEED, indexes[next++] as number, ctx);
      noteTenant(request);
      const answer = await send(server.url, request);
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      const kind = request.label.replace(/\..*$/, '');
      const counts = byKind.get(kind) ?? new Map<number, number>();
      byKind.set(kind, counts.set(answer.status, (counts.get(answer.status) ?? 0) + 1));
      const problem = judge(request, answer);
      if (log) log.write(`${JSON.stringify({ index: request.index, label: request.label, method: request.method, path: request.path.slice(0, 300), status: answer.status, answer: answer.text.slice(0, 300), problem })}\n`);
      if (problem) failures.push({ request, answer, problem });
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  fuzzRan = true;
  await new Promise<void>((resolve) => (log ? log.end(resolve) : resolve()));
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  t.diagnostic(`seed ${SEED}: ${indexes.length} requests in ${seconds} s; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`);
  for (const [kind, counts] of [...byKind].sort()) t.diagnostic(`  ${kind}: ${JSON.stringify(Object.fromEntries([...counts].sort((a, b) => a[0] - b[0])))}`);
  failures.sort((a, b) => a.request.index - b.request.index);
  assert.equal(failures.length, 0, report(failures, indexes.length));
});

test('security fuzz - afterwards the server is up, nothing is polluted and every aggregate verifies', { timeout: 120_000 }, async () => {
  assert.ok(fuzzRan, 'the fuzz ran first');
  const problems: string[] = [];
  const health = await call('GET', '/health');
  assert.equal(health.status, 200, `server still answers /health (${health.status} ${JSON.stringify(health.body)})`);
  assert.deepEqual(health.body, { status: 'ok' });

  // This process holds the coordinator (startServerInProcess): its prototypes must be unchanged.
  assert.deepEqual(prototypeNames(), prototypesBefore, 'no new keys on the built-in prototypes');
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal(Object.hasOwn(Object.prototype, 'polluted'), false);

  // The shard workers are other threads: a polluted Object.prototype there would make a patch
  // `test` of an absent key succeed. Enough aggregates to land on every shard.
  for (let i = 0; i < 16; i++) {
    const created = await call('POST', `/v1/aggregates/fz_canary/c${i}`, { event_type: 'created', payload: {} });
    if (created.status !== 201) problems.push(`canary fz_canary/c${i} not created: ${created.status} ${JSON.stringify(created.body)}`);
    const probe = await call('POST', `/v1/aggregates/fz_canary/c${i}/patch`, { event_type: 'checked', patch: [{ op: 'test', path: '/polluted', value: 'yes' }] });
    if (probe.status !== 400) problems.push(`canary fz_canary/c${i}: a test of the absent key 'polluted' answered ${probe.status} (polluted prototype in a shard worker?)`);
  }

  // Names every object inherits read as absent state fields (DESIGN §6: missing → null).
  const inherited = ['__proto__', 'constructor', 'toString', 'polluted'];
  const select = await call('GET', `/v1/aggregates/fz_canary/c0/select?fields=${inherited.join(',')}`);
  // JSON.parse (the helper's) keeps a "__proto__" member as an own property, so hasOwn sees it.
  if (select.status !== 200 || !inherited.every((name) => Object.hasOwn(select.body, name) && select.body[name] === null)) {
    problems.push(`select of inherited names on fz_canary/c0: ${select.status} ${JSON.stringify(select.body)} (each should be null)`);
  }

  // Schemas may hide types or fields from every read: drop them so every aggregate is listed.
  let total = 0;
  for (const tenant of [...tenantsTouched].sort()) {
    await dropSchemas(tenant, problems);
    const aggregates = await listAll(tenant, problems);
    total += aggregates.length;
    await inLanes(aggregates, async ({ type, id }) => {
      const res = await call('GET', `/v1/aggregates/${type}/${id}/verify`, undefined, { 'x-tenant-id': tenant });
      if (res.status !== 200 || res.body?.valid !== true) problems.push(`verify ${tenant}/${type}/${id}: ${res.status} ${JSON.stringify(res.body).slice(0, 400)}${await culprit(tenant, type, id, res.body?.first_invalid_version)}`);
    });
  }
  // The run may only write to tenants it named; if the server counts more, some were not listed.
  const status = await call('GET', '/v1/status');
  if (status.body?.aggregates !== total) problems.push(`listed ${total} aggregates over ${tenantsTouched.size} tenants, /v1/status counts ${status.body?.aggregates}`);
  assert.ok(total > 0, 'the run left aggregates to verify');
  assert.deepEqual(problems.slice(0, 40), [], `seed ${SEED}: ${problems.length} problems after the run`);
});

// ---- Seeding ----------------------------------------------------------------------------------

async function call(method: string, path: string, body?: unknown, headers?: Record<string, string>) {
  return server.request(method, path, body, headers);
}

async function ok(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<any> {
  const res = await call(method, path, body, headers);
  assert.ok(res.status >= 200 && res.status < 300, `seed ${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Aggregates of every type (active, archived, snapshotted, patched, batched), a schema and tokens. */
async function seed(s: TestServer): Promise<FuzzContext> {
  const auth = readConfig(s.dataDir).config.auth;
  const mint = (input: Partial<IssueInput>, settings = auth, now = Date.now()): string => issueToken(settings, { group: 'fuzz', user: 'fz', actions: ['*'], ...input }, now).token;
  const tokens = {
    root: s.token,
    reader: mint({ actions: ['aggregate.read', 'events.read', 'schema.read'] }),
    acme: mint({ tenants: ['acme'], actions: ['aggregate.read', 'aggregate.append', 'aggregate.create'] }),
    scoped: mint({ actions: ['aggregate.*', 'events.read'], resources: ['fz_order/o1*', 'fz_note'] }),
    limited: mint({ write_events: 5 }),
    expired: mint({ ttl_secs: 60 }, auth, Date.now() - 3_600_000),
    foreign: mint({}, { ...auth, ...generateKeyPair() }),
    wrongAudience: mint({}, { ...auth, audience: 'someone-else' }),
  };
  await ok('PUT', '/v1/schemas/fz_person', {
    column_types: { age: 'integer', name: { type: 'text', length: { max: 100 } }, active: 'boolean' },
    events: { person_created: {}, person_updated: {} },
  });
  const eventIds: string[] = [];
  for (const type of TYPES) {
    const eventType = type === 'fz_person' ? 'person_created' : 'created';
    const update = type === 'fz_person' ? 'person_updated' : 'updated';
    // Every id of the pool exists before the run, so most requests replay alone (FUZZ_ONLY).
    for (let n = 0; n < ID_POOL; n++) {
      const id = idFor(type, n);
      await ok('POST', `/v1/aggregates/${type}/${id}`, { event_type: eventType, payload: { name: `n${n}`, age: n, tags: ['a', 'b'], nested: { a: n } } });
      const applied = await ok('POST', `/v1/aggregates/${type}/${id}/events`, { event_type: update, payload: { age: n + 1 }, metadata: { '@trace': 'seed' }, note: 'seeded' });
      eventIds.push(applied.metadata.event_id as string);
      if (n % 3 === 0) await ok('POST', `/v1/aggregates/${type}/${id}/patch`, { event_type: update, patch: [{ op: 'replace', path: '/name', value: `p${n}` }] });
      if (n % 4 === 1) await ok('POST', `/v1/aggregates/${type}/${id}/snapshots`, { comment: 'seed' });
      if (n % 5 === 4) await ok('POST', `/v1/aggregates/${type}/${id}/archive`, { comment: 'seed' });
    }
  }
  const batch = await ok('POST', '/v1/batch', {
    events: TYPES.map((type, i) => ({ aggregate_type: type, aggregate_id: idFor(type, 10 + i), event_type: type === 'fz_person' ? 'person_created' : 'created', payload: { name: 'batched' } })),
  });
  eventIds.push(...(batch.events as { metadata: { event_id: string } }[]).map((e) => e.metadata.event_id));
  for (const tenant of ['acme', 'fz-t2']) await ok('POST', '/v1/aggregates/fz_order/o1', { event_type: 'created', payload: { tenant } }, { 'x-tenant-id': tenant });
  const cursors: string[] = [];
  for (const path of ['/v1/aggregates?take=3', '/v1/aggregates?take=7&include_archived=true', '/v1/aggregates/fz_note?take=2&archived_only=true', '/v1/events?take=5', '/v1/aggregates/fz_order/o3/events?take=1']) {
    const page = await ok('GET', path);
    if (typeof page.next_cursor === 'string') cursors.push(page.next_cursor);
  }
  assert.ok(cursors.length >= 3, `the seed lists give cursors (${JSON.stringify(cursors)})`);
  return { tokens, eventIds, cursors };
}

// ---- Sending ----------------------------------------------------------------------------------

function send(url: string, request: FuzzRequest): Promise<Answer> {
  return request.raw ? sendRaw(url, request.raw) : sendFetch(url, request);
}

async function sendFetch(url: string, request: FuzzRequest): Promise<Answer> {
  try {
    const res = await fetch(`${url}${request.path}`, {
      method: request.method,
      headers: request.headers,
      ...(request.body !== undefined ? { body: request.body } : {}),
      redirect: 'manual',
      signal: AbortSignal.timeout(ANSWER_TIMEOUT_MS),
    });
    return { status: res.status, contentType: res.headers.get('content-type') ?? '', text: await res.text() };
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return { status: 0, contentType: '', text: '', error: `${(err as Error).name}: ${(err as Error).message}${cause ? ` (${cause.code ?? cause.message})` : ''}` };
  }
}

/**
 * Writes exact bytes on a fresh socket and reads until the server closes it (the request says
 * Connection: close). The socket is not half-closed after the write: Node's HTTP server drops the
 * answer of a request still in flight when the client ends its side, so only a request that drew
 * no byte at all within RAW_NUDGE_MS gets an end-of-stream (a junk prefix may wait for more).
 */
function sendRaw(url: string, bytes: Buffer): Promise<Answer> {
  const port = Number(new URL(url).port);
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error: string | undefined;
    const socket = net.connect(port, '127.0.0.1');
    const timer = setTimeout(() => {
      error = 'timed out';
      socket.destroy();
    }, ANSWER_TIMEOUT_MS);
    let nudge: NodeJS.Timeout | undefined;
    socket.on('data', (d: Buffer) => {
      clearTimeout(nudge);
      chunks.push(d);
      // A complete answer ends the exchange even if the server keeps the connection open.
      if (complete(Buffer.concat(chunks))) socket.destroy();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => (error ??= err.code ?? err.message));
    socket.on('close', () => {
      clearTimeout(timer);
      clearTimeout(nudge);
      resolve(parseRaw(Buffer.concat(chunks), error));
    });
    // A server that refuses early may reset the socket mid-write: that is read as its answer.
    socket.write(bytes, () => {
      if (chunks.length === 0) nudge = setTimeout(() => socket.end(), RAW_NUDGE_MS);
    });
  });
}

function parseRaw(data: Buffer, error: string | undefined): Answer {
  const text = data.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  if (end < 0 || !status) return { status: 0, contentType: '', text, error: error ?? 'closed without an answer' };
  const head = text.slice(0, end).split('\r\n').slice(1);
  const header = (name: string): string => head.find((h) => h.toLowerCase().startsWith(`${name}:`))?.slice(name.length + 1).trim() ?? '';
  let body = data.subarray(end + 4);
  if (/chunked/i.test(header('transfer-encoding'))) body = dechunk(body);
  else if (header('content-length')) body = body.subarray(0, Number(header('content-length')));
  return { status: Number(status[1]), contentType: header('content-type'), text: body.toString('utf8') };
}

/** Whether the bytes hold a whole first answer (headers, then its Content-Length or last chunk). */
function complete(data: Buffer): boolean {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) return false;
  const head = data.subarray(0, end).toString('latin1');
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  if (length) return data.length - end - 4 >= Number(length[1]);
  if (/\r\ntransfer-encoding:[^\r]*chunked/i.test(head)) return data.includes('\r\n0\r\n\r\n', end) || data.subarray(end + 4).toString('latin1').startsWith('0\r\n\r\n');
  return false;
}

function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  while (at < data.length) {
    const eol = data.indexOf('\r\n', at);
    if (eol < 0) break;
    const size = Number.parseInt(data.subarray(at, eol).toString('latin1'), 16);
    if (!(size > 0)) break;
    parts.push(data.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

// ---- Judging ----------------------------------------------------------------------------------

/** What an answer must never carry: stack frames, internal paths, runtime or library messages. */
const LEAKS: RegExp[] = [
  /\n\s+at \S/, /\bat (?:async )?[\w$.<>]+ \((?:file:|node:|\/)/, /file:\/\//, /\/work\//, /node_modules/, /\/dist\//, /\/src\//, /\.(?:ts|js|mjs|cjs):\d+/,
  /\bargument must be\b/, /\bReceived (?:undefined|null|type|an instance)/, /fast-json-patch|banPrototypeModifications|JSON-Patch:/, /Cannot read propert/,
  /is not a function/, /is not iterable/, /Maximum call stack/, /Invalid string length/, /\b(?:TypeError|RangeError|ReferenceError|DataCloneError|AbortError)\b/,
  /\bERR_[A-Z_]{3,}\b/, /\bFST_[A-Z_]+\b/, /\bMDB_[A-Z_]+\b/, /\blmdb\b/i, /\[object Object\]/, /could not be cloned/, /Client Error/,
];

/** Why an answer breaks the contract, or undefined when it is fine. */
function judge(request: FuzzRequest, answer: Answer): string | undefined {
  if (answer.status === 0) return request.malformedHttp && answer.error === 'closed without an answer' ? undefined : `no answer (${answer.error})`;
  if (answer.status >= 500) return `${answer.status}: no 5xx may answer a client's request`;
  if (answer.status < 200 || (answer.status >= 300 && answer.status < 400)) return `unexpected status ${answer.status}`;
  // Prometheus text (a 2xx of /metrics) describes the storage in its HELP lines; it is not JSON.
  if (answer.status < 300 && request.path.startsWith('/metrics') && answer.contentType.startsWith('text/plain')) return undefined;
  const leak = leakIn(request, answer.text);
  if (leak) return `answer leaks ${leak}`;
  // A request the server could not parse is not a HEAD to it: its answer is an error with a body.
  if (request.method.toUpperCase() === 'HEAD' && !request.malformedHttp) return answer.text.length > 0 ? 'a HEAD answer carries a body' : undefined;
  if (answer.status < 300) {
    if (!answer.contentType.startsWith('application/json')) return `2xx with Content-Type '${answer.contentType}'`;
    return parses(answer.text) ? undefined : '2xx body is not JSON';
  }
  return errorModelProblem(answer);
}

function errorModelProblem(answer: Answer): string | undefined {
  if (!answer.contentType.startsWith('application/json')) return `error with Content-Type '${answer.contentType}'`;
  let body: any;
  try {
    body = JSON.parse(answer.text);
  } catch {
    return 'error body is not JSON';
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) return 'error body is not an object';
  if (Object.keys(body).join() !== 'error') return `error body has keys [${Object.keys(body).join(', ')}], not just "error"`;
  const error = body.error;
  if (!error || typeof error !== 'object' || Array.isArray(error)) return '"error" is not an object';
  const extra = Object.keys(error).filter((k) => !['code', 'message', 'details'].includes(k));
  if (extra.length > 0) return `error has extra keys [${extra.join(', ')}]`;
  if (typeof error.code !== 'string' || !/^[a-z]+(?:_[a-z]+)*$/.test(error.code)) return `error.code ${JSON.stringify(error.code)} is not snake_case`;
  if (!Object.hasOwn(ERROR_CATALOGUE, error.code)) return `error.code '${error.code}' is not in the catalogue`;
  const expected = ERROR_CATALOGUE[error.code as keyof typeof ERROR_CATALOGUE].status;
  if (expected !== answer.status) return `error.code '${error.code}' is ${expected} in the catalogue, answered ${answer.status}`;
  if (typeof error.message !== 'string' || error.message.length === 0) return 'error.message is not a non-empty string';
  return undefined;
}

/** A leak pattern that matches the answer but not the request (echoed input is not a leak). */
function leakIn(request: FuzzRequest, text: string): string | undefined {
  const sent = `${request.path} ${JSON.stringify(request.headers)} ${request.body === undefined ? '' : request.body.toString()} ${request.raw?.toString('latin1') ?? ''}`;
  for (const pattern of LEAKS) {
    const found = pattern.exec(text);
    if (found && !sent.includes(found[0])) return `'${found[0].trim()}' (${pattern.source})`;
  }
  return undefined;
}

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function noteTenant(request: FuzzRequest): void {
  const raw = (request.tenant ?? '').trim();
  const tenant = raw.length === 0 ? 'default' : raw.toLowerCase();
  if (tenant.length <= 64 && /^[a-z0-9][a-z0-9_-]*$/.test(tenant)) tenantsTouched.add(tenant);
}

// ---- Reporting --------------------------------------------------------------------------------

const excerpt = (value: string | Buffer | undefined, n: number): string => {
  if (value === undefined) return '(none)';
  const text = typeof value === 'string' ? value : value.toString('latin1');
  return JSON.stringify(text.length > n ? `${text.slice(0, n)}… (${text.length} chars)` : text);
};

function report(failures: Failure[], sent: number): string {
  const kinds = new Map<string, { count: number; first: Failure }>();
  for (const f of failures) {
    const code = /"code":"([a-z_]+)"/.exec(f.answer.text)?.[1] ?? '';
    const key = `${f.problem.replace(/\d{4,}/g, 'N').slice(0, 90)} | ${f.answer.status} ${code}`;
    const kind = kinds.get(key);
    if (kind) kind.count++;
    else kinds.set(key, { count: 1, first: f });
  }
  const lines = [`seed ${SEED}: ${failures.length} of ${sent} answers broke the contract (replay: FUZZ_SEED=${SEED} FUZZ_ONLY=<index>)`, 'kinds:'];
  for (const [key, { count, first }] of [...kinds].sort((a, b) => b[1].count - a[1].count)) lines.push(`  ${count}× ${key} (first: index ${first.request.index}, ${first.request.label})`);
  lines.push('first failures:');
  for (const f of failures.slice(0, 20)) {
    const r = f.request;
    lines.push(
      `- seed ${SEED} index ${r.index} [${r.label}] ${r.raw ? `RAW ${excerpt(r.raw, 300)}` : `${r.method} ${excerpt(r.path, 200)}`}`,
      `  headers ${excerpt(JSON.stringify(r.headers), 200)} body ${excerpt(r.body, 200)}`,
      `  → ${f.problem}; status ${f.answer.status} ${f.answer.contentType} ${excerpt(f.answer.text, 300)}`,
    );
  }
  return lines.join('\n');
}

// ---- After the run ----------------------------------------------------------------------------

async function dropSchemas(tenant: string, problems: string[]): Promise<void> {
  const headers = { 'x-tenant-id': tenant };
  for (let cursor: string | null = null, pages = 0; pages < 100; pages++) {
    const res = await call('GET', `/v1/schemas?take=1000${cursor ? `&cursor=${cursor}` : ''}`, undefined, headers);
    if (res.status !== 200) return void problems.push(`list schemas of ${tenant}: ${res.status} ${JSON.stringify(res.body)}`);
    for (const item of res.body.items as { schema: { aggregate: string } }[]) {
      const del = await call('DELETE', `/v1/schemas/${item.schema.aggregate}`, undefined, headers);
      if (del.status !== 200) problems.push(`delete schema ${tenant}/${item.schema.aggregate}: ${del.status} ${JSON.stringify(del.body)}`);
    }
    cursor = res.body.next_cursor as string | null;
    if (!cursor) return;
  }
}

async function listAll(tenant: string, problems: string[]): Promise<{ type: string; id: string }[]> {
  const out: { type: string; id: string }[] = [];
  for (let cursor: string | null = null, pages = 0; pages < 1000; pages++) {
    const res = await call('GET', `/v1/aggregates?include_archived=true&take=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, undefined, { 'x-tenant-id': tenant });
    if (res.status !== 200) {
      problems.push(`list aggregates of ${tenant}: ${res.status} ${JSON.stringify(res.body)}`);
      break;
    }
    out.push(...(res.body.items as { aggregate_type: string; aggregate_id: string }[]).map((a) => ({ type: a.aggregate_type, id: a.aggregate_id })));
    cursor = res.body.next_cursor as string | null;
    if (!cursor) break;
  }
  return out;
}

/**
 * The events up to the first invalid version, patches first: verify compares states only at
 * snapshots and the head, so the event that broke the fold may be an earlier patch.
 */
async function culprit(tenant: string, type: string, id: string, version: unknown): Promise<string> {
  if (typeof version !== 'number') return '';
  const res = await call('GET', `/v1/aggregates/${type}/${id}/events?take=1000`, undefined, { 'x-tenant-id': tenant });
  const events = ((res.body?.items ?? []) as { version: number; event_type: string; payload: unknown }[]).filter((e) => e.version <= version);
  const suspects = [...events.filter((e) => Array.isArray(e.payload)), ...events.filter((e) => !Array.isArray(e.payload))].slice(0, 3);
  return suspects.map((e) => `; event ${e.version}: ${e.event_type} ${JSON.stringify(e.payload).slice(0, 200)}`).join('');
}

async function inLanes<T>(items: T[], work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < items.length) await work(items[next++] as T);
  }));
}

function prototypeNames(): Record<string, string[]> {
  const of = (p: object): string[] => [...Reflect.ownKeys(p)].map(String).sort();
  return { object: of(Object.prototype), array: of(Array.prototype), function: of(Function.prototype), string: of(String.prototype), number: of(Number.prototype), boolean: of(Boolean.prototype) };
}

