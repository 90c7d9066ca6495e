/*
 * The sim card's spans, per block: our framers, the in-process far ends and the line between
 * them (where the test-only line model is attached: coded, impaired and decoded).
 *
 * Per tick of the block: our framer frames the media tier's timeslot octets into line_tx; the
 * far end (a socket peer holding the span, else the in-process far end) answers with line_rx;
 * our framer takes line_rx back into timeslot octets, with its alarms, ABCD changes and
 * D-channel frames as card events. A D-channel or CAS timeslot carries no audio: the media tier
 * hears the idle octet there, and what it sends there is not on the line.
 */
#include <stdint.h>
#include <string.h>
#include "sim_priv.h"

/* The clock offset of span i's far end against the card's clock, parts per 10^9. */
static int64_t far_offset(const cb_sim_t *s, int i)
{
    const cb_line_model_t *lm = s->line_model;
    if (lm == NULL)
        return 0;
    int64_t card = s->sync >= 0 ? lm->far_ppb[s->sync] : 0;
    return (int64_t) lm->far_ppb[i] - card;
}

/* Does the media tier say every timeslot of span p sends the idle octet all block? */
static int span_tx_idle(const cb_sim_t *s, const sim_span_t *p, const uint8_t *fill)
{
    if (fill == NULL)
        return 0;
    int same = 1;
    for (int k = 0; k < p->nts; k++)
        same &= fill[p->first_chan + k] == s->idle;
    return same;
}

void sim_span_tx(cb_sim_t *s, int ticks, const uint8_t *tx, const uint8_t *fill)
{
    size_t per = (size_t) ticks * CB_TICK_SAMPLES;
    s->sync = atomic_load_explicit(&s->sync_req, memory_order_relaxed);
    for (int i = 0; i < s->nspans; i++) {
        sim_span_t *p = &s->span[i];
        int fault = atomic_load_explicit(&p->fault_req, memory_order_relaxed);
        if (fault != p->fault) {
            p->fault = fault;
            cb_framer_force(p->far_fr, fault == CB_FAULT_AIS ? CB_FRAMER_SEND_AIS
                                       : fault == CB_FAULT_RAI ? CB_FRAMER_SEND_RAI : 0);
        }
        int64_t off = far_offset(s, i);
        if (off != p->ppb_set) {
            cb_framer_set_offset_ppb(p->fr, off);
            cb_framer_set_offset_ppb(p->far_fr, -off);
            p->ppb_set = off;
        }
        /* this block's set of line buffers: the other one's */
        const size_t set_octets = (size_t) CB_MAX_BLOCK_TICKS * (size_t) p->octets;
        p->set ^= 1;
        p->line_tx = p->lines + (size_t) (2 * p->set) * set_octets;
        p->line_rx = p->line_tx + set_octets;
        const int set_ticks = p->set_ticks[p->set];
        const uint8_t *base = tx + (size_t) p->first_chan * per;
        const int idle = span_tx_idle(s, p, fill);
        int t = 0;
        if (!p->dts && set_ticks > 0) {
            /* the ticks the framer sends from memory, their lines where they are: one call */
            t = cb_framer_tx_run(p->fr, idle ? NULL : base, (int) per, CB_TICK_SAMPLES,
                                 ticks < set_ticks ? ticks : set_ticks, set_ticks + p->last_ticks);
            memset(p->tx_kept, 1, (size_t) t);
        }
        for (; t < ticks; t++) {
            uint8_t *line = p->line_tx + (size_t) t * (size_t) p->octets;
            /* line_tx is ours alone: this tick's line is where we put the same tick two blocks back */
            const int back = t < set_ticks ? set_ticks + p->last_ticks : 0;
            if (p->dts) {
                /* The D-channel's bits in place of whatever the media tier sent there. */
                for (int k = 0; k < p->nts; k++)
                    memcpy(p->ts + k * CB_TICK_SAMPLES, base + (size_t) k * per + (size_t) t * CB_TICK_SAMPLES,
                           CB_TICK_SAMPLES);
                cb_hdlc_tx(p->hdlc, p->ts + (p->dts - 1) * CB_TICK_SAMPLES, CB_TICK_SAMPLES);
                p->tx_kept[t] = (uint8_t) cb_framer_tx_kept(p->fr, p->ts, CB_TICK_SAMPLES, line, back);
            } else {
                p->tx_kept[t] = (uint8_t) cb_framer_tx_kept(p->fr, idle ? NULL : base + (size_t) t * CB_TICK_SAMPLES,
                                                            (int) per, line, back);
            }
        }
    }
}

