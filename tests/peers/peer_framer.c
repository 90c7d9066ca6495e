/*
 * A framer for sim.sock peers (tests only, never part of the product): E1 per ITU-T G.704 2.3
 * (basic frame, CRC-4 multiframe) with G.706's frame search, T1 per G.704 2.1 (D4 12-frame
 * superframe, ESF 24-frame multiframe with CRC-6). Written from the standards' text, independent
 * of drivers/src: the card's framer is checked against it.
 *
 * A tick is 8 frames. Line octets carry the bits in line order, the first bit in the MSB. Timeslot
 * octets are frame-major here: ts[f * nts + (t - 1)], the octet's MSB is the timeslot's bit 1.
 *
 * E1 TS0 (G.704 table 4a): frames with the frame alignment signal (FAS): Si/C, 0011011; frames
 * without (NFAS): Si/M/E, 1, A, Sa4..Sa8 (sent as 1). With CRC-4 (table 5b) bit 1 of a 16-frame
 * multiframe's frames 0..15 is C1 M C2 M C3 M C4 M C1 M C2 M C3 E C4 E, M = 0 0 1 0 1 1 in frames
 * 1..11, the C bits of each 8-frame sub-multiframe (SMF) the CRC-4 (x^4 + x + 1) of the SMF before
 * it, computed with its own C bits as 0.
 * T1 F bits: D4 frames 1..12 = 1 0 0 0 1 1 0 1 1 1 0 0 (Ft 101010 on odd frames, Fs 001110 on
 * even); ESF frames 4, 8, .. 24 = 0 0 1 0 1 1 (FPS), frames 2, 6, .. 22 = C1..C6 (CRC-6, x^6 + x + 1,
 * of the multiframe before, its F bits taken as 1), odd frames the data link (ones; RAI: eight
 * ones, eight zeros).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { PF_E1_BASIC = 0, PF_E1_CRC4 = 1, PF_T1_D4 = 2, PF_T1_ESF = 3 };

#define PF_RING 16384 /* bits of history: more than the longest search (ESF: 12 FPS bits) plus a tick */

typedef struct pf_status {
    int aligned;           /* basic frame (E1) / superframe (T1) alignment */
    int mf_aligned;        /* E1 CRC-4 multiframe alignment */
    int rai_rx;            /* E1: the A bit last received */
    int reserved;
    uint64_t frames;       /* frames delivered */
    uint64_t fas_errors;   /* errored FAS words (E1) or framing bits (T1) while aligned */
    uint64_t crc_errors;   /* CRC-4 / CRC-6 blocks in error */
    uint64_t crc_checked;  /* blocks checked */
    uint64_t ebits;        /* E-bits received as 0 */
    uint64_t losses;       /* alignments lost */
    uint64_t alignments;   /* alignments found */
} pf_status_t;

typedef struct pf {
    int framing, e1, nts, frame_bits, octets;
    int rai_tx;
    /* transmit */
    uint32_t tx_fc;            /* frame number, from 0 */
    uint32_t tx_crc, tx_c;     /* CRC being computed over this SMF / ESF; C bits being sent */
    uint32_t tx_fdl;           /* ESF data link bit counter (RAI pattern) */
    int e_ok[2];               /* CRC-4 results to report in the E bits (1 = no error) */
    /* receive */
    uint8_t ring[PF_RING];
    uint64_t wr, rd;           /* absolute bit positions: written, next of interest */
    uint32_t fi;               /* frame index in its (super/multi)frame while aligned */
    int bad_run;               /* E1: consecutive bad FAS */
    uint32_t fwin;             /* T1: the last 4 checked framing bits, 1 = errored */
    int fwin_n;
    /* E1 CRC-4 receive */
    uint32_t mfr;              /* last NFAS bit 1 values */
    int64_t cand;              /* frame count of the last MF alignment candidate, -1 none */
    uint64_t fcount;           /* frames since basic alignment */
    int mfi;                   /* multiframe frame 0..15 once multiframe aligned */
    int have_prev, smf_full;
    uint32_t rx_crc, rx_c, crc_prev;
    uint32_t win_checked, win_err;
    pf_status_t st;
} pf_t;

static const uint8_t D4_F[12] = {1, 0, 0, 0, 1, 1, 0, 1, 1, 1, 0, 0};
static const uint8_t FPS[6] = {0, 0, 1, 0, 1, 1};
static const uint8_t FAS[7] = {0, 0, 1, 1, 0, 1, 1};   /* TS0 bits 2..8 */
static const uint8_t MFAS[6] = {0, 0, 1, 0, 1, 1};

