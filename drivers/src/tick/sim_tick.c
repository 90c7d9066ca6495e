/*
 * The sim card's per-block path: wait for the block's deadline, exchange one
 * block of k ticks with the far side, apply card commands. No allocation; the
 * only system calls are the clock sleep and the far-end socket I/O, which is
 * this card's line I/O.
 *
 * Far-end peers: every socket operation is non-blocking. Each block the card
 * hands every peer its BLOCK, then waits for the answers until one deadline
 * for all of them: half a block on the realtime clock, the dead-peer limit on
 * the virtual clock (lockstep). What a peer sends is read into its own buffer
 * as it arrives, never past the end of the message, and kept across blocks.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "sim_priv.h"

_Static_assert(CB_SIM_MAX_PEERS < 255, "far_claimed holds slot + 1 in an octet");
_Static_assert(CB_SIM_FAR_REASONS > CB_FAR_START_MISSED, "a counter for every refusal reason");
_Static_assert(CB_SIM_KIND_SLOTS == CB_KIND_SLOTS / 2, "a counter for every card kind's slot");
_Static_assert(sizeof(((cb_sim_stats_t *) 0)->card_ev_dropped_by) == CB_SIM_KIND_SLOTS * sizeof(uint64_t)
               && sizeof(((cb_sim_stats_t *) 0)->far_sig_dropped_by) == CB_SIM_KIND_SLOTS * sizeof(uint64_t)
               && sizeof(((cb_sim_stats_t *) 0)->far_late_events_by) == CB_SIM_KIND_SLOTS * sizeof(uint64_t),
               "the per-kind counters have CB_SIM_KIND_SLOTS slots");

/* The per-kind slot of a card event kind (below 0x100). */
static int card_slot(int type)
{
    return cb_kind_slot_inline(type) & (CB_SIM_KIND_SLOTS - 1);
}

static void put_ev(cb_sim_t *s, cb_event_t *ev, int *nev, int ev_max, uint64_t tick, int chan, int type,
                   int32_t value, int32_t extra)
{
    if (*nev >= ev_max) {
        s->stats.card_ev_dropped++;
        s->stats.card_ev_dropped_by[card_slot(type)]++;
        return;
    }
    ev[*nev] = (cb_event_t) {.tick = tick, .chan = (uint16_t) chan, .type = (uint16_t) type, .value = value,
                             .extra = extra};
    (*nev)++;
}

int cb_sim_put_ev(cb_sim_t *s, cb_event_t *ev, int *nev, int ev_max, uint64_t tick, int chan, int type,
                  int32_t value, int32_t extra)
{
    int room = *nev < ev_max;
    put_ev(s, ev, nev, ev_max, tick, chan, type, value, extra);
    return room;
}

/* A line change the far side sees (in process: cb_sim_far_poll; peers: their next block). */
static void far_seen(cb_sim_t *s, uint64_t tick, int chan, int type, int value)
{
    if (s->farq_head - s->farq_tail >= SIM_FARQ) {
        s->farq_tail++;  /* keep the newest */
        s->stats.far_farq_overrun++;
    }
    s->farq[s->farq_head++ % SIM_FARQ] = (cb_event_t) {.tick = tick, .chan = (uint16_t) chan,
                                                       .type = (uint16_t) type, .value = value};
}

static int64_t ts_ns(const struct timespec *t)
{
    return (int64_t) t->tv_sec * 1000000000LL + t->tv_nsec;
}

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return ts_ns(&t);
}

static int sim_wait(cb_card_t *card, int ticks)
{
    cb_sim_t *s = (cb_sim_t *) card;
    if (s->clock == CB_CLOCK_VIRTUAL)
        return 0;
    if (s->blocks_done == 0 && s->t0.tv_sec == 0 && s->t0.tv_nsec == 0)
        clock_gettime(CLOCK_MONOTONIC, &s->t0);
    /* The block is due once its last tick has passed. */
    int64_t due = ts_ns(&s->t0) + (int64_t) (s->tick + (uint64_t) ticks) * 1000000LL;
    struct timespec d = {(time_t) (due / 1000000000LL), (long) (due % 1000000000LL)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &d, NULL) == EINTR) {
    }
    int64_t late = now_ns() - due;
    if (late < 0)
        late = 0;
    if (late > 0)
        s->stats.late_blocks++;
    /* The card's transmit FIFO holds one block (k ms): later than that and the
     * line ran dry. */
    if (late > (int64_t) ticks * 1000000LL)
        s->stats.underflows++;
    return (int) (late / 1000);
}

static void be16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) (v >> 8);
    p[1] = (uint8_t) v;
}

static void be32(uint8_t *p, uint32_t v)
{
    be16(p, v >> 16);
    be16(p + 2, v & 0xFFFF);
}

static void be64(uint8_t *p, uint64_t v)
{
    be32(p, (uint32_t) (v >> 32));
    be32(p + 4, (uint32_t) v);
}

static uint32_t rd16(const uint8_t *p)
{
    return (uint32_t) p[0] << 8 | p[1];
}

static uint32_t rd32(const uint8_t *p)
{
    return rd16(p) << 16 | rd16(p + 2);
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t) rd32(p) << 32 | rd32(p + 4);
}

static int32_t clamp_detail(uint64_t v)
{
    return v > INT32_MAX ? INT32_MAX : (int32_t) v;
}

static int is_drop(int reason)
{
    return reason == CB_FAR_TIMEOUT || reason == CB_FAR_LATE_RUN || reason == CB_FAR_STALLED;
}

