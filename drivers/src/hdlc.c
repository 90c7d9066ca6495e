/*
 * hdlc.c - the HDLC codec's life cycle (cb_hdlc.h): the shared tables, built
 * once, and the codec's state with both queues, allocated here. The per-octet
 * work is in tick/hdlc_tick.c.
 */
#include <pthread.h>
#include <stdlib.h>
#include "hdlc_priv.h"

struct cb_hdlc_tables cb_hdlc_tab;

static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

/* CRC-16/X.25 bit by bit (reflected generator 0x8408), for one octet. */
static uint16_t crc_octet(unsigned v)
{
    for (int b = 0; b < 8; b++)
        v = (v & 1u) ? (v >> 1) ^ 0x8408u : v >> 1;
    return (uint16_t) v;
}

/* Zero insertion: an octet goes LSB first; a 0 follows every fifth 1 in a row. */
static uint32_t stuff_entry(int ones, unsigned octet)
{
    uint32_t bits = 0;
    int n = 0;
    for (int b = 0; b < 8; b++) {
        unsigned bit = (octet >> b) & 1u;
        bits = (bits << 1) | bit;
        n++;
        ones = bit ? ones + 1 : 0;
        if (ones == 5) {
            bits <<= 1;
            n++;
            ones = 0;
        }
    }
    return bits | (uint32_t) (n - 8) << 12 | (uint32_t) ones << 16;
}

/* Zero deletion of one line octet, MSB first, in a frame: the same rules as the
 * bit-by-bit path of hdlc_tick.c, marking octets where a flag or abort completes. */
static uint32_t destuff_entry(int ones, unsigned octet)
{
    uint32_t bits = 0, special = 0;
    int n = 0;
    for (int b = 7; b >= 0; b--) {
        if ((octet >> b) & 1u) {
            if (ones < 7)
                ones++;
            if (ones <= 5)
                bits |= 1u << n++;
            else if (ones == 7)
                special |= RX_ABORT;
        } else {
            if (ones == 6)
                special |= RX_FLAG;
            else if (ones != 5)
                n++;                      /* a data 0 (after five 1s it is an inserted 0) */
            ones = 0;
        }
    }
    if (n > 8)
        n = 8;                            /* only in special octets, which do not use it */
    return (bits & 0xFFu) | (uint32_t) n << 8 | (uint32_t) ones << 12 | special;
}

static void build_tables(void)
{
    for (unsigned v = 0; v < 256; v++) {
        cb_hdlc_tab.crc[v] = crc_octet(v);
        for (int ones = 0; ones < 5; ones++)
            cb_hdlc_tab.stuff[ones][v] = stuff_entry(ones, v);
        for (int ones = 0; ones < 8; ones++)
            cb_hdlc_tab.destuff[ones][v] = destuff_entry(ones, v);
    }
}

cb_hdlc_t *cb_hdlc_new(void)
{
    if (pthread_once(&tables_once, build_tables) != 0)
        return NULL;
    cb_hdlc_t *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->tx_acc = HDLC_FLAG;                /* the first flag, octet-aligned */
    h->tx_nacc = 8;
    h->tx_state = HDLC_TX_IDLE;
    cb_hdlc_reset(h);
    return h;
}

void cb_hdlc_free(cb_hdlc_t *h)
{
    free(h);
}
