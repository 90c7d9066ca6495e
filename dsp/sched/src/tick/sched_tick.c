/*
 * The channel scheduler's per-block path: apply commands, wait for the card,
 * exchange a block, then step the chain one 1 ms tick at a time. No
 * allocation, no locks, no Python; the card's wait and exchange are the only
 * system calls.
 *
 * Work follows what the channels do. Commands take effect at a block's start
 * only, so each block first sorts the channels: one that sends nothing and
 * hears nothing sends the idle octet for the whole block (one fill), and so does
 * one whose only generator is a tone in a pause that lasts all block; one that
 * only plays a buffer given with its G.711 octets, and hears nothing, sends
 * those octets (one copy), unless its play ends within the block; one that
 * hears exactly one other on its own law at 0 dB, with nothing generated, no
 * tap and no canceller on either, sends that one's received octets (one copy:
 * the bit-exact pass of a bridged call); every other channel is stepped tick
 * by tick through the whole chain. Received samples
 * are decoded only where something reads them: every tick for the channels a
 * detector, a canceller or a tap reads, and in a tick for the sources the
 * media graph mixes (not those whose listener passes the octets through). A
 * channel not decoded reads as silence: the DTMF bank steps groups of
 * channels, and a group's channels that do not detect hear nothing. With no
 * channel detecting DTMF the bank is not stepped from the next start of its
 * 12 ms block; when a channel detects again, the bank is stepped over silence
 * to the tick it would have reached, so its blocks keep their phase.
 */
#include <string.h>
#include "cb_g711.h"
#include "sched_priv.h"

/* sched_priv.h gen[] bits: generators started and not yet found idle. */
#define SCHED_GEN_TONE 1
#define SCHED_GEN_DTMF 2
#define SCHED_GEN_FSK 4
/* Ticks in the DTMF bank's detection block. */
#define SCHED_DTMF_TICKS (CB_DTMF_BLOCK / CB_TICK_SAMPLES)

static void media_error(cb_sched_t *m, const cb_cmd_t *c, int status)
{
    atomic_fetch_add_explicit(&m->commands_failed, 1, memory_order_relaxed);
    cb_ring_put_event(m->ev, atomic_load_explicit(&m->tick, memory_order_relaxed), c->chan,
                      CB_EV_MEDIA_ERROR, c->op, status);
}

/* The fast-path source of every channel, and which channels the graph adds into, after a
 * change of the graph. */
static void graph_changed(cb_sched_t *m)
{
    int live = 0;
    for (int c = 0; c < m->n; c++) {
        m->pass_src[c] = cb_mix_sole_source(m->mix, c);
        m->heard[c] = (uint8_t) (cb_mix_edges(m->mix, c) > 0 || cb_mix_group_of(m->mix, c) >= 0);
        live |= m->heard[c];
    }
    m->graph_live = live;
}

/* A channel's generator bits, and the count of channels with each (a kernel no channel has a
 * bit of has nothing to step). */
static void set_gen(cb_sched_t *m, int ch, unsigned bits)
{
    unsigned was = m->gen[ch];
    m->ngen[0] += (int) ((bits & SCHED_GEN_TONE) != 0) - (int) ((was & SCHED_GEN_TONE) != 0);
    m->ngen[1] += (int) ((bits & SCHED_GEN_DTMF) != 0) - (int) ((was & SCHED_GEN_DTMF) != 0);
    m->ngen[2] += (int) ((bits & SCHED_GEN_FSK) != 0) - (int) ((was & SCHED_GEN_FSK) != 0);
    m->gen[ch] = (uint8_t) bits;
}

