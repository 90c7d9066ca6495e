"""Commits on wait (the engine's writer in virtual time): nothing is committed until a wait asks,
the periods since the last wait are one commit, in order; a hand-over is committed while the caller
goes on, but what the writer reports changes only when the caller waits; commits and fsyncs are
counted (each commit a WAL fsync under synchronous=FULL, plus the spool's own fsyncs)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from appliance.storage import RecordWriter
from tests.storage import count_cdrs, make_cdr, make_event, stored_call_ids, stored_event_call_ids


@pytest.fixture
def paths(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "cicbox.db", tmp_path / "records.spool"


@pytest.fixture
def writer(paths: tuple[Path, Path]) -> Iterator[RecordWriter]:
    w = RecordWriter(*paths, idle_retry_s=None, commit_on_wait=True)
    w.start()
    yield w
    w.close()


def period(n: int) -> list[Any]:
    return [make_cdr(f"p{n:03d}-a"), make_event(f"p{n:03d}-a"), make_cdr(f"p{n:03d}-b")]


def ids(periods: range) -> list[str]:
    return [f"p{n:03d}-{x}" for n in periods for x in "ab"]


def settled(w: RecordWriter) -> None:
    """Until the thread has dealt with everything handed over to it (its own state, not what it reports)."""
    with w._cond:
        assert w._cond.wait_for(lambda: w._processed >= w.handed_seq, 60)


def test_nothing_is_committed_until_a_wait_then_the_periods_are_one_commit(
        writer: RecordWriter, paths: tuple[Path, Path]) -> None:
    before = writer.stats()
    seqs = [writer.submit(period(n), n * 10) for n in range(100)]
    assert seqs == list(range(1, 101))
    assert count_cdrs(paths[0]) == 0                  # gathered: the thread has not been given them
    assert writer.committed_seq == 0 and writer.stats()["queued_batches"] == 100
    assert writer.wait(100)
    after = writer.stats()
    assert after["commits"] - before["commits"] == 1
    assert after["fsyncs"] - before["fsyncs"] == 1    # one commit, one fsync of the WAL; the spool is untouched
    assert after["committed_seq"] == 100 and after["committed_tick"] == 990 and after["queued_batches"] == 0
    assert stored_call_ids(paths[0]) == ids(range(100))
    assert stored_event_call_ids(paths[0]) == [f"p{n:03d}-a" for n in range(100)]
    assert writer.wait(100)                           # nothing new: no commit
    assert writer.stats()["commits"] == after["commits"]


def test_a_wait_for_an_earlier_batch_commits_everything_gathered(writer: RecordWriter,
                                                                 paths: tuple[Path, Path]) -> None:
    for n in range(5):
        writer.submit(period(n), n)
    assert writer.wait(2)
    assert writer.committed_seq == 5 and stored_call_ids(paths[0]) == ids(range(5))


def test_a_hand_over_is_committed_meanwhile_and_reported_at_the_next_wait(
        writer: RecordWriter, paths: tuple[Path, Path]) -> None:
    start = writer.stats()
    for n in range(3):
        writer.submit(period(n), n * 10)
    writer.hand_over()
    assert writer.handed_seq == 3
    settled(writer)
    assert stored_call_ids(paths[0]) == ids(range(3))   # in the database already
    # ... but the writer still reports what it did at the last wait.
    assert writer.committed_seq == 0
    assert writer.stats() == dict(start, submitted_seq=3, queued_batches=3)
    writer.submit(period(3), 30)                       # gathered for the next hand-over
    assert writer.wait(writer.handed_seq)              # waits for the hand-over only
    assert writer.committed_seq == 3 and writer.stats()["commits"] == start["commits"] + 1
    assert stored_call_ids(paths[0]) == ids(range(3))
    assert writer.wait(4)
    assert stored_call_ids(paths[0]) == ids(range(4))


def test_conditions_change_only_at_a_wait_and_spool_fsyncs_count(writer: RecordWriter,
                                                                 paths: tuple[Path, Path]) -> None:
    failing = [True]
    assert writer._engine is not None

    def fail(*_args: Any) -> None:
        if failing[0]:
            raise OperationalError("INSERT", None, sqlite3.OperationalError("disk I/O error"))

    event.listen(writer._engine, "before_cursor_execute", fail)
    start = writer.stats()
    writer.submit(period(0), 0)
    writer.hand_over()
    settled(writer)                                    # spooled by now
    assert writer.health == {} and writer.alarm is None and writer.committed_seq == 0
    assert writer.wait(1)
    assert writer.alarm == "database cannot commit: disk I/O error; 3 records spooled"
    spooled = writer.stats()
    # The spool's append: its records fsynced, then the header that counts them (spool.py).
    assert spooled["spool_fsyncs"] - start["spool_fsyncs"] == 2 and spooled["commits"] == start["commits"]
    assert spooled["fsyncs"] - start["fsyncs"] == 2
    failing[0] = False
    writer.submit(period(1), 10)
    writer.hand_over()
    settled(writer)
    assert "records_spooled" in writer.health          # cleared, but not yet reported
    assert writer.wait(2)
    assert writer.alarm is None
    done = writer.stats()
    # One commit (the spool's records and the new ones), then the spool emptied: a new header, fsynced.
    assert done["commits"] - spooled["commits"] == 1 and done["spool_fsyncs"] - spooled["spool_fsyncs"] == 1
    assert done["fsyncs"] - spooled["fsyncs"] == 2
    assert stored_call_ids(paths[0]) == ids(range(2))


def test_close_commits_what_was_gathered(paths: tuple[Path, Path]) -> None:
    w = RecordWriter(*paths, commit_on_wait=True)
    w.start()
    for n in range(5):
        w.submit(period(n), n)
    w.close()
    assert stored_call_ids(paths[0]) == ids(range(5))
    assert w.committed_seq == 5 and w.stats()["queued_batches"] == 0


def test_without_commit_on_wait_each_batch_is_committed_as_it_comes(paths: tuple[Path, Path]) -> None:
    w = RecordWriter(*paths)
    w.start()
    try:
        w.submit(period(0), 0)
        assert w.handed_seq == 1
        settled(w)
        assert w.committed_seq == 1                    # reported at once: the realtime writer
        assert stored_call_ids(paths[0]) == ids(range(1))
    finally:
        w.close()
