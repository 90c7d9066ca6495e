"""The D-channel HDLC codec (drivers/include/cb_hdlc.h) against spandsp's hdlc_tx/hdlc_rx and a
reference written here from the standard (ISO/IEC 13239 framing, CRC-16/X.25 FCS).

Bit order, the one convention both sides must agree on:
- our timeslot octets: the first line bit is the octet's MSB (G.704 bit 1; the spans' convention);
- spandsp's octets (hdlc_tx_get_byte / hdlc_rx_put_byte): also 8 consecutive line bits, the
  first in the MSB. spandsp's bit API hands a byte out from bit 7 down (hdlc_tx_get_bit), and
  test_spandsp_octets_are_line_bits_msb_first checks that its byte API packs the bits so.
So spandsp's octets are our line octets unchanged: `spandsp_to_line` is the identity, and it is
named so every place that crosses between the two says which convention it is in.
Inside a frame HDLC sends each octet LSB first; that is the reference's business
(`ref_content_bits`), checked bit for bit against both spandsp and our transmitter.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import pytest

from drivers._binding import load
from tests.peers._spandsp import ffi as sffi
from tests.peers._spandsp import lib as slib

ffi, lib = load()

TICK = 8                                # D-channel octets per 1 ms tick (one 64 kbit/s timeslot)
MAX = 264                               # CB_MAX_PAYLOAD: the longest frame before the FCS
FLAG_BITS = (0, 1, 1, 1, 1, 1, 1, 0)    # 0x7E, in line order


# --- the reference, from the standard's text -------------------------------------------------

def crc16_x25(data: bytes) -> int:
    """CRC-16/X.25 bit by bit: reflected generator 0x8408 (x^16 + x^12 + x^5 + 1), initial value
    0xFFFF, the result complemented (ITU-T X.25 / ISO/IEC 13239 FCS)."""
    crc = 0xFFFF
    for octet in data:
        crc ^= octet
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def ref_content_bits(payload: bytes, fcs: int | None = None) -> list[int]:
    """The line bits of a frame between its flags: payload and FCS (low octet first), each octet
    LSB first, a 0 inserted after every five 1s in a row."""
    fcs = crc16_x25(payload) if fcs is None else fcs
    out: list[int] = []
    ones = 0
    for octet in payload + bytes((fcs & 0xFF, fcs >> 8)):
        for b in range(8):
            bit = (octet >> b) & 1
            out.append(bit)
            ones = ones + 1 if bit else 0
            if ones == 5:
                out.append(0)
                ones = 0
    return out


def idle_line(bits: list[int], n_octets: int) -> bytes:
    """bits, then flags without a break, cut to n_octets line octets (first bit in the MSB)."""
    out = list(bits)
    while len(out) < 8 * n_octets:
        out.extend(FLAG_BITS)
    return pack(out[: 8 * n_octets])


def pack(bits: Sequence[int]) -> bytes:
    """Line bits into line octets, the first bit in the MSB."""
    return bytes(np.packbits(np.asarray(bits, dtype=np.uint8), bitorder="big"))


def unpack(octets: bytes) -> list[int]:
    """Line octets into line bits, the MSB first."""
    return [int(b) for b in np.unpackbits(np.frombuffer(octets, dtype=np.uint8), bitorder="big")]


def spandsp_to_line(octets: bytes) -> bytes:
    """spandsp's octets as our timeslot octets: the same convention (the first line bit in the
    MSB, see the module docstring), so nothing changes. Used for both directions."""
    return octets


# --- helpers ---------------------------------------------------------------------------------

@pytest.fixture
def codec() -> Iterator[Any]:
    h = lib.cb_hdlc_new()
    assert h != ffi.NULL
    yield h
    lib.cb_hdlc_free(h)


@pytest.fixture
def peer() -> Iterator[Any]:
    p = slib.hdlcpeer_new()
    assert p != sffi.NULL
    yield p
    slib.hdlcpeer_free(p)


def stats(h: Any) -> dict[str, int]:
    st = ffi.new("cb_dchan_stats_t *")
    lib.cb_hdlc_stats(h, st)
    return {k: int(getattr(st, k)) for k in ("frames_rx", "frames_tx", "bad_fcs", "aborts", "too_long",
                                             "rx_dropped")}


def rich_frames(n: int, seed: int, lo: int = 1, hi: int = MAX) -> list[bytes]:
    """n frames of random length lo..hi, about 40 % 0x7E, 40 % 0xFF, the rest random octets."""
    rng = np.random.default_rng(seed)
    frames = []
    for length in rng.integers(lo, hi + 1, n):
        kind = rng.random(int(length))
        body = rng.integers(0, 256, int(length), dtype=np.uint8)
        body[kind < 0.4] = 0x7E
        body[(kind >= 0.4) & (kind < 0.8)] = 0xFF
        frames.append(body.tobytes())
    return frames


def spandsp_send(p: Any, frames: Sequence[bytes], lead_flags: int = 2, tail: int = 16) -> bytes:
    """frames through spandsp's transmitter (one flag between frames), as our line octets."""
    data = b"".join(frames)
    lens = sffi.new("int[]", [len(f) for f in frames])
    room = len(data) * 5 // 4 + 4 * len(frames) + lead_flags + tail + 64
    out = sffi.new("uint8_t[]", room)
    n = slib.hdlcpeer_tx_frames(p, data, lens, len(frames), lead_flags, tail, out, room)
    assert n > 0
    return spandsp_to_line(bytes(sffi.buffer(out, n)))


