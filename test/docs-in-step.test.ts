/**
 * Docs and code in step: every error code in the catalogue is in the README with its status,
 * config.example.toml parses with the real config schema, and every route the server registers is
 * in the README's API table.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseToml } from 'smol-toml';
import { ERROR_CATALOGUE, configSchema } from '../src/core/index.js';
import { useServer } from './helpers/server.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');

test('docs - every error code is in the README with its HTTP status', () => {
  for (const [code, { status }] of Object.entries(ERROR_CATALOGUE)) {
    if (code === 'internal') continue; // never promised to clients: a 500 says "see the log"
    assert.match(readme, new RegExp(`${status}[^|0-9]*\`${code}\``), `README lists ${status} \`${code}\``);
  }
});

test('docs - config.example.toml parses with the config schema and names every section', () => {
  const example = parseToml(readFileSync(join(root, 'config.example.toml'), 'utf8'));
  const parsed = configSchema.safeParse(example);
  assert.ok(parsed.success, parsed.success ? '' : JSON.stringify(parsed.error.issues));
  for (const section of ['storage', 'tenants', 'auth', 'http', 'metrics']) assert.ok(section in example, `[${section}] documented`);
});

const server = useServer();

test('docs - every registered route is in the README API table', { timeout: 20_000 }, async () => {
  const openapi = await server.request('GET', '/openapi.json');
  assert.equal(openapi.status, 200);
  for (const [path, methods] of Object.entries(openapi.body.paths as Record<string, Record<string, unknown>>)) {
    if (path === '/openapi.json' || path === '/v1/status') continue; // described in their own README sections
    const readmePath = path.replace(/\{(\w+)\}/g, (_, name: string) => (name === 'event_id' ? '{event_id}' : `{${name}}`));
    for (const method of Object.keys(methods)) {
      const found = readme.includes(`${method.toUpperCase()} ${readmePath}`) || readme.includes(readmePath.split('/').slice(-1)[0] ?? readmePath);
      assert.ok(found, `README documents ${method.toUpperCase()} ${readmePath}`);
    }
  }
});
