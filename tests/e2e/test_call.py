"""One real call through every layer, in virtual time: trunk, caller ID, IVR, queue, agent, talk, hang-up, CDR."""

from __future__ import annotations

from array import array
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from appliance.prompts import read_wav
from appliance.world import Caller, PhoneScript
from tests import signals
from tests.e2e.harness import Site, cdrs, decode, site_yaml
from tests.peers._spandsp import ffi as sffi
from tests.peers._spandsp import lib as slib
from tests.signals import peak_xcorr

PROMPTS = Path(__file__).resolve().parent.parent.parent / "configs" / "prompts" / "en"
ANI = "13800138000"


def spandsp_digit(d: str) -> array[int]:
    buf = sffi.new("int16_t[]", 8000)
    n = slib.cbpeer_dtmf_tx(d.encode(), buf, 8000)
    return array("h", bytes(sffi.buffer(buf, 2 * n)))


# The trunk's echo canceller: the default (128 taps) measures the tones through it; with echo_taps 0
# (off) the octets pass bit-exact, which an echo canceller on the caller's line never lets them.
@pytest.mark.parametrize(("cid", "echo_taps"), [("fsk_bell202", None), ("dtmf", None), ("fsk_bell202", 0)],
                         ids=["fsk_bell202-echo128", "dtmf-echo128", "fsk_bell202-echo_off"])
def test_a_call_through_every_layer(tmp_path: Path, cid: str, echo_taps: int | None) -> None:
    caller = Caller(trunk=0, at_ms=6000, ani=ANI, digits="1", press_after_ms=8000, hold_ms=6000, cid=cid,
                    press_audio=spandsp_digit("1"))
    # The agent logs in first, then lets the phone ring two whole cycles before answering.
    phone = PhoneScript(port=2, agent="1001", login_at_ms=0, answer_after_ms=10500)
    site = Site(tmp_path, site_yaml(callerid=cid, agents=1, echo_taps=echo_taps), [caller], [phone])
    try:
        site.run(60000)
    finally:
        site.close()
    assert caller.answered_ms is not None and caller.connected_ms is not None and caller.hung_up_ms is not None

    # The greeting the caller heard is the prompt.
    prompt = np.array(read_wav(PROMPTS / "welcome.wav"), dtype=float)[: 2 * 8000 + 4000]
    other = np.array(read_wav(PROMPTS / "welcome_evening.wav"), dtype=float)[: 2 * 8000 + 4000]
    heard = decode(caller.heard)[: 4 * 8000]
    assert peak_xcorr(heard, prompt, 800) >= 0.95
    assert peak_xcorr(heard, other, 800) <= 0.3

    # The agent's phone rang with the cn cadence, 1000 on / 4000 off, for two cycles.
    ring = phone.rings[:5]
    t0 = ring[0][0]
    assert [typ for _, typ in ring] == [4, 5, 4, 5, 4]
    for (t, _), want in zip(ring, [0, 1000, 5000, 6000, 10000], strict=True):
        assert abs(t - t0 - want) <= 1
    # Between rings 1 and 2 the phone received caller ID that spandsp's receiver decodes.
    assert phone.line_start is not None
    a = (t0 + 1000 - phone.line_start) * 8
    b = (t0 + 5000 - phone.line_start) * 8
    line = decode(phone.line[a:b]).astype(np.int16)
    num = sffi.new("char[]", 64)
    assert slib.cbpeer_class_number(sffi.from_buffer("int16_t[]", line), len(line), num, 64) == 1
    assert sffi.string(num).decode() == ANI

    # Talking: each side hears the other's tone, clean, and not its own.
    c0 = (caller.connected_ms - caller.answered_ms + 300) * 8
    c1 = (caller.hung_up_ms - caller.answered_ms - 300) * 8
    at_caller = decode(caller.heard[c0:c1])

    signals_ok(at_caller, 587, 1020)
    p0 = (caller.connected_ms + 300 - phone.line_start) * 8
    p1 = (caller.hung_up_ms - 300 - phone.line_start) * 8
    at_phone = decode(phone.line[p0:p1])
    signals_ok(at_phone, 1020, 587)
    if echo_taps == 0:
        # Same law both sides, no canceller: the octets pass bit-exact after a fixed delay.
        sent = bytes(site.world.sent[0][(caller.connected_ms + 500) * 8:(caller.connected_ms + 2500) * 8])
        assert signals.delay_of(sent, bytes(phone.line), len(phone.line)) is not None

    # The caller hangs up: the phone sees open loop, then congestion tone.
    (t_off, v_off), (t_on, v_on) = phone.battery[:2]
    assert (v_off, v_on) == (0, 1)
    assert abs(t_on - t_off - 750) <= site.engine.period_ms     # the open-loop timer, to a control period
    assert caller.hung_up_ms <= phone.battery[0][0] <= caller.hung_up_ms + site.engine.period_ms
    after = (phone.battery[1][0] - phone.line_start + 50) * 8
    cong = decode(phone.line[after:after + 600 * 8])
    assert abs(signals.frequency(cong) - 450) < 5
    assert abs(signals.level_dbm0(cong) + 10) < 1.5

    # The CDR: who called whom, who answered, and the script's times, in order.
    (cdr,) = cdrs(tmp_path)
    assert_cdr(cdr, caller, phone, ani=ANI, dnis="075588880001", trunk="trunk1", agent="1001")
    assert cdr["config_version"] == 1
    assert (cdr["answer_ms"], cdr["end_ms"]) == (phone.answered[0], caller.hung_up_ms)
    press = caller.answered_ms + caller.press_after_ms
    assert 0 <= int(cdr["queue_entry_ms"]) - press <= 60 + site.engine.period_ms   # detection takes 2 blocks
    assert cdr["talk_ms"] == caller.hold_ms


