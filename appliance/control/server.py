"""The engine's end of control.sock: accepts clients, dispatches requests, pushes snapshots."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import select
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

log = logging.getLogger("cicbox.control")

MAX_LINE = 4 << 20          # a request line larger than this is refused
MAX_DEPTH = 64              # a request nested deeper than this (arrays and objects) is refused
MAX_CONTAINERS = 10_000     # a request with more arrays and objects than this is refused (no command
                            # takes that many; parsing millions of tiny ones would stall the loop)
MAX_BACKLOG = 16 << 20      # a client this far behind (replies or snapshots not read) is dropped
LISTEN_BACKLOG = 1024       # connections the kernel queues before the loop accepts them (>= 256 clients)
READ_CHUNK = 1 << 16        # octets read from one client at a time
READS_PER_POLL = 4          # reads per client and poll: a flood costs the loop at most 256 KiB per client

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


class BadRequestError(ControlError):
    """A request line that is not a request: not UTF-8, not JSON, NaN or Infinity, too long or too deep."""


@dataclass
class _Conn:
    sock: socket.socket
    inbuf: bytearray = field(default_factory=bytearray)
    outbuf: bytearray = field(default_factory=bytearray)
    subscribed: bool = False
    skipping: bool = False          # the rest of a line already refused as too long is discarded


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
        self._sock.listen(LISTEN_BACKLOG)
        self._sock.setblocking(False)
        self._conns: list[_Conn] = []
        self.handlers: dict[str, Handler] = {}
        self.fault_commands: set[str] = set()     # gated as fault.* is, whatever their name

    def register(self, cmd: str, handler: Handler, fault: bool = False) -> None:
        """Answer `cmd` with `handler`; a `fault` command (like every ``fault.*``) only with --enable-faults."""
        self.handlers[cmd] = handler
        if fault:
            self.fault_commands.add(cmd)

    @property
    def subscribers(self) -> int:
        return sum(1 for c in self._conns if c.subscribed)

    def poll(self) -> None:
        """Accept, read, answer and flush without blocking."""
        if not self._conns:             # no client: is one knocking? (asked without a failing accept())
            try:
                if not select.select([self._sock], [], [], 0)[0]:
                    return
            except (OSError, ValueError):   # the socket is closed (the engine is closing): as accept() would
                return
        while True:
            try:
                s, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:      # out of descriptors: the rest wait in the backlog
                log.warning("control: cannot accept a client now: %s", exc.strerror or exc)
                break
            s.setblocking(False)
            self._conns.append(_Conn(s))
        for c in list(self._conns):
            self._read(c)
        for c in list(self._conns):
            self._flush(c)

    def wait(self, timeout_s: float, also: Sequence[int] = ()) -> None:
        """Block until a client (or one of the descriptors `also`) is ready or `timeout_s` passes (for
        loops that own no other clock)."""
        fds: list[Any] = [self._sock, *(c.sock for c in self._conns), *also]
        try:
            select.select(fds, [c.sock for c in self._conns if c.outbuf], [], timeout_s)
        except (ValueError, OSError):
            return      # closed meanwhile (a serving thread may outlive the engine's close): nothing to wait for

    def publish(self, snapshot: dict[str, Any]) -> None:
        """Queue one snapshot line to every subscriber."""
        if not self.subscribers:
            return
        line = (json.dumps({"snapshot": snapshot}, separators=(",", ":")) + "\n").encode()
        for c in self._conns:
            if c.subscribed:
                self._queue(c, line)

    def _read(self, c: _Conn) -> None:
        for _ in range(READS_PER_POLL):
            try:
                data = c.sock.recv(READ_CHUNK)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._close(c)
                return
            if not data:
                self._close(c)
                return
            self._take(c, data)
            if c not in self._conns:
                return

    def _take(self, c: _Conn, data: bytes) -> None:
        """Answer each complete line in `data`; refuse a line once it passes MAX_LINE and discard
        the rest of it up to its newline (never holding more than MAX_LINE of it)."""
        while data:
            nl = data.find(b"\n")
            if c.skipping:
                if nl < 0:
                    return
                c.skipping = False
                data = data[nl + 1:]
                continue
            if nl < 0:
                c.inbuf += data
                if len(c.inbuf) > MAX_LINE:
                    self._refuse(c, None, f"request line too long (more than {MAX_LINE} octets)")
                    c.inbuf = bytearray()
                    c.skipping = True
                return
            if len(c.inbuf) + nl > MAX_LINE:
                self._refuse(c, None, f"request line too long (more than {MAX_LINE} octets)")
                c.inbuf = bytearray()
            else:
                line = bytes(c.inbuf) + data[:nl]
                c.inbuf = bytearray()
                if line.strip():
                    self._answer(c, line)
            data = data[nl + 1:]

    def _refuse(self, c: _Conn, rid: Any, message: str) -> None:
        """A structured error for a bad line and one log line (never a traceback)."""
        log.warning("control: refused a request: %s", message)
        self._queue(c, _line({"id": rid, "ok": False, "error": {"message": message, "issues": []}}))

    def _answer(self, c: _Conn, line: bytes) -> None:
        rid: Any = None
        try:
            req = parse_request(line)
            rid = req.get("id")
            cmd = req.get("cmd")
            if cmd == "subscribe":
                c.subscribed = True
                result: Any = {"subscribed": True}
            else:
                handler = self.handlers.get(str(cmd))
                faulty = str(cmd).startswith(FAULT_PREFIX) or cmd in self.fault_commands
                if faulty and not self.enable_faults:
                    raise ControlError(FAULTS_DISABLED)
                if handler is None:
                    known = ", ".join(sorted([*self.handlers, "subscribe"]))
                    raise ControlError(f"unknown command {cmd!r} (known: {known})")
                result = handler(req)
                if isinstance(result, Deferred):
                    result._bind(rid, lambda reply: self._send_later(c, reply))
                    return
            reply: dict[str, Any] = {"id": rid, "ok": True, "result": result}
        except BadRequestError as exc:
            self._refuse(c, rid, str(exc))
            return
        except ControlError as exc:
            reply = {"id": rid, "ok": False, "error": {"message": str(exc), "issues": exc.issues}}
        except Exception as exc:  # a handler bug must not take the engine down
            log.exception("control: command failed")
            reply = {"id": rid, "ok": False, "error": {"message": f"internal error: {exc}"}}
        self._queue(c, _line(reply))

    def _queue(self, c: _Conn, data: bytes) -> None:
        """Queue output for a client; one that lets MAX_BACKLOG pile up unread is dropped."""
        if c not in self._conns:
            return
        if len(c.outbuf) + len(data) > MAX_BACKLOG:
            log.warning("control: dropping a client that does not read (%d octets unread)", len(c.outbuf))
            self._close(c)
            return
        c.outbuf += data

    def _send_later(self, c: _Conn, reply: dict[str, Any]) -> None:
        self._queue(c, _line(reply))

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


def _no_constant(name: str) -> Any:
    raise BadRequestError(f"not JSON: {name} is not a number JSON allows")


def parse_request(line: bytes) -> dict[str, Any]:
    """One request line as a JSON object; BadRequestError if it is not UTF-8, not JSON (NaN and
    Infinity included), nested deeper than MAX_DEPTH or not an object."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequestError(f"not UTF-8: {exc.reason} at octet {exc.start}") from None
    _check_depth(line)
    try:
        req = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise BadRequestError(f"not JSON: {exc}") from None
    except ValueError as exc:            # an integer past the digit limit, a float past the range
        raise BadRequestError(f"not JSON this engine takes: {exc}") from None
    except RecursionError:
        raise BadRequestError(f"nested deeper than {MAX_DEPTH} levels") from None
    if not isinstance(req, dict):
        raise BadRequestError("a request must be a JSON object")
    return req