/* One tick of line through the line model, direction dir: coded by the sender's encoder,
 * impaired, decoded by the receiver's decoder (its violations counted). */
static const uint8_t *line_through(cb_sim_t *s, sim_span_t *p, int i, int dir, uint64_t tick, const uint8_t *line)
{
    int nbits = p->octets * 8;
    cb_line_encode(&p->enc[dir], line, nbits, p->sym);
    s->line_model->impair(s->line_model->ctx, i, dir, tick, p->sym, nbits);
    int32_t v = cb_line_decode(&p->dec[dir], p->sym, nbits, p->coded);
    if (v > 0) {
        if (dir == 0)
            p->bpv += (uint64_t) v;
        else
            p->far_bpv += (uint64_t) v;
    }
    return p->coded;
}

void sim_span_far(cb_sim_t *s, uint64_t tick0, int ticks)
{
    const size_t per = (size_t) ticks * CB_TICK_SAMPLES;
    for (int i = 0; i < s->nspans; i++) {
        sim_span_t *p = &s->span[i];
        if (p->peer) {
            p->far_ticks = p->far_set_ticks[p->set] = 0;
            continue;
        }
        int cut = p->fault == CB_FAULT_CUT;
        int silent = cut || p->fault == CB_FAULT_LOS;
        /* What the world gave the far end to send, the whole block at once (timeslot-major, stride
           per); a timeslot it gave nothing, idle already, is left as it is. */
        if (per != p->far_idle_per) {
            p->far_idle = 0;
            p->far_idle_per = per;
        }
        for (int k = 0; k < p->nts; k++) {
            sim_fifo_t *g = &s->to_card[p->first_chan + k];
            uint8_t *o = p->far_out + (size_t) k * per;
            uint32_t have = g->head - g->tail;
            uint32_t take = have < (uint32_t) per ? have : (uint32_t) per;
            const uint32_t bit = 1u << k;
            if (take == 0 && (p->far_idle & bit) && k + 1 != p->dts)
                continue;       /* (a timeslot that became the D-channel is filled as such) */
            if (take > 0)
                sim_fifo_get(g, o, take);
            if (take < per)
                memset(o + take, s->idle, per - take);
            p->far_idle = take == 0 && k + 1 != p->dts ? p->far_idle | bit : p->far_idle & ~bit;
        }
        /* Without a line model the far end's line buffers are its and ours alone: what it read or
           sent at this tick two blocks back (this set's last block), if it framed that block and
           the last one, is there still unless our transmit wrote it again. */
        const int plain = s->line_model == NULL;
        const int set_ticks = p->set_ticks[p->set], far_set = p->far_set_ticks[p->set];
        const int framed = plain && p->far_ticks > 0 && p->far_ticks == p->last_ticks;
        const int back = framed && far_set == set_ticks ? set_ticks + p->last_ticks : 0;
        const int tx_back = framed && far_set > 0 ? far_set + p->far_ticks : 0;
        /* every timeslot idle all block: the far end's transmit needs not read them; nobody
           listening and no D-channel: nobody reads what it received */
        const int all_idle = p->far_idle == (1u << p->nts) - 1;     /* nts <= 31 */
        const uint8_t *listen = s->listen + p->first_chan;
        uint32_t listening = 0;                 /* bit k: timeslot k + 1 is heard as audio */
        for (int k = 0; k < p->nts; k++)
            listening |= (uint32_t) (listen[k] != 0) << k;
        if (p->sig_ts)
            listening &= ~(1u << (p->sig_ts - 1));
        const int heard_wanted = p->dts != 0 || listening != 0;
        /* The ticks it hears and sends from memory, a run each, the lines where they are (what it
           sends after what it heard: a tick's transmit never runs ahead of its receive) ... */
        int heard_run = 0, sent_run = 0;
        if (plain && !cut && !p->dts && back > 0) {
            int unchanged = 0;
            while (unchanged < ticks && unchanged < set_ticks && p->tx_kept[unchanged])
                unchanged++;
            heard_run = cb_framer_rx_run(p->far_fr, unchanged, back, listening ? p->far_in : NULL, (int) per,
                                         CB_TICK_SAMPLES);
            if (tx_back > 0)
                sent_run = cb_framer_tx_run(p->far_fr, all_idle ? NULL : p->far_out, (int) per, CB_TICK_SAMPLES,
                                            heard_run < far_set ? heard_run : far_set, tx_back);
            memset(p->far_kept, 1, (size_t) sent_run);
            memset(p->rx_flags, silent ? SIM_LINE_NOSIG : 0, (size_t) sent_run);
        }
        /* ... and the rest tick by tick */
        for (int t = sent_run; t < ticks; t++) {
            uint64_t tick = tick0 + (uint64_t) t;
            const size_t at = (size_t) t * CB_TICK_SAMPLES;
            if (t >= heard_run) {
                const uint8_t *heard = p->line_tx + (size_t) t * (size_t) p->octets;
                if (!plain && !cut)
                    heard = line_through(s, p, i, 1, tick, heard);
                /* The far end hears the line ... */
                cb_framer_rx_kept(p->far_fr, heard, cut, heard_wanted ? p->far_in + at : NULL, (int) per,
                                  t < set_ticks && p->tx_kept[t] ? back : 0);
                if (p->dts) {
                    if (!(cb_framer_aligned(p->far_fr) & CB_FRAMER_FRAME))
                        cb_hdlc_reset(p->far_hdlc);
                    else
                        cb_hdlc_rx(p->far_hdlc, p->far_in + (size_t) (p->dts - 1) * per + at, CB_TICK_SAMPLES);
                    cb_hdlc_tx(p->far_hdlc, p->far_out + (size_t) (p->dts - 1) * per + at, CB_TICK_SAMPLES);
                }
            }
            /* ... and sends. */
            uint8_t *rx_line = p->line_rx + (size_t) t * (size_t) p->octets;
            p->far_kept[t] = (uint8_t) cb_framer_tx_kept(p->far_fr, all_idle ? NULL : p->far_out + at, (int) per,
                                                         rx_line, t < far_set ? tx_back : 0);
            p->rx_flags[t] = silent ? SIM_LINE_NOSIG : 0;
            if (!plain && !silent)
                memcpy(rx_line, line_through(s, p, i, 0, tick, rx_line), (size_t) p->octets);
        }
        p->far_ticks = p->far_set_ticks[p->set] = plain ? ticks : 0;
        /* What it heard, for the world where it listens (a D-channel or CAS timeslot is no audio). */
        for (uint32_t left = listening; left != 0; left &= left - 1) {
            const int k = __builtin_ctz(left);
            sim_fifo_t *f = &s->to_far[p->first_chan + k];
            uint32_t used = f->head - f->tail;
            if (used + (uint32_t) per > CB_SIM_FAR_FIFO) {
                uint32_t over = used + (uint32_t) per - CB_SIM_FAR_FIFO;
                f->tail += over;
                s->stats.far_fifo_overrun += over;
            }
            sim_fifo_put(f, p->far_in + (size_t) k * per, (uint32_t) per);
        }
    }
}

