/*
 * The line codes' per-tick path (cb_linecode.h): AMI, HDB3 and B8ZS encoding
 * and decoding with violation counts. No allocation, locks or calls out; the
 * work buffers are on the stack (at most 2 x 256 octets and 2048 + 8 symbols).
 * Written for clarity: it runs only where the test-only line model is attached.
 */
#include <string.h>
#include "cb_hal.h"
#include "cb_linecode.h"

_Static_assert(CB_LINE_MAX_BITS / 8 == sizeof(((cb_line_coder_t *) 0)->enc_hold),
               "the encoder keeps up to one tick of octets");
_Static_assert(CB_LINE_DEC_LAG == sizeof(((cb_line_coder_t *) 0)->dec_hold),
               "the decoder keeps CB_LINE_DEC_LAG symbols");

int cb_line_coder_init(cb_line_coder_t *c, int coding)
{
    memset(c, 0, sizeof *c);
    if (coding != CB_CODING_HDB3 && coding != CB_CODING_AMI && coding != CB_CODING_B8ZS) {
        c->coding = -1;
        return CB_ERR_INVALID;
    }
    c->coding = coding;
    c->enc_last = -1;  /* so the first mark is positive */
    c->dec_last = -1;  /* the same assumption at the receiver, so a fresh pair counts nothing */
    return CB_OK;
}

/* nbits is valid for this coder (and fixed by the first call). */
static int fix_nbits(cb_line_coder_t *c, int nbits)
{
    if (c->coding < 0 || nbits < CB_LINE_MIN_BITS || nbits > CB_LINE_MAX_BITS || nbits % 8 != 0)
        return CB_ERR_INVALID;
    if (c->nbits == 0)
        c->nbits = nbits;
    return c->nbits == nbits ? CB_OK : CB_ERR_INVALID;
}

static int bit_at(const uint8_t *buf, int k)
{
    return (buf[k >> 3] >> (7 - (k & 7))) & 1;
}

/* The bits k .. k + n - 1 of buf are all zero. */
static int zeros_from(const uint8_t *buf, int k, int n)
{
    for (int i = 0; i < n; i++)
        if (bit_at(buf, k + i))
            return 0;
    return 1;
}

int cb_line_encode(cb_line_coder_t *c, const uint8_t *octets, int nbits, int8_t *sym)
{
    int rc = fix_nbits(c, nbits);
    if (rc < 0)
        return rc;
    const int n = nbits / 8, hold = n - 1;
    /* The bits to code: the kept octets, then this call's; the first nbits are coded now, the rest
     * (nbits - 8 >= 8 bits) are the look-ahead a block of zeros needs and are kept for the next call. */
    uint8_t buf[2 * (CB_LINE_MAX_BITS / 8)];
    memcpy(buf, c->enc_hold, (size_t) hold);
    memcpy(buf + hold, octets, (size_t) n);
    const int block = c->coding == CB_CODING_HDB3 ? 4 : c->coding == CB_CODING_B8ZS ? 8 : 0;

    for (int k = 0; k < nbits; k++) {
        if (c->enc_sub_at < c->enc_sub_len) {  /* inside a substitution (its bits are zeros) */
            sym[k] = c->enc_sub[c->enc_sub_at++];
            continue;
        }
        if (bit_at(buf, k)) {
            c->enc_last = (int8_t) -c->enc_last;
            c->enc_odd ^= 1;
            sym[k] = c->enc_last;
            continue;
        }
        if (block == 0 || !zeros_from(buf, k, block)) {
            sym[k] = 0;
            continue;
        }
        /* A block of zeros starts here: its substitution. */
        int8_t p = c->enc_last;
        memset(c->enc_sub, 0, sizeof c->enc_sub);
        if (block == 4) {
            if (c->enc_odd) {           /* 000V */
                c->enc_sub[3] = p;
            } else {                    /* B00V */
                p = (int8_t) -p;
                c->enc_sub[0] = p;
                c->enc_sub[3] = p;
            }
            c->enc_last = p;
            c->enc_odd = 0;
        } else {                        /* 000VB0VB */
            c->enc_sub[3] = p;
            c->enc_sub[4] = (int8_t) -p;
            c->enc_sub[6] = (int8_t) -p;
            c->enc_sub[7] = p;          /* the last mark is again p */
        }
        c->enc_sub_len = (uint8_t) block;
        c->enc_sub_at = 1;
        sym[k] = c->enc_sub[0];
    }
    memcpy(c->enc_hold, buf + n, (size_t) hold);
    return CB_OK;
}

static int8_t sign(int8_t v)
{
    return (int8_t) ((v > 0) - (v < 0));
}

int32_t cb_line_decode(cb_line_coder_t *c, const int8_t *sym, int nbits, uint8_t *octets)
{
    int rc = fix_nbits(c, nbits);
    if (rc < 0)
        return rc;
    /* The symbols to decode: the kept ones, then this call's; the last CB_LINE_DEC_LAG are the
     * look-ahead (a substitution is recognised from its first symbol) and are kept for the next call. */
    int8_t buf[CB_LINE_DEC_LAG + CB_LINE_MAX_BITS];
    memcpy(buf, c->dec_hold, CB_LINE_DEC_LAG);
    for (int k = 0; k < nbits; k++)
        buf[CB_LINE_DEC_LAG + k] = sign(sym[k]);
    memset(octets, 0, (size_t) (nbits / 8));
    int32_t bpv = 0;

    for (int k = 0; k < nbits; k++) {
        const int8_t s = buf[k];
        int bit = s != 0;
        switch (c->coding) {
        case CB_CODING_AMI:
            if (s != 0 && s == c->dec_last)
                bpv++;
            break;
        case CB_CODING_HDB3:
            if (c->dec_skip > 0) {
                c->dec_skip--;
                bit = 0;
            } else if (buf[k + 1] == 0 && buf[k + 2] == 0 && buf[k + 3] != 0
                       && buf[k + 3] == (s != 0 ? s : c->dec_last)) {
                c->dec_skip = 3;  /* B00V or 000V: four zeros */
                bit = 0;
            }
            if (s != 0 && s == c->dec_last) {  /* a violation: counted unless V alternate */
                if (s == c->dec_last_v)
                    bpv++;
                c->dec_last_v = s;
            }
            break;
        default: /* CB_CODING_B8ZS */
            if (c->dec_skip > 0) {  /* inside a recognised VB0VB */
                c->dec_skip--;
                c->dec_sub_at++;
                if (c->dec_sub_at == 2 && s != 0)
                    bpv++;          /* a mark in its space: a violation of its own, a 1 */
                else
                    bit = 0;
            } else if (s != 0 && s == c->dec_last && buf[k + 1] == -s
                       && (buf[k + 2] == 0 || buf[k + 2] == -s) && buf[k + 3] == -s && buf[k + 4] == s) {
                c->dec_skip = 4;
                c->dec_sub_at = 0;
                bit = 0;
            } else if (s != 0 && s == c->dec_last) {
                bpv++;
            }
            break;
        }
        if (s != 0)
            c->dec_last = s;
        if (bit)
            octets[k >> 3] |= (uint8_t) (0x80u >> (k & 7));
    }
    memcpy(c->dec_hold, buf + nbits, CB_LINE_DEC_LAG);
    return bpv;
}
