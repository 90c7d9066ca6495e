"""The sim card's far-end socket: other processes play the far side of some channels.

Framing (docs/sim-far-end.md): every message is a 4-octet big-endian length of
what follows, one type octet, then the body. The card speaks first with HELLO
(type 1, UTF-8 JSON: version 2, law, k, the first block's tick, channels, ports,
spans with their names and framing); the peer answers HELLO with the analog
channels and the spans (whole, by name) it claims. From then on the card sends a
BLOCK (type 2) per block of k ticks and the peer answers each with a BLOCK for
the same ticks (its ports' octets, its spans' line bits): lockstep in virtual
time, deadline-bound in realtime.

This module does the listening and the handshakes (control tier); the blocks
themselves are exchanged by the card in C, on the media path. Several peers may
be attached at once, with disjoint claims. Nothing here blocks on the realtime
clock: handshakes advance a little at each :meth:`FarEndServer.poll`, and a peer
that has not answered the HELLO by its deadline (in ticks of the card's clock)
is refused. In lockstep (the virtual clock) the clock waits for the handshake,
at most :data:`LOCKSTEP_HELLO_S` seconds of wall time, as the card waits for
each block's answer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import socket
import struct
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from drivers.base import CardDescription, SpanConfig
from drivers.errors import FarEndError

log = logging.getLogger("cicbox.drivers.farend")

PROTOCOL_VERSION = 2
CLAIM_SPAN = 0x8000         # CB_SIM_FAR_SPAN: a card claim entry for a span claimed whole (| its index)
MSG_HELLO = 1
MSG_BLOCK = 2
MAX_HELLO = 65536
MAX_PEERS = 8               # CB_SIM_MAX_PEERS: peers attached to the card at once
HELLO_MS = 500              # realtime: a peer has this long (card clock) to answer the HELLO
LOCKSTEP_HELLO_S = 10.0     # virtual clock: the dead-peer limit, seconds of wall time


@dataclass
class FarPeer:
    """A peer that said HELLO: its socket, the channels it claims, the tick of its first block."""

    sock: socket.socket
    channels: list[int]             # the ports it claimed, then the timeslot channels of its spans
    start_tick: int = 0
    spans: list[int] = field(default_factory=list)   # the spans it holds (0-based), in its order
    ports: list[int] = field(default_factory=list)   # the ports' channels it claimed, in its order

    def card_claim(self) -> list[int]:
        """The claim as the card takes it (CB_CMD_FAR_ATTACH): ports, then CLAIM_SPAN | span."""
        return [*self.ports, *(CLAIM_SPAN | s for s in self.spans)]

    def detach_fd(self) -> int:
        """Hand the socket's descriptor over (to the card); this object no longer owns it."""
        return self.sock.detach()


class HelloRefusedError(FarEndError):
    """Why a peer's HELLO was refused: `reason` counts it, the message is the peer's {"error"}."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


#: refusal reasons of the handshake, with what each means
HELLO_REFUSALS: dict[str, str] = {
    "closed": "the peer closed the connection during HELLO",
    "bad_message": "the peer's first message is not a HELLO of a sane length",
    "not_json": "HELLO is not UTF-8 JSON",
    "not_object": "HELLO is not a JSON object",
    "version": "protocol version not supported",
    "bad_claim": "the claim is not lists of channel numbers and span names (not both empty), or \"all\"",
    "unknown_channel": "a claimed channel does not exist",
    "timeslot_claim": "a claimed channel is a span's timeslot: spans are claimed whole",
    "unknown_span": "a claimed span does not exist",
    "claimed": "a claimed channel or span is held by another peer",
    "duplicate": "a channel or span is claimed twice",
    "hello_timeout": "no HELLO answer in time",
    "too_many_peers": "the card serves no more peers at once",
    "io": "socket error during HELLO",
}


LINE_OCTETS = {"e1": 256, "t1": 193}    # line octets per tick: 8 frames of 256 bits, or of 193


def span_names(desc: CardDescription, names: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The spans' names: `names` (the configuration's), else "span1", "span2", ... by position."""
    if names is None:
        return tuple(f"span{i + 1}" for i in range(len(desc.spans)))
    if len(names) != len(desc.spans) or len(set(names)) != len(names):
        raise FarEndError(f"span names {names!r} must name each of the card's {len(desc.spans)} spans once")
    return tuple(names)


