"""The lines' echo cancellers as the engine switches them (the kernels: dsp/include/cb_echo.h).

A channel's canceller goes on, reset, when its call is answered (a trunk answering, an agent's phone
picking up the call offered to it), with the ``echo_taps`` the configuration the call runs on gives
the channel (an FXO or FXS port's own, or its span's for a bearer timeslot; 0 leaves it off), and
off when the line is released or the call is over, as a channel driver does with a card's
canceller. Between the two the media tier reports:

- ``CB_EV_ECHO`` tone-disabled (2100 Hz with phase reversals: a modem's answer tone) and back on
  (both paths quiet after it): logged, shown;
- ``CB_EV_ANS`` without reversal (2100 Hz for 600 ms: ANS, a fax's CED), which the tone disabler
  leaves alone: during a call, the fax rule turns off every canceller of that call for the rest of
  it (the later answer of an agent's phone in it included), logged and shown as ``fax``.

The engine calls :class:`EchoLines` at each answer and release and hands it those events; nothing
here looks at a channel that did not change: the state is kept for the channels that are not off.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from appliance.config.model import SiteConfig
from appliance.spans import span_configs
from drivers.base import ChannelInfo
from drivers.hal import CmdOp, EventType
from dsp.echo import REASONS
from dsp.scheduler import Event, lib

log = logging.getLogger("cicbox.echo")

#: what a channel's canceller is doing, as the snapshot shows it: on (with its taps), off,
#: tone-disabled (a modem's answer tone: Sout = Sin until it ends), fax (off by the fax rule)
ECHO_STATES = ("on", "off", "tone-disabled", "fax")

_OFF = int(lib.CB_ECHO_OFF)
_ON = int(lib.CB_ECHO_ON)
_TONE_DISABLED = int(lib.CB_ECHO_TONE_DISABLED)
_BY_COMMAND = int(lib.CB_ECHO_BY_COMMAND)
_PATHS = {0: "Rin", 1: "Sin"}


class EchoPort(Protocol):
    """The media command the cancellers need (appliance.linecard.LineCard's)."""

    def echo(self, chan: int, taps: int) -> None: ...


#: the call a channel is in: (call id, the channels of its legs), or None
CallOf = Callable[[int], tuple[str, tuple[int, ...]] | None]


@dataclass
class _Line:
    """A channel whose canceller is not off."""

    taps: int          # as switched on at the answer
    state: str         # "on", "tone-disabled" or "fax"


class EchoLines:
    """The cancellers of a card's channels (`channels`, the card's numbering: ports, then the spans'
    timeslots), switched through `media`; `call_of` names the call a channel is in (the fax rule
    turns off all of that call's)."""

    def __init__(self, media: Callable[[], EchoPort], channels: Sequence[ChannelInfo], names: Sequence[str],
                 call_of: CallOf) -> None:
        self._media = media
        self._channels = list(channels)
        self._names = list(names)
        self._call_of = call_of
        self._lines: dict[int, _Line] = {}
        self._fax_calls: set[str] = set()      # calls whose cancellers the fax rule turned off

    # -- what the configuration gives -----------------------------------------------

    def taps_of(self, cfg: SiteConfig, chan: int) -> int:
        """The taps `cfg` gives channel `chan`: its port's ``echo_taps``, or for a span's timeslot its
        span's if the timeslot is a bearer (0 for a D-channel or CAS timeslot)."""
        info = self._channels[chan] if 0 <= chan < len(self._channels) else None
        if info is None:
            return 0
        if info.port is not None:
            return cfg.ports[info.port].echo_taps if info.port < len(cfg.ports) else 0
        if info.span is None or info.timeslot is None or info.span >= len(cfg.spans):
            return 0
        if info.timeslot not in span_configs(cfg)[info.span].bearers():
            return 0
        return cfg.spans[info.span].echo_taps

    def name(self, chan: int) -> str:
        return self._names[chan] if 0 <= chan < len(self._names) else f"channel {chan}"

    # -- answer and release ----------------------------------------------------------

    def answered(self, chan: int, cfg: SiteConfig) -> None:
        """The call on `chan` was answered: its canceller on (reset) with the taps `cfg` gives it, unless
        the fax rule turned its call's off."""
        call = self._call_of(chan)
        if call is not None and call[0] in self._fax_calls:
            self._off(chan)
            self._lines[chan] = _Line(0, "fax")
            return
        taps = self.taps_of(cfg, chan)
        if taps == 0:
            self._off(chan)
            return
        self._media().echo(chan, taps)
        self._lines[chan] = _Line(taps, "on")

    def released(self, chan: int) -> None:
        """The line on `chan` was released: its canceller off (nothing to do if it is)."""
        self._off(chan)

    def call_over(self, call_id: str, chans: Sequence[int]) -> None:
        """A call ended: the cancellers of its legs off; the fax rule's mark goes with it."""
        self._fax_calls.discard(call_id)
        for chan in chans:
            self._off(chan)

    def _off(self, chan: int) -> None:
        line = self._lines.pop(chan, None)
        if line is not None and line.state != "fax":
            self._media().echo(chan, 0)

    # -- the media tier's reports ---------------------------------------------------------

    def media_event(self, ev: Event) -> None:
        """CB_EV_ECHO, CB_EV_ANS, or a refused CB_CMD_ECHO (CB_EV_MEDIA_ERROR)."""
        if ev.type == EventType.ECHO:
            self._state_event(ev)
        elif ev.type == EventType.ANS:
            self._answer_tone(ev)
        elif ev.type == EventType.MEDIA_ERROR and ev.value == CmdOp.ECHO:
            line = self._lines.get(ev.chan)
            if line is not None:
                # The canceller is as it was, which the engine cannot know: shown off, and still sent
                # off at the release (an off command is never refused and changes nothing if it was).
                line.state = "off"
                line.taps = 0
                log.warning("%s: echo canceller command refused (status %d): the canceller is as it was, "
                            "shown off", self.name(ev.chan), ev.extra)

    def _state_event(self, ev: Event) -> None:
        """A tone's doing (a command's own answer changes nothing: the state follows the commands)."""
        if ev.extra == _BY_COMMAND:
            return
        line = self._lines.get(ev.chan)
        if line is None or line.state == "fax":
            return
        why = REASONS.get(ev.extra, f"reason {ev.extra}")
        if ev.value == _TONE_DISABLED and line.state == "on":
            line.state = "tone-disabled"
            log.info("%s: echo canceller tone-disabled at %d ms (%s): Sout = Sin until the tone ends",
                     self.name(ev.chan), ev.tick, why)
        elif ev.value == _ON and line.state == "tone-disabled":
            line.state = "on"
            log.info("%s: echo canceller back on at %d ms (%s)", self.name(ev.chan), ev.tick, why)
        elif ev.value == _OFF:
            log.warning("%s: echo canceller went off at %d ms (%s)", self.name(ev.chan), ev.tick, why)

    def _answer_tone(self, ev: Event) -> None:
        path = _PATHS.get(ev.extra, f"path {ev.extra}")
        line = self._lines.get(ev.chan)
        if ev.value:
            log.info("%s: 2100 Hz with phase reversals on %s at %d ms (a modem's answer tone)",
                     self.name(ev.chan), path, ev.tick)
            return
        if line is None or line.state == "fax":
            return                      # released meanwhile, or already off by the rule
        call = self._call_of(ev.chan)
        what, chans = self.name(ev.chan), [ev.chan]
        if call is not None:
            call_id, legs = call
            self._fax_calls.add(call_id)
            what = f"call {call_id}"
            chans += [c for c in legs if c != ev.chan and c in self._lines]
        for chan in chans:
            self._off(chan)
            self._lines[chan] = _Line(0, "fax")
        log.info("%s: 2100 Hz without phase reversal on %s of %s at %d ms (a fax's CED): echo cancellers "
                 "off for the rest of the call (%s)", what, path, self.name(ev.chan), ev.tick,
                 ", ".join(self.name(c) for c in chans))

    # -- what the snapshot shows ---------------------------------------------------------

    def view(self, chan: int) -> dict[str, Any]:
        """{"state": on | off | tone-disabled | fax, "taps": the taps in force (0 unless on or tone-disabled)}."""
        line = self._lines.get(chan)
        if line is None:
            return {"state": "off", "taps": 0}
        return {"state": line.state, "taps": line.taps}

    def not_off(self) -> list[int]:
        """The channels whose canceller is not off, in order."""
        return sorted(c for c, line in self._lines.items() if line.state != "off")

