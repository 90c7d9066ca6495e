"""Build the benchmark's spandsp peers into build/bench/ (bench only; never in the product).

``shipped``: Debian's libspandsp as installed (libspandsp-dev, the
distribution's -O2 build) behind a small cffi binding,
``_bench_spandsp_shipped``.

``same-flags``: spandsp rebuilt from its Debian source package with the
project's own CFLAGS (``_cffi_src/common.py``) and ``-march=`` set to the
instruction set our kernels run with on this machine, linked statically
(its symbols kept private) into ``_bench_spandsp_same_flags``. The steps:

1. a deb-src entry for each of the machine's apt sources that lacks one,
   written to /etc/apt/sources.list.d/cicbox-src.sources (same URIs, suites,
   components and key), then ``apt-get update`` of that file alone;
2. ``apt-get source --download-only spandsp=<the installed source version>``
   into build/bench/spandsp/ (the upstream tarball alone is enough when the
   mirror lacks the Debian one; the Debian patches are applied when it has it);
3. spandsp's own configure, then its static library made with our CFLAGS in
   place of its optimisation, language and ISA flags (its defines and symbol
   visibility are kept);
4. the binding, with the same flags.

The outcome goes to build/bench/spandsp_same_flags.json: the source and flags
used, or the step that failed and why. This script exits 0 either way, so the
benchmark still runs and reports the reason. The download and the library
are kept in build/bench/ and reused while the version and flags are the same.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cffi import FFI

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from _cffi_src.common import CFLAGS

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
OUT = ROOT / "build" / "bench"
WORK = OUT / "spandsp"
STATUS = OUT / "spandsp_same_flags.json"
DONE = OUT / ".same-flags"
SHIM = HERE / "spandsp_dtmf_rx.c"
CDEF = "int bench_dtmf_rx_run(int nchan, const int16_t *sig, int len, int chunk, char *digits, int maxd);\n"
# A static library of position-independent objects, to be linked into the binding.
CONFIGURE = ["--disable-shared", "--enable-static", "--with-pic"]
PREAMBLE = "#include <stdint.h>\n#include <stdlib.h>\n#include <spandsp.h>\n"

APT_DIR = Path("/etc/apt")
OUR_SOURCES = APT_DIR / "sources.list.d" / "cicbox-src.sources"


class BuildError(Exception):
    """One step of the same-flags build failed; str() says which and why."""


def run(cmd: list[str], step: str, cwd: Path | None = None, log: Path | None = None) -> str:
    """Run a command; its output goes to `log` when given. Raises BuildError with the output's tail."""
    try:
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as e:
        raise BuildError(f"{step}: cannot run {cmd[0]}: {e.strerror}") from e
    out = p.stdout + p.stderr
    if log is not None:
        log.write_text(f"$ {shlex.join(cmd)}\n{out}")
    if p.returncode != 0:
        tail = " | ".join(line for line in out.strip().splitlines()[-3:])
        raise BuildError(f"{step}: `{shlex.join(cmd[:3])} ...` exited {p.returncode}: {tail}")
    return out


# -- 1. the deb-src entry ------------------------------------------------------


@dataclass(frozen=True)
class AptSource:
    types: tuple[str, ...]
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str | None


