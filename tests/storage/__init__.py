"""Record store tests: real SQLite files under tmp_path; helpers to build records."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from appliance.storage import CdrRecord, Event, open_readonly
from appliance.storage.schema import cdr, event


def make_cdr(call_id: str, /, **fields: object) -> CdrRecord:
    """An answered call's CDR; any field can be overridden."""
    base: dict[str, object] = {
        "call_id": call_id, "config_version": 3, "trunk": "e1-0", "ani": "5551234", "dnis": "100",
        "queue": "front-desk", "agent": "201", "disposition": "answered",
        "calendar_start": "2025-03-01T08:00:00+01:00", "start_ms": 1_000, "queue_entry_ms": 4_000,
        "answer_ms": 9_000, "end_ms": 70_000, "wait_ms": 5_000, "talk_ms": 61_000,
    }
    base.update(fields)
    return CdrRecord(**base)  # type: ignore[arg-type]


def make_event(call_id: str, tick_ms: int = 4_000, kind: str = "queue_enter") -> Event:
    return Event(1, tick_ms, kind, call_id, "front-desk", None, {"first": True, "note": f"pos=1 {call_id}"})


def stored_call_ids(db: Path) -> list[str]:
    """Every CDR's call id in insertion (row id) order, read through a read-only connection."""
    engine = open_readonly(db)
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(cdr.c.call_id).order_by(cdr.c.id)).scalars())
    finally:
        engine.dispose()


def stored_event_call_ids(db: Path) -> list[str]:
    engine = open_readonly(db)
    try:
        with engine.connect() as conn:
            return [c or "" for c in conn.execute(select(event.c.call_id).order_by(event.c.id)).scalars()]
    finally:
        engine.dispose()


def count_cdrs(db: Path) -> int:
    engine = open_readonly(db)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(cdr)).scalar_one())
    finally:
        engine.dispose()
