"""The engine's end of control.sock: accepts clients, dispatches requests, pushes snapshots."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("cicbox.control")

MAX_LINE = 4 << 20          # a request line larger than this is refused
MAX_BACKLOG = 16 << 20      # a subscriber this far behind is dropped

Handler = Callable[[dict[str, Any]], Any]

FAULT_PREFIX = "fault."
FAULTS_DISABLED = "fault commands are disabled: start the engine with --enable-faults"


class ControlError(Exception):
    """A request failed; `issues` carries structured detail (e.g. config errors)."""

    def __init__(self, message: str, issues: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.issues = issues or []


class Deferred:
    """A reply the engine gives later, from its own loop (e.g. once a configuration was stored and
    switched on the worker). A handler returns one; :meth:`resolve` or :meth:`fail` sends the reply.
    A client that left in the meantime gets nothing and nothing breaks."""

    def __init__(self) -> None:
        self._send: Callable[[dict[str, Any]], None] | None = None
        self._rid: Any = None
        self.done = False

    def _bind(self, rid: Any, send: Callable[[dict[str, Any]], None]) -> None:
        self._rid, self._send = rid, send

    def resolve(self, result: Any) -> None:
        self._reply({"id": self._rid, "ok": True, "result": result})

    def fail(self, exc: ControlError) -> None:
        self._reply({"id": self._rid, "ok": False, "error": {"message": str(exc), "issues": exc.issues}})

    def _reply(self, reply: dict[str, Any]) -> None:
        if self.done:
            return
        self.done = True
        if self._send is not None:
            self._send(reply)


@dataclass
class _Conn:
    sock: socket.socket
    inbuf: bytes = b""
    outbuf: bytearray = field(default_factory=bytearray)
    subscribed: bool = False


class ControlServer:
    """The engine's end: accepts clients, dispatches requests to handlers, pushes snapshots."""

    def __init__(self, path: str | os.PathLike[str], *, enable_faults: bool = False) -> None:
        self.path = os.fspath(path)
        self.enable_faults = enable_faults
        if os.path.exists(self.path):
            os.unlink(self.path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(self.path)
        os.chmod(self.path, 0o660)
        self._sock.listen(16)
        self._sock.setblocking(False)
        self._conns: list[_Conn] = []
        self.handlers: dict[str, Handler] = {}

    def register(self, cmd: str, handler: Handler) -> None:
        self.handlers[cmd] = handler

    @property
    def subscribers(self) -> int:
        return sum(1 for c in self._conns if c.subscribed)

    def poll(self) -> None:
        """Accept, read, answer and flush without blocking."""
        while True:
            try:
                s, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                break
            s.setblocking(False)
            self._conns.append(_Conn(s))
        for c in list(self._conns):
            self._read(c)
        for c in list(self._conns):
            self._flush(c)

    def wait(self, timeout_s: float) -> None:
        """Block until a client is ready or `timeout_s` passes (for loops that own no other clock)."""
        fds = [self._sock, *(c.sock for c in self._conns)]
        select.select(fds, [c.sock for c in self._conns if c.outbuf], [], timeout_s)

    def publish(self, snapshot: dict[str, Any]) -> None:
        """Queue one snapshot line to every subscriber."""
        if not self.subscribers:
            return
        line = (json.dumps({"snapshot": snapshot}, separators=(",", ":")) + "\n").encode()
        for c in self._conns:
            if c.subscribed:
                if len(c.outbuf) > MAX_BACKLOG:
                    log.warning("control: dropping a subscriber that does not read")
                    self._close(c)
                    continue
                c.outbuf += line

    def _read(self, c: _Conn) -> None:
        try:
            data = c.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(c)
            return
        if not data:
            self._close(c)
            return
        c.inbuf += data
        while b"\n" in c.inbuf:
            line, c.inbuf = c.inbuf.split(b"\n", 1)
            if line.strip():
                self._answer(c, line)
        if len(c.inbuf) > MAX_LINE:
            c.outbuf += _line({"id": None, "ok": False, "error": {"message": "request line too long"}})
            c.inbuf = b""

    def _answer(self, c: _Conn, line: bytes) -> None:
        rid: Any = None
        try:
            req = json.loads(line)
            if not isinstance(req, dict):
                raise ControlError("a request must be a JSON object")
            rid = req.get("id")
            cmd = req.get("cmd")
            if cmd == "subscribe":
                c.subscribed = True
                result: Any = {"subscribed": True}
            else:
                handler = self.handlers.get(str(cmd))
                if str(cmd).startswith(FAULT_PREFIX) and not self.enable_faults:
                    raise ControlError(FAULTS_DISABLED)
                if handler is None:
                    known = ", ".join(sorted([*self.handlers, "subscribe"]))
                    raise ControlError(f"unknown command {cmd!r} (known: {known})")
                result = handler(req)
                if isinstance(result, Deferred):
                    result._bind(rid, lambda reply: self._send_later(c, reply))
                    return
            reply: dict[str, Any] = {"id": rid, "ok": True, "result": result}
        except json.JSONDecodeError as exc:
            reply = {"id": rid, "ok": False, "error": {"message": f"not JSON: {exc}"}}
        except ControlError as exc:
            reply = {"id": rid, "ok": False, "error": {"message": str(exc), "issues": exc.issues}}
        except Exception as exc:  # a handler bug must not take the engine down
            log.exception("control: command failed")
            reply = {"id": rid, "ok": False, "error": {"message": f"internal error: {exc}"}}
        c.outbuf += _line(reply)

    def _send_later(self, c: _Conn, reply: dict[str, Any]) -> None:
        if c in self._conns:
            c.outbuf += _line(reply)

    def _flush(self, c: _Conn) -> None:
        if not c.outbuf:
            return
        try:
            sent = c.sock.send(c.outbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(c)
            return
        del c.outbuf[:sent]

    def _close(self, c: _Conn) -> None:
        with contextlib.suppress(OSError):
            c.sock.close()
        if c in self._conns:
            self._conns.remove(c)

    def close(self) -> None:
        for c in list(self._conns):
            self._close(c)
        self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()
