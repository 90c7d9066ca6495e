/*
 * cb_sim.h - the sim card: a software card that is a real backend.
 *
 * Analog ports have hook state, ringing with a cadence, hook flash, battery
 * and polarity; E1/T1 spans carry 31 or 24 timeslots of octets on a framed
 * line (G.704; alarms, counters, D-channel HDLC, CAS ABCD). The card's far
 * side is what a cable would connect: an exchange on FXO ports, a phone on
 * FXS ports, the far end of each span's line. It is driven either in
 * process (cb_sim_far_* calls, between blocks, from the thread that steps the
 * card) or by peer processes over the far-end socket (docs/sim-far-end.md):
 * up to CB_SIM_MAX_PEERS at once, each claiming its own channels and
 * answering every block (lockstep on the virtual clock, within half a block
 * on the realtime clock). Each peer has its own socket, sequence, partial
 * message buffers and counters; the card never blocks on a peer's socket
 * beyond the block's deadline, and drops a peer that is dead or stopped reading.
 *
 * On this card CB_CMD_FAR_ATTACH hands over a peer that said HELLO (version 2):
 *   a = its socket (the card owns it from then on and closes it when the peer
 *   leaves or is refused), ptr = uint16_t[] its claim, b = its length: an
 *   analog port's channel number, or CB_SIM_FAR_SPAN | span index for a span
 *   claimed whole (its timeslots are never claimed one by one: a timeslot's
 *   channel number is refused), ports and spans each in the peer's order (the
 *   order of its BLOCKs); c, d = the low and high 32 bits of its first block's
 *   tick (the HELLO's `tick`, a block boundary now or later; a peer handed over
 *   after it is refused with CB_FAR_START_MISSED). CB_ERR_INVALID: an empty
 *   claim, no such port or span, one held by another peer, or one twice;
 *   CB_ERR_FULL: CB_SIM_MAX_PEERS attached. A span's in-process far end lets go
 *   of it at the peer's first block and takes it back when the peer goes.
 *   CB_CMD_FAR_DETACH with chan = any channel a peer holds (a port it claimed,
 *   a timeslot of a span it holds) lets that peer go.
 * The CB_EV_FAR_ERROR, CB_EV_FAR_DOWN and CB_EV_FAR_LATE events of a peer carry
 * its first claimed port's channel in `chan`, or, claiming no port, its first
 * span's TS1 channel.
 *
 * Two clocks: virtual (wait returns at once: runs as fast as the CPU allows)
 * and realtime (absolute-deadline sleep on CLOCK_MONOTONIC; a block is due
 * k ms after the previous one).
 *
 * Each span has a framer (G.704 E1, T1 D4/ESF), and so does its in-process far end: the line
 * between them carries framed bits (docs/sim-far-end.md for socket peers that hold a span).
 * Not modelled in the product: bit errors, bipolar violations, clock offsets (the test-only line
 * model adds them through cb_sim_set_line_model).
 */
#ifndef CB_SIM_H
#define CB_SIM_H

#include <stdint.h>
#include "cb_hal.h"

/* CDEF BEGIN */
#define CB_SIM_FLASH_MIN_MS 100    /* on hook shorter than this is contact bounce, ignored */
#define CB_SIM_FLASH_MAX_MS 1250   /* on hook shorter than this is a hook flash; this long is a hang-up */
#define CB_SIM_FAR_FIFO 8192       /* octets of far-side audio buffered per channel each way */
#define CB_SIM_MAX_CHANNELS 1024
#define CB_SIM_MAX_PEERS 8         /* far-end peers attached at once */
#define CB_SIM_FAR_MAX_EVENTS 256  /* events one far-end BLOCK carries at most, either way */
#define CB_SIM_FAR_DEAD_BLOCKS 50  /* a peer late, or unable to take its block, this many blocks in a row is dropped */
#define CB_SIM_FAR_TIMEOUT_MS 10000 /* virtual clock: default dead-peer limit, ms of wall time for one answer */
#define CB_SIM_SIGQ 1024           /* queued far-side line changes (in process and from peers) */
#define CB_SIM_FARQ 4096           /* far-visible line changes kept for cb_sim_far_poll and the peers */
#define CB_SIM_FAR_REASONS 16      /* size of the per-reason counters (enum cb_far_error) */
#define CB_SIM_KIND_SLOTS 64       /* size of the per-kind counters: card kinds, by cb_kind_slot (0-63) */
#define CB_SIM_FAR_SPAN 0x8000     /* CB_CMD_FAR_ATTACH claim entry: this | span index claims the span whole */
#define CB_SIM_FAR_VERSION 2       /* the far-end socket's protocol version (docs/sim-far-end.md) */

#define CB_SIM_MAX_SPANS 64

