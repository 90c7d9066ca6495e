"""Build both extensions under AddressSanitizer and UndefinedBehaviourSanitizer (build-only).

The instrumented drivers._card and dsp._kernels go to build/asan/<package>/, never over the
normal build in the source tree: `make asan` puts _cffi_src/asan/ (whose sitecustomize loads
them from there) on PYTHONPATH with the sanitizer runtime preloaded. They are built from the
same sources, so they carry the same version and source digest and pass the staleness check.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT

SANITIZE = "-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g"
OUT = ROOT / "build" / "asan"


def main() -> None:
    # The compiler takes CFLAGS and LDFLAGS from the environment, before the scripts' own flags.
    os.environ["CFLAGS"] = f"{os.environ.get('CFLAGS', '')} {SANITIZE}".strip()
    os.environ["LDFLAGS"] = f"{os.environ.get('LDFLAGS', '')} -fsanitize=address,undefined".strip()
    import build_card
    import build_kernels

    OUT.mkdir(parents=True, exist_ok=True)
    for builder in (build_card.ffibuilder, build_kernels.ffibuilder):
        # The scripts name their sources relative to the project root (they build there); here the
        # build runs in OUT, so name them absolutely: objects then land under OUT as well.
        module, source, ext, kwds = builder._assigned_source
        kwds = dict(kwds, sources=[str(ROOT / p) for p in kwds["sources"]])
        builder._assigned_source = (module, source, ext, kwds)
        builder.compile(tmpdir=str(OUT), verbose=False)


if __name__ == "__main__":
    main()
