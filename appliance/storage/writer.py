"""One writer thread for the engine's records.

The control tier hands each period's records to :meth:`RecordWriter.submit`,
which only appends to an in-memory queue: a line never waits for the disk.
The writer commits each period's batch in one transaction on SQLite in WAL
mode with synchronous=FULL, so a committed CDR survives a power cut. If the
database cannot commit (disk full, I/O error), the batch goes to a spool file
allocated in full at start (so appending cannot fail for want of space), an
alarm is raised, and the spool is committed first, in order, once the database
works again (also after a restart).

In virtual time the engine calls :meth:`wait` at the end of every period, so
the clock never passes a period whose records are not safe.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import queue
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, insert, select, text
from sqlalchemy.exc import SQLAlchemyError

from appliance.errors import ApplianceError
from appliance.storage.schema import CDR_COLUMNS, SCHEMA_VERSION, cdr, metadata, queue_event, schema_version

log = logging.getLogger("cicbox.storage")


class StorageError(ApplianceError):
    """The record store could not be opened."""


@dataclass(frozen=True)
class CdrRecord:
    """A call's detail record. All *_ms are integer ms of the scheduler clock."""

    call_id: str
    config_version: int
    trunk: str | None
    ani: str | None
    dnis: str | None
    queue: str | None
    agent: str | None
    disposition: str            # answered | abandoned | no_agent | ivr_hangup | failed
    calendar_start: str
    start_ms: int
    queue_entry_ms: int | None
    answer_ms: int | None
    end_ms: int
    wait_ms: int | None
    talk_ms: int | None


@dataclass(frozen=True)
class QueueEvent:
    """A queue or agent event (enter, connect, abandon, agent_state...)."""

    tick_ms: int
    kind: str
    queue: str | None
    agent: str | None
    call_id: str | None
    detail: str = ""


Record = CdrRecord | QueueEvent
_SPOOL_HEAD = 8          # the spool's used length, little-endian u64, at offset 0


