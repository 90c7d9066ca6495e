/*
 * tone_priv.h - the state of a tone generator bank (struct of arrays), shared
 * by tone.c (init, start, stop) and tick/tone_tick.c.
 */
#ifndef CB_TONE_PRIV_H
#define CB_TONE_PRIV_H

#include <stdint.h>
#include "cb_tone.h"

#define TONE_SINE_BITS 10                   /* sine table of 2^10 points */
#define TONE_SINE_SIZE (1 << TONE_SINE_BITS)
#define TONE_AMP 7219                       /* peak, linear: -10 dBm0 = 32768 * 10^((-10 - 3.14)/20) */

/* One tone of one zone: its segments and where the cadence repeats from. */
typedef struct cb_tone_def {
    const cb_tone_seg_t *seg;
    int nseg;
    int repeat_from;    /* segment index, or -1: play once */
} cb_tone_def_t;

struct cb_tone_gen {
    int n;                      /* channels */
    int nact;                   /* channels playing */
    int32_t *act;               /* [n] the playing channels, first nact used */
    int32_t *pos;               /* [n] index of the channel in act, -1 if silent */
    const cb_tone_def_t **def;  /* [n] the tone playing */
    uint8_t *zone;              /* [n] zone of the tone playing */
    uint8_t *tone;              /* [n] id of the tone playing */
    int16_t *seg;               /* [n] current segment */
    int32_t *left;              /* [n] ms left in the current segment, this tick included */
    uint8_t *rise;              /* [n] 1: the segment's first tick ramps up */
    uint8_t *fall;              /* [n] 1: the segment's last tick ramps down */
    uint32_t *ph1, *ph2;        /* [n] phases, 2^32 = one cycle */
    uint32_t *inc1, *inc2;      /* [n] phase steps per sample */
    int32_t *a1, *a2;           /* [n] peak amplitudes, linear (0 = component off) */
    int16_t sine[TONE_SINE_SIZE];   /* sin(2 pi k / size), Q15 */
    int16_t ramp_up[8];         /* raised cosine over one tick, Q15 */
    int16_t ramp_down[8];
};

/* Same frequencies, both sounding: the phase runs on across the boundary. */
static inline int tone_seg_same(const cb_tone_seg_t *a, const cb_tone_seg_t *b)
{
    return a->on && b->on && a->f1_hz == b->f1_hz && a->f2_hz == b->f2_hz;
}

/* Phase step of f Hz at 8 kHz, rounded. */
static inline uint32_t tone_phase_inc(int32_t f_hz)
{
    return (uint32_t) ((((uint64_t) (uint32_t) f_hz << 32) + 4000U) / 8000U);
}

/* Enter segment idx of the channel's tone; prev is the segment just played,
 * or NULL at the start. */
static inline void tone_enter_seg(cb_tone_gen_t *s, int c, int idx, const cb_tone_seg_t *prev)
{
    const cb_tone_def_t *d = s->def[c];
    const cb_tone_seg_t *g = &d->seg[idx];
    s->seg[c] = (int16_t) idx;
    s->left[c] = g->ms;
    if (!g->on) {
        s->a1[c] = s->a2[c] = 0;
        s->rise[c] = s->fall[c] = 0;
        return;
    }
    int nxt = idx + 1 < d->nseg ? idx + 1 : d->repeat_from;
    s->rise[c] = (uint8_t) !(prev != NULL && tone_seg_same(prev, g));
    s->fall[c] = (uint8_t) !(nxt >= 0 && tone_seg_same(g, &d->seg[nxt]));
    if (s->rise[c]) {
        s->ph1[c] = s->ph2[c] = 0;
    }
    s->inc1[c] = tone_phase_inc(g->f1_hz);
    s->inc2[c] = tone_phase_inc(g->f2_hz);
    s->a1[c] = g->f1_hz > 0 ? TONE_AMP : 0;
    s->a2[c] = g->f2_hz > 0 ? TONE_AMP : 0;
}

/* Drop a channel from the active list. */
static inline void tone_deactivate(cb_tone_gen_t *s, int c)
{
    int p = s->pos[c];
    if (p < 0)
        return;
    int last = s->act[--s->nact];
    s->act[p] = last;
    s->pos[last] = p;
    s->pos[c] = -1;
}

#endif
