/**
 * Encryption in transit (issue 10 item 6): `[http] tls_cert_file` / `tls_key_file` serve HTTPS; the
 * TypeScript client and the CLI reach it with a CA they are given (and only then); plain HTTP to
 * the TLS port gets nothing. Certificates are made per run by the `openssl` binary (skipped without).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, EventDbxError } from '../src/client/index.js';
import { removeDir, runDbx, startServerInProcess, tempDataDir, writeConfigToml, type TestServer } from './helpers/server.js';
import { hasOpenssl, httpsRequest, makeCerts, tlsConfigToml, type TestCerts } from './helpers/tls.js';

const skip = hasOpenssl() ? false : 'the openssl binary is not installed';

let certs: TestCerts;
let server: TestServer;
let home: string;
const daemonDirs: string[] = [];

before(async () => {
  if (skip) return;
  certs = makeCerts(mkdtempSync(join(tmpdir(), 'edbx-tls-')));
  home = tempDataDir('edbx-tls-home-');
  // The CA-signed certificate, and tls_ca_file so the CLI on this machine knows which CA to trust.
  server = await startServerInProcess({ configToml: tlsConfigToml(certs.certFile, certs.keyFile, `tls_ca_file = ${JSON.stringify(certs.caFile)}\n`) });
});

after(async () => {
  if (skip) return;
  for (const dir of daemonDirs) {
    await runDbx(['stop', '--data-dir', dir], { env: cliEnv() });
    removeDir(dir);
  }
  await server.stop();
  removeDir(server.dataDir);
  removeDir(certs.dir);
  removeDir(home);
});

/** The CLI's environment: no token, CA or data dir inherited from the caller. */
function cliEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { HOME: home, EVENTDBX_DATA_DIR: join(home, 'no-such-dir'), EVENTDBX_TOKEN: '', EVENTDBX_CA_FILE: '', EVENTDBX_TENANT_ID: '', ...extra };
}

test('security-tls - the server serves https and says so in its url', { skip, timeout: 20_000 }, async () => {
  assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const health = await httpsRequest(`${server.url}/health`, certs.caFile);
  assert.deepEqual({ status: health.status, body: health.body }, { status: 200, body: { status: 'ok' } });
});

test('security-tls - the client works over https with the CA, given as ca, caFile or $EVENTDBX_CA_FILE', { skip, timeout: 20_000 }, async () => {
  const byFile = createClient({ url: server.url, token: server.token, caFile: certs.caFile });
  const created = await byFile.create('person', 'p-tls', 'person_created', { payload: { name: 'Ada' } });
  assert.equal(created.version, 1);
  await byFile.close();

  const byPem = createClient({ url: server.url, token: server.token, ca: readFileSync(certs.caFile, 'utf8') });
  assert.deepEqual((await byPem.get('person', 'p-tls')).state, { name: 'Ada' });
  await byPem.close();

  const saved = process.env.EVENTDBX_CA_FILE;
  process.env.EVENTDBX_CA_FILE = certs.caFile;
  try {
    const byEnv = createClient({ url: server.url, token: server.token });
    assert.equal((await byEnv.get('person', 'p-tls')).version, 1);
    await byEnv.close();
  } finally {
    if (saved === undefined) delete process.env.EVENTDBX_CA_FILE;
    else process.env.EVENTDBX_CA_FILE = saved;
  }
});

test('security-tls - without the CA the client refuses the server, says what to do, and sends nothing', { skip, timeout: 20_000 }, async () => {
  // A certificate from another CA (the self-signed one) is no better than none.
  for (const options of [{}, { caFile: certs.selfCertFile }]) {
    const client = createClient({ url: server.url, token: server.token, retry: { attempts: 1 }, ...options });
    const err = await client.create('person', 'p-untrusted', 'person_created', { payload: {} }).then(
      () => assert.fail('an untrusted server was used'),
      (e: unknown) => e,
    );
    await client.close();
    assert.ok(err instanceof EventDbxError);
    assert.equal(err.code, 'unavailable');
    assert.match(err.message, /TLS certificate is not trusted/);
    assert.match(err.message, /caFile|--ca-file|EVENTDBX_CA_FILE/);
  }
  const check = await httpsRequest(`${server.url}/v1/aggregates/person/p-untrusted`, certs.caFile, { token: server.token });
  assert.equal(check.status, 404, 'the write never reached the server');
});

