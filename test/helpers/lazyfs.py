#!/usr/bin/python3
"""lazyfs: a passthrough FUSE filesystem that loses what a power cut would lose.

Usage: lazyfs.py BACKING MOUNTPOINT CONTROL_SOCKET [--seed N]

Data: every write is kept in memory, per file (keyed by the backing inode, so renames and unlinked
open files keep their pending data), as whole 512-byte sectors, plus a pending size and a pending
truncation point. Reads (read(2) and the page faults of an mmap, which FUSE turns into reads) see
the pending sectors: read-your-writes. fsync/fdatasync of a file, or a write through an O_SYNC /
O_DSYNC descriptor, writes that file's pending sectors and size to the backing file. Nothing
reaches the backing file otherwise, whatever close(2) or the kernel does.

Metadata (create, mkdir, rename, unlink, rmdir, link, symlink, chmod) is applied to the backing
tree at once but journalled with an undo record; the journal is committed (forgotten) by any fsync,
fdatasync or directory fsync: the model of a journalling filesystem (ext4 data=ordered), where an
fsync commits the journal holding every earlier metadata change. A crash undoes the uncommitted
records newest first. Not modelled: per-directory metadata durability (a rename made durable by an
fsync of an unrelated file is durable here, as on ext4), timestamps, xattrs.

The backing filesystem is never fsynced: the cut is simulated, the machine stays up.

Control socket (one command per line, one JSON line back):
  stats       counters and what is pending
  crash       drop every unsynced write and undo every uncommitted metadata change
  crash-torn  the same, except that a random half of the unsynced sectors survive, written in a
              random order (a disk that reorders and loses writes at the cut)
After a crash every file operation fails with EIO until the filesystem is unmounted: nothing may
write after the power is gone. Needs Debian's python3-fusepy (module `fusepy`) or pip's fusepy.
"""
import errno
import json
import os
import random
import shutil
import socket
import stat
import sys
import threading

try:
    from fusepy import FUSE, FuseOSError, Operations  # Debian's python3-fusepy
except ImportError:
    from fuse import FUSE, FuseOSError, Operations  # pip's fusepy

SECTOR = 512
SYNC_FLAGS = getattr(os, 'O_SYNC', 0) | getattr(os, 'O_DSYNC', 0)
# Flags that must not reach the backing descriptor: O_TRUNC would truncate durably at once, O_APPEND
# makes pwrite ignore its offset on Linux (the kernel already computes the append offset), the sync
# flags would persist writes we mean to hold back.
STRIP_FLAGS = os.O_TRUNC | os.O_APPEND | SYNC_FLAGS | getattr(os, 'O_DIRECT', 0) | os.O_CREAT | os.O_EXCL


