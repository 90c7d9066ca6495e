"""300 events from a peer in one block: a far side that changes a line far more often than any real
one leaves the engine with the line as it was left, and every event the card could not hand over is
counted by kind in the snapshot (its card_events_dropped alarm says how many)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drivers.base import LineLevel
from drivers.hal import EventType
from drivers.sim import SimCard
from e1t1.analog.fxs import PhoneState
from tests.e2e.harness import Site, site_yaml
from tests.peers.far_proto import Block, Peer

TRUNK, PHONE = 0, 2     # trunk1, and phone1 after the two trunks
K = 4                   # site_yaml's ticks per block
FLOOD = 300
# The documented bounds (dsp/sched/include/cb_sched.h, docs/sim-far-end.md): the block's card event
# buffer holds 4 events per channel and tick of a 20-tick block, at least 256: 256 for these 3 ports.
# A peer's BLOCK carries at most 256 events.
CARD_EVENT_ROOM = max(3 * 20 * 4, 256)
BLOCK_EVENTS = 256
IDLE = 0xD5


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path, site_yaml(agents=1), [], [], keep_audio=False)
    yield s
    s.close()


def far(site: Site) -> SimCard:
    card = site.engine.tier_.card
    assert isinstance(card, SimCard)
    return card


def phone_state(site: Site) -> PhoneState:
    return site.engine.phones[PHONE].state


def card_off_hook(site: Site) -> bool:
    return LineLevel.HOOK_OFF in LineLevel(far(site).line_levels()[PHONE])


def lost_by_kind(site: Site) -> dict[str, int]:
    return {k: v for k, v in site.engine.snapshot()["counters"].items()
            if k.startswith(("card_events_dropped.", "far_sig_dropped.", "events_dropped.")) and v}


def in_block(tick0: int, i: int, n: int) -> int:
    """The tick of the i-th of n changes spread over the block that starts at tick0."""
    return tick0 + i * K // n


def reconciled(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "reconciled" in r.getMessage()]


@pytest.mark.parametrize("first_off", [True, False], ids=["ends-on-hook", "ends-off-hook"])
def test_300_hook_changes_of_a_phone_in_one_block_leave_it_as_last_sent(site: Site, first_off: bool) -> None:
    """The in-process far side flips the phone's hook 300 times within one block. The card takes them
    all (its signal queue holds 1024), in the order sent, and reports what the phone did: off hook,
    then, if the last change put it back, on hook after the flash window. Nothing is lost."""
    eng = site.engine
    site.run(100)
    t0 = eng.tier_.tick
    assert t0 % K == 0
    for i in range(FLOOD):
        far(site).far.hook(PHONE, (i % 2 == 0) == first_off, at_tick=in_block(t0, i, FLOOD))
    last_off = ((FLOOD - 1) % 2 == 0) == first_off
    site.run(eng.period_ms)
    assert phone_state(site) is PhoneState.DIALTONE            # it went off hook (one HOOK_OFF)
    site.run(1500)                                              # past the flash window
    assert card_off_hook(site) is last_off
    assert phone_state(site) is (PhoneState.DIALTONE if last_off else PhoneState.IDLE)
    assert eng.snapshot()["ports"][PHONE]["state"] == ("dialtone" if last_off else "idle")
    assert lost_by_kind(site) == {}
    assert eng.snapshot()["counters"]["card_events_dropped"] == 0


def test_300_events_from_a_peer_in_one_block_are_counted_by_kind_and_the_phone_reconciled(
        site: Site, caplog: pytest.LogCaptureFixture) -> None:
    """The exchange behind trunk1 reverses the polarity 300 times within one block, and in its last
    tick the agent's phone goes off hook: 301 card events in a block whose buffer holds 256. The
    first 256 are handed over; the rest are lost and counted by kind; the phone's HOOK_OFF was
    among them, and the engine makes it up from the card's level within the period."""
    caplog.set_level(logging.WARNING)
    eng = site.engine
    site.run(100)
    t0 = eng.tier_.tick
    card = far(site)
    for i in range(FLOOD):
        card.far.signal(TRUNK, EventType.POLARITY, 1 - i % 2, at_tick=in_block(t0, i, FLOOD))
    card.far.hook(PHONE, True, at_tick=t0 + K - 1)
    raised = FLOOD + 1
    site.run(eng.period_ms)
    lost = raised - CARD_EVENT_ROOM
    snap = eng.snapshot()
    assert snap["counters"]["card_events_dropped"] == lost
    assert lost_by_kind(site) == {"card_events_dropped.POLARITY": lost - 1, "card_events_dropped.HOOK_OFF": 1}
    assert [a["kind"] for a in snap["alarms"]] == ["card_events_dropped"]
    assert f"{lost} card events lost" in snap["alarms"][0]["detail"]
    assert card_off_hook(site)
    assert phone_state(site) is PhoneState.DIALTONE                 # as the phone was left: off hook
    assert reconciled(caplog) == ["phone(phone1): the card says off hook, the line was IDLE: HOOK_OFF reconciled"]


