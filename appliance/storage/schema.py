"""The record schema (SQLAlchemy Core): the same tables on the embedded SQLite and
on a central PostgreSQL for multi-site reporting."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text

SCHEMA_VERSION = 1

metadata = MetaData()

cdr = Table(
    "cdr",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_id", String(32), nullable=False, unique=True),
    Column("config_version", Integer, nullable=False),
    Column("trunk", String(64)),
    Column("ani", String(32)),
    Column("dnis", String(32)),
    Column("queue", String(64)),
    Column("agent", String(16)),
    Column("disposition", String(16), nullable=False),
    Column("calendar_start", String(32), nullable=False),   # ISO 8601, site time
    Column("start_ms", BigInteger, nullable=False),          # scheduler clock, ms
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
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tick_ms", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("queue", String(64)),
    Column("agent", String(16)),
    Column("call_id", String(32)),
    Column("detail", Text, nullable=False, default=""),
)

schema_version = Table("schema_version", metadata, Column("version", Integer, nullable=False))

CDR_COLUMNS = [c.name for c in cdr.columns if c.name != "id"]