void cb_sim_far_close(cb_sim_t *s, int p, cb_event_t *ev, int *nev, int ev_max, int reason, int detail)
{
    sim_peer_t *q = &s->peer[p];
    if (q->fd < 0)
        return;
    close(q->fd);
    q->fd = -1;
    int first = q->info.first_chan;
    for (int i = 0; i < q->n; i++)
        s->far_claimed[q->chan[i]] = 0;
    for (int i = 0; i < q->nspan; i++)
        if (s->span[q->span[i]].peer == p + 1)
            s->span[q->span[i]].peer = 0;  /* back to the in-process far end, from this block on */
    q->n = 0;
    q->nspan = 0;
    q->line = 0;
    q->active = 0;
    q->detach = 0;
    q->in_len = 0;
    q->out_len = q->out_off = 0;
    s->stats.far_peers--;
    if (reason >= 0 && reason < CB_SIM_FAR_REASONS)
        s->stats.far_refused_by[reason]++;
    if (is_drop(reason))
        s->stats.far_dropped++;
    else if (reason != CB_FAR_OK)
        s->stats.far_refused++;
    if (reason != CB_FAR_OK)
        put_ev(s, ev, nev, ev_max, s->tick, first, CB_EV_FAR_ERROR, reason, detail);
    put_ev(s, ev, nev, ev_max, s->tick, first, CB_EV_FAR_DOWN, reason, 0);
}

/* The flags octet of a span's line toward a peer: no signal while the cable is cut (our side
 * sends nothing), else 0. */
static uint8_t far_tx_flags(const sim_span_t *sp)
{
    return sp->fault == CB_FAULT_CUT ? FAR_LINE_NOSIG : 0;
}

/* Build peer p's BLOCK: the tx octets of its channels, the lines of its spans (our framers'
 * line_tx, tick after tick) and the far-visible changes on its channels since its last block
 * (at most CB_SIM_FAR_MAX_EVENTS; the rest go in the next block). */
static void far_build(cb_sim_t *s, int p, uint64_t tick0, int ticks, const uint8_t *tx)
{
    sim_peer_t *q = &s->peer[p];
    size_t per = (size_t) ticks * CB_TICK_SAMPLES;
    uint8_t *m = q->out + FAR_LEN_SIZE;
    m[0] = FAR_MSG_BLOCK;
    be32(m + 1, q->seq);
    be64(m + 5, tick0);
    be16(m + 13, (uint32_t) ticks);
    be16(m + 15, (uint32_t) q->n);
    be16(m + 17, (uint32_t) q->nspan);
    uint8_t *w = m + FAR_BLOCK_HEAD;
    for (int i = 0; i < q->n; i++) {
        memcpy(w, tx + (size_t) q->chan[i] * per, per);
        w += per;
    }
    for (int i = 0; i < q->nspan; i++) {
        const sim_span_t *sp = &s->span[q->span[i]];
        size_t oct = (size_t) sp->octets;
        uint8_t flags = far_tx_flags(sp);
        for (int t = 0; t < ticks; t++) {
            *w++ = flags;
            if (flags & FAR_LINE_NOSIG)
                memset(w, 0, oct);
            else
                memcpy(w, sp->line_tx + (size_t) t * oct, oct);
            w += oct;
        }
    }
    uint8_t *count = w;
    w += 2;
    if (s->farq_head - q->ev_from > SIM_FARQ) {  /* overwritten before this peer was sent them */
        s->stats.far_ev_dropped += s->farq_head - q->ev_from - SIM_FARQ;
        q->ev_from = s->farq_head - SIM_FARQ;
    }
    uint32_t nev = 0;
    while (q->ev_from != s->farq_head && nev < CB_SIM_FAR_MAX_EVENTS) {
        const cb_event_t *e = &s->farq[q->ev_from++ % SIM_FARQ];
        if (s->far_claimed[e->chan] != p + 1 || e->tick < q->start_tick)
            continue;  /* another's channel, or from before this peer's first block */
        be16(w, e->chan);
        be16(w + 2, e->type);
        be32(w + 4, (uint32_t) e->value);
        be64(w + 8, e->tick);
        w += FAR_EVENT_SIZE;
        nev++;
    }
    be16(count, nev);
    uint32_t len = (uint32_t) (w - m);
    be32(q->out, len);
    q->out_len = len + FAR_LEN_SIZE;
    q->out_off = 0;
}

/* Send what is left of peer q's message without waiting: 1 all sent, 0 some left, or -errno. */
static int far_flush(sim_peer_t *q)
{
    while (q->out_off < q->out_len) {
        ssize_t w = send(q->fd, q->out + q->out_off, q->out_len - q->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -errno;
        }
        q->out_off += (uint32_t) w;
    }
    return 1;
}

/* Read what has arrived of peer q's next message without waiting, never past its end.
 * 1: a whole message is in q->in; 0: more is to come; -1: the connection ends (*reason:
 * CB_FAR_OK when the peer left between messages). */
static int far_read(sim_peer_t *q, int *reason, int *detail)
{
    for (;;) {
        uint32_t want;
        if (q->in_len < FAR_LEN_SIZE) {
            want = FAR_LEN_SIZE - q->in_len;
        } else {
            uint32_t len = rd32(q->in);
            if (len == 0) {
                *reason = CB_FAR_BAD_LENGTH;
                return -1;
            }
            if (len > FAR_PEER_MAX(q->n, q->line)) {
                *reason = CB_FAR_TOO_LONG;
                *detail = clamp_detail(len);
                return -1;
            }
            want = FAR_LEN_SIZE + len - q->in_len;
            if (want == 0)
                return 1;
        }
        ssize_t got = recv(q->fd, q->in + q->in_len, want, MSG_DONTWAIT);
        if (got == 0) {
            *reason = q->in_len == 0 ? CB_FAR_OK : CB_FAR_SHORT;
            return -1;
        }
        if (got < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            *reason = errno == ECONNRESET && q->in_len == 0 ? CB_FAR_OK : CB_FAR_IO;
            *detail = errno;
            return -1;
        }
        q->in_len += (uint32_t) got;
    }
}

static int event_fits(int kind, uint32_t type)
{
    if (kind == CB_CHAN_FXS)
        return type == CB_EV_HOOK_OFF || type == CB_EV_HOOK_ON;
    if (kind == CB_CHAN_FXO)
        return type == CB_EV_RING_ON || type == CB_EV_RING_OFF || type == CB_EV_BATTERY || type == CB_EV_POLARITY;
    return 0;
}

/* A port's bit in one of the sets port_tick visits. */
static inline void port_bit(uint64_t *bits, int c, int on)
{
    if (on)
        bits[c >> 6] |= 1ull << (c & 63);
    else
        bits[c >> 6] &= ~(1ull << (c & 63));
}

