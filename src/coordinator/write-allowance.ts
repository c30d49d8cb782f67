/**
 * Exact write limits (issue 10): a token issued with `--limit N` gets exactly N accepted writes.
 *
 * The count lives here, in the one process that accepts writes, so concurrent writers are decided
 * exactly (twelve racing for five writes get five). What makes it crash-proof is the ledger's
 * durable `reserved` count: a write may go to a shard only once `reserved` covers it. Waiting for
 * that commit before every write would add a flush to each write's latency, so a reservation takes
 * headroom for as many more writes as the token has in flight (at most RESERVE_AHEAD_MAX): the next
 * wave of writes finds its reservation already durable. A refused write (any 4xx) or an idempotent
 * replay gives its count back in memory; a write whose outcome is unknown (503, 500) keeps it. Once
 * a token has nothing in flight its reservation comes back down to what it used. After a crash a
 * token restarts from `reserved`, so the most it can lose is the refunds and headroom of the writes
 * that were in flight — it can never be granted more than N.
 */
import { DbxError } from '../core/index.js';
import type { Principal } from './auth.js';
import type { TokenLedger } from './token-ledger.js';

/** Writes reserved ahead of demand at most (bounds what a crash can cost a token). */
const RESERVE_AHEAD_MAX = 32;
/** How stale the ledger's `used` may be (listings of a running server use the live count). */
const NOTE_USED_MS = 200;

interface Allowance {
  /** Writes accepted or in flight. */
  used: number;
  /** Durable reservation (what the ledger holds, or is about to). */
  reserved: number;
  inFlight: number;
  /** The reservation commit under way, and the count it will make durable. */
  pending?: { through: number; done: Promise<void> };
  /** A background write of `used` for listings is scheduled. */
  noting: boolean;
}

export class WriteAllowance {
  private readonly tokens = new Map<string, Allowance>();

  constructor(private readonly ledger: TokenLedger) {}

  /**
   * Runs `write` with `count` writes taken from the principal's allowance. `replayed` tells
   * whether the result appended nothing (an idempotent replay), which costs nothing either.
   * `replayOnly`, given when every item carries an idempotency key: the same write, answering only
   * an idempotent replay (WriteCommand.replay_only). Past the limit it still runs, so a client that
   * lost the answer to its last allowed write learns it was stored (DESIGN §3: a retry returns
   * the original result); it costs nothing and writes nothing.
   */
  async spend<T>(principal: Principal, count: number, write: () => Promise<T>, replayed: (result: T) => boolean = () => false, replayOnly?: () => Promise<T>): Promise<T> {
    const limit = principal.claims.limits.write_events;
    if (limit === null || limit === undefined) return write();
    const { jti } = principal.claims;
    const a = this.allowanceOf(jti);
    if (a.used + count > limit) {
      const left = Math.max(0, limit - a.used);
      const exhausted = new DbxError(
        'write_limit_exhausted',
        count > 1 && left > 0 ? `the token has ${left} of its ${limit} writes left; this batch needs ${count}` : `the token has used all ${limit} of its writes`,
        { write_limit: limit, writes_remaining: left },
      );
      if (!replayOnly) throw exhausted;
      const result = await replayOnly().catch((err: unknown) => {
        throw err instanceof DbxError && err.code === 'write_limit_exhausted' ? exhausted : err;
      });
      if (!replayed(result)) throw exhausted;
      return result;
    }
    a.used += count;
    a.inFlight += count;
    // This write's place in the count: it may go once the reservation reaches it, whatever the
    // writes after it still wait for (a revoked token's next reservation fails only for them).
    const through = a.used;
    let refund = false;
    try {
      await this.covered(jti, a, limit, through);
      const result = await write();
      refund = replayed(result);
      return result;
    } catch (err) {
      refund = err instanceof DbxError && err.status < 500;
      throw err;
    } finally {
      a.inFlight -= count;
      if (refund) a.used -= count;
      this.noteUsed(jti, a);
    }
  }

  /** Resolves once the durable reservation covers the writes through `position`. */
  private async covered(jti: string, a: Allowance, limit: number, position: number): Promise<void> {
    while (a.reserved < position) {
      // One reservation commit at a time per token; whoever it does not cover starts the next.
      if (a.pending) {
        await a.pending.done;
        continue;
      }
      const through = Math.min(limit, a.used + Math.min(RESERVE_AHEAD_MAX, a.inFlight));
      const done = this.ledger.reserveThrough(jti, through).then(() => {
        a.reserved = Math.max(a.reserved, through);
      });
      a.pending = { through, done };
      try {
        await done;
      } finally {
        if (a.pending?.done === done) delete a.pending;
      }
    }
  }

  /**
   * Before a refresh: a token with nothing in flight gives back its headroom first, so what the
   * refresh carries over (limit − reserved) is exactly what it had left.
   */
  async settle(jti: string): Promise<void> {
    const a = this.tokens.get(jti);
    if (!a || a.inFlight > 0 || a.pending) return;
    a.reserved = a.used;
    await this.ledger.settleReservation(jti, a.used);
  }

  /** Writes accepted so far, as this process counts them (listings prefer it to the ledger's). */
  acceptedOf(jti: string): number | undefined {
    const a = this.tokens.get(jti);
    return a === undefined ? undefined : a.used - a.inFlight;
  }

  private allowanceOf(jti: string): Allowance {
    let a = this.tokens.get(jti);
    if (!a) {
      // After a restart the durable reservation is what was used: unused headroom is forfeited.
      const { reserved } = this.ledger.writeCount(jti);
      a = { used: reserved, reserved, inFlight: 0, noting: false };
      this.tokens.set(jti, a);
    }
    return a;
  }

  /**
   * Keeps the ledger's `used` (what `dbx token list` shows) up to date, off the write path and
   * coalesced to one commit per token per NOTE_USED_MS: each is a flush on the write path's disk.
   */
  private noteUsed(jti: string, a: Allowance): void {
    if (a.noting) return;
    a.noting = true;
    const timer = setTimeout(() => {
      a.noting = false;
      if (a.inFlight === 0 && !a.pending && a.reserved > a.used) {
        // Idle: the headroom reserved for writes that have finished is given back, durably, so a
        // crash now costs the token nothing. Lowered here first: a write starting meanwhile
        // reserves again, in a transaction ordered after this one.
        a.reserved = a.used;
        this.ledger.settleReservation(jti, a.used).catch(() => undefined);
      } else this.ledger.noteUsed(jti, a.used - a.inFlight).catch(() => undefined);
    }, NOTE_USED_MS);
    timer.unref();
  }

  /**
   * At stop: every token's accepted count is written, and a token with nothing in flight gives its
   * unused headroom back (the idle timer would, but a prompt stop comes first), so a clean restart
   * costs no token a write: the next start counts from `reserved`.
   */
  async flush(): Promise<void> {
    await Promise.all(
      [...this.tokens].map(([jti, a]) => {
        if (a.inFlight === 0 && !a.pending && a.reserved > a.used) {
          a.reserved = a.used;
          return this.ledger.settleReservation(jti, a.used).catch(() => undefined);
        }
        return this.ledger.noteUsed(jti, a.used - a.inFlight).catch(() => undefined);
      }),
    );
  }
}
