"""The control tier's one clock and its timers, on which every state machine runs.

Time is integer milliseconds of the media tier's ticks: in virtual mode the
engine steps it; in realtime mode the card's ticks drive it. Nothing here
reads the wall clock. Timers fire in order of due time, then of creation, so
a run is deterministic.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(order=True)
class Timer:
    """A pending call of `callback` at `due_ms`; cancel() makes it a no-op."""

    due_ms: int
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


# The heap holds (due_ms, seq, timer): its order is compared on the two ints, in C (a Timer's own
# comparison is Python code run on every sift).
_Entry = tuple[int, int, Timer]


class Clock:
    """Milliseconds since the engine started, advanced only by :meth:`advance`."""

    def __init__(self, start_ms: int = 0) -> None:
        self._now = start_ms
        self._heap: list[_Entry] = []
        self._seq = itertools.count()

    @property
    def now_ms(self) -> int:
        return self._now

    def call_at(self, due_ms: int, callback: Callable[[], None]) -> Timer:
        """Run `callback` when the clock reaches `due_ms` (at once on the next advance if past)."""
        t = Timer(due_ms, next(self._seq), callback)
        heapq.heappush(self._heap, (due_ms, t.seq, t))
        return t

    def call_later(self, delay_ms: int, callback: Callable[[], None]) -> Timer:
        return self.call_at(self._now + delay_ms, callback)

    def advance(self, now_ms: int) -> int:
        """Move to `now_ms` and run every timer due by then, in order; returns how many ran."""
        if now_ms < self._now:
            raise ValueError(f"the clock cannot go back from {self._now} to {now_ms} ms")
        ran = 0
        heap = self._heap
        while heap and heap[0][0] <= now_ms:
            due, _, t = heapq.heappop(heap)
            if t.cancelled:
                continue
            self._now = max(self._now, due)
            t.callback()
            ran += 1
        self._now = now_ms
        return ran

    def next_due(self) -> int | None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None
