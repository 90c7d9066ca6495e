/*
 * The framer's per-tick path (cb_framer.h): transmit one tick of frames, receive
 * one tick. No allocation, lock or system call. Aligned, the work is word-wise:
 * 8 x 8 octet transposes between the timeslot-major and frame-major layouts (two
 * at a time in 256-bit registers on x86-64-v3, chosen at run time: cb_framer_t.v3),
 * CRC-4 and CRC-6 summed over whole words mod x^60 - 1 and x^63 - 1 (x^15 = 1 mod
 * x^4 + x + 1, x^63 = 1 mod x^6 + x + 1) then a few table look-ups; E1 frames read
 * in place from the last tick's line (kept from the block's first octet on) and
 * this one while aligned on an octet, T1 frames 64 bits at a time at any bit
 * offset. Bit-level work only while searching.
 */
#include <stddef.h>
#include <string.h>
#include "cb_sim.h"
#include "framer_priv.h"
#if FR_V3
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

static const uint8_t D4_F[12] = {1, 0, 0, 0, 1, 1, 0, 1, 1, 1, 0, 0}; /* Ft/Fs, frames 1..12 */
static const uint8_t FPS[6] = {0, 0, 1, 0, 1, 1};            /* ESF, frames 4..24 */

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline uint64_t load_be64(const uint8_t *p)
{
    return __builtin_bswap64(load64(p));
}

static inline void store_be64(uint8_t *p, uint64_t v)
{
    v = __builtin_bswap64(v);
    memcpy(p, &v, sizeof v);
}

/* An 8 x 8 octet transpose: out[c][r] = in[r][c]. */
static inline void tr8(const uint8_t *const in[8], uint8_t *const out[8])
{
#if defined(__SSE2__)
    __m128i r0 = _mm_loadl_epi64((const __m128i *) in[0]), r1 = _mm_loadl_epi64((const __m128i *) in[1]);
    __m128i r2 = _mm_loadl_epi64((const __m128i *) in[2]), r3 = _mm_loadl_epi64((const __m128i *) in[3]);
    __m128i r4 = _mm_loadl_epi64((const __m128i *) in[4]), r5 = _mm_loadl_epi64((const __m128i *) in[5]);
    __m128i r6 = _mm_loadl_epi64((const __m128i *) in[6]), r7 = _mm_loadl_epi64((const __m128i *) in[7]);
    __m128i a0 = _mm_unpacklo_epi8(r0, r1), a1 = _mm_unpacklo_epi8(r2, r3);
    __m128i a2 = _mm_unpacklo_epi8(r4, r5), a3 = _mm_unpacklo_epi8(r6, r7);
    __m128i b0 = _mm_unpacklo_epi16(a0, a1), b1 = _mm_unpackhi_epi16(a0, a1);   /* columns 0-3, 4-7 */
    __m128i b2 = _mm_unpacklo_epi16(a2, a3), b3 = _mm_unpackhi_epi16(a2, a3);
    __m128i c0 = _mm_unpacklo_epi32(b0, b2), c1 = _mm_unpackhi_epi32(b0, b2);   /* columns 0-1, 2-3 */
    __m128i c2 = _mm_unpacklo_epi32(b1, b3), c3 = _mm_unpackhi_epi32(b1, b3);   /* columns 4-5, 6-7 */
    _mm_storel_epi64((__m128i *) out[0], c0);
    _mm_storeh_pd((double *) out[1], _mm_castsi128_pd(c0));
    _mm_storel_epi64((__m128i *) out[2], c1);
    _mm_storeh_pd((double *) out[3], _mm_castsi128_pd(c1));
    _mm_storel_epi64((__m128i *) out[4], c2);
    _mm_storeh_pd((double *) out[5], _mm_castsi128_pd(c2));
    _mm_storel_epi64((__m128i *) out[6], c3);
    _mm_storeh_pd((double *) out[7], _mm_castsi128_pd(c3));
#else
    uint8_t t[8][8];
    for (int r = 0; r < 8; r++)
        for (int c = 0; c < 8; c++)
            t[c][r] = in[r][c];
    for (int c = 0; c < 8; c++)
        memcpy(out[c], t[c], 8);
#endif
}

/* CRC-4 (x^4 + x + 1) of a 256-octet sub-multiframe, its C bit positions (the MSB of octets 0, 64,
   128, 192) taken as 0. Read as 32 big-endian words (aligned as the transposes store them, so the
   loads are forwarded from those stores): the block is sum W_m x^(64 (31 - m)), and as x^15 = 1 mod
   the polynomial the sum may be taken mod x^60 - 1, where x^64 = x^4 and a product by x^k is a
   rotation of 60 bits. Four chains of 8 words (x^256 = x^16; on x86-64-v3 one vector of four
   lanes), then 60 bits to 15 (x^15 = 1), then two table look-ups: the 15 bits times the CRC's x^4. */
#define FR_M60 ((1ull << 60) - 1)
#define FR_C_BIT (~(1ull << 63))

static inline uint64_t rot60(uint64_t v, int k)
{
    return ((v << k) & FR_M60) | (v >> (60 - k));
}

static inline uint64_t crc4_lanes(uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3)
{
    return rot60(a0, 12) ^ rot60(a1, 8) ^ rot60(a2, 4) ^ a3;    /* lane l times x^(64 (3 - l)) */
}

/* rows[j]: frame j of the sub-multiframe (32 octets). */
static uint64_t crc4_acc(const uint8_t *const rows[8])
{
    uint64_t acc[4] = {0, 0, 0, 0};
    for (int q = 0; q < 8; q++)
        for (int l = 0; l < 4; l++) {
            uint64_t w = load_be64(rows[q] + 8 * l);
            if (l == 0 && (q & 1) == 0)
                w &= FR_C_BIT;
            acc[l] = rot60(acc[l], 16) ^ (w & FR_M60) ^ (w >> 60);
        }
    return crc4_lanes(acc[0], acc[1], acc[2], acc[3]);
}

#if FR_V3
#define FR_V3_FN __attribute__((target("arch=x86-64-v3")))

FR_V3_FN static inline __m256i v3_bswap64(__m256i v)
{
    const __m256i m = _mm256_setr_epi8(7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8,
                                       7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8);
    return _mm256_shuffle_epi8(v, m);
}

/* One step of crc4_acc on a frame held in a register (four lanes, a word each). */
FR_V3_FN static inline __m256i v3_crc4_step(__m256i acc, __m256i row, int c_bits)
{
    const __m256i m60 = _mm256_set1_epi64x((long long) FR_M60);
    __m256i w = v3_bswap64(row);
    if (c_bits)
        w = _mm256_and_si256(w, _mm256_setr_epi64x((long long) FR_C_BIT, -1, -1, -1));
    acc = _mm256_or_si256(_mm256_and_si256(_mm256_slli_epi64(acc, 16), m60), _mm256_srli_epi64(acc, 44));
    return _mm256_xor_si256(acc, _mm256_xor_si256(_mm256_and_si256(w, m60), _mm256_srli_epi64(w, 60)));
}

FR_V3_FN static inline uint64_t v3_crc4_lanes(__m256i acc)
{
    uint64_t a[4];
    memcpy(a, &acc, sizeof a);
    return crc4_lanes(a[0], a[1], a[2], a[3]);
}

