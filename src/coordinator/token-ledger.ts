/**
 * The token ledger (issue 10, reference §8.4): every issued token is recorded here, never its value
 * or signature. One LMDB environment at `<data_dir>/tokens`, shared between the running server and
 * the CLI (LMDB is safe across processes), so a `dbx token revoke` run beside a live server takes
 * effect there without a restart (the server renews its read snapshot every 250 ms).
 *
 * - `records` jti → the token's record, sealed with the data key when encryption is on.
 * - `revoked` jti → { revoked_at, expires_at }: what every request checks (a plain LMDB read,
 *   ~1 µs). Ids and times only, so it stays readable without the key.
 * - `writes`  jti → { reserved, used } for a token with a write limit. `reserved` is durable before
 *   any write it covers reaches a shard, so however the process dies the count never grants more
 *   than the limit; `used` is what was really accepted (kept up to date in the background, for
 *   listings). After a restart a token starts from `reserved`: a crash may lose the refunds of
 *   writes that were in flight (and the headroom reserved for them), never grant extra writes.
 *
 * Commits are plain synchronous LMDB commits (no overlapping sync): the commit promise resolves
 * only once the change is on disk, and concurrent reservations share one commit.
 */
import { fsyncDirectory, mkdirDurably } from '../core/durable-file.js';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';
import { DbxError, type TokenClaims, type ValueCipher } from '../core/index.js';

export const TOKEN_LEDGER_DIR = 'tokens';

export type TokenStatus = 'active' | 'revoked';

/** What the ledger keeps of a token (reference §8.4's TokenRecord, without the token). */
export interface TokenRecord {
  jti: string;
  subject: string;
  group: string;
  user: string;
  actions: string[];
  resources: string[];
  tenants: string[];
  issued_by: string;
  issued_at: string;
  not_before: string | null;
  expires_at: string | null;
  status: TokenStatus;
  revoked_at: string | null;
  revoke_reason: string | null;
  /** The jti a refresh replaced this token with. */
  replaced_by: string | null;
  limits: { write_events: number | null; keep_alive: boolean };
}

/** A record as listed: with its live state (never a token value or signature). */
export interface TokenView extends TokenRecord {
  expired: boolean;
  writes_used: number;
  writes_remaining: number | null;
}

/** A limited token's counters (see the `writes` database). */
export interface WriteCount {
  reserved: number;
  used: number;
}

interface RevocationEntry {
  revoked_at: number;
  expires_at: number | null;
}

const iso = (secs: number | undefined): string | null => (secs === undefined ? null : new Date(secs * 1000).toISOString());

export function recordFromClaims(claims: TokenClaims): TokenRecord {
  return {
    jti: claims.jti,
    subject: claims.sub,
    group: claims.group,
    user: claims.user,
    actions: claims.actions,
    resources: claims.resources,
    tenants: claims.tenants,
    issued_by: claims.issued_by,
    issued_at: iso(claims.iat) as string,
    not_before: iso(claims.nbf),
    expires_at: iso(claims.exp),
    status: 'active',
    revoked_at: null,
    revoke_reason: null,
    replaced_by: null,
    limits: { write_events: claims.limits.write_events ?? null, keep_alive: claims.limits.keep_alive },
  };
}

/** How often the server renews its read snapshot, so changes made by other processes are seen. */
export const LEDGER_REFRESH_MS = 250;