test('security-tls - plain http to the TLS port gets no answer, and the client suggests https://', { skip, timeout: 20_000 }, async () => {
  const plainUrl = server.url.replace(/^https:/, 'http:');
  await assert.rejects(fetch(`${plainUrl}/health`, { signal: AbortSignal.timeout(5000) }));
  const client = createClient({ url: plainUrl, token: server.token, retry: { attempts: 1 } });
  await assert.rejects(client.get('person', 'p-tls'), (err: unknown) => err instanceof EventDbxError && err.code === 'unavailable' && /https:\/\//.test(err.message));
  await client.close();
});

test('security-tls - the CLI reaches an https server with --server and --ca-file (or $EVENTDBX_CA_FILE), and not without a CA', { skip, timeout: 60_000 }, async () => {
  const args = ['aggregate', 'get', 'person', 'p-tls', '--server', server.url, '--token', server.token];
  const withFlag = await runDbx([...args, '--ca-file', certs.caFile], { env: cliEnv() });
  assert.equal(withFlag.code, 0, withFlag.stderr);
  assert.deepEqual(JSON.parse(withFlag.stdout).state, { name: 'Ada' });

  const withEnv = await runDbx(args, { env: cliEnv({ EVENTDBX_CA_FILE: certs.caFile }) });
  assert.equal(withEnv.code, 0, withEnv.stderr);
  assert.equal(JSON.parse(withEnv.stdout).aggregate_id, 'p-tls');

  const without = await runDbx(args, { env: cliEnv() });
  assert.equal(without.code, 1);
  assert.match(without.stderr, /not trusted/);
  assert.match(without.stderr, /--ca-file/);
});

test("security-tls - the CLI talks https to the data directory's own server, trusting its [http] tls_ca_file", { skip, timeout: 60_000 }, async () => {
  const got = await runDbx(['aggregate', 'get', 'person', 'p-tls', '--data-dir', server.dataDir], { env: cliEnv() });
  assert.equal(got.code, 0, got.stderr);
  assert.equal(JSON.parse(got.stdout).version, 1);
  const status = await runDbx(['status', '--json', '--data-dir', server.dataDir], { env: cliEnv() });
  assert.equal(status.code, 0, status.stderr);
  const parsed = JSON.parse(status.stdout);
  assert.equal(parsed.responding, true);
  assert.equal(parsed.port, server.port);
});

test('security-tls - dbx start serves https with a self-signed certificate, the local CLI trusts it, and nothing warns', { skip, timeout: 90_000 }, async () => {
  const dataDir = tempDataDir('edbx-tls-daemon-');
  daemonDirs.push(dataDir);
  writeConfigToml(dataDir, tlsConfigToml(certs.selfCertFile, certs.selfKeyFile));
  const started = await runDbx(['start', '--data-dir', dataDir, '--port', '0'], { env: cliEnv(), timeoutMs: 45_000 });
  assert.equal(started.code, 0, started.stderr);
  assert.doesNotMatch(started.stderr, /warning/, 'loopback with TLS: no warning');
  const created = await runDbx(['aggregate', 'create', 'person', 'p-self', '--event', 'person_created', '--field', 'name=Grace', '--json', '--data-dir', dataDir], { env: cliEnv() });
  assert.equal(created.code, 0, created.stderr);
  const pid = JSON.parse(readFileSync(join(dataDir, 'server.pid'), 'utf8')) as { port: number };
  const token = readFileSync(join(dataDir, 'cli.token'), 'utf8').trim();
  const read = await httpsRequest(`https://127.0.0.1:${pid.port}/v1/aggregates/person/p-self`, certs.selfCertFile, { token });
  assert.equal(read.status, 200);
  assert.deepEqual(read.body.state, { name: 'Grace' });
  const stopped = await runDbx(['stop', '--data-dir', dataDir], { env: cliEnv() });
  assert.equal(stopped.code, 0, stopped.stderr);
});

test('security-tls - an unreadable certificate or half a pair refuses the start with one line', { skip, timeout: 30_000 }, async () => {
  const missing = tempDataDir('edbx-tls-missing-');
  await assert.rejects(
    startServerInProcess({ dataDir: missing, configToml: tlsConfigToml(join(certs.dir, 'absent.pem'), certs.keyFile) }),
    (err: Error) => /cannot read \[http\] tls_cert_file .*absent\.pem: ENOENT/.test(err.message) && !err.message.includes('\n'),
  );
  removeDir(missing);
  const mismatched = tempDataDir('edbx-tls-mismatch-');
  await assert.rejects(
    startServerInProcess({ dataDir: mismatched, configToml: tlsConfigToml(certs.certFile, certs.selfKeyFile) }),
    /tls_cert_file and tls_key_file are not a PEM certificate and its private key/,
  );
  removeDir(mismatched);
  const half = tempDataDir('edbx-tls-half-');
  await assert.rejects(startServerInProcess({ dataDir: half, configToml: `[http]\ntls_cert_file = ${JSON.stringify(certs.certFile)}\n` }), /must be set together/);
  removeDir(half);
});
