"""Card backends behind one small C HAL (drivers/include/cb_hal.h).

Backends are registered by name and imported lazily, so a host without DAHDI
can still run the sim card::

    card = drivers.open_card("sim", CardDescription(ports=("fxo", "fxs"), spans=("e1",)))

Imports nothing of ours.
"""

from __future__ import annotations

import importlib

from drivers.base import Card, CardDescription, ChannelInfo
from drivers.errors import DriverError, DriverNotFoundError

#: name -> (module, class). Only the selected module is imported.
BACKENDS: dict[str, tuple[str, str]] = {
    "sim": ("drivers.sim", "SimCard"),
    "dahdi": ("drivers.dahdi", "DahdiCard"),
}

__all__ = ["BACKENDS", "Card", "CardDescription", "ChannelInfo", "DriverError", "open_card"]


def open_card(name: str, desc: CardDescription) -> Card:
    """Open the card backend registered as `name` for the described ports and spans."""
    try:
        module_name, class_name = BACKENDS[name]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise DriverNotFoundError(f"unknown card backend {name!r} (known: {known})") from None
    module = importlib.import_module(module_name)
    cls: type[Card] = getattr(module, class_name)
    return cls(desc)
