"""A test-side echo path for the simulated world (appliance.world.FarLine): the 2-wire hybrid beyond a
port returns what the card sent it through an impulse response (bench/echo_signals.echo_path: a flat
delay, then a seeded decaying response scaled to an ERL). The world's loop adds one control period:
what the card sends in one period comes back in the next."""

from __future__ import annotations

from typing import Any

import numpy as np


class EchoLine:
    """Returns the card's signal through `path` (float64 taps at 8 kHz), its history kept across periods."""

    def __init__(self, path: Any) -> None:
        self.path = np.asarray(path, dtype=np.float64)
        self._history = np.zeros(len(self.path) - 1)

    def returns(self, sent: Any) -> Any:
        x = np.concatenate([self._history, np.asarray(sent, dtype=np.float64)])
        n = len(self._history)
        self._history = x[len(x) - n:] if n else self._history
        return np.convolve(x, self.path)[n:n + len(sent)]