static inline void set_ringing(cb_sim_t *s, int c, int on)
{
    lv_set(s->ringing, c, on);
    port_bit(s->ring_bits, c, on);
}

/* One far-side signal takes effect: its level, and (report) the card event it raises. A lost change
 * (report 0) sets the level only: the engine reconciles its line from the level. */
static void apply_signal(cb_sim_t *s, const sim_sig_t *g, cb_event_t *ev, int *nev, int ev_max, int report)
{
    int c = g->chan;
    uint64_t t = g->tick;
    if (s->kind[c] == CB_CHAN_FXS) {
        int off = g->type == CB_EV_HOOK_OFF;
        if (off == lv_get(s->hook, c))
            return;
        lv_set(s->hook, c, (uint8_t) off);
        if (!off) {
            s->onhook_at[c] = t;
            if (lv_get(s->hook_rep, c))
                port_bit(s->hang_bits, c, 1);
            return;
        }
        if (lv_get(s->ringing, c)) {  /* ring trip */
            set_ringing(s, c, 0);
            if (s->ring_on[c]) {
                s->ring_on[c] = 0;
                far_seen(s, t, c, CB_EV_RING_OFF, 0);
            }
        }
        if (!lv_get(s->hook_rep, c)) {
            lv_set(s->hook_rep, c, 1);
            if (report)
                put_ev(s, ev, nev, ev_max, t, c, CB_EV_HOOK_OFF, 1, 0);
            return;
        }
        uint64_t on_ms = t - s->onhook_at[c];
        if (report && on_ms >= CB_SIM_FLASH_MIN_MS)
            put_ev(s, ev, nev, ev_max, t, c, CB_EV_FLASH, 0, (int32_t) on_ms);
        return;  /* shorter: contact bounce */
    }
    switch (g->type) {
    case CB_EV_RING_ON:
    case CB_EV_RING_OFF: {
        uint8_t on = g->type == CB_EV_RING_ON;
        if (lv_get(s->ringing, c) != on) {
            set_ringing(s, c, on);
            if (report)
                put_ev(s, ev, nev, ev_max, t, c, g->type, on, 0);
        }
        break;
    }
    case CB_EV_BATTERY:
        if (lv_get(s->battery, c) != (g->value != 0)) {
            lv_set(s->battery, c, g->value != 0);
            if (report)
                put_ev(s, ev, nev, ev_max, t, c, CB_EV_BATTERY, lv_get(s->battery, c), 0);
        }
        break;
    case CB_EV_POLARITY:
        if (lv_get(s->polarity, c) != (g->value != 0)) {
            lv_set(s->polarity, c, g->value != 0);
            if (report)
                put_ev(s, ev, nev, ev_max, t, c, CB_EV_POLARITY, lv_get(s->polarity, c), 0);
        }
        break;
    default:
        break;
    }
}

/* The level a change sets: hook, ringing, battery, polarity (a card kind a peer may send). */
static int pend_level(uint32_t type)
{
    switch (type) {
    case CB_EV_HOOK_OFF:
    case CB_EV_HOOK_ON:
        return 0;
    case CB_EV_RING_ON:
    case CB_EV_RING_OFF:
        return 1;
    case CB_EV_BATTERY:
        return 2;
    default:
        return 3;
    }
}

/* A peer's lost change on port chan: kept if it is the newest of its level (of one tick, the later
 * in the BLOCK's order wins, as for the changes that are queued). */
static void pend_note(cb_sim_t *s, int chan, uint32_t type, int32_t value, uint64_t tick)
{
    sim_pend_t *p = &s->pend[(size_t) chan * SIM_PEND_LEVELS + (size_t) pend_level(type)];
    if (p->set && p->tick > tick)
        return;
    if (!p->set)
        s->npend++;
    *p = (sim_pend_t) {.tick = tick, .value = value, .type = (uint16_t) type, .set = 1};
}

/* Set the levels of port c's lost changes noted for tick t (UINT64_MAX: all of them), no events. */
static void pend_apply(cb_sim_t *s, int c, uint64_t t)
{
    for (int l = 0; l < SIM_PEND_LEVELS; l++) {
        sim_pend_t *p = &s->pend[(size_t) c * SIM_PEND_LEVELS + (size_t) l];
        if (!p->set || (t != UINT64_MAX && p->tick != t))
            continue;
        p->set = 0;
        s->npend--;
        const sim_sig_t g = {p->tick, (uint16_t) c, p->type, p->value};
        apply_signal(s, &g, NULL, NULL, 0, 0);
    }
}

/* No signal on a span for the block's ticks: what a span held by a peer gets until its answer is
 * applied (a late or missing answer leaves it so). */
static void far_line_none(sim_span_t *sp, int ticks)
{
    sp->far_ticks = 0;          /* line_rx is not the in-process far end's now */
    memset(sp->line_rx, 0, (size_t) ticks * (size_t) sp->octets);
    memset(sp->rx_flags, SIM_LINE_NOSIG, (size_t) ticks);
}

/* A peer's line for one span, tick after tick (flags octet, then the line octets), into line_rx and
 * rx_flags; the cable between (the span's fault) still has its say: cut or los, no signal; ais, all
 * ones. Returns what follows the span's part of the BLOCK. */
static const uint8_t *far_line_in(sim_span_t *sp, const uint8_t *lp, int ticks)
{
    size_t oct = (size_t) sp->octets;
    sp->far_ticks = 0;
    for (int t = 0; t < ticks; t++, lp += 1 + oct) {
        uint8_t *dst = sp->line_rx + (size_t) t * oct;
        if ((lp[0] & FAR_LINE_NOSIG) || sp->fault == CB_FAULT_CUT || sp->fault == CB_FAULT_LOS) {
            sp->rx_flags[t] = SIM_LINE_NOSIG;
            memset(dst, 0, oct);
        } else {
            sp->rx_flags[t] = 0;
            if (sp->fault == CB_FAULT_AIS)
                memset(dst, 0xFF, oct);
            else
                memcpy(dst, lp + 1, oct);
        }
    }
    return lp;
}

