/**
 * The CLI as a person who lives in psql and redis-cli expects it (issue 14 item 4), run as the real
 * binary against real servers: --url/--tenant/--token and their variables, `status` exit codes,
 * no store conjured up by a read, --format and terminal-aware tables, JSON errors, --all printed
 * page by page, shell completion, direct reads that answer like the server without loading it, and
 * `restart` keeping the options of the last start.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DBX_BIN, removeDir, runDbx, spawnServer, stopSpawned, tempDataDir, type SpawnedServer } from './helpers/server.js';

const TRACE = resolve(dirname(fileURLToPath(import.meta.url)), 'helpers', 'module-trace.js');
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[/;

let home: string;
let server: SpawnedServer;
/** Env of a CLI whose own data dir does not exist: everything it reads must come from --url. */
let elsewhere: Record<string, string>;

before(async () => {
  home = tempDataDir('edbx-ergo-');
  server = await spawnServer();
  elsewhere = { HOME: home, EVENTDBX_DATA_DIR: join(home, 'absent'), EVENTDBX_TOKEN: '', EVENTDBX_TENANT_ID: '', EVENTDBX_TENANT: '', EVENTDBX_URL: '', NO_COLOR: '', FORCE_COLOR: '', COLUMNS: '' };
  const items = Array.from({ length: 60 }, (_, i) => ({ aggregate_type: 'streamed', aggregate_id: `s-${String(i).padStart(3, '0')}`, event_type: 'streamed_created', payload: { n: i } }));
  assert.equal((await server.request('POST', '/v1/batch', { events: items })).status, 201);
  const res = await server.request('POST', '/v1/aggregates/person/p-1', { event_type: 'person_created', payload: { name: 'Ada', note: 'likes "quotes", commas' } });
  assert.equal(res.status, 201);
});

after(async () => {
  await stopSpawned(server);
  removeDir(server.dataDir);
  removeDir(home);
});

function dbx(args: string[], env: Record<string, string> = {}): ReturnType<typeof runDbx> {
  return runDbx(args, { env: { ...elsewhere, ...env }, timeoutMs: 60_000 });
}

async function ok(args: string[], env: Record<string, string> = {}): Promise<string> {
  const res = await dbx(args, env);
  assert.equal(res.code, 0, `dbx ${args.join(' ')} → ${res.code}: ${res.stderr}`);
  return res.stdout;
}

const remote = (): string[] => ['--url', server.url, '--token', server.token];

test('cli ergonomics - --url, --token, --tenant and $EVENTDBX_URL/TOKEN/TENANT reach a server that is not the data dir\'s', { timeout: 120_000 }, async () => {
  assert.equal((await server.request('POST', '/v1/aggregates/order/o-1', { event_type: 'order_placed', payload: {} }, { 'x-tenant-id': 'acme' })).status, 201);
  const [byFlags, byEnv, tenantFlag, tenantEnv, wrongTenant] = await Promise.all([
    ok(['aggregate', 'get', 'person', 'p-1', ...remote()]),
    ok(['aggregate', 'get', 'person', 'p-1'], { EVENTDBX_URL: server.url, EVENTDBX_TOKEN: server.token }),
    ok(['aggregate', 'list', 'order', '--format', 'json', ...remote(), '--tenant', 'acme']),
    ok(['aggregate', 'list', 'order', '--json'], { EVENTDBX_URL: server.url, EVENTDBX_TOKEN: server.token, EVENTDBX_TENANT: 'acme' }),
    ok(['aggregate', 'list', 'order', '--json', ...remote()]),
  ]);
  assert.equal(JSON.parse(byFlags).state.name, 'Ada');
  assert.equal(byEnv, byFlags);
  assert.deepEqual(JSON.parse(tenantFlag).map((a: { aggregate_id: string }) => a.aggregate_id), ['o-1']);
  assert.equal(tenantEnv, tenantFlag);
  assert.deepEqual(JSON.parse(wrongTenant), [], 'the default tenant has no orders');
  assert.equal(existsSync(join(home, 'absent')), false, 'talking to a server creates no local data dir');

  const bad = await dbx(['aggregate', 'list', '--url', 'localhost:7070']);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /^error: invalid_input: --url localhost:7070: expected http:\/\/host:port/);
  const noToken = await dbx(['aggregate', 'list', '--url', server.url]);
  assert.equal(noToken.code, 1);
  assert.match(noToken.stderr, /^error: unauthorized: no token: pass --token, set EVENTDBX_TOKEN/);
});

