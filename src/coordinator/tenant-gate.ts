/**
 * What every write of a tenant passes before it reaches a shard (issue 12), in this order:
 *
 * 1. the tenant's write rate (`dbx tenant limit`): a token bucket of events per second, refused
 *    with 429 `rate_limited` and Retry-After, before anything else is spent on the request (an
 *    empty bucket before the body is read; a refusal of a tenant ignoring Retry-After is held);
 * 2. admission (`TenantAdmission`): counts the tenant's writes in flight and lets an operation that
 *    must see none (a placement change, a quota count, a live move's flip) pause the tenant — new
 *    writes wait, bounded by `[tenants] write_pause_max_ms`, then get 503 with Retry-After;
 * 3. the aggregate quota (tenant-quota.ts), which needs 2 to count exactly.
 *
 * Reads never pass here: they keep answering while a tenant is paused.
 */
import { DbxError, shardFor, type PlacementSettings } from '../core/index.js';
import type { WriteResult } from '../shard-worker/index.js';
import type { TenantMeta, TenantRateLimit } from './tenant-meta.js';
import type { TenantQuota, Reservation } from './tenant-quota.js';
import type { UnplacedCommand, WriteGate } from './writes.js';
import { RefusalHold, type RefusalHoldOptions } from './refusal-hold.js';

interface Pause {
  /** Resolves when this pause ends. */
  ended: Promise<void>;
  end: () => void;
  /** Resolves when the tenant has no write in flight (the pauser waits for it). */
  drained?: () => void;
}

export class TenantAdmission {
  private readonly inFlight = new Map<string, number>();
  private readonly pauses = new Map<string, Pause>();

  /** Answers why a tenant's writes are refused outright (a removal not yet finished), if they are. */
  private refusal: (tenant: string) => DbxError | undefined = () => undefined;

  constructor(private readonly waitMaxMs: number) {}

  refuseWhen(refusal: (tenant: string) => DbxError | undefined): void {
    this.refusal = refusal;
  }

  /** Admits one write of `tenant`: synchronous (undefined) unless the tenant is paused; throws when refused. */
  enter(tenant: string): Promise<void> | undefined {
    const refused = this.refusal(tenant);
    if (refused) throw refused;
    if (!this.pauses.has(tenant)) {
      this.inFlight.set(tenant, (this.inFlight.get(tenant) ?? 0) + 1);
      return undefined;
    }
    return this.enterPaused(tenant);
  }

  leave(tenant: string): void {
    const n = (this.inFlight.get(tenant) ?? 1) - 1;
    if (n > 0) return void this.inFlight.set(tenant, n);
    this.inFlight.delete(tenant);
    this.pauses.get(tenant)?.drained?.();
  }

  writesInFlight(tenant: string): number {
    return this.inFlight.get(tenant) ?? 0;
  }

  paused(tenant: string): boolean {
    return this.pauses.has(tenant);
  }

  /**
   * Stops admitting writes of `tenant` and resolves once none is in flight; call the answered
   * function to resume. Pauses of one tenant take turns. Keep a pause short: writes wait on it.
   */
  async pause(tenant: string): Promise<() => void> {
    for (let current = this.pauses.get(tenant); current; current = this.pauses.get(tenant)) await current.ended;
    let end!: () => void;
    const ended = new Promise<void>((resolve) => (end = resolve));
    const pause: Pause = { ended, end };
    this.pauses.set(tenant, pause);
    if (this.writesInFlight(tenant) > 0) await new Promise<void>((resolve) => (pause.drained = resolve));
    delete pause.drained;
    let resumed = false;
    return () => {
      if (resumed) return;
      resumed = true;
      if (this.pauses.get(tenant) === pause) this.pauses.delete(tenant);
      end();
    };
  }

