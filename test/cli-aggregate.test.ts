/**
 * `dbx aggregate …` and `dbx events` against a running server (the real binary for both: the
 * server is `dbx start --foreground`, each command goes through its HTTP API).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { buildProgram } from '../src/cli/program.js';
import { removeDir, runDbx, spawnServer, tempDataDir, type SpawnedServer } from './helpers/server.js';

let server: SpawnedServer;
let home: string;
before(async () => {
  home = tempDataDir('edbx-cli-home-');
  server = await spawnServer();
});
after(async () => {
  // Not server.stop(): its 15 s fallback timer would keep this file's process alive after the tests.
  if (server.child.exitCode === null) server.kill('SIGTERM');
  await server.exited;
  removeDir(server.dataDir);
  removeDir(home);
});

function dbx(args: string[]): ReturnType<typeof runDbx> {
  return runDbx(args, { env: { HOME: home, EVENTDBX_DATA_DIR: server.dataDir, EVENTDBX_TOKEN: '', EVENTDBX_TENANT_ID: '' }, timeoutMs: 30_000 });
}

async function ok(args: string[]): Promise<string> {
  const res = await dbx(args);
  assert.equal(res.code, 0, `dbx ${args.join(' ')} → ${res.code}: ${res.stderr}`);
  return res.stdout;
}

async function json(args: string[]): Promise<any> {
  return JSON.parse(await ok(args));
}

async function fails(args: string[], code: number, pattern: RegExp): Promise<void> {
  const res = await dbx(args);
  assert.equal(res.code, code, `dbx ${args.join(' ')} → ${res.code}: ${res.stdout}${res.stderr}`);
  assert.match(res.stderr, pattern);
  assert.doesNotMatch(res.stderr, /\n\s+at |node_modules/, 'no stack trace');
}

test('cli aggregate - create, apply, patch, get, select, verify in the original positional forms', { timeout: 60_000 }, async () => {
  assert.equal((await ok(['aggregate', 'create', 'person', 'p-1', '--event', 'person_created', '--field', 'name=Ada'])).trim(), 'aggregate_type=person aggregate_id=p-1 version=1 archived=false');
  const applied = await json(['aggregate', 'apply', 'person', 'p-1', 'person_updated', '--field', 'name=Jane Doe', '--field', 'city = Paris ', '--json']);
  assert.equal(applied.version, 2);
  assert.deepEqual(applied.payload, { name: 'Jane Doe', city: 'Paris' });
  assert.match(await ok(['aggregate', 'apply', 'person', 'p-1', 'person_aged', '--payload', '{"age":36}', '--expected-version', '2']), /^aggregate_type=person aggregate_id=p-1 version=3 event_type=person_aged event_id=\d+$/m);
  const patched = await json(['aggregate', 'patch', 'person', 'p-1', 'person_moved', '--patch', '[{"op":"replace","path":"/city","value":"Rome"}]', '--json']);
  assert.equal(patched.version, 4);

  const [got, old, selected, verified] = await Promise.all([
    json(['aggregate', 'get', 'person', 'p-1']),
    json(['aggregate', 'get', 'person', 'p-1', '--version', '1', '--include-events']),
    json(['aggregate', 'select', 'person', 'p-1', 'name', 'city', 'missing']),
    json(['aggregate', 'verify', 'person', 'p-1', '--json']),
  ]);
  assert.deepEqual(got.state, { name: 'Jane Doe', city: 'Rome', age: 36 });
  assert.equal(old.version, 1);
  assert.deepEqual(old.state, { name: 'Ada' });
  assert.equal(old.events.length, 1);
  assert.deepEqual(selected, { aggregate_type: 'person', aggregate_id: 'p-1', selection: { name: 'Jane Doe', city: 'Rome', missing: null } });
  assert.equal(verified.valid, true);
  assert.equal(verified.merkle_root, got.merkle_root);

  await Promise.all([
    fails(['aggregate', 'apply', 'person', 'p-1', 'person_aged', '--expected-version', '1'], 1, /^error: version_conflict: /),
    fails(['aggregate', 'create', 'person', 'p-1', '--event', 'person_created'], 1, /^error: already_exists: /),
    fails(['aggregate', 'get', 'person', 'nobody'], 1, /^error: not_found: aggregate person\/nobody not found/),
    fails(['aggregate', 'apply', 'person', 'p-1', 'x_y', '--metadata', '{"foo":1}'], 1, /^error: validation_failed: .*metadata key 'foo' must start with '@'/),
    fails(['aggregate', 'apply', 'person', 'p-1', 'x_y', '--note', 'n'.repeat(129)], 1, /note cannot exceed 128 characters/),
    fails(['aggregate', 'apply', 'person', 'p-1', 'x_y', '--payload', '{}', '--field', 'a=b'], 2, /^error: invalid_input: --payload cannot be used together with --field/),
    fails(['aggregate', 'apply', 'person', 'p-1'], 2, /missing required argument 'event'/),
    fails(['aggregate', 'get', 'person', 'p-1', '--bogus'], 2, /unknown option '--bogus'/),
    fails(['aggregate', 'remove', 'person', 'p-1'], 1, /^error: invalid_input: aggregate person:p-1 cannot be removed while events exist/),
    fails(['aggregate', 'remove', 'person', 'ghost'], 1, /^error: not_found: /),
  ]);
});

test('cli aggregate - list pages with cursors and --all; archive and restore; snapshot', { timeout: 60_000 }, async () => {
  // Seeded through the API: this test is about listing.
  for (const id of ['i-1', 'i-2', 'i-3', 'i-4', 'i-5']) {
    assert.equal((await server.request('POST', `/v1/aggregates/invoice/${id}`, { event_type: 'invoice_opened', payload: { number: id } })).status, 201);
  }
  const page = await ok(['aggregate', 'list', 'invoice', '--take', '2']);
  assert.match(page, /aggregate_type.*aggregate_id.*version/);
  assert.match(page, /i-1[\s\S]*i-2/);
  assert.match(page, /^next cursor: a:invoice:i-2$/m);
  const [rest, all, sorted] = await Promise.all([
    json(['aggregate', 'list', 'invoice', '--cursor', 'a:invoice:i-2', '--json']),
    json(['aggregate', 'list', 'invoice', '--all', '--take', '2', '--json']),
    json(['aggregate', 'list', 'invoice', '--sort', 'aggregate_id:desc', '--take', '1', '--json']),
  ]);
  assert.deepEqual(rest.map((a: any) => a.aggregate_id), ['i-3', 'i-4', 'i-5']);
  assert.deepEqual(all.map((a: any) => a.aggregate_id), ['i-1', 'i-2', 'i-3', 'i-4', 'i-5']);
  assert.deepEqual(sorted.map((a: any) => a.aggregate_id), ['i-5']);

  assert.match(await ok(['aggregate', 'archive', 'invoice', 'i-1', '--comment', 'paid']), /aggregate_type=invoice aggregate_id=i-1 archived=true .*comment=paid/);
  const [active, archived] = await Promise.all([json(['aggregate', 'list', 'invoice', '--json', '--take', '100']), json(['aggregate', 'list', 'invoice', '--archived-only', '--json'])]);
  assert.equal(active.some((a: any) => a.aggregate_id === 'i-1'), false);
  assert.deepEqual(archived.map((a: any) => [a.aggregate_id, a.archived]), [['i-1', true]]);
  await fails(['aggregate', 'apply', 'invoice', 'i-1', 'invoice_changed'], 1, /^error: aggregate_archived: /);
  assert.match(await ok(['aggregate', 'restore', 'invoice', 'i-1']), /archived=false/);

  const snapshot = await json(['aggregate', 'snapshot', 'invoice', 'i-2', '--comment', 'now']);
  assert.equal(snapshot.aggregate_id, 'i-2');
  assert.equal(snapshot.state.number, 'i-2');

  // --all follows a sorted listing's cursors: every aggregate once, in the sort order.
  const sortedList = await json(['aggregate', 'list', 'invoice', '--sort', 'aggregate_id:desc', '--take', '1', '--all', '--json']);
  const sortedIds = sortedList.map((a: any) => a.aggregate_id);
  assert.ok(sortedIds.length >= 2, JSON.stringify(sortedIds));
  assert.deepEqual(sortedIds, [...sortedIds].sort().reverse());
  assert.equal(new Set(sortedIds).size, sortedIds.length);

  await Promise.all([
    fails(['aggregate', 'list', '--take', '0'], 2, /--take must be greater than zero/),
    // Sorted lists page with cursors now: a cursor of another listing is the server's 400.
    fails(['aggregate', 'list', '--cursor', 'a:x:y', '--sort', 'version'], 1, /^error: invalid_input: /),
    fails(['aggregate', 'list', '--filter', 'version >'], 1, /^error: invalid_input: /),
  ]);
});

test('cli events - list, scope by aggregate, filter, and show one event', { timeout: 60_000 }, async () => {
  await server.request('POST', '/v1/aggregates/ticket/t-1', { event_type: 'ticket_opened', payload: { status: 'open' } });
  await server.request('POST', '/v1/aggregates/ticket/t-1/events', { event_type: 'ticket_closed', payload: { status: 'closed' } });
  const [own, typed, open, closed, perAggregate] = await Promise.all([
    json(['events', 'ticket', 't-1', '--json']),
    json(['events', 'ticket', '--json']),
    json(['events', '--filter', 'payload.status = "open"', '--json']),
    json(['events', '--filter', 'payload.status = "closed"', '--sort', 'version:desc', '--json']),
    json(['aggregate', 'events', 'ticket', 't-1', '--take', '1', '--json']),
  ]);
  assert.deepEqual(own.map((e: any) => e.event_type), ['ticket_opened', 'ticket_closed']);
  assert.deepEqual(typed.map((e: any) => e.version), [1, 2]);
  assert.deepEqual(open.map((e: any) => e.event_type), ['ticket_opened']);
  assert.deepEqual(closed.map((e: any) => e.event_type), ['ticket_closed']);
  assert.equal(perAggregate.length, 1);

  const id = own[1].metadata.event_id as string;
  const [byFlag, byPositional, text] = await Promise.all([json(['events', '--event', id, '--json']), json(['events', id, '--json']), ok(['events', '-e', id])]);
  assert.deepEqual(byFlag, own[1]);
  assert.deepEqual(byPositional, own[1]);
  assert.match(text, new RegExp(`^event_id=${id}$`, 'm'));
  assert.match(text, /^payload=\{/m);
  await Promise.all([
    fails(['events', 'ticket', '--event', id], 2, /aggregate filters cannot be combined with --event/),
    fails(['events', '--event', id, '--take', '2'], 2, /listing options cannot be combined with --event/),
    fails(['events', '--event', '42'], 1, /^error: not_found: /),
  ]);
});

test('cli aggregate - staging validates like a write, commit is atomic and clears the stage only on success', { timeout: 60_000 }, async () => {
  const stageFile = join(server.dataDir, 'staged_events.json');
  assert.equal((await ok(['aggregate', 'list', '--stage'])).trim(), 'no staged events');
  assert.equal((await ok(['aggregate', 'commit'])).trim(), 'no staged events to commit');

  await fails(['aggregate', 'apply', 'order', 'o-1', 'OrderPlaced', '--stage'], 1, /^error: validation_failed: .*event_type must be lowercase snake_case/);
  await fails(['aggregate', 'apply', 'order', 'o-1', 'order_placed', '--metadata', '{"x":1}', '--stage'], 1, /must start with '@'/);
  assert.equal(existsSync(stageFile), false, 'a refused entry is not staged');
  await fails(['aggregate', 'patch', 'order', 'o-1', 'order_fixed', '--patch', '[]', '--stage'], 1, /^error: validation_failed: .*at least one operation/);

  assert.equal((await ok(['aggregate', 'apply', 'order', 'o-1', 'order_placed', '--field', 'total=10', '--stage'])).trim(), 'event staged for later commit');
  await ok(['aggregate', 'apply', 'order', 'o-1', 'order_paid', '--stage']);
  await ok(['aggregate', 'apply', 'order', 'o-2', 'order_placed', '--stage']);
  // A staged patch applies at commit, after the events staged before it.
  assert.equal(
    (await ok(['aggregate', 'patch', 'order', 'o-1', 'order_fixed', '--patch', '[{"op":"replace","path":"/total","value":"12"}]', '--stage'])).trim(),
    'patch staged for later commit',
  );
  const staged = await json(['aggregate', 'list', 'order', '--stage', '--json']);
  assert.deepEqual(staged.map((e: any) => [e.aggregate_id, e.event_type]), [['o-1', 'order_placed'], ['o-1', 'order_paid'], ['o-2', 'order_placed'], ['o-1', 'order_fixed']]);
  await fails(['aggregate', 'get', 'order', 'o-1'], 1, /not_found/);

  const committed = await ok(['aggregate', 'commit']);
  assert.match(committed, /committed 4 event\(s\)/);
  assert.deepEqual(JSON.parse(readFileSync(stageFile, 'utf8')), []);
  const got = await json(['aggregate', 'get', 'order', 'o-1', '--include-events']);
  assert.deepEqual(got.events.map((e: any) => e.event_type), ['order_placed', 'order_paid', 'order_fixed']);
  assert.equal(got.state.total, '12');

  // Staging checks the event as the commit would, on the server's state: a stale expected version
  // (o-1 is at 3) is refused now, not at commit.
  await fails(['aggregate', 'apply', 'order', 'o-1', 'order_refunded', '--expected-version', '1', '--stage'], 1, /^error: version_conflict: /);
  // A batch the server refuses (one event went stale after it was staged) leaves every staged entry in place.
  await ok(['aggregate', 'apply', 'order', 'o-3', 'order_placed', '--stage']);
  await ok(['aggregate', 'apply', 'order', 'o-1', 'order_refunded', '--expected-version', '3', '--stage']);
  await ok(['aggregate', 'apply', 'order', 'o-1', 'order_noted']);
  const withoutKeys = (list: any[]) => list.map(({ idempotency_key: _k, ...rest }: any) => rest);
  const before = await json(['aggregate', 'list', '--stage', '--json']);
  await fails(['aggregate', 'commit'], 1, /^error: version_conflict: /);
  const after = await json(['aggregate', 'list', '--stage', '--json']);
  assert.deepEqual(withoutKeys(after), withoutKeys(before), 'the same entries, now keyed');
  await fails(['aggregate', 'get', 'order', 'o-3'], 1, /not_found/);
});

test('cli aggregate - staging refuses what the schema in force refuses (an undeclared event, a payload of the wrong type), and stages nothing', { timeout: 60_000 }, async () => {
  const stageFile = join(server.dataDir, 'staged_events.json');
  writeFileSync(stageFile, '[]\n');
  await ok(['schema', 'create', 'ledger', '--events', 'ledger_opened,ledger_paid']);
  await ok(['schema', 'field', 'ledger', 'amount', '--type', 'decimal(8,2)']);
  await fails(['aggregate', 'apply', 'ledger', 'l-1', 'undeclared_event', '--field', 'x=1', '--stage'], 1, /^error: validation_failed: .*event undeclared_event is not defined/);
  await fails(['aggregate', 'apply', 'ledger', 'l-1', 'ledger_paid', '--field', 'amount=abc', '--stage'], 1, /^error: validation_failed: .*amount/);
  await fails(['aggregate', 'patch', 'ledger', 'l-1', 'ledger_paid', '--patch', '[{"op":"add","path":"/amount","value":"abc"}]', '--stage'], 1, /^error: (validation_failed|not_found): /);
  assert.deepEqual(JSON.parse(readFileSync(stageFile, 'utf8')), [], 'nothing staged');
  assert.equal((await ok(['aggregate', 'apply', 'ledger', 'l-1', 'ledger_opened', '--stage'])).trim(), 'event staged for later commit');
  // Later entries are checked after the staged ones, as the commit applies them: a patch of the staged aggregate.
  assert.equal((await ok(['aggregate', 'patch', 'ledger', 'l-1', 'ledger_paid', '--patch', '[{"op":"add","path":"/amount","value":"12.50"}]', '--stage'])).trim(), 'patch staged for later commit');
  assert.match(await ok(['aggregate', 'commit']), /committed 2 event\(s\)/);
});

test('cli aggregate - a commit interrupted after the server took it replays on the next commit, never appends twice', { timeout: 60_000 }, async () => {
  const stageFile = join(server.dataDir, 'staged_events.json');
  writeFileSync(stageFile, '[]\n');
  await ok(['aggregate', 'apply', 'order', 'twice-1', 'order_placed', '--field', 'total=1', '--stage']);
  await ok(['aggregate', 'apply', 'order', 'twice-1', 'order_paid', '--stage']);
  // A commit that cannot reach a server still keys the stage first (what a kill after sending leaves).
  const unreachable = await dbx(['aggregate', 'commit', '--url', 'http://127.0.0.1:1']);
  assert.equal(unreachable.code, 1, unreachable.stderr);
  const keyed = readFileSync(stageFile, 'utf8');
  const keys = (await json(['aggregate', 'list', '--stage', '--json'])).map((e: any) => e.idempotency_key);
  assert.ok(keys.length === 2 && keys.every((k: unknown) => typeof k === 'string' && k.length > 0), JSON.stringify(keys));
  const first = await json(['aggregate', 'commit', '--json']);
  // The stage as the interrupted commit left it: committed, but not yet emptied.
  writeFileSync(stageFile, keyed);
  const again = await json(['aggregate', 'commit', '--json']);
  assert.deepEqual(again.map((e: any) => e.metadata.event_id), first.map((e: any) => e.metadata.event_id), 'the same events answered');
  const got = await json(['aggregate', 'get', 'order', 'twice-1', '--include-events']);
  assert.deepEqual(got.events.map((e: any) => e.event_type), ['order_placed', 'order_paid'], 'appended once');
});

/** Every command of the real program tree, with its full path. */
function commandPaths(command: Command, prefix: string[] = []): { path: string[]; command: Command }[] {
  return command.commands.flatMap((sub) => [{ path: [...prefix, sub.name()], command: sub }, ...commandPaths(sub, [...prefix, sub.name()])]);
}

test('cli help - every command has --help with an example', { timeout: 60_000 }, async () => {
  // The whole tree in process (30-odd commands; spawning each would cost seconds), a few through the binary.
  const program = buildProgram();
  const all = [{ path: [] as string[], command: program }, ...commandPaths(program)];
  assert.ok(all.length >= 24, `${all.length} commands`);
  for (const { path, command } of all) {
    if (command.name() === 'help') continue;
    let text = '';
    command.configureOutput({ writeOut: (s) => (text += s), writeErr: (s) => (text += s) });
    command.outputHelp();
    assert.match(text, /Examples?:\n {2}dbx /, `dbx ${path.join(' ')} --help has an example`);
  }
  const [root, apply, events] = await Promise.all([dbx(['--help']), dbx(['aggregate', 'apply', '--help']), dbx(['events', '--help'])]);
  for (const res of [root, apply, events]) {
    assert.equal(res.code, 0);
    assert.match(res.stdout, /Usage: dbx/);
  }
  assert.match(apply.stdout, /dbx aggregate apply person p-002 person_updated --field name="Jane Doe"/);
  assert.match(events.stdout, /-e, --event <event_id>/);
  await fails(['frobnicate'], 2, /unknown command 'frobnicate'/);
});
