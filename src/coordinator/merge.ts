/** k-way merge of already-sorted iterators (one per shard); k is small, so a linear pick is enough. */
export function* mergeSorted<T>(sources: Iterable<T>[], compare: (a: T, b: T) => number): Generator<T> {
  const iterators = sources.map((s) => s[Symbol.iterator]());
  const heads: (IteratorResult<T> | undefined)[] = iterators.map((it) => it.next());
  for (;;) {
    let best = -1;
    for (let i = 0; i < heads.length; i++) {
      const h = heads[i];
      if (!h || h.done) continue;
      if (best < 0 || compare(h.value, (heads[best] as IteratorYieldResult<T>).value) < 0) best = i;
    }
    if (best < 0) return;
    yield (heads[best] as IteratorYieldResult<T>).value;
    heads[best] = (iterators[best] as Iterator<T>).next();
  }
}

export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
