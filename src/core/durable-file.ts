/**
 * Durable small-file writes (config.toml, cli.token, the pid file): the file either keeps its old
 * content or has the new one after a power cut, never empty or half written.
 *
 * Steps: write a temp file in the same directory (O_CREAT|O_EXCL, so a stale or foreign temp file
 * is never reused and the mode is set at creation), fsync it, rename it over the target, fsync the
 * directory so the rename itself is on disk. Cost: two device flushes per call (~0.5 ms here);
 * these files are written at start and on config changes only, never on the write path.
 */
import { chmodSync, closeSync, constants, existsSync, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';

export function writeFileDurably(path: string, data: string | Buffer, mode = 0o600): void {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let fd: number;
  try {
    fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  } catch (err) {
    // Name the file the caller asked for, not our temp name beside it.
    const e = err as NodeJS.ErrnoException;
    throw Object.assign(e, { path, message: e.message.split(tmp).join(path) });
  }
  try {
    try {
      let written = 0;
      while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    // The target is untouched until the rename; only the temp file needs removing.
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDirectory(dir);
}

/**
 * `mkdir -p` whose result survives a power cut: each directory it creates is fsynced in its parent
 * (a new directory's own entry lives in the parent, and a file fsynced inside a directory whose
 * entry was lost is lost with it). Directories that exist already cost one stat, no flush.
 */
export function mkdirDurably(path: string, mode = 0o700): void {
  const missing: string[] = [];
  for (let dir = resolve(path); !existsSync(dir); dir = dirname(dir)) {
    missing.push(dir);
    if (dirname(dir) === dir) break;
  }
  for (const dir of missing.reverse()) {
    try {
      mkdirSync(dir, { mode });
    } catch (err) {
      // Another process (or thread) created it in between: its creator syncs it.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      continue;
    }
    fsyncDirectory(dirname(dir));
  }
}

/** Removes a file (if there) and makes the removal durable: a power cut cannot bring it back. */
export function removeFileDurably(path: string): void {
  if (!existsSync(path)) return;
  rmSync(path, { force: true });
  fsyncDirectory(dirname(path));
}

/** fsync of a directory makes its entries (creates, renames, unlinks) durable. */
export function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Narrows a tree to owner-only access: directories lose group/other bits (→ 0700), files too
 * (→ 0600); modes already narrower are kept and symlinks are not followed. For data dirs created
 * before the server set its umask to 0o077. Cost: one lstat per entry, at start only (a data dir
 * holds tens of files).
 */
export function restrictTreeModes(root: string): void {
  const stat = lstatSync(root);
  if (stat.isSymbolicLink()) return;
  const isDir = stat.isDirectory();
  const wanted = stat.mode & (isDir ? 0o700 : 0o600);
  if ((stat.mode & 0o7777) !== wanted) chmodSync(root, wanted);
  if (!isDir) return;
  for (const name of readdirSync(root)) restrictTreeModes(join(root, name));
}
