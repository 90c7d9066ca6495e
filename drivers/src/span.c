/*
 * The sim card's spans: life cycle, configuration, status, faults, the in-process far end's
 * signalling (D-channel frames, ABCD), the line model's hook and the clock source. The per-block
 * path is in tick/span_tick.c.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "sim_priv.h"

static int framing_fits(int kind, const cb_span_config_t *cfg)
{
    int e1 = kind == CB_SPAN_E1;
    if (e1 ? cfg->framing != CB_FRAMING_E1_G704 && cfg->framing != CB_FRAMING_E1_CRC4
           : cfg->framing != CB_FRAMING_T1_D4 && cfg->framing != CB_FRAMING_T1_ESF)
        return 0;
    if (e1 ? cfg->coding != CB_CODING_HDB3 && cfg->coding != CB_CODING_AMI
           : cfg->coding != CB_CODING_B8ZS && cfg->coding != CB_CODING_AMI)
        return 0;
    if (cfg->ts16 != CB_TS16_CLEAR && cfg->ts16 != CB_TS16_DCHAN && (cfg->ts16 != CB_TS16_CAS || !e1))
        return 0;
    return cfg->sync_priority >= 0;
}

/* Apply cfg to span p: framers, D-channels, coders. */
static int span_setup(cb_sim_t *s, sim_span_t *p, const cb_span_config_t *cfg)
{
    if (p->fr == NULL) {
        p->fr = cb_framer_new(p->kind, cfg, s->idle);
        p->far_fr = cb_framer_new(p->kind, cfg, s->idle);
        if (p->fr == NULL || p->far_fr == NULL)
            return CB_ERR_NOMEM;
    } else {
        int rc = cb_framer_config(p->fr, cfg);
        if (rc == CB_OK)
            rc = cb_framer_config(p->far_fr, cfg);
        if (rc != CB_OK)
            return rc;
    }
    if (cfg->ts16 == CB_TS16_DCHAN && p->hdlc == NULL) {
        p->hdlc = cb_hdlc_new();
        p->far_hdlc = cb_hdlc_new();
        if (p->hdlc == NULL || p->far_hdlc == NULL)
            return CB_ERR_NOMEM;
    }
    p->cfg = *cfg;
    p->dts = cfg->ts16 == CB_TS16_DCHAN ? (p->kind == CB_SPAN_T1 ? 24 : 16) : 0;
    p->sig_ts = cfg->ts16 == CB_TS16_CLEAR ? 0 : (p->kind == CB_SPAN_T1 ? 24 : 16);
    for (int d = 0; d < 2; d++) {
        cb_line_coder_init(&p->enc[d], cfg->coding);
        cb_line_coder_init(&p->dec[d], cfg->coding);
    }
    p->ppb_set = INT64_MIN;
    return CB_OK;
}

int sim_spans_new(cb_sim_t *s, const uint8_t *kinds, int first_chan)
{
    s->sync = -1;
    atomic_init(&s->sync_req, -1);
    if (s->nspans == 0)
        return CB_OK;
    if (s->nspans > CB_SIM_MAX_SPANS)
        return CB_ERR_INVALID;
    s->span = calloc((size_t) s->nspans, sizeof(sim_span_t));
    if (s->span == NULL)
        return CB_ERR_NOMEM;
    int c = first_chan;
    for (int i = 0; i < s->nspans; i++) {
        sim_span_t *p = &s->span[i];
        p->kind = kinds[i];
        p->nts = kinds[i] == CB_SPAN_T1 ? 24 : 31;
        p->octets = kinds[i] == CB_SPAN_T1 ? CB_FRAMER_T1_OCTETS : CB_FRAMER_E1_OCTETS;
        p->first_chan = c;
        c += p->nts;
        atomic_init(&p->fault_req, CB_FAULT_CLEAR);
        atomic_init(&p->pub_seq, 0);
        size_t line = (size_t) CB_MAX_BLOCK_TICKS * (size_t) p->octets;
        p->lines = calloc(4 * line, 1);
        p->line_tx = p->lines;
        p->line_rx = p->lines + line;
        p->rx_flags = calloc(CB_MAX_BLOCK_TICKS, 1);
        p->sym = calloc(CB_LINE_MAX_BITS, 1);
        p->coded = calloc(CB_FRAMER_E1_OCTETS, 1);
        p->ts = calloc(31 * CB_TICK_SAMPLES, 1);
        p->far_out = calloc(31 * (size_t) CB_MAX_BLOCK_TICKS * CB_TICK_SAMPLES, 1);
        p->far_in = calloc(31 * (size_t) CB_MAX_BLOCK_TICKS * CB_TICK_SAMPLES, 1);
        if (!p->lines || !p->rx_flags || !p->sym || !p->coded || !p->ts || !p->far_out
            || !p->far_in)
            return CB_ERR_NOMEM;
        cb_span_config_t cfg = {
            .framing = kinds[i] == CB_SPAN_T1 ? CB_FRAMING_T1_ESF : CB_FRAMING_E1_CRC4,
            .coding = kinds[i] == CB_SPAN_T1 ? CB_CODING_B8ZS : CB_CODING_HDB3,
            .sync_priority = i + 1,
            .ts16 = CB_TS16_CLEAR,
        };
        int rc = span_setup(s, p, &cfg);
        if (rc != CB_OK)
            return rc;
    }
    sim_span_publish(s);
    return CB_OK;
}

