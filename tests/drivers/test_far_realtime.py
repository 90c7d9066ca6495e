"""The far-end socket on the realtime clock: an answer that misses its half block gets idle octets
and is counted; the late answer is skipped when it arrives; an answer in time is used. Driven block
by block (no clock waits); the only waiting is the card's own half-block read timeout. The answer
meant to be in time is written before its block is exchanged, so no thread has to beat the half
block (5 ms) for the test to hold: only the late block depends on the clock, and by whole blocks."""

from __future__ import annotations

import socket
import struct
import threading
from typing import Any

from drivers.base import CardDescription
from drivers.hal import CmdOp, EventType
from drivers.sim import SimCard, ffi, lib

K = 10          # half a block (5 ms) is the peer's budget: ample for a thread that answers at once
PER = K * 8


def read_block(sock: socket.socket) -> tuple[int, int]:
    (length,) = struct.unpack(">I", sock.recv(4, socket.MSG_WAITALL))
    body = sock.recv(length, socket.MSG_WAITALL)
    assert body[0] == 2
    seq, tick = struct.unpack(">IQ", body[1:13])
    return seq, tick


def answer(sock: socket.socket, seq: int, tick: int, fill: int) -> None:
    body = bytes([2]) + struct.pack(">IQHHH", seq, tick, K, 1, 0) + bytes([fill]) * PER + struct.pack(">H", 0)
    sock.sendall(struct.pack(">I", len(body)) + body)


def test_late_answers_become_idle_and_are_skipped_in_time_ones_are_used() -> None:
    card = SimCard(CardDescription(ports=("fxs", "fxs"), k=K, clock="realtime"))
    ours, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    chans = ffi.new("uint16_t[]", [1])
    cmd: Any = ffi.new("cb_cmd_t *")
    cmd.op, cmd.a, cmd.b, cmd.ptr = CmdOp.FAR_ATTACH, ours.detach(), 1, int(ffi.cast("uintptr_t", chans))
    assert lib.cb_sim_command(card.sim, cmd) == 0
    tx = ffi.new("uint8_t[]", 2 * PER)
    rx = ffi.new("uint8_t[]", 2 * PER)
    ev = ffi.new("cb_event_t[16]")
    block0_over, answered = threading.Event(), threading.Event()

    def peer_side() -> None:
        seq, tick = read_block(peer)
        block0_over.wait()                     # answer block 0 only after the card gave up on it
        answer(peer, seq, tick, 0x11)
        answer(peer, seq + 1, tick + K, 0x22)  # and block 1 ahead of it: in time whatever the scheduling
        answered.set()
        read_block(peer)

    t = threading.Thread(target=peer_side)
    t.start()

    def exchange() -> list[int]:
        n = lib.cb_sim_exchange(card.sim, card.tick, K, tx, rx, ev, 16)
        assert n >= 0
        return [int(e.type) for e in ev[0:min(n, 16)]]   # n: the events raised; 16 handed over at most

    try:
        assert exchange() == [EventType.FAR_LATE]                # block 0: no answer in time
        assert bytes(ffi.buffer(rx + PER, PER)) == b"\xd5" * PER  # idle A-law for the peer's channel
        block0_over.set()
        assert answered.wait(30)
        assert exchange() == []                                   # block 1: late answer skipped, its own used
        assert bytes(ffi.buffer(rx + PER, PER)) == b"\x22" * PER
        stats = card.stats()
        assert stats["far_late"] == 1 and stats["far_refused"] == 0
    finally:
        block0_over.set()
        t.join(30)
        peer.close()
        card.close()
