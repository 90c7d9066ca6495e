"""Serving the panel: the listen address and panel.conf, the Host check, the options handed to gunicorn, and
real starts on a free loopback port (HTTPS with the engine's snapshot, idle and half-open connections)."""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from appliance import cli
from appliance.web import PanelError, accounts, create_app
from appliance.web.clock import iso_ms
from appliance.web.serve import (
    DEFAULT_LISTEN,
    HANDSHAKE_DEADLINE_S,
    PEER_CONNECTIONS,
    READ_TIMEOUT_S,
    THREADS,
    PanelServer,
    PanelWorker,
    gunicorn_options,
    main,
    parse_listen,
    read_conf,
    resolve_listen,
    run_panel,
)
from tests.web.panel_proc import ROOT, PanelProcess, tls_connect


@pytest.fixture(autouse=True)
def no_site_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """panel.conf is a file of the test's own (absent unless the test writes it), never /etc's."""
    path = tmp_path / "panel.conf"
    monkeypatch.setenv("CICBOX_PANEL_CONF", str(path))
    monkeypatch.delenv("LISTEN_FDS", raising=False)
    monkeypatch.delenv("LISTEN_PID", raising=False)
    return path


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record what run_panel would hand to gunicorn instead of starting it."""
    runs: list[dict[str, Any]] = []

    def run(self: PanelServer) -> None:
        settings = self.cfg.settings
        runs.append({"bind": self.cfg.bind, "workers": self.cfg.workers, "threads": self.cfg.threads,
                     "worker_class": self.cfg.worker_class, "certfile": self.cfg.certfile,
                     "keyfile": self.cfg.keyfile, "app": self.load(),
                     "control_socket_disable": settings["control_socket_disable"].get(),
                     "on_starting": settings["on_starting"].get()})

    monkeypatch.setattr(PanelServer, "run", run)
    return runs


@pytest.mark.parametrize(("text", "expected"), [
    ("127.0.0.1:8443", ("127.0.0.1", 8443)), ("127.0.0.1", ("127.0.0.1", 8443)), ("0.0.0.0:443", ("0.0.0.0", 443)),
    ("192.168.1.5:8443", ("192.168.1.5", 8443)), ("[::]:8443", ("::", 8443)), ("::", ("::", 8443)),
    ("[::1]:9000", ("::1", 9000)), ("localhost:8443", ("localhost", 8443)), ("127.0.0.1:0", ("127.0.0.1", 0)),
])
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("127.0.0.1:https", "bad listen address '127.0.0.1:https': the port must be a number from 0 to 65535"),
    ("127.0.0.1:65536", "bad listen address '127.0.0.1:65536': the port must be a number from 0 to 65535"),
    (":8443", "bad listen address ':8443': expected ADDR:PORT, e.g. 127.0.0.1:8443 or [::]:8443"),
    ("[::1", "bad listen address '[::1': expected ADDR:PORT, e.g. 127.0.0.1:8443 or [::]:8443"),
    ("panel.example:8443", "bad listen address 'panel.example:8443': 'panel.example' is not an IP address "
                           "(expected ADDR:PORT, e.g. 127.0.0.1:8443 or [::]:8443)"),
])
def test_bad_listen_addresses(text: str, message: str) -> None:
    with pytest.raises(PanelError) as exc:
        parse_listen(text)
    assert str(exc.value) == message


def test_panel_conf_gives_the_listen_address_and_names(no_site_conf: Path) -> None:
    assert resolve_listen(None).text == DEFAULT_LISTEN == "127.0.0.1:8443"   # no file: the default
    no_site_conf.write_text("# the panel\nlisten = 0.0.0.0:9443   # every address\nnames = Panel.Example.NET., "
                            "cicbox.local\n", encoding="utf-8")
    where = resolve_listen(None)
    assert (where.text, where.names) == ("0.0.0.0:9443", ("panel.example.net", "cicbox.local"))
    assert resolve_listen("[::1]:8444").text == "[::1]:8444"                 # the command line wins


@pytest.mark.parametrize(("text", "message"), [
    ("listen = 10.0.0.1:99999\n", ":1: bad listen address '10.0.0.1:99999': the port must be a number from 0 to 65535"),
    ("\nport = 8443\n", ":2: unknown key 'port' (known: listen, names)"),
    ("listen\n", ":1: expected KEY = VALUE, not 'listen'"),
])
def test_a_bad_panel_conf_exits_2_naming_the_line(text: str, message: str, no_site_conf: Path,
                                                  tmp_path: Path, started: list[dict[str, Any]],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    no_site_conf.write_text(text, encoding="utf-8")
    with pytest.raises(PanelError) as exc:
        read_conf()
    assert str(exc.value) == f"{no_site_conf}{message}"
    assert cli.main(["panel", "--state-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"cicbox: {no_site_conf}{message}\n"
    assert started == []


def test_a_bad_listen_option_exits_2(tmp_path: Path, started: list[dict[str, Any]],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["panel", "--state-dir", str(tmp_path), "--listen", "0.0.0.0:http"]) == 2
    assert capsys.readouterr().err == ("cicbox: bad listen address '0.0.0.0:http': the port must be a number "
                                       "from 0 to 65535\n")
    assert main(["--state-dir", str(tmp_path), "--listen", "everywhere"]) == 2
    assert "bad listen address 'everywhere'" in capsys.readouterr().err
    assert started == []
    assert not (tmp_path / "panel").exists()                 # nothing made before the address is known good


def test_an_address_in_use_exits_2_with_a_message(tmp_path: Path, started: list[dict[str, Any]],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["--state-dir", str(tmp_path), "--listen", f"127.0.0.1:{port}"]) == 2
    assert capsys.readouterr().err == (f"cicbox panel: cannot listen on 127.0.0.1:{port}: the address is in use "
                                       "(another panel, or another program, listens there)\n")
    assert started == []


def test_run_panel_hands_gunicorn_one_threaded_worker_and_tls(tmp_path: Path, started: list[dict[str, Any]]) -> None:
    run_panel(tmp_path, listen="0.0.0.0:8443")
    run_panel(tmp_path, panel_dir=tmp_path / "own", listen="[::1]:9443")
    first, second = started
    assert (first["bind"], second["bind"]) == (["0.0.0.0:8443"], ["[::1]:9443"])
    assert (first["workers"], first["threads"], THREADS) == (1, 32, 32)
    assert issubclass(first["worker_class"], PanelWorker)
    assert first["certfile"] == str(tmp_path / "panel" / "tls" / "active" / "cert.pem")   # the copy fixed at start
    assert first["keyfile"] == str(tmp_path / "panel" / "tls" / "active" / "key.pem")
    assert Path(first["keyfile"]).is_file()
    assert second["certfile"] == str(tmp_path / "own" / "tls" / "active" / "cert.pem")   # the copy fixed at start
    config = first["app"].config
    assert (config["STATE_DIR"], config["PANEL_DIR"], config["LISTEN"]) == (
        str(tmp_path), str(tmp_path / "panel"), "0.0.0.0:8443")
    assert second["app"].config["PANEL_DIR"] == str(tmp_path / "own")
    assert first["control_socket_disable"] is True


def test_the_cli_passes_the_panel_dir_and_listen_address(tmp_path: Path, started: list[dict[str, Any]]) -> None:
    assert cli.main(["panel", "--state-dir", str(tmp_path), "--panel-dir", str(tmp_path / "p"),
                     "--listen", "127.0.0.2:8444"]) == 0
    assert started[0]["bind"] == ["127.0.0.2:8444"]
    assert started[0]["app"].config["PANEL_DIR"] == str(tmp_path / "p")


@pytest.mark.parametrize(("listen", "names", "host", "allowed"), [
    ("127.0.0.1:8443", [], "127.0.0.1:8443", True),          # the listen address
    ("127.0.0.1:8443", [], "localhost", True),               # loopback: localhost too
    ("127.0.0.1:8443", [], "attacker.example:8443", False),  # a rebinding page's own name
    ("127.0.0.1:8443", [], "127.0.0.2", False),
    ("127.0.0.1:8443", [], "", False),
    ("192.168.1.5:8443", ["panel.example.net"], "PANEL.example.net.:8443", True),
    ("192.168.1.5:8443", ["panel.example.net"], "localhost", False),
    ("0.0.0.0:8443", [], "10.1.2.3:8443", True),             # every address: any IP literal
    ("0.0.0.0:8443", [], "rebind.example", False),
    ("[::]:8443", [], "[fe80::1]:8443", True),
    ("[::1]:8443", [], "[::1]:8443", True),
    ("[::1]:8443", [], "[::2]:8443", False),
    # parsed strictly: digits of the listen port after one colon, IPv6 only in brackets, nothing else
    ("127.0.0.1:18443", [], "127.0.0.1:18443", True),
    ("127.0.0.1:18443", [], "127.0.0.1:18443@evil.example", False),
    ("127.0.0.1:18443", [], "[localhost]:x", False),
    ("127.0.0.1:18443", [], "[localhost]:18443", False),
    ("127.0.0.1:18443", [], "127.0.0.1:abc", False),
    ("127.0.0.1:18443", [], "[127.0.0.1]", False),
    ("127.0.0.1:18443", [], "127.0.0.1:8443", False),          # another port
    ("127.0.0.1:18443", [], "127.0.0.1:", False),
    ("[::1]:8443", [], "::1", False),                           # IPv6 without brackets
    ("127.0.0.1:0", [], "127.0.0.1:40123", True),               # a port the system chose: any
])
def test_the_host_header_must_name_the_panel(tmp_path: Path, listen: str, names: list[str], host: str,
                                             allowed: bool) -> None:
    app = create_app({"TESTING": True, "STATE_DIR": str(tmp_path), "LISTEN": listen, "PANEL_NAMES": names})
    client = app.test_client()
    with client.get("/static/panel.css", headers={"Host": host}) as static:
        assert static.status_code == (200 if allowed else 400), static.get_data(as_text=True)[:200]
    api = client.get("/api/wallboard", headers={"Host": host})
    page = client.get("/", headers={"Host": host})
    if allowed:
        assert api.status_code != 400 and page.status_code != 400
        return
    assert api.status_code == 400
    assert api.get_json()["error"].startswith("this panel does not answer to the host name ")
    assert page.status_code == 400 and "Set-Cookie" not in page.headers
    assert page.get_data(as_text=True).startswith("this panel does not answer to the host name")


def _get(url: str, context: ssl.SSLContext, timeout: float = 10, host: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def test_real_start_serves_https_and_refuses_other_host_names(tmp_path: Path) -> None:
    with PanelProcess(tmp_path) as panel:
        context = panel.ssl_context()            # the panel's own certificate, its name checked
        status, body = _get(panel.url + "/static/panel.css", context)
        assert status == 200 and body
        status, _ = _get(panel.url + "/", context)
        assert status in (200, 303)             # a page, or the way to the first run's /setup
        for path in ("/", "/static/panel.css", "/api/wallboard"):
            status, body = _get(panel.url + path, context, host="rebind.example")
            assert status == 400 and b"this panel does not answer to the host name" in body
    assert not (tmp_path / ".gunicorn").exists()  # no control socket under $HOME


def test_idle_and_half_open_connections_do_not_starve_the_panel(tmp_path: Path) -> None:
    with PanelProcess(tmp_path, args=["--read-timeout", "1"]) as panel:
        context = panel.ssl_context()
        # More idle connections than the worker has threads (from several addresses, each within its cap): the
        # poller holds them, not the threads.
        idle = [socket.create_connection(("127.0.0.1", panel.port), timeout=10,
                                         source_address=(f"127.0.1.{n // PEER_CONNECTIONS + 1}", 0))
                for n in range(40)]
        # More half-sent TLS handshakes than threads: each is closed on the handshake's deadline, not waited on.
        half = [socket.create_connection(("127.0.0.1", panel.port), timeout=10,
                                         source_address=(f"127.0.2.{n // PEER_CONNECTIONS + 1}", 0))
                for n in range(THREADS + 8)]
        try:
            for sock in half:
                sock.sendall(b"\x16\x03\x01\x00\xc8\x01\x00")   # the start of a TLS ClientHello, then nothing
            started = time.monotonic()  # clock-source: how long a real request takes
            status, _ = _get(panel.url + "/static/panel.css", context, timeout=6)
            took = time.monotonic() - started  # clock-source
            assert status == 200 and took < 4.0, took      # answered within a few read timeouts
            for sock in half:                               # and the half handshakes were closed
                assert sock.recv(100) == b""
            # A connection silent mid-request is closed on the read timeout (1 s here), not waited on for ever.
            with (socket.create_connection(("127.0.0.1", panel.port), timeout=10) as raw,
                  context.wrap_socket(raw, server_hostname="127.0.0.1") as tls_sock):
                tls_sock.sendall(b"GET /api/wallboard HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                started = time.monotonic()  # clock-source
                assert tls_sock.recv(100) == b""
                assert time.monotonic() - started < 8  # clock-source
        finally:
            for sock in idle + half:
                sock.close()
        assert "Traceback" not in panel.log()


def test_socket_activation_serves_on_the_socket_systemd_passed(tmp_path: Path) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path), "LISTEN_FDS": "1",
           "CICBOX_PANEL_CONF": str(tmp_path / "none.conf")}
    env.pop("NOTIFY_SOCKET", None)
    # As systemd passes it: the socket on fd 3, LISTEN_PID the server's own pid (the shell moves the
    # socket and sets it, then becomes the server).
    launch = (f"import os, sys; os.dup2({fd}, 3); os.close({fd}); os.environ['LISTEN_PID'] = str(os.getpid()); "
              "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])")
    proc = subprocess.Popen(
        [sys.executable, "-c", launch, "-m", "appliance.web.serve",
         "--state-dir", str(tmp_path), "--listen", "127.0.0.1:1"],
        env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        pass_fds=(fd,), text=True,
    )
    try:
        listener.close()
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        # The kernel queues the connection on the passed socket at once; the worker answers once booted.
        try:
            status, _ = _get(f"https://127.0.0.1:{port}/static/panel.css", context, timeout=30)
        except OSError:
            proc.terminate()
            raise AssertionError(proc.communicate(timeout=15)[1]) from None
        assert status == 200          # served on the passed socket; the Host 127.0.0.1 is its address
        cert = tmp_path / "panel" / "tls" / "cert.pem"
        from appliance.web import tls

        assert "127.0.0.1" in tls.cert_info(tls.load_cert(cert)).names
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    assert f"Listening at: https://127.0.0.1:{port}" in err, err


def test_setup_code_subcommand_calls_the_accounts_part(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       started: list[dict[str, Any]]) -> None:
    calls: list[tuple[Path, bool]] = []

    def setup_code_main(panel_dir: Path, new: bool) -> int:
        calls.append((panel_dir, new))
        return 1 if new else 0

    monkeypatch.setattr(cli, "_setup_code_main", lambda: setup_code_main)
    assert cli.main(["panel", "setup-code", "--state-dir", str(tmp_path)]) == 0
    assert cli.main(["panel", "setup-code", "--new", "--panel-dir", str(tmp_path / "p")]) == 1
    assert cli.main(["panel", "--state-dir", str(tmp_path / "s"), "setup-code"]) == 0
    assert calls == [(tmp_path / "panel", False), (tmp_path / "p", True), (tmp_path / "s" / "panel", False)]
    assert started == []                                       # no server started for it


def test_a_bad_read_timeout_exits_2(tmp_path: Path, started: list[dict[str, Any]],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--state-dir", str(tmp_path), "--listen", "127.0.0.1:0", "--read-timeout", "0"]) == 2
    assert capsys.readouterr().err == "cicbox panel: the read timeout must be more than 0 s, not 0.0\n"
    assert started == [] and not (tmp_path / "panel").exists()


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, msg: str, *args: Any) -> None:
        self.lines.append(msg % args)


def _start_log(run: dict[str, Any]) -> list[str]:
    server = type("Arbiter", (), {"log": _Log()})()
    run["on_starting"](server)
    return list(server.log.lines)


def test_each_start_logs_the_fingerprint_and_the_setup_code_until_an_installer_exists(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, started: list[dict[str, Any]]) -> None:
    import types

    from appliance.web import accounts, tls

    made: list[Path] = []

    def ensure_setup_code(panel_dir: Path) -> str:
        made.append(panel_dir)
        return "ABCDEFGHJKLM"

    module = types.ModuleType("appliance.web.setupcode")
    module.ensure_setup_code = ensure_setup_code  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "appliance.web.setupcode", module)
    run_panel(tmp_path, listen="127.0.0.1:9443")
    fingerprint = tls.fingerprint(tls.load_cert(tmp_path / "panel" / "tls" / "cert.pem"))
    assert _start_log(started[0]) == [
        f"TLS certificate SHA-256 fingerprint {fingerprint}",
        "no installer yet: open https://127.0.0.1:9443/setup and type the setup code ABCDEFGHJKLM "
        "(`cicbox panel setup-code` prints it again)"]
    assert made == [tmp_path / "panel"]
    accounts.create_user(tmp_path / "panel", "inst", "installer", "pw-" + "x" * 20)
    run_panel(tmp_path, listen="127.0.0.1:9443")
    assert _start_log(started[1]) == [f"TLS certificate SHA-256 fingerprint {fingerprint}"]
    assert made == [tmp_path / "panel"]


def test_a_panel_dir_it_cannot_write_exits_2(tmp_path: Path, started: list[dict[str, Any]],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory", encoding="utf-8")
    assert main(["--state-dir", str(tmp_path), "--panel-dir", str(blocker / "panel"), "--listen", "127.0.0.1:0"]) == 2
    assert capsys.readouterr().err.startswith(f"cicbox panel: {blocker / 'panel'}: ")
    assert started == []


_BOOTED = re.compile(r"Booting worker with pid: (\d+)")   # logged once the arbiter's start row is written


def _now_iso() -> str:
    return iso_ms(datetime.now(UTC))


def test_a_real_start_and_stop_are_audited_and_kill_9_writes_no_stop(tmp_path: Path) -> None:
    before = _now_iso()
    with PanelProcess(tmp_path) as panel:
        panel.wait_for(_BOOTED)
        (start,) = accounts.audit_rows(panel.panel_dir)        # while it serves: the start row alone
        pid = panel.proc.pid                                   # the arbiter: this process runs gunicorn
    assert panel.proc.returncode == 0                          # stopped by SIGTERM (PanelProcess.stop)
    after = _now_iso()
    stop, again = accounts.audit_rows(panel.panel_dir)         # newest first
    assert again == start
    assert (start["user"], start["remote"], start["action"], start["target"], start["outcome"]) == (
        None, None, "start", None, "ok")
    assert start["detail"] == {"listen": f"127.0.0.1:{panel.port}", "fingerprint": panel.fingerprint, "pid": pid}
    assert (stop["user"], stop["remote"], stop["action"], stop["target"], stop["outcome"]) == (
        None, None, "stop", None, "ok")
    assert stop["detail"] == {"reason": "SIGTERM", "pid": pid}
    assert before <= start["time"] <= stop["time"] <= after
    assert stop["id"] == start["id"] + 1

    with PanelProcess(tmp_path) as killed:                      # kill -9: a start, and no stop row
        killed.wait_for(_BOOTED)
        killed.proc.kill()
        killed.proc.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):          # and its orphaned worker, if still there
            os.kill(int(killed.wait_for(_BOOTED).group(1)), signal.SIGKILL)
    rows = accounts.audit_rows(panel.panel_dir)
    assert [r["action"] for r in rows] == ["start", "stop", "start"]
    assert rows[0]["detail"]["pid"] == killed.proc.pid and rows[0]["detail"]["listen"] == f"127.0.0.1:{killed.port}"


class _ErrorLog:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, message: str, *args: Any) -> None:
        self.errors.append(message % args)


def test_a_halt_is_an_error_stop_row_and_an_unwritable_audit_log_is_logged(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    hooks = gunicorn_options("127.0.0.1:0", cert, cert, "AA", panel_dir=tmp_path / "panel")
    server = SimpleNamespace(pid=4321, log=_ErrorLog(), stop_reason="Worker failed to boot.", exit_status=3)
    hooks["on_exit"](server)
    (row,) = accounts.audit_rows(tmp_path / "panel")
    assert (row["user"], row["remote"], row["action"], row["outcome"]) == (None, None, "stop", "error")
    assert row["detail"] == {"reason": "Worker failed to boot.", "pid": 4321, "exit_status": 3}

    blocker = tmp_path / "file"
    blocker.write_text("not a directory", encoding="utf-8")
    hooks = gunicorn_options("127.0.0.1:0", cert, cert, "AA", panel_dir=blocker / "panel")
    hooks["on_exit"](server)                                 # no exception: the panel goes on
    (error,) = server.log.errors
    assert error.startswith("cannot write the stop row to the audit log: ")


def _drip(sock: ssl.SSLSocket, payload: bytes, every_s: float, stop: threading.Event) -> None:
    """Send `payload` a byte every `every_s` until stopped or the panel closes the connection."""
    with contextlib.suppress(OSError):
        for byte in payload:
            if stop.wait(every_s):
                return
            sock.sendall(bytes([byte]))


@contextlib.contextmanager
def _drippers() -> Iterator[tuple[list[ssl.SSLSocket], Callable[[ssl.SSLSocket, bytes], None]]]:
    """(the connections, drip(sock, payload)): each payload sent a byte every 0.5 s on a thread; all stopped,
    closed and joined at the end."""
    stop = threading.Event()
    socks: list[ssl.SSLSocket] = []
    threads: list[threading.Thread] = []

    def drip(sock: ssl.SSLSocket, payload: bytes) -> None:
        socks.append(sock)
        threads.append(threading.Thread(target=_drip, args=(sock, payload, 0.5, stop), daemon=True))
        threads[-1].start()

    try:
        yield socks, drip
    finally:
        stop.set()
        for sock in socks:
            sock.close()
        for thread in threads:
            thread.join(timeout=5)


def _bystander_wait_s(panel: PanelProcess, source: str) -> float:
    """How long a GET of a static file from another address `source` takes to be answered (200)."""
    asked = time.monotonic()  # clock-source: how long a real request waits
    other = http.client.HTTPSConnection("127.0.0.1", panel.port, context=panel.ssl_context(), timeout=12,
                                        source_address=(source, 0))
    try:
        other.request("GET", "/static/panel.css")
        assert other.getresponse().status == 200
    finally:
        other.close()
    return time.monotonic() - asked  # clock-source


def test_slow_connections_from_one_address_do_not_starve_the_panel(tmp_path: Path) -> None:
    # A client trickling its request head a byte every 0.5 s (within the 1 s read timeout) on more connections
    # than the worker has threads, and more trickling a POST body: another address is still answered at once,
    # the connections past the per-address cap are closed at once, and the rest on the head's deadline (2 s).
    with PanelProcess(tmp_path, args=["--read-timeout", "1", "--head-deadline", "2"]) as panel:
        context = panel.ssl_context()
        closed_at: dict[int, float] = {}
        with _drippers() as (socks, drip):
            started = time.monotonic()  # clock-source: how long real connections live
            for n in range(THREADS + 8):
                try:
                    raw = socket.create_connection(("127.0.0.1", panel.port), timeout=10,
                                                   source_address=("127.0.0.1", 0))
                    tls_sock = tls_connect(context, raw)
                except OSError:               # past the cap: closed before (or during) the handshake
                    closed_at[n] = time.monotonic() - started  # clock-source
                    continue
                if n % 2:
                    head = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 1000
                else:
                    tls_sock.sendall(b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n"
                                     b"Content-Type: application/x-www-form-urlencoded\r\n\r\n")
                    head = b"a" * 1000
                drip(tls_sock, head)
            assert len(socks) <= PEER_CONNECTIONS < THREADS     # one address never holds every thread
            assert len(closed_at) >= THREADS + 8 - PEER_CONNECTIONS
            assert _bystander_wait_s(panel, "127.0.0.2") < 3.0  # answered at once, not after the trickles
            for tls_sock in socks:        # the trickling ones are closed on the head's (or the body's) deadline
                tls_sock.settimeout(10)
                with contextlib.suppress(OSError):
                    while tls_sock.recv(1000):
                        pass
            assert time.monotonic() - started < 8  # clock-source: 2 s head; 2 s + 1000 B at 16 KiB/s body


@pytest.mark.parametrize("part", ["head", "body"])
def test_slow_connections_from_many_addresses_together_do_not_starve_the_panel(tmp_path: Path, part: str) -> None:
    # Five addresses, each within its own cap, trickle request heads (or, their heads sent whole, bodies of an
    # announced 10^9 bytes) on 40 connections in all, more than the 32 threads, with the default 10 s head
    # deadline and body grace: once most threads are busy, new requests get 2 s, so a sixth address is
    # answered within a few seconds, not after the trickles' 10 s.
    with PanelProcess(tmp_path, args=["--read-timeout", "1"]) as panel:
        context = panel.ssl_context()
        with _drippers() as (_, drip):
            for n in range(5 * PEER_CONNECTIONS):
                raw = socket.create_connection(("127.0.0.1", panel.port), timeout=10,
                                               source_address=(f"127.0.0.{10 + n % 5}", 0))
                tls_sock = tls_connect(context, raw)
                if part == "head":
                    drip(tls_sock, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 1000)
                else:
                    tls_sock.sendall(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000000\r\n\r\n")
                    drip(tls_sock, b"a" * 1000)
            assert _bystander_wait_s(panel, "127.0.0.20") < 6.0  # well before the trickles' 10 s head deadline


def _reconnecting_trickler(port: int, context: ssl.SSLContext, source: str, kind: int, stop: threading.Event) -> None:
    """One attacker connection from `source`, again as soon as the panel closes it: half a TLS handshake (kind 0),
    a request head (1), a short form's body (2), a head of 72 KB sent at once and then more of it (3), or a short
    body behind Expect: 100-continue (4), trickled a byte every 0.3 s."""
    while not stop.is_set():
        with contextlib.suppress(OSError):
            raw = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
            if kind == 0:
                with raw:
                    for byte in b"\x16\x03\x01\x00\xc8\x01\x00" + b"\x00" * 200:
                        if stop.wait(0.3):
                            return
                        raw.sendall(bytes([byte]))
                continue
            with tls_connect(context, raw) as tls_sock:
                if kind == 1:
                    payload = b"GET /wallboard HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 1000
                elif kind == 3:
                    tls_sock.sendall(b"GET /wallboard HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(
                        b"X-Pad-%d: " % n + b"a" * 8000 + b"\r\n" for n in range(9)))
                    payload = b"b" * 1000
                else:
                    expect = b"Expect: 100-continue\r\n" if kind == 4 else b""
                    tls_sock.sendall(b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5000\r\n" + expect
                                     + b"Content-Type: application/x-www-form-urlencoded\r\n\r\n")
                    payload = b"a" * 5000
                for byte in payload:
                    if stop.wait(0.3):
                        return
                    tls_sock.sendall(bytes([byte]))
        if stop.wait(0.05):
            return


def test_tricklers_reconnecting_from_many_addresses_do_not_slow_other_clients(tmp_path: Path) -> None:
    # Six addresses, each at its cap of 8, 48 connections in all (more than the 32 threads), trickle half
    # handshakes, request heads (short and long), and short bodies (with and without Expect: 100-continue), and
    # connect again whenever the panel closes one: a client on another address is answered as if they were not
    # there, request after request.
    with PanelProcess(tmp_path) as panel:
        context = panel.ssl_context()
        stop = threading.Event()
        attackers = [threading.Thread(target=_reconnecting_trickler,
                                      args=(panel.port, context, f"127.0.0.{30 + n // PEER_CONNECTIONS}", n % 5, stop),
                                      daemon=True) for n in range(6 * PEER_CONNECTIONS)]
        try:
            for thread in attackers:
                thread.start()
            time.sleep(3)  # clock-source: the trickles under way, the first ones cut and connected again
            waits = [_bystander_wait_s(panel, "127.0.0.2") for _ in range(8)]
            assert max(waits) < 1.0, waits
        finally:
            stop.set()
            for thread in attackers:
                thread.join(timeout=5)


def test_a_head_too_long_to_read_first_is_still_cut_on_its_deadline(tmp_path: Path) -> None:
    # 72 KB of head at once (past what is read before a thread takes it), then a byte every 0.5 s: closed on the
    # 2 s head deadline like any head, not held by the thread as long as the bytes keep coming.
    with PanelProcess(tmp_path, args=["--read-timeout", "1", "--head-deadline", "2"]) as panel:
        head = b"GET /static/panel.css HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(
            b"X-Pad-%d: " % n + b"a" * 8000 + b"\r\n" for n in range(9))
        _, closed, held = _trickled(panel, head, b"b" * 100, 0.5)
        assert closed and held < 4.0


def test_a_head_sent_as_a_flood_of_tiny_records_is_cut_on_its_deadline(tmp_path: Path) -> None:
    # One-octet TLS records as fast as they go: the head keeps coming, so it is never waited for, but its 2 s deadline
    # is checked as it is read (and the connection takes turns with the others), not only when it pauses.
    with PanelProcess(tmp_path, args=["--read-timeout", "1", "--head-deadline", "2"]) as panel:
        context = panel.ssl_context()
        raw = socket.create_connection(("127.0.0.1", panel.port), timeout=10)
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls_sock:
            tls_sock.sendall(b"GET /static/panel.css HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ")
            started = time.monotonic()  # clock-source: how long a real connection lives
            closed = False
            while not closed and time.monotonic() - started < 8:  # clock-source
                try:
                    tls_sock.send(b"a")
                except OSError:
                    closed = True
            held = time.monotonic() - started  # clock-source
            assert closed and held < 4.0, held
            assert _bystander_wait_s(panel, "127.0.0.2") < 1.0


def _exchange(panel: PanelProcess, data: bytes, *, then: bytes = b"") -> tuple[bytes, float]:
    """Send `data` on a new connection, read the first answer bytes; then send `then` (if any) and read to the
    close: (all it answered, how long the first answer took)."""
    context = panel.ssl_context()
    raw = socket.create_connection(("127.0.0.1", panel.port), timeout=10)
    with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls_sock:
        started = time.monotonic()  # clock-source: how long a real answer takes
        tls_sock.sendall(data)
        answer = tls_sock.recv(4096)
        took = time.monotonic() - started  # clock-source
        if then:
            tls_sock.sendall(then)
        with contextlib.suppress(OSError):
            while chunk := tls_sock.recv(4096):
                answer += chunk
    return answer, took


def test_a_short_body_behind_expect_100_continue_is_asked_for_at_once(tmp_path: Path) -> None:
    with PanelProcess(tmp_path) as panel:
        body = b"username=a&password=b"
        answer, took = _exchange(panel, b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
                                 b"Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n"
                                 b"Content-Length: %d\r\n\r\n" % len(body), then=body)
        assert answer.startswith(b"HTTP/1.1 100 Continue") and took < 1.0, (answer[:100], took)
        assert b" 408 " not in answer


@pytest.mark.parametrize("ends", [b"\n", b"\n\n", b"\r\n\n", b"\n\r\n", b"\r\n\r\r\n"])
def test_a_head_with_a_line_not_ended_by_cr_lf_is_refused_at_once(tmp_path: Path, ends: bytes) -> None:
    with PanelProcess(tmp_path) as panel:
        head = b"GET /static/panel.css HTTP/1.1" + (b"\n" if ends == b"\n" else b"\r\n") + b"Host: 127.0.0.1"
        answer, took = _exchange(panel, head + (b"\n\n" if ends == b"\n" else ends))
        assert answer.startswith(b"HTTP/1.1 400 ") and took < 1.0, (answer[:100], took)


def _trickled(panel: PanelProcess, head: bytes, body: bytes, every_s: float) -> tuple[bytes, bool, float]:
    """Send `head` at once and `body` a byte every `every_s` on one connection; (all it answered, whether the
    panel closed it before our 10 s timeout, how long it stayed open)."""
    context = panel.ssl_context()
    raw = socket.create_connection(("127.0.0.1", panel.port), timeout=10)
    stop = threading.Event()
    answer = b""
    closed = False
    with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls_sock:
        started = time.monotonic()  # clock-source: how long a real connection lives
        tls_sock.sendall(head)
        dripper = threading.Thread(target=_drip, args=(tls_sock, body, every_s, stop), daemon=True)
        dripper.start()
        with contextlib.suppress(OSError):
            while chunk := tls_sock.recv(4096):
                answer += chunk
            closed = True
        held = time.monotonic() - started  # clock-source
        stop.set()
        dripper.join(timeout=5)
    return answer, closed, held


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_a_body_past_its_deadline_is_answered_408(tmp_path: Path, framing: str) -> None:
    # A form trickled slower than its deadline allows: the panel answers 408 and closes, not a 500 or a 400.
    with PanelProcess(tmp_path, args=["--read-timeout", "1", "--head-deadline", "1"]) as panel:
        length = b"Content-Length: 1000" if framing == "length" else b"Transfer-Encoding: chunked"
        head = (b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\n" + length
                + b"\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n")
        body = b"a" * 1000 if framing == "length" else b"3e8\r\n" + b"a" * 1000
        answer, closed, _ = _trickled(panel, head, body, 0.3)
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert b"came too slowly" in answer and b"Traceback" not in answer
        assert closed and answer.count(b"HTTP/1.1 ") == 1  # the rest of the body is never read as a request


def test_a_long_body_sent_faster_than_the_minimum_rate_is_read_whole(tmp_path: Path) -> None:
    # 64 KiB of form at about 32 KiB/s takes some 2 s, past the 1 s head deadline but within the body's
    # (1 s + 64 KiB at 16 KiB/s = 5 s): the panel reads it all and answers the form, not 408.
    with PanelProcess(tmp_path, args=["--read-timeout", "1", "--head-deadline", "1"]) as panel:
        context = panel.ssl_context()
        raw = socket.create_connection(("127.0.0.1", panel.port), timeout=10)
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls_sock:
            body = b"username=" + b"a" * (64 * 1024 - 9)
            tls_sock.sendall(b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: "
                             + str(len(body)).encode()
                             + b"\r\nContent-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n\r\n")
            started = time.monotonic()  # clock-source: how long the real body takes to send
            for at in range(0, len(body), 4096):
                time.sleep(0.125)                  # 4 KiB every 1/8 s: 32 KiB/s, twice the minimum rate
                tls_sock.sendall(body[at:at + 4096])
            assert time.monotonic() - started > 1.5  # clock-source: the body outlived the head deadline
            answer = b""
            with contextlib.suppress(OSError):
                while chunk := tls_sock.recv(4096):
                    answer += chunk
        status = answer.split(b"\r\n", 1)[0]
        assert status.startswith(b"HTTP/1.1 ") and b" 408 " not in status, answer[:200]
        assert b"came too slowly" not in answer and b"Traceback" not in answer


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_huge_announced_body_trickled_is_cut_soon_after_the_grace(tmp_path: Path, method: str) -> None:
    # A Content-Length of 10^9 buys no time: the body must keep up 16 KiB/s after the 1 s grace, so a byte every
    # 0.5 s is cut within a few seconds (by the announced length alone it would have 17 hours), on a route that
    # reads no body (GET /login: the rest is read off the connection) as on one that does.
    with PanelProcess(tmp_path, args=["--read-timeout", "2", "--head-deadline", "1"]) as panel:
        head = (method.encode() + b" /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000000"
                b"\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n")
        _, closed, held = _trickled(panel, head, b"a" * 100, 0.5)
        assert closed and held < 6.0


def test_half_finished_tls_handshakes_are_closed_on_a_short_deadline(tmp_path: Path) -> None:
    # The default 5 s read timeout: a half-sent ClientHello is closed on the 2 s handshake deadline instead, and
    # one address's handshakes past its cap are closed at once.
    with PanelProcess(tmp_path) as panel:
        started = time.monotonic()  # clock-source: how long real connections live
        half = [socket.create_connection(("127.0.0.1", panel.port), timeout=10) for _ in range(PEER_CONNECTIONS)]
        try:
            for sock in half:
                sock.sendall(b"\x16\x03\x01\x00\xc8\x01\x00")   # the start of a TLS ClientHello, then nothing
            time.sleep(0.3)  # the panel has taken them all
            # Past the cap, closed at once: seen as an empty read, or as a reset (the close can come before
            # the client's connect has returned).
            with contextlib.suppress(ConnectionResetError), \
                    socket.create_connection(("127.0.0.1", panel.port), timeout=10) as extra:
                extra.sendall(b"\x16\x03\x01\x00\xc8\x01\x00")
                assert extra.recv(100) == b""
            assert time.monotonic() - started < 1.5  # clock-source
            for sock in half:
                with contextlib.suppress(ConnectionResetError):
                    assert sock.recv(100) == b""
            assert time.monotonic() - started < HANDSHAKE_DEADLINE_S + 1.5 < READ_TIMEOUT_S  # clock-source
        finally:
            for sock in half:
                sock.close()


def test_a_disabled_accounts_event_stream_ends_within_a_second(tmp_path: Path) -> None:
    panel_dir = tmp_path / "panel"
    panel_dir.mkdir(mode=0o700)
    accounts.create_user(panel_dir, "inst", "installer", "installer-password-1")
    viewer = accounts.create_user(panel_dir, "vera", "viewer", "viewer-password-12")
    with PanelProcess(tmp_path) as panel:
        context = panel.ssl_context()
        conn = http.client.HTTPSConnection("127.0.0.1", panel.port, context=context, timeout=10)
        conn.request("GET", "/login")
        page = conn.getresponse()
        body = page.read().decode()
        cookie = page.getheader("Set-Cookie", "").split(";")[0]
        match = re.search(r'name="csrf_token" value="([^"]+)"', body)
        assert match is not None and cookie
        form = f"csrf_token={match.group(1)}&username=vera&password=viewer-password-12"
        conn.request("POST", "/login", body=form, headers={
            "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded", "Referer": panel.url + "/login"})
        signed = conn.getresponse()
        signed.read()
        assert signed.status == 303
        cookie = signed.getheader("Set-Cookie", "").split(";")[0]
        conn.close()
        with (socket.create_connection(("127.0.0.1", panel.port), timeout=10) as raw,
              context.wrap_socket(raw, server_hostname="127.0.0.1") as stream):
            stream.sendall(f"GET /wallboard/events HTTP/1.1\r\nHost: 127.0.0.1:{panel.port}\r\n"
                           f"Cookie: {cookie}\r\n\r\n".encode())
            assert stream.recv(4096).startswith(b"HTTP/1.1 200")
            accounts.update_user(panel_dir, viewer.id, disabled=True)
            started = time.monotonic()  # clock-source: a real server's stream
            seen = b""
            while chunk := stream.recv(4096):           # until the panel closes the connection
                seen += chunk
            assert time.monotonic() - started < 2.0  # clock-source: within about a second, not the keep-alive's 5 s
            assert b"event: end" in seen and b"sign in again" in seen


def _signed_in(panel: PanelProcess, name: str, password: str) -> tuple[str, str]:
    """(the session cookie, its CSRF token) of `name` signed in on the real panel."""
    conn = http.client.HTTPSConnection("127.0.0.1", panel.port, context=panel.ssl_context(), timeout=10)
    try:
        conn.request("GET", "/login")
        page = conn.getresponse()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.read().decode())
        cookie = page.getheader("Set-Cookie", "").split(";")[0]
        assert token is not None and cookie
        conn.request("POST", "/login", body=f"csrf_token={token.group(1)}&username={name}&password={password}",
                     headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded",
                              "Referer": panel.url + "/login"})
        signed = conn.getresponse()
        signed.read()
        assert signed.status == 303
        cookie = signed.getheader("Set-Cookie", "").split(";")[0]
        conn.request("GET", "/account/password", headers={"Cookie": cookie})
        token = re.search(r'name="csrf_token" value="([^"]+)"', conn.getresponse().read().decode())
        assert token is not None
        return cookie, token.group(1)
    finally:
        conn.close()


@pytest.mark.parametrize("token_in", ["header", "body"])
def test_a_logout_whose_body_never_comes_is_408_and_keeps_the_session(tmp_path: Path, token_in: str) -> None:
    # POST /logout announces a body and sends none: with the CSRF token in X-CSRFToken and no form Content-Type
    # nothing needs the body to log out (the view reads none), or the token is in the body that never comes.
    # Either way the body's deadline cuts the request with 408 before the view, and the session is not ended.
    panel_dir = tmp_path / "panel"
    panel_dir.mkdir(mode=0o700)
    accounts.create_user(panel_dir, "inst", "installer", "installer-password-1")
    with PanelProcess(tmp_path, args=["--read-timeout", "1", "--head-deadline", "1"]) as panel:
        cookie, token = _signed_in(panel, "inst", "installer-password-1")
        head = (f"POST /logout HTTP/1.1\r\nHost: 127.0.0.1:{panel.port}\r\nCookie: {cookie}\r\n"
                f"Referer: {panel.url}/\r\n"
                + (f"X-CSRFToken: {token}\r\n" if token_in == "header"
                   else "Content-Type: application/x-www-form-urlencoded\r\n")
                + "Content-Length: 100\r\n\r\n").encode()
        with (socket.create_connection(("127.0.0.1", panel.port), timeout=10) as raw,
              panel.ssl_context().wrap_socket(raw, server_hostname="127.0.0.1") as tls_sock):
            tls_sock.sendall(head)
            answer = b""
            with contextlib.suppress(OSError):
                while chunk := tls_sock.recv(4096):
                    answer += chunk
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        conn = http.client.HTTPSConnection("127.0.0.1", panel.port, context=panel.ssl_context(), timeout=10)
        try:
            conn.request("GET", "/account/password", headers={"Cookie": cookie})
            still = conn.getresponse()
            still.read()
        finally:
            conn.close()
        assert still.status == 200                                      # still signed in
        assert accounts.audit_rows(panel_dir, action="logout") == []
