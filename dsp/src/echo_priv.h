/* The echo canceller bank's state (private to dsp/src: echo.c and tick/echo_tick.c). */
#ifndef CB_ECHO_PRIV_H
#define CB_ECHO_PRIV_H

#include <stdint.h>
#include "cb_echo.h"

/* Powers, in int16 units squared per sample, of a signal at L dBm0 (the project's A-law
 * convention: a sine of peak 32768 * 10^((L - 3.14) / 20) is at L dBm0). */
#define ECHO_P0 2.6055e8f               /* 0 dBm0 */
#define ECHO_P_M31 (ECHO_P0 * 7.943e-4f)/* -31 dBm0: the tone disabler's least tone */
#define ECHO_P_M36 (ECHO_P0 * 2.512e-4f)/* -36 dBm0: quiet enough to re-enable after a tone */
#define ECHO_P_M40 (ECHO_P0 * 1.0e-4f)  /* -40 dBm0: a path below it cannot hold a tone */
#define ECHO_P_M45 (ECHO_P0 * 3.162e-5f)/* -45 dBm0: far-end or near-end speech is there */
#define ECHO_P_M50 (ECHO_P0 * 1.0e-5f)  /* -50 dBm0: least far-end power the filters adapt on */
#define ECHO_P_M58 (ECHO_P0 * 1.585e-6f)/* -58 dBm0: under it Sin has no echo worth learning */
#define ECHO_P_M60 (ECHO_P0 * 1.0e-6f)  /* -60 dBm0: the normalisation's floor, per tap */
#define ECHO_P_M62 (ECHO_P0 * 6.31e-7f) /* -62 dBm0: a Rin window under it returns no echo worth it */
#define ECHO_P_M70 (ECHO_P0 * 1.0e-7f)  /* -70 dBm0: under this Rin's echo is not worth filtering */

#define ECHO_START_MAX (CB_ECHO_DELAY_MAX_MS * 8) /* the window's furthest flat delay, samples */
#define ECHO_HIST (ECHO_START_MAX + CB_ECHO_TAPS_MAX + 16) /* Rin samples kept behind the newest */
#define ECHO_XBUF (ECHO_HIST + 1024)    /* Rin buffer: filled, then its last ECHO_HIST moved down */
#define ECHO_NLAG 136                   /* bulk-delay lags, 1 ms each (0-135 ms) */
#define ECHO_BLOCK 4                    /* ticks per look of the tone disabler and the narrowband
                                           detector (32 samples) */
#define ECHO_PHASES 80                  /* 2100 Hz at 8 kHz: 21 cycles in 80 samples */

/* One path (Rin or Sin) of the tone disabler: its window is the last two blocks (64 samples). */
typedef struct echo_dis {
    float zr, zi, en;       /* the last block's 2100 Hz term and energy */
    float wr[3], wi[3];     /* the window's sum as it was one, two and three blocks ago */
    float ur, ui;           /* the tone's rotation per block (its offset from 2100 Hz), smoothed */
    int present;            /* ticks the tone has been there (gaps under 20 ticks bridged) */
    int gap;                /* ticks since it was last there */
    int refractory;         /* ticks before another reversal counts */
    int reversals;          /* reversals seen in this tone */
    int ans_told;           /* CB_EV_ANS without reversal sent for this tone */
} echo_dis_t;

typedef struct echo_chan {
    int taps;               /* 0: off */
    int flags;              /* cb_echo_flags */
    int state;              /* cb_echo_state */
    float *wf, *wb;         /* foreground and background taps [CB_ECHO_TAPS_MAX], time-reversed:
                               tap j multiplies x[newest - start - taps + 1 + j] */
    float *x;               /* Rin [ECHO_XBUF]; x[xn - 1] the newest */
    int xn;
    int fresh;              /* the last 8 samples of x were given and no tick has used them */
    int start;              /* the filter window's flat delay, samples */
    int len;                /* taps in the window now: a new window learns on fewer first */
    int adapted;            /* ticks the window has learnt on */
    int learnt;             /* the background has cancelled 20 dB: it learns at the normal step */
    int better;             /* ticks in a row the background did better */
    int conv, poor;         /* converged; ticks of far-end single talk it cancelled poorly */
    int trust;              /* ticks left in which copies need no more than COPY_BETTER */
    double ex;              /* energy of the window of the last sample filtered (exact: integers) */
    double r1, r2, r3;      /* that window times the ones 1, 2 and 3 samples before it, exact */
    float pa, pb_;          /* background updates of the last two samples filtered (the one before
                               last, the last), applied in the next pass */
    /* smoothed tick powers */
    float pf, pb;           /* foreground and background residuals (1/16 per tick) */
    float ps;               /* Sin (1/16) */
    float psd;              /* Sin for the double-talk detector (1/8) */
    float pst1;             /* Sin's power in the last tick */
    float gain;             /* the line's echo gain (Sin over Rin) as the double-talk detector has it */
    float pen, psn;         /* residual and Sin for the NLP (1/2) */
    float pes;              /* residual for the noise floor (1/8) */
    float floor;            /* the residual's floor: the comfort noise's power */
    uint32_t seed;          /* comfort noise */
    int dt_hold;            /* double talk: ticks of hangover left */
    int nb_hold;            /* narrowband Rin: ticks of hangover left */
    float rk[5];            /* Rin's autocorrelation, lags 0-4, smoothed per block */
    float sinh[ECHO_BLOCK * 8]; /* Sin of the block so far (the disabler's) */
    float blk_es, blk_er;   /* the block's Sin and Rin energies so far (the disabler's) */
    /* bulk delay */
    float *dr;              /* [2 * ECHO_NLAG] Rin envelope, mirrored */
    float *cor;             /* [ECHO_NLAG] correlation, lag NLAG-1-k at k */
    int dri;                /* write position in dr */
    float mr, ms;           /* envelopes' means */
    int best, stable;       /* the last peak lag, ticks; checks it held */
    int ticks;              /* ticks since on */
    int delay;              /* flat delay as found, samples; -1 not yet */
    /* tone disabler */
    echo_dis_t dis[2];      /* Rin, Sin */
    int phase;              /* sample counter mod ECHO_PHASES of the next tick */
    int quiet;              /* tone-disabled: ticks both paths were under -36 dBm0 */
} echo_chan_t;

/* 2100 Hz: cos and -sin of 2 pi 21/80 n, n = 0..79, and a block more so a block never wraps. */
typedef struct echo_tables {
    float cos[ECHO_PHASES + ECHO_BLOCK * 8];
    float sin[ECHO_PHASES + ECHO_BLOCK * 8];
} echo_tables_t;

struct cb_echo {
    int n;
    echo_tables_t tab;      /* the tone disabler's reference, made with the bank */
    echo_chan_t *ch;        /* [n] */
    float *mem;             /* every channel's arrays, one block */
    int32_t *on;            /* channels on, in channel order */
    int non;
};

/* Per channel floats in `mem`. */
#define ECHO_STRIDE (2 * CB_ECHO_TAPS_MAX + ECHO_XBUF + 3 * ECHO_NLAG + 8)

/* Reset a channel's adaptive state (tick/echo_tick.c; also used by cb_echo_set). */
void cb_echo_reset_chan(echo_chan_t *c);

#endif
