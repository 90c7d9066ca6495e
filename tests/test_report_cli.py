"""`cicbox report` over a database the real writer wrote (engine down), read-only; `cicbox queues` and
`cicbox agents` over control.sock, with a stand-in engine until the ACD gives its views."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from appliance import cli
from appliance.control import ControlServer
from appliance.control.commands import EngineCommands
from appliance.figures import LiveFigures
from appliance.storage import RecordWriter
from tests.figures.scenario import AGENTS, AGENTS_TO_1MIN, EVENTS, QUEUES, QUEUES_FROM_1MIN, QUEUES_TO_1MIN, S


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A state directory whose database holds the scenario's events, written in three periods."""
    w = RecordWriter(tmp_path / "cicbox.db", tmp_path / "records.spool")
    w.start()
    try:
        for n, i in enumerate(range(0, len(EVENTS), 20)):
            assert w.wait(w.submit(EVENTS[i:i + 20], n * 1000))
    finally:
        w.close()
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = cli.main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def fingerprint(state: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(state.iterdir())}


def test_report_over_the_stored_events(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = fingerprint(state)
    rc, out, _ = run(capsys, "report", "queue", "--json", "--state-dir", str(state))
    assert rc == 0 and json.loads(out) == {"queues": QUEUES, "intervals": []}
    rc, out, _ = run(capsys, "report", "agent", "--json", "--state-dir", str(state))
    assert rc == 0 and json.loads(out) == {"agents": AGENTS, "intervals": []}
    rc, out, _ = run(capsys, "report", "queue", "--json", "--to", "2026-03-02T09:01", "--state-dir", str(state))
    assert json.loads(out)["queues"] == QUEUES_TO_1MIN
    rc, out, _ = run(capsys, "report", "agent", "--json", "--to", "2026-03-02T09:01:00", "--state-dir", str(state))
    assert json.loads(out)["agents"] == AGENTS_TO_1MIN
    rc, out, _ = run(capsys, "report", "queue", "--json", "--from", "2026-03-02T09:01", "--interval", "15m",
                     "--state-dir", str(state))
    doc = json.loads(out)
    assert doc["queues"] == QUEUES_FROM_1MIN
    assert [(i["start"], i["end"]) for i in doc["intervals"]] == [("2026-03-02T09:00:00", "2026-03-02T09:15:00")]
    rc, out, _ = run(capsys, "report", "queue", "--state-dir", str(state))
    lines = out.splitlines()
    assert rc == 0 and lines[0].split() == ["queue", "offered", "answered", "abandoned", "short", "withdrawn",
                                            "exits", "SL", "%", "ASA", "AHT", "max", "wait"]
    assert lines[1].split() == ["front", "6", "1", "3", "1", "1", "1", "50.0", "0:10", "1:10", "0:30"]
    assert lines[2].split() == ["vip", "3", "1", "1", "0", "0", "0", "0.0", "1:04", "1:20", "1:04"]
    rc, out, _ = run(capsys, "report", "agent", "--state-dir", str(state))
    assert out.splitlines()[1].split() == ["1001", "2", "1", "2:00", "0:30", "0:07", "1:04"]
    # Read-only: not a byte of the database changed, nor of any other file there. SQLite's reader made the WAL's
    # index (-shm) and an empty WAL beside the database, as any reader of a WAL database does.
    after = fingerprint(state)
    assert (state / "cicbox.db-wal").stat().st_size == 0 and "cicbox.db" in before
    assert {k: v for k, v in after.items() if k not in ("cicbox.db-wal", "cicbox.db-shm")} == before


@pytest.mark.parametrize(("argv", "message"), [
    (["--from", "yesterday"], "--from 'yesterday' is not an ISO 8601 date and time"),
    (["--to", "2026-13-01"], "--to '2026-13-01' is not an ISO 8601 date and time"),
    (["--from", "2026-03-02T10:00", "--to", "2026-03-02T09:00"], "--to 2026-03-02T09:00 is not after --from"),
    (["--interval", "5m"], "--interval must be one of 15m, 1h, day, not '5m'"),
])
def test_bad_report_arguments_exit_2(state: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                     message: str) -> None:
    rc, out, err = run(capsys, "report", "queue", *argv, "--state-dir", str(state))
    assert rc == 2 and message in err and not out


def test_report_without_a_database_or_on_an_old_one_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            state: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, _, err = run(capsys, "report", "agent", "--state-dir", str(empty))
    assert rc == 2 and "no record database there" in err
    import sqlite3

    con = sqlite3.connect(state / "cicbox.db")
    con.execute("UPDATE schema_version SET version = 2")
    con.commit()
    con.close()
    rc, _, err = run(capsys, "report", "agent", "--state-dir", str(state))
    assert rc == 2 and "schema version 2; the engine migrates it to version 4 when it next starts" in err


# -- live, over control.sock -------------------------------------------------------------------


class StandInAcd:
    def queues_view(self) -> dict[str, Any]:
        return {"front": {"waiting": 2, "longest_wait_ms": 40 * S, "agents": {"not_ready": 1}},
                "night": {"waiting": 0, "longest_wait_ms": 0, "agents": {}}}

    def agents_view(self) -> dict[str, Any]:
        return {"1001": {"state": "not_ready", "since_ms": 246 * S, "reason": "missed", "queue": None},
                "1002": {"state": "logged_out", "since_ms": 0, "reason": None, "queue": None}}


@pytest.fixture
def engine_sock(tmp_path: Path) -> Iterator[Path]:
    srv = ControlServer(tmp_path / "control.sock")
    live = LiveFigures()
    for e in EVENTS:
        live.add(e)
    engine = SimpleNamespace(control=srv, acd=StandInAcd(), live_figures=live, boot=1,
                             clock=SimpleNamespace(now_ms=250 * S), config_worker=None)
    EngineCommands(engine, None)  # type: ignore[arg-type]
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            srv.wait(0.01)
            srv.poll()

    t = threading.Thread(target=loop)
    t.start()
    yield tmp_path
    stop.set()
    t.join()
    srv.close()


def test_queues_and_agents_live(engine_sock: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "queues", "--json", "--state-dir", str(engine_sock))
    doc = json.loads(out)
    assert rc == 0
    assert doc["queues"]["front"] == {**QUEUES["front"], "waiting": 2, "longest_wait_ms": 40 * S,
                                      "agents": {"not_ready": 1}}
    assert doc["queues"]["vip"] == {**QUEUES["vip"], "waiting": 0, "longest_wait_ms": 0, "agents": {}}
    assert doc["queues"]["night"]["offered"] == 0 and doc["queues"]["night"]["sl_pct"] is None
    assert [i["start"] for i in doc["intervals"]] == ["2026-03-02T08:45:00", "2026-03-02T09:00:00"]
    rc, out, _ = run(capsys, "agents", "--json", "--state-dir", str(engine_sock))
    doc = json.loads(out)
    assert doc["agents"]["1001"] == {**AGENTS["1001"], "state": "not_ready", "since_ms": 246 * S,
                                     "reason": "missed", "queue": None}
    assert doc["agents"]["1002"]["answered"] == 0 and doc["agents"]["1002"]["state"] == "logged_out"
    rc, out, _ = run(capsys, "agents", "--state-dir", str(engine_sock))
    assert rc == 0 and out.splitlines()[1].split() == ["1001", "not_ready", "missed", "-", "2", "1", "2:00",
                                                       "0:30", "0:07", "1:04"]
    rc, out, _ = run(capsys, "queues", "--state-dir", str(engine_sock))
    assert rc == 0 and out.splitlines()[1].split()[:4] == ["front", "2", "0:40", "not_ready:1"]
