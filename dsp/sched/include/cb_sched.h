/*
 * cb_sched.h - the channel scheduler: the media tier's per-tick chain over
 * every channel of a card, its command ring in and its event ring out,
 * stepped either by the caller (virtual clock) or by a realtime thread of its
 * own. It is the one C unit that sees both the card HAL (cb_hal.h) and the
 * kernels (dsp/include/).
 *
 * Per block of k ticks: apply the queued commands; wait for the card (sim:
 * the clock; DAHDI: the device); exchange one block with the card; then for
 * each 1 ms tick: G.711 decode, the echo canceller's slot, detectors (DTMF,
 * FSK, busy cadence), generators (tones, DTMF, FSK, prompts), the media graph
 * (edges, mix groups), taps, G.711 encode into the block the card takes next
 * time. So a channel hears another one block later, and a channel that hears
 * exactly one other at 0 dB on the same law, with nothing generated, passes
 * its octets bit-exact.
 *
 * Nothing on this path allocates, locks or calls Python. Commands and events
 * cross to the control tier only through the two rings. The tick, the
 * counters and the number of commands applied are C11 atomics, so the control
 * tier reads them while the realtime thread runs; a buffer a command pointed
 * at may be freed once cb_sched_applied() has passed that command.
 */
#ifndef CB_SCHED_H
#define CB_SCHED_H

#include <stdint.h>
#include "cb_hal.h"
#include "cb_ring.h"

/* CDEF BEGIN */
#define CB_SCHED_LATE_BUCKETS 20001  /* lateness histogram: 1 us buckets, the last one holds >= 20 ms */
#define CB_SCHED_CMD_RING 262144     /* octets of the command ring */
#define CB_SCHED_BACKOFF_MAX_MS 100  /* realtime: longest pause after a failed card exchange */
#define CB_SCHED_CARD_EV_PER_CHAN_TICK 4 /* the block's card event buffer: this many per channel and tick */
#define CB_SCHED_CARD_EV_MIN 256     /* ... of the largest block (CB_MAX_BLOCK_TICKS), and at least this many */

typedef struct cb_sched cb_sched_t;

/* CB_CMD_PLAY, c: the buffer's samples are followed by the same samples as G.711 octets of
 * this law, so a channel that sends nothing else and hears nothing takes them as they are
 * (a prompt, or a looped signal, costs a copy). */
enum cb_play_coded {
    CB_PLAY_LINEAR = 0,     /* samples only */
    CB_PLAY_ALAW = 1,       /* followed by their A-law octets */
    CB_PLAY_ULAW = 2        /* followed by their µ-law octets */
};

/* Realtime start-up outcome bits (cb_sched_start). */
enum cb_rt_flags {
    CB_RT_STARTED = 1,      /* the media thread runs */
    CB_RT_FIFO = 2,         /* it runs SCHED_FIFO */
    CB_RT_MLOCK = 4         /* memory is locked */
};

typedef struct cb_sched_stats {
    uint64_t ticks;         /* ticks processed: the media progress counter */
    uint64_t blocks;        /* blocks exchanged with the card */
    uint64_t events_dropped;/* events lost because the event ring was full (per kind: cb_sched_dropped_kind) */
    uint64_t card_events_dropped; /* card events lost: beyond the block's event buffer (nchan x
                               CB_MAX_BLOCK_TICKS x CB_SCHED_CARD_EV_PER_CHAN_TICK, at least
                               CB_SCHED_CARD_EV_MIN); the card counts them by kind */
    uint64_t commands_failed; /* commands refused (a CB_EV_MEDIA_ERROR each) */
    uint64_t commands_applied; /* commands taken from the ring and applied (or refused) */
    uint64_t card_errors;   /* exchanges the card failed */
    uint64_t late_max_us;   /* realtime: worst wake-up lateness */
    uint64_t late_count;    /* realtime: wake-ups measured */
} cb_sched_stats_t;

/*! \brief Octets of an event ring that holds every event `nchan` channels can raise in
    `period_ticks` ticks twice over (a control period that runs one period late). */
