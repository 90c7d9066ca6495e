"""The sync source policy, fed hand-written alarm sequences as the framer reports them (CB_EV_ALARM
values: RECOVER 1, YELLOW 4, RED 8, BLUE 16; detail LOS 1<<8, LFA 1<<9, LMFA 1<<10, from the issue
and DAHDI's bits, written out here rather than taken from the code)."""

from __future__ import annotations

import pytest

from e1t1.span import SyncChange, SyncPolicy

RECOVER, YELLOW, RED, BLUE = 1, 4, 8, 16
LOS, LFA, LMFA = 256, 512, 1024


def test_the_lowest_non_zero_timing_gives_the_clock() -> None:
    assert SyncPolicy([1, 2]).source == 0
    assert SyncPolicy([2, 1]).source == 1
    assert SyncPolicy([0, 3, 2]).source == 2
    assert SyncPolicy([0, 0]).source is None        # no span may: the internal clock
    assert SyncPolicy([]).source is None


def test_los_on_the_first_span_moves_the_clock_at_red_and_back_when_recover_ends() -> None:
    p = SyncPolicy([1, 2])
    # The LOS defect alone (before the 2.5 s that make it red) changes nothing.
    assert p.update(0, LOS) is None
    assert p.update(0, LOS | LFA) is None
    assert p.source == 0
    # Red: the clock falls back to span2.
    assert p.update(0, RED | LOS | LFA) == SyncChange(1)
    # The signal comes back, the defect clears: RECOVER for 5 s, still not a source.
    assert p.update(0, RED | LFA) is None
    assert p.update(0, RECOVER) is None
    assert p.source == 1
    # RECOVER ends: back to span1.
    assert p.update(0, 0) == SyncChange(0)
    assert p.source == 0


def test_blue_is_unfit_and_yellow_is_fine() -> None:
    p = SyncPolicy([1, 2])
    assert p.update(0, YELLOW) is None               # the far end lost us; we still hear it
    assert p.source == 0
    assert p.update(0, BLUE) == SyncChange(1)
    assert p.update(0, BLUE | YELLOW) is None
    assert p.update(0, RECOVER | YELLOW) is None
    assert p.update(0, YELLOW) == SyncChange(0)
    assert p.update(0, LMFA) is None                 # CRC-4 multiframe lost: the basic frame is kept


def test_both_spans_down_is_the_internal_clock_and_the_first_to_recover_takes_it() -> None:
    p = SyncPolicy([1, 2])
    assert p.update(0, RED | LOS) == SyncChange(1)
    assert p.update(1, BLUE) == SyncChange(None)
    assert p.source is None
    assert p.update(0, RECOVER) is None
    assert p.update(1, RECOVER) is None
    assert p.update(1, 0) == SyncChange(1)           # span2's RECOVER ended first
    assert p.update(0, 0) == SyncChange(0)           # then span1 reverts it


def test_a_worse_span_going_red_changes_nothing_and_timing_0_never_gives_the_clock() -> None:
    p = SyncPolicy([1, 0, 2])
    assert p.update(2, RED) is None
    assert p.update(0, RED) == SyncChange(None)      # span 1 has timing 0; span 2 is red
    assert p.update(1, 0) is None
    assert p.update(2, RECOVER) is None
    assert p.update(2, 0) == SyncChange(2)


def test_bad_timings_and_spans_are_refused() -> None:
    with pytest.raises(ValueError, match="given twice"):
        SyncPolicy([1, 1])
    with pytest.raises(ValueError, match="timing must be 0"):
        SyncPolicy([-1])
    with pytest.raises(IndexError):
        SyncPolicy([1]).update(1, RED)
