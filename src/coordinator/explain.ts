/**
 * What one list request read, for `explain=true` (issue 13 item 3, issue 14 item 2). The counters
 * are the real ones the list paths bump as they go (index entries visited, records decoded, rows
 * the filter refused), so a test can tell an index range from a scan by what was read. Field
 * presence (which filter fields no record read has) costs a resolve per field per record, so it is
 * only tracked when explain was asked for.
 */
import { fieldsOf, resolveAggregateField, resolveEventField, type FilterExpr } from '../core/filter.js';
import type { QueryExplain } from '../core/filter-plan.js';
import type { AggregateView, EventRecord } from '../core/index.js';

export type { QueryExplain };

/** The plan part of an explain: what the list path decided before reading. */
export type PlanExplain = Pick<QueryExplain, 'plan' | 'index' | 'ranges' | 'order' | 'indexed_fields' | 'unindexed_fields' | 'sort'> & { notes?: string[] };

export class QueryTrace {
  entries = 0;
  records = 0;
  rejected = 0;
  private readonly fields: string[];
  private readonly seen = new Set<string>();

  constructor(
    readonly explain: boolean,
    filter: FilterExpr | undefined,
    private readonly kind: 'aggregate' | 'event',
  ) {
    this.fields = explain && filter ? [...new Set(fieldsOf(filter))] : [];
  }

  /** A record was read and decoded (before the filter). */
  read(record: AggregateView | EventRecord): void {
    this.records += 1;
    if (this.fields.length === 0 || this.seen.size === this.fields.length) return;
    for (const field of this.fields) {
      if (this.seen.has(field)) continue;
      const value = this.kind === 'event' ? resolveEventField(record as EventRecord, field) : resolveAggregateField(record as AggregateView, field);
      if (value !== undefined) this.seen.add(field);
    }
  }

  result(plan: PlanExplain, listing: { rejectedBefore: number; maxScan: number | null }): QueryExplain {
    const missing = this.records > 0 ? this.fields.filter((f) => !this.seen.has(f)) : [];
    const notes = [...(plan.notes ?? [])];
    if (missing.length > 0) {
      notes.push(`no record read has ${missing.map((f) => `'${f}'`).join(', ')}: a comparison on a missing field is false (only '!= null' is true); check the spelling`);
    }
    if (plan.plan === 'full_scan' && plan.unindexed_fields.length > 0) {
      notes.push('no index serves this filter: the scope is read in key order and every record is evaluated; add aggregate_type, event_type, created_at or event_id conditions to read a key range instead');
    }
    return {
      plan: plan.plan,
      index: plan.index,
      ranges: plan.ranges,
      order: plan.order,
      indexed_fields: plan.indexed_fields,
      unindexed_fields: plan.unindexed_fields,
      sort: plan.sort,
      index_entries_read: this.entries,
      records_read: this.records,
      rows_rejected: this.rejected,
      rows_rejected_listing: listing.rejectedBefore + this.rejected,
      max_scan: listing.maxScan,
      missing_fields: missing,
      notes,
    };
  }
}