def _sqlite_engine(db_path: Path) -> Engine:
    eng = create_engine(f"sqlite:///{db_path}")

    @event.listens_for(eng, "connect")
    def _pragmas(dbapi_conn: Any, _rec: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=100")
        cur.close()

    return eng


def open_readonly(db_path: Path) -> Engine:
    """A read-only engine for readers (the panel, reports)."""
    return create_engine(f"sqlite:///file:{db_path}?mode=ro&uri=true")


class RecordWriter:
    """Commits batches of records on its own thread; never blocks its callers."""

    def __init__(self, db_path: Path, spool_path: Path, *, spool_bytes: int = 4 << 20) -> None:
        self.db_path = db_path
        self.spool_path = spool_path
        self.spool_bytes = spool_bytes
        self._engine = _sqlite_engine(db_path)
        self._q: queue.Queue[tuple[int, list[Record]] | None] = queue.Queue()
        self._seq = 0
        self._done = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._alarm: str | None = None
        self._stats = {"batches": 0, "transactions": 0, "records": 0, "spooled": 0}

    # -- control tier side ---------------------------------------------------

    def start(self) -> None:
        try:
            metadata.create_all(self._engine)
            with self._engine.begin() as con:
                if con.execute(select(schema_version.c.version)).first() is None:
                    con.execute(insert(schema_version).values(version=SCHEMA_VERSION))
        except SQLAlchemyError as exc:
            raise StorageError(f"{self.db_path}: cannot open the record store: {exc}") from None
        self._open_spool()
        self._thread = threading.Thread(target=self._run, name="cicbox-records", daemon=True)
        self._thread.start()

    def submit(self, records: Sequence[Record], period_tick: int) -> int:
        """Queue one period's records; returns the batch's sequence number (at once)."""
        self._seq += 1
        self._q.put((self._seq, list(records)))
        return self._seq

    def wait(self, seq: int, timeout_s: float | None = None) -> bool:
        """Until batch `seq` is committed or spooled (the virtual clock's end-of-period barrier)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._done >= seq, timeout_s)

    @property
    def committed_seq(self) -> int:
        return self._done

    @property
    def alarm(self) -> str | None:
        return self._alarm

    def stats(self) -> dict[str, int]:
        return dict(self._stats, queued=self._q.qsize())

    def close(self) -> None:
        if self._thread is not None:
            self._q.put(None)
            self._thread.join()
            self._thread = None
        self._engine.dispose()

    # -- writer thread ---------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            seq, records = item
            self._write(records)
            with self._cond:
                self._done = seq
                self._cond.notify_all()

    def _write(self, records: list[Record]) -> None:
        self._stats["batches"] += 1
        pending = self._spooled_records()
        try:
            with self._engine.begin() as con:
                if pending:
                    self._insert(con, pending)
                self._insert(con, records)
            self._stats["transactions"] += 1
            self._stats["records"] += len(records) + len(pending)
            if pending:
                self._truncate_spool()
                log.warning("record store back: %d spooled records committed", len(pending))
                self._alarm = None
        except SQLAlchemyError as exc:
            orig = getattr(exc, "orig", None)
            reason = str(orig) if orig is not None else str(exc)
            self._spool(records)
            n = len(self._spooled_records())
            self._alarm = f"database cannot commit: {reason}; {n} records spooled"
            log.error("record store: %s", self._alarm)

    @staticmethod
    def _insert(con: Any, records: Sequence[Record]) -> None:
        cdrs = [dataclasses.asdict(r) for r in records if isinstance(r, CdrRecord)]
        evs = [dataclasses.asdict(r) for r in records if isinstance(r, QueueEvent)]
        if cdrs:
            con.execute(insert(cdr), cdrs)
        if evs:
            con.execute(insert(queue_event), evs)

    # -- the spool ---------------------------------------------------------------

    def _open_spool(self) -> None:
        new = not self.spool_path.exists()
        fd = os.open(self.spool_path, os.O_RDWR | os.O_CREAT, 0o640)
        try:
            if new or os.fstat(fd).st_size < self.spool_bytes:
                os.posix_fallocate(fd, 0, self.spool_bytes)
            if new:
                os.pwrite(fd, struct.pack("<Q", 0), 0)
                os.fsync(fd)
        finally:
            os.close(fd)
        if self._spooled_records():
            # Records spooled before a restart: the first batch commits them first.
            self._alarm = f"{len(self._spooled_records())} records spooled before a restart"

    def _spooled_records(self) -> list[Record]:
        with open(self.spool_path, "rb") as f:
            used = struct.unpack("<Q", f.read(_SPOOL_HEAD))[0]
            data = f.read(used)
        out: list[Record] = []
        pos = 0
        while pos + 4 <= len(data):
            (n,) = struct.unpack("<I", data[pos:pos + 4])
            obj = json.loads(data[pos + 4:pos + 4 + n])
            out.append(CdrRecord(**obj["cdr"]) if "cdr" in obj else QueueEvent(**obj["event"]))
            pos += 4 + n
        return out

    def _spool(self, records: list[Record]) -> None:
        blob = b""
        for r in records:
            key = "cdr" if isinstance(r, CdrRecord) else "event"
            body = json.dumps({key: dataclasses.asdict(r)}).encode()
            blob += struct.pack("<I", len(body)) + body
        fd = os.open(self.spool_path, os.O_RDWR)
        try:
            used = struct.unpack("<Q", os.pread(fd, _SPOOL_HEAD, 0))[0]
            if _SPOOL_HEAD + used + len(blob) > self.spool_bytes:
                log.error("record spool full: %d records lost", len(records))
                return
            os.pwrite(fd, blob, _SPOOL_HEAD + used)
            os.fsync(fd)
            os.pwrite(fd, struct.pack("<Q", used + len(blob)), 0)
            os.fsync(fd)
            self._stats["spooled"] += len(records)
        finally:
            os.close(fd)

    def _truncate_spool(self) -> None:
        fd = os.open(self.spool_path, os.O_RDWR)
        try:
            os.pwrite(fd, struct.pack("<Q", 0), 0)
            os.fsync(fd)
        finally:
            os.close(fd)


def cdr_digest(db_path: Path) -> str:
    """sha256 over every CDR, ordered by call id, all columns but the row id."""
    eng = open_readonly(db_path)
    h = hashlib.sha256()
    try:
        with eng.connect() as con:
            cols = ", ".join(CDR_COLUMNS)
            for row in con.execute(text(f"SELECT {cols} FROM cdr ORDER BY call_id")):
                h.update(json.dumps(list(row)).encode())
    finally:
        eng.dispose()
    return h.hexdigest()
