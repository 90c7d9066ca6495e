/* The sim card's state (private to drivers/src). */
#ifndef CB_SIM_PRIV_H
#define CB_SIM_PRIV_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include "cb_framer.h"
#include "cb_hal.h"
#include "cb_hdlc.h"
#include "cb_linecode.h"
#include "cb_sim.h"

#define SIM_SIGQ CB_SIM_SIGQ
#define SIM_FARQ CB_SIM_FARQ
#define SIM_MAX_CARD_EV 256 /* card events one block can produce at most */

/* Far-end socket message types (docs/sim-far-end.md). */
#define FAR_MSG_HELLO 1
#define FAR_MSG_BLOCK 2
#define FAR_LEN_SIZE 4     /* the length in front of every message */
#define FAR_BLOCK_HEAD 19  /* type(1) seq(4) first_tick(8) ticks(2) nchan(2) nspan(2) */
#define FAR_EVENT_SIZE 16  /* chan(2) type(2) value(4, signed) tick(8) */
#define FAR_LINE_NOSIG 1   /* a span's flags octet in a BLOCK: bit 0 = no signal that tick */
/* The largest BLOCK (after its length) for a claim of n analog channels and spans whose lines take
 * `line` octets a tick (flags + line octets, summed over them): the one bound for both ways. */
#define FAR_PEER_MAX(n, line) ((uint32_t) FAR_BLOCK_HEAD + (uint32_t) (n) * CB_MAX_BLOCK_TICKS * CB_TICK_SAMPLES \
                               + (uint32_t) (line) * CB_MAX_BLOCK_TICKS + 2U \
                               + (uint32_t) CB_SIM_FAR_MAX_EVENTS * FAR_EVENT_SIZE)
/* The buffers' bound over a card of n channels: every port and span claimed. A span's line takes at
 * most one octet a tick more per timeslot than its timeslots' octets (E1 1 + 256 <= 31 x 9, T1
 * 1 + 193 <= 24 x 9), so FAR_PEER_MAX(n, n) holds any claim. */
#define FAR_MSG_MAX(n) FAR_PEER_MAX(n, n)

/* A line level octet, per channel: written by the thread stepping the card, read whole by the
 * control thread (cb_sim_line_levels) while the media thread runs. Relaxed atomics: a level one
 * block old is what the reader expects, a torn or invented one never. */
typedef _Atomic uint8_t sim_level_t;

static inline uint8_t lv_get(const sim_level_t *a, int c)
{
    return atomic_load_explicit(&a[c], memory_order_relaxed);
}

static inline void lv_set(sim_level_t *a, int c, int v)
{
    atomic_store_explicit(&a[c], (uint8_t) v, memory_order_relaxed);
}

typedef struct sim_fifo {
    uint8_t *buf;       /* CB_SIM_FAR_FIFO octets */
    uint32_t head;      /* write position (monotonic) */
    uint32_t tail;      /* read position (monotonic) */
} sim_fifo_t;

/* n octets into a FIFO with room for them, in at most two runs. */
static inline void sim_fifo_put(sim_fifo_t *f, const uint8_t *octets, uint32_t n)
{
    uint32_t at = f->head % CB_SIM_FAR_FIFO;
    uint32_t first = n < CB_SIM_FAR_FIFO - at ? n : CB_SIM_FAR_FIFO - at;
    memcpy(f->buf + at, octets, first);
    if (first < n)              /* most runs do not wrap: one copy */
        memcpy(f->buf, octets + first, n - first);
    f->head += n;
}

/* n octets (that many waiting) out of a FIFO, in at most two runs. */
static inline void sim_fifo_get(sim_fifo_t *f, uint8_t *octets, uint32_t n)
{
    uint32_t at = f->tail % CB_SIM_FAR_FIFO;
    uint32_t first = n < CB_SIM_FAR_FIFO - at ? n : CB_SIM_FAR_FIFO - at;
    memcpy(octets, f->buf + at, first);
    if (first < n)
        memcpy(octets + first, f->buf, n - first);
    f->tail += n;
}

typedef struct sim_sig {
    uint64_t tick;
    uint16_t chan;
    uint16_t type;
    int32_t value;
} sim_sig_t;

