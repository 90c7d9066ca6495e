"""The far-end socket at the card: every length, count and index from a peer is checked, several
peers each keep their own state, and the card never waits on a peer for longer than its bound.

The test steps the card itself (no media tier): in virtual time the card waits for each peer's
answer (lockstep); on the realtime clock the only wait is the card's half-block answer deadline.
"""

from __future__ import annotations

import functools
import os
import socket
import struct
import threading
from typing import Literal

import pytest

from drivers import farend
from drivers.base import CardDescription
from drivers.hal import CmdOp, EventType, FarError
from drivers.sim import lib
from tests.drivers.far_bench import IDLE, FarBench
from tests.peers.far_proto import BLOCK, Block, Peer, answer_body, frame

DEAD = 50  # CB_SIM_FAR_DEAD_BLOCKS: checked against the header below


def test_the_dead_peer_limit_is_the_documented_one() -> None:
    assert lib.CB_SIM_FAR_DEAD_BLOCKS == DEAD
    assert lib.CB_SIM_MAX_PEERS == farend.MAX_PEERS
    assert lib.CB_SIM_FAR_TIMEOUT_MS == farend.LOCKSTEP_HELLO_S * 1000


def test_a_detached_peer_goes_at_the_next_block_with_its_far_down() -> None:
    b = FarBench(CardDescription(ports=("fxs", "fxs", "fxs"), k=4))
    b.attach([2, 1])
    try:
        assert b.command(CmdOp.FAR_DETACH, 0) == lib.CB_ERR_INVALID     # nobody holds channel 0
        assert b.command(CmdOp.FAR_DETACH, 1) == 0
        evs = b.exchange(4)
        assert [(e.chan, e.type, e.value) for e in evs] == [(2, EventType.FAR_DOWN, FarError.OK)]
        assert b.card.stats()["far_peers"] == 0 and b.card.far_peers() == []
    finally:
        b.close()


def test_no_more_peers_than_the_card_has_slots() -> None:
    b = FarBench(CardDescription(ports=("fxs",) * 10, k=4))
    try:
        for c in range(lib.CB_SIM_MAX_PEERS):
            b.attach([c])
        a, c2 = socket.socketpair()
        try:
            assert b.command_attach(os.dup(a.fileno()), [9]) == lib.CB_ERR_FULL
        finally:
            a.close()
            c2.close()
        assert [p["first_chan"] for p in b.card.far_peers()] == list(range(lib.CB_SIM_MAX_PEERS))
    finally:
        b.close()


def pattern(seq: int, chan: int, i: int) -> int:
    return (seq * 31 + chan * 7 + i) & 0xFF


def tx_pattern(blk: int, chan: int, i: int) -> int:
    return (blk + chan * 3 + i) & 0xFF


def test_a_20_tick_block_from_a_peer_claiming_every_port_and_span() -> None:
    """k=20 (one DAHDI read) through the card for 2 ports and 2 E1 spans: the card's block and the
    answer fit (20 ticks of 257 line octets per span), the ports' octets arrive bit-exact both ways."""
    b = FarBench(CardDescription(ports=("fxs", "fxs"), spans=("e1", "e1"), k=4))
    peer = b.attach([0, 1], spans=[0, 1])
    seen: list[Block] = []

    def script() -> None:
        for _ in range(3):
            blk = peer.read_block()
            seen.append(blk)
            octets = bytes(pattern(blk.seq, c, i) for c in range(blk.nchan) for i in range(blk.ticks * 8))
            peer.answer(blk, octets, lines=blk.lines)       # the spans' lines echoed back

    b.run(script)
    try:
        for blk_no in range(3):
            b.fill_tx(20, functools.partial(tx_pattern, blk_no))
            evs = b.exchange(20)
            assert [e for e in evs if e.type in (EventType.FAR_ERROR, EventType.FAR_DOWN)] == []
            for c in (0, 1):
                assert b.rx_of(c, 20) == bytes(pattern(blk_no, c, i) for i in range(160)), c
            assert seen[blk_no].ticks == 20 and seen[blk_no].nchan == 2
            assert seen[blk_no].octets == bytes((blk_no + c * 3 + i) & 0xFF for c in (0, 1) for i in range(160))
            assert [[(f, len(bits)) for f, bits in line] for line in seen[blk_no].lines] == [[(0, 256)] * 20] * 2
        assert b.card.tick == 60
        assert b.card.stats()["far_refused"] == 0
    finally:
        b.close()


