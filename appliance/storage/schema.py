"""The record schema, declared once with SQLAlchemy Core.

The same tables serve the embedded SQLite database and a central PostgreSQL for
multi-site reporting, so every column type is one both speak: strings have a
declared length (PostgreSQL enforces it, SQLite does not, so the record classes
check the limits themselves), times are 64-bit integers of the scheduler clock
in ms, and the calendar start is an ISO 8601 string.

Tables:

- ``cdr``: one row per call (unique ``call_id``), indexed by calendar start and
  by queue for reports.
- ``event`` (version 3; before it, ``queue_event``): the one authoritative event log,
  calls', queues' and agents' events (kinds and details: docs/events.md), in the order the
  engine produced them: ``boot`` (the boot's number; its tick 0 as calendar time is
  ``detail.calendar_start`` of its ``boot`` event), ``tick_ms``, ``kind``, the call, queue
  and agent it concerns (each may be NULL) and ``detail``, a JSON object as text (sorted
  keys). Reports and CDRs are folds over it (:mod:`appliance.figures`).
- ``schema_version``: one row, the version of this schema.
- ``spool_mark``: one row, how many records of the current spool generation are
  already in the database, so a spool replayed after a crash never adds a
  record twice (written in the same transaction as the records it counts).
- ``live_call`` (version 2): the durable mark of each call in progress: its
  start, queue entry and answer times and the last time it was known up
  (``mark_ms``); written with a period's batch, deleted in the transaction
  that stores the call's CDR. A row left at start is a call the engine lost
  (kill -9, power cut, watchdog): it gets a ``system_restart`` CDR.
- ``agent_session`` (version 2): one row per logged-in agent (phone, since),
  so agents stay logged in across a restart (restored not ready).

Version 4 adds the CDR's PRI columns: ``timeslot`` (the B-channel's timeslot of the call's span),
``ani_ton``, ``ani_npi``, ``ani_presentation``, ``ani_screening`` (the calling number's type of
number, numbering plan, presentation and screening as received, by their names: e1t1.isdn.q931's
``Ton``, ``Npi``, ``Presentation``, ``Screening``) and ``cause`` (the Q.850 cause the call was
cleared with, ours or the far end's); NULL for a call on an analog trunk, and in the rows of older
versions.

Versions: a database of an older version is migrated when the writer opens it
(:func:`migrate_schema`, one step per version, in the opening transaction); a
newer one is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    inspect,
    select,
)

from appliance.storage.errors import StoreOpenError

SCHEMA_VERSION = 4

# Column widths; the record classes reject longer values (as PostgreSQL would).
ID_LEN = 64          # call ids, trunk, queue and agent names, ANI/DNIS digits
DISPOSITION_LEN = 16
CALENDAR_LEN = 40    # "2025-01-31T23:59:59.999999+05:30" is 32
KIND_LEN = 32
NAME_LEN = 16        # a calling number's TON, NPI, presentation or screening by name ("user_unscreened" is 15)

DISPOSITIONS = frozenset({"answered", "abandoned", "no_agent", "ivr_hangup", "failed",
                          "busy",              # a queue was full: the caller heard its prompt, then the hang-up
                          "blocked",           # a blacklisted caller: its prompt, then the hang-up
                          "exit",              # the caller left a queue by its exit key for a prompt and hang-up
                          "shutdown",          # the engine was stopped (SIGTERM, SIGINT) while the call was up
                          "system_restart",    # the engine died while the call was up; recorded at the next start
                          "rejected",          # a PRI call refused: no route (cause 1, 28 after T302)
                          "line_fault"})       # a PRI call cleared by the line: span alarm (38), link lost (27)

# A 64-bit autoincrement key on PostgreSQL (BIGSERIAL); on SQLite only INTEGER
# PRIMARY KEY is the rowid alias that autoincrements.
_RowId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

cdr = Table(
    "cdr",
    metadata,
    Column("id", _RowId, primary_key=True, autoincrement=True),
    Column("call_id", String(ID_LEN), nullable=False, unique=True),
    Column("config_version", Integer, nullable=False),
    Column("trunk", String(ID_LEN)),
    Column("ani", String(ID_LEN)),
    Column("dnis", String(ID_LEN)),
    Column("queue", String(ID_LEN)),
    Column("agent", String(ID_LEN)),
    Column("disposition", String(DISPOSITION_LEN), nullable=False),
    Column("calendar_start", String(CALENDAR_LEN), nullable=False),
    Column("start_ms", BigInteger, nullable=False),
    Column("queue_entry_ms", BigInteger),
    Column("answer_ms", BigInteger),
    Column("end_ms", BigInteger, nullable=False),
    Column("wait_ms", BigInteger),
    Column("talk_ms", BigInteger),
    # version 4: a PRI call's B-channel, its calling number's attributes as received, its clearing cause
    Column("timeslot", Integer),
    Column("ani_ton", String(NAME_LEN)),
    Column("ani_npi", String(NAME_LEN)),
    Column("ani_presentation", String(NAME_LEN)),
    Column("ani_screening", String(NAME_LEN)),
    Column("cause", Integer),
)
#: the CDR's columns of version 4, in their order (the migration from version 3 adds them)
CDR_V4_COLUMNS = ("timeslot", "ani_ton", "ani_npi", "ani_presentation", "ani_screening", "cause")
Index("cdr_calendar_start", cdr.c.calendar_start)
Index("cdr_queue", cdr.c.queue)

event = Table(
    "event",
    metadata,
    Column("id", _RowId, primary_key=True, autoincrement=True),
    Column("boot", Integer, nullable=False),
    Column("tick_ms", BigInteger, nullable=False),
    Column("kind", String(KIND_LEN), nullable=False),
    Column("call_id", String(ID_LEN)),
    Column("queue", String(ID_LEN)),
    Column("agent", String(ID_LEN)),
    Column("detail", Text, nullable=False),
)
Index("event_boot_tick", event.c.boot, event.c.tick_ms)
Index("event_call", event.c.call_id)
event_table = event
"""The same table, for modules that import SQLAlchemy's ``event`` too."""

