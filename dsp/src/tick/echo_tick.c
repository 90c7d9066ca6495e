/*
 * The echo canceller's per-tick work (see cb_echo.h for what it does): no allocation, no
 * locks, no Python.
 *
 * Per tick of a channel that is on: the Rin tick given last is taken (zeros if none was);
 * the tone disabler looks at both paths; the narrowband and double-talk detectors decide
 * whether the background filter may adapt; both filters run sample by sample over the
 * window behind the bulk delay (the background's update of one sample fused into the
 * pass of the next); the foreground's residual, or the NLP's comfort noise, is Sout;
 * then the filters may swap taps and the bulk-delay estimator takes the tick's envelopes.
 *
 * The filters use GCC's vector types, 8 floats wide: on x86-64-v3 (the function clones of
 * CB_MULTIVERSION) they are AVX2 registers with FMA, on the baseline pairs of SSE ones.
 */
#include <string.h>
#include "cb_dsp.h"
#include "echo_priv.h"

typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4)));    /* unaligned loads */

#define MU 0.5f                 /* the background's NLMS step */
#define MU_FAST 1.0f            /* ... until its residual is first under 1/100 of Sin (20 dB) */
#define MU_FAST_UNTIL 0.01f
#define YOUNG_TAPS 128         /* a new window learns on this many taps first (NLMS converges */
#define YOUNG_TICKS 2000        /* in proportion to its length), for at most these ticks */
#define COPY_TICKS 6            /* ... for this many ticks in a row */
#define COPY_BETTER 0.7f        /* the background's taps go forward when its residual is 1.5 dB under */
#define DT_HANG 30              /* double talk: ticks of hangover */
#define ERL_MAX_GAIN 0.25f      /* the echo gain the double-talk detector assumes at most (6 dB) */
#define ERL_MIN_GAIN 0.001f     /* ... and at least (30 dB) */
#define TRUST_TICKS 500         /* after a copy 6 dB better, copies go as usual for these ticks */
#define POOR_TICKS 300          /* ticks of poor cancelling before a converged filter is not */
#define FAST_TICKS 500          /* a new window learns at the fast step for at most these ticks */
#define NB_HANG 20              /* narrowband Rin: ticks of hangover */
#define NB_GAIN 0.004f          /* narrowband: the order-4 predictor leaves under 1/250 (-24 dB) */
#define COR_DECAY (1.0f - 1.0f / 256.0f)    /* the bulk-delay correlation's memory, per tick */
#define DELAY_CHECK 16          /* ticks between looks at the correlation's peak */
#define TAPS_CHECK 64           /* ticks between readings of the delay from the taps */
#define DIS_PRESENT 200         /* ticks of 2100 Hz before a reversal trips the disabler */
#define DIS_ANS 600             /* ticks of 2100 Hz without reversal before CB_EV_ANS (0) */
#define DIS_GAP 20              /* ticks without it that still count as the same tone */
#define DIS_QUIET 250           /* ticks both paths are quiet before the canceller is back on */

typedef int v8i __attribute__((vector_size(32)));

/* The sum of a vector's 8 lanes. */
#define HSUM(v) ((((v)[0] + (v)[4]) + ((v)[1] + (v)[5])) + (((v)[2] + (v)[6]) + ((v)[3] + (v)[7])))

/* Unaligned loads and stores of 8 floats, and a vector of one value. */
#define ld(p) (*(const v8u *) (p))
#define st(p, v) (*(v8u *) (p) = (v))
#define splat(f) ((v8){(f), (f), (f), (f), (f), (f), (f), (f)})

void cb_echo_reset_chan(echo_chan_t *c)
{
    memset(c->wf, 0, CB_ECHO_TAPS_MAX * sizeof(float));
    memset(c->wb, 0, CB_ECHO_TAPS_MAX * sizeof(float));
    memset(c->x, 0, ECHO_XBUF * sizeof(float));
    memset(c->dr, 0, 2 * ECHO_NLAG * sizeof(float));
    memset(c->cor, 0, ECHO_NLAG * sizeof(float));
    c->xn = ECHO_HIST;
    c->fresh = 0;
    c->start = 0;
    c->len = c->taps < YOUNG_TAPS ? c->taps : YOUNG_TAPS;
    c->adapted = 0;
    c->learnt = c->better = 0;
    c->conv = c->poor = c->trust = 0;
    c->gain = ERL_MAX_GAIN;
    c->pst1 = 0.0f;
    c->ex = c->r1 = c->r2 = c->r3 = 0.0;
    c->pa = c->pb_ = 0.0f;
    c->pf = c->pb = c->ps = c->psd = c->pen = c->psn = c->pes = 0.0f;
    c->floor = ECHO_P0;
    c->seed = 0x12345678u;
    c->dt_hold = c->nb_hold = 0;
    memset(c->rk, 0, sizeof c->rk);
    c->dri = 0;
    c->mr = c->ms = 0.0f;
    c->best = -1;
    c->stable = 0;
    c->ticks = 0;
    c->delay = -1;
    memset(c->dis, 0, sizeof c->dis);
    c->phase = 0;
    c->quiet = 0;
}

