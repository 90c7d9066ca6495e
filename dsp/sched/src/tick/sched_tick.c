/*
 * The channel scheduler's per-block path: apply commands, wait for the card,
 * exchange a block, then step the chain one 1 ms tick at a time for every
 * channel. No allocation, no locks, no Python; the card's wait and exchange
 * are the only system calls.
 */
#include <string.h>
#include "cb_g711.h"
#include "sched_priv.h"

static void media_error(cb_sched_t *m, const cb_cmd_t *c, int status)
{
    atomic_fetch_add_explicit(&m->commands_failed, 1, memory_order_relaxed);
    cb_ring_put_event(m->ev, atomic_load_explicit(&m->tick, memory_order_relaxed), c->chan,
                      CB_EV_MEDIA_ERROR, c->op, status);
}

/* The fast-path source of every channel, after a change of the graph. */
static void graph_changed(cb_sched_t *m)
{
    for (int c = 0; c < m->n; c++)
        m->pass_src[c] = cb_mix_sole_source(m->mix, c);
}

static int set_tap(cb_sched_t *m, int ch, cb_tap_t *tap)
{
    if (m->tap[ch] == NULL && tap != NULL) {
        m->tapped[m->ntapped++] = ch;
    } else if (m->tap[ch] != NULL && tap == NULL) {
        for (int i = 0; i < m->ntapped; i++) {
            if (m->tapped[i] == ch) {
                m->tapped[i] = m->tapped[--m->ntapped];
                break;
            }
        }
    }
    m->tap[ch] = tap;
    return CB_OK;
}

