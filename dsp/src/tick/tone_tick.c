/*
 * tone_tick.c - the tone generator's tick: 8 samples of every playing channel,
 * then the cadence steps one millisecond. Only the active list is visited.
 */
#include "cb_dsp.h"
#include "../tone_priv.h"

#define SINE_SHIFT (32 - TONE_SINE_BITS)
#define SINE_ROUND (1U << (SINE_SHIFT - 1))

CB_MULTIVERSION
void cb_tone_gen_tick(cb_tone_gen_t *s, int32_t *acc, cb_ring_t *ev, uint64_t tick)
{
    const int n = s->n;
    const int16_t *sine = s->sine;
    int i = 0;
    while (i < s->nact) {
        const int c = s->act[i];
        const cb_tone_def_t *d = s->def[c];
        const int k = s->seg[c];
        const cb_tone_seg_t *g = &d->seg[k];
        if (g->on) {
            const int32_t a1 = s->a1[c], a2 = s->a2[c];
            const uint32_t inc1 = s->inc1[c], inc2 = s->inc2[c];
            uint32_t p1 = s->ph1[c], p2 = s->ph2[c];
            const int16_t *env = NULL;
            if (s->rise[c] && s->left[c] == g->ms)
                env = s->ramp_up;
            else if (s->fall[c] && s->left[c] == 1)
                env = s->ramp_down;
            int32_t v[8];
            for (int j = 0; j < 8; j++) {
                v[j] = (a1 * sine[((p1 + SINE_ROUND) >> SINE_SHIFT) & (TONE_SINE_SIZE - 1)]
                        + a2 * sine[((p2 + SINE_ROUND) >> SINE_SHIFT) & (TONE_SINE_SIZE - 1)]) >> 15;
                p1 += inc1;
                p2 += inc2;
            }
            if (env != NULL) {
                for (int j = 0; j < 8; j++)
                    v[j] = (v[j] * env[j]) >> 15;
            }
            for (int j = 0; j < 8; j++)
                acc[j * n + c] += v[j];
            s->ph1[c] = p1;
            s->ph2[c] = p2;
        }
        if (--s->left[c] > 0) {
            i++;
            continue;
        }
        int nxt = k + 1;
        if (nxt >= d->nseg) {
            if (d->repeat_from < 0) {
                if (ev != NULL)
                    cb_ring_put_event(ev, tick, c, CB_EV_TONE_DONE, s->tone[c], s->zone[c]);
                tone_deactivate(s, c);   /* the last active channel moves to i */
                continue;
            }
            nxt = d->repeat_from;
        }
        tone_enter_seg(s, c, nxt, g);
        i++;
    }
}
