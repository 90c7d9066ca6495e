/* DTMF banks: state as arrays over channels (private to dsp/src). */
#ifndef CB_DTMF_PRIV_H
#define CB_DTMF_PRIV_H

#include <stdint.h>
#include "cb_dtmf.h"

#define DTMF_FILTERS 8
#define DTMF_HALF (CB_DTMF_BLOCK / 2)
#define DTMF_TICKS (CB_DTMF_BLOCK / CB_TICK_SAMPLES)
#define DTMF_LANES 8                   /* channels per vector; banks are padded to a multiple */
#define DTMF_GROUP (4 * DTMF_LANES)    /* channels stepped together; a group none detects on is skipped */
#define DTMF_SINE_BITS 10
#define DTMF_SINE_SIZE (1 << DTMF_SINE_BITS)

struct cb_dtmf_rx {
    int n;
    int npad;                          /* n rounded up to DTMF_LANES */
    int t;                             /* tick within the block, 0..DTMF_TICKS-1 */
    float coef[DTMF_FILTERS];          /* 2 cos w0 */
    float cw[DTMF_FILTERS], sw[DTMF_FILTERS];          /* cos w0, sin w0 */
    float rh_re[DTMF_FILTERS], rh_im[DTMF_FILTERS];    /* e^{-j w0 (HALF - 1)} */
    float rn_re[DTMF_FILTERS], rn_im[DTMF_FILTERS];    /* e^{-j w0 (BLOCK - 1)} */
    float cos_lim[DTMF_FILTERS];       /* cos of the largest phase advance accepted between halves */
    float thr;                         /* least |S|^2 per tone */
    float *q1, *q2;                    /* [8][npad] Goertzel states */
    float *h1, *h2;                    /* [8][npad] the states at half block */
    float *energy;                     /* [npad] block energy */
    float *x;                          /* [8][npad] this tick's samples as floats (padding zero) */
    uint8_t *enabled;                  /* [n] */
    int ngroups;                       /* npad / DTMF_GROUP, rounded up */
    int32_t *gcount;                   /* [ngroups] channels of the group enabled */
    char *cand;                        /* [n] last block's digit (0 none) */
    char *cur;                         /* [n] key down (0 none) */
    int32_t *blocks;                   /* [n] blocks the current candidate/key has lasted */
    int32_t *miss;                     /* [n] blocks without the key while down */
};

struct cb_dtmf_tx {
    int n;
    float sine[DTMF_SINE_SIZE];
    const char **digits;               /* [n] NULL when idle */
    int32_t *pos;                      /* digit index */
    int32_t *t;                        /* sample within the digit's on+off period */
    int32_t *on, *off;                 /* samples */
    uint32_t *ph1, *ph2, *inc1, *inc2; /* phase accumulators and increments */
    float *a1, *a2;                    /* peak amplitudes: low, high group */
};

/* Row and column of a keypad character, or -1. */
int cb_dtmf_key_index(char c);
extern const char cb_dtmf_keys[17];
extern const float cb_dtmf_freqs[8];

#endif
