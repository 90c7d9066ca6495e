"""The writer's health: each condition a kind of its own, one log line per change (never one per
commit), a spool that cannot be allocated retried each minute of period ticks without leaving its
temporary file, held records past their bound asking for backpressure, and a free-space floor."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from appliance.storage import RecordWriter
from appliance.storage.spool import MIN_SPOOL_BYTES
from appliance.storage.writer import SPOOL_RETRY_MS
from tests.storage import make_cdr, stored_call_ids
from tests.storage.lazyio import LazyIO
from tests.storage.test_spool import DiskFault


def storage_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "cicbox.storage"]


def writer(tmp_path: Path, io: LazyIO | None = None, **kw: object) -> RecordWriter:
    args: dict[str, object] = {"idle_retry_s": None, **kw}
    if io is not None:
        args["io"] = io
    w = RecordWriter(tmp_path / "cicbox.db", tmp_path / "records.spool", **args)  # type: ignore[arg-type]
    w.start()
    return w


def test_each_change_is_one_log_line_and_one_kind(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "cicbox.storage")
    w = writer(tmp_path)
    try:
        fault = DiskFault(w)
        fault.on = True
        for n in range(5):
            assert w.wait(w.submit([make_cdr(f"f{n}")], n * 10))
        assert w.health == {"records_commit_failing": "database cannot commit: disk I/O error",
                            "records_spooled": "5 records spooled"}
        fault.on = False
        for n in range(5, 10):
            assert w.wait(w.submit([make_cdr(f"f{n}")], n * 10))
        assert w.health == {}
    finally:
        w.close()
    assert storage_log(caplog) == [
        "record store: records_commit_failing: database cannot commit: disk I/O error",
        "record store: records_spooled: 1 records spooled",
        "record store: records_commit_failing cleared",
        "record store: records_spooled cleared",
    ]
    assert stored_call_ids(tmp_path / "cicbox.db") == [f"f{n}" for n in range(10)]


def test_unallocatable_spool_is_retried_each_minute_and_leaves_no_temporary_file(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "cicbox.storage")
    io = LazyIO(capacity=MIN_SPOOL_BYTES // 2)       # the spool does not fit
    w = writer(tmp_path, io, spool_bytes=MIN_SPOOL_BYTES, free_floor_bytes=0)
    try:
        assert set(w.health) == {"spool_unavailable"}
        assert "No space left on device" in w.health["spool_unavailable"]
        assert io.names == {}                        # the temporary file was removed
        # Commits go on; no log line per commit (there used to be one: "commits again").
        for n in range(20):
            assert w.wait(w.submit([make_cdr(f"c{n}")], n * 1000))
        io.capacity = None                           # space returns
        opens = io.ops
        assert w.wait(w.submit([], SPOOL_RETRY_MS - 10))
        assert set(w.health) == {"spool_unavailable"}            # not before the minute is over
        assert io.ops - opens < 5                                 # and not tried on every batch
        assert w.wait(w.submit([], SPOOL_RETRY_MS))
        assert w.health == {}
        assert set(io.names) == {tmp_path / "records.spool"}
    finally:
        w.close()
    assert storage_log(caplog)[-1] == "record store: spool_unavailable cleared"
    assert len(storage_log(caplog)) == 2
    assert len(stored_call_ids(tmp_path / "cicbox.db")) == 20


def test_held_records_past_their_bound_ask_for_backpressure_and_none_is_dropped(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "cicbox.storage")
    io = LazyIO(capacity=MIN_SPOOL_BYTES // 2)       # no spool: records that cannot commit are held
    w = writer(tmp_path, io, spool_bytes=MIN_SPOOL_BYTES, free_floor_bytes=0, max_held_records=10)
    try:
        fault = DiskFault(w)
        fault.on = True
        results = [w.wait(w.submit([make_cdr(f"h{n}"), make_cdr(f"h{n}x")], n * 10)) for n in range(8)]
        assert not any(results)                      # not safe: wait() says so
        assert w.backpressure
        health = w.health
        assert set(health) == {"records_commit_failing", "records_held_in_memory", "records_backpressure",
                               "spool_unavailable"}
        assert health["records_held_in_memory"] == "16 records held in memory and not safe (spool unavailable)"
        assert health["records_backpressure"].startswith("16 records held in memory (bound 10)")
        fault.on = False
        assert w.wait(w.submit([make_cdr("after")], 100))
        assert not w.backpressure
        assert set(w.health) == {"spool_unavailable"}
    finally:
        w.close()
    # The oldest first, none dropped.
    assert stored_call_ids(tmp_path / "cicbox.db") == [f"h{n}{x}" for n in range(8) for x in ("", "x")] + ["after"]
    lines = storage_log(caplog)
    assert sum("records_backpressure" in line for line in lines) == 2        # raised once, cleared once


def test_free_space_below_the_floor_is_a_condition(tmp_path: Path) -> None:
    io = LazyIO(capacity=MIN_SPOOL_BYTES + (40 << 10))
    w = writer(tmp_path, io, spool_bytes=MIN_SPOOL_BYTES, free_floor_bytes=32 << 10)
    try:
        assert w.wait(w.submit([make_cdr("a")], 10))
        assert w.health == {}
        io.capacity = MIN_SPOOL_BYTES + (16 << 10)
        assert w.wait(w.submit([make_cdr("b")], 20))
        assert w.health == {"disk_space_low": "16 KiB free for the records, below the floor of 32 KiB"}
        io.capacity = None
        assert w.wait(w.submit([make_cdr("c")], 30))
        assert w.health == {}
    finally:
        w.close()