/* A detector flag of a channel, and its count. */
static void set_flag(uint8_t *flags, int *count, int ch, int on)
{
    if (flags[ch] != (uint8_t) on)
        *count += on ? 1 : -1;
    flags[ch] = (uint8_t) on;
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
    case CB_CMD_LOOPBACK: {
        cb_event_t e = {.tick = atomic_load_explicit(&m->tick, memory_order_relaxed), .chan = (uint16_t) ch,
                        .type = CB_EV_LOOPBACK, .len = c->len, .value = c->a, .extra = c->b};
        /* A full event ring counts the loss itself; it is not the command's fault. */
        cb_ring_put(m->ev, &e, (uint32_t) sizeof e, payload, c->len, cb_kind_slot_inline(CB_EV_LOOPBACK));
        return CB_OK;
    }
    case CB_CMD_ECHO:
        rc = cb_echo_set(m->echo, ch, c->a, c->b);
        if (rc == CB_OK) {
            m->echoed[ch] = (uint8_t) (c->a != 0);
            cb_ring_put_event(m->ev, atomic_load_explicit(&m->tick, memory_order_relaxed), ch, CB_EV_ECHO,
                              c->a ? CB_ECHO_ON : CB_ECHO_OFF, CB_ECHO_BY_COMMAND);
        }
        return rc;
    case CB_CMD_TONE: {
        if (c->a < 0)
            return cb_tone_gen_stop(m->tone, ch);
        rc = cb_tone_gen_start(m->tone, ch, c->b, c->a);
        if (rc == CB_OK) {
            set_gen(m, ch, m->gen[ch] | SCHED_GEN_TONE);
            m->zone[ch] = (uint8_t) c->b;
        }
        return rc;
    }
    case CB_CMD_DTMF_TX:
        rc = cb_dtmf_tx_start(m->dtmf_tx, ch, (const char *) (uintptr_t) c->ptr, c->a, c->b, c->c, c->d);
        if (rc == CB_OK)
            set_gen(m, ch, m->gen[ch] | SCHED_GEN_DTMF);
        return rc;
    case CB_CMD_FSK_TX:
        rc = cb_fsk_tx_start(m->fsk_tx, ch, c->b, (const uint8_t *) (uintptr_t) c->ptr, c->a,
                             c->c & 0xFFFF, (c->c >> 16) & 0xFFFF, c->d);
        if (rc == CB_OK)
            set_gen(m, ch, m->gen[ch] | SCHED_GEN_FSK);
        return rc;
    case CB_CMD_PLAY: {
        if (c->ptr == 0 || c->a < 0 || c->b < 0 || c->c < CB_PLAY_LINEAR || c->c > CB_PLAY_ULAW)
            return CB_ERR_INVALID;
        const int16_t *samples = (const int16_t *) (uintptr_t) c->ptr;
        int32_t loop = c->b > 0 ? c->b : c->a;
        m->play[ch] = samples;
        m->play_len[ch] = c->a;
        m->play_pos[ch] = 0;
        m->play_loop[ch] = loop;
        m->play_lpos[ch] = 0;
        m->play_oct[ch] = c->c == CB_PLAY_LINEAR ? NULL : (const uint8_t *) (samples + loop);
        m->play_oct_law[ch] = (uint8_t) (c->c == CB_PLAY_ALAW ? CB_LAW_ALAW : CB_LAW_ULAW);
        return CB_OK;
    }
    case CB_CMD_STOP_PLAY:
        m->play[ch] = NULL;
        return CB_OK;
    case CB_CMD_DETECT:
        rc = cb_dtmf_rx_enable(m->dtmf_rx, ch, (c->a & CB_DETECT_DTMF) != 0);
        if (rc == CB_OK)
            set_flag(m->dtmf_on, &m->ndtmf, ch, (c->a & CB_DETECT_DTMF) != 0);
        return rc;
    case CB_CMD_FSK_RX:
        rc = c->a < 0 ? cb_fsk_rx_stop(m->fsk_rx, ch) : cb_fsk_rx_start(m->fsk_rx, ch, c->a);
        if (rc == CB_OK)
            set_flag(m->fsk_on, &m->nfsk, ch, c->a >= 0);
        return rc;
    case CB_CMD_BUSY_DETECT:
        rc = c->c <= 0 ? cb_busy_det_stop(m->busy, ch) : cb_busy_det_start(m->busy, ch, c->a, c->b, c->c);
        if (rc == CB_OK)
            set_flag(m->busy_on, &m->nbusy, ch, c->c > 0);
        return rc;
    case CB_CMD_SILENCE:
        cb_tone_gen_stop(m->tone, ch);
        cb_dtmf_tx_stop(m->dtmf_tx, ch);
        cb_fsk_tx_stop(m->fsk_tx, ch);
        m->play[ch] = NULL;
        set_gen(m, ch, 0);
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
        m->resort = 1;
    }
}

