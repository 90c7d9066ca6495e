/*
 * cb_g711.h - G.711 A-law and µ-law companding.
 *
 * The reference conversions (cb_lin2alaw() and friends) compute each code from
 * the segment rules of ITU-T G.711. The media chain uses the static inline
 * *_fast() versions below, which read constant tables with the same results:
 * decoding is one 256-entry table per law; encoding is one table indexed by
 * the top bits of the linear sample, the only bits a code depends on. A-law:
 * x >> 4, 4096 entries. µ-law: the code of x is the code of |x| with the sign
 * bit set for x >= 0, and it depends on (|x| + 4) >> 3 only (the bias of 132
 * puts the decision points at 4 mod 8), so one 4097-entry table of the
 * segment and mantissa bits serves both signs. The tables are defined in
 * dsp/src/tick/g711_tick.c.
 *
 * Codes are as sent on the line: A-law with the even bits inverted (XOR 0x55),
 * µ-law with all bits inverted. linear 0 encodes as 0xD5 (A-law) and 0xFF
 * (µ-law). A full-scale sine is +3.14 dBm0 (A-law) and +3.17 dBm0 (µ-law).
 */
#ifndef CB_G711_H
#define CB_G711_H

#include <stdint.h>

/* CDEF BEGIN */
/*! \brief Encode one linear sample as A-law (G.711 segment rules).
    \param x 16-bit linear sample.
    \return the A-law code, even bits inverted. */
uint8_t cb_lin2alaw(int16_t x);
/*! \brief Decode one A-law code.
    \param a the A-law code, even bits inverted.
    \return the 16-bit linear value (the middle of the code's interval). */
int16_t cb_alaw2lin(uint8_t a);
/*! \brief Encode one linear sample as µ-law (G.711 segment rules).
    \param x 16-bit linear sample.
    \return the µ-law code, all bits inverted. */
uint8_t cb_lin2ulaw(int16_t x);
/*! \brief Decode one µ-law code.
    \param u the µ-law code, all bits inverted.
    \return the 16-bit linear value. */
int16_t cb_ulaw2lin(uint8_t u);

/*! \brief Decode a block of G.711 codes.
    \param law CB_LAW_ALAW or CB_LAW_ULAW (enum cb_law); any other value decodes as µ-law.
    \param in n codes.
    \param out n linear samples.
    \param n number of samples. */
void cb_g711_decode(int law, const uint8_t *in, int16_t *out, int n);
/*! \brief Encode a block of linear samples as G.711.
    \param law CB_LAW_ALAW or CB_LAW_ULAW (enum cb_law); any other value encodes as µ-law.
    \param in n linear samples.
    \param out n codes.
    \param n number of samples. */
void cb_g711_encode(int law, const int16_t *in, uint8_t *out, int n);
/* CDEF END */

#define CB_G711_ALAW_ENC_SIZE 4096   /* entries: index (x >> 4) + 2048 */
#define CB_G711_ULAW_ENC_SIZE 4097   /* entries: index (|x| + 4) >> 3 */

/*! A-law code -> linear (256 entries). */
extern const int16_t cb_g711_alaw_dec[256];
/*! µ-law code -> linear (256 entries). */
extern const int16_t cb_g711_ulaw_dec[256];
/*! Linear -> A-law code, indexed by (x >> 4) + 2048. */
extern const uint8_t cb_g711_alaw_enc[CB_G711_ALAW_ENC_SIZE];
/*! |linear| -> µ-law segment and mantissa bits (0..0x7F, before the line
    inversion), indexed by (|x| + 4) >> 3, |x| up to 32768. */
extern const uint8_t cb_g711_ulaw_enc[CB_G711_ULAW_ENC_SIZE];

/*! \brief A-law code to linear, by table. */
static inline int16_t cb_alaw2lin_fast(uint8_t a)
{
    return cb_g711_alaw_dec[a];
}

/*! \brief µ-law code to linear, by table. */
static inline int16_t cb_ulaw2lin_fast(uint8_t u)
{
    return cb_g711_ulaw_dec[u];
}

/*! \brief Linear to A-law code, by table (same result as cb_lin2alaw()). */
static inline uint8_t cb_lin2alaw_fast(int16_t x)
{
    return cb_g711_alaw_enc[(x >> 4) + 2048];
}

/*! \brief Linear to µ-law code, by table (same result as cb_lin2ulaw()). */
static inline uint8_t cb_lin2ulaw_fast(int16_t x)
{
    int s = x >> 15;                /* 0 for x >= 0, -1 for x < 0 */
    int m = (x ^ s) - s;            /* |x|, 0..32768 */
    return (uint8_t) (cb_g711_ulaw_enc[(m + 4) >> 3] ^ (0xFF ^ (s & 0x80)));
}

#endif