/* The energy of the window whose newest sample is Rin's x[newest - start], afresh (newest: the
 * Rin sample aligned with the last Sin sample filtered). */
static void window_energy(echo_chan_t *c, int newest)
{
    const float *x = c->x + newest - c->start - c->len + 1;
    double e = 0.0, r1 = 0.0, r2 = 0.0, r3 = 0.0;
    for (int j = 0; j < c->len; j++) {
        e += (double) x[j] * (double) x[j];
        r1 += (double) x[j] * (double) x[j - 1];
        r2 += (double) x[j] * (double) x[j - 2];
        r3 += (double) x[j] * (double) x[j - 3];
    }
    c->ex = e;
    c->r1 = r1;
    c->r2 = r2;
    c->r3 = r3;
}

static void push(echo_chan_t *c, const int16_t *rin)
{
    if (c->fresh) {     /* given twice before a tick: the later one counts */
        for (int s = 0; s < CB_TICK_SAMPLES; s++)
            c->x[c->xn - CB_TICK_SAMPLES + s] = rin ? (float) rin[s] : 0.0f;
        return;
    }
    if (c->xn + CB_TICK_SAMPLES > ECHO_XBUF) {
        memmove(c->x, c->x + c->xn - ECHO_HIST, ECHO_HIST * sizeof(float));
        c->xn = ECHO_HIST;
    }
    for (int s = 0; s < CB_TICK_SAMPLES; s++)
        c->x[c->xn + s] = rin ? (float) rin[s] : 0.0f;
    c->xn += CB_TICK_SAMPLES;
    c->fresh = 1;
}

void cb_echo_rin(cb_echo_t *e, int chan, const int16_t *rin)
{
    if (chan < 0 || chan >= e->n || e->ch[chan].taps == 0)
        return;
    push(&e->ch[chan], rin);
}

static inline void put_event(cb_ring_t *ev, uint64_t tick, int chan, int type, int value, int extra)
{
    if (ev != NULL)
        cb_ring_put_event(ev, tick, chan, type, value, extra);
}

/* One path of the tone disabler over a block of 32 samples `v` (energy `en`) starting at
 * `phase`. Returns 1 when a reversal trips it, and sends CB_EV_ANS (0) after 600 ms without. */
static int dis_path(const echo_tables_t *tab, echo_dis_t *d, const float *v, float en, int phase, cb_ring_t *ev,
                    uint64_t tick, int chan, int path)
{
    float zr = 0.0f, zi = 0.0f;
    if (en >= ECHO_BLOCK * 8.0f * ECHO_P_M40) {
        v8 ar = splat(0.0f), ai = ar;
        for (int k = 0; k < ECHO_BLOCK * 8; k += 8) {
            v8 x = ld(v + k);
            ar += x * ld(tab->cos + phase + k);
            ai += x * ld(tab->sin + phase + k);
        }
        zr = HSUM(ar);
        zi = HSUM(ai);
    }
    const float wr = zr + d->zr, wi = zi + d->zi, we = en + d->en;  /* this block and the last */
    d->zr = zr;
    d->zi = zi;
    d->en = en;
    /* The window three blocks (12 ticks) ago shares no sample with this one: wherever a
     * reversal falls, one of them is wholly before it and the other wholly after, once. */
    const float oldr = d->wr[2], oldi = d->wi[2];
    const float pr = d->wr[0], pi = d->wi[0];       /* the window one block ago */
    d->wr[2] = d->wr[1];
    d->wi[2] = d->wi[1];
    d->wr[1] = pr;
    d->wi[1] = pi;
    d->wr[0] = wr;
    d->wi[0] = wi;
    const float n = (float) (2 * ECHO_BLOCK * 8);
    const float mag = wr * wr + wi * wi;
    /* A tone: half the window's energy in the 2100 Hz term (noise: 1/64), loud enough. */
    int tone = we >= n * ECHO_P_M31 && mag >= 0.3f * n * we;
    if (tone) {
        /* Its rotation per block (offset from 2100 Hz): from consecutive windows that agree. */
        float rr = wr * pr + wi * pi, ri = wi * pr - wr * pi;
        if (rr > 0.0f) {
            float m = rr * rr + ri * ri;
            float inv = m > 0.0f ? 1.0f / __builtin_sqrtf(m) : 0.0f;
            d->ur += 0.5f * (rr * inv - d->ur);
            d->ui += 0.5f * (ri * inv - d->ui);
        }
        /* Within 30 Hz of 2100: cos of the rotation per block >= cos(2 pi 30 * 32 / 8000). */
        float um = d->ur * d->ur + d->ui * d->ui;
        if (d->present > 8 && d->ur < 0.7290f * __builtin_sqrtf(um))
            tone = 0;
    }
    int tripped = 0;
    if (tone) {
        d->present += ECHO_BLOCK;
        d->gap = 0;
        if (d->refractory > 0)
            d->refractory -= ECHO_BLOCK;
        float om = oldr * oldr + oldi * oldi;
        if (d->present > 16 && om >= 0.3f * n * we && d->refractory <= 0) {
            /* The window three blocks ago, turned on by three blocks of the tone's rotation: a
             * reversal leaves it pointing away (more than 90 degrees). */
            float ar = d->ur * d->ur - d->ui * d->ui, ai = 2.0f * d->ur * d->ui;
            float t = ar * d->ur - ai * d->ui;
            ai = ar * d->ui + ai * d->ur;
            ar = t;
            float er = oldr * ar - oldi * ai, ei = oldr * ai + oldi * ar;
            if (wr * er + wi * ei < 0.0f) {
                d->reversals++;
                d->refractory = 152;
                if (d->present >= DIS_PRESENT)
                    tripped = 1;
            }
        }
        if (d->present >= DIS_ANS && d->reversals == 0 && !d->ans_told) {
            d->ans_told = 1;
            put_event(ev, tick, chan, CB_EV_ANS, 0, path);
        }
    } else if (d->present > 0 && (d->gap += ECHO_BLOCK) > DIS_GAP) {
        d->present = d->gap = d->reversals = d->ans_told = d->refractory = 0;
        d->ur = d->ui = 0.0f;
    } else if (d->present > 0) {
        d->present += ECHO_BLOCK;   /* a reversal's window, or a short dropout */
        if (d->refractory > 0)
            d->refractory -= ECHO_BLOCK;
    }
    return tripped;
}

