/*
 * The channel scheduler's life cycle, its rings' control-tier ends, and the
 * realtime thread (started here, never a Python thread, so it never waits
 * for the GIL). The per-block path is in tick/sched_tick.c.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include "sched_priv.h"

/* Ring octets of one event record without payload. */
#define EV_REC_OCTETS (CB_RING_FRAME + CB_REC_SIZE(sizeof(cb_event_t), 0))

uint32_t cb_sched_event_ring_octets(int nchan, int period_ticks)
{
    if (nchan < 1 || period_ticks < 1)
        return 0;
    uint64_t ticks = (uint64_t) (period_ticks > CB_MAX_BLOCK_TICKS ? period_ticks : CB_MAX_BLOCK_TICKS);
    /* every channel's events of two periods, room for a refusal of every queued
     * command, and some frames with payload */
    uint64_t octets = 2U * ticks * (uint64_t) nchan * CB_EVENTS_PER_CHAN_TICK * EV_REC_OCTETS
                      + (CB_SCHED_CMD_RING / 32U) * EV_REC_OCTETS
                      + 64U * (CB_RING_FRAME + CB_REC_SIZE(sizeof(cb_event_t), CB_MAX_PAYLOAD));
    return octets > (1U << 28) ? (1U << 28) : (uint32_t) octets;
}

