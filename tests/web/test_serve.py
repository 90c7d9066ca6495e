"""Serving the panel: loopback only, options handed to gunicorn, and one real start on an ephemeral port."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from appliance.web import PanelError
from appliance.web.serve import LOOPBACK_ONLY, PanelServer, check_bind, main, run_panel
from tests.web import OFFERED_AT, live_site

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record what run_panel would hand to gunicorn instead of starting it."""
    runs: list[dict[str, Any]] = []

    def run(self: PanelServer) -> None:
        runs.append({"bind": self.cfg.bind, "workers": self.cfg.workers, "app": self.load(),
                     "control_socket_disable": self.cfg.settings["control_socket_disable"].get()})

    monkeypatch.setattr(PanelServer, "run", run)
    return runs


@pytest.mark.parametrize("bind", ["0.0.0.0", "0.0.0.0:8080", "192.168.1.5", "192.168.1.5:8080", "[::]:8080", "::",
                                  "10.0.0.1:80", "panel.example:8080", "unix:/run/panel.sock"])
def test_refuses_anything_but_loopback(bind: str, started: list[dict[str, Any]]) -> None:
    with pytest.raises(PanelError) as exc:
        run_panel(Path("/nonexistent"), bind=bind)
    assert str(exc.value) == "the panel binds 127.0.0.1 only until accounts exist" == LOOPBACK_ONLY
    assert isinstance(exc.value, ValueError)
    assert started == []


@pytest.mark.parametrize(("bind", "expected"), [
    ("127.0.0.1:0", ("127.0.0.1", 0)), ("127.0.0.1:8080", ("127.0.0.1", 8080)), ("127.0.0.1", ("127.0.0.1", 8080)),
    ("127.1.2.3:9000", ("127.1.2.3", 9000)), ("[::1]:8080", ("::1", 8080)), ("::1", ("::1", 8080)),
    ("localhost:8080", ("localhost", 8080)),
])
def test_accepts_loopback(bind: str, expected: tuple[str, int]) -> None:
    assert check_bind(bind) == expected


@pytest.mark.parametrize(("bind", "message"), [
    ("127.0.0.1:http", "bad bind address '127.0.0.1:http': the port must be a number from 0 to 65535"),
    ("127.0.0.1:65536", "bad bind address '127.0.0.1:65536': the port must be a number from 0 to 65535"),
    (":8080", "bad bind address ':8080': expected HOST:PORT, e.g. 127.0.0.1:8080"),
    ("[::1", "bad bind address '[::1': expected HOST:PORT, e.g. 127.0.0.1:8080"),
])
def test_bad_bind_addresses(bind: str, message: str) -> None:
    with pytest.raises(PanelError) as exc:
        check_bind(bind)
    assert str(exc.value) == message


def test_run_panel_hands_gunicorn_the_app_and_settings(tmp_path: Path, started: list[dict[str, Any]]) -> None:
    run_panel(tmp_path, bind="127.0.0.1:0", workers=3)
    run_panel(tmp_path, bind="::1", workers=1)
    assert [(r["bind"], r["workers"]) for r in started] == [(["127.0.0.1:0"], 3), (["[::1]:8080"], 1)]
    assert started[0]["app"].config["STATE_DIR"] == str(tmp_path)
    assert started[0]["control_socket_disable"] is True
    with pytest.raises(PanelError, match="workers must be at least 1, not 0"):
        run_panel(tmp_path, bind="127.0.0.1:0", workers=0)


def test_main(tmp_path: Path, started: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--state-dir", str(tmp_path), "--bind", "127.0.0.1:8081"]) == 0
    assert started[0]["bind"] == ["127.0.0.1:8081"] and started[0]["workers"] == 2
    assert main(["--state-dir", str(tmp_path), "--bind", "0.0.0.0:8080"]) == 2
    assert capsys.readouterr().err == "cicbox panel: the panel binds 127.0.0.1 only until accounts exist\n"


def _listening_port(proc: subprocess.Popen[bytes], deadline_s: float) -> int:
    """Read gunicorn's log until it says where it listens; fail with the log if it does not."""
    assert proc.stderr is not None
    log = b""
    end = time.monotonic() + deadline_s  # clock-source: a bound on a real process's start-up
    while time.monotonic() < end:
        ready, _, _ = select.select([proc.stderr], [], [], max(0.0, end - time.monotonic()))
        if not ready:
            break
        chunk = os.read(proc.stderr.fileno(), 65536)
        if not chunk:
            break
        log += chunk
        found = re.search(rb"Listening at: http://127\.0\.0\.1:(\d+)", log)
        if found:
            return int(found.group(1))
    pytest.fail(f"gunicorn did not start:\n{log.decode(errors='replace')}")


def test_real_start_on_an_ephemeral_port(tmp_path: Path) -> None:
    site = live_site(tmp_path)           # a real engine in virtual time: a call offered to the agent
    site.run(OFFERED_AT)
    engine_up = True
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    env.pop("XDG_RUNTIME_DIR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance.web.serve", "--state-dir", str(tmp_path), "--bind", "127.0.0.1:0",
         "--workers", "1"],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        port = _listening_port(proc, 20.0)
        # (the wallboard's data needs a signed-in account: tests/web/test_wallboard*.py)
        with site.serving(), urllib.request.urlopen(f"http://127.0.0.1:{port}/static/wallboard.js",
                                                    timeout=10) as resp:
            assert resp.status == 200
            assert resp.headers["X-Frame-Options"] == "DENY"
            assert b"new EventSource(" in resp.read()
        site.close()  # the engine goes away: the panel stays up
        engine_up = False
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/panel.css", timeout=10) as resp:
            assert resp.status == 200
    finally:
        if engine_up:
            site.close()
        proc.terminate()
        proc.wait(timeout=15)
        assert proc.stderr is not None
        proc.stderr.close()
    assert not (tmp_path / ".gunicorn").exists()  # no control socket under $HOME
