"""Q.931 messages and IEs: every class's vectors decode and encode back; hostile octets are ignored
(DecodeError) or decode with the §5.8 problems the call layer answers; random valid messages make
the round trip; random damage never raises anything but DecodeError."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from drivers.base import SpanConfig
from e1t1.errors import DecodeError, EncodeError
from e1t1.isdn import q931
from e1t1.isdn.q931 import (
    BearerCapability,
    CalledNumber,
    CallingNumber,
    CallRef,
    CallState,
    CallStateValue,
    Cause,
    ChangeStatus,
    ChannelId,
    Connect,
    Disconnect,
    Display,
    Facility,
    InformationElement,
    Keypad,
    Message,
    NotificationIndicator,
    Npi,
    Presentation,
    ProblemKind,
    ProgressIndicator,
    RawIE,
    RedirectingNumber,
    RestartClass,
    RestartIndicator,
    Screening,
    SendingComplete,
    ServiceStatus,
    Setup,
    Shift,
    Signal,
    Ton,
    UnknownMessage,
    decode,
)

HOSTILE: list[dict[str, Any]] = json.loads((Path(__file__).parent / "vectors" / "q931_hostile.json").read_text())

#: every vector of every class: (class, vector), harvested by the one test below
VECTORS: list[tuple[type[Any], Any]] = (
    [(cls, v) for cls in q931.INFORMATION_ELEMENTS for v in cls.VECTORS]
    + [(cls, v) for cls in q931.MESSAGES for v in cls.VECTORS]
)


@pytest.mark.parametrize(("cls", "vector"), VECTORS, ids=lambda x: x.__name__ if isinstance(x, type) else str(x[0]))
def test_every_vector_decodes_and_encodes_back(cls: type[Any], vector: Any) -> None:
    if issubclass(cls, InformationElement):
        hexdata, fields = vector
        data, want = bytes.fromhex(hexdata), cls(**fields)
        assert cls.decode(data) == want
        assert want.encode() == data
        return
    data = bytes.fromhex(vector.octets)
    want = cls(vector.cr, vector.ies, vector.problems)
    got = decode(data, vector.sent_by)
    assert got == want
    assert type(got) is cls
    assert want.encode() == data
    assert got.encode() == data


def test_every_class_has_vectors_and_the_facts_list_is_declared() -> None:
    assert [c.__name__ for c in q931.INFORMATION_ELEMENTS if not c.VECTORS] == []
    assert [c.__name__ for c in q931.MESSAGES if not c.VECTORS] == []
    facts_messages = {0x05, 0x02, 0x01, 0x07, 0x0F, 0x03, 0x0D, 0x45, 0x4D, 0x5A, 0x46, 0x4E, 0x7D, 0x75, 0x7B,
                      0x6E, 0x62}
    assert {(q931.PD_Q931, c) for c in facts_messages} | {(0x43, 0x07), (0x43, 0x0F)} <= set(q931.MESSAGE_CLASSES)
    facts_ies = {0x04, 0x08, 0x14, 0x18, 0x1E, 0x28, 0x2C, 0x34, 0x6C, 0x70, 0x74, 0x79, 0xA1, 0x01}
    assert facts_ies <= set(q931.IE_CLASSES)
    assert {Shift(0).encode(), Shift(0, locking=False).encode()} == {b"\x90", b"\x98"}
    # every message's mandatory IE is a class we decode, and its vectors carry it
    for m in q931.MESSAGES:
        for rule in m.RULES:
            assert rule.ie in q931.INFORMATION_ELEMENTS
            if rule.mandatory == "both":
                assert all(any(isinstance(ie, rule.ie) for ie in v.ies) for v in m.VECTORS), (m.NAME, rule.ie.NAME)


def test_the_facts_restart_capture() -> None:
    msg = decode(bytes.fromhex("08 02 00 00 46 79 01 87"), "network")
    assert isinstance(msg, q931.Restart)
    assert msg.cr.is_global and msg.cr.from_originator
    assert msg.get(RestartIndicator) == RestartIndicator(RestartClass.all_interfaces)
    ack = q931.RestartAck(msg.cr.answer(), (RestartIndicator(),))
    assert ack.encode() == bytes.fromhex("08 02 80 00 4e 79 01 87")


@pytest.mark.parametrize("case", HOSTILE, ids=lambda c: c["name"])
def test_hostile_octets_get_their_section_5_8_reading(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["octets"])
    if "ignored" in case:
        with pytest.raises(DecodeError) as exc:
            decode(data, case["sent_by"])
        assert str(exc.value) == case["ignored"]
        return
    msg = decode(data, case["sent_by"])
    got = [(p.kind.value, p.ie, p.codeset, p.mandatory) for p in msg.problems]
    want = [(p["kind"], int(p["ie"], 16) if "ie" in p else None, p.get("codeset", 0), p.get("mandatory", False))
            for p in case["problems"]]
    assert got == want
    for p, w in zip(msg.problems, case["problems"], strict=True):
        if "detail" in w:
            assert p.detail == w["detail"]
    verdict = msg.assess()
    assert (verdict.act, verdict.cause) == (case["act"], case["cause"])
    if "diagnostic" in case:
        assert verdict.ies == tuple(int(x, 16) for x in case["diagnostic"])
    assert msg.trailing == bytes.fromhex(case.get("trailing", ""))
    if "channel" in case:
        channel = msg.get(ChannelId)
        assert channel is not None and channel.channel == case["channel"]
    assert msg.encode() == data          # whatever was wrong, the octets come back as they came
    assert decode(msg.encode(), case["sent_by"]) == msg


def test_every_section_5_8_kind_has_a_hostile_vector() -> None:
    kinds = {p["kind"] for case in HOSTILE for p in case.get("problems", [])}
    assert kinds == {k.value for k in ProblemKind}
    assert {case["cause"] for case in HOSTILE if "cause" in case} == {None, 96, 97, 99, 100}


def test_a_setup_for_ts16_decodes_and_names_no_b_channel() -> None:
    """TS16 is E1's D-channel, TS24 T1's: the IE is well formed, the channel no bearer of the span."""
    e1, t1 = SpanConfig("e1", ts16="dchan"), SpanConfig("t1", "esf", "b8zs", False, "dchan")
    for span, ts in ((e1, 16), (t1, 24)):
        setup = Setup(CallRef(7), (BearerCapability.speech("alaw"), ChannelId.b_channel(ts, exclusive=True)))
        got = decode(setup.encode(), "network")
        assert got.problems == ()
        channel = got.get(ChannelId)
        assert channel is not None and channel.channel == ts and channel.exclusive
        assert ts not in span.bearers() and ts - 1 in span.bearers()


def test_repeated_invalid_and_empty_ies_read_as_section_5_8_says() -> None:
    base = "08 02 00 01 05 04 03 80 90 a3 18 03 a9 83 85"
    two = decode(bytes.fromhex(base + " 70 02 81 31 70 02 81 32"), "user")
    assert two.get(CalledNumber) == CalledNumber("1")            # the first one is handled
    assert len(two.all(CalledNumber)) == 1
    bad_first = decode(bytes.fromhex(base + " 70 03 a1 31 41 70 02 81 32"), "user")
    assert bad_first.get(CalledNumber) is None                    # the first is invalid: no called number
    assert [p.kind for p in bad_first.problems] == [ProblemKind.INVALID, ProblemKind.DUPLICATE]
    empty = decode(bytes.fromhex(base + " 70 00"), "user")
    assert empty.get(CalledNumber) is None and empty.problems == ()
    assert empty.ies[-1] == RawIE(0, 0x70, b"")
    progress = decode(bytes.fromhex("08 02 80 01 01 1e 02 82 88 1e 02 80 82"), "network")
    assert progress.all(ProgressIndicator) == (ProgressIndicator(location=q931.LOC_PUBLIC_LOCAL),
                                               ProgressIndicator(q931.PROGRESS_DESTINATION_NOT_ISDN))
    assert progress.problems == ()


def test_a_display_longer_than_any_network_allows_is_invalid_contents() -> None:
    text = b"x" * (q931.MAX_DISPLAY + 1)
    with pytest.raises(DecodeError, match="display: 83 characters, at most 82"):
        Display.decode(bytes((0x28, len(text))) + text)
    msg = decode(bytes.fromhex("08 02 80 01 07 28 53") + text, "network")
    assert [(p.kind, p.ie) for p in msg.problems] == [(ProblemKind.INVALID, 0x28)]
    assert msg.get(Display) is None and msg.assess() == q931.Verdict(True, 100, (0x28,))


def test_spare_bits_are_read_as_zero_and_written_zero() -> None:
    # cause octet 3 with its spare bit (bit 5) set, restart indicator with spare bits set
    msg = decode(bytes.fromhex("08 02 00 01 45 08 02 90 90"), "user")
    assert msg.problems == () and msg.get(Cause) == Cause()
    assert msg.encode() == bytes.fromhex("08 02 00 01 45 08 02 80 90")
    assert RestartIndicator.decode(bytes.fromhex("79 01 f7")) == RestartIndicator()


def test_decoded_setup_reads_as_the_call_layer_wants() -> None:
    data = bytes.fromhex(Setup.VECTORS[0].octets)
    setup = decode(data, "user")
    assert isinstance(setup, Setup)
    calling, called = setup.get(CallingNumber), setup.get(CalledNumber)
    assert calling is not None and called is not None
    assert (calling.digits, calling.ton.name, calling.npi.name) == ("13800138000", "national", "isdn")
    assert calling.presentation is not None and calling.screening is not None
    assert (calling.presentation.name, calling.screening.name) == ("allowed", "user_unscreened")
    assert called.digits == "0755"
    assert setup.get(SendingComplete) == SendingComplete()
    channel = setup.get(ChannelId)
    assert channel is not None and (channel.channel, channel.exclusive) == (5, False)
    bearer = setup.get(BearerCapability)
    assert bearer is not None and bearer.layer1 == q931.L1_ALAW
    assert setup.get(Display) is None
    assert setup.assess() == q931.Verdict(True)
    assert setup.cr.from_originator and not setup.cr.answer().from_originator


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: CallRef(0x8000), "call reference: value 32768 does not fit in 2 octet(s)"),
        (lambda: CallRef(1, length=3), "call reference: length 3, at most 2"),
        (lambda: ChannelId().encode(), "channel identification: octet 3.3: no channel number"),
        (lambda: ChannelId(channels=(128,)).encode(), "channel number 128 does not fit in 7 bits"),
        (lambda: ChannelId(channels=(1,), slot_map=b"\x01"), "channel numbers or a slot map, not both"),
        (lambda: CalledNumber("12a").encode(), "called party number: number digits: 'a' not allowed"),
        (lambda: CallingNumber("1", presentation=Presentation.allowed).encode(), "presentation and screening go "),
        (lambda: Keypad("\u00e9").encode(), "keypad facility: keypad: must be IA5"),
        (lambda: Display("x" * 83), "display: 83 characters, at most 82"),
        (lambda: Facility(b"\x00" * 256).encode(), "facility: 256 octets of contents, at most 255 fit"),
        (lambda: BearerCapability(layer1=0x20).encode(), "bearer capability: octet 5: layer1 32 does not fit"),
        (lambda: Signal(256).encode(), "signal: octet 3: value 256 does not fit in 8 bits"),
        (lambda: RedirectingNumber("1", reason=1).encode(), "redirecting number: octet 3b needs octet 3a"),
        (lambda: CallState(5).encode(), "call state: octet 3: state 5 is reserved"),  # type: ignore[arg-type]
        (lambda: Connect(CallRef(1), (RawIE(6, 0x28, b"A"),)).encode(),
         "CONNECT: IE 0x28 of codeset 6 where codeset 0 is in force"),
        (lambda: Connect(CallRef(1), (RawIE(0, 0x28),)).encode(), "a single-octet IE has bit 8 set"),
        (lambda: Shift(8), "shift: codeset 8 is not 0-7"),
    ],
)
def test_what_cannot_be_encoded_says_why(make: Callable[[], Any], message: str) -> None:
    with pytest.raises(EncodeError) as exc:
        make()
    assert message in str(exc.value)


def test_a_locking_shift_then_codeset_six_ies_encode_in_order() -> None:
    msg = Connect(CallRef(1, True), (Display("A"), Shift(6), RawIE(6, 0x28, b"B"), Shift(7, locking=False),
                                     RawIE(7, 0x01, b"C"), RawIE(6, 0x29, b"D")))
    data = msg.encode()
    assert data == bytes.fromhex("08 02 80 01 07 28 01 41 96 28 01 42 9f 01 01 43 29 01 44")
    got = decode(data, "network")
    assert got.ies == msg.ies
    assert [(p.kind, p.ie, p.codeset) for p in got.problems] == [
        (ProblemKind.UNKNOWN_OPTIONAL, 0x28, 6), (ProblemKind.UNKNOWN_OPTIONAL, 0x01, 7),
        (ProblemKind.UNKNOWN_OPTIONAL, 0x29, 6)]


# --- Random valid messages make the round trip (seeded) -------------------------------------------------

def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _pres(rng: random.Random) -> dict[str, Any]:
    if rng.random() < 0.3:
        return {}
    return {"presentation": rng.choice(list(Presentation)), "screening": rng.choice(list(Screening))}


#: a random valid IE of each class
RANDOM_IE: dict[type[InformationElement], Callable[[random.Random], InformationElement]] = {
    BearerCapability: lambda r: r.choice([
        BearerCapability.speech(r.choice(["alaw", "ulaw"]), r.choice([q931.ITC_SPEECH, q931.ITC_AUDIO_3K1])),
        BearerCapability(q931.ITC_UNRESTRICTED_DIGITAL),
        BearerCapability(q931.ITC_UNRESTRICTED_DIGITAL, rate=q931.RATE_MULTIRATE, multiplier=r.randint(2, 30)),
        BearerCapability(q931.ITC_UNRESTRICTED_DIGITAL, layer1=q931.L1_V110,
                         layer1_extra=bytes([0x80 | r.randint(0, 127)]), layer2=r.randint(0, 31),
                         layer3=r.randint(0, 31), layer3_extra=b"\x10\x80"),
    ]),
    Cause: lambda r: Cause(r.randint(0, 127), r.choice([0, 1, 2, 3, 4, 5, 7, 10]), r.randint(0, 3),
                           r.choice([None, 0]), bytes(r.randint(0, 255) for _ in range(r.randint(0, 3)))),
    CallState: lambda r: CallState(r.choice(list(CallStateValue)), r.randint(0, 3)),
    ChannelId: lambda r: r.choice([
        ChannelId.b_channel(r.randint(1, 31), r.random() < 0.5),
        ChannelId(tuple(r.randint(1, 31) for _ in range(r.randint(1, 4))), exclusive=r.random() < 0.5),
        ChannelId(selection=q931.SELECT_ANY),
        ChannelId(exclusive=True, d_channel=True, selection=q931.SELECT_NO_CHANNEL),
        ChannelId((r.randint(1, 23),), interface=bytes([0x80 | r.randint(0, 127)])),
        ChannelId(slot_map=bytes(r.randint(0, 255) for _ in range(r.choice([3, 4])))),
    ]),
    Facility: lambda r: Facility(bytes(r.randint(0, 255) for _ in range(r.randint(1, 20)))),
    ProgressIndicator: lambda r: ProgressIndicator(r.choice([1, 2, 3, 4, 5, 8]), r.choice([0, 1, 2, 3, 4, 5]),
                                                   r.randint(0, 3)),
    NotificationIndicator: lambda r: NotificationIndicator(r.randint(0, 127)),
    # (an empty display would be an empty IE, read as absent: §4.5.1)
    Display: lambda r: Display("".join(chr(r.randint(0x20, 0x7E)) for _ in range(r.randint(1, 34))),
                               r.choice([None, 0xB1])),
    Keypad: lambda r: Keypad(r.choice(["", "*"]) + _digits(r, r.randint(1, 8)) + r.choice(["", "#"])),
    Signal: lambda r: Signal(r.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 0x3F, 0x40, 0x47, 0x4F])),
    CallingNumber: lambda r: CallingNumber(_digits(r, r.randint(0, 15)), r.choice(list(Ton)), r.choice(list(Npi)),
                                           **_pres(r)),
    CalledNumber: lambda r: CalledNumber(_digits(r, r.randint(1, 15)), r.choice(list(Ton)), r.choice(list(Npi))),
    RedirectingNumber: lambda r: RedirectingNumber(_digits(r, r.randint(1, 12)), r.choice(list(Ton)),
                                                   r.choice(list(Npi)), Presentation.allowed,
                                                   r.choice(list(Screening)), r.choice([None, 1, 2, 15])),
    RestartIndicator: lambda r: RestartIndicator(r.choice(list(RestartClass))),
    ChangeStatus: lambda r: ChangeStatus(r.choice(list(ServiceStatus))),
    SendingComplete: lambda r: SendingComplete(),
}


def _random_message(rng: random.Random) -> tuple[Message, q931.Side]:
    cls = rng.choice(q931.MESSAGES)
    sent_by: q931.Side = rng.choice(["network", "user"])
    ies: list[InformationElement] = []
    for rule in sorted(cls.RULES, key=lambda r: (r.ie is not SendingComplete, r.ie.ID)):
        if rule.mandatory_from(sent_by) or rng.random() < 0.4:
            ies.extend(RANDOM_IE[rule.ie](rng) for _ in range(rng.randint(1, rule.repeat)))
    if cls in (q931.Restart, q931.RestartAck):      # §5.5.2: the class says whether a channel id goes with it
        ri = next(ie for ie in ies if isinstance(ie, RestartIndicator))
        has_channel = any(isinstance(ie, ChannelId) for ie in ies)
        if ri.restart_class is RestartClass.indicated_channels and not has_channel:
            ies.insert(0, ChannelId.b_channel(rng.randint(1, 31), True))
        if ri.restart_class is RestartClass.all_interfaces:
            ies = [ie for ie in ies if not isinstance(ie, ChannelId)]
    length = rng.choice([1, 2, 2, 2])
    cr = CallRef(rng.randrange(0, 1 << (8 * length - 1)), rng.random() < 0.5, length)
    return cls(cr, tuple(ies)), sent_by


def test_random_valid_messages_make_the_round_trip() -> None:
    rng = random.Random(931)
    seen: set[type[Any]] = set()
    for _ in range(3000):
        msg, sent_by = _random_message(rng)
        data = msg.encode()
        got = decode(data, sent_by)
        assert got == msg, data.hex()
        assert got.encode() == data
        seen.add(type(msg))
        seen.update(type(ie) for ie in msg.ies)
    assert seen >= set(q931.MESSAGES) | (set(q931.INFORMATION_ELEMENTS) - {Shift})


# --- Damage never raises anything but DecodeError ----------------------------------------------------------

def _damaged(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        what = rng.random()
        if what < 0.4 and b:
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        elif what < 0.6 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif what < 0.8:
            del b[rng.randrange(len(b) + 1):]
        else:
            i = rng.randrange(len(b) + 1)
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
    return bytes(b)


def test_damaged_and_random_octets_give_a_message_or_a_decode_error() -> None:
    rng = random.Random(5_8)
    seeds = [bytes.fromhex(v.octets) for m in q931.MESSAGES for v in m.VECTORS]
    seeds += [bytes.fromhex(c["octets"]) for c in HOSTILE]
    decoded = ignored = 0
    for i in range(20000):
        if i % 4 == 0:      # random IEs behind a valid header
            data = bytes([rng.choice([0x08, 0x43]), 0x02, rng.randrange(256), rng.randrange(256), rng.randrange(256)])
            data += bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
        else:
            data = _damaged(rng, rng.choice(seeds))
        sent_by: q931.Side = rng.choice(["network", "user"])
        try:
            msg = decode(data, sent_by)
        except DecodeError:
            ignored += 1
            continue
        decoded += 1
        again = msg.encode()
        assert len(again) == len(data)                 # spare bits aside, the octets come back
        assert decode(again, sent_by) == msg
        msg.assess()
    assert decoded > 10000 and ignored > 100


@pytest.mark.parametrize("cls", [c for c in q931.INFORMATION_ELEMENTS if c not in (Shift, SendingComplete)],
                         ids=lambda c: c.__name__)
def test_random_contents_of_each_ie_decode_or_give_a_decode_error(cls: type[InformationElement]) -> None:
    rng = random.Random(cls.ID)
    valid = 0
    for _ in range(3000):
        contents = bytes(rng.randrange(256) for _ in range(rng.randint(0, 8)))
        try:
            ie = cls.from_contents(contents)
        except DecodeError:
            continue
        valid += 1
        assert cls.from_contents(ie.contents()) == ie     # what decodes encodes to the same reading
        assert len(ie.contents()) == len(contents)
    assert valid > 0


def test_bench_mix_encodes_and_decodes_each_message() -> None:
    assert q931.bench_mix(2) == 2 * len(q931.BENCH_MIX)
    assert isinstance(q931.BENCH_MIX[0][0], Setup)
    for msg, sent_by in q931.BENCH_MIX:
        assert decode(msg.encode(), sent_by) == msg


def test_an_unknown_message_keeps_its_type_and_octets() -> None:
    data = bytes.fromhex("08 02 00 01 60 08 02 80 90")
    msg = decode(data, "user")
    assert isinstance(msg, UnknownMessage)
    assert (msg.pd, msg.mtype) == (0x08, 0x60)
    assert msg.get(Cause) == Cause()
    assert msg.encode() == data
    assert msg.assess() == q931.Verdict(False, q931.CAUSE_MESSAGE_TYPE_NONEXISTENT)
    assert isinstance(decode(bytes.fromhex("08 02 00 01 45 08 02 80 90"), "user"), Disconnect)
