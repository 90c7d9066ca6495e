/*
 * The media tier's per-block path: apply commands, wait for the card,
 * exchange a block, then step the chain one 1 ms tick at a time for every
 * channel. No allocation, no locks, no Python; the card's wait and exchange
 * are the only system calls.
 */
#include <string.h>
#include "cb_g711.h"
#include "media_priv.h"

static void media_error(cb_media_t *m, const cb_cmd_t *c, int status)
{
    m->stats.commands_failed++;
    cb_ring_put_event(m->ev, m->tick, c->chan, CB_EV_MEDIA_ERROR, c->op, status);
}

static void unbridge(cb_media_t *m, int c)
{
    int p = m->peer[c];
    if (p >= 0) {
        m->peer[p] = -1;
        m->peer[c] = -1;
    }
}

/* One media command (the card's own go to the card). */
static int apply(cb_media_t *m, const cb_cmd_t *c)
{
    int ch = c->chan;
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
        unbridge(m, ch);
        unbridge(m, c->a);
        m->peer[ch] = c->a;
        m->peer[c->a] = ch;
        return CB_OK;
    case CB_CMD_UNBRIDGE:
        unbridge(m, ch);
        return CB_OK;
    case CB_CMD_TONE: {
        if (c->a < 0)
            return cb_tone_gen_stop(m->tone, ch);
        int rc = cb_tone_gen_start(m->tone, ch, c->b, c->a);
        if (rc == CB_OK) {
            m->gen[ch] = 1;
            m->zone[ch] = (uint8_t) c->b;
        }
        return rc;
    }
    case CB_CMD_DTMF_TX: {
        int rc = cb_dtmf_tx_start(m->dtmf_tx, ch, (const char *) (uintptr_t) c->ptr, c->a, c->b, c->c, c->d);
        if (rc == CB_OK)
            m->gen[ch] = 1;
        return rc;
    }
    case CB_CMD_FSK_TX: {
        int rc = cb_fsk_tx_start(m->fsk_tx, ch, c->b, (const uint8_t *) (uintptr_t) c->ptr, c->a,
                                 c->c & 0xFFFF, (c->c >> 16) & 0xFFFF, c->d);
        if (rc == CB_OK)
            m->gen[ch] = 1;
        return rc;
    }
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

static void drain_commands(cb_media_t *m)
{
    cb_cmd_t c;
    while (cb_ring_pop(m->cmd, &c, 1) == 1) {
        int rc = apply(m, &c);
        if (rc != CB_OK)
            media_error(m, &c, rc);
    }
}

/* Is anything generated on channel c? Clears the hint when not. */
static int generating(cb_media_t *m, int c)
{
    if (!m->gen[c])
        return 0;
    if (m->play[c] || cb_tone_gen_active(m->tone, c) || cb_dtmf_tx_busy(m->dtmf_tx, c)
        || cb_fsk_tx_busy(m->fsk_tx, c))
        return 1;
    m->gen[c] = 0;
    return 0;
}

/* One 1 ms tick of the chain over every channel. t is the tick's index in
 * the block of `ticks`. */
CB_MULTIVERSION
static void chain_tick(cb_media_t *m, uint64_t tick, int t, int ticks, const uint8_t *rx, uint8_t *tx)
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

    /* Detectors. */
    cb_dtmf_rx_tick(m->dtmf_rx, lin, m->ev, tick);
    cb_fsk_rx_tick(m->fsk_rx, lin, m->ev, tick);
    cb_busy_det_tick(m->busy, lin, m->ev, tick);

    /* Generators add into the accumulator. */
    memset(acc, 0, (size_t) n * CB_TICK_SAMPLES * sizeof(int32_t));
    cb_tone_gen_tick(m->tone, acc, m->ev, tick);
    cb_dtmf_tx_tick(m->dtmf_tx, acc, m->ev, tick);
    cb_fsk_tx_tick(m->fsk_tx, acc, m->ev, tick);

    for (int c = 0; c < n; c++) {
        uint8_t *o = tx + (size_t) c * per + off;
        int p = m->peer[c];
        if (p >= 0 && m->law[p] == m->law[c] && !generating(m, c)) {
            /* A two-party bridge on one law: the octets pass untouched. */
            memcpy(o, rx + (size_t) p * per + off, CB_TICK_SAMPLES);
            continue;
        }
        if (p >= 0)
            for (int s = 0; s < CB_TICK_SAMPLES; s++)
                acc[s * n + c] += lin[s * n + p];
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
}

int cb_media_process(cb_media_t *m, uint64_t tick0, int ticks, const uint8_t *rx, uint8_t *tx)
{
    if (ticks < 1)
        return CB_ERR_INVALID;
    drain_commands(m);
    for (int t = 0; t < ticks; t++) {
        chain_tick(m, tick0 + (uint64_t) t, t, ticks, rx, tx);
        if (!atomic_load_explicit(&m->frozen, memory_order_relaxed))
            atomic_fetch_add_explicit(&m->progress, 1, memory_order_relaxed);
    }
    m->tick = tick0 + (uint64_t) ticks;
    return ticks;
}

int cb_media_block(cb_media_t *m, int ticks, int realtime)
{
    cb_card_t *card = m->card;
    drain_commands(m);
    int late = card->ops->wait(card, ticks);
    if (realtime && late >= 0) {
        m->late_hist[late < CB_MEDIA_LATE_BUCKETS - 1 ? late : CB_MEDIA_LATE_BUCKETS - 1]++;
        m->stats.late_count++;
        if ((uint64_t) late > m->stats.late_max_us)
            m->stats.late_max_us = (uint64_t) late;
    }
    /* The card takes the tx block made last time and gives this block's rx. */
    int nev = card->ops->exchange(card, m->tick, ticks, m->tx, m->rx, m->card_ev, MEDIA_CARD_EV);
    if (nev < 0) {
        m->stats.card_errors++;
        return nev;
    }
    for (int i = 0; i < nev; i++)
        if (cb_ring_push(m->ev, &m->card_ev[i]) != CB_OK)
            break;
    m->stats.blocks++;
    uint64_t tick0 = m->tick;
    for (int t = 0; t < ticks; t++) {
        chain_tick(m, tick0 + (uint64_t) t, t, ticks, m->rx, m->tx);
        if (!atomic_load_explicit(&m->frozen, memory_order_relaxed))
            atomic_fetch_add_explicit(&m->progress, 1, memory_order_relaxed);
    }
    m->tick = tick0 + (uint64_t) ticks;
    return ticks;
}

int cb_media_step(cb_media_t *m, int ticks)
{
    if (m->card == NULL || atomic_load(&m->running))
        return CB_ERR_STATE;
    int k = m->card->ticks_per_block;
    if (ticks < 0 || ticks % k != 0)
        return CB_ERR_INVALID;
    for (int done = 0; done < ticks; done += k) {
        int rc = cb_media_block(m, k, 0);
        if (rc < 0)
            return rc;
    }
    return ticks;
}
