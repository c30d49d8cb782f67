/**
 * Per-token request rate limit (`[http.rate_limit]`): one token bucket per key (a token's `jti`),
 * refilled continuously at `perSec` up to `burst`. Memory is bounded: at most `keysMax` buckets,
 * the least recently seen forgotten first. A forgotten bucket comes back full, which only ever
 * errs towards letting a request through; a key idle long enough to be evicted would have refilled
 * anyway unless more than `keysMax` distinct tokens are active at once.
 */
import { DbxError, evictOldest } from '../core/index.js';

export type TakeResult = { ok: true } | { ok: false; retryAfterSecs: number };

interface Bucket {
  tokens: number;
  /** ms timestamp of the last refill. */
  at: number;
}

export interface RateLimitOptions {
  perSec: number;
  /** 0 = one second's worth (at least one request). */
  burst: number;
  keysMax: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;
  private readonly burst: number;

  constructor(private readonly options: RateLimitOptions) {
    if (!(options.perSec > 0)) throw new RangeError('perSec must be positive');
    this.perMs = options.perSec / 1000;
    this.burst = Math.max(1, options.burst > 0 ? options.burst : Math.ceil(options.perSec));
  }

  /** Takes one request's worth from `key`'s bucket; O(1), no timers. */
  take(key: string, now: number = Date.now()): TakeResult {
    let bucket = this.buckets.get(key);
    if (bucket) {
      // Re-insert so Map order stays least-recently-seen first (the eviction order).
      this.buckets.delete(key);
      bucket.tokens = Math.min(this.burst, bucket.tokens + Math.max(0, now - bucket.at) * this.perMs);
      bucket.at = now;
    } else {
      bucket = { tokens: this.burst, at: now };
    }
    this.buckets.set(key, bucket);
    evictOldest(this.buckets, this.options.keysMax);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { ok: true };
    }
    // Whole seconds (the Retry-After header has no fractions), never 0: "now" would just fail again.
    return { ok: false, retryAfterSecs: Math.max(1, Math.ceil((1 - bucket.tokens) / this.perMs / 1000)) };
  }

  /** Buckets held now (≤ keysMax). */
  get size(): number {
    return this.buckets.size;
  }
}

/** The 429 a refused request answers; http-errors turns `details.retry_after_secs` into Retry-After. */
export function rateLimitedError(retryAfterSecs: number): DbxError {
  return new DbxError('rate_limited', `too many requests for this token; retry after ${retryAfterSecs} s`, { retry_after_secs: retryAfterSecs });
}

/** The check registerRoutes runs after authentication, or undefined when the limit is off. */
export function tokenRateLimit(section: { per_token_per_sec: number; burst: number; tokens_tracked_max: number }): ((jti: string) => void) | undefined {
  if (section.per_token_per_sec <= 0) return undefined;
  const limiter = new RateLimiter({ perSec: section.per_token_per_sec, burst: section.burst, keysMax: section.tokens_tracked_max });
  return (jti) => {
    const result = limiter.take(jti);
    if (!result.ok) throw rateLimitedError(result.retryAfterSecs);
  };
}
