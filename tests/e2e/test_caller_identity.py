"""A caller's identity never crosses calls: what one caller left on a trunk (a ringing cycle cut
short, a stray key) never reaches the next caller's call.

The trunks take DTMF caller ID before the first ring and answer on ring 2 (tests.e2e.harness);
ring cadence cn: 1000 ms on, 4000 ms off (shared/reference/line-signals.md).
"""

from __future__ import annotations

from pathlib import Path

from appliance.world import Caller
from tests.e2e.harness import Site, cdrs, site_yaml

RING_ON_MS, RING_OFF_MS = 1000, 4000       # cn ring cadence



def test_a_caller_who_gives_up_on_ring_1_leaves_nothing_to_the_next_caller(tmp_path: Path) -> None:
    # A rings trunk1 and gives up half way through its first ring (the trunk is left ringing until
    # the ring gap runs out); B rings the same trunk 2 s later, well inside that gap. C is the same
    # kind of caller as B alone on trunk2, at the same moment: B must be answered as C is.
    a = Caller(trunk=0, at_ms=1000, ani="13900000001", digits="", cid="dtmf", patience_ms=3500)
    b = Caller(trunk=0, at_ms=6500, ani="13911112222", digits="", press_after_ms=500, patience_ms=15000, cid="dtmf")
    c = Caller(trunk=1, at_ms=6500, ani="13987654321", digits="", press_after_ms=500, patience_ms=15000, cid="dtmf")
    site = Site(tmp_path, site_yaml(callerid="dtmf", agents=1), [a, b, c], [], keep_audio=False)
    try:
        site.run(40000)
    finally:
        site.close()
    assert a.answered_ms is None and not b.blocked
    assert b.answered_ms is not None and c.answered_ms is not None
    rows = {r["trunk"]: r for r in cdrs(tmp_path)}
    assert len(rows) == 2                      # A was never answered: no call, no CDR
    assert rows["trunk1"]["ani"] == "13911112222"
    assert rows["trunk2"]["ani"] == "13987654321"
    # Answered on its own second ring: one whole cycle after its first ring began, as C was.
    assert c.answered_ms - c.at_ms > RING_ON_MS + RING_OFF_MS
    assert abs((b.answered_ms - b.at_ms) - (c.answered_ms - c.at_ms)) <= site.engine.period_ms


def test_a_stray_digit_on_an_idle_trunk_does_not_spoil_the_next_callers_number(tmp_path: Path) -> None:
    # A's call ends; then a lone key ('6', as a caller's last key when the line releases) reaches the
    # idle trunk; then B calls with DTMF caller ID.
    a = Caller(trunk=0, at_ms=1000, ani="13900000001", digits="", press_after_ms=500, patience_ms=15000, cid="dtmf")
    b = Caller(trunk=0, at_ms=30000, ani="13800130002", digits="", press_after_ms=500, patience_ms=15000, cid="dtmf")
    site = Site(tmp_path, site_yaml(callerid="dtmf", agents=1), [a, b], [], keep_audio=False)
    try:
        site.run(26000)
        assert a.hung_up_ms is not None and a.hung_up_ms < 26000
        assert site.world.fm is not None
        site.world.fm.dtmf_tx(0, "6", 70, 70)
        site.run(1000)
        trunk_state = site.engine.trunks[0].state.name
        site.run(33000)
    finally:
        site.close()
    assert trunk_state == "IDLE"               # a stray key rings nothing
    assert b.answered_ms is not None
    assert [r["ani"] for r in cdrs(tmp_path)] == ["13900000001", "13800130002"]


def test_a_caller_without_caller_id_after_one_who_gave_up_on_ring_1(tmp_path: Path) -> None:
    # As above, but B sends no caller ID: nothing marks its call but its ring. A's first ring was cut
    # short (the exchange stopped ringing when A hung up), so B's ring is ring 1 of a new call.
    a = Caller(trunk=0, at_ms=1000, ani="13900000001", digits="", cid="dtmf", patience_ms=400)
    b = Caller(trunk=0, at_ms=6000, ani=None, digits="", press_after_ms=500, patience_ms=15000, cid="none")
    site = Site(tmp_path, site_yaml(callerid="dtmf", agents=1), [a, b], [], keep_audio=False)
    try:
        site.run(30000)
    finally:
        site.close()
    assert a.answered_ms is None and b.answered_ms is not None
    assert b.answered_ms - b.at_ms > RING_ON_MS + RING_OFF_MS       # on its own second ring
    assert [r["ani"] for r in cdrs(tmp_path)] == [None]


def test_an_fsk_caller_who_gave_up_leaves_nothing_to_a_caller_who_rings_soon_after(tmp_path: Path) -> None:
    # FSK caller ID comes after ring 1, too late to mark a new call: a ring that comes sooner than the
    # cadence's 4 s pause after the last one begins a new call. A gives up after its caller ID; B's
    # first ring comes 3.5 s after A's ring ended.
    a = Caller(trunk=0, at_ms=1000, ani="13900000001", digits="", patience_ms=2500)
    b = Caller(trunk=0, at_ms=5500, ani="13911112222", digits="", press_after_ms=500, patience_ms=15000)
    site = Site(tmp_path, site_yaml(agents=1), [a, b], [], keep_audio=False)
    try:
        site.run(30000)
    finally:
        site.close()
    assert a.answered_ms is None and b.answered_ms is not None
    assert b.answered_ms - b.at_ms > RING_ON_MS + RING_OFF_MS       # on its own second ring
    assert [r["ani"] for r in cdrs(tmp_path)] == ["13911112222"]


def test_old_digits_on_an_idle_trunk_are_no_callers_number(tmp_path: Path) -> None:
    # '5#' reaches the idle trunk (it reads like a bare '#'-terminated number); 20 s later a caller
    # without caller ID rings: those digits are no caller ID of this call.
    b = Caller(trunk=0, at_ms=25000, ani=None, digits="", press_after_ms=500, patience_ms=15000, cid="none")
    site = Site(tmp_path, site_yaml(callerid="dtmf", agents=1), [b], [], keep_audio=False)
    try:
        site.run(4000)
        assert site.world.fm is not None
        site.world.fm.dtmf_tx(0, "5#", 70, 70)
        site.run(50000)
    finally:
        site.close()
    assert b.answered_ms is not None
    assert [r["ani"] for r in cdrs(tmp_path)] == [None]
