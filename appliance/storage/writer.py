"""One writer thread for the engine's records.

The control tier hands each period's records to :meth:`RecordWriter.submit`,
which checks them and appends them to an in-memory queue: it never blocks and
never touches the disk, so a line never waits for the database. The writer
thread commits each period's batch in one transaction on SQLite in WAL mode
with synchronous=FULL, so a committed record survives a power cut. When it
falls behind, it commits the queued periods together (a period is never split).

Commits on wait (``commit_on_wait=True``, the engine's choice in virtual time).
The thread then commits nothing until the caller hands it the batches gathered
so far (:meth:`RecordWriter.hand_over`, or :meth:`wait` for a batch not yet
handed over, or :meth:`close`): they are committed together, in order, in one
transaction (at most :attr:`MAX_COALESCE` periods to a transaction), while the
caller goes on. A wait waits for everything handed over, and what the writer
reports (``committed_seq``, ``health`` and so the alarms, ``backpressure``,
``repeated_ids``, ``stats()``) is taken at each wait, when the thread is idle, and
stays so until the next: how many commits and fsyncs there are, and what the
caller sees of them, depend only on when it hands over and waits, never on how
fast this thread is. The engine hands over and waits at fixed points of its clock
(about once a virtual second: appliance/engine.py, ``COMMIT_EVERY_MS``). What is
stored and its order are the same as with one commit per period (a call's mark
replaced twice in one commit is replaced once: the same row, another row id).

Counts. :meth:`RecordWriter.stats` counts ``commits`` (every commit the writer made
that wrote to the database: the schema's at open, then one per transaction of
records; under synchronous=FULL each is one fsync of the WAL; SQLite's checkpoints,
every 1000 WAL pages, add their own), ``spool_fsyncs`` (the spool's fsyncs of its
file and its directory) and ``fsyncs``, their sum.

If the database cannot commit (disk full, I/O error), the batch is appended to
the spool (:mod:`appliance.storage.spool`: a file allocated in full at start,
so appending cannot fail for want of space, with its own record framing and
checksums); an alarm is raised. Every later batch first retries the spooled
records, in order, in the same transaction, and the spool is emptied once they
are in; a restart replays a non-empty spool. The ``spool_mark`` row, written in that
same transaction, counts how many records of the spool's current generation
the database already holds, so a crash between the commit and the emptying of
the spool never stores a record twice. Only if the spool itself is full (or
unwritable) are records held in memory, and the alarm says they are not safe.

Health. The writer reports its state as conditions by kind (:attr:`RecordWriter.health`,
each kind an alarm of the engine, docs/control-socket.md): ``records_commit_failing``,
``database_locked``, ``records_spooled``, ``records_held_in_memory``,
``records_backpressure``, ``spool_unavailable``, ``spool_damaged``,
``disk_space_low``. Each change (raised or cleared) is one log line; a detail that
only changes (a count) is not logged again. The spool that could not be opened or
allocated is tried again every :data:`SPOOL_RETRY_MS` of period ticks (the
scheduler's clock, as the batches carry it: no wall-clock timer), and its
temporary file is removed each time it fails.

Records held in memory are bounded by ``max_held_records``: the oldest are never
dropped, at any count; past the bound :attr:`RecordWriter.backpressure` is true (the
``records_backpressure`` condition) and the engine refuses new calls (the trunks
answer with congestion and release) until the held records are committed or
spooled. Calls in progress go on and their records are held too, so the bound is
exceeded by at most the records of the calls in progress.

All the writer's and the spool's file I/O goes through one
:class:`appliance.storage.fileio.FileIO` (``io``), which tests replace.

A database locked by another writer is not a fault: the writer waits for it
(the queue grows, the lines do not notice), and only after a long lock does it
spool. In virtual time the control loop hands over and waits at fixed points of
its clock (see "Commits on wait" above).

Marks of calls in progress and agent sessions (:mod:`appliance.storage.marks`)
are records of the same batches: committed in the period's transaction, spooled
with it when the database cannot commit. A CDR whose call id is already stored is
kept under a suffixed id (``<id>.dup1``, ``.dup2``...), never dropped; the writer
lists each such repeat (:attr:`RecordWriter.repeated_ids`) and the engine raises
the ``record_id_repeated`` alarm. At open, the schema is migrated if older
(:func:`appliance.storage.schema.migrate_schema`) and :attr:`RecordWriter.startup`
says what the last run left: marks of lost calls, logged-in agents, the highest boot.
"""