pf_t *pf_new(int framing)
{
    if (framing < PF_E1_BASIC || framing > PF_T1_ESF)
        return NULL;
    pf_t *p = calloc(1, sizeof(pf_t));
    if (p == NULL)
        return NULL;
    p->framing = framing;
    p->e1 = framing <= PF_E1_CRC4;
    p->nts = p->e1 ? 31 : 24;
    p->frame_bits = p->e1 ? 256 : 193;
    p->octets = p->e1 ? 256 : 193;
    p->e_ok[0] = p->e_ok[1] = 1;
    p->cand = -1;
    return p;
}

void pf_free(pf_t *p)
{
    free(p);
}

void pf_set_rai(pf_t *p, int on)
{
    p->rai_tx = on != 0;
}

void pf_status(const pf_t *p, pf_status_t *out)
{
    *out = p->st;
}

/* CRC-4 and CRC-6 by the bit: the remainder of M(x) x^n modulo the generator. */
static uint32_t crc4_bit(uint32_t r, int b)
{
    int fb = (int) ((r >> 3) & 1) ^ b;
    r = (r << 1) & 0xF;
    return fb ? r ^ 0x3 : r;   /* x^4 + x + 1 */
}

static uint32_t crc6_bit(uint32_t r, int b)
{
    int fb = (int) ((r >> 5) & 1) ^ b;
    r = (r << 1) & 0x3F;
    return fb ? r ^ 0x3 : r;   /* x^6 + x + 1 */
}

static void put_bit(uint8_t *line, int i, int b)
{
    if (b)
        line[i >> 3] |= (uint8_t) (0x80 >> (i & 7));
}

/* ---- transmit ---------------------------------------------------------------------------- */

static void tx_e1_frame(pf_t *p, const uint8_t *ts, uint8_t *line, int at)
{
    uint8_t bits[256];
    int crc4 = p->framing == PF_E1_CRC4;
    int m = (int) (p->tx_fc % 16);
    int fas = (p->tx_fc % 2) == 0;
    if (crc4 && (m == 0 || m == 8)) {   /* a new SMF: send the CRC of the one before */
        p->tx_c = p->tx_crc;
        p->tx_crc = 0;
    }
    int b1;
    if (!crc4)
        b1 = 1;                          /* Si, not used */
    else if (fas)
        b1 = (int) ((p->tx_c >> (3 - (m % 8) / 2)) & 1);   /* C1..C4 */
    else if (m <= 11)
        b1 = MFAS[m / 2];
    else {
        b1 = p->e_ok[m == 13 ? 0 : 1];
        p->e_ok[m == 13 ? 0 : 1] = 1;
    }
    bits[0] = (uint8_t) b1;
    if (fas) {
        for (int i = 0; i < 7; i++)
            bits[1 + i] = FAS[i];
    } else {
        bits[1] = 1;
        bits[2] = (uint8_t) p->rai_tx;
        for (int i = 3; i < 8; i++)
            bits[i] = 1;                 /* Sa4..Sa8 */
    }
    for (int t = 1; t <= 31; t++)
        for (int i = 0; i < 8; i++)
            bits[t * 8 + i] = (uint8_t) ((ts[t - 1] >> (7 - i)) & 1);
    for (int i = 0; i < 256; i++) {
        if (crc4)
            p->tx_crc = crc4_bit(p->tx_crc, fas && i == 0 ? 0 : bits[i]);
        put_bit(line, at + i, bits[i]);
    }
    p->tx_fc++;
}

static void tx_t1_frame(pf_t *p, const uint8_t *ts, uint8_t *line, int at)
{
    uint8_t bits[193];
    int f;
    if (p->framing == PF_T1_D4) {
        f = D4_F[p->tx_fc % 12];
    } else {
        int fi = (int) (p->tx_fc % 24);   /* frame fi + 1 of the multiframe */
        if (fi == 0) {
            p->tx_c = p->tx_crc;
            p->tx_crc = 0;
        }
        if (fi % 4 == 3)
            f = FPS[fi / 4];
        else if (fi % 4 == 1)
            f = (int) ((p->tx_c >> (5 - fi / 4)) & 1);
        else {
            f = p->rai_tx ? (p->tx_fdl % 16) < 8 : 1;
            p->tx_fdl++;
        }
    }
    bits[0] = (uint8_t) f;
    for (int t = 1; t <= 24; t++) {
        uint8_t o = ts[t - 1];
        if (p->rai_tx && p->framing == PF_T1_D4)
            o &= 0xBF;                    /* D4 yellow: bit 2 of every channel 0 */
        for (int i = 0; i < 8; i++)
            bits[1 + (t - 1) * 8 + i] = (uint8_t) ((o >> (7 - i)) & 1);
    }
    for (int i = 0; i < 193; i++) {
        if (p->framing == PF_T1_ESF)
            p->tx_crc = crc6_bit(p->tx_crc, i == 0 ? 1 : bits[i]);
        put_bit(line, at + i, bits[i]);
    }
    p->tx_fc++;
}

