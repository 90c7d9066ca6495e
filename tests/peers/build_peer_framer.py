"""Build tests.peers._peer_framer: the sim.sock peers' own framer (tests/peers/peer_framer.c).

Test-only, never part of the product: E1 (G.704 basic frame, CRC-4 multiframe, G.706 frame search)
and T1 (D4, ESF with CRC-6) written from the standards' text, independent of drivers/src, so a
socket peer can check the card's framing bit for bit.
"""

from __future__ import annotations

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

CDEF = """
enum { PF_E1_BASIC = 0, PF_E1_CRC4 = 1, PF_T1_D4 = 2, PF_T1_ESF = 3 };
typedef struct pf_status {
    int aligned; int mf_aligned; int rai_rx; int reserved;
    uint64_t frames; uint64_t fas_errors; uint64_t crc_errors; uint64_t crc_checked; uint64_t ebits;
    uint64_t losses; uint64_t alignments;
} pf_status_t;
typedef struct pf pf_t;
pf_t *pf_new(int framing);
void pf_free(pf_t *p);
void pf_set_rai(pf_t *p, int on);
void pf_status(const pf_t *p, pf_status_t *out);
void pf_tx(pf_t *p, const uint8_t *ts, uint8_t *line);
int pf_rx(pf_t *p, const uint8_t *line, int nbits, uint8_t *out, int max_frames);
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "tests.peers._peer_framer",
    '#include "peer_framer.c"\n',
    include_dirs=[str(HERE)],
    extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra"],
)

if __name__ == "__main__":
    import os

    os.chdir(ROOT)
    ffibuilder.compile(tmpdir=str(ROOT), verbose=False)