# cn ring cadence [line-signals.md]: the second ring comes 1000 + 4000 ms after the first.
RING_CYCLE_MS = 1000 + 4000


def assert_cdr(cdr: dict[str, Any], caller: Caller, phone: PhoneScript, *, ani: str, dnis: str, trunk: str,
               agent: str, disposition: str = "answered") -> None:
    """One answered call's CDR against its script: the numbers, the agent, and the times in order.

    The site answers on the second ring (answer_on_ring: 2): the call starts at that ring's tick.
    The agent answered when `phone` went off hook; the call ended when the caller hung up.
    """
    assert (cdr["ani"], cdr["dnis"], cdr["trunk"], cdr["queue"], cdr["agent"], cdr["disposition"]) == \
        (ani, dnis, trunk, "front_desk", agent, disposition)
    assert caller.rang_ms[1] - caller.rang_ms[0] == RING_CYCLE_MS
    start, entry, answer, end = (int(cdr[k]) for k in ("start_ms", "queue_entry_ms", "answer_ms", "end_ms"))
    assert start == caller.rang_ms[1]
    assert start < entry < answer < end
    assert answer in phone.answered
    assert caller.hung_up_ms is not None and end >= caller.hung_up_ms
    assert cdr["wait_ms"] == answer - entry
    assert cdr["talk_ms"] == end - answer
    # the site's epoch is 2026-03-01T09:30:00 (site_yaml), the call starts within its first minute
    assert cdr["calendar_start"] == f"2026-03-01T09:30:{start // 1000:02d}"


def signals_ok(x: np.ndarray, freq: float, own: float) -> None:
    assert abs(signals.frequency(x) - freq) <= 2
    assert abs(signals.level_dbm0(x) - -10.0) <= 1
    assert signals.sinad_db(x, freq) >= 30
    assert signals.component_db(x, own, -10.0) < -50


