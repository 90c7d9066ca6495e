/*
 * The sim card's per-block path: wait for the block's deadline, exchange one
 * block of k ticks with the far side, apply card commands. No allocation; the
 * only system calls are the clock sleep and the far-end socket I/O, which is
 * this card's line I/O.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "sim_priv.h"

#define VIRTUAL_PEER_TIMEOUT_MS 10000  /* a lockstep peer silent this long is dropped */
#define FAR_CLOSED (-1)                 /* the peer closed between messages: a clean goodbye */

static void put_ev(cb_event_t *ev, int *nev, int ev_max, uint64_t tick, int chan, int type,
                   int32_t value, int32_t extra)
{
    if (*nev >= ev_max)
        return;
    ev[*nev] = (cb_event_t) {.tick = tick, .chan = (uint16_t) chan, .type = (uint16_t) type, .value = value,
                             .extra = extra};
    (*nev)++;
}

/* A line change the far side sees (in process: cb_sim_far_poll; peer: next block). */
static void far_seen(cb_sim_t *s, uint64_t tick, int chan, int type, int value)
{
    if (s->farq_head - s->farq_tail >= SIM_FARQ)
        s->farq_tail++;  /* keep the newest */
    s->farq[s->farq_head++ % SIM_FARQ] = (cb_event_t) {.tick = tick, .chan = (uint16_t) chan,
                                                       .type = (uint16_t) type, .value = value};
}

static int64_t ts_ns(const struct timespec *t)
{
    return (int64_t) t->tv_sec * 1000000000LL + t->tv_nsec;
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
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t late = ts_ns(&now) - due;
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

void cb_sim_far_close(cb_sim_t *s, cb_event_t *ev, int *nev, int ev_max, int reason, int detail)
{
    if (s->far_fd < 0)
        return;
    close(s->far_fd);
    s->far_fd = -1;
    for (int i = 0; i < s->far_n; i++)
        s->far_claimed[s->far_chan[i]] = 0;
    s->far_n = 0;
    s->far_in_len = 0;
    if (reason != CB_FAR_OK) {
        s->stats.far_refused++;
        put_ev(ev, nev, ev_max, s->tick, 0, CB_EV_FAR_ERROR, reason, detail);
    }
    put_ev(ev, nev, ev_max, s->tick, 0, CB_EV_FAR_DOWN, reason, 0);
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                struct pollfd pf = {fd, POLLOUT, 0};
                poll(&pf, 1, 100);
                continue;
            }
            return -errno;
        }
        p += w;
        n -= (size_t) w;
    }
    return 0;
}

/* Size of the peer's answer to a block of `ticks` with `nev` events. */
static uint32_t block_size(const cb_sim_t *s, int ticks, uint32_t nev)
{
    return (uint32_t) (FAR_BLOCK_HEAD + (uint32_t) s->far_n * (uint32_t) ticks * CB_TICK_SAMPLES + 2
                       + nev * 16U);
}

/* Send our block: tx octets of the claimed channels and the far-visible changes
 * since the last block. */
static int far_send(cb_sim_t *s, uint64_t tick0, int ticks, const uint8_t *tx, uint64_t *far_from)
{
    size_t per = (size_t) ticks * CB_TICK_SAMPLES;
    uint8_t *p = s->far_buf + 4;
    p[0] = FAR_MSG_BLOCK;
    be32(p + 1, s->far_seq);
    be64(p + 5, tick0);
    be16(p + 13, (uint32_t) ticks);
    be16(p + 15, (uint32_t) s->far_n);
    p += FAR_BLOCK_HEAD;
    for (int i = 0; i < s->far_n; i++) {
        memcpy(p, tx + (size_t) s->far_chan[i] * per, per);
        p += per;
    }
    uint8_t *count = p;
    p += 2;
    uint32_t nev = 0;
    for (uint64_t q = *far_from; q != s->farq_head && nev < 256; q++) {
        const cb_event_t *e = &s->farq[q % SIM_FARQ];
        if (!s->far_claimed[e->chan])
            continue;
        be16(p, e->chan);
        be16(p + 2, e->type);
        be32(p + 4, (uint32_t) e->value);
        be64(p + 8, e->tick);
        p += 16;
        nev++;
    }
    *far_from = s->farq_head;
    be16(count, nev);
    uint32_t len = (uint32_t) (p - (s->far_buf + 4));
    be32(s->far_buf, len);
    return write_all(s->far_fd, s->far_buf, len + 4U);
}

