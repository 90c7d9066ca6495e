"""`cicbox run` with libpri on a PRI span over sim.sock, as an installer sees it: the engine waits for the
peer (--wait-peer), its clock paused and advanced by `cicbox clock advance`; `cicbox span status` shows the
span's call control (side, switch, D-channel, calls, B-channels), `cicbox status` the PRI call with its
timeslot and caller's number as received; SIGTERM stops it cleanly with the call's record stored. And a
site whose PRI keys are wrong is refused by `cicbox run`, `config check` and `config apply` with the
error at its FILE:LINE:COL, exit 2."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import site_yaml
from tests.e2e.pri_site import ANI, HOTEL_DNIS, call, pri_site_yaml
from tests.peers.pri_peer import BIN, PriPeer

pytestmark = pytest.mark.skipif(not BIN.exists(), reason="tests/peers/bin/pri_peer is not built (make setup)")


def cicbox(state: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "appliance.cli", *argv, "--state-dir", str(state)],
                          capture_output=True, text=True, timeout=60, check=False)


def advance(state: Path, ms: int) -> int:
    done = cicbox(state, "clock", "advance", str(ms))
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[2])


def test_a_running_engine_with_libpri_on_its_span(tmp_path: Path) -> None:
    config = tmp_path / "site.yaml"
    config.write_text(pri_site_yaml(site_yaml(agents=1), "e1", "pri_cpe", ", timers: {T310: 20000}"))
    state = tmp_path / "state"
    cmd = [sys.executable, "-m", "appliance.cli", "run", "--clock", "virtual", "--paused", "--wait-peer", "30",
           "--config", str(config), "--state-dir", str(state)]
    engine = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "NOTIFY_SOCKET": ""})
    assert engine.stderr is not None
    peer = None
    try:
        for line in engine.stderr:          # the engine says when sim.sock listens for the peer
            if "waiting up to 30 s for a far-end peer" in line:
                break
        peer = PriPeer(state / "sim.sock", "span1", side="network", switch="euroisdn", workdir=tmp_path,
                       script=[call(2000, pres="restricted"), {"at_ms": 6000, "do": "hangup", "call": 1, "cause": 16}])
        advance(state, 1500)
        doc = json.loads(cicbox(state, "span", "status", "--json").stdout)
        assert doc["spans"][0]["pri"] == {"side": "user", "switch": "euroisdn", "dchan": "up", "calls": 0,
                                          "b_idle": 30, "b_busy": 0, "b_out_of_service": 0, "restarting": 0,
                                          "alarm": False}
        advance(state, 1500)
        text = cicbox(state, "span", "status").stdout.splitlines()
        assert text[2].split() == ["pri", "user", "euroisdn", "D-channel", "up", "calls", "1", "B-channels", "idle",
                                   "29", "busy", "1", "out", "of", "service", "0"]
        snap = json.loads(cicbox(state, "status", "--json").stdout)
        assert [(c["trunk"], c["ani"], c["dnis"], c["line"], c["timeslot"], c["ani_presentation"], c["state"])
                for c in snap["calls"]] == [("span1", ANI, HOTEL_DNIS, "pri", 1, "restricted", "ivr")]
        assert [{k: e[k] for k in ("name", "state", "taps")} for e in snap["echo_timeslots"]] == [
            {"name": "span1/ts1", "state": "on", "taps": 128}]
        advance(state, 4000)
        doc = json.loads(cicbox(state, "span", "status", "--json").stdout)
        assert (doc["spans"][0]["pri"]["calls"], doc["spans"][0]["pri"]["b_busy"]) == (0, 0)
        # A change of the span's Q.931 timers and overlap applies to the next calls; a wrong one is refused
        # at its place; a change of side waits for a restart.
        bad = tmp_path / "bad.yaml"
        bad.write_text(BAD)
        refused = cicbox(state, "config", "apply", str(bad), "--base", "1")
        assert refused.returncode == 2
        assert [f"{bad}:{line}:{col}" for line, col in (bad_at(BAD, "national"), bad_at(BAD, "T999"))] == \
            [e.split(": ")[0].removeprefix("cicbox: ") for e in refused.stderr.strip().splitlines()[-2:]]
        good = tmp_path / "good.yaml"
        good.write_text(config.read_text().replace("T310: 20000}", "T310: 25000, T303: 6000}, overlap: false"))
        applied = cicbox(state, "config", "apply", str(good), "--base", "1")
        assert applied.returncode == 0 and applied.stdout.strip() == "applied as version 2", applied.stderr
        net = tmp_path / "net.yaml"
        net.write_text(good.read_text().replace("pri_cpe", "pri_net"))
        waits = cicbox(state, "config", "apply", str(net), "--base", "2")
        assert waits.returncode == 0 and waits.stdout.startswith("stored as version 3"), waits.stderr
        assert "signalling" in waits.stdout
    finally:
        engine.send_signal(signal.SIGTERM)
        _, err = engine.communicate(timeout=60)
        rc = peer.stop() if peer is not None else None
    assert engine.returncode == 0, err
    assert rc == 0
    con = sqlite3.connect(state / "cicbox.db")
    try:
        rows = con.execute("SELECT trunk, timeslot, ani, ani_presentation, dnis, disposition, cause "
                           "FROM cdr").fetchall()
    finally:
        con.close()
    assert rows == [("span1", 1, ANI, "restricted", HOTEL_DNIS, "ivr_hangup", 16)]


BAD = pri_site_yaml(site_yaml(agents=1), "e1", "pri_cpe", ", switchtype: national, timers: {T999: 5}")


def bad_at(text: str, needle: str) -> tuple[int, int]:
    pos = text.index(needle)
    return text.count("\n", 0, pos) + 1, pos - (text.rfind("\n", 0, pos) + 1) + 1


def test_a_wrong_pri_span_is_refused_at_its_place_by_run_check_and_apply(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    (l1, c1), (l2, c2) = bad_at(BAD, "national"), bad_at(BAD, "T999")
    want = [f"{path}:{l1}:{c1}: spans.0.switchtype: national (NI-2) is for t1 spans; an e1 span speaks euroisdn "
            "(EuroISDN)",
            f"{path}:{l2}:{c2}: spans.0.timers.T999: unknown timer (known: T302, T303, T304, T305, T308, T309, "
            "T310, T313, T316, T322, T200, T203)"]
    run = subprocess.run([sys.executable, "-m", "appliance.cli", "run", "--clock", "virtual", "--duration", "1",
                          "--config", str(path), "--state-dir", str(tmp_path / "state")],
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 2
    assert [line.removeprefix("cicbox: ") for line in run.stderr.strip().splitlines()[-2:]] == want
    check = cicbox(tmp_path, "config", "check", str(path))
    assert check.returncode == 2 and check.stderr.strip().splitlines() == want
