"""What a newcomer hits first: no systemd notify socket, `make demo` then `cicbox status` in another
shell, the demo's panel outliving the demo, a panel port in use, a mistyped --log-level."""

from __future__ import annotations

import importlib.util
import logging
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from appliance import cli
from tests.e2e.harness import Site, site_yaml

ROOT = Path(__file__).resolve().parent.parent.parent
NO_NOTIFY = "running without readiness and watchdog notifications"


def notify_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "cicbox.notify" and r.levelno == logging.WARNING]


@pytest.mark.parametrize("where", ["missing path", "unset"])
def test_no_notify_socket_is_a_warning_and_the_engine_runs(where: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    if where == "unset":
        monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    else:
        monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "no" / "notify.sock"))
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    site = Site(tmp_path, site_yaml(agents=1), [], [], keep_audio=False)
    try:
        site.run(2000)                              # READY and watchdog pings would be due
        assert site.engine.clock.now_ms >= 2000
    finally:
        site.close()
    (warning,) = notify_warnings(caplog)
    assert NO_NOTIFY in warning


def test_a_notify_socket_that_goes_away_is_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    site = Site(tmp_path, site_yaml(agents=1), [], [], keep_audio=False)
    try:
        sock.close()                                # systemd's end is gone before READY=1
        path.unlink()
        site.run(1000)
    finally:
        site.close()
    (warning,) = notify_warnings(caplog)
    assert warning.startswith(f"systemd notify socket {path}: ") and NO_NOTIFY in warning


def test_an_unknown_log_level_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--log-level", "LOUD", "status"])
    assert exc.value.code == 2
    assert "argument --log-level: invalid choice: 'LOUD'" in capsys.readouterr().err
    assert cli.build_parser().parse_args(["--log-level", "debug", "status"]).log_level == "DEBUG"


def test_the_state_dir_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CICBOX_STATE_DIR", raising=False)
    assert cli.find_state_dir(None) == Path("/var/lib/cicbox")
    (tmp_path / "state").mkdir()
    assert cli.find_state_dir(None) == Path("/var/lib/cicbox")      # ./state without a control.sock
    (tmp_path / "state" / "control.sock").touch()
    assert cli.find_state_dir(None) == tmp_path / "state"
    monkeypatch.setenv("CICBOX_STATE_DIR", str(tmp_path / "env"))
    assert cli.find_state_dir(None) == tmp_path / "env"
    assert cli.find_state_dir(str(tmp_path / "flag")) == tmp_path / "flag"