FR_V3_FN static uint64_t crc4_acc_v3(const uint8_t *const rows[8])
{
    __m256i acc = _mm256_setzero_si256();
    for (int q = 0; q < 8; q++)
        acc = v3_crc4_step(acc, _mm256_loadu_si256((const __m256i *) rows[q]), (q & 1) == 0);
    return v3_crc4_lanes(acc);
}

/* Two 8 x 8 octet transposes at once, one per 128-bit lane: r[i] holds row i of each in its lane's
   low 8 octets; c[k] gets columns 2k (low half) and 2k + 1 (high half) of each. */
FR_V3_FN static inline void v3_tr8x2(const __m256i r[8], __m256i c[4])
{
    __m256i a0 = _mm256_unpacklo_epi8(r[0], r[1]), a1 = _mm256_unpacklo_epi8(r[2], r[3]);
    __m256i a2 = _mm256_unpacklo_epi8(r[4], r[5]), a3 = _mm256_unpacklo_epi8(r[6], r[7]);
    __m256i b0 = _mm256_unpacklo_epi16(a0, a1), b1 = _mm256_unpackhi_epi16(a0, a1);
    __m256i b2 = _mm256_unpacklo_epi16(a2, a3), b3 = _mm256_unpackhi_epi16(a2, a3);
    c[0] = _mm256_unpacklo_epi32(b0, b2);
    c[1] = _mm256_unpackhi_epi32(b0, b2);
    c[2] = _mm256_unpacklo_epi32(b1, b3);
    c[3] = _mm256_unpackhi_epi32(b1, b3);
}

/* Timeslot-major to frame-major: timeslot t (1..31) at ts + (t - 1) * stride, TS0 at ts0, TS16 at
   ts16 when not NULL; line 8 frames of 32 octets. Returns the frames' CRC-4 accumulator (crc4_acc's). */
FR_V3_FN static uint64_t tx_e1_v3(const uint8_t *ts, ptrdiff_t stride, const uint8_t *ts0,
                                  const uint8_t *ts16, uint8_t *line)
{
    __m256i c[2][4];
    for (int h = 0; h < 2; h++) {
        __m256i r[8];
        for (int i = 0; i < 8; i++) {
            int t = 8 * h + i;
            const uint8_t *lo = t == 0 ? ts0 : ts + (t - 1) * stride;
            const uint8_t *hi = t == 0 && ts16 != NULL ? ts16 : ts + (t + 15) * stride;
            r[i] = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadl_epi64((const __m128i *) lo)),
                                           _mm_loadl_epi64((const __m128i *) hi), 1);
        }
        v3_tr8x2(r, c[h]);   /* lane 0: timeslots 8h..8h+7, lane 1: 16 + 8h.. */
    }
    __m256i acc = _mm256_setzero_si256();
    for (int k = 0; k < 4; k++) {
        __m256i even = _mm256_unpacklo_epi64(c[0][k], c[1][k]);    /* frame 2k, timeslots 0..31 */
        __m256i odd = _mm256_unpackhi_epi64(c[0][k], c[1][k]);     /* frame 2k + 1 */
        _mm256_storeu_si256((__m256i *) (line + 64 * k), even);
        _mm256_storeu_si256((__m256i *) (line + 64 * k + 32), odd);
        acc = v3_crc4_step(acc, even, 1);
        acc = v3_crc4_step(acc, odd, 0);
    }
    return v3_crc4_lanes(acc);
}

/* Frame-major to timeslot-major: rows[j] frame j (32 octets read), column k (0..31) to
   ts + (k - k0) * stride for k0 <= k < k1. */
FR_V3_FN static void rx_cols_v3(const uint8_t *const rows[8], uint8_t *ts, ptrdiff_t stride, int k0, int k1)
{
    __m256i r[8];
    for (int j = 0; j < 8; j++)
        r[j] = _mm256_loadu_si256((const __m256i *) rows[j]);
    uint8_t *base = ts - k0 * stride;
    for (int half = 0; half < 2; half++) {      /* columns 0-7 | 16-23, then 8-15 | 24-31 */
        __m256i a[4];
        for (int k = 0; k < 4; k++)
            a[k] = half == 0 ? _mm256_unpacklo_epi8(r[2 * k], r[2 * k + 1])
                             : _mm256_unpackhi_epi8(r[2 * k], r[2 * k + 1]);
        __m256i b0 = _mm256_unpacklo_epi16(a[0], a[1]), b1 = _mm256_unpackhi_epi16(a[0], a[1]);
        __m256i b2 = _mm256_unpacklo_epi16(a[2], a[3]), b3 = _mm256_unpackhi_epi16(a[2], a[3]);
        __m256i c[4] = {_mm256_unpacklo_epi32(b0, b2), _mm256_unpackhi_epi32(b0, b2),
                        _mm256_unpacklo_epi32(b1, b3), _mm256_unpackhi_epi32(b1, b3)};
        for (int k = 0; k < 4; k++) {
            int t = 8 * half + 2 * k;
            __m128i lo = _mm256_castsi256_si128(c[k]), hi = _mm256_extracti128_si256(c[k], 1);
            if (t >= k0)
                _mm_storel_epi64((__m128i *) (base + t * stride), lo);
            _mm_storeh_pd((double *) (base + (t + 1) * stride), _mm_castsi128_pd(lo));
            if (t + 16 < k1)
                _mm_storel_epi64((__m128i *) (base + (t + 16) * stride), hi);
            if (t + 17 < k1)
                _mm_storeh_pd((double *) (base + (t + 17) * stride), _mm_castsi128_pd(hi));
        }
    }
}
#endif

static int crc4_finish(const cb_framer_t *f, uint64_t r)
{
    unsigned v = (unsigned) ((r ^ (r >> 15) ^ (r >> 30) ^ (r >> 45)) & 0x7FFF);
    return f->crc4_fold[14][v >> 8] ^ f->crc4_fold[0][v & 0xFF];   /* x^12 and x^4 */
}

static int crc4_rows(const cb_framer_t *f, const uint8_t *const rows[8])
{
#if FR_V3
    if (f->v3)
        return crc4_finish(f, crc4_acc_v3(rows));
#endif
    return crc4_finish(f, crc4_acc(rows));
}

/* CRC-6 (x^6 + x + 1) of a T1 tick with its F bits as 1, continuing remainder r, from the 8 frames'
   payloads (3 big-endian words each). The polynomial is primitive: x^63 = 1 mod it, so the tick's
   bits may be summed mod x^63 - 1, where a product by x^k is a rotation of 63 bits: a word is
   reduced to 63 bits (x^63 = 1), a frame's words weigh x^128, x^64, x^0 (x^2, x, 1), frame j's
   last payload bit x^(1543 - 193 j - 192) and the CRC's x^6 (34 - 4 j mod 63), F bit j
   x^(1543 - 193 j + 6) (37 - 4 j); then 8 look-ups, one per octet of the 63 bits. */
#define FR_M63 ((1ull << 63) - 1)

static inline uint64_t rot63(uint64_t v, int k)
{
    return k == 0 ? v : ((v << k) & FR_M63) | (v >> (63 - k));
}

static inline uint64_t red63(uint64_t w)
{
    return (w & FR_M63) ^ (w >> 63);
}

static inline uint64_t crc6_frame(const uint64_t w[3], int j)
{
    uint64_t v = rot63(red63(w[0]), 2) ^ rot63(red63(w[1]), 1) ^ red63(w[2]);
    return rot63(v, 34 - 4 * j);
}

