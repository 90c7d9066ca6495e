"""`cicbox run` with an outside phone on the far-end socket, on both clocks: off hook, dial tone,
the agent's login digits, on hook. The phone is tests/peers/far_phone.py, a separate process that
knows the standard library and docs/sim-far-end.md only; the digits it sends are spandsp's."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import site_yaml
from tests.peers import spandsp_far

PHONE = Path(__file__).resolve().parent.parent / "peers" / "far_phone.py"
PORT = 2                       # phone1 in site_yaml: two trunks, then the phones


def spandsp_digits(tmp_path: Path, digits: str) -> Path:
    """`digits` as spandsp sends them, in the file far_phone.py --samples reads."""
    path = tmp_path / "digits.json"
    path.write_text(json.dumps({"digits": list(spandsp_far.dtmf(digits))}))
    return path


def run_engine_with_phone(tmp_path: Path, clock: str, k: int) -> tuple[dict[str, float], str]:
    site = tmp_path / "site.yaml"
    site.write_text(site_yaml(agents=1).replace("k: 4", f"k: {k}"))
    cmd = [sys.executable, "-m", "appliance.cli", "--log-level", "DEBUG", "run", "--state-dir", str(tmp_path),
           "--config", str(site), "--clock", clock, "--duration", "5"]
    ready = "engine running"
    if clock == "virtual":
        cmd += ["--wait-peer", "30"]
        ready = "waiting up to 30 s for a far-end peer"
    engine = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert engine.stderr is not None
    log = []
    phone = None
    try:
        for line in engine.stderr:          # the engine says when sim.sock listens
            log.append(line)
            if ready in line:
                break
        phone = subprocess.run([sys.executable, str(PHONE), str(tmp_path / "sim.sock"), str(PORT), "*211001#",
                                "--samples", str(spandsp_digits(tmp_path, "*211001#"))],
                               capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"},
                               cwd=str(tmp_path), check=False)
        _, err = engine.communicate(timeout=60)
    finally:
        engine.kill()
    log.append(err)
    text = "".join(log)
    assert engine.returncode == 0, text
    assert phone is not None and phone.returncode == 0, phone.stderr if phone else ""
    return json.loads(phone.stdout.strip().splitlines()[-1]), text


def check_the_call(tmp_path: Path, heard: dict[str, float], log: str) -> None:
    assert heard["tone_hz"] == 450                               # cn dial tone after off hook
    moves = re.findall(r"phone\(phone1\): (\w+) -> (\w+)", log)
    assert moves[0] == ("IDLE", "DIALTONE"), log
    assert ("DIALTONE", "DIALLING") in moves
    assert moves[-1][1] == "IDLE"                                # on hook again
    assert "agent 1001: ready (login)" in log                    # the digits reached the feature codes
    # The closing summary counts late blocks (the realtime clock may meet one); a refusal or a drop
    # would be a fault: the summary's counts say none, and no other line speaks of one.
    summary = re.findall(r"(\d+) peers dropped, (\d+) refused \(by reason (\{.*?\})\), HELLOs refused (\{.*?\})", log)
    others = [line for line in log.splitlines() if ("refused" in line or "dropped" in line)
              and "late blocks" not in line]
    assert all(s == ("0", "0", "{}", "{}") for s in summary) and not others, log
    con = sqlite3.connect(tmp_path / "cicbox.db")
    rows = con.execute("SELECT agent, json_extract(detail, '$.state') || ': ' || json_extract(detail, '$.why') "
                       "FROM event WHERE kind = 'agent_state'").fetchall()
    con.close()
    assert rows == [("1001", "ready: login")]


def test_a_phone_on_a_realtime_engine(tmp_path: Path) -> None:
    heard, log = run_engine_with_phone(tmp_path, "realtime", k=10)
    check_the_call(tmp_path, heard, log)


@pytest.mark.parametrize("k", [4, 5])
def test_a_phone_drives_a_virtual_engine_in_lockstep(tmp_path: Path, k: int) -> None:
    heard, log = run_engine_with_phone(tmp_path, "virtual", k=k)
    check_the_call(tmp_path, heard, log)
    assert "no far-end peer" not in log


def test_linetest_on_the_realtime_clock_answers_an_outside_phone(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "appliance.cli", "linetest", "--ports", "fxs,fxs", "--clock", "realtime",
           "-k", "10", "--duration", "4", "--state-dir", str(tmp_path)]
    engine = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert engine.stderr is not None
    try:
        for line in engine.stderr:
            if "media thread started" in line:
                break
        peer = subprocess.run([sys.executable, str(PHONE), str(tmp_path / "sim.sock"), "1", "42",
                               "--samples", str(spandsp_digits(tmp_path, "42"))], capture_output=True,
                              text=True, timeout=60, env={"PATH": "/usr/bin:/bin"}, check=False)
        out, err = engine.communicate(timeout=60)
    finally:
        engine.kill()
    assert engine.returncode == 0, err
    assert peer.returncode == 0, peer.stderr
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["event"] for e in events if e["chan"] == 1][:1] == ["HOOK_OFF"]
    assert [e["value"] for e in events if e["event"] == "DTMF"] == ["4", "2"]
    assert json.loads(peer.stdout.strip().splitlines()[-1])["tone_hz"] == 450