/* Are generators other than a prompt sending on channel c? Clears the bits of those found idle. */
static inline int others_sending(cb_sched_t *m, int c)
{
    unsigned g = m->gen[c];
    if (g == 0)
        return 0;
    if ((g & SCHED_GEN_TONE) && !cb_tone_gen_active(m->tone, c))
        g &= ~(unsigned) SCHED_GEN_TONE;
    if ((g & SCHED_GEN_DTMF) && !cb_dtmf_tx_busy(m->dtmf_tx, c))
        g &= ~(unsigned) SCHED_GEN_DTMF;
    if ((g & SCHED_GEN_FSK) && !cb_fsk_tx_busy(m->fsk_tx, c))
        g &= ~(unsigned) SCHED_GEN_FSK;
    if (g != m->gen[c]) {
        set_gen(m, c, g);
        m->resort = 1;          /* it may be idle, or send a play's octets, from the next block */
    }
    return g != 0;
}

/* Is anything generated on channel c? (The other generators are looked at first, so a play
 * left alone goes to its octets from the next block.) */
static inline int generating(cb_sched_t *m, int c)
{
    return others_sending(m, c) || m->play[c] != NULL;
}

/* The idle octet of a law: linear 0 encoded. */
static inline uint8_t idle_octet(int law)
{
    return law == CB_LAW_ALAW ? cb_lin2alaw_fast(0) : cb_lin2ulaw_fast(0);
}

/* A channel that only plays a buffer with its octets, hears nothing, is not tapped, and whose
 * play goes on past a block of `per` samples: that block is those octets. */
static int sends_octets(cb_sched_t *m, int c, int32_t per)
{
    return m->play_oct[c] != NULL && m->play[c] != NULL && m->play_oct_law[c] == m->law[c] && !m->heard[c]
           && m->tap[c] == NULL && !m->echoed[c] && m->play_len[c] - m->play_pos[c] > per && !others_sending(m, c);
}

/* Copy a block of a play's octets and move the play on. */
static void copy_octets(cb_sched_t *m, int c, uint8_t *o, int32_t per)
{
    const uint8_t *oct = m->play_oct[c];
    int32_t loop = m->play_loop[c], lpos = m->play_lpos[c], left = per;
    while (left > 0) {
        int32_t run = loop - lpos < left ? loop - lpos : left;
        memcpy(o, oct + lpos, (size_t) run);
        o += run;
        left -= run;
        lpos += run;
        if (lpos == loop)
            lpos = 0;
    }
    m->play_lpos[c] = lpos;
    m->play_pos[c] += per;
}

/* A channel whose block is its sole source's received octets: it hears exactly one other at 0 dB on
 * its own law, nothing is generated on it, and neither has a tap on it nor a canceller (no command
 * comes within a block, so this holds for all of it). */
static int passes_block(const cb_sched_t *m, int c)
{
    const int p = m->pass_src[c];
    return p >= 0 && m->law[p] == m->law[c] && !m->gen[c] && m->play[c] == NULL && m->tap[c] == NULL
           && !m->echoed[c] && !m->echoed[p];
}

/* Channel c's received samples read as silence (it is not decoded). */
static inline void silence_lin(cb_sched_t *m, int c)
{
    for (int s = 0; s < CB_TICK_SAMPLES; s++)
        m->lin[s * m->n + c] = 0;
}

/* Channel c is decoded every tick from this block on (sort_channels: is_dec 2 set, 1 was). */
static inline void mark_decoded(cb_sched_t *m, int c)
{
    if (m->is_dec[c] < 2) {
        m->is_dec[c] += 2;
        m->dec[m->ndec++] = c;
    }
}

/* Is channel c's one generator a tone whose cadence pauses for all `ticks` of the block? (It adds
 * nothing to the channel then: sending the idle octet is what stepping would send.) */
static inline int tone_pauses(const cb_sched_t *m, int c, int ticks)
{
    return m->gen[c] == SCHED_GEN_TONE && cb_tone_gen_quiet_ms(m->tone, c) >= ticks;
}

/* Sort the channels: idle (runs of one law), sending a play's octets, or stepped; and which
 * are decoded every tick (a channel that stops being decoded reads as silence from now on).
 * A channel whose tone pauses all block long is idle for the block. */
