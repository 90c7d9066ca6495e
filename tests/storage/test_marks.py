"""Marks of calls in progress and agent sessions in the record database: written with a period's batch,
a call's mark deleted with its CDR in the same transaction, read back at start (with the spool's records
on top), and an older database migrated to the schema that holds them."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.storage import RecordWriter
from appliance.storage import writer as writer_mod
from appliance.storage.cdr import AgentSession, CallMark, MarksRefreshed, record_from_json, record_to_json
from appliance.storage.schema import SCHEMA_VERSION
from tests.storage import make_cdr, stored_call_ids

V1_SQL = Path(__file__).with_name("schema_v1.sql")


@pytest.fixture
def paths(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "state" / "cicbox.db", tmp_path / "state" / "records.spool"


def mark(call_id: str, mark_ms: int = 5_000, **kw: object) -> CallMark:
    fields: dict[str, object] = {
        "call_id": call_id, "config_version": 1, "trunk": "trunk1", "ani": "555", "dnis": "100", "queue": "q",
        "agent": None, "calendar_start": "2026-03-01T09:30:00", "start_ms": 1_000, "queue_entry_ms": 2_000,
        "answer_ms": None, "mark_ms": mark_ms}
    fields.update(kw)
    return CallMark(**fields)  # type: ignore[arg-type]


def live_rows(db: Path) -> dict[str, int]:
    con = sqlite3.connect(db)
    try:
        return dict(con.execute("SELECT call_id, mark_ms FROM live_call").fetchall())
    finally:
        con.close()


def reopen(paths: tuple[Path, Path]) -> RecordWriter:
    w = RecordWriter(*paths)
    w.start()
    return w


@pytest.fixture
def writer(paths: tuple[Path, Path]) -> Iterator[RecordWriter]:
    w = reopen(paths)
    yield w
    w.close()


def test_a_mark_is_replaced_by_the_next_and_deleted_with_the_calls_cdr(writer: RecordWriter,
                                                                       paths: tuple[Path, Path]) -> None:
    db = paths[0]
    assert writer.wait(writer.submit([mark("1-000001", 1_500), mark("1-000002", 1_500)], 1_500))
    assert live_rows(db) == {"1-000001": 1_500, "1-000002": 1_500}
    assert writer.wait(writer.submit([mark("1-000001", 2_500)], 2_500))
    assert live_rows(db) == {"1-000001": 2_500, "1-000002": 1_500}
    # The call's CDR and the end of its mark are one commit; a stale mark in the same batch is ignored.
    assert writer.wait(writer.submit([make_cdr("1-000001", start_ms=1_000, end_ms=3_000),
                                      mark("1-000001", 3_000)], 3_000))
    assert live_rows(db) == {"1-000002": 1_500}
    assert stored_call_ids(db) == ["1-000001"]


def test_a_refresh_moves_every_stored_mark_up_to_its_time_never_back_never_before_the_start(
        writer: RecordWriter, paths: tuple[Path, Path]) -> None:
    db = paths[0]
    assert writer.wait(writer.submit([mark("1-000001", 1_500), mark("1-000002", 1_500, start_ms=1_400),
                                      mark("1-000003", 1_600, start_ms=1_600)], 1_600))
    # In one batch: a call's CDR (its row goes), a refresh at 2 s, then a later call's own mark at 2.5 s and
    # an earlier refresh that changes nothing after it.
    assert writer.wait(writer.submit([make_cdr("1-000002", start_ms=1_400, end_ms=1_900), MarksRefreshed(1_000),
                                      MarksRefreshed(2_000), mark("1-000004", 2_500, start_ms=2_400)], 2_500))
    assert live_rows(db) == {"1-000001": 2_000, "1-000003": 2_000, "1-000004": 2_500}
    assert writer.wait(writer.submit([mark("1-000005", 9_000, start_ms=9_000), MarksRefreshed(3_000)], 3_000))
    assert live_rows(db) == {"1-000001": 3_000, "1-000003": 3_000, "1-000004": 3_000, "1-000005": 9_000}


def test_a_refresh_found_only_in_the_spool_moves_the_lost_calls_end(paths: tuple[Path, Path],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    w = reopen(paths)
    assert w.wait(w.submit([mark("9-000001", 1_500, answer_ms=1_200, agent="1001")], 1_500))

    def broken(self: RecordWriter, backlog: list[object]) -> int:
        raise OSError("disk I/O error")

    monkeypatch.setattr(writer_mod.RecordWriter, "_commit", broken)
    assert w.wait(w.submit([MarksRefreshed(4_000)], 4_000))                  # spooled, fsynced
    w.close()
    monkeypatch.undo()
    w = reopen(paths)
    try:
        (lost,) = w.startup.live
        cdr = lost.lost_cdr()
        assert (cdr.end_ms, cdr.talk_ms) == (4_000, 2_800)
    finally:
        w.close()
    assert live_rows(paths[0]) == {"9-000001": 4_000}          # replayed into the database


def test_what_the_last_run_left_is_read_at_start(paths: tuple[Path, Path]) -> None:
    w = reopen(paths)
    assert w.wait(w.submit([make_cdr("7-000003"), mark("7-000004", 4_000, answer_ms=3_000, agent="1001"),
                            AgentSession("1001", "phone1", 100), AgentSession("1002", "phone2", 100)], 4_000))
    assert w.wait(w.submit([AgentSession("1002", None, 200)], 4_010))     # 1002 logged out
    w.close()
    w = reopen(paths)
    try:
        st = w.startup
        assert st.highest_boot == 7
        assert [m.call_id for m in st.live] == ["7-000004"]
        assert [(a.agent, a.phone) for a in st.agents] == [("1001", "phone1")]
        lost = st.live[0].lost_cdr()
        assert (lost.disposition, lost.start_ms, lost.answer_ms, lost.end_ms, lost.talk_ms, lost.wait_ms) == \
            ("system_restart", 1_000, 3_000, 4_000, 1_000, 1_000)
    finally:
        w.close()


def test_marks_go_to_the_spool_with_their_batch_and_count_at_start(paths: tuple[Path, Path],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The spool carries marks too: a database that cannot commit loses no mark, and a restart that finds
    them only in the spool still sees the lost call and the boot."""
    w = reopen(paths)

    def broken(self: RecordWriter, backlog: list[object]) -> int:
        raise OSError("disk I/O error")

    monkeypatch.setattr(writer_mod.RecordWriter, "_commit", broken)
    assert w.wait(w.submit([mark("9-000001"), AgentSession("1001", "phone1", 10)], 10))   # spooled, fsynced
    assert w.stats()["spool_records"] == 2
    w.close()
    monkeypatch.undo()
    spooled = RecordWriter(*paths)
    spooled.start()
    try:
        assert spooled.startup.highest_boot == 9
        assert [m.call_id for m in spooled.startup.live] == ["9-000001"]
        assert [a.agent for a in spooled.startup.agents] == ["1001"]
    finally:
        spooled.close()
    assert live_rows(paths[0]) == {"9-000001": 5_000}          # replayed into the database