enum cb_span_kind {
    CB_SPAN_E1 = 0,     /* 31 timeslots (TS1..TS31) */
    CB_SPAN_T1 = 1      /* 24 timeslots */
};

/* What the sim card's in-process far end of a span does to the line (cb_sim_span_fault). */
enum cb_span_fault {
    CB_FAULT_CLEAR = 0, /* a healthy far end */
    CB_FAULT_CUT = 1,   /* the cable is cut: no signal either way */
    CB_FAULT_LOS = 2,   /* the far end stops sending */
    CB_FAULT_AIS = 3,   /* the far end sends AIS (unframed all ones) */
    CB_FAULT_RAI = 4    /* the far end sends RAI */
};

/* The test-only line model's hook (tests/line): the card calls impair once per span, direction and
 * tick with that tick's coded line signal (sym[0..nbits) in {-1, 0, +1}); dir 0 = toward the card
 * (our receiver), 1 = toward the far end. far_ppb[span]: the far end's clock offset, parts per 10^9.
 * Only while a model is attached do spans run their line codes (AMI, HDB3, B8ZS); without one they
 * move bits. */
typedef struct cb_line_model {
    void (*impair)(void *ctx, int span, int dir, uint64_t tick, int8_t *sym, int nbits);
    void *ctx;
    int32_t far_ppb[64];    /* [CB_SIM_MAX_SPANS] */
} cb_line_model_t;

enum cb_clock {
    CB_CLOCK_VIRTUAL = 0,
    CB_CLOCK_REALTIME = 1
};

typedef struct cb_sim cb_sim_t;

/*! \brief Make a sim card.
    \param nports number of analog ports; port_kinds[i] is CB_CHAN_FXO or CB_CHAN_FXS.
    \param nspans number of spans; span_kinds[i] is enum cb_span_kind.
    \param law the card's law (enum cb_law): its idle octet and the far side's.
    \param k ticks per block, 1..10 (cb_sim_exchange takes any block up to CB_MAX_BLOCK_TICKS:
        the far-end buffers are sized for that one bound).
    \param clock enum cb_clock.
    \return the card, or NULL (bad description or out of memory). */
cb_sim_t *cb_sim_new(int nports, const uint8_t *port_kinds, int nspans, const uint8_t *span_kinds,
                     int law, int k, int clock);
/*! \brief Free the card; closes every attached far-end peer. */
void cb_sim_free(cb_sim_t *sim);
/*! \brief The card's HAL head (pass to the media tier). */
cb_card_t *cb_sim_card(cb_sim_t *sim);
/*! \brief Channel count (ports, then every span's timeslots). */
int cb_sim_nchan(const cb_sim_t *sim);
/*! \brief Kind of a channel (enum cb_chan_kind), or CB_ERR_INVALID. */
int cb_sim_chan_kind(const cb_sim_t *sim, int chan);
/*! \brief The next tick the card will exchange. */
uint64_t cb_sim_tick(const cb_sim_t *sim);
/*! \brief Start the card's clock at `tick` (before its first block: tests of long uptimes).
    \return CB_OK, or CB_ERR_STATE once a block was exchanged. */
int cb_sim_set_tick(cb_sim_t *sim, uint64_t tick);

/*! \brief Exchange one block directly (a card without the media tier: tests, tools).
    Same contract as cb_card_ops_t.exchange. */
int cb_sim_exchange(cb_sim_t *sim, uint64_t tick0, int ticks, const uint8_t *tx, uint8_t *rx,
                    cb_event_t *ev, int ev_max);
/*! \brief Apply a card command directly (same contract as cb_card_ops_t.command). */
int cb_sim_command(cb_sim_t *sim, const cb_cmd_t *cmd);

/* The far side, in process. */
/*! \brief Queue audio from the far side into the card (what the line will deliver).
    \return octets taken (fewer when the FIFO is full). */
int cb_sim_far_write(cb_sim_t *sim, int chan, const uint8_t *octets, int n);
/*! \brief Take audio the card sent toward the far side (only while listening).
    \return octets copied. */
int cb_sim_far_read(cb_sim_t *sim, int chan, uint8_t *octets, int n);
/*! \brief The far side of a whole period at once: queue `n` octets toward the card on each of
    the first `nchan` channels, channel c's at octets + c * n (channel-major, the layout of a
    media tier's block). Octets that do not fit a full FIFO are counted in far_fifo_overrun.
    \return CB_OK, or CB_ERR_INVALID (nchan beyond the card's channels, n < 0). */