cb_sched_t *cb_sched_init(int nchan, int law, int period_ticks, uint32_t ev_octets)
{
    if (nchan < 1 || nchan > 4096 || (law != CB_LAW_ALAW && law != CB_LAW_ULAW) || period_ticks < 1)
        return NULL;
    cb_sched_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    size_t n = (size_t) nchan;
    size_t blk = n * CB_MAX_BLOCK_TICKS * CB_TICK_SAMPLES;
    m->n = nchan;
    m->law_default = law;
    m->cmd = cb_ring_init(CB_SCHED_CMD_RING);
    m->ev = cb_ring_init(ev_octets ? ev_octets : cb_sched_event_ring_octets(nchan, period_ticks));
    m->law = malloc(n);
    m->gen = calloc(n, 1);
    m->zone = calloc(n, 1);
    m->pass = calloc(n, 1);
    m->pass_src = calloc(n, sizeof(int32_t));
    m->play = calloc(n, sizeof(*m->play));
    m->play_len = calloc(n, sizeof(int32_t));
    m->play_pos = calloc(n, sizeof(int32_t));
    m->play_loop = calloc(n, sizeof(int32_t));
    m->play_lpos = calloc(n, sizeof(int32_t));
    m->play_oct = calloc(n, sizeof(*m->play_oct));
    m->play_oct_law = calloc(n, 1);
    m->dtmf_on = calloc(n, 1);
    m->fsk_on = calloc(n, 1);
    m->busy_on = calloc(n, 1);
    m->heard = calloc(n, 1);
    m->echoed = calloc(n, 1);
    m->act = calloc(n, sizeof(int32_t));
    m->dec = calloc(n, sizeof(int32_t));
    m->is_dec = calloc(n, 1);
    m->late = calloc(n, sizeof(int32_t));
    m->oct = calloc(n, sizeof(int32_t));
    m->bpass = calloc(n, sizeof(int32_t));
    m->quiet = calloc(n, sizeof(int32_t));
    m->tonal = calloc(n, sizeof(int32_t));
    m->idle_runs = calloc(2 * n, sizeof(int32_t));
    m->tx_fill = calloc(n, 1);
    m->tap = calloc(n, sizeof(*m->tap));
    m->tapped = calloc(n, sizeof(int32_t));
    m->rx = malloc(blk);
    m->tx = malloc(blk);
    m->lin = aligned_alloc(64, ((n * CB_TICK_SAMPLES * sizeof(int16_t)) + 63) & ~(size_t) 63);
    m->acc = aligned_alloc(64, ((n * CB_TICK_SAMPLES * sizeof(int32_t)) + 63) & ~(size_t) 63);
    m->txlin = calloc(CB_TICK_SAMPLES, sizeof(int16_t));
    /* A card block raises at most a few events per channel and tick; what a far side makes it
     * raise beyond the buffer is lost, counted by the card (by kind) and here (in total). */
    int room = nchan * CB_MAX_BLOCK_TICKS * CB_SCHED_CARD_EV_PER_CHAN_TICK;
    m->ncard_ev = room > CB_SCHED_CARD_EV_MIN ? room : CB_SCHED_CARD_EV_MIN;
    m->card_ev = calloc((size_t) m->ncard_ev, sizeof(cb_event_t));
    m->cmd_rec = malloc(sizeof(cb_cmd_t) + CB_MAX_PAYLOAD);
    m->late_hist = calloc(CB_SCHED_LATE_BUCKETS, sizeof(uint32_t));
    m->dtmf_rx = cb_dtmf_rx_init(nchan);
    m->dtmf_tx = cb_dtmf_tx_init(nchan);
    m->tone = cb_tone_gen_init(nchan);
    m->fsk_tx = cb_fsk_tx_init(nchan);
    m->fsk_rx = cb_fsk_rx_init(nchan);
    m->busy = cb_busy_det_init(nchan);
    m->mix = cb_mix_init(nchan);
    m->echo = cb_echo_new(nchan);
    if (!m->cmd || !m->ev || !m->law || !m->gen || !m->zone || !m->pass || !m->pass_src || !m->play
        || !m->play_len || !m->play_pos || !m->play_loop || !m->play_lpos || !m->play_oct || !m->play_oct_law
        || !m->dtmf_on || !m->fsk_on || !m->busy_on || !m->heard || !m->echoed || !m->act || !m->dec || !m->is_dec || !m->late || !m->oct || !m->bpass || !m->quiet || !m->tonal || !m->idle_runs || !m->tx_fill
        || !m->tap || !m->tapped || !m->rx || !m->tx || !m->lin || !m->acc
        || !m->txlin || !m->card_ev || !m->cmd_rec || !m->late_hist || !m->dtmf_rx || !m->dtmf_tx
        || !m->tone || !m->fsk_tx || !m->fsk_rx || !m->busy || !m->mix || !m->echo) {
        cb_sched_free(m);
        return NULL;
    }
    /* DTMF detection is off until asked for (CB_CMD_DETECT). */
    for (int c = 0; c < nchan; c++) {
        m->law[c] = (uint8_t) law;
        m->pass_src[c] = -1;                /* no edge yet: nobody passes another's line */
        cb_dtmf_rx_enable(m->dtmf_rx, c, 0);
    }
    /* The DTMF bank rests at a block's start until a channel detects (sched_tick.c). */
    m->dtmf_parked = 1;
    m->resort = 1;
    /* A channel not decoded reads as silence (sched_tick.c). */
    memset(m->lin, 0, n * CB_TICK_SAMPLES * sizeof(int16_t));
    memset(m->tx, law == CB_LAW_ALAW ? 0xD5 : 0xFF, blk);
    memset(m->rx, law == CB_LAW_ALAW ? 0xD5 : 0xFF, blk);
    atomic_init(&m->tick, 0);
    atomic_init(&m->applied, 0);
    atomic_init(&m->progress, 0);
    atomic_init(&m->frozen, 0);
    atomic_init(&m->blocks, 0);
    atomic_init(&m->card_events_dropped, 0);
    atomic_init(&m->commands_failed, 0);
    atomic_init(&m->card_errors, 0);
    atomic_init(&m->late_max_us, 0);
    atomic_init(&m->late_count, 0);
    atomic_init(&m->running, 0);
    return m;
}

