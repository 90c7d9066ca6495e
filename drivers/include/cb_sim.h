/*
 * cb_sim.h - the sim card: a software card that is a real backend.
 *
 * Analog ports have hook state, ringing with a cadence, hook flash, battery
 * and polarity; E1/T1 spans carry 31 or 24 timeslots of octets (unframed in
 * this version: framing and signalling come with the digital trunks). The
 * card's far side is what a cable would connect: an exchange on FXO ports, a
 * phone on FXS ports, a peer on span timeslots. It is driven either in
 * process (cb_sim_far_* calls, between blocks, from the thread that steps the
 * card) or by a peer process over the far-end socket (docs/sim-far-end.md),
 * which claims some channels and answers every block in lockstep.
 *
 * Two clocks: virtual (wait returns at once: runs as fast as the CPU allows)
 * and realtime (absolute-deadline sleep on CLOCK_MONOTONIC; a block is due
 * k ms after the previous one).
 *
 * Not modelled here: bit errors, clock offsets and slips, line impairments
 * (a test-only line model adds them outside the product).
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

enum cb_span_kind {
    CB_SPAN_E1 = 0,     /* 31 timeslots (TS1..TS31) */
    CB_SPAN_T1 = 1      /* 24 timeslots */
};

enum cb_clock {
    CB_CLOCK_VIRTUAL = 0,
    CB_CLOCK_REALTIME = 1
};

typedef struct cb_sim cb_sim_t;

/*! \brief Make a sim card.
    \param nports number of analog ports; port_kinds[i] is CB_CHAN_FXO or CB_CHAN_FXS.
    \param nspans number of spans; span_kinds[i] is enum cb_span_kind.
    \param law the card's law (enum cb_law): its idle octet and the far side's.
    \param k ticks per block, 1..10.
    \param clock enum cb_clock.
    \return the card, or NULL (bad description or out of memory). */
cb_sim_t *cb_sim_new(int nports, const uint8_t *port_kinds, int nspans, const uint8_t *span_kinds,
                     int law, int k, int clock);
/*! \brief Free the card; closes an attached far-end peer. */
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
/*! \brief Start (1) or stop (0) keeping the card's transmitted audio for cb_sim_far_read. */
int cb_sim_far_listen(cb_sim_t *sim, int chan, int on);
/*! \brief A far-side line change at an absolute tick (now or later):
    FXS port: CB_EV_HOOK_OFF / CB_EV_HOOK_ON (the phone's hook);
    FXO port: CB_EV_RING_ON / CB_EV_RING_OFF, CB_EV_BATTERY (value 0/1), CB_EV_POLARITY (value 0/1).
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
    uint64_t far_late;      /* realtime: far-end answers that missed their block (idle sent instead) */
    uint64_t far_refused;   /* far-end messages refused */
    uint64_t far_fifo_overrun; /* in-process far-side octets that did not fit */
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
/* CDEF END */

#endif
