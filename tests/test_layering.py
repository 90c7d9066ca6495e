"""The C boundary keeps its four layers: the neutral header defines every record
kind, the card HAL and the kernels each know only it, and the channel scheduler
is the one unit that sees both."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NEUTRAL = ROOT / "include" / "cb_records.h"
CARD_HEADERS = ("cb_hal.h", "cb_card.h", "cb_sim.h")
INCLUDE = re.compile(r'#\s*include\s*[<"]([^>"]+)[>"]')
# An enumerator or macro that defines a record kind, a status or a far-end reason.
KIND_DEF = re.compile(r"^\s*(?:#define\s+)?(CB_(?:EV|CMD|ERR|FAR)_[A-Z0-9_]+)\s*(?:=|\s)\s*-?(?:0x)?[0-9A-Fa-f]+",
                      re.M)


def c_files(*dirs: str) -> list[Path]:
    return [p for d in dirs for p in sorted((ROOT / d).rglob("*")) if p.suffix in (".c", ".h")
            and not p.name.startswith("_")]


def test_no_kernel_includes_a_card_header() -> None:
    offenders = []
    for p in c_files("dsp"):
        if (ROOT / "dsp" / "sched") in p.parents:
            continue
        for inc in INCLUDE.findall(p.read_text()):
            if Path(inc).name in CARD_HEADERS:
                offenders.append(f"{p.relative_to(ROOT)} includes {inc}")
    assert not offenders


def test_the_scheduler_is_the_one_unit_that_sees_card_and_kernels() -> None:
    sees = INCLUDE.findall((ROOT / "dsp" / "sched" / "include" / "cb_sched.h").read_text())
    sees += INCLUDE.findall((ROOT / "dsp" / "sched" / "src" / "sched_priv.h").read_text())
    assert "cb_hal.h" in sees and "cb_dtmf.h" in sees
    for p in c_files("drivers"):
        for inc in INCLUDE.findall(p.read_text()):
            assert not (ROOT / "dsp" / "include" / Path(inc).name).exists(), f"{p} includes kernel header {inc}"


def test_the_neutral_header_is_the_only_definition_of_a_record_kind() -> None:
    defined = {m.group(1) for m in KIND_DEF.finditer(NEUTRAL.read_text())}
    assert {"CB_EV_HOOK_OFF", "CB_CMD_BRIDGE", "CB_ERR_FULL", "CB_FAR_SHORT"} <= defined
    for p in c_files("drivers", "dsp", "include", "tests/peers"):
        if p == NEUTRAL:
            continue
        again = sorted({m.group(1) for m in KIND_DEF.finditer(p.read_text())})
        assert not again, f"{p.relative_to(ROOT)} defines {again}"


NUMBER = r"-?(?:0x[0-9A-Fa-f]+|[0-9]+)"
# A module-level NAME = 1 (or NAME: int = 1, a comment after it), and NAME1, NAME2 = 1, 2.
MODULE_CONSTANT = re.compile(r"^([A-Z][A-Z0-9_]*)\s*(?::[^=\n]+)?=\s*" + NUMBER + r"\s*(?:#.*)?$", re.M)
MODULE_CONSTANTS = re.compile(r"^([A-Z][A-Z0-9_]*(?:\s*,\s*[A-Z][A-Z0-9_]*)+)\s*=\s*\(?\s*" + NUMBER
                              + r"(?:\s*,\s*" + NUMBER + r")+\s*\)?\s*(?:#.*)?$", re.M)
INT_ENUM = re.compile(r"^class \w+\((?:enum\.)?IntEnum\):\n((?:[ \t]+.*\n|\n)+)", re.M)
MEMBER = re.compile(r"^\s+([A-Z0-9_]+)\s*=\s*" + NUMBER + r"\s*(?:#.*)?$", re.M)


def header_kind_names() -> set[str]:
    """Every record kind, status and far-end reason of the neutral header, as Python could spell it:
    CB_EV_HOOK_OFF, EV_HOOK_OFF, HOOK_OFF."""
    names = set(re.findall(r"CB_((?:EV|CMD|FAR|ERR)_[A-Z0-9_]+)\s*=", NEUTRAL.read_text()))
    return {spelt for n in names for spelt in (f"CB_{n}", n, n.split("_", 1)[1])}


def numbered_kinds(src: str, kinds: set[str]) -> list[str]:
    """The header's names that `src` gives a number of its own: a module constant (bare, prefixed,
    annotated, or one of several assigned at once) or an IntEnum member."""
    hits = [m for m in MODULE_CONSTANT.findall(src) if m in kinds]
    for group in MODULE_CONSTANTS.findall(src):
        hits += [n for n in re.split(r"\s*,\s*", group) if n in kinds]
    for body in INT_ENUM.findall(src):
        hits += [m for m in MEMBER.findall(body) if m in kinds]
    return hits


def test_the_kind_check_sees_every_way_of_numbering_a_kind() -> None:
    kinds = header_kind_names()
    for src, want in (("HOOK_OFF = 1\n", ["HOOK_OFF"]), ("EV_HOOK_OFF = 1\n", ["EV_HOOK_OFF"]),
                      ("CB_EV_HOOK_OFF = 0x1\n", ["CB_EV_HOOK_OFF"]), ("HOOK_ON: int = 2  # on hook\n", ["HOOK_ON"]),
                      ("HOOK_OFF, HOOK_ON = 1, 2\n", ["HOOK_OFF", "HOOK_ON"]),
                      ("class K(IntEnum):\n    BRIDGE = 0x101\n", ["BRIDGE"]),
                      ("RING_ON = EventType.RING_ON\n", []), ("    HOOK_OFF = 1\n", []),    # taken, or not module level
                      ("PERIOD_MS = 10\n", [])):
        assert numbered_kinds(src, kinds) == want, src


def test_python_takes_the_kinds_from_the_header() -> None:
    # A record kind numbered in Python would be an IntEnum member or a module constant such as
    # HOOK_OFF = 1 or EV_HOOK_OFF = 1; the state machines' own input alphabets (enum.Enum) are
    # other numbers and do not count.
    kinds = header_kind_names()
    for pkg in ("appliance", "drivers", "dsp", "e1t1"):
        for p in sorted((ROOT / pkg).rglob("*.py")):
            hits = numbered_kinds(p.read_text(), kinds)
            assert not hits, f"{p.relative_to(ROOT)} numbers {hits} itself"
