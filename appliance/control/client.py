"""The CLI's and the panel's end of control.sock."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import socket
import time
from collections.abc import Iterator
from typing import Any

from appliance.control.server import ControlError, _line

#: how long a refused or busy connect is retried (the engine restarting, its backlog full)
CONNECT_RETRY_S = 1.0
#: connect errors worth retrying: nobody listens yet, or the listen backlog is full
RETRY_ERRNOS = frozenset({errno.ECONNREFUSED, errno.EAGAIN})


class ControlClient:
    """The CLI's and the panel's end of control.sock (blocking, with a timeout).

    A connect the engine refuses or cannot take yet (ECONNREFUSED, EAGAIN) is tried again for
    up to CONNECT_RETRY_S seconds before the engine is reported down; this wait is the client's
    (the engine itself never waits for a client)."""

    def __init__(self, path: str | os.PathLike[str], timeout_s: float | None = 10.0,
                 connect_retry_s: float = CONNECT_RETRY_S) -> None:
        self.path = os.fspath(path)
        self._sock = self._connect(timeout_s, connect_retry_s)
        self._buf = b""
        self._next = 1
        self._pushed: list[dict[str, Any]] = []

    def _connect(self, timeout_s: float | None, retry_s: float) -> socket.socket:
        deadline = time.monotonic() + retry_s  # clock-source: the client's own wait, never the engine's
        pause = 0.005
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout_s)
            try:
                sock.connect(self.path)
                return sock
            except OSError as exc:
                sock.close()
                left = deadline - time.monotonic()  # clock-source: the client's retry budget
                if exc.errno not in RETRY_ERRNOS or left <= 0:
                    raise ControlError(f"cannot reach the engine at {self.path}: {exc.strerror or exc}") from None
            time.sleep(min(pause, left))  # clock-source: the client waits, the engine does not
            pause = min(pause * 2, 0.05)

    def request(self, cmd: str, **args: Any) -> Any:
        """Send one request and return its result, or raise ControlError with the engine's message."""
        rid = self._next
        self._next += 1
        self._sock.sendall(_line({"id": rid, "cmd": cmd, **args}))
        while True:
            msg = self._read_line()
            if "snapshot" in msg:
                self._pushed.append(msg)
                continue
            if msg.get("id") != rid:
                continue
            if msg.get("ok"):
                return msg.get("result")
            err = msg.get("error") or {}
            raise ControlError(str(err.get("message", "request failed")), err.get("issues"))

    def subscribe(self) -> Iterator[dict[str, Any]]:
        """Subscribe now; then iterate over snapshots as the engine pushes them (each has "tick_ms")."""
        self.request("subscribe")
        return self._snapshots()

    def _snapshots(self) -> Iterator[dict[str, Any]]:
        while True:
            if self._pushed:
                yield self._pushed.pop(0)["snapshot"]
                continue
            msg = self._read_line()
            if "snapshot" in msg:
                yield msg["snapshot"]

    def _read_line(self) -> dict[str, Any]:
        while b"\n" not in self._buf:
            r, _, _ = select.select([self._sock], [], [], self._sock.gettimeout())
            if not r:
                raise ControlError("the engine did not answer in time")
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ControlError("the engine closed the connection")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        msg: dict[str, Any] = json.loads(line)
        return msg

    def close(self) -> None:
        self._sock.close()

    def set_timeout(self, timeout_s: float | None) -> None:
        """How long a read may wait from now on (None: for ever, as a subscription to a paused engine must)."""
        self._sock.settimeout(timeout_s)

    def shutdown(self) -> None:
        """From another thread: end the connection, so a read waiting on it (a subscription with no
        timeout) ends with ControlError "the engine closed the connection"."""
        with contextlib.suppress(OSError):      # closed already, or never fully connected
            self._sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
