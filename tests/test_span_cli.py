"""Spans as an installer sees them on a running engine (virtual time): `span.status` and `cicbox span
status`, the sync source following CB_EV_ALARM, `span.fault` and its gating, the paused clock and
`cicbox clock advance`.

These tests assert the shape, the names, the configured fields and the sync source; one alarm-driven
sync test injects CB_EV_ALARM events (values written out from the issue: RECOVER 1, YELLOW 4, RED 8,
BLUE 16; LOS 1<<8) into the engine's event path, between the media tier and the engine; another drives
the same scenario with a real LOS through the sim card's framers.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance import cli
from appliance.control import ControlError
from dsp.scheduler import Event
from tests.e2e.harness import Site, site_yaml

REFUSAL = "fault commands are disabled: start the engine with --enable-faults"
RECOVER, YELLOW, RED, BLUE, LOS = 1, 4, 8, 16, 1 << 8
ALARM = 15          # CB_EV_ALARM (include/cb_records.h)
PORTS = 2 + 1       # site_yaml(agents=1): two trunks and a phone, numbered before the spans' timeslots

TWO_SPANS = site_yaml(agents=1).replace("spans: []\n", """spans:
  - {kind: e1, name: span1, timing: 1}
  - {kind: e1, name: span2, framing: cas, coding: ami, crc4: false}
""")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path, TWO_SPANS, [], [], keep_audio=False, enable_faults=True)
    try:
        yield s
    finally:
        s.close()


def test_span_status_gives_the_issue_s_shape_with_the_configured_fields(site: Site) -> None:
    site.run(100)
    doc = site.request("span.status")
    assert set(doc) == {"tick_ms", "sync_source", "spans"}
    assert doc["tick_ms"] == site.engine.clock.now_ms
    assert doc["sync_source"] == "span1"          # timing 1, no alarm
    keys = {"name", "kind", "framing", "coding", "crc4", "ts16", "timing", "alarm_bits", "alarms", "detail",
            "sending_rai", "counters", "dchan", "pri", "far"}
    assert [set(s) for s in doc["spans"]] == [keys, keys]
    configured = [{k: s[k] for k in ("name", "kind", "framing", "coding", "crc4", "ts16", "timing")}
                  for s in doc["spans"]]
    assert configured == [
        {"name": "span1", "kind": "e1", "framing": "ccs", "coding": "hdb3", "crc4": True, "ts16": "clear",
         "timing": 1},
        {"name": "span2", "kind": "e1", "framing": "cas", "coding": "ami", "crc4": False, "ts16": "cas",
         "timing": 2},     # its list position
    ]
    counters = {"bpv", "crc", "ebit", "fas", "slips", "es", "ses"}
    for s in doc["spans"]:
        assert set(s["counters"]) == counters and all(isinstance(v, int) for v in s["counters"].values())
        assert isinstance(s["alarm_bits"], int) and isinstance(s["sending_rai"], bool)
        assert s["dchan"] is None                   # no D-channel on either
        assert s["pri"] is None                     # nor a PRI call control
        assert set(s["far"]) == {"alarms", "counters"} and set(s["far"]["counters"]) == counters
    # The snapshot carries the same spans and sync source.
    snap = site.request("status")
    assert snap["sync_source"] == "span1" and [s["name"] for s in snap["spans"]] == ["span1", "span2"]


def test_a_pri_span_has_dchan_counters(tmp_path: Path) -> None:
    text = site_yaml(agents=1).replace("law: alaw", "law: ulaw").replace("spans: []\n", """spans:
  - {kind: t1, name: span1, framing: d4, signalling: pri_cpe, timing: 0}
  - {kind: t1, name: span2}