int cb_sim_far_write_all(cb_sim_t *sim, const uint8_t *octets, int nchan, int n);
/*! \brief The far side of a whole period at once: take the first `n` octets the card sent on
    each of the first `nchan` channels that are listened to into out + c * n (channel-major), the
    idle octet after them where fewer were waiting; octets waiting beyond those n are dropped. A
    channel not listened to is skipped: its part of out is left as it is.
    \param got NULL, or `nchan` counts: the octets that were waiting, up to n, per channel (0 for
        a channel not listened to).
    \return the octets dropped (0 when the far side keeps pace with the card), or CB_ERR_INVALID. */
int cb_sim_far_read_all(cb_sim_t *sim, uint8_t *out, int nchan, int n, int32_t *got);
/*! \brief Start (1) or stop (0) keeping the card's transmitted audio for cb_sim_far_read. */
int cb_sim_far_listen(cb_sim_t *sim, int chan, int on);
/*! \brief A far-side line change at an absolute tick (now or later):
    FXS port: CB_EV_HOOK_OFF / CB_EV_HOOK_ON (the phone's hook);
    FXO port: CB_EV_RING_ON / CB_EV_RING_OFF, CB_EV_BATTERY (value 0/1), CB_EV_POLARITY (value 0/1).
    Changes take effect tick by tick, those of one tick in the order they were given (the in-process
    ones before a peer's of the same block, a peer's in the order of its BLOCK). They wait in one
    queue of CB_SIM_SIGQ with the peers' until their tick.
    \return CB_OK, CB_ERR_INVALID (wrong kind for the channel, tick in the past), CB_ERR_FULL. */
int cb_sim_far_signal(cb_sim_t *sim, int chan, int type, int value, uint64_t at_tick);
/*! \brief Line changes the far side has seen, oldest first, with their ticks:
    FXS port: CB_EV_RING_ON/OFF, CB_EV_BATTERY, CB_EV_POLARITY; FXO port: CB_EV_HOOK_OFF/ON.
    \return records copied. */
int cb_sim_far_poll(cb_sim_t *sim, cb_event_t *out, int max);

/* Counters. */
typedef struct cb_sim_stats {
    uint64_t blocks;        /* blocks exchanged */
    uint64_t late_blocks;   /* realtime: blocks whose wait woke after their deadline */
    uint64_t underflows;    /* realtime: blocks later than the card FIFO (k ms): a caller hears a gap */
    uint64_t far_late;      /* far-end answers that missed their block (idle used instead), every peer */
    uint64_t far_refused;   /* far-end peers refused for a protocol error (bad message, start missed) */
    uint64_t far_fifo_overrun; /* in-process far-side octets that did not fit */
    uint64_t far_skipped;   /* realtime: late answers recognised and skipped when they arrived */
    uint64_t far_stalled;   /* blocks not handed to a peer: its previous block was still unread */
    uint64_t far_dropped;   /* peers dropped as dead or stalled (TIMEOUT, LATE_RUN, STALLED) */
    uint64_t far_ev_dropped;   /* far-visible line changes lost before a peer could be sent them */
    uint64_t far_sig_dropped;  /* a peer's line changes that did not fit the signal queue (by kind below);
                                  each still sets its line's level (the last one per line wins) */
    uint64_t far_late_events;  /* realtime: line changes in late answers that were skipped (by kind below);
                                  they still set their lines' levels */
    uint64_t far_farq_overrun; /* far-visible line changes overwritten before cb_sim_far_poll took them */
    uint64_t card_ev_dropped;  /* card events beyond the caller's ev_max (by kind below) */
    uint64_t far_attached;  /* peers ever handed to the card */
    uint64_t far_peers;     /* peers attached now (waiting for their first block included) */
    uint64_t far_refused_by[16]; /* [CB_SIM_FAR_REASONS] peers gone, by enum cb_far_error (0: the peer left) */
    uint64_t card_ev_dropped_by[64];  /* [CB_SIM_KIND_SLOTS] card_ev_dropped, by kind (cb_kind_slot) */
    uint64_t far_sig_dropped_by[64];  /* [CB_SIM_KIND_SLOTS] far_sig_dropped, by kind (cb_kind_slot) */
    uint64_t far_late_events_by[64];  /* [CB_SIM_KIND_SLOTS] far_late_events, by kind (cb_kind_slot) */
} cb_sim_stats_t;
/*! \brief Copy the counters. */
void cb_sim_get_stats(const cb_sim_t *sim, cb_sim_stats_t *out);
/* Line levels: the card's current line state per channel, next to its events
 * (a control tier reconciles its line machines against them each period). */
/*! \brief The levels of the first n channels, one bit set of CB_LEVEL_* (cb_hal.h) per channel
    (0 for span timeslots). Safe while the media thread runs: each level is one byte the
    card writes and this reads whole; a read may be one block old, never torn.
    \return channels written (at most the card's channel count), or CB_ERR_INVALID. */
