/**
 * /openapi.json is complete enough to generate a client from: every route declares its success
 * answer and a readable operationId, a real OpenAPI 3.1 validator accepts the document,
 * openapi-typescript turns it into types that a TypeScript program can use (a success answer is a
 * real type, not `unknown`), and real answers of the server match the schemas it publishes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { Validator } from '@seriousme/openapi-schema-validator';
import openapiTS, { astToString } from 'openapi-typescript';
import ts from 'typescript';
import { startServer, type RunningServer } from '../src/coordinator/index.js';
import { issueToken, readConfig } from '../src/core/index.js';
import { httpRequest, readCliToken, removeDir, tempDataDir } from './helpers/server.js';

// ajv and ajv-formats are CommonJS with a `default` property; NodeNext sees the module object.
type Validate = ((data: unknown) => boolean) & { errors?: unknown };
type AjvLike = { addSchema(schema: object): void; getSchema(ref: string): Validate | undefined };
const Ajv2020 = ((Ajv2020Module as unknown as { default?: unknown }).default ?? Ajv2020Module) as new (opts: object) => AjvLike;
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: AjvLike) => void;

let server: RunningServer;
let dataDir: string;
let token: string;
let doc: any;

before(async () => {
  dataDir = tempDataDir();
  server = await startServer({ dataDir, listenPort: 0, host: '127.0.0.1', logLevel: 'silent' });
  token = readCliToken(dataDir);
  const res = await httpRequest(server.url, undefined, 'GET', '/openapi.json');
  assert.equal(res.status, 200);
  doc = res.body;
});
after(async () => {
  await server.stop();
  removeDir(dataDir);
});

const request = (method: string, path: string, body?: unknown, headers?: Record<string, string>) => httpRequest(server.url, token, method, path, body, headers);

function operations(): { method: string; path: string; op: any }[] {
  const out: { method: string; path: string; op: any }[] = [];
  for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
    for (const [method, op] of Object.entries(ops)) out.push({ method: method.toUpperCase(), path, op });
  }
  return out;
}

function operation(operationId: string): any {
  const hit = operations().find((o) => o.op.operationId === operationId);
  assert.ok(hit, `operation ${operationId} documented`);
  return hit.op;
}

test('openapi complete - every route declares a success schema and a readable, unique operationId', { timeout: 10_000 }, () => {
  const missing = server.routes.filter((r) => r.response === undefined).map((r) => `${r.method} ${r.url}`);
  assert.deepEqual(missing, [], 'routes without `response` in their RouteSpec');
  const unnamed = server.routes.filter((r) => !r.operationId || !/^[a-z][A-Za-z0-9]+$/.test(r.operationId)).map((r) => `${r.method} ${r.url}`);
  assert.deepEqual(unnamed, [], 'routes without a camelCase `operationId`');
  const ids = operations().map((o) => o.op.operationId);
  assert.equal(new Set(ids).size, ids.length, 'operationIds are unique');
  assert.equal(ids.length, server.routes.length);
  for (const { method, path, op } of operations()) {
    const [status, success] = Object.entries(op.responses).find(([s]) => /^2\d\d$/.test(s)) ?? [];
    assert.ok(status, `${method} ${path} documents a success status`);
    const content = Object.values((success as any).content) as any[];
    assert.match(content[0]?.schema?.$ref ?? '', /^#\/components\/schemas\/\w+$/, `${method} ${path} success answer is a named schema`);
    assert.ok(op.tags?.length === 1 && doc.tags.some((t: any) => t.name === op.tags[0]), `${method} ${path} has a declared tag`);
  }
  for (const [name, id] of [
    ['POST /v1/aggregates/{type}/{id}', 'createAggregate'],
    ['POST /v1/aggregates/{type}/{id}/events', 'appendEvent'],
    ['GET /v1/aggregates/{type}/{id}', 'getAggregate'],
    ['GET /v1/events', 'listEvents'],
    ['GET /v1/aggregates', 'listAggregates'],
    ['POST /v1/batch', 'appendBatch'],
  ] as const) {
    const [method, path] = name.split(' ') as [string, string];
    assert.equal(doc.paths[path][method.toLowerCase()].operationId, id, name);
  }
});

test('openapi complete - a real OpenAPI 3.1 validator accepts the document', { timeout: 20_000 }, async () => {
  const validator = new Validator();
  const result = await validator.validate(doc);
  assert.equal(validator.version, '3.1');
  assert.equal(result.valid, true, JSON.stringify(result.errors)?.slice(0, 2000));
  assert.ok(!JSON.stringify(doc).includes('"#/$defs/'), 'no JSON Schema-local refs: every ref points into components');
  // The validator checks every $ref resolves: a broken one is refused (the control that it looks).
  const broken = structuredClone(doc);
  broken.paths['/health'].get.responses['200'].content['application/json'].schema = { $ref: '#/components/schemas/NoSuchSchema' };
  assert.equal((await new Validator().validate(broken)).valid, false, 'a dangling $ref is refused');
});

test('openapi complete - integers, statuses per route, the replay header, security, servers, tags', { timeout: 10_000 }, () => {
  const param = (operationId: string, name: string) => operation(operationId).parameters.find((p: any) => p.name === name);
  assert.equal(param('listAggregates', 'take').schema.type, 'integer');
  assert.equal(param('listAggregates', 'include_archived').schema.type, 'boolean');
  assert.equal(param('getAggregate', 'version').schema.type, 'integer');
  assert.equal(param('getProof', 'from_size').schema.type, 'integer');
  assert.equal(param('getProof', 'from_size').schema.minimum, 1);
  assert.equal(param('getSchemaVersion', 'version').schema.type, 'integer', 'a numeric path segment too');
  assert.equal(param('putSchema', 'expected_version').schema.type, 'integer');
  for (const { op } of operations()) {
    for (const p of op.parameters ?? []) if (p.schema) assert.notEqual(p.schema.pattern, '^\\d+$', `${op.operationId} ${p.name}: a digits-only string is an integer`);
  }

  const statuses = (operationId: string) => Object.keys(operation(operationId).responses);
  assert.deepEqual(statuses('createAggregate'), ['201', '400', '401', '403', '408', '409', '413', '414', '429', '431', '503', 'default']);
  assert.deepEqual(statuses('getAggregate'), ['200', '400', '401', '403', '404', '414', '429', '431', '500', '503', 'default']);
  // Any route refuses a query it does not take, and a URL or headers too long, at the edge.
  for (const id of ['getHealth', 'getMetrics', 'getOpenApi']) for (const s of ['400', '414', '431']) assert.ok(statuses(id).includes(s), `${id} lists ${s}`);
  assert.ok(statuses('archiveAggregate').includes('404') && statuses('archiveAggregate').includes('409'));
  assert.ok(statuses('getEvent').includes('404'));
  assert.ok(!statuses('getHealth').includes('401'), 'health needs no token');
  assert.ok(statuses('getStatus').includes('401'), 'status needs a token though no action');
  assert.match(doc.components.responses.Error409.description, /version_conflict/);
  assert.match(doc.components.responses.Error429.description, /write_limit_exhausted/);
  assert.ok(doc.components.responses.Error429.headers['Retry-After']);

  const replayed = (operationId: string) => Object.values(operation(operationId).responses).some((r: any) => r.headers?.['idempotent-replayed']);
  for (const id of ['createAggregate', 'appendEvent', 'appendEventByBody', 'patchAggregate', 'archiveAggregate', 'restoreAggregate', 'appendBatch']) assert.ok(replayed(id), `${id} documents idempotent-replayed`);
  assert.ok(!replayed('getAggregate'));
  assert.deepEqual(doc.components.headers.IdempotentReplayed.schema, { type: 'string', enum: ['true'] });

  assert.deepEqual(doc.components.securitySchemes.bearerAuth, { ...doc.components.securitySchemes.bearerAuth, type: 'http', scheme: 'bearer' });
  assert.deepEqual(operation('getAggregate').security, [{ bearerAuth: [] }]);
  assert.equal(doc.servers[0].url, '/');
  assert.ok(doc.servers.some((s: any) => s.url === server.url), `servers lists ${server.url}`);
  for (const tag of ['aggregates', 'events', 'schemas', 'tokens', 'plugins', 'system']) assert.ok(doc.tags.some((t: any) => t.name === tag && t.description), `tag ${tag}`);
  assert.deepEqual(operation('getAggregate').tags, ['aggregates']);
  assert.deepEqual(operation('getQueue').tags, ['plugins']);
});

test('openapi complete - openapi-typescript generates types a TypeScript program can use', { timeout: 60_000 }, async () => {
  const source = astToString(await openapiTS(doc, { silent: true }));
  const dir = mkdtempSync(join(tmpdir(), 'edbx-openapi-ts-'));
  try {
    writeFileSync(join(dir, 'api.ts'), source);
    const check = `
import type { operations, components } from './api';
type Json<O extends keyof operations, S extends keyof operations[O]['responses']> =
  operations[O]['responses'][S] extends { content: { 'application/json': infer T } } ? T : never;
type IsUnknown<T> = unknown extends T ? true : false;
const notUnknown: [IsUnknown<Json<'getAggregate', 200>>, IsUnknown<Json<'listEvents', 200>>, IsUnknown<Json<'appendEvent', 201>>] = [false, false, false];
declare const aggregate: Json<'getAggregate', 200>;
const root: string = aggregate.merkle_root;
const version: number = aggregate.version;
const archived: boolean = aggregate.archived;
// @ts-expect-error: a field the answer does not have is a compile error (the type is not any)
aggregate.merkle_rot;
declare const page: Json<'listEvents', 200>;
const hash: string | undefined = page.items[0]?.hash;
const cursor: string | null = page.next_cursor;
declare const proof: Json<'getProof', 200>;
const path: string[] = proof.proof;
declare const created: Json<'createAggregate', 201>;
const state: Record<string, unknown> = created.state;
declare const error: components['schemas']['Error'];
const code: 'version_conflict' | string = error.error.code;
// @ts-expect-error: error codes are a closed union
const bad: components['schemas']['Error']['error']['code'] = 'no_such_code';
type ListQuery = NonNullable<operations['listAggregates']['parameters']['query']>;
const take: ListQuery['take'] = 5;
// @ts-expect-error: take is an integer, not a string
const badTake: ListQuery['take'] = '5';
export { notUnknown, root, version, archived, hash, cursor, path, state, code, bad, take, badTake };
`;
    writeFileSync(join(dir, 'check.ts'), check);
    assert.match(source, /merkle_root: string/, 'the generated types name merkle_root');
    const program = ts.createProgram([join(dir, 'check.ts')], {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      types: [],
      skipLibCheck: true,
    });
    const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    assert.deepEqual(diagnostics, [], 'the snippet compiles against the generated types');
  } finally {
    removeDir(dir);
  }
});

test('openapi complete - real answers match the schemas the document declares', { timeout: 60_000 }, async () => {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  const base = 'https://eventdbx.invalid/openapi.json';
  ajv.addSchema({ $id: base, components: doc.components });
  let checked = 0;
  const seen = new Set<string>();
  const check = (operationId: string, res: { status: number; body: unknown; headers?: Headers }, status?: number, contentType = 'application/json') => {
    const op = operation(operationId);
    const expected = status ?? Number(Object.keys(op.responses).find((s) => /^2\d\d$/.test(s)));
    assert.equal(res.status, expected, `${operationId}: ${JSON.stringify(res.body)?.slice(0, 500)}`);
    if (res.headers && expected < 400) assert.ok(res.headers.get('content-type')?.startsWith(contentType), `${operationId} answers ${contentType}: ${res.headers.get('content-type')}`);
    const declared = op.responses[String(expected)];
    const content = declared.$ref ? doc.components.responses[declared.$ref.split('/').pop()].content : declared.content;
    assert.ok(content[contentType], `${operationId} ${expected} documents ${contentType}`);
    const ref: string = content[contentType].schema.$ref;
    const validate = ajv.getSchema(`${base}${ref}`);
    assert.ok(validate, `${ref} compiles`);
    assert.ok(validate(res.body), `${operationId} ${expected} answer matches ${ref}: ${JSON.stringify(validate.errors)} in ${JSON.stringify(res.body)?.slice(0, 800)}`);
    checked++;
    seen.add(operationId);
  };

  check('getHealth', await httpRequest(server.url, undefined, 'GET', '/health'));
  check('getOpenApi', await httpRequest(server.url, undefined, 'GET', '/openapi.json'));
  check('getStatus', await request('GET', '/v1/status'));
  const auth = readConfig(dataDir).config.auth;
  const reader = issueToken(auth, { group: 'g', user: 'u', actions: ['aggregate.read'], tenants: ['default'] }).token;
  check('getStatus', await httpRequest(server.url, reader, 'GET', '/v1/status'));

  check('createAggregate', await request('POST', '/v1/aggregates/person/p-1', { event_type: 'person_created', payload: { name: 'Ada', age: 36 }, note: 'first', metadata: { '@src': 'test' } }));
  const appended = await request('POST', '/v1/aggregates/person/p-1/events', { event_type: 'person_renamed', payload: { name: 'Grace' }, idempotency_key: 'k-1' });
  check('appendEvent', appended);
  const replay = await request('POST', '/v1/aggregates/person/p-1/events', { event_type: 'person_renamed', payload: { name: 'Grace' }, idempotency_key: 'k-1' });
  check('appendEvent', replay);
  assert.equal(replay.headers.get('idempotent-replayed'), 'true', 'the documented header, exactly');
  check('appendEventByBody', await request('POST', '/v1/events', { aggregate_type: 'person', aggregate_id: 'p-1', event_type: 'person_aged', payload: { age: 37 } }));
  check('patchAggregate', await request('POST', '/v1/aggregates/person/p-1/patch', { event_type: 'person_patched', patch: [{ op: 'add', path: '/city', value: 'Paris' }] }));
  check('appendBatch', await request('POST', '/v1/batch', { events: [{ aggregate_type: 'person', aggregate_id: 'p-2', event_type: 'person_created', payload: { name: 'Bo' } }, { aggregate_type: 'person', aggregate_id: 'p-2', event_type: 'person_renamed', payload: { name: 'Bob' } }] }));
  check('createSnapshot', await request('POST', '/v1/aggregates/person/p-1/snapshots', { comment: 'now' }));
  check('archiveAggregate', await request('POST', '/v1/aggregates/person/p-2/archive', { comment: 'bye' }));
  check('restoreAggregate', await request('POST', '/v1/aggregates/person/p-2/restore'));
  check('getAggregate', await request('GET', '/v1/aggregates/person/p-1?include_events=true'));
  check('getAggregate', await request('GET', '/v1/aggregates/person/p-1?version=2'));
  check('listAggregates', await request('GET', '/v1/aggregates?take=1'));
  const explained = await request('GET', `/v1/aggregates?explain=true&filter=${encodeURIComponent('aggregate_type = "person" AND nmae = "Ada"')}`);
  check('listAggregates', explained);
  assert.ok(explained.body.explain, 'explain=true answers with its explain');
  check('listEvents', await request('GET', '/v1/events?explain=true&filter=version%20%3E%201'));
  check('listAggregateEvents', await request('GET', '/v1/aggregates/person/p-1/events?explain=true'));
  check('listAggregatesOfType', await request('GET', '/v1/aggregates/person?include_archived=true'));
  check('selectFields', await request('GET', '/v1/aggregates/person/p-1/select?fields=name,city,missing.path'));
  const events = await request('GET', '/v1/aggregates/person/p-1/events?take=2');
  check('listAggregateEvents', events);
  check('verifyAggregate', await request('GET', '/v1/aggregates/person/p-1/verify'));
  check('getProof', await request('GET', '/v1/aggregates/person/p-1/proof?version=2&size=4'));
  check('getProof', await request('GET', '/v1/aggregates/person/p-1/proof?from_size=2&to_size=4'));
  check('listSnapshots', await request('GET', '/v1/aggregates/person/p-1/snapshots'));
  check('listEvents', await request('GET', '/v1/events?sort=version:desc&take=3'));
  check('getEvent', await request('GET', `/v1/events/${events.body.items[0].metadata.event_id}`));
  check('getMetrics', await request('GET', '/metrics'), undefined, 'text/plain');
  check('listExportTypes', await request('GET', '/v1/export/types'));
  check('exportAggregates', await request('GET', '/v1/export?type=person&format=json'));
  check('exportAggregates', await request('GET', '/v1/export?type=person'), undefined, 'text/csv');
  check('replayAggregateEvents', await request('GET', '/v1/aggregates/person/p-1/replay?skip=1'), undefined, 'application/x-ndjson');
  check('readStream', await request('GET', '/v1/stream?after=start&take=3'));
  // The live form: the first frames of a real session, read until the first event, then cut.
  {
    const live = new AbortController();
    const res = await fetch(`${server.url}/v1/stream?after=start`, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal: live.signal });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    while (!/\ndata: \{"aggregate_type"/.test(text)) text += new TextDecoder().decode((await reader.read()).value);
    live.abort();
    assert.match(text, /^retry: 1000\n\n/);
    assert.match(text, /\nid: \S+\nevent: heartbeat\ndata: \{"position":/);
    assert.match(text, /\nid: \S+\ndata: \{"aggregate_type":"person"/);
    check('readStream', { status: res.status, body: text, headers: res.headers }, undefined, 'text/event-stream');
  }

  const line = (version: number, eventId: string) =>
    JSON.stringify({ aggregate_type: 'imported', aggregate_id: 'i-1', event_type: 'thing_done', version, payload: { n: version }, extensions: {}, metadata: { event_id: eventId, created_at: '2025-01-02T03:04:05.678Z', issued_by: { group: 'import', user: 'test' } } });
  check('importEvents', await request('POST', '/v1/import', `${line(1, '9000000000000001')}\n${line(2, '9000000000000002')}\n`, { 'content-type': 'application/x-ndjson' }));

  const schema = { events: { person_created: { fields: [] } }, column_types: { age: { type: 'integer', range: { min: 0, max: 200 } }, address: { type: 'object', properties: { zip: 'text' } } } };
  check('createSchema', await request('POST', '/v1/schemas', { aggregate: 'person', ...schema }));
  check('getSchema', await request('GET', '/v1/schemas/person'));
  check('putSchema', await request('PUT', '/v1/schemas/person?expected_version=1', { ...schema, hidden_fields: ['address.zip'] }));
  check('listSchemas', await request('GET', '/v1/schemas'));
  check('listSchemaVersions', await request('GET', '/v1/schemas/person/versions'));
  check('getSchemaVersion', await request('GET', '/v1/schemas/person/versions/1'));
  check('getSchemaJsonSchema', await request('GET', '/v1/schemas/person/json-schema'));
  check('validatePayload', await request('POST', '/v1/schemas/person/validate', { event_type: 'person_created', payload: { age: 'old' } }));
  check('deleteSchema', await request('DELETE', '/v1/schemas/person'));

  check('listTokens', await request('GET', '/v1/tokens'));
  const issued = await request('POST', '/v1/tokens', { group: 'ops', user: 'amy', actions: ['aggregate.read'], write_limit: 5, expiration_secs: 3600 });
  check('issueToken', issued);
  check('getToken', await request('GET', `/v1/tokens/${issued.body.record.jti}`));
  const refreshed = await request('POST', `/v1/tokens/${issued.body.record.jti}/refresh`, {});
  check('refreshToken', refreshed);
  check('revokeToken', await request('POST', `/v1/tokens/${refreshed.body.record.jti}/revoke`, { reason: 'done' }));

  const logFile = join(dataDir, 'plugin.log');
  check('putPlugin', await request('PUT', '/v1/plugins/audit', { options: { kind: 'log', file: logFile } }));
  check('listPlugins', await request('GET', '/v1/plugins'));
  check('getPlugin', await request('GET', '/v1/plugins/audit'));
  check('testPlugin', await request('POST', '/v1/plugins/audit/test'));
  check('replayPlugin', await request('POST', '/v1/plugins/audit/replay', { aggregate_type: 'person' }));
  check('getQueue', await request('GET', '/v1/queue'));
  check('listTenants', await request('GET', '/v1/tenants'));
  check('getTenant', await request('GET', '/v1/tenants/default'));
  check('setTenantQuota', await request('PUT', '/v1/tenants/default/quota', { max_aggregates: 1000 }));
  check('getTenant', await request('GET', '/v1/tenants/default'));
  check('clearTenantQuota', await request('DELETE', '/v1/tenants/default/quota'));
  check('listTenantMeta', await request('GET', '/v1/tenant-meta'));
  check('retryDeadJobs', await request('POST', '/v1/queue/retry', {}));
  check('clearDeadJobs', await request('POST', '/v1/queue/clear', {}));
  check('disablePlugin', await request('POST', '/v1/plugins/audit/disable'));
  check('enablePlugin', await request('POST', '/v1/plugins/audit/enable'));
  await request('POST', '/v1/plugins/audit/disable');
  check('deletePlugin', await request('DELETE', '/v1/plugins/audit'));

  // Error answers match the Error schema under their documented status.
  check('getAggregate', await request('GET', '/v1/aggregates/person/nobody'), 404);
  check('createAggregate', await request('POST', '/v1/aggregates/person/p-1', { event_type: 'person_created', payload: {} }), 409);
  check('listAggregates', await request('GET', '/v1/aggregates?take=many'), 400);
  check('getAggregate', await httpRequest(server.url, undefined, 'GET', '/v1/aggregates/person/p-1'), 401);
  check('getToken', await httpRequest(server.url, reader, 'GET', '/v1/tokens/x'), 403);

  check('rotateSigningKeys', await request('POST', '/v1/tokens/rotate-keys'));
  assert.ok(checked >= 55, `${checked} answers checked`);
  assert.ok(seen.size >= 45, `${seen.size} operations checked`);
});
