/**
 * `dbx schema …` (reference §6.6 plus apply, field, versions, delete): the original's outputs and
 * errors through a running server (`dbx start --foreground`: a CLI process costs ~1 s here, one
 * that starts the engine in-process ~2 s), then the same commands in direct mode (no server: the
 * command runs the engine in-process) on the data dir the server left. Direct mode is one gateway
 * in front of the same engine for every command (src/cli/direct.ts; test/cli-direct.test.ts checks
 * its answers equal the server's), so a few of its commands stand for the rest.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeDir, runDbx, spawnServer, tempDataDir, type SpawnedServer } from './helpers/server.js';

let home: string;
let dataDir: string;
let server: SpawnedServer;
before(async () => {
  home = tempDataDir('edbx-cli-schema-');
  dataDir = join(home, '.eventdbx');
  server = await spawnServer({ dataDir });
});
after(async () => {
  // Not server.stop(): its 15 s fallback timer would keep this file's process alive after the tests.
  if (server.child.exitCode === null) server.kill('SIGTERM');
  await server.exited;
  removeDir(home);
});

function dbx(args: string[], input?: string): ReturnType<typeof runDbx> {
  return runDbx(args, { env: { HOME: home, EVENTDBX_DATA_DIR: dataDir, EVENTDBX_TOKEN: '', EVENTDBX_TENANT_ID: '' }, timeoutMs: 30_000, ...(input !== undefined ? { input } : {}) });
}

async function ok(args: string[], input?: string): Promise<string> {
  const res = await dbx(args, input);
  assert.equal(res.code, 0, `dbx ${args.join(' ')} → ${res.code}: ${res.stderr}`);
  return res.stdout;
}

async function fails(args: string[], code: number, pattern: RegExp, input?: string): Promise<string> {
  const res = await dbx(args, input);
  assert.equal(res.code, code, `dbx ${args.join(' ')} → ${res.code}: ${res.stdout}${res.stderr}`);
  assert.match(res.stderr, pattern);
  assert.doesNotMatch(res.stderr, /\n\s+at |node_modules/, 'no stack trace');
  return res.stderr;
}

test('cli schema - create, add, remove, annotate, list and show print the original lines', { timeout: 180_000 }, async () => {
  assert.equal(await ok(['schema', 'create', 'person', '--events', 'person_created,person_updated']), 'schema=person events=2 snapshot_threshold=Some(100)\n');
  const created = JSON.parse(await ok(['schema', 'create', 'order', '-e', 'order_placed', '-s', '5', '--json']));
  assert.equal(created.aggregate, 'order');
  assert.equal(created.snapshot_threshold, 5);
  assert.deepEqual(created.events, { order_placed: { fields: [] } });

  assert.equal(await ok(['schema', 'add', 'person', 'person_moved,person_renamed', 'person_updated']), 'schema=person added_events=person_moved,person_renamed,person_updated total_events=4\n');
  assert.equal(await ok(['schema', 'remove', 'person', 'person_moved']), 'schema=person removed_event=person_moved remaining_events=3\n');
  assert.equal(await ok(['schema', 'annotate', 'person', 'person_created', '--note', 'first contact']), 'aggregate=person event=person_created note_set="first contact"\n');
  assert.equal(JSON.parse(await ok(['schema', 'show', 'person'])).events.person_created.notes, 'first contact');
  assert.equal(await ok(['schema', 'annotate', 'person', 'person_created', '--clear']), 'aggregate=person event=person_created note_cleared\n');

  assert.equal(await ok(['schema', 'list']), 'schema=order events=1 locked=false snapshot_threshold=Some(5)\nschema=person events=3 locked=false snapshot_threshold=Some(100)\n');
  const listed = JSON.parse(await ok(['schema', 'list', '--json']));
  assert.deepEqual(listed.map((s: any) => s.aggregate), ['order', 'person']);
  const shown = await ok(['schema', 'person']);
  assert.equal(shown, await ok(['schema', 'show', 'person']), '`schema <A>` is `schema show <A>`');
  const schema = JSON.parse(shown);
  assert.equal(schema.aggregate, 'person', 'the schema itself, not wrapped in { person: … }');
  assert.deepEqual(Object.keys(schema.events), ['person_created', 'person_renamed', 'person_updated']);
  assert.equal(schema.events.person_created.notes, undefined);
  assert.match(shown, /^\{\n {2}"aggregate"/, 'pretty JSON');
  assert.equal(await ok(['schema', 'hide', '--aggregate', 'person', '--field', 'ssn']), 'aggregate=person field=ssn hidden\n');
  assert.equal(await ok(['schema', 'hide', '--aggregate', 'person', '--field', 'ssn']), 'aggregate=person field=ssn hidden\n', 'idempotent');
  assert.deepEqual(JSON.parse(await ok(['schema', 'person'])).hidden_fields, ['ssn']);
});

test('cli schema - the original errors: exists, not found, undefined event, last event, usage', { timeout: 180_000 }, async () => {
  const refusals: [string[], number, RegExp][] = [
    [['schema', 'create', 'person', '--events', 'person_created'], 1, /^error: already_exists: schema already exists/],
    [['schema', 'create', 'thing'], 2, /^error: invalid_input: at least one event must be provided/],
    [['schema', 'create', 'thing', '--events', 'a_made,,b_made'], 2, /^error: invalid_input: event names cannot be empty/],
    [['schema', 'add', 'ghost', 'ghost_seen'], 1, /^error: not_found: schema not found/],
    [['schema', 'show', 'ghost'], 1, /^error: not_found: schema not found/],
    [['schema', 'ghost'], 1, /^error: not_found: schema not found/],
    [['schema'], 2, /missing aggregate name; try `dbx schema <aggregate>`/],
    [['schema', 'remove', 'person', 'never_defined'], 1, /event never_defined is not defined for aggregate person/],
    [['schema', 'remove', 'order', 'order_placed'], 1, /aggregate order must define at least one event/],
    [['schema', 'annotate', 'person', 'person_created'], 2, /either --note must be provided or use --clear/],
    [['schema', 'annotate', 'person', 'person_created', '--note', 'x', '--clear'], 2, /--note cannot be combined with --clear/],
    [['schema', 'annotate', 'person', 'person_created', '--note', 'n'.repeat(129)], 2, /note cannot exceed 128 characters/],
    [['schema', 'annotate', 'person', 'never_defined', '--note', 'x'], 1, /event never_defined is not defined for aggregate person/],
    [['schema', 'hide', '--aggregate', 'ghost', '--field', 'x'], 1, /^error: not_found: schema not found/],
    [['schema', 'hide', '--aggregate', 'person', '--field', ' '], 2, /field name cannot be empty/],
    [['schema', 'create', 'Bad-Name', '--events', 'x_made'], 1, /^error: validation_failed: /],
  ];
  // Independent of each other (each is refused and changes nothing): a few at a time.
  for (let i = 0; i < refusals.length; i += 4) await Promise.all(refusals.slice(i, i + 4).map(([args, code, pattern]) => fails(args, code, pattern)));
});

test('cli schema - validate asks the server: ok, every violation, no schema, bad JSON', { timeout: 180_000 }, async () => {
  await ok(['schema', 'field', 'person', 'age', '--type', 'integer', '--range', '0:150']);
  await ok(['schema', 'field', 'person', 'email', '--type', 'text', '--format', 'email']);
  assert.equal(
    await ok(['schema', 'validate', '--aggregate', 'person', '--event', 'person_created', '--payload', '{"age":"42","email":"a@b.io"}']),
    'aggregate=person event=person_created validation=ok\n',
  );
  const stderr = await fails(['schema', 'validate', '--aggregate', 'person', '--event', 'person_created', '--payload', '{"age":200,"email":"nope"}'], 1, /^error: validation_failed: schema violation: /);
  assert.match(stderr, /\n {2}- age: .*\(range\)/);
  assert.match(stderr, /\n {2}- email: .*\(format\)/);
  await fails(['schema', 'validate', '--aggregate', 'person', '--event', 'person_deleted', '--payload', '{}'], 1, /^error: validation_failed: schema violation: /);
  assert.equal(await ok(['schema', 'validate', '--aggregate', 'nobody', '--event', 'x_made', '--payload', '{"a":1}']), 'aggregate=nobody event=x_made validation=ok\n', 'no schema: ok');
  await fails(['schema', 'validate', '--aggregate', 'person', '--event', 'person_created', '--payload', '{bad'], 2, /--payload is not valid JSON/);
});

test('cli schema - field, apply and versions edit types, rules and locks without hand-written JSON', { timeout: 180_000 }, async () => {
  assert.match(await ok(['schema', 'field', 'person', 'code', '--type', 'TEXT', '--required', '--length', '2:5', '--regex', '^[A-Z]', '--regex', '[0-9]$']), /^schema=person field=code type=text field_locked=false version=\d+\n$/);
  await ok(['schema', 'field', 'person', 'joined', '--type', 'timestamp', '--range', '2020-01-01T00:00:00Z..2030-01-01T00:00:00Z']);
  await ok(['schema', 'field', 'person', 'address', '--type', 'object']);
  await ok(['schema', 'field', 'person', 'address.zip', '--type', 'text', '--required']);
  assert.match(await ok(['schema', 'field', 'person', 'ssn', '--lock']), /field=ssn type= field_locked=true/);
  const schema = JSON.parse(await ok(['schema', 'person']));
  assert.deepEqual(schema.column_types.code, { type: 'text', required: true, length: { min: 2, max: 5 }, regex: ['^[A-Z]', '[0-9]$'] });
  assert.deepEqual(schema.column_types.joined.range, { min: '2020-01-01T00:00:00Z', max: '2030-01-01T00:00:00Z' });
  assert.deepEqual(schema.column_types.address.properties.zip, { type: 'text', required: true });
  assert.deepEqual(schema.field_locks, ['ssn']);
  await ok(['schema', 'field', 'person', 'ssn', '--unlock']);
  assert.deepEqual(JSON.parse(await ok(['schema', 'person'])).field_locks, []);

  await fails(['schema', 'field', 'person', 'x', '--type', 'varchar'], 1, /^error: validation_failed: invalid schema: column_types\.x\.type: invalid column type 'varchar'/);
  await fails(['schema', 'field', 'person', 'x', '--type', 'text', '--regex', '(open'], 1, /invalid regex/);
  await fails(['schema', 'field', 'person', 'x', '--required'], 2, /--type is required/);
  await fails(['schema', 'field', 'person', 'x', '--type', 'text', '--length', 'a:b'], 2, /--length min must be a non-negative integer/);
  await fails(['schema', 'field', 'person', 'missing.zip', '--type', 'text'], 1, /field missing must be declared with --type object/);
  await fails(['schema', 'field', 'ghost', 'x', '--type', 'text'], 1, /^error: not_found: schema not found/);

  const file = join(home, 'invoice.json');
  writeFileSync(file, JSON.stringify({ aggregate: 'invoice', column_types: { total: 'decimal(8,2)' }, events: { invoice_sent: { fields: ['total'] } } }));
  assert.equal(await ok(['schema', 'apply', file]), 'schema=invoice version=1 events=1 column_types=1\n');
  assert.equal(await ok(['schema', 'apply', file]), 'schema=invoice version=1 events=1 column_types=1\n', 'an unchanged file is not a new version');
  const many = join(home, 'schemas.json');
  writeFileSync(many, JSON.stringify({ invoice: { events: { invoice_sent: {}, invoice_paid: {} } }, shipment: { events: { shipment_sent: {} } } }));
  assert.equal(await ok(['schema', 'apply', many]), 'schema=invoice version=2 events=2 column_types=0\nschema=shipment version=1 events=1 column_types=0\n');
  assert.equal(await ok(['schema', 'apply', '-'], JSON.stringify({ aggregate: 'shipment', locked: true, events: { shipment_sent: {} } })), 'schema=shipment version=2 events=1 column_types=0\n');
  writeFileSync(file, JSON.stringify({ aggregate: 'invoice', column_types: { total: 'money' }, events: {} }));
  await fails(['schema', 'apply', file], 1, /invalid column type 'money'/);
  await fails(['schema', 'apply', join(home, 'absent.json')], 1, /cannot read .*absent\.json: ENOENT/);
  // A file of several schemas applies whole or not at all: every bad entry named, nothing stored.
  writeFileSync(many, JSON.stringify({ audit_a: { events: { e: {} } }, audit_b: { events: { Bad: {} } }, audit_c: { column_types: { x: 'money' }, events: {} } }));
  await fails(['schema', 'apply', many], 1, /^error: validation_failed: .*nothing was applied; 2 of 3 schema\(s\) are invalid: audit_b: .*Bad.* \| audit_c: .*money/);
  await fails(['schema', 'audit_a'], 1, /not_found/);
  // A key and an `aggregate` that disagree are refused, as the HTTP route refuses them.
  await fails(['schema', 'apply', '-'], 2, /entry 'audit_d' names aggregate 'audit_e'; the key and "aggregate" must agree/, JSON.stringify({ audit_d: { aggregate: 'audit_e', events: { e: {} } } }));
  await fails(['schema', 'audit_d'], 1, /not_found/);

  assert.equal(await ok(['schema', 'delete', 'shipment']), 'schema=shipment deleted version=3\n');
  const versions = await ok(['schema', 'versions', 'shipment']);
  assert.match(versions, /^version=1 recorded_at=\S+ deleted=false events=1 locked=false\nversion=2 recorded_at=\S+ deleted=false events=1 locked=true\nversion=3 recorded_at=\S+ deleted=true events=1 locked=true\n$/);
  const page = await ok(['schema', 'versions', 'shipment', '--take', '2']);
  assert.match(page, /^version=1 .*\nversion=2 .*\nnext cursor: 2\n$/);
  assert.deepEqual(JSON.parse(await ok(['schema', 'versions', 'shipment', '--take', '1', '--all', '--json'])).map((v: any) => v.version), [1, 2, 3]);
  await fails(['schema', 'versions', 'ghost'], 1, /^error: not_found: schema not found/);
  await fails(['schema', 'shipment'], 1, /^error: not_found: schema not found/);
});

test('cli schema - in direct mode (no server) the commands print the same lines and see what the server stored', { timeout: 180_000 }, async () => {
  const served = await ok(['schema', 'list']);
  server.kill('SIGTERM');
  assert.equal(await server.exited, 0);
  assert.equal(await ok(['schema', 'list']), served, 'direct mode sees what the server stored');
  assert.match(await ok(['schema', 'field', 'invoice', 'total', '--type', 'decimal(10,2)', '--range', '0:']), /^schema=invoice field=total type=decimal\(10,2\) field_locked=false version=3\n$/);
  assert.equal(await ok(['schema', 'create', 'ledger', '--events', 'entry_made']), 'schema=ledger events=1 snapshot_threshold=Some(100)\n');
  await fails(['schema', 'create', 'ledger', '--events', 'entry_made'], 1, /^error: already_exists: schema already exists/);
  assert.equal(await ok(['schema', 'validate', '--aggregate', 'invoice', '--event', 'invoice_sent', '--payload', '{"total":"12.50"}']), 'aggregate=invoice event=invoice_sent validation=ok\n');
  const invoice = JSON.parse(await ok(['schema', 'invoice']));
  assert.equal(invoice.column_types.total.type, 'decimal(10,2)', 'the direct write was stored');
  assert.deepEqual(Object.keys(invoice.events).sort(), ['invoice_paid', 'invoice_sent']);
});
