"""Outside peers on the far-end socket, through the media tier: several at once with disjoint claims,
a conflicting claim told why, the HELLO's tick equal to the first block's on both clocks, a realtime
handshake that spans control periods without blocking, and a dead peer dropped and counted."""

from __future__ import annotations

import json
import logging
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from appliance.linecard import LineCard
from drivers.base import CardDescription
from drivers.farend import HELLO_MS, MAX_PEERS
from drivers.hal import EventType, FarError
from drivers.sim import SimCard
from tests.peers.far_proto import HELLO, Peer, frame

PHONE = Path(__file__).resolve().parent / "peers" / "far_phone.py"
IDLE = 0xD5


def far_phone(sock: Path, chan: int, digits: str) -> subprocess.Popen[str]:
    # The peer must not see this project: it uses the standard library and the framing document only.
    return subprocess.Popen([sys.executable, str(PHONE), str(sock), str(chan), digits], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={"PATH": "/usr/bin:/bin"}, cwd=str(sock.parent))


def in_thread(fn: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            fn()
        except (EOFError, ConnectionError):
            pass
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=guarded, daemon=True)
    t.start()
    return t, errors


def test_two_peers_with_disjoint_claims_at_once_and_a_conflicting_claim_refused(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    sock = tmp_path / "sim.sock"
    tier = LineCard("sim", CardDescription(ports=("fxo", "fxs", "fxs", "fxs"), k=4), zone="cn", far_socket=sock)
    procs = [far_phone(sock, 1, "2580#"), far_phone(sock, 3, "147")]
    digits: dict[int, str] = {1: "", 3: ""}
    log: list[tuple[int, int]] = []
    try:
        assert tier.wait_far_peer(30)
        while len(tier.far_peer_channels) < 2:
            assert tier.wait_far_peer(30)
        assert sorted(tier.far_peer_channels.values()) == [[1], [3]]
        # A third peer asks for a channel the first holds: it is told why, and nothing else changes.
        third = Peer.connect(str(sock), timeout=5)
        answer: dict[str, Any] = {}

        def claim_held() -> None:
            third.read_hello()
            third.claim([1])
            answer.update(third.read_answer())

        t, errors = in_thread(claim_held)
        tier.poll_far_peers()
        t.join(10)
        assert not errors and answer == {"error": "channel 1 is already claimed by another peer"}
        assert any("far-end peer refused (claimed)" in r.getMessage() for r in caplog.records)
        third.close()
        for _ in range(300):
            for ev in tier.step(40):
                log.append((ev.chan, ev.type))
                if ev.type == EventType.HOOK_OFF:
                    tier.sched.tone(ev.chan, "cn", "dial")
                    tier.sched.detect_dtmf(ev.chan)
                elif ev.type == EventType.DTMF_DOWN:
                    tier.sched.stop_tone(ev.chan)
                elif ev.type == EventType.DTMF:
                    digits[ev.chan] += chr(ev.value)
            if (1, EventType.HOOK_ON) in log and (3, EventType.HOOK_ON) in log:
                break
        outs = [p.communicate(timeout=30) for p in procs]
        stats = tier.far_stats()
    finally:
        for p in procs:
            p.kill()
        tier.close()
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert json.loads(out.strip().splitlines()[-1])["tone_hz"] == 450
    assert digits == {1: "2580#", 3: "147"}
    assert [e for e in log if e[1] == EventType.FAR_ERROR] == []
    assert stats["hello_refused_by"] == {"claimed": 1}


def idle_answerer(peer: Peer, blocks: int, seen: list[tuple[int, int]]) -> Callable[[], None]:
    def run() -> None:
        for _ in range(blocks):
            blk = peer.read_block()
            seen.append((blk.seq, blk.tick))
            peer.answer(blk, bytes([IDLE]) * (blk.nchan * blk.ticks * 8))
    return run


def test_a_peer_joining_a_running_lockstep_clock_gets_the_next_block_as_its_first(tmp_path: Path) -> None:
    sock = tmp_path / "sim.sock"
    tier = LineCard("sim", CardDescription(ports=("fxs", "fxs"), k=4), far_socket=sock)
    first = Peer.connect(str(sock), timeout=10)
    second: Peer | None = None
    seen1: list[tuple[int, int]] = []
    seen2: list[tuple[int, int]] = []
    hello2: dict[str, Any] = {}
    try:
        first_hello: dict[str, Any] = {}

        def start_first() -> None:
            first_hello.update(first.read_hello())
            first.claim([0])
            idle_answerer(first, 50, seen1)()

        t1, e1 = in_thread(start_first)
        assert tier.wait_far_peer(10)
        tier.step(100)                          # the clock runs with the first peer
        assert tier.tick == 100
        second = Peer.connect(str(sock), timeout=10)
        joiner = second

        def start_second() -> None:
            hello2.update(joiner.read_hello())
            joiner.claim([1])
            idle_answerer(joiner, 25, seen2)()

        t2, e2 = in_thread(start_second)
        assert [p.channels for p in tier.poll_far_peers()] == [[1]]
        tier.step(100)
        t1.join(10)
        t2.join(10)
        assert not e1 and not e2
    finally:
        tier.close()
        first.close()
        if second is not None:
            second.close()
    assert first_hello["tick"] == 0 and seen1[0] == (0, 0)
    assert hello2["tick"] == 100 and seen2[0] == (0, 100)        # the HELLO's tick is its first block's
    assert seen1[25] == (25, 100)                                  # the first peer did not notice


def serve_realtime(tier: LineCard, until: Callable[[], bool], wall_s: float = 10.0) -> list[Any]:
    """The control tier's loop on the realtime clock: wait on the far-end socket or one period, then
    advance the handshakes and take events, until `until()` (bounded by wall_s)."""
    evs: list[Any] = []
    end = time.monotonic() + wall_s  # clock-source: a bound on a real-time test
    while not until():
        assert time.monotonic() < end, "timed out"  # clock-source
        assert tier.far_server is not None
        select.select(tier.far_server.fds(), [], [], 0.01)  # clock-source: one control period
        tier.poll_far_peers()
        evs += tier.events()
    return evs


def test_realtime_hello_tick_is_the_first_blocks_tick(tmp_path: Path) -> None:
    sock = tmp_path / "sim.sock"
    tier = LineCard("sim", CardDescription(ports=("fxs", "fxs"), k=4, clock="realtime"), far_socket=sock)
    tier.start_realtime()
    peer = Peer.connect(str(sock), timeout=10)
    hello: dict[str, Any] = {}
    seen: list[tuple[int, int]] = []

    def script() -> None:
        hello.update(peer.read_hello())
        peer.claim([1])
        idle_answerer(peer, 5, seen)()

    t, errors = in_thread(script)
    try:
        serve_realtime(tier, lambda: len(seen) >= 5)
        t.join(10)
    finally:
        tier.close()
        peer.close()
    assert not errors
    assert hello["tick"] % 4 == 0 and hello["tick"] >= HELLO_MS
    assert seen[0] == (0, hello["tick"])
    assert [s for s, _ in seen] == [0, 1, 2, 3, 4]


def test_a_realtime_handshake_spans_control_periods_and_never_blocks(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    sock = tmp_path / "sim.sock"
    tier = LineCard("sim", CardDescription(ports=("fxs", "fxs"), k=4, clock="realtime"), far_socket=sock)
    slow = Peer.connect(str(sock), timeout=10)
    mute = Peer.connect(str(sock), timeout=10)
    try:
        assert tier.poll_far_peers() == []          # both connected; neither has answered: no wait
        slow.read_hello()
        assert tier.poll_far_peers() == []
        claim = b'{"version": 2, "claim": [1]}'
        msg = (len(claim) + 1).to_bytes(4, "big") + b"\x01" + claim
        slow.sock.sendall(msg[:2])                   # the answer's header split across two reads
        assert tier.poll_far_peers() == []
        slow.sock.sendall(msg[2:])
        assert [p.channels for p in tier.poll_far_peers()] == [[1]]
        assert tier.far_stats()["handshakes_pending"] == 1
        # The mute one never answers: refused once the card's clock passes its deadline.
        tier.start_realtime()
        mute.read_hello()
        serve_realtime(tier, lambda: tier.far_stats()["handshakes_pending"] == 0)
        assert mute.read_answer() == {"error": f"no HELLO answer within {HELLO_MS} ms"}
        assert tier.far_stats()["hello_refused_by"] == {"hello_timeout": 1}
        assert any("far-end peer refused (hello_timeout)" in r.getMessage() for r in caplog.records)
    finally:
        tier.close()
        slow.close()
        mute.close()


def test_a_realtime_peer_that_stops_answering_is_dropped_logged_and_counted(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    sock = tmp_path / "sim.sock"
    tier = LineCard("sim", CardDescription(ports=("fxs", "fxs"), k=4, clock="realtime"), far_socket=sock)
    tier.start_realtime()
    peer = Peer.connect(str(sock), timeout=10)
    seen: list[tuple[int, int]] = []

    def script() -> None:
        peer.read_hello()
        peer.claim([1])
        idle_answerer(peer, 3, seen)()           # then silence, the socket kept open

    t, errors = in_thread(script)
    try:
        evs = serve_realtime(tier, lambda: not tier.far_peer_channels and len(seen) >= 3)
        stats = tier.far_stats()
        t.join(10)
    finally:
        tier.close()
        peer.close()
    assert not errors
    drops = [(e.chan, e.value) for e in evs if e.type == EventType.FAR_ERROR]
    assert drops == [(1, FarError.LATE_RUN)]
    assert stats["far_dropped"] == 1 and stats["far_refused_by"] == {"LATE_RUN": 1}
    assert stats["far_late"] >= 50 and stats["far_peers"] == 0
    assert any("dropped" in r.getMessage() and "too late" in r.getMessage() for r in caplog.records)


def test_a_peer_beyond_the_cards_slots_is_told_why(tmp_path: Path) -> None:
    sock = tmp_path / "sim.sock"
    tier = LineCard("sim", CardDescription(ports=("fxs",) * 10, k=4), far_socket=sock)
    peers = [Peer.connect(str(sock), timeout=10) for _ in range(MAX_PEERS + 1)]
    answer: dict[str, Any] = {}

    def script() -> None:
        for c, peer in enumerate(peers):
            peer.read_hello()
            peer.claim([c])
        answer.update(peers[-1].read_answer())

    t, errors = in_thread(script)
    try:
        assert tier.wait_far_peer(10)
        while tier.far_server is not None and tier.far_server.pending:
            tier.poll_far_peers()
        t.join(10)
        assert not errors
        assert answer == {"error": f"the card serves at most {MAX_PEERS} peers at once"}
        assert len(tier.far_peer_channels) == MAX_PEERS
        assert tier.far_stats()["hello_refused_by"] == {"too_many_peers": 1}
    finally:
        tier.close()
        for p in peers:
            p.close()


def test_a_peers_line_changes_that_do_not_fit_the_signal_queue_are_counted_by_kind(tmp_path: Path) -> None:
    """The card's signal queue (CB_SIM_SIGQ, 1024) is shared with the in-process far side; with room
    for 4 left, a peer's block of 10 hook changes loses the last 6, and the tier counts them by kind."""
    sock = tmp_path / "sim.sock"
    tier = LineCard("sim", CardDescription(ports=("fxo", "fxs"), k=4), far_socket=sock)
    card = tier.card
    assert isinstance(card, SimCard)
    room, sigq = 4, 1024
    for i in range(sigq - room):      # the in-process exchange rings the trunk, far in the future
        card.far.ring(0, i % 2 == 0, at_tick=100_000 + i)
    peer = Peer.connect(str(sock), timeout=10)

    def script() -> None:
        peer.read_hello()
        peer.claim([1])
        blk = peer.read_block()
        evs = [(1, int(EventType.HOOK_OFF if j % 2 == 0 else EventType.HOOK_ON), 0, blk.tick + j % 4)
               for j in range(10)]
        peer.answer(blk, bytes([IDLE]) * 32, evs)
        idle_answerer(peer, 1, [])()

    t, errors = in_thread(script)
    try:
        assert tier.wait_far_peer(10)
        tier.step(8)
        t.join(10)
        assert not errors
        assert tier.counters()["far_sig_dropped"] == 10 - room
        assert tier.dropped_by_kind() == {"far_sig_dropped.HOOK_OFF": 3, "far_sig_dropped.HOOK_ON": 3}
    finally:
        tier.close()
        peer.close()


@pytest.mark.parametrize(("hello", "reason"), [
    (b'{"version": 2, "claim": [' + b"9" * 5000 + b"]}", "not_json"),       # past the integer digit limit
    (b"[" * 30000 + b"]" * 30000, "not_json"),                             # past the nesting limit
    (b'{"version": true, "claim": "all"}', "version"),
    (b'{"version": 2.0, "claim": "all"}', "version"),
])
def test_a_hostile_hello_is_refused_and_the_card_serves_the_next_peer(tmp_path: Path, hello: bytes,
                                                                      reason: str) -> None:
    sock = tmp_path / "sim.sock"
    tier = LineCard("sim", CardDescription(ports=("fxs", "fxs"), k=4), far_socket=sock)
    bad, good = Peer.connect(str(sock), timeout=10), Peer.connect(str(sock), timeout=10)
    answer: dict[str, Any] = {}

    def script() -> None:
        bad.read_hello()
        bad.sock.sendall(frame(HELLO, hello))
        answer.update(bad.read_answer())
        good.read_hello()
        good.claim([1])

    t, errors = in_thread(script)
    try:
        for _ in range(200):
            tier.wait_far_peer(0.05)
            tier.poll_far_peers()
            if tier.far_peer_channels:
                break
        t.join(10)
        assert not errors and "error" in answer
        assert tier.far_stats()["hello_refused_by"] == {reason: 1}
        assert sorted(tier.far_peer_channels.values()) == [[1]]
        # The refusal is in the loss counters (the far_refused alarm's), and by reason.
        assert tier.counters()["far_refused"] == 1
        assert {k: v for k, v in tier.dropped_by_kind().items() if k.startswith("far_refused.")} == {
            f"far_refused.{reason}": 1}
    finally:
        tier.close()
        bad.close()
        good.close()
