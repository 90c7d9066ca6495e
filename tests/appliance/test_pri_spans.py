"""The engine's PRI spans (appliance/pri.py) on their own: a span's timers (the site's q931/q921 under the
span's own), its channels, its physical layer following the alarm bits (red or blue: down; only the end
of RECOVER: up, then the link and RESTART), a span in alarm at start, and the settings a new configuration
gives the next calls; and the engine refusing to switch live what only a restart changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from appliance.config.loader import parse_config
from appliance.errors import RestartNeededError
from appliance.pri import PriSpans, span_timers
from drivers.base import ChannelInfo
from e1t1.clock import Clock
from tests.e2e.harness import Site, site_yaml
from tests.e2e.pri_site import pri_site_yaml

RECOVER, RED, BLUE, LOS, YELLOW = 1, 8, 16, 1 << 8, 4
SABME = (0x00, 0x01, 0x7F)          # the user side's SABME command (C/R 0), P = 1


def cfg_of(kind: str = "e1", signalling: str = "pri_cpe", extra: str = "", timers: str = "") -> Any:
    text = pri_site_yaml(site_yaml(agents=1), kind, signalling, extra)
    if timers:
        text += f"timers:\n  {timers}\n"
    return parse_config(text, "site.yaml")


def channels(kind: str) -> list[ChannelInfo]:
    """A card with two FXO trunks and a phone, then the span's timeslots."""
    ports = [ChannelInfo(i, "fxs" if i == 2 else "fxo", port=i) for i in range(3)]
    n = 31 if kind == "e1" else 24
    return ports + [ChannelInfo(3 + ts - 1, "ts", span=0, timeslot=ts) for ts in range(1, n + 1)]


class Spans:
    """The PRI spans of one configuration over a recording D-channel."""

    def __init__(self, cfg: Any, kind: str = "e1", bits: int = 0) -> None:
        self.sent: list[tuple[int, bytes]] = []
        self.reports: list[Any] = []
        self.clock = Clock()
        self.pri = PriSpans(cfg, channels(kind), lambda c, o: self.sent.append((c, o)), self.clock,
                            lambda span, ev: self.reports.append(ev), lambda dnis: dnis == "075588880000", [bits])
        self.span = self.pri.spans[0]

    def sabmes(self) -> int:
        return sum(1 for _, o in self.sent if tuple(o[:3]) == SABME)


def test_the_timers_are_the_site_s_under_the_span_s_own() -> None:
    cfg = cfg_of(extra=", timers: {T309: 7000, T200: 1500}", timers="q931: {T309: 10000, T303: 5000}\n  "
                                                                      "q921: {T203: 20000}")
    q931, q921 = span_timers(cfg, cfg.spans[0])
    assert (q931["T309"], q931["T303"], q931["T310"], q921["T200"], q921["T203"]) == (7000, 5000, 30000, 1500, 20000)
    s = Spans(cfg)
    assert (s.span.control.timers["T309"], s.span.link.timers["T200"]) == (7000, 1500)


def test_a_span_s_channels_side_and_switch() -> None:
    s = Spans(cfg_of("t1", "pri_net"), "t1")
    span = s.span
    assert (span.side.value, span.switch.value, span.dchan) == ("network", "national", 3 + 23)
    assert sorted(span.chan_of) == list(range(1, 24)) and span.chan_of[1] == 3
    assert s.pri.by_dchan == {26: span} and set(s.pri.by_bchan) == set(range(3, 26))
    assert span.control.timers["T310"] == 10000            # the network side's default
    e1 = Spans(cfg_of()).span
    assert e1.dchan == 3 + 15 and 16 not in e1.chan_of and e1.chan_of[17] == 3 + 16


def test_red_or_blue_is_down_and_only_the_end_of_recover_is_up() -> None:
    s = Spans(cfg_of())
    s.pri.start()
    assert s.sabmes() == 1 and s.span.link.dchan == "establishing"
    control = s.span.control
    for bits in (LOS, YELLOW):                              # a defect or the far end's RAI: nothing
        s.pri.alarm(0, bits)
        assert not control.alarm
    s.pri.alarm(0, RED | LOS)
    assert control.alarm and s.span.down and s.span.status()["alarm"] is True
    s.pri.alarm(0, RED)
    s.pri.alarm(0, RECOVER)                                  # red gone, RECOVER running: still down
    assert control.alarm
    s.pri.alarm(0, RECOVER | YELLOW)
    assert control.alarm
    before = s.sabmes()
    s.pri.alarm(0, YELLOW)                                   # RECOVER over (yellow alone is no alarm here)
    assert not control.alarm and s.sabmes() == before + 1   # the link again, then RESTART once it is up
    assert all(ch.restarting for ch in control.channels.values())
    s.pri.alarm(0, BLUE)
    assert control.alarm
    s.pri.alarm(None, 0)                                     # a channel that starts no span: nothing
    assert control.alarm


def test_a_span_in_alarm_at_start_comes_up_after_its_recovery() -> None:
    s = Spans(cfg_of(), bits=RED | LOS)
    s.pri.start()
    assert s.sabmes() == 0 and s.span.control.alarm
    s.pri.alarm(0, RECOVER)
    assert s.sabmes() == 0
    s.pri.alarm(0, 0)
    assert s.sabmes() == 1 and not s.span.control.alarm


def test_a_new_configuration_gives_the_next_calls_their_settings() -> None:
    s = Spans(cfg_of("e1", "pri_net", ", overlap: true, exclusive: false"))
    span = s.span
    span.configure(cfg_of("e1", "pri_net", ", overlap: false, exclusive: true, timers: {T303: 6000}"),
                   cfg_of("e1", "pri_net", ", overlap: false, exclusive: true, timers: {T303: 6000}").spans[0])
    c = span.control
    assert (c.overlap, c.exclusive, c.timers["T303"], c.timers["T310"]) == (False, True, 6000, 10000)
    new = cfg_of("e1", "pri_net", ", timers: {T310: 20000}")
    s.pri.configure(new)
    assert (c.overlap, c.exclusive, c.timers["T303"], c.timers["T310"]) == (True, False, 4000, 20000)


@pytest.mark.parametrize(("change", "what"), [
    (", switchtype: euroisdn", None),                                     # the default written out: the same
    (", overlap: false, timers: {T310: 9000}", None),                     # the next calls'
    (", timers: {T200: 2000}", "restart"),                                # the data link's
])
def test_the_engine_switches_live_what_the_next_calls_take(tmp_path: Path, change: str, what: str | None) -> None:
    site = Site(tmp_path, pri_site_yaml(site_yaml(agents=1)), [], [], keep_audio=False)
    try:
        cfg = parse_config(pri_site_yaml(site_yaml(agents=1), extra=change), "site.yaml")
        if what is None:
            site.engine.switch_config(cfg, 2)
            assert site.engine.config_version == 2
        else:
            with pytest.raises(RestartNeededError, match=r"switch type or Q\.921 timers"):
                site.engine.switch_config(cfg, 2)
            assert site.engine.config_version == 1
        span = site.engine.pri.spans[0]
        assert span.control.overlap is (change != ", overlap: false, timers: {T310: 9000}")
    finally:
        site.close()