uint32_t cb_sched_event_ring_octets(int nchan, int period_ticks);
/*! \brief Make the scheduler for `nchan` channels.
    \param law the default law of every channel (enum cb_law).
    \param period_ticks the control period the event ring must hold (see cb_sched_event_ring_octets).
    \param ev_octets 0, or an event ring size to use instead (tests of overflow):
        CB_RING_MIN_OCTETS..CB_RING_MAX_OCTETS (cb_ring_check_octets).
    \return the scheduler, or NULL (bad argument or out of memory). */
cb_sched_t *cb_sched_init(int nchan, int law, int period_ticks, uint32_t ev_octets);
/*! \brief Stop the realtime thread if any, and free everything. */
void cb_sched_free(cb_sched_t *m);
/*! \brief Attach a card (cb_card_t *, passed as an address); its nchan must match.
    \return CB_OK or CB_ERR_INVALID. */
int cb_sched_attach_card(cb_sched_t *m, uintptr_t card);
/*! \brief Producer (control tier): queue one command and its payload (`cmd->len` octets).
    \return CB_OK, CB_ERR_FULL (ring full: nothing queued, nothing blocks), CB_ERR_INVALID. */
int cb_sched_command(cb_sched_t *m, const cb_cmd_t *cmd, const uint8_t *payload);
/*! \brief Consumer (control tier): take whole event records (head, then payload, each
    padded to CB_REC_ALIGN) into `out` of `max` octets. \return the number taken. */
int cb_sched_events(cb_sched_t *m, uint8_t *out, uint32_t max);
/*! \brief Virtual clock: run `ticks` ticks now, in blocks of the card's k.
    \return ticks run, or a negative cb_status (no card, realtime running). */
int cb_sched_step(cb_sched_t *m, int ticks);
/*! \brief Run the chain on one block without a card (benchmarks, tests):
    rx and tx are channel-major blocks of `ticks` ticks (see cb_hal.h). */
int cb_sched_process(cb_sched_t *m, uint64_t tick0, int ticks, const uint8_t *rx, uint8_t *tx);
/*! \brief cb_sched_process over `nblocks` consecutive blocks of k ticks, laid out
    block after block (each block channel-major), as a card would hand them over. */
int cb_sched_process_blocks(cb_sched_t *m, uint64_t tick0, int nblocks, int k, const uint8_t *rx,
                            uint8_t *tx);
/*! \brief Start the realtime media thread. \param fifo_priority 0 = do not ask for SCHED_FIFO.
    \return a set of cb_rt_flags, or a negative cb_status. */
int cb_sched_start(cb_sched_t *m, int fifo_priority, int lock_memory);
/*! \brief Stop the realtime thread and wait for it. */
void cb_sched_stop(cb_sched_t *m);
/*! \brief The next tick to process (atomic). */
uint64_t cb_sched_tick(const cb_sched_t *m);
/*! \brief Set the next tick before the first block (tests start the clock anywhere). */
int cb_sched_set_tick(cb_sched_t *m, uint64_t tick);
/*! \brief Commands whose block has finished (atomic): a buffer the n-th command
    replaced or stopped is unused once this reaches n. */
uint64_t cb_sched_applied(const cb_sched_t *m);
/*! \brief Copy the counters. */
void cb_sched_get_stats(const cb_sched_t *m, cb_sched_stats_t *out);
/*! \brief Events of the kinds in counter slot `slot` (cb_kind_slot) lost to a full event ring. */
uint64_t cb_sched_dropped_kind(const cb_sched_t *m, int slot);
/*! \brief Copy the lateness histogram (CB_SCHED_LATE_BUCKETS counts, 1 us each). */
void cb_sched_get_lateness(const cb_sched_t *m, uint32_t *hist);
/*! \brief Fault injection for watchdog tests: 1 freezes the progress counter. */
void cb_sched_freeze_progress(cb_sched_t *m, int on);
/*! \brief Which instruction set the hot loops run with ("x86-64-v3" or the "x86-64" baseline). */
const char *cb_sched_isa(void);
/*! \brief A 1 ms absolute-deadline loop doing nothing, for `ms` ticks, in the
    caller's thread: the machine's baseline lateness (same histogram form). */
int cb_clock_probe(int ms, uint32_t *hist, uint64_t *late_max_us);
/* CDEF END */

#endif
