/**
 * Token lifecycle on top of the ledger (issue 10): issue-and-record, revoke, refresh and signing
 * key rotation. The CLI calls these directly on the data directory; `/v1/tokens…` calls them in
 * the server. Every issued token is recorded before its value is handed out.
 */
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import {
  DbxError,
  decodePublicKey,
  generateKeyPair,
  issueToken,
  readConfig,
  verifySignature,
  writeConfig,
  writeFileDurably,
  type Config,
  type IssueInput,
} from '../core/index.js';
import { CLI_TOKEN_FILE, issueCliToken } from './data-dir.js';
import { recordFromClaims, type TokenLedger, type TokenView } from './token-ledger.js';

export interface IssuedToken {
  token: string;
  record: TokenView;
}

export async function issueRecorded(auth: Config['auth'], ledger: TokenLedger, input: IssueInput): Promise<IssuedToken> {
  const { token, claims } = issueToken(auth, input);
  const record = recordFromClaims(claims);
  await ledger.record(record);
  return { token, record: ledger.view(record) };
}

const JTI_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * A token value (three segments; it must verify with the current key) or a jti. Either way the
 * answer is a jti the ledger knows, else 404.
 */
export function resolveJti(auth: Config['auth'], ledger: TokenLedger, tokenOrJti: string): string {
  const value = tokenOrJti.trim();
  let jti: string;
  if (value.split('.').length === 3) jti = verifySignature(value, decodePublicKey(auth.public_key)).jti;
  else if (JTI_PATTERN.test(value)) jti = value;
  else throw new DbxError('invalid_input', 'expected a token or a token id (jti)');
  if (!ledger.get(jti)) throw new DbxError('not_found', `token ${jti} not found in the ledger`);
  return jti;
}

export interface RefreshOptions {
  /** New lifetime; default: the old token's lifetime, or the default TTL when it never expired. */
  expiration_secs?: number;
  /** New write allowance; default: what the old token had left (a refresh never adds writes). */
  write_limit?: number;
}

/** A refresh's default lifetime: the old token's, or the default TTL when it never expired. */
export function refreshLifetime(auth: Config['auth'], old: Pick<TokenView, 'expires_at' | 'issued_at'>): number {
  if (old.expires_at === null) return auth.default_ttl_secs;
  return Math.max(1, Math.round((Date.parse(old.expires_at) - Date.parse(old.issued_at)) / 1000));
}

/**
 * Issues a replacement with the same grants and revokes the old token, in one transaction. The
 * writes it carries over are counted inside that transaction (TokenLedger.replace): the old
 * token's writes in flight cannot be granted again to the new one.
 */
export async function refreshToken(auth: Config['auth'], ledger: TokenLedger, tokenOrJti: string, options: RefreshOptions = {}): Promise<IssuedToken> {
  const jti = resolveJti(auth, ledger, tokenOrJti);
  let token = '';
  const record = await ledger.replace(jti, (old, writesLeft) => {
    const input: IssueInput = {
      group: old.group,
      user: old.user,
      subject: old.subject,
      actions: old.actions.length ? old.actions : ['*'],
      resources: old.resources.length ? old.resources : ['*'],
      tenants: old.tenants,
      issued_by: old.issued_by || old.subject,
      ttl_secs: options.expiration_secs ?? refreshLifetime(auth, old),
      // A refresh never adds writes: what the old token had left; write_limit may only lower it
      // (or put a limit on an unlimited token). Here, so the HTTP route and the CLI agree.
      write_events: writesLeft === null ? (options.write_limit ?? null) : Math.min(options.write_limit ?? writesLeft, writesLeft),
      keep_alive: old.limits.keep_alive,
    };
    const issued = issueToken(auth, input);
    token = issued.token;
    return recordFromClaims(issued.claims);
  });
  return { token, record: ledger.view(record) };
}

/**
 * At every start: `cli.token` must be in the ledger and active. A bootstrap token from before the
 * ledger existed is recorded; a revoked one is replaced (the operator on this machine keeps a way in).
 */
export async function ensureCliTokenRecorded(dataDir: string, config: Config, ledger: TokenLedger): Promise<void> {
  const path = join(dataDir, CLI_TOKEN_FILE);
  const claims = verifySignature(readFileSync(path, 'utf8').trim(), decodePublicKey(config.auth.public_key));
  const known = ledger.get(claims.jti);
  if (known && known.status === 'active') return;
  if (!known) return ledger.record(recordFromClaims(claims));
  const fresh = issueCliToken(config.auth);
  await ledger.record(recordFromClaims(fresh.claims));
  writeFileDurably(path, `${fresh.token}\n`, 0o600);
}

export interface RotationResult {
  public_key: string;
  key_id: string;
  revoked: number;
  rotated_at: string;
}

/**
 * Replaces the signing key pair: config.toml gets the new pair (durably), every recorded token is
 * revoked (none would verify any more) and `cli.token` is re-issued. `auth` is updated in place so
 * a running server signs and verifies with the new pair from the next request.
 */
export async function rotateSigningKeys(dataDir: string, auth: Config['auth'], ledger: TokenLedger): Promise<RotationResult> {
  const pair = generateKeyPair();
  const now = new Date();
  const { config: onDisk } = readConfig(dataDir);
  const keyId = `k${now.getTime().toString(36)}`;
  onDisk.auth = { ...onDisk.auth, private_key: pair.private_key, public_key: pair.public_key, key_id: keyId };
  onDisk.updated_at = now.toISOString();
  writeConfig(dataDir, onDisk);
  Object.assign(auth, { private_key: pair.private_key, public_key: pair.public_key, key_id: keyId });
  const revoked = await ledger.revokeAll('signing keys rotated', now);
  const fresh = issueCliToken(auth);
  await ledger.record(recordFromClaims(fresh.claims));
  writeFileDurably(join(dataDir, CLI_TOKEN_FILE), `${fresh.token}\n`, 0o600);
  return { public_key: pair.public_key, key_id: keyId, revoked, rotated_at: now.toISOString() };
}
