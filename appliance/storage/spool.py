"""The record spool: a pre-allocated, checksummed, append-only file of records.

When the database cannot commit, the writer (:mod:`appliance.storage.writer`)
appends each batch here; the file is allocated in full when it is created, so
an append never fails for want of space, only when the spool is full. Every
append is fsynced before the header that counts it is written, and the header
is fsynced too, so a record the header counts survives a power cut.

Layout of the spool file::

    0     header slot A (64 bytes)  magic, format, generation token, header seq,
    512   header slot B             bytes used, record count, crc32
    4096  records: u32 length, u32 crc32, JSON (see cdr.record_to_json) ...

Headers are written alternately to A and B and the valid one with the higher
sequence wins, so a torn header write leaves the previous one in force.
Emptying the spool starts a new generation (a fresh random token, no records):
the file keeps its size and nothing is erased. Reading back (:meth:`Spool.open`)
returns the current generation's records in order; a spool whose header or
records do not check out is renamed aside, never deleted, and the records
before the damage are returned.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

from appliance.storage.cdr import Record, record_from_json, record_to_json
from appliance.storage.errors import RecordError
from appliance.storage.fileio import OS_IO, FileIO

log = logging.getLogger("cicbox.storage")

_MAGIC = b"CICSPOOL"
_FORMAT = 1
_HEADER = struct.Struct("<8sI16sQQQ")      # magic, format, token, header seq, bytes used, record count
_CRC = struct.Struct("<I")
_SLOTS = (0, 512)
_DATA = 4096
_FRAME = struct.Struct("<II")              # record length, crc32 of the record
MIN_SPOOL_BYTES = 64 << 10
"""The smallest spool the writer accepts: the headers, and room for some hundreds of records."""


class SpoolDamagedError(Exception):
    """The spool file's headers or records do not check out; `records` are those read before the damage."""

    def __init__(self, why: str, records: list[Record] | None = None) -> None:
        super().__init__(why)
        self.records = records or []


