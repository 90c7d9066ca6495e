/*
 * cb_fsk.h - FSK modems for caller ID and message waiting, as channel banks.
 *
 * What does it do? Sends and receives asynchronous characters (start bit 0,
 * 8 data bits LSB first, stop bit 1) at 1200 bit/s with the two modems analog
 * caller ID uses: Bell 202 (mark 1200 Hz, space 2200 Hz; North America, and
 * China's FSK caller ID) and ITU-T V.23 (mark 1300 Hz, space 2100 Hz; ETSI
 * CLIP in Europe).
 *
 * How does it work? The transmitter is a phase-continuous oscillator (a
 * 32-bit phase accumulator over a sine table) whose frequency follows the
 * bits; 1200 bit/s at 8000 samples/s is kept exact by a 3/20 bit clock. It
 * sends the channel seizure (alternating bits), the mark preamble, the
 * octets, then a few marks. The receiver correlates each sample window of one
 * bit with the mark and the space tone (quadrature, sliding sums) and decides
 * by the stronger; carrier detect is the smoothed power against a threshold
 * with hysteresis. A character starts on a 1-to-0 edge, is sampled mid-bit,
 * and is accepted only with a good stop bit. After carrier up, at least 10
 * mark bits must pass before the first start bit, so the alternating seizure
 * pattern is never taken for characters.
 */
#ifndef CB_FSK_H
#define CB_FSK_H

#include <stdint.h>
#include "cb_records.h"
#include "cb_ring.h"

/* CDEF BEGIN */
#define CB_FSK_BAUD 1200              /* bit/s */
#define CB_FSK_CARRIER_ON_CDB -4000   /* carrier detected above -40 dBm0 (centi-dB) */
#define CB_FSK_CARRIER_OFF_CDB -4300  /* and lost below -43 dBm0 */
#define CB_FSK_PREAMBLE_MARKS 10      /* mark bits the receiver needs before its first character */

enum cb_fsk_standard {
    CB_FSK_BELL202 = 0,   /* mark 1200 Hz, space 2200 Hz */
    CB_FSK_V23 = 1        /* mark 1300 Hz, space 2100 Hz */
};

typedef struct cb_fsk_tx cb_fsk_tx_t;
typedef struct cb_fsk_rx cb_fsk_rx_t;

/*! \brief Make a bank of n FSK transmitters. \return the bank, or NULL. */
cb_fsk_tx_t *cb_fsk_tx_init(int n);
/*! \brief Free a transmitter bank. */
void cb_fsk_tx_free(cb_fsk_tx_t *s);
/*! \brief Start sending on a channel.
    \param standard enum cb_fsk_standard.
    \param bytes the octets, owned by the caller until CB_EV_FSK_TX_DONE.
    \param seizure_bits alternating 0/1 bits first (caller ID: 300).
    \param mark_bits mark bits next (caller ID: 180).
    \param level_cdb level in centi-dB dBm0 (e.g. -1350).
    \return CB_OK or CB_ERR_INVALID. */
int cb_fsk_tx_start(cb_fsk_tx_t *s, int chan, int standard, const uint8_t *bytes, int len, int seizure_bits,
                    int mark_bits, int level_cdb);
/*! \brief Stop sending on a channel at once (no event). */
int cb_fsk_tx_stop(cb_fsk_tx_t *s, int chan);
/*! \brief 1 while the channel is sending. */
int cb_fsk_tx_busy(const cb_fsk_tx_t *s, int chan);
/*! \brief One tick for the bank: adds into acc [8][n]; CB_EV_FSK_TX_DONE (value = octets sent) at the end. */
void cb_fsk_tx_tick(cb_fsk_tx_t *s, int32_t *acc, cb_ring_t *ev, uint64_t tick);

/*! \brief Make a bank of n FSK receivers (all stopped). \return the bank, or NULL. */
cb_fsk_rx_t *cb_fsk_rx_init(int n);
/*! \brief Free a receiver bank. */
void cb_fsk_rx_free(cb_fsk_rx_t *s);
/*! \brief Start receiving on a channel with a standard (resets it). */
int cb_fsk_rx_start(cb_fsk_rx_t *s, int chan, int standard);
/*! \brief Stop receiving on a channel. */
int cb_fsk_rx_stop(cb_fsk_rx_t *s, int chan);
/*! \brief One tick for the bank: amp [8][n]; emits CB_EV_FSK_CARRIER (1/0) and CB_EV_FSK_BYTE (value = octet). */
void cb_fsk_rx_tick(cb_fsk_rx_t *s, const int16_t *amp, cb_ring_t *ev, uint64_t tick);
/*! \brief Tests: feed `len` samples (a multiple of 8) to a bank of one channel. \return ticks done. */
int cb_fsk_rx_feed(cb_fsk_rx_t *s, const int16_t *amp, int len, cb_ring_t *ev, uint64_t tick0);
/* CDEF END */

#endif