/* Check and apply peer p's answer m (len octets after the length). Every field is checked
 * before anything is applied. CB_FAR_OK or the refusal reason. */
static int far_apply(cb_sim_t *s, int p, const uint8_t *m, uint32_t len, uint64_t tick0, int ticks, uint8_t *rx,
                     int *detail)
{
    const sim_peer_t *q = &s->peer[p];
    size_t per = (size_t) ticks * CB_TICK_SAMPLES;
    if (len < FAR_BLOCK_HEAD + 2U)
        return CB_FAR_BAD_LENGTH;
    if (m[0] != FAR_MSG_BLOCK) {
        *detail = m[0];
        return CB_FAR_BAD_TYPE;
    }
    if (rd32(m + 1) != q->seq) {
        *detail = (int32_t) rd32(m + 1);
        return CB_FAR_BAD_SEQUENCE;
    }
    if (rd64(m + 5) != tick0) {
        *detail = (int32_t) (int64_t) (rd64(m + 5) - tick0);
        return CB_FAR_BAD_TICK;
    }
    if ((int) rd16(m + 13) != ticks || (int) rd16(m + 15) != q->n || (int) rd16(m + 17) != q->nspan)
        return CB_FAR_BAD_LENGTH;
    size_t audio = (size_t) q->n * per + (size_t) q->line * (size_t) ticks;
    if ((size_t) len < FAR_BLOCK_HEAD + audio + 2)
        return CB_FAR_BAD_LENGTH;
    const uint8_t *ep = m + FAR_BLOCK_HEAD + audio;
    uint32_t nev = rd16(ep);
    if ((size_t) len != FAR_BLOCK_HEAD + audio + 2 + (size_t) nev * FAR_EVENT_SIZE) {
        *detail = (int32_t) nev;
        return CB_FAR_BAD_LENGTH;
    }
    if (nev > CB_SIM_FAR_MAX_EVENTS) {
        *detail = (int32_t) nev;
        return CB_FAR_BAD_COUNT;
    }
    for (uint32_t i = 0; i < nev; i++) {
        const uint8_t *e = ep + 2 + (size_t) i * FAR_EVENT_SIZE;
        uint32_t chan = rd16(e), type = rd16(e + 2);
        uint64_t tick = rd64(e + 8);
        *detail = (int32_t) i;
        if (chan >= (uint32_t) s->head.nchan || s->far_claimed[chan] != p + 1)
            return CB_FAR_BAD_EVENT;
        if (tick < tick0 || tick >= tick0 + (uint64_t) ticks)
            return CB_FAR_BAD_EVENT;
        if (!event_fits(s->kind[chan], type))
            return CB_FAR_BAD_EVENT;
    }
    *detail = 0;
    for (int i = 0; i < q->n; i++)
        memcpy(rx + (size_t) q->chan[i] * per, m + FAR_BLOCK_HEAD + (size_t) i * per, per);
    const uint8_t *lp = m + FAR_BLOCK_HEAD + (size_t) q->n * per;
    for (int i = 0; i < q->nspan; i++)
        lp = far_line_in(&s->span[q->span[i]], lp, ticks);
    for (uint32_t i = 0; i < nev; i++) {
        const uint8_t *e = ep + 2 + (size_t) i * FAR_EVENT_SIZE;
        uint32_t type = rd16(e + 2);  /* checked above: a card kind */
        if (s->nsig >= SIM_SIGQ) {
            /* Lost as an event, not as a level: the line is left as the peer last set it. */
            s->stats.far_sig_dropped++;
            s->stats.far_sig_dropped_by[card_slot((int) type)]++;
            pend_note(s, (int) rd16(e), type, (int32_t) rd32(e + 4), rd64(e + 8));
            continue;
        }
        s->sigq[s->nsig++] = (sim_sig_t) {rd64(e + 8), (uint16_t) rd16(e), (uint16_t) type, (int32_t) rd32(e + 4)};
    }
    return CB_FAR_OK;
}

/* A late answer to an earlier block (realtime), skipped: its octets are past use, but its line
 * changes, if the answer checks out as far_apply would check it for its own block, still set their
 * lines' levels at once (each counted as far_late_events, by kind), so the engine reconciles them.
 * One that does not check out is skipped whole, as before. */
static void far_late_levels(cb_sim_t *s, int p, const uint8_t *m, uint32_t len, uint64_t tick0)
{
    const sim_peer_t *q = &s->peer[p];
    if (len < FAR_BLOCK_HEAD + 2U)
        return;
    uint64_t first = rd64(m + 5);
    uint32_t ticks = rd16(m + 13);
    if (ticks < 1 || ticks > CB_MAX_BLOCK_TICKS || (int) rd16(m + 15) != q->n || (int) rd16(m + 17) != q->nspan
        || first > tick0 || tick0 - first < ticks)
        return;
    size_t audio = (size_t) q->n * ticks * CB_TICK_SAMPLES + (size_t) q->line * ticks;
    if ((size_t) len < FAR_BLOCK_HEAD + audio + 2)
        return;
    const uint8_t *ep = m + FAR_BLOCK_HEAD + audio;
    uint32_t nev = rd16(ep);
    if (nev > CB_SIM_FAR_MAX_EVENTS || (size_t) len != FAR_BLOCK_HEAD + audio + 2 + (size_t) nev * FAR_EVENT_SIZE)
        return;
    for (uint32_t i = 0; i < nev; i++) {
        const uint8_t *e = ep + 2 + (size_t) i * FAR_EVENT_SIZE;
        uint32_t chan = rd16(e), type = rd16(e + 2);
        uint64_t tick = rd64(e + 8);
        if (chan >= (uint32_t) s->head.nchan || s->far_claimed[chan] != p + 1 || tick < first
            || tick >= first + ticks || !event_fits(s->kind[chan], type))
            return;
    }
    for (uint32_t i = 0; i < nev; i++) {
        const uint8_t *e = ep + 2 + (size_t) i * FAR_EVENT_SIZE;
        uint32_t type = rd16(e + 2);
        s->stats.far_late_events++;
        s->stats.far_late_events_by[card_slot((int) type)]++;
        pend_note(s, (int) rd16(e), type, (int32_t) rd32(e + 4), rd64(e + 8));
    }
    for (int i = 0; i < q->n; i++)
        if (q->chan[i] < s->nports)
            pend_apply(s, q->chan[i], UINT64_MAX);
}