/* One media command (the card's own go to the card). */
static int apply(cb_sched_t *m, const cb_cmd_t *c, const uint8_t *payload)
{
    int ch = c->chan;
    int rc;
    if (c->op == CB_CMD_FRAME)
        return m->card == NULL ? CB_ERR_STATE
               : m->card->ops->hdlc_send == NULL ? CB_ERR_NOTSUP
                                                 : m->card->ops->hdlc_send(m->card, ch, payload, c->len);
    if (c->op < 0x100)
        return m->card ? m->card->ops->command(m->card, c) : CB_ERR_STATE;
    switch (c->op) {
    case CB_CMD_LAW:
        if (c->a != CB_LAW_ALAW && c->a != CB_LAW_ULAW)
            return CB_ERR_INVALID;
        m->law[ch] = (uint8_t) c->a;
        return CB_OK;
    case CB_CMD_BRIDGE:
        if (c->a < 0 || c->a >= m->n || c->a == ch)
            return CB_ERR_INVALID;
        cb_mix_unbridge(m->mix, ch);
        cb_mix_unbridge(m->mix, c->a);
        rc = cb_mix_listen(m->mix, ch, c->a, 0);
        if (rc == CB_OK)
            rc = cb_mix_listen(m->mix, c->a, ch, 0);
        graph_changed(m);
        return rc;
    case CB_CMD_UNBRIDGE:
        rc = cb_mix_unbridge(m->mix, ch);
        graph_changed(m);
        return rc;
    case CB_CMD_LISTEN:
        rc = cb_mix_listen(m->mix, ch, c->a, c->b);
        graph_changed(m);
        return rc;
    case CB_CMD_UNLISTEN:
        rc = cb_mix_unlisten(m->mix, ch, c->a);
        graph_changed(m);
        return rc;
    case CB_CMD_MIX_JOIN:
        rc = cb_mix_join(m->mix, ch, c->a, c->b, c->c);
        graph_changed(m);
        return rc;
    case CB_CMD_MIX_LEAVE:
        rc = cb_mix_leave(m->mix, ch);
        graph_changed(m);
        return rc;
    case CB_CMD_TAP:
        if (c->ptr == 0)
            return CB_ERR_INVALID;
        return set_tap(m, ch, (cb_tap_t *) (uintptr_t) c->ptr);
    case CB_CMD_TAP_STOP:
        return set_tap(m, ch, NULL);
    case CB_CMD_ECHO: {
        cb_event_t e = {.tick = atomic_load_explicit(&m->tick, memory_order_relaxed), .chan = (uint16_t) ch,
                        .type = CB_EV_ECHO, .len = c->len, .value = c->a, .extra = c->b};
        /* A full event ring counts the loss itself; it is not the command's fault. */
        cb_ring_put(m->ev, &e, (uint32_t) sizeof e, payload, c->len, cb_kind_slot_inline(CB_EV_ECHO));
        return CB_OK;
    }
    case CB_CMD_TONE: {
        if (c->a < 0)
            return cb_tone_gen_stop(m->tone, ch);
        rc = cb_tone_gen_start(m->tone, ch, c->b, c->a);
        if (rc == CB_OK) {
            m->gen[ch] = 1;
            m->zone[ch] = (uint8_t) c->b;
        }
        return rc;
    }
    case CB_CMD_DTMF_TX:
        rc = cb_dtmf_tx_start(m->dtmf_tx, ch, (const char *) (uintptr_t) c->ptr, c->a, c->b, c->c, c->d);
        if (rc == CB_OK)
            m->gen[ch] = 1;
        return rc;
    case CB_CMD_FSK_TX:
        rc = cb_fsk_tx_start(m->fsk_tx, ch, c->b, (const uint8_t *) (uintptr_t) c->ptr, c->a,
                             c->c & 0xFFFF, (c->c >> 16) & 0xFFFF, c->d);
        if (rc == CB_OK)
            m->gen[ch] = 1;
        return rc;
    case CB_CMD_PLAY:
        if (c->ptr == 0 || c->a < 0)
            return CB_ERR_INVALID;
        m->play[ch] = (const int16_t *) (uintptr_t) c->ptr;
        m->play_len[ch] = c->a;
        m->play_pos[ch] = 0;
        m->gen[ch] = 1;
        return CB_OK;
    case CB_CMD_STOP_PLAY:
        m->play[ch] = NULL;
        return CB_OK;
    case CB_CMD_DETECT:
        return cb_dtmf_rx_enable(m->dtmf_rx, ch, (c->a & CB_DETECT_DTMF) != 0);
    case CB_CMD_FSK_RX:
        return c->a < 0 ? cb_fsk_rx_stop(m->fsk_rx, ch) : cb_fsk_rx_start(m->fsk_rx, ch, c->a);
    case CB_CMD_BUSY_DETECT:
        return c->c <= 0 ? cb_busy_det_stop(m->busy, ch) : cb_busy_det_start(m->busy, ch, c->a, c->b, c->c);
    case CB_CMD_SILENCE:
        cb_tone_gen_stop(m->tone, ch);
        cb_dtmf_tx_stop(m->dtmf_tx, ch);
        cb_fsk_tx_stop(m->fsk_tx, ch);
        m->play[ch] = NULL;
        m->gen[ch] = 0;
        return CB_OK;
    default:
        return CB_ERR_INVALID;
    }
}

static void drain_commands(cb_sched_t *m)
{
    const uint32_t max = (uint32_t) (sizeof(cb_cmd_t) + CB_MAX_PAYLOAD);
    int size;
    while ((size = cb_ring_get(m->cmd, m->cmd_rec, max)) > 0) {
        cb_cmd_t c;
        memcpy(&c, m->cmd_rec, sizeof c);
        m->taken++;
        if ((uint32_t) size != sizeof c + c.len) {
            media_error(m, &c, CB_ERR_INVALID);
            continue;
        }
        int rc = apply(m, &c, m->cmd_rec + sizeof c);
        if (rc != CB_OK)
            media_error(m, &c, rc);
    }
}

/* Is anything generated on channel c? Clears the hint when not. */
static int generating(cb_sched_t *m, int c)
{
    if (!m->gen[c])
        return 0;
    if (m->play[c] || cb_tone_gen_active(m->tone, c) || cb_dtmf_tx_busy(m->dtmf_tx, c)
        || cb_fsk_tx_busy(m->fsk_tx, c))
        return 1;
    m->gen[c] = 0;
    return 0;
}

