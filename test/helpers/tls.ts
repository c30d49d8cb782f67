/**
 * TLS test material made by the `openssl` binary (tests skip without it): a private CA and a server
 * certificate it signed, and a self-signed one, all for `localhost` and `127.0.0.1`, valid two days.
 * Plus an https request helper that trusts exactly the given CA (fetch cannot take one).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Agent, request } from 'undici';

export interface TestCerts {
  dir: string;
  caFile: string;
  /** Signed by the CA. */
  certFile: string;
  keyFile: string;
  /** Self-signed (its own CA). */
  selfCertFile: string;
  selfKeyFile: string;
}

export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
const SAN = 'subjectAltName=DNS:localhost,IP:127.0.0.1';

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
}

export function makeCerts(dir: string): TestCerts {
  openssl(dir, ['req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=EventDBX test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  openssl(dir, ['req', ...EC, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
  writeFileSync(join(dir, 'server.ext'), `${SAN}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
  openssl(dir, ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext']);
  openssl(dir, ['req', '-x509', ...EC, '-keyout', 'self.key', '-out', 'self.pem', '-days', '2', '-subj', '/CN=localhost', '-addext', SAN]);
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    certFile: join(dir, 'server.pem'),
    keyFile: join(dir, 'server.key'),
    selfCertFile: join(dir, 'self.pem'),
    selfKeyFile: join(dir, 'self.key'),
  };
}

/** `[http]` TOML serving `cert`/`key` (paths quoted for TOML). */
export function tlsConfigToml(cert: string, key: string, extra = ''): string {
  return `[http]\ntls_cert_file = ${JSON.stringify(cert)}\ntls_key_file = ${JSON.stringify(key)}\n${extra}`;
}

/** One https request trusting only `caFile`; JSON answers parsed. */
export async function httpsRequest(url: string, caFile: string, options: { method?: string; token?: string; body?: unknown } = {}): Promise<{ status: number; body: any }> {
  const dispatcher = new Agent({ connect: { ca: readFileSync(caFile) } });
  try {
    const res = await request(url, {
      method: (options.method ?? 'GET') as 'GET',
      dispatcher,
      headers: {
        ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
        ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    const text = await res.body.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.statusCode, body };
  } finally {
    await dispatcher.close();
  }
}