def test_a_message_longer_than_the_largest_block_is_refused_with_its_reason() -> None:
    b = FarBench(CardDescription(ports=("fxs", "fxs"), k=4))
    peer = b.attach([1])

    def script() -> None:
        peer.read_block()
        peer.sock.sendall(struct.pack(">IB", 10_000_000, BLOCK) + b"\0" * 64)

    b.run(script)
    try:
        evs = b.exchange(4)
        errors = [(e.chan, e.value) for e in evs if e.type == EventType.FAR_ERROR]
        assert errors == [(1, FarError.TOO_LONG)]
        assert [e.chan for e in evs if e.type == EventType.FAR_DOWN] == [1]
        assert b.rx_of(1, 4) == bytes([IDLE]) * 32
        st = b.card.stats()
        assert st["far_refused"] == 1 and st["far_refused_by"]["TOO_LONG"] == 1
    finally:
        b.close()


@pytest.mark.parametrize(
    ("nev", "extra", "code"),
    [(65535, b"", "BAD_LENGTH"),              # the count says more events than the message holds
     (257, b"\0" * 16 * 257, "BAD_COUNT")],  # more events than a block may carry
)
def test_the_event_count_is_checked_before_use(nev: int, extra: bytes, code: str) -> None:
    b = FarBench(CardDescription(ports=("fxs", "fxs"), k=4))
    peer = b.attach([1])

    def script() -> None:
        blk = peer.read_block()
        body = struct.pack(">IQHHH", blk.seq, blk.tick, blk.ticks, 1, 0) + b"\x11" * 32 + struct.pack(">H", nev) + extra
        peer.sock.sendall(frame(BLOCK, body))

    b.run(script)
    try:
        evs = b.exchange(4)
        assert [e.value for e in evs if e.type == EventType.FAR_ERROR] == [FarError[code]]
        assert b.rx_of(1, 4) == bytes([IDLE]) * 32
    finally:
        b.close()


def test_more_card_events_than_a_block_carries_go_in_the_next_block() -> None:
    """300 hook changes of ours on a claimed FXO port in one block: 256 now, 44 in the next, none lost."""
    b = FarBench(CardDescription(ports=("fxo", "fxs"), k=4))
    peer = b.attach([0])
    got: list[list[tuple[int, int, int, int]]] = []

    def script() -> None:
        for _ in range(3):
            blk = peer.read_block()
            got.append(blk.events)
            peer.answer(blk, bytes([IDLE]) * 32)

    b.run(script)
    try:
        for i in range(300):
            assert b.command(CmdOp.HOOK, 0, 1 - i % 2) == 0   # off, on, off, ...
        for _ in range(3):
            b.exchange(4)
        assert [len(g) for g in got] == [256, 44, 0]
        types = [t for g in got for (_, t, _, _) in g]
        assert types == [EventType.HOOK_OFF, EventType.HOOK_ON] * 150
        assert b.card.stats()["far_ev_dropped"] == 0
    finally:
        b.close()


def test_card_events_a_peer_could_not_be_sent_in_time_are_counted() -> None:
    """More changes than the far-visible queue holds before the peer's next block: the lost ones are counted."""
    b = FarBench(CardDescription(ports=("fxo", "fxs"), k=4))
    peer = b.attach([0])

    def script() -> None:
        for _ in range(20):
            blk = peer.read_block()
            peer.answer(blk, bytes([IDLE]) * 32)

    b.run(script)
    try:
        for i in range(5000):
            b.command(CmdOp.HOOK, 0, 1 - i % 2)
        for _ in range(20):
            b.exchange(4)
        assert b.card.stats()["far_ev_dropped"] == 5000 - lib.CB_SIM_FARQ
    finally:
        b.close()