static void sort_channels(cb_sched_t *m, int32_t per)
{
    const int n = m->n;
    const int ticks = per / CB_TICK_SAMPLES;
    m->ndec = m->nact = m->noct = m->nruns = m->nbpass = m->nquiet = m->ntonal = 0;
    int run_from = -1;
    for (int c = 0; c <= n; c++) {
        int pausing = 0;
        if (c < n && m->gen[c]) {
            others_sending(m, c);           /* forget the generators that ended */
            pausing = tone_pauses(m, c, ticks);
        }
        int alone = c < n && m->play[c] == NULL && !m->heard[c] && m->tap[c] == NULL && !m->echoed[c];
        int idle = alone && (!m->gen[c] || pausing);
        if (alone && pausing)
            m->quiet[m->nquiet++] = c;
        else if (alone && m->gen[c] == SCHED_GEN_TONE)
            m->tonal[m->ntonal++] = c;      /* sounding: idle once its tone pauses for a block */
        if (run_from >= 0 && (!idle || m->law[c] != m->law[run_from])) {
            m->idle_runs[2 * m->nruns] = run_from;
            m->idle_runs[2 * m->nruns + 1] = c - run_from;
            m->nruns++;
            run_from = -1;
        }
        if (c == n)
            break;
        if (m->dtmf_on[c] || m->fsk_on[c] || m->busy_on[c] || m->tap[c] || m->echoed[c])
            mark_decoded(m, c);
        /* a tap of a channel passing another's octets reads what it passes, as samples */
        if (m->tap[c] && m->pass_src[c] >= 0)
            mark_decoded(m, m->pass_src[c]);
        m->tx_fill[c] = idle ? idle_octet(m->law[c]) : 0;
        if (idle) {
            if (run_from < 0)
                run_from = c;
        } else if (sends_octets(m, c, per)) {
            m->oct[m->noct++] = c;
        } else if (passes_block(m, c)) {
            m->bpass[m->nbpass++] = c;
            m->pass[c] = 1;                 /* the graph's tick skips it (and does not decode its source) */
        } else {
            m->act[m->nact++] = c;
        }
    }
    /* is_dec: 1 decoded until now, 2 from now on (both 3) */
    for (int c = 0; c < n; c++) {
        if (m->is_dec[c] == 1)
            silence_lin(m, c);
        m->is_dec[c] = m->is_dec[c] >= 2;
    }
    m->resort = 0;
}

/* A block's start: the DTMF bank wakes if a channel detects again; the idle channels' block
 * is filled and the octet players' copied; the rest is stepped tick by tick. */
static void block_start(cb_sched_t *m, uint64_t tick0, int ticks, const uint8_t *rx, uint8_t *tx)
{
    const int32_t per = ticks * CB_TICK_SAMPLES;
    /* The DTMF bank wakes up where it would be had it been stepped over silence. */
    if (m->dtmf_parked && m->ndtmf > 0) {
        memset(m->lin, 0, (size_t) m->n * CB_TICK_SAMPLES * sizeof(int16_t));
        for (int t = 0; t < m->dtmf_t; t++)
            cb_dtmf_rx_tick(m->dtmf_rx, m->lin, m->ev, tick0);
        m->dtmf_parked = 0;
        m->resort = 1;
    }
    if (!m->resort) {
        /* A play that ends within this block is stepped, to end on its tick. */
        for (int i = 0; i < m->noct; i++)
            if (m->play_len[m->oct[i]] - m->play_pos[m->oct[i]] <= per || m->play[m->oct[i]] == NULL)
                m->resort = 1;
        /* A tone whose pause ends within this block is stepped, to sound from its tick; one that
         * pauses all this block is not. */
        for (int i = 0; i < m->nquiet && !m->resort; i++)
            if (cb_tone_gen_quiet_ms(m->tone, m->quiet[i]) < ticks)
                m->resort = 1;
        for (int i = 0; i < m->ntonal && !m->resort; i++)
            if (cb_tone_gen_quiet_ms(m->tone, m->tonal[i]) >= ticks)
                m->resort = 1;
    }
    if (m->resort)
        sort_channels(m, per);
    for (int i = 0; i < m->nruns; i++) {
        int c = m->idle_runs[2 * i];
        memset(tx + (size_t) c * (size_t) per, idle_octet(m->law[c]), (size_t) m->idle_runs[2 * i + 1] * (size_t) per);
    }
    for (int i = 0; i < m->noct; i++)
        copy_octets(m, m->oct[i], tx + (size_t) m->oct[i] * (size_t) per, per);
    for (int i = 0; i < m->nbpass; i++) {
        const int c = m->bpass[i];
        memcpy(tx + (size_t) c * (size_t) per, rx + (size_t) m->pass_src[c] * (size_t) per, (size_t) per);
    }
}

