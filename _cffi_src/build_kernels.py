"""Build dsp._kernels: the media tier (DSP kernels, rings, the per-tick chain).

Out-of-line API mode. Headers in dsp/include/ are the cdef (their CDEF
sections, cb_hal.h and cb_ring.h first); sources are dsp/src/*.c (init and
teardown) and dsp/src/tick/*.c (the per-tick path).
"""

from __future__ import annotations

import sys
from pathlib import Path

from cffi import FFI

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CFLAGS, ROOT, c_sources, cdef_of, version_cdef, version_source

FIRST = ["cb_ring.h", "cb_g711.h", "cb_tone.h"]


def headers() -> list[Path]:
    inc = ROOT / "dsp" / "include"
    # cb_dsp.h holds C-only conventions (no CDEF section).
    rest = sorted(
        p for p in inc.glob("*.h") if p.name not in FIRST and p.name not in ("cb_media.h", "cb_dsp.h")
    )
    media = [inc / "cb_media.h"] if (inc / "cb_media.h").exists() else []
    return [inc / n for n in FIRST if (inc / n).exists()] + rest + media


ffibuilder = FFI()
ffibuilder.cdef(
    cdef_of(ROOT / "drivers" / "include" / "cb_hal.h")
    + "\n".join(cdef_of(h) for h in headers())
    + version_cdef()
)
ffibuilder.set_source(
    "dsp._kernels",
    "\n".join(f'#include "{h.name}"' for h in headers()) + "\n" + version_source("dsp"),
    sources=[str(p.relative_to(ROOT)) for p in c_sources("dsp")],
    include_dirs=[str(ROOT / "dsp" / "include"), str(ROOT / "dsp" / "src"), str(ROOT / "drivers" / "include")],
    extra_compile_args=CFLAGS,
    libraries=["m", "pthread"],
)

if __name__ == "__main__":
    import os

    os.chdir(ROOT)  # sources are named relative to the project root
    ffibuilder.compile(tmpdir=str(ROOT), verbose=False)
