"""Where the card's clock comes from: the sync source policy over the spans' alarms.

Pure: fed each span's alarm bits (the framer's CB_EV_ALARM values, cb_span_alarm: RECOVER 1,
YELLOW 4, RED 8, BLUE 16; LOS, LFA, LMFA above them are detail), it says which span the card
should take its clock from. The clock comes from the span with the lowest non-zero timing (clock
priority, 1 first; 0 never) that is not red, blue or in RECOVER, else from the internal clock.
Yellow (the far end reports it lost us) leaves the span a good source: its signal, which we
receive, is fine. So the clock falls back as the better span goes red or blue, stays away for the
5 s of RECOVER after its alarm clears, and reverts when RECOVER ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

RECOVER = 1
YELLOW = 4
RED = 8
BLUE = 16
#: the states that make a span no clock source
UNFIT = RED | BLUE | RECOVER


@dataclass(frozen=True)
class SyncChange:
    """Take the card's clock from span `source` (0-based), or from the internal clock (None)."""

    source: int | None


class SyncPolicy:
    """The sync source of spans with the given timings (clock priorities, by span index)."""

    def __init__(self, timings: Sequence[int]) -> None:
        for i, t in enumerate(timings):
            if t < 0:
                raise ValueError(f"span {i}: timing must be 0 (never) or a priority 1, 2, ..., not {t}")
        fixed = [t for t in timings if t]
        if len(fixed) != len(set(fixed)):
            raise ValueError(f"a non-zero timing is given twice: {list(timings)}")
        self.timings = tuple(timings)
        self.bits = [0] * len(timings)
        self._source = self._choose()

    @property
    def source(self) -> int | None:
        """The span the clock should come from now (0-based), or None: the internal clock."""
        return self._source

    def fit(self, span: int) -> bool:
        """Whether span `span` may give the clock now (a timing, and not red, blue or recovering)."""
        return self.timings[span] > 0 and not self.bits[span] & UNFIT

    def _choose(self) -> int | None:
        fit = [i for i in range(len(self.timings)) if self.fit(i)]
        return min(fit, key=lambda i: self.timings[i]) if fit else None

    def update(self, span: int, bits: int) -> SyncChange | None:
        """Span `span` now has alarm bits `bits`: the change of sync source to make, or None (none)."""
        if not 0 <= span < len(self.timings):
            raise IndexError(f"no span {span} (there are {len(self.timings)})")
        self.bits[span] = bits
        new = self._choose()
        if new == self._source:
            return None
        self._source = new
        return SyncChange(new)
