"""The Python names of the HAL's numbers equal the compiled ones (cb_hal.h is the truth)."""

from __future__ import annotations

from enum import IntEnum

import pytest

from drivers.hal import CmdOp, EventType, FarError
from drivers.sim import ffi, lib


@pytest.mark.parametrize(("enum", "prefix"), [(EventType, "CB_EV_"), (CmdOp, "CB_CMD_"), (FarError, "CB_FAR_")])
def test_python_names_match_the_header(enum: type[IntEnum], prefix: str) -> None:
    for member in enum:
        assert getattr(lib, prefix + member.name) == member.value, member


def test_record_layouts_are_fixed() -> None:
    # These records cross between the two extensions and the rings: their layout is ABI.
    assert ffi.sizeof("cb_event_t") == 24
    assert ffi.sizeof("cb_cmd_t") == 32
    assert ffi.offsetof("cb_event_t", "chan") == 8
    assert ffi.offsetof("cb_cmd_t", "ptr") == 24