/* One tick: 8 frames of timeslot octets (frame-major) into the line. */
void pf_tx(pf_t *p, const uint8_t *ts, uint8_t *line)
{
    memset(line, 0, (size_t) p->octets);
    for (int f = 0; f < 8; f++) {
        if (p->e1)
            tx_e1_frame(p, ts + f * 31, line, f * 256);
        else
            tx_t1_frame(p, ts + f * 24, line, f * 193);
    }
}

/* ---- receive ----------------------------------------------------------------------------- */

static inline int bit_at(const pf_t *p, uint64_t a)
{
    return p->ring[a % PF_RING];
}

/* Bits needed beyond a candidate position to test it. */
static uint64_t search_span(const pf_t *p)
{
    if (p->e1)
        return 512 + 8;
    if (p->framing == PF_T1_D4)
        return 23 * 193 + 1;
    return 11 * 772 + 1;
}

/* Is there alignment at bit a? Sets p->fi (the frame's index) when there is. G.706 4.1.2 for E1:
 * FAS, then bit 2 = 1 in the next frame, then FAS again. T1: the framing pattern twice over. */
static int search_at(pf_t *p, uint64_t a)
{
    if (p->e1) {
        for (int i = 0; i < 7; i++)
            if (bit_at(p, a + 1 + (uint64_t) i) != FAS[i] || bit_at(p, a + 513 + (uint64_t) i) != FAS[i])
                return 0;
        if (bit_at(p, a + 257) != 1)
            return 0;
        p->fi = 0;
        return 1;
    }
    if (p->framing == PF_T1_D4) {
        for (int ph = 0; ph < 12; ph++) {
            int ok = 1;
            for (int j = 0; j < 24 && ok; j++)
                ok = bit_at(p, a + (uint64_t) j * 193) == D4_F[(ph + j) % 12];
            if (ok) {
                p->fi = (uint32_t) ph;
                return 1;
            }
        }
        return 0;
    }
    for (int ph = 0; ph < 6; ph++) {
        int ok = 1;
        for (int j = 0; j < 12 && ok; j++)
            ok = bit_at(p, a + (uint64_t) j * 772) == FPS[(ph + j) % 6];
        if (ok) {
            p->fi = (uint32_t) (4 * ph + 3);   /* an FPS frame: 4, 8, .. 24 */
            return 1;
        }
    }
    return 0;
}

static void lose(pf_t *p, uint64_t frame_at)
{
    p->st.aligned = 0;
    p->st.mf_aligned = 0;
    p->st.losses++;
    p->rd = frame_at + 1;   /* search again from the next bit */
}

static void e1_crc_frame(pf_t *p, const uint8_t *bits, int fas)
{
    if (!p->st.mf_aligned) {
        if (fas)
            return;
        p->mfr = ((p->mfr << 1) | bits[0]) & 0x3F;
        if (p->mfr == 0x0B) {   /* 001011: this NFAS frame is frame 11 of a multiframe */
            int64_t fc = (int64_t) p->fcount;
            if (p->cand >= 0 && (fc - p->cand) % 16 == 0 && fc - p->cand <= 64) {
                p->st.mf_aligned = 1;
                p->mfi = 11;
                p->have_prev = 0;
                p->smf_full = 0;
                p->win_checked = p->win_err = 0;
            }
            p->cand = fc;
        }
        return;
    }
    p->mfi = (p->mfi + 1) % 16;
    int m = p->mfi;
    if (m == 0 || m == 8) {
        p->smf_full = 1;
        p->rx_crc = 0;
        p->rx_c = 0;
    }
    if (!p->smf_full)
        return;
    for (int i = 0; i < 256; i++)
        p->rx_crc = crc4_bit(p->rx_crc, fas && i == 0 ? 0 : bits[i]);
    if (fas)
        p->rx_c = (p->rx_c << 1) | bits[0];
    else if ((m == 13 || m == 15) && bits[0] == 0)
        p->st.ebits++;
    if (m == 7 || m == 15) {
        if (p->have_prev) {
            int bad = p->rx_c != p->crc_prev;
            p->st.crc_checked++;
            p->win_checked++;
            if (bad) {
                p->st.crc_errors++;
                p->win_err++;
                p->e_ok[m == 15 ? 0 : 1] = 0;   /* checked here: the SMF before this one */
            }
            if (p->win_checked == 1000) {
                int false_alignment = p->win_err >= 915;   /* G.706 4.3.2 */
                p->win_checked = p->win_err = 0;
                if (false_alignment) {
                    p->smf_full = 0;
                    p->have_prev = 0;
                    p->st.mf_aligned = 0;
                    p->st.aligned = -1;   /* marks a reframe for the caller below */
                    return;
                }
            }
        }
        p->crc_prev = p->rx_crc;
        p->have_prev = 1;
    }
}