void sim_span_rx(cb_sim_t *s, uint64_t tick0, int ticks, uint8_t *rx, cb_event_t *ev, int *nev, int ev_max)
{
    size_t per = (size_t) ticks * CB_TICK_SAMPLES;
    for (int i = 0; i < s->nspans; i++) {
        sim_span_t *p = &s->span[i];
        uint8_t *base = rx + (size_t) p->first_chan * per;
        /* from the in-process far end without a line model (this block): a line its transmit left
           as it was is the one we read at this tick two blocks back (this set's last block) */
        const int set_ticks = p->set_ticks[p->set];
        const int back = !p->peer && p->far_ticks > 0 ? set_ticks + p->last_ticks : 0;
        int t = 0;
        if (!p->sig_ts && back > 0) {
            /* the ticks received from memory, the line where it was: one call (no alarm changes) */
            int unchanged = 0;
            while (unchanged < ticks && unchanged < set_ticks && p->far_kept[unchanged]
                   && !(p->rx_flags[unchanged] & SIM_LINE_NOSIG))
                unchanged++;
            t = cb_framer_rx_run(p->fr, unchanged, back, base, (int) per, CB_TICK_SAMPLES);
        }
        for (; t < ticks; t++) {
            uint64_t tick = tick0 + (uint64_t) t;
            uint8_t *at = base + (size_t) t * CB_TICK_SAMPLES;
            cb_framer_rx_kept(p->fr, p->line_rx + (size_t) t * (size_t) p->octets, p->rx_flags[t] & SIM_LINE_NOSIG,
                              at, (int) per, t < set_ticks && p->far_kept[t] ? back : 0);
            if (p->sig_ts) {
                uint8_t *sig = at + (size_t) (p->sig_ts - 1) * per;
                if (p->dts) {
                    if (!(cb_framer_aligned(p->fr) & CB_FRAMER_FRAME))
                        cb_hdlc_reset(p->hdlc);
                    else
                        cb_hdlc_rx(p->hdlc, sig, CB_TICK_SAMPLES);
                }
                memset(sig, s->idle, CB_TICK_SAMPLES);
            }
            uint32_t a = cb_framer_alarms(p->fr);
            if (a != p->alarms_seen) {
                p->alarms_seen = a;
                cb_sim_put_ev(s, ev, nev, ev_max, tick, p->first_chan, CB_EV_ALARM, (int32_t) a, 0);
            }
            if (p->cfg.ts16 == CB_TS16_CAS) {
                uint32_t changed = cb_framer_cas_changed(p->fr);
                for (int c = 1; changed != 0 && c <= 30; c++) {
                    if (!(changed & (1U << c)))
                        continue;
                    changed &= ~(1U << c);
                    int ts = c <= 15 ? c : c + 1;
                    cb_sim_put_ev(s, ev, nev, ev_max, tick, p->first_chan + ts - 1, CB_EV_CAS,
                                  cb_framer_cas_get(p->fr, ts), 0);
                }
            }
        }
        if (p->dts) {
            cb_dchan_stats_t st;
            cb_hdlc_stats(p->hdlc, &st);
            /* One event per frame received; a frame whose event did not fit is announced next block
             * (it stays queued, in order). */
            while (p->frames_seen < st.frames_rx
                   && cb_sim_put_ev(s, ev, nev, ev_max, tick0 + (uint64_t) ticks - 1, p->first_chan + p->dts - 1,
                                    CB_EV_FRAME, 0, 0))
                p->frames_seen++;
        }
        p->last_ticks = p->set_ticks[p->set] = ticks;
    }
}

/* The status of a framer, with a D-channel's counters and the violations its decoder counted. */
static void status_of(const cb_framer_t *fr, const cb_hdlc_t *h, uint64_t bpv, cb_span_status_t *out)
{
    cb_framer_status(fr, out);
    out->counters.bpv = bpv;
    out->has_dchan = h != NULL;
    if (h != NULL)
        cb_hdlc_stats(h, &out->dchan);
}

void sim_span_publish(cb_sim_t *s)
{
    for (int i = 0; i < s->nspans; i++) {
        sim_span_t *p = &s->span[i];
        uint32_t seq = atomic_load_explicit(&p->pub_seq, memory_order_relaxed);
        atomic_store_explicit(&p->pub_seq, seq + 1, memory_order_relaxed);
        atomic_thread_fence(memory_order_release);
        status_of(p->fr, p->dts ? p->hdlc : NULL, p->bpv, &p->pub[0]);
        p->pub[0].sync = s->sync == i;
        status_of(p->far_fr, p->dts ? p->far_hdlc : NULL, p->far_bpv, &p->pub[1]);
        atomic_store_explicit(&p->pub_seq, seq + 2, memory_order_release);
    }
}