export class TokenLedger {
  private readonly env: RootDatabase;
  private readonly records: Database<Buffer, string>;
  private readonly revoked: Database<RevocationEntry, string>;
  private readonly writes: Database<WriteCount, string>;
  private refreshTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    dataDir: string,
    private readonly cipher: ValueCipher | null,
    options: { mapSizeMib?: number; readOnly?: boolean } = {},
  ) {
    const path = join(dataDir, TOKEN_LEDGER_DIR);
    if (!options.readOnly) mkdirDurably(path);
    // noMemInit off: a freed page must not keep an old record's bytes. readOnly (direct reads):
    // a writable open runs a write txn per named db, and processes opening and closing the same
    // env that way at once broke lmdb's shared lock region ("No transaction to renew").
    this.env = open({ path, maxDbs: 4, mapSize: (options.mapSizeMib ?? 1024) * 1024 * 1024, readOnly: options.readOnly ?? false, overlappingSync: false, noMemInit: false });
    if (!options.readOnly) fsyncDirectory(path); // data.mdb's entry, made by open, is durable before any commit counts
    this.records = this.env.openDB<Buffer, string>({ name: 'records', encoding: 'binary' });
    this.revoked = this.env.openDB<RevocationEntry, string>({ name: 'revoked' });
    this.writes = this.env.openDB<WriteCount, string>({ name: 'writes' });
  }

  /** Renews the read snapshot every LEDGER_REFRESH_MS (what a long-running server calls once). */
  watch(): void {
    this.refreshTimer ??= setInterval(() => this.env.resetReadTxn(), LEDGER_REFRESH_MS);
    this.refreshTimer.unref();
  }

  async record(record: TokenRecord): Promise<void> {
    await this.records.put(record.jti, this.seal(record));
  }

  get(jti: string): TokenRecord | undefined {
    const raw = this.records.get(jti);
    return raw === undefined ? undefined : this.unseal(raw);
  }

  view(record: TokenRecord, now = Date.now()): TokenView {
    // What is left is what is enforced: a reservation beyond `used` (a crash with writes in
    // flight, or writes under way in a running server) is spent too.
    const { used, reserved } = this.writeCount(record.jti);
    const limit = record.limits.write_events;
    return {
      ...record,
      expired: !record.limits.keep_alive && record.expires_at !== null && Date.parse(record.expires_at) <= now,
      writes_used: used,
      writes_remaining: limit === null ? null : Math.max(0, limit - Math.max(used, reserved)),
    };
  }

  /** Every record, newest first; revoked tokens that have expired anyway are left out (reference §8.4). */
  list(now = Date.now()): TokenView[] {
    this.env.resetReadTxn();
    const out: TokenView[] = [];
    for (const { value } of this.records.getRange()) {
      const view = this.view(this.unseal(value), now);
      if (view.status === 'revoked' && view.expired) continue;
      out.push(view);
    }
    return out.sort((a, b) => (a.issued_at < b.issued_at ? 1 : a.issued_at > b.issued_at ? -1 : a.jti.localeCompare(b.jti)));
  }

  isRevoked(jti: string): boolean {
    return this.revoked.get(jti) !== undefined;
  }

  /** Marks the token revoked; answers the updated record (unknown jti → 404). */
  async revoke(jti: string, reason: string | null, replacedBy: string | null = null, now = new Date()): Promise<TokenRecord> {
    let updated: TokenRecord | undefined;
    await this.env.transaction(() => {
      const raw = this.records.get(jti);
      if (raw === undefined) return;
      const record = this.unseal(raw);
      updated =
        record.status === 'revoked'
          ? record
          : { ...record, status: 'revoked', revoked_at: now.toISOString(), revoke_reason: reason, replaced_by: replacedBy };
      this.records.put(jti, this.seal(updated));
      this.revoked.put(jti, { revoked_at: now.getTime(), expires_at: record.expires_at === null ? null : Date.parse(record.expires_at) });
    });
    if (!updated) throw new DbxError('not_found', `token ${jti} not found`);
    return updated;
  }

  /**
   * A refresh in one transaction: the new token is recorded and the old one revoked together, so
   * a crash leaves either the old token working or the new one, never both or neither. `build`
   * makes the new record from the old one and the writes it has left, counted here, in the same
   * write transaction as every reservation: `limit − max(reserved, used)`. The old token's writes in
   * flight (and any headroom reserved for them) are inside `reserved`, and it can reserve no more
   * once revoked (reserveThrough), so the two tokens together never get more than the limit.
   */
  async replace(oldJti: string, build: (old: TokenRecord, writesLeft: number | null) => TokenRecord, now = new Date()): Promise<TokenRecord> {
    let problem: DbxError | undefined;
    let next: TokenRecord | undefined;
    await this.env.transaction(() => {
      const raw = this.records.get(oldJti);
      if (raw === undefined) return void (problem = new DbxError('not_found', `token ${oldJti} not found`));
      const old = this.unseal(raw);
      if (old.status === 'revoked') return void (problem = new DbxError('not_found', `token ${oldJti} is revoked (inactive) and cannot be refreshed`));
      const limit = old.limits.write_events;
      const count = this.writeCount(oldJti);
      try {
        next = build(old, limit === null ? null : Math.max(0, limit - Math.max(count.reserved, count.used)));
      } catch (err) {
        return void (problem = err instanceof DbxError ? err : new DbxError('internal', 'could not issue the replacement token', undefined, { cause: err }));
      }
      this.records.put(next.jti, this.seal(next));
      this.records.put(oldJti, this.seal({ ...old, status: 'revoked', revoked_at: now.toISOString(), revoke_reason: 'refreshed', replaced_by: next.jti }));
      this.revoked.put(oldJti, { revoked_at: now.getTime(), expires_at: old.expires_at === null ? null : Date.parse(old.expires_at) });
    });
    if (problem) throw problem;
    return next as TokenRecord;
  }

  /** Revokes every active token (after the signing keys were replaced). */
  async revokeAll(reason: string, now = new Date()): Promise<number> {
    let count = 0;
    await this.env.transaction(() => {
      for (const { key, value } of this.records.getRange()) {
        const record = this.unseal(value);
        if (record.status === 'revoked') continue;
        this.records.put(key, this.seal({ ...record, status: 'revoked', revoked_at: now.toISOString(), revoke_reason: reason }));
        this.revoked.put(key, { revoked_at: now.getTime(), expires_at: record.expires_at === null ? null : Date.parse(record.expires_at) });
        count++;
      }
    });
    return count;
  }

  /** A limited token's counters (zero when it never wrote). */
  writeCount(jti: string): WriteCount {
    const stored = this.writes.get(jti) as WriteCount | number | undefined;
    // A bare number is the first ledger format (reserved and used were one count).
    if (typeof stored === 'number') return { reserved: stored, used: stored };
    return stored ?? { reserved: 0, used: 0 };
  }

  /**
   * Raises the durable reservation to `reserved` (never lowers it); resolves once it is on disk.
   * A revoked token reserves nothing more (a refresh has handed what it had left to its successor).
   */
  async reserveThrough(jti: string, reserved: number): Promise<void> {
    let revoked = false;
    await this.env.transaction(() => {
      const current = this.writeCount(jti);
      if (reserved <= current.reserved) return;
      if (this.revoked.get(jti) !== undefined) return void (revoked = true);
      this.writes.put(jti, { reserved, used: current.used });
    });
    if (revoked) throw new DbxError('unauthorized', 'the token was revoked (or refreshed) while this write waited for its allowance');
  }

  /**
   * Nothing of the token is in flight: its reservation comes down to what it used, so a crash
   * now costs it no write (the headroom of finished writes is given back durably).
   */
  async settleReservation(jti: string, used: number): Promise<void> {
    await this.env.transaction(() => {
      const current = this.writeCount(jti);
      if (current.used !== used || current.reserved !== used) this.writes.put(jti, { reserved: used, used });
    });
  }

  /** Records the writes really accepted (for listings; not a guard, so not awaited by writes). */
  async noteUsed(jti: string, used: number): Promise<void> {
    await this.env.transaction(() => {
      const current = this.writeCount(jti);
      if (used !== current.used) this.writes.put(jti, { reserved: Math.max(current.reserved, used), used });
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    await this.env.close();
  }

  private seal(record: TokenRecord): Buffer {
    const json = JSON.stringify(record);
    return this.cipher ? this.cipher.seal(json) : Buffer.from(json, 'utf8');
  }

  private unseal(raw: Buffer): TokenRecord {
    const bytes = this.cipher?.isSealed(raw) ? this.cipher.open(raw) : raw;
    if (!this.cipher && bytes.length > 0 && bytes[0] === 0xee) {
      throw new DbxError('unavailable', 'the token ledger is encrypted: configure the data encryption key');
    }
    return JSON.parse(bytes.toString('utf8')) as TokenRecord;
  }
}
