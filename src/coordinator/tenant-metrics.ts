/**
 * Bounded label cardinality for per-tenant series (issue 12): the N largest tenants by the value
 * being reported get their own `tenant` label, every other tenant is summed under
 * `tenant="_other"` (N = `[tenants] metrics_top_n`; 0 = everything under `_other`). Thousands of
 * tenants then cost N + 1 series, not thousands. A tenant id never starts with `_`, so the rollup
 * cannot be mistaken for (or swallow) a tenant named `other`.
 *
 * Cost of the choice: the top-N set is chosen per scrape, so when a tenant enters or leaves it,
 * `_other` (a counter for appends) drops or jumps once — Prometheus' rate() reads a drop as a
 * counter reset. A tenant's own series is exact while it is named.
 */

export const OTHER_TENANTS = '_other';

/** label → value: the `n` largest entries by value (ties by name), then `_other` with the rest (when any). */
export function topTenants(values: ReadonlyMap<string, number>, n: number): Map<string, number> {
  const sorted = [...values].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const out = new Map<string, number>();
  let rest = 0;
  let restCount = 0;
  for (const [i, [tenant, value]] of sorted.entries()) {
    if (i < n) out.set(tenant, value);
    else {
      rest += value;
      restCount++;
    }
  }
  if (restCount > 0) out.set(OTHER_TENANTS, rest);
  return out;
}
