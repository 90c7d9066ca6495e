/*
 * The sim card's spans, per block: our framers, the in-process far ends, the line between them.
 */
#include <string.h>
#include "sim_priv.h"

/* Set bit `bit` (0 = MSB of octet 0) of line to v. */
static inline void put_bits8(uint8_t *line, int bit, uint8_t v)
{
    int o = bit >> 3, sh = bit & 7;
    if (sh == 0) {
        line[o] = v;
        return;
    }
    line[o] = (uint8_t) ((line[o] & (0xFF << (8 - sh))) | (v >> sh));
    line[o + 1] = (uint8_t) ((line[o + 1] & (0xFF >> sh)) | (uint8_t) (v << (8 - sh)));
}

static inline uint8_t get_bits8(const uint8_t *line, int bit)
{
    int o = bit >> 3, sh = bit & 7;
    if (sh == 0)
        return line[o];
    return (uint8_t) ((line[o] << sh) | (line[o + 1] >> (8 - sh)));
}

/* Timeslot octets of one tick (channel-major, stride) into the line, unframed (placeholder). */
static void line_put(const sim_span_t *p, const uint8_t *ts, size_t stride, uint8_t *line)
{
    int frame_bits = p->kind == CB_SPAN_T1 ? 193 : 256;
    memset(line, 0xFF, (size_t) p->octets);
    for (int f = 0; f < 8; f++)
        for (int t = 1; t <= p->nts; t++)
            put_bits8(line, f * frame_bits + (p->kind == CB_SPAN_T1 ? 1 + (t - 1) * 8 : t * 8),
                      ts[(size_t) (t - 1) * stride + (size_t) f]);
}

static void line_get(const sim_span_t *p, const uint8_t *line, uint8_t *ts, size_t stride)
{
    int frame_bits = p->kind == CB_SPAN_T1 ? 193 : 256;
    for (int f = 0; f < 8; f++)
        for (int t = 1; t <= p->nts; t++)
            ts[(size_t) (t - 1) * stride + (size_t) f]
                = get_bits8(line, f * frame_bits + (p->kind == CB_SPAN_T1 ? 1 + (t - 1) * 8 : t * 8));
}

void sim_span_tx(cb_sim_t *s, int ticks, const uint8_t *tx)
{
    size_t per = (size_t) ticks * CB_TICK_SAMPLES;
    for (int i = 0; i < s->nspans; i++) {
        sim_span_t *p = &s->span[i];
        for (int t = 0; t < ticks; t++)
            line_put(p, tx + (size_t) p->first_chan * per + (size_t) t * CB_TICK_SAMPLES, per,
                     p->line_tx + (size_t) t * (size_t) p->octets);
    }
}

void sim_span_far(cb_sim_t *s, uint64_t tick0, int ticks)
{
    uint8_t ts[31 * 8];
    for (int i = 0; i < s->nspans; i++) {
        sim_span_t *p = &s->span[i];
        if (p->peer)
            continue;
        for (int t = 0; t < ticks; t++) {
            uint8_t *rx_line = p->line_rx + (size_t) t * (size_t) p->octets;
            const uint8_t *tx_line = p->line_tx + (size_t) t * (size_t) p->octets;
            /* The far end hears the line ... */
            line_get(p, tx_line, ts, 8);
            for (int k = 0; k < p->nts; k++) {
                int c = p->first_chan + k;
                if (s->listen[c]) {
                    sim_fifo_t *f = &s->to_far[c];
                    uint32_t used = f->head - f->tail;
                    if (used + 8U > CB_SIM_FAR_FIFO) {
                        f->tail += used + 8U - CB_SIM_FAR_FIFO;
                        s->stats.far_fifo_overrun += used + 8U - CB_SIM_FAR_FIFO;
                    }
                    sim_fifo_put(f, ts + k * 8, 8);
                }
            }
            /* ... and sends what the world gave it. */
            for (int k = 0; k < p->nts; k++) {
                sim_fifo_t *g = &s->to_card[p->first_chan + k];
                uint32_t have = g->head - g->tail;
                uint32_t take = have < 8U ? have : 8U;
                sim_fifo_get(g, ts + k * 8, take);
                if (take < 8U)
                    memset(ts + k * 8 + take, s->idle, 8U - take);
            }
            line_put(p, ts, 8, rx_line);
            p->rx_flags[t] = 0;
        }
    }
    (void) tick0;
}

void sim_span_rx(cb_sim_t *s, uint64_t tick0, int ticks, uint8_t *rx, cb_event_t *ev, int *nev, int ev_max)
{
    size_t per = (size_t) ticks * CB_TICK_SAMPLES;
    for (int i = 0; i < s->nspans; i++) {
        sim_span_t *p = &s->span[i];
        if (!p->peer && s->far_claimed[p->first_chan])
            continue;  /* a version 1 peer holds timeslots: far_exchange wrote them */
        for (int t = 0; t < ticks; t++)
            line_get(p, p->line_rx + (size_t) t * (size_t) p->octets,
                     rx + (size_t) p->first_chan * per + (size_t) t * CB_TICK_SAMPLES, per);
    }
    (void) tick0;
    (void) ev;
    (void) nev;
    (void) ev_max;
}