@pytest.mark.parametrize("argv", [["status"], ["config", "get"], ["config", "check", "FILE"]])
def test_read_commands_create_no_directory(argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    state = tmp_path / "nowhere"
    monkeypatch.setenv("CICBOX_STATE_DIR", str(state))
    site = tmp_path / "site.yaml"
    site.write_text(site_yaml(agents=1))
    rc = cli.main([str(site) if a == "FILE" else a for a in argv])
    assert rc == (0 if "check" in argv else 2)
    if rc:
        assert f"cicbox: cannot reach the engine at {state / 'control.sock'}: No such file" in capsys.readouterr().err
    assert not state.exists()


class DemoLog:
    """The demo's log, drained on a thread (a full pipe would stall the demo) and searched line by line."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        self.stream = proc.stderr
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self) -> None:
        for line in self.stream:
            self.lines.put(line)
        self.lines.put(None)

    def until(self, pattern: str) -> re.Match[str]:
        while True:
            line = self.lines.get(timeout=60)           # a bound on a real process's start-up
            if line is None:
                raise AssertionError("the demo ended:\n" + "".join(self.seen))
            self.seen.append(line)
            m = re.search(pattern, line)
            if m:
                return m

    def close(self) -> None:
        self.thread.join(timeout=30)
        if not self.thread.is_alive():              # a panel left behind would still hold the pipe
            self.stream.close()


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def test_make_demo_then_status_from_the_same_directory_and_the_panel_dies_with_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("CICBOX_STATE_DIR", "NOTIFY_SOCKET")}
    env["CICBOX_PANEL_CONF"] = str(tmp_path / "panel.conf")      # not this machine's /etc
    out = (tmp_path / "demo.out").open("w")
    # As `make demo` starts it (the state in ./state of the directory it runs in); the panel on a free port.
    demo = subprocess.Popen([sys.executable, "-m", "appliance.cli", "demo", "--state-dir", str(tmp_path / "state"),
                             "--config", str(ROOT / "configs" / "hotel.yaml"), "--listen", "127.0.0.1:0"],
                            cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=out,
                            stderr=subprocess.PIPE, text=True)
    log = DemoLog(demo)
    try:
        log.until(r"demo running")
        panel_pid = int(log.until(r"panel \(pid (\d+)\)").group(1))
        # Another shell, the same directory, no flags.
        status = subprocess.run([sys.executable, "-m", "appliance.cli", "status"], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=60, check=False)
        assert status.returncode == 0, status.stderr
        assert status.stdout.startswith("Grand Hotel  engine clock")
        assert not _gone(panel_pid)
        # It told where the panel is (https; port 0 here: a free one, in the panel's log).
        shown = (tmp_path / "demo.out").read_text()
        assert "panel: https://127.0.0.1:0/\n" in shown
        if importlib.util.find_spec("appliance.web.setupcode") is not None:   # the accounts part's codes
            lines = shown.splitlines()
            code = lines[lines.index("panel setup code (type it at /setup to create the installer):") + 1]
            assert re.fullmatch(r"[A-HJ-NP-Z2-9]{12}", code), shown
        demo.send_signal(signal.SIGKILL)            # the demo dies without any clean-up of its own
        demo.wait(timeout=30)
        end = time.monotonic() + 30  # clock-source: a bound on a real process's exit
        while not _gone(panel_pid):
            if time.monotonic() > end:  # clock-source
                os.kill(panel_pid, signal.SIGTERM)
                pytest.fail("the panel outlived the demo")
            time.sleep(0.05)  # clock-source: waiting on a subprocess
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(timeout=30)
        log.close()
        out.close()


def test_a_demo_whose_panel_dies_stops_cleanly_and_says_so(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("CICBOX_STATE_DIR", "NOTIFY_SOCKET")}
    env["CICBOX_PANEL_CONF"] = str(tmp_path / "panel.conf")
    demo = subprocess.Popen([sys.executable, "-m", "appliance.cli", "demo", "--state-dir", str(tmp_path / "state"),
                             "--listen", "127.0.0.1:0"], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    log = DemoLog(demo)
    try:
        log.until(r"demo running")
        panel_pid = int(log.until(r"panel \(pid (\d+)\)").group(1))
        os.kill(panel_pid, signal.SIGKILL)
        log.until(rf"the panel \(pid {panel_pid}\) ended with exit code -9: the demo stopped; start it again")
        assert demo.wait(timeout=30) == 1
        # It stopped cleanly: the directory is free for the next demo, whose engine finds no lost call.
        again = subprocess.run([sys.executable, "-m", "appliance.cli", "demo", "--state-dir", str(tmp_path / "state"),
                                "--clock", "virtual", "--duration", "1", "--json"], cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=120, check=False)
        assert again.returncode == 0, again.stderr
        assert "system_restart" not in again.stderr
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(timeout=30)
        log.close()


def test_a_panel_port_in_use_stops_the_demo_with_a_clear_message(tmp_path: Path) -> None:
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        out = subprocess.run([sys.executable, "-m", "appliance.cli", "demo", "--state-dir", str(tmp_path / "state"),
                              "--listen", f"127.0.0.1:{port}", "--duration", "5"],
                             capture_output=True, text=True, timeout=60, check=False)
    finally:
        taken.close()
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == (
        f"cicbox: the panel's port {port} on 127.0.0.1 is in use (another demo or panel?): stop it, or give "
        f"the demo another with --listen 127.0.0.1:PORT")
    assert not (tmp_path / "state").exists()        # nothing was started


def test_an_unreadable_watchdog_period_is_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "no" / "notify.sock"))
    monkeypatch.setenv("WATCHDOG_USEC", "abc")
    site = Site(tmp_path, site_yaml(agents=1), [], [], keep_audio=False)
    try:
        site.run(1000)
    finally:
        site.close()
    assert any("WATCHDOG_USEC='abc' is not a number" in w for w in notify_warnings(caplog))


def test_a_read_only_state_directory_is_a_clear_error(tmp_path: Path) -> None:
    state = tmp_path / "ro"
    state.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(state)],
                             capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        out = subprocess.run([sys.executable, "-m", "appliance.cli", "run", "--state-dir", str(state),
                              "--duration", "1"], capture_output=True, text=True, timeout=60, check=False)
    finally:
        subprocess.run(["umount", str(state)], check=False)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    assert "Read-only file system" in out.stderr.splitlines()[-1]
