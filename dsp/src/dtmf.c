/* DTMF banks: life cycle, per-channel control and constant tables (may allocate, uses libm). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cb_dsp.h"
#include "dtmf_priv.h"

const char cb_dtmf_keys[17] = "123A456B789C*0#D";
const float cb_dtmf_freqs[8] = {697.0f, 770.0f, 852.0f, 941.0f, 1209.0f, 1336.0f, 1477.0f, 1633.0f};

int cb_dtmf_key_index(char c)
{
    for (int i = 0; i < 16; i++)
        if (cb_dtmf_keys[i] == c)
            return i;
    return -1;
}

static void *zalloc(size_t n)
{
    /* 32-byte aligned, zeroed: vector loads over channels */
    size_t sz = (n + 31) & ~(size_t) 31;
    void *p = aligned_alloc(32, sz);
    if (p != NULL)
        memset(p, 0, sz);
    return p;
}

cb_dtmf_rx_t *cb_dtmf_rx_init(int n)
{
    if (n < 1)
        return NULL;
    cb_dtmf_rx_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->n = n;
    s->npad = (n + DTMF_LANES - 1) / DTMF_LANES * DTMF_LANES;
    size_t fp = (size_t) DTMF_FILTERS * (size_t) s->npad * sizeof(float);
    s->q1 = zalloc(fp);
    s->q2 = zalloc(fp);
    s->h1 = zalloc(fp);
    s->h2 = zalloc(fp);
    s->x = zalloc((size_t) CB_TICK_SAMPLES * (size_t) s->npad * sizeof(float));
    s->energy = zalloc((size_t) s->npad * sizeof(float));
    s->ngroups = (s->npad + DTMF_GROUP - 1) / DTMF_GROUP;
    s->gcount = calloc((size_t) s->ngroups, sizeof(int32_t));
    s->enabled = calloc((size_t) n, 1);
    s->cand = calloc((size_t) n, 1);
    s->cur = calloc((size_t) n, 1);
    s->blocks = calloc((size_t) n, sizeof(int32_t));
    s->miss = calloc((size_t) n, sizeof(int32_t));
    if (!s->q1 || !s->q2 || !s->h1 || !s->h2 || !s->x || !s->energy || !s->gcount || !s->enabled || !s->cand
        || !s->cur || !s->blocks || !s->miss) {
        cb_dtmf_rx_free(s);
        return NULL;
    }
    memset(s->enabled, 1, (size_t) n);
    for (int c = 0; c < n; c++)
        s->gcount[c / DTMF_GROUP]++;
    for (int f = 0; f < DTMF_FILTERS; f++) {
        double w = 2.0 * M_PI * cb_dtmf_freqs[f] / 8000.0;
        s->coef[f] = (float) (2.0 * cos(w));
        s->cw[f] = (float) cos(w);
        s->sw[f] = (float) sin(w);
        s->rh_re[f] = (float) cos(-w * (DTMF_HALF - 1));
        s->rh_im[f] = (float) sin(-w * (DTMF_HALF - 1));
        s->rn_re[f] = (float) cos(-w * (CB_DTMF_BLOCK - 1));
        s->rn_im[f] = (float) sin(-w * (CB_DTMF_BLOCK - 1));
        /* the phase the tone advances over half a block at the largest accepted offset */
        double lim_hz = cb_dtmf_freqs[f] * CB_DTMF_FREQ_LIMIT_PERMILLE / 1000.0;
        s->cos_lim[f] = (float) cos(2.0 * M_PI * lim_hz * DTMF_HALF / 8000.0);
    }
    /* |S|^2 of a tone at the threshold filling the block: (A N / 2)^2 */
    double a = CB_DBM0_PEAK(CB_DTMF_THRESHOLD_CDB / 100.0f);
    s->thr = (float) (a * CB_DTMF_BLOCK / 2.0 * a * CB_DTMF_BLOCK / 2.0);
    return s;
}

void cb_dtmf_rx_free(cb_dtmf_rx_t *s)
{
    if (s == NULL)
        return;
    free(s->q1);
    free(s->q2);
    free(s->h1);
    free(s->h2);
    free(s->x);
    free(s->energy);
    free(s->enabled);
    free(s->gcount);
    free(s->cand);
    free(s->cur);
    free(s->blocks);
    free(s->miss);
    free(s);
}

int cb_dtmf_rx_reset(cb_dtmf_rx_t *s, int chan)
{
    if (chan < 0 || chan >= s->n)
        return CB_ERR_INVALID;
    s->cand[chan] = 0;
    s->cur[chan] = 0;
    s->blocks[chan] = 0;
    s->miss[chan] = 0;
    return CB_OK;
}

/* A group none detected on is not stepped: when one of its channels starts detecting mid-block,
 * the group's states are those of a bank stepped over silence since the block began (zero), as
 * a parked bank wakes (sched_tick.c). */
