"""The record schema, declared once with SQLAlchemy Core.

The same tables serve the embedded SQLite database and a central PostgreSQL for
multi-site reporting, so every column type is one both speak: strings have a
declared length (PostgreSQL enforces it, SQLite does not, so the record classes
check the limits themselves), times are 64-bit integers of the scheduler clock
in ms, and the calendar start is an ISO 8601 string.

Tables:

- ``cdr``: one row per call (unique ``call_id``), indexed by calendar start and
  by queue for reports.
- ``queue_event``: queue and agent events (enter, connect, abandon,
  agent_state...), in the order the engine produced them.
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
    select,
)

from appliance.storage.errors import StoreOpenError

SCHEMA_VERSION = 2

# Column widths; the record classes reject longer values (as PostgreSQL would).
ID_LEN = 64          # call ids, trunk, queue and agent names, ANI/DNIS digits
DISPOSITION_LEN = 16
CALENDAR_LEN = 40    # "2025-01-31T23:59:59.999999+05:30" is 32
KIND_LEN = 32

DISPOSITIONS = frozenset({"answered", "abandoned", "no_agent", "ivr_hangup", "failed",
                          "shutdown",          # the engine was stopped (SIGTERM, SIGINT) while the call was up
                          "system_restart"})   # the engine died while the call was up; recorded at the next start

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
)
Index("cdr_calendar_start", cdr.c.calendar_start)
Index("cdr_queue", cdr.c.queue)

queue_event = Table(
    "queue_event",
    metadata,
    Column("id", _RowId, primary_key=True, autoincrement=True),
    Column("tick_ms", BigInteger, nullable=False),
    Column("kind", String(KIND_LEN), nullable=False),
    Column("queue", String(ID_LEN)),
    Column("agent", String(ID_LEN)),
    Column("call_id", String(ID_LEN)),
    Column("detail", Text, nullable=False),
)
Index("queue_event_tick", queue_event.c.tick_ms)

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


MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _v1_to_v2}
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
EVENT_COLUMNS: tuple[str, ...] = tuple(c.name for c in queue_event.columns if c.name != "id")
MARK_COLUMNS: tuple[str, ...] = tuple(c.name for c in live_call.columns)
