"""The writer: WAL with synchronous=FULL, one transaction per control period, readers
see a batch once wait() returns, and a locked database never holds up submit()."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from appliance.storage import RecordError, RecordWriter, WriterStateError
from appliance.storage import writer as writer_mod
from tests.storage import count_cdrs, make_cdr, make_event, stored_call_ids, stored_event_call_ids


@pytest.fixture
def paths(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "state" / "cicbox.db", tmp_path / "state" / "records.spool"


@pytest.fixture
def writer(paths: tuple[Path, Path]) -> Iterator[RecordWriter]:
    w = RecordWriter(*paths)
    w.start()
    yield w
    w.close()


def test_writer_connection_is_wal_with_full_sync(writer: RecordWriter) -> None:
    assert writer.pragmas == {"journal_mode": "wal", "synchronous": 2}
    # Every connection the writer's engine opens gets the same settings.
    assert writer._engine is not None
    with writer._engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_one_transaction_per_period_visible_after_wait(writer: RecordWriter, paths: tuple[Path, Path]) -> None:
    db = paths[0]
    commits: list[int] = []
    assert writer._engine is not None
    event.listen(writer._engine, "commit", lambda _conn: commits.append(1))
    start = writer.stats()["transactions"]
    for period in range(4):
        batch = [make_cdr(f"p{period}-c{i}") for i in range(5)] + [make_event(f"p{period}-c{i}") for i in range(3)]
        seq = writer.submit(batch, period * 10)
        assert seq == period + 1
        assert writer.wait(seq)
        assert writer.committed_seq == seq
        assert writer.stats()["committed_tick"] == period * 10
        # Visible to a separate read-only connection as soon as wait() returns.
        assert count_cdrs(db) == 5 * (period + 1)
        assert len(commits) == period + 1
    assert writer.stats()["transactions"] - start == 4
    assert writer.stats()["in_database_seq"] == 4
    assert stored_call_ids(db)[:5] == [f"p0-c{i}" for i in range(5)]
    assert stored_event_call_ids(db)[:3] == [f"p0-c{i}" for i in range(3)]
    assert writer.alarm is None


def test_empty_period_commits_nothing(writer: RecordWriter) -> None:
    before = writer.stats()["transactions"]
    assert writer.wait(writer.submit([], 10))
    assert writer.stats()["transactions"] == before


def test_stalled_writer_holds_no_line(monkeypatch: pytest.MonkeyPatch, paths: tuple[Path, Path]) -> None:
    monkeypatch.setattr(writer_mod, "BUSY_TIMEOUT_MS", 50)
    w = RecordWriter(*paths)
    w.LOCKED_RETRIES = 1 << 30           # stay stuck on the lock, never spool, for this test
    w.start()
    locked = threading.Event()
    assert w._engine is not None

    def on_error(ctx: Any) -> None:
        if "locked" in str(ctx.original_exception):
            locked.set()

    event.listen(w._engine, "handle_error", on_error)
    holder = sqlite3.connect(paths[0], isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        seqs = [w.submit([make_cdr(f"call-{i:04d}"), make_event(f"call-{i:04d}")], i * 10) for i in range(1000)]
        # Every submit returned while the writer cannot write a thing.
        assert seqs == list(range(1, 1001))
        assert locked.wait(30), "the writer never met the lock"
        stats = w.stats()
        assert stats["committed_seq"] == 0
        assert stats["queued_batches"] == 1000
        assert stats["spool_records"] == 0
        assert w.alarm is not None and "locked" in w.alarm
    finally:
        holder.execute("COMMIT")
        holder.close()
    try:
        assert w.wait(1000, timeout_s=60)
        assert w.alarm is None
        ids = stored_call_ids(paths[0])
        assert ids == [f"call-{i:04d}" for i in range(1000)]
        # When behind, queued periods are committed together, never split.
        assert w.stats()["transactions"] < 1000
    finally:
        w.close()


def test_close_drains_and_is_idempotent(paths: tuple[Path, Path]) -> None:
    w = RecordWriter(*paths)
    w.start()
    for i in range(50):
        w.submit([make_cdr(f"c{i:02d}")], i)
    w.close()
    w.close()
    assert w.committed_seq == 50
    assert len(stored_call_ids(paths[0])) == 50
    with pytest.raises(WriterStateError, match="closed"):
        w.submit([make_cdr("late")], 99)


def test_misuse_is_a_clear_error(paths: tuple[Path, Path]) -> None:
    w = RecordWriter(*paths)
    with pytest.raises(WriterStateError, match="not started"):
        w.submit([], 0)
    w.start()
    try:
        with pytest.raises(WriterStateError, match="already started"):
            w.start()
        with pytest.raises(RecordError, match="AgentSession are stored, not dict"):
            w.submit([{"call_id": "c1"}], 0)  # type: ignore[list-item]
        with pytest.raises(WriterStateError, match="batch 5 was never submitted"):
            w.wait(5)
    finally:
        w.close()
    with pytest.raises(ValueError, match="spool_bytes must be at least"):
        RecordWriter(*paths, spool_bytes=100)


def test_a_repeated_call_id_is_kept_under_a_suffixed_id_never_dropped(writer: RecordWriter,
                                                                        paths: tuple[Path, Path]) -> None:
    assert writer.wait(writer.submit([make_cdr("c1"), make_cdr("c2")], 10))
    assert writer.wait(writer.submit([make_cdr("c2", talk_ms=1), make_cdr("c3"), make_cdr("c3")], 20))
    assert writer.wait(writer.submit([make_cdr("c2", talk_ms=2)], 30))
    assert stored_call_ids(paths[0]) == ["c1", "c2", "c2.dup1", "c3", "c3.dup1", "c2.dup2"]
    con = sqlite3.connect(paths[0])
    talk = dict(con.execute("SELECT call_id, talk_ms FROM cdr").fetchall())
    con.close()
    assert (talk["c2"], talk["c2.dup1"], talk["c2.dup2"]) == (61_000, 1, 2)    # each record as it came
    assert writer.repeated_ids == [("c2", "c2.dup1"), ("c3", "c3.dup1"), ("c2", "c2.dup2")]
    assert writer.stats()["ids_repeated"] == 3