# Version 2's event table, as it was (only the migration to version 3 reads it).
_queue_event_v2 = Table(
    "queue_event",
    MetaData(),
    Column("id", _RowId, primary_key=True, autoincrement=True),
    Column("tick_ms", BigInteger, nullable=False),
    Column("kind", String(KIND_LEN), nullable=False),
    Column("queue", String(ID_LEN)),
    Column("agent", String(ID_LEN)),
    Column("call_id", String(ID_LEN)),
    Column("detail", Text, nullable=False),
)

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
)

spool_mark = Table(
    "spool_mark",
    metadata,
    Column("token", String(32), primary_key=True),
    Column("records", BigInteger, nullable=False),
)

live_call = Table(
    "live_call",
    metadata,
    Column("call_id", String(ID_LEN), primary_key=True),
    Column("config_version", Integer, nullable=False),
    Column("trunk", String(ID_LEN)),
    Column("ani", String(ID_LEN)),
    Column("dnis", String(ID_LEN)),
    Column("queue", String(ID_LEN)),
    Column("agent", String(ID_LEN)),
    Column("calendar_start", String(CALENDAR_LEN), nullable=False),
    Column("start_ms", BigInteger, nullable=False),
    Column("queue_entry_ms", BigInteger),
    Column("answer_ms", BigInteger),
    Column("mark_ms", BigInteger, nullable=False),
)

agent_session = Table(
    "agent_session",
    metadata,
    Column("agent", String(ID_LEN), primary_key=True),
    Column("phone", String(ID_LEN), nullable=False),
    Column("since_ms", BigInteger, nullable=False),
)


def _v1_to_v2(conn: Connection) -> None:
    """Version 2: the marks of calls in progress and the logged-in agents."""
    live_call.create(conn, checkfirst=True)
    agent_session.create(conn, checkfirst=True)


MIGRATION_CHUNK = 2000
"""Rows of ``queue_event`` copied at a time by the migration to version 3."""


def _v2_to_v3(conn: Connection) -> None:
    """Version 3: ``queue_event`` becomes ``event`` (boot column, JSON detail, the shared kinds).

    Each row is copied in order (:func:`appliance.storage.cdr.event_from_v2`: the boot from the
    call id's ``<boot>-`` prefix; a row without a call id (agent_state) takes the boot of the last
    row before it that had one, unless the clock went back since (a restart): then 0; enter,
    connect, abandon become queue_enter, answer,
    queue_leave {outcome: abandoned}; the old text kept as ``detail.text``). Each boot the CDRs
    know gets a ``boot`` event first, its calendar start taken from its earliest CDR
    (calendar_start less start_ms; ``detail.derived`` says so), so the reports can place the old
    events in calendar time. Then ``queue_event`` is dropped.
    """
    from appliance.storage.cdr import boot_of, event_from_v2, event_values  # the records import this module

    event.create(conn, checkfirst=True)
    starts = _boot_starts(conn)
    rows: list[tuple[Any, ...]] = [
        event_values(_boot_event(boot, when)) for boot, when in sorted(starts.items())]
    insert_rows(conn, event, EVENT_COLUMNS, rows)
    old = _queue_event_v2.c
    last = -1
    boot, tick = 0, 0          # the boot of the last row with a call id, the last row's tick
    while True:
        chunk = conn.execute(select(old.id, old.tick_ms, old.kind, old.queue, old.agent, old.call_id, old.detail)
                             .where(old.id > last).order_by(old.id).limit(MIGRATION_CHUNK)).all()
        if not chunk:
            break
        last = chunk[-1].id
        rows = []
        for r in chunk:
            if r.call_id and boot_of(r.call_id):
                boot = boot_of(r.call_id)
            elif r.tick_ms < tick:
                boot = 0         # the clock went back: a restart, whose boot no call names yet
            tick = r.tick_ms
            rows.append(event_values(event_from_v2(r.tick_ms, r.kind, r.queue, r.agent, r.call_id, r.detail,
                                                   boot if not r.call_id else None)))
        insert_rows(conn, event, EVENT_COLUMNS, rows)
    _queue_event_v2.drop(conn, checkfirst=True)


