"""The sim card's line levels (what the line is now, next to the events that say when it changed),
and the fault that drops one event while the level still changes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drivers import sim as sim_mod
from drivers.base import Card, CardDescription, LineLevel
from drivers.errors import DriverOperationError, NotSupportedError
from drivers.hal import CmdOp, EventType
from tests.drivers.test_sim_card import Bench

HOOK, RING, BATT, POL = LineLevel.HOOK_OFF, LineLevel.RINGING, LineLevel.BATTERY, LineLevel.POLARITY


@pytest.fixture
def bench() -> Iterator[Bench]:
    b = Bench(CardDescription(ports=("fxo", "fxs"), spans=("e1",), k=4))
    yield b
    b.card.close()


def levels(b: Bench) -> list[LineLevel]:
    return [LineLevel(v) for v in b.card.line_levels()]


def test_level_bits_are_the_neutral_ones() -> None:
    assert all(int(neutral) == int(c) for neutral, c in sim_mod._LEVELS.items())
    assert "line_levels" in sim_mod.SimCard.capabilities


def test_levels_follow_the_line_one_octet_per_port(bench: Bench) -> None:
    assert levels(bench) == [BATT, BATT]                      # ports only; both with battery, on hook
    far = bench.card.far
    far.hook(1, True, at_tick=8)
    far.ring(0, True, at_tick=8)
    far.signal(0, EventType.POLARITY, 1, at_tick=8)
    bench.step(12)
    assert levels(bench) == [RING | BATT | POL, HOOK | BATT]
    assert bench.command(CmdOp.HOOK, 0, 1) == 0               # we answer the trunk
    assert bench.command(CmdOp.BATTERY, 1, 0) == 0            # open loop toward the phone
    bench.step(4)
    assert levels(bench) == [HOOK | BATT | POL, HOOK]         # our answer trips the ringing


def test_fxs_hook_level_is_as_reported_past_the_flash_window(bench: Bench) -> None:
    far = bench.card.far
    far.hook(1, True, at_tick=4)
    far.hook(1, False, at_tick=100)
    bench.step(100 + 1248)
    assert HOOK in levels(bench)[1]                           # still inside the flash window
    bench.step(8)
    assert HOOK not in levels(bench)[1]                       # now a hang-up
    assert [t for _, _, t in bench.take()] == [EventType.HOOK_OFF, EventType.HOOK_ON]


def test_a_dropped_hook_on_leaves_the_level(bench: Bench) -> None:
    far = bench.card.far
    far.hook(1, True, at_tick=4)
    far.hook(1, False, at_tick=100)
    bench.card.drop_next_event(1, EventType.HOOK_ON)
    bench.step(2000)
    assert [t for _, _, t in bench.take()] == [EventType.HOOK_OFF]      # the HOOK_ON is lost...
    assert HOOK not in levels(bench)[1]                                 # ...the level is not
    far.hook(1, True, at_tick=bench.card.tick)
    far.hook(1, False, at_tick=bench.card.tick + 100)
    bench.step(2000)
    assert [t for _, _, t in bench.take()] == [EventType.HOOK_OFF, EventType.HOOK_ON]   # only the next one


def test_drop_rejects_bad_channels_and_types(bench: Bench) -> None:
    with pytest.raises(DriverOperationError, match="invalid argument"):
        bench.card.drop_next_event(99, EventType.HOOK_ON)
    with pytest.raises(DriverOperationError, match="invalid argument"):
        bench.card.drop_next_event(1, EventType.DTMF)


def test_a_backend_without_levels_says_so() -> None:
    class Bare(Card):
        name = "bare"

        def __init__(self, desc: CardDescription) -> None:
            super().__init__(desc)

        @property
        def handle(self) -> int:
            return 0

        def _close(self) -> None:
            pass

    card = Bare(CardDescription(ports=("fxs",)))
    assert "line_levels" not in card.capabilities
    with pytest.raises(NotSupportedError, match="the bare card cannot read line levels"):
        card.line_levels()
    assert card.stats() == {}
