"""The line levels the analog line machines expect, kept as they change state.

Each control period the layer above reads the card's current line levels (one
:class:`~drivers.base.LineLevel` octet per port) and hands a line whose machine
disagrees the event it missed (:meth:`FxsPhone.level_event`, :meth:`FxoTrunk.level_event`).
Looking at every line each period would cost per channel; instead :class:`ExpectedLevels`
keeps, per port, the bits those two rules read, as three integers over all ports' octets
(octet ``chan`` of the card's levels is bits ``8*chan .. 8*chan+7``), updated by the
machines' census (:class:`~e1t1.fsm.Census`) when a machine changes state. A period then
compares the card's levels with them in a few integer operations over all ports at once
(C speed) and names only the lines that differ (:meth:`ExpectedLevels.differing`):

- a phone differs when the card feeds it battery and the card's hook is not the machine's
  (``FxsPhone.level_event``: without battery the card cannot see the hook);
- a trunk differs when its call is up, its disconnect signal is battery, and the card's
  line has no battery (``FxoTrunk.level_event``).

The machines' ``level_event`` stays the rule (the caller asks it for each line named);
tests/e1t1/test_census.py checks the two agree for every state and level.
"""

from __future__ import annotations

from typing import Any

from drivers.base import LineLevel
from e1t1.analog.fxo import FxoTrunk, TrunkState
from e1t1.analog.fxs import OFF_HOOK_STATES, FxsPhone

_HOOK = int(LineLevel.HOOK_OFF)         # bit 0 of a port's octet
_BATTERY = int(LineLevel.BATTERY)       # bit 2
_TO_HOOK = _BATTERY.bit_length() - _HOOK.bit_length()   # shift that puts the battery bit on the hook bit


class ExpectedLevels:
    """The bits of the card's line levels the line machines' reconciling rules read, by port."""

    def __init__(self) -> None:
        self._phones = 0        # the hook bit of every phone's octet
        self._off = 0           # the hook bit of every phone whose machine believes it off hook
        self._battery = 0       # the battery bit of every trunk whose up call ends on battery loss

    def add_phone(self, phone: FxsPhone) -> None:
        """Watch `phone`'s port (its census's watch must be :meth:`phone_moved`)."""
        self._phones |= _HOOK << (phone.chan << 3)
        self._set_phone(phone.chan, phone.off_hook)

    def add_trunk(self, trunk: FxoTrunk) -> None:
        """Watch `trunk`'s port (its census's watch must be :meth:`trunk_moved`)."""
        self._set_trunk(trunk)

    def phone_moved(self, machine: Any, old: Any, new: Any) -> None:
        """A phone changed state (its census's watch)."""
        self._set_phone(machine.chan, new in OFF_HOOK_STATES)

    def trunk_moved(self, machine: Any, old: Any, new: Any) -> None:
        """A trunk changed state (its census's watch)."""
        self._set_trunk(machine)

    def _set_phone(self, chan: int, off_hook: bool) -> None:
        bit = _HOOK << (chan << 3)
        self._off = self._off | bit if off_hook else self._off & ~bit

    def _set_trunk(self, trunk: FxoTrunk) -> None:
        bit = _BATTERY << (trunk.chan << 3)
        watched = trunk.state is TrunkState.UP and "battery" in trunk.disconnect
        self._battery = self._battery | bit if watched else self._battery & ~bit

    def differing(self, levels: bytes) -> list[int]:
        """The ports whose machine disagrees with the card's `levels` (one octet per port), lowest
        first; usually none, found without a look at each port."""
        lv = int.from_bytes(levels, "little")
        present = (1 << (len(levels) << 3)) - 1         # the ports the card reported
        diff = ((lv ^ self._off) & (lv >> _TO_HOOK) & self._phones) | (self._battery & ~lv & present)
        out = []
        while diff:
            chan = ((diff & -diff).bit_length() - 1) >> 3
            out.append(chan)
            diff &= ~(0xFF << (chan << 3))
        return out
