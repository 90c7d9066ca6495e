"""A version 2 database (queue_event) is migrated in place to version 3 (event) when the writer opens it:
its events are copied in order into the shared vocabulary, its boots get a boot event, and nothing else
changes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from appliance.storage import Event, RecordWriter
from appliance.storage.schema import SCHEMA_VERSION

V1_SQL = Path(__file__).with_name("schema_v1.sql")

V2_ADDED = """
CREATE TABLE live_call (
    call_id VARCHAR(64) NOT NULL, config_version INTEGER NOT NULL, trunk VARCHAR(64), ani VARCHAR(64),
    dnis VARCHAR(64), queue VARCHAR(64), agent VARCHAR(64), calendar_start VARCHAR(40) NOT NULL,
    start_ms BIGINT NOT NULL, queue_entry_ms BIGINT, answer_ms BIGINT, mark_ms BIGINT NOT NULL,
    PRIMARY KEY (call_id));
CREATE TABLE agent_session (
    agent VARCHAR(64) NOT NULL, phone VARCHAR(64) NOT NULL, since_ms BIGINT NOT NULL, PRIMARY KEY (agent));
UPDATE schema_version SET version = 2;
"""

CDRS = [  # call_id, config_version, trunk, ani, dnis, queue, agent, disposition, calendar_start, start, entry, answer,
    # end, wait, talk
    (1, "4-000001", 1, "trunk1", "555", "100", "front", "1001", "answered", "2026-03-01T09:30:00", 1_500, 2_000,
     7_000, 67_000, 5_000, 60_000),
    (2, "4-000002", 1, "trunk1", "556", "100", "front", None, "abandoned", "2026-03-01T09:31:00", 61_000, 62_000,
     None, 70_000, None, None),
    (3, "6-000001", 2, "trunk2", None, "100", None, None, "ivr_hangup", "2026-03-02T08:00:05", 5_000, None,
     None, 9_000, None, None),
]
QUEUE_EVENTS = [  # id, tick_ms, kind, queue, agent, call_id, detail
    (1, 0, "agent_state", None, "1001", None, "ready: login"),
    (2, 2_000, "enter", "front", None, "4-000001", ""),
    (3, 6_000, "agent_state", None, "1001", None, "ringing: offered 4-000001"),
    (4, 7_000, "connect", "front", "1001", "4-000001", ""),
    (5, 7_000, "agent_state", None, "1001", None, "talking: answered"),
    (6, 62_000, "enter", "front", None, "4-000002", ""),
    (7, 70_000, "abandon", "front", None, "4-000002", ""),
    (8, 80_000, "agent_state", None, "1001", None, "not_ready: restart"),
    (9, 1_000, "agent_state", None, "1001", None, "ready: login"),
]
LIVE = [("6-000002", 2, "trunk2", "557", "100", "front", None, "2026-03-02T08:01:00", 60_000, 61_000, None, 65_000)]
SESSIONS = [("1001", "phone1", 0)]


def make_v2(db: Path) -> None:
    db.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(db)
    con.executescript(V1_SQL.read_text() + V2_ADDED)
    con.executemany("INSERT INTO cdr VALUES (" + ", ".join("?" * 16) + ")", CDRS)
    con.executemany("INSERT INTO queue_event VALUES (?, ?, ?, ?, ?, ?, ?)", QUEUE_EVENTS)
    con.executemany("INSERT INTO live_call VALUES (" + ", ".join("?" * 12) + ")", LIVE)
    con.executemany("INSERT INTO agent_session VALUES (?, ?, ?)", SESSIONS)
    con.commit()
    con.close()


def test_a_version_2_database_is_migrated_in_place(tmp_path: Path) -> None:
    db = tmp_path / "state" / "cicbox.db"
    make_v2(db)
    w = RecordWriter(db, tmp_path / "state" / "records.spool")
    w.start()
    try:
        assert w.startup.highest_boot == 6
        assert [m.call_id for m in w.startup.live] == ["6-000002"]
        assert w.wait(w.submit([Event(7, 5, "boot", detail={"boot": 7, "calendar_start": "2026-03-03T10:00:00"})],
                               5))
    finally:
        w.close()
    con = sqlite3.connect(db)
    try:
        # through version 3 to this firmware's (version 4 adds the CDR's PRI columns: tests/storage/test_migrate_v4.py)
        assert con.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)] == [(4,)]
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "queue_event" not in tables and "event" in tables
        # Untouched: the CDRs, the marks of calls in progress, the agents' sessions.
        assert con.execute("SELECT * FROM cdr ORDER BY id").fetchall() == [(*row, *[None] * 6) for row in CDRS]
        assert con.execute("SELECT * FROM live_call").fetchall() == LIVE
        assert con.execute("SELECT * FROM agent_session").fetchall() == SESSIONS
        rows = [(b, t, k, c, q, a, json.loads(d)) for b, t, k, c, q, a, d in con.execute(
            "SELECT boot, tick_ms, kind, call_id, queue, agent, detail FROM event ORDER BY id")]
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()
    na = {"reason": None, "call_id": None}
    assert rows == [
        # Each boot the CDRs know, its tick 0 in calendar time: its earliest CDR's start less its start_ms.
        (4, 0, "boot", None, None, None, {"boot": 4, "calendar_start": "2026-03-01T09:29:58.500000",
                                          "derived": "cdr"}),
        (6, 0, "boot", None, None, None, {"boot": 6, "calendar_start": "2026-03-02T08:00:00", "derived": "cdr"}),
        # The old rows in order, the old text kept; an agent state (no call id) takes the boot of the row
        # before it with one (none before the first: 0), until the clock goes back (a restart: 0).
        (0, 0, "agent_state", None, None, "1001", {"text": "ready: login", "state": "ready", "why": "login", **na}),
        (4, 2_000, "queue_enter", "4-000001", "front", None, {"text": "", "first": True}),
        (4, 6_000, "agent_state", None, None, "1001",
         {"text": "ringing: offered 4-000001", "state": "offered", "why": "offered 4-000001", **na}),
        (4, 7_000, "answer", "4-000001", "front", "1001", {"text": ""}),
        (4, 7_000, "agent_state", None, None, "1001",
         {"text": "talking: answered", "state": "on_call", "why": "answered", **na}),
        (4, 62_000, "queue_enter", "4-000002", "front", None, {"text": "", "first": True}),
        (4, 70_000, "queue_leave", "4-000002", "front", None, {"text": "", "outcome": "abandoned", "to": None}),
        (4, 80_000, "agent_state", None, None, "1001",
         {"text": "not_ready: restart", "state": "not_ready", "why": "restart", "reason": "restart",
          "call_id": None}),
        (0, 1_000, "agent_state", None, None, "1001",
         {"text": "ready: login", "state": "ready", "why": "login", **na}),
        # What the writer stored after the migration.
        (7, 5, "boot", None, None, None, {"boot": 7, "calendar_start": "2026-03-03T10:00:00"}),
    ]


def test_a_migrated_database_opens_again_without_change(tmp_path: Path) -> None:
    db = tmp_path / "cicbox.db"
    make_v2(db)
    for _ in range(2):
        w = RecordWriter(db, tmp_path / "records.spool")
        w.start()
        w.close()
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT count(*) FROM event").fetchone() == (len(QUEUE_EVENTS) + 2,)
    finally:
        con.close()
