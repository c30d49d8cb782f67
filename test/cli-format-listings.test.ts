/**
 * Issue 14 item 4: `--format table|json|csv|lines` on the tenant and queue listings too, with
 * --json kept and an unknown format refused as usage. The assignments and one listing go through
 * direct mode (a data dir no server owns); the rest through a server started on the same dir (each
 * direct command starts the engine, ~2 s; the formatting is the CLI's either way).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { removeDir, runDbx, spawnServer, stopSpawned, tempDataDir } from './helpers/server.js';

const dataDir = tempDataDir('edbx-cli-formats-');
const dbx = (args: string[]) => runDbx([...args, '--data-dir', dataDir]);
after(() => removeDir(dataDir));

async function ok(args: string[]): Promise<string> {
  const res = await dbx(args);
  assert.equal(res.code, 0, `${args.join(' ')}: ${res.stderr}`);
  return res.stdout;
}

test('cli formats - tenant list and stats in table, json, csv and lines; queue in lines, json, csv and table', { timeout: 120_000 }, async () => {
  assert.equal((await dbx(['config'])).code, 0);
  await ok(['tenant', 'assign', 'acme', '--shard', '1']);
  await ok(['tenant', 'assign', 'beta', '--shard', '2']);
  const directly = JSON.parse(await ok(['tenant', 'list', '--format', 'json']));
  const server = await spawnServer({ dataDir });
  try {
    await formats(directly);
  } finally {
    await stopSpawned(server);
  }
});

async function formats(directly: unknown): Promise<void> {
  assert.deepEqual(JSON.parse(await ok(['tenant', 'list', '--format', 'json'])), directly, 'direct mode and the server list alike');

  const table = await ok(['tenant', 'list', '--format', 'table']);
  assert.match(table, /^ *tenant *\| *shard/m);
  assert.match(table, /acme *\| *shard-0001/);
  assert.match(table, /\(2 rows\)/);
  assert.deepEqual(JSON.parse(await ok(['tenant', 'list', '--format', 'json'])), [
    { tenant: 'acme', shard: 'shard-0001' },
    { tenant: 'beta', shard: 'shard-0002' },
  ]);
  assert.deepEqual(JSON.parse(await ok(['tenant', 'list', '--json'])), JSON.parse(await ok(['tenant', 'list', '--format', 'json'])), '--json is --format json');
  const csv = (await ok(['tenant', 'list', '--format', 'csv'])).trim().split(/\r?\n/);
  assert.equal(csv[0]?.split(',')[0], 'tenant');
  assert.deepEqual(csv.slice(1).map((l) => l.split(',').slice(0, 2)), [['acme', 'shard-0001'], ['beta', 'shard-0002']]);
  assert.deepEqual((await ok(['tenant', 'list', '--format', 'lines'])).trim().split(/\r?\n/), ['tenant=acme shard=shard-0001', 'tenant=beta shard=shard-0002']);

  assert.deepEqual(JSON.parse(await ok(['tenant', 'stats', '--format', 'json'])), { 'shard-0001': 1, 'shard-0002': 1 });
  assert.deepEqual((await ok(['tenant', 'stats', '--format', 'csv'])).trim().split(/\r?\n/), ['shard,count', 'shard-0001,1', 'shard-0002,1']);
  assert.deepEqual((await ok(['tenant', 'stats', '--format', 'lines'])).trim().split(/\r?\n/), ['shard=shard-0001 count=1', 'shard=shard-0002 count=1']);
  assert.match(await ok(['tenant', 'stats', '--format', 'table']), /shard-0002 *\| *1/);

  assert.match(await ok(['queue']), /^pending=0 processing=0 done=0 dead=0/, 'the default stays the original lines');
  assert.deepEqual(JSON.parse(await ok(['queue', '--format', 'json'])), { plugins: [], jobs: [], jobs_total: 0 });
  assert.equal((await ok(['queue', '--format', 'csv'])).trim().replace(/\r/g, ''), 'plugin,event_id,tenant,aggregate_type,aggregate_id,version,status,attempts,next_attempt_at,last_error');
  assert.match(await ok(['queue', '--format', 'table']), /no plugins[\s\S]*no open jobs/);

  const bad = await dbx(['tenant', 'list', '--format', 'yaml']);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /yaml/);
}

test('cli formats - dbx events --format lines carries what the table shows: created_at, issued_by and a note (quoted, one line per event)', { timeout: 120_000 }, async () => {
  const server = await spawnServer({ dataDir });
  try {
    await ok(['aggregate', 'create', 'thing', 't-5', '--event', 'made', '--payload', '{"n":1}']);
    await ok(['aggregate', 'apply', 'thing', 't-5', 'bumped', '--payload', '{"n":2}', '--note', 'two words=x']);
    const lines = (await ok(['events', 'thing', 't-5', '--format', 'lines'])).trim().split(/\r?\n/);
    assert.equal(lines.length, 2, lines.join('\n'));
    for (const line of lines) {
      assert.match(line, /^aggregate_type=thing aggregate_id=t-5 version=\d event_type=\w+ event_id=\d+ created_at=\d{4}-\d\d-\d\dT\S+Z issued_by=\S+:\S+/);
    }
    assert.match(lines[1] as string, / note="two words=x"$/);
    assert.doesNotMatch(lines[0] as string, /note=/);
  } finally {
    await stopSpawned(server);
  }
});

test('cli formats - a table cell holding a newline or an ESC stays on its row, escaped; an empty schema list says so', { timeout: 120_000 }, async () => {
  const server = await spawnServer({ dataDir });
  try {
    assert.equal((await ok(['schema', 'list'])).trim(), 'no schemas', 'the default lines format');
    assert.equal((await ok(['schema', 'list', '--format', 'table'])).trim(), 'no schemas');
    assert.deepEqual(JSON.parse(await ok(['schema', 'list', '--json'])), []);
    await ok(['aggregate', 'create', 'thing', 't-6', '--event', 'made', '--payload', '{"n":1}', '--note', 'line one\nline two\u001b[31mred\ttab']);
    const table = await ok(['events', 'thing', 't-6', '--format', 'table']);
    assert.doesNotMatch(table, /\u001b/, 'no raw ESC reaches the terminal');
    const row = table.split('\n').find((l) => l.includes('line one'));
    assert.ok(row, table);
    assert.ok(row.includes('line one\\nline two\\u001b[31mred\\ttab'), row);
    assert.match(table, /\(1 row\)/);
  } finally {
    await stopSpawned(server);
  }
});
