"""Numbers as the VIP and blacklist rules compare them: spaces, dashes and a leading + dropped, a
trailing * a prefix."""

from __future__ import annotations

import pytest

from appliance.config.numbers import check_pattern, normalise_number, number_matches


@pytest.mark.parametrize(("raw", "normal"), [
    ("13000000000", "13000000000"),
    ("+86 139-0000-1111", "8613900001111"),
    ("0755 8888 0001", "075588880001"),
    ("139*", "139*"),
    ("+1-800-*", "1800*"),
    ("", ""),
    ("P", "P"),                       # a caller ID that is not a number stays as it is
    ("1+2", "1+2"),                   # only a leading + goes
])
def test_normalise(raw: str, normal: str) -> None:
    assert normalise_number(raw) == normal


@pytest.mark.parametrize(("patterns", "number", "matches"), [
    (["139*"], "13912345678", True),
    (["139*"], "139", True),              # the prefix itself
    (["139*"], "13812345678", False),
    (["139*"], "+86 139 1234 5678", False),   # 86139...: a prefix is of the whole number
    (["86139*"], "+86 139-1234-5678", True),
    (["13000000000"], "130-0000-0000", True),
    (["13000000000"], "130000000001", False),  # exact: a longer number is another number
    (["13000000000"], "1300000000", False),
    (["+86 130 0000 0000"], "8613000000000", True),   # the pattern is normalised too
    (["1*", "2*"], "2555", True),
    ([], "13912345678", False),
    (["139*"], "", False),                # no caller ID matches nothing
    (["139*"], None, False),
])
def test_number_matches(patterns: list[str], number: str | None, matches: bool) -> None:
    assert number_matches(patterns, number) is matches


@pytest.mark.parametrize("bad", ["", "*", "+*", "13x", "139**", "1*3", "++139", " 139", "-139",
                                 "\uff11\uff13\uff19", "139\n"])     # full-width digits; a newline
def test_patterns_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="is not a number"):
        check_pattern(bad)


def test_patterns_accepted_normalised() -> None:
    assert [check_pattern(p) for p in ("139*", "+86 139-*", "13000000000", "+1 800 555 0100")] == [
        "139*", "86139*", "13000000000", "18005550100"]
