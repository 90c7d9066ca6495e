"""What the analog line machines report upward, to the sink the layer above gives them.

Each report is a frozen dataclass naming the line by its channel and stamped with the tick
of the line event that caused it. The layer above (the engine today, a call machine later)
decides what a report means for its calls; a machine never calls into it otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class LineEvent:
    """A report from the line on channel `chan` at `tick` (ms)."""

    chan: int
    tick: int


# -- FXO trunk ------------------------------------------------------------------

@dataclass(frozen=True)
class TrunkRinging(LineEvent):
    """The exchange rings the trunk: ring number `rings` of this call."""

    rings: int


@dataclass(frozen=True)
class TrunkCallerId(LineEvent):
    """The call's caller ID was understood: its number, or why it is absent ('O', 'P')."""

    number: str | None
    number_absent: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class TrunkAnswered(LineEvent):
    """The trunk answered the call (off hook) on its configured ring; `ani` is the caller's number."""

    ani: str | None


@dataclass(frozen=True)
class TrunkDigit(LineEvent):
    """The caller pressed `digit` (key down) during the call."""

    digit: str


@dataclass(frozen=True)
class TrunkReleased(LineEvent):
    """The call on the trunk is over and the trunk on hook: the far end went (`far_end`, with the
    disconnect signal that said so as `reason`), or our side released it."""

    reason: str
    far_end: bool


@dataclass(frozen=True)
class TrunkAbandoned(LineEvent):
    """A caller gave up before the trunk answered, after `rings` rings."""

    rings: int


# -- FXS phone --------------------------------------------------------------------

@dataclass(frozen=True)
class PhoneHookOff(LineEvent):
    """The phone went off hook on an idle line: dial tone."""


@dataclass(frozen=True)
class PhoneOnHook(LineEvent):
    """The phone is back on hook and the port idle (it may be offered a call)."""


@dataclass(frozen=True)
class PhoneFlash(LineEvent):
    """A hook flash during a call."""


@dataclass(frozen=True)
class PhoneDialled(LineEvent):
    """The digits dialled so far after dial tone. The layer above answers with the phone's ACCEPT
    (the string is done: confirm tone) or REJECT (congestion tone) event, or not at all while the
    string may go on (the inter-digit timer then runs)."""

    digits: str


@dataclass(frozen=True)
class PhoneDigit(LineEvent):
    """A digit (key down) during a call."""

    digit: str


@dataclass(frozen=True)
class PhoneAnswered(LineEvent):
    """The ringing phone was picked up."""


@dataclass(frozen=True)
class PhoneHungUp(LineEvent):
    """The phone went on hook during a call (PhoneOnHook follows)."""


#: where a line machine sends its reports
LineSink = Callable[[LineEvent], None]


def no_sink(event: LineEvent) -> None:
    """A sink that drops every report (a machine on its own, in a test)."""
