"""Commits that keep up (virtual time): inside run_for the engine hands the writer a second's periods as
one commit and waits only at fixed points of its clock, so heavy record traffic costs at most about one
commit (one WAL fsync) a virtual second; what is stored, and its order, are the same as with a commit
every period (the engine run period by period); and nothing the engine does or publishes depends on
how fast the writer thread is."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from appliance.storage import cdr_digest
from appliance.storage.fileio import FileIO
from appliance.world import Caller, PhoneScript
from tests.e2e.harness import Site, site_yaml

TRUNKS = 12


def busy_callers(seconds: int, trunks: int = TRUNKS) -> list[Caller]:
    """Short calls on every trunk, a new one on each trunk every 2.5 s: some hang up in the IVR, some
    queue and are answered or give up."""
    out = []
    for i in range(seconds * trunks * 2 // 5):
        trunk, turn = i % trunks, i // trunks
        kind = i % 3
        out.append(Caller(trunk=trunk, at_ms=100 + 2500 * turn + 2500 * trunk // trunks, ani=f"1371{i:07d}",
                          digits="" if kind == 0 else "1", press_after_ms=100, hold_ms=600 + 100 * (i % 5),
                          patience_ms=300 if kind == 0 else 900))
    return out


def phones(agents: int) -> list[PhoneScript]:
    return [PhoneScript(port=TRUNKS + a, agent=str(1001 + a), login_at_ms=0, answer_after_ms=200)
            for a in range(agents)]


def busy_site(tmp: Path, seconds: int, **engine_args: Any) -> Site:
    return Site(tmp, site_yaml(agents=3, trunks=TRUNKS, answer_on_ring=1), busy_callers(seconds), phones(3),
                keep_audio=False, **engine_args)


def dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the record tables: CDRs and queue events with their row ids, in row id order (the
    order they were stored in); the marks of calls in progress and the agents' sessions by their keys
    (a row replaced by a newer one gets a new row id: one per commit, not per period)."""
    con = sqlite3.connect(db)
    try:
        return {**{t: con.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in ("cdr", "event")},
                "live_call": con.execute("SELECT * FROM live_call ORDER BY call_id").fetchall(),
                "agent_session": con.execute("SELECT * FROM agent_session ORDER BY agent").fetchall()}
    finally:
        con.close()


def outcomes(site: Site) -> list[tuple[Any, ...]]:
    return [(c.blocked, c.rang_ms, c.answered_ms, c.connected_ms, c.hung_up_ms) for c in site.world.callers]


def test_heavy_record_traffic_costs_at_most_one_commit_a_virtual_second(tmp_path: Path) -> None:
    seconds = 12
    site = busy_site(tmp_path, seconds)
    engine = site.engine
    waits: list[int] = []
    wait = engine.writer.wait

    def timed_wait(seq: int, timeout_s: float | None = None) -> bool:
        waits.append(engine.clock.now_ms)
        return wait(seq, timeout_s)

    engine.writer.wait = timed_wait  # type: ignore[method-assign]
    start = engine.writer.stats()
    try:
        site.run(seconds * 1000)
        end = engine.writer.stats()
        cdrs = len(site.engine.released_log)
        now = engine.clock.now_ms
    finally:
        site.close()
    # Heavy: several calls a second, records in most periods (a commit each would be many a second).
    assert cdrs >= 3 * seconds
    assert end["submitted_seq"] - start["submitted_seq"] >= 8 * seconds
    # At most one commit a virtual second, and one more when run_for returns; no spool in use.
    assert end["commits"] - start["commits"] <= seconds + 1
    assert end["fsyncs"] - start["fsyncs"] == end["commits"] - start["commits"]
    # The waits come at fixed points of the engine clock: the first period at or past each second.
    assert waits[-1] == now                            # run_for's end (the period that passed its time)
    assert all(t % 1000 < engine.period_ms for t in waits[:-1]) and len(waits) <= seconds + 1
    # Everything is durable when run_for returns.
    assert end["committed_seq"] == end["submitted_seq"]
    assert len(dump(tmp_path / "cicbox.db")["cdr"]) == cdrs


def run_grouped(site: Site, ms: int) -> None:
    site.run(ms)                                       # one run_for: a commit a second


def run_ungrouped(site: Site, ms: int) -> None:
    end = site.engine.clock.now_ms + ms
    while site.engine.clock.now_ms < end:              # each period run on its own: a commit a period
        site.engine.run_period()