_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')     # a JSON string, escapes included
_BRACKETS_ONLY = bytes(range(256)).translate(None, b"[]{}")  # every octet but the brackets: deleted
_AS_SQUARE = bytes.maketrans(b"{}", b"[]")
_STEP = [0] * 256
_STEP[ord("[")], _STEP[ord("]")] = 1, -1


def _finite(text: str) -> float:
    """A JSON number with a fraction or exponent; one past the float range (1e999) is refused, as
    NaN and Infinity are (a reply would carry it as the non-JSON Infinity)."""
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


def _check_depth(line: bytes) -> None:
    """Refuse nesting past MAX_DEPTH before parsing (the parser would recurse that deep). Strings
    are cut out and the brackets' running depth is summed in C (a 4 MiB line costs milliseconds)."""
    if line.count(b"[") + line.count(b"{") <= MAX_DEPTH:
        return
    brackets = _STRING.sub(b"", line).translate(_AS_SQUARE, _BRACKETS_ONLY)
    opened = brackets.count(b"[")
    if opened > MAX_CONTAINERS:
        raise BadRequestError(f"{opened} arrays and objects: a request holds at most {MAX_CONTAINERS}")
    if max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > MAX_DEPTH:
        raise BadRequestError(f"nested deeper than {MAX_DEPTH} levels")


def _line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()
