"""A sim card stepped block by block with peers on socket pairs (no media tier, no engine).

The test is the card's caller: it exchanges blocks itself, so the only waiting is the
card's own (lockstep in virtual time, half a block in realtime)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

from drivers.base import CardDescription
from drivers.farend import CLAIM_SPAN, LINE_OCTETS
from drivers.hal import CmdOp, LineEvent
from drivers.sim import SimCard, ffi, lib
from tests.peers.far_proto import Peer

IDLE = 0xD5  # A-law idle octet


class FarBench:
    """The card, a transmit pattern, the blocks' receive buffers and events."""

    def __init__(self, desc: CardDescription, max_ticks: int = 20) -> None:
        self.desc = desc
        self.card = SimCard(desc)
        self.n = len(self.card.channels)
        self.tx = ffi.new("uint8_t[]", self.n * max_ticks * 8)
        self.rx = ffi.new("uint8_t[]", self.n * max_ticks * 8)
        self.ev = ffi.new("cb_event_t[]", 512)
        self.events: list[LineEvent] = []
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        self._keep: list[Any] = []
        self.peers: list[Peer] = []

    def attach(self, chans: list[int], start_tick: int = 0, sndbuf: int | None = None,
               spans: list[int] | None = None) -> Peer:
        """Hand one end of a socket pair to the card as a peer claiming the ports' channels `chans`
        and the spans `spans` (0-based) whole; return the other end."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        if sndbuf is not None:
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
            theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, sndbuf)
        theirs.settimeout(30)
        held = spans or []
        rc = self.command_attach(ours.detach(), chans + [CLAIM_SPAN | s for s in held], start_tick)  # the card's now
        if rc != 0:
            theirs.close()
        assert rc == 0, rc
        peer = Peer(theirs, [LINE_OCTETS[self.desc.spans[s]] for s in held])
        self.peers.append(peer)
        return peer

    def command_attach(self, fd: int, chans: list[int], start_tick: int = 0) -> int:
        buf = ffi.new("uint16_t[]", chans)
        self._keep.append(buf)
        cmd: Any = ffi.new("cb_cmd_t *")
        lo, hi = start_tick & 0xFFFFFFFF, start_tick >> 32
        cmd.op, cmd.chan, cmd.a, cmd.b = CmdOp.FAR_ATTACH, chans[0] if chans else 0, fd, len(chans)
        cmd.c = lo - (1 << 32) if lo >= 1 << 31 else lo
        cmd.d = hi
        cmd.ptr = int(ffi.cast("uintptr_t", buf))
        return int(lib.cb_sim_command(self.card.sim, cmd))

    def command(self, op: int, chan: int, a: int = 0) -> int:
        cmd: Any = ffi.new("cb_cmd_t *")
        cmd.op, cmd.chan, cmd.a = op, chan, a
        return int(lib.cb_sim_command(self.card.sim, cmd))

    def fill_tx(self, ticks: int, pattern: Callable[[int, int], int]) -> None:
        per = ticks * 8
        data = bytes(pattern(c, i) for c in range(self.n) for i in range(per))
        ffi.memmove(self.tx, data, len(data))

    def exchange(self, ticks: int) -> list[LineEvent]:
        n = lib.cb_sim_exchange(self.card.sim, self.card.tick, ticks, self.tx, self.rx, self.ev, 512)
        assert n >= 0, n
        evs = [LineEvent(int(e.tick), int(e.chan), int(e.type), int(e.value), int(e.extra))
               for e in self.ev[0:min(n, 512)]]   # n: the events raised; at most 512 handed over
        self.events += evs
        return evs

    def rx_of(self, chan: int, ticks: int) -> bytes:
        per = ticks * 8
        return bytes(ffi.buffer(self.rx + chan * per, per))

    def run(self, fn: Callable[[], None]) -> None:
        """Run a peer's script in a thread; its failure fails the test at close()."""

        def guarded() -> None:
            try:
                fn()
            except (EOFError, ConnectionError):
                pass  # the card closed the connection: the test looks at what the card saw
            except BaseException as exc:
                self.errors.append(exc)

        t = threading.Thread(target=guarded, daemon=True)
        t.start()
        self.threads.append(t)

    def close(self) -> None:
        self.card.close()
        for t in self.threads:
            t.join(30)
        for p in self.peers:
            p.close()
        if self.errors:
            raise self.errors[0]
