"""The HAL's Python names come from the neutral header, and the records' layout is ABI."""

from __future__ import annotations

import pytest

from drivers.hal import CmdOp, EventType, FarError, status_text
from drivers.sim import ffi, lib


def test_python_names_are_the_headers_constants() -> None:
    # Every constant of the header has its member, with the compiled value.
    for enum, prefix in ((EventType, "CB_EV_"), (CmdOp, "CB_CMD_"), (FarError, "CB_FAR_")):
        names = {k[len(prefix):] for k in dir(lib) if k.startswith(prefix)}
        assert {m.name for m in enum} == names
        for member in enum:
            assert getattr(lib, prefix + member.name) == member.value
    assert EventType.HOOK_OFF == 1 and EventType.DTMF == 0x100 and CmdOp.BRIDGE == 0x101


def test_status_texts_come_from_the_header() -> None:
    assert status_text(lib.CB_ERR_NOTSUP) == "not supported"
    assert status_text(lib.CB_ERR_FULL) == "ring full"
    assert status_text(lib.CB_ERR_LIMIT) == "limit reached"
    assert status_text(-99) == "unknown status"


def test_record_layouts_are_fixed() -> None:
    # These records cross between the two extensions and the rings: their layout is ABI.
    assert ffi.sizeof("cb_event_t") == 24
    assert ffi.sizeof("cb_cmd_t") == 32
    assert ffi.offsetof("cb_event_t", "chan") == 8
    assert ffi.offsetof("cb_event_t", "len") == 12
    assert ffi.offsetof("cb_cmd_t", "len") == 4
    assert ffi.offsetof("cb_cmd_t", "ptr") == 24
    assert lib.CB_MAX_PAYLOAD == 264


def test_the_sim_card_declares_what_it_has_and_refuses_what_a_span_is_not_set_up_for() -> None:
    from drivers.base import CardDescription
    from drivers.errors import DriverOperationError, check
    from drivers.hal import Caps
    from drivers.sim import SimCard

    card = SimCard(CardDescription(ports=("fxo", "fxs"), spans=("e1",), k=4))
    try:
        head = ffi.cast("cb_card_t *", card.handle)
        assert lib.cb_card_caps(head) == (Caps.FAR_END | Caps.LINE_LEVELS | Caps.SPAN_CONFIG | Caps.SPAN_STATUS
                                          | Caps.SYNC | Caps.ABCD | Caps.HDLC)
        levels = ffi.new("uint8_t[2]")
        assert lib.cb_card_line_levels(head, levels, 2) == 2
        assert list(levels) == [lib.CB_LEVEL_BATTERY, lib.CB_LEVEL_BATTERY]   # both on hook, battery
        cfg = ffi.new("cb_span_config_t *", {"framing": lib.CB_FRAMING_E1_CRC4, "coding": lib.CB_CODING_HDB3})
        status = ffi.new("cb_span_status_t *")
        frame = ffi.new("uint8_t[]", b"\x00\x01\x03")
        assert lib.cb_card_span_config(head, 0, cfg) == lib.CB_OK
        assert lib.cb_card_span_status(head, 0, status) == lib.CB_OK
        bad = ffi.new("cb_span_config_t *", {"framing": lib.CB_FRAMING_T1_ESF, "coding": lib.CB_CODING_HDB3})
        assert lib.cb_card_span_config(head, 0, bad) == lib.CB_ERR_INVALID   # T1 framing on an E1
        # TS16 is a clear channel here: no CAS multiframe, no D-channel.
        state = "not permitted in the current state -4"
        for rc, what, why in ((lib.cb_card_abcd_set(head, 2, 0x9), "ABCD bits", state),
                              (lib.cb_card_abcd_get(head, 2), "ABCD bits", state),
                              (lib.cb_card_hdlc_send(head, 17, frame, 3), "D-channel frame", "invalid argument -2"),
                              (lib.cb_card_hdlc_recv(head, 17, frame, 3), "D-channel frame", "invalid argument -2")):
            with pytest.raises(DriverOperationError, match=rf"{what} \[{why}\]"):
                check(rc, what)
        plain = SimCard(CardDescription(ports=("fxo",)))
        try:   # a card without spans has none of their operations
            assert lib.cb_card_caps(ffi.cast("cb_card_t *", plain.handle)) == Caps.FAR_END | Caps.LINE_LEVELS
        finally:
            plain.close()
    finally:
        card.close()
