/*
 * The framer's life cycle, configuration and queries (cb_framer.h); the per-tick
 * transmit and receive are in tick/framer_tick.c. Also the back-to-back test helper.
 */
#include <stdlib.h>
#include <string.h>
#include "cb_sim.h"
#include "framer_priv.h"

/* v(x) * x mod g(x), g of degree w (g holds the x^w term). */
static unsigned mulx(unsigned v, unsigned g, int w)
{
    v <<= 1;
    if (v & (1u << w))
        v ^= g;
    return v;
}

/* (a(x) * x^e) mod g(x), a up to 8 bits, MSB the highest power. */
static unsigned polymod(unsigned a, int e, unsigned g, int w)
{
    unsigned r = 0;
    for (int b = 7; b >= 0; b--)
        r = mulx(r, g, w) ^ ((a >> b) & 1u);
    /* r < 2^w once the top bits have been folded in */
    for (int i = 0; i < e; i++)
        r = mulx(r, g, w);
    return r;
}

static void build_tables(cb_framer_t *f)
{
    /* CRC-4 (x^4 + x + 1): x^15 = 1, so an octet at index i of a 256-octet sub-multiframe
       (its LSB at x^(8 * (255 - i))) weighs as any octet of the same i mod 15; slot s's
       LSB sits at x^((-8 s) mod 15), times the x^4 of the CRC. */
    for (int s = 0; s < 15; s++) {
        int e = (15 - (8 * s) % 15) % 15;
        for (int a = 0; a < 256; a++)
            f->crc4_fold[s][a] = (uint8_t) polymod((unsigned) a, e + 4, 0x13, 4);
    }
    for (int q = 0; q < 8; q++)
        for (int a = 0; a < 256; a++)
            f->crc6_pos[q][a] = (uint8_t) polymod((unsigned) a, 8 * q, 0x43, 6);
    for (int r = 0; r < 64; r++)
        f->crc6_tick[r] = (uint8_t) polymod((unsigned) r, 8 * CB_FRAMER_T1_OCTETS, 0x43, 6);
}

static int framing_kind(int framing)
{
    switch (framing) {
    case CB_FRAMING_E1_G704:
    case CB_FRAMING_E1_CRC4:
        return CB_SPAN_E1;
    case CB_FRAMING_T1_D4:
    case CB_FRAMING_T1_ESF:
        return CB_SPAN_T1;
    default:
        return -1;
    }
}

/* Restart transmit multiframes and the receive search. */
static void restart(cb_framer_t *f)
{
    f->tx_fn = 0;
    f->tx_crc = 0;
    f->tx_crc_run = 0;
    f->tx_fdl = 0;
    f->ebit_pending = 0;
    f->tx_run = f->rx_run = f->win_lazy = 0;
    memset(f->win, 0, sizeof f->win);
    memset(f->blk, f->idle, sizeof f->blk);
    f->aligned = 0;
    f->off = 0;
    f->fn0 = 0;
    f->search_from = 0;
    f->fas_bad = 0;
    f->ferr = 0;
    f->deliver = 1;
    f->mf = 0;
    f->crc_prev = -1;
    f->si_hist = 0;
    f->nfas = 0;
    f->mf_last = -1;
    f->lmfa_ms = 0;
    f->fa_blocks = 0;
    f->fa_errors = 0;
    f->cas_mf = 0;
    f->cas_fn = 0;
    f->cas_bad = 0;
    f->cas_prev_hi = 0;
    memset(f->t1_hist, 0, sizeof f->t1_hist);
    memset(f->t1_hist4, 0, sizeof f->t1_hist4);
    f->t1_hist_n = 0;
    f->crc6_run = -1;
    f->crc6_prev = -1;
    f->crc6_rx = 0;
    f->fdl = 0;
    f->es_level = 1;
    f->txm[0].valid = f->txm[1].valid = 0;
    f->rxm[0].valid = f->rxm[1].valid = 0;
}

