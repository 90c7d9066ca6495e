"""Running spandsp's echo canceller, the reference, as a subprocess (tests and bench/echo.py).

The program (tests/peers/echo_ref.c, built by `make setup` into build/peers/) comes in two builds:
``echo_ref``, with the library's per-sample debug printing silenced (the printf family it binds to,
fortified forms included, defined as no-ops in the executable), and ``echo_ref_shipped``, the
library's printing left alone and sent to /dev/null. Both read Rin and Sin as raw int16 files,
channel-major, write Sout the same way, and report on stderr the thread CPU time of the
echo_can_update() loop alone.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "peers"
SILENCED = BUILD / "echo_ref"
SHIPPED = BUILD / "echo_ref_shipped"

# spandsp's adaption mode bits (spandsp/echo.h)
ADAPTION = 0x01
NLP = 0x02
CNG = 0x04


class ReferenceMissingError(RuntimeError):
    """The reference program is not built (`make setup` builds it)."""


@dataclass(frozen=True)
class Reference:
    """One run: Sout ([nchan][n] int16, or [n] when one channel was given) and the CPU seconds of
    the echo_can_update() loop."""

    sout: Any
    cpu_s: float
    silenced: bool


def program(silenced: bool = True) -> Path:
    path = SILENCED if silenced else SHIPPED
    if not path.is_file():
        raise ReferenceMissingError(f"{path.relative_to(ROOT)} is not built: run `make setup`")
    return path


def run_files(rin: Path, sin: Path, nchan: int, taps: int, mode: int, silenced: bool = True,
              sout: Path | None = None, chunk: int | None = None) -> float:
    """Run the program on raw int16 files (channel-major, NCHAN channels) already written; Sout to
    `sout` if given. Returns the CPU seconds of the echo_can_update() loop. The as-shipped build's
    stdout (the library's per-sample printing) goes to /dev/null."""
    exe = program(silenced)
    argv = [str(exe), str(rin), str(sin), str(sout) if sout else "-", str(nchan), str(taps), str(mode)]
    if chunk is not None:
        argv.append(str(chunk))
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{exe.name} failed ({proc.returncode}): {proc.stderr.strip()}")
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    if bool(report["silenced"]) != silenced:
        raise RuntimeError(f"{exe.name} reports silenced={report['silenced']}")
    return float(report["cpu_s"])


def run(rin: Any, sin: Any, taps: int, mode: int, silenced: bool = True, chunk: int | None = None) -> Reference:
    """Pass `rin`/`sin` (int16, [n] for one channel or [nchan][n]) through spandsp's canceller, a
    fresh one per channel (echo_can_init(taps, mode)), each channel's whole signal in turn or
    `chunk` samples at a time across the channels."""
    r = np.ascontiguousarray(rin, dtype=np.int16)
    s = np.ascontiguousarray(sin, dtype=np.int16)
    if r.shape != s.shape or r.ndim not in (1, 2):
        raise ValueError("rin and sin must have the same shape, [n] or [nchan][n]")
    nchan = 1 if r.ndim == 1 else int(r.shape[0])
    with tempfile.TemporaryDirectory(prefix="echo_ref") as tmp:
        d = Path(tmp)
        r.tofile(d / "rin")
        s.tofile(d / "sin")
        cpu = run_files(d / "rin", d / "sin", nchan, taps, mode, silenced, d / "sout", chunk)
        sout = np.fromfile(d / "sout", dtype=np.int16).reshape(r.shape)
    return Reference(sout, cpu, silenced)