def test_peer_signals_that_do_not_fit_the_signal_queue_are_counted() -> None:
    b = FarBench(CardDescription(ports=("fxo", "fxo", "fxs"), k=4))
    peer = b.attach([2])
    room = 4
    for i in range(lib.CB_SIM_SIGQ - room):      # the in-process exchange rings port 0, far in the future
        b.card.far.ring(0, i % 2 == 0, at_tick=100_000 + i)

    def script() -> None:
        blk = peer.read_block()
        evs = [(2, int(EventType.HOOK_OFF if j % 2 == 0 else EventType.HOOK_ON), 0, blk.tick + j % 4)
               for j in range(10)]
        peer.answer(blk, bytes([IDLE]) * 32, evs)

    b.run(script)
    try:
        b.exchange(4)
        st = b.card.stats()
        assert st["far_sig_dropped"] == 10 - room
        # The first `room` fit; of the rest (changes 4-9), the even ones are HOOK_OFFs.
        assert st["far_sig_dropped_by"] == {"HOOK_OFF": 3, "HOOK_ON": 3}
    finally:
        b.close()


def test_claims_are_checked_when_a_peer_is_attached() -> None:
    b = FarBench(CardDescription(ports=("fxs", "fxs", "fxs", "fxs"), k=4))
    try:
        b.attach([0, 1])
        a, c = socket.socketpair()
        try:   # the card owns what it is handed, refused or not: it gets copies
            assert b.command_attach(os.dup(a.fileno()), [1, 2]) == lib.CB_ERR_INVALID   # channel 1 is held
            assert b.command_attach(os.dup(a.fileno()), [2, 2]) == lib.CB_ERR_INVALID   # twice in one claim
            assert b.command_attach(os.dup(a.fileno()), [4]) == lib.CB_ERR_INVALID      # no such channel
            assert b.command_attach(os.dup(a.fileno()), []) == lib.CB_ERR_INVALID
        finally:
            a.close()
            c.close()
        b.attach([2])
        b.attach([3])
    finally:
        b.close()


def test_two_peers_keep_their_own_sequence_and_channels() -> None:
    b = FarBench(CardDescription(ports=("fxs", "fxs", "fxs"), k=4))
    p0 = b.attach([0])
    p2 = b.attach([2], start_tick=8)            # joins at the third block
    seen: dict[int, list[tuple[int, int]]] = {0: [], 2: []}

    def script(peer: Peer, chan: int, blocks: int) -> None:
        for _ in range(blocks):
            blk = peer.read_block()
            seen[chan].append((blk.seq, blk.tick))
            peer.answer(blk, bytes([chan + 1]) * 32)

    b.run(lambda: script(p0, 0, 5))
    b.run(lambda: script(p2, 2, 3))
    try:
        for _ in range(5):
            b.exchange(4)
            assert b.rx_of(0, 4) == b"\x01" * 32
            assert b.rx_of(1, 4) == bytes([IDLE]) * 32
            assert b.rx_of(2, 4) == (b"\x03" * 32 if b.card.tick > 8 else bytes([IDLE]) * 32)
        assert seen == {0: [(0, 0), (1, 4), (2, 8), (3, 12), (4, 16)], 2: [(0, 8), (1, 12), (2, 16)]}
        assert [e for e in b.events if e.type == EventType.FAR_ERROR] == []
    finally:
        b.close()


def test_a_peer_whose_first_block_has_passed_is_refused() -> None:
    b = FarBench(CardDescription(ports=("fxs", "fxs"), k=4))
    b.exchange(4)
    b.exchange(4)
    b.attach([1], start_tick=4)                 # the card is at tick 8 already
    try:
        evs = b.exchange(4)
        assert [(e.chan, e.value) for e in evs if e.type == EventType.FAR_ERROR] == [(1, FarError.START_MISSED)]
    finally:
        b.close()


# -- the realtime clock: deadlines, partial reads, dead and stalled peers ---------------------------

K = 10  # half a block is 5 ms


