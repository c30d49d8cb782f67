/**
 * Holding refused requests before their 429 (a tarpit), for clients that ignore Retry-After.
 *
 * A 429 answered at once is cheap, but not free: a closed-loop client that retries at once gets
 * thousands of them a second, and each costs the HTTP layer (parse, auth, hooks, answer) on the
 * event loop every other tenant shares (measured: 9k 429/s from 32 connections tripled a quiet
 * tenant's p50). Holding the answer makes such a client's rate collapse to one request per
 * connection per hold, at the cost of a parked request and socket, which is why holds are bounded
 * per key and in total; beyond either bound the refusal is answered at once and the caller should
 * close the connection.
 *
 * One timer per key releases all its held requests together (not one timer per request).
 */

export interface RefusalHoldOptions {
  /** Longest hold; 0 = never hold. */
  holdMaxMs: number;
  /** Requests held at once per key. */
  heldMax: number;
  /** Requests held at once over all keys. */
  heldTotalMax: number;
}

interface Group {
  count: number;
  released: Promise<void>;
}

export class RefusalHold {
  private readonly groups = new Map<string, Group>();
  private total = 0;

  constructor(private readonly options: RefusalHoldOptions) {}

  get enabled(): boolean {
    return this.options.holdMaxMs > 0;
  }

  /**
   * Parks one refused request of `key` until `untilMs` (capped at holdMaxMs from now); answers the
   * promise to wait on, or undefined when the bounds are full (answer at once, close the connection).
   */
  hold(key: string, untilMs: number, now: number): Promise<void> | undefined {
    if (!this.enabled || this.total >= this.options.heldTotalMax) return undefined;
    let group = this.groups.get(key);
    if (!group) {
      const delayMs = Math.max(0, Math.min(untilMs - now, this.options.holdMaxMs));
      let release!: () => void;
      group = { count: 0, released: new Promise<void>((resolve) => (release = resolve)) };
      const created = group;
      // unref: a held request keeps the server's close() waiting anyway; the timer alone must not.
      setTimeout(() => {
        this.groups.delete(key);
        this.total -= created.count;
        release();
      }, delayMs).unref();
      this.groups.set(key, group);
    }
    if (group.count >= this.options.heldMax) return undefined;
    group.count++;
    this.total++;
    return group.released;
  }

  /** Requests held now (all keys). */
  get held(): number {
    return this.total;
  }
}
