/*
 * The test-only line model (line_model.h). Test code, never in the product:
 * it allocates in line_model_new only, and impair does no I/O.
 */
#include <math.h>
#include <stdlib.h>
#include "line_model.h"

enum { OK = 0, INVALID = -2 };  /* cb_status values (include/cb_records.h) */

#define NEVER UINT64_MAX         /* a gap that never ends (rate 0) */

typedef struct process {
    double rate;                 /* events per symbol, 0..1 */
    double log_q;                /* log(1 - rate), for the geometric draw */
    uint64_t rng[4];             /* xoshiro256** state */
    uint64_t gap;                /* symbols to pass before the next event */
} process_t;

typedef struct line_dir {
    process_t err;               /* symbol errors */
    process_t bpv;               /* injected violations */
    int8_t last_mark;            /* polarity of the last mark on the line after impairment (0: none yet) */
    uint64_t bit_errors;
    uint64_t bpv_injected;
} line_dir_t;

typedef struct line_model {
    cb_line_model_t hook;        /* first: the hook's address is the model's */
    int nspans;
    line_dir_t dir[LINE_MODEL_MAX_SPANS][2];
} line_model_t;

_Static_assert(sizeof(((cb_line_model_t *) 0)->far_ppb) / sizeof(int32_t) == LINE_MODEL_MAX_SPANS,
               "a clock offset for every span");

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t next64(uint64_t *s)
{
    const uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* The number of symbols before the next event: geometric with parameter rate. */
static uint64_t draw_gap(process_t *p)
{
    if (p->rate <= 0.0)
        return NEVER;
    if (p->rate >= 1.0)
        return 0;
    const double u = (double) ((next64(p->rng) >> 11) + 1) * 0x1.0p-53;  /* (0, 1] */
    const double g = floor(log(u) / p->log_q);
    return g >= 0x1.0p63 ? NEVER : (uint64_t) g;
}

static void process_init(process_t *p, double rate, uint64_t *seeder)
{
    p->rate = rate;
    p->log_q = rate > 0.0 && rate < 1.0 ? log1p(-rate) : 0.0;
    for (int i = 0; i < 4; i++)
        p->rng[i] = splitmix64(seeder);
    p->gap = draw_gap(p);
}

cb_line_model_t *line_model_new(int nspans)
{
    if (nspans < 1 || nspans > LINE_MODEL_MAX_SPANS)
        return NULL;
    line_model_t *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->hook.impair = line_model_impair;
    m->hook.ctx = m;
    m->nspans = nspans;
    for (int s = 0; s < nspans; s++)
        for (int d = 0; d < 2; d++)
            line_model_set(&m->hook, s, d, 0.0, 0.0, 1);
    return &m->hook;
}

void line_model_free(cb_line_model_t *m)
{
    free(m);
}

static line_dir_t *dir_of(const cb_line_model_t *hook, int span, int dir)
{
    line_model_t *m = (line_model_t *) hook->ctx;
    if (span < 0 || span >= m->nspans || dir < 0 || dir > 1)
        return NULL;
    return &m->dir[span][dir];
}

int line_model_set(cb_line_model_t *m, int span, int dir, double ber, double bpv_rate, uint64_t seed)
{
    line_dir_t *d = dir_of(m, span, dir);
    if (d == NULL || !(ber >= 0.0 && ber <= 1.0) || !(bpv_rate >= 0.0 && bpv_rate <= 1.0))
        return INVALID;
    /* One seed gives every span and direction its own streams, and errors and violations
     * their own, so each process is the same whatever the other's rate. */
    uint64_t seeder = seed ^ ((uint64_t) span << 40) ^ ((uint64_t) dir << 48);
    splitmix64(&seeder);
    const int8_t last = d->last_mark;
    *d = (line_dir_t) {.last_mark = last};
    process_init(&d->err, ber, &seeder);
    process_init(&d->bpv, bpv_rate, &seeder);
    return OK;
}

int line_model_set_ppb(cb_line_model_t *m, int span, int32_t ppb)
{
    if (dir_of(m, span, 0) == NULL)
        return INVALID;
    m->far_ppb[span] = ppb;
    return OK;
}

int line_model_injected(const cb_line_model_t *m, int span, int dir, uint64_t *bit_errors, uint64_t *bpv)
{
    const line_dir_t *d = dir_of(m, span, dir);
    if (d == NULL)
        return INVALID;
    *bit_errors = d->bit_errors;
    *bpv = d->bpv_injected;
    return OK;
}

/* The polarity of the mark before sym[i] on the line (last: the one before this tick, 0 if none). */
static int8_t mark_before(const int8_t *sym, int i, int8_t last)
{
    for (int j = i - 1; j >= 0; j--)
        if (sym[j] != 0)
            return sym[j] > 0 ? 1 : -1;
    return last;
}

/* The position of the next event after one at `at` (saturating: NEVER stays far away). */
static uint64_t after(uint64_t at, uint64_t gap)
{
    return gap >= NEVER - at - 1 ? NEVER : at + 1 + gap;
}

void line_model_impair(void *ctx, int span, int dir, uint64_t tick, int8_t *sym, int nbits)
{
    line_dir_t *d = dir_of((cb_line_model_t *) ctx, span, dir);
    if (d == NULL || nbits <= 0)
        return;
    const uint64_t n = (uint64_t) nbits;
    uint64_t at_err = d->err.gap, at_bpv = d->bpv.gap;  /* positions in this tick (may lie beyond it) */
    while (at_err < n || at_bpv < n) {
        if (at_bpv <= at_err) {
            const int i = (int) at_bpv;
            if (sym[i] != 0) {       /* a mark: the violation goes into the next space */
                at_bpv = i + 1;
                continue;
            }
            const int8_t before = mark_before(sym, i, d->last_mark);
            sym[i] = before != 0 ? before : -1;  /* no mark yet: the coders' start counts one negative */
            d->bpv_injected++;
            at_bpv = after(at_bpv, draw_gap(&d->bpv));
            if (at_err == (uint64_t) i)  /* both here: the error hits the next symbol */
                at_err++;
        } else {
            const int i = (int) at_err;
            if (sym[i] != 0)
                sym[i] = 0;
            else
                sym[i] = (next64(d->err.rng) >> 63) ? 1 : -1;
            d->bit_errors++;
            at_err = after(at_err, draw_gap(&d->err));
        }
    }
    d->err.gap = at_err == NEVER ? NEVER : at_err - n;
    d->bpv.gap = at_bpv == NEVER ? NEVER : at_bpv - n;
    d->last_mark = mark_before(sym, nbits, d->last_mark);
}
