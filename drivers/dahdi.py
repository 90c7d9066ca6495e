"""Real cards through Linux DAHDI (/dev/dahdi).

Only the registration and the device check exist so far: the backend that
speaks the DAHDI ioctl ABI comes with the digital trunks issue. Without DAHDI
devices it fails with a clear error, and nothing else is touched.
"""

from __future__ import annotations

import os

from drivers.base import Card, CardDescription
from drivers.errors import NoDeviceError

DAHDI_DIR = "/dev/dahdi"


class DahdiCard(Card):
    """Telephony cards driven by the DAHDI kernel modules."""

    name = "dahdi"

    def __init__(self, desc: CardDescription) -> None:
        if not os.path.exists(os.path.join(DAHDI_DIR, "channel")):
            raise NoDeviceError("no DAHDI devices found")
        raise NoDeviceError("the DAHDI backend is not built yet (digital trunks issue)")

    @property
    def handle(self) -> int:  # pragma: no cover - never constructed yet
        raise NotImplementedError

    def _close(self) -> None:  # pragma: no cover - never constructed yet
        pass
