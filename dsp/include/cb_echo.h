/*
 * cb_echo.h - line echo canceller bank (G.168): each channel removes the echo
 * its 2-wire hybrid returns of what we send.
 *
 * Names, as G.168 has them: Rin is what we send to the line (the reference),
 * Sin what the line delivers (near-end speech plus the echo of Rin), Sout
 * Sin with the echo removed (what the detectors and the far party hear).
 *
 * What does it do, per channel that is on?
 *  - Bulk delay. The echo path's flat delay (0-128 ms) is found from the
 *    correlation of Rin's and Sin's envelopes (1 ms per lag, every tick of
 *    far-end single talk, with a memory of about 250 ms), and the filter's
 *    window is placed behind it, so the taps cover the dispersion that
 *    follows; a new window learns on its first 128 taps (at twice the step
 *    for its first 500 ticks), then on all of them. Once the filter has
 *    converged the delay is read from its taps (the first tap within 14 dB
 *    of the largest), to the sample. A converged filter is never moved: it
 *    stays converged through pauses, double talk and tones, until 300 ticks
 *    of far-end single talk it cancels less than 6 dB of.
 *  - Two filters (float32 NLMS, two samples a pass): a background filter
 *    adapts on far-end single talk; the foreground filter, whose output is
 *    Sout, takes the background's taps when the background has done 1.5 dB
 *    better for 6 ticks in a row (6 dB better while the residual is 9 dB
 *    over its floor: the near end may be talking under the echo), gives
 *    them back when the background has gone 6 dB astray, and goes back to
 *    zero if it ever adds more than it removes.
 *  - Double talk. Adaptation freezes (and nothing is copied) while Sin is
 *    louder than half of Rin's power in the filter's window (an echo path
 *    returns at least 6 dB less: a line with a lower ERL is taken as always
 *    in double talk), or two ticks 9 dB above the echo this line was found
 *    to return, for 30 ms after; while Rin is narrowband (a tone: an order-4
 *    predictor takes 24 dB off it), where a fast filter would learn to
 *    cancel whatever Sin holds; and while Sin is under -58 dBm0 (nothing to
 *    learn: an idle A-law line decodes to a constant 8). A Rin window under
 *    -62 dBm0 is not filtered at all.
 *  - NLP: with far-end speech and the residual both 6 dB or more under Sin
 *    and at its floor (or under -50 dBm0), Sout is replaced by comfort noise
 *    (CB_ECHO_CNG: white noise at the level of the residual's floor, the near
 *    end's background) or by silence; near-end speech, a key or a tone, even
 *    under the echo, raise the residual above its floor and go through.
 *  - Tone disabler (CB_ECHO_DISABLER): 2100 Hz (± 21 Hz, within 30 Hz) at
 *    -31 dBm0 or more for 200 ms, on Rin or on Sin less our echo (the
 *    residual), then a phase reversal of more than 90 degrees (ANS/PR,
 *    G.165: 180 ± 25 degrees every 450 ms): the channel is tone-disabled,
 *    Sout = Sin bit for bit, CB_EV_ECHO (CB_ECHO_TONE_DISABLED,
 *    CB_ECHO_BY_TONE) and CB_EV_ANS (value 1). It comes back on after 250 ms
 *    with both paths under -36 dBm0 (CB_EV_ECHO CB_ECHO_ON,
 *    CB_ECHO_BY_TONE_END). 2100 Hz lasting 600 ms without a reversal (ANS, a
 *    fax's CED) does not disable it: CB_EV_ANS (value 0) is reported once per
 *    tone and path, and the engine decides.
 *
 * How is it used? The scheduler calls cb_echo_tick() in the chain after
 * G.711 decode and before the detectors, on the samples the line delivered;
 * then, once it has made what it sends, cb_echo_rin() with the linear of
 * each channel's octets. The echo of a tick's Rin cannot return in that same
 * tick there (a block goes out after it is made). cb_echo_process() runs one
 * channel over whole signals, Rin of each tick first (tests, bench).
 * Off channels cost nothing; an on channel with no far-end signal in its
 * window (under -62 dBm0) runs no filter: its detectors only, a few hundred
 * operations a tick.
 */
