"""The sim card's spans as lines: framed, alarmed, counted, clocked (issue: E1/T1 spans).

Each test drives the card alone in virtual time (cb_sim_exchange, block after block) with its
in-process far end, and where the line is impaired the test-only line model (tests/line) between
them. Expected figures come from the standards and the facts file (DAHDI's alarm timings, G.704's
frame, the Monte-Carlo CRC-4/CRC-6 error rates), never from the code under test.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from drivers.base import CardDescription, SpanConfig, SpanKind
from drivers.sim import SimCard, ffi, lib
from tests.line import LineModel

RED, YELLOW, BLUE, RECOVER = 8, 4, 16, 1          # DAHDI's alarm bits (the issue)
LOS_BIT, LFA_BIT, LMFA_BIT = 1 << 8, 1 << 9, 1 << 10

E1_CRC4 = SpanConfig("e1", "ccs", "hdb3", True, "clear", 1)
T1_ESF = SpanConfig("t1", "esf", "b8zs", False, "clear", 1)
T1_D4 = SpanConfig("t1", "d4", "b8zs", False, "clear", 1)


def second(c: SpanConfig, timing: int = 2) -> SpanConfig:
    return SpanConfig(c.kind, c.framing, c.coding, c.crc4, c.ts16, timing)


@dataclass
class Rig:
    """A card of spans with its far end, stepped a block at a time."""

    configs: tuple[SpanConfig, ...]
    k: int = 10
    card: SimCard = field(init=False)
    events: list[tuple[int, int, int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        kinds: tuple[SpanKind, ...] = tuple(c.kind for c in self.configs)
        self.card = SimCard(CardDescription(spans=kinds, span_configs=self.configs, k=self.k,
                                            law="ulaw" if kinds[0] == "t1" else "alaw"))
        self.n = len(self.card.channels)
        self.per = self.k * 8
        self.idle = 0xFF if kinds[0] == "t1" else 0xD5
        self.tx = ffi.new("uint8_t[]", self.n * self.per)
        ffi.memmove(self.tx, bytes([self.idle]) * (self.n * self.per), self.n * self.per)
        self.rx = ffi.new("uint8_t[]", self.n * self.per)
        self.ev = ffi.new("cb_event_t[]", 1024)
        self.first = [0]
        for c in self.configs[:-1]:
            self.first.append(self.first[-1] + (31 if c.kind == "e1" else 24))

    @property
    def tick(self) -> int:
        return self.card.tick

    def run(self, ms: int, each: Any = None) -> None:
        for _ in range(ms // self.k):
            t0 = self.card.tick
            n = lib.cb_sim_exchange(self.card.sim, t0, self.k, self.tx, self.rx, self.ev, 1024)
            assert n >= 0, n
            for e in self.ev[0:n]:
                self.events.append((int(e.tick), int(e.chan), int(e.type), int(e.value)))
            if each is not None:
                each(self)

    def alarm_events(self, span: int) -> list[tuple[int, int]]:
        return [(t, v) for t, c, ty, v in self.events if ty == lib.CB_EV_ALARM and c == self.first[span]]

    def close(self) -> None:
        self.card.close()


def first_with(events: list[tuple[int, int]], bit: int, after: int = 0) -> int | None:
    return next((t for t, v in events if v & bit and t >= after), None)


def first_without(events: list[tuple[int, int]], bit: int, after: int) -> int | None:
    return next((t for t, v in events if not v & bit and t >= after), None)


@pytest.mark.parametrize("cfg", [E1_CRC4, T1_D4, T1_ESF], ids=["e1", "t1-d4", "t1-esf"])
def test_los_is_red_after_2500_ms_rai_goes_out_until_recover_ends_and_the_other_span_is_untouched(
        cfg: SpanConfig) -> None:
    rig = Rig((cfg, second(cfg)))
    try:
        rig.run(2000)
        assert rig.alarm_events(0) == [] and rig.card.span_status(0).alarm_bits == 0
        before = rig.card.span_status(0).counters
        rai: list[tuple[int, bool]] = []
        far_yellow: list[tuple[int, bool]] = []

        def watch(r: Rig) -> None:
            rai.append((r.tick, r.card.span_status(0).sending_rai))
            far_yellow.append((r.tick, bool(r.card.far_span_status(0).alarm_bits & YELLOW)))

        los_at = rig.tick
        rig.card.span_fault(0, "los")
        rig.run(10_000, watch)
        los_end = rig.tick
        rig.card.span_fault(0, "clear")
        rig.run(7000, watch)

        ev = rig.alarm_events(0)
        red_at = first_with(ev, RED)
        assert red_at is not None and 2500 <= red_at - los_at <= 2600, ev
        assert first_with(ev, BLUE) is None
        # the defects behind it: no signal, no frame; no LMFA (there is no basic frame to keep)
        assert all(v & (LOS_BIT | LFA_BIT) == LOS_BIT | LFA_BIT and not v & LMFA_BIT
                   for t, v in ev if los_at + 100 <= t < los_end), ev
        recover_end = first_without(ev, RECOVER | RED, after=los_end)
        assert recover_end is not None and 5000 <= recover_end - los_end <= 5200, ev
        # RAI goes out from red on, RECOVER included, and stops when it ends.
        sending = [t for t, on in rai if on]
        assert sending and red_at <= sending[0] <= red_at + rig.k
        assert 5000 <= sending[-1] - los_end <= 5200 + rig.k
        assert all(on for t, on in rai if sending[0] <= t <= sending[-1])
        # The far end reads it: yellow after its 500 ms, gone once RAI stops.
        yellow = [t for t, on in far_yellow if on]
        assert yellow and 500 <= yellow[0] - sending[0] <= 600 + rig.k
        assert not far_yellow[-1][1]
        # Severely errored seconds: the seconds the LOS touched, one more at most.
        touched = (los_end - 1) // 1000 - los_at // 1000 + 1
        ses = rig.card.span_status(0).counters.ses - before.ses
        assert touched <= ses <= touched + 1
        # Span 2 saw nothing.
        assert rig.alarm_events(1) == []
        assert rig.card.span_status(1).counters.ses == 0 and rig.card.span_status(1).alarm_bits == 0
    finally:
        rig.close()


@pytest.mark.parametrize("cfg", [E1_CRC4, T1_D4, T1_ESF], ids=["e1", "t1-d4", "t1-esf"])
def test_ais_is_blue_never_red(cfg: SpanConfig) -> None:
    rig = Rig((cfg,))
    try:
        rig.run(1000)
        ais_at = rig.tick
        rig.card.span_fault(0, "ais")
        rig.run(4000)
        ev = rig.alarm_events(0)
        blue_at = first_with(ev, BLUE)
        assert blue_at is not None and 2500 <= blue_at - ais_at <= 2600, ev
        assert first_with(ev, RED) is None
        assert rig.card.span_status(0).sending_rai
    finally:
        rig.close()


def test_rai_received_is_yellow_and_never_makes_us_send_rai() -> None:
    rig = Rig((E1_CRC4,))
    try:
        rig.run(1000)
        at = rig.tick
        rig.card.span_fault(0, "rai")
        rig.run(2000)
        ev = rig.alarm_events(0)
        yellow_at = first_with(ev, YELLOW)
        assert yellow_at is not None and 500 <= yellow_at - at <= 600, ev
        assert not rig.card.span_status(0).sending_rai
        assert first_with(ev, RED | BLUE) is None
    finally:
        rig.close()


def ber_run(cfg: SpanConfig, ber: float, seconds: int) -> tuple[Rig, LineModel, Any, Any]:
    rig = Rig((cfg,))
    model = LineModel(1)
    rig.card.set_line_model(model.hook_address)
    rig.run(1000)                       # aligned, on a second boundary
    before = rig.card.span_status(0).counters
    model.set(0, 0, ber=ber, seed=7)
    model.set(0, 1, ber=0.0)
    rig.run(seconds * 1000)
    model.set(0, 0, ber=0.0)
    return rig, model, before, rig.card.span_status(0).counters


def test_ber_1e3_gives_832_crc4_errors_a_second_all_seconds_errored_the_far_end_echoing_them() -> None:
    rig, _model, before, after = ber_run(E1_CRC4, 1e-3, 60)
    try:
        rig.run(20)                     # the last E-bits come back
        crc = after.crc - before.crc
        assert 832 * 0.95 <= crc / 60 <= 832 * 1.05
        far = rig.card.far_span_status(0).counters
        assert rig.card.span_status(0).counters.crc == far.ebit
        assert after.es - before.es == 60
        assert first_with(rig.alarm_events(0), RED) is None
    finally:
        rig.close()


def test_ber_1e4_gives_184_crc4_errors_a_second_and_no_severely_errored_second() -> None:
    rig, _model, before, after = ber_run(E1_CRC4, 1e-4, 60)
    try:
        assert 184 * 0.95 <= (after.crc - before.crc) / 60 <= 184 * 1.05
        assert after.ses - before.ses == 0
        assert first_with(rig.alarm_events(0), RED) is None
    finally:
        rig.close()


def test_t1_esf_ber_1e4_gives_123_crc6_errors_a_second() -> None:
    rig, _model, before, after = ber_run(T1_ESF, 1e-4, 60)
    try:
        assert 123 * 0.95 <= (after.crc - before.crc) / 60 <= 123 * 1.05
    finally:
        rig.close()


def test_a_far_end_50_ppm_fast_slips_24_frames_a_minute_and_swapping_the_clock_swaps_the_counts() -> None:
    rig = Rig((E1_CRC4, second(E1_CRC4)))
    model = LineModel(2)
    model.set_ppm(1, 50.0)
    rig.card.set_line_model(model.hook_address)
    try:
        rig.card.set_sync_source(0)
        rig.run(60_000)
        a, b = rig.card.span_status(0).counters.slips, rig.card.span_status(1).counters.slips
        assert a == 0 and 23 <= b <= 25        # 50e-6 * 8000 frames/s * 60 s = 24
        rig.card.set_sync_source(1)
        rig.run(60_000)
        a2, b2 = rig.card.span_status(0).counters.slips - a, rig.card.span_status(1).counters.slips - b
        assert 23 <= a2 <= 25 and b2 == 0
        assert first_with(rig.alarm_events(0) + rig.alarm_events(1), RED | BLUE | YELLOW) is None
    finally:
        rig.close()


def test_ami_counts_exactly_the_violations_injected() -> None:
    cfg = SpanConfig("e1", "ccs", "ami", True, "clear", 1)
    rig = Rig((cfg,))
    model = LineModel(1)
    rig.card.set_line_model(model.hook_address)
    try:
        rig.run(100)
        model.set(0, 0, bpv_rate=1e-5, seed=3)
        rig.run(20_000)
        injected = model.injected(0, 0)["bpv"]      # (set restarts the counts)
        model.set(0, 0)
        rig.run(20)
        assert injected > 300                # 2048 bits/ms * 20 s * 1e-5 = 410
        assert rig.card.span_status(0).counters.bpv == injected
    finally:
        rig.close()


@pytest.mark.parametrize("cfg", [E1_CRC4, T1_ESF], ids=["hdb3", "b8zs"])
def test_zero_substitution_codes_count_no_violation_on_an_all_zero_payload_and_the_injected_ones(
        cfg: SpanConfig) -> None:
    rig = Rig((cfg,))
    model = LineModel(1)
    rig.card.set_line_model(model.hook_address)
    try:
        ffi.memmove(rig.tx, bytes(rig.n * rig.per), rig.n * rig.per)     # all zeros toward the far end
        rig.run(10_000)
        assert rig.card.far_span_status(0).counters.bpv == 0
        model.set(0, 1, bpv_rate=1e-4, seed=5)
        rig.run(10_000)
        injected = model.injected(0, 1)["bpv"]
        model.set(0, 1)
        rig.run(20)
        assert injected > 1000
        assert abs(rig.card.far_span_status(0).counters.bpv - injected) <= 0.02 * injected
    finally:
        rig.close()


def test_crc4_on_our_side_only_shows_lmfa_and_traffic_still_flows() -> None:
    rig = Rig((E1_CRC4,))
    try:
        rig.card.far_span_config(0, SpanConfig("e1", "ccs", "hdb3", False, "clear", 1))
        rig.card.far.write(rig.first[0] + 4, bytes(range(256)) * 8)          # TS5 from the far end
        got = bytearray()
        rig.run(1000, lambda r: got.extend(bytes(ffi.buffer(r.rx, r.n * r.per))[4 * r.per:5 * r.per]))
        ev = rig.alarm_events(0)
        assert first_with(ev, LMFA_BIT) is not None
        assert first_with(ev, RED | BLUE | YELLOW) is None
        assert bytes(range(256)) * 2 in bytes(got)
    finally:
        rig.close()


@pytest.mark.parametrize("cfg", [E1_CRC4, SpanConfig("e1", "ccs", "hdb3", True, "dchan", 1), T1_ESF, T1_D4],
                         ids=["e1", "e1-dchan", "t1-esf", "t1-d4"])
def test_timeslot_octets_cross_the_framed_line_bit_exact_both_ways(cfg: SpanConfig) -> None:
    rig = Rig((cfg,))
    try:
        bearers = cfg.bearers()
        rnd = random.Random(11)
        sent = {ts: bytes(rnd.randrange(256) for _ in range(4000)) for ts in bearers}
        for ts, data in sent.items():
            rig.card.far.write(rig.first[0] + ts - 1, data)
            rig.card.far.listen(rig.first[0] + ts - 1)
        ours = {ts: bytes(rnd.randrange(256) for _ in range(rig.per)) for ts in bearers}
        for ts, data in ours.items():
            ffi.memmove(rig.tx + (ts - 1) * rig.per, data, rig.per)
        got: dict[int, bytearray] = {ts: bytearray() for ts in bearers}

        def take(r: Rig) -> None:
            buf = bytes(ffi.buffer(r.rx, r.n * r.per))
            for ts in bearers:
                got[ts].extend(buf[(ts - 1) * r.per:ts * r.per])

        rig.run(600, take)
        for ts in bearers:
            assert sent[ts][200:3200] in bytes(got[ts]), f"timeslot {ts} from the far end"  # after the search
            heard = rig.card.far.read(rig.first[0] + ts - 1)
            assert ours[ts] * 4 in heard, f"timeslot {ts} toward the far end"
        if cfg.ts16 == "dchan":
            assert set(bytes(ffi.buffer(rig.rx, rig.n * rig.per))[15 * rig.per:16 * rig.per]) == {rig.idle}
    finally:
        rig.close()


@pytest.mark.parametrize("k", [5, 7])
@pytest.mark.parametrize("crc4", [False, True], ids=["g704", "crc4"])
def test_ticks_that_alternate_cross_the_line_exactly_whatever_the_block(crc4: bool, k: int) -> None:
    # Each tick's timeslots uniform (the framers answer them from memory) and alternating tick by
    # tick, in blocks of an odd number of ticks: a line buffer reused a block later holds the
    # other tick's line, and must not be taken as unchanged.
    cfg = SpanConfig("e1", "ccs", "hdb3", crc4, "dchan", 1)
    rig = Rig((cfg,), k=k)
    try:
        bearers = cfg.bearers()
        ticks = 3000
        pattern = b"".join((b"\x55" if t % 2 else b"\xd5") * 8 for t in range(ticks + 2))
        for ts in bearers:
            rig.card.far.listen(rig.first[0] + ts - 1)
        got, heard = bytearray(), bytearray()

        def next_block(r: Rig) -> None:
            buf = bytes(ffi.buffer(r.rx, r.n * r.per))
            got.extend(buf[0:r.per])                        # timeslot 1 from the far end
            heard.extend(r.card.far.read(r.first[0]))       # ... and toward it
            block = pattern[8 * r.tick:8 * (r.tick + r.k)]  # the next block, both ways
            for ts in bearers:
                r.card.far.write(r.first[0] + ts - 1, block)
                ffi.memmove(r.tx + (ts - 1) * r.per, block, r.per)

        next_block(rig)
        rig.run(ticks - 2 * k, next_block)
        want = pattern[8 * 400:8 * 2400]
        assert want in bytes(got) or want[8:] in bytes(got), "timeslot 1 from the far end"
        assert want in bytes(heard) or want[8:] in bytes(heard), "timeslot 1 toward the far end"
    finally:
        rig.close()


def test_d_channel_frames_cross_the_span_both_ways_and_arrive_as_frame_events() -> None:
    cfg = SpanConfig("e1", "ccs", "hdb3", True, "dchan", 1)
    rig = Rig((cfg,), k=1)
    try:
        rig.run(50)
        rnd = random.Random(3)
        frames = [bytes(rnd.choice((0x7E, 0xFF, rnd.randrange(256))) for _ in range(rnd.randint(1, 264)))
                  for _ in range(40)]
        ours = [bytes([0x7E] * n) for n in (1, 17, 264)]
        dchan = rig.first[0] + 15
        got: list[bytes] = []
        buf = ffi.new("uint8_t[]", 264)
        card = lib.cb_sim_card(rig.card.sim)

        def take(r: Rig) -> None:
            for _t, c, ty, _v in r.events:
                if ty == lib.CB_EV_FRAME and c == dchan:
                    n = lib.cb_card_hdlc_recv(card, dchan, buf, 264)
                    assert n > 0
                    got.append(bytes(ffi.buffer(buf, n)))
            r.events.clear()

        for f in frames:
            rig.card.far.send_frame(0, f)
            rig.run(40, take)
        for f in ours:
            assert lib.cb_card_hdlc_send(card, dchan, f, len(f)) == lib.CB_OK
        rig.run(200, take)
        assert got == frames
        assert rig.card.far.frames(0) == ours
        st = rig.card.span_status(0)
        assert st.dchan is not None and st.dchan.frames_rx == 40 and st.dchan.frames_tx == 3
    finally:
        rig.close()


def test_abcd_on_each_of_the_30_channels_arrives_within_a_multiframe_both_ways() -> None:
    cfg = SpanConfig("e1", "cas", "hdb3", True, "cas", 1)
    rig = Rig((cfg,), k=1)
    try:
        rig.run(50)
        rig.events.clear()
        chans = [t for t in range(1, 32) if t != 16]
        card = lib.cb_sim_card(rig.card.sim)
        codes = [v for v in range(1, 16) if v != 0b1101]     # 1101 is what a CAS channel sends until set
        for i, ts in enumerate(chans):
            abcd = codes[i % len(codes)]
            at = rig.tick
            cmd = ffi.new("cb_cmd_t *", {"op": lib.CB_CMD_CAS_TX, "chan": rig.first[0] + ts - 1, "a": abcd})
            assert lib.cb_sim_command(rig.card.sim, cmd) == lib.CB_OK
            far_abcd = codes[-1 - i % len(codes)]
            rig.card.far.cas(rig.first[0] + ts - 1, far_abcd)
            seen_far = None
            for _ in range(6):
                rig.run(1)
                if seen_far is None and rig.card.far.cas_received(rig.first[0] + ts - 1) == abcd:
                    seen_far = rig.tick
            # a multiframe (2 ms) to reach its boundary, one to carry it, a block of latency
            assert seen_far is not None and seen_far - at <= 5
            ours = [(t, v) for t, c, ty, v in rig.events if ty == lib.CB_EV_CAS and c == rig.first[0] + ts - 1]
            assert ours and ours[-1][1] == far_abcd and ours[-1][0] - at <= 5
            assert lib.cb_card_abcd_get(card, rig.first[0] + ts - 1) == far_abcd
        zero = ffi.new("cb_cmd_t *", {"op": lib.CB_CMD_CAS_TX, "chan": rig.first[0], "a": 0})
        assert lib.cb_sim_command(rig.card.sim, zero) == lib.CB_ERR_INVALID
    finally:
        rig.close()


def test_random_bits_from_the_far_end_give_red_after_2500_ms_and_nothing_else() -> None:
    rig = Rig((E1_CRC4, second(E1_CRC4)))
    model = LineModel(2)
    rig.card.set_line_model(model.hook_address)
    try:
        rig.run(1000)
        at = rig.tick
        model.set(0, 0, ber=0.5, seed=9)      # every symbol a coin toss: noise, no frame
        rig.run(3000)
        ev = rig.alarm_events(0)
        red_at = first_with(ev, RED)
        assert red_at is not None and 2500 <= red_at - at <= 2600 + 100, ev
        assert first_with(ev, BLUE) is None
        assert rig.alarm_events(1) == []
    finally:
        rig.close()


def test_d_channel_frames_cross_both_tiers_as_records_with_their_octets() -> None:
    """Through the scheduler's rings: a CB_CMD_FRAME's payload goes out on the D-channel, each frame
    the line brings is one CB_EV_FRAME record carrying its octets (T1: the D-channel is TS24)."""
    from appliance.linecard import LineCard

    cfg = SpanConfig("t1", "esf", "b8zs", False, "dchan", 1)
    lc = LineCard("sim", CardDescription(spans=("t1",), span_configs=(cfg,), law="ulaw", k=10))
    try:
        card = lc.card
        assert isinstance(card, SimCard)
        lc.step(50)
        dchan = 23
        rnd = random.Random(8)
        frames = [rnd.randbytes(rnd.randint(1, 264)) for _ in range(12)]
        for f in frames:
            card.far.send_frame(0, f)
        ours = [b"\x00\x01\x03" + bytes(range(40)), bytes([0x7E, 0x7D, 0xFF]) * 88]
        for f in ours:
            lc.sched.send(lib.CB_CMD_FRAME, dchan, payload=f)
        got = []
        for _ in range(100):
            got += [e for e in lc.step(10) if e.type == lib.CB_EV_FRAME]
        assert [e.payload for e in got] == frames
        assert {e.chan for e in got} == {dchan}
        assert card.far.frames(0) == ours
    finally:
        lc.close()


def test_a_running_realtime_card_refuses_to_reframe_a_span() -> None:
    """On the realtime clock the media thread steps the framers: a span is framed before the first
    block, and a later span_config is refused (not raced)."""
    card = SimCard(CardDescription(spans=("e1",), k=1, clock="realtime"))
    try:
        n = len(card.channels)
        tx, rx, ev = ffi.new("uint8_t[]", n * 8), ffi.new("uint8_t[]", n * 8), ffi.new("cb_event_t[]", 16)
        cfg = ffi.new("cb_span_config_t *", {"framing": lib.CB_FRAMING_E1_G704, "coding": lib.CB_CODING_AMI})
        head = lib.cb_sim_card(card.sim)
        assert lib.cb_card_span_config(head, 0, cfg) == lib.CB_OK          # before it runs
        assert lib.cb_sim_exchange(card.sim, card.tick, 1, tx, rx, ev, 16) >= 0
        assert lib.cb_card_span_config(head, 0, cfg) == lib.CB_ERR_STATE
    finally:
        card.close()


@pytest.mark.parametrize("k", [5, 7, 10])
@pytest.mark.parametrize("crc4", [False, True], ids=["g704", "crc4"])
def test_a_span_that_falls_idle_and_wakes_again_carries_each_octet_and_nothing_stale(crc4: bool, k: int) -> None:
    # An idle span is framed from what the framers know (nothing sent, nobody listening): as
    # timeslots wake and fall idle again, each way at its own times, every octet sent crosses
    # once and in order, and the idle stretches carry the idle octet and nothing left over.
    cfg = SpanConfig("e1", "ccs", "hdb3", crc4, "clear", 1)
    rig = Rig((cfg,), k=k)
    try:
        rnd = random.Random(40 + k)
        far_ts, our_ts = 4, 9
        far_busy = ((300, 800), (1100, 1500))
        our_busy = ((500, 1000), (1300, 1700))
        listening = ((480, 1020), (1280, 1720))
        non_idle = [b for b in range(256) if b != rig.idle]
        wrote, sent = bytearray(), bytearray()
        got, heard = bytearray(), bytearray()

        def within(spans: tuple[tuple[int, int], ...], tick: int) -> bool:
            return any(a <= tick < b for a, b in spans)

        def next_block(r: Rig) -> None:
            buf = bytes(ffi.buffer(r.rx, r.n * r.per))
            if r.tick > 200:                                # after the start-up search
                got.extend(buf[(far_ts - 1) * r.per:far_ts * r.per])
            heard.extend(r.card.far.read(r.first[0] + our_ts - 1))
            if within(far_busy, r.tick):
                block = bytes(rnd.choice(non_idle) for _ in range(r.per))
                r.card.far.write(r.first[0] + far_ts - 1, block)
                wrote.extend(block)
            ours = bytes(rnd.choice(non_idle) for _ in range(r.per)) if within(our_busy, r.tick) \
                else bytes([r.idle]) * r.per
            ffi.memmove(r.tx + (our_ts - 1) * r.per, ours, r.per)
            if ours[0] != r.idle:
                sent.extend(ours)
            r.card.far.listen(r.first[0] + our_ts - 1, within(listening, r.tick))

        next_block(rig)
        rig.run(2000, next_block)
        assert bytes(b for b in got if b != rig.idle) == bytes(wrote), "from the far end"
        assert bytes(b for b in heard if b != rig.idle) == bytes(sent), "toward the far end"
        assert len(wrote) > 5000 and len(sent) > 5000
    finally:
        rig.close()


@pytest.mark.parametrize("k", [5, 10])
def test_what_the_media_tier_sends_on_a_span_crosses_it_as_the_chain_made_it_idle_or_not(k: int) -> None:
    """Through the scheduler, which tells the card which channels send the idle octet all block: a
    cadenced tone (idle in its pauses), a play that ends, a silent timeslot and one sending
    another timeslot's octets reach the far end as the chain alone makes them (a scheduler
    without a card, given the same commands at the same tick)."""
    from array import array

    from appliance.linecard import LineCard
    from dsp.scheduler import PlayBuffer, Scheduler

    cfg = SpanConfig("e1", "ccs", "hdb3", True, "clear", 1)
    lc = LineCard("sim", CardDescription(spans=("e1",), span_configs=(cfg,), law="alaw", k=k), zone="cn")
    alone = Scheduler(31, "alaw")
    try:
        card = lc.card
        assert isinstance(card, SimCard)
        watched = (0, 1, 2, 5)                          # timeslots 1, 2, 3, 6
        for c in watched:
            card.far.listen(c)
        lc.step(200)
        idle_rx = bytes([0xD5]) * (31 * k * 8)
        ref_out = bytearray()
        for b in range(200 // k):
            ref_out += alone.process(b * k, k, idle_rx)
        rnd = random.Random(17)
        samples = array("h", (rnd.choice((-1, 1)) * rnd.randrange(300, 20000) for _ in range(2400)))
        buf = PlayBuffer(samples, "alaw")
        for s in (lc.sched, alone):
            s.tone(0, "cn", "busy")                    # 350 ms on, 350 ms off
            s.play(1, buf, 2400 * 3 + 13)              # about 0.9 s, then idle
            s.play(5, buf, 2400 * 5)
        heard: dict[int, bytearray] = {c: bytearray() for c in watched}
        for b in range(200 // k, 3000 // k):
            lc.step(k)
            ref_out += alone.process(b * k, k, idle_rx)
            if b * k == 1500:
                for s in (lc.sched, alone):
                    s.stop_play(5)
                    s.tone(5, "cn", "busy")
            for c in watched:
                heard[c].extend(card.far.read(c))
        per = k * 8
        for c in watched:
            want = b"".join(ref_out[o + c * per:o + (c + 1) * per] for o in range(0, len(ref_out), 31 * per))
            want = want[200 * 8:]                       # from the commands on
            got = bytes(heard[c])
            start = next(i for i, v in enumerate(got) if v != 0xD5) if c != 2 else 0
            first = next(i for i, v in enumerate(want) if v != 0xD5) if c != 2 else 0
            n = min(len(got) - start, len(want) - first) - 8 * 50
            assert n > 8 * 2000
            assert got[start:start + n] == want[first:first + n], f"timeslot {c + 1}"
            if c == 2:
                assert set(got) == {0xD5}
        lo = b"".join(ref_out[o:o + per] for o in range(0, len(ref_out), 31 * per))
        assert lo.count(0xD5) > 8 * 1000 and len(set(lo)) > 10  # the tone sounds and pauses
    finally:
        lc.close()


def test_an_idle_clear_span_reframed_with_a_d_channel_carries_its_frames_at_once() -> None:
    # All its timeslots idle for a while (the far end frames such blocks from what it knows), then
    # TS16 becomes the D-channel at both ends: the far end's frames cross from the next block on.
    from drivers.sim import _config

    clear = SpanConfig("e1", "ccs", "hdb3", True, "clear", 1)
    dchan_cfg = SpanConfig("e1", "ccs", "hdb3", True, "dchan", 1)
    rig = Rig((clear,), k=5)
    try:
        rig.run(300)
        card = lib.cb_sim_card(rig.card.sim)
        assert lib.cb_card_span_config(card, 0, _config(dchan_cfg)) == lib.CB_OK
        rig.card.far_span_config(0, dchan_cfg)
        rig.run(100)
        frames = [bytes([k]) * (10 + k) for k in range(5)]
        for f in frames:
            rig.card.far.send_frame(0, f)
        rig.events.clear()
        rig.run(200)
        dchan = rig.first[0] + 15
        got, buf = [], ffi.new("uint8_t[]", 264)
        for _t, c, ty, _v in rig.events:
            if ty == lib.CB_EV_FRAME and c == dchan:
                n = lib.cb_card_hdlc_recv(card, dchan, buf, 264)
                got.append(bytes(ffi.buffer(buf, n)))
        assert got == frames
    finally:
        rig.close()