test('cli ergonomics - status exits 0 when the server answers and 1 with one line when it does not (pg_isready)', { timeout: 120_000 }, async () => {
  const missing = join(home, 'never');
  const closed = await closedPort();
  const [up, upJson, down, downJson, remoteUp, remoteDown] = await Promise.all([
    dbx(['status', '--data-dir', server.dataDir]),
    dbx(['status', '--data-dir', server.dataDir, '--json']),
    dbx(['status', '--data-dir', missing]),
    dbx(['status', '--data-dir', missing, '--json']),
    dbx(['status', ...remote()]),
    dbx(['status', '--url', `http://127.0.0.1:${closed}`]),
  ]);
  assert.equal(up.code, 0, up.stderr);
  assert.match(up.stdout, new RegExp(`^EventDBX server is running on port ${server.port} `));
  assert.equal(upJson.code, 0);
  assert.equal(JSON.parse(upJson.stdout).responding, true);
  assert.equal(down.code, 1);
  assert.equal(down.stdout, `EventDBX server is not running (data dir ${missing} does not exist).\n`, 'one line');
  assert.equal(down.stderr, '');
  assert.equal(downJson.code, 1);
  assert.deepEqual(JSON.parse(downJson.stdout), { running: false, data_dir: missing });
  assert.equal(remoteUp.code, 0, remoteUp.stderr);
  assert.match(remoteUp.stdout, new RegExp(`running on port ${server.port} \\(pid ${server.child.pid}\\)`));
  assert.equal(remoteDown.code, 1);
  assert.equal(remoteDown.stdout, `EventDBX server at http://127.0.0.1:${closed} is not answering.\n`);
  assert.equal(existsSync(missing), false, 'status creates nothing');
});

test('cli ergonomics - a read on a data dir that does not exist is refused and creates nothing', { timeout: 120_000 }, async () => {
  const missing = join(home, 'nowhere');
  const results = await Promise.all([
    dbx(['aggregate', 'get', 'person', 'p-1', '--data-dir', missing]),
    dbx(['aggregate', 'list', '--data-dir', missing]),
    dbx(['events', '--data-dir', missing]),
    dbx(['schema', 'list', '--data-dir', missing]),
  ]);
  for (const res of results) {
    assert.equal(res.code, 1, res.stderr);
    assert.equal(res.stdout, '');
    assert.equal(res.stderr, `error: not_found: data directory ${missing} does not exist; start a server there (\`dbx start --data-dir ${missing}\`), or name another with --data-dir, $EVENTDBX_DATA_DIR or --url\n`);
  }
  const json = await dbx(['aggregate', 'list', '--data-dir', missing, '--json']);
  assert.equal(json.code, 1);
  assert.deepEqual(Object.keys(JSON.parse(json.stderr).error), ['code', 'message']);
  assert.equal(JSON.parse(json.stderr).error.code, 'not_found');
  assert.equal(existsSync(missing), false, 'no empty store was created');
});

