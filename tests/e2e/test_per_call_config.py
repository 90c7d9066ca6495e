"""A call keeps the configuration version it began on; the next call takes the version applied meanwhile.

Version 1 of trunk1: FSK caller ID, answered on ring 2, the far end's hang-up signalled by a
polarity reversal, number 075588880001. Version 2, applied while a call is up: DTMF caller
ID, answered on ring 3, hang-up by battery loss, number 075588889999.
"""

from __future__ import annotations

from pathlib import Path

from appliance.world import Caller, PhoneScript
from e1t1.analog.fxo import TrunkState
from tests.e2e.harness import Site, site_yaml

V1 = site_yaml(agents=1).replace(
    "{kind: fxo, name: trunk1, number: '075588880001', callerid: fsk_bell202, answer_on_ring: 2}",
    "{kind: fxo, name: trunk1, number: '075588880001', callerid: fsk_bell202, answer_on_ring: 2, "
    "disconnect: [polarity]}")
V2 = V1.replace("number: '075588880001', callerid: fsk_bell202, answer_on_ring: 2, disconnect: [polarity]",
                "number: '075588889999', callerid: dtmf, answer_on_ring: 3, disconnect: [battery]")


def test_a_mid_call_apply_changes_the_next_call_not_this_one(tmp_path: Path) -> None:
    assert V1 != V2 and "disconnect: [polarity]" in V1
    first = Caller(trunk=0, at_ms=1000, ani="13800130001", cid="fsk_bell202", disconnect="polarity",
                   press_after_ms=500, hold_ms=10000)
    second = Caller(trunk=0, at_ms=30000, ani="13900130002", cid="dtmf", disconnect="battery",
                    press_after_ms=500, hold_ms=5000)
    phone = PhoneScript(port=2, agent="1001", login_at_ms=0, answer_after_ms=1000)
    site = Site(tmp_path, V1, [first, second], [phone], keep_audio=False)
    try:
        site.run(10000)
        (call,) = site.engine.calls.values()
        assert call.state.name == "CONNECTED" and call.config_version == 1
        assert site.request("config.apply", text=V2, filename="v2.yaml", author="t", base_version=1) == {
            "version": 2}
        assert site.engine.config_version == 2
        site.run(15000)                       # the first caller hangs up by polarity reversal (version 1)
        assert first.hung_up_ms is not None
        (cdr1,) = site.engine.released_log
        assert (cdr1.config_version, cdr1.dnis, cdr1.ani, cdr1.disposition) == (
            1, "075588880001", "13800130001", "answered")
        # the trunk heard the old version's hang-up signal at once, not the new one's
        assert first.hung_up_ms <= cdr1.end_ms <= first.hung_up_ms + 2 * site.engine.period_ms
        assert site.engine.trunks[0].state is TrunkState.IDLE
        assert len(first.rang_ms) == 2        # version 1: answered on ring 2
        site.run(35000)
        assert second.answered_ms is not None and len(second.rang_ms) == 3   # version 2: on ring 3
        cdr2 = site.engine.released_log[-1]
        assert cdr2 is not cdr1
        assert (cdr2.config_version, cdr2.dnis, cdr2.ani, cdr2.disposition) == (
            2, "075588889999", "13900130002", "answered")   # DTMF caller ID without a restart
        assert second.hung_up_ms is not None
        assert second.hung_up_ms <= cdr2.end_ms <= second.hung_up_ms + 2 * site.engine.period_ms
    finally:
        site.close()
