/**
 * Where `dbx aggregate export` writes (reference §14.4), and how: every file goes to a temp file
 * beside its target, is fsynced, renamed over the target and its directory fsynced, so a crash or
 * a failed transfer leaves the old file (or none), never a half-written export under the real name.
 */
import { mkdirDurably } from '../core/durable-file.js';
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { fsyncDirectory } from '../core/index.js';
import { CliError, UsageError } from './output.js';

export type ExportFormat = 'csv' | 'json';

export type Placement =
  | { kind: 'files'; files: { type: string; path: string }[] }
  | { kind: 'zip'; path: string; entries: { type: string; name: string }[] };

function kindOf(path: string): 'file' | 'dir' | 'none' {
  try {
    return statSync(path).isDirectory() ? 'dir' : 'file';
  } catch {
    return 'none';
  }
}

/** The original's sanitising of a type for a file name (our type names already pass it). */
export function fileStem(type: string): string {
  return type.replace(/[^A-Za-z0-9_-]/g, '_');
}

/**
 * One type: an existing file, or a path ending in `.<format>`, is the file itself; anything else
 * is a directory that gets `<type>.<format>`. Several types: a directory (one file per type).
 * `--zip`: into an existing directory as `<type>_<format>.zip` (one type) or
 * `aggregates_<format>.zip`; any other path is the archive, its extension forced to `.zip`.
 */
export function placeExport(output: string, types: string[], format: ExportFormat, zip: boolean): Placement {
  const kind = kindOf(output);
  const entryName = (type: string): string => `${fileStem(type)}.${format}`;
  if (zip) {
    const path =
      kind === 'dir'
        ? join(output, types.length === 1 ? `${fileStem(types[0] as string)}_${format}.zip` : `aggregates_${format}.zip`)
        : extname(output) === ''
          ? `${output}.zip`
          : `${output.slice(0, -extname(output).length)}.zip`;
    return { kind: 'zip', path, entries: types.map((type) => ({ type, name: entryName(type) })) };
  }
  if (types.length === 1 && (kind === 'file' || (kind === 'none' && extname(output).toLowerCase() === `.${format}`))) {
    return { kind: 'files', files: [{ type: types[0] as string, path: output }] };
  }
  if (kind === 'file') {
    throw new UsageError(types.length > 1 ? 'output path must be a directory when exporting multiple aggregate types' : `output path ${output} is a file: name a .${format} file or a directory`);
  }
  return { kind: 'files', files: types.map((type) => ({ type, path: join(output, entryName(type)) })) };
}

/** A file written under a temp name and moved into place only by `commit`. */
export class DurableFile {
  private constructor(
    readonly path: string,
    private readonly temp: string,
    readonly handle: FileHandle,
  ) {}

  static async create(path: string): Promise<DurableFile> {
    // Refused before anything is streamed (the rename would fail only at the end), naming the
    // user's path rather than the temp file beside it.
    if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) throw new CliError(`${path} is a directory: name the file to write`);
    const temp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      mkdirDurably(dirname(path), 0o777);
      // wx: never reuse a stale or foreign temp file; 0600: an export is the store's data.
      return new DurableFile(path, temp, await open(temp, 'wx', 0o600));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (typeof code === 'string' && code.startsWith('E')) throw new CliError(`cannot write ${path}: ${code}`);
      throw err;
    }
  }

  async write(chunk: Buffer): Promise<void> {
    let done = 0;
    while (done < chunk.length) done += (await this.handle.write(chunk, done, chunk.length - done)).bytesWritten;
  }

  async commit(): Promise<void> {
    await this.handle.sync();
    await this.handle.close();
    await rename(this.temp, this.path);
    fsyncDirectory(dirname(this.path));
  }

  async abort(): Promise<void> {
    await this.handle.close().catch(() => {});
    await rm(this.temp, { force: true });
  }
}
