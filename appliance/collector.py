"""When the control tier's garbage is collected: between control periods, never inside one.

Python's cyclic collector runs when an allocation finds the young generation's count over its
threshold, wherever that allocation happens: inside the ACD router's decisions of a period, or on
the record writer's thread while the engine waits for the GIL. A full collection walks every tracked
object not frozen (at 10,000 waiting callers about 50,000 of them: tens of milliseconds), so one
landing in a period multiplies that period's time (the ACD benchmark's period p99: 33.9 ms with
collections inside periods, 6.4 ms without, over 1,000 periods of 200 freed agents).

The policy:

- What survives a full collection after a configuration is built is frozen (:func:`freeze_survivors`,
  after each configure of appliance.acd and its router): collections never walk it.
- A period runs with automatic collection off (:meth:`Collector.period_starts`). At its end
  (:meth:`Collector.period_ends`) collection is on again and, if the young generation is over its
  threshold, one tracked allocation lets Python's own policy run there, choosing the generation as
  it always does (full collections only when the long-lived objects grew by a quarter). Realtime:
  that is the period's slack, before the engine waits for the next one; the media tier (C, its own
  thread) is never stopped by it. A full collection longer than the slack makes the next period
  start late, its events waiting in the rings, as before; it no longer lengthens a decision.
- The whole period runs with collection off: its own control.sock requests, the far-peer poll and,
  in virtual time, its waits for the writer (whose thread then does not collect either: its
  garbage is collected at the period's end). A period that waits long (a lockstep sim.sock peer:
  10 s at most) keeps collection off that long; nothing is lost, it is collected at the end.
- A period inside a period (the engine's stop runs periods; a test's engine inside another's)
  leaves collection as the outer one set it: each end restores what its start found.
- Between periods collection is on: code outside them (the CLI's waits, a test) collects as it
  always did.
"""

from __future__ import annotations

import gc


def freeze_survivors() -> None:
    """After a configuration is built: what survives a full collection is frozen, never walked by a
    collection again. The collection first: the garbage a configuration leaves (the last one's
    objects, in reference cycles) would otherwise be frozen too, and kept for ever (each apply of a
    site added its old configuration's objects: about 160 kB)."""
    gc.collect()
    gc.freeze()


class Collector:
    """Collection off inside a control period, on (and run if due) at its end."""

    __slots__ = ("_was", "collections")

    def __init__(self) -> None:
        self.collections = 0      # periods that ended with a collection due (the collector ran)
        self._was: list[bool] = []  # per period begun and not ended: whether collection was on

    def period_starts(self) -> None:
        self._was.append(gc.isenabled())
        gc.disable()

    def period_ends(self) -> None:
        if self._was and not self._was.pop():
            return                # an outer period (or the code around) had it off: it stays off
        gc.enable()
        if gc.get_count()[0] >= gc.get_threshold()[0]:
            self.collections += 1
            _Tracked()


class _Tracked:
    """Made once a period ends with the young generation at its threshold: one tracked allocation,
    so Python collects there (the generation of its choice), as it would have at the first
    allocation inside the period. (An instance with a ``__dict__`` is allocated afresh and counted;
    lists, tuples and dicts may come from free lists, which the collector does not count.)"""