class FileState:
    """Unsynced state of one backing inode."""

    def __init__(self, fd, size):
        self.fd = fd  # our own O_RDWR descriptor: outlives the caller's handles (close is not fsync)
        self.pending = {}  # sector index -> bytearray(SECTOR), the sector as the caller sees it
        self.size = size  # logical size
        self.floor = size  # bytes at or past floor read as zero unless pending (pending truncation)
        self.backing_size = size

    def durable_bytes(self, start, end):
        """Bytes [start, end) of the backing file, zero-filled past floor or past its end."""
        out = bytearray(end - start)
        lim = min(end, self.floor)
        if lim > start:
            data = os.pread(self.fd, lim - start, start)
            out[0:len(data)] = data
        return out

    def sector(self, index):
        sec = self.pending.get(index)
        if sec is None:
            sec = self.durable_bytes(index * SECTOR, (index + 1) * SECTOR)
            self.pending[index] = sec
        return sec

    def write(self, data, offset):
        pos = 0
        while pos < len(data):
            index, within = divmod(offset + pos, SECTOR)
            n = min(SECTOR - within, len(data) - pos)
            self.sector(index)[within:within + n] = data[pos:pos + n]
            pos += n
        self.size = max(self.size, offset + len(data))

    def read(self, size, offset):
        end = min(offset + size, self.size)
        if offset >= end:
            return b''
        out = self.durable_bytes(offset, end)
        for index in range(offset // SECTOR, (end - 1) // SECTOR + 1):
            sec = self.pending.get(index)
            if sec is None:
                continue
            s0 = max(offset, index * SECTOR)
            s1 = min(end, (index + 1) * SECTOR)
            out[s0 - offset:s1 - offset] = sec[s0 - index * SECTOR:s1 - index * SECTOR]
        return bytes(out)

    def truncate(self, length):
        if length < self.size:
            for index in [i for i in self.pending if i * SECTOR >= length]:
                del self.pending[index]
            index, within = divmod(length, SECTOR)
            if within and index in self.pending:
                self.pending[index][within:] = bytes(SECTOR - within)
            self.floor = min(self.floor, length)
        self.size = length

    def persist(self, sectors=None):
        """Writes the given (default: all) pending sectors; the full set also applies the size."""
        full = sectors is None
        if full and self.floor < self.backing_size:
            os.ftruncate(self.fd, self.floor)
        # Runs of adjacent sectors go out as one pwrite: a commit is tens of pages.
        run_start, run = None, []
        for index in (sorted(self.pending) if full else sectors) + [None]:
            if run and (index is None or index != run_start + len(run)):
                data = b''.join(run)[:max(0, self.size - run_start * SECTOR)]
                if data:
                    os.pwrite(self.fd, data, run_start * SECTOR)
                run = []
            if index is not None:
                if not run:
                    run_start = index
                run.append(bytes(self.pending[index]))
        if full:
            os.ftruncate(self.fd, self.size)
            self.pending.clear()
            self.floor = self.backing_size = self.size


class LazyFS(Operations):
    def __init__(self, root, seed):
        self.root = os.path.realpath(root)
        self.stash = self.root + '.lazyfs-stash'
        shutil.rmtree(self.stash, ignore_errors=True)
        os.mkdir(self.stash, 0o700)
        self.mutex = threading.RLock()
        self.files = {}  # backing inode -> FileState
        self.handles = {}  # fh -> (inode, sync)
        self.journal = []  # uncommitted metadata changes: undo records, oldest first
        self.crashed = False
        self.rng = random.Random(seed)
        self.stats = {k: 0 for k in ('reads', 'writes', 'write_bytes', 'sync_writes', 'fsyncs', 'fsyncdirs', 'crashes',
                                     'dropped_sectors', 'survived_sectors', 'undone_meta', 'journal_commits')}

    # --- helpers ---------------------------------------------------------------------------------
    def full(self, path):
        return os.path.join(self.root, path.lstrip('/'))

    def check(self):
        if self.crashed:
            raise FuseOSError(errno.EIO)

    def state_for(self, ino, fd_source):
        st = self.files.get(ino)
        if st is None:
            fd = os.open(fd_source, os.O_RDWR)
            st = FileState(fd, os.fstat(fd).st_size)
            self.files[ino] = st
        return st

    def stash_path(self):
        return os.path.join(self.stash, str(len(os.listdir(self.stash))) + '-' + str(self.rng.getrandbits(48)))

    def commit_journal(self):
        if self.journal:
            self.stats['journal_commits'] += 1
            self.journal = []
            for name in os.listdir(self.stash):
                p = os.path.join(self.stash, name)
                shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.unlink(p)

    def keep_existing(self, path):
        """Hard-links a file about to be replaced or unlinked into the stash; returns its stash path."""
        if os.path.lexists(path) and not os.path.isdir(path):
            keep = self.stash_path()
            os.link(path, keep, follow_symlinks=False)
            return keep
        return None

    # --- control ---------------------------------------------------------------------------------
    def control(self, line):
        cmd = line.strip()
        with self.mutex:
            if cmd == 'stats':
                return dict(self.stats, pending_files=len([s for s in self.files.values() if s.pending or s.size != s.backing_size]),
                            pending_sectors=sum(len(s.pending) for s in self.files.values()), journal=len(self.journal), crashed=self.crashed)
            if cmd in ('crash', 'crash-torn'):
                return self.crash(torn=cmd == 'crash-torn')
            return {'error': 'unknown command ' + cmd}

    def crash(self, torn):
        dropped = survived = 0
        for st in self.files.values():
            indexes = list(st.pending)
            if torn:
                self.rng.shuffle(indexes)
                keep = indexes[:len(indexes) // 2]
                # A torn survivor may extend the file; clip it to what the caller had written.
                st.persist(keep)
                survived += len(keep)
                dropped += len(indexes) - len(keep)
            else:
                dropped += len(indexes)
            os.close(st.fd)
        self.files = {}
        undone = 0
        for record in reversed(self.journal):
            self.undo(record)
            undone += 1
        self.journal = []
        self.crashed = True
        self.stats['crashes'] += 1
        self.stats['dropped_sectors'] += dropped
        self.stats['survived_sectors'] += survived
        self.stats['undone_meta'] += undone
        return {'dropped_sectors': dropped, 'survived_sectors': survived, 'undone_meta': undone}

    def undo(self, record):
        kind = record[0]
        try:
            if kind == 'created':
                os.unlink(record[1])
            elif kind == 'mkdir':
                shutil.rmtree(record[1])
            elif kind == 'rmdir':
                os.mkdir(record[1], record[2])
            elif kind == 'unlinked':
                os.rename(record[2], record[1])
            elif kind == 'renamed':
                _, old, new, kept = record
                os.rename(new, old)
                if kept:
                    os.rename(kept, new)
            elif kind == 'chmod':
                os.chmod(record[1], record[2])
        except OSError as err:
            sys.stderr.write('lazyfs: undo %r failed: %s\n' % (record, err))

    # --- filesystem ------------------------------------------------------------------------------
    def getattr(self, path, fh=None):
        with self.mutex:
            self.check()
            st = os.lstat(self.full(path))
            attrs = {k: getattr(st, k) for k in ('st_mode', 'st_nlink', 'st_uid', 'st_gid', 'st_size', 'st_atime', 'st_mtime', 'st_ctime', 'st_blocks')}
            state = self.files.get(st.st_ino)
            if state is not None and stat.S_ISREG(st.st_mode):
                attrs['st_size'] = state.size
                attrs['st_blocks'] = (state.size + 511) // 512
            return attrs

    def readdir(self, path, fh):
        with self.mutex:
            self.check()
            return ['.', '..'] + os.listdir(self.full(path))

    def statfs(self, path):
        sv = os.statvfs(self.full(path))
        return {k: getattr(sv, k) for k in ('f_bavail', 'f_bfree', 'f_blocks', 'f_bsize', 'f_favail', 'f_ffree', 'f_files', 'f_flag', 'f_frsize', 'f_namemax')}

    def readlink(self, path):
        return os.readlink(self.full(path))

    def access(self, path, amode):
        if not os.access(self.full(path), amode):
            raise FuseOSError(errno.EACCES)

    def chmod(self, path, mode):
        with self.mutex:
            self.check()
            p = self.full(path)
            self.journal.append(('chmod', p, stat.S_IMODE(os.lstat(p).st_mode)))
            os.chmod(p, mode)

    def chown(self, path, uid, gid):
        os.chown(self.full(path), uid, gid, follow_symlinks=False)

    def utimens(self, path, times=None):
        os.utime(self.full(path), times, follow_symlinks=False)

    def mkdir(self, path, mode):
        with self.mutex:
            self.check()
            p = self.full(path)
            os.mkdir(p, mode)
            self.journal.append(('mkdir', p))

    def rmdir(self, path):
        with self.mutex:
            self.check()
            p = self.full(path)
            mode = stat.S_IMODE(os.lstat(p).st_mode)
            os.rmdir(p)
            self.journal.append(('rmdir', p, mode))

    def mknod(self, path, mode, dev):
        with self.mutex:
            self.check()
            p = self.full(path)
            os.mknod(p, mode, dev)
            self.journal.append(('created', p))

    def symlink(self, target, source):
        with self.mutex:
            self.check()
            p = self.full(target)
            os.symlink(source, p)
            self.journal.append(('created', p))

    def link(self, target, source):
        with self.mutex:
            self.check()
            p = self.full(target)
            os.link(self.full(source), p)
            self.journal.append(('created', p))

    def unlink(self, path):
        with self.mutex:
            self.check()
            p = self.full(path)
            kept = self.keep_existing(p)
            os.unlink(p)
            self.journal.append(('unlinked', p, kept))

    def rename(self, old, new):
        with self.mutex:
            self.check()
            po, pn = self.full(old), self.full(new)
            kept = self.keep_existing(pn)
            os.rename(po, pn)
            self.journal.append(('renamed', po, pn, kept))

    def open_fh(self, p, flags, mode=None):
        if mode is None:
            fh = os.open(p, flags & ~STRIP_FLAGS)
        else:
            fh = os.open(p, (flags & ~STRIP_FLAGS) | os.O_CREAT | os.O_EXCL, mode)
        self.handles[fh] = (os.fstat(fh).st_ino, bool(flags & SYNC_FLAGS))
        return fh

    def create(self, path, mode, fi=None):
        with self.mutex:
            self.check()
            p = self.full(path)
            fh = self.open_fh(p, os.O_RDWR, mode)
            self.journal.append(('created', p))
            return fh

    def open(self, path, flags):
        with self.mutex:
            self.check()
            fh = self.open_fh(self.full(path), flags)
            if flags & os.O_TRUNC:
                self.state_for(self.handles[fh][0], '/proc/self/fd/%d' % fh).truncate(0)
            return fh

    def read(self, path, size, offset, fh):
        with self.mutex:
            self.check()
            self.stats['reads'] += 1
            state = self.files.get(self.handles[fh][0])
            if state is None:
                return os.pread(fh, size, offset)
            return state.read(size, offset)

    def write(self, path, data, offset, fh):
        with self.mutex:
            self.check()
            ino, sync = self.handles[fh]
            state = self.state_for(ino, '/proc/self/fd/%d' % fh)
            state.write(data, offset)
            self.stats['writes'] += 1
            self.stats['write_bytes'] += len(data)
            if sync:
                # O_DSYNC: this write is durable on return. Persisting the whole file is stronger than
                # the range, but LMDB writes its meta page this way only after an fdatasync.
                self.stats['sync_writes'] += 1
                self.sync_file(ino)
            return len(data)

    def truncate(self, path, length, fh=None):
        with self.mutex:
            self.check()
            if fh is None:
                p = self.full(path)
                ino, src = os.lstat(p).st_ino, p
            else:
                ino, src = self.handles[fh][0], '/proc/self/fd/%d' % fh
            self.state_for(ino, src).truncate(length)

    def sync_file(self, ino):
        state = self.files.pop(ino, None)
        if state is not None:
            state.persist()
            os.close(state.fd)
        self.commit_journal()

    def fsync(self, path, datasync, fh):
        with self.mutex:
            self.check()
            self.stats['fsyncs'] += 1
            self.sync_file(self.handles[fh][0])
            return 0

    def fsyncdir(self, path, datasync, fh):
        with self.mutex:
            self.check()
            self.stats['fsyncdirs'] += 1
            self.commit_journal()
            return 0

    def flush(self, path, fh):
        return 0  # close(2) is not a durability point

    def release(self, path, fh):
        with self.mutex:
            self.handles.pop(fh, None)
            os.close(fh)
            return 0


def serve_control(fs, sock_path):
    if os.path.exists(sock_path):
        os.unlink(sock_path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock_path)
    server.listen(8)

    def handle(conn):
        with conn, conn.makefile('rw') as stream:
            for line in stream:
                try:
                    answer = fs.control(line)
                except Exception as err:  # report, keep serving
                    answer = {'error': repr(err)}
                stream.write(json.dumps(answer) + '\n')
                stream.flush()

    while True:
        conn, _ = server.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def main():
    args = sys.argv[1:]
    seed = None
    if '--seed' in args:
        i = args.index('--seed')
        seed = int(args[i + 1])
        del args[i:i + 2]
    if len(args) != 3:
        sys.exit(__doc__)
    backing, mountpoint, sock_path = args
    os.umask(0)  # the kernel already applied the caller's umask to every mode it sends
    fs = LazyFS(backing, seed)
    threading.Thread(target=serve_control, args=(fs, sock_path), daemon=True).start()
    FUSE(fs, mountpoint, foreground=True, nothreads=False, big_writes=True, max_write=131072, fsname='lazyfs')


if __name__ == '__main__':
    main()