/* A line level a lost change still sets (a peer's change that did not fit the signal queue, or
 * one in a late answer that was skipped): the newest per port and level, applied without an event. */
#define SIM_PEND_LEVELS 4  /* hook, ringing, battery, polarity */
typedef struct sim_pend {
    uint64_t tick;
    int32_t value;
    uint16_t type;
    uint8_t set;
} sim_pend_t;

/* One far-end peer (a slot; fd < 0 when free). */
typedef struct sim_peer {
    int fd;
    int active;             /* 0: waiting for its first block (start_tick) */
    int detach;             /* let go at the next block (CB_CMD_FAR_DETACH) */
    uint64_t start_tick;
    uint16_t *chan;         /* [nchan] claimed analog channels, in the peer's order */
    int n;
    uint8_t span[CB_SIM_MAX_SPANS]; /* spans claimed whole, in the peer's order */
    int nspan;
    uint32_t line;          /* BLOCK octets a tick of its spans: (1 flags + octets) each */
    uint32_t seq;           /* sequence number of its next block */
    uint32_t ev_from;       /* farq position not yet sent to it */
    uint8_t *out;           /* the message being sent (length first) */
    uint32_t out_len, out_off;
    uint8_t *in;            /* the message being received (length first), kept across blocks */
    uint32_t in_len;
    int answered;           /* this block's answer applied */
    int sent;               /* this block was handed to the socket (whole or in part) */
    cb_sim_peer_info_t info;
} sim_peer_t;

/* One span's line for the block being exchanged (drivers/src/span.c, tick/span_tick.c). The
 * block goes: our framer fills line_tx for every tick of the block (from the media tier's
 * timeslot octets); the far end (a socket peer holding the span, else the in-process far end and
 * its own framer) takes line_tx and fills line_rx and rx_flags; our framer reads them into the
 * media tier's rx octets. Line octets of tick t are at [t * octets], first line bit in the MSB. */
typedef struct sim_span {
    int kind;               /* enum cb_span_kind */
    cb_span_config_t cfg;
    int first_chan;         /* the channel of its TS1 */
    int nts;                /* timeslots: 31 (E1) or 24 (T1) */
    int octets;             /* line octets per tick: 256 (E1: 8 frames of 32) or 193 (T1: 8 of 193 bits) */
    int peer;               /* slot + 1 of the socket peer that holds the span, 0: the in-process far end */
    uint8_t *line_tx;       /* [CB_MAX_BLOCK_TICKS * octets] toward the far end (this block's set) */
    uint8_t *line_rx;       /* [CB_MAX_BLOCK_TICKS * octets] from the far end (this block's set) */
    uint8_t *lines;         /* [2 sets][tx, rx][CB_MAX_BLOCK_TICKS * octets]: blocks take turns */
    uint8_t *rx_flags;      /* [CB_MAX_BLOCK_TICKS] per tick: bit 0 = no signal (SIM_LINE_NOSIG) */
    int fault;              /* enum cb_span_fault of the in-process far end, as the block applies it */
    _Atomic int fault_req;  /* ... as cb_sim_span_fault asked it (any thread; taken at the next block) */
    _Atomic uint32_t pub_seq; /* the published status: odd while the thread stepping the card writes it */
    cb_span_status_t pub[2];  /* ours and the far end's, as of the last block (span_status reads these) */
    int dts;                /* the D-channel's timeslot (E1 16, T1 24), 0 without one */
    int sig_ts;             /* the timeslot that carries no audio (D-channel or CAS), 0 none */
    cb_framer_t *fr;        /* our framer */
    cb_framer_t *far_fr;    /* the in-process far end's */
    cb_hdlc_t *hdlc;        /* our D-channel (NULL without one) */
    cb_hdlc_t *far_hdlc;    /* the far end's D-channel */
    uint64_t frames_seen;   /* our D-channel's frames_rx already announced as CB_EV_FRAME */
    uint32_t alarms_seen;   /* our alarm bits last announced as CB_EV_ALARM */
    int64_t ppb_set;        /* the slip offset last given to our framer (INT64_MIN: none yet) */
    uint64_t bpv, far_bpv;  /* violations the decoders counted (line model only) */
    cb_line_coder_t enc[2], dec[2]; /* per direction (0 toward us, 1 toward the far end) */
    int8_t *sym;            /* [CB_LINE_MAX_BITS] a tick's coded symbols */
    uint8_t *coded;         /* [256] a tick's line after the line model */
    uint8_t *ts;            /* [31 * 8] one tick's timeslots, stride 8 (our D-channel's transmit) */
    uint8_t *far_out;       /* [31 * CB_MAX_BLOCK_TICKS * 8] the block's timeslots the far end sends (stride ticks * 8) */
    uint8_t *far_in;        /* [31 * CB_MAX_BLOCK_TICKS * 8] the block's timeslots it received */
    /* What the framers may take as unchanged (cb_framer_tx_kept, cb_framer_rx_kept). Blocks use
     * the two sets of line buffers in turn, so a tick's line buffer was last used at the same tick
     * two blocks back, an even number of ticks back when the blocks are alike (the framers' kept
     * lines alternate tick by tick: with one set, blocks of an odd number of ticks kept none).
     * The set this block uses; the last block's ticks; those of the last block the in-process far
     * end framed without a line model (0: none); per set, the ticks of the last block that used it
     * and those of its in-process far end (0: none, or a peer or the line model had the line);
     * and, per tick of this block, whether our and the far end's transmit left the line buffer as
     * it was. */
    int set;
    int last_ticks, far_ticks;
    int set_ticks[2], far_set_ticks[2];
    uint8_t tx_kept[CB_MAX_BLOCK_TICKS], far_kept[CB_MAX_BLOCK_TICKS];
    /* The far end's timeslots in far_out that hold the idle octet for far_idle_per octets (bit
     * k: timeslot k + 1), as the last block left them: filled again only when that changes. */
    uint32_t far_idle;
    size_t far_idle_per;
} sim_span_t;