/* Levinson-Durbin on lags 0-4: the order-4 prediction error of a signal with that
 * autocorrelation. */
static float predict4(const float *r)
{
    float a[5] = {1.0f, 0.0f, 0.0f, 0.0f, 0.0f}, t[5];
    float err = r[0];
    for (int i = 1; i <= 4; i++) {
        if (err <= 0.0f)
            return 0.0f;
        float acc = r[i];
        for (int j = 1; j < i; j++)
            acc += a[j] * r[i - j];
        float k = -acc / err;
        for (int j = 0; j <= i; j++)
            t[j] = a[j];
        for (int j = 1; j < i; j++)
            a[j] = t[j] + k * t[i - j];
        a[i] = k;
        err *= 1.0f - k * k;
    }
    return err;
}

/* Apply the background's pending updates (the last two samples') on their own: xprev is the
 * window of the last sample. */
static inline __attribute__((always_inline)) void apply_pending(echo_chan_t *c, const float *xprev)
{
    const v8 va = splat(c->pa), vb = splat(c->pb_);
    for (int j = 0; j < c->len; j += 8)
        st(c->wb + j, ld(c->wb + j) + va * ld(xprev + j - 1) + vb * ld(xprev + j));
    c->pa = c->pb_ = 0.0f;
}

/* The sums of the lanes of four vectors. */
static inline __attribute__((always_inline)) void hsum4(const v8 *pa, const v8 *pb, const v8 *pc, const v8 *pd,
                                                        float *out)
{
    const v8 a = *pa, b = *pb, c = *pc, d = *pd;
    v8 p = __builtin_shuffle(a, b, (v8i){0, 1, 2, 3, 8, 9, 10, 11})
           + __builtin_shuffle(a, b, (v8i){4, 5, 6, 7, 12, 13, 14, 15});
    v8 q = __builtin_shuffle(c, d, (v8i){0, 1, 2, 3, 8, 9, 10, 11})
           + __builtin_shuffle(c, d, (v8i){4, 5, 6, 7, 12, 13, 14, 15});
    v8 r = __builtin_shuffle(p, q, (v8i){0, 1, 8, 9, 4, 5, 12, 13})
           + __builtin_shuffle(p, q, (v8i){2, 3, 10, 11, 6, 7, 14, 15});
    v8 t = r + __builtin_shuffle(r, (v8i){1, 0, 3, 2, 5, 4, 7, 6});
    out[0] = t[0];      /* a */
    out[1] = t[4];      /* b */
    out[2] = t[2];      /* c */
    out[3] = t[6];      /* d */
}

static void copy_taps(float *to, const float *from, int taps)
{
    memcpy(to, from, (size_t) taps * sizeof(float));
}

/* A new window for an echo that starts near `lag`: its first YOUNG_TAPS taps (or all of a
 * shorter filter) from 4 ms (or a quarter of it) before, learning from nothing. */
