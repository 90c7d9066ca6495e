/*
 * The media tier's life cycle, its rings' control-tier ends, and the realtime
 * thread (started here, never a Python thread, so it never waits for the GIL).
 * The per-block path is in tick/media_tick.c.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include "media_priv.h"

cb_media_t *cb_media_init(int nchan, int law, uint32_t cmd_capacity, uint32_t ev_capacity)
{
    if (nchan < 1 || nchan > 4096 || (law != CB_LAW_ALAW && law != CB_LAW_ULAW) || cmd_capacity < 2
        || ev_capacity < 2)
        return NULL;
    cb_media_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    size_t n = (size_t) nchan;
    size_t blk = n * CB_MAX_BLOCK_TICKS * CB_TICK_SAMPLES;
    m->n = nchan;
    m->law_default = law;
    m->cmd = cb_ring_init(cmd_capacity, sizeof(cb_cmd_t));
    m->ev = cb_ring_init(ev_capacity, sizeof(cb_event_t));
    m->law = malloc(n);
    m->peer = malloc(n * sizeof(int32_t));
    m->gen = calloc(n, 1);
    m->zone = calloc(n, 1);
    m->play = calloc(n, sizeof(*m->play));
    m->play_len = calloc(n, sizeof(int32_t));
    m->play_pos = calloc(n, sizeof(int32_t));
    m->rx = malloc(blk);
    m->tx = malloc(blk);
    m->lin = aligned_alloc(64, ((n * CB_TICK_SAMPLES * sizeof(int16_t)) + 63) & ~(size_t) 63);
    m->acc = aligned_alloc(64, ((n * CB_TICK_SAMPLES * sizeof(int32_t)) + 63) & ~(size_t) 63);
    m->late_hist = calloc(CB_MEDIA_LATE_BUCKETS, sizeof(uint32_t));
    m->dtmf_rx = cb_dtmf_rx_init(nchan);
    m->dtmf_tx = cb_dtmf_tx_init(nchan);
    m->tone = cb_tone_gen_init(nchan);
    m->fsk_tx = cb_fsk_tx_init(nchan);
    m->fsk_rx = cb_fsk_rx_init(nchan);
    m->busy = cb_busy_det_init(nchan);
    if (!m->cmd || !m->ev || !m->law || !m->peer || !m->gen || !m->zone || !m->play || !m->play_len
        || !m->play_pos || !m->rx || !m->tx || !m->lin || !m->acc || !m->late_hist || !m->dtmf_rx
        || !m->dtmf_tx || !m->tone || !m->fsk_tx || !m->fsk_rx || !m->busy) {
        cb_media_free(m);
        return NULL;
    }
    /* DTMF detection is off until asked for (CB_CMD_DETECT). */
    for (int c = 0; c < nchan; c++) {
        m->law[c] = (uint8_t) law;
        m->peer[c] = -1;
        cb_dtmf_rx_enable(m->dtmf_rx, c, 0);
    }
    memset(m->tx, law == CB_LAW_ALAW ? 0xD5 : 0xFF, blk);
    memset(m->rx, law == CB_LAW_ALAW ? 0xD5 : 0xFF, blk);
    atomic_init(&m->progress, 0);
    atomic_init(&m->frozen, 0);
    atomic_init(&m->running, 0);
    return m;
}

void cb_media_free(cb_media_t *m)
{
    if (m == NULL)
        return;
    cb_media_stop(m);
    cb_ring_free(m->cmd);
    cb_ring_free(m->ev);
    free(m->law);
    free(m->peer);
    free(m->gen);
    free(m->zone);
    free(m->play);
    free(m->play_len);
    free(m->play_pos);
    free(m->rx);
    free(m->tx);
    free(m->lin);
    free(m->acc);
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
    free(m);
}

int cb_media_attach_card(cb_media_t *m, uintptr_t card)
{
    cb_card_t *c = (cb_card_t *) card;
    if (c == NULL || c->nchan != m->n || c->ticks_per_block < 1
        || c->ticks_per_block > CB_MAX_BLOCK_TICKS || atomic_load(&m->running))
        return CB_ERR_INVALID;
    m->card = c;
    return CB_OK;
}

int cb_media_command(cb_media_t *m, const cb_cmd_t *cmd)
{
    if (cmd->chan >= m->n)
        return CB_ERR_INVALID;
    return cb_ring_push(m->cmd, cmd);
}

int cb_media_events(cb_media_t *m, cb_event_t *out, int max)
{
    return cb_ring_pop(m->ev, out, max);
}

uint64_t cb_media_tick(const cb_media_t *m)
{
    return m->tick;
}

void cb_media_get_stats(const cb_media_t *m, cb_media_stats_t *out)
{
    *out = m->stats;
    out->ticks = atomic_load(&((cb_media_t *) m)->progress);
    out->events_dropped = cb_ring_dropped(m->ev);
}

void cb_media_get_lateness(const cb_media_t *m, uint32_t *hist)
{
    memcpy(hist, m->late_hist, CB_MEDIA_LATE_BUCKETS * sizeof(uint32_t));
}

void cb_media_freeze_progress(cb_media_t *m, int on)
{
    atomic_store(&m->frozen, on ? 1 : 0);
}

const char *cb_media_isa(void)
{
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
    /* the same test the loader's resolver makes for target_clones("arch=x86-64-v3") */
    __builtin_cpu_init();
    return __builtin_cpu_supports("x86-64-v3") ? "x86-64-v3" : "x86-64";
#else
    return "generic";
#endif
}

static void *media_thread(void *arg)
{
    cb_media_t *m = arg;
    int k = m->card->ticks_per_block;
    while (atomic_load_explicit(&m->running, memory_order_acquire))
        cb_media_block(m, k, 1);
    return NULL;
}

int cb_media_start(cb_media_t *m, int fifo_priority, int lock_memory)
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

void cb_media_stop(cb_media_t *m)
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
        hist[late < CB_MEDIA_LATE_BUCKETS - 1 ? late : CB_MEDIA_LATE_BUCKETS - 1]++;
    }
    *late_max_us = worst;
    return ms;
}

int cb_media_process_blocks(cb_media_t *m, uint64_t tick0, int nblocks, int k, const uint8_t *rx,
                            uint8_t *tx)
{
    if (nblocks < 0 || k < 1 || k > CB_MAX_BLOCK_TICKS)
        return CB_ERR_INVALID;
    size_t blk = (size_t) m->n * (size_t) k * CB_TICK_SAMPLES;
    for (int b = 0; b < nblocks; b++) {
        int rc = cb_media_process(m, tick0 + (uint64_t) b * (uint64_t) k, k, rx + (size_t) b * blk,
                                  tx + (size_t) b * blk);
        if (rc < 0)
            return rc;
    }
    return nblocks;
}
