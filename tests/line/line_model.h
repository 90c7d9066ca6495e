/*
 * line_model.h - the test-only line model (tests/line; never part of the
 * product): impairments of the coded line signal of the sim card's spans.
 *
 * The card calls the hook's impair once per span, direction and tick with
 * that tick's symbols (cb_linecode.h: +1 / -1 a mark, 0 a space). Per span and
 * direction the model has its own seeded generators (xoshiro256**, seeded by
 * splitmix64 from the seed, the span and the direction) and adds:
 *  - symbol errors at a BER, independent per symbol: a space becomes a mark, a
 *    mark a space. The gaps between errors are drawn geometrically (one draw
 *    per error, not per symbol), so a BER of 1e-6 costs next to nothing.
 *    A mark made by noise has either polarity with equal probability: the
 *    noise on a balanced pair is symmetric, and a hit crosses the positive or
 *    the negative slicer threshold alike. (On AMI either way the error makes
 *    exactly one bipolar violation: at itself, or at the next mark.)
 *  - bipolar violations at a rate per symbol: a space turned into a mark of
 *    the same polarity as the mark before it on the line, one violation each
 *    (a draw that lands on a mark waits for the next space).
 *  - the far end's clock offset, only stored (far_ppb); the card makes slips.
 * It counts what it injected, per span and direction.
 *
 * Between CDEF BEGIN and CDEF END this header is also the cdef of tests.line._line.
 */
#ifndef LINE_MODEL_H
#define LINE_MODEL_H

#include <stdint.h>

/* CDEF BEGIN */
#define LINE_MODEL_MAX_SPANS 64

/* CDEF END */

/* The hook, as the card declares it (drivers/include/cb_sim.h; the same layout). */
#ifndef CB_LINE_MODEL_T_DEFINED
#define CB_LINE_MODEL_T_DEFINED
/* CDEF BEGIN */
/* The test-only line model's hook (tests/line): the card calls impair once per span, direction and
 * tick with that tick's coded line signal (sym[0..nbits) in {-1, 0, +1}); dir 0 = toward the card
 * (our receiver), 1 = toward the far end. far_ppb[span]: the far end's clock offset, parts per 10^9. */
typedef struct cb_line_model {
    void (*impair)(void *ctx, int span, int dir, uint64_t tick, int8_t *sym, int nbits);
    void *ctx;
    int32_t far_ppb[64];
} cb_line_model_t;
/* CDEF END */
#endif

/* CDEF BEGIN */

/*! \brief A model for nspans spans (1..LINE_MODEL_MAX_SPANS), every impairment off.
    \return the hook (its ctx is the model), or NULL (bad nspans, no memory). */
cb_line_model_t *line_model_new(int nspans);
void line_model_free(cb_line_model_t *m);

/*! \brief Set one span's direction: BER and violation rate (per symbol, 0..1), seed; counts restart.
    \return CB_OK (0), or CB_ERR_INVALID (-2) for a bad span, direction or rate. */
int line_model_set(cb_line_model_t *m, int span, int dir, double ber, double bpv_rate, uint64_t seed);

/*! \brief The far end's clock offset of a span, parts per 10^9. \return 0 or -2. */
int line_model_set_ppb(cb_line_model_t *m, int span, int32_t ppb);

/*! \brief What was injected into one span's direction since its last line_model_set.
    \return 0 or -2. */
int line_model_injected(const cb_line_model_t *m, int span, int dir, uint64_t *bit_errors, uint64_t *bpv);

/*! \brief The hook's impair (also callable directly). */
void line_model_impair(void *ctx, int span, int dir, uint64_t tick, int8_t *sym, int nbits);
/* CDEF END */

#endif
