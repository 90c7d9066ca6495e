"""The layers keep to their places. In C: the neutral header defines every record
kind, the card HAL and the kernels each know only it, and the channel scheduler
is the one unit that sees both. In Python, imports point one way (appliance ->
e1t1 -> dsp, drivers; the CLI's too), the simulated world reaches the card only
through its far side, and the bench needs nothing from the tests."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

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


# -- Python: imports point one way, the world stays on the far side, the bench needs no tests ----------------

OURS = ("appliance", "drivers", "dsp", "e1t1", "tests", "bench", "_cffi_src")
# What each product package may import of ours (docs/architecture.md: appliance -> e1t1, dsp, drivers;
# e1t1 -> dsp, drivers; dsp and drivers import nothing of ours).
MAY_IMPORT = {
    "dsp": {"dsp"},
    "drivers": {"drivers"},
    "e1t1": {"e1t1", "dsp", "drivers"},
    "appliance": {"appliance", "e1t1", "dsp", "drivers"},
}


def py_files(*dirs: str) -> list[Path]:
    return [p for d in dirs for p in sorted((ROOT / d).rglob("*.py"))]


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Every module `path` imports, at any depth (function-level imports too), as (line, dotted name);
    a relative import is resolved against the file's own package."""
    tree = ast.parse(path.read_text(), str(path))
    package = list(path.relative_to(ROOT).parent.parts)
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                out.append((node.lineno, ".".join([*base, *([node.module] if node.module else [])])))
            else:
                out.append((node.lineno, node.module or ""))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            if name in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str):
                out.append((node.lineno, node.args[0].value))
    return out


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_python_imports_point_one_way(package: str) -> None:
    offenders = []
    for p in py_files(package):
        for line, name in imports_of(p):
            root = name.split(".")[0]
            if root in OURS and root not in MAY_IMPORT[package]:
                offenders.append(f"{p.relative_to(ROOT)}:{line} imports {name}")
    assert not offenders


def test_the_cli_is_checked_with_its_function_level_imports() -> None:
    """The CLI imports most of what it runs inside its commands: those imports follow the layering too
    (test_python_imports_point_one_way sees them)."""
    cli = imports_of(ROOT / "appliance" / "cli.py")
    assert {"appliance.engine", "appliance.world.traffic", "appliance.linecard"} <= {n for _, n in cli}
    assert not [n for _, n in cli if n.split(".")[0] in ("tests", "bench", "_cffi_src")]


def test_the_bench_imports_nothing_from_tests() -> None:
    offenders = []
    for p in py_files("bench"):
        offenders += [f"{p.relative_to(ROOT)}:{line} imports {name}" for line, name in imports_of(p)
                      if name.split(".")[0] == "tests"]
        # nor loads anything from the tests' folders by path
        for node in ast.walk(ast.parse(p.read_text(), str(p))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    re.fullmatch(r"tests(?:[/.].*)?", node.value):
                offenders.append(f"{p.relative_to(ROOT)}:{node.lineno} names {node.value!r}")
    assert not offenders


def private_touches(path: Path) -> list[str]:
    """Attributes starting with an underscore (not dunders) that `path` reads or writes on anything but
    `self`, by attribute syntax or by getattr/setattr/hasattr/delattr with a constant name; and those
    ending with one (the engine keeps its line card as ``tier_``: its own, not an interface)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        target: ast.expr | None = None
        attr = ""
        if isinstance(node, ast.Attribute):
            target, attr = node.value, node.attr
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id in ("getattr", "setattr", "hasattr", "delattr") and len(node.args) >= 2 and \
                isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
            target, attr = node.args[0], node.args[1].value
        if target is None or not (attr.startswith("_") or attr.endswith("_")) or \
                (attr.startswith("__") and attr.endswith("__")):
            continue
        if isinstance(target, ast.Name) and target.id == "self":
            continue
        out.append(f"{path.relative_to(ROOT)}:{target.lineno} touches {ast.unparse(target)}.{attr}")
    return out


def test_the_world_touches_no_private_attribute_but_its_own() -> None:
    """The simulated world reaches the card only through the far side: never an attribute of the
    engine, the line card, the card or anything else that starts with an underscore."""
    files = py_files("appliance/world")
    assert files
    assert not [hit for p in files for hit in private_touches(p)]


def test_the_world_imports_nothing_of_the_appliance_but_itself() -> None:
    """The world sits above the layers it drives and is handed the engine: it imports no engine, line
    card, line machine or any other part of the appliance."""
    offenders = [f"{p.relative_to(ROOT)}:{line} imports {name}" for p in py_files("appliance/world")
                 for line, name in imports_of(p)
                 if name.split(".")[0] == "appliance" and not name.startswith("appliance.world")]
    assert not offenders


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