/* The echo canceller's slot, ahead of the detectors: each channel with a canceller on has its
 * received samples replaced by them less the echo of what it sent (cb_echo_rin, after encode). */
static inline void echo_cancel(cb_sched_t *m, int16_t *lin, uint64_t tick)
{
    if (cb_echo_active(m->echo) > 0)
        cb_echo_tick(m->echo, lin, m->n, m->ev, tick);
}

/* What an echo-cancelled channel sent this tick, as linear samples: its canceller's reference. */
static inline void echo_reference(cb_sched_t *m, int c, const uint8_t *o)
{
    int16_t rin[CB_TICK_SAMPLES];
    if (m->law[c] == CB_LAW_ALAW) {
        for (int s = 0; s < CB_TICK_SAMPLES; s++)
            rin[s] = cb_alaw2lin_fast(o[s]);
    } else {
        for (int s = 0; s < CB_TICK_SAMPLES; s++)
            rin[s] = cb_ulaw2lin_fast(o[s]);
    }
    cb_echo_rin(m->echo, c, rin);
}

static inline void decode_chan(cb_sched_t *m, int16_t *lin, const uint8_t *r, int c)
{
    const int n = m->n;
    if (m->law[c] == CB_LAW_ALAW) {
        for (int s = 0; s < CB_TICK_SAMPLES; s++)
            lin[s * n + c] = cb_alaw2lin_fast(r[s]);
    } else {
        for (int s = 0; s < CB_TICK_SAMPLES; s++)
            lin[s * n + c] = cb_ulaw2lin_fast(r[s]);
    }
}

/* One 1 ms tick of the chain over the channels block_start() left to it. t is the tick's
 * index in the block of `ticks`. */
