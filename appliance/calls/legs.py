"""Legs and bridges: what a call is made of.

A leg is one channel's part in a call: the caller's trunk (an FXO port, or a PRI
span's B-channel; an R2 channel later) or the agent's phone (an FXS port). A
bridge joins legs in the media graph (today the two-party bridge: each leg
hears the other; later conferences, supervisor taps and recording add edges to
the same call without a new shape).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol


class LegKind(enum.Enum):
    FXO = "fxo"        # an analog trunk: the caller
    PRI = "pri"        # a PRI span's B-channel: the caller (its name is the span's)
    FXS = "fxs"        # an analog phone: an agent


class Role(enum.Enum):
    CALLER = "caller"
    AGENT = "agent"


@dataclass(frozen=True)
class Leg:
    """One channel in one call."""

    kind: LegKind
    chan: int
    name: str          # the trunk's or the phone's name
    role: Role


class Media(Protocol):
    """The media commands a bridge gives (the channel scheduler)."""

    def bridge(self, a: int, b: int) -> None: ...
    def unbridge(self, chan: int) -> None: ...
    def silence(self, chan: int) -> None: ...


class Bridge:
    """Two legs that hear each other."""

    def __init__(self, a: Leg, b: Leg) -> None:
        self.legs = (a, b)
        self.up = False

    def join(self, media: Media) -> None:
        a, b = self.legs
        media.silence(a.chan)
        media.silence(b.chan)
        media.bridge(a.chan, b.chan)
        self.up = True

    def leave(self, media: Media) -> None:
        if self.up:
            media.unbridge(self.legs[0].chan)
            self.up = False
