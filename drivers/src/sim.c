/*
 * The sim card: life cycle and the in-process far side. The per-block path
 * (wait, exchange, commands, far-end socket) is in tick/sim_tick.c.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "sim_priv.h"

static int span_slots(int kind)
{
    return kind == CB_SPAN_T1 ? 24 : 31;
}

cb_sim_t *cb_sim_new(int nports, const uint8_t *port_kinds, int nspans, const uint8_t *span_kinds,
                     int law, int k, int clock)
{
    if (nports < 0 || nspans < 0 || k < 1 || k > 10 || (law != CB_LAW_ALAW && law != CB_LAW_ULAW)
        || (clock != CB_CLOCK_VIRTUAL && clock != CB_CLOCK_REALTIME))
        return NULL;
    int nchan = nports;
    for (int i = 0; i < nports; i++)
        if (port_kinds[i] != CB_CHAN_FXO && port_kinds[i] != CB_CHAN_FXS)
            return NULL;
    for (int i = 0; i < nspans; i++) {
        if (span_kinds[i] != CB_SPAN_E1 && span_kinds[i] != CB_SPAN_T1)
            return NULL;
        nchan += span_slots(span_kinds[i]);
    }
    if (nchan < 1 || nchan > CB_SIM_MAX_CHANNELS)
        return NULL;

    cb_sim_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    size_t n = (size_t) nchan;
    s->head.ops = &cb_sim_ops;
    s->head.nchan = nchan;
    s->head.ticks_per_block = k;
    s->head.caps = CB_CAP_FAR_END | CB_CAP_LINE_LEVELS
                   | (nspans > 0 ? CB_CAP_SPAN_CONFIG | CB_CAP_SPAN_STATUS | CB_CAP_SYNC | CB_CAP_ABCD | CB_CAP_HDLC : 0);
    s->nports = nports;
    s->nspans = nspans;
    s->law = law;
    s->clock = clock;
    s->idle = law == CB_LAW_ALAW ? 0xD5 : 0xFF;
    s->far_timeout_ms = CB_SIM_FAR_TIMEOUT_MS;
    s->kind = calloc(n, 1);
    s->to_card = calloc(n, sizeof(sim_fifo_t));
    s->to_far = calloc(n, sizeof(sim_fifo_t));
    s->listen = calloc(n, 1);
    s->sigq = calloc(SIM_SIGQ, sizeof(sim_sig_t));
    s->farq = calloc(SIM_FARQ, sizeof(cb_event_t));
    s->hook = calloc(n, sizeof(sim_level_t));
    s->hook_rep = calloc(n, sizeof(sim_level_t));
    s->onhook_at = calloc(n, sizeof(uint64_t));
    s->ringing = calloc(n, sizeof(sim_level_t));
    s->ring_on = calloc(n, 1);
    s->cadence = calloc(n, sizeof(*s->cadence));
    s->cad_idx = calloc(n, sizeof(int32_t));
    s->cad_left = calloc(n, sizeof(int32_t));
    s->battery = calloc(n, sizeof(sim_level_t));
    s->polarity = calloc(n, sizeof(sim_level_t));
    s->flash_left = calloc(n, sizeof(int32_t));
    s->port_words = (nports + 63) / 64;     /* (one word more: calloc of 0 may be NULL, read as failed) */
    s->ring_bits = calloc((size_t) s->port_words + 1, sizeof(uint64_t));
    s->hang_bits = calloc((size_t) s->port_words + 1, sizeof(uint64_t));
    s->flash_bits = calloc((size_t) s->port_words + 1, sizeof(uint64_t));
    s->pend = calloc((size_t) (nports > 0 ? nports : 1) * SIM_PEND_LEVELS, sizeof(sim_pend_t));
    s->far_claimed = calloc(n, 1);
    /* One bound for both ways: a block of CB_MAX_BLOCK_TICKS (what cb_sim_exchange accepts) over
     * every channel, with the most events a block carries. */
    s->far_buf_size = FAR_LEN_SIZE + FAR_MSG_MAX(nchan);
    for (int p = 0; p < CB_SIM_MAX_PEERS; p++)
        s->peer[p].fd = -1;
    if (!s->kind || !s->to_card || !s->to_far || !s->listen || !s->sigq || !s->farq || !s->hook
        || !s->hook_rep || !s->onhook_at || !s->ringing || !s->ring_on || !s->cadence || !s->cad_idx
        || !s->cad_left || !s->battery || !s->polarity || !s->flash_left || !s->pend
        || !s->ring_bits || !s->hang_bits || !s->flash_bits
        || !s->far_claimed) {
        cb_sim_free(s);
        return NULL;
    }
    for (int p = 0; p < CB_SIM_MAX_PEERS; p++) {
        sim_peer_t *q = &s->peer[p];
        q->chan = calloc(n, sizeof(uint16_t));
        q->out = malloc(s->far_buf_size);
        q->in = malloc(s->far_buf_size);
        if (!q->chan || !q->out || !q->in) {
            cb_sim_free(s);
            return NULL;
        }
    }
    for (size_t c = 0; c < n; c++) {
        atomic_init(&s->hook[c], 0);
        atomic_init(&s->hook_rep[c], 0);
        atomic_init(&s->ringing[c], 0);
        atomic_init(&s->battery[c], 0);
        atomic_init(&s->polarity[c], 0);
    }
    for (int c = 0; c < CB_SIM_MAX_CHANNELS; c++)
        atomic_init(&s->drop_next[c], 0);
    for (size_t c = 0; c < n; c++) {
        s->to_card[c].buf = malloc(CB_SIM_FAR_FIFO);
        s->to_far[c].buf = malloc(CB_SIM_FAR_FIFO);
        if (!s->to_card[c].buf || !s->to_far[c].buf) {
            cb_sim_free(s);
            return NULL;
        }
    }
    int c = 0;
    for (int i = 0; i < nports; i++, c++) {
        s->kind[c] = port_kinds[i];
        /* An FXS port feeds battery to its phone; an FXO port sees the exchange's. */
        lv_set(s->battery, c, 1);
    }
    for (int i = 0; i < nspans; i++)
        for (int t = 0; t < span_slots(span_kinds[i]); t++, c++)
            s->kind[c] = CB_CHAN_TS;
    if (sim_spans_new(s, span_kinds, nports) != CB_OK) {
        cb_sim_free(s);
        return NULL;
    }
    return s;
}