int cb_sim_line_levels(const cb_sim_t *sim, uint8_t *out, int n);
/*! \brief Fault injection (tests only): the card drops the next event of `type` (a card
    event, below 0x100) it would report on `chan`; type 0 cancels. The level still changes.
    One pending drop per channel.
    \return CB_OK, or CB_ERR_INVALID (channel or type out of range). */
int cb_sim_drop_next_event(cb_sim_t *sim, int chan, int type);

/* One attached far-end peer. */
typedef struct cb_sim_peer_info {
    int32_t first_chan;     /* its first claimed channel: names it in CB_EV_FAR_* events */
    int32_t nchan;          /* channels claimed */
    int32_t active;         /* 1 exchanging blocks, 0 waiting for its first block */
    uint32_t seq;           /* sequence number of its next block */
    uint64_t start_tick;    /* its first block's tick */
    uint64_t answered;      /* blocks it answered in time */
    uint64_t late;          /* blocks it answered late or not at all */
    uint64_t skipped;       /* late answers skipped when they arrived */
    uint64_t stalled;       /* blocks it could not be handed (not reading) */
    uint32_t late_run;      /* late or stalled blocks in a row now */
    uint32_t reserved;
} cb_sim_peer_info_t;
/*! \brief The attached far-end peers, in slot order. \return records copied. */
int cb_sim_far_peers(const cb_sim_t *sim, cb_sim_peer_info_t *out, int max);
/*! \brief Virtual clock: the dead-peer limit, ms of wall time the card waits for one answer
    (default CB_SIM_FAR_TIMEOUT_MS). \return CB_OK or CB_ERR_INVALID (not 1..600000). */
int cb_sim_set_far_timeout(cb_sim_t *sim, int ms);
/* Spans. Their framing is set with the HAL's span_config op (cb_card_span_config; the default is
 * E1 CRC-4 HDB3 or T1 ESF B8ZS, TS16 clear, timing by position; on the realtime clock only before
 * the first block: CB_ERR_STATE after), their status read with span_status (what the last block
 * published: any thread), the clock source set with sync_source and faults with cb_sim_span_fault
 * (any thread: taken at the next block). */
/*! \brief A fault of a span's in-process far end (enum cb_span_fault), from the next block on.
    \return CB_OK, CB_ERR_INVALID (no such span or fault), CB_ERR_STATE (rai on a span a socket peer
        holds: the peer makes the far end's signal). */
int cb_sim_span_fault(cb_sim_t *sim, int span, int fault);
/*! \brief Frame the in-process far end of a span otherwise than ours (a far end without CRC-4, say);
    the span's own configuration (span_config) sets both ends alike. The TS16 role must be ours.
    \return CB_OK or CB_ERR_INVALID. */
int cb_sim_far_span_config(cb_sim_t *sim, int span, const cb_span_config_t *cfg);
/*! \brief The alarms and counters of a span's in-process far end (its own framer).
    \return CB_OK or CB_ERR_INVALID. */
int cb_sim_far_span_status(const cb_sim_t *sim, int span, cb_span_status_t *out);
/*! \brief The in-process far end sends ABCD `abcd` on CAS timeslot channel `chan` (0000 refused).
    \return CB_OK, CB_ERR_INVALID, CB_ERR_STATE (the span has no CAS). */
int cb_sim_far_cas_set(cb_sim_t *sim, int chan, int abcd);
/*! \brief The ABCD the in-process far end receives on CAS timeslot channel `chan`, or a negative cb_status. */
int cb_sim_far_cas_get(cb_sim_t *sim, int chan);
/*! \brief The in-process far end queues a frame (without FCS) on span `span`'s D-channel.
    \return CB_OK, CB_ERR_INVALID (no such span, no D-channel, bad length), CB_ERR_FULL. */
int cb_sim_far_frame_send(cb_sim_t *sim, int span, const uint8_t *frame, int len);
/*! \brief Take a frame the in-process far end received on span `span`'s D-channel.
    \return its length, 0 if none, or a negative cb_status. */
int cb_sim_far_frame_recv(cb_sim_t *sim, int span, uint8_t *frame, int max);
/*! \brief The spans whose in-process far end has received frames not yet taken: bit i for span i. */
uint64_t cb_sim_far_frames_waiting(const cb_sim_t *sim);
/*! \brief Attach the test-only line model (NULL detaches); it must outlive the card or its detach.
    \return CB_OK. */
int cb_sim_set_line_model(cb_sim_t *sim, cb_line_model_t *model);
/*! \brief The span the card's clock was last asked to come from (sync_source), or -1 (internal); the
    card takes it from the next block on (a span's published status says `sync` from then). */
int cb_sim_sync(const cb_sim_t *sim);
/* CDEF END */

#endif