class BlockPeer:
    """A peer on sim.sock, in lockstep with the engine: it answers every block with idle octets and
    the events `plan` gives for that block (by the block's first tick)."""

    def __init__(self, path: Path, claim: list[int], plan: Callable[[Block], list[tuple[int, int, int, int]]]) -> None:
        self.peer = Peer.connect(str(path), timeout=30)
        self.claim, self.plan = claim, plan
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.peer.read_hello()
            self.peer.claim(self.claim)
            while True:
                blk = self.peer.read_block()
                self.peer.answer(blk, bytes([IDLE]) * (blk.nchan * blk.ticks * 8), self.plan(blk))
        except (EOFError, ConnectionError, OSError):
            pass                          # the engine closed the connection
        except BaseException as exc:
            self.errors.append(exc)

    def close(self) -> None:
        self.thread.join(30)
        self.peer.close()
        if self.errors:
            raise self.errors[0]


def test_a_peers_fullest_blocks_over_sim_sock(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A peer on sim.sock holding trunk1 and phone1 sends the most events a BLOCK carries (256), twice:
    the phone's hook flipped 256 times (left on hook), then 255 polarity reversals and the phone off
    hook. The first leaves the phone as it was left; the second raises exactly as many card events as
    the block's buffer holds: nothing is lost, no alarm, no reconciling."""
    caplog.set_level(logging.WARNING)
    site = Site(tmp_path, site_yaml(agents=1), [], [], keep_audio=False)
    eng = site.engine
    flips_at, fill_at = 200, 2000
    assert BLOCK_EVENTS == CARD_EVENT_ROOM

    def plan(blk: Block) -> list[tuple[int, int, int, int]]:
        if blk.tick == flips_at:
            return [(PHONE, int(EventType.HOOK_OFF if i % 2 == 0 else EventType.HOOK_ON), 0,
                     in_block(blk.tick, i, BLOCK_EVENTS)) for i in range(BLOCK_EVENTS)]
        if blk.tick == fill_at:
            evs = [(TRUNK, int(EventType.POLARITY), 1 - i % 2, in_block(blk.tick, i, BLOCK_EVENTS))
                   for i in range(BLOCK_EVENTS - 1)]
            return [*evs, (PHONE, int(EventType.HOOK_OFF), 1, blk.tick + K - 1)]
        return []

    peer = BlockPeer(eng.state_dir / "sim.sock", [TRUNK, PHONE], plan)
    try:
        while eng.tier_.far_peer_channels == {}:
            site.run(eng.period_ms)
            assert eng.clock.now_ms < flips_at - 50, "the peer was not attached in time"
        site.run(flips_at + 20 - eng.clock.now_ms)
        assert phone_state(site) is PhoneState.DIALTONE             # off hook first
        site.run(1500)
        assert not card_off_hook(site) and phone_state(site) is PhoneState.IDLE   # and left on hook
        site.run(fill_at + 20 - eng.clock.now_ms)
        assert phone_state(site) is PhoneState.DIALTONE
        snap = eng.snapshot()
        assert snap["counters"]["card_events_dropped"] == 0
        assert snap["counters"]["far_sig_dropped"] == 0
        assert lost_by_kind(site) == {} and snap["alarms"] == []
        assert reconciled(caplog) == []
    finally:
        site.close()                  # the card closes the connection: the peer's thread ends
        peer.close()


PEERS = 7               # 7 x 256 changes in one block: the card's signal queue (1024) takes 4 peers' worth


def test_seven_peers_overflow_the_signal_queue_and_every_phone_ends_as_last_sent(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Seven peers, each holding one phone, flip their phone's hook 256 times in the same block, the
    last change HOOK_OFF. The card's signal queue holds 1024 changes: the rest are lost and counted
    by kind, but a lost change still sets the line's level to what the peer last sent, so the engine
    reconciles every phone off hook within the period; none is left idle."""
    caplog.set_level(logging.WARNING)
    site = Site(tmp_path, site_yaml(agents=PEERS), [], [], keep_audio=False)
    eng = site.engine
    phones = [2 + i for i in range(PEERS)]          # after the two trunks
    flood_at = 400

    def plan_for(chan: int) -> Callable[[Block], list[tuple[int, int, int, int]]]:
        def plan(blk: Block) -> list[tuple[int, int, int, int]]:
            if blk.tick != flood_at:
                return []
            return [(chan, int(EventType.HOOK_ON if i % 2 == 0 else EventType.HOOK_OFF), 0,
                     in_block(blk.tick, i, BLOCK_EVENTS)) for i in range(BLOCK_EVENTS)]
        return plan

    peers = [BlockPeer(eng.state_dir / "sim.sock", [chan], plan_for(chan)) for chan in phones]
    try:
        while len(eng.tier_.far_peer_channels) < PEERS:
            site.run(eng.period_ms)
            assert eng.clock.now_ms < flood_at - 50, "the peers were not attached in time"
        site.run(flood_at + 2 * eng.period_ms - eng.clock.now_ms)
        site.run(1500)                                              # past the flash window
        card = far(site)
        levels = card.line_levels()
        assert [LineLevel.HOOK_OFF in LineLevel(levels[c]) for c in phones] == [True] * PEERS
        assert [eng.phones[c].state for c in phones] == [PhoneState.DIALTONE] * PEERS
        snap = eng.snapshot()
        lost = PEERS * BLOCK_EVENTS - 1024
        assert snap["counters"]["far_sig_dropped"] == lost
        assert sum(v for k, v in lost_by_kind(site).items() if k.startswith("far_sig_dropped.")) == lost
    finally:
        site.close()
        for p in peers:
            p.close()
