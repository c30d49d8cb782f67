/**
 * Hides cross-worker batches while they are half-committed. A batch that spans two worker
 * environments commits in two transactions (home first, with its intent); between them a reader
 * could see aggregate A after the batch and B before it. Reads of a tenant with such a batch in
 * flight wait until every part has committed (a few milliseconds), so no reader observes part of a
 * batch. With one worker (the default) every batch is one transaction and this never engages.
 *
 * Cost on the read path: one Map lookup when nothing is in flight.
 */
export class BatchVisibility {
  private readonly inFlight = new Map<string, Set<Promise<void>>>();

  /** Marks `tenant` busy until `work` settles (whatever its outcome). */
  track<T>(tenant: string, work: () => Promise<T>): Promise<T> {
    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    let set = this.inFlight.get(tenant);
    if (!set) {
      set = new Set();
      this.inFlight.set(tenant, set);
    }
    set.add(done);
    const release = (): void => {
      set.delete(done);
      if (set.size === 0 && this.inFlight.get(tenant) === set) this.inFlight.delete(tenant);
      finish();
    };
    return work().finally(release);
  }

  busy(tenant: string): boolean {
    return this.inFlight.has(tenant);
  }

  /** Resolves once every batch of `tenant` in flight now has settled. */
  async settled(tenant: string): Promise<void> {
    const set = this.inFlight.get(tenant);
    if (set) await Promise.all([...set]);
  }
}
