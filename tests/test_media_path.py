"""The per-tick code: compiled apart from init and teardown, it allocates nothing,
takes no lock and calls nothing of Python's; the rings never block."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "_cffi_src"))
from common import CFLAGS  # type: ignore[import-not-found]  # noqa: E402

TICK_DIRS = ("dsp/src/tick", "dsp/sched/src/tick", "drivers/src/tick")
TICK_SOURCES = [p for d in TICK_DIRS for p in sorted((ROOT / d).glob("*.c"))]
FORBIDDEN = ("malloc", "calloc", "realloc", "free", "aligned_alloc", "posix_memalign", "mmap")
FORBIDDEN_PREFIX = ("pthread_mutex_", "pthread_cond_", "pthread_rwlock_", "Py", "_Py", "sem_")
FORBIDDEN_STDIO = ("printf", "fprintf", "puts", "fputs", "fwrite", "fopen", "__printf_chk", "__fprintf_chk")


def test_there_is_per_tick_code() -> None:
    names = {p.name for p in TICK_SOURCES}
    assert {"sched_tick.c", "mix_tick.c", "ring_tick.c", "sim_tick.c"} <= names
    assert len(names) >= 8   # every kernel keeps its tick in its own object


@pytest.mark.parametrize("src", TICK_SOURCES, ids=lambda p: p.name)
def test_tick_object_has_no_allocation_lock_or_python(src: Path, tmp_path: Path) -> None:
    obj = tmp_path / (src.stem + ".o")
    incs = [f"-I{ROOT / d}" for d in ("include", "dsp/include", "dsp/src", "dsp/sched/include", "dsp/sched/src",
                                      "drivers/include", "drivers/src")]
    incs.append(f"-I{sysconfig.get_paths()['include']}")
    subprocess.run(["gcc", "-c", "-fPIC", *CFLAGS, *incs, str(src), "-o", str(obj)], check=True)
    undefined = subprocess.run(["nm", "-u", str(obj)], check=True, capture_output=True, text=True).stdout
    symbols = {line.split()[-1].split("@")[0] for line in undefined.splitlines() if line.strip()}
    bad = {s for s in symbols if s in FORBIDDEN or s.startswith(FORBIDDEN_PREFIX) or s in FORBIDDEN_STDIO}
    assert not bad, f"{src.name} calls {sorted(bad)} on the media path"


def test_product_extensions_do_not_link_spandsp() -> None:
    """libspandsp is a test peer only: no DT_NEEDED on it in the product's extensions."""
    sos = sorted((ROOT / "dsp").glob("_kernels*.so")) + sorted((ROOT / "drivers").glob("_card*.so"))
    assert sos
    for so in sos:
        dyn = subprocess.run(["readelf", "-d", str(so)], check=True, capture_output=True, text=True).stdout
        needed = [line for line in dyn.splitlines() if "(NEEDED)" in line]
        assert needed and not [line for line in needed if "spandsp" in line or "tiff" in line], so


def test_a_stale_extension_refuses_to_load(monkeypatch: pytest.MonkeyPatch) -> None:
    from dsp import _binding

    monkeypatch.setattr(_binding, "_source_digest", lambda: "0000000000000000")
    with pytest.raises(ImportError, match=r"dsp._kernels is stale: its C sources changed since it was built; "
                                          r"run `make setup`"):
        _binding.load()