/* Read n octets, waiting at most timeout_us for each chunk (-1: for ever). */
static int read_exact(int fd, uint8_t *p, size_t n, int64_t timeout_us)
{
    const size_t want = n;
    while (n > 0) {
        struct pollfd pf = {fd, POLLIN, 0};
        struct timespec ts = {(time_t) (timeout_us / 1000000), (long) (timeout_us % 1000000) * 1000L};
        int r = ppoll(&pf, 1, timeout_us < 0 ? NULL : &ts, NULL);
        if (r == 0)
            return CB_FAR_SHORT;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return CB_FAR_IO;
        }
        ssize_t got = read(fd, p, n);
        if (got == 0)
            return n == want ? FAR_CLOSED : CB_FAR_SHORT;
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            if (errno == ECONNRESET && n == want)
                return FAR_CLOSED;  /* the peer left between messages */
            return CB_FAR_IO;
        }
        p += got;
        n -= (size_t) got;
    }
    return CB_FAR_OK;
}

/* Check and apply the peer's answer in s->far_in (length len). */
static int far_apply(cb_sim_t *s, uint64_t tick0, int ticks, uint32_t len, uint8_t *rx, int *detail)
{
    const uint8_t *p = s->far_in;
    size_t per = (size_t) ticks * CB_TICK_SAMPLES;
    if (len < FAR_BLOCK_HEAD + 2)
        return CB_FAR_BAD_LENGTH;
    if (p[0] != FAR_MSG_BLOCK) {
        *detail = p[0];
        return CB_FAR_BAD_TYPE;
    }
    if (rd32(p + 1) != s->far_seq) {
        *detail = (int) rd32(p + 1);
        return CB_FAR_BAD_SEQUENCE;
    }
    if (rd64(p + 5) != tick0) {
        *detail = (int) (rd64(p + 5) - tick0);
        return CB_FAR_BAD_TICK;
    }
    if ((int) rd16(p + 13) != ticks || (int) rd16(p + 15) != s->far_n)
        return CB_FAR_BAD_LENGTH;
    const uint8_t *ep = p + FAR_BLOCK_HEAD + (size_t) s->far_n * per;
    if (ep + 2 > p + len)
        return CB_FAR_BAD_LENGTH;
    uint32_t nev = rd16(ep);
    if (len != block_size(s, ticks, nev))
        return CB_FAR_BAD_LENGTH;
    /* Validate every event before applying anything. */
    for (uint32_t i = 0; i < nev; i++) {
        const uint8_t *e = ep + 2 + i * 16U;
        uint32_t chan = rd16(e), type = rd16(e + 2);
        uint64_t tick = rd64(e + 8);
        *detail = (int) i;
        if (chan >= (uint32_t) s->head.nchan || !s->far_claimed[chan])
            return CB_FAR_BAD_EVENT;
        if (tick < tick0 || tick >= tick0 + (uint64_t) ticks)
            return CB_FAR_BAD_EVENT;
        int k = s->kind[chan];
        int ok = k == CB_CHAN_FXS ? (type == CB_EV_HOOK_OFF || type == CB_EV_HOOK_ON)
                 : k == CB_CHAN_FXO ? (type == CB_EV_RING_ON || type == CB_EV_RING_OFF
                                       || type == CB_EV_BATTERY || type == CB_EV_POLARITY)
                                    : 0;
        if (!ok)
            return CB_FAR_BAD_EVENT;
    }
    *detail = 0;
    const uint8_t *a = p + FAR_BLOCK_HEAD;
    for (int i = 0; i < s->far_n; i++)
        memcpy(rx + (size_t) s->far_chan[i] * per, a + (size_t) i * per, per);
    for (uint32_t i = 0; i < nev && s->nsig < SIM_SIGQ; i++) {
        const uint8_t *e = ep + 2 + i * 16U;
        s->sigq[s->nsig++] = (sim_sig_t) {rd64(e + 8), (uint16_t) rd16(e), (uint16_t) rd16(e + 2),
                                          (int32_t) rd32(e + 4)};
    }
    return CB_FAR_OK;
}

