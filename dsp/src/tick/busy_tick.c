/*
 * busy_tick.c - the busy-cadence detector's tick, over each group of
 * BUSY_GROUP channels with one counting: energy of the group's channels (a
 * loop across channels), then the on/off timing of the live ones.
 */
#include "cb_dsp.h"
#include "../busy_priv.h"

/* Within ±tol ms of the expected length. */
static inline int run_matches(int32_t run, int32_t want, int32_t tol)
{
    return run >= want - tol && run <= want + tol;
}

/* Peak energies within ±4 dB of each other (10^0.4 = 2.51, taken as 5/2). */
static inline int level_matches(uint32_t a, uint32_t ref)
{
    uint64_t a2 = (uint64_t) a * 2U, r2 = (uint64_t) ref * 2U;
    return a2 <= r2 * 5U / 2U && r2 <= a2 * 5U / 2U;
}

static void group_tick(cb_busy_det_t *s, const int16_t *amp, cb_ring_t *ev, uint64_t tick, int c0, int end);

void cb_busy_det_tick(cb_busy_det_t *s, const int16_t *amp, cb_ring_t *ev, uint64_t tick)
{
    if (s->nlive == 0)
        return;
    const int n = s->n;
    for (int g = 0; g < s->ngroups; g++) {
        if (s->glive[g] > 0)
            group_tick(s, amp, ev, tick, g * BUSY_GROUP, (g + 1) * BUSY_GROUP < n ? (g + 1) * BUSY_GROUP : n);
    }
}

/* Channels c0..end-1 (a group with a channel counting). */
CB_MULTIVERSION
static void group_tick(cb_busy_det_t *s, const int16_t *amp, cb_ring_t *ev, uint64_t tick, int c0, int end)
{
    const int n = s->n;
    uint32_t *restrict te = s->tick_e;
    /* Mean square of 8 samples: each square (at most 2^30) divided by 8. */
    for (int c = c0; c < end; c++)
        te[c] = (uint32_t) ((int32_t) amp[c] * (int32_t) amp[c]) >> 3;
    for (int j = 1; j < 8; j++) {
        const int16_t *x = amp + (size_t) j * (size_t) n;
        for (int c = c0; c < end; c++)
            te[c] += (uint32_t) ((int32_t) x[c] * (int32_t) x[c]) >> 3;
    }
    for (int c = c0; c < end; c++) {
        if (s->mode[c] != BUSY_LIVE)
            continue;
        int32_t e = (int32_t) s->e[c];
        if (s->run[c] == 0)
            e = (int32_t) te[c];   /* first tick after start */
        else
            e += ((int32_t) te[c] - e) / 4;
        s->e[c] = (uint32_t) e;
        uint32_t pk = s->pk[c] - (s->pk[c] >> 10);
        if ((uint32_t) e > pk)
            pk = (uint32_t) e;
        s->pk[c] = pk;
        uint32_t fl = s->floor[c];
        fl = fl > UINT32_MAX - (fl >> 12) - 1U ? UINT32_MAX : fl + (fl >> 12) + 1U;
        if ((uint32_t) e < fl)
            fl = (uint32_t) e;
        s->floor[c] = fl;
        int on = s->on[c];
        int now;
        if (on)
            now = (uint32_t) e >= BUSY_ABS_OFF && (uint32_t) e >= (pk >> 3) && ((uint32_t) e >> 2) >= fl;
        else
            now = (uint32_t) e > BUSY_ABS_ON && (uint32_t) e > (pk >> 2) && ((uint32_t) e >> 3) > fl;
        if (now == on) {
            /* Saturates: a state held longer than any cadence has broken the
             * sequence already, and a counter of ms must not overflow in a
             * silence of 24.8 days. */
            if (s->run[c] < BUSY_RUN_MAX)
                s->run[c]++;
            if (on && (uint32_t) e > s->seg_max[c])
                s->seg_max[c] = (uint32_t) e;
            /* Longer than the cadence allows: the sequence is broken. */
            if (s->run[c] > (on ? s->on_ms[c] + s->tol_on[c] : s->off_ms[c] + s->tol_off[c])) {
                s->cycles[c] = 0;
                s->have_on[c] = 0;
            }
            continue;
        }
        if (on) {
            /* End of a sound run. */
            s->have_on[c] = 0;
            if (run_matches(s->run[c], s->on_ms[c], s->tol_on[c])) {
                s->have_on[c] = 1;
                if (s->cycles[c] == 0 || !level_matches(s->seg_max[c], s->ref[c])) {
                    s->cycles[c] = 0;
                    s->ref[c] = s->seg_max[c];
                }
            } else {
                s->cycles[c] = 0;
            }
        } else {
            /* End of a silence: a whole cycle if it matched too. */
            if (s->have_on[c] && run_matches(s->run[c], s->off_ms[c], s->tol_off[c])) {
                if (++s->cycles[c] >= s->count[c]) {
                    if (ev != NULL)
                        cb_ring_put_event(ev, tick, c, CB_EV_BUSY, s->cycles[c], 0);
                    s->mode[c] = BUSY_FIRED;
                    s->nlive--;
                    s->glive[c / BUSY_GROUP]--;
                    continue;
                }
            } else {
                s->cycles[c] = 0;
            }
            s->have_on[c] = 0;
            s->seg_max[c] = (uint32_t) e;
        }
        s->on[c] = (uint8_t) now;
        s->run[c] = 1;
    }
}
