/* mix.c - set-up side of the media graph: edges, groups and taps are edited
 * here, by the scheduler's commands, never on the tick. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cb_dsp.h"
#include "mix_priv.h"

cb_mix_t *cb_mix_init(int n)
{
    if (n < 1 || n > 65535)
        return NULL;
    cb_mix_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    size_t un = (size_t) n;
    m->n = n;
    m->nedge = calloc(un, 1);
    m->src = calloc(un, sizeof(*m->src));
    m->gain = calloc(un, sizeof(*m->gain));
    m->listeners = calloc(un, sizeof(int32_t));
    m->listener_pos = malloc(un * sizeof(int32_t));
    m->group = malloc(un * sizeof(int32_t));
    m->mgain = calloc(un, sizeof(int32_t));
    m->mflags = calloc(un, 1);
    m->members = calloc(un, sizeof(*m->members));
    m->nmembers = calloc(un, sizeof(int32_t));
    m->paging = calloc(un, 1);
    m->active = calloc(un, sizeof(int32_t));
    m->active_pos = malloc(un * sizeof(int32_t));
    m->contrib = calloc(un, sizeof(*m->contrib));
    if (!m->nedge || !m->src || !m->gain || !m->listeners || !m->listener_pos || !m->group || !m->mgain
        || !m->mflags || !m->members || !m->nmembers || !m->paging || !m->active || !m->active_pos || !m->contrib) {
        cb_mix_free(m);
        return NULL;
    }
    for (size_t c = 0; c < un; c++) {
        m->listener_pos[c] = -1;
        m->group[c] = -1;
        m->active_pos[c] = -1;
    }
    return m;
}

void cb_mix_free(cb_mix_t *m)
{
    if (m == NULL)
        return;
    free(m->nedge);
    free(m->src);
    free(m->gain);
    free(m->listeners);
    free(m->listener_pos);
    free(m->group);
    free(m->mgain);
    free(m->mflags);
    free(m->members);
    free(m->nmembers);
    free(m->paging);
    free(m->active);
    free(m->active_pos);
    free(m->contrib);
    free(m);
}

int32_t cb_mix_factor(int gain_cdb)
{
    return (int32_t) lrintf((float) CB_MIX_UNITY * powf(10.0f, (float) gain_cdb / 2000.0f));
}

static int bad_chan(const cb_mix_t *m, int c)
{
    return c < 0 || c >= m->n;
}

/* Keep the list of channels with edges in step with nedge. */
static void listener_update(cb_mix_t *m, int c)
{
    if (m->nedge[c] > 0 && m->listener_pos[c] < 0) {
        m->listener_pos[c] = m->nlisteners;
        m->listeners[m->nlisteners++] = c;
    } else if (m->nedge[c] == 0 && m->listener_pos[c] >= 0) {
        int at = m->listener_pos[c];
        int last = m->listeners[--m->nlisteners];
        m->listeners[at] = last;
        m->listener_pos[last] = at;
        m->listener_pos[c] = -1;
    }
}

int cb_mix_listen(cb_mix_t *m, int listener, int source, int gain_cdb)
{
    if (bad_chan(m, listener) || bad_chan(m, source) || listener == source || gain_cdb < CB_MIX_GAIN_MIN
        || gain_cdb > CB_MIX_GAIN_MAX)
        return CB_ERR_INVALID;
    int32_t f = cb_mix_factor(gain_cdb);
    for (int e = 0; e < m->nedge[listener]; e++) {
        if (m->src[listener][e] == source) {
            m->gain[listener][e] = f;
            return CB_OK;
        }
    }
    if (m->nedge[listener] >= CB_MIX_MAX_EDGES)
        return CB_ERR_LIMIT;
    int e = m->nedge[listener]++;
    m->src[listener][e] = source;
    m->gain[listener][e] = f;
    listener_update(m, listener);
    return CB_OK;
}

/* Remove the edges source->listener (source -1: every edge into listener); returns how many. */
static int drop_edges(cb_mix_t *m, int listener, int source)
{
    int k = 0;
    int had = m->nedge[listener];
    for (int e = 0; e < had; e++) {
        if (source >= 0 && m->src[listener][e] != source) {
            m->src[listener][k] = m->src[listener][e];
            m->gain[listener][k] = m->gain[listener][e];
            k++;
        }
    }
    m->nedge[listener] = (uint8_t) k;
    listener_update(m, listener);
    return had - k;
}