typedef struct far_block {
    uint64_t tick0;
    int ticks;
    uint8_t *rx;
    cb_event_t *ev;
    int *nev;
    int ev_max;
} far_block_t;

/* Take in what peer p has sent: skip late answers to earlier blocks (realtime), apply this
 * block's, refuse anything else. Returns 1 when the peer needs no more waiting this block. */
static int far_service(cb_sim_t *s, int p, const far_block_t *b)
{
    sim_peer_t *q = &s->peer[p];
    for (;;) {
        int reason = CB_FAR_OK, detail = 0;
        int r = far_read(q, &reason, &detail);
        if (r < 0) {
            cb_sim_far_close(s, p, b->ev, b->nev, b->ev_max, reason, detail);
            return 1;
        }
        if (r == 0)
            return 0;
        uint32_t len = rd32(q->in);
        const uint8_t *m = q->in + FAR_LEN_SIZE;
        q->in_len = 0;  /* taken: the next read starts a new message */
        if (s->clock == CB_CLOCK_REALTIME && len >= 5 && m[0] == FAR_MSG_BLOCK
            && (int32_t) (rd32(m + 1) - q->seq) < 0) {
            q->info.skipped++;
            s->stats.far_skipped++;
            far_late_levels(s, p, m, len, b->tick0);
            continue;  /* a late answer to an earlier block */
        }
        reason = far_apply(s, p, m, len, b->tick0, b->ticks, b->rx, &detail);
        if (reason != CB_FAR_OK) {
            cb_sim_far_close(s, p, b->ev, b->nev, b->ev_max, reason, detail);
            return 1;
        }
        q->answered = 1;
        return 1;
    }
}

/* Is peer p still owed an answer this block? */
static int far_waiting(const cb_sim_t *s, int p)
{
    const sim_peer_t *q = &s->peer[p];
    return q->fd >= 0 && q->active && q->sent && !q->answered;
}

/* Virtual clock: wait until peer p took its whole block, up to the deadline. 1 sent, 0 not, -errno. */
static int far_flush_until(sim_peer_t *q, int64_t deadline)
{
    for (;;) {
        int rc = far_flush(q);
        if (rc != 0)
            return rc;
        int64_t left = deadline - now_ns();
        if (left <= 0)
            return 0;
        struct pollfd pf = {q->fd, POLLOUT, 0};
        struct timespec ts = {(time_t) (left / 1000000000LL), (long) (left % 1000000000LL)};
        if (ppoll(&pf, 1, &ts, NULL) < 0 && errno != EINTR)
            return -errno;
    }
}

/* Exchange one block with every peer: hand each its block, then wait for the answers until
 * one deadline. A peer's channels carry idle octets unless its answer came in time. */
