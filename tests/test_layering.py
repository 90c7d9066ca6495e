"""The layers keep to their places. In C: the neutral header defines every record
kind, the card HAL and the kernels each know only it, and the channel scheduler
is the one unit that sees both. In Python, imports point one way: appliance ->
e1t1 -> dsp, drivers; e1t1 imports nothing of the appliance, dsp and drivers
import neither."""

from __future__ import annotations

import ast
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


def test_python_takes_the_kinds_from_the_header() -> None:
    # A record kind numbered in Python would be an IntEnum member or a module constant
    # such as EV_HOOK_OFF = 1; the state machines' own input alphabets (enum.Enum) are
    # other numbers and do not count.
    text = NEUTRAL.read_text()
    names = set(re.findall(r"CB_((?:EV|CMD|FAR|ERR)_[A-Z0-9_]+)\s*=", text))
    short = {n.split("_", 1)[1] for n in names}
    int_enum = re.compile(r"^class \w+\((?:enum\.)?IntEnum\):\n((?:[ \t]+.*\n|\n)+)", re.M)
    member = re.compile(r"^\s+([A-Z0-9_]+)\s*=\s*-?(?:0x)?[0-9A-Fa-f]+\s*$", re.M)
    constant = re.compile(r"^(?:CB_)?(" + "|".join(sorted(names)) + r")\s*=\s*-?(?:0x)?[0-9A-Fa-f]+\s*$", re.M)
    for pkg in ("appliance", "drivers", "dsp", "e1t1"):
        for p in sorted((ROOT / pkg).rglob("*.py")):
            src = p.read_text()
            hits = constant.findall(src)
            for body in int_enum.findall(src):
                hits += [m for m in member.findall(body) if m in short]
            assert not hits, f"{p.relative_to(ROOT)} numbers {hits} itself"


def imported_modules(path: Path, package: str) -> list[tuple[int, str]]:
    """Every module `path` (a module of `package`) imports, anywhere in it (functions, TYPE_CHECKING
    blocks, import_module and __import__ of a literal name), as (line, absolute dotted name)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                if node.module:
                    found.append((node.lineno, f"{base}.{node.module}"))
                else:
                    found += [(node.lineno, f"{base}.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, node.module or ""))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            if name in ("import_module", "__import__"):
                found.append((node.lineno, node.args[0].value))
    return found


def offenders(files: list[tuple[Path, str]], forbidden: tuple[str, ...]) -> list[str]:
    return [f"{p.relative_to(ROOT) if p.is_relative_to(ROOT) else p.name}:{line} imports {mod}"
            for p, pkg in files for line, mod in imported_modules(p, pkg) if mod.split(".")[0] in forbidden]


def package_files(pkg: str) -> list[tuple[Path, str]]:
    files = [(p, ".".join(p.relative_to(ROOT).parts[:-1])) for p in sorted((ROOT / pkg).rglob("*.py"))]
    assert len(files) > 3, f"no Python modules under {pkg}/"
    return files


def test_e1t1_imports_nothing_of_the_appliance() -> None:
    assert offenders(package_files("e1t1"), ("appliance",)) == []


def test_dsp_and_drivers_import_neither_e1t1_nor_the_appliance() -> None:
    assert offenders(package_files("dsp"), ("e1t1", "appliance")) == []
    assert offenders(package_files("drivers"), ("e1t1", "appliance")) == []


def test_the_import_check_sees_every_form_of_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("from __future__ import annotations\nimport importlib\nfrom typing import TYPE_CHECKING\n"
                     "if TYPE_CHECKING:\n    from appliance.engine import Engine\n"
                     "def late() -> None:\n    import appliance.acd, dsp\n"
                     "    importlib.import_module('appliance.cli')\n"
                     "from .. import fsm\nfrom .fxo import FxoTrunk\n")
    assert [m for _, m in imported_modules(probe, "e1t1.analog")] == [
        "__future__", "importlib", "typing", "e1t1.fsm", "e1t1.analog.fxo", "appliance.engine", "appliance.acd",
        "dsp", "appliance.cli"]
    assert offenders([(probe, "e1t1.analog")], ("appliance",)) == [
        "probe.py:5 imports appliance.engine", "probe.py:7 imports appliance.acd", "probe.py:8 imports appliance.cli"]