/** Minimal RFC 4180 reader (quoted fields, doubled quotes, CRLF). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') row.push(field), (field = '');
    else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(field), rows.push(row), (row = []), (field = ''), i++;
    } else field += ch;
  }
  return rows;
}

test('cli ergonomics - --format table|json|csv|lines on listings; tables fit $COLUMNS or switch to records; colours only when allowed', { timeout: 120_000 }, async () => {
  const args = ['aggregate', 'list', 'streamed', '--take', '3', ...remote()];
  const [table, json, csv, lines, narrow, coloured, noColour] = await Promise.all([
    ok(args),
    ok([...args, '--format', 'json']),
    ok([...args, '--format', 'csv']),
    ok([...args, '--format', 'lines']),
    ok(args, { COLUMNS: '60' }),
    ok(args, { FORCE_COLOR: '1' }),
    ok(args, { FORCE_COLOR: '1', NO_COLOR: '1' }),
  ]);
  // psql's aligned format off a terminal: no width limit, no colour.
  const tableLines = table.split('\n');
  assert.match(tableLines[0] as string, /^ aggregate_type \| aggregate_id \| version \|\s+updated_at\s+\|\s+merkle_root$/);
  assert.match(tableLines[1] as string, /^-+\+-+\+-+\+-+\+-+$/);
  assert.match(tableLines[2] as string, /^ streamed\s+\| s-000\s+\|\s+1 \| /);
  assert.equal(tableLines[5], '(3 rows)');
  assert.equal(tableLines[6], 'next cursor: a:streamed:s-002');
  assert.doesNotMatch(table, ANSI, 'off a terminal the output is plain');

  const items = JSON.parse(json);
  assert.deepEqual(items.map((a: { aggregate_id: string }) => a.aggregate_id), ['s-000', 's-001', 's-002']);
  assert.equal(json, `${JSON.stringify(items, null, 2)}\n`, 'exactly the pretty JSON array');

  const rows = parseCsv(csv);
  assert.deepEqual(rows[0], ['aggregate_type', 'aggregate_id', 'version', 'updated_at', 'merkle_root']);
  assert.deepEqual(rows.slice(1).map((r) => r[1]), ['s-000', 's-001', 's-002']);
  assert.equal(rows[1]?.[4], items[0].merkle_root, 'csv carries whole values');

  assert.equal(lines.split('\n').length, 5);
  assert.match(lines, /^aggregate_type=streamed aggregate_id=s-000 version=1 archived=false updated_at=\S+ merkle_root=[0-9a-f]{64}\n/);
  assert.match(lines, /\nnext cursor: a:streamed:s-002\n$/);

  // 60 columns cannot hold the row: psql's expanded view, one record per aggregate.
  assert.match(narrow, /^-\[ RECORD 1 \]-+\+-+\naggregate_type \| streamed\naggregate_id   \| s-000\nversion        \| 1\n/);
  assert.match(narrow, /\n-\[ RECORD 3 \]/);
  for (const line of narrow.split('\n')) assert.ok(line.length <= 60, `fits 60 columns: ${line}`);

  assert.match(coloured, ANSI, 'FORCE_COLOR colours the header');
  assert.doesNotMatch(noColour, ANSI, 'NO_COLOR wins');
  assert.equal(noColour, table);

  // A value with quotes and commas survives csv.
  const person = parseCsv(await ok(['events', 'person', 'p-1', '--format', 'csv', ...remote()]));
  assert.deepEqual(person[0], ['aggregate_type', 'aggregate_id', 'version', 'event_type', 'event_id', 'created_at', 'issued_by', 'note']);
  assert.equal(person[1]?.[3], 'person_created');

  const conflict = await dbx([...args, '--json', '--format', 'csv']);
  assert.equal(conflict.code, 2);
  const badFormat = await dbx([...args, '--format', 'xml']);
  assert.equal(badFormat.code, 2);
  assert.match(badFormat.stderr, /error: invalid_input: option '--format <format>' argument 'xml' is invalid/);
});

test('cli ergonomics - with --json or --format json every error is the API\'s error model on stderr', { timeout: 120_000 }, async () => {
  const [notFound, usage, formatJson, text] = await Promise.all([
    dbx(['aggregate', 'get', 'person', 'nobody', '--json', ...remote()]),
    dbx(['aggregate', 'list', '--json', '--no-such-flag', ...remote()]),
    dbx(['events', '--format', 'json', '--filter', 'version >', ...remote()]),
    dbx(['aggregate', 'get', 'person', 'nobody', ...remote()]),
  ]);
  assert.equal(notFound.code, 1);
  assert.deepEqual(JSON.parse(notFound.stderr), { error: { code: 'not_found', message: 'aggregate person/nobody not found' } });
  assert.equal(notFound.stdout, '');
  assert.equal(usage.code, 2);
  assert.deepEqual(JSON.parse(usage.stderr), { error: { code: 'invalid_input', message: "unknown option '--no-such-flag'" } });
  assert.equal(formatJson.code, 1);
  assert.equal(JSON.parse(formatJson.stderr).error.code, 'invalid_input');
  assert.equal(text.stderr, 'error: not_found: aggregate person/nobody not found\n', 'text stays text');
});

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((done) => probe.listen(0, '127.0.0.1', done));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((done) => probe.close(() => done()));
  return port;
}

test('cli ergonomics - --all prints each page as it arrives (a page is not asked for before the previous one is printed)', { timeout: 120_000 }, async () => {
  let stdout = '';
  const seen: string[] = [];
  // A proxy in front of the server that holds page n until the CLI has printed the last item of
  // page n-1: a CLI that buffered the listing would never print, and the held request would time out.
  const proxy: Server = createServer((req, res) => {
    const cursor = new URL(req.url ?? '/', 'http://x').searchParams.get('cursor');
    seen.push(cursor ?? '');
    const forward = (): void => {
      const upstream = httpRequest(`${server.url}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      req.pipe(upstream);
    };
    if (!cursor) return forward();
    const printed = cursor.split(':').pop() as string;
    const deadline = Date.now() + 30_000;
    const wait = (): void => {
      if (stdout.includes(`aggregate_id=${printed} `)) return forward();
      if (Date.now() > deadline) return void res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'unavailable', message: `held: ${printed} was never printed` } }));
      setTimeout(wait, 10);
    };
    wait();
  });
  await new Promise<void>((done) => proxy.listen(0, '127.0.0.1', done));
  const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  try {
    const child = spawn(process.execPath, [DBX_BIN, 'aggregate', 'list', 'streamed', '--all', '--take', '7', '--format', 'lines', '--url', url, '--token', server.token], {
      env: { ...process.env, ...elsewhere },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((done) => child.on('exit', done));
    assert.equal(code, 0, stderr);
    const ids = stdout.trim().split('\n').map((l) => /aggregate_id=(\S+)/.exec(l)?.[1]);
    assert.equal(ids.length, 60);
    assert.deepEqual(ids, Array.from({ length: 60 }, (_, i) => `s-${String(i).padStart(3, '0')}`));
    assert.ok(seen.length >= 9, `60 items at 7 a page take 9 requests (saw ${seen.length})`);
  } finally {
    await new Promise<void>((done) => proxy.close(() => done()));
  }
  // The JSON form of a streamed listing is still one exact array.
  const all = await ok(['aggregate', 'list', 'streamed', '--all', '--take', '7', '--json', ...remote()]);
  assert.equal(JSON.parse(all).length, 60);
  assert.equal(all, `${JSON.stringify(JSON.parse(all), null, 2)}\n`);
});

/** Runs the generated bash completion for the words typed so far (the last one being completed). */
function complete(script: string, words: string[]): string[] {
  const file = join(home, 'dbx.bash');
  writeFileSync(file, script);
  const program = `source ${JSON.stringify(file)}; COMP_WORDS=(${words.map((w) => JSON.stringify(w)).join(' ')}); COMP_CWORD=${words.length - 1}; _dbx; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const res = spawnSync('bash', ['-c', program], { encoding: 'utf8', cwd: home });
  assert.equal(res.status, 0, res.stderr);
  return res.stdout.split('\n').filter((l) => l.length > 0);
}

test('cli ergonomics - dbx completion bash|zsh|fish prints scripts generated from the program', { timeout: 60_000 }, async () => {
  const [bash, zsh, fish, bad] = await Promise.all([dbx(['completion', 'bash']), dbx(['completion', 'zsh']), dbx(['completion', 'fish']), dbx(['completion', 'tcsh'])]);
  assert.equal(bash.code, 0, bash.stderr);
  const syntax = spawnSync('bash', ['-n'], { input: bash.stdout, encoding: 'utf8' });
  assert.equal(syntax.status, 0, `bash -n: ${syntax.stderr}`);
  assert.match(bash.stdout, /complete -F _dbx dbx/);

  assert.deepEqual(complete(bash.stdout, ['dbx', 'agg']), ['aggregate']);
  assert.ok(complete(bash.stdout, ['dbx', '']).includes('doctor'));
  assert.deepEqual(complete(bash.stdout, ['dbx', 'aggregate', 'li']), ['list']);
  assert.deepEqual(complete(bash.stdout, ['dbx', 'aggregate', 'list', '--ta']), ['--take']);
  assert.deepEqual(complete(bash.stdout, ['dbx', 'aggregate', 'list', '--format', '']), ['table', 'json', 'csv', 'lines']);
  assert.deepEqual(complete(bash.stdout, ['dbx', '--data-dir', '/tmp', 'sta']).sort(), ['start', 'status'], 'an option value is not taken for a command');
  assert.deepEqual(complete(bash.stdout, ['dbx', 'aggregate', 'list', '--take', '5', '--all', '--form']), ['--format']);
  assert.deepEqual(complete(bash.stdout, ['dbx', 'schema', 'cr']), ['create']);

  assert.equal(zsh.code, 0);
  assert.match(zsh.stdout, /^#compdef dbx\n/);
  assert.match(zsh.stdout, /compdef _dbx dbx/);
  if (spawnSync('zsh', ['--version']).status === 0) assert.equal(spawnSync('zsh', ['-n'], { input: zsh.stdout }).status, 0, 'zsh -n');
  assert.equal(fish.code, 0);
  assert.match(fish.stdout, /complete -c dbx -f -a '\(__dbx_complete\)'/);
  assert.match(fish.stdout, /'aggregate\tManage aggregates'/);
  if (spawnSync('fish', ['--version']).status === 0) {
    // From a file: fish 3.6 given the script on a pipe answers 127 "Unable to read input file".
    const script = join(home, 'dbx.fish');
    writeFileSync(script, fish.stdout);
    const checked = spawnSync('fish', ['--no-execute', script], { encoding: 'utf8' });
    assert.equal(checked.status, 0, `fish -n: ${checked.stderr}`);
    // Loaded for real: fish asks the completion for `dbx agg` and gets the subcommand.
    const asked = spawnSync('fish', ['-c', `source ${script}; complete -C 'dbx agg'`], { encoding: 'utf8', env: { ...process.env, HOME: home } });
    assert.equal(asked.status, 0, asked.stderr);
    assert.match(asked.stdout, /^aggregate\b/m, 'fish completes dbx agg to aggregate');
  }
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown shell 'tcsh'/);
});

function traced(args: string[], env: Record<string, string>): { code: number | null; stdout: string; stderr: string; modules: string[]; ms: number } {
  const file = join(mkdtempSync(join(tmpdir(), 'edbx-trace-')), 'modules.txt');
  writeFileSync(file, '');
  const started = process.hrtime.bigint();
  const res = spawnSync(process.execPath, ['--import', TRACE, DBX_BIN, ...args], { env: { ...process.env, ...elsewhere, ...env, MODULE_TRACE_FILE: file }, encoding: 'utf8', timeout: 60_000 });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const modules = [...new Set(readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0))];
  removeDir(dirname(file));
  return { code: res.status, stdout: res.stdout, stderr: res.stderr, modules, ms };
}

const SERVER_MODULES = [/node_modules\/fastify\//, /node_modules\/piscina\//, /\/coordinator\/server\.js$/, /\/coordinator\/index\.js$/, /\/plugins\/(kinds|dispatcher|pool|delivery-worker|queue|outbox)/, /\/shard-worker\/worker\.js$/, /node_modules\/pino\//];

test('cli ergonomics - start-up: --version loads nothing but itself; a direct read loads no server, fastify, piscina or plugin', { timeout: 180_000 }, async () => {
  const version = traced(['--version'], {});
  assert.equal(version.code, 0, version.stderr);
  assert.equal(version.stdout.trim(), JSON.parse(readFileSync(resolve(dirname(DBX_BIN), '../../../package.json'), 'utf8')).version);
  const ours = version.modules.filter((m) => !m.startsWith('node:') && !m.includes('module-trace'));
  assert.deepEqual(ours.map((m) => m.replace(/.*\/dist\//, '')).sort(), ['src/cli/main.js', 'src/cli/version.js'], '--version loads only main.js and version.js (no commander, zod or client)');

  // A data dir no server owns, with data: written in direct mode (that one starts the engine).
  const dataDir = join(home, 'direct');
  const env = { EVENTDBX_DATA_DIR: dataDir };
  assert.equal((await dbx(['aggregate', 'create', 'person', 'p-1', '--event', 'person_created', '--field', 'name=Ada'], env)).code, 0);
  const read = traced(['aggregate', 'get', 'person', 'p-1'], env);
  assert.equal(read.code, 0, read.stderr);
  assert.equal(JSON.parse(read.stdout).state.name, 'Ada');
  for (const pattern of SERVER_MODULES) assert.equal(read.modules.find((m) => pattern.test(m)), undefined, `a direct read loaded ${pattern}`);
  // Compiled (dist/src/coordinator/read-only.js) or bundled (dist/src/bin/read-only-<hash>.js, scripts/bundle-cli.mjs).
  assert.ok(read.modules.some((m) => m.endsWith('/coordinator/read-only.js') || /\/bin\/read-only-[A-Z0-9]+\.js$/.test(m)), 'served by the read-only engine');
  const write = traced(['aggregate', 'apply', 'person', 'p-1', 'person_renamed', '--field', 'name=Grace'], env);
  assert.equal(write.code, 0, write.stderr);
  assert.ok(write.modules.some((m) => /node_modules\/fastify\//.test(m)), 'a direct write does start the engine (the check above can see it)');
  // Reported, not asserted: times depend on the machine's load.
  process.stdout.write(`# start-up on this machine: --version ${version.ms.toFixed(0)} ms, direct get ${read.ms.toFixed(0)} ms, direct apply ${write.ms.toFixed(0)} ms (traced)\n`);
});

