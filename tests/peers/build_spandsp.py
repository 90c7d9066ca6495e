"""Build tests.peers._spandsp: Debian's libspandsp as an independent test peer.

Test-only: never part of the product (the product's extensions have no
DT_NEEDED on libspandsp). The cdef is the concatenation of
tests/peers/spandsp_*.cdef (one file per area: g711, dtmf, adsi, ...), and
tests/peers/spandsp_*.c are small C shims compiled in (for example loops that
run spandsp over many channels for the benchmark without Python per call).
"""

from __future__ import annotations

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

ffibuilder = FFI()
ffibuilder.cdef("\n".join(p.read_text() for p in sorted(HERE.glob("spandsp_*.cdef"))))
shims = sorted(HERE.glob("spandsp_*.c"))
ffibuilder.set_source(
    "tests.peers._spandsp",
    "#include <stdint.h>\n#include <stdlib.h>\n#include <spandsp.h>\n"
    + "".join(f'#include "{p.name}"\n' for p in shims),
    include_dirs=[str(HERE)],
    libraries=["spandsp", "tiff", "m"],
    extra_compile_args=["-O2", "-Wno-deprecated-declarations"],
)

if __name__ == "__main__":
    import os

    os.chdir(ROOT)
    ffibuilder.compile(tmpdir=str(ROOT), verbose=False)
