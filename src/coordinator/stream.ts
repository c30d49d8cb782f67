/**
 * The global ordered stream, read side (issue 13): every event of a tenant in commit order, from
 * the shards' `stream` databases (ShardStore.stream: per shard and tenant, seq 1, 2, 3… assigned in
 * the commit's own transaction), read in the coordinator straight from LMDB like every other read.
 *
 * - Order: each shard's entries in seq order (its commit order); shards are merged by event id
 *   (Snowflake: strictly increasing per node, taken when the write is prepared), so a write made
 *   after another was acknowledged comes after it on every shard. Each aggregate lives on one
 *   shard, so its events always come in version order.
 * - Visibility: in `sync` durability a reader reads no seq beyond the shard's last *durable* one
 *   (workers report them, `stream_marks`), so nothing a power cut could take back is streamed;
 *   in `async` it reads what is committed, as every other reader does.
 * - Live readers: one `TenantFeed` per tenant with live subscribers reads each new commit once and
 *   hands it to each of them (stream-session.ts), woken by the workers' commit notices, with a
 *   slow poll as fallback.
 */
import { shardsForTenant, type Config, type EventRecord, type PlacementSettings } from '../core/index.js';
import type { ShardStore } from '../shard-worker/index.js';
import { mergeSorted } from './merge.js';
import { encodePosition, parsePosition, startPosition, type PositionLayout, type StreamPosition } from './stream-position.js';

export type StreamSettings = Config['stream'];

/** One stream entry: the event key minus its tenant, and its event id. */
export type StreamValue = [type: string, id: string, version: number, event_id: string];

/** Gets an entry of the scan: `i` is its shard slot in the position vector. Return false to stop. */
export type StreamVisitor = (i: number, seq: number, value: StreamValue) => boolean;

export interface StreamHubDeps {
  stores: ShardStore[];
  placement: PlacementSettings;
  durability: 'sync' | 'async';
  /** Asks a shard's worker for its durable seqs of these tenants (once per pair not heard of yet). */
  durableSeqs: (shard: number, tenants: string[]) => Promise<number[]>;
  settings: StreamSettings;
  /**
   * While a cross-worker batch of the tenant is committing, a promise that settles when it has
   * (BatchVisibility): no reader sees part of a batch, the stream included.
   */
  batchSettled?: (tenant: string) => Promise<void> | undefined;
}

/** Something the feed hands new entries to (a live SSE session). */
export interface FeedListener {
  deliver(i: number, seq: number, value: StreamValue, event: () => EventRecord | undefined): void;
  /** Around a pass: frames of one pass leave in one write (one syscall, not one per event). */
  cork(): void;
  uncork(): void;
}