static void group_wakes(cb_dtmf_rx_t *s, int g)
{
    const size_t np = (size_t) s->npad;
    const size_t c0 = (size_t) g * DTMF_GROUP;
    const size_t len = ((size_t) s->npad - c0 < DTMF_GROUP ? (size_t) s->npad - c0 : DTMF_GROUP) * sizeof(float);
    for (int f = 0; f < DTMF_FILTERS; f++) {
        size_t i = (size_t) f * np + c0;
        memset(s->q1 + i, 0, len);
        memset(s->q2 + i, 0, len);
        memset(s->h1 + i, 0, len);
        memset(s->h2 + i, 0, len);
    }
    memset(s->energy + c0, 0, len);
}

int cb_dtmf_rx_enable(cb_dtmf_rx_t *s, int chan, int on)
{
    if (chan < 0 || chan >= s->n)
        return CB_ERR_INVALID;
    uint8_t was = s->enabled[chan], now = on ? 1 : 0;
    if (was != now) {
        int g = chan / DTMF_GROUP;
        if (now && s->gcount[g] == 0)
            group_wakes(s, g);
        s->gcount[g] += now ? 1 : -1;
    }
    s->enabled[chan] = now;
    return cb_dtmf_rx_reset(s, chan);
}

int cb_dtmf_rx_feed(cb_dtmf_rx_t *s, const int16_t *amp, int len, cb_ring_t *ev, uint64_t tick0)
{
    if (s->n != 1 || len % CB_TICK_SAMPLES)
        return CB_ERR_INVALID;
    return cb_dtmf_rx_bench(s, amp, len / CB_TICK_SAMPLES, ev, tick0);
}

int cb_dtmf_rx_bench(cb_dtmf_rx_t *s, const int16_t *sig, int ticks, cb_ring_t *ev, uint64_t tick0)
{
    for (int i = 0; i < ticks; i++)
        cb_dtmf_rx_tick(s, sig + (size_t) i * CB_TICK_SAMPLES * (size_t) s->n, ev, tick0 + (uint64_t) i);
    return ticks;
}

cb_dtmf_tx_t *cb_dtmf_tx_init(int n)
{
    if (n < 1)
        return NULL;
    cb_dtmf_tx_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    size_t z = (size_t) n;
    s->n = n;
    for (int i = 0; i < DTMF_SINE_SIZE; i++)
        s->sine[i] = (float) sin(2.0 * M_PI * i / DTMF_SINE_SIZE);
    s->digits = calloc(z, sizeof(*s->digits));
    s->pos = calloc(z, sizeof(int32_t));
    s->t = calloc(z, sizeof(int32_t));
    s->on = calloc(z, sizeof(int32_t));
    s->off = calloc(z, sizeof(int32_t));
    s->ph1 = calloc(z, sizeof(uint32_t));
    s->ph2 = calloc(z, sizeof(uint32_t));
    s->inc1 = calloc(z, sizeof(uint32_t));
    s->inc2 = calloc(z, sizeof(uint32_t));
    s->a1 = calloc(z, sizeof(float));
    s->a2 = calloc(z, sizeof(float));
    if (!s->digits || !s->pos || !s->t || !s->on || !s->off || !s->ph1 || !s->ph2 || !s->inc1 || !s->inc2
        || !s->a1 || !s->a2) {
        cb_dtmf_tx_free(s);
        return NULL;
    }
    return s;
}

void cb_dtmf_tx_free(cb_dtmf_tx_t *s)
{
    if (s == NULL)
        return;
    free(s->digits);
    free(s->pos);
    free(s->t);
    free(s->on);
    free(s->off);
    free(s->ph1);
    free(s->ph2);
    free(s->inc1);
    free(s->inc2);
    free(s->a1);
    free(s->a2);
    free(s);
}

int cb_dtmf_tx_start(cb_dtmf_tx_t *s, int chan, const char *digits, int on_ms, int off_ms, int level_hi_cdb,
                     int level_lo_cdb)
{
    if (chan < 0 || chan >= s->n || digits == NULL || digits[0] == '\0' || on_ms > 10000 || off_ms > 10000
        || level_hi_cdb > 300 || level_lo_cdb > 300 || level_hi_cdb < -6000 || level_lo_cdb < -6000)
        return CB_ERR_INVALID;
    for (const char *p = digits; *p; p++)
        if (cb_dtmf_key_index(*p) < 0)
            return CB_ERR_INVALID;
    s->digits[chan] = digits;
    s->pos[chan] = 0;
    s->t[chan] = 0;
    s->on[chan] = (on_ms > 0 ? on_ms : 50) * 8;
    s->off[chan] = (off_ms > 0 ? off_ms : 55) * 8;
    s->a1[chan] = CB_DBM0_PEAK((float) level_lo_cdb / 100.0f);
    s->a2[chan] = CB_DBM0_PEAK((float) level_hi_cdb / 100.0f);
    s->inc1[chan] = s->inc2[chan] = 0;
    return CB_OK;
}

int cb_dtmf_tx_stop(cb_dtmf_tx_t *s, int chan)
{
    if (chan < 0 || chan >= s->n)
        return CB_ERR_INVALID;
    s->digits[chan] = NULL;
    return CB_OK;
}

int cb_dtmf_tx_busy(const cb_dtmf_tx_t *s, int chan)
{
    return chan >= 0 && chan < s->n && s->digits[chan] != NULL;
}
