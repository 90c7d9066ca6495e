# cicbox: one idempotent `make setup`, then `make test` / `make demo`.
# Works on a fresh Debian 12 machine as root: system packages come from apt.

PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
APT_PKGS := gcc make pkg-config python3-dev python3-venv libspandsp-dev libpri-dev libtiff-dev \
            sox systemd
STAMP   := build/.stamps

DSP_SRC     := $(wildcard dsp/src/*.c dsp/src/tick/*.c dsp/src/*.h dsp/include/*.h dsp/sched/src/*.c \
               dsp/sched/src/tick/*.c dsp/sched/src/*.h dsp/sched/include/*.h drivers/include/*.h include/*.h)
DRIVERS_SRC := $(wildcard drivers/src/*.c drivers/src/tick/*.c drivers/src/*.h drivers/include/*.h include/*.h)
PEER_SRC    := $(wildcard tests/peers/spandsp_*) tests/peers/peer_framer.c
LINE_SRC    := $(wildcard tests/line/*.c tests/line/*.h)
ECHO_REF    := build/peers/echo_ref build/peers/echo_ref_shipped
PRI_PEER    := tests/peers/bin/pri_peer

.PHONY: setup build test lint typecheck pytest demo bench clean asan fuzz soak crashloop prompts

setup: $(STAMP)/apt $(STAMP)/chromium $(STAMP)/venv build

# Re-checked whenever this file changes (a package added to the list is installed on the next setup).
$(STAMP)/apt: Makefile
	@mkdir -p $(STAMP)
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@touch $@

# Debian's chromium for the browser tests (tests/browser), driven by Playwright at /usr/lib/chromium/chromium;
# Playwright never downloads a browser of its own.
$(STAMP)/chromium: Makefile
	@mkdir -p $(STAMP)
	@dpkg -s chromium >/dev/null 2>&1 || { echo "apt: installing chromium"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }
	@touch $@

$(STAMP)/venv: pyproject.toml
	@mkdir -p $(STAMP)
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip setuptools wheel
	$(VPY) -m pip install -q "cffi>=1.16" "construct>=2.10,<2.11" "pyserial>=3.5" "pyusb>=1.2" \
	    "flask>=3.0" "gunicorn>=22" "pyyaml>=6.0" "pydantic>=2.6" "sqlalchemy>=2.0" \
	    "flask-login>=0.6.3" "flask-wtf>=1.2" "flask-limiter>=3.5" "argon2-cffi>=23.1" \
	    "cryptography>=42" "pytest>=8" "ruff>=0.6" "mypy>=1.10" types-pyyaml "numpy>=1.26" "time-machine>=2.14" \
	    "playwright==1.65.2"
	CICBOX_NO_EXT=1 $(VPY) -m pip install -q --no-build-isolation --no-deps -e .
	@touch $@

# The extensions are rebuilt whenever their C, headers or build scripts change.
build: dsp/.built drivers/.built tests/peers/.built tests/line/.built $(ECHO_REF) $(PRI_PEER)

dsp/.built: $(DSP_SRC) _cffi_src/build_kernels.py _cffi_src/common.py pyproject.toml | $(STAMP)/venv
	$(VPY) _cffi_src/build_kernels.py
	@touch $@

drivers/.built: $(DRIVERS_SRC) _cffi_src/build_card.py _cffi_src/common.py pyproject.toml | $(STAMP)/venv
	$(VPY) _cffi_src/build_card.py
	@touch $@

tests/peers/.built: $(PEER_SRC) tests/peers/build_spandsp.py tests/peers/build_peer_framer.py | $(STAMP)/venv $(STAMP)/apt
	$(VPY) tests/peers/build_spandsp.py
	$(VPY) tests/peers/build_peer_framer.py
	@touch $@

# spandsp's echo canceller as a reference program (tests/peers/echo_ref.c), run as a subprocess by the
# echo tests and bench/echo.py: with the library's per-sample printing silenced, and as shipped.
build/peers/echo_ref: tests/peers/echo_ref.c | $(STAMP)/apt
	@mkdir -p $(@D)
	gcc -std=c11 -O2 -Wall -Wextra -Werror -DECHO_REF_SILENT -rdynamic -o $@ $< -lspandsp -lm

build/peers/echo_ref_shipped: tests/peers/echo_ref.c | $(STAMP)/apt
	@mkdir -p $(@D)
	gcc -std=c11 -O2 -Wall -Wextra -Werror -o $@ $< -lspandsp -lm

# libpri as the far end of a PRI span (tests/peers/pri_peer.c): a separate program the tests start, on
# sim.sock with the peers' framer and spandsp's HDLC. libpri is GPL-2: never linked into the product.
$(PRI_PEER): tests/peers/pri_peer.c tests/peers/peer_framer.c | $(STAMP)/apt
	@mkdir -p $(@D)
	gcc -std=c11 -O2 -Wall -Wextra -Werror -rdynamic -o $@ $< -lpri -lspandsp -lm

# The test-only line model (tests/line): built here, never installed.
tests/line/.built: $(LINE_SRC) tests/line/build_line.py _cffi_src/common.py | $(STAMP)/venv
	$(VPY) tests/line/build_line.py
	@touch $@

lint: setup
	$(VENV)/bin/ruff check .

typecheck: setup
	$(VENV)/bin/mypy

pytest: setup
	$(VENV)/bin/pytest -q

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -q

# The fuzz test of the line and call machines over many seeds (CI runs a few fixed ones in the
# suite): FUZZ_RUNS seeds from FUZZ_FIRST (default 50 from 1000), or exactly FUZZ_SEEDS="1 2 3".
# Prints each seed's verdict and the failing seeds; replay one with
# .venv/bin/python -m tests.fuzz.test_fuzz --seed N -v (tests/fuzz/test_fuzz.py).
fuzz: setup
	$(VPY) -m tests.fuzz.test_fuzz

# The soak: 24 virtual hours of the benchmark site's analog variant on a day's traffic curve, checked each hour (memory
# and descriptors flat, nothing stuck, no channel leaked, the database growing only by its records);
# one JSON line per hour, then the summary (bench/soak.py). CI runs one busy hour (tests/e2e/test_soak.py).
soak: setup
	$(VPY) bench/soak.py --hours $(or $(SOAK_HOURS),24)

# The crash loop at length: the engine killed with SIGKILL at 200 random points during traffic (CI runs 20).
crashloop: setup
	CICBOX_CRASH_RUNS=200 $(VENV)/bin/pytest -q tests/e2e/test_crash_loop.py

# The C under AddressSanitizer and UndefinedBehaviourSanitizer: both extensions built apart, in
# build/asan/ (the normal build is not touched), loaded from there by _cffi_src/asan/sitecustomize.py
# with the sanitizer runtime preloaded (CPython itself is not instrumented); leaks are not checked
# (CPython leaks at exit). Any report fails the run.
ASAN_TESTS := tests/sched tests/drivers tests/dsp tests/test_far_end.py tests/test_far_peers.py tests/test_linecard.py \
              tests/e2e/test_far_engine.py tests/e2e/test_far_caller.py tests/e2e/test_peer_floods.py \
              tests/e2e/test_pri_calls.py
ASAN_ENV = LD_PRELOAD="$$(gcc -print-file-name=libasan.so)" \
           ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1 \
           UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
           PYTHONPATH=$(CURDIR)/_cffi_src/asan CICBOX_ASAN_EXT=$(CURDIR)/build/asan

build/asan/.built: $(DSP_SRC) $(DRIVERS_SRC) $(wildcard _cffi_src/*.py) pyproject.toml | $(STAMP)/venv
	$(VPY) _cffi_src/build_asan.py
	@touch $@

asan: setup build/asan/.built
	$(ASAN_ENV) $(VENV)/bin/pytest -q -p no:cacheprovider --capture=sys $(ASAN_TESTS)

# The appliance on the sim card: hotel profile, traffic generator, panel on https://127.0.0.1:8443 (it prints the
# setup code).
demo: setup
	$(VENV)/bin/cicbox demo --state-dir $(CURDIR)/state --config configs/hotel.yaml

# The benchmark's spandsp peers, built into build/bench/ by bench/peers/build_spandsp.py: the
# shipped library, and spandsp rebuilt from its Debian source package with our CFLAGS (this adds
# a deb-src entry, /etc/apt/sources.list.d/cicbox-src.sources, and runs apt-get update once). The
# rebuild leaves its stamp only when it succeeds, so a failed one is tried again on the next run;
# the benchmark reports why it failed.
BENCH_PEER := bench/peers/build_spandsp.py bench/peers/spandsp_dtmf_rx.c

build/bench/.shipped: $(BENCH_PEER) | $(STAMP)/venv $(STAMP)/apt
	$(VPY) bench/peers/build_spandsp.py shipped
	@touch $@

build/bench/.same-flags: $(BENCH_PEER) _cffi_src/common.py | dsp/.built $(STAMP)/apt
	$(VPY) bench/peers/build_spandsp.py same-flags

# libpri against libpri over an in-memory frame queue (bench/pri.py's libpri_setups_per_s): a separate
# program, libpri is GPL-2 (bench/pri.py builds it too when it is missing or older than its source).
build/bench/pri_pair: bench/peers/pri_pair.c | $(STAMP)/apt
	@mkdir -p $(@D)
	gcc -std=c11 -O2 -Wall -Wextra -Werror -o $@ $< -lpri

bench: setup build/bench/.shipped build/bench/.same-flags build/bench/pri_pair
	$(VPY) bench/media_tier.py
	$(VPY) bench/framing.py
	$(VPY) bench/virtual_hour.py
	$(VPY) bench/acd_scale.py
	$(VPY) bench/echo.py
	$(VPY) bench/pri.py
	$(VPY) bench/panel.py

# The shipped announcement prompts (configs/prompts/{en,zh}/), made once with espeak-ng run as a
# separate program (GPL, never linked) and committed: only this target installs espeak-ng, and
# setup and test never need it (image-build/make_prompts.py).
prompts: $(STAMP)/apt $(STAMP)/venv
	@command -v espeak-ng >/dev/null 2>&1 || { echo "apt: installing espeak-ng"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng; }
	$(VPY) image-build/make_prompts.py

clean:
	rm -rf build $(VENV) dsp/_kernels.c dsp/_kernels.o dsp/_kernels.*.so drivers/_card.c drivers/_card.o drivers/_card.*.so tests/peers/_spandsp.* tests/peers/_peer_framer.* tests/line/_line.c \
	    tests/line/_line.*.so dsp/.built drivers/.built tests/peers/.built tests/line/.built tests/peers/bin