  private async enterPaused(tenant: string): Promise<void> {
    const deadline = Date.now() + this.waitMaxMs;
    for (let pause = this.pauses.get(tenant); pause; pause = this.pauses.get(tenant)) {
      const left = deadline - Date.now();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        pause.ended.then(() => false),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), Math.max(0, left)))),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        throw new DbxError('unavailable', `writes of tenant '${tenant}' are paused while its placement changes; retry shortly (nothing was written)`, { retry_after_secs: 1 });
      }
    }
    // The pause may have been a removal's: what it left is refused, not written into.
    const refused = this.refusal(tenant);
    if (refused) throw refused;
    this.inFlight.set(tenant, (this.inFlight.get(tenant) ?? 0) + 1);
  }
}

interface Bucket {
  rate: TenantRateLimit;
  tokens: number;
  at: number;
  /** ms until which the tenant was told to wait (the last 429 answered at once said Retry-After). */
  warnedUntil: number;
}

/** What the early check (before the body is read) answers for a write of a tenant over its rate. */
export interface EarlyRefusal {
  /** Built when the answer is sent, so a held refusal's Retry-After is as of its release. */
  error: () => DbxError;
  /** Wait on this before answering (a held refusal); absent: answer now. */
  held?: Promise<void>;
  /** The hold bounds were full: answer now and close the connection. */
  close?: boolean;
}

/**
 * Per-tenant write rates, from tenant_meta (a change applies at once). Cost is in events, so a
 * batch of 50 takes 50. A request may take the bucket below zero once (a batch bigger than the
 * burst still passes when the bucket is full, then the tenant waits for the debt to refill): a
 * bigger-than-burst batch is never refused forever, and the average rate still holds.
 *
 * A tenant that keeps writing before the Retry-After it was given has its further refusals held
 * (`[tenants] rate_limit_hold_max_ms`, see refusal-hold.ts): it still gets 429 with Retry-After,
 * only later. The first refusal after a wait is always answered at once, so a client that honours
 * Retry-After is never held; one that has several requests in flight when it is first refused sees
 * those held, at most until the Retry-After it was given.
 */
export class TenantRateLimits {
  private readonly buckets = new Map<string, Bucket>();
  private readonly holds: RefusalHold;

  constructor(meta: TenantMeta, hold: RefusalHoldOptions = { holdMaxMs: 0, heldMax: 1, heldTotalMax: 1 }) {
    this.holds = new RefusalHold(hold);
    for (const r of meta.list()) if (r.rate) this.set(r.tenant, r.rate);
    meta.onChange((tenant, record) => {
      if (record?.rate) this.set(tenant, record.rate);
      else this.buckets.delete(tenant);
    });
  }

  /** Takes `cost` events from the tenant's bucket or throws 429 (no limit: nothing to do). */
  take(tenant: string, cost: number, now = Date.now()): void {
    const b = this.buckets.get(tenant);
    if (!b) return;
    const burst = burstOf(b.rate);
    this.refill(b, now);
    const needed = Math.min(cost, burst);
    if (b.tokens >= needed) {
      b.tokens -= cost;
      return;
    }
    const error = this.refusal(tenant, b, needed);
    b.warnedUntil = now + (error.details as { retry_after_secs: number }).retry_after_secs * 1000;
    throw error;
  }

