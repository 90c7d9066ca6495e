"""The far side of a whole period in one call each way: channel-major, as the media tier's blocks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import pytest

from drivers.base import CardDescription
from drivers.errors import DriverOperationError
from tests.drivers.test_sim_card import IDLE_ALAW, Bench

PORTS: tuple[Literal["fxo", "fxs"], ...] = ("fxo", "fxs", "fxo", "fxs", "fxs")


@pytest.fixture(params=[1, 5, 10], ids=lambda k: f"k{k}")
def bench(request: pytest.FixtureRequest) -> Iterator[Bench]:
    b = Bench(CardDescription(ports=PORTS, spans=("e1",), k=request.param))
    yield b
    b.card.close()


def pattern(chan: int, n: int, period: int) -> bytes:
    return bytes((chan * 37 + period * 11 + i) & 0xFF for i in range(n))


def test_a_period_written_at_once_reaches_each_channel_in_order(bench: Bench) -> None:
    far, k = bench.card.far, bench.k
    per = 2 * k * 8                                     # a period of two blocks
    nports = len(PORTS)
    sent: dict[int, bytes] = {c: b"" for c in range(nports)}
    got: dict[int, bytes] = {c: b"" for c in range(nports)}
    for period in range(40):                            # 40 periods: the FIFOs wrap (8192 octets)
        block = b"".join(pattern(c, per, period) for c in range(nports))
        far.write_all(block, nports, per)
        for c in range(nports):
            sent[c] += pattern(c, per, period)
        for _ in range(2):
            bench.step(k)
            for c in range(nports):
                got[c] += bytes(bench.rx[c * k * 8:(c + 1) * k * 8])
    assert got == sent
    assert bench.card.stats()["far_fifo_overrun"] == 0


def test_a_period_read_at_once_takes_each_channels_octets_idle_after_and_drops_the_rest(bench: Bench) -> None:
    from drivers.sim import ffi

    far, k = bench.card.far, bench.k
    n = len(PORTS)
    for c in (0, 1, 3):                                 # 2 and 4 not listening
        far.listen(c)
    for c in range(n + 31):
        ffi.memmove(bench.tx + c * k * 8, bytes([0x40 + c]) * (k * 8), k * 8)
    bench.step(3 * k)                                   # three blocks waiting on each listened channel
    per = 2 * k * 8
    out = ffi.new("uint8_t[]", n * per)
    got = ffi.new("int32_t[]", n)
    dropped = far.read_all(out, n, per, got)
    assert dropped == 3 * (3 * k * 8 - per)             # the third block of 0, 1 and 3
    assert list(got) == [per, per, 0, per, 0]
    for c in range(n):
        want = bytes([0x40 + c]) * per if c in (0, 1, 3) else bytes(per)     # not listened to: left alone
        assert bytes(out[c * per:(c + 1) * per]) == want
    bench.step(k)                                       # one block: less than a period waiting
    assert far.read_all(out, n, per) == 0
    assert bytes(out[0:per]) == bytes([0x40]) * (k * 8) + bytes([IDLE_ALAW]) * (per - k * 8)
    assert far.read(0) == b""                           # nothing left behind


def test_what_does_not_fit_is_counted_and_bad_sizes_are_refused(bench: Bench) -> None:
    far = bench.card.far
    far.write_all(bytes(3 * 5000), 3, 5000)             # 8192 octets fit each FIFO
    far.write_all(bytes(3 * 5000), 3, 5000)
    assert bench.card.stats()["far_fifo_overrun"] == 3 * (10000 - 8192)
    nchan = len(bench.card.channels)
    with pytest.raises(DriverOperationError, match="far write of a period"):
        far.write_all(bytes(8), nchan + 1, 0)
    with pytest.raises(DriverOperationError, match="far read of a period"):
        far.read_all(bytes(8), 1, -1)
    far.write_all(b"", 0, 0)                            # nothing: fine
