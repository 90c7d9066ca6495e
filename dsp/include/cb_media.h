/*
 * cb_media.h - the media tier: the per-tick DSP chain over every channel of a
 * card, its command ring in and its event ring out, stepped either by the
 * caller (virtual clock) or by a realtime thread of its own.
 *
 * Per block of k ticks: apply the queued commands; wait for the card (sim:
 * the clock; DAHDI: the device); exchange one block with the card; then for
 * each 1 ms tick: G.711 decode, detectors (DTMF, FSK, busy cadence), bridges,
 * generators (tones, DTMF, FSK, prompts), G.711 encode into the block the card
 * takes next time. So a bridged pair hears each other one block later, and
 * with both ports on one law the octets pass bit-exact.
 *
 * Nothing on this path allocates, locks or calls Python. Commands and events
 * cross to the control tier only through the two rings.
 */
#ifndef CB_MEDIA_H
#define CB_MEDIA_H

#include <stdint.h>
#include "cb_hal.h"
#include "cb_ring.h"

/* CDEF BEGIN */
#define CB_MEDIA_LATE_BUCKETS 20001  /* lateness histogram: 1 us buckets, the last one holds >= 20 ms */

typedef struct cb_media cb_media_t;

/* Realtime start-up outcome bits (cb_media_start). */
enum cb_rt_flags {
    CB_RT_STARTED = 1,      /* the media thread runs */
    CB_RT_FIFO = 2,         /* it runs SCHED_FIFO */
    CB_RT_MLOCK = 4         /* memory is locked */
};

typedef struct cb_media_stats {
    uint64_t ticks;         /* ticks processed: the media progress counter */
    uint64_t blocks;        /* blocks exchanged with the card */
    uint64_t events_dropped;/* events lost because the event ring was full */
    uint64_t commands_failed; /* commands refused (a CB_EV_MEDIA_ERROR each) */
    uint64_t card_errors;   /* exchanges the card failed */
    uint64_t late_max_us;   /* realtime: worst wake-up lateness */
    uint64_t late_count;    /* realtime: wake-ups measured */
} cb_media_stats_t;

/*! \brief Make the media tier for `nchan` channels.
    \param law the default law of every channel (enum cb_law).
    \param cmd_capacity records in the command ring; \param ev_capacity records in the event ring.
    \return the tier, or NULL (bad argument or out of memory). */
cb_media_t *cb_media_init(int nchan, int law, uint32_t cmd_capacity, uint32_t ev_capacity);
/*! \brief Stop the realtime thread if any, and free everything. */
void cb_media_free(cb_media_t *m);
/*! \brief Attach a card (cb_card_t *, passed as an address); its nchan must match.
    \return CB_OK or CB_ERR_INVALID. */
int cb_media_attach_card(cb_media_t *m, uintptr_t card);
/*! \brief Producer (control tier): queue one command.
    \return CB_OK, CB_ERR_FULL (ring full: nothing queued, nothing blocks), CB_ERR_INVALID. */
int cb_media_command(cb_media_t *m, const cb_cmd_t *cmd);
/*! \brief Consumer (control tier): take up to `max` events. \return the number taken. */
int cb_media_events(cb_media_t *m, cb_event_t *out, int max);
/*! \brief Virtual clock: run `ticks` ticks now, in blocks of the card's k.
    \return ticks run, or a negative cb_status (no card, realtime running). */
int cb_media_step(cb_media_t *m, int ticks);
/*! \brief Run the chain on one block without a card (benchmarks, tests):
    rx and tx are channel-major blocks of `ticks` ticks (see cb_hal.h). */
int cb_media_process(cb_media_t *m, uint64_t tick0, int ticks, const uint8_t *rx, uint8_t *tx);
/*! \brief cb_media_process over `nblocks` consecutive blocks of k ticks, laid out
    block after block (each block channel-major), as a card would hand them over. */
int cb_media_process_blocks(cb_media_t *m, uint64_t tick0, int nblocks, int k, const uint8_t *rx,
                            uint8_t *tx);
/*! \brief Start the realtime media thread. \param fifo_priority 0 = do not ask for SCHED_FIFO.
    \return a set of cb_rt_flags, or a negative cb_status. */
int cb_media_start(cb_media_t *m, int fifo_priority, int lock_memory);
/*! \brief Stop the realtime thread and wait for it. */
void cb_media_stop(cb_media_t *m);
/*! \brief The next tick to process. */
uint64_t cb_media_tick(const cb_media_t *m);
/*! \brief Copy the counters. */
void cb_media_get_stats(const cb_media_t *m, cb_media_stats_t *out);
/*! \brief Copy the lateness histogram (CB_MEDIA_LATE_BUCKETS counts, 1 us each). */
void cb_media_get_lateness(const cb_media_t *m, uint32_t *hist);
/*! \brief Fault injection for watchdog tests: 1 freezes the progress counter. */
void cb_media_freeze_progress(cb_media_t *m, int on);
/*! \brief Which instruction set the hot loops run with ("x86-64-v3" or the "x86-64" baseline). */
const char *cb_media_isa(void);
/*! \brief A 1 ms absolute-deadline loop doing nothing, for `ms` ticks, in the
    caller's thread: the machine's baseline lateness (same histogram form). */
int cb_clock_probe(int ms, uint32_t *hist, uint64_t *late_max_us);
/* CDEF END */

#endif