/* The E1 TS0 words the transmitter starts from (G.704 2.3: FAS, NFAS, with CRC-4 the MF pattern
   001011 in NFAS frames 1..11). */
static void build_ts0(cb_framer_t *f)
{
    static const uint8_t mf[6] = {0, 0, 1, 0, 1, 1};
    for (int smf = 0; smf < 2; smf++)
        for (int rai = 0; rai < 2; rai++) {
            uint64_t w = 0;
            for (int j = 0; j < 8; j++) {
                int fn = 8 * smf + j;
                unsigned o;
                if ((j & 1) == 0) {
                    o = f->crc4 ? 0x1B : 0x9B;
                } else {
                    int si = f->crc4 && fn < 12 ? mf[fn >> 1] : 1;
                    o = (unsigned) ((si << 7) | 0x40 | (rai ? 0x20 : 0) | 0x1F);
                }
                w |= (uint64_t) o << (8 * j);
            }
            f->ts0_word[smf][rai] = w;
        }
    for (int c = 0; c < 16; c++) {
        uint64_t w = 0;
        for (int k = 0; k < 4; k++)
            w |= (uint64_t) ((c >> (3 - k)) & 1) << (8 * 2 * k + 7);
        f->c_word[c] = w;
    }
}

static int apply_config(cb_framer_t *f, const cb_span_config_t *cfg)
{
    if (cfg == NULL || framing_kind(cfg->framing) != f->kind)
        return CB_ERR_INVALID;
    if (cfg->ts16 != CB_TS16_CLEAR && cfg->ts16 != CB_TS16_DCHAN && cfg->ts16 != CB_TS16_CAS)
        return CB_ERR_INVALID;
    if (cfg->ts16 == CB_TS16_CAS && f->kind != CB_SPAN_E1)
        return CB_ERR_INVALID;
    f->framing = cfg->framing;
    f->crc4 = cfg->framing == CB_FRAMING_E1_CRC4;
    f->esf = cfg->framing == CB_FRAMING_T1_ESF;
    f->cas = cfg->ts16 == CB_TS16_CAS;
    build_ts0(f);
    restart(f);
    return CB_OK;
}

cb_framer_t *cb_framer_new(int kind, const cb_span_config_t *cfg, int idle)
{
    if ((kind != CB_SPAN_E1 && kind != CB_SPAN_T1) || idle < 0 || idle > 255)
        return NULL;
    cb_framer_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    f->kind = kind;
    f->octets = kind == CB_SPAN_E1 ? CB_FRAMER_E1_OCTETS : CB_FRAMER_T1_OCTETS;
    f->nts = kind == CB_SPAN_E1 ? 31 : 24;
    f->idle = (uint8_t) idle;
    memset(f->idle_ts, idle, sizeof f->idle_ts);
#if FR_V3
    f->v3 = __builtin_cpu_supports("x86-64-v3");
#endif
    build_tables(f);
    memset(f->cas_tx, CB_FRAMER_CAS_IDLE, sizeof f->cas_tx);
    memset(f->cas_rx, CB_FRAMER_CAS_IDLE, sizeof f->cas_rx);
    for (int d = 0; d < FR_D_N; d++) {
        f->since[d] = -1;
        f->last[d] = -1000000;
    }
    f->last_los = -1000000;
    f->last_lof = 0;    /* not aligned from the start */
    f->check_in = 50;
    f->repeat = 1;
    if (apply_config(f, cfg) != CB_OK) {
        free(f);
        return NULL;
    }
    return f;
}

void cb_framer_free(cb_framer_t *f)
{
    free(f);
}

int cb_framer_config(cb_framer_t *f, const cb_span_config_t *cfg)
{
    return apply_config(f, cfg);
}

int cb_framer_octets(const cb_framer_t *f)
{
    return f->octets;
}

int cb_framer_timeslots(const cb_framer_t *f)
{
    return f->nts;
}