static int crc6_tick(const cb_framer_t *f, int r, uint64_t v)
{
    uint64_t fbits = 0;     /* the F bits as 1 */
    for (int j = 0; j < FR_FRAMES; j++)
        fbits ^= 1ull << (37 - 4 * j);
    v ^= fbits;
    int c = f->crc6_tick[r & 63];
    for (int q = 0; q < 8; q++)
        c ^= f->crc6_pos[q][(v >> (8 * q)) & 0xFF];
    return c;
}

/* ---- the repeat shortcut ------------------------------------------------ */

/* The 31 timeslots of a tick are 8 octets each, `stride` apart. These run every tick of a steady span:
 * a pointer stepped along the timeslots and no early exit (a compare that fails is the rare case), so
 * each timeslot is a load and two operations. put_ts is unrolled: it was most of a repeated received
 * tick's cost (unrolling same_ts changed nothing measured). */

/* Are they each 8 equal octets? */
static int uniform_ts(const uint8_t *ts, int stride)
{
    uint64_t off = 0;
    for (int k = 0; k < FR_E1_TS - 1; k++, ts += stride) {
        uint64_t w = load64(ts);
        off |= w ^ (w & 0xFF) * 0x0101010101010101ull;
    }
    return off == 0;
}

/* Are they the kept ones? */
static int same_ts(const uint8_t *ts, int stride, const uint64_t *kept)
{
    uint64_t diff = 0;
    for (int k = 0; k < FR_E1_TS - 1; k++, ts += stride)
        diff |= load64(ts) ^ kept[k];
    return diff == 0;
}

static void keep_ts(const uint8_t *ts, int stride, uint64_t *kept)
{
    for (int k = 0; k < FR_E1_TS - 1; k++, ts += stride)
        kept[k] = load64(ts);
}

static void put_ts(const uint64_t *kept, uint8_t *ts, int stride)
{
#pragma GCC unroll 30
    for (int k = 0; k < FR_E1_TS - 1; k++, ts += stride)
        memcpy(ts, &kept[k], 8);
}

/* ---- transmit ---------------------------------------------------------- */

static void tx_e1_full(cb_framer_t *f, const uint8_t *ts, int stride, uint8_t *line);

/* E1 transmit: a tick that repeats the kept one of its half (same timeslots, RAI and CRC
 * carried in) sends its line; else the full path, kept when the timeslots are uniform. The
 * E-bits sent for our received CRC errors change the line: such a tick is never kept or
 * answered from memory. */
static int tx_e1(cb_framer_t *f, const uint8_t *ts, int stride, uint8_t *line, int back)
{
    const int smf2 = f->tx_fn >= 8;
    const int rai = f->sending_rai != 0;
    const int idle = ts == NULL;        /* every timeslot the idle octet */
    if (idle) {
        ts = f->idle_ts;
        stride = FR_FRAMES;
    }
    if (!f->repeat || f->cas || (f->crc4 && smf2 && f->ebit_pending > 0)) {
        f->tx_run = 0;
        tx_e1_full(f, ts, stride, line);
        return 0;
    }
    fr_tx_memo_t *m = &f->txm[smf2];
    if (m->valid && m->rai == rai && m->crc_in == f->tx_crc && (idle ? m->idle : same_ts(ts, stride, m->ts))) {
        /* line holds what we sent there `back` ticks ago: from this memo if every tick since
           (that one included) was sent from memory, in the same half (the memos alternate tick by
           tick with CRC-4 or without: an odd `back` is the other half's) */
        const int kept = back > 0 && f->tx_run >= back && !(back & 1);
        if (!kept)
            memcpy(line, m->line, CB_FRAMER_E1_OCTETS);
        f->tx_crc = m->crc_out;
        f->tx_fn = (f->tx_fn + FR_FRAMES) & 15;
        if (f->tx_run < INT32_MAX)
            f->tx_run++;
        return kept;
    }
    f->tx_run = 0;
    const int crc_in = f->tx_crc;
    tx_e1_full(f, ts, stride, line);
    if (uniform_ts(ts, stride)) {
        m->valid = 1;
        m->rai = rai;
        m->crc_in = crc_in;
        m->crc_out = f->tx_crc;
        keep_ts(ts, stride, m->ts);
        m->idle = idle || same_ts(f->idle_ts, FR_FRAMES, m->ts);
        memcpy(m->line, line, CB_FRAMER_E1_OCTETS);
    }
    return 0;
}

static void tx_e1_full(cb_framer_t *f, const uint8_t *ts, int stride, uint8_t *line)
{
    /* TS0 of the 8 frames in a word (one store, forwarded to the transposes' load): FAS, NFAS,
       the C bits (the previous sub-multiframe's CRC; the CRC below skips them), E-bits as 0 for
       our received CRC errors in NFAS frames 13 and 15 */
    int smf2 = f->tx_fn >= 8;
    uint64_t w0 = f->ts0_word[smf2][f->sending_rai != 0], w16 = 0;
    if (f->crc4) {
        w0 |= f->c_word[f->tx_crc & 15];
        for (int j = 5; smf2 && j <= 7 && f->ebit_pending > 0; j += 2) {
            w0 &= ~(0x80ull << (8 * j));
            f->ebit_pending--;
        }
    }
    if (f->cas)     /* the CAS multiframe runs in phase with the CRC-4 one */
        for (int j = 0; j < FR_FRAMES; j++) {
            int c = f->tx_fn + j;
            unsigned o16 = c == 0 ? 0x0Bu | (f->cas_mf ? 0 : 0x04)
                                  : (unsigned) ((f->cas_tx[c] << 4) | f->cas_tx[c + 16]);
            w16 |= (uint64_t) o16 << (8 * j);
        }
    uint8_t ts0[FR_FRAMES], ts16[FR_FRAMES];
    memcpy(ts0, &w0, sizeof ts0);
    memcpy(ts16, &w16, sizeof ts16);
    uint64_t acc;
#if FR_V3
    if (f->v3) {
        acc = tx_e1_v3(ts, stride, ts0, f->cas ? ts16 : NULL, line);
    } else
#endif
    {
        /* timeslot-major to frame-major, 8 timeslots at a time */
        for (int g = 0; g < 4; g++) {
            const uint8_t *in[8];
            uint8_t *out[8];
            for (int r = 0; r < 8; r++) {
                int t = 8 * g + r;
                in[r] = t == 0 ? ts0 : (t == 16 && f->cas) ? ts16 : ts + (ptrdiff_t) (t - 1) * stride;
                out[r] = line + r * FR_E1_TS + 8 * g;
            }
            tr8(in, out);
        }
        const uint8_t *rows[8];
        for (int j = 0; j < 8; j++)
            rows[j] = line + j * FR_E1_TS;
        acc = f->crc4 ? crc4_acc(rows) : 0;
    }
    if (f->crc4)
        f->tx_crc = crc4_finish(f, acc);
    f->tx_fn = (f->tx_fn + FR_FRAMES) & 15;
}