""")
    s = Site(tmp_path, text, [], [], keep_audio=False)
    try:
        doc = s.request("span.status")
        assert [(x["framing"], x["coding"], x["crc4"], x["ts16"], x["timing"]) for x in doc["spans"]] == [
            ("d4", "b8zs", False, "dchan", 0), ("esf", "b8zs", False, "clear", 2)]
        assert set(doc["spans"][0]["dchan"]) == {"frames_rx", "frames_tx", "bad_fcs", "aborts", "too_long",
                                                 "rx_dropped"}
        assert doc["spans"][1]["dchan"] is None
        assert doc["spans"][0]["pri"]["side"] == "user" and doc["spans"][0]["pri"]["switch"] == "national"
        assert doc["spans"][1]["pri"] is None
        assert doc["sync_source"] == "span2"        # span1 never gives the clock
    finally:
        s.close()


def test_span_status_cli_prints_a_line_per_span_and_json(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    site.run(100)
    with site.serving():
        assert cli.main(["span", "status", "--state-dir", str(site.state)]) == 0
        out = capsys.readouterr().out.splitlines()
        assert cli.main(["span", "status", "--json", "--state-dir", str(site.state)]) == 0
        doc = json.loads(capsys.readouterr().out)
    assert out[0].startswith("sync source: span1")
    assert len(out) == 3
    assert out[1].split()[:7] == ["span1", "e1", "ccs/hdb3/crc4", "ts16", "clear", "timing", "1"]
    assert out[2].split()[:7] == ["span2", "e1", "cas/ami", "ts16", "cas", "timing", "2"]
    assert [s["name"] for s in doc["spans"]] == ["span1", "span2"]


def inject_alarms(site: Site, script: dict[int, list[tuple[int, int]]]) -> None:
    """Add CB_EV_ALARM events (span index, bits) to the events of the period starting at each engine ms."""
    tier = site.engine.tier_
    real_step = tier.step

    def step(ticks: int) -> list[Event]:
        start = tier.tick
        evs = real_step(ticks)
        for span, bits in script.get(start, []):
            evs.append(Event(start + 1, PORTS + 31 * span, ALARM, bits, 0))
        return evs

    tier.step = step    # type: ignore[method-assign]


def test_the_sync_source_follows_the_alarm_events(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    p = site.engine.period_ms
    # span1: LOS, red 2.5 s later, the LOS ends (RECOVER), RECOVER ends 5 s after; span2 turns yellow.
    script = {10 * p: [(0, LOS)], 220 * p: [(0, RED | LOS)], 300 * p: [(0, RECOVER)], 310 * p: [(1, YELLOW)],
              720 * p: [(0, 0)]}
    inject_alarms(site, script)
    card: Any = site.engine.tier_.card
    seen: list[tuple[int, str]] = []
    caplog.set_level(logging.INFO, "cicbox.spans")
    for _ in range(800):
        site.engine.run_period()
        source = site.engine.spans.status()["sync_source"]
        if not seen or seen[-1][1] != source:
            seen.append((site.engine.clock.now_ms, source))
    # Red moves the clock to span2; RECOVER keeps it there (yellow on span2 is fine); its end reverts it.
    assert seen == [(p, "span1"), (221 * p, "span2"), (721 * p, "span1")]
    assert card.sync_source == 0                    # the card was told (sim card: the span it clocks from)
    assert "span span1: alarms red (was none); defects los" in caplog.text
    assert "span span2: alarms yellow (was none)" in caplog.text
    doc = site.request("span.status")
    assert doc["sync_source"] == "span1"


def test_a_real_los_moves_the_clock_at_red_and_back_when_recover_ends(site: Site) -> None:
    site.run(1000)
    site.request("span.fault", span="span1", fault="los", ms=10_000)
    start = site.engine.clock.now_ms
    moved = back = None
    while site.engine.clock.now_ms < start + 20_000:
        site.engine.run_period()
        source = site.engine.spans.status()["sync_source"]
        if moved is None and source == "span2":
            moved = site.engine.clock.now_ms - start
        if moved is not None and back is None and source == "span1":
            back = site.engine.clock.now_ms - start
    assert moved is not None and 2500 <= moved <= 2600 + site.engine.period_ms
    assert back is not None and 10_000 + 5000 <= back <= 10_000 + 5200 + site.engine.period_ms


# -- span.fault -------------------------------------------------------------------------------


def record_faults(site: Site) -> list[tuple[int, int, str]]:
    """The card's span faults as the engine asks them: (engine ms, span, fault); the card still acts."""
    card: Any = site.engine.tier_.card
    real = card.span_fault
    asked: list[tuple[int, int, str]] = []

    def span_fault(span: int, fault: str) -> None:
        real(span, fault)
        asked.append((site.engine.clock.now_ms, span, fault))

    card.span_fault = span_fault
    return asked