def test_a_late_partial_header_keeps_its_bytes() -> None:
    """Two octets of the length arrive in time, the rest after the deadline: the block is late, and
    the stream stays in step (the late answer is recognised and skipped, the next one used)."""
    b = FarBench(CardDescription(ports=("fxs", "fxs"), k=K, clock="realtime"))
    peer = b.attach([1])
    block0_over, sent = threading.Event(), threading.Event()

    def script() -> None:
        blk = peer.read_block()
        msg = frame(BLOCK, answer_body(blk.seq, blk.tick, K, b"\x11" * (K * 8), 1))
        peer.sock.sendall(msg[:2])             # a header split across two reads
        block0_over.wait(30)
        # The rest of the late answer, and the next block's answer written ahead (never late).
        peer.sock.sendall(msg[2:] + frame(BLOCK, answer_body(1, K, K, b"\x22" * (K * 8), 1)))
        sent.set()
        peer.read_block()

    b.run(script)
    try:
        assert [e.type for e in b.exchange(K)] == [EventType.FAR_LATE]
        assert b.rx_of(1, K) == bytes([IDLE]) * (K * 8)
        block0_over.set()
        assert sent.wait(30)
        assert b.exchange(K) == []
        assert b.rx_of(1, K) == b"\x22" * (K * 8)
        st = b.card.stats()
        assert st["far_late"] == 1 and st["far_skipped"] == 1 and st["far_refused"] == 0
    finally:
        block0_over.set()
        b.close()


@pytest.mark.parametrize("port", ["fxs", "fxo"])
def test_a_line_change_in_a_late_answer_still_sets_the_level(port: Literal["fxs", "fxo"]) -> None:
    """The answer to block 0 carries the far side's line change (a phone off hook, or the exchange
    ringing) and comes after the block was run with idle octets: it is skipped, its change raises no
    event, but the line's level is set as the peer left it (the engine reconciles from it), and the
    change is counted as lost by kind."""
    b = FarBench(CardDescription(ports=("fxs", port), k=K, clock="realtime"))
    peer = b.attach([1])
    change = EventType.HOOK_OFF if port == "fxs" else EventType.RING_ON
    level = lib.CB_LEVEL_OFF_HOOK if port == "fxs" else lib.CB_LEVEL_RINGING
    block0_over, sent = threading.Event(), threading.Event()

    def script() -> None:
        blk = peer.read_block()
        late = frame(BLOCK, answer_body(blk.seq, blk.tick, K, bytes([IDLE]) * (K * 8), 1,
                                        [(1, int(change), 1, blk.tick + K - 1)]))
        block0_over.wait(30)                   # a whole block late
        peer.sock.sendall(late + frame(BLOCK, answer_body(1, K, K, bytes([IDLE]) * (K * 8), 1)))
        sent.set()
        peer.read_block()

    b.run(script)
    try:
        assert [e.type for e in b.exchange(K)] == [EventType.FAR_LATE]
        block0_over.set()
        assert sent.wait(30)
        assert b.exchange(K) == []             # no event for the lost change
        assert b.card.line_levels()[1] & level
        st = b.card.stats()
        assert st["far_late"] == 1 and st["far_skipped"] == 1 and st["far_refused"] == 0
        assert st["far_late_events"] == 1 and st["far_late_events_by"] == {change.name: 1}
    finally:
        block0_over.set()
        b.close()


