/*
 * cb_linecode.h - the line codes of the card's line interface: AMI and HDB3
 * (ITU-T G.703 Annex A, E1) and B8ZS (ANSI T1.102, T1).
 *
 * What it does: the encoder turns a span's line octets (first line bit = the
 * MSB of the first octet) into bipolar symbols, one int8_t per line bit: +1 or
 * -1 for a mark of that polarity, 0 for a space. The decoder turns symbols back
 * into octets, removes the zero substitutions and counts the bipolar
 * violations that are not part of one.
 *
 * How it works:
 *  - AMI: a 1 is a mark, of the opposite polarity to the mark before it; a 0 a
 *    space.
 *  - HDB3: as AMI, but each block of four zeros (counted from the start of a
 *    zero run) is sent as 000V or B00V, V a mark of the same polarity as the
 *    mark before it (a violation), B a mark obeying the alternation: B00V when
 *    an even number of marks went since the last V, 000V when odd, so that
 *    successive V alternate in polarity (no DC).
 *  - B8ZS: as AMI, but each block of eight zeros is sent as 000VB0VB: after a
 *    positive mark 000+-0-+, after a negative one 000-+0+-.
 *  - Violations the decoder counts (the span's `bpv` counter):
 *    AMI: every mark of the same polarity as the mark before it.
 *    HDB3: a violation of the same polarity as the violation before it (the
 *      code-violation rule of ITU-T O.161: valid V alternate, so a violation
 *      that does not is not part of a valid substitution; a single spurious
 *      violation anywhere, even beside a substitution, counts exactly once).
 *      A violation after two spaces is taken as a substitution's V and its
 *      block decodes as four zeros.
 *    B8ZS: a mark of the same polarity as the mark before it that is not part
 *      of a substitution (ANSI T1.231). A substitution is recognised by its
 *      VB0VB tail; a violation in one of its three leading spaces, or a mark
 *      of the same polarity as the B before it in its middle space, is counted
 *      on its own (and decodes as a 1) and the substitution still decodes.
 *
 * Latency: a substitution may straddle the end of a tick, so both directions
 * look ahead. The encoder lags its input by nbits - 8 bits (it keeps the last
 * nbits/8 - 1 octets), the decoder its input by 8 symbols, so the octets a
 * decoder returns for tick N are exactly the octets its encoder was given for
 * tick N - 1: one tick, which keeps the frames where they were in the tick
 * (E1: 8 x 256 bits, T1: 8 x 193). A fresh coder first sends and returns one
 * tick of zeros. nbits is fixed by the first call (E1 2048, T1 1544).
 *
 * Start state (a fresh coder): the line's previous mark counts as negative and
 * an even number of marks went since the last V, so the first 1 is sent +, the
 * first HDB3 block of zeros +00+. The encoder's first (nbits - 8) bits of zeros
 * leave that state as it was (an even number of HDB3 blocks; B8ZS keeps it).
 *
 * Per-tick code (src/tick/linecode_tick.c): no allocation, locks or calls out.
 * Between CDEF BEGIN and CDEF END this header is also the cffi cdef.
 */
#ifndef CB_LINECODE_H
#define CB_LINECODE_H

#include <stdint.h>

/* CDEF BEGIN */
#define CB_LINE_MAX_BITS 2048       /* bits per call, at most (an E1 tick) */
#define CB_LINE_MIN_BITS 16         /* bits per call, at least (the encoder looks 8 bits ahead) */
#define CB_LINE_DEC_LAG 8           /* symbols the decoder keeps for its look-ahead */

/*! One direction's coder state (an encoder and a decoder: a span uses the
    encoder of one and the decoder of another). Zeroed and set by
    cb_line_coder_init; no pointers, so it can live in a span's state array. */
typedef struct cb_line_coder {
    int32_t coding;          /* enum cb_line_coding */
    int32_t nbits;           /* bits per call, fixed by the first call (0 before it) */
    /* encoder */
    int8_t enc_last;         /* polarity of the last mark sent (-1 at start) */
    uint8_t enc_odd;         /* HDB3: an odd number of marks sent since the last V */
    uint8_t enc_sub_len;     /* symbols of the substitution being sent ... */
    uint8_t enc_sub_at;      /* ... and how many of them are sent (it may straddle a call) */
    int8_t enc_sub[8];       /* that substitution's symbols */
    uint8_t enc_hold[256];   /* the last nbits/8 - 1 octets given, not yet coded */
    /* decoder */
    int8_t dec_last;         /* polarity of the last mark received (-1 at start, as sent) */
    int8_t dec_last_v;       /* HDB3: polarity of the last violation (0: none yet) */
    uint8_t dec_skip;        /* symbols of a recognised substitution still to pass */
    uint8_t dec_sub_at;      /* B8ZS: position in the recognised VB0VB (0 = its first V) */
    int8_t dec_hold[8];      /* the last CB_LINE_DEC_LAG symbols received, not yet decoded */
} cb_line_coder_t;

/*! \brief Initialise (or reset) a coder for a line coding.
    \param coding enum cb_line_coding (HDB3, AMI, B8ZS).
    \return CB_OK, or CB_ERR_INVALID for an unknown coding (the coder is then zeroed and refuses work). */
int cb_line_coder_init(cb_line_coder_t *c, int coding);

/*! \brief Code one tick of line octets into symbols.
    \param octets nbits / 8 octets, the first line bit the MSB of octets[0].
    \param nbits a multiple of 8 in [CB_LINE_MIN_BITS, CB_LINE_MAX_BITS], the same on every call.
    \param sym out: nbits symbols (+1, -1, 0), lagging the octets by nbits - 8 bits.
    \return CB_OK, or CB_ERR_INVALID (bad nbits, nbits changed, uninitialised coder; nothing written). */
int cb_line_encode(cb_line_coder_t *c, const uint8_t *octets, int nbits, int8_t *sym);

/*! \brief Decode one tick of symbols into line octets and count bipolar violations.
    \param sym nbits symbols; only the sign counts (> 0 a positive mark, < 0 a negative one, 0 a space).
    \param nbits as for cb_line_encode.
    \param octets out: nbits / 8 octets, lagging the symbols by 8 symbols.
    \return the violations counted in this call (>= 0), or CB_ERR_INVALID as for cb_line_encode. */
int32_t cb_line_decode(cb_line_coder_t *c, const int8_t *sym, int nbits, uint8_t *octets);
/* CDEF END */

#endif