static void place(echo_chan_t *c, int lag)
{
    c->len = c->taps < YOUNG_TAPS ? c->taps : YOUNG_TAPS;
    const int margin = c->len / 4 < 32 ? c->len / 4 : 32;
    int start = lag - margin;
    c->start = start < 0 ? 0 : start > ECHO_START_MAX ? ECHO_START_MAX : start;
    memset(c->wf, 0, (size_t) c->taps * sizeof(float));
    memset(c->wb, 0, (size_t) c->taps * sizeof(float));
    c->pa = c->pb_ = 0.0f;
    c->pf = c->pb = c->ps;
    c->adapted = 0;
    c->learnt = c->better = 0;
    c->conv = c->poor = c->trust = 0;
    window_energy(c, c->xn - 1);    /* the tick is over: its last sample was filtered */
}

/* The young window grown to the whole filter, keeping what it learnt: the taps cover the same
 * start and reach further behind (the dispersion's tail). */
static void widen(echo_chan_t *c)
{
    const int grow = c->taps - c->len;
    memmove(c->wf + grow, c->wf, (size_t) c->len * sizeof(float));
    memmove(c->wb + grow, c->wb, (size_t) c->len * sizeof(float));
    memset(c->wf, 0, (size_t) grow * sizeof(float));
    memset(c->wb, 0, (size_t) grow * sizeof(float));
    c->len = c->taps;
    c->pa = c->pb_ = 0.0f;
    window_energy(c, c->xn - 1);
}

/* The bulk delay: the correlation's peak decides where the window goes; a converged filter's
 * taps say where the echo starts. */
static inline void bulk_delay(echo_chan_t *c, int converged, int cancelling)
{
    const int L = c->len;
    if (cancelling && c->ticks % TAPS_CHECK == 0) {
        float mx = 0.0f;
        for (int j = 0; j < L; j++) {
            float a = c->wf[j] < 0 ? -c->wf[j] : c->wf[j];
            mx = a > mx ? a : mx;
        }
        int j = L - 1;
        while (j > 0 && (c->wf[j] < 0 ? -c->wf[j] : c->wf[j]) < 0.2f * mx)
            j--;
        if (mx > 0.0f)
            c->delay = c->start + L - 1 - j;
    }
    if (c->ticks % DELAY_CHECK != 0)
        return;
    /* The peak: the largest value 8 lanes at a time, then where it is. */
    v8 vm = ld(c->cor);
    for (int i = 8; i < ECHO_NLAG; i += 8) {
        v8 v = ld(c->cor + i);
        v8i gt = v > vm;
        vm = (v8) ((gt & (v8i) v) | (~gt & (v8i) vm));
    }
    float top = vm[0];
    for (int i = 1; i < 8; i++)
        top = vm[i] > top ? vm[i] : top;
    if (top <= 0.0f)
        return;
    int k = 0;
    while (c->cor[k] != top)
        k++;
    int b = ECHO_NLAG - 1 - k;
    c->stable = c->best >= 0 && (b - c->best <= 1 && c->best - b <= 1) ? c->stable + 1 : 0;
    c->best = b;
    if (converged)
        return;
    if (c->delay < 0 || c->stable >= 3)
        c->delay = b * 8;
    /* The window must hold the peak and what follows it (6 ms, or half the window). */
    int need = L / 2 < 48 ? L / 2 : 48;
    if (c->stable < 3 || (b * 8 >= c->start && b * 8 + need <= c->start + L))
        return;
    place(c, b * 8);
}

/* The tone disabler, once a block (bt 0): Rin's block, and the block of what Sin holds but our
 * own echo (the residual while the canceller is on, Sin itself while it is tone-disabled), so the
 * echo of our speech never masks a far-side tone. `es` is this tick's energy of that. */
static inline void disabler(const echo_tables_t *tab, echo_chan_t *c, int ch, int bt, int phase, float blk_er,
                            float es, cb_ring_t *ev, uint64_t tick)
{
    const float blk_es = c->blk_es + es;
    c->blk_es = bt == 0 ? 0.0f : blk_es;
    if (!(c->flags & CB_ECHO_DISABLER) || bt != 0)
        return;
    int bphase = (phase + ECHO_PHASES - (ECHO_BLOCK - 1) * CB_TICK_SAMPLES) % ECHO_PHASES;
    int trip = dis_path(tab, &c->dis[0], c->x + c->xn - ECHO_BLOCK * CB_TICK_SAMPLES, blk_er, bphase, ev, tick,
                        ch, 0);
    trip |= dis_path(tab, &c->dis[1], c->sinh, blk_es, bphase, ev, tick, ch, 1) << 1;
    if (c->state == CB_ECHO_ON && trip) {
        c->state = CB_ECHO_TONE_DISABLED;     /* from the next tick */
        c->quiet = 0;
        put_event(ev, tick, ch, CB_EV_ANS, 1, (trip & 1) ? 0 : 1);
        put_event(ev, tick, ch, CB_EV_ECHO, CB_ECHO_TONE_DISABLED, CB_ECHO_BY_TONE);
    }
}

