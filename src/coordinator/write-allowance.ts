/**
 * Exact write limits (issue 10): a token issued with `--limit N` gets exactly N accepted writes.
 * Each write first reserves its events in the ledger, durably, before it reaches a shard; a write
 * that is refused (any 4xx, or an idempotent replay, which appends nothing) gives them back. A
 * write whose outcome is unknown (503, 500) keeps its reservation: counting it is the side that
 * never grants more than N. Tokens without a limit skip all of this.
 */
import { DbxError } from '../core/index.js';
import type { Principal } from './auth.js';
import type { TokenLedger } from './token-ledger.js';

export class WriteAllowance {
  constructor(private readonly ledger: TokenLedger) {}

  /**
   * Runs `write` with `count` writes reserved from the principal's allowance. `replayed` tells
   * whether the result appended nothing (an idempotent replay), which costs nothing either.
   */
  async spend<T>(principal: Principal, count: number, write: () => Promise<T>, replayed: (result: T) => boolean = () => false): Promise<T> {
    const limit = principal.claims.limits.write_events;
    if (limit === null || limit === undefined) return write();
    const { jti } = principal.claims;
    if (!(await this.ledger.reserve(jti, count, limit))) {
      const left = Math.max(0, limit - this.ledger.writesUsed(jti));
      throw new DbxError(
        'write_limit_exhausted',
        count > 1 && left > 0 ? `the token has ${left} of its ${limit} writes left; this batch needs ${count}` : `the token has used all ${limit} of its writes`,
        { write_limit: limit, writes_remaining: left },
      );
    }
    let result: T;
    try {
      result = await write();
    } catch (err) {
      if (err instanceof DbxError && err.status < 500) await this.ledger.refund(jti, count);
      throw err;
    }
    if (replayed(result)) await this.ledger.refund(jti, count);
    return result;
  }
}
