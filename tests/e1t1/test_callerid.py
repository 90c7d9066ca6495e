"""Caller ID messages: every vector decodes and re-encodes; bad octets and values get exact errors."""

from __future__ import annotations

import pytest

from e1t1.analog import callerid
from e1t1.analog.callerid import CallerId, MessageWaiting, decode_dtmf_clip, decode_fsk_message, encode_dtmf_clip
from e1t1.errors import DecodeError, EncodeError


@pytest.mark.parametrize(("hexdata", "want"), callerid.VECTORS, ids=lambda v: str(v)[:20])
def test_vectors_decode_and_encode(hexdata: str, want: CallerId | MessageWaiting) -> None:
    data = bytes.fromhex(hexdata)
    assert decode_fsk_message(data) == want
    assert decode_fsk_message(data + b"\x55\x55") == want       # trailing line noise is not part of it
    if isinstance(want, MessageWaiting):
        assert callerid.encode_mwi(want.active) == data
    elif data[0] == callerid.SDMF_CALLERID:
        assert callerid.encode_sdmf(want) == data
    else:
        assert callerid.encode_mdmf(want) == data


def test_every_message_type_has_a_vector() -> None:
    assert {bytes.fromhex(h)[0] for h, _ in callerid.VECTORS} == set(callerid.MESSAGE_TYPES)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("8017", "message truncated: 2 octets, at least 3 needed"),
        ("801701083033303130393330020b3133383030313338303030",
         "message truncated: length says 23 octets of body, 22 present"),
        ("801701083033303130393330020b31333830303133383030309c", "checksum mismatch"),
        ("050100fa", "unknown message type 0x05"),
        ("800401083031fd", "parameter at offset 0 runs past the end of the message"),
        ("040331323321", "SDMF body must start with 8 digits MMDDHHMM"),
    ],
)
def test_bad_octets_get_exact_errors(data: str, message: str) -> None:
    raw = bytes.fromhex(data)
    if message == "checksum mismatch" or raw[0] in (0x05,) or message.startswith(("parameter", "SDMF")):
        raw = raw[:-1] + bytes([(-sum(raw[:-1])) & 0xFF]) if message != "checksum mismatch" else raw
    with pytest.raises(DecodeError) as exc:
        decode_fsk_message(raw)
    assert str(exc.value) == message


def test_unknown_mdmf_parameters_are_skipped() -> None:
    body = bytes([0x03, 2, 0x31, 0x32, 0x02, 3, 0x35, 0x35, 0x35])   # 0x03 dialled number: not ours to show
    msg = bytes([0x80, len(body)]) + body
    msg += bytes([(-sum(msg)) & 0xFF])
    assert decode_fsk_message(msg) == CallerId(number="555")


@pytest.mark.parametrize(
    ("cid", "message"),
    [
        (CallerId(number="12a4", month=1, day=1, hour=0, minute=0), "number: must be 1-20 digits, got '12a4'"),
        (CallerId(number="1" * 21, month=1, day=1, hour=0, minute=0), "number: must be 1-20 digits"),
        (CallerId(number="1", month=13, day=1, hour=0, minute=0), "date/time: out of range 13-01 00:00"),
    ],
)
def test_bad_values_name_the_field(cid: CallerId, message: str) -> None:
    with pytest.raises(EncodeError, match=message.replace("(", r"\(")):
        callerid.encode_mdmf(cid)


@pytest.mark.parametrize(
    ("digits", "want"),
    [
        ("A13800138000C", CallerId(number="13800138000")),
        ("A13800138000#", CallerId(number="13800138000")),
        ("13800138000#", CallerId(number="13800138000")),
        ("B00C", CallerId(number_absent="P")),
        ("B10C", CallerId(number_absent="O")),
        ("D1#", CallerId(number_absent="P")),
        ("D3#", CallerId(number_absent="O")),
    ],
)
def test_dtmf_clip_forms(digits: str, want: CallerId) -> None:
    assert decode_dtmf_clip(digits) == want


def test_dtmf_clip_encode_and_errors() -> None:
    assert encode_dtmf_clip(CallerId(number="13800138000")) == "A13800138000C"
    assert encode_dtmf_clip(CallerId(number="13800138000"), "#") == "A13800138000#"
    assert encode_dtmf_clip(CallerId(number_absent="P")) == "B00C"
    with pytest.raises(DecodeError, match=r"DTMF caller ID must end with 'C' or '#': 'A123'"):
        decode_dtmf_clip("A123")
    with pytest.raises(DecodeError, match="not understood"):
        decode_dtmf_clip("AB12C")
    with pytest.raises(EncodeError, match="terminator"):
        encode_dtmf_clip(CallerId(number="1"), "*")


