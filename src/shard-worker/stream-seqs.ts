/**
 * The writer's stream bookkeeping for one shard: the next seq of each tenant's stream (handed out
 * inside the write transaction, so the stream stays gapless), the tenants written since the last
 * commit's marks were taken, and the last seq of each tenant known to be durable (what live
 * readers may stream). Only the shard's owning worker uses it; readers go to the `stream` db.
 */
export class StreamSeqs {
  private readonly next = new Map<string, number>();
  private readonly touched = new Set<string>();
  private readonly durable = new Map<string, number>();

  /** `lastOnDisk(tenant)`: the tenant's last stream seq in the shard's `stream` db (0: none). */
  constructor(private readonly lastOnDisk: (tenant: string) => number) {}

  /** The seq of the tenant's next stream entry (inside the write transaction). */
  take(tenant: string): number {
    const seq = this.next.get(tenant) ?? this.load(tenant);
    this.next.set(tenant, seq + 1);
    this.touched.add(tenant);
    return seq;
  }

  /** A copied entry (tenant move): later seqs continue after it. */
  raise(tenant: string, seq: number): void {
    const next = this.next.get(tenant) ?? this.load(tenant);
    this.next.set(tenant, Math.max(next, seq + 1));
    this.touched.add(tenant);
  }

  /** Tenants written since the last call, with their last seq (inside the write transaction). */
  takeMarks(): [tenant: string, seq: number][] {
    const out: [string, number][] = [];
    for (const tenant of this.touched) out.push([tenant, (this.next.get(tenant) ?? 1) - 1]);
    this.touched.clear();
    return out;
  }

  /** `seq` of `tenant` is on disk for good. */
  markDurable(tenant: string, seq: number): void {
    if (seq > (this.durable.get(tenant) ?? 0)) this.durable.set(tenant, seq);
  }

  /**
   * The last durable seq of `tenant`. A tenant not written since the worker started has no commit
   * in flight (every write goes through this worker), so its last seq on disk is it.
   */
  durableSeq(tenant: string): number {
    return this.durable.get(tenant) ?? this.lastOnDisk(tenant);
  }

  /** After a failed commit: the seqs handed out were never written, so the next write re-reads. */
  forgetUncommitted(): void {
    this.next.clear();
    this.touched.clear();
  }

  /** After a tenant's range was copied here or deleted from here: its cached seqs describe the old range. */
  forgetTenant(tenant: string): void {
    this.next.delete(tenant);
    this.touched.delete(tenant);
    this.durable.delete(tenant);
  }

  /**
   * First write of `tenant` since the worker started (or since a failed commit): what is on disk
   * then was written by earlier commits, all durable, so it also seeds the durable seq.
   */
  private load(tenant: string): number {
    const last = this.lastOnDisk(tenant);
    if (!this.durable.has(tenant)) this.durable.set(tenant, last);
    return last + 1;
  }
}