def _v3_to_v4(conn: Connection) -> None:
    """Version 4: the CDR's PRI columns (CDR_V4_COLUMNS), NULL in the rows already stored. Each is
    added in place (ALTER TABLE ... ADD COLUMN: no row is copied, however many there are), with the
    type this schema declares, as the database's dialect writes it."""
    quote = conn.dialect.identifier_preparer.quote
    have = {c["name"] for c in inspect(conn).get_columns(cdr.name)}
    for name in CDR_V4_COLUMNS:
        if name in have:
            continue
        col = cdr.c[name]
        conn.exec_driver_sql(f"ALTER TABLE {quote(cdr.name)} ADD COLUMN {quote(name)} "
                             f"{col.type.compile(dialect=conn.dialect)}")


def _boot_starts(conn: Connection) -> dict[int, str]:
    """Each boot's tick 0 as calendar time, from its earliest CDR (calendar_start - start_ms)."""
    import datetime as dt

    from appliance.storage.cdr import boot_of

    out: dict[int, tuple[int, str]] = {}
    for call_id, calendar_start, start_ms in conn.execute(select(cdr.c.call_id, cdr.c.calendar_start,
                                                                cdr.c.start_ms)):
        boot = boot_of(call_id)
        if boot and (boot not in out or start_ms < out[boot][0]):
            try:
                zero = dt.datetime.fromisoformat(calendar_start) - dt.timedelta(milliseconds=start_ms)
            except ValueError:
                continue
            out[boot] = (start_ms, zero.isoformat())
    return {boot: when for boot, (_, when) in out.items()}


def _boot_event(boot: int, calendar_start: str) -> Any:
    from appliance.storage.cdr import Event

    return Event(boot, 0, "boot", detail={"boot": boot, "calendar_start": calendar_start, "derived": "cdr"})


MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4}
"""From version N to N + 1."""


def migrate_schema(conn: Connection) -> int:
    """Create the schema in an empty database, or bring an older one up to SCHEMA_VERSION (inside the
    caller's transaction). Returns the version the database had (0: new). StoreOpenError for a newer
    version, or one this firmware cannot migrate."""
    schema_version.create(conn, checkfirst=True)
    have = conn.execute(select(schema_version.c.version)).scalars().all()
    if not have:
        metadata.create_all(conn)
        conn.execute(insert(schema_version).values(version=SCHEMA_VERSION))
        return 0
    found = int(max(have))
    if found > SCHEMA_VERSION:
        raise StoreOpenError(f"database schema version {found} is newer than this firmware's {SCHEMA_VERSION}")
    for version in range(found, SCHEMA_VERSION):
        step = MIGRATIONS.get(version)
        if step is None:
            raise StoreOpenError(f"database schema version {version} cannot be migrated by this firmware")
        step(conn)
    if found != SCHEMA_VERSION:
        conn.execute(delete(schema_version))
        conn.execute(insert(schema_version).values(version=SCHEMA_VERSION))
    return found


ROWS_PER_INSERT = 200
"""Rows in one multi-row INSERT of :func:`insert_rows` (at 16 columns, well under SQLite's 32766 parameters)."""
IDS_PER_STATEMENT = 500
"""Ids in one ``IN (...)`` of :func:`delete_ids`."""


def insert_rows(conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert `rows` (each its values in the order of `columns`) into `table`, in order, in multi-row
    INSERTs of at most ROWS_PER_INSERT rows.

    The record writer's path on SQLite (qmark parameters): each statement is SQL text for the driver,
    so none is compiled per batch (compiling a multi-row INSERT costs more than running it), and the
    driver releases the GIL once per statement, not once per row, so a busy control thread does not
    slow the writer down row by row.
    """
    quote = conn.dialect.identifier_preparer.quote
    head = f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) VALUES "
    one = "(" + ", ".join("?" * len(columns)) + ")"
    for i in range(0, len(rows), ROWS_PER_INSERT):
        chunk = rows[i:i + ROWS_PER_INSERT]
        conn.exec_driver_sql(head + ", ".join([one] * len(chunk)), tuple(v for row in chunk for v in row))


def delete_ids(conn: Connection, table: Table, column: str, ids: Sequence[str]) -> None:
    """Delete the rows of `table` whose `column` is one of `ids` (SQL text for the driver, as insert_rows)."""
    quote = conn.dialect.identifier_preparer.quote
    head = f"DELETE FROM {quote(table.name)} WHERE {quote(column)} IN "
    for i in range(0, len(ids), IDS_PER_STATEMENT):
        chunk = tuple(ids[i:i + IDS_PER_STATEMENT])
        conn.exec_driver_sql(head + "(" + ", ".join("?" * len(chunk)) + ")", chunk)


CDR_COLUMNS: tuple[str, ...] = tuple(c.name for c in cdr.columns if c.name != "id")
EVENT_COLUMNS: tuple[str, ...] = tuple(c.name for c in event.columns if c.name != "id")
MARK_COLUMNS: tuple[str, ...] = tuple(c.name for c in live_call.columns)
