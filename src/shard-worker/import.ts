/**
 * Bulk import inside a group commit: one chunk of event records becomes one atomic sub-batch of the
 * group (fork → addImported each → absorb), so a bad line fails its whole chunk with nothing of it
 * written, and the chunk commits in the group's one LMDB transaction.
 */
import { DbxError } from '../core/index.js';
import type { BatchBuilder } from './prepare.js';
import type { ImportItem, ShardResult } from './protocol.js';
import { headKeyString, type WriteSet } from './records.js';

/** True when an aggregate of the chunk is locked by a prepared cross-worker batch (wait for it). */
export function importTouchesLocked(items: ImportItem[], locked: (key: string) => boolean, anyLocks: boolean): boolean {
  if (!anyLocks) return false;
  return items.some((i) => locked(`${i.shard}\u0000${headKeyString(i.tenant, i.record.aggregate_type, i.record.aggregate_id)}`));
}

export function prepareImport(main: BatchBuilder, items: ImportItem[], verify: boolean): Extract<ShardResult, { kind: 'import' }> {
  const child = main.fork();
  let imported = 0;
  let skipped = 0;
  let created = 0;
  for (const item of items) {
    let outcome: ReturnType<BatchBuilder['addImported']>;
    try {
      outcome = child.addImported(item.shard, item.tenant, item.record, verify, item.pre);
    } catch (err) {
      throw atLine(err, item.line);
    }
    if (outcome === 'skipped') skipped++;
    else imported++;
    if (outcome === 'created') created++;
  }
  for (const ws of child.writeSets.values()) keepLastHeads(ws);
  main.absorbImport(child);
  return { kind: 'import', imported, skipped, created };
}

/** The line's number goes into the message and the details, so the caller can find it. */
function atLine(err: unknown, line: number): unknown {
  if (!(err instanceof DbxError)) return err;
  const details = err.details !== null && typeof err.details === 'object' && !Array.isArray(err.details) ? err.details : err.details === undefined ? {} : { cause: err.details };
  return new DbxError(err.code, `line ${line}: ${err.message}`, { line, ...details });
}

/**
 * An aggregate with many events in one chunk would write its head (and whole state) once per event;
 * only the last one survives the transaction, so only it is kept: O(events) puts become
 * O(aggregates). Order among the kept heads is unchanged.
 */
function keepLastHeads(ws: WriteSet): void {
  if (ws.heads.length < 2) return;
  const seen = new Set<string>();
  const kept: WriteSet['heads'] = [];
  for (let i = ws.heads.length - 1; i >= 0; i--) {
    const entry = ws.heads[i] as WriteSet['heads'][number];
    const key = headKeyString(...entry.key);
    if (seen.has(key)) continue;
    seen.add(key);
    kept.push(entry);
  }
  if (kept.length === ws.heads.length) return;
  kept.reverse();
  ws.heads = kept;
}
