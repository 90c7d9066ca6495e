/* Push and pop of the SPSC rings: used on the media path, so no allocation. */
#include "cb_ring.h"

uint32_t cb_ring_capacity(const cb_ring_t *r)
{
    return r->mask + 1U;
}

uint32_t cb_ring_count(const cb_ring_t *r)
{
    uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
    return (uint32_t) (h - t);
}

uint64_t cb_ring_dropped(const cb_ring_t *r)
{
    return atomic_load_explicit(&r->dropped, memory_order_relaxed);
}

int cb_ring_push(cb_ring_t *r, const void *rec)
{
    uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (h - t > r->mask) {
        atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
        return CB_ERR_FULL;
    }
    memcpy(r->buf + (size_t) (h & r->mask) * r->elem, rec, r->elem);
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
    return CB_OK;
}

int cb_ring_pop(cb_ring_t *r, void *out, int max)
{
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
    int n = 0;
    uint8_t *o = out;
    while (t != h && n < max) {
        memcpy(o + (size_t) n * r->elem, r->buf + (size_t) (t & r->mask) * r->elem, r->elem);
        t++;
        n++;
    }
    atomic_store_explicit(&r->tail, t, memory_order_release);
    return n;
}