void cb_sim_free(cb_sim_t *s)
{
    if (s == NULL)
        return;
    for (int p = 0; p < CB_SIM_MAX_PEERS; p++) {
        if (s->peer[p].fd >= 0)
            close(s->peer[p].fd);
        free(s->peer[p].chan);
        free(s->peer[p].out);
        free(s->peer[p].in);
    }
    if (s->to_card)
        for (int c = 0; c < s->head.nchan; c++)
            free(s->to_card[c].buf);
    if (s->to_far)
        for (int c = 0; c < s->head.nchan; c++)
            free(s->to_far[c].buf);
    free(s->kind);
    free(s->to_card);
    free(s->to_far);
    free(s->listen);
    free(s->sigq);
    free(s->farq);
    free(s->hook);
    free(s->hook_rep);
    free(s->onhook_at);
    free(s->ringing);
    free(s->ring_on);
    free(s->cadence);
    free(s->cad_idx);
    free(s->cad_left);
    free(s->battery);
    free(s->polarity);
    free(s->flash_left);
    free(s->ring_bits);
    free(s->hang_bits);
    free(s->flash_bits);
    free(s->pend);
    free(s->far_claimed);
    sim_spans_free(s);
    free(s);
}

cb_card_t *cb_sim_card(cb_sim_t *s)
{
    return &s->head;
}

int cb_sim_nchan(const cb_sim_t *s)
{
    return s->head.nchan;
}

int cb_sim_chan_kind(const cb_sim_t *s, int chan)
{
    if (chan < 0 || chan >= s->head.nchan)
        return CB_ERR_INVALID;
    return s->kind[chan];
}

