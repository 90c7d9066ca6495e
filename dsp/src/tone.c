/*
 * tone.c - the tone zones and the set-up side of the tone generator bank.
 *
 * Figures: the project's line-signals.md reference, "Tone zones" (cn, us, de;
 * published figures quoting ITU-T E.180 Suppl. 2).
 * A steady tone is one 1000 ms segment repeating from itself. Where that table
 * gives nothing, the choice is ours and says so ("our choice") below:
 *  - CONFIRM (feature code accepted), every zone: three 100 ms bursts of the
 *    zone's dial tone frequencies, 100 ms apart, played once (500 ms).
 *  - RECALL in us: 350+440 Hz 100 ms on/off x3, then steady (the de pattern
 *    with the us dial tone).
 *  - RECORD in de: 1400 Hz 500 ms every 15.5 s (the us figure).
 *  - INFO in cn and de: the special information tone 950, 1400, 1800 Hz of
 *    330 ms each, then 1000 ms of silence, repeating (the SIT pattern of E.180;
 *    us plays the three tones once, as its table says).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "cb_dsp.h"
#include "tone_priv.h"

#define ON1(f, ms) { (f), 0, (ms), 1 }
#define ON2(f1, f2, ms) { (f1), (f2), (ms), 1 }
#define OFF(ms) { 0, 0, (ms), 0 }
#define TONE(segs, rep) { (segs), (int) (sizeof(segs) / sizeof((segs)[0])), (rep) }

/* ---- cn: China ---- */
static const cb_tone_seg_t cn_dial[] = { ON1(450, 1000) };
static const cb_tone_seg_t cn_ringback[] = { ON1(450, 1000), OFF(4000) };
static const cb_tone_seg_t cn_busy[] = { ON1(450, 350), OFF(350) };
static const cb_tone_seg_t cn_congestion[] = { ON1(450, 700), OFF(700) };
static const cb_tone_seg_t cn_callwait[] = { ON1(450, 400), OFF(4000) };
static const cb_tone_seg_t cn_stutter[] = { ON2(450, 425, 1000) };
static const cb_tone_seg_t cn_confirm[] = {   /* our choice */
    ON1(450, 100), OFF(100), ON1(450, 100), OFF(100), ON1(450, 100)
};
static const cb_tone_seg_t cn_recall[] = { ON1(450, 1000) };
static const cb_tone_seg_t cn_record[] = { ON1(950, 400), OFF(10000) };
static const cb_tone_seg_t sit_repeating[] = {   /* our choice for cn and de */
    ON1(950, 330), ON1(1400, 330), ON1(1800, 330), OFF(1000)
};

/* ---- us: North America ---- */
static const cb_tone_seg_t us_dial[] = { ON2(350, 440, 1000) };
static const cb_tone_seg_t us_ringback[] = { ON2(440, 480, 2000), OFF(4000) };
static const cb_tone_seg_t us_busy[] = { ON2(480, 620, 500), OFF(500) };
static const cb_tone_seg_t us_congestion[] = { ON2(480, 620, 250), OFF(250) };
static const cb_tone_seg_t us_callwait[] = { ON1(440, 300), OFF(10000) };
static const cb_tone_seg_t us_stutter[] = {   /* 100 ms on/off x6, then steady */
    ON2(350, 440, 100), OFF(100), ON2(350, 440, 100), OFF(100),
    ON2(350, 440, 100), OFF(100), ON2(350, 440, 100), OFF(100),
    ON2(350, 440, 100), OFF(100), ON2(350, 440, 100), OFF(100),
    ON2(350, 440, 1000)
};
static const cb_tone_seg_t us_confirm[] = {   /* our choice */
    ON2(350, 440, 100), OFF(100), ON2(350, 440, 100), OFF(100), ON2(350, 440, 100)
};
static const cb_tone_seg_t us_recall[] = {   /* our choice */
    ON2(350, 440, 100), OFF(100), ON2(350, 440, 100), OFF(100),
    ON2(350, 440, 100), OFF(100), ON2(350, 440, 1000)
};
static const cb_tone_seg_t us_record[] = { ON1(1400, 500), OFF(15000) };
static const cb_tone_seg_t us_info[] = { ON1(950, 330), ON1(1400, 330), ON1(1800, 330) };

