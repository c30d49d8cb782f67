/**
 * Did the previous server on this data dir shut down cleanly? A running server keeps
 * `<data_dir>/server.running` (its pid and start time); a clean stop removes it. Found at start —
 * under the data dir's lock, so its writer is gone — it means the last run ended by a crash, a
 * kill -9, an OOM kill or a power cut, and the start says so in the log (what was recovered, and
 * where to look). Its own file rather than server.pid: `dbx start` and `dbx stop` remove a stale
 * pid file before the new server could see it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeFileDurably, writeFileDurably } from '../core/index.js';

export const RUN_MARKER_FILE = 'server.running';

export interface RunMarker {
  pid: number;
  started_at: string;
}

/** The previous run's marker, if it is still there (only meaningful while holding the data dir's lock). */
export function previousRun(dataDir: string): RunMarker | undefined {
  try {
    const parsed = JSON.parse(readFileSync(join(dataDir, RUN_MARKER_FILE), 'utf8')) as Partial<RunMarker>;
    return { pid: typeof parsed.pid === 'number' ? parsed.pid : 0, started_at: typeof parsed.started_at === 'string' ? parsed.started_at : 'unknown' };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    // Unreadable or torn (a power cut mid-write cannot tear it: it is written durably; still):
    // the file being there is what counts.
    return { pid: 0, started_at: 'unknown' };
  }
}

/** Written once the server accepts requests, so a start that fails keeps the last run's marker. */
export function markRunning(dataDir: string, marker: RunMarker): void {
  writeFileDurably(join(dataDir, RUN_MARKER_FILE), JSON.stringify(marker), 0o600);
}

/** A clean stop: everything was drained and flushed. */
export function markStopped(dataDir: string): void {
  removeFileDurably(join(dataDir, RUN_MARKER_FILE));
}

export function uncleanExitMessage(previous: RunMarker): string {
  const who = previous.pid > 0 ? `pid ${previous.pid}, started ${previous.started_at}` : 'unknown pid';
  return `the previous server on this data directory (${who}) did not shut down cleanly (crash, kill -9, OOM kill or power loss): acknowledged writes are kept, interrupted batches are finished at this start; check the end of its log for the cause`;
}