static void tx_t1(cb_framer_t *f, const uint8_t *ts, int stride, uint8_t *line)
{
    int rai = f->sending_rai;
    int period = f->esf ? 24 : 12;
    uint64_t mask = (!f->esf && rai) ? 0xBFBFBFBFBFBFBFBFull : ~0ull;  /* D4 RAI: bit 2 of every channel 0 */
    /* timeslot-major to frame-major: frame j's 24 octets at rows + 24 j */
    uint8_t rows[FR_FRAMES * 24];
    for (int g = 0; g < 3; g++) {
        const uint8_t *in[8];
        uint8_t *out[8];
        for (int r = 0; r < 8; r++) {
            in[r] = ts + (ptrdiff_t) (8 * g + r) * stride;
            out[r] = rows + 24 * r + 8 * g;
        }
        tr8(in, out);
    }
    /* the frames packed: F (as 1 for the CRC-6; set below), then 192 bits, frame after frame */
    uint8_t *o = line;
    uint64_t acc = 0, v = 0;
    int nb = 0;     /* bits waiting in acc, from its MSB */
    for (int j = 0; j < FR_FRAMES; j++) {
        uint64_t w[3];
        acc |= 1ull << (63 - nb);
        nb++;
        for (int q = 0; q < 3; q++) {
            w[q] = load_be64(rows + 24 * j + 8 * q) & mask;
            store_be64(o, acc | (w[q] >> nb));
            o += 8;
            acc = w[q] << (64 - nb);
        }
        if (f->esf)
            v ^= crc6_frame(w, j);
    }
    *o = (uint8_t) (acc >> 56);
    if (f->esf) {
        if (f->tx_fn == 0)
            f->tx_crc_run = 0;
        f->tx_crc_run = crc6_tick(f, f->tx_crc_run, v);
    }
    for (int j = 0; j < FR_FRAMES; j++) {
        int fn = (f->tx_fn + j) % period, fb;
        if (!f->esf) {
            fb = D4_F[fn];
        } else if ((fn & 3) == 3) {
            fb = FPS[fn >> 2];
        } else if ((fn & 3) == 1) {
            fb = (f->tx_crc >> (5 - (fn >> 2))) & 1;
        } else {
            /* FDL: idle all 1s; RAI 1111111100000000 repeated */
            fb = rai ? f->tx_fdl < 8 : 1;
            f->tx_fdl = (f->tx_fdl + 1) & 15;
        }
        if (!fb)
            line[24 * j] &= (uint8_t) ~(1u << (7 - j));
    }
    f->tx_fn = (f->tx_fn + FR_FRAMES) % period;
    if (f->esf && f->tx_fn == 0)
        f->tx_crc = f->tx_crc_run;
}

int cb_framer_tx_kept(cb_framer_t *f, const uint8_t *ts, int stride, uint8_t *line, int back)
{
    int kept = 0;
    if (f->kind == CB_SPAN_E1)
        kept = tx_e1(f, ts, stride, line, back);
    else if (ts == NULL)
        tx_t1(f, f->idle_ts, FR_FRAMES, line);
    else
        tx_t1(f, ts, stride, line);
    if (f->force & CB_FRAMER_SEND_AIS) {
        memset(line, 0xFF, (size_t) f->octets);
        f->tx_run = 0;
        kept = 0;
    }
    return kept;
}

void cb_framer_tx(cb_framer_t *f, const uint8_t *ts, int stride, uint8_t *line)
{
    cb_framer_tx_kept(f, ts, stride, line, 0);
}

/* ---- receive: shared -------------------------------------------------- */

static inline int win_bit(const uint8_t *w, int pos)
{
    return (w[pos >> 3] >> (7 - (pos & 7))) & 1;
}

static inline unsigned win_octet(const uint8_t *w, int pos)
{
    unsigned v = ((unsigned) w[pos >> 3] << 8) | w[(pos >> 3) + 1];
    return (v >> (8 - (pos & 7))) & 0xFF;
}

/* n octets of the window from bit position pos into dst (a whole number of words: up to 7 octets
   more are written, and read from the window after them). */
static void extract(const uint8_t *w, int pos, uint8_t *dst, int n)
{
    const uint8_t *s = w + (pos >> 3);
    int sh = pos & 7;
    if (sh == 0) {
        memcpy(dst, s, (size_t) n);
        return;
    }
    for (int i = 0; i < n; i += 8)
        store_be64(dst + i, (load_be64(s + i) << sh) | (uint64_t) (s[i + 8] >> (8 - sh)));
}

static inline int popcount64(uint64_t v)
{
    v = v - ((v >> 1) & 0x5555555555555555ull);
    v = (v & 0x3333333333333333ull) + ((v >> 2) & 0x3333333333333333ull);
    v = (v + (v >> 4)) & 0x0F0F0F0F0F0F0F0Full;
    return (int) ((v * 0x0101010101010101ull) >> 56);
}

/* Fewer than 3 zeros in each 512-bit part of the tick (G.775). */
static int ais_tick(const uint8_t *line, int n)
{
    for (int part = 0; part + 64 <= n; part += 64) {
        int ones = 0;
        for (int i = 0; i < 64; i += 8)
            ones += popcount64(load64(line + part + i));
        if (512 - ones >= 3)
            return 0;
    }
    return 1;
}

/* The elastic store and the transpose to timeslot octets: rows[0] the previous block's last frame,
   rows[1..8] this block's frames, `fl` octets each, column k timeslot k + col0 (columns outside
   1..nts are dropped). */
static void deliver(cb_framer_t *f, uint8_t *ts, int stride, const uint8_t *const rows[9], int fl, int col0)
{
    if (f->ppb != 0) {
        f->slip_acc += f->ppb * FR_FRAMES;
        if (f->slip_acc >= 1000000000 || f->slip_acc <= -1000000000) {
            f->slip_acc += f->slip_acc > 0 ? -1000000000 : 1000000000;
            f->es_level ^= 1;   /* 1 -> 0 drops a frame, 0 -> 1 repeats one */
            if (f->ever_aligned)
                f->cnt.slips++;
        }
    }
    const uint8_t *const *src = rows + (1 - f->es_level);
    int k0 = 1 - col0, k1 = f->nts + 1 - col0;   /* the columns that are timeslots 1..nts */
#if FR_V3
    if (f->v3) {
        rx_cols_v3(src, ts, stride, k0, k1);   /* reads 32 octets a row: T1 rows are followed by more of blk */
    } else
#endif
    {
        uint8_t sink[8];
        for (int g = 0; 8 * g < fl; g++) {
            const uint8_t *in[8];
            uint8_t *out[8];
            for (int r = 0; r < 8; r++) {
                int k = 8 * g + r;
                in[r] = src[r] + 8 * g;
                out[r] = k >= k0 && k < k1 ? ts + (ptrdiff_t) (k - k0) * stride : sink;
            }
            tr8(in, out);
        }
    }
    memcpy(f->blk, rows[8], (size_t) fl);
}

static void deliver_idle(cb_framer_t *f, uint8_t *ts, int stride)
{
    for (int t = 0; t < f->nts; t++)
        memset(ts + t * stride, f->idle, FR_FRAMES);
}

static void lose_frame(cb_framer_t *f)
{
    f->aligned = 0;
    f->mf = 0;
    f->cas_mf = 0;
    f->fas_bad = 0;
    f->ferr = 0;
    f->crc_prev = -1;
    f->mf_last = -1;
    f->si_hist = 0;
    f->fa_blocks = f->fa_errors = 0;
    f->crc6_prev = -1;
    memset(f->t1_hist, 0, sizeof f->t1_hist);
    memset(f->t1_hist4, 0, sizeof f->t1_hist4);
    f->t1_hist_n = 0;
}

static void count_crc(cb_framer_t *f)
{
    f->cnt.crc++;
    f->sec_crc++;
}

/* ---- receive: E1 ------------------------------------------------------- */

