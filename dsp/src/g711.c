/*
 * g711.c - the reference G.711 conversions, computed from the segment rules.
 *
 * A-law: the 16-bit sample is taken as a 13-bit one (x >> 3); its 12-bit
 * magnitude falls in one of 8 segments, segment 0 and 1 with a step of 2,
 * segment k > 1 with a step of 2^k. Negative samples are folded with -x - 1
 * (one's complement), so every code covers the same number of inputs on both
 * sides. µ-law: the magnitude |x| plus a bias of 132 (33 on the 14-bit scale)
 * is split at its top bit into segment and 4-bit mantissa; magnitudes above
 * 32635 clip to the last code. The code of x < 0 is the code of |x| with the
 * sign bit cleared; linear -1..-3 encode as 0x7F, the µ-law negative zero.
 */
#include "cb_g711.h"

#define ALAW_AMI 0x55   /* A-law: even bits inverted on the line */
#define ULAW_BIAS 0x84  /* µ-law bias on the 16-bit scale (33 << 2) */

/* Index of the highest set bit of v > 0. */
static int top_bit(unsigned v)
{
    return 31 - __builtin_clz(v);
}

uint8_t cb_lin2alaw(int16_t x)
{
    int v = x;
    int mask;
    if (v >= 0) {
        mask = ALAW_AMI | 0x80;
    } else {
        mask = ALAW_AMI;
        v = -v - 1;
    }
    /* v is 0..32767; segment 0 covers v < 512 (mantissa v >> 4). */
    int seg = top_bit((unsigned) v | 0xFFU) - 7;   /* 0..7 */
    int mant = seg == 0 ? (v >> 4) & 0x0F : (v >> (seg + 3)) & 0x0F;
    return (uint8_t) (((seg << 4) | mant) ^ mask);
}

int16_t cb_alaw2lin(uint8_t a)
{
    int c = a ^ ALAW_AMI;
    int seg = (c & 0x70) >> 4;
    int v = ((c & 0x0F) << 4) + 8;     /* middle of the interval, segment 0 */
    if (seg != 0)
        v = (v + 0x100) << (seg - 1);
    return (int16_t) ((c & 0x80) ? v : -v);
}

uint8_t cb_lin2ulaw(int16_t x)
{
    int v = x;
    int mask;
    if (v < 0) {
        v = ULAW_BIAS - v;
        mask = 0x7F;
    } else {
        v = ULAW_BIAS + v;
        mask = 0xFF;
    }
    int seg = top_bit((unsigned) v | 0xFFU) - 7;
    if (seg >= 8)
        return (uint8_t) (0x7F ^ mask);
    return (uint8_t) (((seg << 4) | ((v >> (seg + 3)) & 0x0F)) ^ mask);
}

int16_t cb_ulaw2lin(uint8_t u)
{
    int c = (uint8_t) ~u;
    int t = (((c & 0x0F) << 3) + ULAW_BIAS) << ((c & 0x70) >> 4);
    return (int16_t) ((c & 0x80) ? (ULAW_BIAS - t) : (t - ULAW_BIAS));
}