from __future__ import annotations

import dataclasses
import logging
import operator
import queue
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, delete, event, insert, select
from sqlalchemy.exc import SQLAlchemyError

from appliance.storage.cdr import CdrRecord, Event, Record, check_record, event_values, record_to_json
from appliance.storage.errors import StoreOpenError, WriterStateError
from appliance.storage.fileio import OS_IO, FileIO
from appliance.storage.marks import Startup, apply_marks, read_startup
from appliance.storage.schema import (
    CDR_COLUMNS,
    EVENT_COLUMNS,
    ID_LEN,
    SCHEMA_VERSION,
    cdr,
    event_table,
    insert_rows,
    migrate_schema,
    spool_mark,
)
from appliance.storage.spool import MIN_SPOOL_BYTES, Spool

log = logging.getLogger("cicbox.storage")

_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6


# -- the database ----------------------------------------------------------------------------------------------

BUSY_TIMEOUT_MS = 1000
"""How long one SQLite statement waits for a lock held by another connection."""


def _writer_engine(db_path: Path) -> Engine:
    """An engine whose connections are in WAL mode, synchronous=FULL, with explicit BEGIN IMMEDIATE."""
    engine = create_engine(f"sqlite:///{db_path}")

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None       # the driver must not BEGIN on its own
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            mode = cur.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreOpenError(f"{db_path}: the database refuses WAL mode (journal_mode is {mode})")
            cur.execute("PRAGMA synchronous=FULL")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # Take the write lock first, so a busy database shows up here and not halfway through a batch.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _is_busy(exc: SQLAlchemyError) -> bool:
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    text = str(orig if orig is not None else exc).lower()
    return "database is locked" in text or "database is busy" in text or "database table is locked" in text


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    lines = str(orig if orig is not None else exc).splitlines()
    return (lines[0] if lines else "") or type(exc).__name__


# -- the writer ------------------------------------------------------------------------------------------------

_Batch = tuple[int, int, list[Record]]     # seq, period tick, records
_Item = list[_Batch] | None                # one hand-off to the thread (None: close)

DEFAULT_FREE_FLOOR_BYTES = 16 << 20
"""Below this much free space on the database's file system, the ``disk_space_low`` condition is raised."""
DEFAULT_MAX_HELD_RECORDS = 20_000
"""Held records (neither committed nor spooled) past which the writer asks for backpressure (a few MiB)."""
SPOOL_RETRY_MS = 60_000
"""A spool that could not be opened or allocated is tried again this often (period ticks, ms)."""

HEALTH_KINDS = ("records_commit_failing", "database_locked", "records_spooled", "records_held_in_memory",
                "records_backpressure", "spool_unavailable", "spool_damaged", "disk_space_low")
"""The writer's conditions, in the order :attr:`RecordWriter.alarm` lists them."""
RETRY_S_DEFAULT = 5.0
_CDR_VALUES = operator.attrgetter(*CDR_COLUMNS)       # a record's values in its table's column order


@dataclasses.dataclass(frozen=True)
class _View:
    """What the writer reports (commit_on_wait: as it was when the last wait returned)."""

    processed: int
    durable: int
    health: dict[str, str]
    backpressure: bool
    repeated: tuple[tuple[str, str], ...]
    stats: dict[str, int]       # stats() but for submitted_seq and queued_batches


