"""Records refuse bad fields with clear messages; the schema compiles for PostgreSQL;
readers are read-only; the CDR digest tells identical runs from different ones."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.schema import CreateTable

from appliance.storage import (
    CdrRecord,
    Event,
    RecordError,
    RecordWriter,
    StoreOpenError,
    cdr_digest,
    open_readonly,
)
from appliance.storage.cdr import record_from_json, record_to_json
from appliance.storage.schema import CDR_COLUMNS, SCHEMA_VERSION, cdr, event, metadata
from tests.storage import make_cdr, make_event


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"disposition": "hung_up"}, "disposition 'hung_up' is not one of abandoned, answered"),
        ({"call_id": ""}, "CdrRecord.call_id must not be empty"),
        ({"call_id": "x" * 65}, "CdrRecord.call_id is 65 characters long; at most 64 are stored"),
        ({"ani": 5551234}, "CdrRecord.ani must be a string or None, not 5551234"),
        ({"start_ms": 1.5}, "CdrRecord.start_ms must be integer ms, not 1.5"),
        ({"talk_ms": True}, "CdrRecord.talk_ms must be integer ms or None, not True"),
        ({"answer_ms": 1 << 63}, "does not fit a 64-bit column"),
        ({"calendar_start": "yesterday"}, "calendar_start 'yesterday' is not an ISO 8601 date and time"),
        ({"end_ms": 10}, "CdrRecord.end_ms 10 is before start_ms 1000 (call c1)"),
        ({"config_version": -1}, "config_version must be >= 0"),
    ],
)
def test_cdr_refuses_bad_fields(fields: dict[str, object], message: str) -> None:
    with pytest.raises(RecordError) as info:
        make_cdr("c1", **fields)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_event_refuses_bad_fields() -> None:
    with pytest.raises(RecordError, match=r"Event.kind must not be empty"):
        Event(1, 1, "")
    with pytest.raises(RecordError, match=r"Event.tick_ms must be integer ms, not '5'"):
        Event(1, "5", "queue_enter")  # type: ignore[arg-type]
    with pytest.raises(RecordError, match=r"Event.boot must be a boot number >= 0, not -1"):
        Event(-1, 5, "boot")
    with pytest.raises(RecordError, match=r"Event.detail must be a dict with string keys, not None"):
        Event(1, 5, "queue_enter", detail=None)  # type: ignore[arg-type]
    with pytest.raises(RecordError, match=r"Event.detail must be a dict with string keys"):
        Event(1, 5, "queue_enter", detail={1: "x"})  # type: ignore[dict-item]
    with pytest.raises(RecordError, match=r"Event.detail is not JSON"):
        Event(1, 5, "queue_enter", detail={"at": object()})
    with pytest.raises(RecordError, match=r"Event.detail is not JSON"):
        Event(1, 5, "queue_enter", detail={"wait": float("nan")})
    with pytest.raises(RecordError, match=r"Event.detail is 5008 characters of JSON; at most 4096 are stored"):
        Event(1, 5, "queue_enter", detail={"x": "y" * 5000})
    with pytest.raises(RecordError, match=r"Event.queue is 65 characters long"):
        Event(1, 5, "queue_enter", "c1", "q" * 65)


def test_event_detail_is_stored_as_json_with_sorted_keys(tmp_path: Path) -> None:
    db = tmp_path / "cicbox.db"
    _fill(db, [[Event(3, 7, "queue_leave", "3-000001", "front", None, {"to": None, "outcome": "abandoned"})]])
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT boot, tick_ms, kind, call_id, queue, agent, detail FROM event").fetchall() == [
            (3, 7, "queue_leave", "3-000001", "front", None, '{"outcome":"abandoned","to":null}')]
    finally:
        con.close()


def test_optional_fields_may_be_none() -> None:
    r = make_cdr("c1", trunk=None, ani=None, dnis=None, queue=None, agent=None, disposition="ivr_hangup",
                 queue_entry_ms=None, answer_ms=None, wait_ms=None, talk_ms=None)
    assert r.queue is None


def test_spool_format_round_trips() -> None:
    for r in (make_cdr("c1"), make_cdr("c2", ani=None), make_event("c1"),
              Event(2, 9, "agent_state", None, None, "201", {"state": "not_ready", "reason": "lunch", "why": "*24"})):
        assert record_from_json(record_to_json(r)) == r
    # A queue event spooled by the version 2 firmware comes back as an event of the shared vocabulary.
    old = (b'{"kind":"event","fields":{"tick_ms":9,"kind":"agent_state","queue":null,"agent":"201",'
           b'"call_id":null,"detail":"talking: answered"}}')
    assert record_from_json(old) == Event(0, 9, "agent_state", agent="201", detail={
        "text": "talking: answered", "state": "on_call", "why": "answered", "reason": None, "call_id": None})
    with pytest.raises(RecordError, match="unknown kind 'bill'"):
        record_from_json(b'{"kind": "bill", "fields": {}}')
    with pytest.raises(RecordError, match="not a stored record"):
        record_from_json(b'{"kind": "cdr", "fields": {"call_id": "c1"}}')


def test_schema_compiles_for_postgresql_and_sqlite() -> None:
    pg = str(CreateTable(cdr).compile(dialect=postgresql.dialect()))  # type: ignore[no-untyped-call]
    assert "id BIGSERIAL NOT NULL" in pg
    assert "start_ms BIGINT NOT NULL" in pg
    assert "call_id VARCHAR(64) NOT NULL" in pg
    lite = str(CreateTable(event).compile(dialect=sqlite.dialect()))
    assert "id INTEGER NOT NULL" in lite      # the rowid alias, so it autoincrements
    assert "detail TEXT NOT NULL" in str(CreateTable(event).compile(dialect=postgresql.dialect()))  # type: ignore[no-untyped-call]
    assert {"cdr", "event", "schema_version", "spool_mark"} <= set(metadata.tables)
    assert "queue_event" not in metadata.tables
    assert tuple(f.name for f in dataclasses.fields(make_cdr("c1"))) == CDR_COLUMNS
    assert {i.name for i in cdr.indexes} == {"cdr_calendar_start", "cdr_queue"}


def _fill(db: Path, records: Sequence[Sequence[CdrRecord | Event]]) -> None:
    w = RecordWriter(db, db.with_suffix(".spool"))
    w.start()
    try:
        for period, batch in enumerate(records):
            assert w.wait(w.submit(batch, period * 10))
    finally:
        w.close()


def test_database_on_disk_has_schema_and_is_wal(tmp_path: Path) -> None:
    db = tmp_path / "cicbox.db"
    _fill(db, [[make_cdr("c1")]])
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"cdr_calendar_start", "cdr_queue"} <= names
    finally:
        con.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "cicbox.db"
    _fill(db, [])
    con = sqlite3.connect(db)
    con.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    con.commit()
    con.close()
    w = RecordWriter(db, tmp_path / "records.spool")
    with pytest.raises(StoreOpenError, match=f"schema version {SCHEMA_VERSION + 1} is newer"):
        w.start()
    w.close()


def test_unopenable_database_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "cicbox.db").mkdir()
    w = RecordWriter(tmp_path / "cicbox.db", tmp_path / "records.spool")
    with pytest.raises(StoreOpenError, match="cannot open the record database"):
        w.start()
    w.close()


def test_readers_cannot_write(tmp_path: Path) -> None:
    db = tmp_path / "cicbox.db"
    _fill(db, [[make_cdr("c1")]])
    engine = open_readonly(db)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT call_id FROM cdr")).scalars().all() == ["c1"]
            with pytest.raises(OperationalError, match="readonly"):
                conn.execute(text("DELETE FROM cdr"))
    finally:
        engine.dispose()
    with pytest.raises(StoreOpenError, match="no record database"):
        open_readonly(tmp_path / "missing.db")


def test_digest_same_records_same_digest(tmp_path: Path) -> None:
    calls = [make_cdr(f"c{i}", start_ms=i * 1000, end_ms=i * 1000 + 500) for i in range(20)]
    a, b, c = tmp_path / "a.db", tmp_path / "b.db", tmp_path / "c.db"
    _fill(a, [calls[:10], calls[10:]])
    # Other batching, other insertion order, events interleaved: the row ids differ, the digest does not.
    _fill(b, [[make_event("c0")], list(reversed(calls[5:])), calls[:5]])
    assert cdr_digest(a) == cdr_digest(b)
    changed = [*calls[:7], dataclasses.replace(calls[7], talk_ms=(calls[7].talk_ms or 0) + 1), *calls[8:]]
    _fill(c, [changed])
    assert cdr_digest(c) != cdr_digest(a)
    assert len(cdr_digest(a)) == 64
