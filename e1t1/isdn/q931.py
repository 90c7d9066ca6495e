"""Q.931 messages and information elements of a PRI D-channel (EuroISDN on E1, NI-2 on T1).

A Q.921 link hands Q.931 octets upward; :func:`decode` makes a typed message of them and
:meth:`Message.encode` gives the octets back, exactly. A message (Q.931 §4) is a protocol
discriminator (0x08; NI-2's maintenance messages use 0x43), a call reference (§4.3: 0-2 octets
of value and a flag that is 0 in messages from the side that chose the value and 1 in messages
to it; value 0 is the global call reference), a message type (§4.4) and information elements in
order (§4.5), single-octet or identifier-length-contents, in codeset 0 unless a shift says
otherwise (§4.5.2-4.5.4).

Every message and IE is declared once below: a class with its clause, its layout and its own
vectors (octets in hex and what they decode to), which tests/e1t1/isdn/test_q931.py harvests.
An IE's contents are declared with construct from building blocks written once here:
:class:`Octet` (one octet as bit fields, most significant first), :class:`ExtGroup` (octets 3,
3a, 3b... chained by their extension bit, §4.5.1), :class:`If` and :class:`Peeked` (octets
present on a condition), :class:`Fields` (parts in order) and leaves (IA5 characters, a chain
of 7-bit channel numbers, raw octets). Each part reads into and writes from one flat mapping,
so an IE's fields are its dataclass's fields.

Decoding hostile octets never raises anything but DecodeError, and raises it only when there
is no message to act on: a protocol discriminator not ours, too short for a message type, a
call reference of a bad format (§5.8.1, §5.8.2, §5.8.3.1: the receiver ignores those).
Everything else decodes, and what is wrong is data: :attr:`Message.problems`, each a
:class:`Problem` with its kind, the IE identifier and its codeset, and whether that IE is
mandatory there. The kinds are §5.8's cases: an unknown message type, a mandatory IE missing
(per message and, where Q.931 says so, per direction), an IE with invalid contents, a
duplicated IE, an unrecognised IE marked "comprehension required" (identifier 0000 xxxx in
codeset 0, §4.5.1), an unrecognised optional IE, a recognised IE the message does not carry
(§5.8.7.3), an IE out of sequence (§5.8.5.1). :meth:`Message.assess` turns them into what §5.8
asks of the receiver: whether to act on the message, and the cause to answer with.

Kept as received, so that encoding gives the same octets: an unknown or invalid IE (as a
:class:`RawIE`, the invalid one beside its problem), IEs of other codesets, the shifts
themselves, an empty IE (which §4.5.1 reads as absent), and the octets after an IE whose
length runs past the end (:attr:`Message.trailing`). Spare bits are read as if they were 0
(§4.5.1 has senders code them 0), so only a message with a spare bit set encodes differently.

The call layer on top: each DL-DATA indication's octets go through ``decode(octets, sent_by)``
(``sent_by`` the peer's side); a DecodeError is counted and ignored. The call reference lookup
(an unknown one: RELEASE COMPLETE 81, §5.8.3.2) and the state check (STATUS 101) are its own;
then ``msg.assess()`` says whether to act and with which cause to answer (RELEASE COMPLETE to a
SETUP, RELEASE to a DISCONNECT, STATUS otherwise), and ``msg.get(CalledNumber)`` and the like
read the IEs. It sends ``Setup(cr, (BearerCapability.speech("alaw"), ChannelId.b_channel(5), ...))
.encode()``, IEs in ascending order of identifier (§4.5.1), with ``cr.answer()`` for the
replies on a call reference the other side chose.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, NamedTuple, Self, TypeVar

from construct import Construct, ConstructError, GreedyBytes, Int8ub

from e1t1.errors import DecodeError, EncodeError

#: Q.931 §4.2: call control messages
PD_Q931 = 0x08
#: NI-2's maintenance messages (SERVICE, SERVICE ACKNOWLEDGE); AT&T's 0x03 is not ours
PD_MAINTENANCE = 0x43
PROTOCOL_DISCRIMINATORS = (PD_Q931, PD_MAINTENANCE)

#: who sent a message: some IEs are mandatory in one direction only
Side = Literal["network", "user"]

#: the longest call reference value a PRI uses (§4.3: two octets); longer ones are ignored (§5.8.3.1)
MAX_CALL_REFERENCE_LENGTH = 2


# --- Values with names (Q.931 §4.5; the names are the issue's Definitions) -------------------------------

class Ton(enum.IntEnum):
    """Type of number, Q.931 §4.5.8/4.5.10 octet 3 bits 7-5 (5 and 7 are reserved)."""

    unknown = 0
    international = 1
    national = 2
    network = 3          # network specific number
    subscriber = 4
    abbreviated = 6


class Npi(enum.IntEnum):
    """Numbering plan identification, Q.931 §4.5.8/4.5.10 octet 3 bits 4-1 (others reserved)."""

    unknown = 0
    isdn = 1             # ISDN/telephony numbering plan, E.164
    data = 3             # X.121
    telex = 4            # F.69
    national = 8         # national standard numbering plan
    private = 9


class Presentation(enum.IntEnum):
    """Presentation indicator, Q.931 §4.5.10 octet 3a bits 7-6 (3 is reserved)."""

    allowed = 0
    restricted = 1
    unavailable = 2      # number not available due to interworking


class Screening(enum.IntEnum):
    """Screening indicator, Q.931 §4.5.10 octet 3a bits 2-1."""

    user_unscreened = 0  # user-provided, not screened
    user_passed = 1      # user-provided, verified and passed
    user_failed = 2      # user-provided, verified and failed
    network = 3          # network provided


class CallStateValue(enum.IntEnum):
    """Call state value, Q.931 §4.5.7 (U and N states share the numbers; N22 is the network's only;
    61 and 62 are the global call reference's REST 1 and REST 2, REST 0 is null)."""

    null = 0
    call_initiated = 1
    overlap_sending = 2
    outgoing_call_proceeding = 3
    call_delivered = 4
    call_present = 6
    call_received = 7
    connect_request = 8
    incoming_call_proceeding = 9
    active = 10
    disconnect_request = 11
    disconnect_indication = 12
    suspend_request = 15
    resume_request = 17
    release_request = 19
    call_abort = 22
    overlap_receiving = 25
    restart_request = 61
    restart = 62


class RestartClass(enum.IntEnum):
    """Restart indicator class, Q.931 §4.5.25 octet 3 bits 3-1 (others reserved)."""

    indicated_channels = 0   # the Channel identification IE names them (and must be present)
    single_interface = 6
    all_interfaces = 7       # the Channel identification IE must be absent


class ServiceStatus(enum.IntEnum):
    """NI-2 change status, new status (octet 3 bits 3-1)."""

    in_service = 0
    maintenance = 1
    out_of_service = 2


# Bearer capability (§4.5.5): information transfer capability, transfer mode and rate, layer 1 protocols
ITC_SPEECH = 0x00
ITC_UNRESTRICTED_DIGITAL = 0x08
ITC_RESTRICTED_DIGITAL = 0x09
ITC_AUDIO_3K1 = 0x10
ITC_UNRESTRICTED_DIGITAL_TONES = 0x11
ITC_VIDEO = 0x18
MODE_CIRCUIT = 0x0
MODE_PACKET = 0x2
RATE_64K = 0x10
RATE_MULTIRATE = 0x18
L1_V110 = 0x01
L1_ULAW = 0x02
L1_ALAW = 0x03

# Coding standard (bits 7-6 of the first octet of several IEs)
CODING_ITU = 0
CODING_NATIONAL = 2

# Location (§4.5.12 / Q.850)
LOC_USER = 0
LOC_PRIVATE_LOCAL = 1
LOC_PUBLIC_LOCAL = 2
LOC_TRANSIT = 3
LOC_PUBLIC_REMOTE = 4
LOC_PRIVATE_REMOTE = 5
LOC_INTERNATIONAL = 7
LOC_BEYOND_INTERWORKING = 10

# Cause values (ITU-T Q.850): the ones the call layer sends or reads
CAUSE_UNALLOCATED = 1
CAUSE_NO_ROUTE_DESTINATION = 3
CAUSE_CHANNEL_UNACCEPTABLE = 6
CAUSE_NORMAL_CLEARING = 16
CAUSE_USER_BUSY = 17
CAUSE_NO_USER_RESPONDING = 18
CAUSE_NO_ANSWER = 19
CAUSE_CALL_REJECTED = 21
CAUSE_NUMBER_CHANGED = 22
CAUSE_DESTINATION_OUT_OF_ORDER = 27
CAUSE_INVALID_NUMBER_FORMAT = 28
CAUSE_RESPONSE_TO_STATUS_ENQUIRY = 30
CAUSE_NORMAL_UNSPECIFIED = 31
CAUSE_NO_CIRCUIT_AVAILABLE = 34
CAUSE_NETWORK_OUT_OF_ORDER = 38
CAUSE_TEMPORARY_FAILURE = 41
CAUSE_SWITCH_CONGESTION = 42
CAUSE_REQUESTED_CHANNEL_UNAVAILABLE = 44
CAUSE_BEARER_NOT_IMPLEMENTED = 65
CAUSE_INVALID_CALL_REFERENCE = 81
CAUSE_CHANNEL_DOES_NOT_EXIST = 82
CAUSE_INCOMPATIBLE_DESTINATION = 88
CAUSE_MANDATORY_IE_MISSING = 96
CAUSE_MESSAGE_TYPE_NONEXISTENT = 97
CAUSE_MESSAGE_NOT_COMPATIBLE = 98
CAUSE_IE_NONEXISTENT = 99
CAUSE_INVALID_IE_CONTENTS = 100
CAUSE_WRONG_MESSAGE_FOR_STATE = 101
CAUSE_RECOVERY_ON_TIMER_EXPIRY = 102
CAUSE_PROTOCOL_ERROR = 111

# Progress description (§4.5.23 octet 4)
PROGRESS_NOT_END_TO_END_ISDN = 1
PROGRESS_DESTINATION_NOT_ISDN = 2
PROGRESS_ORIGINATION_NOT_ISDN = 3
PROGRESS_RETURNED_TO_ISDN = 4
PROGRESS_INTERWORKING = 5
PROGRESS_INBAND = 8

# Signal value (§4.5.28 octet 3)
SIGNAL_DIAL_TONE = 0x00
SIGNAL_RINGBACK = 0x01
SIGNAL_INTERCEPT = 0x02
SIGNAL_CONGESTION = 0x03
SIGNAL_BUSY = 0x04
SIGNAL_CONFIRM = 0x05
SIGNAL_ANSWER = 0x06
SIGNAL_CALL_WAITING = 0x07
SIGNAL_OFF_HOOK_WARNING = 0x08
SIGNAL_TONES_OFF = 0x3F
SIGNAL_ALERTING_OFF = 0x4F

# Notification description (§4.5.22 octet 3)
NOTIFY_USER_SUSPENDED = 0
NOTIFY_USER_RESUMED = 1
NOTIFY_BEARER_CHANGE = 2

# Channel identification (§4.5.13): information channel selection, channel type
SELECT_NO_CHANNEL = 0
SELECT_AS_INDICATED = 1      # on a primary rate interface: octets 3.2 and 3.3 say which
SELECT_ANY = 3
CHANNEL_TYPE_B = 3           # B-channel units
CHANNEL_TYPE_H0 = 6
CHANNEL_TYPE_H11 = 8
CHANNEL_TYPE_H12 = 9

#: IA5 characters of a number (§4.5.8: digits, '*' and '#')
NUMBER_DIGITS = "0123456789*#"
#: the most digits a party number may carry here: an E.164 number has at most 15 and a private plan's
#: few more; a longer one (§4.5.8/§4.5.10 leave it to the network) is invalid contents (cause 100)
MAX_NUMBER_DIGITS = 32
#: the longest display the networks allow (§4.5.16: 34 or 82 octets, network dependent)
MAX_DISPLAY = 82


# --- The building blocks of IE contents (construct) ----------------------------------------------------

Kind = type[enum.IntEnum] | type[bool] | int | None


class Part(Construct):  # type: ignore[misc]
    """A construct whose value is a set of named fields, read into (and written from) one flat
    mapping shared by the parts of an IE. Reading raises DecodeError, writing EncodeError, each
    naming the octet at fault."""

    names: tuple[str, ...] = ()

    def parse_into(self, stream: io.BytesIO, out: dict[str, Any]) -> None:
        raise NotImplementedError

    def build_from(self, obj: Mapping[str, Any], stream: io.BytesIO) -> None:
        raise NotImplementedError

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        self.parse_into(stream, out)
        return out

    def _build(self, obj: Mapping[str, Any], stream: io.BytesIO, context: Any, path: str) -> Mapping[str, Any]:
        self.build_from(obj, stream)
        return obj


def _read_octet(stream: io.BytesIO, label: str) -> int:
    b = stream.read(1)
    if not b:
        raise DecodeError(f"ends before {label}")
    return b[0]


class Octet(Part):
    """One octet as bit fields, most significant first: ``Octet("octet 3", ("ton", 3, Ton), ("npi", 4, Npi))``.

    A field is ``(name, width)`` or ``(name, width, kind)``: kind None is a plain integer, ``bool`` a
    flag, an IntEnum a value that must be one of its members (others are reserved: invalid), an
    integer a constant the field must hold. A field named None is spare: read and ignored,
    written 0. Under an :class:`ExtGroup` (``ext=True``) the fields fill bits 7-1 and the group
    owns bit 8, the extension bit.
    """

    def __init__(self, label: str, *fields: tuple[Any, ...], ext: bool = False) -> None:
        super().__init__()
        self.label = label
        shift = 7 if ext else 8
        specs: list[tuple[str | None, int, int, Kind]] = []
        for f in fields:
            name, width = f[0], f[1]
            shift -= width
            specs.append((name, shift, (1 << width) - 1, f[2] if len(f) > 2 else None))
        if shift != 0:
            raise ValueError(f"{label}: fields of {8 - shift - (1 if ext else 0)} bits, not {7 if ext else 8}")
        self.specs = tuple(specs)
        self.names = tuple(n for n, _, _, k in specs if n is not None and not _is_constant(k))

    def decode_value(self, b: int, out: dict[str, Any]) -> None:
        for name, shift, mask, kind in self.specs:
            if name is None:
                continue
            v = (b >> shift) & mask
            if kind is None:
                out[name] = v
            elif kind is bool:
                out[name] = bool(v)
            elif _is_constant(kind):
                if v != kind:
                    raise DecodeError(f"{self.label}: {name} is {v}, must be {kind}")
            else:
                try:
                    out[name] = kind(v)  # type: ignore[operator]
                except ValueError:
                    raise DecodeError(f"{self.label}: {name} {v} is reserved") from None

    def encode_value(self, obj: Mapping[str, Any]) -> int:
        b = 0
        for name, shift, mask, kind in self.specs:
            if name is None:
                continue
            if _is_constant(kind):
                v = int(kind)  # type: ignore[arg-type]
            else:
                value = obj.get(name)
                if value is None:
                    raise EncodeError(f"{self.label}: {name} is missing")
                v = int(value)
                if kind is not None and kind is not bool and v not in kind._value2member_map_:  # type: ignore[union-attr]
                    raise EncodeError(f"{self.label}: {name} {v} is reserved")
            if not 0 <= v <= mask:
                raise EncodeError(f"{self.label}: {name} {v} does not fit in {mask.bit_length()} bits")
            b |= v << shift
        return b

    def parse_into(self, stream: io.BytesIO, out: dict[str, Any]) -> None:
        self.decode_value(_read_octet(stream, self.label), out)

    def build_from(self, obj: Mapping[str, Any], stream: io.BytesIO) -> None:
        stream.write(bytes((self.encode_value(obj),)))


def _is_constant(kind: Kind) -> bool:
    return isinstance(kind, int) and not isinstance(kind, bool)


class ExtGroup(Part):
    """Octets chained by their extension bit (Q.931 §4.5.1): bit 8 is 0 when another octet of the
    group follows, 1 on its last. ``ExtGroup(octet3, octet3a)``: octet 3 is always there, 3a when
    octet 3's bit 8 is 0; the fields of an octet not sent are None (and an octet is written when
    any of its fields is not None). Octets past the declared ones are kept, raw, under `extra`
    when the IE allows them (octets 5a-5d of a bearer capability); otherwise they make the IE
    invalid.
    """

    def __init__(self, *octets: Octet, extra: str | None = None) -> None:
        super().__init__()
        self.octets = octets
        self.extra = extra
        self.names = tuple(n for o in octets for n in o.names) + ((extra,) if extra else ())

    def parse_into(self, stream: io.BytesIO, out: dict[str, Any]) -> None:
        for i, octet in enumerate(self.octets):
            b = _read_octet(stream, octet.label)
            octet.decode_value(b & 0x7F, out)
            if b & 0x80:
                for later in self.octets[i + 1:]:
                    for name in later.names:
                        out[name] = None
                if self.extra:
                    out[self.extra] = b""
                return
        last = self.octets[-1].label
        if self.extra is None:
            raise DecodeError(f"{last}: its extension bit announces an octet Q.931 does not define here")
        raw = bytearray()
        while True:
            b = _read_octet(stream, f"the end of the extension octets after {last}")
            raw.append(b)
            if b & 0x80:
                break
        out[self.extra] = bytes(raw)

    def build_from(self, obj: Mapping[str, Any], stream: io.BytesIO) -> None:
        sent = [i == 0 or any(obj.get(n) is not None for n in o.names) for i, o in enumerate(self.octets)]
        last = max(i for i, s in enumerate(sent) if s)
        for i in range(1, last):
            if not sent[i]:
                raise EncodeError(f"{self.octets[last].label} needs {self.octets[i].label}")
        extra = bytes(obj.get(self.extra) or b"") if self.extra else b""
        if extra and last != len(self.octets) - 1:
            raise EncodeError(f"{self.extra}: needs {self.octets[-1].label} before it")
        if extra and (extra[-1] & 0x80 == 0 or any(b & 0x80 for b in extra[:-1])):
            raise EncodeError(f"{self.extra}: bit 8 must be 1 on its last octet only")
        out = bytearray()
        for i in range(last + 1):
            ext = 0x80 if i == last and not extra else 0x00
            out.append(ext | self.octets[i].encode_value(obj))
        stream.write(bytes(out + extra))


class Fields(Part):
    """Parts in order, all reading into (and writing from) the same flat mapping."""

    def __init__(self, *parts: Part) -> None:
        super().__init__()
        self.parts = parts
        self.names = tuple(n for p in parts for n in p.names)

    def parse_into(self, stream: io.BytesIO, out: dict[str, Any]) -> None:
        for p in self.parts:
            p.parse_into(stream, out)

    def build_from(self, obj: Mapping[str, Any], stream: io.BytesIO) -> None:
        for p in self.parts:
            p.build_from(obj, stream)


class If(Part):
    """Octets present when a condition on the fields read so far (or being written) holds; when it
    does not, their fields take the `absent` values."""

    def __init__(self, cond: Callable[[Mapping[str, Any]], bool], part: Part, absent: Mapping[str, Any]) -> None:
        super().__init__()
        self.cond, self.part, self.absent = cond, part, dict(absent)
        self.names = part.names

    def parse_into(self, stream: io.BytesIO, out: dict[str, Any]) -> None:
        if self.cond(out):
            self.part.parse_into(stream, out)
        else:
            out.update(self.absent)

    def build_from(self, obj: Mapping[str, Any], stream: io.BytesIO) -> None:
        if self.cond(obj):
            self.part.build_from(obj, stream)


class Peeked(Part):
    """Optional octets told apart by their first octet (a bearer capability's layer 1/2/3 octets
    by their layer identification bits): read when the next octet passes `test`, written when
    field `key` is not None."""

    def __init__(self, test: Callable[[int], bool], part: Part, key: str, absent: Mapping[str, Any]) -> None:
        super().__init__()
        self.test, self.part, self.key, self.absent = test, part, key, dict(absent)
        self.names = part.names

    def parse_into(self, stream: io.BytesIO, out: dict[str, Any]) -> None:
        pos = stream.tell()
        b = stream.read(1)
        stream.seek(pos)
        if b and self.test(b[0]):
            self.part.parse_into(stream, out)
        else:
            out.update(self.absent)

    def build_from(self, obj: Mapping[str, Any], stream: io.BytesIO) -> None:
        if obj.get(self.key) is not None:
            self.part.build_from(obj, stream)


class Field(Part):
    """One named field whose value is another construct's (the rest of the octets, IA5 text...)."""

    def __init__(self, name: str, subcon: Any) -> None:
        super().__init__()
        self.name, self.subcon = name, subcon
        self.names = (name,)

    def parse_into(self, stream: io.BytesIO, out: dict[str, Any]) -> None:
        out[self.name] = self.subcon._parsereport(stream, _CONTEXT, "(parsing)")

    def build_from(self, obj: Mapping[str, Any], stream: io.BytesIO) -> None:
        self.subcon._build(obj.get(self.name), stream, _CONTEXT, "(building)")


_CONTEXT: dict[str, Any] = {}


class IA5(Construct):  # type: ignore[misc]
    """The rest of the contents as IA5 characters (bit 8 zero), from `allowed` when it is given."""

    def __init__(self, what: str, allowed: str | None = None, max_len: int | None = None) -> None:
        super().__init__()
        self.what, self.allowed = what, None if allowed is None else frozenset(allowed)
        self.max_len = max_len

    def _check(self, text: str) -> None:
        if self.max_len is not None and len(text) > self.max_len:
            raise ValueError(f"{self.what}: {len(text)} characters, at most {self.max_len} allowed")
        if self.allowed is not None:
            bad = sorted({c for c in text if c not in self.allowed})
            if bad:
                raise ValueError(f"{self.what}: {''.join(bad)!r} not allowed (only {''.join(sorted(self.allowed))})")

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> str:
        data = stream.read()
        if any(b & 0x80 for b in data):
            raise DecodeError(f"{self.what}: an octet with bit 8 set is no IA5 character")
        text = data.decode("ascii")
        try:
            self._check(text)
        except ValueError as exc:
            raise DecodeError(str(exc)) from None
        return text

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        if not isinstance(obj, str) or not obj.isascii():
            raise EncodeError(f"{self.what}: must be IA5 (ASCII) text, got {obj!r}")
        try:
            self._check(obj)
        except ValueError as exc:
            raise EncodeError(str(exc)) from None
        stream.write(obj.encode("ascii"))
        return obj


class ExtChain(Construct):  # type: ignore[misc]
    """7-bit numbers, one an octet, chained by the extension bit (bit 8 is 1 on the last): a list
    of channel numbers (§4.5.13 octet 3.3). At least one."""

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> tuple[int, ...]:
        out: list[int] = []
        while True:
            b = _read_octet(stream, self.label if not out else f"the end of {self.label}")
            out.append(b & 0x7F)
            if b & 0x80:
                return tuple(out)

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        values = tuple(obj or ())
        if not values:
            raise EncodeError(f"{self.label}: no channel number")
        for v in values:
            if not 0 <= v <= 0x7F:
                raise EncodeError(f"{self.label}: channel number {v} does not fit in 7 bits")
        stream.write(bytes(v | (0x80 if i == len(values) - 1 else 0) for i, v in enumerate(values)))
        return obj


class ExtRaw(Construct):  # type: ignore[misc]
    """Octets up to and including the first with bit 8 set, kept raw (an interface identifier)."""

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> bytes:
        raw = bytearray()
        while True:
            b = _read_octet(stream, self.label if not raw else f"the end of {self.label}")
            raw.append(b)
            if b & 0x80:
                return bytes(raw)

    def _build(self, obj: Any, stream: io.BytesIO, context: Any, path: str) -> Any:
        raw = bytes(obj or b"")
        if not raw or raw[-1] & 0x80 == 0 or any(b & 0x80 for b in raw[:-1]):
            raise EncodeError(f"{self.label}: bit 8 must be 1 on its last octet only")
        stream.write(raw)
        return obj


# --- Information elements ----------------------------------------------------------------------------

class InformationElement:
    """An information element of codeset 0 (§4.5): a dataclass whose fields are its contents'.

    :attr:`FORMAT` declares the contents (the octets after identifier and length); ``VECTORS``
    pairs an IE's whole octets (hex) with the fields they decode to (those not at their default).
    """

    ID: ClassVar[int]
    NAME: ClassVar[str]
    FORMAT: ClassVar[Part]
    VECTORS: ClassVar[tuple[tuple[str, Mapping[str, Any]], ...]] = ()

    def key(self) -> tuple[int, int]:
        """(codeset, identifier): what duplicates and lookups compare."""
        return (0, self.ID)

    def _hidden(self) -> dict[str, Any]:
        """Fields the layout needs that follow from the dataclass's (a flag saying an octet is there)."""
        return {}

    def contents(self) -> bytes:
        """The octets after identifier and length."""
        obj = {n: getattr(self, n) for n in _field_names(type(self))}
        obj.update(self._hidden())
        stream = io.BytesIO()
        try:
            self.FORMAT.build_from(obj, stream)
        except EncodeError as exc:
            raise EncodeError(f"{self.NAME}: {exc}") from None
        return stream.getvalue()

    def encode(self) -> bytes:
        """The whole IE: identifier, length, contents."""
        contents = self.contents()
        if len(contents) > 255:
            raise EncodeError(f"{self.NAME}: {len(contents)} octets of contents, at most 255 fit")
        return bytes((self.ID, len(contents))) + contents

    @classmethod
    def from_contents(cls, data: bytes) -> Self:
        """The IE of these contents; DecodeError (naming the IE and the octet) when they are not one."""
        stream = io.BytesIO(data)
        out: dict[str, Any] = {}
        try:
            cls.FORMAT.parse_into(stream, out)
        except (DecodeError, ConstructError, ValueError) as exc:
            raise DecodeError(f"{cls.NAME}: {exc}") from None
        left = len(data) - stream.tell()
        if left:
            raise DecodeError(f"{cls.NAME}: {left} octet(s) after its last field")
        try:
            return cls(**{n: out[n] for n in _field_names(cls)})
        except EncodeError as exc:          # a dataclass's own check (a display too long)
            raise DecodeError(str(exc)) from None

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """One whole IE of this class (identifier, length, contents), as a vector holds it."""
        if len(data) < 2 or data[0] != cls.ID or data[1] != len(data) - 2:
            raise DecodeError(f"{cls.NAME}: not one whole IE 0x{cls.ID:02x}: {data.hex()}")
        return cls.from_contents(data[2:])


_FIELD_NAMES: dict[type[InformationElement], tuple[str, ...]] = {}


def _field_names(cls: type[InformationElement]) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    return names


def _layer(n: int) -> Callable[[int], bool]:
    return lambda b: (b >> 5) & 0x3 == n


@dataclass(frozen=True)
class BearerCapability(InformationElement):
    """Bearer capability, Q.931 §4.5.5: the bearer service a call asks for.

    Octet 3: coding standard, information transfer capability; octet 4: transfer mode and rate,
    4.1 the rate multiplier (multirate only, after octet 4's extension bit); octets 5, 6 and 7,
    each optional and told apart by their layer identification bits: the user information layer
    1, 2 and 3 protocols, with 5a-5d (rate adaption, never for speech) and 7a-7b kept as received.
    EN 300 403 and NI-2 code it alike; a voice call is speech or 3.1 kHz audio, circuit mode,
    64 kbit/s, G.711 A-law on E1 (EuroISDN) and µ-law on T1 (NI-2).
    """

    ID: ClassVar[int] = 0x04
    NAME: ClassVar[str] = "bearer capability"
    capability: int = ITC_SPEECH
    layer1: int | None = None
    rate: int = RATE_64K
    mode: int = MODE_CIRCUIT
    coding_standard: int = CODING_ITU
    multiplier: int | None = None
    layer1_extra: bytes = b""
    layer2: int | None = None
    layer3: int | None = None
    layer3_extra: bytes = b""

    FORMAT: ClassVar[Part] = Fields(
        ExtGroup(Octet("octet 3", ("coding_standard", 2), ("capability", 5), ext=True)),
        ExtGroup(Octet("octet 4", ("mode", 2), ("rate", 5), ext=True),
                 Octet("octet 4.1", ("multiplier", 7), ext=True)),
        Peeked(_layer(1), ExtGroup(Octet("octet 5", ("layer id", 2, 1), ("layer1", 5), ext=True), extra="layer1_extra"),
               "layer1", {"layer1": None, "layer1_extra": b""}),
        Peeked(_layer(2), ExtGroup(Octet("octet 6", ("layer id", 2, 2), ("layer2", 5), ext=True)),
               "layer2", {"layer2": None}),
        Peeked(_layer(3), ExtGroup(Octet("octet 7", ("layer id", 2, 3), ("layer3", 5), ext=True), extra="layer3_extra"),
               "layer3", {"layer3": None, "layer3_extra": b""}),
    )
    VECTORS: ClassVar[tuple[tuple[str, Mapping[str, Any]], ...]] = (
        ("04 03 80 90 a3", {"layer1": L1_ALAW}),                              # speech, 64k, A-law (E1)
        ("04 03 80 90 a2", {"layer1": L1_ULAW}),                              # speech, 64k, µ-law (T1)
        ("04 03 90 90 a3", {"capability": ITC_AUDIO_3K1, "layer1": L1_ALAW}),  # 3.1 kHz audio
        ("04 02 88 90", {"capability": ITC_UNRESTRICTED_DIGITAL}),           # 64k clear data, no layer 1
        ("04 03 88 18 82", {"capability": ITC_UNRESTRICTED_DIGITAL, "rate": RATE_MULTIRATE,
                            "multiplier": 2}),                                # multirate 2 x 64k
        ("04 05 88 90 21 8f e2", {"capability": ITC_UNRESTRICTED_DIGITAL, "layer1": L1_V110,
                                  "layer1_extra": bytes.fromhex("8f"), "layer3": 2}),  # V.110, 5a, layer 3 Q.931
    )

    @classmethod
    def speech(cls, law: Literal["alaw", "ulaw"], capability: int = ITC_SPEECH) -> BearerCapability:
        """A voice bearer: speech (or 3.1 kHz audio), circuit mode, 64 kbit/s, G.711 with `law`."""
        return cls(capability=capability, layer1=L1_ALAW if law == "alaw" else L1_ULAW)


@dataclass(frozen=True)
class Cause(InformationElement):
    """Cause, Q.931 §4.5.12 (values and locations: ITU-T Q.850): why a call is cleared or a STATUS sent.

    Octet 3: coding standard, location; 3a (optional): recommendation; octet 4: cause value;
    octets 5 on: diagnostics, kept as received (for causes 96, 99, 100 the identifiers of the IEs
    concerned). EN 300 403 and NI-2 code it alike.
    """

    ID: ClassVar[int] = 0x08
    NAME: ClassVar[str] = "cause"
    value: int = CAUSE_NORMAL_CLEARING
    location: int = LOC_USER
    coding_standard: int = CODING_ITU
    recommendation: int | None = None
    diagnostic: bytes = b""

    FORMAT: ClassVar[Part] = Fields(
        ExtGroup(Octet("octet 3", ("coding_standard", 2), (None, 1), ("location", 4), ext=True),
                 Octet("octet 3a", ("recommendation", 7), ext=True)),
        ExtGroup(Octet("octet 4", ("value", 7), ext=True)),
        Field("diagnostic", GreedyBytes),
    )
    VECTORS: ClassVar[tuple[tuple[str, Mapping[str, Any]], ...]] = (
        ("08 02 80 90", {}),                                                        # 16, from the user
        ("08 02 82 91", {"value": CAUSE_USER_BUSY, "location": LOC_PUBLIC_LOCAL}),  # 17, local network
        ("08 03 00 80 a2", {"value": CAUSE_NO_CIRCUIT_AVAILABLE, "recommendation": 0}),  # with octet 3a
        ("08 03 80 e0 18", {"value": CAUSE_MANDATORY_IE_MISSING, "diagnostic": b"\x18"}),  # 96: channel id
        ("08 02 e2 9f", {"value": CAUSE_NORMAL_UNSPECIFIED, "location": LOC_PUBLIC_LOCAL, "coding_standard": 3}),
    )


@dataclass(frozen=True)
class CallState(InformationElement):
    """Call state, Q.931 §4.5.7: one octet, coding standard and state value (no extension bit)."""

    ID: ClassVar[int] = 0x14
    NAME: ClassVar[str] = "call state"
    state: CallStateValue = CallStateValue.null
    coding_standard: int = CODING_ITU

    FORMAT: ClassVar[Part] = Fields(Octet("octet 3", ("coding_standard", 2), ("state", 6, CallStateValue)))
    VECTORS: ClassVar[tuple[tuple[str, Mapping[str, Any]], ...]] = (
        ("14 01 0a", {"state": CallStateValue.active}),
        ("14 01 00", {}),                                         # null / REST 0
        ("14 01 19", {"state": CallStateValue.overlap_receiving}),
        ("14 01 3d", {"state": CallStateValue.restart_request}),  # REST 1 on the global call reference
    )


@dataclass(frozen=True)
class ChannelId(InformationElement):
    """Channel identification, Q.931 §4.5.13: the B-channel(s) a call is to use.

    Octet 3: interface identifier present, interface type (primary rate here), preferred or
    exclusive, D-channel indicator, information channel selection; 3.1 (only with the interface
    identifier present: NFAS, out of scope) kept raw. On a primary rate interface with selection
    "as indicated", octet 3.2 (coding standard, number or map, channel type) and 3.3: channel
    numbers chained by their extension bit (several may be listed), or a slot map kept raw.
    Channel numbers are timeslots: 1-15 and 17-31 on E1 (EN 300 403; TS16 is the D-channel), 1-23
    on T1 (NI-2; 24 is the D-channel); the call layer checks them against its span (a SETUP for
    TS16 decodes, then gets cause 82).
    """

    ID: ClassVar[int] = 0x18
    NAME: ClassVar[str] = "channel identification"
    channels: tuple[int, ...] = ()
    exclusive: bool = False
    d_channel: bool = False
    selection: int = SELECT_AS_INDICATED
    primary: bool = True
    interface: bytes | None = None
    coding_standard: int = CODING_ITU
    channel_type: int = CHANNEL_TYPE_B
    slot_map: bytes | None = None

    FORMAT: ClassVar[Part] = Fields(
        ExtGroup(Octet("octet 3", ("_interface", 1, bool), ("primary", 1, bool), (None, 1), ("exclusive", 1, bool),
                       ("d_channel", 1, bool), ("selection", 2), ext=True)),
        If(lambda d: bool(d["_interface"]), Field("interface", ExtRaw("octet 3.1")), {"interface": None}),
        If(lambda d: bool(d["primary"]) and d["selection"] == SELECT_AS_INDICATED,
           Fields(ExtGroup(Octet("octet 3.2", ("coding_standard", 2), ("_map", 1, bool), ("channel_type", 4),
                                 ext=True)),
                  If(lambda d: bool(d["_map"]), Field("slot_map", GreedyBytes), {"slot_map": None}),
                  If(lambda d: not d["_map"], Field("channels", ExtChain("octet 3.3")), {"channels": ()})),
           {"coding_standard": CODING_ITU, "channel_type": CHANNEL_TYPE_B, "slot_map": None, "channels": ()}),
    )
    VECTORS: ClassVar[tuple[tuple[str, Mapping[str, Any]], ...]] = (
        ("18 03 a9 83 85", {"channels": (5,), "exclusive": True}),   # TS5, exclusive
        ("18 03 a1 83 8f", {"channels": (15,)}),                     # TS15, preferred
        ("18 03 a9 83 90", {"channels": (16,), "exclusive": True}),  # TS16 (the E1 D-channel: no B-channel)
        ("18 04 a1 83 01 97", {"channels": (1, 23)}),                # a list of two
        ("18 01 a3", {"selection": SELECT_ANY, "channels": ()}),     # any channel
        ("18 01 ac", {"selection": SELECT_NO_CHANNEL, "exclusive": True, "d_channel": True}),  # the D-channel
        ("18 04 e9 80 83 85", {"channels": (5,), "exclusive": True, "interface": b"\x80"}),  # interface 0, explicit
        ("18 06 a1 93 00 00 00 30", {"slot_map": bytes.fromhex("00000030")}),  # a slot map
    )

    def __post_init__(self) -> None:
        if self.channels and self.slot_map is not None:
            raise EncodeError("channel identification: channel numbers or a slot map, not both")

    def _hidden(self) -> dict[str, Any]:
        return {"_interface": self.interface is not None, "_map": self.slot_map is not None}

    @classmethod
    def b_channel(cls, channel: int, exclusive: bool = False) -> ChannelId:
        """One B-channel by number (a timeslot), preferred or exclusive."""
        return cls(channels=(channel,), exclusive=exclusive)

    @property
    def channel(self) -> int | None:
        """The one channel named by number, or None (none, several, a map, any)."""
        return self.channels[0] if len(self.channels) == 1 else None


@dataclass(frozen=True)
class ProgressIndicator(InformationElement):
    """Progress indicator, Q.931 §4.5.23: interworking, or in-band information now available.

    Octet 3: coding standard, location; octet 4: progress description.
    """

    ID: ClassVar[int] = 0x1E
    NAME: ClassVar[str] = "progress indicator"
    description: int = PROGRESS_INBAND
    location: int = LOC_USER
    coding_standard: int = CODING_ITU

    FORMAT: ClassVar[Part] = Fields(
        ExtGroup(Octet("octet 3", ("coding_standard", 2), (None, 1), ("location", 4), ext=True)),
        ExtGroup(Octet("octet 4", ("description", 7), ext=True)),
    )
    VECTORS: ClassVar[tuple[tuple[str, Mapping[str, Any]], ...]] = (
        ("1e 02 82 88", {"location": LOC_PUBLIC_LOCAL}),                             # in-band info now
        ("1e 02 80 83", {"description": PROGRESS_ORIGINATION_NOT_ISDN}),             # from the user
        ("1e 02 81 81", {"description": PROGRESS_NOT_END_TO_END_ISDN, "location": LOC_PRIVATE_LOCAL}),
    )


@dataclass(frozen=True)
class Display(InformationElement):
    """Display, Q.931 §4.5.16: IA5 text for the user (34 or 82 octets at most, network dependent).

    NI-2 deviation: its display starts with an octet naming the display type (bit 8 set, so it
    cannot be an IA5 character; 0xB1 a calling party name): kept as `display_type`.
    """

    ID: ClassVar[int] = 0x28
    NAME: ClassVar[str] = "display"
    text: str = ""
    display_type: int | None = None

    FORMAT: ClassVar[Part] = Fields(
        Peeked(lambda b: bool(b & 0x80), Field("display_type", Int8ub), "display_type", {"display_type": None}),
        Field("text", IA5("display")),
    )
    VECTORS: ClassVar[tuple[tuple[str, Mapping[str, Any]], ...]] = (
        ("28 05 48 6f 74 65 6c", {"text": "Hotel"}),
        ("28 06 b1 4c 49 20 4e 41", {"text": "LI NA", "display_type": 0xB1}),   # NI-2 calling party name
    )

    def __post_init__(self) -> None:
        if self.display_type is not None and not 0x80 <= self.display_type <= 0xFF:
            raise EncodeError(f"display: a display type has bit 8 set, got 0x{self.display_type:02x}")
        if len(self.text) > MAX_DISPLAY:
            raise EncodeError(f"display: {len(self.text)} characters, at most {MAX_DISPLAY}")


@dataclass(frozen=True)
class Keypad(InformationElement):
    """Keypad facility, Q.931 §4.5.18: IA5 characters keyed by the user (digits in overlap sending)."""

    ID: ClassVar[int] = 0x2C
    NAME: ClassVar[str] = "keypad facility"
    digits: str = ""

    FORMAT: ClassVar[Part] = Fields(Field("digits", IA5("keypad")))
    VECTORS: ClassVar[tuple[tuple[str, Mapping[str, Any]], ...]] = (
        ("2c 02 31 23", {"digits": "1#"}),
    )


@dataclass(frozen=True)
class Signal(InformationElement):
    """Signal, Q.931 §4.5.28: a tone or alerting pattern the network asks the user to give."""

    ID: ClassVar[int] = 0x34
    NAME: ClassVar[str] = "signal"
    value: int = SIGNAL_TONES_OFF

    FORMAT: ClassVar[Part] = Fields(Octet("octet 3", ("value", 8)))
    VECTORS: ClassVar[tuple[tuple[str, Mapping[str, Any]], ...]] = (
        ("34 01 01", {"value": SIGNAL_RINGBACK}),
        ("34 01 3f", {}),
    )


def _number_octet3(ext: bool = True) -> Octet:
    return Octet("octet 3", ("ton", 3, Ton), ("npi", 4, Npi), ext=ext)


def _presentation_octet3a() -> Octet:
    return Octet("octet 3a", ("presentation", 2, Presentation), (None, 3), ("screening", 2, Screening), ext=True)


def _check_presentation(ie: CallingNumber | RedirectingNumber) -> None:
    if (ie.presentation is None) != (ie.screening is None):
        raise EncodeError(f"{ie.NAME}: presentation and screening go together (octet 3a)")


@dataclass(frozen=True)
class CallingNumber(InformationElement):
    """Calling party number, Q.931 §4.5.10: the ANI.

    Octet 3: type of number, numbering plan; 3a (optional): presentation and screening
    indicators (absent: None); then the digits, IA5. EN 300 403 and NI-2 code it alike; a number
    "unavailable" may come with no digits.
    """

    ID: ClassVar[int] = 0x6C
    NAME: ClassVar[str] = "calling party number"
    digits: str = ""
    ton: Ton = Ton.unknown
    npi: Npi = Npi.isdn
    presentation: Presentation | None = None
    screening: Screening | None = None

    FORMAT: ClassVar[Part] = Fields(
        ExtGroup(_number_octet3(), _presentation_octet3a()),
        Field("digits", IA5("number digits", NUMBER_DIGITS, MAX_NUMBER_DIGITS)),
    )
    VECTORS: ClassVar[tuple[tuple[str, Mapping[str, Any]], ...]] = (
        ("6c 0d 21 80 31 33 38 30 30 31 33 38 30 30 30",
         {"digits": "13800138000", "ton": Ton.national, "presentation": Presentation.allowed,
          "screening": Screening.user_unscreened}),
        ("6c 0d 21 a3 31 33 38 30 30 31 33 38 30 30 30",
         {"digits": "13800138000", "ton": Ton.national, "presentation": Presentation.restricted,
          "screening": Screening.network}),
        ("6c 05 91 38 36 31 30", {"digits": "8610", "ton": Ton.international}),     # no octet 3a
        ("6c 02 00 c3", {"npi": Npi.unknown, "presentation": Presentation.unavailable,
                         "screening": Screening.network}),                              # no digits
        ("6c 04 69 81 31 30", {"digits": "10", "ton": Ton.abbreviated, "npi": Npi.private,
                               "presentation": Presentation.allowed, "screening": Screening.user_passed}),
    )

    def __post_init__(self) -> None:
        _check_presentation(self)


@dataclass(frozen=True)
class CalledNumber(InformationElement):
    """Called party number, Q.931 §4.5.8: the DNIS. Octet 3: type of number, numbering plan (its
    extension bit always 1); then the digits, IA5 (in overlap receiving, a few at a time)."""

    ID: ClassVar[int] = 0x70
    NAME: ClassVar[str] = "called party number"
    digits: str = ""
    ton: Ton = Ton.unknown
    npi: Npi = Npi.isdn

    FORMAT: ClassVar[Part] = Fields(
        ExtGroup(_number_octet3()),
        Field("digits", IA5("number digits", NUMBER_DIGITS, MAX_NUMBER_DIGITS)),
    )
    VECTORS: ClassVar[tuple[tuple[str, Mapping[str, Any]], ...]] = (
        ("70 05 a1 30 37 35 35", {"digits": "0755", "ton": Ton.national}),
        ("70 02 81 31", {"digits": "1"}),
        ("70 04 c9 31 30 30", {"digits": "100", "ton": Ton.subscriber, "npi": Npi.private}),
    )


@dataclass(frozen=True)
class RedirectingNumber(InformationElement):
    """Redirecting number (identifier 0x74 in Q.931 Table 4-3; coded as ITU-T Q.952 defines it):
    the number a diverted call was first meant for. Octet 3: type of number, plan; 3a:
    presentation, screening; 3b: reason for redirection (1 busy, 2 no reply, 15 unconditional...);
    then the digits."""

    ID: ClassVar[int] = 0x74
    NAME: ClassVar[str] = "redirecting number"
    digits: str = ""
    ton: Ton = Ton.unknown
    npi: Npi = Npi.isdn
    presentation: Presentation | None = None
    screening: Screening | None = None
    reason: int | None = None

    FORMAT: ClassVar[Part] = Fields(
        ExtGroup(_number_octet3(), _presentation_octet3a(), Octet("octet 3b", (None, 3), ("reason", 4), ext=True)),
        Field("digits", IA5("number digits", NUMBER_DIGITS, MAX_NUMBER_DIGITS)),
    )
    VECTORS: ClassVar[tuple[tuple[str, Mapping[str, Any]], ...]] = (
        ("74 07 21 00 8f 38 30 30 31", {"digits": "8001", "ton": Ton.national, "presentation": Presentation.allowed,
                                       "screening": Screening.user_unscreened, "reason": 15}),
        ("74 04 a1 38 30 30", {"digits": "800", "ton": Ton.national}),
    )

    def __post_init__(self) -> None:
        _check_presentation(self)


@dataclass(frozen=True)
class RestartIndicator(InformationElement):
    """Restart indicator, Q.931 §4.5.25: what a RESTART returns to idle (the channels named,
    one interface, all interfaces)."""

    ID: ClassVar[int] = 0x79
    NAME: ClassVar[str] = "restart indicator"
    restart_class: RestartClass = RestartClass.all_interfaces

    FORMAT: ClassVar[Part] = Fields(ExtGroup(Octet("octet 3", (None, 4), ("restart_class", 3, RestartClass), ext=True)))
    VECTORS: ClassVar[tuple[tuple[str, Mapping[str, Any]], ...]] = (
        ("79 01 87", {}),
        ("79 01 80", {"restart_class": RestartClass.indicated_channels}),
        ("79 01 86", {"restart_class": RestartClass.single_interface}),
    )


@dataclass(frozen=True)
class NotificationIndicator(InformationElement):
    """Notification indicator, Q.931 §4.5.22: NOTIFY's mandatory IE (user suspended, resumed,
    bearer change). Not in the facts' list of IEs, needed to read the NOTIFY that is."""

    ID: ClassVar[int] = 0x27
    NAME: ClassVar[str] = "notification indicator"
    description: int = NOTIFY_USER_SUSPENDED

    FORMAT: ClassVar[Part] = Fields(ExtGroup(Octet("octet 3", ("description", 7), ext=True)))
    VECTORS: ClassVar[tuple[tuple[str, Mapping[str, Any]], ...]] = (
        ("27 01 80", {}),
        ("27 01 81", {"description": NOTIFY_USER_RESUMED}),
    )


@dataclass(frozen=True)
class Facility(InformationElement):
    """Facility (ITU-T Q.932; identifier 0x1C in Q.931 Table 4-3): supplementary service
    operations. Supplementary services are out of scope: the contents are kept as received. Not
    in the facts' list of IEs, needed to read the FACILITY message it is mandatory in."""

    ID: ClassVar[int] = 0x1C
    NAME: ClassVar[str] = "facility"
    data: bytes = b""

    FORMAT: ClassVar[Part] = Fields(Field("data", GreedyBytes))
    VECTORS: ClassVar[tuple[tuple[str, Mapping[str, Any]], ...]] = (
        ("1c 05 91 a1 02 02 01", {"data": bytes.fromhex("91a1020201")}),
    )


@dataclass(frozen=True)
class ChangeStatus(InformationElement):
    """Change status (NI-2; in SERVICE and SERVICE ACKNOWLEDGE only): a B-channel's new state.
    Octet 3: preference (1: a channel), spare, new status."""

    ID: ClassVar[int] = 0x01
    NAME: ClassVar[str] = "change status"
    status: ServiceStatus = ServiceStatus.in_service
    preference: int = 1

    FORMAT: ClassVar[Part] = Fields(
        ExtGroup(Octet("octet 3", ("preference", 1), (None, 3), ("status", 3, ServiceStatus), ext=True)))
    VECTORS: ClassVar[tuple[tuple[str, Mapping[str, Any]], ...]] = (
        ("01 01 c0", {}),
        ("01 01 c2", {"status": ServiceStatus.out_of_service}),
        ("01 01 c1", {"status": ServiceStatus.maintenance}),
    )


@dataclass(frozen=True)
class SendingComplete(InformationElement):
    """Sending complete, Q.931 §4.5.27: a single octet, 0xA1: the called number is complete
    (en-bloc; EN 300 403 uses it, NI-2 rarely)."""

    ID: ClassVar[int] = 0xA1
    NAME: ClassVar[str] = "sending complete"
    VECTORS: ClassVar[tuple[tuple[str, Mapping[str, Any]], ...]] = (("a1", {}),)

    def contents(self) -> bytes:
        return b""

    def encode(self) -> bytes:
        return bytes((self.ID,))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        if data != bytes((cls.ID,)):
            raise DecodeError(f"{cls.NAME}: not the octet 0xa1: {data.hex()}")
        return cls()


SHIFT = 0x90             #: §4.5.3/4.5.4: 1001 in bits 8-5
SHIFT_NON_LOCKING = 0x08  #: bit 4


@dataclass(frozen=True)
class Shift(InformationElement):
    """Shift, Q.931 §4.5.3 (locking: 0x90 + codeset) and §4.5.4 (non-locking: 0x98 + codeset): the
    codeset of the IEs after it (a locking shift: until the end of the message, to a higher codeset
    only; a non-locking one: for the next IE alone). A single octet, usable in every codeset."""

    ID: ClassVar[int] = SHIFT
    NAME: ClassVar[str] = "shift"
    codeset: int = 0
    locking: bool = True
    VECTORS: ClassVar[tuple[tuple[str, Mapping[str, Any]], ...]] = (
        ("96", {"codeset": 6}),
        ("9d", {"codeset": 5, "locking": False}),
        ("90", {}),
        ("98", {"locking": False}),
    )

    def __post_init__(self) -> None:
        if not 0 <= self.codeset <= 7:
            raise EncodeError(f"shift: codeset {self.codeset} is not 0-7")

    def key(self) -> tuple[int, int]:
        return (-1, self.octet())

    def octet(self) -> int:
        return SHIFT | (0 if self.locking else SHIFT_NON_LOCKING) | self.codeset

    def contents(self) -> bytes:
        return b""

    def encode(self) -> bytes:
        return bytes((self.octet(),))

    @classmethod
    def decode(cls, data: bytes) -> Self:
        if len(data) != 1 or data[0] & 0xF0 != SHIFT:
            raise DecodeError(f"{cls.NAME}: not a shift octet: {data.hex()}")
        return cls(data[0] & 0x07, not data[0] & SHIFT_NON_LOCKING)


@dataclass(frozen=True)
class RawIE(InformationElement):
    """An IE kept as received: unknown (in codeset 0 or another), known but invalid (beside its
    problem), or empty (which §4.5.1 reads as absent). A single-octet IE has `octets` None."""

    NAME: ClassVar[str] = "IE"
    codeset: int
    ie_id: int
    octets: bytes | None = None

    def key(self) -> tuple[int, int]:
        return (self.codeset, self.ie_id)

    @property
    def single_octet(self) -> bool:
        return self.octets is None

    @property
    def comprehension_required(self) -> bool:
        """§4.5.1: a variable-length identifier 0000 xxxx in codeset 0."""
        return _comprehension_required(self.codeset, self.ie_id)

    def contents(self) -> bytes:
        return self.octets or b""

    def encode(self) -> bytes:
        if self.octets is None:
            if not self.ie_id & 0x80:
                raise EncodeError(f"IE 0x{self.ie_id:02x}: a single-octet IE has bit 8 set")
            return bytes((self.ie_id,))
        if self.ie_id & 0x80:
            raise EncodeError(f"IE 0x{self.ie_id:02x}: a variable-length IE has bit 8 clear")
        if len(self.octets) > 255:
            raise EncodeError(f"IE 0x{self.ie_id:02x}: {len(self.octets)} octets of contents, at most 255 fit")
        return bytes((self.ie_id, len(self.octets))) + self.octets


def _comprehension_required(codeset: int, ie_id: int) -> bool:
    return codeset == 0 and ie_id & 0xF0 == 0


#: the IEs of codeset 0 we know, by identifier (the shifts are told by their 1001 high bits)
INFORMATION_ELEMENTS: tuple[type[InformationElement], ...] = (
    ChangeStatus, BearerCapability, Cause, CallState, ChannelId, Facility, ProgressIndicator, NotificationIndicator,
    Display, Keypad, Signal, CallingNumber, CalledNumber, RedirectingNumber, RestartIndicator, SendingComplete, Shift,
)
IE_CLASSES: dict[int, type[InformationElement]] = {c.ID: c for c in INFORMATION_ELEMENTS if c is not Shift}


# --- Call reference and header ---------------------------------------------------------------------------

@dataclass(frozen=True)
class CallRef:
    """A call reference (Q.931 §4.3): its value, its flag and its length in octets.

    The flag is 0 (False) in messages sent by the side that chose the value and 1 in messages
    sent to it. Value 0 with a length is the global call reference (RESTART, §3.4); length 0 is
    the dummy call reference (not used on PRI).
    """

    value: int
    flag: bool = False
    length: int = MAX_CALL_REFERENCE_LENGTH

    def __post_init__(self) -> None:
        if not 0 <= self.length <= MAX_CALL_REFERENCE_LENGTH:
            raise EncodeError(f"call reference: length {self.length}, at most {MAX_CALL_REFERENCE_LENGTH}")
        top = (1 << (8 * self.length - 1)) if self.length else 1
        if not 0 <= self.value < top or (self.length == 0 and self.flag):
            raise EncodeError(f"call reference: value {self.value} does not fit in {self.length} octet(s)")

    @property
    def is_global(self) -> bool:
        return self.value == 0 and self.length > 0

    @property
    def is_dummy(self) -> bool:
        return self.length == 0

    @property
    def from_originator(self) -> bool:
        """True when the message comes from the side that chose the value (flag 0)."""
        return not self.flag

    def answer(self) -> CallRef:
        """The same call reference as the other side writes it (flag turned over)."""
        return dataclasses.replace(self, flag=not self.flag) if self.length else self

    def octets(self) -> bytes:
        if not self.length:
            return b"\x00"
        v = self.value | (int(self.flag) << (8 * self.length - 1))
        return bytes((self.length,)) + v.to_bytes(self.length, "big")


GLOBAL_CALL_REFERENCE = CallRef(0)


class CallReferenceFormat(Construct):  # type: ignore[misc]
    """The call reference, Q.931 §4.3: an octet 0000 + length, then the value, bit 8 of its
    first octet the flag."""

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> CallRef:
        length = _read_octet(stream, "the call reference") & 0x0F
        raw = stream.read(length)
        if len(raw) != length:
            raise DecodeError("ends inside the call reference")
        if not length:
            return CallRef(0, False, 0)
        flag_bit = 1 << (8 * length - 1)
        v = int.from_bytes(raw, "big")
        return CallRef(v & ~flag_bit, bool(v & flag_bit), length)

    def _build(self, obj: CallRef, stream: io.BytesIO, context: Any, path: str) -> CallRef:
        stream.write(obj.octets())
        return obj


class HeaderFormat(Construct):  # type: ignore[misc]
    """A message's first parts, Q.931 §4.1: protocol discriminator (§4.2), call reference (§4.3),
    message type (§4.4); its value ``(pd, call reference, message type)``."""

    call_reference = CallReferenceFormat()

    def _parse(self, stream: io.BytesIO, context: Any, path: str) -> tuple[int, CallRef, int]:
        pd = _read_octet(stream, "the protocol discriminator")
        cr = self.call_reference._parse(stream, context, path)
        return pd, cr, _read_octet(stream, "the message type")

    def _build(self, obj: tuple[int, CallRef, int], stream: io.BytesIO, context: Any, path: str) -> Any:
        pd, cr, mtype = obj
        stream.write(bytes((pd,)) + cr.octets() + bytes((mtype,)))
        return obj


HEADER = HeaderFormat()


# --- Problems and what §5.8 makes of them --------------------------------------------------------------

class ProblemKind(enum.StrEnum):
    """What is wrong with a decoded message, by the cases of Q.931 §5.8."""

    UNKNOWN_MESSAGE = "unknown_message"                # §5.8.4: STATUS 97
    MISSING = "missing"                                # §5.8.6.1: a mandatory IE absent (96)
    INVALID = "invalid"                                # §5.8.6.2 / §5.8.7.2: contents wrong (100)
    DUPLICATE = "duplicate"                            # §5.8.5.2: the repetition is ignored
    UNKNOWN_COMPREHENSION = "unknown_comprehension"    # §5.8.7.1: unrecognised, comprehension required (96)
    UNKNOWN_OPTIONAL = "unknown_optional"              # §5.8.7.1: unrecognised, act and STATUS 99
    UNEXPECTED = "unexpected"                          # §5.8.7.3: recognised, not in this message: as unrecognised
    OUT_OF_SEQUENCE = "out_of_sequence"                # §5.8.5.1: processed anyway


@dataclass(frozen=True)
class Problem:
    """One thing §5.8 has the receiver look at: its kind, the IE's identifier (None for the
    message type) and codeset, whether the IE is mandatory in this message and direction, and
    a human-readable detail."""

    kind: ProblemKind
    ie: int | None = None
    codeset: int = 0
    mandatory: bool = False
    detail: str = ""

    @property
    def comprehension_required(self) -> bool:
        return self.ie is not None and not self.ie & 0x80 and _comprehension_required(self.codeset, self.ie)


@dataclass(frozen=True)
class Verdict:
    """What Q.931 §5.8 asks of the receiver of a message (its call reference and state aside).

    :param act: take the message (its recognised, valid IEs) into the call's state machine.
    :param cause: the cause to answer with (None: nothing to answer): in reply to a SETUP a
        RELEASE COMPLETE, to a DISCONNECT a RELEASE, to others a STATUS (for 99 and an
        optional IE's 100: not to DISCONNECT, RELEASE or RELEASE COMPLETE, §5.8.7).
    :param ies: the identifiers of the IEs concerned, for the cause's diagnostic.
    """

    act: bool
    cause: int | None = None
    ies: tuple[int, ...] = ()


@dataclass(frozen=True)
class Rule:
    """An IE a message carries (Q.931 §3's tables): mandatory or not, and when only in one
    direction (sent by the network or by the user), and how often it may appear."""

    ie: type[InformationElement]
    mandatory: Literal["both", "network", "user"] | None = None
    repeat: int = 1

    def mandatory_from(self, sent_by: Side | None) -> bool:
        return self.mandatory == "both" or (self.mandatory is not None and self.mandatory == sent_by)


def _m(ie: type[InformationElement], repeat: int = 1) -> Rule:
    return Rule(ie, "both", repeat)


def _o(ie: type[InformationElement], repeat: int = 1) -> Rule:
    return Rule(ie, None, repeat)


#: a progress indicator may come twice (interworking and in-band information at once)
_PROGRESS = _o(ProgressIndicator, 2)


class MessageVector(NamedTuple):
    """A message's vector: its octets (hex), who sends them, and what they decode to."""

    octets: str
    sent_by: Side
    cr: CallRef
    ies: tuple[InformationElement, ...]
    problems: tuple[Problem, ...] = ()


# --- Messages -------------------------------------------------------------------------------------------

T = TypeVar("T", bound=InformationElement)


@dataclass(frozen=True)
class Message:
    """A decoded (or to-be-encoded) message: call reference, IEs in order, the problems found.

    Each subclass is one message type: ``PD`` and ``CODE`` (Q.931 Table 4-2), ``RULES`` (its IEs,
    §3) and ``VECTORS`` (:class:`MessageVector`: octets in hex, who sends them, call reference,
    IEs, and the problems they have when they are meant to have some).
    """

    PD: ClassVar[int] = PD_Q931
    CODE: ClassVar[int] = -1
    NAME: ClassVar[str] = "message"
    RULES: ClassVar[tuple[Rule, ...]] = ()
    VECTORS: ClassVar[tuple[MessageVector, ...]] = ()
    _RULE_MAP: ClassVar[dict[int, Rule]] = {}

    cr: CallRef
    ies: tuple[InformationElement, ...] = ()
    problems: tuple[Problem, ...] = ()
    trailing: bytes = b""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._RULE_MAP = {r.ie.ID: r for r in cls.RULES}

    @property
    def pd(self) -> int:
        return self.PD

    @property
    def mtype(self) -> int:
        return self.CODE

    def _handled(self, ie_id: int) -> list[InformationElement]:
        """The occurrences of a codeset-0 IE that count (§5.8.5.2): the first ones up to the
        repetitions allowed, the empty ones (absent, §4.5.1) left out."""
        rule = self._RULE_MAP.get(ie_id)
        limit = rule.repeat if rule else 1
        out: list[InformationElement] = []
        for ie in self.ies:
            if ie.key() == (0, ie_id) and not (isinstance(ie, RawIE) and ie.octets == b""):
                out.append(ie)
                if len(out) == limit:
                    break
        return out

    def get(self, cls: type[T]) -> T | None:
        """The IE of this class the message carries (its first occurrence), or None: absent, empty,
        or invalid (then a problem says so)."""
        handled = self._handled(cls.ID)
        return handled[0] if handled and isinstance(handled[0], cls) else None

    def all(self, cls: type[T]) -> tuple[T, ...]:
        """Every valid occurrence of an IE that may repeat (progress indicators), within the limit."""
        return tuple(ie for ie in self._handled(cls.ID) if isinstance(ie, cls))

    def encode(self) -> bytes:
        """The message's octets: header, each IE as it stands (shifts included), the trailing octets."""
        out = io.BytesIO()
        HEADER.build_stream((self.pd, self.cr, self.mtype), out)
        locked, once = 0, None
        for ie in self.ies:
            active = locked if once is None else once
            once = None
            if isinstance(ie, Shift):
                if ie.locking:
                    locked = ie.codeset
                else:
                    once = ie.codeset
            elif ie.key()[0] != active:
                raise EncodeError(f"{self.NAME}: IE 0x{ie.key()[1]:02x} of codeset {ie.key()[0]} "
                                  f"where codeset {active} is in force")
            out.write(ie.encode())
        out.write(self.trailing)
        return out.getvalue()

    def assess(self) -> Verdict:
        """What §5.8 asks: act or not, and the cause to answer with (see :class:`Verdict`)."""
        kinds: dict[str, list[int]] = {}
        for p in self.problems:
            if p.kind is ProblemKind.UNKNOWN_MESSAGE:
                return Verdict(False, CAUSE_MESSAGE_TYPE_NONEXISTENT)
            if p.kind in (ProblemKind.MISSING, ProblemKind.UNKNOWN_COMPREHENSION) or (
                    p.kind is ProblemKind.UNEXPECTED and p.comprehension_required):
                kinds.setdefault("96", []).append(p.ie or 0)
            elif p.kind is ProblemKind.INVALID:
                kinds.setdefault("100m" if p.mandatory else "100", []).append(p.ie or 0)
            elif p.kind in (ProblemKind.UNKNOWN_OPTIONAL, ProblemKind.UNEXPECTED):
                kinds.setdefault("99", []).append(p.ie or 0)
        for key, act, cause in (("96", False, CAUSE_MANDATORY_IE_MISSING), ("100m", False, CAUSE_INVALID_IE_CONTENTS),
                                ("100", True, CAUSE_INVALID_IE_CONTENTS), ("99", True, CAUSE_IE_NONEXISTENT)):
            if key in kinds:
                return Verdict(act, cause, tuple(dict.fromkeys(kinds[key])))
        return Verdict(True)

    @classmethod
    def conditional_problems(cls, msg: Message) -> list[Problem]:
        """Problems that depend on the contents of other IEs (a RESTART's class). None by default."""
        return []


@dataclass(frozen=True)
class UnknownMessage(Message):
    """A message type we do not know (Q.931 §5.8.4: answered with STATUS 97): its IEs decoded as
    any message's, its discriminator and type kept for the exact octets."""

    NAME: ClassVar[str] = "unknown message"
    unknown_pd: int = PD_Q931
    unknown_type: int = 0

    @property
    def pd(self) -> int:
        return self.unknown_pd

    @property
    def mtype(self) -> int:
        return self.unknown_type


def _cr(value: int, flag: bool = False) -> CallRef:
    return CallRef(value, flag)


class Alerting(Message):
    """ALERTING, Q.931 §3.1.1 (Table 3-2): called user alerting has begun. The channel id is
    mandatory in the first answer to a SETUP unless the SETUP's channel is accepted: a matter of
    state, for the call layer."""

    CODE: ClassVar[int] = 0x01
    NAME: ClassVar[str] = "ALERTING"
    RULES: ClassVar[tuple[Rule, ...]] = (_o(BearerCapability), _o(ChannelId), _o(Facility), _PROGRESS, _o(Display),
                                         _o(Signal))
    VECTORS: ClassVar[tuple[MessageVector, ...]] = (
        MessageVector("08 02 80 01 01", "user", _cr(1, True), ()),
        MessageVector("08 02 80 01 01 1e 02 82 88", "network", _cr(1, True),
                      (ProgressIndicator(location=LOC_PUBLIC_LOCAL),)),
    )


class CallProceeding(Message):
    """CALL PROCEEDING, Q.931 §3.1.2 (Table 3-3): call establishment begun, no more digits taken.
    Its channel id is mandatory when it is the first answer to a SETUP (state: the call layer)."""

    CODE: ClassVar[int] = 0x02
    NAME: ClassVar[str] = "CALL PROCEEDING"
    RULES: ClassVar[tuple[Rule, ...]] = (_o(BearerCapability), _o(ChannelId), _o(Facility), _PROGRESS, _o(Display))
    VECTORS: ClassVar[tuple[MessageVector, ...]] = (
        MessageVector("08 02 80 01 02 18 03 a9 83 85", "network", _cr(1, True),
                      (ChannelId.b_channel(5, exclusive=True),)),
    )


class Connect(Message):
    """CONNECT, Q.931 §3.1.3 (Table 3-4): the called user answered."""

    CODE: ClassVar[int] = 0x07
    NAME: ClassVar[str] = "CONNECT"
    RULES: ClassVar[tuple[Rule, ...]] = (_o(BearerCapability), _o(ChannelId), _o(Facility), _PROGRESS, _o(Display),
                                         _o(Signal))
    VECTORS: ClassVar[tuple[MessageVector, ...]] = (
        MessageVector("08 02 80 01 07", "user", _cr(1, True), ()),
        MessageVector("08 02 80 01 07 18 03 a9 83 85", "user", _cr(1, True), (ChannelId.b_channel(5, exclusive=True),)),
        # a locking shift to codeset 6 and a codeset-6 IE, kept as they came
        # (an IE of a codeset we do not implement is an unrecognised one, §5.8.7.1)
        MessageVector("08 02 80 01 07 96 28 02 41 42", "network", _cr(1, True),
                      (Shift(6), RawIE(6, 0x28, b"AB")), (Problem(ProblemKind.UNKNOWN_OPTIONAL, 0x28, 6),)),
        # a non-locking shift covers the next IE only: the second display is codeset 0's
        MessageVector("08 02 80 01 07 9e 28 02 41 42 28 02 43 44", "network", _cr(1, True),
                      (Shift(6, locking=False), RawIE(6, 0x28, b"AB"), Display("CD")),
                      (Problem(ProblemKind.UNKNOWN_OPTIONAL, 0x28, 6),)),
    )


class ConnectAck(Message):
    """CONNECT ACKNOWLEDGE, Q.931 §3.1.4 (Table 3-5): the call is awarded to the called user."""

    CODE: ClassVar[int] = 0x0F
    NAME: ClassVar[str] = "CONNECT ACKNOWLEDGE"
    RULES: ClassVar[tuple[Rule, ...]] = (_o(Display), _o(Signal))
    VECTORS: ClassVar[tuple[MessageVector, ...]] = (
        MessageVector("08 02 00 01 0f", "network", _cr(1), ()),
    )


class Disconnect(Message):
    """DISCONNECT, Q.931 §3.1.5 (Table 3-6): clear the end-to-end connection. Cause mandatory."""

    CODE: ClassVar[int] = 0x45
    NAME: ClassVar[str] = "DISCONNECT"
    RULES: ClassVar[tuple[Rule, ...]] = (_m(Cause), _o(Facility), _PROGRESS, _o(Display), _o(Signal))
    VECTORS: ClassVar[tuple[MessageVector, ...]] = (
        MessageVector("08 02 00 01 45 08 02 80 90", "user", _cr(1), (Cause(),)),
        MessageVector("08 02 80 01 45 08 02 82 91 1e 02 82 88", "network", _cr(1, True),
                      (Cause(CAUSE_USER_BUSY, LOC_PUBLIC_LOCAL), ProgressIndicator(location=LOC_PUBLIC_LOCAL))),
    )


class Information(Message):
    """INFORMATION, Q.931 §3.1.6 (Table 3-7): more digits (overlap sending and receiving) or
    other call information."""

    CODE: ClassVar[int] = 0x7B
    NAME: ClassVar[str] = "INFORMATION"
    RULES: ClassVar[tuple[Rule, ...]] = (_o(SendingComplete), _o(Cause), _o(Display), _o(Keypad), _o(Signal),
                                         _o(CalledNumber))
    VECTORS: ClassVar[tuple[MessageVector, ...]] = (
        MessageVector("08 02 00 01 7b 70 02 81 31", "network", _cr(1), (CalledNumber("1"),)),
        MessageVector("08 02 00 01 7b a1 70 02 81 32", "network", _cr(1), (SendingComplete(), CalledNumber("2"))),
    )


class Notify(Message):
    """NOTIFY, Q.931 §3.1.7 (Table 3-8): information about a call (user suspended...);
    the notification indicator is mandatory."""

    CODE: ClassVar[int] = 0x6E
    NAME: ClassVar[str] = "NOTIFY"
    RULES: ClassVar[tuple[Rule, ...]] = (_o(BearerCapability), _m(NotificationIndicator), _o(Display))
    VECTORS: ClassVar[tuple[MessageVector, ...]] = (
        MessageVector("08 02 80 01 6e 27 01 80", "network", _cr(1, True), (NotificationIndicator(),)),
    )


class Progress(Message):
    """PROGRESS, Q.931 §3.1.8 (Table 3-9): interworking, or in-band information; its progress
    indicator is mandatory."""

    CODE: ClassVar[int] = 0x03
    NAME: ClassVar[str] = "PROGRESS"
    RULES: ClassVar[tuple[Rule, ...]] = (_o(BearerCapability), _o(Cause), _o(Facility), _m(ProgressIndicator, 2),
                                         _o(Display))
    VECTORS: ClassVar[tuple[MessageVector, ...]] = (
        MessageVector("08 02 80 01 03 1e 02 82 88", "network", _cr(1, True),
                      (ProgressIndicator(location=LOC_PUBLIC_LOCAL),)),
    )


class Release(Message):
    """RELEASE, Q.931 §3.1.9 (Table 3-10): the sender has disconnected the channel and will release
    the call reference. The cause is mandatory only as the first clearing message (state)."""

    CODE: ClassVar[int] = 0x4D
    NAME: ClassVar[str] = "RELEASE"
    RULES: ClassVar[tuple[Rule, ...]] = (_o(Cause), _o(Facility), _o(Display), _o(Signal))
    VECTORS: ClassVar[tuple[MessageVector, ...]] = (
        MessageVector("08 02 80 01 4d", "network", _cr(1, True), ()),
        MessageVector("08 02 80 01 4d 08 02 82 90", "network", _cr(1, True), (Cause(location=LOC_PUBLIC_LOCAL),)),
    )


class ReleaseComplete(Message):
    """RELEASE COMPLETE, Q.931 §3.1.10 (Table 3-11): channel and call reference released. The
    cause is mandatory only as the first clearing message (state)."""

    CODE: ClassVar[int] = 0x5A
    NAME: ClassVar[str] = "RELEASE COMPLETE"
    RULES: ClassVar[tuple[Rule, ...]] = (_o(Cause), _o(Facility), _o(Display), _o(Signal))
    VECTORS: ClassVar[tuple[MessageVector, ...]] = (
        MessageVector("08 02 00 01 5a", "user", _cr(1), ()),
        MessageVector("08 02 00 01 5a 08 02 80 d1", "user", _cr(1), (Cause(CAUSE_INVALID_CALL_REFERENCE),)),
    )


class Setup(Message):
    """SETUP, Q.931 §3.1.14 (Table 3-15): a new call. Bearer capability mandatory (two may come,
    bearer capability selection); channel identification mandatory from the network (Note 4),
    absent from the user meaning any channel. The redirecting number is Q.952's addition."""

    CODE: ClassVar[int] = 0x05
    NAME: ClassVar[str] = "SETUP"
    RULES: ClassVar[tuple[Rule, ...]] = (
        _o(SendingComplete), _m(BearerCapability, 2), Rule(ChannelId, "network"), _o(Facility), _PROGRESS,
        _o(Display), _o(Keypad), _o(Signal), _o(CallingNumber), _o(CalledNumber), _o(RedirectingNumber),
    )
    VECTORS: ClassVar[tuple[MessageVector, ...]] = (
        MessageVector("08 02 00 01 05 a1 04 03 80 90 a3 18 03 a1 83 85 6c 0d 21 80 31 33 38 30 30 31 33 38 30 30 30"
                      " 70 05 a1 30 37 35 35", "user", _cr(1),
                      (SendingComplete(), BearerCapability.speech("alaw"), ChannelId.b_channel(5),
                       CallingNumber("13800138000", Ton.national, Npi.isdn, Presentation.allowed,
                                     Screening.user_unscreened),
                       CalledNumber("0755", Ton.national))),
        MessageVector("08 02 00 05 05 04 03 80 90 a2 18 03 a9 83 81 6c 0d 21 a3 31 33 38 30 30 31 33 38 30 30 30"
                      " 70 04 c1 31 30 30", "network", _cr(5),
                      (BearerCapability.speech("ulaw"), ChannelId.b_channel(1, exclusive=True),
                       CallingNumber("13800138000", Ton.national, Npi.isdn, Presentation.restricted, Screening.network),
                       CalledNumber("100", Ton.subscriber))),
        # from the user, no channel identification: any channel will do
        MessageVector("08 02 00 01 05 04 03 80 90 a3", "user", _cr(1), (BearerCapability.speech("alaw"),)),
    )


class SetupAck(Message):
    """SETUP ACKNOWLEDGE, Q.931 §3.1.15 (Table 3-16): call establishment begun, more digits
    wanted (overlap). Its channel id is mandatory unless the SETUP's channel is accepted (state)."""

    CODE: ClassVar[int] = 0x0D
    NAME: ClassVar[str] = "SETUP ACKNOWLEDGE"
    RULES: ClassVar[tuple[Rule, ...]] = (_o(ChannelId), _PROGRESS, _o(Display), _o(Signal))
    VECTORS: ClassVar[tuple[MessageVector, ...]] = (
        MessageVector("08 02 80 01 0d 18 03 a9 83 85", "network", _cr(1, True),
                      (ChannelId.b_channel(5, exclusive=True),)),
    )


class Status(Message):
    """STATUS, Q.931 §3.1.16 (Table 3-17; §3.4.3 on the global call reference): the sender's
    call state, in answer to STATUS ENQUIRY or to report an error. Cause and call state mandatory."""

    CODE: ClassVar[int] = 0x7D
    NAME: ClassVar[str] = "STATUS"
    RULES: ClassVar[tuple[Rule, ...]] = (_m(Cause), _m(CallState), _o(Display))
    VECTORS: ClassVar[tuple[MessageVector, ...]] = (
        MessageVector("08 02 00 01 7d 08 02 80 9e 14 01 0a", "user", _cr(1),
                      (Cause(CAUSE_RESPONSE_TO_STATUS_ENQUIRY), CallState(CallStateValue.active))),
        MessageVector("08 02 80 00 7d 08 02 80 e1 14 01 00", "user", CallRef(0, True),
                      (Cause(CAUSE_MESSAGE_TYPE_NONEXISTENT), CallState())),
    )


class StatusEnquiry(Message):
    """STATUS ENQUIRY, Q.931 §3.1.17 (Table 3-18): asks for a STATUS (answering is mandatory)."""

    CODE: ClassVar[int] = 0x75
    NAME: ClassVar[str] = "STATUS ENQUIRY"
    RULES: ClassVar[tuple[Rule, ...]] = (_o(Display),)
    VECTORS: ClassVar[tuple[MessageVector, ...]] = (
        MessageVector("08 02 00 01 75", "user", _cr(1), ()),
    )


def _restart_conditions(msg: Message) -> list[Problem]:
    # §5.5.2: class "indicated channels" without a channel id: as a missing mandatory IE (§5.8.6.1);
    # class "all interfaces" with one: the channel id as an unexpected IE (§5.8.7.3)
    ri = msg.get(RestartIndicator)
    has_channel = bool(msg._handled(ChannelId.ID))
    if ri is None:
        return []
    if ri.restart_class is RestartClass.indicated_channels and not has_channel:
        return [Problem(ProblemKind.MISSING, ChannelId.ID, mandatory=True,
                        detail="restart class 'indicated channels' names no channel (§5.5.2)")]
    if ri.restart_class is RestartClass.all_interfaces and has_channel:
        return [Problem(ProblemKind.UNEXPECTED, ChannelId.ID,
                        detail="restart class 'all interfaces' with a channel identification (§5.5.2)")]
    return []


class Restart(Message):
    """RESTART, Q.931 §3.4.1 (Table 3-49), on the global call reference: return the channels
    named, one interface or all to idle. Restart indicator mandatory; channel id as its class says
    (§5.5.2)."""

    CODE: ClassVar[int] = 0x46
    NAME: ClassVar[str] = "RESTART"
    RULES: ClassVar[tuple[Rule, ...]] = (_o(ChannelId), _o(Display), _m(RestartIndicator))
    VECTORS: ClassVar[tuple[MessageVector, ...]] = (
        # the facts' capture: all interfaces, on the global call reference
        MessageVector("08 02 00 00 46 79 01 87", "network", GLOBAL_CALL_REFERENCE, (RestartIndicator(),)),
        MessageVector("08 02 00 00 46 18 03 a9 83 85 79 01 80", "user", GLOBAL_CALL_REFERENCE,
                      (ChannelId.b_channel(5, exclusive=True), RestartIndicator(RestartClass.indicated_channels))),
    )

    @classmethod
    def conditional_problems(cls, msg: Message) -> list[Problem]:
        return _restart_conditions(msg)


class RestartAck(Message):
    """RESTART ACKNOWLEDGE, Q.931 §3.4.2 (Table 3-50): the restart is done; as RESTART's IEs."""

    CODE: ClassVar[int] = 0x4E
    NAME: ClassVar[str] = "RESTART ACKNOWLEDGE"
    RULES: ClassVar[tuple[Rule, ...]] = (_o(ChannelId), _o(Display), _m(RestartIndicator))
    VECTORS: ClassVar[tuple[MessageVector, ...]] = (
        MessageVector("08 02 80 00 4e 79 01 87", "user", CallRef(0, True), (RestartIndicator(),)),
        MessageVector("08 02 80 00 4e 18 03 a9 83 85 79 01 80", "network", CallRef(0, True),
                      (ChannelId.b_channel(5, exclusive=True), RestartIndicator(RestartClass.indicated_channels))),
    )

    @classmethod
    def conditional_problems(cls, msg: Message) -> list[Problem]:
        return _restart_conditions(msg)


class FacilityMessage(Message):
    """FACILITY (ITU-T Q.932; its type 0x62 in Q.931 Table 4-2): supplementary service operations,
    out of scope: decoded so that it is no unknown message. The facility IE is mandatory."""

    CODE: ClassVar[int] = 0x62
    NAME: ClassVar[str] = "FACILITY"
    RULES: ClassVar[tuple[Rule, ...]] = (_m(Facility), _o(Display), _o(CalledNumber))
    VECTORS: ClassVar[tuple[MessageVector, ...]] = (
        MessageVector("08 02 80 01 62 1c 05 91 a1 02 02 01", "network", _cr(1, True),
                      (Facility(bytes.fromhex("91a1020201")),)),
    )


class Service(Message):
    """SERVICE (NI-2 maintenance, protocol discriminator 0x43, type 0x07; AT&T's 0x03/0x0F is not
    ours): put a B-channel in service, in maintenance or out of service. Change status and
    channel identification mandatory."""

    PD: ClassVar[int] = PD_MAINTENANCE
    CODE: ClassVar[int] = 0x07
    NAME: ClassVar[str] = "SERVICE"
    RULES: ClassVar[tuple[Rule, ...]] = (_m(ChangeStatus), _m(ChannelId), _o(Display))
    VECTORS: ClassVar[tuple[MessageVector, ...]] = (
        MessageVector("43 02 00 01 07 01 01 c2 18 03 a9 83 85", "network", _cr(1),
                      (ChangeStatus(ServiceStatus.out_of_service), ChannelId.b_channel(5, exclusive=True))),
    )


class ServiceAck(Message):
    """SERVICE ACKNOWLEDGE (NI-2 maintenance, discriminator 0x43, type 0x0F): the B-channel's
    status as now held. Change status and channel identification mandatory."""

    PD: ClassVar[int] = PD_MAINTENANCE
    CODE: ClassVar[int] = 0x0F
    NAME: ClassVar[str] = "SERVICE ACKNOWLEDGE"
    RULES: ClassVar[tuple[Rule, ...]] = (_m(ChangeStatus), _m(ChannelId), _o(Display))
    VECTORS: ClassVar[tuple[MessageVector, ...]] = (
        MessageVector("43 02 80 01 0f 01 01 c2 18 03 a9 83 85", "user", _cr(1, True),
                      (ChangeStatus(ServiceStatus.out_of_service), ChannelId.b_channel(5, exclusive=True))),
    )


#: every message type we know, by (protocol discriminator, message type)
MESSAGES: tuple[type[Message], ...] = (
    Alerting, CallProceeding, Connect, ConnectAck, Disconnect, Information, Notify, Progress, Release,
    ReleaseComplete, Setup, SetupAck, Status, StatusEnquiry, Restart, RestartAck, FacilityMessage, Service, ServiceAck,
)
MESSAGE_CLASSES: dict[tuple[int, int], type[Message]] = {(m.PD, m.CODE): m for m in MESSAGES}


# --- Decoding ---------------------------------------------------------------------------------------------

def decode(data: bytes, sent_by: Side) -> Message:
    """The message in `data` (a Q.921 I frame's information field), sent by `sent_by` (the network
    or the user: some IEs are mandatory in one direction).

    Raises DecodeError only when there is nothing to act on (Q.931 §5.8.1-5.8.3.1: the receiver
    ignores the octets); anything else wrong with the message is in its ``problems``. A message of
    3 octets decodes (it has the dummy call reference, ``cr.is_dummy``); a PRI does not use that
    one, so the call layer ignores it (the issue's "under 4 octets").
    """
    data = bytes(data)
    n = len(data)
    if n and data[0] not in PROTOCOL_DISCRIMINATORS:
        raise DecodeError(f"protocol discriminator 0x{data[0]:02x} is not Q.931's (0x08) nor NI-2's maintenance "
                          f"(0x43) (§5.8.1)")
    if n < 3:
        raise DecodeError(f"message too short: {n} octet(s), no message type (§5.8.2)")
    if data[1] & 0xF0:
        raise DecodeError(f"call reference: octet 2 is 0x{data[1]:02x}, its bits 8-5 must be 0000 (§5.8.3.1)")
    cr_length = data[1] & 0x0F
    if cr_length > MAX_CALL_REFERENCE_LENGTH:
        raise DecodeError(f"call reference of {cr_length} octets: at most {MAX_CALL_REFERENCE_LENGTH} on a primary "
                          f"rate interface (§5.8.3.1)")
    start = 3 + cr_length
    if n < start:
        raise DecodeError(f"message too short: {n} octets, no message type after a {cr_length}-octet call "
                          f"reference (§5.8.2)")
    pd, cr, mtype = HEADER.parse(data[:start])
    spec = MESSAGE_CLASSES.get((pd, mtype))
    ies, problems, trailing = _decode_ies(data, start, spec, sent_by)
    if spec is None:
        problems.insert(0, Problem(ProblemKind.UNKNOWN_MESSAGE,
                                   detail=f"message type 0x{mtype:02x} (discriminator 0x{pd:02x})"))
        return UnknownMessage(cr, tuple(ies), tuple(problems), trailing, pd, mtype)
    msg = spec(cr, tuple(ies), tuple(problems), trailing)
    extra = spec.conditional_problems(msg)
    return dataclasses.replace(msg, problems=msg.problems + tuple(extra)) if extra else msg


def _decode_ies(data: bytes, pos: int, spec: type[Message] | None,
                sent_by: Side) -> tuple[list[InformationElement], list[Problem], bytes]:
    rules = spec._RULE_MAP if spec else None
    spec_name = spec.NAME if spec else ""
    ies: list[InformationElement] = []
    problems: list[Problem] = []
    present: set[int] = set()            # codeset-0 IEs there (valid or not), for the mandatory check
    counts: dict[int, int] = {}          # occurrences of known IEs, for duplicates
    last_variable: dict[int, int] = {}   # per codeset, for the sequence check
    locked, once = 0, None
    n = len(data)
    trailing = b""

    def known(ie_id: int, codeset: int, make: Callable[[], InformationElement], raw: InformationElement) -> None:
        """A codeset-0 IE we know: unexpected in this message, a repetition, invalid, or fine."""
        rule = rules.get(ie_id) if rules is not None else None
        if rules is not None and rule is None:
            ie = _try(make, raw)[0]
            problems.append(Problem(ProblemKind.UNEXPECTED, ie_id, codeset, detail=f"not carried by {spec_name}"))
            ies.append(ie)
            return
        present.add(ie_id)
        counts[ie_id] = counts.get(ie_id, 0) + 1
        limit = rule.repeat if rule else 1
        ie, error = _try(make, raw)
        if counts[ie_id] > limit:
            problems.append(Problem(ProblemKind.DUPLICATE, ie_id, codeset,
                                    detail=f"occurrence {counts[ie_id]}, {limit} allowed: ignored"))
        elif error is not None:
            problems.append(Problem(ProblemKind.INVALID, ie_id, codeset,
                                    mandatory=bool(rule and rule.mandatory_from(sent_by)), detail=error))
        ies.append(ie)

    while pos < n:
        octet = data[pos]
        codeset = locked if once is None else once
        once = None
        if octet & 0x80:                                    # single octet (§4.5.1 type 1 and 2)
            pos += 1
            if octet & 0xF0 == SHIFT:
                target = octet & 0x07
                ies.append(Shift(target, not octet & SHIFT_NON_LOCKING))
                if octet & SHIFT_NON_LOCKING:
                    once = target
                else:
                    if target <= locked:
                        problems.append(Problem(ProblemKind.INVALID, octet, codeset,
                                                detail=f"locking shift from codeset {locked} to {target}: only to a "
                                                       f"higher one (§4.5.2)"))
                    locked = target
                continue
            if codeset == 0 and octet == SendingComplete.ID:
                known(octet, codeset, SendingComplete, SendingComplete())
            else:
                ies.append(RawIE(codeset, octet))
                problems.append(Problem(ProblemKind.UNKNOWN_OPTIONAL, octet, codeset, detail="single-octet IE"))
            continue
        if pos + 2 > n or pos + 2 + data[pos + 1] > n:      # no length octet, or contents past the end
            left = n - pos - 2
            detail = ("the message ends before its length octet" if left < 0
                      else f"length {data[pos + 1]}, {left} octet(s) left in the message")
            mandatory = False
            if codeset == 0 and octet in IE_CLASSES:
                present.add(octet)
                rule = rules.get(octet) if rules else None
                mandatory = bool(rule and rule.mandatory_from(sent_by))
            problems.append(Problem(ProblemKind.INVALID, octet, codeset, mandatory, detail))
            trailing = data[pos:]
            break
        length = data[pos + 1]
        contents = data[pos + 2:pos + 2 + length]
        pos += 2 + length
        if not contents:                                    # empty: as absent (§4.5.1)
            ies.append(RawIE(codeset, octet, b""))
            continue
        if octet < last_variable.get(codeset, -1):
            problems.append(Problem(ProblemKind.OUT_OF_SEQUENCE, octet, codeset,
                                    detail=f"after IE 0x{last_variable[codeset]:02x}"))
        last_variable[codeset] = max(octet, last_variable.get(codeset, -1))
        cls = IE_CLASSES.get(octet) if codeset == 0 else None
        raw = RawIE(codeset, octet, contents)
        if cls is None:
            ies.append(raw)
            kind = (ProblemKind.UNKNOWN_COMPREHENSION if _comprehension_required(codeset, octet)
                    else ProblemKind.UNKNOWN_OPTIONAL)
            problems.append(Problem(kind, octet, codeset))
        else:
            known(octet, codeset, functools.partial(cls.from_contents, contents), raw)

    if rules is not None:
        for rule in rules.values():
            if rule.mandatory_from(sent_by) and rule.ie.ID not in present:
                problems.append(Problem(ProblemKind.MISSING, rule.ie.ID, mandatory=True,
                                        detail=f"{rule.ie.NAME} is mandatory in {spec_name}"
                                               + ("" if rule.mandatory == "both" else f" from the {sent_by}")))
    return ies, problems, trailing


def _try(make: Callable[[], InformationElement], raw: InformationElement) -> tuple[InformationElement, str | None]:
    try:
        return make(), None
    except (DecodeError, EncodeError, ConstructError, ValueError) as exc:
        return raw, str(exc)


# --- A fixed mix for the benchmark (bench/pri.py's q931_msgs_per_s) -----------------------------------------

def _bench_mix() -> tuple[tuple[Message, Side], ...]:
    cr_out, cr_in = CallRef(0x1234), CallRef(0x1234, True)
    return (
        (Setup(cr_out, (SendingComplete(), BearerCapability.speech("alaw"), ChannelId.b_channel(5, exclusive=True),
                        CallingNumber("13800138000", Ton.national, Npi.isdn, Presentation.allowed,
                                      Screening.user_unscreened),
                        CalledNumber("0755", Ton.national))), "user"),
        (CallProceeding(cr_in, (ChannelId.b_channel(5, exclusive=True),)), "network"),
        (Alerting(cr_in, (ProgressIndicator(location=LOC_PUBLIC_LOCAL),)), "network"),
        (Connect(cr_in), "network"),
        (ConnectAck(cr_out), "user"),
        (StatusEnquiry(cr_out), "user"),
        (Status(cr_in, (Cause(CAUSE_RESPONSE_TO_STATUS_ENQUIRY, LOC_PUBLIC_LOCAL), CallState(CallStateValue.active))),
         "network"),
        (Disconnect(cr_out, (Cause(),)), "user"),
        (Release(cr_in, (Cause(location=LOC_PUBLIC_LOCAL),)), "network"),
        (ReleaseComplete(cr_out), "user"),
    )


BENCH_MIX = _bench_mix()


def bench_mix(rounds: int = 1) -> int:
    """Encode, then decode, each message of :data:`BENCH_MIX` (SETUP to RELEASE COMPLETE) `rounds`
    times; returns the number of messages so handled (what ``q931_msgs_per_s`` divides by time)."""
    done = 0
    for _ in range(rounds):
        for msg, sent_by in BENCH_MIX:
            decode(msg.encode(), sent_by)
            done += 1
    return done