def deb822(text: str) -> list[dict[str, str]]:
    """The paragraphs of a deb822 file (continuation lines joined, comments dropped)."""
    paras: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if cur:
                paras.append(cur)
            cur, key = {}, ""
        elif line[0] in " \t" and key:
            cur[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            cur[key] = value.strip()
    if cur:
        paras.append(cur)
    return paras


def one_line(text: str) -> list[AptSource]:
    """The entries of a one-line-style sources.list."""
    found = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        kind, _, rest = line.partition(" ")
        if kind not in ("deb", "deb-src"):
            continue
        opts: dict[str, str] = {}
        rest = rest.strip()
        if rest.startswith("["):
            inner, _, rest = rest[1:].partition("]")
            for opt in inner.split():
                k, _, v = opt.partition("=")
                opts[k.lower()] = v
        words = rest.split()
        if len(words) < 2:
            continue
        found.append(AptSource((kind,), (words[0],), (words[1],), tuple(words[2:]), opts.get("signed-by")))
    return found


def apt_sources() -> list[AptSource]:
    """Every enabled entry of the machine's apt sources, our own file left out."""
    found: list[AptSource] = []
    lists = [APT_DIR / "sources.list", *sorted((APT_DIR / "sources.list.d").glob("*.list"))]
    for path in lists:
        if path.is_file():
            found += one_line(path.read_text())
    for path in sorted((APT_DIR / "sources.list.d").glob("*.sources")):
        if path == OUR_SOURCES:
            continue
        for p in deb822(path.read_text()):
            if p.get("enabled", "yes").lower() == "no" or "uris" not in p or "suites" not in p:
                continue
            found.append(AptSource(tuple(p.get("types", "").split()), tuple(p["uris"].split()),
                                   tuple(p["suites"].split()), tuple(p.get("components", "").split()),
                                   p.get("signed-by")))
    return found


def source_entries(sources: list[AptSource]) -> str:
    """deb822 text of deb-src entries for the binary entries that have no deb-src yet."""
    have = {(u.rstrip("/"), s) for e in sources if "deb-src" in e.types for u in e.uris for s in e.suites}
    paras = []
    for e in sources:
        if "deb" not in e.types:
            continue
        suites = tuple(s for s in e.suites if any((u.rstrip("/"), s) not in have for u in e.uris))
        if not suites:
            continue
        lines = ["Types: deb-src", f"URIs: {' '.join(e.uris)}", f"Suites: {' '.join(suites)}"]
        if e.components:
            lines.append(f"Components: {' '.join(e.components)}")
        if e.signed_by and "\n" not in e.signed_by:
            lines.append(f"Signed-By: {e.signed_by}")
        paras.append("\n".join(lines) + "\n")
    return "\n".join(paras)


def known(version: str) -> bool:
    """Does apt know the spandsp source package of this version?"""
    p = subprocess.run(["apt-cache", "showsrc", "--only-source", "spandsp"], capture_output=True, text=True,
                       check=False)
    return re.search(rf"^Version: {re.escape(version)}$", p.stdout, re.M) is not None


def source_index(version: str) -> None:
    """Make `apt-get source spandsp=<version>` possible: deb-src entries, then an update."""
    if known(version):
        return
    body = source_entries(apt_sources())
    if body:
        text = "# Written by cicbox's `make bench` (bench/peers/build_spandsp.py): the source\n" \
               "# packages of the machine's own apt sources, for the benchmark's spandsp rebuild.\n" + body
        try:
            if not OUR_SOURCES.is_file() or OUR_SOURCES.read_text() != text:
                OUR_SOURCES.write_text(text)
        except OSError as e:
            raise BuildError(f"deb-src entry: cannot write {OUR_SOURCES}: {e.strerror}") from e
    if OUR_SOURCES.is_file():
        # Only our file: the machine's other indexes are left as they are.
        run(["apt-get", "update", "-qq", "-o", f"Dir::Etc::sourcelist={OUR_SOURCES}",
             "-o", "Dir::Etc::sourceparts=-", "-o", "APT::Get::List-Cleanup=0"], "apt-get update")
    else:
        run(["apt-get", "update", "-qq"], "apt-get update")
    if not known(version):
        raise BuildError(f"apt source index: no spandsp {version} source package on the machine's mirrors")


# -- 2. the source ------------------------------------------------------------


def installed_source_version() -> str:
    """The source version the installed libspandsp-dev was built from (e.g. 0.0.6+dfsg-2)."""
    out = run(["dpkg-query", "-W", "-f=${source:Version}", "libspandsp-dev"], "dpkg-query libspandsp-dev")
    if not out.strip():
        raise BuildError("dpkg-query: libspandsp-dev is not installed (make setup installs it)")
    return out.strip()


def fetch(version: str) -> tuple[Path, Path | None]:
    """The upstream tarball and, when the mirror has it, the Debian one, downloaded once."""
    plain = version.split(":", 1)[-1]
    upstream = plain.rsplit("-", 1)[0]
    WORK.mkdir(parents=True, exist_ok=True)

    def present() -> tuple[Path | None, Path | None]:
        orig = sorted(WORK.glob(f"spandsp_{upstream}.orig.tar.*"))
        deb = sorted(WORK.glob(f"spandsp_{plain}.debian.tar.*"))
        return (orig[0] if orig else None), (deb[0] if deb else None)

    orig, deb = present()
    if orig is None:
        source_index(version)
        try:
            run(["apt-get", "source", "--download-only", "-qq", "-o", "APT::Sandbox::User=root",
                 f"spandsp={version}"], "apt-get source", cwd=WORK, log=WORK / "apt-get-source.log")
        except BuildError as e:
            failed: BuildError | None = e  # a missing Debian tarball fails it; the upstream one is enough
        else:
            failed = None
        orig, deb = present()
        if orig is None:
            raise BuildError(f"apt-get source spandsp={version}: no upstream tarball downloaded"
                             + (f" ({failed})" if failed else ""))
    return orig, deb


def unpack(orig: Path, deb: Path | None, tree: Path) -> str:
    """Unpack into `tree`, apply the Debian patches if there are any; says which."""
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    run(["tar", "-xf", str(orig), "-C", str(tree), "--strip-components=1"], "unpack")
    if not (tree / "configure").is_file():
        raise BuildError(f"unpack: {orig.name} has no configure script at its top")
    if deb is None:
        return "upstream tarball only (the mirror has no Debian tarball for this version)"
    run(["tar", "-xf", str(deb), "-C", str(tree)], "unpack")
    series = tree / "debian" / "patches" / "series"
    names = []
    if series.is_file():
        for line in series.read_text().splitlines():
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            strip = next((w for w in words[1:] if w.startswith("-p")), "-p1")
            run(["patch", strip, "--forward", "--quiet", "-i", str(tree / "debian" / "patches" / words[0])],
                f"patch {words[0]}", cwd=tree)
            names.append(words[0])
    return f"Debian patches applied: {len(names)}"


# -- 3. the library -----------------------------------------------------------


def our_flags() -> tuple[list[str], str]:
    """Our CFLAGS with -march= for the instruction set our kernels run with here."""
    try:
        from dsp.scheduler import isa

        level = isa()
    except Exception as e:  # an unbuilt or stale kernel extension
        raise BuildError(f"isa: cannot ask the kernels which instruction set they run: {e}") from e
    march = [f"-march={level}"] if level.startswith("x86-64") else []
    return [*CFLAGS, *march], level


def their_defines(makefile: Path) -> list[str]:
    """spandsp's own configure flags minus its optimisation, language, warning and ISA choices."""
    m = re.search(r"^COMP_VENDOR_CFLAGS\s*=(.*)$", makefile.read_text(), re.M)
    words = m.group(1).split() if m else []
    return [w for w in words if w.startswith(("-D", "-fvisibility"))]


def build_library(tree: Path, flags: list[str]) -> tuple[Path, list[str]]:
    """configure, then the static library with our flags; returns it and the flags it was built with."""
    cflags = " ".join(flags)
    run(["./configure", *CONFIGURE, f"CFLAGS={cflags}"], "configure",
        cwd=tree, log=WORK / "configure.log")
    kept = their_defines(tree / "src" / "Makefile")
    jobs = str(len(os.sched_getaffinity(0)))
    run(["make", "-j", jobs, "-C", "src", "libspandsp.la", f"CFLAGS={cflags}",
         f"COMP_VENDOR_CFLAGS={' '.join(kept)}"], "make libspandsp", cwd=tree, log=WORK / "make.log")
    lib = tree / "src" / ".libs" / "libspandsp.a"
    if not lib.is_file():
        raise BuildError("make libspandsp: no src/.libs/libspandsp.a")
    return lib, [*kept, *flags]


# -- the bindings -------------------------------------------------------------


def bind(module: str, **kwargs: object) -> None:
    ffibuilder = FFI()
    ffibuilder.cdef(CDEF)
    ffibuilder.set_source(module, PREAMBLE + f'#include "{SHIM.name}"\n', **kwargs)
    OUT.mkdir(parents=True, exist_ok=True)
    ffibuilder.compile(tmpdir=str(OUT), verbose=False)


def shipped() -> None:
    """The installed library, with the flags the test peer uses for its shims."""
    bind("_bench_spandsp_shipped", include_dirs=[str(HERE)], libraries=["spandsp", "m"],
         extra_compile_args=["-O2", "-Wno-deprecated-declarations"])


def same_flags() -> dict[str, object]:
    version = installed_source_version()
    flags, level = our_flags()
    tree = WORK / f"spandsp-{version.split(':', 1)[-1]}"
    record = WORK / "library.json"
    wanted = {"version": version, "configure": CONFIGURE, "flags": flags}
    lib = tree / "src" / ".libs" / "libspandsp.a"
    done = json.loads(record.read_text()) if record.is_file() else {}
    if lib.is_file() and {k: done.get(k) for k in wanted} == wanted:
        source, built_with = str(done["source"]), list(done["built_with"])
        print(f"bench: spandsp {version} with our flags already built, reused", file=sys.stderr)
    else:
        record.unlink(missing_ok=True)
        orig, deb = fetch(version)
        print(f"bench: building spandsp {version} from {orig.name} with our flags", file=sys.stderr)
        source = f"{orig.name}; " + unpack(orig, deb, tree)
        lib, built_with = build_library(tree, flags)
        record.write_text(json.dumps({**wanted, "source": source, "built_with": built_with}))
    try:
        bind("_bench_spandsp_same_flags", include_dirs=[str(HERE), str(tree / "src")],
             extra_objects=[str(lib)], libraries=["m"],
             extra_compile_args=[*flags, "-Wno-deprecated-declarations", "-Wno-unused-function"],
             # the rebuilt library's symbols stay inside the binding, apart from the shipped one
             extra_link_args=["-Wl,--exclude-libs,ALL"])
    except Exception as e:
        raise BuildError(f"binding: {e}") from e
    return {"version": version, "source": source, "isa": level, "cflags": " ".join(built_with)}


def main() -> None:
    os.chdir(ROOT)
    what = sys.argv[1:] or ["shipped", "same-flags"]
    if "shipped" in what:
        shipped()
    if "same-flags" in what:
        OUT.mkdir(parents=True, exist_ok=True)
        DONE.unlink(missing_ok=True)
        try:
            status: dict[str, object] = {"ok": True, **same_flags()}
        except Exception as e:  # every failure becomes the benchmark's reason
            reason = str(e) if isinstance(e, BuildError) else f"{type(e).__name__}: {e}"
            status = {"ok": False, "reason": reason}
            print(f"bench: spandsp with our flags not built: {reason}", file=sys.stderr)
        STATUS.write_text(json.dumps(status, indent=1) + "\n")
        if status["ok"]:
            DONE.touch()


if __name__ == "__main__":
    main()
