/**
 * The `json` kind (the 1.1.0 file read model): `<dir>/<aggregate_type>.jsonl`, one line per
 * delivery holding the delivery body as the payload mode built it. One file per type holds every
 * tenant (each line carries `tenant`). A relative `dir` is under the data directory.
 *
 * `pretty: true` writes each body as indented JSON followed by a newline — readable, but no longer
 * JSON Lines (a record spans several lines); the file keeps its `.jsonl` name, as the option says.
 *
 * Idempotent on replay: the event ids already in the file are loaded on first use (one read of the
 * file, then a Set in memory: ~100 bytes per event) and a delivery whose event id is there is
 * skipped. A torn last record (power cut mid-append) is cut off on load, before anything is appended.
 * Deliverers of one plugin in other delivery threads are kept out by `<file>.lock` (read-model.ts
 * withFileLock); a file grown by another writer since our last write is re-read before we append.
 */
import { readFileSync, statSync, truncateSync } from 'node:fs';
import type { z } from 'zod';
import { jsonOptions, type Deliverer, type DeliveryBody } from '../types.js';
import type { DelivererContext } from './context.js';
import { appendDurably, fileError, fileReadModelDeliverer, parseOptions, readModelDir } from './read-model.js';

interface FileState {
  seen: Set<string>;
  size: number;
}

/** Splits file text into complete records; `end` is the byte length of the complete part. */
export function splitJsonRecords(text: string, pretty: boolean): { records: string[]; end: number } {
  const records: string[] = [];
  let start = 0;
  let complete = 0;
  // JSON.stringify(object, null, 2) closes the top-level object with `}` alone at column 0; every
  // inner line is indented and strings escape newlines, so that line ends a record.
  const terminator = pretty ? '\n}\n' : '\n';
  for (;;) {
    const at = text.indexOf(terminator, start);
    if (at < 0) break;
    const stop = at + terminator.length;
    const record = pretty ? text.slice(start, stop - 1) : text.slice(start, at);
    if (record.trim() !== '') records.push(record);
    start = stop;
    complete = stop;
  }
  return { records, end: Buffer.byteLength(text.slice(0, complete), 'utf8') };
}

export function createJsonDeliverer(options: z.input<typeof jsonOptions>, ctx: DelivererContext): Deliverer {
  const opts = parseOptions('json', jsonOptions, options);
  const dir = readModelDir(opts.dir, ctx.dataDir);
  const files = new Map<string, FileState>();

  function load(path: string): FileState {
    let text = '';
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const { records, end } = splitJsonRecords(text, opts.pretty);
    const bytes = Buffer.byteLength(text, 'utf8');
    if (end < bytes) {
      ctx.log('warn', `json plugin ${ctx.name}: dropping a torn last record (${bytes - end} bytes) of ${path}`);
      truncateSync(path, end);
    }
    const seen = new Set<string>();
    for (const record of records) {
      try {
        const id = (JSON.parse(record) as { event_id?: unknown }).event_id;
        if (typeof id === 'string') seen.add(id);
      } catch {
        ctx.log('warn', `json plugin ${ctx.name}: ${path} holds a record that is not JSON; it is kept and ignored`);
      }
    }
    const state = { seen, size: end };
    files.set(path, state);
    return state;
  }

  function current(path: string): FileState {
    const known = files.get(path);
    if (known === undefined) return load(path);
    let size = 0;
    try {
      size = statSync(path).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return size === known.size ? known : load(path);
  }

  function write(path: string, body: DeliveryBody): void {
    try {
      const state = current(path);
      if (state.seen.has(body.event_id)) return;
      const text = opts.pretty ? `${JSON.stringify(body, null, 2)}\n` : `${JSON.stringify(body)}\n`;
      state.size = appendDurably(path, text);
      state.seen.add(body.event_id);
    } catch (err) {
      files.delete(path); // unknown file state after a failure: re-read on the next attempt
      throw fileError('json', path, err);
    }
  }

  return fileReadModelDeliverer('json', dir, '.jsonl', write, () => files.clear());
}
