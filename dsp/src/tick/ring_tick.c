/* Put and get of the SPSC record rings: used on the media path, so no allocation. */
#include "cb_ring.h"

uint32_t cb_ring_capacity(const cb_ring_t *r)
{
    return r->mask + 1U;
}

uint32_t cb_ring_count(const cb_ring_t *r)
{
    uint64_t in = atomic_load_explicit(&r->records_in, memory_order_acquire);
    uint64_t out = atomic_load_explicit(&r->records_out, memory_order_acquire);
    return (uint32_t) (in - out);
}

uint64_t cb_ring_dropped(const cb_ring_t *r)
{
    return atomic_load_explicit(&r->dropped, memory_order_relaxed);
}

uint64_t cb_ring_dropped_kind(const cb_ring_t *r, int slot)
{
    if (slot < 0 || slot >= CB_KIND_SLOTS)
        return 0;
    return atomic_load_explicit(&r->dropped_kind[slot], memory_order_relaxed);
}

static void frame_word(uint8_t *p, uint32_t size)
{
    memcpy(p, &size, sizeof size);
    memset(p + sizeof size, 0, CB_RING_FRAME - sizeof size);
}

int cb_ring_put(cb_ring_t *r, const void *head, uint32_t hlen, const void *payload, uint32_t plen,
                int kind_slot)
{
    if (plen > CB_MAX_PAYLOAD || hlen > CB_RING_HEAD_MAX || (plen > 0 && payload == NULL))
        return CB_ERR_INVALID;
    const uint32_t cap = r->mask + 1U;
    const uint32_t need = CB_RING_FRAME + CB_REC_SIZE(hlen, plen);
    uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
    uint32_t off = (uint32_t) (h & r->mask);
    uint32_t to_end = cap - off;
    uint32_t skip = to_end < need ? to_end : 0;  /* no record wraps */
    if ((uint64_t) need + skip > cap - (h - t)) {
        atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
        if (kind_slot >= 0 && kind_slot < CB_KIND_SLOTS)
            atomic_fetch_add_explicit(&r->dropped_kind[kind_slot], 1, memory_order_relaxed);
        return CB_ERR_FULL;
    }
    if (skip) {
        frame_word(r->buf + off, CB_RING_SKIP);
        h += skip;
        off = 0;
    }
    uint8_t *p = r->buf + off;
    frame_word(p, hlen + plen);
    memcpy(p + CB_RING_FRAME, head, hlen);
    if (plen)
        memcpy(p + CB_RING_FRAME + hlen, payload, plen);
    atomic_store_explicit(&r->records_in, atomic_load_explicit(&r->records_in, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&r->head, h + need, memory_order_release);
    return CB_OK;
}

/* The next record's frame offset and size; 0 when empty. Skips wrap marks. */
static uint32_t next_record(cb_ring_t *r, uint64_t *t, uint64_t h, uint32_t *off)
{
    while (*t != h) {
        uint32_t o = (uint32_t) (*t & r->mask);
        uint32_t size;
        memcpy(&size, r->buf + o, sizeof size);
        if (size == CB_RING_SKIP) {
            *t += (r->mask + 1U) - o;
            continue;
        }
        *off = o;
        return size;
    }
    return 0;
}

int cb_ring_get(cb_ring_t *r, void *out, uint32_t max)
{
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
    uint32_t off = 0;
    uint32_t size = next_record(r, &t, h, &off);
    if (size == 0) {
        atomic_store_explicit(&r->tail, t, memory_order_release);
        return 0;
    }
    if (size > max)
        return CB_ERR_INVALID;
    memcpy(out, r->buf + off + CB_RING_FRAME, size);
    atomic_store_explicit(&r->records_out, atomic_load_explicit(&r->records_out, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&r->tail, t + CB_RING_FRAME + CB_REC_SIZE(size, 0), memory_order_release);
    return (int) size;
}

int cb_ring_get_many(cb_ring_t *r, uint8_t *out, uint32_t max, int max_records)
{
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
    uint32_t used = 0;
    int n = 0;
    while (n < max_records) {
        uint32_t off = 0;
        uint64_t t2 = t;
        uint32_t size = next_record(r, &t2, h, &off);
        if (size == 0) {
            t = t2;
            break;
        }
        uint32_t padded = CB_REC_SIZE(size, 0);
        if (used + padded > max)
            break;
        memcpy(out + used, r->buf + off + CB_RING_FRAME, size);
        if (padded > size)
            memset(out + used + size, 0, padded - size);
        used += padded;
        t = t2 + CB_RING_FRAME + padded;
        n++;
    }
    atomic_store_explicit(&r->records_out, atomic_load_explicit(&r->records_out, memory_order_relaxed)
                                               + (uint64_t) n, memory_order_relaxed);
    atomic_store_explicit(&r->tail, t, memory_order_release);
    return n;
}

int cb_ring_pop_events(cb_ring_t *r, cb_event_t *out, int max)
{
    uint8_t rec[sizeof(cb_event_t) + CB_MAX_PAYLOAD];
    int n = 0;
    while (n < max && cb_ring_get(r, rec, (uint32_t) sizeof rec) > 0) {
        memcpy(&out[n], rec, sizeof(cb_event_t));
        out[n].len = 0;
        n++;
    }
    return n;
}