def spandsp_receive(p: Any, line: bytes) -> list[bytes]:
    """Our line octets into spandsp's receiver; the good frames it found."""
    octets = spandsp_to_line(line)
    room = len(octets)
    out = sffi.new("uint8_t[]", room)
    lens = sffi.new("int[]", room // 3 + 1)
    n = slib.hdlcpeer_rx(p, octets, len(octets), out, lens, room // 3 + 1, room)
    assert n >= 0
    frames, at = [], 0
    for i in range(n):
        frames.append(bytes(sffi.buffer(out + at, lens[i])))
        at += lens[i]
    return frames


def spandsp_rx_stats(p: Any) -> dict[str, int]:
    st = sffi.new("unsigned long[4]")
    slib.hdlcpeer_rx_stats(p, st)
    return dict(zip(("good", "crc_errors", "length_errors", "aborts"), (int(v) for v in st), strict=True))


def receive(h: Any, line: bytes) -> list[bytes]:
    """Line octets into our receiver a tick at a time, taking frames after each tick."""
    buf = ffi.from_buffer("uint8_t[]", line)
    frame = ffi.new("uint8_t[]", MAX)
    got = []
    for at in range(0, len(line), TICK):
        lib.cb_hdlc_rx(h, buf + at, min(TICK, len(line) - at))
        while (n := lib.cb_hdlc_recv(h, frame, MAX)) > 0:
            got.append(bytes(ffi.buffer(frame, n)))
        assert n == 0
    return got


def transmit(h: Any, frames: Sequence[bytes], idle_ticks: int = 4, queued: int = 0) -> bytes:
    """frames through our transmitter a tick at a time, queued as room allows (after `queued`
    frames already waiting); idle_ticks ticks after the last frame went out whole."""
    target = stats(h)["frames_tx"] + queued + len(frames)
    est = sum(len(f) for f in frames) * 5 // 4 + 4 * len(frames) + (queued + 2) * 340 + TICK * idle_ticks
    out = ffi.new("uint8_t[]", est)
    at, nxt, idle = 0, 0, 0
    while idle < idle_ticks:
        while nxt < len(frames) and lib.cb_hdlc_send(h, frames[nxt], len(frames[nxt])) == lib.CB_OK:
            nxt += 1
        assert at + TICK <= est
        lib.cb_hdlc_tx(h, out + at, TICK)
        at += TICK
        if nxt == len(frames) and stats(h)["frames_tx"] >= target:
            idle += 1
    return bytes(ffi.buffer(out, at))


# --- the reference itself --------------------------------------------------------------------

def test_the_reference_crc_has_the_catalogued_check_value() -> None:
    assert crc16_x25(b"123456789") == 0x906E          # CRC-16/X.25 check value
    # the good-frame residue: the CRC (not complemented) over payload + FCS is 0xF0B8
    data = b"123456789" + (0x906E).to_bytes(2, "little")
    assert crc16_x25(data) ^ 0xFFFF == 0xF0B8


def test_spandsp_octets_are_line_bits_msb_first() -> None:
    """spandsp's byte API packs its bit API's stream with the first bit in the MSB, and that
    stream is the standard's (the reference's) bit for bit: flags, LSB-first octets, FCS."""
    frame = b"123456789"
    nbits = 8 * 16
    bits = sffi.new("uint8_t[]", nbits)
    octets = sffi.new("uint8_t[]", 16)
    assert slib.hdlcpeer_tx_bits(frame, len(frame), 1, bits, nbits) == nbits
    assert slib.hdlcpeer_tx_octets(frame, len(frame), 1, octets, 16) == 16
    bit_stream = list(bytes(sffi.buffer(bits, nbits)))
    assert pack(bit_stream) == bytes(sffi.buffer(octets, 16))
    assert spandsp_to_line(bytes(sffi.buffer(octets, 16))) == idle_line([*FLAG_BITS, *ref_content_bits(frame),
                                                                         *FLAG_BITS], 16)


# --- our transmitter -------------------------------------------------------------------------

def test_idle_is_flags(codec: Any) -> None:
    out = ffi.new("uint8_t[]", 64)
    lib.cb_hdlc_tx(codec, out, 64)
    assert bytes(out) == b"\x7e" * 64
    assert stats(codec)["frames_tx"] == 0


def test_a_known_frame_goes_out_bit_exact_with_its_fcs(codec: Any) -> None:
    """The check string's FCS is 0x906E: on the line 0x6E then 0x90, LSB first."""
    assert lib.cb_hdlc_send(codec, b"123456789", 9) == lib.CB_OK
    line = transmit(codec, [], idle_ticks=4, queued=1)
    expect = idle_line([*FLAG_BITS, *ref_content_bits(b"123456789", 0x906E), *FLAG_BITS], len(line))
    assert line == expect
    assert stats(codec)["frames_tx"] == 1


def test_frames_are_bit_exact_back_to_back_sharing_a_flag_then_idle_on_flags(codec: Any) -> None:
    frames = [b"\x7e\xff\xff\x7e\x00", b"\xff" * 40, b"\x3f\x7e\xfc\x1f\xf8"]
    for f in frames:
        assert lib.cb_hdlc_send(codec, f, len(f)) == lib.CB_OK
    line = transmit(codec, [], idle_ticks=3, queued=len(frames))
    bits = list(FLAG_BITS)
    for f in frames:
        bits += ref_content_bits(f) + list(FLAG_BITS)   # one flag closes a frame and opens the next
    assert line == idle_line(bits, len(line))
    # and after the last frame: nothing but flags, unbroken (periodic with the flag's 8 bits)
    tail = unpack(line)[len(bits) - 8:]
    assert all(tail[i] == FLAG_BITS[i % 8] for i in range(len(tail)))


def test_a_frame_queued_while_idle_starts_after_a_whole_flag(codec: Any) -> None:
    """After a frame that ended off the octet boundary the idle flags are rotated; a frame queued
    then starts at the next flag boundary (the flags are never cut short)."""
    a, b = b"\xff\xff\x01", b"\xff\xfe\x7e"
    lib.cb_hdlc_send(codec, a, len(a))
    first = transmit(codec, [], idle_ticks=2, queued=1)
    lib.cb_hdlc_send(codec, b, len(b))
    second = transmit(codec, [], idle_ticks=2, queued=1)
    bits = [*FLAG_BITS, *ref_content_bits(a), *FLAG_BITS]
    assert len(bits) % 8 != 0                              # the case of interest: rotated idle
    while len(bits) < 8 * len(first):
        bits += FLAG_BITS
    bits += ref_content_bits(b) + list(FLAG_BITS)
    line = first + second
    assert line == idle_line(bits, len(line))


def test_send_refuses_bad_lengths_and_a_full_queue(codec: Any) -> None:
    assert lib.cb_hdlc_send(codec, b"\x00" * (MAX + 1), MAX + 1) == lib.CB_ERR_INVALID
    assert lib.cb_hdlc_send(codec, b"", 0) == lib.CB_ERR_INVALID
    assert lib.cb_hdlc_send(codec, ffi.NULL, 5) == lib.CB_ERR_INVALID
    for i in range(lib.CB_HDLC_TXQ):
        assert lib.cb_hdlc_send(codec, bytes([i]), 1) == lib.CB_OK
    assert lib.CB_HDLC_TXQ == 32
    assert lib.cb_hdlc_send(codec, b"x", 1) == lib.CB_ERR_FULL
    transmit(codec, [], idle_ticks=1, queued=32)           # the queue drains onto the line
    assert stats(codec)["frames_tx"] == 32
    assert lib.cb_hdlc_send(codec, b"x", 1) == lib.CB_OK


def test_10000_frames_of_ours_decode_in_spandsp_intact_and_in_order(codec: Any, peer: Any) -> None:
    frames = rich_frames(10_000, seed=12)
    line = transmit(codec, frames)
    assert spandsp_receive(peer, line) == frames
    assert spandsp_rx_stats(peer) == {"good": 10_000, "crc_errors": 0, "length_errors": 0, "aborts": 0}
    assert stats(codec)["frames_tx"] == 10_000


def test_264_octet_frames_pass_to_spandsp(codec: Any, peer: Any) -> None:
    frames = rich_frames(20, seed=264, lo=MAX, hi=MAX)
    assert spandsp_receive(peer, transmit(codec, frames)) == frames


# --- our receiver ----------------------------------------------------------------------------

def test_10000_frames_from_spandsp_arrive_intact_and_in_order(codec: Any, peer: Any) -> None:
    frames = rich_frames(10_000, seed=2)
    assert receive(codec, spandsp_send(peer, frames)) == frames
    assert stats(codec) == {"frames_rx": 10_000, "frames_tx": 0, "bad_fcs": 0, "aborts": 0, "too_long": 0,
                            "rx_dropped": 0}


IDLE = {
    "flags": list(FLAG_BITS) * 400,
    "flags-rotated-3": list(FLAG_BITS[3:]) + list(FLAG_BITS) * 400,
    "flags-rotated-7": list(FLAG_BITS[7:]) + list(FLAG_BITS) * 400,
    "ones": [1] * 3200,
    "zeros": [0] * 3200,
}


@pytest.mark.parametrize("idle", IDLE.keys())
def test_an_idle_line_gives_nothing_and_a_frame_after_it_arrives(codec: Any, idle: str) -> None:
    """Flags (octet-aligned or not), ones and zeros: no frame, no error; then a frame."""
    frame = b"after the idle"
    bits = [*IDLE[idle], *FLAG_BITS, *ref_content_bits(frame), *FLAG_BITS]
    line = idle_line(bits, len(bits) // 8 + 3)
    assert len(set(line[8:390])) == 1                      # the idle part: one octet over and over
    assert receive(codec, line[:392]) == []
    assert receive(codec, line[392:]) == [frame]
    assert stats(codec) == {"frames_rx": 1, "frames_tx": 0, "bad_fcs": 0, "aborts": 0, "too_long": 0,
                            "rx_dropped": 0}


def test_a_flipped_bit_is_a_bad_fcs_never_delivered(codec: Any, peer: Any) -> None:
    # 0x55 payloads: no runs of 1s, so one flipped bit changes neither framing nor zero insertion
    frames = [b"\x55" * 30, b"\x55" * 30, b"\x55" * 30]
    bits = unpack(spandsp_send(peer, frames))
    text = "".join(map(str, bits))
    flags = [i for i in range(len(text) - 7) if text.startswith("01111110", i)]
    opens = [i for i, j in pairwise(flags) if j - i > 8]   # flags that open a frame
    assert len(opens) == 3
    bits[opens[1] + 8 + 100] ^= 1                      # inside the second frame's payload
    assert receive(codec, pack(bits)) == [frames[0], frames[2]]
    assert stats(codec)["bad_fcs"] == 1 and stats(codec)["frames_rx"] == 2


def test_an_abort_is_counted_and_the_frame_never_delivered(codec: Any, peer: Any) -> None:
    a, b, c = b"first", b"the aborted one, long enough", b"third"
    bits = [*FLAG_BITS, *ref_content_bits(a), *FLAG_BITS, *ref_content_bits(b)[:60], *([1] * 7),
            *FLAG_BITS, *ref_content_bits(c), *FLAG_BITS]
    line = idle_line(bits, len(bits) // 8 + 4)
    assert receive(codec, line) == [a, c]
    assert stats(codec)["aborts"] == 1 and stats(codec)["bad_fcs"] == 0
    # the same stream in spandsp's receiver: the same reading (the stream is what we say it is)
    assert spandsp_receive(peer, line) == [a, c]
    assert spandsp_rx_stats(peer)["aborts"] == 1


def test_a_frame_longer_than_264_is_dropped_as_too_long(codec: Any, peer: Any) -> None:
    frames = [*rich_frames(1, seed=7, lo=MAX, hi=MAX), b"\x7e" * (MAX + 1), b"after"]
    assert receive(codec, spandsp_send(peer, frames)) == [frames[0], frames[2]]
    assert stats(codec)["too_long"] == 1 and stats(codec)["bad_fcs"] == 0


@pytest.mark.parametrize("content", [
    ref_content_bits(b""),                           # an FCS alone (right for no payload): too short
    [*ref_content_bits(b"\x43"), 0, 0, 0],           # a good frame and 3 more bits: not whole octets
], ids=["fcs-only", "ragged"])
def test_short_or_ragged_frames_count_as_bad_fcs(codec: Any, content: list[int]) -> None:
    bits = [*FLAG_BITS, *content, *FLAG_BITS, *ref_content_bits(b"\x42"), *FLAG_BITS]
    assert receive(codec, idle_line(bits, len(bits) // 8 + 2)) == [b"\x42"]   # 1 octet: the shortest
    assert stats(codec)["bad_fcs"] == 1


def test_recv_leaves_a_frame_too_big_for_the_buffer_queued(codec: Any) -> None:
    frame = bytes(range(100))
    lib.cb_hdlc_rx(codec, idle_line([*FLAG_BITS, *ref_content_bits(frame), *FLAG_BITS], 120), 120)
    small, big = ffi.new("uint8_t[]", 99), ffi.new("uint8_t[]", MAX)
    assert lib.cb_hdlc_recv(codec, small, 99) == lib.CB_ERR_INVALID
    assert lib.cb_hdlc_recv(codec, big, MAX) == 100
    assert bytes(ffi.buffer(big, 100)) == frame
    assert lib.cb_hdlc_recv(codec, big, MAX) == 0


def test_a_full_receive_queue_drops_and_counts(codec: Any) -> None:
    bits = list(FLAG_BITS)
    for i in range(40):
        bits += ref_content_bits(bytes([i, i])) + list(FLAG_BITS)
    lib.cb_hdlc_rx(codec, idle_line(bits, len(bits) // 8 + 2), len(bits) // 8 + 2)   # nobody takes them
    assert lib.CB_HDLC_RXQ == 32
    assert stats(codec)["frames_rx"] == 32 and stats(codec)["rx_dropped"] == 8
    assert receive(codec, b"") == [] and lib.cb_hdlc_recv(codec, ffi.new("uint8_t[]", MAX), MAX) == 2


def test_reset_drops_the_partial_frame(codec: Any) -> None:
    a, b = b"cut by a loss of alignment", b"next"
    bits = [*FLAG_BITS, *ref_content_bits(a), *FLAG_BITS, *ref_content_bits(b), *FLAG_BITS]
    line = idle_line(bits, len(bits) // 8 + 2)
    assert receive(codec, line[:10]) == []
    lib.cb_hdlc_reset(codec)
    assert receive(codec, line[10:]) == [b]
    assert stats(codec) == {"frames_rx": 1, "frames_tx": 0, "bad_fcs": 0, "aborts": 0, "too_long": 0,
                            "rx_dropped": 0}