/* Search the window for FAS, NFAS bit 2 = 1, FAS from f->search_from on. */
static void e1_search(cb_framer_t *f)
{
    const int last = 2 * 8 * CB_FRAMER_E1_OCTETS - 2 * 8 * FR_E1_TS - 8;
    for (int p = f->search_from; p <= last; p++) {
        if ((win_octet(f->win, p) & 0x7F) != 0x1B)
            continue;
        if (!(win_octet(f->win, p + 256) & 0x40))
            continue;
        if ((win_octet(f->win, p + 512) & 0x7F) != 0x1B)
            continue;
        f->aligned = 1;
        f->ever_aligned = 1;
        f->fas_bad = 0;
        f->nfas = 0;
        f->mf_last = -1;
        f->mf = 0;
        f->crc_prev = -1;
        f->cas_mf = 0;
        f->cas_bad = 0;
        f->cas_prev_hi = 0xF;
        if (p < 8 * CB_FRAMER_E1_OCTETS) {
            f->off = p;
            f->deliver = 1;
        } else {
            f->off = p - 8 * CB_FRAMER_E1_OCTETS;
            f->deliver = 0;
        }
        return;
    }
    f->search_from = last + 1 - 8 * CB_FRAMER_E1_OCTETS;
}

static void e1_cas_frame(cb_framer_t *f, unsigned o)
{
    unsigned hi = o >> 4;
    if (f->cas_mf) {
        if (f->cas_fn == 0) {
            if (hi != 0) {
                if (++f->cas_bad >= 2)
                    f->cas_mf = 0;
            } else {
                f->cas_bad = 0;
            }
        } else if (hi != 0) {   /* 0000 in bits 1-4 only as MFAS */
            int a = f->cas_fn, b = f->cas_fn + 16;
            if (f->cas_rx[a] != hi) {
                f->cas_rx[a] = (uint8_t) hi;
                f->cas_changed |= 1u << a;
            }
            if (f->cas_rx[b] != (o & 0xF)) {
                f->cas_rx[b] = (uint8_t) (o & 0xF);
                f->cas_changed |= 1u << (b - 1);
            }
        }
    }
    if (!f->cas_mf && hi == 0 && f->cas_prev_hi != 0) {
        f->cas_mf = 1;
        f->cas_bad = 0;
        f->cas_fn = 0;
    }
    f->cas_prev_hi = (int) hi;
    f->cas_fn = (f->cas_fn + 1) & 15;
}

/* The CRC-4 multiframe search on the NFAS Si bits of this block (block frames 1, 3, 5, 7). */
static void e1_mf_search(cb_framer_t *f, const uint8_t *const fr[8])
{
    for (int k = 0; k < 4; k++) {
        int si = fr[2 * k + 1][0] >> 7;
        f->si_hist = ((f->si_hist << 1) | si) & 0x3F;
        f->nfas++;
        if (f->si_hist != 0x0B || f->nfas < 6)
            continue;
        int64_t d = f->nfas - f->mf_last;
        if (f->mf_last >= 0 && d % 8 == 0 && d <= 4 * FR_MF_WINDOW_MS) {
            /* the NFAS at block frame 2k+1 is MF frame 11: block frame 0 is MF frame m */
            int m = (11 - (2 * k + 1)) & 15;
            int dfr = (8 - (m & 7)) & 7;   /* frames to move so that a block is one SMF */
            int next = f->off + dfr * 256;
            int cas_adv = dfr;
            if (next >= 8 * CB_FRAMER_E1_OCTETS) {
                next -= 8 * CB_FRAMER_E1_OCTETS;
                f->fn0 = (m + dfr) & 15;
                cas_adv = dfr - 8;
            } else {
                f->fn0 = (m + 8 + dfr) & 15;
            }
            f->off = next;
            f->cas_fn = (f->cas_fn + cas_adv + 16) & 15;
            f->mf = 1;
            f->crc_prev = -1;
            f->lmfa_ms = 0;
            f->fa_blocks = f->fa_errors = 0;
            return;
        }
        f->mf_last = f->nfas;
    }
}

/* The window is the last tick's line (f->win; while aligned on an octet, only from the block's
   first octet on) and this tick's, cur: f->win + 256 when copied there (not aligned, or aligned
   off an octet boundary), else the caller's line. rows[1 + j] gets frame j of the block, rows[0]
   the previous block's last frame (the elastic store's): in place, a frame across the two ticks
   gathered into f->row_tmp, or, off an octet boundary, the block extracted into f->blk + 32. */
static void e1_rows(cb_framer_t *f, const uint8_t *cur, const uint8_t *rows[9])
{
    rows[0] = f->blk;
    if (f->off & 7) {
        uint8_t *b = f->blk + FR_E1_TS;
        extract(f->win, f->off, b, CB_FRAMER_E1_OCTETS);
        for (int j = 0; j < FR_FRAMES; j++)
            rows[1 + j] = b + j * FR_E1_TS;
        return;
    }
    const int n = CB_FRAMER_E1_OCTETS;
    int base = f->off >> 3;
    for (int j = 0; j < FR_FRAMES; j++) {
        int pos = base + j * FR_E1_TS;
        if (pos + FR_E1_TS <= n || cur == f->win + n) {
            rows[1 + j] = f->win + pos;
        } else if (pos >= n) {
            rows[1 + j] = cur + (pos - n);
        } else {
            memcpy(f->row_tmp, f->win + pos, (size_t) (n - pos));
            memcpy(f->row_tmp + (n - pos), cur, (size_t) (pos + FR_E1_TS - n));
            rows[1 + j] = f->row_tmp;
        }
    }
}

/* Search again from bit `from` of the whole window (this tick's line copied into it). */
static void e1_research(cb_framer_t *f, const uint8_t *cur, int from)
{
    lose_frame(f);
    if (cur != f->win + CB_FRAMER_E1_OCTETS)
        memcpy(f->win + CB_FRAMER_E1_OCTETS, cur, CB_FRAMER_E1_OCTETS);
    f->search_from = from;
    e1_search(f);
}

static void rx_e1(cb_framer_t *f, const uint8_t *cur, uint8_t *ts, int stride)
{
    if (!f->aligned) {
        e1_search(f);
        if (!f->aligned || !f->deliver) {
            deliver_idle(f, ts, stride);
            return;
        }
    }
    const uint8_t *rows[9];
    e1_rows(f, cur, rows);
    const uint8_t *const *fr = rows + 1;
    for (int k = 0; k < 4; k++) {
        if ((fr[2 * k][0] & 0x7F) == 0x1B) {
            f->fas_bad = 0;
            continue;
        }
        f->cnt.fas++;
        if (++f->fas_bad >= 3) {
            e1_research(f, cur, f->off + k * 512 + 1);
            deliver_idle(f, ts, stride);
            return;
        }
    }
    f->rai_rx = (fr[1][0] & fr[3][0] & fr[5][0] & fr[7][0] & 0x20) != 0;
    if (f->cas)   /* before the MF search, which may move the frame window */
        for (int j = 0; j < FR_FRAMES; j++)
            e1_cas_frame(f, fr[j][16]);
    int reframe = 0;
    if (f->crc4) {
        if (f->mf) {
            int smf2 = f->fn0 >= 8;
            int c = 0;
            for (int k = 0; k < 4; k++)
                c = (c << 1) | (fr[2 * k][0] >> 7);
            if (smf2)
                for (int k = 2; k < 4; k++)
                    if (!(fr[2 * k + 1][0] & 0x80))
                        f->cnt.ebit++;
            int err = 0;
            if (f->crc_prev >= 0 && c != f->crc_prev) {
                err = 1;
                count_crc(f);
                if (f->ebit_pending < 1000)
                    f->ebit_pending++;
            }
            f->crc_prev = crc4_rows(f, fr);
            f->fn0 ^= 8;
            f->fa_errors += err;
            if (++f->fa_blocks == FR_FALSE_BLOCKS) {
                reframe = f->fa_errors >= FR_FALSE_ERRORS;
                f->fa_blocks = f->fa_errors = 0;
            }
        } else {
            if (f->lmfa_ms < FR_LMFA_MS)
                f->lmfa_ms++;
            e1_mf_search(f, fr);
        }
    }
    if (reframe) {
        e1_research(f, cur, f->off + 1);
        deliver_idle(f, ts, stride);
        return;
    }
    deliver(f, ts, stride, rows, FR_E1_TS, 0);
}