def test_four_callers_two_agents_answer_in_queue_order(tmp_path: Path) -> None:
    text = site_yaml(agents=2).replace(
        "  - {kind: fxs, name: phone1",
        "  - {kind: fxo, name: trunk3, number: '075588880003', callerid: fsk_bell202, answer_on_ring: 2}\n"
        "  - {kind: fxo, name: trunk4, number: '075588880004', callerid: fsk_bell202, answer_on_ring: 2}\n"
        "  - {kind: fxs, name: phone1").replace(
        "  - {trunk: trunk2, ivr: main}",
        "  - {trunk: trunk2, ivr: main}\n  - {trunk: trunk3, ivr: main}\n  - {trunk: trunk4, ivr: main}")
    # Four callers within 2 s; each talks 20 s once answered; two agents.
    callers = [Caller(trunk=i, at_ms=1000 + 500 * i, ani=f"1390000000{i}", press_after_ms=500, hold_ms=20000)
               for i in range(4)]
    phones = [PhoneScript(port=4, agent="1001", answer_after_ms=2500),
              PhoneScript(port=5, agent="1002", answer_after_ms=2500)]
    site = Site(tmp_path, text, callers, phones, keep_audio=False)
    try:
        site.run(90000)
    finally:
        site.close()
    rows = sorted(cdrs(tmp_path), key=lambda r: int(str(r["start_ms"])))
    # Callers are served oldest first; a call goes to the ready agent idle longest, a tie to the
    # lower number (appliance/acd.py): both log in alike, so 1001 takes the first call, 1002 the
    # second, and each takes the next once its call is over.
    agents = ["1001", "1002", "1001", "1002"]
    assert len(rows) == 4
    for i, (row, caller) in enumerate(zip(rows, callers, strict=True)):
        phone = phones[0] if agents[i] == "1001" else phones[1]
        assert_cdr(row, caller, phone, ani=f"1390000000{i}", dnis=f"07558888000{i + 1}", trunk=f"trunk{i + 1}",
                   agent=agents[i])
        assert row["end_ms"] == caller.hung_up_ms                # the caller hung up: the battery drop's tick
        assert row["talk_ms"] == caller.hold_ms
    entries = [int(str(r["queue_entry_ms"])) for r in rows]
    answers = [int(str(r["answer_ms"])) for r in rows]
    assert entries == sorted(entries) and answers == sorted(answers)   # answered in queue-entry order
    # the last two waited while both agents talked: each answered only after its agent's first call ended
    assert answers[2] > int(str(rows[0]["end_ms"])) and answers[3] > int(str(rows[1]["end_ms"]))


@pytest.mark.parametrize("how", ["battery", "polarity", "busy"])
def test_each_disconnect_signal_ends_the_call(tmp_path: Path, how: str) -> None:
    caller = Caller(trunk=0, at_ms=1000, press_after_ms=500, hold_ms=4000, disconnect=how)
    phone = PhoneScript(port=2, agent="1001", login_at_ms=0, answer_after_ms=2500)
    site = Site(tmp_path, site_yaml(agents=1), [caller], [phone], keep_audio=False)
    try:
        site.run(40000)
    finally:
        site.close()
    (cdr,) = cdrs(tmp_path)
    assert_cdr(cdr, caller, phone, ani="13800138000", dnis="075588880001", trunk="trunk1", agent="1001")
    assert caller.hung_up_ms is not None
    delay = int(cdr["end_ms"]) - caller.hung_up_ms
    if how == "busy":
        # three whole cn busy cadences (350 on, 350 off: line-signals.md; busycount 3) are counted,
        # confirmed as the next burst starts
        assert 3 * 700 <= delay <= 4 * 700 + 100
    else:
        assert delay == 0                                # the line change's own tick
        assert cdr["talk_ms"] == caller.hold_ms
    # The agent's phone sees open loop once the call is over, and battery again.
    assert [v for _, v in phone.battery[:2]] == [0, 1]
    assert int(cdr["end_ms"]) <= phone.battery[0][0] <= int(cdr["end_ms"]) + site.engine.period_ms


def test_a_phone_that_never_rings_is_sent_nothing(tmp_path: Path) -> None:
    """A caller on trunk1 with Bell 202 caller ID; nobody logs in, so no phone rings: the idle phone
    is sent silence, and shows no caller ID."""
    caller = Caller(trunk=0, at_ms=1000, ani=ANI, press_after_ms=500, patience_ms=8000)
    phone = PhoneScript(port=2, agent="1001", login_at_ms=None)
    site = Site(tmp_path, site_yaml(agents=1), [caller], [phone])
    try:
        site.run(12000)
    finally:
        site.close()
    assert caller.answered_ms is not None         # the trunk answered; the caller waited in the queue
    assert phone.rings == []
    assert phone.caller_ids == []
    assert signals.level_dbm0(decode(phone.line)) < -60
