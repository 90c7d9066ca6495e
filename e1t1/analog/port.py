"""What the analog line machines need from below: the line port.

One port serves every analog channel of a card (channels by number). It is the card's
line signalling and the media tier's per-channel generators and detectors, nothing of
calls. The layer above implements it over its card and scheduler (appliance.linecard's
LineCard does) and hands it to each machine; tests hand a recording fake.
"""

from __future__ import annotations

from typing import Protocol

from e1t1.analog.callerid import FskFrame


class LinePort(Protocol):
    """Commands a line machine sends to its channel."""

    # line signalling
    def hook(self, chan: int, off_hook: bool) -> None:
        """FXO: go off hook (answer, seize) or on hook (release)."""

    def ring(self, chan: int) -> None:
        """FXS: ring the phone with the zone's ring cadence until ring_stop."""

    def ring_stop(self, chan: int) -> None:
        """FXS: stop ringing."""

    def battery(self, chan: int, on: bool) -> None:
        """FXS: feed battery, or remove it (open loop: tells the phone the far end went)."""

    # media
    def tone(self, chan: int, zone: str, tone: str) -> None:
        """Play one of the zone's tones (dial, ringback, busy, congestion, confirm...)."""

    def stop_tone(self, chan: int) -> None:
        """Stop the tone."""

    def silence(self, chan: int) -> None:
        """Stop every generator on the channel (tone, prompt, DTMF, FSK)."""

    def detect_dtmf(self, chan: int, on: bool = True) -> None:
        """Report DTMF digits heard on the channel (or stop)."""

    def fsk_rx(self, chan: int, standard: str | None) -> None:
        """Receive with an FSK modem, "bell202" or "v23" (None: stop)."""

    def fsk_tx(self, chan: int, frame: FskFrame) -> None:
        """Send one FSK frame (channel seizure, marks, message)."""

    def busy_detect(self, chan: int, on_ms: int, off_ms: int, count: int) -> None:
        """Report a busy cadence of `count` on/off periods (count 0: stop)."""