export class StreamHub {
  /** `${shard}\0${tenant}` → last durable seq (sync mode only). */
  private readonly durable = new Map<string, number>();
  private readonly feeds = new Map<string, TenantFeed>();
  /** Live sessions (SSE), so a shutdown can tell each why it ends. */
  private readonly sessions = new Set<{ shutdown(): void }>();
  private readonly poller: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly deps: StreamHubDeps) {
    this.poller = setInterval(() => {
      for (const feed of this.feeds.values()) feed.wake();
    }, deps.settings.poll_ms);
    this.poller.unref();
  }

  get settings(): StreamSettings {
    return this.deps.settings;
  }

  /** Shards the tenant's stream spans, in position-slot order. */
  shardsOf(tenant: string): number[] {
    return shardsForTenant(this.deps.placement, tenant);
  }

  layout(tenant: string): PositionLayout {
    return this.deps.placement.multiTenant ? { tenant, kind: 'tenant', count: 1 } : { tenant, kind: 'shards', count: this.deps.placement.shardCount };
  }

  encode(tenant: string, seqs: number[]): string {
    return encodePosition(tenant, { kind: this.layout(tenant).kind, seqs });
  }

  /** A position from a token, `start` or `end` (400 invalid_input when it is none of them). */
  async resolve(tenant: string, text: string | undefined, where: string): Promise<StreamPosition> {
    const layout = this.layout(tenant);
    const parsed = text === undefined ? startPosition(layout) : parsePosition(text, layout, where);
    return parsed === 'end' ? { kind: layout.kind, seqs: await this.head(tenant) } : parsed;
  }

  /** Worker commit notices: the durable seq per (shard, tenant); wakes that tenant's feed. */
  noteDurable(marks: [shard: number, tenant: string, seq: number][]): void {
    for (const [shard, tenant, seq] of marks) {
      const key = `${shard}\u0000${tenant}`;
      if (seq > (this.durable.get(key) ?? -1)) this.durable.set(key, seq);
      this.feeds.get(tenant)?.wake();
    }
  }

  /** Per shard slot, the highest seq a reader may see now (Infinity: no bound, `async`). */
  async bounds(tenant: string): Promise<number[]> {
    const batch = this.deps.batchSettled?.(tenant);
    if (batch) await batch;
    const shards = this.shardsOf(tenant);
    if (this.deps.durability === 'async') return shards.map(() => Number.POSITIVE_INFINITY);
    const missing = shards.filter((s) => !this.durable.has(`${s}\u0000${tenant}`));
    if (missing.length > 0) {
      const answers = await Promise.all(missing.map((s) => this.deps.durableSeqs(s, [tenant])));
      missing.forEach((s, k) => {
        const key = `${s}\u0000${tenant}`;
        const seq = answers[k]?.[0] ?? 0;
        if (seq > (this.durable.get(key) ?? -1)) this.durable.set(key, seq);
      });
    }
    return shards.map((s) => this.durable.get(`${s}\u0000${tenant}`) ?? 0);
  }

  /** The current head: per shard slot the last seq a reader may see. */
  async head(tenant: string): Promise<number[]> {
    const bounds = await this.bounds(tenant);
    const shards = this.shardsOf(tenant);
    this.renew(shards);
    return shards.map((s, i) => Math.min(bounds[i] ?? 0, this.store(s).lastStreamSeq(tenant)));
  }

  /**
   * Visits the entries after `from` (at most `bounds`) in merged commit order until `visit` says
   * stop, `entriesMax` entries were read, or `timeMaxMs` passed. Synchronous (one read snapshot,
   * never held across turns). `exhausted`: every shard was read to its bound.
   */
  scan(tenant: string, from: number[], bounds: number[], entriesMax: number, timeMaxMs: number, visit: StreamVisitor): { scanned: number; exhausted: boolean } {
    const shards = this.shardsOf(tenant);
    this.renew(shards);
    const sources = shards.map((s, i) => tagged(i, this.store(s).streamRange(tenant, from[i] ?? 0, Math.min(bounds[i] ?? 0, Number.MAX_SAFE_INTEGER))));
    const deadline = performance.now() + timeMaxMs;
    let scanned = 0;
    for (const entry of mergeSorted(sources, byEventId)) {
      scanned++;
      if (!visit(entry.i, entry.seq, entry.value)) return { scanned, exhausted: false };
      if (scanned >= entriesMax || performance.now() >= deadline) return { scanned, exhausted: false };
    }
    return { scanned, exhausted: true };
  }

  /** The event a stream entry points at, as GET /v1/events/{id} returns it (undefined: gone). */
  event(tenant: string, i: number, value: StreamValue): EventRecord | undefined {
    const shard = this.shardsOf(tenant)[i];
    return shard === undefined ? undefined : this.store(shard).getEvent([tenant, value[0], value[1], value[2]]);
  }

  /**
   * Adds a live listener that has read up to `seqs` (within `bounds`); returns how to remove it.
   * A new feed starts there, but never beyond the head: a listener given a position far ahead must
   * not hold back the others that join later.
   */
  attach(tenant: string, seqs: number[], bounds: number[], listener: FeedListener): () => void {
    let feed = this.feeds.get(tenant);
    if (!feed) {
      const shards = this.shardsOf(tenant);
      const start = seqs.map((seq, i) => Math.min(seq, bounds[i] ?? 0, this.store(shards[i] as number).lastStreamSeq(tenant)));
      feed = new TenantFeed(this, tenant, start);
      this.feeds.set(tenant, feed);
    }
    feed.listeners.add(listener);
    feed.wake();
    const owner = feed;
    return () => {
      owner.listeners.delete(listener);
      if (owner.listeners.size === 0 && this.feeds.get(tenant) === owner) this.feeds.delete(tenant);
    };
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Tracks a live session until the returned function is called. */
  register(session: { shutdown(): void }): () => void {
    this.sessions.add(session);
    return () => this.sessions.delete(session);
  }

  /** Server stop: every live session gets `event: error` (unavailable) and is closed. */
  close(): void {
    this.closed = true;
    clearInterval(this.poller);
    for (const session of [...this.sessions]) session.shutdown();
    this.sessions.clear();
    this.feeds.clear();
  }

  private store(shard: number): ShardStore {
    return this.deps.stores[shard] as ShardStore;
  }

  /**
   * lmdb-js keeps a thread's read snapshot until something renews it: after a commit notice the
   * snapshot must be fresh or the new entries would not be seen yet.
   */
  private renew(shards: number[]): void {
    const seen = new Set<unknown>();
    for (const s of shards) {
      const env = this.store(s).env;
      if (seen.has(env)) continue;
      seen.add(env);
      env.resetReadTxn();
    }
  }
}

