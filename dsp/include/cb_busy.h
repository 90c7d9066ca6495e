/*
 * cb_busy.h - busy-cadence detector, for disconnect supervision on FXO lines
 * (the exchange plays busy tone when the far end hangs up).
 *
 * What does it do? On each enabled channel it watches for `count` consecutive
 * on/off cycles of a tone cadence (on_ms, off_ms) and then reports CB_EV_BUSY
 * once. It does not look at frequencies: any steady sound cut to the cadence
 * counts, like the usual "busy detect" option of analog trunk interfaces.
 *
 * How does it work? Per 1 ms tick it takes the mean-square energy of the
 * channel's 8 samples and smooths it (one-pole, a quarter per ms: time constant
 * about 3.5 ms). A peak tracker follows the loudest smoothed energy and decays
 * by 1/1024 per ms (-4.2 dB/s); a floor tracker follows the quietest and
 * rises by 1/4096 per ms (+1.1 dB/s). The line is "on" when the energy rises
 * above -36 dBm0, the peak - 6 dB and the floor + 9 dB, and "off" again when
 * it falls below -39 dBm0, the peak - 9 dB or the floor + 6 dB (relative
 * thresholds, so that noise 15 dB under the tone reads as off, before the tone
 * as well). A steady sound is therefore cut to "off" after some seconds, as
 * the floor catches up with it: on times up to 10 s are still timed right. Each on and off run is timed in
 * ms and compared with the cadence: a run matches when it is within
 * ±max(40 ms, 10 %) of the expected length; the on runs of one sequence must
 * also peak within ±4 dB of the first one (a tone keeps its level, speech does
 * not). A cycle is counted when an off run that follows a matching on run ends
 * with a matching length, i.e. when the next tone burst starts; a mismatch
 * restarts the count.
 */
#ifndef CB_BUSY_H
#define CB_BUSY_H

#include <stdint.h>
#include "cb_records.h"
#include "cb_ring.h"

/* CDEF BEGIN */
#define CB_BUSY_TOL_MS 40         /* a run matches within ±max(40 ms, 10 %) of its length */
#define CB_BUSY_MIN_MS 50         /* shortest on or off time accepted by start, ms */
#define CB_BUSY_MAX_MS 10000      /* longest on or off time accepted by start, ms */
#define CB_BUSY_MAX_COUNT 100     /* most cycles to count */

typedef struct cb_busy_det cb_busy_det_t;

/*! \brief Allocate a busy-cadence detector bank, every channel disabled.
    \param n number of channels (1..65535).
    \return the bank, or NULL on a bad n or when out of memory. */
cb_busy_det_t *cb_busy_det_init(int n);
/*! \brief Free a bank made by cb_busy_det_init() (NULL is ignored). */
void cb_busy_det_free(cb_busy_det_t *s);
/*! \brief Enable (or restart) detection on a channel, from a clean state.
    \param chan channel index.
    \param on_ms tone on time of the cadence, ms (CB_BUSY_MIN_MS..CB_BUSY_MAX_MS).
    \param off_ms silence of the cadence, ms (CB_BUSY_MIN_MS..CB_BUSY_MAX_MS).
    \param count consecutive cycles to see before reporting (1..CB_BUSY_MAX_COUNT; 3 is usual).
    \return CB_OK or CB_ERR_INVALID. */
int cb_busy_det_start(cb_busy_det_t *s, int chan, int on_ms, int off_ms, int count);
/*! \brief Disable detection on a channel.
    \return CB_OK or CB_ERR_INVALID. */
int cb_busy_det_stop(cb_busy_det_t *s, int chan);
/*! \brief Examine one tick of the whole bank.
    \param amp 8 samples x n channels, sample-major, linear.
    \param ev event ring (NULL: no events): CB_EV_BUSY (value = cycles counted, extra 0)
           once per start, with the tick in which the cycle completed; the channel then
           stays quiet until cb_busy_det_start() again.
    \param tick the tick being examined. */
void cb_busy_det_tick(cb_busy_det_t *s, const int16_t *amp, cb_ring_t *ev, uint64_t tick);
/* CDEF END */

#endif