#define SIM_LINE_NOSIG 1

struct cb_sim {
    cb_card_t head;         /* must be first */
    int nports;
    int nspans;
    sim_span_t *span;       /* [nspans] */
    int sync;               /* the span the clock comes from, -1 internal (as the block applies it) */
    _Atomic int sync_req;   /* ... as the sync_source op asked it (any thread; taken at the next block) */
    cb_line_model_t *line_model; /* the test-only line model, or NULL */
    int law;
    int clock;
    uint8_t idle;           /* idle octet of the law */
    uint8_t *kind;          /* [nchan] enum cb_chan_kind */
    uint64_t tick;          /* next tick to exchange */

    /* in-process far side */
    sim_fifo_t *to_card;    /* [nchan] far side -> card (rx) */
    sim_fifo_t *to_far;     /* [nchan] card -> far side (tx), kept while listening */
    uint8_t *listen;        /* [nchan] */
    sim_sig_t *sigq;        /* [SIM_SIGQ] pending far-side signals, unordered */
    int nsig;
    cb_event_t *farq;       /* [SIM_FARQ] far-visible changes, ring */
    uint32_t farq_head, farq_tail;

    /* line state per channel (the sim_level_t ones are read by cb_sim_line_levels) */
    sim_level_t *hook;      /* FXS: the phone's physical hook (1 off). FXO: our hook. */
    sim_level_t *hook_rep;  /* FXS: hook state as reported to the media tier */
    uint64_t *onhook_at;    /* FXS: tick the phone went on hook (pending flash/hang-up) */
    sim_level_t *ringing;   /* FXS: ring cadence running. FXO: ring voltage from the exchange */
    uint8_t *ring_on;       /* FXS: ring voltage now on */
    int32_t (*cadence)[4];  /* FXS: on,off,on,off ms */
    int32_t *cad_idx;       /* FXS: segment 0..3 */
    int32_t *cad_left;      /* FXS: ticks left in the segment */
    sim_level_t *battery;   /* 1 battery present */
    sim_level_t *polarity;  /* 1 reversed */
    int32_t *flash_left;    /* FXO: ticks left of a flash we send (on hook) */
    /* The ports a tick has work for, a bit each (port_tick visits only these, in port order): */
    uint64_t *ring_bits;    /* ringing set (FXS cadence running, FXO ring voltage) */
    uint64_t *hang_bits;    /* FXS gone on hook while reported off (a hang-up or a flash pending) */
    uint64_t *flash_bits;   /* FXO: flash_left > 0 */
    int port_words;         /* words of each */
    sim_pend_t *pend;       /* [nports][SIM_PEND_LEVELS] levels of lost changes still to set */
    int npend;              /* entries of pend set */

