"""Load the compiled card backends and refuse a stale one.

The build bakes the package version and a digest of the C it was built from
into the extension. In a source tree, the digest is compared with the C on disk,
so an extension older than its sources fails at import with the fix, instead of
running old code.
"""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent
ROOT = PACKAGE_DIR.parent


def _source_digest() -> str | None:
    if not (PACKAGE_DIR / "src").is_dir():
        return None  # an installed image: no sources to compare with
    # The same rule as _cffi_src/common.py build_inputs().
    dirs = [PACKAGE_DIR / d for d in ("src", "include", "sched")] + [ROOT / "include", ROOT / "drivers" / "include"]
    paths: set[Path] = set()
    for d in dirs:
        paths.update(p for p in d.rglob("*") if p.suffix in (".c", ".h"))
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.relative_to(ROOT).as_posix().encode())
        h.update(b"\0")
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def load() -> tuple[Any, Any]:
    """Return (ffi, lib) of drivers._card, or raise ImportError saying how to fix it."""
    try:
        from drivers import _card as _kernels
    except ImportError as exc:
        raise ImportError(f"drivers._card is not built ({exc}); run `make setup`") from None
    ffi, lib = _kernels.ffi, _kernels.lib
    built_version = ffi.string(lib.cb_build_version).decode()
    try:
        version = metadata.version("cicbox")
    except metadata.PackageNotFoundError:
        version = built_version
    if built_version != version:
        raise ImportError(
            f"drivers._card was built for cicbox {built_version} but cicbox {version} is installed; "
            "run `make setup`"
        )
    digest = _source_digest()
    built_digest = ffi.string(lib.cb_build_digest).decode()
    if digest is not None and digest != built_digest:
        raise ImportError(
            "drivers._card is stale: its C sources changed since it was built; run `make setup`"
        )
    return ffi, lib
