/**
 * The write side of the coordinator: places each command on its shard and sends it to the owning
 * worker. A batch within one worker environment is one transaction. A batch that spans worker
 * environments runs as a two-phase commit: every worker prepares (checks and locks its aggregates),
 * then the home worker commits first together with a durable intent holding the whole batch, then
 * the others; recovery at start-up finishes any intent a crash interrupted.
 */
import { randomUUID } from 'node:crypto';
import { DbxError, shardFor, type PlacementSettings } from '../core/index.js';
import { BATCH_LOCKED_MESSAGE, type BatchIntent, type ShardResult, type WriteCommand, type WriteResult } from '../shard-worker/index.js';
import { BatchVisibility } from './batch-visibility.js';
import type { Metrics } from './metrics.js';
import type { ShardPool } from './shard-pool.js';

/** How long a cross-worker batch keeps retrying a prepare refused by another batch's locks. */
const BATCH_LOCK_RETRY_MS = 2_000;

export type UnplacedCommand = Omit<WriteCommand, 'shard'>;

/**
 * What a write passes before placement (tenant-gate.ts: the tenant's rate, pauses, quota). `send`
 * places and sends the commands as they are when it is called (the gate may mark them).
 */
export interface WriteGate {
  run(commands: UnplacedCommand[], send: () => Promise<WriteResult[]>): Promise<WriteResult[]>;
  /** A write that appends no event (a snapshot): admitted like one (pauses, removals), no rate or quota. */
  admitted<T>(tenant: string, send: () => Promise<T>): Promise<T>;
}

export class Writer {
  /** Set once by the server (multi-tenant hosting); absent, writes go straight to their shards. */
  gate: WriteGate | undefined;

  constructor(
    private readonly pool: ShardPool,
    private readonly placement: PlacementSettings,
    private readonly metrics: Metrics,
    readonly visibility: BatchVisibility = new BatchVisibility(),
  ) {}

  private place(command: UnplacedCommand): WriteCommand {
    return { ...command, shard: shardFor(this.placement, command.tenant, command.aggregate_type, command.aggregate_id) };
  }

  async write(command: UnplacedCommand): Promise<WriteResult> {
    if (this.gate) return (await this.gate.run([command], async () => [await this.writeNow(command)]))[0] as WriteResult;
    return this.writeNow(command);
  }

  private async writeNow(command: UnplacedCommand): Promise<WriteResult> {
    const started = process.hrtime.bigint();
    const placed = this.place(command);
    const result = expect(await this.pool.request(placed.shard, { kind: 'write', command: placed }), 'write').result;
    this.observe(started, result.replayed ? 0 : 1);
    return result;
  }

  snapshot(tenant: string, type: string, id: string, comment?: string): Promise<number> {
    // Through the gate: a snapshot written during a move's flip or a removal would land in a range
    // that is being copied or deleted.
    const send = (): Promise<number> => {
      const shard = shardFor(this.placement, tenant, type, id);
      return this.pool
        .request(shard, { kind: 'snapshot', shard, tenant, aggregate_type: type, aggregate_id: id, ...(comment !== undefined ? { comment } : {}) })
        .then((r) => expect(r, 'snapshot').version);
    };
    return this.gate ? this.gate.admitted(tenant, send) : send();
  }

  /**
   * A batch checked as `batch` would check it (schemas, restrict mode, versions, patches on the
   * state they meet, idempotency keys), on each worker holding a part, and then discarded: nothing
   * is written, nothing is queued for plugins, no write rate or limit is spent. Throws what the
   * batch would throw (the item named by `details.index`).
   */
  async checkBatch(commands: UnplacedCommand[]): Promise<void> {
    const byWorker = this.byWorker(commands.map((c) => this.place(c)));
    await Promise.all(
      [...byWorker].map(async ([worker, entries]) => {
        try {
          expect(await this.pool.requestWorker(worker, { kind: 'batch', commands: entries.map((e) => e.command), dry_run: true }), 'batch');
        } catch (err) {
          throw err instanceof DbxError ? inBatch(err, entries) : err;
        }
      }),
    );
  }

