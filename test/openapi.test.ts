/** GET /openapi.json: generated from the route table, so every registered route is described. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type RunningServer } from '../src/coordinator/index.js';
import { httpRequest, removeDir, tempDataDir } from './helpers/server.js';

let server: RunningServer;
let dataDir: string;
let doc: any;
before(async () => {
  dataDir = tempDataDir();
  server = await startServer({ dataDir, port: 0, host: '127.0.0.1', logLevel: 'silent' });
  const res = await httpRequest(server.url, undefined, 'GET', '/openapi.json');
  assert.equal(res.status, 200, 'served without a token');
  doc = res.body;
});
after(async () => {
  await server.stop();
  removeDir(dataDir);
});

/**
 * Every (method, path) fastify registered, read from printRoutes' tree: one node per line, four
 * columns of indentation per level, each node the path segment it adds to its parent.
 */
function registeredRoutes(printed: string): Set<string> {
  const out = new Set<string>();
  const stack: string[] = [];
  for (const line of printed.split('\n')) {
    const match = /^([│ ├└─]*?)[├└]── (\S*)(?: \(([^)]*)\))?$/.exec(line.trimEnd());
    if (!match) continue;
    const depth = (match[1] ?? '').length / 4;
    stack.length = depth;
    stack.push(match[2] ?? '');
    const path = stack.join('');
    for (const method of (match[3] ?? '').split(',').map((m) => m.trim())) {
      if (method && method !== 'HEAD') out.add(`${method} ${path.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`);
    }
  }
  return out;
}

function documented(): Set<string> {
  const out = new Set<string>();
  for (const [path, operations] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
    for (const method of Object.keys(operations)) out.add(`${method.toUpperCase()} ${path}`);
  }
  return out;
}

test('openapi - the document is OpenAPI 3 and lists exactly the routes the server registered', { timeout: 10_000 }, () => {
  assert.match(doc.openapi, /^3\./);
  const registered = registeredRoutes(server.app.printRoutes({ commonPrefix: false }));
  assert.ok(registered.size >= 20, `parsed ${registered.size} routes from printRoutes`);
  for (const route of ['POST /v1/aggregates/{type}/{id}', 'GET /v1/status', 'GET /openapi.json', 'GET /health', 'POST /v1/batch']) {
    assert.ok(registered.has(route), `${route} is registered`);
  }
  assert.deepEqual([...documented()].sort(), [...registered].sort());
  for (const spec of server.routes) {
    assert.ok(doc.paths[spec.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')]?.[spec.method.toLowerCase()], `${spec.method} ${spec.url} documented`);
  }
});

test('openapi - bodies, parameters and security come from the zod schemas and route actions', { timeout: 10_000 }, () => {
  const apply = doc.paths['/v1/aggregates/{type}/{id}/events'].post;
  const body = apply.requestBody.content['application/json'].schema;
  assert.equal(apply.requestBody.required, true);
  assert.deepEqual(body.required, ['event_type']);
  assert.equal(body.additionalProperties, false, 'unknown fields are refused, and documented so');
  assert.ok(body.properties.expected_version && body.properties.idempotency_key);
  const pathParams = apply.parameters.filter((p: any) => p.in === 'path').map((p: any) => p.name);
  assert.deepEqual(pathParams, ['type', 'id']);
  assert.deepEqual(apply.security, [{ bearerAuth: [] }]);

  const list = doc.paths['/v1/aggregates'].get;
  const query = list.parameters.filter((p: any) => p.in === 'query').map((p: any) => p.name);
  assert.deepEqual(query.sort(), ['archived_only', 'cursor', 'explain', 'filter', 'include_archived', 'sort', 'take']);

  assert.equal(doc.paths['/v1/aggregates/{type}/{id}/archive'].post.requestBody.required, false, 'archive takes no body');
  assert.deepEqual(doc.paths['/health'].get.security, []);
  assert.deepEqual(doc.paths['/openapi.json'].get.security, []);
  assert.deepEqual(doc.paths['/v1/status'].get.security, [{ bearerAuth: [] }], 'status needs a token, though no action');
  assert.ok(doc.components.schemas.Error.properties.error.properties.code.enum.includes('version_conflict'));
});

test('status - /v1/status needs a valid token of any kind', { timeout: 10_000 }, async () => {
  assert.equal((await httpRequest(server.url, undefined, 'GET', '/v1/status')).status, 401);
  assert.equal((await httpRequest(server.url, 'garbage', 'GET', '/v1/status')).status, 401);
});
