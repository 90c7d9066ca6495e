"""The far-end socket's framing (docs/sim-far-end.md) with the Python standard library only.

Shared by the tests' scripted peers: one connection is a :class:`Peer`; it reads the card's
HELLO, answers with a claim, then reads BLOCKs and answers them.
"""

from __future__ import annotations

import json
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

HELLO, BLOCK = 1, 2
HOOK_OFF, HOOK_ON, RING_ON, RING_OFF, BATTERY, POLARITY = 1, 2, 4, 5, 6, 7


@dataclass
class Block:
    """One BLOCK as the card sent it."""

    seq: int
    tick: int
    ticks: int
    nchan: int
    octets: bytes                      # nchan * ticks * 8, channel after channel
    events: list[tuple[int, int, int, int]] = field(default_factory=list)  # chan, type, value, tick


def recv_exact(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise EOFError
        out += chunk
    return out


def recv_msg(sock: socket.socket) -> tuple[int, bytes]:
    length, mtype = struct.unpack(">IB", recv_exact(sock, 5))
    return mtype, recv_exact(sock, length - 1)


def frame(mtype: int, body: bytes) -> bytes:
    return struct.pack(">IB", len(body) + 1, mtype) + body


def parse_block(body: bytes) -> Block:
    seq, tick, ticks, nchan = struct.unpack(">IQHH", body[:16])
    end = 16 + nchan * ticks * 8
    (nev,) = struct.unpack(">H", body[end:end + 2])
    events = [struct.unpack(">HHiQ", body[end + 2 + 16 * i:end + 18 + 16 * i]) for i in range(nev)]
    return Block(seq, tick, ticks, nchan, body[16:end], [(e[0], e[1], e[2], e[3]) for e in events])


def answer_body(seq: int, tick: int, ticks: int, octets: bytes, nchan: int,
                events: list[tuple[int, int, int, int]] | None = None) -> bytes:
    """A peer's BLOCK body for (seq, tick): `octets` are nchan * ticks * 8."""
    evs = events or []
    out = struct.pack(">IQHH", seq, tick, ticks, nchan) + octets + struct.pack(">H", len(evs))
    for ch, typ, val, tk in evs:
        out += struct.pack(">HHiQ", ch, typ, val, tk)
    return out


class Peer:
    """One connection to the card's far-end socket (or one end of a socket pair)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.hello: dict[str, Any] = {}

    @classmethod
    def connect(cls, path: str, timeout: float = 30.0) -> Peer:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(path)
        return cls(sock)

    def read_hello(self) -> dict[str, Any]:
        mtype, body = recv_msg(self.sock)
        assert mtype == HELLO
        self.hello = json.loads(body)
        return self.hello

    def claim(self, channels: list[int] | str, version: int = 1) -> None:
        self.sock.sendall(frame(HELLO, json.dumps({"version": version, "claim": channels}).encode()))

    def read_answer(self) -> dict[str, Any]:
        """The card's answer to a refused HELLO: {"error": reason}."""
        mtype, body = recv_msg(self.sock)
        assert mtype == HELLO
        doc: dict[str, Any] = json.loads(body)
        return doc

    def read_block(self) -> Block:
        mtype, body = recv_msg(self.sock)
        assert mtype == BLOCK, mtype
        return parse_block(body)

    def answer(self, blk: Block, octets: bytes, events: list[tuple[int, int, int, int]] | None = None) -> None:
        self.sock.sendall(frame(BLOCK, answer_body(blk.seq, blk.tick, blk.ticks, octets, blk.nchan, events)))

    def close(self) -> None:
        self.sock.close()