CB_MULTIVERSION
static void chain_tick(cb_sched_t *m, uint64_t tick, int t, int ticks, const uint8_t *rx, uint8_t *tx)
{
    const int n = m->n;
    const size_t per = (size_t) ticks * CB_TICK_SAMPLES;
    const size_t off = (size_t) t * CB_TICK_SAMPLES;
    int16_t *lin = m->lin;
    int32_t *acc = m->acc;
    const int32_t *act = m->act;
    const int nact = m->nact;
    m->echo_on_any = cb_echo_active(m->echo) > 0;

    /* G.711 in: channel-major octets to sample-major linear. */
    for (int i = 0; i < m->ndec; i++)
        decode_chan(m, lin, rx + (size_t) m->dec[i] * per + off, m->dec[i]);

    echo_cancel(m, lin, tick);

    /* Detectors. */
    if (!m->dtmf_parked) {
        cb_dtmf_rx_tick(m->dtmf_rx, lin, m->ev, tick);
        if (m->dtmf_t + 1 == SCHED_DTMF_TICKS && m->ndtmf == 0) {
            m->dtmf_parked = 1;         /* its block ended: it rests, state zero, phase 0 */
            m->resort = 1;
        }
    }
    m->dtmf_t = m->dtmf_t + 1 == SCHED_DTMF_TICKS ? 0 : m->dtmf_t + 1;
    if (m->nfsk > 0)
        cb_fsk_rx_tick(m->fsk_rx, lin, m->ev, tick);
    if (m->nbusy > 0)
        cb_busy_det_tick(m->busy, lin, m->ev, tick);
    if (nact == 0 && m->nquiet == 0)
        return;

    /* Generators add into the accumulator of the stepped channels (only they have one). */
    if (nact > n / 8) {
        memset(acc, 0, (size_t) n * CB_TICK_SAMPLES * sizeof(int32_t));
    } else {
        for (int i = 0; i < nact; i++)
            for (int s = 0; s < CB_TICK_SAMPLES; s++)
                acc[s * n + act[i]] = 0;
    }
    /* A generator that ends says so (its *_DONE event): the channels are sorted again. */
    const uint32_t events = cb_ring_count(m->ev);
    const uint64_t lost = cb_ring_dropped(m->ev);
    if (m->ngen[0] > 0)
        cb_tone_gen_tick(m->tone, acc, m->ev, tick);
    if (m->ngen[1] > 0)
        cb_dtmf_tx_tick(m->dtmf_tx, acc, m->ev, tick);
    if (m->ngen[2] > 0)
        cb_fsk_tx_tick(m->fsk_tx, acc, m->ev, tick);
    if (cb_ring_count(m->ev) != events || cb_ring_dropped(m->ev) != lost)
        m->resort = 1;
    if (nact == 0)
        return;                     /* only pausing tones: their cadences ran on */

    /* A channel that hears exactly one other at 0 dB on its own law, with
     * nothing generated, passes the octets untouched (bit-exact). */
    for (int i = 0; i < nact; i++) {
        int c = act[i];
        int p = m->pass_src[c];
        m->pass[c] = (uint8_t) (p >= 0 && m->law[p] == m->law[c] && !generating(m, c)
                                && !(m->echo_on_any && cb_echo_state(m->echo, p) == CB_ECHO_ON));
    }

    /* The media graph: edges and mix groups (their channels are all stepped), over the samples of
     * the sources it reads, decoded now if they were not (and silent again after the tick). */
    int nlate = 0;
    if (m->graph_live) {
        nlate = cb_mix_sources(m->mix, m->pass, m->is_dec, m->late);
        for (int i = 0; i < nlate; i++)
            decode_chan(m, lin, rx + (size_t) m->late[i] * per + off, m->late[i]);
        cb_mix_tick(m->mix, lin, acc, m->pass);
    }

    for (int i = 0; i < nact; i++) {
        int c = act[i];
        uint8_t *o = tx + (size_t) c * per + off;
        if (m->pass[c]) {
            memcpy(o, rx + (size_t) m->pass_src[c] * per + off, CB_TICK_SAMPLES);
            if (m->echo_on_any)
                echo_reference(m, c, o);
            continue;
        }
        if (m->play[c]) {
            int32_t pos = m->play_pos[c], lpos = m->play_lpos[c];
            const int32_t len = m->play_len[c], loop = m->play_loop[c];
            const int16_t *src = m->play[c];
            for (int s = 0; s < CB_TICK_SAMPLES && pos < len; s++, pos++) {
                acc[s * n + c] += src[lpos];
                if (++lpos == loop)
                    lpos = 0;
            }
            m->play_pos[c] = pos;
            m->play_lpos[c] = lpos;
            if (pos >= len) {
                m->play[c] = NULL;
                m->resort = 1;
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
        if (m->echo_on_any)
            echo_reference(m, c, o);
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
    for (int i = 0; i < nlate; i++) {
        m->is_dec[m->late[i]] = 0;
        silence_lin(m, m->late[i]);
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
    block_start(m, tick0, ticks, rx, tx);
    /* the caller's tx is not the one the card is given: nothing is said of that one (the next
       block with the card sorts the channels again, and says it) */
    memset(m->tx_fill, 0, (size_t) m->n);
    m->fill_unsaid = 1;
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
        if (e->type == CB_EV_FRAME && card->ops->hdlc_recv != NULL) {
            /* The card announces each frame it received; its octets come through the HDLC op. */
            int len = card->ops->hdlc_recv(card, e->chan, m->frame, CB_MAX_PAYLOAD);
            if (len <= 0) {  /* announced but not given (a card's fault): lost, and counted as such */
                atomic_fetch_add_explicit(&m->card_events_dropped, 1, memory_order_relaxed);
                continue;
            }
            e->len = (uint16_t) len;
            cb_ring_put(m->ev, e, (uint32_t) sizeof *e, m->frame, (uint32_t) len, cb_kind_slot_inline(e->type));
            continue;
        }
        cb_ring_put(m->ev, e, (uint32_t) sizeof *e, NULL, 0, cb_kind_slot_inline(e->type));
    }
    atomic_fetch_add_explicit(&m->blocks, 1, memory_order_relaxed);
    if (m->fill_unsaid) {
        m->fill_unsaid = 0;
        m->resort = 1;
    }
    block_start(m, tick0, ticks, m->rx, m->tx);
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
