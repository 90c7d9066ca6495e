/* The echo canceller bank: allocation, configuration and read-outs (the per-tick work is in
 * tick/echo_tick.c). */
#include <stdlib.h>
#include <string.h>
#include "echo_priv.h"

/* The tone disabler's 2100 Hz reference: a rotation by a fixed angle, in double. */
static void make_tables(echo_tables_t *t)
{
    const double cw = -0.07845909572784494;  /* cos(2 pi 21 / 80) */
    const double sw = 0.99691733373312796;   /* sin(2 pi 21 / 80) */
    double c = 1.0, s = 0.0;
    for (int i = 0; i < ECHO_PHASES + ECHO_BLOCK * 8; i++) {
        t->cos[i] = (float) c;
        t->sin[i] = (float) -s;
        double nc = c * cw - s * sw;
        s = s * cw + c * sw;
        c = nc;
    }
}

cb_echo_t *cb_echo_new(int n)
{
    if (n < 1 || n > 65535)
        return NULL;
    cb_echo_t *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    e->n = n;
    make_tables(&e->tab);
    e->ch = calloc((size_t) n, sizeof *e->ch);
    e->on = calloc((size_t) n, sizeof *e->on);
    /* Zeroed pages are only touched by the channels turned on. */
    e->mem = calloc((size_t) n * ECHO_STRIDE + 8, sizeof(float));
    if (e->ch == NULL || e->on == NULL || e->mem == NULL) {
        cb_echo_free(e);
        return NULL;
    }
    float *base = (float *) (((uintptr_t) e->mem + 31) & ~(uintptr_t) 31);
    for (int i = 0; i < n; i++) {
        float *m = base + (size_t) i * ECHO_STRIDE;
        echo_chan_t *c = &e->ch[i];
        c->wf = m;
        c->wb = m + CB_ECHO_TAPS_MAX;
        c->x = m + 2 * CB_ECHO_TAPS_MAX;
        c->dr = c->x + ECHO_XBUF;
        c->cor = c->dr + 2 * ECHO_NLAG;
        c->delay = -1;
    }
    return e;
}

void cb_echo_free(cb_echo_t *e)
{
    if (e == NULL)
        return;
    free(e->ch);
    free(e->on);
    free(e->mem);
    free(e);
}

static void set_on(cb_echo_t *e, int chan, int on)
{
    int at = -1;
    for (int i = 0; i < e->non; i++)
        if (e->on[i] == chan)
            at = i;
    if (on && at < 0) {
        int i = e->non++;
        while (i > 0 && e->on[i - 1] > chan) {   /* kept in channel order */
            e->on[i] = e->on[i - 1];
            i--;
        }
        e->on[i] = chan;
    } else if (!on && at >= 0) {
        memmove(&e->on[at], &e->on[at + 1], (size_t) (e->non - at - 1) * sizeof *e->on);
        e->non--;
    }
}

int cb_echo_set(cb_echo_t *e, int chan, int taps, int flags)
{
    if (e == NULL || chan < 0 || chan >= e->n || (flags & ~CB_ECHO_ALL) != 0)
        return CB_ERR_INVALID;
    if (taps != 0 && (taps < CB_ECHO_TAPS_MIN || taps > CB_ECHO_TAPS_MAX || taps % CB_ECHO_TAPS_STEP != 0))
        return CB_ERR_INVALID;
    echo_chan_t *c = &e->ch[chan];
    c->taps = taps;
    c->flags = flags;
    c->state = taps ? CB_ECHO_ON : CB_ECHO_OFF;
    cb_echo_reset_chan(c);
    set_on(e, chan, taps != 0);
    return CB_OK;
}

int cb_echo_taps(const cb_echo_t *e, int chan)
{
    return chan >= 0 && chan < e->n ? e->ch[chan].taps : 0;
}

int cb_echo_state(const cb_echo_t *e, int chan)
{
    return chan >= 0 && chan < e->n ? e->ch[chan].state : CB_ECHO_OFF;
}

double cb_echo_bulk_delay_ms(const cb_echo_t *e, int chan)
{
    if (chan < 0 || chan >= e->n || e->ch[chan].taps == 0 || e->ch[chan].delay < 0)
        return -1.0;
    return e->ch[chan].delay / 8.0;
}

int cb_echo_active(const cb_echo_t *e)
{
    return e->non;
}
