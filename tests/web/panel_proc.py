"""The panel as a real server for tests: ``python -m appliance.web.serve`` (gunicorn, TLS) on a free loopback port.

    with PanelProcess(state_dir) as panel:          # panel_dir defaults to state_dir/panel
        panel.url                                   # https://127.0.0.1:PORT (https://[::1]:PORT on [::1]:0)
        panel.fingerprint                           # the logged "TLS certificate SHA-256 fingerprint"
        panel.ssl_context()                         # trusts exactly the panel's certificate
        panel.log()                                 # everything gunicorn wrote so far

Its stderr is read by a thread, so a chatty server never blocks on a full pipe.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parents[2]
START_S = 30.0
"""A bound on a real process's start-up (wall time)."""

# (gunicorn writes http:// for an IPv6 listener whatever it serves: its TCP6Socket's own __str__)
_LISTENING = re.compile(r"Listening at: https?://(?:127\.0\.0\.1|\[::1\]):(\d+)")
_FINGERPRINT = re.compile(r"TLS certificate SHA-256 fingerprint ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})")


class PanelProcess:
    """One panel server process; a context manager that stops it."""

    def __init__(self, state_dir: Path, panel_dir: Path | None = None, *, listen: str = "127.0.0.1:0",
                 args: Sequence[str] = (), env: dict[str, str] | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.panel_dir = Path(panel_dir) if panel_dir is not None else self.state_dir / "panel"
        environ = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(self.state_dir),
                   "CICBOX_PANEL_CONF": str(self.state_dir / "no-panel.conf"), **(env or {})}
        for name in ("XDG_RUNTIME_DIR", "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID"):
            environ.pop(name, None)
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self._closed = False
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "appliance.web.serve", "--state-dir", str(self.state_dir),
             "--panel-dir", str(self.panel_dir), "--listen", listen, *args],
            cwd=self.state_dir, env=environ, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )
        self._reader = threading.Thread(target=self._read, name="panel-log", daemon=True)
        self._reader.start()
        try:
            self.port = int(self.wait_for(_LISTENING).group(1))
            self.fingerprint = self.wait_for(_FINGERPRINT).group(1)
        except BaseException:
            self.stop()
            raise
        self.host = "::1" if listen.startswith("[::1]") else "127.0.0.1"
        self.url = f"https://[::1]:{self.port}" if self.host == "::1" else f"https://127.0.0.1:{self.port}"
        self.cert_path = self.panel_dir / "tls" / "cert.pem"

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self._lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def log(self) -> str:
        with self._cond:
            return "".join(self._lines)

    def wait_for(self, pattern: re.Pattern[str], timeout_s: float = START_S) -> re.Match[str]:
        """The first match of `pattern` in the log, waiting for it; AssertionError with the log if it never comes."""
        end = time.monotonic() + timeout_s  # clock-source: a bound on a real process's output
        with self._cond:
            while True:
                found = pattern.search("".join(self._lines))
                if found:
                    return found
                left = end - time.monotonic()  # clock-source
                if self._closed or left <= 0:
                    raise AssertionError(f"the panel did not log {pattern.pattern!r}:\n{''.join(self._lines)}")
                self._cond.wait(left)

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the panel's certificate alone (and checks its name)."""
        return ssl.create_default_context(cafile=str(self.cert_path))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self._reader.join(timeout=15)
        if self.proc.stderr is not None:
            self.proc.stderr.close()

    def __enter__(self) -> PanelProcess:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def tls_connect(context: ssl.SSLContext, raw: socket.socket, hostname: str = "127.0.0.1") -> ssl.SSLSocket:
    """`raw` in TLS, its handshake done. If the panel resets the connection (past an address's cap) the error is
    raised with no socket left open for the garbage collector to find: the handshake's socket is closed, and so is
    the half-made one that the standard library's wrap leaves open when the reset came before it (it raises from
    inside its constructor on a refused read of a socket it takes for unconnected)."""
    try:
        tls_sock = context.wrap_socket(raw, server_hostname=hostname, do_handshake_on_connect=False)
    except OSError as error:
        trace = error.__traceback__
        while trace is not None:
            half_made = trace.tb_frame.f_locals.get("self")
            if isinstance(half_made, ssl.SSLSocket):
                half_made.close()
            trace = trace.tb_next
        raw.close()
        raise
    try:
        tls_sock.do_handshake()
    except BaseException:
        tls_sock.close()
        raise
    return tls_sock