/* Lockstep (virtual) or deadline-bound (realtime) exchange with the peer. */
static void far_exchange(cb_sim_t *s, uint64_t tick0, int ticks, const uint8_t *tx, uint8_t *rx,
                         uint64_t *far_from, cb_event_t *ev, int *nev, int ev_max)
{
    int rc = far_send(s, tick0, ticks, tx, far_from);
    if (rc == -EPIPE || rc == -ECONNRESET) {
        cb_sim_far_close(s, ev, nev, ev_max, CB_FAR_OK, 0);  /* the peer left */
        return;
    }
    if (rc < 0) {
        cb_sim_far_close(s, ev, nev, ev_max, CB_FAR_IO, -rc);
        return;
    }
    int detail = 0;
    /* Virtual: lockstep, the peer has all the time it needs (up to a dead-peer limit).
     * Realtime: the answer must come within half a block; older (late) answers are skipped. */
    int64_t timeout = s->clock == CB_CLOCK_VIRTUAL ? (int64_t) VIRTUAL_PEER_TIMEOUT_MS * 1000
                                                   : (int64_t) ticks * 500;
    for (;;) {
        uint8_t lenb[4];
        int r = read_exact(s->far_fd, lenb, 4, timeout);
        if (r == CB_FAR_SHORT && s->clock == CB_CLOCK_REALTIME) {
            struct pollfd pf = {s->far_fd, POLLIN, 0};
            if (poll(&pf, 1, 0) == 0 || !(pf.revents & (POLLHUP | POLLERR))) {
                s->stats.far_late++;
                put_ev(ev, nev, ev_max, tick0, 0, CB_EV_FAR_LATE, (int32_t) s->stats.far_late, 0);
                s->far_seq++;
                return;  /* idle audio stays in rx */
            }
        }
        if (r == FAR_CLOSED) {
            cb_sim_far_close(s, ev, nev, ev_max, CB_FAR_OK, 0);
            return;
        }
        if (r != CB_FAR_OK) {
            cb_sim_far_close(s, ev, nev, ev_max, r, errno);
            return;
        }
        uint32_t len = rd32(lenb);
        if (len == 0 || len > s->far_buf_size) {
            cb_sim_far_close(s, ev, nev, ev_max, CB_FAR_BAD_LENGTH, (int) len);
            return;
        }
        r = read_exact(s->far_fd, s->far_in, len, s->clock == CB_CLOCK_VIRTUAL ? timeout : 50000);
        if (r == FAR_CLOSED)
            r = CB_FAR_SHORT;
        if (r != CB_FAR_OK) {
            cb_sim_far_close(s, ev, nev, ev_max, r, errno);
            return;
        }
        if (s->clock == CB_CLOCK_REALTIME && len >= 5 && s->far_in[0] == FAR_MSG_BLOCK
            && rd32(s->far_in + 1) < s->far_seq)
            continue;  /* a late answer to an earlier block */
        r = far_apply(s, tick0, ticks, len, rx, &detail);
        if (r != CB_FAR_OK) {
            cb_sim_far_close(s, ev, nev, ev_max, r, detail);
            return;
        }
        s->far_seq++;
        return;
    }
}