/* The echo canceller's slot, ahead of the detectors: it will take each
 * channel's received samples and what was sent to the line, and leave the
 * received samples with the echo removed. Empty until the echo canceller lands. */
static inline void echo_cancel(cb_sched_t *m, int16_t *lin)
{
    (void) m;
    (void) lin;
}

/* One 1 ms tick of the chain over every channel. t is the tick's index in
 * the block of `ticks`. */
CB_MULTIVERSION
static void chain_tick(cb_sched_t *m, uint64_t tick, int t, int ticks, const uint8_t *rx, uint8_t *tx)
{
    const int n = m->n;
    const size_t per = (size_t) ticks * CB_TICK_SAMPLES;
    const size_t off = (size_t) t * CB_TICK_SAMPLES;
    int16_t *lin = m->lin;
    int32_t *acc = m->acc;

    /* G.711 in: channel-major octets to sample-major linear. */
    for (int c = 0; c < n; c++) {
        const uint8_t *r = rx + (size_t) c * per + off;
        if (m->law[c] == CB_LAW_ALAW) {
            for (int s = 0; s < CB_TICK_SAMPLES; s++)
                lin[s * n + c] = cb_alaw2lin_fast(r[s]);
        } else {
            for (int s = 0; s < CB_TICK_SAMPLES; s++)
                lin[s * n + c] = cb_ulaw2lin_fast(r[s]);
        }
    }

    echo_cancel(m, lin);

    /* Detectors. */
    cb_dtmf_rx_tick(m->dtmf_rx, lin, m->ev, tick);
    cb_fsk_rx_tick(m->fsk_rx, lin, m->ev, tick);
    cb_busy_det_tick(m->busy, lin, m->ev, tick);

    /* Generators add into the accumulator. */
    memset(acc, 0, (size_t) n * CB_TICK_SAMPLES * sizeof(int32_t));
    cb_tone_gen_tick(m->tone, acc, m->ev, tick);
    cb_dtmf_tx_tick(m->dtmf_tx, acc, m->ev, tick);
    cb_fsk_tx_tick(m->fsk_tx, acc, m->ev, tick);

    /* A channel that hears exactly one other at 0 dB on its own law, with
     * nothing generated, passes the octets untouched (bit-exact). */
    for (int c = 0; c < n; c++) {
        int p = m->pass_src[c];
        m->pass[c] = (uint8_t) (p >= 0 && m->law[p] == m->law[c] && !generating(m, c));
    }

    /* The media graph: edges and mix groups. */
    cb_mix_tick(m->mix, lin, acc, m->pass);

    for (int c = 0; c < n; c++) {
        uint8_t *o = tx + (size_t) c * per + off;
        if (m->pass[c]) {
            memcpy(o, rx + (size_t) m->pass_src[c] * per + off, CB_TICK_SAMPLES);
            continue;
        }
        if (m->play[c]) {
            int32_t pos = m->play_pos[c];
            const int16_t *src = m->play[c];
            for (int s = 0; s < CB_TICK_SAMPLES && pos < m->play_len[c]; s++, pos++)
                acc[s * n + c] += src[pos];
            m->play_pos[c] = pos;
            if (pos >= m->play_len[c]) {
                m->play[c] = NULL;
                cb_ring_put_event(m->ev, tick, c, CB_EV_PLAY_DONE, pos, 0);
            }
        }
        if (m->law[c] == CB_LAW_ALAW) {
            for (int s = 0; s < CB_TICK_SAMPLES; s++)
                o[s] = cb_lin2alaw_fast(cb_sat16(acc[s * n + c]));
        } else {
            for (int s = 0; s < CB_TICK_SAMPLES; s++)
                o[s] = cb_lin2ulaw_fast(cb_sat16(acc[s * n + c]));
        }
    }

    /* Taps: what each tapped channel received and transmitted this tick. */
    for (int i = 0; i < m->ntapped; i++) {
        int c = m->tapped[i];
        int16_t rx8[CB_TICK_SAMPLES];
        for (int s = 0; s < CB_TICK_SAMPLES; s++) {
            rx8[s] = lin[s * n + c];
            m->txlin[s] = m->pass[c] ? lin[s * n + m->pass_src[c]] : cb_sat16(acc[s * n + c]);
        }
        cb_tap_put(m->tap[c], rx8, m->txlin, CB_TICK_SAMPLES, 1);
    }
}