def test_span_fault_is_refused_without_enable_faults(tmp_path: Path) -> None:
    s = Site(tmp_path, TWO_SPANS, [], [], keep_audio=False)
    try:
        asked = record_faults(s)
        with pytest.raises(ControlError) as exc:
            s.request("span.fault", span="span1", fault="los", ms=None)
        assert str(exc.value) == REFUSAL
        assert asked == []
        assert s.request("span.status")["spans"][0]["name"] == "span1"      # status is no fault command
    finally:
        s.close()


@pytest.mark.parametrize(("args", "message"), [
    ({"span": "span9", "fault": "los"}, "span must be a configured span's name (span1, span2), not 'span9'"),
    ({"span": 0, "fault": "los"}, "span must be a configured span's name (span1, span2), not 0"),
    ({"span": "span1", "fault": "lof"}, "fault must be one of cut, los, ais, rai, clear, not 'lof'"),
    ({"span": "span1", "fault": "los", "ms": 0}, "ms must be null (until cleared) or a number of ms 1-86400000, not 0"),
    ({"span": "span1", "fault": "los", "ms": -5}, "ms must be null (until cleared) or a number of ms 1-86400000, "
     "not -5"),
    ({"span": "span1", "fault": "los", "ms": "100"}, "ms must be null (until cleared) or a number of ms 1-86400000, "
     "not '100'"),
    ({"span": "span1", "fault": "los", "ms": True}, "ms must be null (until cleared) or a number of ms 1-86400000, "
     "not True"),
])
def test_span_fault_refuses_bad_requests_and_changes_nothing(site: Site, args: dict[str, Any], message: str) -> None:
    asked = record_faults(site)
    with pytest.raises(ControlError) as exc:
        site.request("span.fault", **args)
    assert str(exc.value) == message
    site.run(1000)
    assert asked == []


def test_span_fault_with_ms_clears_after_that_much_engine_clock(site: Site) -> None:
    site.run(100)
    asked = record_faults(site)
    t0 = site.engine.clock.now_ms
    assert site.request("span.fault", span="span2", fault="ais", ms=500) == {
        "span": "span2", "fault": "ais", "clears_at_ms": t0 + 500}
    site.run(2000)
    p = site.engine.period_ms
    assert [(span, fault) for _, span, fault in asked] == [(1, "ais"), (1, "clear")]
    assert t0 + 500 <= asked[1][0] < t0 + 500 + p
    # A later fault replaces the pending clear: los for 1 s, then cut until cleared.
    asked.clear()
    site.request("span.fault", span="span1", fault="los", ms=1000)
    site.run(100)
    assert site.request("span.fault", span="span1", fault="cut", ms=None)["clears_at_ms"] is None
    site.run(3000)
    assert [(span, fault) for _, span, fault in asked] == [(0, "los"), (0, "cut")]


