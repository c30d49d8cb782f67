/**
 * Ordering and bounding helpers of the list paths: a k-way merge of the shards' sorted ranges, a
 * bounded top-k for sorted lists, and the scan budget that stops any list before it stalls the
 * event loop (lists run on the coordinator's main thread, next to every other request).
 */

/**
 * k-way merge of already-sorted iterators (one per shard); k is small, so a linear pick is enough.
 * It closes every source when it stops, also early (a page that filled, a client gone): an LMDB
 * range left open keeps its read transaction, and with it one of the environment's 126 reader
 * slots, until the garbage collector finds it. A list paged under writes filled the table in ~125
 * pages, after which every read answered 500 (MDB_READERS_FULL) until restart.
 */
export function* mergeSorted<T>(sources: Iterable<T>[], compare: (a: T, b: T) => number): Generator<T> {
  const iterators = sources.map((s) => s[Symbol.iterator]());
  try {
    const heads: IteratorResult<T>[] = iterators.map((it) => it.next());
    for (;;) {
      let best = -1;
      for (let i = 0; i < heads.length; i++) {
        const h = heads[i] as IteratorResult<T>;
        if (h.done) continue;
        if (best < 0 || compare(h.value, (heads[best] as IteratorYieldResult<T>).value) < 0) best = i;
      }
      if (best < 0) return;
      yield (heads[best] as IteratorYieldResult<T>).value;
      heads[best] = (iterators[best] as Iterator<T>).next();
    }
  } finally {
    for (const it of iterators) it.return?.();
  }
}

export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** `[query]` bounds as the list functions take them (config keys of the same names). */
export interface ScanBounds {
  scan_rows_max: number;
  scan_time_max_ms: number;
  sort_scan_max: number;
  /** Rows a filter may reject over all the pages of one listing (carried in its cursors). */
  max_scan: number;
}

/** Which bound a scan hit: names the config key to raise. */
export type ScanLimit = 'rows' | 'time';

/**
 * Rows and wall time one request may spend scanning. `spend()` is called after each row is fully
 * handled, so every request makes progress (at least one row) and a cursor taken at the last row
 * scanned resumes exactly after it. One `performance.now()` per row costs ~30 ns, small next to
 * reading a row; checking per row (not per N rows) keeps the bound tight when rows are large.
 */
export class ScanBudget {
  private rows = 0;
  private readonly deadline: number;

  constructor(
    private readonly rowsMax: number,
    timeMaxMs: number,
  ) {
    this.deadline = performance.now() + timeMaxMs;
  }

  /** Counts one scanned row; returns the bound now reached, if any. */
  spend(): ScanLimit | undefined {
    this.rows += 1;
    if (this.rows >= this.rowsMax) return 'rows';
    if (performance.now() >= this.deadline) return 'time';
    return undefined;
  }
}

/**
 * The first `k` items of a stream in `compare` order, in O(k) memory: items are buffered and the
 * buffer cut back to the best k whenever it reaches 2k, so a sort over n rows costs
 * O(n log k) time and never holds more than 2k rows, however large the tenant.
 */
export class TopK<T> {
  private buffer: T[] = [];
  /** Items offered so far: more than k means the answer is not the whole stream (a next page exists). */
  added = 0;

  constructor(
    private readonly compare: (a: T, b: T) => number,
    private readonly k: number,
  ) {}

  add(item: T): void {
    this.added += 1;
    if (this.k === 0) return;
    this.buffer.push(item);
    if (this.buffer.length >= 2 * this.k) this.cut();
  }

  result(): T[] {
    this.cut();
    return this.buffer;
  }

  private cut(): void {
    this.buffer.sort(this.compare);
    if (this.buffer.length > this.k) this.buffer.length = this.k;
  }
}