void cb_sched_free(cb_sched_t *m)
{
    if (m == NULL)
        return;
    cb_sched_stop(m);
    cb_ring_free(m->cmd);
    cb_ring_free(m->ev);
    free(m->law);
    free(m->gen);
    free(m->zone);
    free(m->pass);
    free(m->pass_src);
    free(m->play);
    free(m->play_len);
    free(m->play_pos);
    free(m->play_loop);
    free(m->play_lpos);
    free(m->play_oct);
    free(m->play_oct_law);
    free(m->dtmf_on);
    free(m->fsk_on);
    free(m->busy_on);
    free(m->heard);
    free(m->echoed);
    free(m->act);
    free(m->dec);
    free(m->is_dec);
    free(m->late);
    free(m->oct);
    free(m->bpass);
    free(m->quiet);
    free(m->tonal);
    free(m->idle_runs);
    free(m->tx_fill);
    free(m->tap);
    free(m->tapped);
    free(m->rx);
    free(m->tx);
    free(m->lin);
    free(m->acc);
    free(m->txlin);
    free(m->card_ev);
    free(m->cmd_rec);
    free(m->late_hist);
    if (m->dtmf_rx)
        cb_dtmf_rx_free(m->dtmf_rx);
    if (m->dtmf_tx)
        cb_dtmf_tx_free(m->dtmf_tx);
    if (m->tone)
        cb_tone_gen_free(m->tone);
    if (m->fsk_tx)
        cb_fsk_tx_free(m->fsk_tx);
    if (m->fsk_rx)
        cb_fsk_rx_free(m->fsk_rx);
    if (m->busy)
        cb_busy_det_free(m->busy);
    cb_mix_free(m->mix);
    cb_echo_free(m->echo);
    free(m);
}

int cb_sched_attach_card(cb_sched_t *m, uintptr_t card)
{
    cb_card_t *c = (cb_card_t *) card;
    if (c == NULL || c->nchan != m->n || c->ticks_per_block < 1
        || c->ticks_per_block > CB_MAX_BLOCK_TICKS || atomic_load(&m->running))
        return CB_ERR_INVALID;
    m->card = c;
    c->tx_fill = m->tx_fill;
    return CB_OK;
}

int cb_sched_command(cb_sched_t *m, const cb_cmd_t *cmd, const uint8_t *payload)
{
    if (cmd->chan >= m->n || cmd->len > CB_MAX_PAYLOAD || (cmd->len > 0 && payload == NULL))
        return CB_ERR_INVALID;
    return cb_ring_put(m->cmd, cmd, (uint32_t) sizeof *cmd, payload, cmd->len, -1);
}

int cb_sched_events(cb_sched_t *m, uint8_t *out, uint32_t max)
{
    return cb_ring_get_many(m->ev, out, max, 1 << 30);
}

uint64_t cb_sched_tick(const cb_sched_t *m)
{
    return atomic_load_explicit(&((cb_sched_t *) m)->tick, memory_order_acquire);
}

int cb_sched_set_tick(cb_sched_t *m, uint64_t tick)
{
    if (atomic_load(&m->running) || atomic_load(&m->blocks) != 0)
        return CB_ERR_STATE;
    atomic_store(&m->tick, tick);
    return CB_OK;
}

uint64_t cb_sched_applied(const cb_sched_t *m)
{
    return atomic_load_explicit(&((cb_sched_t *) m)->applied, memory_order_acquire);
}

void cb_sched_get_stats(const cb_sched_t *m, cb_sched_stats_t *out)
{
    cb_sched_t *w = (cb_sched_t *) m;
    out->ticks = atomic_load(&w->progress);
    out->blocks = atomic_load(&w->blocks);
    out->events_dropped = cb_ring_dropped(m->ev);
    out->card_events_dropped = atomic_load(&w->card_events_dropped);
    out->commands_failed = atomic_load(&w->commands_failed);
    out->commands_applied = atomic_load(&w->applied);
    out->card_errors = atomic_load(&w->card_errors);
    out->late_max_us = atomic_load(&w->late_max_us);
    out->late_count = atomic_load(&w->late_count);
}

uint64_t cb_sched_dropped_kind(const cb_sched_t *m, int slot)
{
    return cb_ring_dropped_kind(m->ev, slot);
}

void cb_sched_get_lateness(const cb_sched_t *m, uint32_t *hist)
{
    /* Relaxed copy: a bucket being bumped meanwhile is off by one at most. */
    memcpy(hist, m->late_hist, CB_SCHED_LATE_BUCKETS * sizeof(uint32_t));
}

void cb_sched_freeze_progress(cb_sched_t *m, int on)
{
    atomic_store(&m->frozen, on ? 1 : 0);
}