#ifndef CB_ECHO_H
#define CB_ECHO_H

#include <stdint.h>
#include "cb_records.h"
#include "cb_ring.h"

/* CDEF BEGIN */
#define CB_ECHO_TAPS_MIN 32       /* shortest filter, taps (8 per ms) */
#define CB_ECHO_TAPS_MAX 512      /* longest filter */
#define CB_ECHO_TAPS_STEP 8       /* taps come in multiples of 8 */
#define CB_ECHO_TAPS_DEFAULT 128  /* 16 ms */
#define CB_ECHO_DELAY_MAX_MS 128  /* longest flat delay the bulk-delay estimator finds */

/* cb_echo_set flags (CB_CMD_ECHO b). */
enum cb_echo_flags {
    CB_ECHO_NLP = 1,        /* non-linear processor */
    CB_ECHO_CNG = 2,        /* comfort noise while the NLP works (else silence) */
    CB_ECHO_DISABLER = 4,   /* the G.164/G.165 tone disabler, and ANS reports */
    CB_ECHO_ALL = 7
};

/* A channel's state (cb_echo_state, CB_EV_ECHO value). */
enum cb_echo_state {
    CB_ECHO_OFF = 0,
    CB_ECHO_ON = 1,
    CB_ECHO_TONE_DISABLED = 2
};

/* Why the state changed (CB_EV_ECHO extra). */
enum cb_echo_reason {
    CB_ECHO_BY_COMMAND = 0, /* CB_CMD_ECHO */
    CB_ECHO_BY_TONE = 1,    /* 2100 Hz with phase reversals */
    CB_ECHO_BY_TONE_END = 2 /* both paths quiet for 250 ms after it */
};

typedef struct cb_echo cb_echo_t;

/*! \brief A bank of n channels (1..65535), every channel off.
    \return the bank, or NULL (bad n, out of memory). */
cb_echo_t *cb_echo_new(int n);
/*! \brief Free a bank (NULL is ignored). */
void cb_echo_free(cb_echo_t *e);
/*! \brief Turn a channel on with `taps` (CB_ECHO_TAPS_MIN..CB_ECHO_TAPS_MAX, a multiple of
    CB_ECHO_TAPS_STEP) from a clean state (filters zero, delay unknown), or off with 0.
    \param flags cb_echo_flags.
    \return CB_OK, or CB_ERR_INVALID (bad channel, taps or flags: nothing changed). */
int cb_echo_set(cb_echo_t *e, int chan, int taps, int flags);
/*! \brief The channel's taps (0: off). */
int cb_echo_taps(const cb_echo_t *e, int chan);
/*! \brief The channel's cb_echo_state (CB_ECHO_OFF for a bad channel). */
int cb_echo_state(const cb_echo_t *e, int chan);
/*! \brief The echo path's flat delay as found, ms (a sample is 0.125 ms); -1 while not
    found or off. */
double cb_echo_bulk_delay_ms(const cb_echo_t *e, int chan);
/*! \brief Channels on. */
int cb_echo_active(const cb_echo_t *e);
/*! \brief One tick of every channel that is on: `lin` holds 8 samples x `stride` channels,
    sample-major (lin[s * stride + chan]); each on channel's Sin is replaced by its Sout.
    \param ev event ring for CB_EV_ECHO and CB_EV_ANS (NULL: none). */
void cb_echo_tick(cb_echo_t *e, int16_t *lin, int stride, cb_ring_t *ev, uint64_t tick);
/*! \brief What the channel sent in the tick just made: 8 linear samples (ignored when off). */
void cb_echo_rin(cb_echo_t *e, int chan, const int16_t *rin);
/*! \brief One channel over whole signals of n samples (a multiple of 8): per tick, that
    tick's Rin goes in first, then its Sin is cancelled into sout (may be sin: in place).
    An off channel copies sin. Events go to ev (NULL: none), ticks counted from tick0.
    \return CB_OK or CB_ERR_INVALID. */
int cb_echo_process(cb_echo_t *e, int chan, const int16_t *rin, const int16_t *sin, int16_t *sout, int n,
                    cb_ring_t *ev, uint64_t tick0);
/* CDEF END */

#endif