void sim_spans_free(cb_sim_t *s)
{
    if (s->span == NULL)
        return;
    for (int i = 0; i < s->nspans; i++) {
        sim_span_t *p = &s->span[i];
        free(p->lines);
        free(p->rx_flags);
        free(p->sym);
        free(p->coded);
        free(p->ts);
        free(p->far_out);
        free(p->far_in);
        cb_framer_free(p->fr);
        cb_framer_free(p->far_fr);
        cb_hdlc_free(p->hdlc);
        cb_hdlc_free(p->far_hdlc);
    }
    free(s->span);
    s->span = NULL;
}

int sim_span_config(cb_card_t *card, int span, const cb_span_config_t *cfg)
{
    cb_sim_t *s = (cb_sim_t *) card;
    if (span < 0 || span >= s->nspans || cfg == NULL || !framing_fits(s->span[span].kind, cfg))
        return CB_ERR_INVALID;
    if (s->clock == CB_CLOCK_REALTIME && s->stats.blocks > 0)
        return CB_ERR_STATE;  /* the media thread steps the framers now: configure before it runs */
    int rc = span_setup(s, &s->span[span], cfg);
    sim_span_publish(s);  /* (configured before the card runs: the media thread is not stepping it) */
    return rc;
}

/* A span's published status (0 ours, 1 the far end's): a consistent copy, whichever thread asks. */
static void read_status(const sim_span_t *p, int which, cb_span_status_t *out)
{
    for (;;) {
        uint32_t a = atomic_load_explicit(&((sim_span_t *) p)->pub_seq, memory_order_acquire);
        if (a & 1U)
            continue;
        memcpy(out, &p->pub[which], sizeof(*out));
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&((sim_span_t *) p)->pub_seq, memory_order_relaxed) == a)
            return;
    }
}

int sim_span_status(cb_card_t *card, int span, cb_span_status_t *out)
{
    cb_sim_t *s = (cb_sim_t *) card;
    if (span < 0 || span >= s->nspans || out == NULL)
        return CB_ERR_INVALID;
    read_status(&s->span[span], 0, out);
    return CB_OK;
}

int sim_sync_source(cb_card_t *card, int span)
{
    cb_sim_t *s = (cb_sim_t *) card;
    if (span < -1 || span >= s->nspans)
        return CB_ERR_INVALID;
    atomic_store_explicit(&s->sync_req, span, memory_order_relaxed);  /* from the next block on */
    return CB_OK;
}

/* The span whose timeslot is channel c, or NULL; *ts its timeslot (1-based). */
static sim_span_t *span_of(cb_sim_t *s, int c, int *ts)
{
    for (int i = 0; i < s->nspans; i++) {
        sim_span_t *p = &s->span[i];
        if (c >= p->first_chan && c < p->first_chan + p->nts) {
            *ts = c - p->first_chan + 1;
            return p;
        }
    }
    return NULL;
}

int sim_abcd_set(cb_card_t *card, int chan, int bits)
{
    int ts = 0;
    sim_span_t *p = span_of((cb_sim_t *) card, chan, &ts);
    return p == NULL ? CB_ERR_INVALID : cb_framer_cas_set(p->fr, ts, bits);
}

