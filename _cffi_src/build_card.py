"""Build drivers._card: the card HAL backends (the sim card, its clocks, its far end).

Out-of-line API mode; drivers/include/*.h are the cdef, drivers/src/*.c and
drivers/src/tick/*.c the sources.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cffi import FFI

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    CFLAGS,
    ROOT,
    c_sources,
    cdef_of,
    records_cdef,
    records_source,
    version_cdef,
    version_source,
)


def headers() -> list[Path]:
    inc = ROOT / "drivers" / "include"
    return [inc / "cb_hal.h", *sorted(p for p in inc.glob("*.h") if p.name != "cb_hal.h")]


ffibuilder = FFI()
ffibuilder.cdef(records_cdef() + "\n".join(cdef_of(h) for h in headers()) + version_cdef())
ffibuilder.set_source(
    "drivers._card",
    "\n".join(f'#include "{h.name}"' for h in headers()) + "\n" + version_source("drivers") + records_source(),
    sources=[str(p.relative_to(ROOT)) for p in c_sources("drivers")],
    include_dirs=[str(ROOT / "include"), str(ROOT / "drivers" / "include"), str(ROOT / "drivers" / "src")],
    extra_compile_args=CFLAGS,
    libraries=["m", "pthread"],
)

if __name__ == "__main__":
    import os

    os.chdir(ROOT)  # sources are named relative to the project root
    ffibuilder.compile(tmpdir=str(ROOT), verbose=False)