def _span_entry(si: int, name: str, cfg: SpanConfig, first: int) -> dict[str, Any]:
    return {"index": si, "name": name, "kind": cfg.kind, "framing": cfg.framing, "coding": cfg.coding,
            "crc4": cfg.kind == "e1" and cfg.crc4, "ts16": cfg.ts16, "first_channel": first,
            "timeslots": 31 if cfg.kind == "e1" else 24, "octets_per_tick": LINE_OCTETS[cfg.kind]}


def hello_document(desc: CardDescription, next_tick: int, names: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The card's HELLO: what the peer needs to make sense of blocks."""
    chans = desc.channels()
    spans = []
    for si, name in enumerate(span_names(desc, names)):
        first = next(c.index for c in chans if c.span == si)
        spans.append(_span_entry(si, name, desc.span_config(si), first))
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


def _frame(mtype: int, body: bytes) -> bytes:
    return struct.pack(">IB", len(body) + 1, mtype) + body


@dataclass
class _Handshake:
    """One connection between accept and its claim."""

    conn: socket.socket
    start_tick: int
    deadline_tick: int | None          # realtime: refused at this card tick; lockstep: None
    out: bytes                          # what is left to send of our HELLO
    inbuf: bytearray = field(default_factory=bytearray)

    def pump(self) -> bytes | None:
        """Send and read what the socket takes and has, without waiting; the peer's HELLO body once whole."""
        while self.out:
            try:
                n = self.conn.send(self.out)
            except BlockingIOError:
                break
            except OSError as exc:
                raise HelloRefusedError("io", f"socket error during HELLO: {exc}") from None
            self.out = self.out[n:]
        while True:
            if len(self.inbuf) >= 5:
                length, mtype = struct.unpack(">IB", self.inbuf[:5])
                if mtype != MSG_HELLO or not 1 <= length <= MAX_HELLO:
                    raise HelloRefusedError("bad_message", f"expected HELLO (type 1, length 1-{MAX_HELLO}), "
                                                 f"got type {mtype} length {length}")
                want = 4 + length - len(self.inbuf)
                if want == 0:
                    return bytes(self.inbuf[5:])
            else:
                want = 5 - len(self.inbuf)
            try:
                chunk = self.conn.recv(want)
            except BlockingIOError:
                return None
            except OSError as exc:
                raise HelloRefusedError("io", f"socket error during HELLO: {exc}") from None
            if not chunk:
                raise HelloRefusedError("closed", "the peer closed the connection during HELLO")
            self.inbuf += chunk


class FarEndServer:
    """Listens on `path` (normally $STATE_DIR/sim.sock) for far-end peers.

    `lockstep` (the virtual clock): a peer's first block is the next one, and the
    clock waits for its handshake. Otherwise (realtime) a peer's first block is
    the first block boundary at least :data:`HELLO_MS` after it connected, and it
    must answer the HELLO a guard of a few blocks before that.
    """

    def __init__(self, path: str, desc: CardDescription, lockstep: bool | None = None,
                 names: tuple[str, ...] | None = None) -> None:
        self.path = path
        self.desc = desc
        self.span_names = span_names(desc, names)
        self.lockstep = desc.clock == "virtual" if lockstep is None else lockstep
        self.lockstep_hello_s = LOCKSTEP_HELLO_S
        self._claimed: set[int] = set()
        self._attached = 0
        self._pending: list[_Handshake] = []
        self.refused: Counter[str] = Counter()
        if os.path.exists(path):
            os.unlink(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(path)
        self._sock.listen(MAX_PEERS)
        self._sock.setblocking(False)
        self._ready = select.poll()         # a cheap look at the listening socket, every control period
        self._ready.register(self._sock, select.POLLIN)

    def fileno(self) -> int:
        return self._sock.fileno()

    def fds(self) -> list[int]:
        """The listening socket and the connections in their handshake (to wait on)."""
        return [self._sock.fileno(), *(h.conn.fileno() for h in self._pending)]

    @property
    def pending(self) -> int:
        """Connections that have not finished their handshake."""
        return len(self._pending)

    @property
    def guard_ticks(self) -> int:
        """Realtime: a HELLO answer must be in this long before the peer's first block."""
        return max(20, 4 * self.desc.k)

    def _start_tick(self, now_tick: int) -> tuple[int, int | None]:
        k = self.desc.k
        if self.lockstep:
            return now_tick, None
        start = -(-(now_tick + HELLO_MS + self.guard_ticks) // k) * k   # a block boundary
        return start, start - self.guard_ticks

    def poll(self, now_tick: int) -> list[FarPeer]:
        """Accept who is connecting and advance every handshake; the peers whose HELLO was accepted.

        `now_tick` is the card's next tick. Realtime: never waits. Lockstep: finishes each
        new handshake now, waiting at most :attr:`lockstep_hello_s` of wall time for it.
        """
        if not self._pending and not self._ready.poll(0):
            return []
        while True:
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                break
            conn.setblocking(False)
            start, deadline = self._start_tick(now_tick)
            hello = json.dumps(hello_document(self.desc, start, self.span_names)).encode()
            self._pending.append(_Handshake(conn, start, deadline, _frame(MSG_HELLO, hello)))
        accepted: list[FarPeer] = []
        for hs in list(self._pending):
            peer = self._lockstep_finish(hs) if self.lockstep else self._advance(hs, now_tick)
            if peer is not None:
                accepted.append(peer)
        return accepted

    def wait(self, now_tick: int, timeout_s: float) -> list[FarPeer]:
        """Wait up to `timeout_s` seconds of wall time for a peer whose HELLO is accepted.

        The explicit start-up wait of a lockstep run (`--wait-peer`): refused peers do not
        end it; the first accepted one (and any that came with it) does.
        """
        end = time.monotonic() + timeout_s  # clock-source: the wall-time wait for a first peer
        while True:
            left = end - time.monotonic()  # clock-source
            if left <= 0:
                return []
            readable, _, _ = select.select(self.fds(), [], [], left)  # clock-source
            if readable:
                peers = self.poll(now_tick)
                if peers:
                    return peers

    def _advance(self, hs: _Handshake, now_tick: int) -> FarPeer | None:
        try:
            body = hs.pump()
            if body is None:
                if hs.deadline_tick is not None and now_tick >= hs.deadline_tick:
                    raise HelloRefusedError("hello_timeout", f"no HELLO answer within {HELLO_MS} ms")
                return None
            if hs.deadline_tick is not None and now_tick > hs.deadline_tick:
                raise HelloRefusedError("hello_timeout", f"no HELLO answer within {HELLO_MS} ms")
            return self._accept(hs, body)
        except HelloRefusedError as exc:
            self._refuse(hs, exc)
            return None

    def _lockstep_finish(self, hs: _Handshake) -> FarPeer | None:
        end = time.monotonic() + self.lockstep_hello_s  # clock-source: lockstep waits for its peer, bounded
        try:
            while True:
                body = hs.pump()
                if body is not None:
                    return self._accept(hs, body)
                left = end - time.monotonic()  # clock-source
                if left <= 0:
                    raise HelloRefusedError("hello_timeout", f"no HELLO answer within {self.lockstep_hello_s:g} s")
                select.select([hs.conn], [hs.conn] if hs.out else [], [], left)  # clock-source
        except HelloRefusedError as exc:
            self._refuse(hs, exc)
            return None

    def _accept(self, hs: _Handshake, body: bytes) -> FarPeer:
        ports, spans = self._check_hello(body)
        if self._attached >= MAX_PEERS:
            raise HelloRefusedError("too_many_peers", f"the card serves at most {MAX_PEERS} peers at once")
        self._pending.remove(hs)
        channels = ports + [c.index for si in spans for c in self.desc.channels() if c.span == si]
        self._claimed.update(channels)
        self._attached += 1
        log.info("far-end peer attached, claiming channels %s and spans %s, first block at tick %d", ports,
                 [self.span_names[si] for si in spans], hs.start_tick)
        return FarPeer(hs.conn, channels, hs.start_tick, spans, ports)

    def _refuse(self, hs: _Handshake, exc: HelloRefusedError) -> None:
        self._pending.remove(hs)
        self.refused[exc.reason] += 1
        log.warning("far-end peer refused (%s): %s", exc.reason, exc)
        with contextlib.suppress(OSError):
            hs.conn.send(_frame(MSG_HELLO, json.dumps({"error": str(exc)}).encode()))
        hs.conn.close()

    def release(self, channels: list[int]) -> None:
        """The peer holding `channels` went away: they may be claimed again."""
        self._claimed.difference_update(channels)
        self._attached = max(0, self._attached - 1)

    def _check_hello(self, body: bytes) -> tuple[list[int], list[int]]:
        """The ports' channels and the spans (0-based) a HELLO claims, each in its order."""
        try:
            doc = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:     # JSONDecodeError, an integer past 4300 digits
            raise HelloRefusedError("not_json", f"HELLO is not UTF-8 JSON: {exc}") from None
        except RecursionError:
            raise HelloRefusedError("not_json", "HELLO is not UTF-8 JSON: nested too deep") from None
        if not isinstance(doc, dict):
            raise HelloRefusedError("not_object", "HELLO must be a JSON object")
        version = doc.get("version")
        if type(version) is not int or version != PROTOCOL_VERSION:
            raise HelloRefusedError("version", f"protocol version {doc.get('version')!r} not supported "
                                     f"(want {PROTOCOL_VERSION})")
        chans = self.desc.channels()
        nports = len(self.desc.ports)
        claim, spans = doc.get("claim", []), doc.get("spans", [])
        if claim == "all":
            if spans not in ([], "all"):
                raise HelloRefusedError("bad_claim", 'HELLO claims "all" and spans besides')
            claim, spans = list(range(nports)), "all"
        if spans == "all":
            spans = list(self.span_names)
        bad = HelloRefusedError("bad_claim", 'HELLO must claim a list of channel numbers ("claim") and a list of '
                                'span names ("spans"), not both empty, or "claim": "all"')
        if not isinstance(claim, list) or not isinstance(spans, list) or (not claim and not spans):
            raise bad
        if not all(isinstance(c, int) and not isinstance(c, bool) for c in claim) or \
                not all(isinstance(n, str) for n in spans):
            raise bad
        for c in claim:
            if not 0 <= c < len(chans):
                raise HelloRefusedError("unknown_channel", f"channel {c} does not exist (the card has {len(chans)})")
            info = chans[c]
            if info.span is not None:
                raise HelloRefusedError("timeslot_claim", f"channel {c} is timeslot {info.timeslot} of span "
                                        f"{self.span_names[info.span]}: spans are claimed whole "
                                        f'("spans": ["{self.span_names[info.span]}"])')
            if c in self._claimed:
                raise HelloRefusedError("claimed", f"channel {c} is already claimed by another peer")
        if len(set(claim)) != len(claim):
            raise HelloRefusedError("duplicate", "HELLO claims a channel twice")
        out: list[int] = []
        for name in spans:
            if name not in self.span_names:
                have = ", ".join(self.span_names) or "none"
                raise HelloRefusedError("unknown_span", f"span {name!r} does not exist (the card has {have})")
            si = self.span_names.index(name)
            if si in out:
                raise HelloRefusedError("duplicate", f"HELLO claims span {name} twice")
            first = next(c.index for c in chans if c.span == si)
            if first in self._claimed:
                raise HelloRefusedError("claimed", f"span {name} is already claimed by another peer")
            out.append(si)
        return list(claim), out

    def close(self) -> None:
        for hs in self._pending:
            hs.conn.close()
        self._pending = []
        self._sock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)
