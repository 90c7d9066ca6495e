"""Realtime: when the card fails, the media thread backs off instead of spinning."""

from __future__ import annotations

import time

from drivers.base import CardDescription
from drivers.sim import SimCard
from dsp.scheduler import Scheduler, lib


def test_a_failing_card_is_retried_with_growing_pauses() -> None:
    card = SimCard(CardDescription(ports=("fxs",), k=4, clock="realtime"))
    s = Scheduler(1, "alaw")
    s.set_tick(1000)             # the scheduler offers tick 1000, the card expects 0: every exchange fails
    s.attach_card(card.handle)
    try:
        s.start(fifo_priority=0, lock_memory=False)
        time.sleep(0.5)          # realtime: half a second of wall time, margins of whole blocks
        s.stop()
        errors = s.stats()["card_errors"]
        # Pauses of 1, 2, 4 ... 64 ms, then 100 ms: about 10 tries in 0.5 s. Spinning would be
        # hundreds of thousands; one try per 4 ms block, 125.
        assert 3 <= errors <= 30, errors
        evs = [e for e in s.events() if e.type == lib.CB_EV_CARD_ERROR]
        assert len(evs) == 1 and evs[0].value == lib.CB_ERR_INVALID   # one report per failing streak
    finally:
        s.stop()
        card.close()
