/**
 * `async` durability (issue 8 item 3). A group commit there flushes its pages inside the commit
 * but leaves its LMDB meta page to a later flush (ASYNC_GROUP_TXN_FLAGS, MDB_NOMETASYNC), and its
 * replies go out once the commit returns: one flush per commit instead of two (measured with
 * lmdb 3.5.6 on this VM, interleaved: a 15-put commit 1,600 -> 1,168 µs p50, a 1-put commit
 * 484 -> 282 µs). The meta page reaches the disk with the next commit's page flush, or by an
 * fdatasync of its own within flush_interval_ms once writes pause (the worker's timer).
 *
 * Why a power cut cannot tear the store (mdb.c): such a commit fdatasyncs its pages before it
 * writes its meta page, and LMDB reuses a page only once no meta that may still be the newest on
 * disk points at it, so LMDB reopens on the newest meta that reached the disk, with every page of
 * it. What a cut can take back is the suffix of commits whose meta page was not flushed yet: the
 * last one under load, those of the last flush_interval_ms when writes pause. A kill -9 takes
 * nothing (the page cache survives the process). `sync` keeps DURABLE_TXN_FLAGS (store.ts).
 */
import { closeSync, fdatasync, fdatasyncSync, openSync } from 'node:fs';
import { fsyncDirectory } from '../core/durable-file.js';
import { join } from 'node:path';

/** ABORTABLE | SYNCHRONOUS_COMMIT | MDB_NOMETASYNC (see the header). */
export const ASYNC_GROUP_TXN_FLAGS = 0x1 | 0x2 | 0x40000;

export class MetaFlusher {
  private readonly fd: number;
  /** Commits made with ASYNC_GROUP_TXN_FLAGS so far (a commit's number is the count after it). */
  private committed = 0;
  /** Every commit up to this number has its meta page on disk. */
  private durable = 0;
  private flushing = false;
  private waiters: { upTo: number; resolve: () => void; reject: (err: Error) => void }[] = [];
  private failure: Error | undefined;

  constructor(envPath: string) {
    // fdatasync through any descriptor of the file flushes the file; read-only is enough on Linux.
    this.fd = openSync(join(envPath, 'data.mdb'), 'r');
    // What the page cache holds of the file at start may be commits of a process killed before
    // their flush (an `async` meta page, an overlapped sync). Everything here from now on treats
    // the store as durable (the dispatcher's queue position, the live stream's marks), so make it
    // so once, before the first request: one fdatasync per start. The env's directory too (its
    // entry for data.mdb, created by LMDB, which never syncs a directory).
    fdatasyncSync(this.fd);
    fsyncDirectory(envPath);
  }

  /** Call right after an ASYNC_GROUP_TXN_FLAGS commit returned; answers its commit number. */
  committedOne(): number {
    // This commit's page flush (inside the commit) carried every earlier meta page to the disk.
    this.markDurable(this.committed);
    return ++this.committed;
  }

  /** The number of the last commit made so far (see durableThrough). */
  get lastCommitted(): number {
    return this.committed;
  }

  /**
   * A fully durable commit made after commit `upTo` returned (one on lmdb-js's write thread, or a
   * DURABLE_TXN_FLAGS commit on this thread): its fdatasync carried every earlier meta page to the
   * disk (strace, lmdb 3.5.6: pages, fdatasync, then its own meta page through O_DSYNC). Uncounted,
   * a group waiting on an earlier meta page held the commit window until the flush timer, and once
   * the window was full no group was taken up at all (CI stop 35, async-window test).
   */
  durableThrough(upTo: number): void {
    this.markDurable(upTo);
  }

  /**
   * Resolves once commit `upTo`'s meta page is on disk, without starting a flush: the next commit
   * or flushAll (the timer) carries it there. Rejects if a flush failed.
   */
  whenDurable(upTo: number): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (upTo <= this.durable) return Promise.resolve();
    return new Promise<void>((resolve, reject) => this.waiters.push({ upTo, resolve, reject }));
  }

  /** Whether some commit's meta page may still be only in the page cache. */
  get pending(): boolean {
    return this.committed > this.durable;
  }

  /** Flushes every commit made so far, on libuv's thread pool (the timer, drain). */
  flushAll(): Promise<void> {
    const done = this.whenDurable(this.committed);
    this.startFlush();
    return done;
  }

  /**
   * On this thread, at once, whatever flush is in progress on the thread pool: for a reply that
   * must not wait on anything but this fdatasync (a part of a cross-worker batch, worker.ts). The
   * pool is the process's, shared with lmdb-js and every other worker: a flush queued there behind
   * busy threads held such a reply up to flush_interval_ms once in CI (async-cross-worker-batch).
   * A failure fails every waiter, like a failed pool flush.
   */
  flushNow(): void {
    if (!this.pending || this.failure) return;
    const upTo = this.committed;
    try {
      fdatasyncSync(this.fd);
    } catch (err) {
      return this.fail(err as Error);
    }
    this.markDurable(upTo);
  }

  /** On this thread, at once (the worker's exit). */
  flushAllSync(): void {
    if (!this.pending || this.failure) return;
    const upTo = this.committed;
    fdatasyncSync(this.fd);
    this.markDurable(upTo);
  }

  close(): void {
    closeSync(this.fd);
  }

  private startFlush(): void {
    if (this.flushing || this.failure || !this.pending) return;
    const upTo = this.committed;
    this.flushing = true;
    fdatasync(this.fd, (err) => {
      this.flushing = false;
      if (err) return this.fail(err);
      this.markDurable(upTo);
      // Commits made during this flush are covered by the next one (or the next commit).
      if (this.waiters.length > 0 && this.pending) this.startFlush();
    });
  }

  private markDurable(upTo: number): void {
    if (upTo <= this.durable) return;
    this.durable = upTo;
    if (this.waiters.length === 0) return;
    const still: typeof this.waiters = [];
    for (const waiter of this.waiters) {
      if (waiter.upTo <= upTo) waiter.resolve();
      else still.push(waiter);
    }
    this.waiters = still;
  }

  private fail(err: Error): void {
    this.failure = err;
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter.reject(err);
  }
}
