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
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text

SCHEMA_VERSION = 1

# Column widths; the record classes reject longer values (as PostgreSQL would).
ID_LEN = 64          # call ids, trunk, queue and agent names, ANI/DNIS digits
DISPOSITION_LEN = 16
CALENDAR_LEN = 40    # "2025-01-31T23:59:59.999999+05:30" is 32
KIND_LEN = 32

DISPOSITIONS = frozenset({"answered", "abandoned", "no_agent", "ivr_hangup", "failed"})

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

CDR_COLUMNS: tuple[str, ...] = tuple(c.name for c in cdr.columns if c.name != "id")
EVENT_COLUMNS: tuple[str, ...] = tuple(c.name for c in queue_event.columns if c.name != "id")
