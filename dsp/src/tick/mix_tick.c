/*
 * mix_tick.c - one tick of the media graph: edges first (listener by
 * listener), then each live mix group (sum of its talkers once, then each
 * hearing member gets the sum less its own part). Tap reads are here too, as
 * they run off the tick and only move the ring's tail.
 */
#include "cb_dsp.h"
#include "../mix_priv.h"

CB_MULTIVERSION
void cb_mix_tick(cb_mix_t *m, const int16_t *lin, int32_t *acc, const uint8_t *skip)
{
    const int n = m->n;
    for (int i = 0; i < m->nlisteners; i++) {
        int c = m->listeners[i];
        if (skip[c])
            continue;
        for (int e = 0; e < m->nedge[c]; e++) {
            const int src = m->src[c][e];
            const int32_t g = m->gain[c][e];
            if (g == CB_MIX_UNITY) {
                for (int s = 0; s < CB_TICK_SAMPLES; s++)
                    acc[s * n + c] += lin[s * n + src];
            } else {
                for (int s = 0; s < CB_TICK_SAMPLES; s++)
                    acc[s * n + c] += (lin[s * n + src] * g) >> 12;
            }
        }
    }
    for (int i = 0; i < m->nactive; i++) {
        const int g = m->active[i];
        const int32_t *mem = m->members[g];
        const int nm = m->nmembers[g];
        int32_t sum[CB_TICK_SAMPLES] = {0};
        for (int j = 0; j < nm; j++) {
            const int c = mem[j];
            int32_t *part = m->contrib[c];
            if (!(m->mflags[c] & CB_MIX_TALK)) {
                for (int s = 0; s < CB_TICK_SAMPLES; s++)
                    part[s] = 0;
                continue;
            }
            const int32_t f = m->mgain[c];
            for (int s = 0; s < CB_TICK_SAMPLES; s++) {
                part[s] = f == CB_MIX_UNITY ? lin[s * n + c] : (lin[s * n + c] * f) >> 12;
                sum[s] += part[s];
            }
        }
        for (int j = 0; j < nm; j++) {
            const int c = mem[j];
            if (!(m->mflags[c] & CB_MIX_HEAR))
                continue;
            const int32_t *part = m->contrib[c];
            for (int s = 0; s < CB_TICK_SAMPLES; s++)
                acc[s * n + c] += sum[s] - part[s];
        }
    }
}

int cb_mix_sources(const cb_mix_t *m, const uint8_t *skip, uint8_t *have, int32_t *out)
{
    int k = 0;
    for (int i = 0; i < m->nlisteners; i++) {
        int c = m->listeners[i];
        if (skip[c])
            continue;
        for (int e = 0; e < m->nedge[c]; e++) {
            const int src = m->src[c][e];
            if (!have[src]) {
                have[src] = 1;
                out[k++] = src;
            }
        }
    }
    for (int i = 0; i < m->nactive; i++) {
        const int g = m->active[i];
        for (int j = 0; j < m->nmembers[g]; j++) {
            const int c = m->members[g][j];
            if ((m->mflags[c] & CB_MIX_TALK) && !have[c]) {
                have[c] = 1;
                out[k++] = c;
            }
        }
    }
    return k;
}

int cb_tap_read(cb_tap_t *t, int16_t *rx, int16_t *tx, int max)
{
    uint32_t tail = atomic_load_explicit(&t->tail, memory_order_relaxed);
    uint32_t h = atomic_load_explicit(&t->head, memory_order_acquire);
    int k = 0;
    for (; k < max && tail != h; k++, tail++) {
        rx[k] = t->rx[tail & t->mask];
        tx[k] = t->tx[tail & t->mask];
    }
    atomic_store_explicit(&t->tail, tail, memory_order_release);
    return k;
}

uint64_t cb_tap_overruns(const cb_tap_t *t)
{
    return atomic_load_explicit(&((cb_tap_t *) t)->overruns, memory_order_relaxed);
}
