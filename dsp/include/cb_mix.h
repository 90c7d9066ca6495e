/*
 * cb_mix.h - the media graph: who hears whom, with what gain, over a bank of
 * channels; and taps that copy a channel's two directions into a sample ring.
 *
 * What does it do? Each channel's transmit is its generators plus the sum of
 * what it hears:
 *   - one-way edges: listener L hears source S's received signal at a gain
 *     (listen, whisper and barge are sets of edges; a two-party bridge is two);
 *   - mix groups: every member that hears gets the sum of the members that
 *     talk, less its own contribution (a conference where nobody hears
 *     himself; hospital paging is one talker and many listeners).
 * Sums are formed in int32 and saturated to 16 bits when the scheduler
 * encodes, so an overload clips instead of wrapping.
 *
 * Gains are given in centi-dB (dB x 100), from CB_MIX_GAIN_MIN to
 * CB_MIX_GAIN_MAX, and kept as Q12 factors (4096 = 0 dB): a sample times the
 * largest factor still fits an int32. The conversion happens when an edge is
 * set (the control tier's command), never on the tick.
 *
 * Limits: CB_MIX_MAX_EDGES edges into one channel. A group is a conference of
 * up to CB_MIX_CONF_MAX legs, or, when its first member joined with
 * CB_MIX_PAGING, a paging group of up to CB_MIX_GROUP_MAX members (most of them
 * only hear); every later join must say the same kind. One edge or member more
 * is refused with CB_ERR_LIMIT, and nothing changes.
 *
 * The kernel knows only samples: the scheduler hands it the tick's decoded
 * samples and its accumulator, sample-major as every kernel (cb_dsp.h).
 */
#ifndef CB_MIX_H
#define CB_MIX_H

#include <stdatomic.h>
#include <stdint.h>
#include "cb_records.h"

/* CDEF BEGIN */
#define CB_MIX_MAX_EDGES 4      /* one-way edges into one channel */
#define CB_MIX_GROUP_MAX 64     /* members of a paging group (joined with CB_MIX_PAGING) */
#define CB_MIX_CONF_MAX 8       /* legs of a conference (a group joined without CB_MIX_PAGING) */
#define CB_MIX_GAIN_MIN -6000   /* cdB: -60 dB */
#define CB_MIX_GAIN_MAX 1800    /* cdB: +18 dB */
#define CB_MIX_UNITY 4096       /* Q12 factor of 0 dB */

typedef struct cb_mix cb_mix_t;

/*! \brief Allocate a graph over n channels: no edges, no groups.
    \return the bank, or NULL on a bad n or when out of memory. */
cb_mix_t *cb_mix_init(int n);
/*! \brief Free a bank made by cb_mix_init() (NULL is ignored). */
void cb_mix_free(cb_mix_t *m);
/*! \brief Listener hears source at gain_cdb (an existing edge source->listener is replaced).
    \return CB_OK, CB_ERR_INVALID (channel, gain, listener == source), CB_ERR_LIMIT (CB_MIX_MAX_EDGES). */
int cb_mix_listen(cb_mix_t *m, int listener, int source, int gain_cdb);
/*! \brief Listener stops hearing source (-1: every source).
    \return CB_OK, CB_ERR_INVALID (channel), CB_ERR_STATE (listener does not hear source). */
int cb_mix_unlisten(cb_mix_t *m, int listener, int source);
/*! \brief Remove every edge into chan, and chan's edges into the channels it heard.
    \return CB_OK or CB_ERR_INVALID. */
int cb_mix_unbridge(cb_mix_t *m, int chan);
/*! \brief Chan joins group (0..n-1) with flags (enum cb_mix_flags); its contribution at gain_cdb.
    A channel is in one group at most: joining another leaves the first. The group's first member
    makes it a paging group (CB_MIX_PAGING) or a conference; a join that says the other kind is
    refused, unless chan is the group's only member.
    \return CB_OK, CB_ERR_INVALID (channel, group, gain, flags, kind), CB_ERR_LIMIT (CB_MIX_CONF_MAX
    legs of a conference, CB_MIX_GROUP_MAX members of a paging group). */
