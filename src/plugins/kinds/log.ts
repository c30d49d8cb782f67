/**
 * `log` plugin kind: one line per part of the job, in the original's wording (reference §10.3),
 * formatted `<ISO time> <LEVEL> eventdbx.plugin.log <text>` and appended to `file` (relative paths
 * are under the data dir) or written to stderr. Each job's lines are fdatasynced before the job
 * counts as delivered (the queue then marks it done and never sends it again), and the file's
 * directory is fsynced after the first of them, so a power cut cannot lose a delivered line.
 */
import { constants } from 'node:fs';
import { access, open, stat, type FileHandle } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fsyncDirectory } from '../../core/durable-file.js';
import type { z } from 'zod';
import type { Deliverer, Delivery, DeliveryBody, logOptions } from '../types.js';
import { logOptions as logOptionsSchema } from '../types.js';
import type { DelivererContext } from './context.js';
import { checkFailed, shortReason } from './wire.js';

type LogOptions = z.output<typeof logOptions>;

const TARGET = 'eventdbx.plugin.log';

/** The texts the original logs for one job: record, then state, then schema; or the "no data" line. */
export function logTexts(body: DeliveryBody, template: string | undefined): string[] {
  const texts: string[] = [];
  if (body.event) {
    const record = body.event;
    texts.push(
      template !== undefined
        ? template.replace(/\{(aggregate|id|event)\}/g, (_, key: string) =>
            key === 'aggregate' ? record.aggregate_type : key === 'id' ? record.aggregate_id : record.event_type,
          )
        : `aggregate=${record.aggregate_type} id=${record.aggregate_id} event=${record.event_type} payload=${JSON.stringify(record.payload)}`,
    );
  }
  if (body.state !== undefined && body.state !== null) {
    texts.push(`aggregate=${body.aggregate_type} id=${body.aggregate_id} state=${JSON.stringify(body.state)}`);
  }
  if (body.schema !== undefined && body.schema !== null) {
    texts.push(`schema=${body.aggregate_type} payload=${JSON.stringify(body.schema)}`);
  }
  if (texts.length === 0) texts.push('plugin job contained no data');
  return texts;
}

/** One log line; control characters (a template's newline, say) become spaces so a job stays one line per part. */
export function logLine(level: string, text: string, now = new Date()): string {
  return `${now.toISOString()} ${level.toUpperCase()} ${TARGET} ${text.replace(/[\u0000-\u001f\u007f]/g, ' ')}\n`;
}

export function createLogDeliverer(options: LogOptions, ctx: DelivererContext): Deliverer {
  const file = options.file === undefined ? undefined : isAbsolute(options.file) ? options.file : resolve(ctx.dataDir, options.file);
  // Opened once, on first use, so building a deliverer (e.g. for `plugin test`) touches nothing.
  let handle: Promise<FileHandle> | undefined;
  let closed = false;
  /** The file's directory has been fsynced since this deliverer opened it. */
  let dirSynced = false;

  function output(): Promise<FileHandle> {
    if (!file) throw new Error('log plugin has no file');
    handle ??= open(file, 'a').catch((err: unknown) => {
      handle = undefined; // next job tries again (the directory may appear)
      throw new Error(`log plugin cannot open its file: ${shortReason(err)}`);
    });
    return handle;
  }

  async function deliver(delivery: Delivery): Promise<void> {
    if (closed) throw new Error('log plugin closed');
    const now = new Date();
    const text = logTexts(delivery.body, options.template)
      .map((t) => logLine(options.level, t, now))
      .join('');
    if (!file) {
      process.stderr.write(text);
      return;
    }
    const fh = await output();
    try {
      await fh.write(text);
      await fh.datasync();
      // Once per deliverer: the file may be new (open created it), and its entry must last too.
      if (!dirSynced) fsyncDirectory(dirname(file));
      dirSynced = true;
    } catch (err) {
      throw new Error(`log plugin cannot write its file: ${shortReason(err)}`);
    }
  }

  async function check(): Promise<void> {
    if (!logOptionsSchema.shape.level.safeParse(options.level).success) throw checkFailed(ctx.name, `invalid log level '${String(options.level)}'`);
    if (!file) return;
    try {
      const info = await stat(file).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return undefined;
        throw err;
      });
      if (info?.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
      await access(info ? file : dirname(file), constants.W_OK);
    } catch (err) {
      throw checkFailed(ctx.name, `log file is not writable: ${shortReason(err)}`);
    }
  }

  async function close(): Promise<void> {
    closed = true;
    const fh = await handle?.catch(() => undefined);
    handle = undefined;
    await fh?.close().catch(() => undefined);
  }

  return { deliver, check, close };
}