    /* far-end peers over the socket */
    sim_peer_t peer[CB_SIM_MAX_PEERS];
    uint8_t *far_claimed;   /* [nchan] slot+1 of the peer holding the channel, 0 if none */
    uint32_t far_buf_size;  /* octets of each peer's in and out buffers: length + FAR_MSG_MAX(nchan) */
    int far_timeout_ms;     /* virtual clock: dead-peer limit */

    /* realtime clock */
    struct timespec t0;
    uint64_t blocks_done;

    cb_sim_stats_t stats;

    /* fault injection: card event type to drop next, per channel (0 none); an atomic octet
     * stored by the control thread, taken (compare-and-swap to 0) by the thread stepping the card */
    _Atomic uint8_t drop_next[CB_SIM_MAX_CHANNELS];
};

/* Fault injection: take out of ev[0..nev) the events cb_sim_drop_next_event asked for;
 * returns the new count (tick file). */
int cb_sim_drop_faults(cb_sim_t *sim, cb_event_t *ev, int nev);

/* Append a card event; returns 1, or 0 when ev was full (the event counted as dropped). */
int cb_sim_put_ev(cb_sim_t *s, cb_event_t *ev, int *nev, int ev_max, uint64_t tick, int chan, int type,
                  int32_t value, int32_t extra);

/* Spans (span.c; per block: tick/span_tick.c). Their state belongs to the thread stepping the card;
 * another thread (the control tier on the realtime clock) asks for faults and the clock source
 * through atomics taken at the next block, and reads status from what each block publishes. */
int sim_spans_new(cb_sim_t *s, const uint8_t *kinds, int first_chan);
void sim_spans_free(cb_sim_t *s);
int sim_span_config(cb_card_t *card, int span, const cb_span_config_t *cfg);
int sim_span_status(cb_card_t *card, int span, cb_span_status_t *out);
int sim_sync_source(cb_card_t *card, int span);
int sim_abcd_set(cb_card_t *card, int chan, int bits);
int sim_abcd_get(cb_card_t *card, int chan);
int sim_hdlc_send(cb_card_t *card, int chan, const uint8_t *frame, int len);
int sim_hdlc_recv(cb_card_t *card, int chan, uint8_t *frame, int max);
/* Exchange a block (the card op); fill: the media tier's cb_card_t.tx_fill for tx, or NULL. */
int cb_sim_exchange_fill(cb_sim_t *s, uint64_t tick0, int ticks, const uint8_t *tx, const uint8_t *fill,
                         uint8_t *rx, cb_event_t *ev, int ev_max);
/* Our framers: the media tier's timeslot octets of the block into each span's line_tx (fill: as
 * cb_card_t.tx_fill says them, or NULL). */
void sim_span_tx(cb_sim_t *s, int ticks, const uint8_t *tx, const uint8_t *fill);
/* The in-process far ends of the spans no socket peer holds: line_tx in, line_rx out. */
void sim_span_far(cb_sim_t *s, uint64_t tick0, int ticks);
/* Our framers: each span's line_rx into the media tier's rx octets, with their events. */
void sim_span_rx(cb_sim_t *s, uint64_t tick0, int ticks, uint8_t *rx, cb_event_t *ev, int *nev, int ev_max);
/* Publish each span's status (ours and the far end's) for readers on other threads. */
void sim_span_publish(cb_sim_t *s);

/* The sim card's operations (drivers/src/tick/sim_tick.c). */
extern const cb_card_ops_t cb_sim_ops;

/* Detach peer slot p, count why, queue FAR_ERROR (reason != CB_FAR_OK) and FAR_DOWN (tick file). */
void cb_sim_far_close(cb_sim_t *sim, int p, cb_event_t *ev, int *nev, int ev_max, int reason, int detail);

#endif
