"""The sim card's E1/T1 framer chip, two framers back to back (ours -> line -> other).

What goes on the line is checked by a reference frame reader written here from G.704's
text (FAS 0011011, NFAS bit 2, the CRC-4 multiframe pattern 001011, CRC-4 by bitwise long
division, T1 Ft/Fs, FPS, CRC-6), independent of the C. Figures under bit errors are the
Monte-Carlo ones of telephony-facts.md; alarm timings are DAHDI's. Virtual time: one rx
call is 1 ms; long runs go through the C helper cb_framer_run_pair.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from drivers._card import ffi, lib

E1, T1 = 0, 1
IDLE = 0xD5
RED, YELLOW, BLUE, RECOVER = lib.CB_ALARM_RED, lib.CB_ALARM_YELLOW, lib.CB_ALARM_BLUE, lib.CB_ALARM_RECOVER
STATE = RED | YELLOW | BLUE | RECOVER
SENDING_RAI = 1 << 31
U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]


def framer(framing: int, ts16: int = lib.CB_TS16_CLEAR) -> Any:
    kind = E1 if framing in (lib.CB_FRAMING_E1_G704, lib.CB_FRAMING_E1_CRC4) else T1
    cfg = ffi.new("cb_span_config_t *", {"framing": framing, "ts16": ts16})
    f = lib.cb_framer_new(kind, cfg, IDLE)
    assert f != ffi.NULL
    return ffi.gc(f, lib.cb_framer_free)


class Counters:
    """A copy of a framer's counters."""

    def __init__(self, c: Any) -> None:
        self.bpv, self.crc, self.ebit, self.fas = int(c.bpv), int(c.crc), int(c.ebit), int(c.fas)
        self.slips, self.es, self.ses = int(c.slips), int(c.es), int(c.ses)


def counters(f: Any) -> Counters:
    st = ffi.new("cb_span_status_t *")
    lib.cb_framer_status(f, st)
    return Counters(st.counters)


def ptr(a: npt.NDArray[Any] | None, ctype: str) -> Any:
    return ffi.NULL if a is None else ffi.cast(ctype, ffi.from_buffer(a))


class Pair:
    """Two framers a and b wired back to back; run() steps both for a number of ticks."""

    def __init__(self, fa: int, fb: int | None = None, ts16: int = lib.CB_TS16_CLEAR) -> None:
        self.a = framer(fa, ts16)
        self.b = framer(fa if fb is None else fb, ts16)
        self.nts = lib.cb_framer_timeslots(self.a)
        self.octets = lib.cb_framer_octets(self.a)

    def run(self, ticks: int, *, tx_a: U8 | None = None, tx_b: U8 | None = None, xor_ab: U8 | None = None,
            cut_ab: U8 | None = None, shift_ab: npt.NDArray[np.int8] | None = None,
            rx: bool = False, block: int = 0) -> tuple[U32, U32, U8 | None, U8 | None]:
        al_a = np.zeros(ticks, np.uint32)
        al_b = np.zeros(ticks, np.uint32)
        rx_a = np.zeros((ticks, self.nts, 8), np.uint8) if rx else None
        rx_b = np.zeros((ticks, self.nts, 8), np.uint8) if rx else None
        rc = lib.cb_framer_run_pair(self.a, self.b, ticks, block, ptr(tx_a, "uint8_t *"), ptr(tx_b, "uint8_t *"),
                                    ptr(rx_a, "uint8_t *"), ptr(rx_b, "uint8_t *"),
                                    ptr(xor_ab, "uint8_t *"), ffi.NULL, ptr(cut_ab, "uint8_t *"), ffi.NULL,
                                    ptr(shift_ab, "int8_t *"), ptr(al_a, "uint32_t *"), ptr(al_b, "uint32_t *"))
        assert rc == lib.CB_OK
        return al_a, al_b, rx_a, rx_b


