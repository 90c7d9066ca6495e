"""The media graph, measured by tone on each leg: conferences, listen, whisper, barge, gains.

Four phones on FXS ports of the sim card; each sends its own tone from the far
side, and what each one hears is read back from the far side and measured.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from appliance.linecard import LineCard
from drivers.base import CardDescription
from drivers.sim import SimCard
from dsp.errors import DspCommandError, check
from dsp.scheduler import Scheduler, lib
from tests import signals

ROOT = Path(__file__).resolve().parents[2]
# The limits cb_mix.h documents: a conference of 8 legs, a paging group of 64, 4 edges into a channel,
# gains -60..+18 dB.
CONF_MAX, PAGING_MAX, EDGES_MAX = 8, 64, 4

FREQS = (697.0, 1209.0, 1633.0, 941.0)   # one per leg, none a harmonic of another
LEVEL = -10.0                            # dBm0 each leg sends
DEC = np.array([lib.cb_alaw2lin(a) for a in range(256)], dtype=np.float64)
ENC = np.array([lib.cb_lin2alaw(v) for v in range(-32768, 32768)], dtype=np.uint8)
HEARD = -3.0   # dB relative to LEVEL: above this a leg hears a tone
SILENT = -50.0  # dB relative to LEVEL: below this it does not


@pytest.fixture
def card() -> Iterator[LineCard]:
    t = LineCard("sim", CardDescription(ports=("fxs",) * 4, k=4), zone="cn")
    yield t
    t.close()


def run(t: LineCard, ms: int = 1000) -> list[np.ndarray]:
    """Every leg sends its tone for `ms`; returns what each leg heard (after a settling block)."""
    sim = t.card
    assert isinstance(sim, SimCard)
    f = sim.far
    n = ms * 8
    sent = []
    for c in range(4):
        lin = np.clip(np.round(signals.tone(FREQS[c], n, LEVEL)), -32768, 32767).astype(np.int32)
        sent.append(bytes(ENC[lin + 32768]))
        f.listen(c)
        f.read(c)   # drop what came before
    got = [b""] * 4
    for i in range(0, n, 320):
        for c in range(4):
            f.write(c, sent[c][i:i + 320])
        t.step(40)
        for c in range(4):
            got[c] += f.read(c)
    return [DEC[np.frombuffer(g, dtype=np.uint8)][400:] for g in got]


def hearing(heard: list[np.ndarray]) -> list[list[float]]:
    """matrix[listener][source]: the source's tone in the listener's audio, dB re LEVEL."""
    return [[signals.component_db(x, FREQS[s], LEVEL) for s in range(4)] for x in heard]


def assert_matrix(m: list[list[float]], hears: dict[int, set[int]], tol: float = 1.0) -> None:
    for lis in range(4):
        for src in range(4):
            if src in hears.get(lis, set()):
                assert abs(m[lis][src]) <= tol, f"leg {lis} hears leg {src} at {m[lis][src]:.2f} dB"
            else:
                assert m[lis][src] < SILENT, f"leg {lis} should not hear leg {src} ({m[lis][src]:.1f} dB)"


def test_a_fresh_card_keeps_every_line_to_itself(card: LineCard) -> None:
    # Before any edge was ever made, nobody hears anybody (a fast-path source that defaulted to
    # channel 0 once sent one caller's line, caller ID and all, to every other port).
    assert_matrix(hearing(run(card)), {})


def test_after_a_graph_edit_that_changes_nothing_no_leg_hears_another(card: LineCard) -> None:
    card.sched.unlisten(3)
    assert_matrix(hearing(run(card)), {})


def test_three_leg_conference_each_hears_the_others_not_itself(card: LineCard) -> None:
    for c in range(3):
        card.sched.mix_join(c, group=3)
    m = hearing(run(card))
    assert_matrix(m, {0: {1, 2}, 1: {0, 2}, 2: {0, 1}})


def test_a_member_that_only_hears_is_not_heard(card: LineCard) -> None:
    # Paging: leg 0 talks; legs 1-3 only hear.
    card.sched.mix_join(0, group=1, hear=False, paging=True)
    for c in (1, 2, 3):
        card.sched.mix_join(c, group=1, talk=False, paging=True)
    assert_matrix(hearing(run(card)), {1: {0}, 2: {0}, 3: {0}})


CALLER, AGENT, SUPERVISOR = 0, 1, 2


def _call(card: LineCard) -> None:
    card.sched.bridge(CALLER, AGENT)


def test_listen_supervisor_hears_both_nobody_hears_the_supervisor(card: LineCard) -> None:
    _call(card)
    card.sched.listen(SUPERVISOR, CALLER)
    card.sched.listen(SUPERVISOR, AGENT)
    assert_matrix(hearing(run(card)), {CALLER: {AGENT}, AGENT: {CALLER}, SUPERVISOR: {CALLER, AGENT}})


def test_whisper_the_agent_hears_the_supervisor_the_caller_does_not(card: LineCard) -> None:
    _call(card)
    card.sched.listen(SUPERVISOR, CALLER)
    card.sched.listen(SUPERVISOR, AGENT)
    card.sched.listen(AGENT, SUPERVISOR)
    assert_matrix(hearing(run(card)),
                  {CALLER: {AGENT}, AGENT: {CALLER, SUPERVISOR}, SUPERVISOR: {CALLER, AGENT}})


def _barge(card: LineCard) -> None:
    _call(card)
    for lis, src in ((SUPERVISOR, CALLER), (SUPERVISOR, AGENT), (AGENT, SUPERVISOR), (CALLER, SUPERVISOR)):
        card.sched.listen(lis, src)


def test_barge_everyone_hears_everyone_else(card: LineCard) -> None:
    _barge(card)
    assert_matrix(hearing(run(card)),
                  {CALLER: {AGENT, SUPERVISOR}, AGENT: {CALLER, SUPERVISOR}, SUPERVISOR: {CALLER, AGENT}})


def test_removing_the_agent_from_a_barge_leaves_supervisor_and_caller_together(card: LineCard) -> None:
    _barge(card)
    run(card, 200)
    card.sched.unbridge(AGENT)
    assert_matrix(hearing(run(card)), {CALLER: {SUPERVISOR}, SUPERVISOR: {CALLER}})


@pytest.mark.parametrize("gain_db", [-6.0, 6.0])
def test_an_edge_gain_is_what_the_listener_measures(card: LineCard, gain_db: float) -> None:
    card.sched.listen(1, 0, gain_db)
    m = hearing(run(card))
    assert abs(m[1][0] - gain_db) <= 0.5
    assert m[0][1] < SILENT and m[1][1] < SILENT


def test_a_sum_past_full_scale_clips_instead_of_wrapping(card: LineCard) -> None:
    # Three legs into one at +12 dB each: the sum passes full scale and must clip with its
    # sign kept; a wrap in 16 bits would flip it.
    for src in (0, 1, 2):
        card.sched.listen(3, src, 12.0)
    heard = run(card)[3]
    n = len(heard)
    # heard[i] is what the sources sent one block (32 samples) before sample 400 + i.
    start = 400 - 32
    true = sum(signals.tone(FREQS[s], start + n, LEVEL + 12.0)[start:] for s in (0, 1, 2))
    over = np.abs(true) > 40000
    assert over.sum() > 100
    assert np.all(np.sign(heard[over]) == np.sign(true[over]))
    assert np.all(np.abs(heard[over]) >= 30000)


def test_graph_commands_are_checked(card: LineCard) -> None:
    with pytest.raises(DspCommandError, match=r"gain 30\.0 dB out of range"):
        card.sched.listen(1, 0, 30.0)
    with pytest.raises(DspCommandError, match="channel 1 cannot listen to 1"):
        card.sched.listen(1, 1)
    for src in (0, 2, 3):
        card.sched.listen(1, src)
    card.sched.unlisten(1)
    evs = card.step(4)
    assert not evs   # edges set and cleared without a refusal


IDLE_TICK = 8   # octets of one tick of one channel


def quiet(m: Scheduler) -> list[tuple[int, int, int]]:
    """Run one tick; the media errors it reports (chan, op, status)."""
    m.process(0, 1, bytes([0xD5]) * (IDLE_TICK * m.nchan))
    return [(e.chan, e.value, e.extra) for e in m.events() if e.type == lib.CB_EV_MEDIA_ERROR]


def test_the_limits_are_the_documented_ones() -> None:
    assert (lib.CB_MIX_CONF_MAX, lib.CB_MIX_GROUP_MAX, lib.CB_MIX_MAX_EDGES) == (CONF_MAX, PAGING_MAX, EDGES_MAX)
    assert (lib.CB_MIX_GAIN_MIN, lib.CB_MIX_GAIN_MAX) == (-6000, 1800)
    # The neutral header's comments on LISTEN and MIX_JOIN say the same range as the code.
    text = (ROOT / "include" / "cb_records.h").read_text()
    for op in ("CB_CMD_LISTEN", "CB_CMD_MIX_JOIN"):
        said = re.search(op + r" = [^,]+,[^;]*?cdB, (-?\d+)\.\.\+(\d+)", text)
        assert said is not None, op
        assert (int(said.group(1)), int(said.group(2))) == (lib.CB_MIX_GAIN_MIN, lib.CB_MIX_GAIN_MAX), op


def test_a_ninth_leg_of_a_conference_is_refused_at_once() -> None:
    m = Scheduler(2 * PAGING_MAX, "alaw")
    for c in range(CONF_MAX):
        m.mix_join(c, group=0)
    with pytest.raises(DspCommandError, match=f"mix group 0 is full: a conference holds at most {CONF_MAX} members"):
        m.mix_join(CONF_MAX, group=0)
    m.mix_join(0, group=0, gain_db=-3.0)        # a member joining again changes its gain, not the count
    m.mix_leave(3)
    m.mix_join(CONF_MAX, group=0)               # a leg left: room for one
    assert quiet(m) == []


def test_a_paging_group_takes_64_members_and_refuses_the_65th() -> None:
    m = Scheduler(2 * PAGING_MAX, "alaw")
    m.mix_join(0, group=5, hear=False, paging=True)
    for c in range(1, PAGING_MAX):
        m.mix_join(c, group=5, talk=False, paging=True)
    with pytest.raises(DspCommandError, match=f"mix group 5 is full: a paging group holds at most {PAGING_MAX}"):
        m.mix_join(PAGING_MAX, group=5, talk=False, paging=True)
    assert quiet(m) == []


def test_a_group_is_joined_as_the_kind_it_is() -> None:
    m = Scheduler(8, "alaw")
    m.mix_join(0, group=1)
    m.mix_join(1, group=1)
    with pytest.raises(DspCommandError, match="mix group 1 is a conference: channel 2 cannot join it as a paging"):
        m.mix_join(2, group=1, paging=True)
    m.mix_join(4, group=2, paging=True)
    with pytest.raises(DspCommandError, match="mix group 2 is a paging group: channel 5 cannot join it as a conf"):
        m.mix_join(5, group=2)
    m.mix_leave(4)
    m.mix_join(5, group=2)                      # empty again: the next first member says the kind
    assert quiet(m) == []


def test_unlisten_of_a_source_not_heard_is_refused_at_once() -> None:
    m = Scheduler(4, "alaw")
    with pytest.raises(DspCommandError, match="channel 1 does not listen to 0"):
        m.unlisten(1, 0)
    m.listen(1, 0)
    m.unlisten(1, 0)
    with pytest.raises(DspCommandError, match="channel 1 does not listen to 0"):
        m.unlisten(1, 0)
    m.bridge(2, 3)
    m.unlisten(2, 3)                            # one way of the bridge
    m.unbridge(3)                               # takes the other way
    with pytest.raises(DspCommandError, match="channel 3 does not listen to 2"):
        m.unlisten(3, 2)
    m.unlisten(3)                               # every source: nothing to do is not an error
    assert quiet(m) == []


def test_a_fifth_edge_into_a_channel_is_refused_at_once() -> None:
    m = Scheduler(8, "alaw")
    for src in range(1, EDGES_MAX + 1):
        m.listen(0, src)
    m.listen(0, 1, -6.0)                        # an existing edge takes a new gain
    with pytest.raises(DspCommandError, match=f"channel 0 already hears {EDGES_MAX} sources"):
        m.listen(0, EDGES_MAX + 1)
    assert quiet(m) == []


@pytest.mark.parametrize("gain", [18.01, -60.01, 30.0, math.nan, math.inf, -math.inf, "6", True])
def test_a_bad_gain_is_refused_at_once(gain: object) -> None:
    m = Scheduler(4, "alaw")
    refused = r"gain .* (out of range -60\.0\.\.18\.0 dB|is not a number of dB)"
    with pytest.raises(DspCommandError, match=refused):
        m.listen(1, 0, gain)  # type: ignore[arg-type]
    with pytest.raises(DspCommandError, match=refused):
        m.mix_join(1, group=0, gain_db=gain)  # type: ignore[arg-type]
    m.listen(1, 0, -60.0)
    m.listen(2, 0, 18.0)
    m.mix_join(3, group=0, gain_db=18)
    assert quiet(m) == []


def test_the_graph_itself_enforces_the_limits() -> None:
    # What the scheduler's Python face refuses ahead, the C graph refuses too (a CB_EV_MEDIA_ERROR
    # for a command that reached it), each with its own status.
    g = lib.cb_mix_init(2 * PAGING_MAX)
    try:
        conf, page = lib.CB_MIX_TALK | lib.CB_MIX_HEAR, lib.CB_MIX_HEAR | lib.CB_MIX_PAGING
        for c in range(CONF_MAX):
            check(lib.cb_mix_join(g, c, 0, 0, conf), "join")
        with pytest.raises(DspCommandError, match="limit reached"):
            check(lib.cb_mix_join(g, CONF_MAX, 0, 0, conf), "a ninth leg")
        for c in range(PAGING_MAX):
            check(lib.cb_mix_join(g, PAGING_MAX + c - 1 if c else CONF_MAX, 1, 0, page), "join")
        with pytest.raises(DspCommandError, match="limit reached"):
            check(lib.cb_mix_join(g, 2 * PAGING_MAX - 1, 1, 0, page), "a 65th member")
        with pytest.raises(DspCommandError, match="invalid argument"):
            check(lib.cb_mix_join(g, 2 * PAGING_MAX - 1, 1, 0, conf), "a paging group joined as a conference")
        with pytest.raises(DspCommandError, match="invalid argument"):
            check(lib.cb_mix_listen(g, 0, 1, lib.CB_MIX_GAIN_MAX + 1), "a gain past +18 dB")
        with pytest.raises(DspCommandError, match="not permitted in the current state"):
            check(lib.cb_mix_unlisten(g, 0, 1), "an unlisten of a source not heard")
        for src in range(1, EDGES_MAX + 1):
            check(lib.cb_mix_listen(g, 0, src, 0), "listen")
        with pytest.raises(DspCommandError, match="limit reached"):
            check(lib.cb_mix_listen(g, 0, EDGES_MAX + 1, 0), "a fifth edge")
    finally:
        lib.cb_mix_free(g)