int cb_mix_unlisten(cb_mix_t *m, int listener, int source)
{
    if (bad_chan(m, listener) || source < -1 || source >= m->n)
        return CB_ERR_INVALID;
    if (drop_edges(m, listener, source) == 0 && source >= 0)
        return CB_ERR_STATE;  /* it did not hear that source */
    return CB_OK;
}

int cb_mix_unbridge(cb_mix_t *m, int chan)
{
    if (bad_chan(m, chan))
        return CB_ERR_INVALID;
    for (int e = 0; e < m->nedge[chan]; e++)
        drop_edges(m, m->src[chan][e], chan);  /* a one-way listen has no edge back: nothing to drop */
    drop_edges(m, chan, -1);
    return CB_OK;
}

int cb_mix_leave(cb_mix_t *m, int chan)
{
    if (bad_chan(m, chan))
        return CB_ERR_INVALID;
    int g = m->group[chan];
    if (g < 0)
        return CB_OK;
    int32_t *mem = m->members[g];
    for (int i = 0; i < m->nmembers[g]; i++) {
        if (mem[i] == chan) {
            mem[i] = mem[--m->nmembers[g]];
            break;
        }
    }
    m->group[chan] = -1;
    if (m->nmembers[g] == 0 && m->active_pos[g] >= 0) {
        int at = m->active_pos[g];
        int last = m->active[--m->nactive];
        m->active[at] = last;
        m->active_pos[last] = at;
        m->active_pos[g] = -1;
    }
    return CB_OK;
}

int cb_mix_join(cb_mix_t *m, int chan, int group, int gain_cdb, int flags)
{
    if (bad_chan(m, chan) || group < 0 || group >= m->n || gain_cdb < CB_MIX_GAIN_MIN
        || gain_cdb > CB_MIX_GAIN_MAX || (flags & ~(CB_MIX_TALK | CB_MIX_HEAR | CB_MIX_PAGING)) != 0)
        return CB_ERR_INVALID;
    int joined = m->group[chan] == group;
    uint8_t paging = (flags & CB_MIX_PAGING) != 0;
    int others = m->nmembers[group] - joined;
    if (others > 0 && m->paging[group] != paging)
        return CB_ERR_INVALID;  /* a conference joined as a paging group, or the reverse */
    if (!joined && m->nmembers[group] >= (paging ? CB_MIX_GROUP_MAX : CB_MIX_CONF_MAX))
        return CB_ERR_LIMIT;
    m->paging[group] = paging;
    if (!joined) {
        cb_mix_leave(m, chan);
        m->members[group][m->nmembers[group]++] = chan;
        m->group[chan] = group;
        if (m->active_pos[group] < 0) {
            m->active_pos[group] = m->nactive;
            m->active[m->nactive++] = group;
        }
    }
    m->mgain[chan] = cb_mix_factor(gain_cdb);
    m->mflags[chan] = (uint8_t) (flags & (CB_MIX_TALK | CB_MIX_HEAR));
    return CB_OK;
}

int cb_mix_sole_source(const cb_mix_t *m, int chan)
{
    if (bad_chan(m, chan) || m->nedge[chan] != 1 || m->group[chan] >= 0 || m->gain[chan][0] != CB_MIX_UNITY)
        return -1;
    return m->src[chan][0];
}

int cb_mix_edges(const cb_mix_t *m, int chan)
{
    return bad_chan(m, chan) ? CB_ERR_INVALID : m->nedge[chan];
}

int cb_mix_group_of(const cb_mix_t *m, int chan)
{
    return bad_chan(m, chan) ? -1 : m->group[chan];
}

int cb_mix_members(const cb_mix_t *m, int group)
{
    return bad_chan(m, group) ? CB_ERR_INVALID : m->nmembers[group];
}

cb_tap_t *cb_tap_init(uint32_t frames)
{
    if (frames > (1U << 24))
        return NULL;
    uint32_t cap = 64;
    while (cap < frames)
        cap <<= 1;
    cb_tap_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->rx = calloc(cap, sizeof(int16_t));
    t->tx = calloc(cap, sizeof(int16_t));
    if (!t->rx || !t->tx) {
        cb_tap_free(t);
        return NULL;
    }
    t->mask = cap - 1;
    atomic_init(&t->head, 0);
    atomic_init(&t->tail, 0);
    atomic_init(&t->overruns, 0);
    return t;
}

void cb_tap_free(cb_tap_t *t)
{
    if (t == NULL)
        return;
    free(t->rx);
    free(t->tx);
    free(t);
}