/* ---- receive: T1 ------------------------------------------------------- */

static inline int popcount16(unsigned v)
{
    return popcount64((uint64_t) (v & 0xFFFF));
}

/* v (16 bits) is a rotation of 1111111100000000: 8 ones in one cyclic run (two changes). */
static int is_rai_fdl(int v)
{
    unsigned u = (unsigned) v & 0xFFFF;
    unsigned rot = ((u << 1) | (u >> 15)) & 0xFFFF;
    return popcount16(u) == 8 && popcount16(u ^ rot) == 2;
}

/* Push this tick's F-bit candidates and look for the framing pattern. */
static void t1_search(cb_framer_t *f)
{
    const uint8_t *cur = f->win + CB_FRAMER_T1_OCTETS;
    for (int j = 0; j < FR_FRAMES; j++)
        for (int c = 0; c < FR_T1_BITS; c++) {
            int bit = win_bit(cur, FR_T1_BITS * j + c);
            f->t1_hist[c] = (f->t1_hist[c] << 1) | (uint64_t) bit;
            f->t1_hist4[c][j & 3] = (f->t1_hist4[c][j & 3] << 1) | (uint32_t) bit;
        }
    if (++f->t1_hist_n < (f->esf ? 12 : 6))
        return;
    uint64_t d4[12];
    uint32_t fps[6];
    for (int r = 0; r < 12; r++) {
        d4[r] = 0;
        for (int i = 47; i >= 0; i--)
            d4[r] = (d4[r] << 1) | D4_F[((r - i) % 12 + 12) % 12];
    }
    for (int r = 0; r < 6; r++) {
        fps[r] = 0;
        for (int i = 23; i >= 0; i--)
            fps[r] = (fps[r] << 1) | FPS[((r - i) % 6 + 6) % 6];
    }
    for (int c = 0; c < FR_T1_BITS; c++) {
        int fn7 = -1;   /* frame number (0-based) of this tick's frame 7 at c */
        if (!f->esf) {
            uint64_t h = f->t1_hist[c] & 0xFFFFFFFFFFFFull;
            for (int r = 0; r < 12 && fn7 < 0; r++)
                if (h == d4[r])
                    fn7 = r;
        } else {
            for (int m = 0; m < 4 && fn7 < 0; m++) {
                uint32_t h = f->t1_hist4[c][m] & 0xFFFFFF;
                for (int r = 0; r < 6; r++) {
                    if (h == fps[r]) {
                        /* newest bit of residue m is from frame 4 + m, an FPS frame: 4r + 3 */
                        fn7 = (4 * r + 3 + (7 - (4 + m))) % 24;
                        break;
                    }
                }
            }
        }
        if (fn7 < 0)
            continue;
        int period = f->esf ? 24 : 12;
        /* window frame i (0..15) starts at c + 193 i; i = 15 is this tick's frame 7 */
        int i0 = 0;
        if (f->esf)
            for (int i = 0; i < 8; i++)
                if (((fn7 - (15 - i)) % 24 + 24) % 24 % 8 == 0)
                    i0 = i;
        f->off = c + FR_T1_BITS * i0;
        f->fn0 = ((fn7 - (15 - i0)) % period + period) % period;
        f->aligned = 1;
        f->ever_aligned = 1;
        f->ferr = 0;
        f->crc6_prev = -1;
        f->crc6_rx = 0;
        f->crc6_run = -1;
        return;
    }
}

/* 64 bits of the window from bit position pos, the first in the MSB. */
static inline uint64_t win_word(const uint8_t *w, int pos)
{
    const uint8_t *p = w + (pos >> 3);
    int sh = pos & 7;
    return (load_be64(p) << sh) | (uint64_t) (p[8] >> (8 - sh));
}

static void rx_t1(cb_framer_t *f, uint8_t *ts, int stride)
{
    if (!f->aligned) {
        t1_search(f);
        if (!f->aligned) {
            deliver_idle(f, ts, stride);
            return;
        }
    }
    int period = f->esf ? 24 : 12;
    uint8_t *b = f->blk + 24;
    uint64_t any = 0, v = 0;
    for (int j = 0; j < FR_FRAMES; j++) {
        uint64_t w[3];
        for (int q = 0; q < 3; q++) {
            w[q] = win_word(f->win, f->off + FR_T1_BITS * j + 1 + 64 * q);
            store_be64(b + 24 * j + 8 * q, w[q]);
            any |= w[q];
        }
        v ^= crc6_frame(w, j);
    }
    int rai = 1;
    for (int j = 0; j < FR_FRAMES; j++) {
        int fb = win_bit(f->win, f->off + FR_T1_BITS * j);
        int fn = (f->fn0 + j) % period;
        int bad = -1;
        if (!f->esf) {
            bad = fb != D4_F[fn];
        } else if ((fn & 3) == 3) {
            bad = fb != FPS[fn >> 2];
        } else if ((fn & 3) == 1) {
            f->crc6_rx |= fb << (5 - (fn >> 2));
        } else {
            f->fdl = ((f->fdl << 1) | fb) & 0xFFFF;
            if (!is_rai_fdl(f->fdl))
                rai = 0;
        }
        if (bad >= 0) {
            f->ferr = ((f->ferr << 1) | bad) & 0xF;
            if (bad)
                f->cnt.fas++;
            if (popcount64((uint64_t) f->ferr) >= 2) {
                lose_frame(f);
                deliver_idle(f, ts, stride);
                return;
            }
        }
    }
    /* D4 RAI: bit 2 of every channel 0 in the tick */
    f->rai_rx = f->esf ? rai : !(any & 0x4040404040404040ull);
    if (f->esf) {
        if (f->fn0 == 0)
            f->crc6_run = 0;
        if (f->crc6_run >= 0)   /* -1: this ESF began before the alignment */
            f->crc6_run = crc6_tick(f, f->crc6_run, v);
        if (f->fn0 == 16) {
            if (f->crc6_prev >= 0 && f->crc6_rx != f->crc6_prev)
                count_crc(f);
            f->crc6_prev = f->crc6_run;
            f->crc6_rx = 0;
        }
    }
    f->fn0 = (f->fn0 + FR_FRAMES) % period;
    const uint8_t *rows[9];
    for (int j = 0; j <= FR_FRAMES; j++)
        rows[j] = f->blk + 24 * j;
    deliver(f, ts, stride, rows, 24, 1);
}

/* ---- alarms ------------------------------------------------------------- */