uint64_t cb_sim_tick(const cb_sim_t *s)
{
    return s->tick;
}

int cb_sim_set_tick(cb_sim_t *s, uint64_t tick)
{
    if (s->stats.blocks != 0)
        return CB_ERR_STATE;
    s->tick = tick;
    return CB_OK;
}

int cb_sim_far_write(cb_sim_t *s, int chan, const uint8_t *octets, int n)
{
    if (chan < 0 || chan >= s->head.nchan || n < 0)
        return CB_ERR_INVALID;
    sim_fifo_t *f = &s->to_card[chan];
    int room = (int) (CB_SIM_FAR_FIFO - (f->head - f->tail));
    int take = n < room ? n : room;
    for (int i = 0; i < take; i++)
        f->buf[(f->head + (uint32_t) i) % CB_SIM_FAR_FIFO] = octets[i];
    f->head += (uint32_t) take;
    if (take < n)
        s->stats.far_fifo_overrun += (uint64_t) (n - take);
    return take;
}

int cb_sim_far_read(cb_sim_t *s, int chan, uint8_t *octets, int n)
{
    if (chan < 0 || chan >= s->head.nchan || n < 0)
        return CB_ERR_INVALID;
    sim_fifo_t *f = &s->to_far[chan];
    int have = (int) (f->head - f->tail);
    int take = n < have ? n : have;
    for (int i = 0; i < take; i++)
        octets[i] = f->buf[(f->tail + (uint32_t) i) % CB_SIM_FAR_FIFO];
    f->tail += (uint32_t) take;
    return take;
}

int cb_sim_far_write_all(cb_sim_t *s, const uint8_t *octets, int nchan, int n)
{
    if (nchan < 0 || nchan > s->head.nchan || n < 0 || (n > 0 && nchan > 0 && octets == NULL))
        return CB_ERR_INVALID;
    for (int c = 0; c < nchan; c++) {
        sim_fifo_t *f = &s->to_card[c];
        uint32_t room = CB_SIM_FAR_FIFO - (f->head - f->tail);
        uint32_t take = (uint32_t) n < room ? (uint32_t) n : room;
        sim_fifo_put(f, octets + (size_t) c * (size_t) n, take);
        if (take < (uint32_t) n)
            s->stats.far_fifo_overrun += (uint64_t) ((uint32_t) n - take);
    }
    return CB_OK;
}

int cb_sim_far_read_all(cb_sim_t *s, uint8_t *out, int nchan, int n, int32_t *got)
{
    if (nchan < 0 || nchan > s->head.nchan || n < 0 || (n > 0 && nchan > 0 && out == NULL))
        return CB_ERR_INVALID;
    int dropped = 0;
    for (int c = 0; c < nchan; c++) {
        if (!s->listen[c]) {
            if (got != NULL)
                got[c] = 0;
            continue;
        }
        sim_fifo_t *f = &s->to_far[c];
        uint32_t have = f->head - f->tail;
        uint32_t take = have < (uint32_t) n ? have : (uint32_t) n;
        uint8_t *o = out + (size_t) c * (size_t) n;
        sim_fifo_get(f, o, take);
        if (take < (uint32_t) n)
            memset(o + take, s->idle, (size_t) n - take);
        if (got != NULL)
            got[c] = (int32_t) take;
        uint32_t rest = f->head - f->tail;
        f->tail = f->head;
        dropped = rest > (uint32_t) (INT32_MAX - dropped) ? INT32_MAX : dropped + (int) rest;
    }
    return dropped;
}

int cb_sim_far_listen(cb_sim_t *s, int chan, int on)
{
    if (chan < 0 || chan >= s->head.nchan)
        return CB_ERR_INVALID;
    s->listen[chan] = on ? 1 : 0;
    if (!on)
        s->to_far[chan].tail = s->to_far[chan].head;
    return CB_OK;
}

