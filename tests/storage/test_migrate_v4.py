"""A version 3 database is migrated in place to version 4 when the writer opens it: the CDR gains its PRI
columns (timeslot, the calling number's TON, NPI, presentation and screening, the cause), NULL in the rows
it had, every other row and table untouched; a PRI call's record is stored and read back whole, and the
new dispositions (rejected, line_fault) are taken."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import pytest

from appliance.storage import CdrRecord, RecordWriter
from appliance.storage.cdr import record_from_json, record_to_json
from appliance.storage.errors import RecordError
from appliance.storage.schema import CDR_COLUMNS, CDR_V4_COLUMNS, SCHEMA_VERSION
from tests.storage.test_migrate_v3 import CDRS, LIVE, SESSIONS, V1_SQL, V2_ADDED

# Version 3 as it was: version 2's tables with queue_event become event.
V3_CHANGED = """
CREATE TABLE event (
    id INTEGER NOT NULL, boot INTEGER NOT NULL, tick_ms BIGINT NOT NULL, kind VARCHAR(32) NOT NULL,
    call_id VARCHAR(64), queue VARCHAR(64), agent VARCHAR(64), detail TEXT NOT NULL, PRIMARY KEY (id));
CREATE INDEX event_boot_tick ON event (boot, tick_ms);
CREATE INDEX event_call ON event (call_id);
DROP TABLE queue_event;
UPDATE schema_version SET version = 3;
"""
EVENTS = [(1, 4, 0, "boot", None, None, None, '{"boot":4,"calendar_start":"2026-03-01T09:29:58.500000"}'),
          (2, 4, 2000, "queue_enter", "4-000001", "front", None, '{"first":true}')]


def make_v3(db: Path) -> None:
    db.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(db)
    con.executescript(V1_SQL.read_text() + V2_ADDED + V3_CHANGED)
    con.executemany("INSERT INTO cdr VALUES (" + ", ".join("?" * 16) + ")", CDRS)
    con.executemany("INSERT INTO event VALUES (?, ?, ?, ?, ?, ?, ?, ?)", EVENTS)
    con.executemany("INSERT INTO live_call VALUES (" + ", ".join("?" * 12) + ")", LIVE)
    con.executemany("INSERT INTO agent_session VALUES (?, ?, ?)", SESSIONS)
    con.commit()
    con.close()


def pri_cdr(call_id: str, disposition: str = "answered", cause: int = 16) -> CdrRecord:
    return CdrRecord(call_id=call_id, config_version=2, trunk="span1", ani="13800138000", dnis="075588880000",
                     queue="front", agent="1001", disposition=disposition, calendar_start="2026-03-03T10:00:00",
                     start_ms=1000, queue_entry_ms=5000, answer_ms=9000, end_ms=20000, wait_ms=4000,
                     talk_ms=11000, timeslot=31, ani_ton="national", ani_npi="isdn", ani_presentation="restricted",
                     ani_screening="network", cause=cause)


def columns(con: sqlite3.Connection) -> list[tuple[str, str]]:
    return [(r[1], r[2]) for r in con.execute("PRAGMA table_info(cdr)")]


def test_a_version_3_database_gains_the_pri_columns_in_place(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "state" / "cicbox.db"
    make_v3(db)
    w = RecordWriter(db, tmp_path / "state" / "records.spool")
    caplog.set_level(logging.INFO, "cicbox.storage")
    w.start()
    try:
        assert w.startup.highest_boot == 6
        assert w.wait(w.submit([pri_cdr("7-000001"), pri_cdr("7-000002", "line_fault", 38),
                                pri_cdr("7-000003", "rejected", 1)], 20000))
        assert [(r.levelname, r.getMessage()) for r in caplog.records if "schema" in r.getMessage()] == [
            ("WARNING", "record database migrated in place from schema version 3 to 4 (its records kept)")]
    finally:
        w.close()
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)] == [(4,)]
        assert columns(con)[-6:] == [("timeslot", "INTEGER"), ("ani_ton", "VARCHAR(16)"),
                                     ("ani_npi", "VARCHAR(16)"), ("ani_presentation", "VARCHAR(16)"),
                                     ("ani_screening", "VARCHAR(16)"), ("cause", "INTEGER")]
        # the rows it had: as they were, the new columns NULL
        assert con.execute("SELECT * FROM cdr WHERE call_id < '7' ORDER BY id").fetchall() == \
            [(*row, None, None, None, None, None, None) for row in CDRS]
        assert con.execute("SELECT * FROM event ORDER BY id").fetchall() == EVENTS
        assert con.execute("SELECT * FROM live_call").fetchall() == LIVE
        assert con.execute("SELECT * FROM agent_session").fetchall() == SESSIONS
        got = con.execute(f"SELECT call_id, disposition, {', '.join(CDR_V4_COLUMNS)} FROM cdr WHERE call_id > '7' "
                          "ORDER BY call_id").fetchall()
        assert got == [("7-000001", "answered", 31, "national", "isdn", "restricted", "network", 16),
                       ("7-000002", "line_fault", 31, "national", "isdn", "restricted", "network", 38),
                       ("7-000003", "rejected", 31, "national", "isdn", "restricted", "network", 1)]
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()


def test_a_migrated_database_has_a_new_ones_columns_and_opens_again_unchanged(tmp_path: Path) -> None:
    old, new = tmp_path / "old" / "cicbox.db", tmp_path / "new" / "cicbox.db"
    make_v3(old)
    for db in (old, old, new):
        w = RecordWriter(db, db.with_name("records.spool"))
        w.start()
        w.close()
    a, b = sqlite3.connect(old), sqlite3.connect(new)
    try:
        assert columns(a) == columns(b)
        assert [name for name, _ in columns(b)] == ["id", *CDR_COLUMNS]
        assert a.execute("SELECT count(*) FROM cdr").fetchone() == (len(CDRS),)
    finally:
        a.close()
        b.close()


def test_the_pri_fields_are_checked_and_spooled() -> None:
    rec = pri_cdr("7-000001")
    assert record_from_json(record_to_json(rec)) == rec
    # a record spooled before version 4 (no PRI fields) reads back with them None
    fields = json.loads(record_to_json(rec))
    for name in CDR_V4_COLUMNS:
        del fields["fields"][name]
    old = record_from_json(json.dumps(fields).encode())
    assert isinstance(old, CdrRecord) and (old.timeslot, old.ani_ton, old.cause) == (None, None, None)
    args = {f: getattr(rec, f) for f in CDR_COLUMNS}
    for name, value, message in [
            ("timeslot", 0, "CdrRecord.timeslot must be None or an integer 1-31, not 0"),
            ("timeslot", True, "CdrRecord.timeslot must be None or an integer 1-31, not True"),
            ("cause", 128, "CdrRecord.cause must be None or an integer 0-127, not 128"),
            ("ani_ton", "x" * 17, "CdrRecord.ani_ton is 17 characters long; at most 16 are stored"),
            ("disposition", "glare", "CdrRecord.disposition 'glare' is not one of")]:
        with pytest.raises(RecordError) as err:
            CdrRecord(**{**args, name: value})
        assert str(err.value).startswith(message)
