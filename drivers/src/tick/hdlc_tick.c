/*
 * hdlc_tick.c - the HDLC codec's per-octet work (cb_hdlc.h): queueing, zero
 * insertion and deletion, flags, aborts and the FCS, by tables built in hdlc.c.
 * No allocation, locks, system calls or Python.
 */
#include <string.h>
#include "hdlc_priv.h"

static inline uint32_t crc_update(uint32_t crc, unsigned octet)
{
    return (crc >> 8) ^ cb_hdlc_tab.crc[(crc ^ octet) & 0xFFu];
}

int cb_hdlc_send(cb_hdlc_t *h, const uint8_t *frame, int len)
{
    if (frame == NULL || len < 1 || len > CB_MAX_PAYLOAD)
        return CB_ERR_INVALID;
    if (h->txq_count == CB_HDLC_TXQ)
        return CB_ERR_FULL;
    int slot = (h->txq_head + h->txq_count) % CB_HDLC_TXQ;
    uint8_t *buf = h->txq_buf[slot];
    uint32_t crc = HDLC_CRC_INIT;
    for (int i = 0; i < len; i++) {
        buf[i] = frame[i];
        crc = crc_update(crc, frame[i]);
    }
    crc ^= 0xFFFFu;                       /* the FCS is the complemented remainder, low octet first */
    buf[len] = (uint8_t) crc;
    buf[len + 1] = (uint8_t) (crc >> 8);
    h->txq_len[slot] = (uint16_t) (len + HDLC_FCS_LEN);
    h->txq_count++;
    return CB_OK;
}

void cb_hdlc_tx(cb_hdlc_t *h, uint8_t *out, int n)
{
    uint64_t acc = h->tx_acc;
    int nacc = h->tx_nacc;
    for (int i = 0; i < n; i++) {
        while (nacc < 8) {
            if (h->tx_state == HDLC_TX_IDLE) {
                if (h->txq_count == 0) {
                    /* Idle: the pending bits are a flag's tail, so flags continue as the
                     * flag rotated by their count, and the same bits stay pending. */
                    memset(out + i, (0x7E7E >> nacc) & 0xFF, (size_t) (n - i));
                    h->tx_acc = acc;
                    h->tx_nacc = nacc;
                    return;
                }
                /* The flag just sent opens the frame (shared with a closing flag). */
                h->tx_state = HDLC_TX_DATA;
                h->tx_pos = 0;
                h->tx_ones = 0;
            }
            int slot = h->txq_head;
            uint32_t e = cb_hdlc_tab.stuff[h->tx_ones][h->txq_buf[slot][h->tx_pos++]];
            int nb = TX_NBITS(e);
            acc = (acc << nb) | TX_BITS(e);
            nacc += nb;
            h->tx_ones = TX_ONES(e);
            if (h->tx_pos == h->txq_len[slot]) {
                acc = (acc << 8) | HDLC_FLAG;  /* closing flag */
                nacc += 8;
                h->txq_head = (slot + 1) % CB_HDLC_TXQ;
                h->txq_count--;
                h->st.frames_tx++;
                h->tx_state = HDLC_TX_IDLE;
            }
        }
        nacc -= 8;
        out[i] = (uint8_t) (acc >> nacc);
    }
    h->tx_acc = acc;
    h->tx_nacc = nacc;
}

void cb_hdlc_reset(cb_hdlc_t *h)
{
    h->rx_sr = 0;
    h->rx_nbits = 0;
    h->rx_ones = 0;
    h->rx_hunt = 1;
    h->rx_len = 0;
    h->rx_crc = HDLC_CRC_INIT;
    h->rx_idle = -1;
}

static inline void rx_restart(cb_hdlc_t *h, int hunt)
{
    h->rx_sr = 0;
    h->rx_nbits = 0;
    h->rx_len = 0;
    h->rx_crc = HDLC_CRC_INIT;
    h->rx_hunt = hunt;
}

/* Append data bits (oldest in bit 0); an octet is made once HDLC_RX_KEEP more follow it. */
static inline void rx_bits(cb_hdlc_t *h, uint32_t bits, int n)
{
    h->rx_sr |= (uint64_t) bits << h->rx_nbits;
    h->rx_nbits += n;
    if (h->rx_nbits >= 8 + HDLC_RX_KEEP) {
        unsigned octet = (unsigned) h->rx_sr & 0xFFu;
        h->rx_sr >>= 8;
        h->rx_nbits -= 8;
        if (h->rx_len == HDLC_SLOT) {
            h->st.too_long++;
            h->rx_events++;
            rx_restart(h, 1);
            return;
        }
        h->rx_buf[h->rx_len++] = (uint8_t) octet;
        h->rx_crc = crc_update(h->rx_crc, octet);
    }
}

