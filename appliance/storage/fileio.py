"""The record store's file I/O: every file operation of the writer and the spool goes through here.

The writer (:mod:`appliance.storage.writer`) and the spool
(:mod:`appliance.storage.spool`) never call :mod:`os` for their files
themselves: they take a :class:`FileIO` (the default, :data:`OS_IO`, is the
operating system's). A test can hand them another one, e.g. a model of a lazy
file system that keeps every write in memory until it is fsynced and can lose
the rest in a simulated power cut (tests/storage/lazyio.py).

The database file itself is SQLite's: Python's sqlite3 offers no VFS, so its
I/O cannot pass through here. What the layer learns about it is when its
content is durable: :meth:`FileIO.database_synced` is called after each commit
the writer acknowledges (under ``synchronous=FULL`` SQLite has fsynced the WAL
by then), so a model can keep the database's files as of that point.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


class FileIO:
    """File operations on file descriptors and paths, as the writer and the spool use them."""

    def open(self, path: Path, flags: int, mode: int = 0o640) -> int:
        return os.open(path, flags, mode)

    def close(self, fd: int) -> None:
        os.close(fd)

    def pread(self, fd: int, n: int, offset: int) -> bytes:
        return os.pread(fd, n, offset)

    def pwrite(self, fd: int, data: bytes, offset: int) -> int:
        return os.pwrite(fd, data, offset)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def size(self, fd: int) -> int:
        return os.fstat(fd).st_size

    def allocate(self, fd: int, size: int) -> None:
        """Reserve `size` bytes for the file (its blocks, not only its length): ENOSPC if they do not fit."""
        try:
            os.posix_fallocate(fd, 0, size)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
            # A file system without fallocate: write the zeros ourselves.
            have = self.size(fd)
            chunk = bytes(1 << 16)
            while have < size:
                have += self.pwrite(fd, chunk[:min(len(chunk), size - have)], have)

    def exists(self, path: Path) -> bool:
        return path.exists()

    def replace(self, src: Path, dst: Path) -> None:
        os.replace(src, dst)

    def unlink(self, path: Path) -> bool:
        """Remove `path`; False if it was not there."""
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
        return True

    def fsync_dir(self, path: Path) -> None:
        """Make the directory's entries (files created, renamed, removed in it) durable."""
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def free_bytes(self, path: Path) -> int:
        """Bytes an unprivileged writer may still use on the file system holding `path`."""
        st = os.statvfs(path)
        return st.f_bavail * st.f_frsize

    def database_synced(self, db_path: Path) -> None:
        """The writer acknowledged a commit to the database at `db_path`: its files as they are now are
        durable. Nothing to do on a real file system."""


OS_IO = FileIO()
"""The operating system's file I/O: the default of the writer and the spool."""