/* One far-side signal takes effect. */
static void apply_signal(cb_sim_t *s, const sim_sig_t *g, cb_event_t *ev, int *nev, int ev_max)
{
    int c = g->chan;
    uint64_t t = g->tick;
    if (s->kind[c] == CB_CHAN_FXS) {
        int off = g->type == CB_EV_HOOK_OFF;
        if (off == s->hook[c])
            return;
        s->hook[c] = (uint8_t) off;
        if (!off) {
            s->onhook_at[c] = t;
            return;
        }
        if (s->ringing[c]) {  /* ring trip */
            s->ringing[c] = 0;
            if (s->ring_on[c]) {
                s->ring_on[c] = 0;
                far_seen(s, t, c, CB_EV_RING_OFF, 0);
            }
        }
        if (!s->hook_rep[c]) {
            s->hook_rep[c] = 1;
            put_ev(ev, nev, ev_max, t, c, CB_EV_HOOK_OFF, 1, 0);
            return;
        }
        uint64_t on_ms = t - s->onhook_at[c];
        if (on_ms >= CB_SIM_FLASH_MIN_MS)
            put_ev(ev, nev, ev_max, t, c, CB_EV_FLASH, 0, (int32_t) on_ms);
        return;  /* shorter: contact bounce */
    }
    switch (g->type) {
    case CB_EV_RING_ON:
    case CB_EV_RING_OFF: {
        uint8_t on = g->type == CB_EV_RING_ON;
        if (s->ringing[c] != on) {
            s->ringing[c] = on;
            put_ev(ev, nev, ev_max, t, c, g->type, on, 0);
        }
        break;
    }
    case CB_EV_BATTERY:
        if (s->battery[c] != (g->value != 0)) {
            s->battery[c] = g->value != 0;
            put_ev(ev, nev, ev_max, t, c, CB_EV_BATTERY, s->battery[c], 0);
        }
        break;
    case CB_EV_POLARITY:
        if (s->polarity[c] != (g->value != 0)) {
            s->polarity[c] = g->value != 0;
            put_ev(ev, nev, ev_max, t, c, CB_EV_POLARITY, s->polarity[c], 0);
        }
        break;
    default:
        break;
    }
}

/* Analog line state for one tick. */
static void port_tick(cb_sim_t *s, uint64_t t, cb_event_t *ev, int *nev, int ev_max)
{
    /* On hook for the whole flash window: a hang-up (before this tick's changes). */
    for (int c = 0; c < s->nports; c++) {
        if (s->kind[c] == CB_CHAN_FXS && s->hook_rep[c] && !s->hook[c]
            && t - s->onhook_at[c] >= CB_SIM_FLASH_MAX_MS) {
            s->hook_rep[c] = 0;
            put_ev(ev, nev, ev_max, s->onhook_at[c], c, CB_EV_HOOK_ON, 0, (int32_t) (t - s->onhook_at[c]));
        }
    }
    for (int i = 0; i < s->nsig;) {
        if (s->sigq[i].tick == t) {
            sim_sig_t g = s->sigq[i];
            s->sigq[i] = s->sigq[--s->nsig];
            apply_signal(s, &g, ev, nev, ev_max);
        } else if (s->sigq[i].tick < t) {
            s->sigq[i] = s->sigq[--s->nsig];  /* cannot happen: signals are checked on entry */
        } else {
            i++;
        }
    }
    for (int c = 0; c < s->nports; c++) {
        if (s->kind[c] == CB_CHAN_FXS) {
            if (s->ringing[c]) {
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
                s->hook[c] = 1;
                far_seen(s, t, c, CB_EV_HOOK_OFF, 1);
            }
        }
        if (s->kind[c] == CB_CHAN_FXO && s->hook[c] && s->ringing[c]) {
            s->ringing[c] = 0;  /* ring trip: a line off hook is not rung, so the next ring is a new one */
            put_ev(ev, nev, ev_max, t, c, CB_EV_RING_OFF, 0, 0);
        }
    }
}

