/*
 * cb_dtmf.h - DTMF generation and detection as channel banks.
 *
 * What does it do? The detector reports each key of the 4x4 keypad (low
 * group 697/770/852/941 Hz, high group 1209/1336/1477/1633 Hz) once, at key
 * down and at key up with its duration. It accepts tones within +-1.5 % of
 * nominal, twist up to 8 dB (low group louder) and 4 dB (high group louder),
 * tones of 40 ms and more with pauses of 40 ms; it rejects tones more than
 * 3.5 % off and tones of 20 ms or less (shared/reference/line-signals.md).
 * The generator sends digit strings at given levels and timing.
 *
 * How does it work? Eight Goertzel filters per channel run over blocks of 96
 * samples (12 ms, 12 ticks), their state kept filter by filter across all
 * channels so each per-sample update runs over a vector of channels. At the
 * end of a block each channel's strongest low and high tones must: each pass
 * -42 dBm0; be within the twist limits; stand 8 dB above the rest of their
 * group; each be within 2.5 % of nominal, which is measured from the phase
 * advance of the tone between the two halves of the block (48 samples apart,
 * so offsets up to +-83 Hz are read without ambiguity); and together hold 88 %
 * of the block's energy, each tone's energy corrected for the filter's loss
 * at its measured offset. That last test refuses blocks only partly covered
 * by a tone. A key goes down on two consecutive agreeing blocks, so a 40 ms
 * tone (which always covers two whole blocks) is detected and a 20 ms tone
 * (which never does) is not; it goes up after two blocks without it.
 */
#ifndef CB_DTMF_H
#define CB_DTMF_H

#include <stdint.h>
#include "cb_records.h"
#include "cb_ring.h"

/* CDEF BEGIN */
#define CB_DTMF_BLOCK 96            /* samples per detection block (12 ms) */
#define CB_DTMF_THRESHOLD_CDB -4200 /* least level per tone, centi-dB dBm0 */
#define CB_DTMF_TWIST_CDB 800       /* low group up to 8 dB louder */
#define CB_DTMF_REV_TWIST_CDB 400   /* high group up to 4 dB louder */
#define CB_DTMF_FREQ_LIMIT_PERMILLE 25  /* offset from nominal accepted: 2.5 % */

typedef struct cb_dtmf_rx cb_dtmf_rx_t;
typedef struct cb_dtmf_tx cb_dtmf_tx_t;

/*! \brief Make a bank of n detectors, all enabled. \return the bank, or NULL. */
cb_dtmf_rx_t *cb_dtmf_rx_init(int n);
/*! \brief Free a detector bank. */
void cb_dtmf_rx_free(cb_dtmf_rx_t *s);
/*! \brief Forget a channel's key state (no events). */
int cb_dtmf_rx_reset(cb_dtmf_rx_t *s, int chan);
/*! \brief Report digits on a channel (1) or not (0); either way resets its key state. */
int cb_dtmf_rx_enable(cb_dtmf_rx_t *s, int chan, int on);
/*! \brief One tick for the bank: amp [8][n]. Events: CB_EV_DTMF_DOWN (value = the digit's
    ASCII) when a key is recognised, CB_EV_DTMF (value = digit, extra = duration in ms) when
    it is released. */
void cb_dtmf_rx_tick(cb_dtmf_rx_t *s, const int16_t *amp, cb_ring_t *ev, uint64_t tick);
/*! \brief Tests: feed `len` samples (a multiple of 8) to a bank of one channel. \return ticks done. */
int cb_dtmf_rx_feed(cb_dtmf_rx_t *s, const int16_t *amp, int len, cb_ring_t *ev, uint64_t tick0);
/*! \brief Benchmarks: `ticks` ticks of sample-major input, one [8][n] tick after another. */
int cb_dtmf_rx_bench(cb_dtmf_rx_t *s, const int16_t *sig, int ticks, cb_ring_t *ev, uint64_t tick0);

/*! \brief Make a bank of n generators. \return the bank, or NULL. */
cb_dtmf_tx_t *cb_dtmf_tx_init(int n);
/*! \brief Free a generator bank. */
void cb_dtmf_tx_free(cb_dtmf_tx_t *s);
/*! \brief Send a digit string on a channel.
    \param digits NUL-terminated, from 0-9 * # A-D; owned by the caller until CB_EV_DTMF_TX_DONE.
    \param on_ms tone length (<= 0: 50 ms); \param off_ms pause after each digit (<= 0: 55 ms).
    \param level_hi_cdb high group level, \param level_lo_cdb low group level, centi-dB dBm0.
    \return CB_OK or CB_ERR_INVALID. */
int cb_dtmf_tx_start(cb_dtmf_tx_t *s, int chan, const char *digits, int on_ms, int off_ms, int level_hi_cdb,
                     int level_lo_cdb);
/*! \brief Stop sending on a channel at once (no event). */
int cb_dtmf_tx_stop(cb_dtmf_tx_t *s, int chan);
/*! \brief 1 while the channel is sending. */
int cb_dtmf_tx_busy(const cb_dtmf_tx_t *s, int chan);
/*! \brief One tick for the bank: adds into acc [8][n]; CB_EV_DTMF_TX_DONE (value = digits
    sent) after the last digit's pause. */
void cb_dtmf_tx_tick(cb_dtmf_tx_t *s, int32_t *acc, cb_ring_t *ev, uint64_t tick);
/* CDEF END */

#endif