static void alarm_tick_full(cb_framer_t *f, int los)
{
    int64_t now = ++f->now;
    int lof = !f->aligned;
    int ais = f->ais_now;
    int present[FR_D_N] = {
        los || (lof && !ais),
        ais && !los,
        !lof && f->rai_rx,
    };
    for (int d = 0; d < FR_D_N; d++)
        if (present[d]) {
            f->last[d] = now;
            if (f->since[d] < 0)
                f->since[d] = now;
        }
    if (los)
        f->last_los = now;
    if (lof)
        f->last_lof = now;
    if (f->ever_aligned && (los || lof || ais))
        f->sec_defect = 1;
    if (++f->sec_ticks == 1000) {
        if (f->ever_aligned) {
            int thr = f->kind == CB_SPAN_E1 ? 805 : 320;
            if (f->sec_crc > 0 || f->sec_defect)
                f->cnt.es++;
            if (f->sec_crc >= thr || f->sec_defect)
                f->cnt.ses++;
        }
        f->sec_ticks = 0;
        f->sec_crc = 0;
        f->sec_defect = 0;
    }
    if ((f->alarms & CB_ALARM_RECOVER) && now >= f->recover_until)
        f->alarms &= ~(uint32_t) CB_ALARM_RECOVER;
    if (--f->check_in <= 0) {
        static const uint32_t bit[FR_D_N] = {CB_ALARM_RED, CB_ALARM_BLUE, CB_ALARM_YELLOW};
        static const int64_t persist[FR_D_N] = {CB_FRAMER_RED_MS, CB_FRAMER_RED_MS, CB_FRAMER_YELLOW_MS};
        uint32_t a = f->alarms;
        for (int d = 0; d < FR_D_N; d++) {
            if (f->since[d] >= 0 && now - f->last[d] >= FR_CLEAR_MS)
                f->since[d] = -1;
            if (f->since[d] < 0) {
                if ((a & bit[d]) && d != FR_D_YELLOW) {
                    a |= CB_ALARM_RECOVER;
                    f->recover_until = now + CB_FRAMER_RECOVER_MS;
                }
                a &= ~bit[d];
            } else if (now - f->since[d] >= persist[d]) {
                if (!(a & bit[d]) && d != FR_D_YELLOW)
                    a &= ~(uint32_t) CB_ALARM_RECOVER;
                a |= bit[d];
            }
        }
        a &= ~(uint32_t) (CB_ALARM_LOS | CB_ALARM_LFA | CB_ALARM_LMFA);
        if (now - f->last_los < FR_CLEAR_MS)
            a |= CB_ALARM_LOS;
        if (now - f->last_lof < FR_CLEAR_MS)
            a |= CB_ALARM_LFA;
        /* LMFA: the basic frame kept without a CRC-4 multiframe (not a defect of a line with no frame) */
        if (f->crc4 && !(a & CB_ALARM_LFA) && f->aligned && !f->mf && f->lmfa_ms >= FR_LMFA_MS)
            a |= CB_ALARM_LMFA;
        f->alarms = a;
        f->check_in = (a & (CB_ALARM_RED | CB_ALARM_BLUE | CB_ALARM_YELLOW | CB_ALARM_RECOVER)) ? 100 : 50;
    }
    f->sending_rai = (f->force & CB_FRAMER_SEND_RAI)
                     || (f->alarms & (CB_ALARM_RED | CB_ALARM_BLUE | CB_ALARM_RECOVER));
}

/* n alarm ticks with nothing to do (no defect, nothing to recover from, no check and no second
   ending among them): the clock moves on as n full ticks would move it */
static inline void alarm_ticks_quiet(cb_framer_t *f, int n)
{
    f->now += n;
    f->sec_ticks += n;
    f->check_in -= n;
    f->sending_rai = (f->force & CB_FRAMER_SEND_RAI) || (f->alarms & (CB_ALARM_RED | CB_ALARM_BLUE));
}

/* A tick of the alarm clock: such a tick without a call, else the full one. */
static inline void alarm_tick(cb_framer_t *f, int los)
{
    if (!los && f->aligned && !f->ais_now && !f->rai_rx && !(f->alarms & CB_ALARM_RECOVER) && f->check_in > 1
        && f->sec_ticks < 999) {
        alarm_ticks_quiet(f, 1);
        return;
    }
    alarm_tick_full(f, los);
}

/* E1 receive, aligned on an octet, steady (no slips, CRC-4 multiframe kept, not at the end of a
 * false-alignment window): may the kept tick of this half be reused? */
static int rx_e1_steady(const cb_framer_t *f)
{
    return f->kind == CB_SPAN_E1 && f->repeat && !f->cas && f->aligned && !(f->off & 7) && f->ppb == 0
           && (!f->crc4 || (f->mf && f->fa_blocks + 1 < FR_FALSE_BLOCKS));
}

static fr_rx_memo_t *rx_memo(cb_framer_t *f)
{
    return &f->rxm[f->crc4 ? f->fn0 >= 8 : 0];
}

/* Are two E1 frames (32 octets) the same? Four words, no call. */
static inline int same_frame(const uint8_t *a, const uint8_t *b)
{
    uint64_t d = 0;
    for (int q = 0; q < FR_E1_TS; q += 8)
        d |= load64(a + q) ^ load64(b + q);
    return d == 0;
}

/* A received tick that repeats the kept one of its half: the same line after the same line, the
 * same frame in the elastic store and CRC carried in. Its effects are the kept tick's: all FAS
 * good, no CRC error, the same RAI bits, timeslots and store. */
static int rx_e1_repeat(cb_framer_t *f, const uint8_t *line, uint8_t *ts, int stride, int back)
{
    const fr_rx_memo_t *m = rx_memo(f);
    const int keep = f->off >> 3;
    /* The line is the one read `back` ticks ago (unchanged, its sender says) in the same half,
       every tick since received from memory: it matched this memo then. Three such ticks in a
       row: the last line is the other half's memo line, which this memo's prev matched. */
    const int same_line = back > 0 && f->rx_run >= back && (!f->crc4 || !(back & 1));
    if (!m->valid || m->off != f->off || m->es_level != f->es_level || (f->crc4 && m->crc_in != f->crc_prev)
        || (!same_line && memcmp(line, m->line, CB_FRAMER_E1_OCTETS) != 0)
        || !same_frame(f->blk, m->blk_in)
        || (f->rx_run < 3 && memcmp(f->win + keep, m->prev + keep, (size_t) (CB_FRAMER_E1_OCTETS - keep)) != 0))
        return 0;
    f->win_half = (int) (m - f->rxm);
    f->fas_bad = 0;
    f->rai_rx = m->rai_rx;
    if (f->crc4) {
        f->crc_prev = m->crc_out;
        f->fn0 ^= 8;
        f->fa_blocks++;
    }
    if (ts != NULL)
        put_ts(m->ts, ts, stride);
    memcpy(f->blk, m->blk_out, FR_E1_TS);
    return 1;
}