/* One tick of channel `ch`: sin[8] in, sout[8] out (may be the same). */
CB_MULTIVERSION
static void chan_tick(const echo_tables_t *tab, echo_chan_t *c, int ch, const int16_t *sin, int16_t *sout,
                      cb_ring_t *ev, uint64_t tick)
{
    const int L = c->len;
    if (!c->fresh)
        push(c, NULL);
    c->fresh = 0;
    c->ticks++;
    float s[CB_TICK_SAMPLES] __attribute__((aligned(32)));
    const float *rin = c->x + c->xn - CB_TICK_SAMPLES;
    float es = 0.0f, er = 0.0f, as = 0.0f, ar = 0.0f;
    for (int i = 0; i < CB_TICK_SAMPLES; i++) {
        s[i] = (float) sin[i];
        es += s[i] * s[i];
        er += rin[i] * rin[i];
        as += s[i] < 0 ? -s[i] : s[i];
        ar += rin[i] < 0 ? -rin[i] : rin[i];
    }
    const int bt = (int) (c->ticks % ECHO_BLOCK);    /* 0: this tick ends a block */
    const int phase = c->phase;
    c->phase = (phase + CB_TICK_SAMPLES) % ECHO_PHASES;
    float *slot = c->sinh + (bt == 0 ? ECHO_BLOCK - 1 : bt - 1) * CB_TICK_SAMPLES;
    const float blk_er = c->blk_er + er;
    c->blk_er = bt == 0 ? 0.0f : blk_er;

    if (c->state == CB_ECHO_TONE_DISABLED) {
        memcpy(slot, s, sizeof s);
        disabler(tab, c, ch, bt, phase, blk_er, es, ev, tick);
        float loud = es > er ? es : er;
        c->quiet = loud < CB_TICK_SAMPLES * ECHO_P_M36 ? c->quiet + 1 : 0;
        if (c->quiet >= DIS_QUIET) {
            c->state = CB_ECHO_ON;
            c->pa = c->pb_ = 0.0f;
            window_energy(c, c->xn - CB_TICK_SAMPLES - 1);  /* before this tick's first */
            put_event(ev, tick, ch, CB_EV_ECHO, CB_ECHO_ON, CB_ECHO_BY_TONE_END);
        }
    }
    if (c->state != CB_ECHO_ON) {
        if (sout != sin)
            memcpy(sout, sin, CB_TICK_SAMPLES * sizeof *sin);
        return;
    }

    /* Narrowband Rin (tones), once a block: order-4 prediction of its smoothed autocorrelation. */
    if (bt == 0 && blk_er >= ECHO_BLOCK * CB_TICK_SAMPLES * ECHO_P_M45) {
        const float *xb = c->x + c->xn - ECHO_BLOCK * CB_TICK_SAMPLES;
        for (int k = 0; k <= 4; k++) {
            v8 acc = splat(0.0f);
            for (int i = 0; i < ECHO_BLOCK * CB_TICK_SAMPLES; i += 8)
                acc += ld(xb + i) * ld(xb + i - k);
            c->rk[k] += 0.5f * (HSUM(acc) - c->rk[k]);
        }
        if (predict4(c->rk) < NB_GAIN * c->rk[0])
            c->nb_hold = NB_HANG;
    }
    if (c->nb_hold > 0)
        c->nb_hold--;

    /* Double talk. Sin louder than half of the window's Rin power, smoothed (an echo path returns
     * at least 6 dB less); or the last two ticks 9 dB above the echo this line returns (its
     * gain, Sin over Rin: learnt within 10 ms when it falls, over a second when it rises, and
     * never above 6 dB's), so that near-end speech or a key on a line that returns little echo
     * is seen in its first tick. */
    const float px = (float) (c->ex / L);
    const float pst = es / CB_TICK_SAMPLES;
    const float p2 = 0.5f * (pst + c->pst1);
    c->pst1 = pst;
    c->psd += 0.125f * (pst - c->psd);
    if (px >= ECHO_P_M45) {
        float g = c->psd / px;
        g = g > ERL_MAX_GAIN ? ERL_MAX_GAIN : g < ERL_MIN_GAIN ? ERL_MIN_GAIN : g;
        c->gain += (g < c->gain ? 0.1f : 0.001f) * (g - c->gain);
    }
    if ((p2 > 8.0f * c->gain * px && p2 > ECHO_P_M45) || (c->psd > 0.5f * px && c->psd > ECHO_P_M45))
        c->dt_hold = DT_HANG;
    else if (c->dt_hold > 0)
        c->dt_hold--;
    /* Learning needs far-end speech and an echo worth cancelling: a line whose Sin is under
     * -58 dBm0 (an idle A-law line decodes to a constant 8) has nothing to learn from. */
    const int adapt = c->dt_hold == 0 && c->nb_hold == 0 && px >= ECHO_P_M50 && c->psd >= ECHO_P_M58;

    /* The filters. Sample i's background output is its pass over the taps as they were,
     * plus the last sample's update seen through this window (pend times the windows' lag-1
     * product): the update itself is stored in the same pass, off the chain of samples. */
    const double delta = (double) L * ECHO_P_M60;
    float ef2 = 0.0f, eb2 = 0.0f;
    float out[CB_TICK_SAMPLES] __attribute__((aligned(32)));
    float *x = c->x;
    float *wf = c->wf, *wb = c->wb;
    const int base = c->xn - CB_TICK_SAMPLES - c->start;   /* window end of sample 0 */
    double ex = c->ex, r1 = c->r1, r2 = c->r2, r3 = c->r3;
    double enter = 0.0;
    for (int i = 0; i < CB_TICK_SAMPLES; i++)
        enter += (double) x[base + i] * (double) x[base + i];
    /* A window under -62 dBm0 (an idle A-law line sends a constant 8) returns no echo worth the
     * filters' work. */
    const int idle = ex + enter < (double) L * ECHO_P_M62 && c->pa == 0.0f && c->pb_ == 0.0f;
    if (!adapt && (c->pa != 0.0f || c->pb_ != 0.0f))
        apply_pending(c, x + base - L);
    /* The windows' energies and lag products first, off the chain of samples. */
    float l1[CB_TICK_SAMPLES], l2[CB_TICK_SAMPLES], l3[CB_TICK_SAMPLES];
    const double ex0 = ex;
    for (int i = 0; i < CB_TICK_SAMPLES; i++) {
        const float *in = x + base + i, *out_ = x + base + i - L;
        const double xin = in[0], xout = out_[0];
        ex += xin * xin - xout * xout;
        r1 += xin * in[-1] - xout * out_[-1];
        r2 += xin * in[-2] - xout * out_[-2];
        r3 += xin * in[-3] - xout * out_[-3];
        l1[i] = (float) r1;
        l2[i] = (float) r2;
        l3[i] = (float) r3;
    }
    /* One step size for the tick: normalised by the larger of its windows' energies at its
     * two ends (never a larger step than NLMS's when Rin starts within the tick). */
    if (c->pb < MU_FAST_UNTIL * c->ps || c->adapted >= FAST_TICKS)
        c->learnt = 1;
    const float mu = c->learnt ? MU : MU_FAST;
    const float inv = mu / (float) ((ex > ex0 ? ex : ex0) + delta);
    /* Two samples a pass. The background's outputs are its taps as they were before the last
     * two samples' updates (pa, pb: pending), plus those updates seen through each window by
     * the windows' lag products; the pending updates are stored in the same pass. Exactly NLMS,
     * with half the memory traffic. */
    float pa = c->pa, pb = c->pb_;
    for (int i = 0; i < CB_TICK_SAMPLES; i += 2) {
        const float *xp = x + base + i - L + 1;     /* sample i's window; i + 1's is xp + 1 */
        float y[4] = {0.0f, 0.0f, 0.0f, 0.0f};      /* yf(i), yf(i+1), yb(i), yb(i+1) */
        if (adapt) {
            const v8 va = splat(pa), vb = splat(pb);
            v8 f0 = splat(0.0f), f1 = f0, b0 = f0, b1 = f0, g0 = f0, g1 = f0, c0_ = f0, c1_ = f0;
            /* Two accumulators each (taps 8 apart), halving the chain of additions. */
            int j = 0;
            for (; j + 16 <= L; j += 16) {
                v8 xm2 = ld(xp + j - 2), xm1 = ld(xp + j - 1), x0 = ld(xp + j), x1 = ld(xp + j + 1);
                v8 w = ld(wb + j), f = ld(wf + j);
                b0 += w * x0;
                b1 += w * x1;
                st(wb + j, w + va * xm2 + vb * xm1);
                f0 += f * x0;
                f1 += f * x1;
                xm2 = ld(xp + j + 6);
                xm1 = ld(xp + j + 7);
                x0 = ld(xp + j + 8);
                x1 = ld(xp + j + 9);
                w = ld(wb + j + 8);
                f = ld(wf + j + 8);
                c0_ += w * x0;
                c1_ += w * x1;
                st(wb + j + 8, w + va * xm2 + vb * xm1);
                g0 += f * x0;
                g1 += f * x1;
            }
            if (j < L) {    /* taps a multiple of 8, not of 16 */
                v8 xm2 = ld(xp + j - 2), xm1 = ld(xp + j - 1), x0 = ld(xp + j), x1 = ld(xp + j + 1);
                v8 w = ld(wb + j), f = ld(wf + j);
                b0 += w * x0;
                b1 += w * x1;
                st(wb + j, w + va * xm2 + vb * xm1);
                f0 += f * x0;
                f1 += f * x1;
            }
            f0 += g0;
            f1 += g1;
            b0 += c0_;
            b1 += c1_;
            hsum4(&f0, &f1, &b0, &b1, y);
            y[2] += pa * l2[i] + pb * l1[i];
            y[3] += pa * l3[i + 1] + pb * l2[i + 1];
        } else if (!idle) {
            v8 f0 = splat(0.0f), f1 = f0, b0 = f0, b1 = f0, g0 = f0, g1 = f0, c0_ = f0, c1_ = f0;
            int j = 0;
            for (; j + 16 <= L; j += 16) {
                v8 x0 = ld(xp + j), x1 = ld(xp + j + 1);
                v8 w = ld(wb + j), f = ld(wf + j);
                b0 += w * x0;
                b1 += w * x1;
                f0 += f * x0;
                f1 += f * x1;
                x0 = ld(xp + j + 8);
                x1 = ld(xp + j + 9);
                w = ld(wb + j + 8);
                f = ld(wf + j + 8);
                c0_ += w * x0;
                c1_ += w * x1;
                g0 += f * x0;
                g1 += f * x1;
            }
            if (j < L) {
                v8 x0 = ld(xp + j), x1 = ld(xp + j + 1);
                v8 w = ld(wb + j), f = ld(wf + j);
                b0 += w * x0;
                b1 += w * x1;
                f0 += f * x0;
                f1 += f * x1;
            }
            f0 += g0;
            f1 += g1;
            b0 += c0_;
            b1 += c1_;
            hsum4(&f0, &f1, &b0, &b1, y);
        }
        const float ef0 = s[i] - y[0], eb0 = s[i] - y[2];
        const float c0 = adapt ? eb0 * inv : 0.0f;
        const float ef1 = s[i + 1] - y[1], eb1 = s[i + 1] - (y[3] + c0 * l1[i + 1]);
        const float c1 = adapt ? eb1 * inv : 0.0f;
        pa = c0;
        pb = c1;
        ef2 += ef0 * ef0 + ef1 * ef1;
        eb2 += eb0 * eb0 + eb1 * eb1;
        out[i] = ef0;
        out[i + 1] = ef1;
    }
    c->pa = pa;
    c->pb_ = pb;
    c->ex = ex;
    c->r1 = r1;
    c->r2 = r2;
    c->r3 = r3;

    /* Which filter is better: the background's taps go forward after it did 1.5 dB better for
     * COPY_TICKS ticks in a row of learning (longer than double talk takes to be seen, so the
     * little the background learns of its onset never goes forward); the foreground's go back
     * after the background went 6 dB astray. */
    c->pf += 0.0625f * (ef2 / CB_TICK_SAMPLES - c->pf);
    c->pb += 0.0625f * (eb2 / CB_TICK_SAMPLES - c->pb);
    c->ps += 0.0625f * (pst - c->ps);
    if (!adapt)
        c->better = 0;
    if (c->trust > 0)
        c->trust--;
    if (adapt) {
        /* With the residual 9 dB over its floor, the near end may be talking under the echo,
         * where the double-talk detector cannot hear it: the background's taps go forward only
         * 6 dB better (never the little a near end lets it track). Once they did (the echo
         * path changed), for 500 ticks they go forward as usual. */
        const int suspect = c->pen > 8.0f * c->floor && c->trust == 0;
        const float need = suspect ? 0.25f : COPY_BETTER;
        c->better = c->pb < need * c->pf && c->pb < 0.5f * c->ps ? c->better + 1 : 0;
        if (c->better >= COPY_TICKS) {
            copy_taps(wf, wb, L);
            c->pf = c->pb;
            if (suspect)
                c->trust = TRUST_TICKS;
        } else if (c->pb > 4.0f * c->pf && c->pf < 0.25f * c->ps) {
            copy_taps(wb, wf, L);
            c->pb = c->pf;
            c->pa = c->pb_ = 0.0f;
        }
    }
    if (c->pf > 2.0f * c->ps) {
        /* The foreground adds more than it removes (3 dB over Sin): it knows nothing of this line;
         * it goes back to zero, and the background with it. */
        memset(wf, 0, (size_t) L * sizeof(float));
        memset(wb, 0, (size_t) L * sizeof(float));
        c->pf = c->pb = c->ps;
        c->pa = c->pb_ = 0.0f;
    }
    /* Converged: the foreground cancelled 12 dB of far-end single talk; it stays so through
     * pauses, near-end speech and tones (nothing to judge it on), until 300 ticks of far-end
     * single talk it cancels under 6 dB of. Only a filter that is not may be moved. */
    if (adapt) {
        if (c->pf < 0.0625f * c->ps) {
            c->conv = 1;
            c->poor = 0;
        } else if (c->pf > 0.25f * c->ps && ++c->poor >= POOR_TICKS) {
            c->conv = 0;
        }
    }
    const int converged = c->conv;
    /* A young window grows to the whole filter once it has cancelled 33 dB, or after 2 s of
     * learning. */
    if (adapt)
        c->adapted++;
    if (adapt && c->len < c->taps && (c->adapted >= YOUNG_TICKS || c->pb < 0.0005f * c->ps)) {
        widen(c);
        wf = c->wf;
    }

    /* The disabler hears the residual. */
    memcpy(slot, out, sizeof out);
    disabler(tab, c, ch, bt, phase, blk_er, ef2, ev, tick);

    /* NLP and comfort noise. */
    const float pe = ef2 / CB_TICK_SAMPLES;
    c->pen += 0.5f * (pe - c->pen);
    c->psn += 0.5f * (pst - c->psn);
    c->pes += 0.125f * (pe - c->pes);
    if (c->pes < c->floor)
        c->floor += 0.125f * (c->pes - c->floor);
    else
        c->floor *= 1.0006f;
    /* The NLP works while the residual is 6 dB under Sin and at its floor (or under -50 dBm0): a
     * near end talking, a key or a tone, even under the echo, raises it above and goes through. */
    const float floor = 4.0f * c->floor > ECHO_P_M50 ? 4.0f * c->floor : ECHO_P_M50;
    const int nlp = (c->flags & CB_ECHO_NLP) && px >= ECHO_P_M45 && 4.0f * c->pen < c->psn && c->pen < floor;
    if (nlp) {
        if (c->flags & CB_ECHO_CNG) {
            /* Uniform white noise of the floor's power: variance a^2 / 3. */
            const float a = __builtin_sqrtf(3.0f * c->floor) * (1.0f / 2147483648.0f);
            for (int i = 0; i < CB_TICK_SAMPLES; i++) {
                c->seed = c->seed * 1664525u + 1013904223u;
                out[i] = (float) (int32_t) c->seed * a;
            }
        } else {
            for (int i = 0; i < CB_TICK_SAMPLES; i++)
                out[i] = 0.0f;
        }
    }
    {
        /* Rounded to the nearest, saturated. */
        v8 o = ld(out);
        const v8 hi = splat(32767.0f), lo = splat(-32768.0f);
        v8i m = o > hi;
        o = (v8) ((m & (v8i) hi) | (~m & (v8i) o));
        m = o < lo;
        o = (v8) ((m & (v8i) lo) | (~m & (v8i) o));
        m = o < splat(0.0f);
        o += (v8) ((m & (v8i) splat(-0.5f)) | (~m & (v8i) splat(0.5f)));
        v8i q = __builtin_convertvector(o, v8i);
        for (int i = 0; i < CB_TICK_SAMPLES; i++)
            sout[i] = (int16_t) q[i];
    }

    /* Bulk delay: envelopes without their means, correlated while only the far end talks. */
    c->mr += 0.03125f * (ar - c->mr);
    c->ms += 0.03125f * (as - c->ms);
    const float dr = ar - c->mr, ds = as - c->ms;
    const int di = c->dri;
    c->dr[di] = dr;
    c->dr[di + ECHO_NLAG] = dr;
    c->dri = di + 1 == ECHO_NLAG ? 0 : di + 1;
    if (c->dt_hold == 0 && c->nb_hold == 0 && px >= ECHO_P_M50) {
        /* lag l at cor[NLAG - 1 - l] pairs with dr[di + NLAG - l] */
        const float *d = c->dr + di + 1;
        const v8 vd = splat(ds), va = splat(COR_DECAY);
        for (int k = 0; k < ECHO_NLAG; k += 8)
            st(c->cor + k, ld(c->cor + k) * va + ld(d + k) * vd);
    }
    bulk_delay(c, converged, c->pf < 0.0625f * c->ps && c->ps > ECHO_P_M50);
}