static int sim_exchange(cb_card_t *card, uint64_t tick0, int ticks, const uint8_t *tx, uint8_t *rx,
                        cb_event_t *ev, int ev_max)
{
    cb_sim_t *s = (cb_sim_t *) card;
    if (ticks < 1 || ticks > CB_MAX_BLOCK_TICKS || tick0 != s->tick)
        return CB_ERR_INVALID;
    int nev = 0;
    size_t per = (size_t) ticks * CB_TICK_SAMPLES;
    int nchan = s->head.nchan;
    uint64_t far_from = s->farq_head;

    /* Card -> far side (in process), and far side -> card. */
    for (int c = 0; c < nchan; c++) {
        const uint8_t *t = tx + (size_t) c * per;
        uint8_t *r = rx + (size_t) c * per;
        if (s->listen[c]) {
            sim_fifo_t *f = &s->to_far[c];
            for (size_t i = 0; i < per; i++) {
                if (f->head - f->tail >= CB_SIM_FAR_FIFO) {
                    f->tail++;
                    s->stats.far_fifo_overrun++;
                }
                f->buf[f->head++ % CB_SIM_FAR_FIFO] = t[i];
            }
        }
        sim_fifo_t *g = &s->to_card[c];
        uint32_t have = g->head - g->tail;
        size_t i = 0;
        for (; i < per && i < have; i++)
            r[i] = g->buf[(g->tail + (uint32_t) i) % CB_SIM_FAR_FIFO];
        g->tail += (uint32_t) i;
        if (i < per)
            memset(r + i, s->idle, per - i);
    }
    if (s->far_fd >= 0) {
        for (int i = 0; i < s->far_n; i++)
            memset(rx + (size_t) s->far_chan[i] * per, s->idle, per);
        far_from = s->far_send_from;
        far_exchange(s, tick0, ticks, tx, rx, &far_from, ev, &nev, ev_max);
        s->far_send_from = far_from;
    }
    for (int t = 0; t < ticks; t++)
        port_tick(s, tick0 + (uint64_t) t, ev, &nev, ev_max);
    nev = cb_sim_drop_faults(s, ev, nev);
    s->tick = tick0 + (uint64_t) ticks;
    s->blocks_done++;
    s->stats.blocks++;
    return nev;
}

