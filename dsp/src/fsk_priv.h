/* FSK modem banks: state as arrays over channels (private to dsp/src). */
#ifndef CB_FSK_PRIV_H
#define CB_FSK_PRIV_H

#include <stdint.h>
#include "cb_fsk.h"

#define FSK_SINE_BITS 10                  /* sine table of 1024 points */
#define FSK_SINE_SIZE (1 << FSK_SINE_BITS)
#define FSK_WIN 7                         /* correlation window: about one bit (6.67 samples) */
#define FSK_TRAIL_MARKS 4                 /* marks sent after the last octet */

/* A bank's live channels as a bitmap of 64-channel words: the tick visits those only. */
#define FSK_WORDS(n) (((n) + 63) / 64)
#define FSK_LIVE_SET(live, c) ((live)[(c) >> 6] |= 1ull << ((c) & 63))
#define FSK_LIVE_CLEAR(live, c) ((live)[(c) >> 6] &= ~(1ull << ((c) & 63)))

struct cb_fsk_tx {
    int n;
    uint64_t *live;         /* [FSK_WORDS(n)] channels sending */
    float sine[FSK_SINE_SIZE];
    const uint8_t **bytes;  /* [n] octets being sent, NULL when idle */
    int32_t *len;           /* octets */
    int32_t *seize;         /* seizure bits */
    int32_t *mark;          /* mark bits */
    int32_t *bit;           /* index of the bit being sent */
    int32_t *nbits;         /* bits in all */
    int32_t *clk;           /* bit clock: +3 per sample, next bit at 20 */
    uint32_t *phase;
    uint32_t *inc_mark;     /* phase increments per sample */
    uint32_t *inc_space;
    float *amp;             /* peak amplitude */
};

struct cb_fsk_rx {
    int n;
    uint64_t *live;         /* [FSK_WORDS(n)] channels receiving (as on) */
    float sine[FSK_SINE_SIZE];
    uint8_t *on;            /* [n] receiving */
    uint32_t *ph_mark;      /* local oscillators: phase accumulators and increments */
    uint32_t *ph_space;
    uint32_t *inc_mark;
    uint32_t *inc_space;
    float (*im)[FSK_WIN];   /* products with the oscillators over the last window */
    float (*qm)[FSK_WIN];
    float (*is)[FSK_WIN];
    float (*qs)[FSK_WIN];
    float *sim, *sqm, *sis, *sqs;  /* their sliding sums */
    float *d1, *d2;         /* the last two mark-minus-space energies */
    int32_t *pos;           /* next slot of the window */
    float *power;           /* smoothed power */
    uint8_t *carrier;
    int32_t *marks;         /* consecutive mark samples while hunting */
    uint8_t *armed;         /* enough marks seen since carrier up */
    int32_t *state;         /* 0 hunting; k + 1 while waiting to sample bit k of a character */
    int32_t *clk;           /* time in the character, 20 per bit */
    int32_t *shift;         /* octet being assembled */
    uint8_t *last;          /* last decided bit */
};

#endif
