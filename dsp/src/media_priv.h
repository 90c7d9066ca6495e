/* The media tier's state (private to dsp/src). */
#ifndef CB_MEDIA_PRIV_H
#define CB_MEDIA_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include "cb_busy.h"
#include "cb_dsp.h"
#include "cb_dtmf.h"
#include "cb_fsk.h"
#include "cb_media.h"
#include "cb_tone.h"

#define MEDIA_CARD_EV 256   /* card events one block may produce */

struct cb_media {
    int n;
    int law_default;
    cb_ring_t *cmd;
    cb_ring_t *ev;
    cb_card_t *card;
    uint64_t tick;

    /* per channel */
    uint8_t *law;           /* enum cb_law */
    int32_t *peer;          /* bridge partner, or -1 */
    uint8_t *gen;           /* a generator was started on the channel since it was last found idle */
    uint8_t *zone;          /* tone zone of the channel's last tone */
    const int16_t **play;   /* prompt samples (owned by the control tier) */
    int32_t *play_len;
    int32_t *play_pos;

    /* kernel banks */
    cb_dtmf_rx_t *dtmf_rx;
    cb_dtmf_tx_t *dtmf_tx;
    cb_tone_gen_t *tone;
    cb_fsk_tx_t *fsk_tx;
    cb_fsk_rx_t *fsk_rx;
    cb_busy_det_t *busy;

    /* block buffers */
    uint8_t *rx;            /* [n][CB_MAX_BLOCK_TICKS * 8] from the card */
    uint8_t *tx;            /* [n][CB_MAX_BLOCK_TICKS * 8] to the card */
    int16_t *lin;           /* [8][n] this tick, decoded */
    int32_t *acc;           /* [8][n] this tick, to encode */
    cb_event_t card_ev[MEDIA_CARD_EV];

    /* counters */
    _Atomic uint64_t progress;  /* ticks processed (frozen by fault injection) */
    _Atomic int frozen;
    cb_media_stats_t stats;
    uint32_t *late_hist;        /* [CB_MEDIA_LATE_BUCKETS] */

    /* realtime */
    pthread_t thread;
    _Atomic int running;
    int has_thread;
};

/* One block: commands, wait, exchange, chain (tick/media_tick.c). */
int cb_media_block(cb_media_t *m, int ticks, int realtime);

#endif
