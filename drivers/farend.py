"""The sim card's far-end socket: another process plays the far side of some channels.

Framing (docs/sim-far-end.md): every message is a 4-octet big-endian length of
what follows, one type octet, then the body. The card speaks first with HELLO
(type 1, UTF-8 JSON: version, law, k, next tick, channels, ports, spans); the
peer answers HELLO with the channels it claims. From then on the card sends a
BLOCK (type 2) per block of k ticks and the peer answers each with a BLOCK for
the same ticks: lockstep in virtual time, deadline-bound in realtime.

This module does the listening and the handshake (control tier); the blocks
themselves are exchanged by the card in C, on the media path.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import struct
from dataclasses import dataclass
from typing import Any

from drivers.base import CardDescription
from drivers.errors import FarEndError

log = logging.getLogger("cicbox.drivers.farend")

PROTOCOL_VERSION = 1
MSG_HELLO = 1
MSG_BLOCK = 2
MAX_HELLO = 65536


@dataclass
class FarPeer:
    """A peer that said HELLO: its socket and the channels it claims."""

    sock: socket.socket
    channels: list[int]

    def detach_fd(self) -> int:
        """Hand the socket's descriptor over (to the card); this object no longer owns it."""
        return self.sock.detach()


def hello_document(desc: CardDescription, next_tick: int) -> dict[str, Any]:
    """The card's HELLO: what the peer needs to make sense of blocks."""
    chans = desc.channels()
    spans = []
    for si, kind in enumerate(desc.spans):
        first = next(c.index for c in chans if c.span == si)
        spans.append({"index": si, "kind": kind, "first_channel": first, "timeslots": 31 if kind == "e1" else 24})
    return {
        "version": PROTOCOL_VERSION,
        "law": desc.law,
        "k": desc.k,
        "tick": next_tick,
        "channels": [
            {"index": c.index, "kind": c.kind, "port": c.port, "span": c.span, "timeslot": c.timeslot}
            for c in chans
        ],
        "ports": [{"index": i, "kind": k} for i, k in enumerate(desc.ports)],
        "spans": spans,
    }


def _send(sock: socket.socket, mtype: int, body: bytes) -> None:
    sock.sendall(struct.pack(">IB", len(body) + 1, mtype) + body)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise FarEndError("the peer closed the connection during HELLO")
        out += chunk
    return out


class FarEndServer:
    """Listens on `path` (normally $STATE_DIR/sim.sock) for far-end peers."""

    def __init__(self, path: str, desc: CardDescription) -> None:
        self.path = path
        self.desc = desc
        self._claimed: set[int] = set()
        if os.path.exists(path):
            os.unlink(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(path)
        self._sock.listen(4)

    def fileno(self) -> int:
        return self._sock.fileno()

    def accept(self, next_tick: int, timeout: float | None) -> FarPeer | None:
        """Accept one peer and do the handshake; None if nobody connected in time.

        A peer whose HELLO is malformed, of another version, or claims unknown
        or already-claimed channels is told why, closed, and FarEndError raised.
        `timeout` bounds the socket I/O only (seconds; None waits).
        """
        self._sock.settimeout(timeout)
        try:
            conn, _ = self._sock.accept()
        except (TimeoutError, BlockingIOError):
            return None
        conn.settimeout(timeout if timeout is not None else 10.0)
        try:
            _send(conn, MSG_HELLO, json.dumps(hello_document(self.desc, next_tick)).encode())
            length, mtype = struct.unpack(">IB", _recv_exact(conn, 5))
            if mtype != MSG_HELLO or not 1 <= length <= MAX_HELLO:
                raise FarEndError(f"expected HELLO (type 1, length 1-{MAX_HELLO}), got type {mtype} length {length}")
            channels = self._check_hello(_recv_exact(conn, length - 1))
        except (FarEndError, OSError, ValueError) as exc:
            reason = str(exc)
            log.warning("far-end peer refused: %s", reason)
            with contextlib.suppress(OSError):
                _send(conn, MSG_HELLO, json.dumps({"error": reason}).encode())
            conn.close()
            raise FarEndError(f"far-end peer refused: {reason}") from None
        conn.setblocking(True)
        self._claimed.update(channels)
        log.info("far-end peer attached, claiming channels %s", channels)
        return FarPeer(conn, channels)

    def release(self, channels: list[int]) -> None:
        """The peer holding `channels` went away: they may be claimed again."""
        self._claimed.difference_update(channels)

    def _check_hello(self, body: bytes) -> list[int]:
        try:
            doc = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FarEndError(f"HELLO is not UTF-8 JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise FarEndError("HELLO must be a JSON object")
        if doc.get("version") != PROTOCOL_VERSION:
            raise FarEndError(f"protocol version {doc.get('version')!r} not supported (want {PROTOCOL_VERSION})")
        claim = doc.get("claim")
        nchan = len(self.desc.channels())
        if claim == "all":
            claim = list(range(nchan))
        if not isinstance(claim, list) or not claim or not all(isinstance(c, int) for c in claim):
            raise FarEndError("HELLO must claim a non-empty list of channel numbers, or \"all\"")
        for c in claim:
            if not 0 <= c < nchan:
                raise FarEndError(f"channel {c} does not exist (the card has {nchan})")
            if c in self._claimed:
                raise FarEndError(f"channel {c} is already claimed by another peer")
        if len(set(claim)) != len(claim):
            raise FarEndError("HELLO claims a channel twice")
        return list(claim)

    def close(self) -> None:
        self._sock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)