/* One aligned frame at bit position a; writes its timeslots to out. 0 if alignment was lost. */
static int rx_frame(pf_t *p, uint64_t a, uint8_t *out)
{
    uint8_t bits[256];
    for (int i = 0; i < p->frame_bits; i++)
        bits[i] = (uint8_t) bit_at(p, a + (uint64_t) i);
    if (p->e1) {
        int fas = p->fi % 2 == 0;
        if (fas) {
            int ok = memcmp(bits + 1, FAS, 7) == 0;
            if (!ok) {
                p->st.fas_errors++;
                if (++p->bad_run >= 3) {   /* G.706 4.1.1: three consecutive bad FAS */
                    lose(p, a);
                    return 0;
                }
            } else {
                p->bad_run = 0;
            }
        } else {
            p->st.rai_rx = bits[2];
        }
        if (p->framing == PF_E1_CRC4) {
            e1_crc_frame(p, bits, fas);
            if (p->st.aligned == -1) {
                p->st.aligned = 1;
                lose(p, a);
                return 0;
            }
        }
        p->fcount++;
        p->fi = (p->fi + 1) % 2;
    } else {
        int n = p->framing == PF_T1_D4 ? 12 : 24;
        int check = p->framing == PF_T1_D4 || p->fi % 4 == 3;
        if (check) {
            int want = p->framing == PF_T1_D4 ? D4_F[p->fi] : FPS[p->fi / 4];
            int bad = bits[0] != want;
            p->st.fas_errors += (uint64_t) bad;
            p->fwin = ((p->fwin << 1) | (uint32_t) bad) & 0xF;
            int errs = __builtin_popcount(p->fwin);
            if (++p->fwin_n >= 2 && errs >= 2) {   /* two errored framing bits of four */
                lose(p, a);
                return 0;
            }
        }
        if (p->framing == PF_T1_ESF) {
            if (p->fi == 0) {
                p->smf_full = 1;
                p->rx_crc = 0;
                p->rx_c = 0;
            }
            if (p->smf_full) {
                for (int i = 0; i < 193; i++)
                    p->rx_crc = crc6_bit(p->rx_crc, i == 0 ? 1 : bits[i]);
                if (p->fi % 4 == 1)
                    p->rx_c = (p->rx_c << 1) | bits[0];
                if (p->fi == 23) {
                    if (p->have_prev) {
                        p->st.crc_checked++;
                        p->st.crc_errors += (uint64_t) (p->rx_c != p->crc_prev);
                    }
                    p->crc_prev = p->rx_crc;
                    p->have_prev = 1;
                }
            }
        }
        p->fi = (p->fi + 1) % (uint32_t) n;
    }
    int off = p->e1 ? 8 : 1;
    for (int t = 0; t < p->nts; t++) {
        uint8_t o = 0;
        for (int i = 0; i < 8; i++)
            o = (uint8_t) (o << 1 | bits[off + t * 8 + i]);
        out[t] = o;
    }
    p->st.frames++;
    return 1;
}

/* Take nbits line bits (MSB first); the frames recovered while aligned go to out (frame-major,
 * nts octets each), at most max_frames. Returns the frames written. */
int pf_rx(pf_t *p, const uint8_t *line, int nbits, uint8_t *out, int max_frames)
{
    for (int i = 0; i < nbits; i++)
        p->ring[(p->wr + (uint64_t) i) % PF_RING] = (uint8_t) ((line[i >> 3] >> (7 - (i & 7))) & 1);
    p->wr += (uint64_t) nbits;
    if (p->wr - p->rd > PF_RING - 64)
        p->rd = p->wr - (PF_RING - 64);   /* searched too long: forget the oldest */
    int got = 0;
    for (;;) {
        if (!p->st.aligned) {
            if (p->wr - p->rd < search_span(p))
                break;
            if (search_at(p, p->rd)) {
                p->st.aligned = 1;
                p->st.alignments++;
                p->bad_run = 0;
                p->fwin = 0;
                p->fwin_n = 0;
                p->fcount = 0;
                p->cand = -1;
                p->mfr = 0;
                p->have_prev = 0;
                p->smf_full = 0;
                p->st.mf_aligned = 0;
            } else {
                p->rd++;
            }
            continue;
        }
        if (p->wr - p->rd < (uint64_t) p->frame_bits || got >= max_frames)
            break;
        if (rx_frame(p, p->rd, out + (size_t) got * (size_t) p->nts)) {
            p->rd += (uint64_t) p->frame_bits;
            got++;
        }
    }
    return got;
}