int cb_sim_far_signal(cb_sim_t *s, int chan, int type, int value, uint64_t at_tick)
{
    if (chan < 0 || chan >= s->head.nchan || at_tick < s->tick)
        return CB_ERR_INVALID;
    int kind = s->kind[chan];
    int ok = 0;
    if (kind == CB_CHAN_FXS)
        ok = type == CB_EV_HOOK_OFF || type == CB_EV_HOOK_ON;
    else if (kind == CB_CHAN_FXO)
        ok = type == CB_EV_RING_ON || type == CB_EV_RING_OFF || type == CB_EV_BATTERY
             || type == CB_EV_POLARITY;
    if (!ok)
        return CB_ERR_INVALID;
    if (s->nsig >= SIM_SIGQ)
        return CB_ERR_FULL;
    s->sigq[s->nsig++] = (sim_sig_t) {at_tick, (uint16_t) chan, (uint16_t) type, value};
    return CB_OK;
}

int cb_sim_far_poll(cb_sim_t *s, cb_event_t *out, int max)
{
    int n = 0;
    while (s->farq_tail != s->farq_head && n < max)
        out[n++] = s->farq[s->farq_tail++ % SIM_FARQ];
    return n;
}

void cb_sim_get_stats(const cb_sim_t *s, cb_sim_stats_t *out)
{
    *out = s->stats;
}

int cb_sim_far_peers(const cb_sim_t *s, cb_sim_peer_info_t *out, int max)
{
    int n = 0;
    for (int p = 0; p < CB_SIM_MAX_PEERS && n < max; p++)
        if (s->peer[p].fd >= 0)
            out[n++] = s->peer[p].info;
    return n;
}

int cb_sim_set_far_timeout(cb_sim_t *s, int ms)
{
    if (ms < 1 || ms > 600000)
        return CB_ERR_INVALID;
    s->far_timeout_ms = ms;
    return CB_OK;
}

int cb_sim_exchange(cb_sim_t *s, uint64_t tick0, int ticks, const uint8_t *tx, uint8_t *rx,
                    cb_event_t *ev, int ev_max)
{
    return cb_sim_exchange_fill(s, tick0, ticks, tx, NULL, rx, ev, ev_max);   /* tx is the caller's */
}

int cb_sim_command(cb_sim_t *s, const cb_cmd_t *cmd)
{
    return s->head.ops->command(&s->head, cmd);
}

/* The control thread reads these octets while the media thread may write them: each is an
 * atomic octet (sim_level_t), and a level one block old is what the caller expects (it
 * compares against events it has already taken). */
int cb_sim_line_levels(const cb_sim_t *s, uint8_t *out, int n)
{
    if (n < 0 || (n > 0 && out == NULL))
        return CB_ERR_INVALID;
    if (n > s->head.nchan)
        n = s->head.nchan;
    for (int c = 0; c < n; c++) {
        uint8_t v = 0;
        if (s->kind[c] == CB_CHAN_FXS || s->kind[c] == CB_CHAN_FXO) {
            uint8_t hook = s->kind[c] == CB_CHAN_FXS ? lv_get(s->hook_rep, c) : lv_get(s->hook, c);
            v = (uint8_t) ((hook ? CB_LEVEL_OFF_HOOK : 0) | (lv_get(s->ringing, c) ? CB_LEVEL_RINGING : 0)
                           | (lv_get(s->battery, c) ? CB_LEVEL_BATTERY : 0)
                           | (lv_get(s->polarity, c) ? CB_LEVEL_REVERSED : 0));
        }
        out[c] = v;
    }
    return n;
}

/* One atomic octet store: the thread stepping the card sees it at its next block, and takes it
 * only if it is still the one it matched (a newer request is never cleared unseen). */
int cb_sim_drop_next_event(cb_sim_t *s, int chan, int type)
{
    if (chan < 0 || chan >= s->head.nchan || type < 0 || type >= 0x100)
        return CB_ERR_INVALID;
    atomic_store_explicit(&s->drop_next[chan], (uint8_t) type, memory_order_relaxed);
    return CB_OK;
}
