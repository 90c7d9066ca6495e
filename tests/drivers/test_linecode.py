"""The line codes of the card's line interface (drivers/include/cb_linecode.h): AMI and HDB3
(ITU-T G.703 Annex A), B8ZS (ANSI T1.102), and the violations the decoder counts.

The expected symbols are written by hand from the standards' rules, or come from a reference
encoder written here from the same text (whole stream at once, no ticks)."""

from __future__ import annotations

import random

import pytest

from drivers.errors import DriverOperationError, check
from drivers.sim import ffi, lib

P, N = 1, -1
HDB3, AMI, B8ZS = lib.CB_CODING_HDB3, lib.CB_CODING_AMI, lib.CB_CODING_B8ZS
E1_BITS, T1_BITS = 2048, 1544   # one tick: 8 frames of 256 / 193 bits


def pack(bits: list[int]) -> bytes:
    """Bits to octets, the first bit the MSB."""
    out = bytearray(len(bits) // 8)
    for k, b in enumerate(bits):
        out[k >> 3] |= b << (7 - (k & 7))
    return bytes(out)


def unpack(octets: bytes) -> list[int]:
    return [(o >> (7 - i)) & 1 for o in octets for i in range(8)]


class Coder:
    """One cb_line_coder_t, fed a tick at a time."""

    def __init__(self, coding: int, nbits: int) -> None:
        self.c = ffi.new("cb_line_coder_t *")
        check(lib.cb_line_coder_init(self.c, coding), "init")
        self.nbits = nbits
        self.oct = ffi.new("uint8_t[]", nbits // 8)
        self.sym = ffi.new("int8_t[]", nbits)

    def encode(self, octets: bytes) -> list[int]:
        ffi.memmove(self.oct, octets, len(octets))
        check(lib.cb_line_encode(self.c, self.oct, self.nbits, self.sym), "encode")
        return list(ffi.unpack(self.sym, self.nbits))

    def decode(self, sym: list[int]) -> tuple[bytes, int]:
        ffi.memmove(self.sym, bytes(s & 0xFF for s in sym), len(sym))
        bpv = check(lib.cb_line_decode(self.c, self.sym, self.nbits, self.oct), "decode")
        return ffi.buffer(self.oct)[:], bpv


def encode_stream(coding: int, bits: list[int], nbits: int) -> list[int]:
    """The symbols of `bits` from a fresh encoder (its lag of nbits - 8 bits taken off)."""
    c = Coder(coding, nbits)
    padded = bits + [0] * (-len(bits) % nbits) + [0] * nbits
    out: list[int] = []
    for t in range(0, len(padded), nbits):
        out += c.encode(pack(padded[t:t + nbits]))
    return out[nbits - 8:nbits - 8 + len(bits)]


def decode_stream(coding: int, sym: list[int], nbits: int) -> tuple[list[int], int]:
    """The bits of `sym` from a fresh decoder (its lag of 8 symbols taken off), and the violations."""
    c = Coder(coding, nbits)
    padded = sym + [0] * (-len(sym) % nbits) + [0] * nbits
    bits: list[int] = []
    bpv = 0
    for t in range(0, len(padded), nbits):
        octets, n = c.decode(padded[t:t + nbits])
        bits += unpack(octets)
        bpv += n
    return bits[8:8 + len(sym)], bpv


def reference_encode(coding: int, bits: list[int]) -> list[int]:
    """G.703 / T1.102 from their text, over a whole stream. Start: the previous mark negative, an even
    number of marks since the last V (the coder's documented start)."""
    out: list[int] = []
    last, odd, i = N, False, 0
    while i < len(bits):
        if bits[i]:
            last = -last                          # AMI: marks alternate
            odd = not odd
            out.append(last)
            i += 1
        elif coding == HDB3 and bits[i:i + 4] == [0, 0, 0, 0]:
            if odd:                               # 000V: V the polarity of the mark before
                out += [0, 0, 0, last]
            else:                                 # B00V: B alternates, V repeats it
                last = -last
                out += [last, 0, 0, last]
            odd = False                           # marks are counted since the last V
            i += 4
        elif coding == B8ZS and bits[i:i + 8] == [0] * 8:
            out += [0, 0, 0, last, -last, 0, -last, last]
            i += 8
        else:
            out.append(0)
            i += 1
    return out


@pytest.mark.parametrize("nbits", [16, E1_BITS])
def test_ami_marks_alternate(nbits: int) -> None:
    bits = [1, 0, 1, 1, 0, 0, 0, 0, 0, 1, 1]
    assert encode_stream(AMI, bits, nbits) == [P, 0, N, P, 0, 0, 0, 0, 0, N, P]


@pytest.mark.parametrize("nbits", [16, E1_BITS])
def test_hdb3_b00v_and_000v_with_alternating_v(nbits: int) -> None:
    bits = [0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    expected = [P, 0, 0, P,      # even (none) since the last V: B00V, B and V positive
                N,               # one mark since
                0, 0, 0, N,      # odd: 000V, V as the mark before: negative
                P, N,            # two marks
                P, 0, 0, P,      # even: B00V
                N, 0, 0, N,      # none since the last V: B00V again
                P]
    assert encode_stream(HDB3, bits, nbits) == expected
    vs = [expected[3], expected[8], expected[14], expected[18]]
    assert vs == [P, N, P, N]    # successive V alternate: no DC
    assert encode_stream(HDB3, [1, 0, 0, 0, 1], nbits) == [P, 0, 0, 0, N]  # three zeros stay zeros
    # A textbook's worked example, "1010000011000011000000" -> "+0-000-0+-+00+-+-00-00" (its trailing
    # zeros left out: here more zeros follow), which starts after a negative mark, an odd count since
    # the last V: the prefix 0000 1 (+00+ -) puts the coder there.
    example = [int(b) for b in "10100000110000110000"]
    expected = [{"+": P, "-": N, "0": 0}[c] for c in "+0-000-0+-+00+-+-00-"]
    assert encode_stream(HDB3, [0, 0, 0, 0, 1, *example], nbits) == [P, 0, 0, P, N, *expected]


@pytest.mark.parametrize("nbits", [16, T1_BITS])
def test_b8zs_after_a_positive_and_after_a_negative_mark(nbits: int) -> None:
    assert encode_stream(B8ZS, [1] + [0] * 8 + [1], nbits) == [P, 0, 0, 0, P, N, 0, N, P, N]
    assert encode_stream(B8ZS, [1, 1] + [0] * 8 + [1], nbits) == [P, N, 0, 0, 0, N, P, 0, P, N, P]
    assert encode_stream(B8ZS, [1] + [0] * 7 + [1], nbits) == [P] + [0] * 7 + [N]
    assert encode_stream(B8ZS, [1] + [0] * 16 + [1], nbits) == [P] + [0, 0, 0, P, N, 0, N, P] * 2 + [N]


@pytest.mark.parametrize(("coding", "nbits"), [(AMI, E1_BITS), (HDB3, E1_BITS), (AMI, T1_BITS), (B8ZS, T1_BITS),
                                               (HDB3, 16), (B8ZS, 24)])
def test_the_encoder_follows_the_rules_across_ticks(coding: int, nbits: int) -> None:
    # Sparse ones: long zero runs, many of them across the ends of ticks.
    rng = random.Random(coding * 100 + nbits)
    ticks = 12 if nbits > 100 else 400
    bits = [int(rng.random() < 0.2) for _ in range(ticks * nbits)]
    c = Coder(coding, nbits)
    got: list[int] = []
    for t in range(ticks):
        got += c.encode(pack(bits[t * nbits:(t + 1) * nbits]))
    # The encoder lags by nbits - 8 bits: its first symbols code zeros.
    assert got == reference_encode(coding, [0] * (nbits - 8) + bits)[:len(got)]


def run_ticks(coding: int, nbits: int, payload: list[bytes]) -> tuple[list[bytes], int]:
    enc, dec = Coder(coding, nbits), Coder(coding, nbits)
    out: list[bytes] = []
    bpv = 0
    for octets in payload:
        got, n = dec.decode(enc.encode(octets))
        out.append(got)
        bpv += n
    return out, bpv


@pytest.mark.parametrize(("coding", "nbits"), [(AMI, E1_BITS), (HDB3, E1_BITS), (AMI, T1_BITS), (B8ZS, T1_BITS)])
@pytest.mark.parametrize("density", [0.5, 0.1])
def test_round_trip_is_bit_exact_one_tick_late(coding: int, nbits: int, density: float) -> None:
    rng = random.Random(7)
    payload = [pack([int(rng.random() < density) for _ in range(nbits)]) for _ in range(30)]
    out, bpv = run_ticks(coding, nbits, payload)
    assert out[0] == bytes(nbits // 8)          # a fresh pair first delivers a tick of zeros
    assert out[1:] == payload[:-1]
    assert bpv == 0


@pytest.mark.parametrize(("coding", "nbits"), [(HDB3, E1_BITS), (B8ZS, T1_BITS)])
def test_ten_seconds_of_zeros_count_no_violation(coding: int, nbits: int) -> None:
    enc, dec = Coder(coding, nbits), Coder(coding, nbits)
    zeros = bytes(nbits // 8)
    sym, out = ffi.new("int8_t[]", nbits), ffi.new("uint8_t[]", nbits // 8)
    bpv = 0
    wrong = 0
    for t in range(10_000):      # 10 s of ticks, straight through the C
        check(lib.cb_line_encode(enc.c, enc.oct, nbits, sym), "encode")
        if t == 5:
            first = list(ffi.unpack(sym, nbits))
        bpv += check(lib.cb_line_decode(dec.c, sym, nbits, out), "decode")
        wrong += ffi.buffer(out)[:] != zeros
    assert bpv == 0
    assert wrong == 0
    # The line keeps its clock content and has no DC: few zeros in a row, marks balanced.
    run = longest = total = worst = 0
    for s in first:
        run = run + 1 if s == 0 else 0
        longest = max(longest, run)
        total += s
        worst = max(worst, abs(total))
    assert longest == (2 if coding == HDB3 else 3)   # HDB3 +00+ -00- ...; B8ZS 000VB0VB ...
    assert worst <= 2


@pytest.mark.parametrize("nbits", [16, E1_BITS])
def test_violations_counted_by_each_code(nbits: int) -> None:
    # AMI: every mark of the polarity of the one before.
    assert decode_stream(AMI, [P, 0, P, N, N, 0, P], nbits) == ([1, 0, 1, 1, 1, 0, 1], 2)
    # HDB3: 000V, a mark, 000V (V alternate): clean.
    assert decode_stream(HDB3, [P, 0, 0, 0, P, N, 0, 0, 0, N], nbits) == ([1, 0, 0, 0, 0, 1, 0, 0, 0, 0], 0)
    # A violation inside the first block (a mark where a zero was): counted once, at the V it spoils.
    assert decode_stream(HDB3, [P, P, 0, 0, P, N, 0, 0, 0, N], nbits) == ([1, 0, 0, 0, 0, 1, 0, 0, 0, 0], 1)
    # Two V of the same polarity (000V where B00V was due): the second is no valid substitution.
    assert decode_stream(HDB3, [P, 0, 0, 0, P, 0, 0, 0, P], nbits) == ([1, 0, 0, 0, 0, 0, 0, 0, 0], 1)
    # B8ZS: 000VB0VB after a positive mark is zeros, no violation ...
    assert decode_stream(B8ZS, [P, 0, 0, 0, P, N, 0, N, P, N], nbits) == ([1] + [0] * 8 + [1], 0)
    # ... a violation outside a substitution counts ...
    assert decode_stream(B8ZS, [P, 0, P, N], nbits) == ([1, 0, 1, 1], 1)
    # ... and so does one in a substitution's leading zeros or its middle space, which still decodes.
    assert decode_stream(B8ZS, [P, P, 0, 0, P, N, 0, N, P, N], nbits) == ([1, 1] + [0] * 7 + [1], 1)
    assert decode_stream(B8ZS, [P, 0, 0, 0, P, N, N, N, P, N], nbits) == ([1, 0, 0, 0, 0, 0, 1, 0, 0, 1], 1)


def test_bad_arguments_are_refused() -> None:
    c = ffi.new("cb_line_coder_t *")
    assert lib.cb_line_coder_init(c, 7) == lib.CB_ERR_INVALID
    oct_ = ffi.new("uint8_t[256]")
    sym = ffi.new("int8_t[2048]")
    assert lib.cb_line_encode(c, oct_, E1_BITS, sym) == lib.CB_ERR_INVALID   # no coding
    check(lib.cb_line_coder_init(c, HDB3), "init")
    for nbits in (0, 8, 2047, 2056):
        assert lib.cb_line_encode(c, oct_, nbits, sym) == lib.CB_ERR_INVALID
    check(lib.cb_line_encode(c, oct_, E1_BITS, sym), "encode")
    assert lib.cb_line_decode(c, sym, T1_BITS, oct_) == lib.CB_ERR_INVALID    # nbits is fixed by the first call
    with pytest.raises(DriverOperationError):
        check(lib.cb_line_encode(c, oct_, T1_BITS, sym), "encode")
