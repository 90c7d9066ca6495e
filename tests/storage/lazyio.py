"""A lazy file system, in process, under the writer's I/O layer (appliance.storage.fileio), and a power cut.

:class:`LazyIO` keeps the spool's files in memory: what a write changes is seen by
reads at once but is durable only once the file is fsynced; a file created,
renamed or removed changes its directory only once the directory is fsynced
(``fsync_dir``). :meth:`LazyIO.power_cut` drops everything not durable: each
file's content goes back to its last fsync, each directory's names to their last
fsync (so a created or renamed file whose directory was not fsynced disappears,
or is back under its old name).

The cut itself: ``cut_after(n)`` makes the n-th I/O operation from now the last.
That operation may or may not take effect (seeded): a write lands in part (a
random prefix: a torn write), an fsync, a rename or a directory fsync happens or
not. From then on every operation raises :class:`PowerCut` (a BaseException: the
writer thread dies as the machine would; nothing catches it as an I/O error).

The database: SQLite does its own I/O on real files (Python's sqlite3 has no
VFS). The model copies the database's files (``cicbox.db``, ``-wal``) at each
commit the writer acknowledges (``database_synced``; under synchronous=FULL the
WAL is fsynced by then) and restores them at the power cut, removing ``-shm``
(shared memory, never durable). What this covers: the loss of every commit the
writer had not acknowledged, whatever SQLite did after the last acknowledgement.
What it does not: a torn or half-written WAL frame or page inside SQLite's own
I/O (SQLite's checksums are not put to the test), reordering of SQLite's writes
between its fsyncs, and the files outside the writer (boots counter,
configuration store). A cut that falls on the acknowledgement itself keeps the
commit or loses it (seeded coin), so a commit durable but never acknowledged to
the writer (its spool not yet emptied) is among the cases.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from appliance.storage.fileio import FileIO


class PowerCut(BaseException):
    """The power went off: the calling thread stops here."""


@dataclass
class _File:
    data: bytearray = field(default_factory=bytearray)
    synced: bytes = b""


class LazyIO(FileIO):
    """A lazy file system for the spool's files, and snapshots of the database at each acknowledged commit."""

    def __init__(self, seed: int = 0, capacity: int | None = None) -> None:
        self.rng = random.Random(seed)
        self.capacity = capacity        # bytes all files may hold (ENOSPC past it); None: no bound
        self.names: dict[Path, _File] = {}          # what the running system sees
        self.durable_names: dict[Path, _File] = {}  # what a power cut leaves
        self.fds: dict[int, _File] = {}
        self._next_fd = 1000
        self.ops = 0
        self._cut_at: int | None = None
        self.dead = False
        self.cuts = 0
        self.db_images: dict[Path, dict[str, bytes | None]] = {}

    # -- the cut ---------------------------------------------------------------------

    def cut_after(self, n: int) -> None:
        """The power fails at the n-th I/O operation from now (n >= 1)."""
        self._cut_at = self.ops + n

    def _op(self) -> bool:
        """Count one operation; True if it is the one the power fails at (it may take effect or not)."""
        if self.dead:
            raise PowerCut
        self.ops += 1
        if self._cut_at is not None and self.ops >= self._cut_at:
            self.dead = True
            self.cuts += 1
            return True
        return False

    def _cut_maybe(self, cut: bool) -> bool:
        """At the cut: whether the operation reached the disk (seeded coin)."""
        return not cut or self.rng.random() < 0.5

    def power_cut(self) -> None:
        """Drop everything not durable (call it once nothing runs on these files any more) and power on."""
        self.dead = False
        self._cut_at = None
        self.fds.clear()
        self.names = dict(self.durable_names)
        for f in self.names.values():
            f.data = bytearray(f.synced)
        for db, image in self.db_images.items():
            for suffix, content in image.items():
                path = Path(str(db) + suffix)
                if content is None:
                    path.unlink(missing_ok=True)
                else:
                    path.write_bytes(content)
            Path(str(db) + "-shm").unlink(missing_ok=True)

    # -- files -------------------------------------------------------------------------

    def _used(self) -> int:
        return sum(len(f.data) for f in {id(f): f for f in self.names.values()}.values())

    def _room(self, f: _File, new_len: int) -> None:
        if self.capacity is not None and self._used() - len(f.data) + new_len > self.capacity:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def open(self, path: Path, flags: int, mode: int = 0o640) -> int:
        cut = self._op()
        f = self.names.get(path)
        if f is None:
            if not flags & os.O_CREAT:
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
            f = _File()
            if self._cut_maybe(cut):
                self.names[path] = f
        elif flags & os.O_TRUNC:
            f.data = bytearray()
        if cut:
            raise PowerCut
        self._next_fd += 1
        self.fds[self._next_fd] = f
        return self._next_fd

    def close(self, fd: int) -> None:
        self.fds.pop(fd, None)          # never fails, also after the cut

    def pread(self, fd: int, n: int, offset: int) -> bytes:
        if self._op():
            raise PowerCut
        return bytes(self.fds[fd].data[offset:offset + n])

    def pwrite(self, fd: int, data: bytes, offset: int) -> int:
        cut = self._op()
        f = self.fds[fd]
        if cut:
            data = data[:self.rng.randrange(len(data) + 1)]     # a torn write: some prefix landed
        end = offset + len(data)
        if end > len(f.data):
            self._room(f, end)
            f.data.extend(bytes(end - len(f.data)))
        f.data[offset:end] = data
        if cut:
            raise PowerCut
        return len(data)

    def fsync(self, fd: int) -> None:
        cut = self._op()
        if self._cut_maybe(cut):
            f = self.fds[fd]
            f.synced = bytes(f.data)
        if cut:
            raise PowerCut

    def size(self, fd: int) -> int:
        if self._op():
            raise PowerCut
        return len(self.fds[fd].data)

    def allocate(self, fd: int, size: int) -> None:
        cut = self._op()
        f = self.fds[fd]
        if size > len(f.data):
            self._room(f, size)
            if self._cut_maybe(cut):
                f.data.extend(bytes(size - len(f.data)))
        if cut:
            raise PowerCut

    def exists(self, path: Path) -> bool:
        if self._op():
            raise PowerCut
        return path in self.names

    def replace(self, src: Path, dst: Path) -> None:
        cut = self._op()
        if src not in self.names:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(src))
        if self._cut_maybe(cut):
            self.names[dst] = self.names.pop(src)
        if cut:
            raise PowerCut

    def unlink(self, path: Path) -> bool:
        cut = self._op()
        had = path in self.names
        if had and self._cut_maybe(cut):
            del self.names[path]
        if cut:
            raise PowerCut
        return had

    def fsync_dir(self, path: Path) -> None:
        cut = self._op()
        if self._cut_maybe(cut):
            for p in [p for p in self.durable_names if p.parent == path]:
                del self.durable_names[p]
            for p, f in self.names.items():
                if p.parent == path:
                    self.durable_names[p] = f
        if cut:
            raise PowerCut

    def free_bytes(self, path: Path) -> int:
        if self._op():
            raise PowerCut
        if self.capacity is not None:
            return max(0, self.capacity - self._used())
        return shutil.disk_usage(path).free

    # -- the database ----------------------------------------------------------------------

    def database_synced(self, db_path: Path) -> None:
        cut = self._op()
        if self._cut_maybe(cut):
            image: dict[str, bytes | None] = {}
            for suffix in ("", "-wal"):
                p = Path(str(db_path) + suffix)
                image[suffix] = p.read_bytes() if p.exists() else None
            self.db_images[db_path] = image
        if cut:
            raise PowerCut

    def durable_files(self) -> dict[Path, bytes]:
        """What a power cut now would leave of the spool's files."""
        return {p: f.synced for p, f in self.durable_names.items()}