/* ---- de: Germany ---- */
static const cb_tone_seg_t de_dial[] = { ON1(425, 1000) };
static const cb_tone_seg_t de_ringback[] = { ON1(425, 1000), OFF(4000) };
static const cb_tone_seg_t de_busy[] = { ON1(425, 480), OFF(480) };
static const cb_tone_seg_t de_congestion[] = { ON1(425, 240), OFF(240) };
static const cb_tone_seg_t de_callwait[] = { ON1(425, 200), OFF(200), ON1(425, 200), OFF(5000) };
static const cb_tone_seg_t de_stutter[] = { ON2(425, 400, 1000) };
static const cb_tone_seg_t de_confirm[] = {   /* our choice */
    ON1(425, 100), OFF(100), ON1(425, 100), OFF(100), ON1(425, 100)
};
static const cb_tone_seg_t de_recall[] = {   /* 100 ms on/off x3, then steady */
    ON1(425, 100), OFF(100), ON1(425, 100), OFF(100), ON1(425, 100), OFF(100), ON1(425, 1000)
};
static const cb_tone_seg_t de_record[] = { ON1(1400, 500), OFF(15000) };   /* our choice */

static const cb_tone_def_t zone_tones[CB_ZONE_COUNT][CB_TONE_COUNT] = {
    [CB_ZONE_CN] = {
        [CB_TONE_DIAL] = TONE(cn_dial, 0),
        [CB_TONE_RINGBACK] = TONE(cn_ringback, 0),
        [CB_TONE_BUSY] = TONE(cn_busy, 0),
        [CB_TONE_CONGESTION] = TONE(cn_congestion, 0),
        [CB_TONE_CALLWAIT] = TONE(cn_callwait, 0),
        [CB_TONE_STUTTER] = TONE(cn_stutter, 0),
        [CB_TONE_CONFIRM] = TONE(cn_confirm, -1),
        [CB_TONE_RECALL] = TONE(cn_recall, 0),
        [CB_TONE_RECORD] = TONE(cn_record, 0),
        [CB_TONE_INFO] = TONE(sit_repeating, 0),
    },
    [CB_ZONE_US] = {
        [CB_TONE_DIAL] = TONE(us_dial, 0),
        [CB_TONE_RINGBACK] = TONE(us_ringback, 0),
        [CB_TONE_BUSY] = TONE(us_busy, 0),
        [CB_TONE_CONGESTION] = TONE(us_congestion, 0),
        [CB_TONE_CALLWAIT] = TONE(us_callwait, 0),
        [CB_TONE_STUTTER] = TONE(us_stutter, 12),
        [CB_TONE_CONFIRM] = TONE(us_confirm, -1),
        [CB_TONE_RECALL] = TONE(us_recall, 6),
        [CB_TONE_RECORD] = TONE(us_record, 0),
        [CB_TONE_INFO] = TONE(us_info, -1),
    },
    [CB_ZONE_DE] = {
        [CB_TONE_DIAL] = TONE(de_dial, 0),
        [CB_TONE_RINGBACK] = TONE(de_ringback, 0),
        [CB_TONE_BUSY] = TONE(de_busy, 0),
        [CB_TONE_CONGESTION] = TONE(de_congestion, 0),
        [CB_TONE_CALLWAIT] = TONE(de_callwait, 0),
        [CB_TONE_STUTTER] = TONE(de_stutter, 0),
        [CB_TONE_CONFIRM] = TONE(de_confirm, -1),
        [CB_TONE_RECALL] = TONE(de_recall, 6),
        [CB_TONE_RECORD] = TONE(de_record, 0),
        [CB_TONE_INFO] = TONE(sit_repeating, 0),
    },
};

typedef struct zone_info {
    const char *name;
    int32_t ring[4];        /* ms: on, off, on, off */
    int32_t dtmf_hi_cdb;    /* centi-dB dBm0 */
    int32_t dtmf_lo_cdb;
} zone_info_t;

static const zone_info_t zones[CB_ZONE_COUNT] = {
    [CB_ZONE_CN] = { "cn", { 1000, 4000, 0, 0 }, -1100, -900 },
    [CB_ZONE_US] = { "us", { 2000, 4000, 0, 0 }, -1000, -1000 },
    [CB_ZONE_DE] = { "de", { 1000, 4000, 0, 0 }, -900, -1100 },
};

static int zone_ok(int zone)
{
    return zone >= 0 && zone < CB_ZONE_COUNT;
}

int cb_zone_count(void)
{
    return CB_ZONE_COUNT;
}

const char *cb_zone_name(int zone)
{
    return zone_ok(zone) ? zones[zone].name : NULL;
}

int cb_zone_lookup(const char *name)
{
    if (name == NULL)
        return CB_ERR_INVALID;
    for (int z = 0; z < CB_ZONE_COUNT; z++) {
        if (strcasecmp(name, zones[z].name) == 0)
            return z;
    }
    return CB_ERR_INVALID;
}

int cb_zone_ring_cadence(int zone, int32_t *on_off4)
{
    if (!zone_ok(zone) || on_off4 == NULL)
        return CB_ERR_INVALID;
    memcpy(on_off4, zones[zone].ring, sizeof(zones[zone].ring));
    return CB_OK;
}

