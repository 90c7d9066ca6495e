/*
 * cb_tone.h - tone zones (supervisory tones, ring cadence, DTMF levels) and the
 * cadenced tone generator over a bank of channels.
 *
 * What does it do? Each channel plays one supervisory tone of one zone: dial,
 * ringback, busy, congestion, call waiting, stutter dial, confirmation, recall
 * dial, recording warning or special information. A tone is a list of segments
 * {f1, f2, ms, on}; after the last segment it repeats from a given segment, or
 * stops and reports CB_EV_TONE_DONE if it plays once.
 *
 * How does it work? Every component is a 32-bit phase accumulator reading a
 * sine table (1024 points, computed in cb_tone_gen_init()), so frequencies are
 * exact to 2 mHz and the tick uses no libm. Each component is at -10 dBm0
 * (peak 32768 * 10^((-10 - 3.14)/20) = 7219); a two-frequency tone sums both.
 * Segment boundaries fall on tick (1 ms) boundaries. An on segment that follows
 * silence or other frequencies starts at phase 0 and rises over its first 1 ms
 * (raised cosine); one followed by silence or other frequencies falls over its
 * last 1 ms; consecutive segments of the same frequencies continue the phase,
 * so a steady tone is seamless. Only playing channels are visited on the tick
 * (a list of active channels).
 *
 * Figures of the zones: the project's line-signals.md reference, "Tone zones"
 * (cn, us, de; published figures quoting ITU-T E.180 Suppl. 2). Choices of
 * ours, where that table gives nothing, are marked in dsp/src/tone.c.
 */
#ifndef CB_TONE_H
#define CB_TONE_H

#include <stdint.h>
#include "cb_records.h"
#include "cb_ring.h"

/* CDEF BEGIN */
#define CB_TONE_LEVEL_CDB -1000   /* level of each tone component, centi-dB dBm0 */
#define CB_TONE_MAX_SEGS 16       /* most segments in one tone */

/* Zones. */
enum cb_zone {
    CB_ZONE_CN = 0,     /* China */
    CB_ZONE_US = 1,     /* North America */
    CB_ZONE_DE = 2,     /* Germany (a typical 425 Hz ETSI zone) */
    CB_ZONE_COUNT = 3
};

/* Supervisory tones. */
enum cb_tone {
    CB_TONE_DIAL = 0,
    CB_TONE_RINGBACK = 1,
    CB_TONE_BUSY = 2,
    CB_TONE_CONGESTION = 3,
    CB_TONE_CALLWAIT = 4,
    CB_TONE_STUTTER = 5,    /* stutter dial tone: messages waiting */
    CB_TONE_CONFIRM = 6,    /* a feature code was accepted (our choice, plays once) */
    CB_TONE_RECALL = 7,     /* recall dial tone, after a hook flash */
    CB_TONE_RECORD = 8,     /* the call is being recorded */
    CB_TONE_INFO = 9,       /* special information tone */
    CB_TONE_COUNT = 10
};

/* One segment of a tone's cadence. */
typedef struct cb_tone_seg {
    int32_t f1_hz;      /* first frequency, Hz (0 in a silent segment) */
    int32_t f2_hz;      /* second frequency, Hz, 0 if none */
    int32_t ms;         /* duration, ms */
    int32_t on;         /* 1 tone, 0 silence */
} cb_tone_seg_t;

typedef struct cb_tone_gen cb_tone_gen_t;

/*! \brief Number of zones known. */
int cb_zone_count(void);
/*! \brief Short name of a zone ("cn", "us", "de").
    \param zone enum cb_zone.
    \return the name, or NULL for an unknown zone. */
const char *cb_zone_name(int zone);
/*! \brief Find a zone by its short name (case-insensitive).
    \return the zone, or CB_ERR_INVALID if unknown. */
int cb_zone_lookup(const char *name);
/*! \brief Ring cadence of a zone, for FXS ringing.
    \param zone enum cb_zone.
    \param on_off4 out: on, off, on, off in ms (the second pair 0, 0 when the zone uses one pair).
    \return CB_OK or CB_ERR_INVALID. */
int cb_zone_ring_cadence(int zone, int32_t *on_off4);
/*! \brief DTMF sending levels of a zone.
    \param zone enum cb_zone.
    \param hi_cdb out: high-group level, centi-dB dBm0.
    \param lo_cdb out: low-group level, centi-dB dBm0.
    \return CB_OK or CB_ERR_INVALID. */
int cb_zone_dtmf_levels(int zone, int32_t *hi_cdb, int32_t *lo_cdb);
/*! \brief The cadence of a tone in a zone.
    \param zone enum cb_zone.
    \param tone enum cb_tone.
    \param out up to `max` segments are copied here (may be NULL when max is 0).
    \param max room in out.
    \param repeat_from out (may be NULL): index of the segment the cadence repeats from after the last one, or -1 if the tone plays once.
    \return the number of segments of the tone (which may exceed max), or CB_ERR_INVALID. */
int cb_tone_describe(int zone, int tone, cb_tone_seg_t *out, int max, int32_t *repeat_from);

/*! \brief Allocate a tone generator bank, every channel silent.
    \param n number of channels (1..65535).
    \return the bank, or NULL on a bad n or when out of memory. */
cb_tone_gen_t *cb_tone_gen_init(int n);
/*! \brief Free a bank made by cb_tone_gen_init() (NULL is ignored). */
void cb_tone_gen_free(cb_tone_gen_t *s);
/*! \brief Start (or restart) a tone on a channel; it sounds from the next tick.
    \param chan channel index.
    \param zone enum cb_zone.
    \param tone enum cb_tone.
    \return CB_OK or CB_ERR_INVALID. */
int cb_tone_gen_start(cb_tone_gen_t *s, int chan, int zone, int tone);
/*! \brief Stop a channel's tone; the next tick adds nothing for it. No event.
    \return CB_OK (also when nothing was playing) or CB_ERR_INVALID. */
int cb_tone_gen_stop(cb_tone_gen_t *s, int chan);
/*! \brief Whether a channel is playing.
    \return 1 playing, 0 silent, or CB_ERR_INVALID. */
int cb_tone_gen_active(const cb_tone_gen_t *s, int chan);
/*! \brief How long a playing channel's tone stays silent: the ms left in its cadence's pause, this tick
           included (it adds nothing to the accumulator over them).
    \return those ms; 0 if it is sounding or not playing; or CB_ERR_INVALID. */
int cb_tone_gen_quiet_ms(const cb_tone_gen_t *s, int chan);
/*! \brief Generate one tick for the whole bank.
    \param acc int32 accumulator, 8 samples x n channels, sample-major; the tones are added in.
    \param ev event ring (NULL: no events): CB_EV_TONE_DONE (value = tone id, extra = zone) when a play-once
           tone has produced its last sample; the event carries this tick, and the channel is
           silent from the next tick on.
    \param tick the tick being generated. */
void cb_tone_gen_tick(cb_tone_gen_t *s, int32_t *acc, cb_ring_t *ev, uint64_t tick);
/* CDEF END */

#endif