  /**
   * Takes `cost` events from the tenant's bucket, waiting (never refusing) until the bucket may
   * give them: a bulk import is paced to the tenant's rate as it is read (back-pressure on its
   * socket), since refusing it mid-body would leave a half-read file. Like take(), a chunk bigger
   * than the burst passes on a full bucket and leaves a debt the next one waits for.
   */
  async pace(tenant: string, cost: number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      if (signal?.aborted) throw new DbxError('unavailable', 'the client went away during the import: the rest was not written');
      const b = this.buckets.get(tenant);
      if (!b) return;
      const now = Date.now();
      this.refill(b, now);
      const needed = Math.min(cost, burstOf(b.rate));
      if (b.tokens >= needed) {
        b.tokens -= cost;
        return;
      }
      // A rate change or removal applies at the next look, at most a second away.
      const waitMs = Math.min(1000, Math.ceil((needed - b.tokens) / (b.rate.writes_per_sec / 1000)));
      await new Promise((resolve) => setTimeout(resolve, Math.max(1, waitMs)));
    }
  }

  /**
   * The check before the body is read: undefined when the tenant's bucket holds at least one event
   * (takes nothing; the exact charge is take()'s), else how to refuse — at once (cheap: no body,
   * no validation, no shard), or held when the tenant was already told to wait.
   */
  refuseIfEmpty(tenant: string, now = Date.now()): EarlyRefusal | undefined {
    const b = this.buckets.get(tenant);
    if (!b) return undefined;
    this.refill(b, now);
    if (b.tokens >= 1) return undefined;
    const error = () => this.refusal(tenant, b, 1);
    if (now < b.warnedUntil && this.holds.enabled) {
      const held = this.holds.hold(tenant, b.warnedUntil, now);
      return held ? { error, held } : { error, close: true };
    }
    const answer = error();
    b.warnedUntil = now + (answer.details as { retry_after_secs: number }).retry_after_secs * 1000;
    return { error: () => answer };
  }

  /** Refused writes being held now (all tenants). */
  get held(): number {
    return this.holds.held;
  }

  private refill(b: Bucket, now: number): void {
    b.tokens = Math.min(burstOf(b.rate), b.tokens + Math.max(0, now - b.at) * (b.rate.writes_per_sec / 1000));
    b.at = Math.max(b.at, now);
  }

  /** The 429 for `needed` events (Retry-After: whole seconds until they have refilled, at least 1). */
  private refusal(tenant: string, b: Bucket, needed: number): DbxError {
    this.refill(b, Date.now());
    const burst = burstOf(b.rate);
    const retryAfterSecs = Math.max(1, Math.ceil((needed - b.tokens) / (b.rate.writes_per_sec / 1000) / 1000));
    return new DbxError(
      'rate_limited',
      `tenant '${tenant}' is limited to ${b.rate.writes_per_sec} events/s (burst ${burst}); retry after ${retryAfterSecs} s (nothing was written)`,
      { retry_after_secs: retryAfterSecs, tenant, writes_per_sec: b.rate.writes_per_sec, burst },
    );
  }

  private set(tenant: string, rate: TenantRateLimit): void {
    const current = this.buckets.get(tenant);
    if (current) {
      current.rate = rate;
      current.tokens = Math.min(current.tokens, burstOf(rate));
    } else {
      this.buckets.set(tenant, { rate, tokens: burstOf(rate), at: Date.now(), warnedUntil: 0 });
    }
  }
}

export function burstOf(rate: TenantRateLimit): number {
  return Math.max(1, rate.burst ?? Math.ceil(rate.writes_per_sec));
}

/** Events appended per tenant since start (what /metrics labels by tenant). */
export class TenantTraffic {
  readonly appended = new Map<string, number>();

  add(tenant: string, events: number): void {
    if (events > 0) this.appended.set(tenant, (this.appended.get(tenant) ?? 0) + events);
  }
}

export interface ImportSession {
  /** Called per valid line before it is queued; throws `quota_exceeded` when it would create one too many. */
  line(type: string, id: string, version: number): void;
  /** Before a chunk of `events` lines is sent: waits until the tenant's write rate allows them. */
  pace(events: number, signal?: AbortSignal): Promise<void>;
  /** Aggregates the import created (undefined: unknown, a chunk's outcome was lost) and events it wrote. */
  end(created: number | undefined, imported: number): void;
}

/** Ops that can bring an aggregate into existence (patch, archive and restore need one). */
const CREATING_OPS = new Set(['create', 'apply']);

export interface TenantGateDeps {
  placement: PlacementSettings;
  admission: TenantAdmission;
  rates: TenantRateLimits;
  quota: TenantQuota;
  traffic: TenantTraffic;
  /** Whether the committed store holds the aggregate's head (on the shard placement names). */
  headExists: (shard: number, tenant: string, type: string, id: string) => boolean;
}

