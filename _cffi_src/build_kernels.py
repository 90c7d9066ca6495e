"""Build dsp._kernels: the media kernels, the rings and the channel scheduler.

Out-of-line API mode. The cdef is the CDEF sections of the neutral header
(include/cb_records.h), the card HAL's (the scheduler takes a card), the
kernels' headers in dsp/include/ and the scheduler's in dsp/sched/include/;
sources are dsp/src/*.c (init and teardown), dsp/src/tick/*.c (the per-tick
path) and the same two folders of dsp/sched/.
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

FIRST = ["cb_ring.h", "cb_g711.h", "cb_tone.h"]


def kernel_headers() -> list[Path]:
    inc = ROOT / "dsp" / "include"
    # cb_dsp.h holds C-only conventions (no CDEF section).
    rest = sorted(p for p in inc.glob("*.h") if p.name not in FIRST and p.name != "cb_dsp.h")
    return [inc / n for n in FIRST if (inc / n).exists()] + rest


def headers() -> list[Path]:
    return [*kernel_headers(), ROOT / "dsp" / "sched" / "include" / "cb_sched.h"]


ffibuilder = FFI()
ffibuilder.cdef(
    records_cdef()
    + cdef_of(ROOT / "drivers" / "include" / "cb_hal.h")
    + "\n".join(cdef_of(h) for h in headers())
    + version_cdef()
)
ffibuilder.set_source(
    "dsp._kernels",
    "\n".join(f'#include "{h.name}"' for h in headers()) + "\n" + version_source("dsp") + records_source(),
    sources=[str(p.relative_to(ROOT)) for p in c_sources("dsp")],
    include_dirs=[
        str(ROOT / "include"),
        str(ROOT / "dsp" / "include"),
        str(ROOT / "dsp" / "src"),
        str(ROOT / "dsp" / "sched" / "include"),
        str(ROOT / "dsp" / "sched" / "src"),
        str(ROOT / "drivers" / "include"),
    ],
    extra_compile_args=CFLAGS,
    libraries=["m", "pthread"],
)

if __name__ == "__main__":
    import os

    os.chdir(ROOT)  # sources are named relative to the project root
    ffibuilder.compile(tmpdir=str(ROOT), verbose=False)
