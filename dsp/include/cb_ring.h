/*
 * cb_ring.h - bounded single-producer/single-consumer rings of fixed-size
 * records: commands into the media tier, events out of it.
 *
 * One producer thread, one consumer thread, no locks: the head is written only
 * by the producer, the tail only by the consumer (C11 acquire/release). A push
 * onto a full ring fails and counts a drop; nothing ever blocks. The storage
 * is allocated once by cb_ring_init(); push and pop never allocate.
 */
#ifndef CB_RING_H
#define CB_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "cb_hal.h"

struct cb_ring {
    _Atomic uint64_t head;  /* next slot to write; producer only */
    char pad1[56];
    _Atomic uint64_t tail;  /* next slot to read; consumer only */
    char pad2[56];
    _Atomic uint64_t dropped; /* pushes refused because the ring was full */
    uint32_t mask;          /* capacity - 1; capacity is a power of two */
    uint32_t elem;          /* record size in octets */
    uint8_t *buf;
};

/* CDEF BEGIN */
typedef struct cb_ring cb_ring_t;

/*! \brief Allocate a ring of `capacity` records of `elem` octets.
    \param capacity rounded up to a power of two, at least 2.
    \return the ring, or NULL when out of memory or elem is 0. */
cb_ring_t *cb_ring_init(uint32_t capacity, uint32_t elem);
/*! \brief Free a ring made by cb_ring_init(). */
void cb_ring_free(cb_ring_t *r);
/*! \brief Number of records the ring holds at most. */
uint32_t cb_ring_capacity(const cb_ring_t *r);
/*! \brief Records waiting to be read. */
uint32_t cb_ring_count(const cb_ring_t *r);
/*! \brief Pushes refused because the ring was full, since it was made. */
uint64_t cb_ring_dropped(const cb_ring_t *r);
/*! \brief Producer: copy one record in.
    \return CB_OK, or CB_ERR_FULL (and the drop counter grows). */
int cb_ring_push(cb_ring_t *r, const void *rec);
/*! \brief Consumer: copy up to `max` records out.
    \return the number copied. */
int cb_ring_pop(cb_ring_t *r, void *out, int max);
/* CDEF END */

/*! \brief Producer, on the media path: push one event record. */
static inline int cb_ring_put_event(cb_ring_t *r, uint64_t tick, int chan, int type,
                                    int32_t value, int32_t extra)
{
    uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (h - t > r->mask) {
        atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
        return CB_ERR_FULL;
    }
    cb_event_t *e = (cb_event_t *) (void *) (r->buf + (size_t) (h & r->mask) * r->elem);
    e->tick = tick;
    e->chan = (uint16_t) chan;
    e->type = (uint16_t) type;
    e->value = value;
    e->extra = extra;
    e->reserved = 0;
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
    return CB_OK;
}

#endif