/* A flag: the frame before it (if any) is judged, a new one starts. */
static void rx_flag(cb_hdlc_t *h)
{
    if (!h->rx_hunt) {
        /* The flag's "011111" were taken as data: they are not content. */
        int content = h->rx_len * 8 + h->rx_nbits - HDLC_RX_KEEP;
        if (content > 0) {
            h->rx_events++;
            if (h->rx_nbits != HDLC_RX_KEEP || h->rx_len < 1 + HDLC_FCS_LEN || h->rx_crc != HDLC_CRC_GOOD) {
                h->st.bad_fcs++;
            } else if (h->rxq_count == CB_HDLC_RXQ) {
                h->st.rx_dropped++;
            } else {
                int slot = (h->rxq_head + h->rxq_count) % CB_HDLC_RXQ;
                int len = h->rx_len - HDLC_FCS_LEN;
                memcpy(h->rxq_buf[slot], h->rx_buf, (size_t) len);
                h->rxq_len[slot] = (uint16_t) len;
                h->rxq_count++;
                h->st.frames_rx++;
            }
        }
    }
    rx_restart(h, 0);
}

/* A seventh 1: the frame in progress (at least one content bit) is aborted. */
static void rx_abort(cb_hdlc_t *h)
{
    /* Five of the seven 1s were taken as data (the 0 before them is content). */
    if (h->rx_len * 8 + h->rx_nbits - 5 > 0) {
        h->st.aborts++;
        h->rx_events++;
    }
    rx_restart(h, 1);
}

/* One octet bit by bit (it holds a flag or an abort). */
static void rx_octet_bits(cb_hdlc_t *h, unsigned octet)
{
    for (int b = 7; b >= 0; b--) {
        if ((octet >> b) & 1u) {
            if (h->rx_ones < 7)
                h->rx_ones++;
            if (h->rx_ones <= 5) {
                if (!h->rx_hunt)
                    rx_bits(h, 1, 1);
            } else if (h->rx_ones == 7 && !h->rx_hunt) {
                rx_abort(h);
            }
        } else {
            if (h->rx_ones == 6)
                rx_flag(h);
            else if (h->rx_ones != 5 && !h->rx_hunt)
                rx_bits(h, 0, 1);         /* after five 1s a 0 is an inserted one: deleted */
            h->rx_ones = 0;
        }
    }
}

void cb_hdlc_rx(cb_hdlc_t *h, const uint8_t *in, int n)
{
    for (int i = 0; i < n; i++) {
        unsigned c = in[i];
        if ((int) c == h->rx_idle)
            continue;
        uint64_t sr = h->rx_sr, events = h->rx_events;
        int nbits = h->rx_nbits, ones = h->rx_ones, hunt = h->rx_hunt, len = h->rx_len;
        uint32_t e = cb_hdlc_tab.destuff[ones][c];
        if (e & (hunt ? RX_FLAG : RX_FLAG | RX_ABORT)) {
            rx_octet_bits(h, c);
        } else {
            h->rx_ones = RX_ONES(e);
            if (!hunt)
                rx_bits(h, RX_BITS(e), RX_NBITS(e));
        }
        /* An octet that left everything as it was will again: skip it while it repeats. */
        h->rx_idle = (len == 0 && h->rx_len == 0 && sr == h->rx_sr && nbits == h->rx_nbits && ones == h->rx_ones
                      && hunt == h->rx_hunt && events == h->rx_events) ? (int) c : -1;
    }
}

int cb_hdlc_recv(cb_hdlc_t *h, uint8_t *frame, int max)
{
    if (h->rxq_count == 0)
        return 0;
    int slot = h->rxq_head;
    int len = h->rxq_len[slot];
    if (frame == NULL || max < len)
        return CB_ERR_INVALID;
    memcpy(frame, h->rxq_buf[slot], (size_t) len);
    h->rxq_head = (slot + 1) % CB_HDLC_RXQ;
    h->rxq_count--;
    return len;
}

int cb_hdlc_waiting(const cb_hdlc_t *h)
{
    return h->rxq_count;
}

void cb_hdlc_stats(const cb_hdlc_t *h, cb_dchan_stats_t *out)
{
    *out = h->st;
}