void cb_framer_rx_kept(cb_framer_t *f, const uint8_t *line, int nosig, uint8_t *ts, int stride, int back)
{
    int n = f->octets;
    const int unwanted = ts == NULL;    /* the timeslots go nowhere (a repeat writes none) */
    if (unwanted) {
        ts = f->sink_ts;
        stride = FR_FRAMES;
    }
    if (nosig) {
        f->rx_run = f->win_lazy = 0;
        memset(f->win, 0, (size_t) n);  /* the last line, for the next tick */
        if (f->aligned)
            lose_frame(f);
        f->search_from = 0;
        f->ais_now = 0;
        f->rai_rx = 0;
        if (f->crc4 && f->lmfa_ms < FR_LMFA_MS)
            f->lmfa_ms++;
        deliver_idle(f, ts, stride);
        alarm_tick(f, 1);
        return;
    }
    /* a steady E1 tick: from memory when it repeats, else kept if it qualifies (below) */
    const int steady = rx_e1_steady(f);
    if (steady && rx_e1_repeat(f, line, unwanted ? NULL : ts, stride, back)) {
        if (f->rx_run >= 3) {
            f->win_lazy = 1;            /* the last line is the memo's: copied only when needed */
        } else {
            const int keep = f->off >> 3;
            f->win_lazy = 0;
            memcpy(f->win + keep, line + keep, (size_t) (n - keep));
        }
        if (f->rx_run < INT32_MAX)
            f->rx_run++;
        f->ais_now = 0;
        alarm_tick(f, 0);
        return;
    }
    fr_win_settle(f);
    f->rx_run = 0;
    uint8_t blk_in[FR_E1_TS];
    const int off0 = f->off, crc_in = f->crc_prev;
    const uint64_t errors0 = f->cnt.fas + f->cnt.crc + f->cnt.ebit;
    if (steady)
        memcpy(blk_in, f->blk, sizeof blk_in);
    /* the window: f->win holds the last tick's line; this one follows it there unless E1 is
       aligned on an octet boundary (then it is read in place) */
    const uint8_t *cur = line;
    if (f->kind != CB_SPAN_E1 || !f->aligned || (f->off & 7)) {
        memcpy(f->win + n, line, (size_t) n);
        cur = f->win + n;
    }
    f->rai_rx = 0;
    if (f->kind == CB_SPAN_E1)
        rx_e1(f, cur, ts, stride);
    else
        rx_t1(f, ts, stride);
    /* kept: a steady tick that stayed so, with no error, whose timeslots are all uniform */
    if (steady && f->aligned && f->off == off0 && (!f->crc4 || f->mf) && f->ppb == 0
        && f->cnt.fas + f->cnt.crc + f->cnt.ebit == errors0 && uniform_ts(ts, stride)) {
        fr_rx_memo_t *m = &f->rxm[f->crc4 ? (f->fn0 ^ 8) >= 8 : 0];   /* the half this tick was */
        const int k = off0 >> 3;
        m->valid = 1;
        m->off = off0;
        m->crc_in = crc_in;
        m->crc_out = f->crc_prev;
        m->rai_rx = f->rai_rx;
        m->es_level = f->es_level;
        memcpy(m->prev + k, f->win + k, (size_t) (n - k));
        memcpy(m->line, line, (size_t) n);
        memcpy(m->blk_in, blk_in, sizeof blk_in);
        memcpy(m->blk_out, f->blk, FR_E1_TS);
        keep_ts(ts, stride, m->ts);
    }
    /* this line becomes the last one; aligned on an octet, only from the block's first octet on */
    int keep = f->kind == CB_SPAN_E1 && f->aligned && !(f->off & 7) ? f->off >> 3 : 0;
    memcpy(f->win + keep, cur + keep, (size_t) (n - keep));
    /* a framed signal has zeros in every 512 bits: count them only when not aligned */
    f->ais_now = f->aligned ? 0 : ais_tick(line, n);
    if (!f->aligned && f->crc4 && f->lmfa_ms < FR_LMFA_MS)
        f->lmfa_ms++;
    alarm_tick(f, 0);
}

void cb_framer_rx(cb_framer_t *f, const uint8_t *line, int nosig, uint8_t *ts, int stride)
{
    cb_framer_rx_kept(f, line, nosig, ts, stride, 0);
}

/* ---- runs of repeated ticks ------------------------------------------- */

/* ticks in a row, saturating */
static inline int run_plus(int run, int n)
{
    return run > INT32_MAX - n ? INT32_MAX : run + n;
}

int cb_framer_tx_run(cb_framer_t *f, const uint8_t *ts, int stride, int step, int ticks, int back)
{
    if (f->kind != CB_SPAN_E1 || !f->repeat || f->cas || (f->force & CB_FRAMER_SEND_AIS) || ticks < 1
        || back <= 0 || (back & 1) || f->tx_run < back || (f->crc4 && f->ebit_pending > 0))
        return 0;
    /* tick by tick while each is its half's memo (the same timeslots, RAI and CRC carried in):
       its line is in place already */
    const int rai = f->sending_rai != 0;
    int n = 0, fn = f->tx_fn, crc = f->tx_crc;
    for (; n < ticks; n++) {
        const fr_tx_memo_t *m = &f->txm[fn >= 8];
        if (!m->valid || m->rai != rai || m->crc_in != crc
            || (ts == NULL ? !m->idle : !same_ts(ts + (size_t) n * (size_t) step, stride, m->ts)))
            break;
        crc = m->crc_out;
        fn = (fn + FR_FRAMES) & 15;
    }
    f->tx_crc = crc;
    f->tx_fn = fn;
    f->tx_run = run_plus(f->tx_run, n);
    return n;
}

int cb_framer_rx_run(cb_framer_t *f, int ticks, int back, uint8_t *ts, int stride, int step)
{
    if (!rx_e1_steady(f) || ticks < 1 || back <= 0 || f->rx_run < back || f->rx_run < 3
        || (f->crc4 && (back & 1)) || (f->alarms & CB_ALARM_RECOVER))
        return 0;
    /* as far as each tick's alarm tick has nothing to do: before the next alarm check, the
       second's end and the false-alignment window's end */
    int lim = ticks;
    if (lim > f->check_in - 1)
        lim = f->check_in - 1;
    if (lim > 999 - f->sec_ticks)
        lim = 999 - f->sec_ticks;
    if (f->crc4 && lim > FR_FALSE_BLOCKS - 1 - f->fa_blocks)
        lim = FR_FALSE_BLOCKS - 1 - f->fa_blocks;
    /* tick by tick while each repeats its half's memo (the same offset, store level, CRC and
       store frame carried in, no RAI received) */
    const fr_rx_memo_t *last = NULL;
    int n = 0, fn0 = f->fn0, crc = f->crc_prev;
    const uint8_t *blk = f->blk;
    for (; n < lim; n++) {
        const fr_rx_memo_t *m = &f->rxm[f->crc4 ? fn0 >= 8 : 0];
        if (!m->valid || m->off != f->off || m->es_level != f->es_level || m->rai_rx
            || (f->crc4 && m->crc_in != crc) || !same_frame(blk, m->blk_in))
            break;
        if (ts != NULL)
            put_ts(m->ts, ts + (size_t) n * (size_t) step, stride);
        crc = m->crc_out;
        blk = m->blk_out;
        fn0 ^= 8;
        last = m;
    }
    if (n == 0)
        return 0;
    f->win_half = (int) (last - f->rxm);
    f->fas_bad = 0;
    f->rai_rx = 0;
    if (f->crc4) {
        f->crc_prev = crc;
        f->fn0 = fn0;
        f->fa_blocks += n;
    }
    memcpy(f->blk, last->blk_out, FR_E1_TS);
    f->win_lazy = 1;
    f->rx_run = run_plus(f->rx_run, n);
    f->ais_now = 0;
    alarm_ticks_quiet(f, n);
    return n;
}
