"""The spandsp echo canceller reference (tests/peers/echo_ref.c through bench/echo_ref.py): it
converges on the 2B signal, its silenced and shipped builds compute the same Sout, channels are
independent, and the silenced build defines every printf-family function the library imports
(issue 13, item 7). spandsp reads one sample past a 128-sample block it allocates (valgrind:
"Invalid read of size 2 ... 0 bytes after a block of size 256 alloc'd by echo_can_init"), so a
channel's Sout depends slightly on the heap around it (another channel's state, read at whatever
point that channel has reached): a channel of a multi-channel run, whole or a tick at a time, is
within a fraction of a dB of the same channel run alone, not bit-exact."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest

from bench import echo_ref as er
from bench import echo_signals as es

FS = 8000
LIBSPANDSP = "/usr/lib/x86_64-linux-gnu/libspandsp.so.2"
SILENCED_FAMILY = {"printf", "fprintf", "vprintf", "vfprintf",
                   "__printf_chk", "__fprintf_chk", "__vprintf_chk", "__vfprintf_chk"}


def dynamic_symbols(path: str) -> list[tuple[str, str]]:
    """(type, name) of each dynamic symbol, versions stripped."""
    out = subprocess.run(["nm", "-D", path], capture_output=True, text=True, check=True).stdout
    syms = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            syms.append((parts[-2], parts[-1].split("@")[0]))
    return syms


def test_the_silenced_build_exports_every_printf_the_library_imports() -> None:
    imported = {n for t, n in dynamic_symbols(LIBSPANDSP) if t == "U" and re.search(r"printf", n)}
    printing = {n for n in imported if "sprintf" not in n and "snprintf" not in n}   # those write a buffer
    assert "__printf_chk" in printing     # Debian's build: fortified
    defined = {n for t, n in dynamic_symbols(str(er.program(silenced=True))) if t == "T"}
    assert printing <= defined
    assert defined >= SILENCED_FAMILY
    shipped = {n for t, n in dynamic_symbols(str(er.program(silenced=False))) if t == "T"}
    assert not SILENCED_FAMILY & shipped


@pytest.mark.parametrize("taps", [128, 256])
@pytest.mark.parametrize("seed", [1, 3])
def test_spandsp_converges_on_2b(taps: int, seed: int) -> None:
    # G.168 2B: speech-shaped Rin at -16 dBm0, ERL 6 dB, 4 ms flat delay, -60 dBm0 at Sin, ADAPTION
    # only (no NLP). spandsp's canceller starts near 0 dB and ends well above it; measured in 500 ms
    # windows (0.5-1 s, last 5.5-6 s): seed 1 2.3 and 23.8 dB at 128 taps, 2.3 and 23.6 at 256;
    # seed 3 13.8 and 29.5 at 128, 15.0 and 29.2 at 256.
    rin, sin = es.scenario(seed, 6.0)
    w = es.erle_windows(sin, er.run(rin, sin, taps, er.ADAPTION).sout)
    assert len(w) == 12
    assert w[-1] >= 20.0 and w[-1] - w[0] >= 8.0, f"ERLE by 500 ms window: {np.round(w, 1)}"


def test_nlp_takes_out_what_adaption_leaves() -> None:
    rin, sin = es.scenario(2, 3.0)
    adapt = er.run(rin, sin, 128, er.ADAPTION).sout
    nlp = er.run(rin, sin, 128, er.ADAPTION | er.NLP).sout
    tail = slice(2 * FS, 3 * FS)
    assert es.erle_db(sin[tail], nlp[tail]) > es.erle_db(sin[tail], adapt[tail]) + 10


def test_shipped_and_silenced_compute_the_same() -> None:
    rin, sin = es.scenario(4, 1.0)
    a = er.run(rin, sin, 128, er.ADAPTION | er.NLP | er.CNG, silenced=True)
    b = er.run(rin, sin, 128, er.ADAPTION | er.NLP | er.CNG, silenced=False)
    assert a.silenced and not b.silenced
    assert np.array_equal(a.sout, b.sout)
    assert a.cpu_s > 0 and b.cpu_s > 0


def test_channels_keep_their_layout_whole_or_a_tick_at_a_time() -> None:
    rin, sin = es.bank(50, 3, 3.0)
    whole = er.run(rin, sin, 128, er.ADAPTION)
    ticks = er.run(rin, sin, 128, er.ADAPTION, chunk=8)
    assert np.array_equal(whole.sout, er.run(rin, sin, 128, er.ADAPTION).sout)    # repeatable
    for c in range(3):
        alone = er.run(rin[c], sin[c], 128, er.ADAPTION).sout
        for run in (whole, ticks):
            diff = es.erle_windows(sin[c], run.sout[c]) - es.erle_windows(sin[c], alone)
            assert np.abs(diff).max() < 1.0
        assert es.erle_db(sin[c][2 * FS:], alone[2 * FS:]) > 10.0       # it cancels on every channel


def test_bad_arguments_fail_with_status_2() -> None:
    proc = subprocess.run([str(er.program()), "/nonexistent", "/nonexistent", "-", "1", "128", "1"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "cannot open" in proc.stderr
    with pytest.raises(ValueError):
        er.run(np.zeros(8, np.int16), np.zeros(16, np.int16), 128, er.ADAPTION)