void cb_echo_tick(cb_echo_t *e, int16_t *lin, int stride, cb_ring_t *ev, uint64_t tick)
{
    for (int i = 0; i < e->non; i++) {
        const int ch = e->on[i];
        int16_t v[CB_TICK_SAMPLES];
        for (int s = 0; s < CB_TICK_SAMPLES; s++)
            v[s] = lin[s * stride + ch];
        chan_tick(&e->tab, &e->ch[ch], ch, v, v, ev, tick);
        for (int s = 0; s < CB_TICK_SAMPLES; s++)
            lin[s * stride + ch] = v[s];
    }
}

int cb_echo_process(cb_echo_t *e, int chan, const int16_t *rin, const int16_t *sin, int16_t *sout, int n,
                    cb_ring_t *ev, uint64_t tick0)
{
    if (e == NULL || chan < 0 || chan >= e->n || n < 0 || n % CB_TICK_SAMPLES != 0)
        return CB_ERR_INVALID;
    echo_chan_t *c = &e->ch[chan];
    for (int t = 0; t < n / CB_TICK_SAMPLES; t++) {
        const int o = t * CB_TICK_SAMPLES;
        if (c->taps == 0) {
            if (sout != sin)
                memmove(sout + o, sin + o, CB_TICK_SAMPLES * sizeof *sin);
            continue;
        }
        push(c, rin + o);
        chan_tick(&e->tab, c, chan, sin + o, sout + o, ev, tick0 + (uint64_t) t);
    }
    return CB_OK;
}