def test_grouped_and_ungrouped_store_the_same_records_in_the_same_order(tmp_path: Path) -> None:
    seconds = 9
    results = []
    for name, run in (("grouped", run_grouped), ("ungrouped", run_ungrouped)):
        state = tmp_path / name
        state.mkdir()
        site = busy_site(state, seconds + 5)           # callers still coming at the end
        try:
            run(site, seconds * 1000 + 430)            # ends mid-second, with calls up (their marks stored)
            live = sorted(site.engine.calls)
            commits = site.engine.writer.stats()["commits"]
            released = [r.call_id for r in site.engine.released_log]
            stats = dict(site.engine.stats)
        finally:
            site.close()
        results.append((dump(state / "cicbox.db"), cdr_digest(state / "cicbox.db"), live, released, stats,
                        outcomes(site), commits))
    (tables, digest, live, released, stats, calls, commits), ungrouped = results
    assert len(tables["cdr"]) >= 3 * seconds and tables["event"] and tables["live_call"] and live
    assert [r[0] for r in tables["live_call"]] == live
    assert tables == ungrouped[0]                      # every row, its id (the order stored) included
    assert digest == ungrouped[1]
    assert (live, released, stats, calls) == ungrouped[2:6]
    assert commits * 4 < ungrouped[6]                  # and the grouped run made far fewer commits


class GatedIO(FileIO):
    """Holds the writer thread after each commit (before it reports it) until the gate opens."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.held = 0

    def database_synced(self, db_path: Path) -> None:
        if not self.gate.is_set():
            self.held += 1
        self.gate.wait()


def observe(tmp: Path, seconds: int, writer_speed: str) -> tuple[list[Any], int]:
    """Per period: the engine's snapshot, its released log and backpressure, with the writer thread as fast
    as can be (each hand-over dealt with before the engine runs on) or held back until the engine waits.
    The database cannot commit for two seconds of the run (its batches are spooled)."""
    io = GatedIO()
    site = busy_site(tmp, seconds, writer_options={"io": io})
    engine = site.engine
    writer = engine.writer
    assert writer._engine is not None

    def fail(*_args: Any) -> None:
        if 3000 <= writer._last_tick < 5000:            # by the tick of the batches the thread commits
            raise OperationalError("INSERT", None, sqlite3.OperationalError("disk I/O error"))

    event.listen(writer._engine, "before_cursor_execute", fail)
    wait, hand_over = writer.wait, writer.hand_over

    def gated_wait(seq: int, timeout_s: float | None = None) -> bool:
        io.gate.set()
        try:
            return wait(seq, timeout_s)
        finally:
            if writer_speed == "slow":
                io.gate.clear()

    def eager_hand_over() -> None:
        hand_over()
        with writer._cond:                              # the thread's own state is up to date
            assert writer._cond.wait_for(lambda: writer._processed >= writer.handed_seq, 60)

    writer.wait = gated_wait  # type: ignore[method-assign]
    if writer_speed == "fast":
        writer.hand_over = eager_hand_over  # type: ignore[method-assign]
    else:
        io.gate.clear()
    seen: list[Any] = []
    period: Callable[[], None] = engine.run_period

    def run_period() -> None:
        period()
        seen.append((engine.snapshot(), [r.call_id for r in engine.released_log], engine.records_backpressure,
                     engine.records_not_yet_durable))

    engine.run_period = run_period  # type: ignore[method-assign]
    try:
        site.run(seconds * 1000)
    finally:
        io.gate.set()
        site.close()
    return seen, io.held


def test_what_the_engine_publishes_does_not_depend_on_the_writers_speed(tmp_path: Path) -> None:
    (tmp_path / "fast").mkdir()
    (tmp_path / "slow").mkdir()
    fast, _ = observe(tmp_path / "fast", 8, "fast")
    slow, held = observe(tmp_path / "slow", 8, "slow")
    assert held >= 4                                   # the slow writer really was behind the engine
    alarms = {a["kind"] for snap, *_ in fast for a in snap["alarms"]}
    assert {"records_commit_failing", "records_spooled"} <= alarms
    assert any(n for *_, n in fast)                     # records waited for the next point
    assert len(fast) == len(slow)
    for t, (a, b) in enumerate(zip(fast, slow, strict=True)):
        assert a == b, f"period {t}: the engine saw the writer differently"
    assert cdr_digest(tmp_path / "fast" / "cicbox.db") == cdr_digest(tmp_path / "slow" / "cicbox.db")