int cb_zone_dtmf_levels(int zone, int32_t *hi_cdb, int32_t *lo_cdb)
{
    if (!zone_ok(zone) || hi_cdb == NULL || lo_cdb == NULL)
        return CB_ERR_INVALID;
    *hi_cdb = zones[zone].dtmf_hi_cdb;
    *lo_cdb = zones[zone].dtmf_lo_cdb;
    return CB_OK;
}

int cb_tone_describe(int zone, int tone, cb_tone_seg_t *out, int max, int32_t *repeat_from)
{
    if (!zone_ok(zone) || tone < 0 || tone >= CB_TONE_COUNT || max < 0 || (max > 0 && out == NULL))
        return CB_ERR_INVALID;
    const cb_tone_def_t *d = &zone_tones[zone][tone];
    for (int i = 0; i < d->nseg && i < max; i++)
        out[i] = d->seg[i];
    if (repeat_from != NULL)
        *repeat_from = d->repeat_from;
    return d->nseg;
}

cb_tone_gen_t *cb_tone_gen_init(int n)
{
    if (n < 1 || n > 65535)
        return NULL;
    cb_tone_gen_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    size_t un = (size_t) n;
    s->n = n;
    s->act = calloc(un, sizeof(*s->act));
    s->pos = malloc(un * sizeof(*s->pos));
    s->def = calloc(un, sizeof(*s->def));
    s->zone = calloc(un, sizeof(*s->zone));
    s->tone = calloc(un, sizeof(*s->tone));
    s->seg = calloc(un, sizeof(*s->seg));
    s->left = calloc(un, sizeof(*s->left));
    s->rise = calloc(un, sizeof(*s->rise));
    s->fall = calloc(un, sizeof(*s->fall));
    s->ph1 = calloc(un, sizeof(*s->ph1));
    s->ph2 = calloc(un, sizeof(*s->ph2));
    s->inc1 = calloc(un, sizeof(*s->inc1));
    s->inc2 = calloc(un, sizeof(*s->inc2));
    s->a1 = calloc(un, sizeof(*s->a1));
    s->a2 = calloc(un, sizeof(*s->a2));
    if (!s->act || !s->pos || !s->def || !s->zone || !s->tone || !s->seg || !s->left || !s->rise
        || !s->fall || !s->ph1 || !s->ph2 || !s->inc1 || !s->inc2 || !s->a1 || !s->a2) {
        cb_tone_gen_free(s);
        return NULL;
    }
    for (int c = 0; c < n; c++)
        s->pos[c] = -1;
    for (int k = 0; k < TONE_SINE_SIZE; k++)
        s->sine[k] = (int16_t) lrint(32767.0 * sin(2.0 * M_PI * k / TONE_SINE_SIZE));
    for (int k = 0; k < 8; k++) {
        s->ramp_up[k] = (int16_t) lrint(32767.0 * 0.5 * (1.0 - cos(M_PI * (k + 0.5) / 8.0)));
        s->ramp_down[7 - k] = s->ramp_up[k];
    }
    return s;
}

void cb_tone_gen_free(cb_tone_gen_t *s)
{
    if (s == NULL)
        return;
    free(s->act);
    free(s->pos);
    free((void *) s->def);
    free(s->zone);
    free(s->tone);
    free(s->seg);
    free(s->left);
    free(s->rise);
    free(s->fall);
    free(s->ph1);
    free(s->ph2);
    free(s->inc1);
    free(s->inc2);
    free(s->a1);
    free(s->a2);
    free(s);
}

int cb_tone_gen_start(cb_tone_gen_t *s, int chan, int zone, int tone)
{
    if (s == NULL || chan < 0 || chan >= s->n || !zone_ok(zone) || tone < 0 || tone >= CB_TONE_COUNT)
        return CB_ERR_INVALID;
    s->def[chan] = &zone_tones[zone][tone];
    s->zone[chan] = (uint8_t) zone;
    s->tone[chan] = (uint8_t) tone;
    tone_enter_seg(s, chan, 0, NULL);
    if (s->pos[chan] < 0) {
        s->pos[chan] = s->nact;
        s->act[s->nact++] = chan;
    }
    return CB_OK;
}

int cb_tone_gen_stop(cb_tone_gen_t *s, int chan)
{
    if (s == NULL || chan < 0 || chan >= s->n)
        return CB_ERR_INVALID;
    tone_deactivate(s, chan);
    return CB_OK;
}

int cb_tone_gen_active(const cb_tone_gen_t *s, int chan)
{
    if (s == NULL || chan < 0 || chan >= s->n)
        return CB_ERR_INVALID;
    return s->pos[chan] >= 0;
}

int cb_tone_gen_quiet_ms(const cb_tone_gen_t *s, int chan)
{
    if (s == NULL || chan < 0 || chan >= s->n)
        return CB_ERR_INVALID;
    if (s->pos[chan] < 0 || s->def[chan]->seg[s->seg[chan]].on)
        return 0;
    return s->left[chan];
}
