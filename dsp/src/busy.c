/* busy.c - set-up side of the busy-cadence detector bank. */
#include <stdlib.h>
#include "cb_dsp.h"
#include "busy_priv.h"

cb_busy_det_t *cb_busy_det_init(int n)
{
    if (n < 1 || n > 65535)
        return NULL;
    cb_busy_det_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    size_t un = (size_t) n;
    s->n = n;
    s->mode = calloc(un, sizeof(*s->mode));
    s->on_ms = calloc(un, sizeof(*s->on_ms));
    s->off_ms = calloc(un, sizeof(*s->off_ms));
    s->tol_on = calloc(un, sizeof(*s->tol_on));
    s->tol_off = calloc(un, sizeof(*s->tol_off));
    s->count = calloc(un, sizeof(*s->count));
    s->tick_e = calloc(un, sizeof(*s->tick_e));
    s->e = calloc(un, sizeof(*s->e));
    s->pk = calloc(un, sizeof(*s->pk));
    s->floor = calloc(un, sizeof(*s->floor));
    s->on = calloc(un, sizeof(*s->on));
    s->run = calloc(un, sizeof(*s->run));
    s->seg_max = calloc(un, sizeof(*s->seg_max));
    s->ref = calloc(un, sizeof(*s->ref));
    s->have_on = calloc(un, sizeof(*s->have_on));
    s->cycles = calloc(un, sizeof(*s->cycles));
    s->ngroups = (n + BUSY_GROUP - 1) / BUSY_GROUP;
    s->glive = calloc((size_t) s->ngroups, sizeof(*s->glive));
    if (!s->glive || !s->mode || !s->on_ms || !s->off_ms || !s->tol_on || !s->tol_off || !s->count || !s->tick_e
        || !s->e || !s->pk || !s->floor || !s->on || !s->run || !s->seg_max || !s->ref || !s->have_on || !s->cycles) {
        cb_busy_det_free(s);
        return NULL;
    }
    return s;
}

void cb_busy_det_free(cb_busy_det_t *s)
{
    if (s == NULL)
        return;
    free(s->mode);
    free(s->on_ms);
    free(s->off_ms);
    free(s->tol_on);
    free(s->tol_off);
    free(s->count);
    free(s->tick_e);
    free(s->e);
    free(s->pk);
    free(s->floor);
    free(s->on);
    free(s->run);
    free(s->seg_max);
    free(s->ref);
    free(s->have_on);
    free(s->cycles);
    free(s->glive);
    free(s);
}

static int tolerance(int ms)
{
    return ms / 10 > CB_BUSY_TOL_MS ? ms / 10 : CB_BUSY_TOL_MS;
}

int cb_busy_det_start(cb_busy_det_t *s, int chan, int on_ms, int off_ms, int count)
{
    if (s == NULL || chan < 0 || chan >= s->n || on_ms < CB_BUSY_MIN_MS || on_ms > CB_BUSY_MAX_MS
        || off_ms < CB_BUSY_MIN_MS || off_ms > CB_BUSY_MAX_MS || count < 1 || count > CB_BUSY_MAX_COUNT)
        return CB_ERR_INVALID;
    if (s->mode[chan] != BUSY_LIVE) {
        s->nlive++;
        s->glive[chan / BUSY_GROUP]++;
    }
    s->mode[chan] = BUSY_LIVE;
    s->on_ms[chan] = on_ms;
    s->off_ms[chan] = off_ms;
    s->tol_on[chan] = tolerance(on_ms);
    s->tol_off[chan] = tolerance(off_ms);
    s->count[chan] = count;
    s->e[chan] = 0;
    s->pk[chan] = 0;
    s->floor[chan] = UINT32_MAX;   /* unknown: the first tick sets it */
    s->on[chan] = 0;
    s->run[chan] = 0;
    s->seg_max[chan] = 0;
    s->ref[chan] = 0;
    s->have_on[chan] = 0;
    s->cycles[chan] = 0;
    return CB_OK;
}

int cb_busy_det_stop(cb_busy_det_t *s, int chan)
{
    if (s == NULL || chan < 0 || chan >= s->n)
        return CB_ERR_INVALID;
    if (s->mode[chan] == BUSY_LIVE) {
        s->nlive--;
        s->glive[chan / BUSY_GROUP]--;
    }
    s->mode[chan] = BUSY_IDLE;
    return CB_OK;
}
