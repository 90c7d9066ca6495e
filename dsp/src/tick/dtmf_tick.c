/* DTMF per tick: the Goertzel bank over all channels, decisions once per block. No
 * allocation, no libm. */
#include <math.h>
#include <string.h>
#include "cb_dsp.h"
#include "dtmf_priv.h"

typedef float v8f __attribute__((vector_size(32)));

#define DTMF_STEP(a, b, x) do { v8f t_ = coef * (a) - (b) + (x); (b) = (a); (a) = t_; } while (0)

/* One filter (2 cos w0 = k) over channels c..end-1 of a group (end - c a multiple of DTMF_LANES);
 * inlined into each of goertzel_tick's clones, so it is built for their instruction sets. */
static inline __attribute__((always_inline)) void step_group(float k, float *q1, float *q2, const float *x, int np,
                                                             int c, int end)
{
    const v8f coef = {k, k, k, k, k, k, k, k};
    for (; c + 4 * DTMF_LANES <= end; c += 4 * DTMF_LANES) {
        v8f a0, a1, a2, a3, b0, b1, b2, b3;
        memcpy(&a0, q1 + c, sizeof a0);
        memcpy(&a1, q1 + c + 8, sizeof a1);
        memcpy(&a2, q1 + c + 16, sizeof a2);
        memcpy(&a3, q1 + c + 24, sizeof a3);
        memcpy(&b0, q2 + c, sizeof b0);
        memcpy(&b1, q2 + c + 8, sizeof b1);
        memcpy(&b2, q2 + c + 16, sizeof b2);
        memcpy(&b3, q2 + c + 24, sizeof b3);
        for (int j = 0; j < CB_TICK_SAMPLES; j++) {
            const float *xr = x + (size_t) j * (size_t) np + (size_t) c;
            v8f x0, x1, x2, x3;
            memcpy(&x0, xr, sizeof x0);
            memcpy(&x1, xr + 8, sizeof x1);
            memcpy(&x2, xr + 16, sizeof x2);
            memcpy(&x3, xr + 24, sizeof x3);
            DTMF_STEP(a0, b0, x0);
            DTMF_STEP(a1, b1, x1);
            DTMF_STEP(a2, b2, x2);
            DTMF_STEP(a3, b3, x3);
        }
        memcpy(q1 + c, &a0, sizeof a0);
        memcpy(q1 + c + 8, &a1, sizeof a1);
        memcpy(q1 + c + 16, &a2, sizeof a2);
        memcpy(q1 + c + 24, &a3, sizeof a3);
        memcpy(q2 + c, &b0, sizeof b0);
        memcpy(q2 + c + 8, &b1, sizeof b1);
        memcpy(q2 + c + 16, &b2, sizeof b2);
        memcpy(q2 + c + 24, &b3, sizeof b3);
    }
    for (; c < end; c += DTMF_LANES) {
        v8f a, b;
        memcpy(&a, q1 + c, sizeof a);
        memcpy(&b, q2 + c, sizeof b);
        for (int j = 0; j < CB_TICK_SAMPLES; j++) {
            v8f xv;
            memcpy(&xv, x + (size_t) j * (size_t) np + (size_t) c, sizeof xv);
            DTMF_STEP(a, b, xv);
        }
        memcpy(q1 + c, &a, sizeof a);
        memcpy(q2 + c, &b, sizeof b);
    }
}

/* The group g's channels: c0..end-1 of the padded bank. */
static inline int group_end(const cb_dtmf_rx_t *s, int g, int limit)
{
    int end = (g + 1) * DTMF_GROUP;
    return end < limit ? end : limit;
}

/* The Goertzel updates: for each filter, 8 lanes of channels at a time, the 8 samples of
 * the tick kept in registers; four vectors are stepped together so their dependency chains
 * overlap. Groups of DTMF_GROUP channels none of which detects are skipped. */
CB_MULTIVERSION
static void goertzel_tick(cb_dtmf_rx_t *s)
{
    const int np = s->npad;
    for (int f = 0; f < DTMF_FILTERS; f++) {
        float *q1 = s->q1 + (size_t) f * (size_t) np;
        float *q2 = s->q2 + (size_t) f * (size_t) np;
        for (int g = 0; g < s->ngroups; g++)
            if (s->gcount[g] != 0)
                step_group(s->coef[f], q1, q2, s->x, np, g * DTMF_GROUP, group_end(s, g, np));
    }
    for (int g = 0; g < s->ngroups; g++) {
        if (s->gcount[g] == 0)
            continue;
        const int c0 = g * DTMF_GROUP, end = group_end(s, g, np);
        for (int j = 0; j < CB_TICK_SAMPLES; j++) {
            const float *x = s->x + (size_t) j * (size_t) np;
            for (int c = c0; c < end; c++)
                s->energy[c] += x[c] * x[c];
        }
    }
}