const char *cb_sched_isa(void)
{
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
    /* the same test the loader's resolver makes for target_clones("arch=x86-64-v3") */
    __builtin_cpu_init();
    return __builtin_cpu_supports("x86-64-v3") ? "x86-64-v3" : "x86-64";
#else
    return "generic";
#endif
}

/* After a failed exchange the thread pauses 1, 2, 4 ... ms (at most
 * CB_SCHED_BACKOFF_MAX_MS) instead of spinning on a card that is gone. */
static void backoff(int failing)
{
    long ms = 1L << (failing < 8 ? failing - 1 : 7);
    if (ms > CB_SCHED_BACKOFF_MAX_MS)
        ms = CB_SCHED_BACKOFF_MAX_MS;
    struct timespec d = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&d, &d) == -1 && errno == EINTR) {
    }
}

static void *media_thread(void *arg)
{
    cb_sched_t *m = arg;
    int k = m->card->ticks_per_block;
    while (atomic_load_explicit(&m->running, memory_order_acquire)) {
        if (cb_sched_block(m, k, 1) < 0)
            backoff(m->failing);
    }
    return NULL;
}

int cb_sched_start(cb_sched_t *m, int fifo_priority, int lock_memory)
{
    if (m->card == NULL || m->has_thread)
        return CB_ERR_STATE;
    int flags = 0;
    if (lock_memory && mlockall(MCL_CURRENT | MCL_FUTURE) == 0)
        flags |= CB_RT_MLOCK;
    atomic_store(&m->running, 1);
    int rc = -1;
    if (fifo_priority > 0) {
        pthread_attr_t attr;
        struct sched_param sp = {.sched_priority = fifo_priority};
        pthread_attr_init(&attr);
        pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
        pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
        pthread_attr_setschedparam(&attr, &sp);
        rc = pthread_create(&m->thread, &attr, media_thread, m);
        pthread_attr_destroy(&attr);
        if (rc == 0)
            flags |= CB_RT_FIFO;
    }
    if (rc != 0)
        rc = pthread_create(&m->thread, NULL, media_thread, m);
    if (rc != 0) {
        atomic_store(&m->running, 0);
        return CB_ERR_IO;
    }
    m->has_thread = 1;
    return flags | CB_RT_STARTED;
}

void cb_sched_stop(cb_sched_t *m)
{
    if (!m->has_thread)
        return;
    atomic_store(&m->running, 0);
    pthread_join(m->thread, NULL);
    m->has_thread = 0;
}

int cb_clock_probe(int ms, uint32_t *hist, uint64_t *late_max_us)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int64_t start = (int64_t) t0.tv_sec * 1000000000LL + t0.tv_nsec;
    uint64_t worst = 0;
    for (int i = 1; i <= ms; i++) {
        int64_t due = start + (int64_t) i * 1000000LL;
        struct timespec d = {(time_t) (due / 1000000000LL), (long) (due % 1000000000LL)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &d, NULL) == EINTR) {
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t late = ((int64_t) now.tv_sec * 1000000000LL + now.tv_nsec - due) / 1000;
        if (late < 0)
            late = 0;
        if ((uint64_t) late > worst)
            worst = (uint64_t) late;
        hist[late < CB_SCHED_LATE_BUCKETS - 1 ? late : CB_SCHED_LATE_BUCKETS - 1]++;
    }
    *late_max_us = worst;
    return ms;
}

int cb_sched_process_blocks(cb_sched_t *m, uint64_t tick0, int nblocks, int k, const uint8_t *rx,
                            uint8_t *tx)
{
    if (nblocks < 0 || k < 1 || k > CB_MAX_BLOCK_TICKS)
        return CB_ERR_INVALID;
    size_t blk = (size_t) m->n * (size_t) k * CB_TICK_SAMPLES;
    for (int b = 0; b < nblocks; b++) {
        int rc = cb_sched_process(m, tick0 + (uint64_t) b * (uint64_t) k, k, rx + (size_t) b * blk,
                                  tx + (size_t) b * blk);
        if (rc < 0)
            return rc;
    }
    return nblocks;
}