def bit_errors(rng: np.random.Generator, ticks: int, octets: int, ber: float) -> U8:
    """An XOR mask of independent bit errors at `ber` (ticks x octets)."""
    total = ticks * octets * 8
    pos = rng.integers(0, total, rng.binomial(total, ber))
    mask = np.zeros(total // 8, np.uint8)
    np.bitwise_xor.at(mask, pos >> 3, (0x80 >> (pos & 7)).astype(np.uint8))
    return mask.reshape(ticks, octets)


def first(mask: npt.NDArray[np.bool_]) -> int:
    idx = np.flatnonzero(mask)
    return int(idx[0]) if idx.size else -1


def stream(frames_of: U8) -> U8:
    """(ticks, nts, 8) timeslot octets -> (nts, ticks * 8) per-timeslot octet streams."""
    return frames_of.transpose(1, 0, 2).reshape(frames_of.shape[1], -1)


def delivered_exactly(sent: U8, got: U8, from_tick: int) -> bool:
    """The octet streams after from_tick equal the sent ones at some fixed delay (frames)."""
    x, y = stream(sent), stream(got)
    start = from_tick * 8
    n = x.shape[1] - start - 64
    return any(np.array_equal(x[:, start - d:start - d + n], y[:, start:start + n]) for d in range(0, 40))


# ---- a reference reader of the line, from G.704 ------------------------------------------------

def bits_of(line: bytes) -> list[int]:
    return [(o >> (7 - i)) & 1 for o in line for i in range(8)]


def crc_ref(bits: list[int], poly: list[int]) -> list[int]:
    """Remainder of bits(x) * x^w divided by poly (coefficients, highest first), by long division."""
    w = len(poly) - 1
    reg = list(bits) + [0] * w
    for i in range(len(bits)):
        if reg[i]:
            for k in range(w + 1):
                reg[i + k] ^= poly[k]
    return reg[-w:]


CRC4_POLY = [1, 0, 0, 1, 1]          # x^4 + x + 1
CRC6_POLY = [1, 0, 0, 0, 0, 1, 1]    # x^6 + x + 1


def test_crc_reference_on_a_known_vector() -> None:
    # x^4 + x + 1 on the message 1 (x^0): x^4 mod g = x + 1 -> 0011; all-zero message: 0000
    assert crc_ref([1], CRC4_POLY) == [0, 0, 1, 1]
    assert crc_ref([0] * 16, CRC4_POLY) == [0, 0, 0, 0]
    assert crc_ref([1], CRC6_POLY) == [0, 0, 0, 0, 1, 1]


def tx_capture(f: Any, ticks: int, ts: U8) -> bytes:
    n = lib.cb_framer_octets(f)
    line = ffi.new("uint8_t[]", n)
    out = b""
    for t in range(ticks):
        lib.cb_framer_tx(f, ffi.from_buffer(ts[t]), 8, line)
        out += bytes(ffi.buffer(line, n))
    return out


@pytest.mark.parametrize("crc4", [True, False])
def test_e1_transmit_follows_g704(crc4: bool) -> None:
    f = framer(lib.CB_FRAMING_E1_CRC4 if crc4 else lib.CB_FRAMING_E1_G704)
    rng = np.random.default_rng(7)
    ticks = 8
    ts = rng.integers(0, 256, (ticks, 31, 8), dtype=np.uint8)
    ts[0] = 0x55   # a known sub-multiframe
    line = tx_capture(f, ticks, ts)
    frames = [line[i * 32:(i + 1) * 32] for i in range(len(line) // 32)]
    fas = [i for i, fr in enumerate(frames) if fr[0] & 0x7F == 0b0011011]
    assert fas == list(range(0, len(frames), 2))        # FAS every other frame
    for i in range(1, len(frames), 2):
        ts0 = frames[i][0]
        assert ts0 & 0x40                               # NFAS bit 2 = 1
        assert ts0 & 0x20 == 0                          # A = 0: no alarm
        assert ts0 & 0x1F == 0x1F                       # Sa4..Sa8 = 1
    for i, fr in enumerate(frames):                     # the timeslots pass untouched
        assert bytes(fr[1:]) == bytes(ts[i // 8, :, i % 8])
    si = [fr[0] >> 7 for fr in frames]
    if not crc4:
        assert set(si) == {1}
        return
    # the multiframe: NFAS Si of frames 1, 3, .., 11 = 001011, E bits (13, 15) = 1 (no errors)
    mf0 = next(m for m in range(16) if [si[m + k] for k in range(1, 12, 2)] == [0, 0, 1, 0, 1, 1])
    assert mf0 % 2 == 0
    for m in range(mf0, len(frames) - 15, 16):
        assert [si[m + k] for k in range(1, 16, 2)] == [0, 0, 1, 0, 1, 1, 1, 1]
    # C1..C4 of each SMF = CRC-4 of the previous SMF, its C bits taken as 0
    checked = 0
    for s in range(mf0 + 8, len(frames) - 7, 8):
        prev = b"".join(frames[s - 8:s])
        bits = bits_of(prev)
        for k in range(0, 8, 2):
            bits[k * 256] = 0
        assert [si[s + k] for k in range(0, 8, 2)] == crc_ref(bits, CRC4_POLY)
        checked += 1
    assert checked >= 6


@pytest.mark.parametrize("esf", [False, True])
def test_t1_transmit_follows_g704(esf: bool) -> None:
    f = framer(lib.CB_FRAMING_T1_ESF if esf else lib.CB_FRAMING_T1_D4)
    rng = np.random.default_rng(3)
    ticks = 12
    ts = rng.integers(0, 256, (ticks, 24, 8), dtype=np.uint8)
    bits = bits_of(tx_capture(f, ticks, ts))
    nfr = len(bits) // 193
    fbits = [bits[i * 193] for i in range(nfr)]
    for i in range(nfr):                                # payload: 24 octets after the F bit
        pay = bits[i * 193 + 1:(i + 1) * 193]
        octs = [int("".join(map(str, pay[k * 8:k * 8 + 8])), 2) for k in range(24)]
        assert octs == list(ts[i // 8, :, i % 8])
    if not esf:
        pattern = [1, 0, 0, 0, 1, 1, 0, 1, 1, 1, 0, 0]  # Ft 101010 in odd frames, Fs 001110 in even
        ph = next(p for p in range(12) if all(fbits[i] == pattern[(i + p) % 12] for i in range(nfr)))
        assert ph is not None
        return
    # FPS 001011 in frames 4, 8, .., 24; FDL (odd frames) idle all ones; CRC-6 in frames 2, 6, .., 22
    s0 = next(s for s in range(24) if [fbits[s + 3 + 4 * k] for k in range(6)] == [0, 0, 1, 0, 1, 1])
    for s in range(s0, nfr - 23, 24):
        assert [fbits[s + 3 + 4 * k] for k in range(6)] == [0, 0, 1, 0, 1, 1]
        assert [fbits[s + 2 * k] for k in range(12)] == [1] * 12
    checked = 0
    for s in range(s0 + 24, nfr - 23, 24):
        prev = bits[(s - 24) * 193:s * 193]
        for k in range(24):
            prev[k * 193] = 1
        assert [fbits[s + 1 + 4 * k] for k in range(6)] == crc_ref(prev, CRC6_POLY)
        checked += 1
    assert checked >= 2


# ---- receive: alignment -----------------------------------------------------------------------

@pytest.mark.parametrize("framing", [lib.CB_FRAMING_E1_G704, lib.CB_FRAMING_E1_CRC4,
                                     lib.CB_FRAMING_T1_D4, lib.CB_FRAMING_T1_ESF])
def test_traffic_flows_bit_exact_back_to_back(framing: int) -> None:
    p = Pair(framing)
    rng = np.random.default_rng(11)
    ticks = 300
    tx = rng.integers(0, 256, (ticks, p.nts, 8), dtype=np.uint8)
    _, al_b, _, rx_b = p.run(ticks, tx_a=tx, rx=True)
    assert rx_b is not None
    assert delivered_exactly(tx, rx_b, 100)
    assert not (al_b[50:] & STATE).any()
    c = counters(p.b)
    assert (c.fas, c.crc, c.ebit, c.slips, c.es, c.ses) == (0, 0, 0, 0, 0, 0)
    if framing == lib.CB_FRAMING_E1_CRC4:
        assert lib.cb_framer_aligned(p.b) == lib.CB_FRAMER_FRAME | lib.CB_FRAMER_MF


@pytest.mark.parametrize("shift", [1, 3, 7])
def test_a_shifted_stream_realigns_within_10_ms_with_3_fas_errors(shift: int) -> None:
    p = Pair(lib.CB_FRAMING_E1_CRC4)
    rng = np.random.default_rng(shift)
    ticks = 400
    tx = rng.integers(0, 256, (ticks, p.nts, 8), dtype=np.uint8)
    sh = np.zeros(ticks, np.int8)
    sh[200] = shift
    fas0 = None
    p.run(100, tx_a=tx[:100])
    fas0 = counters(p.b).fas
    _, al_b, _, rx_b = p.run(ticks, tx_a=tx, shift_ab=sh, rx=True)
    assert rx_b is not None
    assert counters(p.b).fas - fas0 == 3
    assert not al_b.any()                    # no alarm bit at all, RAI not sent
    assert delivered_exactly(tx, rx_b, 210)  # realigned, bit-exact, within 10 ms


@pytest.mark.parametrize("framing", [lib.CB_FRAMING_E1_G704, lib.CB_FRAMING_E1_CRC4])
def test_a_stream_shifted_by_whole_octets_realigns_bit_exact(framing: int) -> None:
    """Shifts of 3 + 5 and then 4 + 4 bits: the frames then start part-way through a tick's line
    (an octet boundary, not a frame's), so each tick's frames come from two lines."""
    p = Pair(framing)
    rng = np.random.default_rng(8)
    ticks = 600
    tx = rng.integers(0, 256, (ticks, p.nts, 8), dtype=np.uint8)
    sh = np.zeros(ticks, np.int8)
    sh[[150, 200, 300, 350]] = [3, 5, 4, 4]
    p.run(100, tx_a=tx[:100])
    fas0 = counters(p.b).fas
    _, al_b, _, rx_b = p.run(ticks, tx_a=tx, shift_ab=sh, rx=True)
    assert rx_b is not None
    assert counters(p.b).fas - fas0 == 4 * 3  # each shift: 3 errored FAS words, then realigned
    assert not al_b.any()
    assert delivered_exactly(tx, rx_b, 360)   # 16 bits late: one frame a tick across two lines
    if framing == lib.CB_FRAMING_E1_CRC4:
        assert lib.cb_framer_aligned(p.b) == lib.CB_FRAMER_FRAME | lib.CB_FRAMER_MF


def test_crc4_on_one_side_only_shows_lmfa_and_traffic_flows() -> None:
    p = Pair(lib.CB_FRAMING_E1_CRC4, lib.CB_FRAMING_E1_G704)
    rng = np.random.default_rng(5)
    ticks = 1000
    tx_a = rng.integers(0, 256, (ticks, 31, 8), dtype=np.uint8)
    tx_b = rng.integers(0, 256, (ticks, 31, 8), dtype=np.uint8)
    al_a, al_b, rx_a, rx_b = p.run(ticks, tx_a=tx_a, tx_b=tx_b, rx=True)
    assert rx_a is not None and rx_b is not None
    assert al_a[-1] == lib.CB_ALARM_LMFA
    assert 400 <= first((al_a & lib.CB_ALARM_LMFA) != 0) <= 500
    assert not al_b.any()
    assert delivered_exactly(tx_b, rx_a, 500)
    assert delivered_exactly(tx_a, rx_b, 500)


def test_random_bits_give_red_after_2500_ms() -> None:
    p = Pair(lib.CB_FRAMING_E1_CRC4)
    p.run(200)
    rng = np.random.default_rng(9)
    junk = rng.integers(0, 256, (4000, p.octets), dtype=np.uint8)
    _, al_b, _, _ = p.run(4000, xor_ab=junk)
    assert 2500 <= first((al_b & RED) != 0) <= 2600
    assert not (al_b & (BLUE | YELLOW)).any()


# ---- alarms ------------------------------------------------------------------------------------

ALL_FRAMINGS = [lib.CB_FRAMING_E1_CRC4, lib.CB_FRAMING_T1_D4, lib.CB_FRAMING_T1_ESF]


@pytest.mark.parametrize("framing", ALL_FRAMINGS)
def test_los_gives_red_rai_and_recover(framing: int) -> None:
    p = Pair(framing)
    p.run(500)
    cut = np.zeros(20000, np.uint8)
    cut[0:10000] = 1
    es0 = counters(p.b).ses
    al_a, al_b, _, _ = p.run(20000, cut_ab=cut)
    red = (al_b & RED) != 0
    assert 2500 <= first(red) <= 2600
    assert not red[10200:].any()
    rai = (al_b & SENDING_RAI) != 0
    assert first(rai) == first(red)
    end = first(~rai[first(rai):]) + first(rai)
    assert 10000 + 5000 <= end <= 10000 + 5200        # RAI sent until RECOVER ends
    assert rai[first(rai):end].all()
    rec = (al_b & RECOVER) != 0
    assert first(rec) > 10000 and not rec[end:].any()
    # the far end reads our RAI: yellow after 500 ms, and it does not send RAI itself
    assert 500 <= first((al_a & YELLOW) != 0) - first(rai) <= 600 + 10
    assert not (al_a & (SENDING_RAI | RED | BLUE)).any()
    assert not (al_b & BLUE).any()
    ses = counters(p.b).ses - es0
    assert 10 <= ses <= 11


@pytest.mark.parametrize("framing", ALL_FRAMINGS)
def test_ais_gives_blue_never_red(framing: int) -> None:
    p = Pair(framing)
    p.run(500)
    lib.cb_framer_force(p.a, lib.CB_FRAMER_SEND_AIS)
    _, al_b, _, _ = p.run(4000)
    lib.cb_framer_force(p.a, 0)
    _, al_b2, _, _ = p.run(6000)
    assert 2500 <= first((al_b & BLUE) != 0) <= 2600
    assert not (al_b & RED).any() and not (al_b2 & RED).any()
    assert (al_b2[0] & BLUE) and not (al_b2[-1] & (BLUE | RECOVER))
    assert al_b[-1] & SENDING_RAI


@pytest.mark.parametrize("framing", ALL_FRAMINGS)
def test_rai_received_gives_yellow_and_we_do_not_send_rai(framing: int) -> None:
    p = Pair(framing)
    p.run(500)
    lib.cb_framer_force(p.a, lib.CB_FRAMER_SEND_RAI)
    al_a, al_b, _, _ = p.run(2000)
    assert 500 <= first((al_b & YELLOW) != 0) <= 600
    assert not (al_b & (SENDING_RAI | RED | BLUE | RECOVER)).any()
    assert (al_a & SENDING_RAI).all()
    lib.cb_framer_force(p.a, 0)
    _, al_b, _, _ = p.run(500)
    assert not (al_b[-1] & YELLOW)


# ---- counters under bit errors -----------------------------------------------------------------

@pytest.mark.parametrize(("ber", "per_s", "seconds"), [(1e-3, 832, 60), (1e-4, 184, 60)])
def test_e1_crc4_errors_under_ber(ber: float, per_s: int, seconds: int) -> None:
    p = Pair(lib.CB_FRAMING_E1_CRC4)
    p.run(1000)
    rng = np.random.default_rng(2024)
    ticks = seconds * 1000
    _, al_b, _, _ = p.run(ticks, xor_ab=bit_errors(rng, ticks, p.octets, ber))
    p.run(20)   # the last E-bits home
    c = counters(p.b)
    assert abs(c.crc / seconds - per_s) <= 0.05 * per_s
    assert counters(p.a).ebit == c.crc
    assert not (al_b & RED).any()
    if ber == 1e-3:
        assert c.es == seconds
    else:
        assert c.ses == 0


def test_t1_esf_crc6_errors_under_ber() -> None:
    p = Pair(lib.CB_FRAMING_T1_ESF)
    p.run(1000)
    rng = np.random.default_rng(77)
    ticks = 60000
    _, al_b, _, _ = p.run(ticks, xor_ab=bit_errors(rng, ticks, p.octets, 1e-4))
    c = counters(p.b)
    assert abs(c.crc / 60 - 123) <= 0.05 * 123
    assert not (al_b & RED).any()
    assert c.ses == 0


def test_no_counting_during_the_start_up_search() -> None:
    p = Pair(lib.CB_FRAMING_E1_CRC4)
    cut = np.ones(3000, np.uint8)
    p.run(3000, cut_ab=cut)
    c = counters(p.b)
    assert (c.crc, c.fas, c.es, c.ses) == (0, 0, 0, 0)
    assert lib.cb_framer_alarms(p.b) & RED


# ---- slips -------------------------------------------------------------------------------------

@pytest.mark.parametrize("framing", [lib.CB_FRAMING_E1_CRC4, lib.CB_FRAMING_T1_ESF])
def test_50_ppm_gives_24_slips_a_minute(framing: int) -> None:
    p = Pair(framing)
    p.run(200)
    lib.cb_framer_set_offset_ppb(p.b, 50_000)
    _, al_b, _, _ = p.run(60000)
    assert abs(counters(p.b).slips - 24) <= 1
    assert counters(p.a).slips == 0
    c = counters(p.b)
    assert (c.crc, c.fas) == (0, 0)      # framing and CRC untouched
    assert not (al_b & STATE).any()


def test_a_slip_drops_or_repeats_one_whole_frame() -> None:
    p = Pair(lib.CB_FRAMING_E1_G704)
    ticks = 6000
    seq = (np.arange(ticks * 8) & 0xFF).astype(np.uint8)
    tx = np.broadcast_to(seq.reshape(ticks, 1, 8), (ticks, 31, 8)).copy()
    lib.cb_framer_set_offset_ppb(p.b, -100_000)    # far 100 ppm slower: a slip every 1.25 s
    _, _, _, rx_b = p.run(ticks, tx_a=tx, rx=True)
    assert rx_b is not None
    got = stream(rx_b)[5, 100:].astype(int)
    steps = np.diff(got) % 256
    assert set(steps.tolist()) <= {0, 1, 2}               # a frame repeated (0) or dropped (2)
    assert (steps != 1).sum() == counters(p.b).slips == 4


# ---- CAS ---------------------------------------------------------------------------------------

def test_cas_abcd_on_all_30_channels_arrives_within_a_multiframe() -> None:
    p = Pair(lib.CB_FRAMING_E1_CRC4, ts16=lib.CB_TS16_CAS)
    p.run(100)
    assert lib.cb_framer_aligned(p.b) & lib.CB_FRAMER_CAS_MF
    lib.cb_framer_cas_changed(p.a)
    lib.cb_framer_cas_changed(p.b)
    rng = np.random.default_rng(1)
    bearers = [*range(1, 16), *range(17, 32)]
    for tx, rx in ((p.a, p.b), (p.b, p.a)):
        want = {t: int(v) for t, v in zip(bearers, rng.integers(1, 16, 30), strict=True)}
        for t, v in want.items():
            assert lib.cb_framer_cas_set(tx, t, v) == lib.CB_OK
        # one multiframe (2 ms) on the line, after up to one to start and the line's tick
        p.run(4)
        assert {t: lib.cb_framer_cas_get(rx, t) for t in bearers} == want
        changed = lib.cb_framer_cas_changed(rx)
        assert changed == sum(1 << c for c, t in enumerate(bearers, 1) if want[t] != lib.CB_FRAMER_CAS_IDLE)
    assert lib.cb_framer_cas_set(p.a, 1, 0) == lib.CB_ERR_INVALID
    assert lib.cb_framer_cas_set(p.a, 16, 5) == lib.CB_ERR_INVALID
    assert lib.cb_framer_cas_get(p.a, 0) == lib.CB_ERR_INVALID


def test_cas_multiframe_on_the_line() -> None:
    f = framer(lib.CB_FRAMING_E1_G704, lib.CB_TS16_CAS)
    assert lib.cb_framer_cas_set(f, 3, 0b1001) == lib.CB_OK
    assert lib.cb_framer_cas_set(f, 19, 0b0110) == lib.CB_OK
    line = tx_capture(f, 4, np.zeros((4, 31, 8), np.uint8))
    ts16 = [line[i * 32 + 16] for i in range(len(line) // 32)]
    m0 = ts16.index(next(o for o in ts16 if o >> 4 == 0))
    assert ts16[m0] & 0x0B == 0x0B                      # 0000 x Y x x, x = 1
    assert ts16[m0 + 3] == 0b1001_0110                  # frame 3: TS3 then TS19
    assert ts16[m0 + 1] == 0xDD                         # idle 1101 on both


def test_bad_configuration_is_refused() -> None:
    cfg = ffi.new("cb_span_config_t *", {"framing": lib.CB_FRAMING_T1_ESF, "ts16": 0})
    assert lib.cb_framer_new(E1, cfg, IDLE) == ffi.NULL
    cfg.ts16 = lib.CB_TS16_CAS
    assert lib.cb_framer_new(T1, cfg, IDLE) == ffi.NULL
    f = framer(lib.CB_FRAMING_E1_CRC4)
    assert lib.cb_framer_config(f, cfg) == lib.CB_ERR_INVALID
    assert lib.cb_framer_cas_set(f, 1, 5) == lib.CB_ERR_STATE


# ---- the repeat shortcut: the same as the full path ------------------------------------------

def idle_span_blocks(rng: np.random.Generator, ticks: int, nts: int, busy: list[tuple[int, int]]) -> U8:
    """An idle span's timeslots (the idle octet, HDLC flags on TS16) with bursts of random traffic
    (and a changing flag octet, as a frame would) in the `busy` tick ranges."""
    tx = np.full((ticks, nts, 8), IDLE, np.uint8)
    tx[:, 15, :] = 0x7E
    for a, b in busy:
        tx[a:b] = rng.integers(0, 256, (b - a, nts, 8), dtype=np.uint8)
    return tx


@pytest.mark.parametrize("block", [0, 10, 7], ids=["one-line", "blocks-of-10", "blocks-of-7"])
@pytest.mark.parametrize("framing", [lib.CB_FRAMING_E1_CRC4, lib.CB_FRAMING_E1_G704])
def test_the_repeat_shortcut_changes_nothing(framing: int, block: int) -> None:
    """Two pairs fed the same: one with the shortcut (the default), one without. Idle stretches
    (where it answers from memory) alternate with traffic, bit errors (CRC errors and E-bits
    sent back), octet and bit shifts (reframing), a cut (red, RAI, recover), forced RAI and AIS,
    and a clock offset (slips): every tick's timeslots and alarms and the counters agree. With
    blocks, the shortcut's pair reuses line buffers as the sim card does and is told which
    lines stayed unchanged (an odd block puts a line's last use in the other half: the CRC-4
    multiframe's, and the transmitter's memos alternate tick by tick without CRC-4 too)."""
    fast, full = Pair(framing, ts16=lib.CB_TS16_DCHAN), Pair(framing, ts16=lib.CB_TS16_DCHAN)
    for f in (full.a, full.b):
        lib.cb_framer_set_repeat(f, 0)
    rng = np.random.default_rng(2026)
    ticks = 14000
    tx_a = idle_span_blocks(rng, ticks, fast.nts, [(300, 340), (2000, 2003), (9000, 9100)])
    tx_b = idle_span_blocks(rng, ticks, fast.nts, [(700, 760), (5000, 5001)])
    bearers = [t for t in range(fast.nts) if t != 15]
    tx_a[12000:13500:2, bearers] = 0x55         # uniform ticks that alternate: the halves' memos differ
    tx_b[12000:13500:3, bearers] = 0x55         # ... and a pattern of three ticks
    xor_ab = np.zeros((ticks, fast.octets), np.uint8)
    xor_ab[1000:1400] = bit_errors(rng, 400, fast.octets, 1e-4)
    xor_ab[1500, 0] = 0xFF                      # one errored FAS word
    xor_ab[rng.choice(np.arange(1600, 1900), 30, replace=False), 0] = 0x80   # C bits alone, amid idle ticks
    xor_ab[10000:11800, 0] = 0x80 * (rng.random(1800) < 0.95)     # false alignment (>= 915 of 1000), reframe
    xor_ab[6000:6003, ::32] = 0x7F              # three in a row: reframe
    cut_ab = np.zeros(ticks, np.uint8)
    cut_ab[3000:5800] = 1                       # red, then RECOVER for 5 s
    shift_ab = np.zeros(ticks, np.int8)
    shift_ab[2500] = 4
    shift_ab[2600] = 4                          # a whole octet: frames across two lines
    shift_ab[7000] = 3                          # off an octet boundary
    results = []
    for p in (fast, full):
        out = []
        for a, b, force in ((0, 8000, 0), (8000, 8500, lib.CB_FRAMER_SEND_RAI), (8500, 8800, lib.CB_FRAMER_SEND_AIS),
                            (8800, ticks, 0)):
            lib.cb_framer_force(p.a, force)
            out.append(p.run(b - a, tx_a=tx_a[a:b], tx_b=tx_b[a:b], xor_ab=xor_ab[a:b], cut_ab=cut_ab[a:b],
                             shift_ab=shift_ab[a:b], rx=True, block=block if p is fast else 0))
        lib.cb_framer_set_offset_ppb(p.b, 50_000)    # 50 ppm: a slip every 2.5 s
        out.append(p.run(6000, tx_a=tx_a[:6000], rx=True, block=block if p is fast else 0))
        results.append((out, vars(counters(p.a)), vars(counters(p.b))))
    (out_fast, ca_fast, cb_fast), (out_full, ca_full, cb_full) = results
    for got, want in zip(out_fast, out_full, strict=True):
        for x, y in zip(got, want, strict=True):
            assert x is not None and y is not None
            np.testing.assert_array_equal(x, y)
    assert (ca_fast, cb_fast) == (ca_full, cb_full)
    assert cb_full["fas"] > 0 and cb_full["slips"] > 0
    if framing == lib.CB_FRAMING_E1_CRC4:
        assert cb_full["crc"] > 0 and ca_full["ebit"] > 0
    assert (out_full[0][1] & RED).any() and (out_full[0][1] & RECOVER).any()


@pytest.mark.parametrize("framing", [lib.CB_FRAMING_E1_CRC4, lib.CB_FRAMING_E1_G704, lib.CB_FRAMING_T1_D4,
                                     lib.CB_FRAMING_T1_ESF])
def test_a_caller_that_says_idle_or_wants_no_timeslots_gets_what_it_would_with_them(framing: int) -> None:
    """Transmit told "every timeslot idle" (no timeslots given) sends the lines it sends given idle
    timeslots; receive told "no timeslots wanted" keeps the alarms, alignment and counters it
    keeps writing them out, and writes them again when wanted. Traffic comes and goes, lines
    are reused two ticks later as the sim card reuses them, and the line meets a cut, bit errors
    and a shift (RAI sent, reframing, CRC errors), and RAI and AIS forced."""
    told, given = Pair(framing), Pair(framing)       # a: transmits; b: receives
    nts, n = told.nts, told.octets
    rng = np.random.default_rng(7)
    ticks = 9000
    busy = np.zeros(ticks, bool)
    for a, b in ((200, 260), (1000, 1003), (4000, 4100), (7000, 7001)):
        busy[a:b] = True
    traffic = rng.integers(0, 256, (ticks, nts, 8), dtype=np.uint8)
    traffic[4000:4100] = rng.integers(0, 256, (100, nts, 1), dtype=np.uint8)   # uniform: kept in memory
    idle_ts = np.full((nts, 8), IDLE, np.uint8)
    wanted = (np.arange(ticks) // 37) % 3 == 0        # the receiver wants timeslots now and then
    cut = np.zeros(ticks, bool)
    cut[2000:2100] = True                             # LOS at a: red, RAI back, recover
    xor = np.zeros((ticks, n), np.uint8)
    xor[3000:3400] = bit_errors(rng, 400, n, 1e-4)
    xor[5000:5003, 0] = 0xFF                          # errored framing: reframe
    forced = {6000: lib.CB_FRAMER_SEND_RAI, 6300: lib.CB_FRAMER_SEND_AIS, 6600: 0}
    lines = {id(p): [ffi.new("uint8_t[]", n) for _ in range(2)] for p in (told, given)}
    back_line = ffi.new("uint8_t[]", n)
    out = {id(p): ffi.new("uint8_t[]", nts * 8) for p in (told, given)}    # b's timeslots
    out_a = ffi.new("uint8_t[]", nts * 8)
    through = bytearray()
    for t in range(ticks):
        for p in (told, given):
            if t in forced:
                lib.cb_framer_force(p.a, forced[t])
            line = lines[id(p)][t % 2]
            back = 2 if t >= 2 else 0
            if busy[t]:
                lib.cb_framer_tx_kept(p.a, ffi.from_buffer(traffic[t]), 8, line, back)
            elif p is told:
                lib.cb_framer_tx_kept(p.a, ffi.NULL, 8, line, back)
            else:
                lib.cb_framer_tx_kept(p.a, ffi.from_buffer(idle_ts), 8, line, back)
            # the line toward b, as the line gives it; b's own line back to a is its idle
            heard = (np.frombuffer(ffi.buffer(line, n), np.uint8) ^ xor[t]).tobytes()
            lib.cb_framer_rx(p.b, heard, int(cut[t]), ffi.NULL if (p is told and not wanted[t]) else out[id(p)], 8)
            lib.cb_framer_tx(p.b, ffi.from_buffer(idle_ts), 8, back_line)
            lib.cb_framer_rx(p.a, bytes(ffi.buffer(back_line, n)), 0, out_a, 8)
        assert bytes(ffi.buffer(lines[id(told)][t % 2], n)) == bytes(ffi.buffer(lines[id(given)][t % 2], n)), t
        for x, y in ((told.a, given.a), (told.b, given.b)):
            assert lib.cb_framer_alarms(x) == lib.cb_framer_alarms(y), t
            assert lib.cb_framer_aligned(x) == lib.cb_framer_aligned(y), t
        if 6999 <= t <= 7003:
            through += bytes(ffi.buffer(out[id(given)], 8))
        if wanted[t]:
            assert bytes(ffi.buffer(out[id(told)], nts * 8)) == bytes(ffi.buffer(out[id(given)], nts * 8)), t
    assert vars(counters(told.b)) == vars(counters(given.b))
    assert vars(counters(told.a)) == vars(counters(given.a))
    assert counters(given.b).fas > 0
    assert lib.cb_framer_alarms(given.a) == 0 and lib.cb_framer_alarms(given.b) == 0
    assert traffic[7000, 0].tobytes() in bytes(through)      # traffic got through