static void ticks_done(cb_sched_t *m, uint64_t tick0, int ticks)
{
    if (!atomic_load_explicit(&m->frozen, memory_order_relaxed))
        atomic_fetch_add_explicit(&m->progress, (uint64_t) ticks, memory_order_relaxed);
    atomic_store_explicit(&m->tick, tick0 + (uint64_t) ticks, memory_order_release);
    /* Every command taken before this block is applied and the block that used
     * the buffers it replaced is over. */
    atomic_store_explicit(&m->applied, m->taken, memory_order_release);
}

int cb_sched_process(cb_sched_t *m, uint64_t tick0, int ticks, const uint8_t *rx, uint8_t *tx)
{
    if (ticks < 1)
        return CB_ERR_INVALID;
    drain_commands(m);
    for (int t = 0; t < ticks; t++)
        chain_tick(m, tick0 + (uint64_t) t, t, ticks, rx, tx);
    ticks_done(m, tick0, ticks);
    return ticks;
}

int cb_sched_block(cb_sched_t *m, int ticks, int realtime)
{
    cb_card_t *card = m->card;
    drain_commands(m);
    int late = card->ops->wait(card, ticks);
    if (realtime && late >= 0) {
        m->late_hist[late < CB_SCHED_LATE_BUCKETS - 1 ? late : CB_SCHED_LATE_BUCKETS - 1]++;
        atomic_fetch_add_explicit(&m->late_count, 1, memory_order_relaxed);
        if ((uint64_t) late > atomic_load_explicit(&m->late_max_us, memory_order_relaxed))
            atomic_store_explicit(&m->late_max_us, (uint64_t) late, memory_order_relaxed);
    }
    uint64_t tick0 = atomic_load_explicit(&m->tick, memory_order_relaxed);
    /* The card takes the tx block made last time and gives this block's rx. */
    int nev = card->ops->exchange(card, tick0, ticks, m->tx, m->rx, m->card_ev, m->ncard_ev);
    if (nev < 0) {
        atomic_fetch_add_explicit(&m->card_errors, 1, memory_order_relaxed);
        if (m->failing++ == 0)
            cb_ring_put_event(m->ev, tick0, 0, CB_EV_CARD_ERROR, nev, 0);
        return nev;
    }
    m->failing = 0;
    if (nev > m->ncard_ev) {  /* the card raised more than the buffer holds: only the first fit */
        atomic_fetch_add_explicit(&m->card_events_dropped, (uint64_t) (nev - m->ncard_ev), memory_order_relaxed);
        nev = m->ncard_ev;
    }
    for (int i = 0; i < nev; i++) {
        cb_event_t *e = &m->card_ev[i];
        e->len = 0;
        cb_ring_put(m->ev, e, (uint32_t) sizeof *e, NULL, 0, cb_kind_slot_inline(e->type));
    }
    atomic_fetch_add_explicit(&m->blocks, 1, memory_order_relaxed);
    for (int t = 0; t < ticks; t++)
        chain_tick(m, tick0 + (uint64_t) t, t, ticks, m->rx, m->tx);
    ticks_done(m, tick0, ticks);
    return ticks;
}

int cb_sched_step(cb_sched_t *m, int ticks)
{
    if (m->card == NULL || atomic_load(&m->running))
        return CB_ERR_STATE;
    int k = m->card->ticks_per_block;
    if (ticks < 0 || ticks % k != 0)
        return CB_ERR_INVALID;
    for (int done = 0; done < ticks; done += k) {
        int rc = cb_sched_block(m, k, 0);
        if (rc < 0)
            return rc;
    }
    return ticks;
}