/** One fan-out pass reads for at most this long before other requests get a turn. */
const FEED_PASS_MS_MAX = 20;

/**
 * One tenant's live fan-out: reads each new entry once (from its own position, up to the bounds)
 * and hands it to every listener, which keeps its own position and skips what it already has.
 */
class TenantFeed {
  readonly listeners = new Set<FeedListener>();
  private scheduled = false;
  private running = false;
  /** A wake that came while a pass was running: run another once it ends. */
  private again = false;

  constructor(
    private readonly hub: StreamHub,
    private readonly tenant: string,
    private readonly seqs: number[],
  ) {}

  wake(): void {
    if (this.scheduled || this.hub.isClosed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.pump();
    });
  }

  private async pump(): Promise<void> {
    if (this.listeners.size === 0) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.again = false;
    try {
      const bounds = await this.hub.bounds(this.tenant);
      if (this.listeners.size === 0 || this.hub.isClosed) return;
      if (!this.pass(bounds)) this.again = true;
    } catch (err) {
      // A worker that does not answer the bound query: the poll tries again.
      console.error('stream feed: reading new commits failed', err);
    } finally {
      this.running = false;
      if (this.again) this.wake();
    }
  }

  /** One bounded read of new entries, handed to every listener; true when it reached the bounds. */
  private pass(bounds: number[]): boolean {
    const corked = [...this.listeners];
    for (const listener of corked) listener.cork();
    try {
      const { settings } = this.hub;
      return this.hub.scan(this.tenant, this.seqs, bounds, settings.read_batch_max, FEED_PASS_MS_MAX, (i, seq, value) => {
        this.seqs[i] = seq;
        let loaded = false;
        let event: EventRecord | undefined;
        // Decoded (parse, decrypt) once, and only if some listener wants it.
        const lazy = (): EventRecord | undefined => {
          if (!loaded) {
            event = this.hub.event(this.tenant, i, value);
            loaded = true;
          }
          return event;
        };
        for (const listener of [...this.listeners]) listener.deliver(i, seq, value, lazy);
        return true;
      }).exhausted;
    } finally {
      for (const listener of corked) listener.uncork();
    }
  }
}

function* tagged(i: number, entries: Iterable<{ seq: number; value: StreamValue }>): Generator<{ i: number; seq: number; value: StreamValue }> {
  for (const { seq, value } of entries) yield { i, seq, value };
}

/** Snowflake ids as decimal strings: shorter is smaller, then lexicographic. */
function byEventId(a: { value: StreamValue }, b: { value: StreamValue }): number {
  const x = a.value[3];
  const y = b.value[3];
  return x.length - y.length || (x < y ? -1 : x > y ? 1 : 0);
}
