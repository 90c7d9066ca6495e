/*
 * cb_card.h - the card HAL's dispatchers, for the control tier: each optional
 * operation (cb_hal.h) through one call that answers CB_ERR_NOTSUP where the
 * card does not have it, so every status goes through one checker.
 *
 * Between CDEF BEGIN and CDEF END this header is also the cffi cdef.
 */
#ifndef CB_CARD_H
#define CB_CARD_H

#include <stdint.h>
#include "cb_hal.h"

/* CDEF BEGIN */
/*! \brief The card's capability bits (enum cb_card_caps). */
uint32_t cb_card_caps(const cb_card_t *card);
/*! \brief Line level bits of channels 0..n-1. \return n, or a negative cb_status. */
int cb_card_line_levels(cb_card_t *card, uint8_t *out, int n);
/*! \brief Set a span's framing and line coding. \return CB_OK or a negative cb_status. */
int cb_card_span_config(cb_card_t *card, int span, const cb_span_config_t *cfg);
/*! \brief Read a span's alarms and counters. \return CB_OK or a negative cb_status. */
int cb_card_span_status(cb_card_t *card, int span, cb_span_status_t *out);
/*! \brief Take the card's clock from a span (-1: internal). \return CB_OK or a negative cb_status. */
int cb_card_sync_source(cb_card_t *card, int span);
/*! \brief Set the ABCD bits a timeslot transmits. \return CB_OK or a negative cb_status. */
int cb_card_abcd_set(cb_card_t *card, int chan, int bits);
/*! \brief The ABCD bits a timeslot receives, or a negative cb_status. */
int cb_card_abcd_get(cb_card_t *card, int chan);
/*! \brief Queue one HDLC frame on a timeslot. \return CB_OK or a negative cb_status. */
int cb_card_hdlc_send(cb_card_t *card, int chan, const uint8_t *frame, int len);
/*! \brief Take one received HDLC frame. \return its length, 0 if none, or a negative cb_status. */
int cb_card_hdlc_recv(cb_card_t *card, int chan, uint8_t *frame, int max);
/* CDEF END */

#endif
