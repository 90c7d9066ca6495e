"""Ticks are 64-bit from the card to Python: a clock started just before 2^31 ms
(24.8 days of uptime) and 2^32 ms runs the detectors across the boundary."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.base import CardDescription
from drivers.sim import SimCard
from dsp.scheduler import Scheduler, lib
from tests import signals

ENC = np.array([lib.cb_lin2alaw(v) for v in range(-32768, 32768)], dtype=np.uint8)


def busy_tone(ms: int, on: int = 350, off: int = 350) -> bytes:
    """cn busy: 450 Hz at -10 dBm0, 350 ms on, 350 ms off."""
    t = signals.tone(450, ms * 8, -10.0)
    gate = (np.arange(ms * 8) // 8 % (on + off)) < on
    lin = np.clip(np.round(t * gate), -32768, 32767).astype(np.int32)
    return bytes(ENC[lin + 32768])


def busy_run(start: int) -> tuple[list[int], int]:
    """Four seconds of cn busy tone on an FXO port from tick `start`: (BUSY event ticks, end tick)."""
    card = SimCard(CardDescription(ports=("fxo",), k=5))
    s = Scheduler(1, "alaw")
    card.set_tick(start)
    s.set_tick(start)
    s.attach_card(card.handle)
    try:
        s.busy_detect(0, 350, 350, 3)
        audio = busy_tone(4000)
        card.far.write(0, audio[:8000])
        fired: list[int] = []
        for i in range(8000, len(audio), 400):
            s.step(50)
            card.far.write(0, audio[i:i + 400])
            fired += [e.tick for e in s.events() if e.type == lib.CB_EV_BUSY]
        return fired, s.tick
    finally:
        card.close()


@pytest.mark.parametrize("wrap", [1 << 31, 1 << 32])
def test_busy_detector_across_a_wrap_point(wrap: int) -> None:
    at_zero, _ = busy_run(0)
    assert len(at_zero) == 1 and 2000 < at_zero[0] < 3500
    start = wrap - 2000          # two seconds before the boundary
    fired, end = busy_run(start)
    # The same detection, at the same offset from the start, on the far side of the boundary.
    assert [t - start for t in fired] == at_zero
    assert fired[0] > wrap and end > wrap
