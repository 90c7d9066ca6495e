"""The test-only line model (tests/line) on the line codes' symbols: bit errors at a BER,
injected bipolar violations, the far end's clock offset, and what the decoder counts of them.

Expected counts come from the rates (binomial / Poisson bounds) or from the model's own
count of what it injected, never from the decoder under test."""

from __future__ import annotations

import math
import random

import pytest

from drivers.errors import DriverOperationError, check
from drivers.sim import ffi as card_ffi
from drivers.sim import lib as card
from tests.line import LineModel
from tests.line import ffi as line_ffi

HDB3, AMI, B8ZS = card.CB_CODING_HDB3, card.CB_CODING_AMI, card.CB_CODING_B8ZS
E1_BITS, T1_BITS = 2048, 1544
SECONDS_10 = 10_000               # ticks


def within(n: int, trials: int, p: float, sd: float = 5.0) -> bool:
    """n is within sd standard deviations of a binomial(trials, p)."""
    mean = trials * p
    return abs(n - mean) <= sd * math.sqrt(trials * p * (1 - p))


class Span:
    """One coded direction of a span: encoder, the model's impair through its hook, decoder."""

    def __init__(self, model: LineModel, coding: int, nbits: int, span: int = 0, dir: int = 0) -> None:
        self.model, self.nbits, self.span, self.dir = model, nbits, span, dir
        self.enc = card_ffi.new("cb_line_coder_t *")
        self.dec = card_ffi.new("cb_line_coder_t *")
        check(card.cb_line_coder_init(self.enc, coding), "init")
        check(card.cb_line_coder_init(self.dec, coding), "init")
        self.octets = card_ffi.new("uint8_t[]", nbits // 8)
        self.sym = card_ffi.new("int8_t[]", nbits)
        self.out = card_ffi.new("uint8_t[]", nbits // 8)
        self.sym_address = int(card_ffi.cast("uintptr_t", self.sym))
        self.tick = 0
        self.bpv = 0

    def run(self, payload: bytes | None = None, impair: bool = True) -> bytes:
        """One tick: code `payload` (None: the last one again), impair, decode; the decoded octets."""
        if payload is not None:
            card_ffi.memmove(self.octets, payload, len(payload))
        check(card.cb_line_encode(self.enc, self.octets, self.nbits, self.sym), "encode")
        if impair:
            self.model.impair(self.span, self.dir, self.tick, self.sym_address, self.nbits)
        self.bpv += check(card.cb_line_decode(self.dec, self.sym, self.nbits, self.out), "decode")
        self.tick += 1
        return bytes(card_ffi.buffer(self.out))


def test_the_hook_has_the_cards_layout() -> None:
    # The struct the card calls through (drivers/include/cb_sim.h): impair, ctx, far_ppb[64].
    assert line_ffi.offsetof("cb_line_model_t", "impair") == 0
    assert line_ffi.offsetof("cb_line_model_t", "ctx") == 8
    assert line_ffi.offsetof("cb_line_model_t", "far_ppb") == 16
    assert line_ffi.sizeof("cb_line_model_t") == 16 + 64 * 4
    try:
        card_size = card_ffi.sizeof("cb_line_model_t")
    except card_ffi.error:
        return  # the card does not declare the hook yet
    assert card_size == line_ffi.sizeof("cb_line_model_t")
    for field in ("impair", "ctx", "far_ppb"):
        assert card_ffi.offsetof("cb_line_model_t", field) == line_ffi.offsetof("cb_line_model_t", field)


def test_the_far_ends_clock_offset_is_in_the_hook() -> None:
    m = LineModel(4)
    m.set_ppm(2, 50)
    m.set_ppm(3, -12.5)
    hook = line_ffi.cast("cb_line_model_t *", m.hook_address)
    assert [hook.far_ppb[s] for s in range(4)] == [0, 0, 50_000, -12_500]
    assert m.far_ppb(2) == 50_000


_rng = random.Random(3)
SYMBOLS = [bytes(_rng.choice((0, 1, 255)) for _ in range(E1_BITS)) for _ in range(50)]  # 0, +1, -1


def impaired(model: LineModel, span: int, dir: int) -> list[bytes]:
    """50 ticks of random symbols through the model."""
    sym = line_ffi.new("int8_t[]", E1_BITS)
    address = int(line_ffi.cast("uintptr_t", sym))
    out = []
    for t, tick in enumerate(SYMBOLS):
        line_ffi.memmove(sym, tick, E1_BITS)
        model.impair(span, dir, t, address, E1_BITS)
        out.append(line_ffi.buffer(sym)[:])
    return out


def _seeded(seed: int) -> LineModel:
    m = LineModel(2)
    m.set(1, 0, ber=1e-3, bpv_rate=1e-3, seed=seed)
    return m


def test_deterministic_for_a_seed_and_independent_per_span_and_direction() -> None:
    a, b = _seeded(42), _seeded(42)
    assert impaired(a, 1, 0) == impaired(b, 1, 0)
    assert a.injected(1, 0) == b.injected(1, 0)
    assert a.injected(1, 0)["bit_errors"] > 0 and a.injected(1, 0)["bpv"] > 0
    assert impaired(_seeded(43), 1, 0) != impaired(_seeded(42), 1, 0)
    b.set(1, 0, ber=1e-3, bpv_rate=1e-3, seed=42)  # set again: the counts and the streams restart
    assert b.injected(1, 0) == {"bit_errors": 0, "bpv": 0}
    assert impaired(b, 1, 0) == impaired(_seeded(42), 1, 0)
    # The other direction and the other span are untouched.
    clean = impaired(LineModel(2), 0, 0)
    assert impaired(a, 1, 1) == clean and impaired(a, 0, 0) == clean
    assert a.injected(1, 1) == {"bit_errors": 0, "bpv": 0}
    # One seed gives each direction its own streams.
    a.set(1, 1, ber=1e-3, bpv_rate=1e-3, seed=42)
    assert impaired(a, 1, 1) != impaired(_seeded(42), 1, 0)


def test_ber_1e3_over_many_ticks() -> None:
    # AMI on random data: every symbol error is one wrong bit, and (a noise mark of either polarity,
    # or a lost mark) one bipolar violation.
    m = LineModel(1)
    m.set(0, 0, ber=1e-3, seed=9)
    line = Span(m, AMI, E1_BITS)
    rng = random.Random(1)
    ticks = 1000
    sent = [rng.randbytes(E1_BITS // 8) for _ in range(ticks)]
    wrong_bits = clean_ticks = 0
    previous = bytes(E1_BITS // 8)
    for t in range(ticks + 1):   # the last tick again, unimpaired: what the decoder still held
        got = line.run(sent[t] if t < ticks else None, impair=t < ticks)
        diff = (int.from_bytes(got) ^ int.from_bytes(previous)).bit_count()  # decoded one tick late
        wrong_bits += diff
        clean_ticks += diff == 0 and t < ticks
        previous = sent[min(t, ticks - 1)]
    injected = m.injected(0, 0)["bit_errors"]
    assert within(injected, ticks * E1_BITS, 1e-3)
    assert wrong_bits == injected
    assert abs(line.bpv - injected) <= 0.02 * injected
    # Independent errors: Poisson per tick, exp(-2.048) of the ticks have none.
    assert within(clean_ticks, ticks, math.exp(-E1_BITS * 1e-3))


def test_ber_1e6_is_cheap() -> None:
    # 100 s of one E1 direction at 1e-6: about 205 errors, one draw each.
    m = LineModel(1)
    m.set(0, 1, ber=1e-6, seed=5)
    sym = line_ffi.new("int8_t[]", E1_BITS)
    address = int(line_ffi.cast("uintptr_t", sym))
    for t in range(100_000):
        m.impair(0, 1, t, address, E1_BITS)
    assert within(m.injected(0, 1)["bit_errors"], 100_000 * E1_BITS, 1e-6)


def test_ami_counts_exactly_the_injected_violations() -> None:
    m = LineModel(1)
    m.set(0, 0, bpv_rate=1e-5, seed=11)
    line = Span(m, AMI, E1_BITS)
    rng = random.Random(2)
    payload = [rng.randbytes(E1_BITS // 8) for _ in range(64)]
    for t in range(SECONDS_10):
        line.run(payload[t % 64])
    injected = m.injected(0, 0)["bpv"]
    line.run(impair=False)          # the decoder's last 8 symbols
    assert within(injected, SECONDS_10 * E1_BITS, 1e-5)
    assert line.bpv == injected


@pytest.mark.parametrize(("coding", "nbits"), [(HDB3, E1_BITS), (B8ZS, T1_BITS)])
@pytest.mark.parametrize("payload", ["random", "zeros"])
def test_hdb3_and_b8zs_count_the_injected_violations(coding: int, nbits: int, payload: str) -> None:
    m = LineModel(1)
    m.set(0, 0, bpv_rate=1e-4, seed=coding + 20)
    line = Span(m, coding, nbits)
    rng = random.Random(4)
    ticks = [rng.randbytes(nbits // 8) if payload == "random" else bytes(nbits // 8) for _ in range(64)]
    wrong_ticks = 0
    for t in range(SECONDS_10):
        got = line.run(ticks[t % 64])
        wrong_ticks += t > 0 and got != ticks[(t - 1) % 64]
    injected = m.injected(0, 0)["bpv"]
    line.run(impair=False)
    assert within(injected, SECONDS_10 * nbits, 1e-4)
    assert abs(line.bpv - injected) <= 0.02 * injected
    assert wrong_ticks > 0          # a violation is a wrong symbol: it may cost bits


def test_without_impairments_the_line_is_clean() -> None:
    m = LineModel(1)
    line = Span(m, HDB3, E1_BITS)
    rng = random.Random(5)
    previous = bytes(E1_BITS // 8)
    for _ in range(200):
        payload = rng.randbytes(E1_BITS // 8)
        assert line.run(payload) == previous
        previous = payload
    assert line.bpv == 0 and m.injected(0, 0) == {"bit_errors": 0, "bpv": 0}


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        LineModel(0)
    with pytest.raises(ValueError):
        LineModel(65)
    m = LineModel(2)
    for kwargs in ({"span": 2, "dir": 0}, {"span": 0, "dir": 2}, {"span": 0, "dir": 0, "ber": 1.5},
                   {"span": 0, "dir": 0, "bpv_rate": -0.1}, {"span": 0, "dir": 0, "ber": math.nan}):
        with pytest.raises(DriverOperationError):
            m.set(**kwargs)
    with pytest.raises(DriverOperationError):
        m.set_ppm(2, 1.0)
    with pytest.raises(DriverOperationError):
        m.injected(-1, 0)


def test_noise_marks_have_either_polarity() -> None:
    # On a line of spaces every error is a noise mark: as many positive as negative.
    m = LineModel(1)
    m.set(0, 0, ber=1e-2, seed=3)
    sym = line_ffi.new("int8_t[]", E1_BITS)
    address = int(line_ffi.cast("uintptr_t", sym))
    positive = marks = 0
    for t in range(100):
        line_ffi.memmove(sym, bytes(E1_BITS), E1_BITS)
        m.impair(0, 0, t, address, E1_BITS)
        ticks = line_ffi.unpack(sym, E1_BITS)
        positive += sum(s == 1 for s in ticks)
        marks += sum(s != 0 for s in ticks)
    assert marks == m.injected(0, 0)["bit_errors"]
    assert within(positive, marks, 0.5)
