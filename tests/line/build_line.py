"""Build tests.line._line: the test-only line model (tests/line/line_model.c).

Test-only, like tests/peers: built by `make setup`, never installed. The cdef is
the CDEF sections of tests/line/line_model.h; the warnings are the product's.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "_cffi_src"))
from common import CFLAGS, cdef_of  # type: ignore[import-not-found]  # noqa: E402

ffibuilder = FFI()
ffibuilder.cdef(cdef_of(HERE / "line_model.h"))
ffibuilder.set_source(
    "tests.line._line",
    '#include "line_model.h"\n',
    sources=[str((HERE / "line_model.c").relative_to(ROOT))],
    include_dirs=[str(HERE)],
    extra_compile_args=CFLAGS,
    libraries=["m"],
)

if __name__ == "__main__":
    import os

    os.chdir(ROOT)
    ffibuilder.compile(tmpdir=str(ROOT), verbose=False)