/** The Writer's gate (see writes.ts): rate, admission and quota around every write. */
export class TenantGate implements WriteGate {
  constructor(private readonly deps: TenantGateDeps) {}

  async run(commands: UnplacedCommand[], send: () => Promise<WriteResult[]>): Promise<WriteResult[]> {
    const first = commands[0];
    if (!first) return send();
    const tenant = first.tenant;
    const { admission, quota, rates } = this.deps;
    rates.take(tenant, commands.length);
    const counting = quota.ready(tenant);
    if (counting) await counting;
    const entering = admission.enter(tenant);
    if (entering) await entering;
    let reservation: Reservation | undefined;
    let created: number | undefined = 0;
    try {
      reservation = await quota.reserve(tenant, () => this.newAggregates(commands));
      const results = await send();
      created = 0;
      let appended = 0;
      for (const r of results) {
        if (r.replayed) continue;
        appended++;
        if (r.event.version === 1) created++;
      }
      this.deps.traffic.add(tenant, appended);
      return results;
    } catch (err) {
      // A refusal (4xx) created nothing; anything else may have committed: count again.
      created = err instanceof DbxError && err.status < 500 ? 0 : undefined;
      throw err;
    } finally {
      quota.settle(reservation, tenant, created);
      admission.leave(tenant);
    }
  }

  async admitted<T>(tenant: string, send: () => Promise<T>): Promise<T> {
    const { admission } = this.deps;
    const entering = admission.enter(tenant);
    if (entering) await entering;
    try {
      return await send();
    } finally {
      admission.leave(tenant);
    }
  }

  /**
   * A bulk import of `tenant` (routes-import.ts): admitted like a write for its whole length (a
   * placement change waits for it), paced to the tenant's write rate chunk by chunk (its size is
   * known only as it is read, so it waits rather than being refused; an empty bucket is refused
   * before the body is read, tenant-hosting.ts); each version-1 line of an aggregate without a
   * head takes one from the quota, without waiting.
   */
  async importSession(tenant: string): Promise<ImportSession> {
    const { admission, quota, rates, traffic } = this.deps;
    const counting = quota.ready(tenant);
    if (counting) await counting;
    const entering = admission.enter(tenant);
    if (entering) await entering;
    let reservation: Reservation | undefined;
    const reserved = new Set<string>();
    let ended = false;
    return {
      line: (type, id, version) => {
        if (version !== 1 || quota.limitOf(tenant) === undefined) return;
        const key = `${type}\u0000${id}`;
        if (reserved.has(key)) return;
        const shard = shardFor(this.deps.placement, tenant, type, id);
        if (this.deps.headExists(shard, tenant, type, id)) return;
        reservation = quota.reserveNow(tenant, 1, reservation);
        reserved.add(key);
      },
      pace: (events, signal) => rates.pace(tenant, events, signal),
      end: (created, imported) => {
        if (ended) return;
        ended = true;
        quota.settle(reservation, tenant, created);
        admission.leave(tenant);
        if (imported > 0) traffic.add(tenant, imported);
      },
    };
  }

  /**
   * New aggregates these commands may create: the distinct create/apply targets without a head.
   * Every command whose aggregate has a head is marked `no_create` (see tenant-quota.ts).
   */
  private newAggregates(commands: UnplacedCommand[]): number {
    const fresh = new Set<string>();
    for (const c of commands) {
      const shard = shardFor(this.deps.placement, c.tenant, c.aggregate_type, c.aggregate_id);
      if (this.deps.headExists(shard, c.tenant, c.aggregate_type, c.aggregate_id)) {
        c.no_create = true;
        continue;
      }
      delete c.no_create;
      if (CREATING_OPS.has(c.op)) fresh.add(`${c.aggregate_type}\u0000${c.aggregate_id}`);
    }
    return fresh.size;
  }
}
