/* The channel scheduler's state (private to dsp/sched/src). */
#ifndef CB_SCHED_PRIV_H
#define CB_SCHED_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include "cb_busy.h"
#include "cb_dsp.h"
#include "cb_dtmf.h"
#include "cb_echo.h"
#include "cb_fsk.h"
#include "cb_mix.h"
#include "cb_sched.h"
#include "cb_tone.h"

struct cb_sched {
    int n;
    int law_default;
    cb_ring_t *cmd;
    cb_ring_t *ev;
    cb_card_t *card;
    _Atomic uint64_t tick;      /* next tick; written by the stepping thread only */
    _Atomic uint64_t applied;   /* commands whose block finished */
    uint64_t taken;             /* commands taken from the ring (stepping thread) */

    /* per channel */
    uint8_t *law;           /* enum cb_law */
    uint8_t *gen;           /* SCHED_GEN_* bits: tone, DTMF, FSK generators started on the channel
                               since each was last found idle (a prompt is play[] itself) */
    int ngen[3];            /* channels with each bit: tone, DTMF, FSK */
    uint8_t *zone;          /* tone zone of the channel's last tone */
    uint8_t *pass;          /* this tick: the channel's octets pass through (fast path) */
    int32_t *pass_src;      /* this tick: whose octets */
    const int16_t **play;   /* prompt samples (owned by the control tier) */
    int32_t *play_len;      /* samples to play in all */
    int32_t *play_pos;      /* samples played */
    int32_t *play_loop;     /* samples in the buffer: the play goes round it */
    int32_t *play_lpos;     /* position in the buffer */
    const uint8_t **play_oct;   /* the buffer's samples as G.711 octets (after them), or NULL */
    uint8_t *play_oct_law;  /* their law */
    uint8_t *dtmf_on;       /* DTMF detection enabled (CB_CMD_DETECT) */
    uint8_t *fsk_on;        /* FSK receiver started (CB_CMD_FSK_RX) */
    uint8_t *busy_on;       /* busy detector started (CB_CMD_BUSY_DETECT) */
    uint8_t *echoed;        /* [n] a canceller is set on the channel (taps > 0: CB_CMD_ECHO) */
    uint8_t *heard;         /* the media graph adds into the channel: an edge into it, or a group */
    int ndtmf, nfsk, nbusy; /* channels with each detector */
    int graph_live;         /* some channel has an edge or a group */
    /* The channels sorted by what they do (sched_tick.c), kept until a command, the end of a
     * play or a generator, or the DTMF bank's rest changes it. */
    int resort;             /* sort again at the next block's start */
    int32_t *act;           /* channels stepped tick by tick, in channel order */
    int nact;
    int32_t *oct;           /* channels sending a play's octets as they are */
    int noct;
    int32_t *bpass;         /* channels passing another's received octets for the whole block */
    int nbpass;
    int32_t *quiet;         /* idle channels whose one generator is a tone pausing all block long */
    int nquiet;
    int32_t *tonal;         /* channels that would be idle but for a sounding tone */
    int ntonal;
    int32_t *idle_runs;     /* [2n] runs of idle channels of one law: first channel, count */
    uint8_t *tx_fill;       /* [n] the idle octet the channel sends all block, 0 not idle (cb_card_t.tx_fill) */
    int fill_unsaid;        /* a block without the card zeroed tx_fill: the next with it sorts again */
    int nruns;
    int32_t *dec;           /* the channels decoded every tick: those a detector, a canceller or a tap reads */
    int ndec;
    uint8_t *is_dec;        /* [n] in dec[]; this tick, also decoded for the media graph (late[]) */
    int32_t *late;          /* [n] this tick: channels decoded only because the media graph reads them */
    int dtmf_t;             /* the tick within the DTMF bank's block (its phase), stepped or not */
    int dtmf_parked;        /* the DTMF bank is not stepped: nobody detects, its state a block's start */
    cb_tap_t **tap;         /* taps (owned by the control tier) */
    int32_t *tapped;        /* channels with a tap, unordered */
    int ntapped;

    /* kernel banks */
    cb_dtmf_rx_t *dtmf_rx;
    cb_dtmf_tx_t *dtmf_tx;
    cb_tone_gen_t *tone;
    cb_fsk_tx_t *fsk_tx;
    cb_fsk_rx_t *fsk_rx;
    cb_busy_det_t *busy;
    cb_mix_t *mix;
    cb_echo_t *echo;        /* echo cancellers: a channel with one on is always stepped */
    int echo_on_any;        /* this tick: some channel has its canceller on */

    /* block buffers */
    uint8_t *rx;            /* [n][CB_MAX_BLOCK_TICKS * 8] from the card */
    uint8_t *tx;            /* [n][CB_MAX_BLOCK_TICKS * 8] to the card */
    int16_t *lin;           /* [8][n] this tick, decoded */
    int32_t *acc;           /* [8][n] this tick, to encode */
    int16_t *txlin;         /* [8] scratch: a tapped channel's transmitted samples */
    cb_event_t *card_ev;    /* [ncard_ev] events of one card block */
    int ncard_ev;
    uint8_t frame[CB_MAX_PAYLOAD]; /* a D-channel frame fetched for its CB_EV_FRAME record */
    uint8_t *cmd_rec;       /* one command record (head and payload) */

    /* counters: written by the stepping thread, read by the control tier */
    _Atomic uint64_t progress;  /* ticks processed (frozen by fault injection) */
    _Atomic int frozen;
    _Atomic uint64_t blocks;
    _Atomic uint64_t card_events_dropped;
    _Atomic uint64_t commands_failed;
    _Atomic uint64_t card_errors;
    _Atomic uint64_t late_max_us;
    _Atomic uint64_t late_count;
    uint32_t *late_hist;        /* [CB_SCHED_LATE_BUCKETS] */
    int failing;                /* realtime: consecutive failed exchanges */

    /* realtime */
    pthread_t thread;
    _Atomic int running;
    int has_thread;
};

/* One block: commands, wait, exchange, chain (tick/sched_tick.c). */
int cb_sched_block(cb_sched_t *m, int ticks, int realtime);

#endif