int sim_abcd_get(cb_card_t *card, int chan)
{
    int ts = 0;
    sim_span_t *p = span_of((cb_sim_t *) card, chan, &ts);
    return p == NULL ? CB_ERR_INVALID : cb_framer_cas_get(p->fr, ts);
}

/* The span whose D-channel is channel c, or NULL. */
static sim_span_t *dchan_of(cb_sim_t *s, int c)
{
    int ts = 0;
    sim_span_t *p = span_of(s, c, &ts);
    return p != NULL && p->dts == ts ? p : NULL;
}

int sim_hdlc_send(cb_card_t *card, int chan, const uint8_t *frame, int len)
{
    sim_span_t *p = dchan_of((cb_sim_t *) card, chan);
    return p == NULL ? CB_ERR_INVALID : cb_hdlc_send(p->hdlc, frame, len);
}

int sim_hdlc_recv(cb_card_t *card, int chan, uint8_t *frame, int max)
{
    sim_span_t *p = dchan_of((cb_sim_t *) card, chan);
    return p == NULL ? CB_ERR_INVALID : cb_hdlc_recv(p->hdlc, frame, max);
}

int cb_sim_span_fault(cb_sim_t *s, int span, int fault)
{
    if (span < 0 || span >= s->nspans || fault < CB_FAULT_CLEAR || fault > CB_FAULT_RAI)
        return CB_ERR_INVALID;
    if (fault == CB_FAULT_RAI && s->span[span].peer)
        return CB_ERR_STATE;
    atomic_store_explicit(&s->span[span].fault_req, fault, memory_order_relaxed);  /* from the next block on */
    return CB_OK;
}

int cb_sim_far_span_config(cb_sim_t *s, int span, const cb_span_config_t *cfg)
{
    if (span < 0 || span >= s->nspans || cfg == NULL || !framing_fits(s->span[span].kind, cfg)
        || cfg->ts16 != s->span[span].cfg.ts16)
        return CB_ERR_INVALID;
    return cb_framer_config(s->span[span].far_fr, cfg);
}

int cb_sim_far_span_status(const cb_sim_t *s, int span, cb_span_status_t *out)
{
    if (span < 0 || span >= s->nspans || out == NULL)
        return CB_ERR_INVALID;
    read_status(&s->span[span], 1, out);
    return CB_OK;
}

int cb_sim_far_cas_set(cb_sim_t *s, int chan, int abcd)
{
    int ts = 0;
    sim_span_t *p = span_of(s, chan, &ts);
    return p == NULL ? CB_ERR_INVALID : cb_framer_cas_set(p->far_fr, ts, abcd);
}

int cb_sim_far_cas_get(cb_sim_t *s, int chan)
{
    int ts = 0;
    sim_span_t *p = span_of(s, chan, &ts);
    return p == NULL ? CB_ERR_INVALID : cb_framer_cas_get(p->far_fr, ts);
}

int cb_sim_far_frame_send(cb_sim_t *s, int span, const uint8_t *frame, int len)
{
    if (span < 0 || span >= s->nspans || !s->span[span].dts)
        return CB_ERR_INVALID;
    return cb_hdlc_send(s->span[span].far_hdlc, frame, len);
}

int cb_sim_far_frame_recv(cb_sim_t *s, int span, uint8_t *frame, int max)
{
    if (span < 0 || span >= s->nspans || !s->span[span].dts)
        return CB_ERR_INVALID;
    return cb_hdlc_recv(s->span[span].far_hdlc, frame, max);
}

uint64_t cb_sim_far_frames_waiting(const cb_sim_t *s)
{
    uint64_t bits = 0;
    for (int i = 0; i < s->nspans; i++)
        if (s->span[i].dts && cb_hdlc_waiting(s->span[i].far_hdlc) > 0)
            bits |= (uint64_t) 1 << i;
    return bits;
}

int cb_sim_set_line_model(cb_sim_t *s, cb_line_model_t *model)
{
    s->line_model = model;
    for (int i = 0; i < s->nspans; i++)
        for (int d = 0; d < 2; d++) {
            cb_line_coder_init(&s->span[i].enc[d], s->span[i].cfg.coding);
            cb_line_coder_init(&s->span[i].dec[d], s->span[i].cfg.coding);
        }
    return CB_OK;
}

int cb_sim_sync(const cb_sim_t *s)
{
    return atomic_load_explicit(&((cb_sim_t *) s)->sync_req, memory_order_relaxed);
}
