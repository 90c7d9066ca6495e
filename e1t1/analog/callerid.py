"""Caller ID and message-waiting messages on analog lines.

FSK messages (Bell 202 "CLASS" and ETSI CLIP over V.23 share the layout):
message type, length, body, checksum (two's complement of the byte sum, so all
octets sum to 0 mod 256). SDMF (type 0x04) is a fixed body: MMDDHHMM then the
number (or 'O'/'P' when absent); MDMF (0x80 caller ID, 0x82 message waiting)
is a list of parameters (type, length, value). DTMF CLIP is digits: 'A' number
'C' (or '#'), with 'B'00 / 'B'10 (C-terminated) or 'D'1/2/3 (#-terminated) for
an absent number. Figures: shared/reference/line-signals.md.

Both ends of a line use the framing here, written once: :func:`fsk_frame` (what an FSK
modem sends: channel seizure, marks, then the message), :class:`FskMessageReader` (one
message out of the octets an FSK receiver hands over) and :class:`DtmfClipReader`
(DTMF caller ID out of the digits a trunk hears while on hook).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from construct import (
    Bytes,
    Checksum,
    ConstructError,
    GreedyRange,
    Int8ub,
    RawCopy,
    Struct,
    this,
)

from e1t1.errors import DecodeError, EncodeError

# Message types (line-signals.md: CLASS SDMF 0x04, MDMF 0x80; MWI MDMF 0x82)
SDMF_CALLERID = 0x04
MDMF_CALLERID = 0x80
MDMF_MWI = 0x82
MESSAGE_TYPES = (SDMF_CALLERID, MDMF_CALLERID, MDMF_MWI)
# MDMF parameter types (ETSI EN 300 659 / CLASS MDMF)
P_DATETIME = 0x01
P_NUMBER = 0x02
P_NUMBER_ABSENT = 0x04
P_NAME = 0x07
P_NAME_ABSENT = 0x08
P_VISUAL_INDICATOR = 0x0B
P_CALL_TYPE = 0x11

MAX_NUMBER = 20
MAX_NAME = 50

# FSK modem framing (line-signals.md, Bell 202 and ETSI CLIP alike): channel seizure of 300
# alternating bits, 180 mark bits, then the message.
FSK_STANDARDS = ("bell202", "v23")
SEIZURE_BITS = 300
MARK_BITS = 180

# DTMF CLIP (line-signals.md, spandsp adsi.h): a message starts with a field code, 'A' caller
# number, 'B' absence (C-terminated), 'D' absence (#-terminated) or diverting number; it ends
# with 'C' or '#'. A '#'-terminated message may also be bare digits, without a field code.
DTMF_START_CODES = "ABD"
DTMF_TERMINATORS = "C#"

# MDMF parameter: type, length, value
Parameter = Struct("type" / Int8ub, "length" / Int8ub, "value" / Bytes(this.length))

# A whole FSK message: type, length, body, checksum over type+length+body.
Message = Struct(
    "fields" / RawCopy(Struct("type" / Int8ub, "length" / Int8ub, "body" / Bytes(this.length))),
    "checksum" / Checksum(Int8ub, lambda data: (-sum(data)) & 0xFF, this.fields.data),
)
Parameters = GreedyRange(Parameter)


@dataclass(frozen=True)
class CallerId:
    """What a phone shows: number, name, date and time, or why they are absent."""

    number: str | None = None
    name: str | None = None
    month: int | None = None
    day: int | None = None
    hour: int | None = None
    minute: int | None = None
    number_absent: str | None = None   # 'O' unavailable / out of area, 'P' private
    name_absent: str | None = None
    call_type: int | None = None


@dataclass(frozen=True)
class MessageWaiting:
    """The message-waiting lamp: on or off."""

    active: bool


def _checked_number(number: str | None) -> bytes:
    if number is None:
        return b""
    if not number.isdigit() or len(number) > MAX_NUMBER:
        raise EncodeError(f"number: must be 1-{MAX_NUMBER} digits, got {number!r}")
    return number.encode("ascii")


def _datetime(cid: CallerId) -> bytes | None:
    parts = (cid.month, cid.day, cid.hour, cid.minute)
    if any(p is None for p in parts):
        return None
    month, day, hour, minute = (int(p) for p in parts if p is not None)
    if not (1 <= month <= 12 and 1 <= day <= 31 and 0 <= hour <= 23 and 0 <= minute <= 59):
        raise EncodeError(f"date/time: out of range {month:02d}-{day:02d} {hour:02d}:{minute:02d}")
    return f"{month:02d}{day:02d}{hour:02d}{minute:02d}".encode("ascii")


def _message(mtype: int, body: bytes) -> bytes:
    if len(body) > 255:
        raise EncodeError(f"message body is {len(body)} octets; at most 255 fit")
    out: bytes = Message.build({"fields": {"value": {"type": mtype, "length": len(body), "body": body}}})
    return out


def encode_sdmf(cid: CallerId) -> bytes:
    """Single data message format: date-time and number (or 'O'/'P')."""
    dt = _datetime(cid)
    if dt is None:
        raise EncodeError("date/time: SDMF needs month, day, hour and minute")
    number = _checked_number(cid.number)
    if len(number) > 10:
        raise EncodeError(f"number: SDMF carries at most 10 digits, got {len(number)}")
    if not number:
        number = (cid.number_absent or "O").encode("ascii")
    return _message(SDMF_CALLERID, dt + number)


def encode_mdmf(cid: CallerId) -> bytes:
    """Multiple data message format: date-time, number or its absence, name or its absence."""
    params: list[dict[str, Any]] = []
    dt = _datetime(cid)
    if dt is not None:
        params.append({"type": P_DATETIME, "length": len(dt), "value": dt})
    number = _checked_number(cid.number)
    if number:
        params.append({"type": P_NUMBER, "length": len(number), "value": number})
    else:
        why = (cid.number_absent or "O").encode("ascii")
        if why not in (b"O", b"P"):
            raise EncodeError(f"number_absent: must be 'O' or 'P', got {cid.number_absent!r}")
        params.append({"type": P_NUMBER_ABSENT, "length": 1, "value": why})
    if cid.name is not None:
        name = cid.name.encode("ascii", "replace")
        if not 1 <= len(name) <= MAX_NAME:
            raise EncodeError(f"name: must be 1-{MAX_NAME} characters, got {len(name)}")
        params.append({"type": P_NAME, "length": len(name), "value": name})
    elif cid.name_absent is not None:
        params.append({"type": P_NAME_ABSENT, "length": 1, "value": cid.name_absent.encode("ascii")})
    if cid.call_type is not None:
        params.append({"type": P_CALL_TYPE, "length": 1, "value": bytes([cid.call_type & 0xFF])})
    return _message(MDMF_CALLERID, Parameters.build(params))


def encode_mwi(on: bool) -> bytes:
    """MDMF message waiting: visual indicator on (0xFF) or off (0x00)."""
    value = b"\xff" if on else b"\x00"
    return _message(MDMF_MWI, Parameters.build([{"type": P_VISUAL_INDICATOR, "length": 1, "value": value}]))


def decode_fsk_message(data: bytes) -> CallerId | MessageWaiting:
    """Decode one FSK message (SDMF, MDMF caller ID, MDMF message waiting)."""
    if len(data) < 3:
        raise DecodeError(f"message truncated: {len(data)} octets, at least 3 needed")
    if 2 + data[1] + 1 > len(data):
        raise DecodeError(f"message truncated: length says {data[1]} octets of body, {max(0, len(data) - 3)} present")
    try:
        msg = Message.parse(data[: 2 + data[1] + 1])
    except ConstructError as exc:
        if "checksum" in str(exc).lower():
            raise DecodeError("checksum mismatch") from None
        raise DecodeError(f"malformed message: {exc}") from None
    mtype, body = msg.fields.value.type, msg.fields.value.body
    if mtype == SDMF_CALLERID:
        if len(body) < 8 or not body[:8].isdigit():
            raise DecodeError("SDMF body must start with 8 digits MMDDHHMM")
        rest = body[8:].decode("ascii", "replace")
        absent = rest if rest in ("O", "P") else None
        return CallerId(number=None if absent else rest or None, month=int(body[0:2]), day=int(body[2:4]),
                        hour=int(body[4:6]), minute=int(body[6:8]), number_absent=absent)
    if mtype not in (MDMF_CALLERID, MDMF_MWI):
        raise DecodeError(f"unknown message type 0x{mtype:02x}")
    fields: dict[str, Any] = {}
    pos = 0
    while pos < len(body):
        if pos + 2 > len(body) or pos + 2 + body[pos + 1] > len(body):
            raise DecodeError(f"parameter at offset {pos} runs past the end of the message")
        ptype, plen = body[pos], body[pos + 1]
        value = body[pos + 2:pos + 2 + plen]
        pos += 2 + plen
        if mtype == MDMF_MWI:
            if ptype == P_VISUAL_INDICATOR:
                if plen != 1:
                    raise DecodeError(f"visual indicator parameter must be 1 octet, is {plen}")
                return MessageWaiting(value[0] != 0)
            continue
        if ptype == P_DATETIME:
            if plen != 8 or not value.isdigit():
                raise DecodeError(f"date-time parameter must be 8 digits, is {value!r}")
            fields.update(month=int(value[0:2]), day=int(value[2:4]), hour=int(value[4:6]), minute=int(value[6:8]))
        elif ptype == P_NUMBER:
            fields["number"] = _received_number(value.decode("ascii", "replace"))
        elif ptype == P_NUMBER_ABSENT:
            fields["number_absent"] = value.decode("ascii", "replace")
        elif ptype == P_NAME:
            fields["name"] = value.decode("ascii", "replace")
        elif ptype == P_NAME_ABSENT:
            fields["name_absent"] = value.decode("ascii", "replace")
        elif ptype == P_CALL_TYPE and plen == 1:
            fields["call_type"] = value[0]
        # other parameters are skipped
    if mtype == MDMF_MWI:
        raise DecodeError("message-waiting message without a visual indicator parameter")
    return CallerId(**fields)


def encode_dtmf_clip(cid: CallerId, terminator: str = "C") -> str:
    """DTMF caller ID digits: 'A' number 'C' (or '#'); an absent number as 'B'00/'B'10 or 'D'1/'D'3."""
    if terminator not in ("C", "#"):
        raise EncodeError(f"terminator: must be 'C' or '#', got {terminator!r}")
    number = _checked_number(cid.number).decode()
    if number:
        return f"A{number}{terminator}"
    private = cid.number_absent == "P"
    if terminator == "C":
        return f"B{'00' if private else '10'}C"
    return f"D{'1' if private else '3'}#"


def _received_number(number: str) -> str:
    """A number as received, if it is one: no caller ID carries more than MAX_NUMBER digits (a longer one
    is a damaged or hostile message, dropped whole rather than stored)."""
    if len(number) > MAX_NUMBER:
        raise DecodeError(f"number: {len(number)} characters, at most {MAX_NUMBER}")
    return number


def decode_dtmf_clip(digits: str) -> CallerId:
    """Read DTMF caller ID digits as sent before the first ring; what precedes the start code
    (a stray key left on the line) is not part of the message."""
    starts = [i for i, c in enumerate(digits) if c in DTMF_START_CODES]
    if starts:
        digits = digits[starts[0]:]
    if len(digits) < 2 or digits[-1] not in "C#":
        raise DecodeError(f"DTMF caller ID must end with 'C' or '#': {digits!r}")
    body, term = digits[:-1], digits[-1]
    if body.startswith("A") and body[1:].isdigit():
        return CallerId(number=_received_number(body[1:]))
    if term == "C" and body in ("B00", "B10"):
        return CallerId(number_absent="P" if body == "B00" else "O")
    if term == "#" and body in ("D1", "D2", "D3"):
        return CallerId(number_absent="P" if body == "D1" else "O")
    if term == "#" and body.isdigit():
        return CallerId(number=_received_number(body))       # '#'-terminated with no field type
    if body.startswith("D") and term == "C" and body[1:].isdigit():
        raise DecodeError(f"DTMF caller ID carries only a diverting number: {digits!r}")
    raise DecodeError(f"DTMF caller ID not understood: {digits!r}")


@dataclass(frozen=True)
class FskFrame:
    """What an FSK modem sends for one message: channel seizure, marks, then the octets."""

    message: bytes
    standard: str                    # "bell202" (1200/2200 Hz) or "v23" (1300/2100 Hz)
    seizure_bits: int = SEIZURE_BITS
    mark_bits: int = MARK_BITS


def fsk_frame(message: bytes, standard: str) -> FskFrame:
    """The frame that carries `message` (built by encode_mdmf/encode_sdmf/encode_mwi) with `standard`."""
    if standard not in FSK_STANDARDS:
        raise EncodeError(f"FSK standard: must be one of {', '.join(FSK_STANDARDS)}, got {standard!r}")
    return FskFrame(message, standard)


def callerid_frame(cid: CallerId, standard: str) -> FskFrame:
    """Caller ID as an FSK frame: an MDMF message (date-time, number or its absence, name)."""
    return fsk_frame(encode_mdmf(cid), standard)


def fsk_standard(zone: str) -> str:
    """The FSK modem a tone zone's phones use: ETSI V.23 in Europe, Bell 202 elsewhere (China's FSK
    caller ID uses the Bell 202 modem; line-signals.md)."""
    return "v23" if zone == "de" else "bell202"


class FskMessageReader:
    """One FSK message out of the octets a receiver hands over, one at a time.

    What precedes a message type (the end of the channel seizure, line noise) is skipped; the
    message is complete when its length octet says so (type, length, body, checksum).
    """

    def __init__(self) -> None:
        self.octets = bytearray()

    def reset(self) -> None:
        """Drop a message in progress (a new channel seizure begins another)."""
        self.octets.clear()

    @property
    def in_progress(self) -> bool:
        return bool(self.octets)

    def feed(self, octet: int) -> bytes | None:
        """Take one octet; return the whole message when this octet completes it."""
        if not self.octets and octet not in MESSAGE_TYPES:
            return None
        self.octets.append(octet)
        if len(self.octets) >= 2 and len(self.octets) >= self.octets[1] + 3:
            msg = bytes(self.octets)
            self.octets.clear()
            return msg
        return None


class DtmfClipReader:
    """DTMF caller ID out of the digits a trunk hears while on hook.

    A start code ('A', 'B', 'D') begins a new message and drops whatever came before it. Once
    begun, a message takes every digit up to its terminator ('C', '#'); after the terminator
    nothing more is part of it. Without a start code, a run of decimal digits may be a bare
    '#'-terminated number. A digit more than `gap_ms` after the previous one does not continue
    a message (caller ID digits come in one burst): it may begin a new one or is discarded.
    """

    def __init__(self, gap_ms: int) -> None:
        self.gap_ms = gap_ms
        self.digits = ""
        self.complete = False
        self.discarded = 0             # digits that were no caller ID
        self._last: int | None = None

    def reset(self) -> None:
        """Drop what was collected (a message not finished counts as discarded)."""
        self._drop_partial()
        self.digits = ""
        self.complete = False
        self._last = None

    def _drop_partial(self) -> None:
        if self.digits and not self.complete:
            self.discarded += len(self.digits)
        self.digits = ""

    def feed(self, digit: str, tick: int) -> bool:
        """Take one digit heard at `tick`; True if it starts a new caller ID message."""
        late = self._last is not None and tick - self._last > self.gap_ms
        self._last = tick
        if digit in DTMF_START_CODES:
            self._drop_partial()
            self.digits, self.complete = digit, False
            return True
        if self.complete:
            self.discarded += 1           # after the terminator: not part of the message
            return False
        if self.digits and not late:
            self.digits += digit
            self.complete = digit in DTMF_TERMINATORS
            return False
        self._drop_partial()
        if digit.isdigit():
            self.digits = digit           # perhaps a bare '#'-terminated number
        else:
            self.discarded += 1
        return False

    def take(self, tick: int | None = None, max_age_ms: int | None = None) -> CallerId | None:
        """The caller ID collected (None if no digit came), and start afresh; raises DecodeError
        with the reason when the digits are no caller ID message. With `tick` and `max_age_ms`:
        digits whose last one came longer ago than that belong to no call now (discarded)."""
        digits, complete, last = self.digits, self.complete, self._last
        self.digits, self.complete, self._last = "", False, None
        if not digits:
            return None
        if tick is not None and max_age_ms is not None and last is not None and tick - last > max_age_ms:
            self.discarded += len(digits)
            return None
        if not complete:
            self.discarded += len(digits)
            raise DecodeError(f"DTMF caller ID has no terminator: {digits!r}")
        return decode_dtmf_clip(digits)


#: (message octets in hex, what they decode to): harvested by tests/e1t1/test_callerid.py.
VECTORS: list[tuple[str, CallerId | MessageWaiting]] = [
    # MDMF caller ID: date-time 03-01 09:30, number 13800138000
    ("801701083033303130393330020b31333830303133383030309b",
     CallerId(number="13800138000", month=3, day=1, hour=9, minute=30)),
    # SDMF: 11-25 14:05, 5551234
    ("040f313132353134303535353531323334f1",
     CallerId(number="5551234", month=11, day=25, hour=14, minute=5)),
    # MDMF, number private, name "LI NA"
    ("80140108303130313030303004015007054c49204e413c",
     CallerId(month=1, day=1, hour=0, minute=0, number_absent="P", name="LI NA")),
    # MDMF message waiting on / off
    ("82030b01ff70", MessageWaiting(True)),
    ("82030b01006f", MessageWaiting(False)),
]