class RecordWriter:
    """Commits batches of records on its own thread; never blocks its callers.

    ``submit``, ``hand_over`` and ``wait`` are for one control thread; ``alarm``,
    ``committed_seq`` and ``stats`` may be read from any thread.
    """

    RETRY_S: float | None = 5.0
    """While records sit in the spool, retry committing them this often even if no batch comes."""
    LOCKED_RETRIES = 30
    """After this many busy timeouts in a row (about 30 s) a lock counts as a fault and batches are spooled."""
    MAX_COALESCE = 256
    """At most this many periods are committed together (queued when the writer is behind, or handed over)."""

    def __init__(self, db_path: Path, spool_path: Path, *, spool_bytes: int = 4 << 20,
                 free_floor_bytes: int = DEFAULT_FREE_FLOOR_BYTES,
                 max_held_records: int = DEFAULT_MAX_HELD_RECORDS,
                 idle_retry_s: float | None = RETRY_S_DEFAULT, io: FileIO = OS_IO,
                 commit_on_wait: bool = False) -> None:
        """`free_floor_bytes`: the free space below which ``disk_space_low`` is raised (0: never);
        `max_held_records`: past this many held records, :attr:`backpressure`; `idle_retry_s`:
        with a backlog and no batch coming, retry this often (wall clock; None: only when a batch,
        empty or not, comes: the engine sends one each second of its clock); `io`: the file I/O;
        `commit_on_wait`: commit only what the caller hands over (:meth:`hand_over`, :meth:`wait`,
        :meth:`close`), the batches gathered until then together, and report what was done as of
        each wait (virtual time; `idle_retry_s` is then not used: retries come with hand-overs)."""
        if spool_bytes < MIN_SPOOL_BYTES:
            raise ValueError(f"spool_bytes must be at least {MIN_SPOOL_BYTES}, not {spool_bytes}")
        if free_floor_bytes < 0 or max_held_records < 1:
            raise ValueError("free_floor_bytes must be >= 0 and max_held_records >= 1")
        self.db_path = Path(db_path)
        self.spool_path = Path(spool_path)
        self.spool_bytes = spool_bytes
        self.free_floor_bytes = free_floor_bytes
        self.max_held_records = max_held_records
        self.RETRY_S = None if commit_on_wait else idle_retry_s
        self.io = io
        self.commit_on_wait = commit_on_wait
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._gathered: list[_Batch] = []   # commit_on_wait: submitted, not yet handed to the thread
        self._view: _View | None = None     # commit_on_wait: what the accessors report, set by each wait
        self._cond = threading.Condition()
        self._submitted = 0        # last seq handed out
        self._handed = 0           # last seq handed to the thread
        self._processed = 0        # last seq the writer has dealt with (committed, spooled or held)
        self._durable = 0          # last seq such that it and every earlier batch are committed or spooled
        self._in_db = 0            # last seq such that it and every earlier batch are in the database
        self._last_tick = 0        # period tick of the last batch processed
        self._durable_tick = 0     # period tick of batch committed_seq
        self._started = False
        self._closing = False
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._open_error: BaseException | None = None
        self._health: dict[str, str] = {}     # condition kind -> what is known now
        self._backpressure = False
        self._pragmas: dict[str, Any] = {}
        self._stats = {
            "transactions": 0, "records_committed": 0, "records_spooled": 0, "busy_retries": 0,
            "commit_failures": 0, "ids_repeated": 0, "commits": 0,
        }
        self._spool_fsyncs = 0                    # fsyncs of spools given up (the one open counts its own)
        self._repeated: list[tuple[str, str]] = []   # (call id already stored, the id the repeat was kept as)
        self.startup = Startup()                     # what the database held at open (set before start() returns)
        # Writer-thread state.
        self._engine: Engine | None = None
        self._conn: Connection | None = None
        self._spool: Spool | None = None
        self._spool_pending: list[Record] = []   # in the spool file, not yet in the database
        self._spool_base = 0                     # records of the spool's generation already in the database
        self._held: list[Record] = []            # neither in the database nor in the spool (spool full)
        self._spool_retry_at: int | None = None  # period tick of the next try to open the spool
        self._why_held = "spool full"            # why records are held, as the alarm says
        self._spool_full = False                 # an append did not fit: none is tried until it is emptied

    # -- control tier side -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the database and the spool on the writer thread and start it.

        Blocks until they are open (a start-up step, not a per-call one); raises
        StoreOpenError if the database cannot be opened. A non-empty spool left by
        an earlier run is committed first.
        """
        if self._started:
            raise WriterStateError("the record writer is already started")
        self._started = True
        self._thread = threading.Thread(target=self._run, name="cicbox-records", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._open_error is not None:
            self._thread.join()
            if isinstance(self._open_error, StoreOpenError):
                raise self._open_error
            raise StoreOpenError(f"{self.db_path}: cannot open the record database: {_reason(self._open_error)}") \
                from self._open_error
        if self.commit_on_wait:
            self._publish()

    def submit(self, records: Sequence[Record], period_tick: int) -> int:
        """Queue one control period's records (`period_tick`: the period's scheduler time, ms);
        returns the batch's sequence number at once.

        Checks every record (RecordError for anything but a CdrRecord, Event,
        CallMark or AgentSession) and copies the list; no disk access here.
        """
        if not self._started or self._closing:
            raise WriterStateError("the record writer is " + ("closed" if self._closing else "not started"))
        batch = list(records)
        for r in batch:
            check_record(r)
        self._submitted += 1
        if self.commit_on_wait:
            self._gathered.append((self._submitted, period_tick, batch))
        else:
            self._handed = self._submitted
            self._queue.put([(self._submitted, period_tick, batch)])
        return self._submitted

    def wait(self, seq: int, timeout_s: float | None = None) -> bool:
        """Block until batch `seq` (and every earlier one) is committed or spooled.

        The virtual clock's barrier. With `commit_on_wait`: if `seq` has not yet been handed
        to the thread, every batch gathered goes to it now (:meth:`hand_over`); the wait is
        then for everything handed over, and what the writer reports (:attr:`committed_seq`,
        :attr:`health`, :meth:`stats`...) is as it is now, until the next wait. False if
        `timeout_s` passed first, or if the batch could be neither committed nor spooled
        (spool full or unwritable: it is held in memory and retried; see :attr:`alarm`).
        """
        if not 0 <= seq <= self._submitted:
            raise WriterStateError(f"batch {seq} was never submitted (last is {self._submitted})")
        if seq > self._handed:
            self.hand_over()
        target = self._handed if self.commit_on_wait else seq
        with self._cond:
            done = self._cond.wait_for(lambda: self._processed >= target or self._stopped, timeout_s)
        if self.commit_on_wait and done:
            self._publish()      # the thread is idle: nothing is handed over that it has not dealt with
        with self._cond:
            return self._durable >= seq

    def hand_over(self) -> None:
        """commit_on_wait: hand the batches gathered since the last hand-over to the thread, to be
        committed together (in order, at most MAX_COALESCE periods a transaction) while the caller
        goes on; a later :meth:`wait` waits for them. Nothing to do without `commit_on_wait`."""
        if self._gathered:
            self._handed = self._gathered[-1][0]
            self._queue.put(self._gathered)
            self._gathered = []

    @property
    def handed_seq(self) -> int:
        """The last batch handed to the thread (without commit_on_wait: the last submitted)."""
        return self._handed

    def _publish(self) -> None:
        """commit_on_wait: take what the writer reports from its state now (the thread being idle)."""
        spool = self._spool
        with self._cond:
            spool_fsyncs = self._spool_fsyncs + (spool.fsyncs if spool is not None else 0)
            self._view = _View(
                processed=self._processed, durable=self._durable, health=dict(self._health),
                backpressure=self._backpressure, repeated=tuple(self._repeated),
                stats=dict(self._stats, spool_fsyncs=spool_fsyncs, fsyncs=self._stats["commits"] + spool_fsyncs,
                           committed_seq=self._durable, committed_tick=self._durable_tick,
                           in_database_seq=self._in_db, spool_records=len(self._spool_pending),
                           held_records=len(self._held)))

    @property
    def submitted_seq(self) -> int:
        """The last batch submitted (0: none yet)."""
        return self._submitted

    @property
    def committed_seq(self) -> int:
        """The last batch that, with every earlier one, is durable: committed, or in the spool."""
        view = self._view
        return self._durable if view is None else view.durable

    @property
    def alarm(self) -> str | None:
        """Every condition's detail, joined by "; " (None when all is well): a one-line summary."""
        health = self.health
        return "; ".join(health[k] for k in HEALTH_KINDS if k in health) or None

    @property
    def health(self) -> dict[str, str]:
        """The conditions raised now, by kind (HEALTH_KINDS), each with what is known now."""
        view = self._view
        if view is not None:
            return dict(view.health)
        with self._cond:
            return dict(self._health)

    @property
    def backpressure(self) -> bool:
        """The last resort: more than ``max_held_records`` records are held in memory, not safe; new
        calls should be refused until they are committed or spooled."""
        view = self._view
        return self._backpressure if view is None else view.backpressure

    @property
    def stopped(self) -> bool:
        """The writer thread has ended (closed, or stopped by an unexpected error)."""
        return self._stopped

    @property
    def repeated_ids(self) -> list[tuple[str, str]]:
        """Each CDR that came with a call id already stored: (that id, the id it was kept under)."""
        view = self._view
        if view is not None:
            return list(view.repeated)
        with self._cond:
            return list(self._repeated)

    @property
    def pragmas(self) -> dict[str, Any]:
        """journal_mode and synchronous as read back on the writer's connection when it opened."""
        return dict(self._pragmas)

    def stats(self) -> dict[str, int]:
        """Counters for the status page: sequence numbers, queue length, transactions, commits and fsyncs,
        spool and memory use."""
        view = self._view
        if view is not None:
            return dict(view.stats, submitted_seq=self._submitted, queued_batches=self._submitted - view.processed)
        spool = self._spool
        with self._cond:
            spool_fsyncs = self._spool_fsyncs + (spool.fsyncs if spool is not None else 0)
            return dict(
                self._stats,
                spool_fsyncs=spool_fsyncs,
                fsyncs=self._stats["commits"] + spool_fsyncs,
                submitted_seq=self._submitted,
                committed_seq=self._durable,
                committed_tick=self._durable_tick,
                in_database_seq=self._in_db,
                queued_batches=self._submitted - self._processed,
                spool_records=len(self._spool_pending),
                held_records=len(self._held),
            )

    def close(self) -> None:
        """Commit (or spool) everything submitted, then stop the thread. Idempotent."""
        if self._closing:
            return
        self._closing = True
        if self._thread is None:
            return
        self.hand_over()
        self._queue.put(None)
        self._thread.join()
        if self.commit_on_wait:
            self._publish()

    # -- writer thread -----------------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._open()
        except BaseException as exc:  # reported to start() in the caller's thread
            self._open_error = exc
            self._dispose()
            self._ready.set()
            return
        try:
            # What an earlier run left in the spool is committed first: with commit_on_wait before
            # start() returns (so what the caller sees never depends on this thread's speed), else at once.
            replay = bool(self._spool_pending or self._held)
            if replay and self.commit_on_wait:
                self._step([])
            self._ready.set()
            if replay and not self.commit_on_wait:
                self._step([])
            self._loop()
        except BaseException:
            log.critical("record writer stopped by an unexpected error", exc_info=True)
            self._set("records_commit_failing", "record writer stopped by an unexpected error; records are not stored")
        finally:
            self._ready.set()
            self._dispose()
            with self._cond:
                self._stopped = True
                self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            backlog = bool(self._spool_pending or self._held)
            try:
                item = self._queue.get(timeout=self.RETRY_S) if backlog and self.RETRY_S else self._queue.get()
            except queue.Empty:
                self._step([])            # the fault may have cleared
                continue
            group: list[_Batch] = []
            stop = item is None
            if item is not None:
                group += item
            # Behind (one batch a hand-off): the queued periods together. With commit_on_wait a
            # hand-off is the whole group, so what is committed together never depends on timing.
            while not stop and not self.commit_on_wait and len(group) < self.MAX_COALESCE:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                else:
                    group += more
            for i in range(0, len(group), self.MAX_COALESCE):
                self._step(group[i:i + self.MAX_COALESCE])
            if not group and stop and (self._spool_pending or self._held):
                self._step([])
            if stop:
                if self._held:
                    log.critical("record writer closed with %d records neither committed nor spooled",
                                 len(self._held))
                return

    def _open(self) -> None:
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._engine = _writer_engine(self.db_path)
        conn = self._connect()
        # Read back on the driver connection itself (a statement through SQLAlchemy would begin a transaction).
        cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            self._pragmas = {name: cur.execute(f"PRAGMA {name}").fetchone()[0]
                             for name in ("journal_mode", "synchronous")}
        finally:
            cur.close()
        with conn.begin():
            found = migrate_schema(conn)
        with self._cond:
            self._stats["commits"] += 1
        self.io.database_synced(self.db_path)
        if found and found < SCHEMA_VERSION:
            log.warning("record database migrated in place from schema version %d to %d (its records kept)",
                        found, SCHEMA_VERSION)
        elif found:
            log.info("record database opened (schema version %d)", found)
        self._open_spool(conn)
        self.startup = read_startup(conn, self._spool_pending + self._held)

    def _open_spool(self, conn: Connection) -> None:
        """Open the spool (creating and allocating it if need be) and take up the records it holds.

        If it cannot be opened or allocated, ``spool_unavailable`` is raised and the spool is tried
        again :data:`SPOOL_RETRY_MS` later (period ticks); the batches are committed meanwhile,
        and held in memory while the database cannot commit.
        """
        spool = Spool(self.spool_path, self.spool_bytes, self.io)
        try:
            records = spool.open()
            # Records of this spool generation the database already holds (a crash came between the
            # commit and the emptying of the spool) are not replayed.
            with conn.begin():
                mark = conn.execute(select(spool_mark.c.records)
                                    .where(spool_mark.c.token == spool.records_token.hex())).scalar()
        except (OSError, SQLAlchemyError) as exc:
            spool.close()
            with self._cond:
                self._spool_fsyncs += spool.fsyncs
            self._spool_retry_at = self._last_tick + SPOOL_RETRY_MS
            self._set("spool_unavailable", f"record spool unavailable: {_reason(exc)} "
                      f"(tried again every {SPOOL_RETRY_MS // 1000} s)")
            return
        self._spool = spool
        self._spool_retry_at = None
        self._set("spool_unavailable", None)
        records = records[min(int(mark or 0), len(records)):]
        if spool.damaged is not None:
            # The recovered records go into the fresh spool (else they are held until they commit).
            try:
                if records and spool.append(records):
                    self._spool_pending += records
                    records = []
            except OSError as exc:
                log.error("record spool: cannot re-spool recovered records: %s", exc)
            self._held = records + self._held
            self._set("spool_damaged", f"record spool was damaged (kept as {spool.damaged.name}); "
                      f"{len(records) + len(self._spool_pending)} records recovered")
            self._update_backlog()
            return
        self._spool_base = spool.count - len(records)
        self._spool_pending = records + self._spool_pending
        if records:
            log.warning("record spool holds %d records from before a restart; committing them first",
                        len(records))
            self._update_backlog()
        elif spool.count:
            spool.reset()
            self._spool_base = 0

    def _retry_spool(self) -> None:
        """Try the spool again, once its retry time (period ticks) has come."""
        if self._spool is None and self._spool_retry_at is not None and self._last_tick >= self._spool_retry_at:
            try:
                conn = self._connect()
            except Exception as exc:   # no database either: try again later
                self._spool_retry_at = self._last_tick + SPOOL_RETRY_MS
                log.debug("record spool: no database connection to open it with: %s", exc)
                return
            self._open_spool(conn)

    # -- health ------------------------------------------------------------------------------------------------

    def _set(self, kind: str, detail: str | None) -> None:
        """Raise `kind` with `detail`, update its detail, or clear it (None). One log line per change."""
        with self._cond:
            had = kind in self._health
            if detail is None:
                if not had:
                    return
                del self._health[kind]
            else:
                self._health[kind] = detail
                if had:
                    return
        if detail is None:
            log.warning("record store: %s cleared", kind)
        else:
            log.error("record store: %s: %s", kind, detail)

    def _update_backlog(self) -> None:
        """The conditions that follow from the spool and the held records."""
        n = len(self._spool_pending)
        self._set("records_spooled", f"{n} records spooled" if n else None)
        held = len(self._held)
        self._set("records_held_in_memory",
                  f"{held} records held in memory and not safe ({self._why_held})" if held else None)
        self._backpressure = held >= self.max_held_records
        self._set("records_backpressure",
                  f"{held} records held in memory (bound {self.max_held_records}): new calls are refused"
                  if self._backpressure else None)
        if not n and not held:
            self._set("spool_damaged", None)

    def _check_space(self) -> None:
        if not self.free_floor_bytes:
            return
        try:
            free = self.io.free_bytes(self.db_path.parent)
        except OSError as exc:
            log.debug("record store: cannot read free space: %s", exc)
            return
        low = free < self.free_floor_bytes
        self._set("disk_space_low", f"{free >> 10} KiB free for the records, below the floor of "
                  f"{self.free_floor_bytes >> 10} KiB" if low else None)

    def _connect(self) -> Connection:
        if self._conn is None:
            assert self._engine is not None
            self._conn = self._engine.connect()
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.invalidate()
                self._conn.close()
            except Exception:   # the connection is being thrown away; nothing to save in it
                log.debug("record database: error dropping a connection", exc_info=True)
            self._conn = None

    def _dispose(self) -> None:
        self._drop_connection()
        if self._engine is not None:
            self._engine.dispose()
        if self._spool is not None:
            self._spool.close()

    def _step(self, group: list[_Batch]) -> None:
        """Commit the spool, the held records and `group` in one transaction, or keep them safe."""
        new = [r for _, _, batch in group for r in batch]
        last = group[-1][0] if group else self._processed
        if group:
            self._last_tick = max(self._last_tick, group[-1][1])
        self._retry_spool()
        self._check_space()
        busy = 0
        while True:
            backlog = self._spool_pending + self._held + new
            if not backlog:
                self._settle(last, durable=not self._held, in_db=True)
                return
            try:
                stored = self._commit(backlog)
            except Exception as exc:   # whatever stops the commit (reconnecting included), the spool takes over
                if not isinstance(exc, SQLAlchemyError):
                    if "records_commit_failing" not in self._health:   # once per fault
                        log.error("record database: %s while committing", type(exc).__name__, exc_info=True)
                elif _is_busy(exc) and not self._closing and busy < self.LOCKED_RETRIES:
                    busy += 1
                    with self._cond:
                        self._stats["busy_retries"] += 1
                    self._set("database_locked", f"database is locked by another connection; "
                              f"{self._handed - self._processed} batches waiting")
                    continue
                self._drop_connection()
                self._set("database_locked", None)
                self._fault(_reason(exc), new, last)
                return
            self.io.database_synced(self.db_path)     # the commit is acknowledged: durable from here
            self._committed(stored, last)
            return

    def _commit(self, backlog: list[Record]) -> int:
        """One transaction: the backlog in order, and the spool mark. Returns how many records were stored."""
        conn = self._connect()
        with conn.begin():
            rows = self._keep_repeats(conn, backlog)
            cdrs = [_CDR_VALUES(r) for r in rows if isinstance(r, CdrRecord)]
            events = [event_values(r) for r in rows if isinstance(r, Event)]
            insert_rows(conn, cdr, CDR_COLUMNS, cdrs)
            insert_rows(conn, event_table, EVENT_COLUMNS, events)
            apply_marks(conn, backlog)
            if self._spool_pending and self._spool is not None:
                conn.execute(delete(spool_mark))
                conn.execute(insert(spool_mark).values(
                    token=self._spool.token.hex(), records=self._spool_base + len(self._spool_pending)))
        with self._cond:
            self._stats["transactions"] += 1
            self._stats["commits"] += 1
        return len(cdrs) + len(events)

    def _keep_repeats(self, conn: Connection, backlog: list[Record]) -> list[Record]:
        """A call id already stored (or twice in the backlog) is kept under a suffixed id (``<id>.dupN``, the
        first N free) and listed in :attr:`repeated_ids`: never dropped, never stored twice under one id."""
        ids = [r.call_id for r in backlog if isinstance(r, CdrRecord)]
        if not ids:
            return backlog
        stored: set[str] = set()
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            stored.update(conn.execute(select(cdr.c.call_id).where(cdr.c.call_id.in_(chunk))).scalars())
        out: list[Record] = []
        for rec in backlog:
            r = rec
            if isinstance(r, CdrRecord):
                if r.call_id in stored:
                    kept = self._free_repeat_id(conn, r.call_id, stored)
                    log.error("CDR for call %s: that id is already stored; kept as %s: %s", r.call_id, kept,
                              record_to_json(r).decode())
                    with self._cond:
                        self._stats["ids_repeated"] += 1
                        self._repeated.append((r.call_id, kept))
                    r = dataclasses.replace(r, call_id=kept)
                stored.add(r.call_id)
            out.append(r)
        return out

    @staticmethod
    def _free_repeat_id(conn: Connection, call_id: str, taken: set[str]) -> str:
        """The first ``<call_id>.dupN`` neither stored nor in `taken` (the id cut short to fit its column)."""
        like = set(conn.execute(select(cdr.c.call_id).where(
            cdr.c.call_id.startswith(call_id[:ID_LEN - 8] + ".dup", autoescape=True))).scalars())
        n = 1
        while True:
            suffix = f".dup{n}"
            kept = call_id[:ID_LEN - len(suffix)] + suffix
            if kept not in taken and kept not in like:
                return kept
            n += 1

    def _committed(self, stored: int, last: int) -> None:
        if self._spool_pending and self._spool is not None:
            self._spool_base += len(self._spool_pending)
            self._spool_pending = []
            try:
                self._spool.reset()
                self._spool_base = 0
                self._spool_full = False
            except OSError as exc:       # harmless: spool_mark says how much of it is in the database
                log.error("record spool could not be emptied: %s", exc)
        self._held = []
        with self._cond:
            self._stats["records_committed"] += stored
        self._set("records_commit_failing", None)
        self._set("database_locked", None)
        self._update_backlog()
        self._settle(last, durable=True, in_db=True)

    def _fault(self, reason: str, new: list[Record], last: int) -> None:
        """The database cannot commit: spool the held records and `new` (or, failing that, hold them)."""
        with self._cond:
            self._stats["commit_failures"] += 1
        self._set("records_commit_failing", f"database cannot commit: {reason}")
        if self._spool is None:
            self._why_held = "spool unavailable"
        elif (new or self._held) and not self._spool_full:
            waiting = self._held + new          # in order: the held records are the older
            try:
                if self._spool.append(waiting):
                    self._spool_pending += waiting
                    with self._cond:
                        self._stats["records_spooled"] += len(waiting)
                    self._held, new = [], []
                else:                           # full until it is emptied: hold the rest, in order
                    self._spool_full = True
                    self._why_held = "spool full"
            except OSError as exc:
                self._why_held = f"spool unwritable: {exc}"
        self._held += new
        self._update_backlog()
        self._settle(last, durable=not self._held, in_db=False)

    def _settle(self, last: int, *, durable: bool, in_db: bool) -> None:
        with self._cond:
            self._processed = max(self._processed, last)
            if durable:
                self._durable = self._processed
                self._durable_tick = self._last_tick
            if in_db:
                self._in_db = self._processed
            self._cond.notify_all()