/* The tone of filter f in channel c, from the partial sum over the first half and the
 * whole block (S(n) = e^{-j w0 (n-1)} (s1 - e^{-j w0} s2)): its frequency offset shows as
 * the phase it advances between the halves beyond nominal (theta, with the offset at
 * theta * fs / (2 pi N/2)). Returns 0 if that is beyond the limit; otherwise its energy in
 * the block, corrected for the Goertzel's loss at that offset (sinc^2 theta), in *energy. */
static int tone_energy(const cb_dtmf_rx_t *s, int f, size_t i, float *energy)
{
    float cw = s->cw[f], sw = s->sw[f];
    /* y = s1 - e^{-j w0} s2 = (s1 - cw s2) + j (sw s2) */
    float ya_re = s->h1[i] - cw * s->h2[i], ya_im = sw * s->h2[i];
    float yf_re = s->q1[i] - cw * s->q2[i], yf_im = sw * s->q2[i];
    float sa_re = s->rh_re[f] * ya_re - s->rh_im[f] * ya_im;
    float sa_im = s->rh_re[f] * ya_im + s->rh_im[f] * ya_re;
    float sf_re = s->rn_re[f] * yf_re - s->rn_im[f] * yf_im;
    float sf_im = s->rn_re[f] * yf_im + s->rn_im[f] * yf_re;
    float sb_re = sf_re - sa_re, sb_im = sf_im - sa_im;
    float zr = sb_re * sa_re + sb_im * sa_im;
    float zi = sb_im * sa_re - sb_re * sa_im;
    float m = sqrtf(zr * zr + zi * zi);
    if (m <= 0.0f)
        return 0;
    float c = zr / m;                  /* cos theta */
    if (c < s->cos_lim[f])
        return 0;
    /* theta^2 from cos theta (series in u = 1 - cos theta, good to |theta| ~ 1.6) */
    float u = 1.0f - c;
    float th2 = 2.0f * u + u * u / 3.0f + 8.0f * u * u * u / 45.0f;
    float g = th2 > 1e-6f ? (1.0f - c * c) / th2 : 1.0f;
    if (g < 0.2f)
        g = 0.2f;
    *energy = (sf_re * sf_re + sf_im * sf_im) * (2.0f / CB_DTMF_BLOCK) / g;
    return 1;
}

static char block_digit(const cb_dtmf_rx_t *s, int c)
{
    const size_t np = (size_t) s->npad;
    float p[DTMF_FILTERS];
    for (int f = 0; f < DTMF_FILTERS; f++) {
        size_t i = (size_t) f * np + (size_t) c;
        float a = s->q1[i], b = s->q2[i];
        p[f] = a * a + b * b - s->coef[f] * a * b;
    }
    int r = 0, k = 4;
    for (int f = 1; f < 4; f++) {
        if (p[f] > p[r])
            r = f;
        if (p[4 + f] > p[k])
            k = 4 + f;
    }
    if (p[r] < s->thr || p[k] < s->thr)
        return 0;
    /* twist: high up to 4 dB louder, low up to 8 dB louder */
    if (p[k] > p[r] * 2.5119f || p[r] > p[k] * 6.3096f)
        return 0;
    /* each tone stands 8 dB above the rest of its group */
    for (int f = 0; f < 4; f++) {
        if (f != r && p[f] * 6.3096f > p[r])
            return 0;
        if (4 + f != k && p[4 + f] * 6.3096f > p[k])
            return 0;
    }
    /* each near its nominal frequency, and together nearly all of the block's energy: a tone
     * covering only part of the block (at most 80 of 96 samples when a 20 ms tone straddles
     * two blocks) falls short */
    float er, ek;
    if (!tone_energy(s, r, (size_t) r * np + (size_t) c, &er) || !tone_energy(s, k, (size_t) k * np + (size_t) c, &ek))
        return 0;
    if (er + ek < 0.88f * s->energy[c])
        return 0;
    return cb_dtmf_keys[r * 4 + (k - 4)];
}

static void block_end_chan(cb_dtmf_rx_t *s, cb_ring_t *ev, uint64_t tick, int c)
{
    char d = block_digit(s, c);
    if (s->cur[c] == 0) {
        if (d != 0 && d == s->cand[c]) {
            s->cur[c] = d;
            s->blocks[c] = 2;
            s->miss[c] = 0;
            cb_ring_put_event(ev, tick, c, CB_EV_DTMF_DOWN, d, 0);
        }
        s->cand[c] = d;
        return;
    }
    if (d == s->cur[c]) {
        s->blocks[c]++;
        s->miss[c] = 0;
        return;
    }
    if (d != 0 || ++s->miss[c] >= 2) {
        cb_ring_put_event(ev, tick, c, CB_EV_DTMF, s->cur[c], s->blocks[c] * CB_DTMF_BLOCK / 8);
        s->cur[c] = 0;
        s->cand[c] = d;
        s->miss[c] = 0;
    }
}

