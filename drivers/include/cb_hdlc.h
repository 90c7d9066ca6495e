/*
 * cb_hdlc.h - the HDLC codec of a D-channel timeslot (ISDN PRI: E1 TS16, T1 TS24).
 *
 * What it does: turns queued frames into the timeslot's line octets and line
 * octets back into checked frames, one 64 kbit/s timeslot (8 octets a tick).
 * Framing per ISO/IEC 13239 (as used by Q.921):
 *   - flag 0x7E (01111110) opens and closes a frame; flags are sent while idle;
 *   - transparency: a 0 is inserted after five consecutive 1s of frame content
 *     (the payload and the FCS), and deleted on receive;
 *   - FCS: CRC-16/X.25 (ITU-T; generator x^16 + x^12 + x^5 + 1, reflected
 *     0x8408, initial value 0xFFFF, the remainder complemented), sent as two
 *     octets, low octet first; a receiver running the same CRC over payload and
 *     FCS ends on the residue 0xF0B8;
 *   - abort: seven or more consecutive 1s end a frame, which is discarded.
 *
 * Bit order: HDLC sends each frame octet least significant bit first. On the
 * timeslot, the first bit on the line is the MSB of a timeslot octet (G.704
 * bit 1). So a frame octet 0x01 right after an octet-aligned flag appears as
 * the timeslot octet 0x80 (before any zero insertion).
 *
 * Transmit: back-to-back frames share one flag (the closing flag of a frame is
 * the opening flag of the next one when that one is already queued); with the
 * queue empty, flags follow the closing flag without a break (so the idle
 * octets are 0x7E rotated to wherever the last frame ended). The first octet
 * after cb_hdlc_new is a flag, aligned to the octet.
 *
 * Receive: a frame is the content between two flags with the inserted zeros
 * removed. Frames are kept when the content is whole octets, at least 1 octet
 * of payload plus the 2 FCS octets, at most CB_MAX_PAYLOAD + 2, and the FCS is
 * right. Counted (cb_dchan_stats_t), never delivered:
 *   - bad_fcs: a wrong FCS; also content that is not whole octets, or shorter
 *     than 3 octets (1 payload + FCS; there is no separate "short" counter);
 *   - aborts: seven 1s after at least one content bit of a frame (ones idle
 *     right after a flag is not an abort);
 *   - too_long: content beyond CB_MAX_PAYLOAD + 2 octets; the rest up to the
 *     next flag is skipped;
 *   - rx_dropped: a good frame found the receive queue full.
 * After cb_hdlc_new, cb_hdlc_reset or an abort, the receiver hunts for a flag:
 * nothing before the first flag is a frame.
 *
 * Work per call is octet-at-a-time with shared tables (zero insertion per
 * (run of ones, octet); zero deletion per (run of ones, octet) for octets that
 * hold no flag or abort; CRC per octet); an idle line (the same octet again,
 * leaving the receiver as it was) costs one compare per octet. cb_hdlc_tx,
 * cb_hdlc_rx, cb_hdlc_send and cb_hdlc_recv allocate nothing, take no lock and
 * make no system call (drivers/src/tick/hdlc_tick.c).
 *
 * Threads: one codec belongs to one thread at a time (the one that steps the
 * card); nothing here locks. Different codecs are independent; the shared
 * tables are built once, thread-safely, by the first cb_hdlc_new.
 *
 * Between CDEF BEGIN and CDEF END this header is also the cffi cdef.
 */
#ifndef CB_HDLC_H
#define CB_HDLC_H

#include <stdint.h>
#include "cb_hal.h"

/* CDEF BEGIN */
#define CB_HDLC_TXQ 32      /* frames queued for transmission at most (the one on the line included) */
#define CB_HDLC_RXQ 32      /* good received frames kept until cb_hdlc_recv takes them */

typedef struct cb_hdlc cb_hdlc_t;

/*! \brief Make a codec: transmitter idle on flags, receiver hunting for a flag,
        queues empty, counters zero. Storage for both queues is allocated here.
    \return the codec, or NULL when out of memory. */
cb_hdlc_t *cb_hdlc_new(void);

/*! \brief Free a codec (NULL is ignored). Queued frames are lost. */
void cb_hdlc_free(cb_hdlc_t *h);

/*! \brief Receiver only: drop the partial frame being received and hunt for a
        flag again (call it on loss of frame alignment). Not counted; queued
        good frames, the transmitter and the counters are kept. */
void cb_hdlc_reset(cb_hdlc_t *h);

/*! \brief Queue one frame for transmission; the FCS is computed and added here.
    \param frame the frame's octets, without FCS (copied).
    \param len 1..CB_MAX_PAYLOAD.
    \return CB_OK; CB_ERR_INVALID for a bad length (or frame NULL);
        CB_ERR_FULL when CB_HDLC_TXQ frames are already queued. */
int cb_hdlc_send(cb_hdlc_t *h, const uint8_t *frame, int len);

/*! \brief The next n octets of the timeslot's line (first line bit in each
        octet's MSB): flags while idle, queued frames in order.
        frames_tx counts a frame when its closing flag is produced. n < 1: nothing. */
void cb_hdlc_tx(cb_hdlc_t *h, uint8_t *out, int n);

/*! \brief n octets received on the timeslot (first line bit in each octet's MSB).
        Good frames go to the receive queue; errors are counted (see above). */
void cb_hdlc_rx(cb_hdlc_t *h, const uint8_t *in, int n);

/*! \brief Take the oldest good received frame (FCS checked and removed).
    \param max room in frame; CB_MAX_PAYLOAD always suffices.
    \return its length (1..CB_MAX_PAYLOAD); 0 when none is queued;
        CB_ERR_INVALID when it is longer than max (or max < 0, or frame NULL):
        the frame then stays queued, nothing is lost. */
int cb_hdlc_recv(cb_hdlc_t *h, uint8_t *frame, int max);
/*! \brief Received frames waiting for cb_hdlc_recv. */
int cb_hdlc_waiting(const cb_hdlc_t *h);

/*! \brief The codec's counters (cumulative since cb_hdlc_new). */
void cb_hdlc_stats(const cb_hdlc_t *h, cb_dchan_stats_t *out);
/* CDEF END */

#endif
