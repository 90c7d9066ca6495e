/*
 * The sim card's spans: life cycle, configuration, status, faults, the line model's hook and the
 * clock source. The per-block path is in tick/span_tick.c.
 */
#include <stdlib.h>
#include <string.h>
#include "sim_priv.h"

int sim_spans_new(cb_sim_t *s, const uint8_t *kinds, int first_chan)
{
    if (s->nspans == 0)
        return CB_OK;
    s->span = calloc((size_t) s->nspans, sizeof(sim_span_t));
    if (s->span == NULL)
        return CB_ERR_NOMEM;
    s->sync = -1;
    int c = first_chan;
    for (int i = 0; i < s->nspans; i++) {
        sim_span_t *p = &s->span[i];
        p->kind = kinds[i];
        p->nts = kinds[i] == CB_SPAN_T1 ? 24 : 31;
        p->octets = kinds[i] == CB_SPAN_T1 ? 193 : 256;
        p->first_chan = c;
        c += p->nts;
        p->cfg = (cb_span_config_t) {
            .framing = kinds[i] == CB_SPAN_T1 ? CB_FRAMING_T1_ESF : CB_FRAMING_E1_CRC4,
            .coding = kinds[i] == CB_SPAN_T1 ? CB_CODING_B8ZS : CB_CODING_HDB3,
            .sync_priority = i + 1,
            .ts16 = CB_TS16_CLEAR,
        };
        size_t line = (size_t) CB_MAX_BLOCK_TICKS * (size_t) p->octets;
        p->line_tx = calloc(line, 1);
        p->line_rx = calloc(line, 1);
        p->rx_flags = calloc(CB_MAX_BLOCK_TICKS, 1);
        if (!p->line_tx || !p->line_rx || !p->rx_flags)
            return CB_ERR_NOMEM;
    }
    return CB_OK;
}

void sim_spans_free(cb_sim_t *s)
{
    if (s->span == NULL)
        return;
    for (int i = 0; i < s->nspans; i++) {
        free(s->span[i].line_tx);
        free(s->span[i].line_rx);
        free(s->span[i].rx_flags);
    }
    free(s->span);
    s->span = NULL;
}

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

int sim_span_config(cb_card_t *card, int span, const cb_span_config_t *cfg)
{
    cb_sim_t *s = (cb_sim_t *) card;
    if (span < 0 || span >= s->nspans || cfg == NULL || !framing_fits(s->span[span].kind, cfg))
        return CB_ERR_INVALID;
    s->span[span].cfg = *cfg;
    return CB_OK;
}

int sim_span_status(cb_card_t *card, int span, cb_span_status_t *out)
{
    cb_sim_t *s = (cb_sim_t *) card;
    if (span < 0 || span >= s->nspans || out == NULL)
        return CB_ERR_INVALID;
    memset(out, 0, sizeof(*out));
    out->sync = s->sync == span;
    out->has_dchan = s->span[span].cfg.ts16 == CB_TS16_DCHAN;
    return CB_OK;
}

int sim_sync_source(cb_card_t *card, int span)
{
    cb_sim_t *s = (cb_sim_t *) card;
    if (span < -1 || span >= s->nspans)
        return CB_ERR_INVALID;
    s->sync = span;
    return CB_OK;
}

int cb_sim_span_fault(cb_sim_t *s, int span, int fault)
{
    if (span < 0 || span >= s->nspans || fault < CB_FAULT_CLEAR || fault > CB_FAULT_RAI)
        return CB_ERR_INVALID;
    if (fault == CB_FAULT_RAI && s->span[span].peer)
        return CB_ERR_STATE;
    s->span[span].fault = fault;
    return CB_OK;
}

int cb_sim_far_span_status(const cb_sim_t *s, int span, cb_span_status_t *out)
{
    if (span < 0 || span >= s->nspans || out == NULL)
        return CB_ERR_INVALID;
    memset(out, 0, sizeof(*out));
    out->has_dchan = s->span[span].cfg.ts16 == CB_TS16_DCHAN;
    return CB_OK;
}

int cb_sim_set_line_model(cb_sim_t *s, cb_line_model_t *model)
{
    s->line_model = model;
    return CB_OK;
}

int cb_sim_sync(const cb_sim_t *s)
{
    return s->sync;
}
