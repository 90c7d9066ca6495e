"""The far-end socket's framing (docs/sim-far-end.md, version 2) with the Python standard library only.

Shared by the tests' scripted peers: one connection is a :class:`Peer`; it reads the card's
HELLO, answers with a claim (ports' channels, spans by name), then reads BLOCKs and answers them.
"""

from __future__ import annotations

import json
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

VERSION = 2
HELLO, BLOCK = 1, 2
HOOK_OFF, HOOK_ON, RING_ON, RING_OFF, BATTERY, POLARITY = 1, 2, 4, 5, 6, 7
NOSIG = 1                              # a span's flags octet: no signal that tick
HEAD = ">IQHHH"                        # seq, first tick, ticks, channels, spans
HEAD_SIZE = struct.calcsize(HEAD)

#: one span's line in a BLOCK: per tick, (flags, line octets)
Line = list[tuple[int, bytes]]


@dataclass
class Block:
    """One BLOCK as the card sent it."""

    seq: int
    tick: int
    ticks: int
    nchan: int
    octets: bytes                      # nchan * ticks * 8, channel after channel
    events: list[tuple[int, int, int, int]] = field(default_factory=list)  # chan, type, value, tick
    lines: list[Line] = field(default_factory=list)   # per claimed span, in the claim's order


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


def parse_block(body: bytes, span_octets: list[int] | None = None) -> Block:
    """A card's BLOCK body; `span_octets`: octets_per_tick of each claimed span, in the claim's order."""
    seq, tick, ticks, nchan, nspan = struct.unpack(HEAD, body[:HEAD_SIZE])
    widths = span_octets or []
    assert nspan == len(widths), (nspan, widths)
    end = HEAD_SIZE + nchan * ticks * 8
    octets = body[HEAD_SIZE:end]
    lines: list[Line] = []
    for w in widths:
        line: Line = []
        for _ in range(ticks):
            line.append((body[end], body[end + 1:end + 1 + w]))
            end += 1 + w
        lines.append(line)
    (nev,) = struct.unpack(">H", body[end:end + 2])
    events = [struct.unpack(">HHiQ", body[end + 2 + 16 * i:end + 18 + 16 * i]) for i in range(nev)]
    return Block(seq, tick, ticks, nchan, octets, [(e[0], e[1], e[2], e[3]) for e in events], lines)


def answer_body(seq: int, tick: int, ticks: int, octets: bytes, nchan: int,
                events: list[tuple[int, int, int, int]] | None = None, lines: list[Line] | None = None) -> bytes:
    """A peer's BLOCK body for (seq, tick): `octets` are nchan * ticks * 8; `lines` per claimed span."""
    evs = events or []
    spans = lines or []
    out = struct.pack(HEAD, seq, tick, ticks, nchan, len(spans)) + octets
    for line in spans:
        for flags, bits in line:
            out += bytes([flags]) + bits
    out += struct.pack(">H", len(evs))
    for ch, typ, val, tk in evs:
        out += struct.pack(">HHiQ", ch, typ, val, tk)
    return out


class Peer:
    """One connection to the card's far-end socket (or one end of a socket pair)."""

    def __init__(self, sock: socket.socket, span_octets: list[int] | None = None) -> None:
        self.sock = sock
        self.hello: dict[str, Any] = {}
        self.span_octets: list[int] = list(span_octets or [])   # of the spans it holds, in its order

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

    def claim(self, channels: list[int] | str, spans: list[str] | str | None = None, version: int = VERSION) -> None:
        """Claim ports' channels (or "all": every port and span) and spans by name."""
        doc: dict[str, Any] = {"version": version, "claim": channels}
        if spans is not None:
            doc["spans"] = spans
        by_name = {s["name"]: s for s in self.hello.get("spans", [])}
        names = list(by_name) if channels == "all" or spans == "all" else list(spans or [])
        self.span_octets = [by_name[n]["octets_per_tick"] for n in names if n in by_name]
        self.sock.sendall(frame(HELLO, json.dumps(doc).encode()))

    def read_answer(self) -> dict[str, Any]:
        """The card's answer to a refused HELLO: {"error": reason}."""
        mtype, body = recv_msg(self.sock)
        assert mtype == HELLO
        doc: dict[str, Any] = json.loads(body)
        return doc

    def read_block(self) -> Block:
        mtype, body = recv_msg(self.sock)
        assert mtype == BLOCK, mtype
        return parse_block(body, self.span_octets)

    def answer(self, blk: Block, octets: bytes, events: list[tuple[int, int, int, int]] | None = None,
               lines: list[Line] | None = None) -> None:
        if lines is None:       # no signal on the spans it holds
            lines = [[(NOSIG, bytes(w))] * blk.ticks for w in self.span_octets]
        self.sock.sendall(frame(BLOCK, answer_body(blk.seq, blk.tick, blk.ticks, octets, blk.nchan, events, lines)))

    def close(self) -> None:
        self.sock.close()
