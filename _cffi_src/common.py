"""Shared helpers of the cffi build scripts (build-only; never installed).

Our own C headers are both the C API and the cdef: the text between
``/* CDEF BEGIN */`` and ``/* CDEF END */`` of each header is fed to cffi, so a
declaration is written once. Every extension gets the package version and a
digest of the C it was built from baked in, so a stale build fails at import
(see ``cicbox_version.check_extension``).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CDEF_RE = re.compile(r"/\* CDEF BEGIN \*/(.*?)/\* CDEF END \*/", re.S)

# Warnings on for our own C. The per-tick code is kept free of allocation,
# locks and Python calls (checked by tests/test_media_path.py). -O3 and
# contracted multiply-adds let the channel loops vectorise with FMA on
# x86-64-v3 (the DTMF filter bank runs twice as fast with them).
CFLAGS = [
    "-std=c11",
    "-O3",
    "-ffp-contract=fast",
    "-D_GNU_SOURCE",
    "-Wall",
    "-Wextra",
    "-Wshadow",
    "-Wstrict-prototypes",
    "-Wno-unused-parameter",
    "-fno-math-errno",
]


def cdef_of(header: Path) -> str:
    """Return the cdef section of one header."""
    parts = CDEF_RE.findall(header.read_text())
    if not parts:
        raise SystemExit(f"{header}: no /* CDEF BEGIN */ ... /* CDEF END */ section")
    return "\n".join(parts)


def c_sources(package: str) -> list[Path]:
    """All C sources of a package: init/teardown in src/, per-tick code in src/tick/;
    the same for a unit of its own inside the package (dsp/sched/)."""
    out: list[Path] = []
    for base in (ROOT / package / "src", ROOT / package / "sched" / "src"):
        out += sorted(base.glob("*.c")) + sorted((base / "tick").glob("*.c"))
    return out


def digest(paths: list[Path]) -> str:
    """A digest of the files' contents, in a fixed order."""
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.relative_to(ROOT).as_posix().encode())
        h.update(b"\0")
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


SOURCE_DIRS = ("src", "include", "sched")


def build_inputs(package: str) -> list[Path]:
    """Every file an extension of `package` is built from (for the staleness digest).

    The same rule is in dsp/_binding.py and drivers/_binding.py, which compare
    it with the digest baked into the extension."""
    dirs = [ROOT / package / d for d in SOURCE_DIRS] + [ROOT / "include", ROOT / "drivers" / "include"]
    files: set[Path] = set()
    for d in dirs:
        files.update(p for p in d.rglob("*") if p.suffix in (".c", ".h"))
    return sorted(files)


def package_version() -> str:
    """The distribution version, read from pyproject.toml."""
    text = (ROOT / "pyproject.toml").read_text()
    m = re.search(r'^version\s*=\s*"([^"]+)"', text, re.M)
    if m is None:
        raise SystemExit("pyproject.toml has no version")
    return m.group(1)


def version_cdef() -> str:
    return "extern const char cb_build_version[];\nextern const char cb_build_digest[];\n"


def records_cdef() -> str:
    """The neutral header's declarations: every extension has them (records, kinds, status codes)."""
    return cdef_of(ROOT / "include" / "cb_records.h")


def records_source() -> str:
    """Definitions of the neutral header's two helpers, once per extension."""
    return (
        '#include "cb_records.h"\n'
        "const char *cb_status_text(int status) { return cb_status_text_inline(status); }\n"
        "int cb_kind_slot(int type) { return cb_kind_slot_inline(type); }\n"
    )


def version_source(package: str) -> str:
    return (
        f'const char cb_build_version[] = "{package_version()}";\n'
        f'const char cb_build_digest[] = "{digest(build_inputs(package))}";\n'
    )
