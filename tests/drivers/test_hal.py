"""The HAL's Python names come from the neutral header, and the records' layout is ABI."""

from __future__ import annotations

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