class Spool:
    """A pre-allocated, append-only file of records; the writer thread's alone."""

    def __init__(self, path: Path, size: int, io: FileIO = OS_IO) -> None:
        self.path = path
        self.io = io
        self.size = size
        self.token = b""
        self.used = 0
        self.count = 0
        self._hseq = 0
        self._fd = -1
        self.damaged: Path | None = None
        self.records_token = b""     # the generation the records returned by open() belong to
        self.fsyncs = 0              # fsyncs made of the file and of its directory

    # Opening

    def open(self) -> list[Record]:
        """Open (creating and pre-allocating if needed); return the records of the current generation.

        A damaged spool is renamed aside (kept, never deleted) and a fresh one is
        created; the records it still yields are returned and SpoolDamagedError is not
        raised, but :attr:`damaged` says where the old file went.

        OSError if the file cannot be created or allocated (ENOSPC...): nothing is left
        behind then (the temporary file of a creation is removed, also one an earlier
        run left).
        """
        io = self.io
        if io.unlink(self._tmp):
            log.warning("record spool: removed %s, left by a creation that did not finish", self._tmp)
        if not io.exists(self.path):
            self._create()
            return []
        self._fd = io.open(self.path, os.O_RDWR)
        try:
            if io.size(self._fd) < self.size:
                io.allocate(self._fd, self.size)
                self._fsync()
            self.size = max(self.size, io.size(self._fd))
            records = self._read()
            self.records_token = self.token
            return records
        except SpoolDamagedError as exc:
            records = exc.records
            io.close(self._fd)
            self._fd = -1
            aside = self.path.with_name(f"{self.path.name}.damaged-{os.urandom(4).hex()}")
            io.replace(self.path, aside)
            log.error("record spool %s is damaged (%s); kept as %s, %d records recovered",
                      self.path, exc, aside, len(records))
            self.damaged = aside
            self.records_token = self.token
            self._create()
            return list(records)
        except BaseException:
            if self._fd >= 0:
                io.close(self._fd)
                self._fd = -1
            raise

    @property
    def _tmp(self) -> Path:
        return self.path.with_name(self.path.name + ".new")

    def _create(self) -> None:
        """Allocate the file in full under a temporary name, write its first header, then rename it in
        place and make the rename durable. On failure the temporary file is removed."""
        io = self.io
        tmp = self._tmp
        fd = io.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            io.allocate(fd, self.size)
            self._fd = fd
            self._new_generation()
            io.replace(tmp, self.path)
        except BaseException:
            io.close(fd)
            self._fd = -1
            try:
                io.unlink(tmp)
            except OSError as exc:
                log.error("record spool: cannot remove %s: %s", tmp, exc)
            raise
        io.fsync_dir(self.path.parent)
        self.fsyncs += 1

    def _read(self) -> list[Record]:
        best: tuple[int, bytes, int, int] | None = None
        for off in _SLOTS:
            raw = self.io.pread(self._fd, _HEADER.size + _CRC.size, off)
            if len(raw) < _HEADER.size + _CRC.size:
                continue
            (crc,) = _CRC.unpack_from(raw, _HEADER.size)
            if zlib.crc32(raw[:_HEADER.size]) != crc:
                continue
            magic, fmt, token, hseq, used, count = _HEADER.unpack_from(raw)
            if magic != _MAGIC or fmt != _FORMAT:
                continue
            if best is None or hseq > best[0]:
                best = (hseq, token, used, count)
        if best is None:
            raise SpoolDamagedError("no valid header")
        self._hseq, self.token, self.used, self.count = best
        records: list[Record] = []
        data = self.io.pread(self._fd, self.used, _DATA) if self.used else b""
        pos = 0
        while pos < len(data):
            if pos + _FRAME.size > len(data):
                raise SpoolDamagedError(f"record {len(records)} cut short", records)
            n, crc = _FRAME.unpack_from(data, pos)
            body = data[pos + _FRAME.size:pos + _FRAME.size + n]
            if len(body) != n or zlib.crc32(body) != crc:
                raise SpoolDamagedError(f"record {len(records)} fails its checksum", records)
            try:
                records.append(record_from_json(body))
            except RecordError as exc:
                raise SpoolDamagedError(f"record {len(records)}: {exc}", records) from None
            pos += _FRAME.size + n
        if len(records) != self.count:
            raise SpoolDamagedError(f"header counts {self.count} records, found {len(records)}", records)
        return records

    # Writing

    def _write_header(self) -> None:
        self._hseq += 1
        head = _HEADER.pack(_MAGIC, _FORMAT, self.token, self._hseq, self.used, self.count)
        self.io.pwrite(self._fd, head + _CRC.pack(zlib.crc32(head)), _SLOTS[self._hseq % 2])
        self._fsync()

    def _fsync(self) -> None:
        self.io.fsync(self._fd)
        self.fsyncs += 1

    def _new_generation(self) -> None:
        self.token = os.urandom(16)
        self.used = 0
        self.count = 0
        self._write_header()

    def append(self, records: Sequence[Record]) -> bool:
        """Append durably; False (and nothing written) if they do not fit. OSError on an I/O error."""
        blob = bytearray()
        for r in records:
            body = record_to_json(r)
            blob += _FRAME.pack(len(body), zlib.crc32(body)) + body
        if _DATA + self.used + len(blob) > self.size:
            return False
        self.io.pwrite(self._fd, bytes(blob), _DATA + self.used)
        self._fsync()
        self.used += len(blob)
        self.count += len(records)
        self._write_header()
        return True

    def reset(self) -> None:
        """Empty the spool logically: a new generation with no records (the file keeps its size)."""
        self._new_generation()

    def close(self) -> None:
        if self._fd >= 0:
            self.io.close(self._fd)
            self._fd = -1

