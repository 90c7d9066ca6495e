"""Caller ID on every call of a trunk, whatever came before on the line.

spandsp makes each caller's caller ID (Bell 202, V.23 or DTMF), sent as the
caller's audio on the trunk; each CDR must hold its own caller's number.
"""

from __future__ import annotations

from array import array
from pathlib import Path

import pytest

from appliance.config.loader import load_config
from appliance.engine import Engine
from appliance.world import Caller, PhoneScript
from appliance.world.traffic import traffic_world
from tests.e2e.harness import Site, cdrs, site_yaml
from tests.peers._spandsp import ffi as sffi
from tests.peers._spandsp import lib as slib
from tests.peers.spandsp_far import SpandspSignals

HOTEL = Path(__file__).resolve().parent.parent.parent / "configs" / "hotel.yaml"
SPANDSP = {"fsk_bell202": slib.ADSI_STANDARD_CLASS, "v23": slib.ADSI_STANDARD_CLIP,
           "dtmf": slib.ADSI_STANDARD_CLIP_DTMF}


def spandsp_cid(cid: str, number: str) -> array[int]:
    """`number`'s caller ID as spandsp sends it with the trunk's standard (date-time 03-01 09:30 on FSK)."""
    out = sffi.new("int16_t[]", 80000)
    when = b"" if cid == "dtmf" else b"03010930"
    n = slib.cbpeer_adsi_tx(SPANDSP[cid], when, number.encode(), b"", out, 80000)
    assert n > 0
    return array("h", bytes(sffi.buffer(out, 2 * n)))



@pytest.mark.parametrize("cid", ["fsk_bell202", "v23", "dtmf"])
def test_three_callers_in_a_row_on_one_trunk_each_get_their_own_number(tmp_path: Path, cid: str) -> None:
    # Each call ends differently, so each next caller finds the line left by another kind of call.
    numbers = ["13900000001", "13911112222", "13987654321"]
    callers = [Caller(trunk=0, at_ms=1000 + 30000 * i, ani=num, press_after_ms=500, hold_ms=5000, cid=cid,
                      cid_audio=spandsp_cid(cid, num), disconnect=how)
               for i, (num, how) in enumerate(zip(numbers, ["battery", "polarity", "busy"], strict=True))]
    phone = PhoneScript(port=2, agent="1001", login_at_ms=0, answer_after_ms=2500)
    site = Site(tmp_path, site_yaml(callerid=cid, agents=1), callers, [phone], keep_audio=False)
    try:
        site.run(100000)
    finally:
        site.close()
    rows = cdrs(tmp_path)
    assert [(r["trunk"], r["disposition"]) for r in rows] == [("trunk1", "answered")] * 3
    assert [r["ani"] for r in rows] == numbers
    # Every call was answered on its second ring, as the first was.
    assert all(c.answered_ms is not None for c in callers)
    delays = [int(c.answered_ms or 0) - c.at_ms for c in callers]
    assert max(delays) - min(delays) <= site.engine.period_ms, delays


def test_a_stretch_of_hotel_traffic_every_cdr_holds_its_callers_number(tmp_path: Path) -> None:
    """Hotel traffic with several calls on every trunk (shorter calls than the busy hour's, so a
    few virtual minutes hold many): each answered caller's CDR has that caller's number."""
    cfg = load_config(HOTEL)
    duration = 5 * 60000
    # spandsp makes every caller's caller ID and every DTMF digit, and reads the phones' caller ID.
    world = traffic_world(cfg, duration, seed=20261125, mean_hold_s=30.0, mean_patience_s=60.0,
                          signals=SpandspSignals(), keep_callers=True)
    engine = Engine(tmp_path, cfg, 1, clock="virtual", world=world)
    try:
        engine.run_for(duration)
    finally:
        engine.close()
    names = [p.name for p in cfg.ports]
    rows = cdrs(tmp_path)
    per_trunk = {name: sum(1 for r in rows if r["trunk"] == name) for name in names if name.startswith("trunk")}
    assert min(per_trunk.values()) >= 2, per_trunk          # calls follow calls on every trunk
    for r in rows:
        # the caller the trunk answered for this call: off hook within two control periods of the ring
        start = int(r["start_ms"])
        if r["timeslot"] is not None:       # a call on the PRI span: its number came in the SETUP
            (caller,) = [c for c in world.callers if c.span == r["trunk"] and c.timeslot == r["timeslot"]
                         and c.answered_ms is not None and 0 <= c.answered_ms - start <= 2 * engine.period_ms]
        else:
            (caller,) = [c for c in world.callers if c.trunk is not None and names[c.trunk] == r["trunk"]
                         and c.answered_ms is not None
                         and 0 <= c.answered_ms - start <= 2 * engine.period_ms]
            assert caller.cid != "none"
        assert r["ani"] == caller.ani, (r, caller.at_ms)
