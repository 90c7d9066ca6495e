/* Ring life cycle: the only place rings allocate. */
#include <stdlib.h>
#include "cb_ring.h"

cb_ring_t *cb_ring_init(uint32_t octets)
{
    if (octets > (1U << 28))
        return NULL;
    uint32_t cap = 64;
    while (cap < octets)
        cap <<= 1;
    cb_ring_t *r = aligned_alloc(64, (sizeof(*r) + 63U) & ~(size_t) 63U);
    if (r == NULL)
        return NULL;
    memset(r, 0, sizeof(*r));
    r->buf = calloc(cap, 1);
    if (r->buf == NULL) {
        free(r);
        return NULL;
    }
    r->mask = cap - 1;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    atomic_init(&r->records_in, 0);
    atomic_init(&r->records_out, 0);
    atomic_init(&r->dropped, 0);
    for (int i = 0; i < CB_KIND_SLOTS; i++)
        atomic_init(&r->dropped_kind[i], 0);
    return r;
}

void cb_ring_free(cb_ring_t *r)
{
    if (r == NULL)
        return;
    free(r->buf);
    free(r);
}
