"""appliance.echo on its own: the taps each channel's configuration gives it (ports, and a span's bearer
timeslots only), the commands sent at answer and release, and the media tier's reports (tone-disabled,
back on, a fax's CED, a refused command) as the state the snapshot shows."""

from __future__ import annotations

import logging

import pytest

from appliance.config.loader import parse_config
from appliance.echo import EchoLines
from drivers.base import CardDescription
from drivers.hal import CmdOp, EventType
from dsp.scheduler import Event, lib
from tests.config.test_span_config import with_spans

CFG = parse_config(with_spans("{kind: e1, name: span1, signalling: pri_cpe, echo_taps: 256}",
                              "{kind: e1, name: span2, echo_taps: 0}",
                              "{kind: e1, name: span3, echo_taps: 64}"), "site.yaml")
PORTS = len(CFG.ports)              # trunk1, trunk2 (128 by default), phone1 (0 by default)
SPAN1 = PORTS                       # span1's TS1: the card numbers the spans' timeslots after the ports
SPAN3 = PORTS + 2 * 31


class Media:
    def __init__(self) -> None:
        self.sent: list[tuple[int, int]] = []

    def echo(self, chan: int, taps: int) -> None:
        self.sent.append((chan, taps))


def lines(calls: dict[int, tuple[str, tuple[int, ...]]] | None = None) -> tuple[EchoLines, Media]:
    media = Media()
    channels = CardDescription(ports=tuple(p.kind for p in CFG.ports), spans=("e1", "e1", "e1")).channels()
    names = [f"ch{c.index}" for c in channels]
    known = calls or {}
    return EchoLines(lambda: media, channels, names, known.get), media


def echo_event(chan: int, state: int, reason: int, tick: int = 100) -> Event:
    return Event(tick, chan, int(EventType.ECHO), state, reason)


def test_each_channel_takes_its_ports_or_its_spans_taps() -> None:
    e, _ = lines()
    assert [e.taps_of(CFG, c) for c in range(PORTS)] == [128, 128, 0]
    span1 = [e.taps_of(CFG, SPAN1 + ts - 1) for ts in range(1, 32)]
    assert span1 == [0 if ts == 16 else 256 for ts in range(1, 32)]     # TS16 is the D-channel
    assert {e.taps_of(CFG, SPAN1 + 31 + i) for i in range(31)} == {0}
    assert [e.taps_of(CFG, SPAN3 + i) for i in range(31)] == [64] * 31  # TS16 clear: a bearer too
    assert e.taps_of(CFG, 10_000) == 0


def test_on_at_answer_off_at_release_and_nothing_for_a_line_without_taps() -> None:
    e, media = lines()
    e.answered(0, CFG)
    e.answered(2, CFG)                   # phone1: 0 taps, nothing sent
    e.answered(SPAN3 + 4, CFG)
    assert media.sent == [(0, 128), (SPAN3 + 4, 64)]
    assert (e.view(0), e.view(2), e.view(SPAN3 + 4)) == (
        {"state": "on", "taps": 128}, {"state": "off", "taps": 0}, {"state": "on", "taps": 64})
    assert e.not_off() == [0, SPAN3 + 4]
    e.released(0)
    e.released(0)                        # once is enough
    e.released(2)
    e.call_over("x", [SPAN3 + 4, 1])
    assert media.sent[2:] == [(0, 0), (SPAN3 + 4, 0)]
    assert e.not_off() == []


def test_tone_disabled_and_back_on_are_logged_and_shown(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cicbox.echo")
    e, media = lines()
    e.answered(0, CFG)
    e.media_event(echo_event(0, int(lib.CB_ECHO_ON), int(lib.CB_ECHO_BY_COMMAND)))    # the command's answer
    assert e.view(0) == {"state": "on", "taps": 128} and not caplog.records
    e.media_event(Event(200, 0, int(EventType.ANS), 1, 1))
    e.media_event(echo_event(0, int(lib.CB_ECHO_TONE_DISABLED), int(lib.CB_ECHO_BY_TONE), 200))
    assert e.view(0) == {"state": "tone-disabled", "taps": 128}
    e.media_event(echo_event(0, int(lib.CB_ECHO_ON), int(lib.CB_ECHO_BY_TONE_END), 900))
    assert e.view(0) == {"state": "on", "taps": 128}
    said = [r.getMessage() for r in caplog.records]
    assert said == ["ch0: 2100 Hz with phase reversals on Sin at 200 ms (a modem's answer tone)",
                    "ch0: echo canceller tone-disabled at 200 ms (2100 Hz with phase reversals): Sout = Sin until "
                    "the tone ends",
                    "ch0: echo canceller back on at 900 ms (the tone ended)"]
    assert media.sent == [(0, 128)]      # the tone's doing, not a command


def test_the_fax_rule_turns_the_calls_cancellers_off_until_it_ends(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="cicbox.echo")
    cfg = CFG.model_copy(update={"ports": (CFG.ports[0], CFG.ports[1], CFG.ports[2].model_copy(
        update={"echo_taps": 32}))})
    calls = {0: ("c1", (0, 2)), 2: ("c1", (0, 2)), 1: ("c2", (1,))}
    e, media = lines(calls)
    e.answered(0, cfg)
    e.answered(1, cfg)
    e.media_event(Event(500, 0, int(EventType.ANS), 0, 1))      # CED on trunk1's Sin; phone1 not answered yet
    assert (e.view(0), e.view(1), e.view(2)) == (
        {"state": "fax", "taps": 0}, {"state": "on", "taps": 128}, {"state": "off", "taps": 0})
    e.answered(2, cfg)                   # the agent answers later: the call's rule holds
    assert e.view(2) == {"state": "fax", "taps": 0}
    e.media_event(Event(600, 2, int(EventType.ANS), 0, 0))      # heard again: nothing more
    assert media.sent == [(0, 128), (1, 128), (0, 0)]
    (said,) = [r.getMessage() for r in caplog.records]
    assert said == ("call c1: 2100 Hz without phase reversal on Sin of ch0 at 500 ms (a fax's CED): echo "
                    "cancellers off for the rest of the call (ch0)")
    e.call_over("c1", [0, 2])
    assert e.not_off() == [1]
    e.answered(0, cfg)                   # the trunk's next call has its canceller again
    assert e.view(0) == {"state": "on", "taps": 128} and media.sent[-1] == (0, 128)


def test_a_report_for_a_line_not_on_changes_nothing() -> None:
    e, media = lines({0: ("c1", (0,))})
    e.media_event(Event(500, 0, int(EventType.ANS), 0, 1))
    e.media_event(echo_event(0, int(lib.CB_ECHO_TONE_DISABLED), int(lib.CB_ECHO_BY_TONE)))
    assert e.not_off() == [] and media.sent == []


def test_a_refused_command_leaves_the_line_shown_off(caplog: pytest.LogCaptureFixture) -> None:
    e, media = lines()
    e.answered(0, CFG)
    e.media_event(Event(100, 0, int(EventType.MEDIA_ERROR), int(CmdOp.ECHO), -2))
    assert e.view(0) == {"state": "off", "taps": 0} and e.not_off() == []
    assert "echo canceller command refused (status -2)" in caplog.text
    # the canceller is as it was, which nobody knows: the release still sends it off
    e.released(0)
    assert media.sent[-1] == (0, 0)