static void far_exchange(cb_sim_t *s, uint64_t tick0, int ticks, const uint8_t *tx, uint8_t *rx, cb_event_t *ev,
                         int *nev, int ev_max)
{
    const far_block_t b = {tick0, ticks, rx, ev, nev, ev_max};
    size_t per = (size_t) ticks * CB_TICK_SAMPLES;
    int virt = s->clock == CB_CLOCK_VIRTUAL;
    int64_t deadline = virt ? now_ns() + (int64_t) s->far_timeout_ms * 1000000LL : 0;
    int stalled[CB_SIM_MAX_PEERS] = {0};

    for (int p = 0; p < CB_SIM_MAX_PEERS; p++) {
        sim_peer_t *q = &s->peer[p];
        if (q->fd < 0)
            continue;
        if (q->detach) {
            cb_sim_far_close(s, p, ev, nev, ev_max, CB_FAR_OK, 0);
            continue;
        }
        if (!q->active) {
            if (tick0 < q->start_tick)
                continue;
            if (tick0 > q->start_tick) {
                cb_sim_far_close(s, p, ev, nev, ev_max, CB_FAR_START_MISSED, clamp_detail(tick0 - q->start_tick));
                continue;
            }
            q->active = 1;
            q->info.active = 1;
            for (int i = 0; i < q->nspan; i++)
                s->span[q->span[i]].peer = p + 1;  /* the in-process far end lets go of it */
        }
        for (int i = 0; i < q->n; i++)
            memset(rx + (size_t) q->chan[i] * per, s->idle, per);
        for (int i = 0; i < q->nspan; i++)
            far_line_none(&s->span[q->span[i]], ticks);
        q->answered = 0;
        q->sent = 0;
        int rc = far_flush(q);  /* what is left of an earlier block */
        if (rc == 0) {
            /* The peer has not read its last block: this one is not handed over. */
            stalled[p] = 1;
            q->info.stalled++;
            s->stats.far_stalled++;
            continue;
        }
        if (rc > 0) {
            far_build(s, p, tick0, ticks, tx);
            rc = virt ? far_flush_until(q, deadline) : far_flush(q);
        }
        if (rc == -EPIPE || rc == -ECONNRESET) {
            cb_sim_far_close(s, p, ev, nev, ev_max, CB_FAR_OK, 0);  /* the peer left */
            continue;
        }
        if (rc < 0) {
            cb_sim_far_close(s, p, ev, nev, ev_max, CB_FAR_IO, -rc);
            continue;
        }
        if (rc == 0 && virt) {
            cb_sim_far_close(s, p, ev, nev, ev_max, CB_FAR_TIMEOUT, 0);  /* did not read for the whole limit */
            continue;
        }
        q->sent = 1;  /* realtime: what did not fit yet goes while we wait */
    }

    /* Realtime: half a block for every answer, from now. */
    if (!virt)
        deadline = now_ns() + (int64_t) ticks * 500000LL;
    for (;;) {
        struct pollfd pf[CB_SIM_MAX_PEERS];
        int who[CB_SIM_MAX_PEERS];
        int np = 0;
        for (int p = 0; p < CB_SIM_MAX_PEERS; p++) {
            if (!far_waiting(s, p) || far_service(s, p, &b))
                continue;
            sim_peer_t *q = &s->peer[p];
            pf[np] = (struct pollfd) {q->fd, (short) (POLLIN | (q->out_off < q->out_len ? POLLOUT : 0)), 0};
            who[np++] = p;
        }
        if (np == 0)
            break;
        int64_t left = deadline - now_ns();
        if (left <= 0)
            break;
        struct timespec ts = {(time_t) (left / 1000000000LL), (long) (left % 1000000000LL)};
        int r = ppoll(pf, (nfds_t) np, &ts, NULL);
        if (r < 0 && errno != EINTR)
            break;
        for (int i = 0; i < np && r > 0; i++) {
            if (!(pf[i].revents & POLLOUT))
                continue;
            int rc = far_flush(&s->peer[who[i]]);
            if (rc < 0)
                cb_sim_far_close(s, who[i], ev, nev, ev_max, rc == -EPIPE || rc == -ECONNRESET ? CB_FAR_OK : CB_FAR_IO,
                                 -rc);
        }
    }

    for (int p = 0; p < CB_SIM_MAX_PEERS; p++) {
        sim_peer_t *q = &s->peer[p];
        if (q->fd < 0 || !q->active)
            continue;
        if (q->answered) {
            q->info.answered++;
            q->info.late_run = 0;
        } else if (virt) {
            cb_sim_far_close(s, p, ev, nev, ev_max, CB_FAR_TIMEOUT, 0);
            continue;
        } else {
            q->info.late++;
            q->info.late_run++;
            s->stats.far_late++;
            put_ev(s, ev, nev, ev_max, tick0, q->info.first_chan, CB_EV_FAR_LATE, clamp_detail(q->info.late), 0);
            if (q->info.late_run >= CB_SIM_FAR_DEAD_BLOCKS) {
                cb_sim_far_close(s, p, ev, nev, ev_max, stalled[p] ? CB_FAR_STALLED : CB_FAR_LATE_RUN,
                                 (int32_t) q->info.late_run);
                continue;
            }
        }
        q->seq++;
        q->info.seq = q->seq;
    }
}
/* Analog line state for one tick. */
static void port_tick(cb_sim_t *s, uint64_t t, cb_event_t *ev, int *nev, int ev_max)
{
    /* On hook for the whole flash window: a hang-up (before this tick's changes). A port off hook
       again (a flash) or already reported on hook leaves the set. */
    for (int w = 0; w < s->port_words; w++)
        for (uint64_t b = s->hang_bits[w]; b != 0; b &= b - 1) {
            const int c = 64 * w + __builtin_ctzll(b);
            if (!lv_get(s->hook_rep, c) || lv_get(s->hook, c)) {
                port_bit(s->hang_bits, c, 0);
            } else if (t - s->onhook_at[c] >= CB_SIM_FLASH_MAX_MS) {
                lv_set(s->hook_rep, c, 0);
                port_bit(s->hang_bits, c, 0);
                put_ev(s, ev, nev, ev_max, s->onhook_at[c], c, CB_EV_HOOK_ON, 0, (int32_t) (t - s->onhook_at[c]));
            }
        }
    /* This tick's signals in the order they were queued; the later ones keep their order. */
    int kept = 0;
    for (int i = 0; i < s->nsig; i++) {
        const sim_sig_t g = s->sigq[i];
        if (g.tick == t) {
            apply_signal(s, &g, ev, nev, ev_max, 1);
        } else if (g.tick > t) {  /* (earlier cannot happen: signals are checked on entry) */
            if (kept != i)
                s->sigq[kept] = g;
            kept++;
        }
    }
    s->nsig = kept;
    /* The levels of this tick's lost changes, after the queued ones (which came first in the BLOCK). */
    if (s->npend > 0)
        for (int c = 0; c < s->nports; c++)
            pend_apply(s, c, t);
    /* Ring cadences, flashes and ring trips: only the ports ringing or flashing have any. */
    for (int w = 0; w < s->port_words; w++)
        for (uint64_t b = s->ring_bits[w] | s->flash_bits[w]; b != 0; b &= b - 1) {
            const int c = 64 * w + __builtin_ctzll(b);
            if (s->kind[c] == CB_CHAN_FXS) {
                if (lv_get(s->ringing, c)) {
                    if (s->cad_left[c] <= 0) {
                        int guard = 0;
                        do {
                            s->cad_idx[c] = (s->cad_idx[c] + 1) & 3;
                            s->cad_left[c] = s->cadence[c][s->cad_idx[c]];
                        } while (s->cad_left[c] <= 0 && ++guard < 4);
                        uint8_t on = (s->cad_idx[c] & 1) == 0;
                        if (on != s->ring_on[c]) {
                            s->ring_on[c] = on;
                            far_seen(s, t, c, on ? CB_EV_RING_ON : CB_EV_RING_OFF, on);
                        }
                    }
                    s->cad_left[c]--;
                }
            } else if (s->flash_left[c] > 0) {
                if (--s->flash_left[c] == 0) {
                    port_bit(s->flash_bits, c, 0);
                    lv_set(s->hook, c, 1);
                    far_seen(s, t, c, CB_EV_HOOK_OFF, 1);
                }
            }
            if (s->kind[c] == CB_CHAN_FXO && lv_get(s->hook, c) && lv_get(s->ringing, c)) {
                set_ringing(s, c, 0);  /* ring trip: a line off hook is not rung, so the next ring is a new one */
                put_ev(s, ev, nev, ev_max, t, c, CB_EV_RING_OFF, 0, 0);
            }
        }
}

static int sim_exchange(cb_card_t *card, uint64_t tick0, int ticks, const uint8_t *tx, uint8_t *rx,
                        cb_event_t *ev, int ev_max)
{
    return cb_sim_exchange_fill((cb_sim_t *) card, tick0, ticks, tx, card->tx_fill, rx, ev, ev_max);
}

