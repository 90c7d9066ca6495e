/*
 * busy_priv.h - the state of a busy-cadence detector bank (struct of arrays),
 * shared by busy.c and tick/busy_tick.c.
 */
#ifndef CB_BUSY_PRIV_H
#define CB_BUSY_PRIV_H

#include <stdint.h>
#include "cb_busy.h"

/* Mean-square energies, linear^2: a sine at L dBm0 has (32768 * 10^((L - 3.14)/20))^2 / 2. */
#define BUSY_ABS_ON 65444   /* -36 dBm0 */
#define BUSY_ABS_OFF 32800  /* -39 dBm0 */

enum busy_mode {
    BUSY_IDLE = 0,      /* disabled */
    BUSY_LIVE = 1,      /* counting */
    BUSY_FIRED = 2      /* reported; quiet until restarted */
};

#define BUSY_RUN_MAX (4 * CB_BUSY_MAX_MS)  /* ms: longer than any on or off time plus tolerance */
#define BUSY_GROUP 32   /* channels per group: a group with no channel counting is not looked at */

struct cb_busy_det {
    int n;                  /* channels */
    int nlive;              /* channels in BUSY_LIVE */
    int ngroups;            /* groups of BUSY_GROUP channels */
    int32_t *glive;         /* [ngroups] channels of the group in BUSY_LIVE */
    uint8_t *mode;          /* [n] enum busy_mode */
    int32_t *on_ms, *off_ms;    /* [n] the cadence, ms */
    int32_t *tol_on, *tol_off;  /* [n] tolerances, ms */
    int32_t *count;         /* [n] cycles to see */
    uint32_t *tick_e;       /* [n] scratch: this tick's mean-square energy */
    uint32_t *e;            /* [n] smoothed energy */
    uint32_t *pk;           /* [n] peak tracker of e */
    uint32_t *floor;        /* [n] noise floor tracker of e */
    uint8_t *on;            /* [n] current state: 1 sound, 0 silence */
    int32_t *run;           /* [n] ms in the current state */
    uint32_t *seg_max;      /* [n] highest e in the current on run */
    uint32_t *ref;          /* [n] peak energy of the sequence's first on run */
    uint8_t *have_on;       /* [n] the last on run matched */
    int32_t *cycles;        /* [n] consecutive cycles matched */
};

#endif