static int sim_command(cb_card_t *card, const cb_cmd_t *cmd)
{
    cb_sim_t *s = (cb_sim_t *) card;
    int c = cmd->chan;
    if (cmd->op == CB_CMD_FAR_ATTACH) {
        const uint16_t *chans = (const uint16_t *) (uintptr_t) cmd->ptr;
        if (s->far_fd >= 0 || cmd->a < 0 || cmd->b < 1 || cmd->b > s->head.nchan || chans == NULL)
            return CB_ERR_STATE;
        for (int i = 0; i < cmd->b; i++)
            if (chans[i] >= s->head.nchan || s->far_claimed[chans[i]])
                return CB_ERR_INVALID;
        for (int i = 0; i < cmd->b; i++) {
            s->far_chan[i] = chans[i];
            s->far_claimed[chans[i]] = (uint16_t) (i + 1);
        }
        s->far_n = cmd->b;
        s->far_fd = cmd->a;
        s->far_seq = 0;
        s->far_send_from = s->farq_head;
        return CB_OK;
    }
    if (cmd->op == CB_CMD_FAR_DETACH) {
        cb_event_t dummy[2];
        int n = 0;
        cb_sim_far_close(s, dummy, &n, 0, CB_FAR_OK, 0);
        return CB_OK;
    }
    if (c < 0 || c >= s->nports)
        return CB_ERR_INVALID;
    int kind = s->kind[c];
    uint64_t t = s->tick;
    switch (cmd->op) {
    case CB_CMD_RING:
        if (kind != CB_CHAN_FXS || cmd->a <= 0 || cmd->b < 0 || cmd->c < 0 || cmd->d < 0)
            return CB_ERR_INVALID;
        if (s->hook[c])
            return CB_ERR_STATE;  /* the phone is off hook */
        s->cadence[c][0] = cmd->a;
        s->cadence[c][1] = cmd->b;
        s->cadence[c][2] = cmd->c;
        s->cadence[c][3] = cmd->d;
        s->ringing[c] = 1;
        s->cad_idx[c] = 3;  /* the next tick enters segment 0 */
        s->cad_left[c] = 0;
        return CB_OK;
    case CB_CMD_RING_STOP:
        if (kind != CB_CHAN_FXS)
            return CB_ERR_INVALID;
        s->ringing[c] = 0;
        if (s->ring_on[c]) {
            s->ring_on[c] = 0;
            far_seen(s, t, c, CB_EV_RING_OFF, 0);
        }
        return CB_OK;
    case CB_CMD_BATTERY:
        if (kind != CB_CHAN_FXS)
            return CB_ERR_INVALID;
        if (s->battery[c] != (cmd->a != 0)) {
            s->battery[c] = cmd->a != 0;
            far_seen(s, t, c, CB_EV_BATTERY, s->battery[c]);
        }
        return CB_OK;
    case CB_CMD_POLARITY:
        if (kind != CB_CHAN_FXS)
            return CB_ERR_INVALID;
        if (s->polarity[c] != (cmd->a != 0)) {
            s->polarity[c] = cmd->a != 0;
            far_seen(s, t, c, CB_EV_POLARITY, s->polarity[c]);
        }
        return CB_OK;
    case CB_CMD_HOOK:
        if (kind != CB_CHAN_FXO)
            return CB_ERR_INVALID;
        if (s->hook[c] != (cmd->a != 0)) {
            s->hook[c] = cmd->a != 0;
            s->flash_left[c] = 0;
            far_seen(s, t, c, s->hook[c] ? CB_EV_HOOK_OFF : CB_EV_HOOK_ON, s->hook[c]);
        }
        return CB_OK;
    case CB_CMD_FLASH:
        if (kind != CB_CHAN_FXO || cmd->a <= 0 || cmd->a > 5000)
            return CB_ERR_INVALID;
        if (!s->hook[c])
            return CB_ERR_STATE;
        s->hook[c] = 0;
        s->flash_left[c] = cmd->a + 1;  /* counted down from this tick on */
        far_seen(s, t, c, CB_EV_HOOK_ON, 0);
        return CB_OK;
    default:
        return CB_ERR_INVALID;
    }
}

static void sim_stop(cb_card_t *card)
{
    cb_sim_t *s = (cb_sim_t *) card;
    cb_event_t dummy[2];
    int n = 0;
    cb_sim_far_close(s, dummy, &n, 0, CB_FAR_OK, 0);
}

static int sim_line_levels(cb_card_t *card, uint8_t *out, int n)
{
    return cb_sim_line_levels((const cb_sim_t *) card, out, n);
}

/* What the sim card has: the far end and line levels; spans carry octets
 * only (no framing, alarms, ABCD or HDLC yet), so those ops are absent. */
const cb_card_ops_t cb_sim_ops = {
    .wait = sim_wait,
    .exchange = sim_exchange,
    .command = sim_command,
    .stop = sim_stop,
    .line_levels = sim_line_levels,
};

int cb_sim_drop_faults(cb_sim_t *s, cb_event_t *ev, int nev)
{
    int out = 0;
    for (int i = 0; i < nev; i++) {
        uint8_t *drop = &s->drop_next[ev[i].chan];
        if (*drop != 0 && *drop == ev[i].type) {
            *drop = 0;
            continue;
        }
        ev[out++] = ev[i];
    }
    return out;
}
