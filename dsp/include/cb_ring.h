/*
 * cb_ring.h - bounded single-producer/single-consumer rings of variable-length
 * records: commands into the channel scheduler, events out of it.
 *
 * A record is a fixed head (cb_cmd_t or cb_event_t, cb_records.h) and a
 * payload of 0..CB_MAX_PAYLOAD octets. In the ring each record is preceded by
 * an 8-octet frame word and padded to CB_REC_ALIGN; a record never wraps
 * (the producer writes a skip mark instead and starts again at offset 0).
 *
 * One producer thread, one consumer thread, no locks: the head is written
 * only by the producer, the tail only by the consumer (C11 acquire/release).
 * A put onto a full ring fails and counts a drop (in total and per event
 * kind); nothing ever blocks. The storage is allocated once by
 * cb_ring_init(); put and get never allocate.
 */
#ifndef CB_RING_H
#define CB_RING_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "cb_records.h"

#define CB_RING_FRAME 8u            /* octets of the frame word before each record */
#define CB_RING_SKIP 0xFFFFFFFFu    /* frame size meaning: the rest of the buffer is unused */
#define CB_RING_HEAD_MAX 64u        /* octets of the largest record head a put takes */

struct cb_ring {
    _Atomic uint64_t head;  /* octets written; producer only */
    char pad1[56];
    _Atomic uint64_t tail;  /* octets consumed; consumer only */
    char pad2[56];
    _Atomic uint64_t records_in;  /* records put; producer only */
    _Atomic uint64_t records_out; /* records taken; consumer only */
    _Atomic uint64_t dropped;     /* puts refused because the ring was full */
    _Atomic uint64_t dropped_kind[CB_KIND_SLOTS]; /* the same, per event kind (cb_kind_slot) */
    uint32_t mask;          /* capacity - 1; capacity is a power of two, in octets */
    uint8_t *buf;
};

/* CDEF BEGIN */
#define CB_RING_MIN_OCTETS 1024     /* smallest ring: a record never wraps, so the largest one (frame 8,
                                       head up to 64, payload 264: 336 octets) needs up to twice its
                                       size to fit an empty ring wherever its head stands */
#define CB_RING_MAX_OCTETS 268435456 /* largest ring: 2^28 octets */

typedef struct cb_ring cb_ring_t;

/*! \brief Whether a ring of `octets` octets may be made: CB_OK, or CB_ERR_INVALID when it is
    smaller than CB_RING_MIN_OCTETS or larger than CB_RING_MAX_OCTETS. */
int cb_ring_check_octets(uint32_t octets);
/*! \brief Allocate a ring of at least `octets` octets of storage.
    \param octets CB_RING_MIN_OCTETS..CB_RING_MAX_OCTETS (cb_ring_check_octets), rounded up to a power
    of two: the largest record always fits the empty ring.
    \return the ring, or NULL for a size out of range or when out of memory. */
cb_ring_t *cb_ring_init(uint32_t octets);
/*! \brief Free a ring made by cb_ring_init(). */
void cb_ring_free(cb_ring_t *r);
/*! \brief Octets of storage. */
uint32_t cb_ring_capacity(const cb_ring_t *r);
/*! \brief Records waiting to be read. */
uint32_t cb_ring_count(const cb_ring_t *r);
/*! \brief Puts refused because the ring was full, since it was made. */
uint64_t cb_ring_dropped(const cb_ring_t *r);
/*! \brief Of those, the puts of event kinds in counter slot `slot` (cb_kind_slot). */
uint64_t cb_ring_dropped_kind(const cb_ring_t *r, int slot);
/*! \brief Producer: copy one record in: `hlen` octets of head, then `plen` of payload.
    \param kind_slot the counter slot a refused put counts in (cb_kind_slot), or -1.
    \return CB_OK, CB_ERR_FULL (and the drop counters grow), CB_ERR_INVALID (payload too long). */
int cb_ring_put(cb_ring_t *r, const void *head, uint32_t hlen, const void *payload, uint32_t plen,
                int kind_slot);
/*! \brief Consumer: copy the oldest record (head and payload) into `out`.
    \return its size in octets, 0 when the ring is empty, CB_ERR_INVALID when it
    does not fit in `max` (it stays in the ring). */
int cb_ring_get(cb_ring_t *r, void *out, uint32_t max);
/*! \brief Consumer: copy whole records into `out`, each padded to CB_REC_ALIGN
    octets, until the next one would not fit in `max` octets or `max_records` were taken.
    \return the number of records copied. */
int cb_ring_get_many(cb_ring_t *r, uint8_t *out, uint32_t max, int max_records);
/*! \brief Consumer of an event ring that needs only the heads (kernel tests, benchmarks):
    copy up to `max` event heads, dropping any payload. \return the number copied. */
int cb_ring_pop_events(cb_ring_t *r, cb_event_t *out, int max);
/* CDEF END */

/*! \brief Producer, on the media path: put one event without payload. */
static inline int cb_ring_put_event(cb_ring_t *r, uint64_t tick, int chan, int type,
                                    int32_t value, int32_t extra)
{
    cb_event_t e = {.tick = tick, .chan = (uint16_t) chan, .type = (uint16_t) type,
                    .value = value, .extra = extra};
    return cb_ring_put(r, &e, (uint32_t) sizeof e, NULL, 0, cb_kind_slot_inline(type));
}

#endif