int cb_sim_exchange_fill(cb_sim_t *s, uint64_t tick0, int ticks, const uint8_t *tx, const uint8_t *fill,
                         uint8_t *rx, cb_event_t *ev, int ev_max)
{
    /* One bound: the far-end buffers are sized for CB_MAX_BLOCK_TICKS (sim.c). */
    if (ticks < 1 || ticks > CB_MAX_BLOCK_TICKS || tick0 != s->tick)
        return CB_ERR_INVALID;
    int nev = 0;
    size_t per = (size_t) ticks * CB_TICK_SAMPLES;

    /* Ports: card -> far side (in process), and far side -> card. Spans go through their lines. */
    for (int c = 0; c < s->nports; c++) {
        const uint8_t *t = tx + (size_t) c * per;
        uint8_t *r = rx + (size_t) c * per;
        if (s->listen[c]) {
            /* A full FIFO loses its oldest octets, counted. */
            sim_fifo_t *f = &s->to_far[c];
            uint32_t used = f->head - f->tail;
            if (used + (uint32_t) per > CB_SIM_FAR_FIFO) {
                uint32_t over = used + (uint32_t) per - CB_SIM_FAR_FIFO;
                f->tail += over;
                s->stats.far_fifo_overrun += over;
            }
            sim_fifo_put(f, t, (uint32_t) per);
        }
        sim_fifo_t *g = &s->to_card[c];
        uint32_t have = g->head - g->tail;
        uint32_t take = have < (uint32_t) per ? have : (uint32_t) per;
        sim_fifo_get(g, r, take);
        if (take < per)
            memset(r + take, s->idle, per - take);
    }
    uint64_t lost_before = s->stats.card_ev_dropped;
    sim_span_tx(s, ticks, tx, fill);
    if (s->stats.far_peers > 0)
        far_exchange(s, tick0, ticks, tx, rx, ev, &nev, ev_max);
    sim_span_far(s, tick0, ticks);
    sim_span_rx(s, tick0, ticks, rx, ev, &nev, ev_max);
    sim_span_publish(s);
    for (int t = 0; t < ticks; t++)
        port_tick(s, tick0 + (uint64_t) t, ev, &nev, ev_max);
    nev = cb_sim_drop_faults(s, ev, nev);
    s->tick = tick0 + (uint64_t) ticks;
    s->blocks_done++;
    s->stats.blocks++;
    /* The events raised: those in ev, and those that did not fit (the HAL contract). */
    uint64_t lost = s->stats.card_ev_dropped - lost_before;
    return lost > (uint64_t) (INT_MAX - nev) ? INT_MAX : nev + (int) lost;
}

/* The slot of the peer whose claim holds span i (waiting for its first block or not), or -1. */
static int far_span_holder(const cb_sim_t *s, int i)
{
    for (int p = 0; p < CB_SIM_MAX_PEERS; p++) {
        const sim_peer_t *q = &s->peer[p];
        if (q->fd < 0)
            continue;
        for (int j = 0; j < q->nspan; j++)
            if (q->span[j] == i)
                return p;
    }
    return -1;
}

/* The slot of the peer holding channel c (an analog port it claimed, or a timeslot of a span it
 * holds), or -1. */
static int far_holder(const cb_sim_t *s, int c)
{
    if (c < 0 || c >= s->head.nchan)
        return -1;
    if (c < s->nports)
        return s->far_claimed[c] ? s->far_claimed[c] - 1 : -1;
    for (int i = 0; i < s->nspans; i++)
        if (c >= s->span[i].first_chan && c < s->span[i].first_chan + s->span[i].nts)
            return far_span_holder(s, i);
    return -1;
}

/* A peer that said HELLO: the card owns its socket from here on (closed if refused). Its claim:
 * analog port channels, and spans claimed whole (CB_SIM_FAR_SPAN | span), each in the peer's order. */
static int far_attach(cb_sim_t *s, const cb_cmd_t *cmd)
{
    const uint16_t *claim = (const uint16_t *) (uintptr_t) cmd->ptr;
    int fd = cmd->a, n = cmd->b;
    if (fd < 0)
        return CB_ERR_INVALID;
    int slot = -1;
    for (int p = 0; p < CB_SIM_MAX_PEERS && slot < 0; p++)
        if (s->peer[p].fd < 0)
            slot = p;
    int rc = CB_OK;
    if (n < 1 || n > s->nports + s->nspans || claim == NULL)
        rc = CB_ERR_INVALID;
    else if (slot < 0)
        rc = CB_ERR_FULL;
    sim_peer_t *q = slot >= 0 ? &s->peer[slot] : NULL;
    int nchan = 0, nspan = 0;
    uint8_t spans[CB_SIM_MAX_SPANS];
    for (int i = 0; rc == CB_OK && i < n; i++) {
        uint32_t e = claim[i];
        if (e & CB_SIM_FAR_SPAN) {
            uint32_t si = e & ~(uint32_t) CB_SIM_FAR_SPAN;
            int twice = 0;
            for (int j = 0; j < nspan && si < (uint32_t) s->nspans; j++)
                twice |= spans[j] == si;
            /* no such span, held by another peer, or twice in this claim */
            if (si >= (uint32_t) s->nspans || twice || far_span_holder(s, (int) si) >= 0)
                rc = CB_ERR_INVALID;
            else
                spans[nspan++] = (uint8_t) si;
        } else if (e >= (uint32_t) s->nports || s->far_claimed[e]) {
            rc = CB_ERR_INVALID;  /* not a port (a span's timeslots are claimed with the span), held, or twice */
        } else {
            s->far_claimed[e] = (uint8_t) (slot + 1);
            q->chan[nchan++] = (uint16_t) e;
        }
    }
    if (rc != CB_OK) {
        for (int j = 0; j < nchan; j++)
            s->far_claimed[q->chan[j]] = 0;
        close(fd);
        return rc;
    }
    q->n = nchan;
    q->nspan = nspan;
    q->line = 0;
    for (int j = 0; j < nspan; j++) {
        q->span[j] = spans[j];
        q->line += 1U + (uint32_t) s->span[spans[j]].octets;
    }
    q->fd = fd;
    q->active = 0;
    q->detach = 0;
    q->start_tick = (uint64_t) (uint32_t) cmd->c | (uint64_t) (uint32_t) cmd->d << 32;
    q->seq = 0;
    q->in_len = 0;
    q->out_len = q->out_off = 0;
    q->ev_from = s->farq_head;  /* changes from now on (from its first block's tick) are its */
    int first = nchan > 0 ? q->chan[0] : s->span[spans[0]].first_chan;
    q->info = (cb_sim_peer_info_t) {.first_chan = first, .nchan = nchan, .start_tick = q->start_tick};
    s->stats.far_peers++;
    s->stats.far_attached++;
    return CB_OK;
}

