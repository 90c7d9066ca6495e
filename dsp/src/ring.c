/* Ring life cycle: the only place rings allocate. */
#include <stdlib.h>
#include "cb_ring.h"

/* The worst fit of the largest record on an empty ring: its head stands one alignment unit short
 * of room before the end, so that much is skipped and the record starts again at offset 0. */
#define RING_WORST_FIT (2U * (CB_RING_FRAME + CB_REC_SIZE(CB_RING_HEAD_MAX, CB_MAX_PAYLOAD)) - CB_REC_ALIGN)
_Static_assert(CB_RING_MIN_OCTETS >= RING_WORST_FIT, "the largest record fits the smallest empty ring");
_Static_assert((CB_RING_MIN_OCTETS & (CB_RING_MIN_OCTETS - 1)) == 0, "the smallest ring is a power of two");

int cb_ring_check_octets(uint32_t octets)
{
    return octets < CB_RING_MIN_OCTETS || octets > CB_RING_MAX_OCTETS ? CB_ERR_INVALID : CB_OK;
}

cb_ring_t *cb_ring_init(uint32_t octets)
{
    if (cb_ring_check_octets(octets) != CB_OK)
        return NULL;
    uint32_t cap = CB_RING_MIN_OCTETS;
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
