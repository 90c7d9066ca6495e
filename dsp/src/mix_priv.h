/* The media graph's state (private to dsp/src): shared by mix.c and tick/mix_tick.c. */
#ifndef CB_MIX_PRIV_H
#define CB_MIX_PRIV_H

#include <stdint.h>
#include "cb_mix.h"

struct cb_mix {
    int n;
    /* one-way edges, per listener */
    uint8_t *nedge;             /* [n] */
    int32_t (*src)[CB_MIX_MAX_EDGES];   /* [n] sources */
    int32_t (*gain)[CB_MIX_MAX_EDGES];  /* [n] Q12 factors */
    int32_t *listeners;         /* [n] channels with an edge, unordered */
    int32_t *listener_pos;      /* [n] index into listeners, or -1 */
    int nlisteners;
    /* mix groups */
    int32_t *group;             /* [n] group of the channel, or -1 */
    int32_t *mgain;             /* [n] Q12 factor of the member's contribution */
    uint8_t *mflags;            /* [n] enum cb_mix_flags of the member: CB_MIX_TALK, CB_MIX_HEAR */
    int32_t (*members)[CB_MIX_GROUP_MAX]; /* [n groups] */
    int32_t *nmembers;          /* [n groups] */
    uint8_t *paging;            /* [n groups] 1: a paging group (CB_MIX_GROUP_MAX), 0: a conference */
    int32_t *active;            /* [n] groups with members, unordered */
    int32_t *active_pos;        /* [n groups] index into active, or -1 */
    int nactive;
    int32_t (*contrib)[CB_TICK_SAMPLES]; /* [n] scratch: a member's contribution this tick */
};

#endif
