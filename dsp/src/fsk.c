/* FSK modem banks: life cycle and per-channel control (may allocate). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cb_dsp.h"
#include "fsk_priv.h"

static const float MARK_HZ[2] = {1200.0f, 1300.0f};
static const float SPACE_HZ[2] = {2200.0f, 2100.0f};

static uint32_t phase_inc(float hz)
{
    return (uint32_t) lrint((double) hz / 8000.0 * 4294967296.0);
}

static void fill_sine(float *t)
{
    for (int i = 0; i < FSK_SINE_SIZE; i++)
        t[i] = (float) sin(2.0 * M_PI * i / FSK_SINE_SIZE);
}

cb_fsk_tx_t *cb_fsk_tx_init(int n)
{
    if (n < 1)
        return NULL;
    cb_fsk_tx_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    size_t z = (size_t) n;
    s->n = n;
    fill_sine(s->sine);
    s->live = calloc((size_t) FSK_WORDS(n), sizeof(uint64_t));
    s->bytes = calloc(z, sizeof(*s->bytes));
    s->len = calloc(z, sizeof(int32_t));
    s->seize = calloc(z, sizeof(int32_t));
    s->mark = calloc(z, sizeof(int32_t));
    s->bit = calloc(z, sizeof(int32_t));
    s->nbits = calloc(z, sizeof(int32_t));
    s->clk = calloc(z, sizeof(int32_t));
    s->phase = calloc(z, sizeof(uint32_t));
    s->inc_mark = calloc(z, sizeof(uint32_t));
    s->inc_space = calloc(z, sizeof(uint32_t));
    s->amp = calloc(z, sizeof(float));
    if (!s->live || !s->bytes || !s->len || !s->seize || !s->mark || !s->bit || !s->nbits || !s->clk || !s->phase
        || !s->inc_mark || !s->inc_space || !s->amp) {
        cb_fsk_tx_free(s);
        return NULL;
    }
    return s;
}

void cb_fsk_tx_free(cb_fsk_tx_t *s)
{
    if (s == NULL)
        return;
    free(s->live);
    free(s->bytes);
    free(s->len);
    free(s->seize);
    free(s->mark);
    free(s->bit);
    free(s->nbits);
    free(s->clk);
    free(s->phase);
    free(s->inc_mark);
    free(s->inc_space);
    free(s->amp);
    free(s);
}

int cb_fsk_tx_start(cb_fsk_tx_t *s, int chan, int standard, const uint8_t *bytes, int len, int seizure_bits,
                    int mark_bits, int level_cdb)
{
    if (chan < 0 || chan >= s->n || bytes == NULL || len < 0 || len > 4096 || seizure_bits < 0
        || seizure_bits > 10000 || mark_bits < 0 || mark_bits > 10000 || level_cdb > 300 || level_cdb < -6000
        || (standard != CB_FSK_BELL202 && standard != CB_FSK_V23))
        return CB_ERR_INVALID;
    s->bytes[chan] = bytes;
    FSK_LIVE_SET(s->live, chan);
    s->len[chan] = len;
    s->seize[chan] = seizure_bits;
    s->mark[chan] = mark_bits;
    s->bit[chan] = 0;
    s->nbits[chan] = seizure_bits + mark_bits + 10 * len + FSK_TRAIL_MARKS;
    s->clk[chan] = 0;
    s->phase[chan] = 0;
    s->inc_mark[chan] = phase_inc(MARK_HZ[standard]);
    s->inc_space[chan] = phase_inc(SPACE_HZ[standard]);
    s->amp[chan] = CB_DBM0_PEAK((float) level_cdb / 100.0f);
    return CB_OK;
}

int cb_fsk_tx_stop(cb_fsk_tx_t *s, int chan)
{
    if (chan < 0 || chan >= s->n)
        return CB_ERR_INVALID;
    s->bytes[chan] = NULL;
    FSK_LIVE_CLEAR(s->live, chan);
    return CB_OK;
}

int cb_fsk_tx_busy(const cb_fsk_tx_t *s, int chan)
{
    return chan >= 0 && chan < s->n && s->bytes[chan] != NULL;
}

cb_fsk_rx_t *cb_fsk_rx_init(int n)
{
    if (n < 1)
        return NULL;
    cb_fsk_rx_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    size_t z = (size_t) n;
    s->n = n;
    fill_sine(s->sine);
    s->live = calloc((size_t) FSK_WORDS(n), sizeof(uint64_t));
    s->on = calloc(z, 1);
    s->ph_mark = calloc(z, sizeof(uint32_t));
    s->ph_space = calloc(z, sizeof(uint32_t));
    s->inc_mark = calloc(z, sizeof(uint32_t));
    s->inc_space = calloc(z, sizeof(uint32_t));
    s->im = calloc(z, sizeof(*s->im));
    s->qm = calloc(z, sizeof(*s->qm));
    s->is = calloc(z, sizeof(*s->is));
    s->qs = calloc(z, sizeof(*s->qs));
    s->sim = calloc(z, sizeof(float));
    s->sqm = calloc(z, sizeof(float));
    s->sis = calloc(z, sizeof(float));
    s->sqs = calloc(z, sizeof(float));
    s->d1 = calloc(z, sizeof(float));
    s->d2 = calloc(z, sizeof(float));
    s->pos = calloc(z, sizeof(int32_t));
    s->power = calloc(z, sizeof(float));
    s->carrier = calloc(z, 1);
    s->marks = calloc(z, sizeof(int32_t));
    s->armed = calloc(z, 1);
    s->state = calloc(z, sizeof(int32_t));
    s->clk = calloc(z, sizeof(int32_t));
    s->shift = calloc(z, sizeof(int32_t));
    s->last = calloc(z, 1);
    if (!s->live || !s->on || !s->ph_mark || !s->ph_space || !s->inc_mark || !s->inc_space || !s->im || !s->qm || !s->is
        || !s->qs || !s->sim || !s->sqm || !s->sis || !s->sqs || !s->d1 || !s->d2 || !s->pos || !s->power || !s->carrier
        || !s->marks || !s->armed || !s->state || !s->clk || !s->shift || !s->last) {
        cb_fsk_rx_free(s);
        return NULL;
    }
    return s;
}

void cb_fsk_rx_free(cb_fsk_rx_t *s)
{
    if (s == NULL)
        return;
    free(s->live);
    free(s->on);
    free(s->ph_mark);
    free(s->ph_space);
    free(s->inc_mark);
    free(s->inc_space);
    free(s->im);
    free(s->qm);
    free(s->is);
    free(s->qs);
    free(s->sim);
    free(s->sqm);
    free(s->sis);
    free(s->sqs);
    free(s->d1);
    free(s->d2);
    free(s->pos);
    free(s->power);
    free(s->carrier);
    free(s->marks);
    free(s->armed);
    free(s->state);
    free(s->clk);
    free(s->shift);
    free(s->last);
    free(s);
}

int cb_fsk_rx_start(cb_fsk_rx_t *s, int chan, int standard)
{
    if (chan < 0 || chan >= s->n || (standard != CB_FSK_BELL202 && standard != CB_FSK_V23))
        return CB_ERR_INVALID;
    s->inc_mark[chan] = phase_inc(MARK_HZ[standard]);
    s->inc_space[chan] = phase_inc(SPACE_HZ[standard]);
    s->ph_mark[chan] = s->ph_space[chan] = 0;
    memset(s->im[chan], 0, sizeof(s->im[chan]));
    memset(s->qm[chan], 0, sizeof(s->qm[chan]));
    memset(s->is[chan], 0, sizeof(s->is[chan]));
    memset(s->qs[chan], 0, sizeof(s->qs[chan]));
    s->sim[chan] = s->sqm[chan] = s->sis[chan] = s->sqs[chan] = 0.0f;
    s->d1[chan] = s->d2[chan] = 0.0f;
    s->pos[chan] = 0;
    s->power[chan] = 0.0f;
    s->carrier[chan] = 0;
    s->marks[chan] = 0;
    s->armed[chan] = 0;
    s->state[chan] = 0;
    s->last[chan] = 1;
    s->on[chan] = 1;
    FSK_LIVE_SET(s->live, chan);
    return CB_OK;
}

int cb_fsk_rx_stop(cb_fsk_rx_t *s, int chan)
{
    if (chan < 0 || chan >= s->n)
        return CB_ERR_INVALID;
    s->on[chan] = 0;
    FSK_LIVE_CLEAR(s->live, chan);
    return CB_OK;
}

int cb_fsk_rx_feed(cb_fsk_rx_t *s, const int16_t *amp, int len, cb_ring_t *ev, uint64_t tick0)
{
    if (s->n != 1 || len % CB_TICK_SAMPLES)
        return CB_ERR_INVALID;
    for (int i = 0; i < len / CB_TICK_SAMPLES; i++)
        cb_fsk_rx_tick(s, amp + i * CB_TICK_SAMPLES, ev, tick0 + (uint64_t) i);
    return len / CB_TICK_SAMPLES;
}
