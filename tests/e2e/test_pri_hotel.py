"""The hotel call over PRI, through the engine, in virtual time: the hotel's own template (configs/hotel.yaml,
span1 pri_cpe) with libpri's network side on span1 (pri_peer). ANI 13800138000 (national, ISDN plan)
dials the hotel's DNIS; the engine answers on the B-channel the SETUP named, the caller hears the
greeting, its "1" (spandsp's dtmf_tx, in band on the B-channel) queues it, agent 1001's phone rings with
the caller's number (private when its presentation is restricted) and answers; both hear each other; the
caller clears with 16; the CDR has the span, the timeslot, the ANI's attributes as sent, the DNIS, cause
16, and nothing is left on the span."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from appliance.prompts import read_wav
from appliance.world import PhoneScript
from e1t1.analog.fxs import PhoneEvent
from tests.e2e.harness import decode
from tests.e2e.pri_site import ANI, HOTEL_DNIS, PriSite, call
from tests.peers.pri_peer import BIN
from tests.signals import frequency, level_dbm0, peak_xcorr

pytestmark = pytest.mark.skipif(not BIN.exists(), reason="tests/peers/bin/pri_peer is not built (make setup)")

ROOT = Path(__file__).resolve().parent.parent.parent
HOTEL = ROOT / "configs" / "hotel.yaml"
PROMPTS = ROOT / "configs" / "prompts" / "en"
PHONE1 = 8          # the hotel's ports: eight FXO trunks, then phone1 (agent 1001's)


@pytest.mark.parametrize("pres", ["allowed", "restricted"])
def test_the_hotel_call_over_pri(tmp_path: Path, pres: str) -> None:
    phone = PhoneScript(port=PHONE1, agent="1001", login_at_ms=0, answer_after_ms=3000)
    ps = PriSite(tmp_path, HOTEL.read_text(), [phone], script=[call(2000, pres=pres, ani_screen="network")])
    try:
        engine = ps.engine
        offers: list[Any] = []
        real_dispatch = engine.phones[PHONE1].dispatch

        def dispatch(ev: PhoneEvent, **data: Any) -> None:
            if ev is PhoneEvent.OFFER:
                offers.append(data["cid"])
            real_dispatch(ev, **data)

        engine.phones[PHONE1].dispatch = dispatch  # type: ignore[method-assign,assignment]
        tap = ps.tap(1, 14000)
        ps.up()
        answer = ps.peer_event("answer", within_ms=3000)     # our CONNECT, at once
        assert answer["channel"] == 1 and answer["t_ms"] - 2000 < 100
        assert engine.echo.view(ps.chan(1)) == {"state": "on", "taps": 128}      # the span's echo_taps
        row = ps.site.request("status")["calls"]
        assert [(r["trunk"], r["ani"], r["dnis"], r["state"], r["line"], r["timeslot"], r["ani_ton"], r["ani_npi"],
                 r["ani_presentation"], r["ani_screening"]) for r in row] == [
            ("span1", ANI, HOTEL_DNIS, "ivr", "pri", 1, "national", "isdn", pres, "network")]
        ps.run(4000)

        # The greeting went out on TS1 from the answer on.
        _, tx = tap.read(8 * 14000)
        start = 8 * answer["t_ms"]
        sent = np.array(tx[start - 800:start + 4 * 8000], dtype=float)
        prompt = np.array(read_wav(PROMPTS / "welcome.wav"), dtype=float)[: 2 * 8000 + 4000]
        other = np.array(read_wav(PROMPTS / "welcome_evening.wav"), dtype=float)[: 2 * 8000 + 4000]
        assert peak_xcorr(sent, prompt, 1600) >= 0.95
        assert peak_xcorr(sent, other, 1600) <= 0.3

        # "1" in band on the B-channel: to the front desk, where agent 1001 answers.
        ps.do({"do": "dtmf", "call": 1, "digits": "1"})
        ps.until(lambda: [c.state.name for c in engine.calls.values()] == ["CONNECTED"], 15000, "the agent answers")
        assert len(offers) == 1
        if pres == "allowed":
            assert (offers[0].number, offers[0].number_absent) == (ANI, None)
            assert phone.caller_ids == [ANI]                 # spandsp read it on the phone's line
        else:
            assert (offers[0].number, offers[0].number_absent) == (None, "P")      # private
            assert phone.caller_ids == [None]

        # Talk: the caller's 1020 Hz at the agent's phone, the agent's 587 Hz on TS1 to the caller.
        ps.do({"do": "tone", "call": 1, "hz": 1020, "dbm0": -10})
        ps.run(3000)
        heard = decode(phone.heard[-8000:])
        assert abs(frequency(heard) - 1020) <= 2 and abs(level_dbm0(heard) + 10) <= 1.5
        _, tx = tap.read(8 * 14000)
        to_caller = np.array(tx[-8000:], dtype=float)
        assert abs(frequency(to_caller) - 587) <= 2

        ps.do({"do": "hangup", "call": 1, "cause": 16})
        ps.until(lambda: not engine.calls and not engine.call_layer.pri_calls, 2000, "the call over")
        ps.run(500)
        ps.nothing_leaked()
        assert engine.echo.view(ps.chan(1)) == {"state": "off", "taps": 0}
        assert engine.acd.agents_view()["1001"]["state"] == "ready"
    finally:
        rc = ps.close()
    assert rc == 0
    [cdr] = ps.cdrs()
    assert {k: cdr[k] for k in ("trunk", "timeslot", "ani", "ani_ton", "ani_npi", "ani_presentation", "ani_screening",
                                "dnis", "queue", "agent", "disposition", "cause")} == {
        "trunk": "span1", "timeslot": 1, "ani": ANI, "ani_ton": "national", "ani_npi": "isdn",
        "ani_presentation": pres, "ani_screening": "network", "dnis": HOTEL_DNIS, "queue": "front_desk",
        "agent": "1001", "disposition": "answered", "cause": 16}
    assert cdr["answer_ms"] is not None and cdr["talk_ms"] >= 3000