@pytest.mark.parametrize(("digits", "want"), [
    ("6A13800130002C", "13800130002"),          # a caller's last key left on the line, then the caller ID
    ("#*5A13800130002#", "13800130002"),
    ("9D1#", None),
])
def test_dtmf_clip_skips_what_precedes_the_start_code(digits: str, want: str | None) -> None:
    assert decode_dtmf_clip(digits).number == want


def test_fsk_reader_finds_the_message_after_the_seizure_and_stops_at_its_length() -> None:
    msg = bytes.fromhex(callerid.VECTORS[0][0])
    reader = callerid.FskMessageReader()
    got = [reader.feed(b) for b in b"\x55\xaa\x00" + msg + b"\x80\x17"]
    assert [g for g in got if g is not None] == [msg]
    assert got.index(msg) == 3 + len(msg) - 1               # complete on its checksum octet
    assert reader.in_progress                               # the next message's start is kept ...
    reader.reset()
    assert not reader.in_progress                           # ... until a new seizure drops it


def test_fsk_frame_is_seizure_marks_then_message() -> None:
    cid = CallerId(number="13800138000", month=3, day=1, hour=9, minute=30)
    frame = callerid.callerid_frame(cid, "v23")
    assert (frame.seizure_bits, frame.mark_bits, frame.standard) == (300, 180, "v23")   # line-signals.md
    assert frame.message == bytes.fromhex(callerid.VECTORS[0][0])
    assert [callerid.fsk_standard(z) for z in ("cn", "us", "de")] == ["bell202", "bell202", "v23"]
    with pytest.raises(EncodeError, match="FSK standard: must be one of bell202, v23, got 'v21'"):
        callerid.fsk_frame(frame.message, "v21")


def feed(reader: callerid.DtmfClipReader, digits: str, at: int, step: int = 140) -> list[bool]:
    return [reader.feed(d, at + i * step) for i, d in enumerate(digits)]


def test_dtmf_reader_a_start_code_begins_a_new_message() -> None:
    r = callerid.DtmfClipReader(gap_ms=1000)
    assert feed(r, "6A138C", 0) == [False, True, False, False, False, False]
    assert r.take() == CallerId(number="138") and r.discarded == 1
    feed(r, "A111C", 0)
    assert feed(r, "A222C", 5000)[0] is True                 # a complete message is replaced by a new one
    assert r.take() == CallerId(number="222")
    assert r.take() is None                                 # taken: nothing left


def test_dtmf_reader_discards_what_is_no_caller_id() -> None:
    r = callerid.DtmfClipReader(gap_ms=1000)
    feed(r, "A123C", 0)
    feed(r, "45", 800)                                      # after the terminator: not part of it
    assert r.take() == CallerId(number="123") and r.discarded == 2
    feed(r, "*#C", 0)                                       # no message starts with these
    assert r.digits == "" and r.discarded == 5
    feed(r, "1380", 0)
    feed(r, "555#", 2000)                                   # too late to continue: a new bare number
    assert r.take() == CallerId(number="555") and r.discarded == 9
    feed(r, "A12", 0)
    with pytest.raises(DecodeError, match="DTMF caller ID has no terminator: 'A12'"):
        r.take()


def _mdmf(params: bytes) -> bytes:
    body = bytes([0x80, len(params)]) + params
    return body + bytes([(-sum(body)) & 0xFF])


def test_a_number_longer_than_any_caller_id_carries_is_refused_not_stored() -> None:
    """An MDMF number parameter of 21 characters or more (up to 255 fit the message), or as many DTMF
    digits: the message is refused (a damaged or hostile line), never passed on as an ANI."""
    assert decode_fsk_message(_mdmf(b"\x02\x14" + b"1" * 20)) == CallerId(number="1" * 20)
    with pytest.raises(DecodeError) as exc:
        decode_fsk_message(_mdmf(b"\x02\xc8" + b"1" * 200))
    assert str(exc.value) == "number: 200 characters, at most 20"
    assert decode_dtmf_clip("A" + "2" * 20 + "C") == CallerId(number="2" * 20)
    for digits in ("A" + "2" * 21 + "C", "3" * 70 + "#"):
        with pytest.raises(DecodeError, match="at most 20"):
            decode_dtmf_clip(digits)
