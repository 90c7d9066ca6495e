/* The HDLC codec's state and shared tables (private to drivers/src; cb_hdlc.h is the API). */
#ifndef CB_HDLC_PRIV_H
#define CB_HDLC_PRIV_H

#include <stdint.h>
#include "cb_hdlc.h"
#include "cb_records.h"

#define HDLC_FLAG 0x7E
#define HDLC_FCS_LEN 2
#define HDLC_SLOT (CB_MAX_PAYLOAD + HDLC_FCS_LEN)  /* a frame with its FCS */
#define HDLC_CRC_INIT 0xFFFF
#define HDLC_CRC_GOOD 0xF0B8                        /* the residue over payload + FCS */
#define HDLC_RX_KEEP 6    /* data bits held back: they may be the "011111" that starts a flag */

/* Zero insertion, per (ones, octet): ones = 1s just sent (0..4), octet = a frame octet.
 * Entry: the line bits, first-sent in the highest of the nbits positions (bits 0-9),
 * nbits - 8 (bits 12-13: 8..10 bits), the run of 1s afterwards (bits 16-18). */
#define TX_BITS(e) ((e) & 0x3FFu)
#define TX_NBITS(e) ((int) (((e) >> 12) & 3u) + 8)
#define TX_ONES(e) ((int) (((e) >> 16) & 7u))

/* Zero deletion, per (ones, octet): ones = the run of 1s received (0..7, 7 = seven or more),
 * octet = a line octet (MSB first). Entry: the data bits it carries, first-received in bit 0
 * (bits 0-7), how many (bits 8-11: 6..8), the run of 1s afterwards (bits 12-14); RX_FLAG: a
 * flag completes in this octet, RX_ABORT: a seventh 1 arrives in it. Such octets go bit by bit. */
#define RX_BITS(e) ((e) & 0xFFu)
#define RX_NBITS(e) ((int) (((e) >> 8) & 15u))
#define RX_ONES(e) ((int) (((e) >> 12) & 7u))
#define RX_FLAG (1u << 16)
#define RX_ABORT (1u << 17)

struct cb_hdlc_tables {
    uint16_t crc[256];         /* CRC-16/X.25, reflected (0x8408): the remainder of one octet */
    uint32_t stuff[5][256];
    uint32_t destuff[8][256];
};

/* Built once by the first cb_hdlc_new (hdlc.c); read-only afterwards. */
extern struct cb_hdlc_tables cb_hdlc_tab;

enum { HDLC_TX_IDLE = 0, HDLC_TX_DATA = 1 };

struct cb_hdlc {
    /* Transmitter. Line bits not yet handed out: the low tx_nacc bits of tx_acc, oldest
     * highest. In HDLC_TX_IDLE with tx_nacc < 8 they are always the tail of a flag. */
    uint64_t tx_acc;
    int tx_nacc;
    int tx_state;
    int tx_ones;               /* 1s of frame content just sent (zero insertion) */
    int tx_pos;                /* next octet of the head frame */
    int txq_head, txq_count;
    uint16_t txq_len[CB_HDLC_TXQ];          /* with the FCS */
    uint8_t txq_buf[CB_HDLC_TXQ][HDLC_SLOT];

    /* Receiver. Data bits (inserted zeros removed) not yet made octets: the low rx_nbits
     * of rx_sr, oldest in bit 0. */
    uint64_t rx_sr;
    int rx_nbits;
    int rx_ones;               /* run of 1s received, 0..7 (7: seven or more) */
    int rx_hunt;               /* 1: waiting for a flag (start, reset, abort, too long) */
    int rx_len;                /* octets of the frame so far (FCS included) */
    uint32_t rx_crc;
    int rx_idle;               /* an octet known to change nothing (idle line), or -1 */
    uint64_t rx_events;        /* frames and errors seen (the idle check compares it) */
    uint8_t rx_buf[HDLC_SLOT];
    int rxq_head, rxq_count;
    uint16_t rxq_len[CB_HDLC_RXQ];
    uint8_t rxq_buf[CB_HDLC_RXQ][CB_MAX_PAYLOAD];

    cb_dchan_stats_t st;
};

#endif