def test_marks_and_sessions_round_trip_through_the_spool_format() -> None:
    for rec in (mark("1-000001", answer_ms=2_500, agent="1001"), AgentSession("1001", None, 5),
                MarksRefreshed(7_000)):
        assert record_from_json(record_to_json(rec)) == rec


def test_a_version_1_database_is_migrated_and_keeps_its_records(paths: tuple[Path, Path]) -> None:
    db = paths[0]
    db.parent.mkdir(parents=True)
    con = sqlite3.connect(db)
    con.executescript(V1_SQL.read_text())
    con.execute("INSERT INTO cdr (call_id, config_version, disposition, calendar_start, start_ms, end_ms) "
                "VALUES ('4-000001', 1, 'answered', '2026-03-01T09:30:00', 0, 10)")
    con.commit()
    con.close()
    w = reopen(paths)
    try:
        assert w.startup.highest_boot == 4
        assert w.wait(w.submit([mark("5-000001"), AgentSession("1001", "phone1", 1)], 10))
    finally:
        w.close()
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        assert SCHEMA_VERSION == 4
        assert con.execute("SELECT call_id FROM cdr").fetchall() == [("4-000001",)]
        assert con.execute("SELECT call_id FROM live_call").fetchall() == [("5-000001",)]
        assert con.execute("SELECT agent, phone FROM agent_session").fetchall() == [("1001", "phone1")]
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()