def test_a_peer_that_stops_answering_is_dropped_after_n_blocks_the_others_stay_bit_exact() -> None:
    b = FarBench(CardDescription(ports=("fxs", "fxs", "fxs"), k=K, clock="realtime"))
    silent = b.attach([0])                     # connected, never reads, never answers
    steady = b.attach([1])
    blocks = DEAD + 5
    for blk_no in range(blocks):               # answers written ahead: never late
        steady.sock.sendall(frame(BLOCK, answer_body(blk_no, blk_no * K, K, bytes(
            pattern(blk_no, 1, i) for i in range(K * 8)), 1)))

    def drain() -> None:
        for _ in range(blocks):
            steady.read_block()

    b.run(drain)
    inproc = bytes((i * 5) & 0xFF for i in range(blocks * K * 8))
    assert b.card.far.write(2, inproc) == len(inproc)
    try:
        for blk_no in range(blocks):
            evs = b.exchange(K)
            late = [e for e in evs if e.type == EventType.FAR_LATE]
            assert [e.chan for e in late] == ([0] if blk_no < DEAD else [])
            down = [(e.chan, e.type, e.value) for e in evs if e.type in (EventType.FAR_ERROR, EventType.FAR_DOWN)]
            if blk_no == DEAD - 1:
                assert down == [(0, EventType.FAR_ERROR, FarError.LATE_RUN), (0, EventType.FAR_DOWN, FarError.LATE_RUN)]
            else:
                assert down == []
            assert b.rx_of(0, K) == bytes([IDLE]) * (K * 8)
            assert b.rx_of(1, K) == bytes(pattern(blk_no, 1, i) for i in range(K * 8)), blk_no
            assert b.rx_of(2, K) == inproc[blk_no * K * 8:(blk_no + 1) * K * 8]
        st = b.card.stats()
        assert st["far_late"] == DEAD and st["far_dropped"] == 1 and st["far_refused_by"]["LATE_RUN"] == 1
        assert st["far_peers"] == 1
    finally:
        silent.close()
        b.close()


def test_a_peer_that_stops_reading_is_dropped_within_n_blocks_the_others_stay_bit_exact() -> None:
    """The peer answers every block (written ahead) but reads nothing: once the card cannot hand it a
    block for N blocks in a row, it is dropped; the card's sends never block."""
    b = FarBench(CardDescription(ports=("fxs",), spans=("e1",), k=K, clock="realtime"))
    deaf = b.attach([], sndbuf=4096, spans=[0])     # the span whole: named by its TS1 (channel 1)
    steady = b.attach([0])
    blocks = DEAD + 20
    for blk_no in range(blocks):
        if blk_no < 10:        # more than it will be handed before its socket is full
            deaf.sock.sendall(frame(BLOCK, answer_body(blk_no, blk_no * K, K, b"", 0,
                                                       lines=[[(0, b"\x33" * 256)] * K])))
        steady.sock.sendall(frame(BLOCK, answer_body(blk_no, blk_no * K, K, bytes(
            pattern(blk_no, 0, i) for i in range(K * 8)), 1)))

    def drain() -> None:
        for _ in range(blocks):
            steady.read_block()

    b.run(drain)
    dropped_at = None
    try:
        for blk_no in range(blocks):
            evs = b.exchange(K)
            if any(e.type == EventType.FAR_DOWN for e in evs):
                assert dropped_at is None
                dropped_at = blk_no
                assert [(e.chan, e.value) for e in evs if e.type == EventType.FAR_ERROR] == [(1, FarError.STALLED)]
            assert b.rx_of(0, K) == bytes(pattern(blk_no, 0, i) for i in range(K * 8)), blk_no
        assert dropped_at is not None and dropped_at < DEAD + 10
        assert b.rx_of(5, K) == bytes([IDLE]) * (K * 8)     # the span is the in-process far end's again
        st = b.card.stats()
        assert st["far_refused_by"]["STALLED"] == 1 and st["far_dropped"] == 1
    finally:
        deaf.close()
        b.close()


def test_virtual_lockstep_waits_for_a_dead_peer_only_up_to_the_limit() -> None:
    b = FarBench(CardDescription(ports=("fxs", "fxs"), k=4))
    b.card.set_far_timeout(200)                 # ms of wall time (10 s by default)
    silent = b.attach([0])
    steady = b.attach([1])

    def script() -> None:
        for _ in range(3):
            blk = steady.read_block()
            steady.answer(blk, b"\x44" * 32)

    b.run(script)
    try:
        evs = b.exchange(4)
        assert [(e.chan, e.type, e.value) for e in evs if e.type in (EventType.FAR_ERROR, EventType.FAR_DOWN)] == [
            (0, EventType.FAR_ERROR, FarError.TIMEOUT), (0, EventType.FAR_DOWN, FarError.TIMEOUT)]
        assert b.rx_of(1, 4) == b"\x44" * 32
        for _ in range(2):
            assert b.exchange(4) == []
            assert b.rx_of(1, 4) == b"\x44" * 32 and b.rx_of(0, 4) == bytes([IDLE]) * 32
    finally:
        silent.close()
        b.close()
