/* FSK modems, per tick: no allocation, no libm (sine tables are in the bank). */
#include "cb_dsp.h"
#include "fsk_priv.h"

#define QUARTER (1U << 30)                  /* a quarter turn of the phase accumulator */
#define SINE_SHIFT (32 - FSK_SINE_BITS)
/* Carrier thresholds as mean square of 16-bit samples: (32768 * 10^((L - 3.14) / 20))^2 / 2 */
#define CARRIER_ON 12946.0f                 /* -40 dBm0 */
#define CARRIER_OFF 6489.0f                 /* -43 dBm0 */

static inline int tx_bit(const cb_fsk_tx_t *s, int c, int32_t i)
{
    if (i < s->seize[c])
        return i & 1;                       /* 0101... channel seizure */
    i -= s->seize[c];
    if (i < s->mark[c])
        return 1;
    i -= s->mark[c];
    int32_t byte = i / 10, k = i % 10;
    if (byte >= s->len[c] || k == 9)
        return 1;                           /* stop bit, trailing marks */
    if (k == 0)
        return 0;                           /* start bit */
    return (s->bytes[c][byte] >> (k - 1)) & 1;
}

static void tx_chan(cb_fsk_tx_t *s, int32_t *acc, cb_ring_t *ev, uint64_t tick, int c)
{
    const int n = s->n;
    for (int j = 0; j < CB_TICK_SAMPLES; j++) {
        if (s->bit[c] >= s->nbits[c]) {
            s->bytes[c] = NULL;
            FSK_LIVE_CLEAR(s->live, c);
            cb_ring_put_event(ev, tick, c, CB_EV_FSK_TX_DONE, s->len[c], 0);
            break;
        }
        s->phase[c] += tx_bit(s, c, s->bit[c]) ? s->inc_mark[c] : s->inc_space[c];
        acc[j * n + c] += (int32_t) (s->amp[c] * s->sine[s->phase[c] >> SINE_SHIFT]);
        s->clk[c] += 3;                 /* 1200 / 8000 = 3 / 20 of a bit per sample */
        if (s->clk[c] >= 20) {
            s->clk[c] -= 20;
            s->bit[c]++;
        }
    }
}

/* The live channels, in channel order (a word is read once: a channel the visit ends stays
 * visited this tick). */
#define FSK_FOR_LIVE(s, c, body)                                                  \
    for (int w_ = 0; w_ < FSK_WORDS((s)->n); w_++)                                \
        for (uint64_t b_ = (s)->live[w_]; b_ != 0; b_ &= b_ - 1) {                \
            const int c = 64 * w_ + __builtin_ctzll(b_);                          \
            body;                                                                 \
        }

void cb_fsk_tx_tick(cb_fsk_tx_t *s, int32_t *acc, cb_ring_t *ev, uint64_t tick)
{
    FSK_FOR_LIVE(s, c, tx_chan(s, acc, ev, tick, c))
}

static void rx_chan(cb_fsk_rx_t *s, const int16_t *amp, cb_ring_t *ev, uint64_t tick, int c)
{
    const int n = s->n;
    /* The demodulator's state in locals for the tick (the arrays are all float: each store to one
       would make the compiler load the others again), stored back at its end. */
    uint32_t pm = s->ph_mark[c], ps = s->ph_space[c];
    const uint32_t inc_m = s->inc_mark[c], inc_s = s->inc_space[c];
    float sim = s->sim[c], sqm = s->sqm[c], sis = s->sis[c], sqs = s->sqs[c];
    float d1 = s->d1[c], d2 = s->d2[c], power = s->power[c];
    float *wim = s->im[c], *wqm = s->qm[c], *wis = s->is[c], *wqs = s->qs[c];
    const float *sine = s->sine;
    int p = s->pos[c];
    for (int j = 0; j < CB_TICK_SAMPLES; j++) {
        float x = (float) amp[j * n + c];
        pm += inc_m;
        ps += inc_s;
        float im = x * sine[(pm + QUARTER) >> SINE_SHIFT], qm = x * sine[pm >> SINE_SHIFT];
        float is = x * sine[(ps + QUARTER) >> SINE_SHIFT], qs = x * sine[ps >> SINE_SHIFT];
        sim += im - wim[p];
        sqm += qm - wqm[p];
        sis += is - wis[p];
        sqs += qs - wqs[p];
        wim[p] = im;
        wqm[p] = qm;
        wis[p] = is;
        wqs[p] = qs;
        p = p + 1 == FSK_WIN ? 0 : p + 1;
        float em = sim * sim + sqm * sqm;
        float es = sis * sis + sqs * sqs;
        /* decide on the last three samples' difference: fewer errors in noise */
        float d = em - es;
        float dsum = d + d1 + d2;
        d2 = d1;
        d1 = d;
        uint8_t bit = dsum > 0.0f;
        /* a tone is there (not a drop-out, not noise): one window holds most of the recent power */
        uint8_t tonal = (em > es ? em : es) > 8.0f * power;
        uint8_t strong = em + es > 5.0f * power;
        power += 0.02f * (x * x - power);

        uint8_t car = s->carrier[c] ? power > CARRIER_OFF : power > CARRIER_ON;
        if (car != s->carrier[c]) {
            s->carrier[c] = car;
            s->armed[c] = 0;
            s->marks[c] = 0;
            s->state[c] = 0;
            cb_ring_put_event(ev, tick, c, CB_EV_FSK_CARRIER, car, 0);
        }
        if (!car) {
            s->last[c] = bit;
            continue;
        }
        if (s->state[c] == 0) {
            if (bit) {
                if (++s->marks[c] >= CB_FSK_PREAMBLE_MARKS * 20 / 3)
                    s->armed[c] = 1;
            } else {
                if (s->armed[c] && s->last[c]) {
                    s->state[c] = 1;    /* a start bit begins: sample it mid-bit */
                    s->clk[c] = 0;
                    s->shift[c] = 0;
                }
                s->marks[c] = 0;
            }
        } else {
            s->clk[c] += 3;
            int32_t k = s->state[c] - 1;      /* the bit waited for */
            if (s->clk[c] >= 20 * k + 10) {
                if (k == 0) {
                    s->state[c] = bit || !tonal ? 0 : 2;  /* a false start if not still a space tone */
                } else if (k <= 8) {
                    s->shift[c] |= bit << (k - 1);
                    s->state[c]++;
                } else {
                    if (bit && strong)    /* a good stop bit, carrier still there */
                        cb_ring_put_event(ev, tick, c, CB_EV_FSK_BYTE, s->shift[c], 0);
                    s->state[c] = 0;
                    s->marks[c] = 0;
                }
            }
        }
        s->last[c] = bit;
    }
    s->ph_mark[c] = pm;
    s->ph_space[c] = ps;
    s->sim[c] = sim;
    s->sqm[c] = sqm;
    s->sis[c] = sis;
    s->sqs[c] = sqs;
    s->d1[c] = d1;
    s->d2[c] = d2;
    s->power[c] = power;
    s->pos[c] = p;
}

void cb_fsk_rx_tick(cb_fsk_rx_t *s, const int16_t *amp, cb_ring_t *ev, uint64_t tick)
{
    FSK_FOR_LIVE(s, c, rx_chan(s, amp, ev, tick, c))
}