uint32_t cb_framer_alarms(const cb_framer_t *f)
{
    return f->alarms;
}

int cb_framer_sending_rai(const cb_framer_t *f)
{
    return f->sending_rai;
}

int cb_framer_aligned(const cb_framer_t *f)
{
    return (f->aligned ? CB_FRAMER_FRAME : 0) | (f->aligned && f->mf ? CB_FRAMER_MF : 0)
           | (f->aligned && f->cas_mf ? CB_FRAMER_CAS_MF : 0);
}

void cb_framer_status(const cb_framer_t *f, cb_span_status_t *out)
{
    memset(out, 0, sizeof *out);
    out->alarms = f->alarms;
    out->sending_rai = f->sending_rai;
    out->counters = f->cnt;
    out->counters.bpv = 0;
}

void cb_framer_force(cb_framer_t *f, int flags)
{
    f->force = flags & (CB_FRAMER_SEND_AIS | CB_FRAMER_SEND_RAI);
    f->tx_run = 0;                  /* lines sent before are not this framing's */
    f->sending_rai = (f->force & CB_FRAMER_SEND_RAI)
                     || (f->alarms & (CB_ALARM_RED | CB_ALARM_BLUE | CB_ALARM_RECOVER));
}

void cb_framer_set_repeat(cb_framer_t *f, int on)
{
    fr_win_settle(f);
    f->tx_run = f->rx_run = 0;
    f->repeat = on != 0;
    f->txm[0].valid = f->txm[1].valid = 0;
    f->rxm[0].valid = f->rxm[1].valid = 0;
}

void cb_framer_set_offset_ppb(cb_framer_t *f, int64_t ppb)
{
    f->ppb = ppb;
    if (ppb == 0)
        f->slip_acc = 0;
}

static int cas_bearer(const cb_framer_t *f, int ts)
{
    if (!f->cas)
        return CB_ERR_STATE;
    if (ts < 1 || ts > 31 || ts == 16)
        return CB_ERR_INVALID;
    return CB_OK;
}

int cb_framer_cas_get(const cb_framer_t *f, int ts)
{
    int st = cas_bearer(f, ts);
    return st != CB_OK ? st : f->cas_rx[ts];
}

int cb_framer_cas_set(cb_framer_t *f, int ts, int abcd)
{
    int st = cas_bearer(f, ts);
    if (st != CB_OK)
        return st;
    if (abcd <= 0 || abcd > 15)
        return CB_ERR_INVALID;
    f->cas_tx[ts] = (uint8_t) abcd;
    return CB_OK;
}

uint32_t cb_framer_cas_changed(cb_framer_t *f)
{
    uint32_t c = f->cas_changed;
    f->cas_changed = 0;
    return c;
}

/* Delay a line by `k` bits (zeros enter once): the bits that fall out of a tick wait in *carry
   (*carry_n of them, MSB first) and lead the next tick. */
static void shift_line(uint8_t *line, int n, int k, unsigned *carry, int *carry_n)
{
    unsigned acc = *carry << k;
    int nacc = *carry_n + k;
    for (int i = 0; i < n; i++) {
        acc = (acc << 8) | line[i];
        line[i] = (uint8_t) (acc >> nacc);
        acc &= (1u << nacc) - 1;
    }
    *carry = acc;
    *carry_n = nacc;
}

/* One line of the pair's: XORed with `mask` (NULL: none); 1 if that changed it. */
static int xor_line(uint8_t *line, int n, const uint8_t *mask)
{
    if (mask == NULL)
        return 0;
    uint8_t any = 0;
    for (int i = 0; i < n; i++) {
        line[i] ^= mask[i];
        any |= mask[i];
    }
    return any != 0;
}

/* cb_framer_run_pair: of the n ticks from t, how many in a row have both lines untouched (no
   cut, shift or XOR, and their buffers as their senders left them)? */