/* The block's decisions, for the enabled channels of the groups that detect (in channel order). */
static void block_end(cb_dtmf_rx_t *s, cb_ring_t *ev, uint64_t tick)
{
    for (int g = 0; g < s->ngroups; g++) {
        if (s->gcount[g] == 0)
            continue;
        for (int c = g * DTMF_GROUP, end = group_end(s, g, s->n); c < end; c++)
            if (s->enabled[c])
                block_end_chan(s, ev, tick, c);
    }
}

/* The filter states of the groups that detect: copied at half block (h = q) or zeroed at its end
 * (q, and the energy). A group that starts detecting again has its own zeroed (group_wakes). */
static void live_groups(cb_dtmf_rx_t *s, int copy)
{
    const size_t np = (size_t) s->npad;
    for (int g = 0; g < s->ngroups; g++) {
        if (s->gcount[g] == 0)
            continue;
        const size_t c0 = (size_t) g * DTMF_GROUP;
        const size_t len = (size_t) (group_end(s, g, s->npad) - (int) c0) * sizeof(float);
        for (int f = 0; f < DTMF_FILTERS; f++) {
            const size_t i = (size_t) f * np + c0;
            if (copy) {
                memcpy(s->h1 + i, s->q1 + i, len);
                memcpy(s->h2 + i, s->q2 + i, len);
            } else {
                memset(s->q1 + i, 0, len);
                memset(s->q2 + i, 0, len);
            }
        }
        if (!copy)
            memset(s->energy + c0, 0, len);
    }
}

void cb_dtmf_rx_tick(cb_dtmf_rx_t *s, const int16_t *amp, cb_ring_t *ev, uint64_t tick)
{
    const int n = s->n, np = s->npad;
    for (int g = 0; g < s->ngroups; g++) {
        if (s->gcount[g] == 0)
            continue;
        const int c0 = g * DTMF_GROUP, end = group_end(s, g, n);
        for (int j = 0; j < CB_TICK_SAMPLES; j++) {
            float *x = s->x + (size_t) j * (size_t) np;
            const int16_t *a = amp + (size_t) j * (size_t) n;
            for (int c = c0; c < end; c++)
                x[c] = (float) a[c];
        }
    }
    goertzel_tick(s);
    s->t++;
    if (s->t == DTMF_TICKS / 2) {
        live_groups(s, 1);
    } else if (s->t == DTMF_TICKS) {
        block_end(s, ev, tick);
        live_groups(s, 0);
        s->t = 0;
    }
}

/* The generator: two phase accumulators per channel over a sine table. */
void cb_dtmf_tx_tick(cb_dtmf_tx_t *s, int32_t *acc, cb_ring_t *ev, uint64_t tick)
{
    const int n = s->n;
    for (int c = 0; c < n; c++) {
        const char *d = s->digits[c];
        if (d == NULL)
            continue;
        for (int j = 0; j < CB_TICK_SAMPLES; j++) {
            if (s->t[c] == 0) {
                int k = cb_dtmf_key_index(d[s->pos[c]]);
                /* phase increments of the row and column tones: f / 8000 of a turn */
                s->inc1[c] = (uint32_t) (cb_dtmf_freqs[k / 4] * 536870.912f + 0.5f);
                s->inc2[c] = (uint32_t) (cb_dtmf_freqs[4 + k % 4] * 536870.912f + 0.5f);
                s->ph1[c] = s->ph2[c] = 0;
            }
            if (s->t[c] < s->on[c]) {
                s->ph1[c] += s->inc1[c];
                s->ph2[c] += s->inc2[c];
                acc[j * n + c] += (int32_t) (s->a1[c] * s->sine[s->ph1[c] >> (32 - DTMF_SINE_BITS)]
                                             + s->a2[c] * s->sine[s->ph2[c] >> (32 - DTMF_SINE_BITS)]);
            }
            if (++s->t[c] >= s->on[c] + s->off[c]) {
                s->t[c] = 0;
                if (d[++s->pos[c]] == '\0') {
                    s->digits[c] = NULL;
                    cb_ring_put_event(ev, tick, c, CB_EV_DTMF_TX_DONE, s->pos[c], 0);
                    break;
                }
            }
        }
    }
}