static int sim_command(cb_card_t *card, const cb_cmd_t *cmd)
{
    cb_sim_t *s = (cb_sim_t *) card;
    int c = cmd->chan;
    if (cmd->op == CB_CMD_FAR_ATTACH)
        return far_attach(s, cmd);
    if (cmd->op == CB_CMD_FAR_DETACH) {
        int p = far_holder(s, c);
        if (p < 0)
            return CB_ERR_INVALID;
        s->peer[p].detach = 1;  /* goes at the next block, with its FAR_DOWN */
        return CB_OK;
    }
    if (cmd->op == CB_CMD_CAS_TX)
        return sim_abcd_set(card, c, cmd->a);
    if (c < 0 || c >= s->nports)
        return CB_ERR_INVALID;
    int kind = s->kind[c];
    uint64_t t = s->tick;
    switch (cmd->op) {
    case CB_CMD_RING:
        if (kind != CB_CHAN_FXS || cmd->a <= 0 || cmd->b < 0 || cmd->c < 0 || cmd->d < 0)
            return CB_ERR_INVALID;
        if (lv_get(s->hook, c))
            return CB_ERR_STATE;  /* the phone is off hook */
        s->cadence[c][0] = cmd->a;
        s->cadence[c][1] = cmd->b;
        s->cadence[c][2] = cmd->c;
        s->cadence[c][3] = cmd->d;
        set_ringing(s, c, 1);
        s->cad_idx[c] = 3;  /* the next tick enters segment 0 */
        s->cad_left[c] = 0;
        return CB_OK;
    case CB_CMD_RING_STOP:
        if (kind != CB_CHAN_FXS)
            return CB_ERR_INVALID;
        set_ringing(s, c, 0);
        if (s->ring_on[c]) {
            s->ring_on[c] = 0;
            far_seen(s, t, c, CB_EV_RING_OFF, 0);
        }
        return CB_OK;
    case CB_CMD_BATTERY:
        if (kind != CB_CHAN_FXS)
            return CB_ERR_INVALID;
        if (lv_get(s->battery, c) != (cmd->a != 0)) {
            lv_set(s->battery, c, cmd->a != 0);
            far_seen(s, t, c, CB_EV_BATTERY, lv_get(s->battery, c));
        }
        return CB_OK;
    case CB_CMD_POLARITY:
        if (kind != CB_CHAN_FXS)
            return CB_ERR_INVALID;
        if (lv_get(s->polarity, c) != (cmd->a != 0)) {
            lv_set(s->polarity, c, cmd->a != 0);
            far_seen(s, t, c, CB_EV_POLARITY, lv_get(s->polarity, c));
        }
        return CB_OK;
    case CB_CMD_HOOK:
        if (kind != CB_CHAN_FXO)
            return CB_ERR_INVALID;
        if (lv_get(s->hook, c) != (cmd->a != 0)) {
            lv_set(s->hook, c, cmd->a != 0);
            s->flash_left[c] = 0;
            port_bit(s->flash_bits, c, 0);
            far_seen(s, t, c, lv_get(s->hook, c) ? CB_EV_HOOK_OFF : CB_EV_HOOK_ON, lv_get(s->hook, c));
        }
        return CB_OK;
    case CB_CMD_FLASH:
        if (kind != CB_CHAN_FXO || cmd->a <= 0 || cmd->a > 5000)
            return CB_ERR_INVALID;
        if (!lv_get(s->hook, c))
            return CB_ERR_STATE;
        lv_set(s->hook, c, 0);
        s->flash_left[c] = cmd->a + 1;  /* counted down from this tick on */
        port_bit(s->flash_bits, c, 1);
        far_seen(s, t, c, CB_EV_HOOK_ON, 0);
        return CB_OK;
    default:
        return CB_ERR_INVALID;
    }
}

static void sim_stop(cb_card_t *card)
{
    cb_sim_t *s = (cb_sim_t *) card;
    for (int p = 0; p < CB_SIM_MAX_PEERS; p++) {
        cb_event_t dummy[2];
        int n = 0;
        cb_sim_far_close(s, p, dummy, &n, 2, CB_FAR_OK, 0);  /* stopping: nobody takes these events */
    }
}

static int sim_line_levels(cb_card_t *card, uint8_t *out, int n)
{
    return cb_sim_line_levels((const cb_sim_t *) card, out, n);
}

/* What the sim card has: the far end, line levels and framed spans. */
const cb_card_ops_t cb_sim_ops = {
    .wait = sim_wait,
    .exchange = sim_exchange,
    .command = sim_command,
    .stop = sim_stop,
    .line_levels = sim_line_levels,
    .span_config = sim_span_config,
    .span_status = sim_span_status,
    .sync_source = sim_sync_source,
    .abcd_set = sim_abcd_set,
    .abcd_get = sim_abcd_get,
    .hdlc_send = sim_hdlc_send,
    .hdlc_recv = sim_hdlc_recv,
};

int cb_sim_drop_faults(cb_sim_t *s, cb_event_t *ev, int nev)
{
    int out = 0;
    for (int i = 0; i < nev; i++) {
        _Atomic uint8_t *drop = &s->drop_next[ev[i].chan];
        uint8_t want = atomic_load_explicit(drop, memory_order_relaxed);
        if (want != 0 && want == ev[i].type
            && atomic_compare_exchange_strong_explicit(drop, &want, 0, memory_order_relaxed, memory_order_relaxed))
            continue;
        ev[out++] = ev[i];
    }
    return out;
}