test('cli ergonomics - a direct read answers exactly as the server does (read-only engine vs the real server)', { timeout: 240_000 }, async () => {
  const dataDir = join(home, 'same');
  const env = { EVENTDBX_DATA_DIR: dataDir };
  // Seeded through the server's API (a CLI write in direct mode costs a ~2 s engine start; those
  // are test/cli-direct.test.ts's subject), then every read asked of the server and, once it has
  // stopped, of the read-only engine.
  const running = await spawnServer({ dataDir });
  const seed = async (method: string, path: string, body: unknown): Promise<any> => {
    const res = await running.request(method, path, body);
    assert.ok(res.status === 200 || res.status === 201, `${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  let readOnly = '';
  let eventId = '';
  try {
    await seed('POST', '/v1/aggregates/person/p-1', { event_type: 'person_created', payload: { name: 'Ada', city: 'Paris' } });
    eventId = (await seed('POST', '/v1/aggregates/person/p-1/events', { event_type: 'person_moved', payload: { city: 'Rome' } })).metadata.event_id;
    await seed('POST', '/v1/aggregates/person/p-2', { event_type: 'person_created', payload: { name: 'Bob' } });
    await seed('POST', '/v1/aggregates/person/p-2/archive', {});
    await seed('POST', '/v1/schemas', { aggregate: 'person', events: { person_created: {}, person_moved: {} } });
    readOnly = (await seed('POST', '/v1/tokens', { group: 'g', user: 'u', actions: ['aggregate.read'], resources: ['person/p-1'] })).token;
  } catch (err) {
    await stopSpawned(running);
    throw err;
  }
  const reads: string[][] = [
    ['aggregate', 'get', 'person', 'p-1'],
    ['aggregate', 'get', 'person', 'p-1', '--version', '1', '--include-events'],
    ['aggregate', 'select', 'person', 'p-1', 'name', 'city', 'missing'],
    ['aggregate', 'list', '--include-archived', '--json'],
    ['aggregate', 'list', 'person', '--filter', 'version > 1', '--json'],
    ['aggregate', 'list', '--sort', 'aggregate_id:desc', '--archived-only', '--format', 'csv'],
    ['events', '--json'],
    ['events', eventId, '--json'],
    ['aggregate', 'verify', 'person', 'p-1', '--json'],
    ['schema', 'list', '--json'],
    ['aggregate', 'get', 'person', 'nobody'],
    ['aggregate', 'list', '--tenant', 'Not A Tenant'],
    ['aggregate', 'get', 'person', 'p-2', '--token', readOnly],
    ['aggregate', 'list', '--json', '--token', readOnly],
    ['aggregate', 'get', 'person', 'p-1', '--token', 'not.a.token'],
  ];
  const served: Awaited<ReturnType<typeof dbx>>[] = [];
  try {
    // A few at a time: a flood of CLI processes on a busy machine can make /health miss its deadline.
    for (let i = 0; i < reads.length; i += 3) served.push(...(await Promise.all(reads.slice(i, i + 3).map((args) => dbx(args, env)))));
  } finally {
    assert.equal(await stopSpawned(running), 0);
  }
  // Direct reads take no lock: they may run side by side (a few at a time, on a busy machine).
  const direct: Awaited<ReturnType<typeof dbx>>[] = [];
  for (let i = 0; i < reads.length; i += 3) direct.push(...(await Promise.all(reads.slice(i, i + 3).map((args) => dbx(args, env)))));
  assert.equal(existsSync(join(dataDir, 'server.pid')), false);
  reads.forEach((args, i) => {
    assert.deepEqual(direct[i], served[i], `dbx ${args.join(' ')}: direct and server answers differ`);
  });
  assert.ok(direct.some((r) => r.code === 1 && /^error: forbidden: /.test(r.stderr)), 'the read-only token is refused where it must be');
  assert.ok(direct.some((r) => r.code === 1 && /^error: unauthorized: /.test(r.stderr)), 'a bad token is refused');
});

test('cli ergonomics - restart starts the server with the options of its last start (port, restrict)', { timeout: 180_000 }, async () => {
  const dataDir = join(home, 'restart');
  const env = { EVENTDBX_DATA_DIR: dataDir };
  const port = await closedPort();
  try {
    const started = await dbx(['start', '--port', String(port), '--restrict=strict'], env);
    assert.equal(started.code, 0, started.stderr);
    assert.match(started.stdout, new RegExp(`running on port ${port} .*\\(restrict=strict\\)`));
    // config.toml changed meanwhile (by hand): restart still repeats the start's options, like pg_ctl.
    const configFile = join(dataDir, 'config.toml');
    writeFileSync(configFile, readFileSync(configFile, 'utf8').replace(/^restrict = .*$/m, 'restrict = "off"').replace(/^port = .*$/m, 'port = 1'));
    const restarted = await dbx(['restart'], env);
    assert.equal(restarted.code, 0, restarted.stderr);
    assert.match(restarted.stdout, new RegExp(`running on port ${port} .*\\(restrict=strict\\)`));
    const status = JSON.parse((await dbx(['status', '--json'], env)).stdout);
    assert.equal(status.restrict, 'strict');
    assert.equal(status.port, port);
    // Options given to restart replace the remembered ones, and are remembered in turn.
    const relaxed = await dbx(['restart', '--restrict=default'], env);
    assert.match(relaxed.stdout, new RegExp(`running on port ${port} .*\\(restrict=default\\)`));
    const again = await dbx(['restart'], env);
    assert.match(again.stdout, new RegExp(`running on port ${port} .*\\(restrict=default\\)`));
  } finally {
    await dbx(['stop'], env);
  }
});