static int quiet_ticks(const cb_framer_t *a, int t, int n, int slots, const uint8_t *xor_ab,
                       const uint8_t *xor_ba, const uint8_t *cut_ab, const uint8_t *cut_ba,
                       const int8_t *shift_ab, const uint8_t *dirty_a, const uint8_t *dirty_b)
{
    const size_t octets = (size_t) a->octets;
    int q = 0;
    for (; q < n; q++) {
        const int u = t + q;
        if ((cut_ab && cut_ab[u]) || (cut_ba && cut_ba[u]) || (shift_ab && shift_ab[u])
            || dirty_a[u % slots] || dirty_b[u % slots])
            break;
        uint8_t any = 0;
        for (size_t i = 0; i < octets; i++)
            any |= (uint8_t) ((xor_ab ? xor_ab[(size_t) u * octets + i] : 0) | (xor_ba ? xor_ba[(size_t) u * octets + i] : 0));
        if (any)
            break;
    }
    return q;
}

int cb_framer_run_pair(cb_framer_t *a, cb_framer_t *b, int ticks, int block,
                       const uint8_t *tx_a, const uint8_t *tx_b, uint8_t *rx_a, uint8_t *rx_b,
                       const uint8_t *xor_ab, const uint8_t *xor_ba,
                       const uint8_t *cut_ab, const uint8_t *cut_ba,
                       const int8_t *shift_ab, uint32_t *alarms_a, uint32_t *alarms_b)
{
    if (a == NULL || b == NULL || a->kind != b->kind || ticks < 0 || block < 0 || block > CB_MAX_BLOCK_TICKS)
        return CB_ERR_INVALID;
    int n = a->octets, nts = a->nts, blk = nts * FR_FRAMES;
    const int slots = block > 0 ? block : 1;
    uint8_t la[CB_MAX_BLOCK_TICKS][CB_FRAMER_E1_OCTETS], lb[CB_MAX_BLOCK_TICKS][CB_FRAMER_E1_OCTETS];
    uint8_t dirty_a[CB_MAX_BLOCK_TICKS] = {0}, dirty_b[CB_MAX_BLOCK_TICKS] = {0};
    uint8_t idle_a[31 * FR_FRAMES], idle_b[31 * FR_FRAMES], sink[31 * FR_FRAMES];
    memset(idle_a, a->idle, sizeof idle_a);
    memset(idle_b, b->idle, sizeof idle_b);
    unsigned carry = 0;
    int carry_n = 0;
    cb_framer_t *save = block > 0 ? malloc(2 * sizeof *save) : NULL;
    if (block > 0 && save == NULL)
        return CB_ERR_NOMEM;
    for (int t = 0; t < ticks; t++) {
        const int j = t % slots;
        const int back = block > 0 && t >= block ? block : 0;
        /* a block of ticks on an untouched line, each way at once as the sim card runs them
           (cb_framer_tx_run, cb_framer_rx_run); if any framer stops short, undone and framed tick
           by tick (the ticks' order between the directions then matters). An odd `back` is the
           other half's line: no run takes it, so none is tried. */
        const int tried = j == 0 && back > 0 && !(back & 1) && carry_n == 0;
        const int s = tried ? quiet_ticks(a, t, ticks - t < block ? ticks - t : block, slots, xor_ab, xor_ba,
                                          cut_ab, cut_ba, shift_ab, dirty_a, dirty_b) : 0;
        if (s > 0) {
            save[0] = *a;
            save[1] = *b;
            const size_t at = (size_t) t * (size_t) blk;
            int na = cb_framer_tx_run(a, tx_a ? tx_a + at : NULL, FR_FRAMES, blk, s, back);
            int nb = cb_framer_tx_run(b, tx_b ? tx_b + at : NULL, FR_FRAMES, blk, s, back);
            int nrb = cb_framer_rx_run(b, na, back, rx_b ? rx_b + at : NULL, FR_FRAMES, blk);
            int nra = cb_framer_rx_run(a, nb, back, rx_a ? rx_a + at : NULL, FR_FRAMES, blk);
            if (nra == s && nrb == s) {
                for (int u = t; u < t + s; u++) {
                    if (alarms_a != NULL)
                        alarms_a[u] = a->alarms | (a->sending_rai ? 1u << 31 : 0);
                    if (alarms_b != NULL)
                        alarms_b[u] = b->alarms | (b->sending_rai ? 1u << 31 : 0);
                }
                t += s - 1;
                continue;
            }
            *a = save[0];
            *b = save[1];
        }
        uint8_t *xa = la[j], *xb = lb[j];
        /* a buffer changed after its framer wrote it is not "what it wrote" */
        int kept_a = cb_framer_tx_kept(a, tx_a ? tx_a + (size_t) t * blk : idle_a, FR_FRAMES, xa,
                                       dirty_a[j] ? 0 : back);
        int kept_b = cb_framer_tx_kept(b, tx_b ? tx_b + (size_t) t * blk : idle_b, FR_FRAMES, xb,
                                       dirty_b[j] ? 0 : back);
        int k = shift_ab != NULL ? shift_ab[t] : 0;
        if (k < 0 || k > 7 || carry_n + k > 16)
            return CB_ERR_INVALID;
        dirty_a[j] = dirty_b[j] = 0;
        if (k > 0 || carry_n > 0) {
            shift_line(xa, n, k, &carry, &carry_n);
            dirty_a[j] = 1;
        }
        dirty_a[j] |= (uint8_t) xor_line(xa, n, xor_ab ? xor_ab + (size_t) t * n : NULL);
        dirty_b[j] |= (uint8_t) xor_line(xb, n, xor_ba ? xor_ba + (size_t) t * n : NULL);
        /* unchanged since the receiver read it `back` ticks ago: kept by its sender and changed
           neither then (its sender would not have kept it) nor now */
        cb_framer_rx_kept(b, xa, cut_ab ? cut_ab[t] : 0, rx_b ? rx_b + (size_t) t * blk : sink, FR_FRAMES,
                          kept_a && !dirty_a[j] ? back : 0);
        cb_framer_rx_kept(a, xb, cut_ba ? cut_ba[t] : 0, rx_a ? rx_a + (size_t) t * blk : sink, FR_FRAMES,
                          kept_b && !dirty_b[j] ? back : 0);
        if (alarms_a != NULL)
            alarms_a[t] = a->alarms | (a->sending_rai ? 1u << 31 : 0);
        if (alarms_b != NULL)
            alarms_b[t] = b->alarms | (b->sending_rai ? 1u << 31 : 0);
    }
    free(save);
    return CB_OK;
}

int cb_framer_bench(cb_framer_t *const *tx, cb_framer_t *const *rx, int n, int ticks,
                    const uint8_t *ts_in, int blocks, uint8_t *ts_out)
{
    if (tx == NULL || rx == NULL || n < 1 || ticks < 0 || blocks < 1 || ts_in == NULL || ts_out == NULL)
        return CB_ERR_INVALID;
    for (int i = 0; i < n; i++)
        if (tx[i] == NULL || rx[i] == NULL || tx[i]->kind != rx[i]->kind || tx[i]->kind != tx[0]->kind)
            return CB_ERR_INVALID;
    int blk = tx[0]->nts * FR_FRAMES;
    uint8_t line[CB_FRAMER_E1_OCTETS];
    for (int t = 0; t < ticks; t++) {
        const uint8_t *in = ts_in + (size_t) (t % blocks) * (size_t) blk;
        for (int i = 0; i < n; i++) {
            cb_framer_tx(tx[i], in, FR_FRAMES, line);
            cb_framer_rx(rx[i], line, 0, ts_out + (size_t) i * (size_t) blk, FR_FRAMES);
        }
    }
    return CB_OK;
}