int cb_mix_join(cb_mix_t *m, int chan, int group, int gain_cdb, int flags);
/*! \brief Chan leaves its group (none: no effect). \return CB_OK or CB_ERR_INVALID. */
int cb_mix_leave(cb_mix_t *m, int chan);
/*! \brief The single source chan hears at 0 dB when that is all it hears (no other edge,
    no group), else -1: the scheduler's bit-exact fast path. */
int cb_mix_sole_source(const cb_mix_t *m, int chan);
/*! \brief Edges into chan (0..CB_MIX_MAX_EDGES), or CB_ERR_INVALID. */
int cb_mix_edges(const cb_mix_t *m, int chan);
/*! \brief The group chan is in, or -1. */
int cb_mix_group_of(const cb_mix_t *m, int chan);
/*! \brief Members of a group (0 when empty), or CB_ERR_INVALID. */
int cb_mix_members(const cb_mix_t *m, int group);
/*! \brief Q12 factor of a gain in cdB (CB_MIX_UNITY at 0). */
int32_t cb_mix_factor(int gain_cdb);
/*! \brief Add one tick of the graph into acc.
    \param lin the tick's received samples, 8 x n, sample-major.
    \param acc the tick's transmit accumulator, 8 x n, sample-major.
    \param skip per channel 1 when the scheduler passes its octets through (fast path): nothing is added. */
void cb_mix_tick(cb_mix_t *m, const int16_t *lin, int32_t *acc, const uint8_t *skip);
/*! \brief The channels whose received samples cb_mix_tick() reads with the same `skip`: the sources
    of each listener not skipped and the talking members of each live group. Each one whose
    `have` is 0 is set to 1 and appended to `out` (room for every channel); returns how many. */
int cb_mix_sources(const cb_mix_t *m, const uint8_t *skip, uint8_t *have, int32_t *out);

/* A tap: a channel's received and transmitted samples, frame by frame (one
 * frame = one sample each way), in a single-producer (the tick) /
 * single-consumer (a worker off the tick) ring. Made and freed by the
 * control tier; the tick only writes into it. When the reader falls behind,
 * the newest samples are dropped and counted. */
typedef struct cb_tap cb_tap_t;

/*! \brief A tap of at least `frames` frames (rounded up to a power of two, 64..2^24). */
cb_tap_t *cb_tap_init(uint32_t frames);
/*! \brief Free a tap (only once the scheduler applied CB_CMD_TAP_STOP for it). */
void cb_tap_free(cb_tap_t *t);
/*! \brief Consumer: take up to max frames into rx[] and tx[]. \return frames taken. */
int cb_tap_read(cb_tap_t *t, int16_t *rx, int16_t *tx, int max);
/*! \brief Frames the reader lost (the ring was full). */
uint64_t cb_tap_overruns(const cb_tap_t *t);
/* CDEF END */

struct cb_tap {
    _Atomic uint32_t head;      /* frames written; the tick only */
    _Atomic uint32_t tail;      /* frames read; the reader only */
    _Atomic uint64_t overruns;
    uint32_t mask;
    int16_t *rx;
    int16_t *tx;
};

/*! \brief Producer (the tick): append `count` frames, taken `stride` apart from rx and tx. */
static inline void cb_tap_put(cb_tap_t *t, const int16_t *rx, const int16_t *tx, int count, int stride)
{
    uint32_t h = atomic_load_explicit(&t->head, memory_order_relaxed);
    uint32_t tail = atomic_load_explicit(&t->tail, memory_order_acquire);
    uint32_t room = t->mask + 1U - (h - tail);
    if ((uint32_t) count > room) {
        atomic_fetch_add_explicit(&t->overruns, (uint64_t) count, memory_order_relaxed);
        return;
    }
    for (int i = 0; i < count; i++) {
        t->rx[(h + (uint32_t) i) & t->mask] = rx[i * stride];
        t->tx[(h + (uint32_t) i) & t->mask] = tx[i * stride];
    }
    atomic_store_explicit(&t->head, h + (uint32_t) count, memory_order_release);
}

#endif