def test_span_fault_cli(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    asked = record_faults(site)
    base = ["--state-dir", str(site.state)]
    with site.serving():
        assert cli.main(["span", "fault", "span1", "los", "--for", "0", *base]) == 2
        assert "--for must be a number of seconds from 0.001 to 86400" in capsys.readouterr().err
        assert cli.main(["span", "fault", "span1", "los", "--for", "-1", *base]) == 2
        for odd in ("nan", "inf", "1e308", "86401"):
            assert cli.main(["span", "fault", "span1", "los", "--for", odd, *base]) == 2
            assert "--for must be a number of seconds from 0.001 to 86400 (a day), not " in capsys.readouterr().err
        assert cli.main(["span", "fault", "span7", "los", *base]) == 2
        assert "cicbox: span must be a configured span's name (span1, span2), not 'span7'" in capsys.readouterr().err
        assert cli.main(["span", "fault", "span1", "wobble", *base]) == 2
        assert "cicbox: fault must be one of cut, los, ais, rai, clear, not 'wobble'" in capsys.readouterr().err
        assert asked == []
        assert cli.main(["span", "fault", "span1", "los", "--for", "1.5", *base]) == 0
        assert capsys.readouterr().out.strip() == "span span1: los until 1.500 s of engine clock"
    assert [(span, fault) for _, span, fault in asked] == [(0, "los")]
    site.run(1500)
    assert [(span, fault) for _, span, fault in asked] == [(0, "los"), (0, "clear")]


# -- the paused clock -----------------------------------------------------------------------------


def test_clock_advance_on_an_engine_that_is_not_paused_is_refused(site: Site,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    site.run(100)
    now = site.engine.clock.now_ms
    with pytest.raises(ControlError, match=r"clock\.advance is for a paused engine"):
        site.request("clock.advance", ms=100)
    with site.serving():
        assert cli.main(["clock", "advance", "100", "--state-dir", str(site.state)]) == 2
    assert "cicbox: clock.advance is for a paused engine" in capsys.readouterr().err
    assert site.engine.clock.now_ms == now


def run_cli(state: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "appliance.cli", *argv, "--state-dir", str(state)],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("wait_peer", [False, True])
def test_a_paused_engine_runs_only_on_clock_advance(tmp_path: Path, wait_peer: bool) -> None:
    config = tmp_path / "site.yaml"
    config.write_text(TWO_SPANS)
    state = tmp_path / "state"
    cmd = [sys.executable, "-m", "appliance.cli", "run", "--clock", "virtual", "--paused", "--config", str(config),
           "--state-dir", str(state), *(["--wait-peer", "0.05"] if wait_peer else [])]
    engine = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "NOTIFY_SOCKET": ""})
    assert engine.stderr is not None
    try:
        for line in engine.stderr:          # the engine says when its clock stands still
            if "the clock stands still" in line:
                break
        first = json.loads(run_cli(state, "span", "status", "--json").stdout)
        again = json.loads(run_cli(state, "status", "--json").stdout)
        assert first["tick_ms"] == again["tick_ms"]                       # it stands still
        done = run_cli(state, "clock", "advance", "120")
        assert done.returncode == 0, done.stderr
        period = 12                                                       # k 4: 3 blocks of 4 ms
        tick = int(done.stdout.split()[2])
        assert first["tick_ms"] + 120 <= tick < first["tick_ms"] + 120 + period
        assert json.loads(run_cli(state, "status", "--json").stdout)["tick_ms"] == tick
        bad = run_cli(state, "clock", "advance", "0")
        assert bad.returncode == 2 and "MS must be a positive number of ms" in bad.stderr
        assert json.loads(run_cli(state, "status", "--json").stdout)["tick_ms"] == tick
    finally:
        engine.send_signal(signal.SIGTERM)
        _, err = engine.communicate(timeout=60)
    assert engine.returncode == 0, err


def test_paused_is_for_the_virtual_clock(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--clock", "realtime", "--paused", "--state-dir", str(tmp_path)]) == 2
    assert "--paused is for the virtual clock" in capsys.readouterr().err


def test_renaming_a_span_needs_a_restart_and_changes_nothing_live(site: Site) -> None:
    from appliance.config.loader import parse_config
    from appliance.errors import RestartNeededError

    site.run(100)
    renamed = parse_config(TWO_SPANS.replace("name: span1", "name: trunkA"), "renamed.yaml")
    with pytest.raises(RestartNeededError, match="names"):
        site.engine.switch_config(renamed, 2)
    assert [s["name"] for s in site.request("span.status")["spans"]] == ["span1", "span2"]