  /** All-or-nothing across aggregates and shards; answers in the order of the input. */
  /** Each item's event, and whether it was an idempotent replay (nothing appended). */
  async batch(commands: UnplacedCommand[]): Promise<WriteResult[]> {
    return this.gate ? await this.gate.run(commands, () => this.batchNow(commands)) : await this.batchNow(commands);
  }

  private async batchNow(commands: UnplacedCommand[]): Promise<WriteResult[]> {
    const started = process.hrtime.bigint();
    const placed = commands.map((c) => this.place(c));
    // One worker environment holds every shard of this batch: one transaction, atomic and seen
    // whole by readers. Only a batch across worker environments needs the two-phase commit.
    const workers = [...new Set(placed.map((c) => this.pool.workerOf(c.shard)))];
    let results: WriteResult[];
    if (workers.length === 1) {
      results = expect(await this.pool.requestWorker(workers[0] as number, { kind: 'batch', commands: placed }), 'batch').results;
    } else {
      results = await this.twoPhase(placed);
    }
    this.observe(started, results.filter((r) => !r.replayed).length);
    return results;
  }

  /**
   * A prepare that meets another cross-worker batch's locks is refused at once (no deadlock) and
   * nothing is written, so the batch is tried again after a jittered pause, for up to
   * BATCH_LOCK_RETRY_MS; after that the caller gets the 503 (with Retry-After).
   */
  private async twoPhase(placed: WriteCommand[]): Promise<WriteResult[]> {
    const giveUpAt = Date.now() + BATCH_LOCK_RETRY_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.twoPhaseOnce(placed);
      } catch (err) {
        const contended = err instanceof DbxError && err.code === 'unavailable' && err.message.endsWith(BATCH_LOCKED_MESSAGE);
        if (!contended || Date.now() >= giveUpAt) throw err;
        const pauseMs = Math.min(50, 2 ** attempt) * (0.5 + Math.random());
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
      }
    }
  }

  /** The commands of each worker (in input order), with their places in the input. */
  private byWorker(placed: WriteCommand[]): Map<number, { index: number; command: WriteCommand }[]> {
    const byWorker = new Map<number, { index: number; command: WriteCommand }[]>();
    placed.forEach((command, index) => {
      const worker = this.pool.workerOf(command.shard);
      const list = byWorker.get(worker) ?? [];
      list.push({ index, command });
      byWorker.set(worker, list);
    });
    return byWorker;
  }

  private async twoPhaseOnce(placed: WriteCommand[]): Promise<WriteResult[]> {
    const txid = randomUUID();
    // Group by worker: one prepare per worker covers every shard it owns.
    const byWorker = this.byWorker(placed);
    const workers = [...byWorker.keys()];
    const prepared = await Promise.allSettled(
      workers.map((w) => this.pool.requestWorker(w, { kind: 'prepare', txid, commands: (byWorker.get(w) ?? []).map((e) => e.command) })),
    );
    const failed = prepared.findIndex((p) => p.status === 'rejected');
    if (failed >= 0) {
      await Promise.allSettled(workers.map((w) => this.pool.requestWorker(w, { kind: 'abort', txid })));
      const reason: unknown = (prepared[failed] as PromiseRejectedResult).reason;
      if (!(reason instanceof DbxError)) throw new DbxError('internal', 'batch prepare failed');
      throw inBatch(reason, byWorker.get(workers[failed] as number) ?? []);
    }
    const results: WriteResult[] = new Array(placed.length);
    const intent: BatchIntent = { txid, parts: [] };
    prepared.forEach((p, i) => {
      const value = expect((p as PromiseFulfilledResult<ShardResult>).value, 'prepare');
      const entries = byWorker.get(workers[i] as number) ?? [];
      value.results.forEach((r, j) => {
        results[(entries[j] as { index: number }).index] = r;
      });
      intent.parts.push(...value.parts);
    });
    const [home, ...others] = workers as [number, ...number[]];
    const tenant = (placed[0] as WriteCommand).tenant;
    await this.visibility.track(tenant, () => this.commitParts(txid, intent, home, others));
    return results;
  }

  /**
   * Home first, with the intent; then the others. If the home commit fails or its answer is lost,
   * an abort to the home worker says what happened (the worker handles requests in order, so once
   * it answers the abort the commit can no longer happen): committed → finish the others;
   * otherwise release them. Past the home commit the batch is decided: a failure below is finished
   * by recovery at the next start, and the caller is told `unavailable`, never "rolled back".
   */
  private async commitParts(txid: string, intent: BatchIntent, home: number, others: number[]): Promise<void> {
    try {
      await this.pool.requestWorker(home, { kind: 'commit', txid, intent });
    } catch (err) {
      const outcome = await this.pool
        .requestWorker(home, { kind: 'abort', txid })
        .then((r) => expect(r, 'abort').outcome, () => 'unreachable' as const);
      if (outcome === 'unreachable') {
        // The home worker is gone: whether it committed is only known at the next start, whose
        // recovery finishes the batch from its intent if it did. Leave the other parts prepared
        // (their lease ends them) rather than guess.
        console.error(`batch ${txid}: home worker ${home} unreachable after commit; recovery decides at next start`);
        throw err;
      }
      if (outcome !== 'committed') {
        await Promise.allSettled(others.map((w) => this.pool.requestWorker(w, { kind: 'abort', txid })));
        throw err;
      }
    }
    await Promise.all(others.map((w) => this.pool.requestWorker(w, { kind: 'commit', txid })));
    void this.forgetIntent(home, txid);
  }

  private async forgetIntent(worker: number, txid: string): Promise<void> {
    try {
      await this.pool.control(worker).forgetIntent(txid);
    } catch (err) {
      console.error(`could not clear batch intent ${txid}; recovery will clear it at next start`, err);
    }
  }

  /** Finishes cross-shard batches that a crash interrupted between the home commit and the rest. */
  async recoverIntents(): Promise<number> {
    let recovered = 0;
    for (const [worker, control] of this.pool.controls().entries()) {
      for (const intent of await control.listIntents()) {
        for (const part of intent.parts) await this.pool.control(this.pool.workerOf(part.shard)).recoverPart(part.shard, part.ws);
        await this.pool.control(worker).forgetIntent(intent.txid);
        recovered++;
      }
    }
    return recovered;
  }

  private observe(started: bigint, appended: number): void {
    this.metrics.appendLatency.observe(Number(process.hrtime.bigint() - started) / 1e9);
    if (appended > 0) this.metrics.eventsAppended.inc(appended);
  }
}

/** A worker names a refused item by its index among the commands it was sent: make it the batch's. */
function inBatch(err: DbxError, entries: { index: number }[]): DbxError {
  const details = err.details as { index?: unknown; violations?: unknown } | undefined;
  const local = typeof details?.index === 'number' ? entries[details.index] : undefined;
  if (local === undefined) return err;
  // Gathered schema violations name their own items too.
  const violations = Array.isArray(details?.violations)
    ? details.violations.map((v: unknown) => {
        const at = (v as { index?: unknown } | null)?.index;
        const entry = typeof at === 'number' ? entries[at] : undefined;
        return entry === undefined ? v : { ...(v as object), index: entry.index };
      })
    : undefined;
  return new DbxError(err.code, err.message, { ...details, index: local.index, ...(violations ? { violations } : {}) }, err.cause !== undefined ? { cause: err.cause } : undefined);
}

function expect<K extends ShardResult['kind']>(result: ShardResult, kind: K): Extract<ShardResult, { kind: K }> {
  if (result.kind !== kind) throw new DbxError('internal', `shard answered ${result.kind} to ${kind}`);
  return result as Extract<ShardResult, { kind: K }>;
}
