/*
 * pri_peer: libpri as the far end of one PRI span, over the sim card's far-end socket (tests only).
 *
 * A separate program, never linked into the product nor imported by it (libpri is GPL-2): the tests
 * start it, talk to it with JSON lines, and drive our own Q.921/Q.931 against it.
 *
 *   pri_peer --socket PATH --span NAME --side network|user --switch euroisdn|ni2
 *            [--script FILE] [--answer] [--debug]
 *
 * It claims span NAME over PATH (sim.sock, protocol version 2: docs/sim-far-end.md) and runs in
 * lockstep with the card: each BLOCK the card sends is deframed tick by tick with the peers' own
 * framer (tests/peers/peer_framer.c), the D-channel's octets (E1 TS16, T1 TS24) go through spandsp's
 * hdlc_rx to libpri, libpri's frames through spandsp's hdlc_tx back onto the D-channel, and the
 * answer BLOCK carries the far end's framed line for the same ticks. libpri's custom I/O carries two
 * FCS placeholder octets per frame both ways: dropped on the way out (spandsp adds the real FCS),
 * added on the way in (spandsp checked and removed it).
 *
 * Time: libpri reads the clock only through gettimeofday() and time(). Both are defined here (and
 * exported: -rdynamic) so they return the line's clock, the tick being processed, and every libpri
 * timer (T200, T203, T303, T305, T308, T309, ...) runs on the engine's virtual clock.
 *
 * Script (--script FILE, and the same lines on standard input while it runs): JSON lines
 * {"at_ms": T, "do": ACTION, ...}, carried out when the line's clock reaches T (ms of the engine
 * clock, as "t_ms" below; a line without at_ms at once). Actions:
 *   call     ani, ani_ton, ani_npi, ani_pres, ani_screen, dnis, complete (default true), channel
 *            (a timeslot; default: the lowest free B-channel on the network side, the highest on
 *            the user side), exclusive (default false)
 *   info     call, digits: each digit in an INFORMATION (overlap sending)
 *   dtmf     call, digits: in-band DTMF on the call's B-channel (spandsp dtmf_tx)
 *   tone     call, hz, dbm0: a sine on the call's B-channel (hz 0 stops it)
 *   hangup   call, cause (default 16)
 *   restart  channel: RESTART for that B-channel; without channel each B-channel in turn
 *            (libpri 1.6.0 sends no RESTART for all interfaces)
 *   service  channel, status (in_service | maintenance | out_of_service): NI-2 SERVICE
 * Numbers are names as e1t1/isdn/q931.py has them (ton: unknown, international, national, network,
 * subscriber, abbreviated; npi: unknown, isdn, private, ...; pres: allowed, restricted, unavailable;
 * screen: user_unscreened, user_passed, user_failed, network) or their integer codes.
 *
 * Calls are numbered 1, 2, ... in the order they appear: placed by a script's `call`, or offered by
 * the far side's SETUP (its `ring` says which number it got). Offered calls get CALL PROCEEDING and
 * ALERTING; with --answer a CONNECT too.
 *
 * Output on standard out, one JSON line per event, {"t_ms": T, "event": E, ...}, flushed before the
 * block's answer goes back (so a test that stepped the clock has read every line of those ticks):
 *   attached (span, kind, side, switch), dchan_up, dchan_down,
 *   ring (call, channel, ani, ani_ton, ani_npi, ani_pres, ani_screen, dnis, complete, exclusive),
 *   proceeding, setup_ack, ringing, answer (call, channel), info (call, digits),
 *   hangup (call, channel, cause: the first clearing message received for the call, DISCONNECT,
 *   RELEASE or RELEASE COMPLETE; "local": true when the peer cleared it itself on an alarm, cause 38),
 *   restart (channel, null for all: a RESTART received and acknowledged), restart_ack (channel),
 *   service, service_ack (channel, status), alarm (alarm: "red" or "none").
 * `channel` is always the timeslot. On alarm (no signal or no frame alignment for 2500 ms, as a
 * framer declares red) it destroys its calls, as chan_dahdi does, and sends RAI until it clears.
 *
 * Exit status: 0 when the card closes the connection, 2 on bad arguments or a refused HELLO.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <libpri.h>
#include <spandsp.h>

#include "peer_framer.c"

/* ---- the line's clock ---------------------------------------------------------------------- */

#define EPOCH_S 1700000000LL            /* what time() says at tick 0 (any fixed date will do) */

static int64_t now_ms;                  /* the tick being processed: ms of the engine clock */

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
    (void) tz;                                 /* tv is never NULL (glibc declares it nonnull) */
    tv->tv_sec = (time_t) (EPOCH_S + now_ms / 1000);
    tv->tv_usec = (suseconds_t) ((now_ms % 1000) * 1000);
    return 0;
}

time_t time(time_t *tloc)
{
    time_t t = (time_t) (EPOCH_S + now_ms / 1000);
    if (tloc != NULL)
        *tloc = t;
    return t;
}

/* ---- a small JSON reader (the HELLO and the script lines) ---------------------------------- */

enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

typedef struct jv {
    int type;
    double num;
    char *str;                  /* J_STR's text; a member's key */
    struct jv *kids;            /* J_ARR / J_OBJ members */
    int n;
} jv_t;

typedef struct {
    const char *s;
    int err;
} jp_t;

static void jv_free(jv_t *v)
{
    for (int i = 0; i < v->n; i++)
        jv_free(&v->kids[i]);
    free(v->kids);
    free(v->str);
    v->kids = NULL;
    v->str = NULL;
    v->n = 0;
}

static void jp_ws(jp_t *p)
{
    while (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r')
        p->s++;
}

static char *jp_string(jp_t *p)
{
    /* p->s at the opening quote; \uXXXX outside ASCII becomes '?' (names and digits are ASCII) */
    size_t cap = 16, n = 0;
    char *out = malloc(cap);
    p->s++;
    while (out != NULL && *p->s != '"') {
        char c = *p->s++;
        if (c == '\0') {
            p->err = 1;
            break;
        }
        if (c == '\\') {
            char e = *p->s++;
            switch (e) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u': {
                unsigned v = 0;
                for (int i = 0; i < 4; i++) {
                    int h = *p->s++;
                    v = v * 16 + (unsigned) (isdigit(h) ? h - '0' : (tolower(h) - 'a' + 10));
                }
                c = v < 0x80 ? (char) v : '?';
                break;
            }
            case '\0': p->err = 1; c = 0; break;
            default: c = e; break;
            }
            if (p->err)
                break;
        }
        if (n + 2 > cap) {
            cap *= 2;
            char *bigger = realloc(out, cap);
            if (bigger == NULL) {
                free(out);
                out = NULL;
                break;
            }
            out = bigger;
        }
        out[n++] = c;
    }
    if (out == NULL) {
        p->err = 1;
        return NULL;
    }
    out[n] = '\0';
    if (*p->s == '"')
        p->s++;
    return out;
}

static void jp_value(jp_t *p, jv_t *v, int depth);

static void jp_add(jp_t *p, jv_t *v, jv_t *kid)
{
    jv_t *k = realloc(v->kids, sizeof(jv_t) * (size_t) (v->n + 1));
    if (k == NULL) {
        p->err = 1;
        jv_free(kid);
        return;
    }
    v->kids = k;
    v->kids[v->n++] = *kid;
}

static void jp_value(jp_t *p, jv_t *v, int depth)
{
    memset(v, 0, sizeof(*v));
    jp_ws(p);
    if (depth > 32) {
        p->err = 1;
        return;
    }
    char c = *p->s;
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        v->type = c == '{' ? J_OBJ : J_ARR;
        p->s++;
        jp_ws(p);
        if (*p->s == close) {
            p->s++;
            return;
        }
        while (!p->err) {
            char *key = NULL;
            jp_ws(p);
            if (v->type == J_OBJ) {
                if (*p->s != '"') {
                    p->err = 1;
                    return;
                }
                key = jp_string(p);
                jp_ws(p);
                if (*p->s != ':') {
                    free(key);
                    p->err = 1;
                    return;
                }
                p->s++;
            }
            jv_t kid;
            jp_value(p, &kid, depth + 1);
            /* a member keeps its key in a wrapper: kids of an object are {key, value} pairs */
            if (v->type == J_OBJ) {
                jv_t pair = {J_ARR, 0, key, NULL, 0};
                jp_add(p, &pair, &kid);
                jp_add(p, v, &pair);
            } else {
                jp_add(p, v, &kid);
            }
            jp_ws(p);
            if (*p->s == ',') {
                p->s++;
                continue;
            }
            if (*p->s == close) {
                p->s++;
                return;
            }
            p->err = 1;
        }
        return;
    }
    if (c == '"') {
        v->type = J_STR;
        v->str = jp_string(p);
        return;
    }
    if (strncmp(p->s, "true", 4) == 0 || strncmp(p->s, "false", 5) == 0) {
        v->type = J_BOOL;
        v->num = *p->s == 't';
        p->s += *p->s == 't' ? 4 : 5;
        return;
    }
    if (strncmp(p->s, "null", 4) == 0) {
        v->type = J_NULL;
        p->s += 4;
        return;
    }
    char *end;
    v->type = J_NUM;
    v->num = strtod(p->s, &end);
    if (end == p->s)
        p->err = 1;
    p->s = end;
}

/* Parse text; 0 and *v on success. */
static int json_parse(const char *text, jv_t *v)
{
    jp_t p = {text, 0};
    jp_value(&p, v, 0);
    jp_ws(&p);
    if (p.err || *p.s != '\0') {
        jv_free(v);
        return -1;
    }
    return 0;
}

static const jv_t *jget(const jv_t *obj, const char *key)
{
    if (obj == NULL || obj->type != J_OBJ)
        return NULL;
    for (int i = 0; i < obj->n; i++)
        if (obj->kids[i].str != NULL && strcmp(obj->kids[i].str, key) == 0 && obj->kids[i].n == 1)
            return &obj->kids[i].kids[0];
    return NULL;
}

static const char *jstr(const jv_t *obj, const char *key, const char *dflt)
{
    const jv_t *v = jget(obj, key);
    return v != NULL && v->type == J_STR ? v->str : dflt;
}

static double jnum(const jv_t *obj, const char *key, double dflt)
{
    const jv_t *v = jget(obj, key);
    return v != NULL && (v->type == J_NUM || v->type == J_BOOL) ? v->num : dflt;
}

static int jhas(const jv_t *obj, const char *key)
{
    const jv_t *v = jget(obj, key);
    return v != NULL && v->type != J_NULL;
}

/* ---- output --------------------------------------------------------------------------------- */

static char out_buf[2048];
static size_t out_len;

static void out_raw(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void out_raw(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out_buf + out_len, sizeof(out_buf) - out_len, fmt, ap);
    va_end(ap);
    if (n > 0)
        out_len += (size_t) n < sizeof(out_buf) - out_len ? (size_t) n : sizeof(out_buf) - out_len - 1;
}

static void out_begin(const char *event)
{
    out_len = 0;
    out_raw("{\"t_ms\": %lld, \"event\": \"%s\"", (long long) now_ms, event);
}

static void out_int(const char *key, long long v)
{
    out_raw(", \"%s\": %lld", key, v);
}

static void out_chan(int ts)
{
    if (ts > 0)
        out_int("channel", ts);
    else
        out_raw(", \"channel\": null");
}

static void out_str(const char *key, const char *s)
{
    out_raw(", \"%s\": \"", key);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char) *s;
        if (c == '"' || c == '\\')
            out_raw("\\%c", c);
        else if (c < 0x20 || c >= 0x7F)
            out_raw("\\u%04x", c);
        else
            out_raw("%c", c);
    }
    out_raw("\"");
}

static void out_bool(const char *key, int v)
{
    out_raw(", \"%s\": %s", key, v ? "true" : "false");
}

static void out_end(void)
{
    out_raw("}\n");
    fputs(out_buf, stdout);
}

/* ---- names of Q.931 codes, as e1t1/isdn/q931.py has them ---------------------------------- */

typedef struct {
    const char *name;
    int code;
} name_t;

static const name_t TONS[] = {{"unknown", 0}, {"international", 1}, {"national", 2}, {"network", 3},
                              {"subscriber", 4}, {"abbreviated", 6}, {NULL, 0}};
static const name_t NPIS[] = {{"unknown", 0}, {"isdn", 1}, {"data", 3}, {"telex", 4}, {"national", 8},
                              {"private", 9}, {NULL, 0}};
static const name_t PRESS[] = {{"allowed", 0}, {"restricted", 1}, {"unavailable", 2}, {NULL, 0}};
static const name_t SCREENS[] = {{"user_unscreened", 0}, {"user_passed", 1}, {"user_failed", 2},
                                 {"network", 3}, {NULL, 0}};
static const name_t STATUSES[] = {{"in_service", 0}, {"maintenance", 1}, {"out_of_service", 2}, {NULL, 0}};

static const char *code_name(const name_t *t, int code)
{
    for (; t->name != NULL; t++)
        if (t->code == code)
            return t->name;
    return NULL;
}

/* A script field: a name of `t` or an integer code; -1 if neither. */
static int name_code(const name_t *t, const jv_t *obj, const char *key, int dflt)
{
    const jv_t *v = jget(obj, key);
    if (v == NULL || v->type == J_NULL)
        return dflt;
    if (v->type == J_NUM)
        return (int) v->num;
    if (v->type == J_STR)
        for (; t->name != NULL; t++)
            if (strcmp(t->name, v->str) == 0)
                return t->code;
    return -1;
}

static void out_code(const char *key, const name_t *t, int code)
{
    const char *n = code_name(t, code);
    if (n != NULL)
        out_str(key, n);
    else
        out_int(key, code);
}

/* ---- the peer's state ------------------------------------------------------------------------ */

#define MAX_CALLS 256
#define RXQ 64
#define TXQ 256
#define MAX_FRAME 300
#define NOSIG_FLAG 1                    /* a span's flags octet in a BLOCK: no signal that tick */
#define ALARM_MS 2500                   /* LOS/LOF persistence before red (the facts' 2500 ms) */

typedef struct call {
    int num;                    /* 1, 2, ... */
    q931_call *c;
    int ts;                     /* the B-channel's timeslot, 0 until known */
    int hung;                   /* a clearing message was received (and reported) */
    int gone;                   /* libpri is done with it */
    double tone_step, tone_phase, tone_amp;
    dtmf_tx_state_t *dtmf;
} call_t;

typedef struct {
    const char *sock_path, *span_name, *script_path;
    int network, ni2, answer, debug;
    /* the span, from the card's HELLO */
    int e1, nts, octets, dchan_ts, alaw;
    int64_t first_tick;
    int k;
    pf_t *framer;
    /* HDLC and libpri */
    hdlc_tx_state_t *htx;
    hdlc_rx_state_t *hrx;
    struct pri *pri;
    uint8_t rxq[RXQ][MAX_FRAME + 2];
    int rxq_len[RXQ];
    int rxq_head, rxq_n;
    uint8_t txq[TXQ][MAX_FRAME];
    int txq_len[TXQ];
    int txq_head, txq_n;
    unsigned long rx_dropped, tx_dropped;
    /* calls */
    call_t calls[MAX_CALLS];
    int ncalls;
    /* the script */
    jv_t *actions;
    int nactions, next_action;
    char stdin_buf[8192];
    size_t stdin_len;
    int stdin_open;
    /* alarm */
    int64_t loss_since;         /* -1: aligned with signal */
    int red;
} peer_t;

static peer_t P;

static int b_channel_ok(int ts)
{
    return ts >= 1 && ts <= P.nts && ts != P.dchan_ts;
}

static call_t *call_by_num(int num)
{
    for (int i = 0; i < P.ncalls; i++)
        if (P.calls[i].num == num)
            return &P.calls[i];
    return NULL;
}

static call_t *call_by_pri(q931_call *c)
{
    for (int i = 0; i < P.ncalls; i++)
        if (P.calls[i].c == c && !P.calls[i].gone)
            return &P.calls[i];
    return NULL;
}

static call_t *call_new(q931_call *c)
{
    if (P.ncalls == MAX_CALLS) {
        /* forget the oldest finished call to make room */
        int i = 0;
        while (i < P.ncalls && !P.calls[i].gone)
            i++;
        if (i == P.ncalls)
            return NULL;
        if (P.calls[i].dtmf != NULL)
            dtmf_tx_free(P.calls[i].dtmf);
        memmove(&P.calls[i], &P.calls[i + 1], sizeof(call_t) * (size_t) (P.ncalls - i - 1));
        P.ncalls--;
    }
    static int next_num = 1;
    call_t *x = &P.calls[P.ncalls++];
    memset(x, 0, sizeof(*x));
    x->num = next_num++;
    x->c = c;
    return x;
}

static void call_done(call_t *x)
{
    x->gone = 1;
    x->c = NULL;
    x->tone_amp = 0;
    if (x->dtmf != NULL) {
        dtmf_tx_free(x->dtmf);
        x->dtmf = NULL;
    }
}

static int ts_busy(int ts)
{
    for (int i = 0; i < P.ncalls; i++)
        if (!P.calls[i].gone && P.calls[i].ts == ts)
            return 1;
    return 0;
}

/* Hunting: the network side from the lowest free B-channel, the user side from the highest. */
static int hunt(void)
{
    for (int i = 0; i < P.nts; i++) {
        int ts = P.network ? 1 + i : P.nts - i;
        if (b_channel_ok(ts) && !ts_busy(ts))
            return ts;
    }
    return 0;
}

static int chan_ts(int channel)
{
    return channel < 0 ? 0 : channel & 0xFF;
}

/* ---- libpri's custom I/O ---------------------------------------------------------------------- */

static int pri_io_read(struct pri *pri, void *buf, int buflen)
{
    (void) pri;
    if (P.rxq_n == 0)
        return 0;
    int len = P.rxq_len[P.rxq_head];
    if (len + 2 > buflen)
        len = buflen - 2;
    memcpy(buf, P.rxq[P.rxq_head], (size_t) len);
    memset((uint8_t *) buf + len, 0, 2);          /* the FCS placeholder libpri discards */
    P.rxq_head = (P.rxq_head + 1) % RXQ;
    P.rxq_n--;
    return len + 2;
}

static int pri_io_write(struct pri *pri, void *buf, int buflen)
{
    (void) pri;
    int len = buflen - 2;                         /* libpri's two FCS placeholder octets */
    if (len <= 0 || len > MAX_FRAME || P.txq_n == TXQ) {
        P.tx_dropped++;
        return buflen;
    }
    int slot = (P.txq_head + P.txq_n) % TXQ;
    memcpy(P.txq[slot], buf, (size_t) len);
    P.txq_len[slot] = len;
    P.txq_n++;
    return buflen;
}

static void hdlc_frame_in(void *user, const uint8_t *pkt, int len, int ok)
{
    (void) user;
    if (pkt == NULL || len <= 0 || !ok)
        return;                                   /* a status report, or a bad frame */
    if (P.rxq_n == RXQ || len > MAX_FRAME) {
        P.rx_dropped++;
        return;
    }
    int slot = (P.rxq_head + P.rxq_n) % RXQ;
    memcpy(P.rxq[slot], pkt, (size_t) len);
    P.rxq_len[slot] = len;
    P.rxq_n++;
}

static uint8_t hdlc_next_octet(void)
{
    if (P.txq_n > 0 && hdlc_tx_frame(P.htx, P.txq[P.txq_head], (size_t) P.txq_len[P.txq_head]) == 0) {
        P.txq_head = (P.txq_head + 1) % TXQ;
        P.txq_n--;
    }
    return (uint8_t) hdlc_tx_get_byte(P.htx);
}

static void pri_msg(struct pri *pri, char *s)
{
    (void) pri;
    if (P.debug)
        fprintf(stderr, "[%lld] %s", (long long) now_ms, s);
}

static void pri_err(struct pri *pri, char *s)
{
    (void) pri;
    fprintf(stderr, "[%lld] libpri: %s", (long long) now_ms, s);
}

/* ---- libpri's events ------------------------------------------------------------------------- */

static void report_call(const char *event, call_t *x)
{
    out_begin(event);
    out_int("call", x->num);
    out_chan(x->ts);
    out_end();
}

static void take_channel(call_t *x, int channel)
{
    int ts = chan_ts(channel);
    if (b_channel_ok(ts))
        x->ts = ts;
}

static void on_ring(pri_event *e)
{
    pri_event_ring *r = &e->ring;
    call_t *x = call_new(r->call);
    if (x == NULL) {
        pri_hangup(P.pri, r->call, PRI_CAUSE_SWITCH_CONGESTION);
        return;
    }
    int channel = r->channel;
    int ts = chan_ts(channel);
    if (!b_channel_ok(ts)) {                      /* any channel: choose one */
        ts = hunt();
        channel = ts;
    }
    x->ts = b_channel_ok(ts) ? ts : 0;
    const struct pri_party_number *num = &r->calling.number;
    int plan = num->valid ? num->plan : r->callingplan;
    int pres = num->valid ? num->presentation : r->callingpres;
    out_begin("ring");
    out_int("call", x->num);
    out_chan(x->ts);
    out_str("ani", num->valid ? num->str : r->callingnum);
    out_code("ani_ton", TONS, (plan >> 4) & 0x7);
    out_code("ani_npi", NPIS, plan & 0xF);
    out_code("ani_pres", PRESS, (pres >> 5) & 0x3);
    out_code("ani_screen", SCREENS, pres & 0x3);
    out_str("dnis", r->callednum);
    out_bool("complete", r->complete);
    out_bool("exclusive", !r->flexible);
    out_end();
    if (x->ts == 0) {                             /* no B-channel free: 34 */
        pri_hangup(P.pri, r->call, PRI_CAUSE_NORMAL_CIRCUIT_CONGESTION);
        call_done(x);
        return;
    }
    pri_proceeding(P.pri, r->call, channel, 0);
    pri_acknowledge(P.pri, r->call, channel, 1);
    if (P.answer)
        pri_answer(P.pri, r->call, channel, 0);
}

static void clearing(q931_call *c, int channel, int cause, int ack)
{
    call_t *x = call_by_pri(c);
    if (x == NULL)
        return;
    if (!x->hung) {
        x->hung = 1;
        if (x->ts == 0)
            take_channel(x, channel);
        out_begin("hangup");
        out_int("call", x->num);
        out_chan(x->ts);
        out_int("cause", cause);
        out_end();
    }
    if (ack)
        call_done(x);                             /* RELEASE COMPLETE: libpri has let it go */
}

static void destroy_on_channel(int ts)
{
    for (int i = 0; i < P.ncalls; i++) {
        call_t *x = &P.calls[i];
        if (!x->gone && (ts == 0 || x->ts == ts)) {
            pri_destroycall(P.pri, x->c);
            call_done(x);
        }
    }
}

static void handle(pri_event *e)
{
    call_t *x;
    switch (e->e) {
    case PRI_EVENT_DCHAN_UP:
        out_begin("dchan_up");
        out_end();
        break;
    case PRI_EVENT_DCHAN_DOWN:
        out_begin("dchan_down");
        out_end();
        break;
    case PRI_EVENT_RING:
        on_ring(e);
        break;
    case PRI_EVENT_PROCEEDING:
    case PRI_EVENT_SETUP_ACK:
    case PRI_EVENT_RINGING:
    case PRI_EVENT_ANSWER: {
        q931_call *c = e->e == PRI_EVENT_PROCEEDING ? e->proceeding.call
                       : e->e == PRI_EVENT_SETUP_ACK ? e->setup_ack.call
                       : e->e == PRI_EVENT_RINGING ? e->ringing.call : e->answer.call;
        int channel = e->e == PRI_EVENT_PROCEEDING ? e->proceeding.channel
                      : e->e == PRI_EVENT_SETUP_ACK ? e->setup_ack.channel
                      : e->e == PRI_EVENT_RINGING ? e->ringing.channel : e->answer.channel;
        if ((x = call_by_pri(c)) == NULL)
            break;
        take_channel(x, channel);
        report_call(e->e == PRI_EVENT_PROCEEDING ? "proceeding" : e->e == PRI_EVENT_SETUP_ACK ? "setup_ack"
                    : e->e == PRI_EVENT_RINGING ? "ringing" : "answer", x);
        break;
    }
    case PRI_EVENT_HANGUP_REQ:                     /* DISCONNECT */
        clearing(e->hangup.call, e->hangup.channel, e->hangup.cause, 0);
        pri_hangup(P.pri, e->hangup.call, e->hangup.cause);
        break;
    case PRI_EVENT_HANGUP:                         /* RELEASE or RELEASE COMPLETE */
        clearing(e->hangup.call, e->hangup.channel, e->hangup.cause, 0);
        pri_hangup(P.pri, e->hangup.call, e->hangup.cause);   /* frees it (its state is null) */
        if ((x = call_by_pri(e->hangup.call)) != NULL)
            call_done(x);
        break;
    case PRI_EVENT_HANGUP_ACK:                     /* RELEASE COMPLETE to our RELEASE */
        clearing(e->hangup.call, e->hangup.channel, e->hangup.cause, 1);
        break;
    case PRI_EVENT_INFO_RECEIVED:
    case PRI_EVENT_KEYPAD_DIGIT:
        x = call_by_pri(e->e == PRI_EVENT_INFO_RECEIVED ? e->ring.call : e->digit.call);
        if (x != NULL) {
            out_begin("info");
            out_int("call", x->num);
            out_str("digits", e->e == PRI_EVENT_INFO_RECEIVED ? e->ring.callednum : e->digit.digits);
            out_end();
        }
        break;
    case PRI_EVENT_RESTART: {                      /* acknowledged by libpri; our calls there go */
        int ts = e->restart.channel < 0 ? 0 : chan_ts(e->restart.channel);
        destroy_on_channel(ts);
        out_begin("restart");
        out_chan(ts);
        out_end();
        break;
    }
    case PRI_EVENT_RESTART_ACK:
        out_begin("restart_ack");
        out_chan(chan_ts(e->restartack.channel));
        out_end();
        break;
    case PRI_EVENT_SERVICE:
    case PRI_EVENT_SERVICE_ACK:
        out_begin(e->e == PRI_EVENT_SERVICE ? "service" : "service_ack");
        out_chan(chan_ts(e->service.channel));
        out_code("status", STATUSES, e->service.changestatus);
        out_end();
        break;
    default:
        if (P.debug)
            fprintf(stderr, "[%lld] event %s ignored\n", (long long) now_ms, pri_event2str(e->e));
        break;
    }
}

static void pump(void)
{
    while (P.rxq_n > 0) {
        pri_event *e = pri_check_event(P.pri);
        if (e != NULL)
            handle(e);
    }
    for (int guard = 0; guard < 10000; guard++) {
        struct timeval *tv = pri_schedule_next(P.pri);
        if (tv == NULL)
            break;
        int64_t due = ((int64_t) tv->tv_sec - EPOCH_S) * 1000 + tv->tv_usec / 1000;
        if (due > now_ms)
            break;
        pri_event *e = pri_schedule_run(P.pri);
        if (e != NULL)
            handle(e);
    }
}

/* ---- script actions ------------------------------------------------------------------------- */

static void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "pri_peer [%lld]: ", (long long) now_ms);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static call_t *action_call(const jv_t *a, const char *what)
{
    call_t *x = call_by_num((int) jnum(a, "call", 0));
    if (x == NULL || x->gone) {
        warn("%s: no call %d in progress", what, (int) jnum(a, "call", 0));
        return NULL;
    }
    return x;
}

static void do_call(const jv_t *a)
{
    int ton = name_code(TONS, a, "ani_ton", 0), npi = name_code(NPIS, a, "ani_npi", 1);
    int pres = name_code(PRESS, a, "ani_pres", 0), screen = name_code(SCREENS, a, "ani_screen", 0);
    if (ton < 0 || npi < 0 || pres < 0 || screen < 0) {
        warn("call: ani_ton, ani_npi, ani_pres or ani_screen is not a name or a code");
        return;
    }
    int ts = jhas(a, "channel") ? (int) jnum(a, "channel", 0) : hunt();
    q931_call *c = pri_new_call(P.pri);
    if (c == NULL) {
        warn("call: libpri has no call to give");
        return;
    }
    call_t *x = call_new(c);
    if (x == NULL) {
        warn("call: too many calls");
        return;
    }
    x->ts = b_channel_ok(ts) ? ts : 0;
    struct pri_sr *sr = pri_sr_new();
    pri_sr_set_channel(sr, ts, (int) jnum(a, "exclusive", 0), 0);
    pri_sr_set_bearer(sr, PRI_TRANS_CAP_SPEECH, P.alaw ? PRI_LAYER_1_ALAW : PRI_LAYER_1_ULAW);
    char dnis[64], ani[64];
    snprintf(dnis, sizeof(dnis), "%s", jstr(a, "dnis", ""));
    snprintf(ani, sizeof(ani), "%s", jstr(a, "ani", ""));
    int ptype = (ton << 4) | npi;
    pri_sr_set_called(sr, dnis, (name_code(TONS, a, "dnis_ton", 0) << 4) | name_code(NPIS, a, "dnis_npi", 1),
                      (int) jnum(a, "complete", 1));
    pri_sr_set_caller(sr, ani[0] != '\0' ? ani : NULL, NULL, ptype, (pres << 5) | screen);
    if (pri_setup(P.pri, c, sr) != 0)
        warn("call %d: pri_setup refused it", x->num);
    pri_sr_free(sr);
}

static void do_action(const jv_t *a)
{
    const char *what = jstr(a, "do", "");
    call_t *x;
    if (strcmp(what, "call") == 0) {
        do_call(a);
    } else if (strcmp(what, "info") == 0) {
        if ((x = action_call(a, what)) != NULL)
            for (const char *d = jstr(a, "digits", ""); *d != '\0'; d++)
                pri_information(P.pri, x->c, *d);
    } else if (strcmp(what, "dtmf") == 0) {
        if ((x = action_call(a, what)) != NULL) {
            if (x->dtmf == NULL)
                x->dtmf = dtmf_tx_init(NULL);
            if (x->dtmf != NULL)
                dtmf_tx_put(x->dtmf, jstr(a, "digits", ""), -1);
        }
    } else if (strcmp(what, "tone") == 0) {
        if ((x = action_call(a, what)) != NULL) {
            double hz = jnum(a, "hz", 0), dbm0 = jnum(a, "dbm0", -10);
            x->tone_step = 2.0 * M_PI * hz / 8000.0;
            x->tone_phase = 0;
            /* the A-law reference (a full-scale sine is +3.14 dBm0), as tests/signals.py measures */
            x->tone_amp = hz > 0 ? 32768.0 * pow(10.0, (dbm0 - 3.14) / 20.0) : 0;
        }
    } else if (strcmp(what, "hangup") == 0) {
        if ((x = action_call(a, what)) != NULL)
            pri_hangup(P.pri, x->c, (int) jnum(a, "cause", PRI_CAUSE_NORMAL_CLEARING));
    } else if (strcmp(what, "restart") == 0) {
        if (jhas(a, "channel")) {
            int ts = (int) jnum(a, "channel", 0);
            destroy_on_channel(ts);
            pri_reset(P.pri, ts);
        } else {
            for (int ts = 1; ts <= P.nts; ts++)
                if (b_channel_ok(ts)) {
                    destroy_on_channel(ts);
                    pri_reset(P.pri, ts);
                }
        }
    } else if (strcmp(what, "service") == 0) {
        int status = name_code(STATUSES, a, "status", 0);
        if (status < 0)
            warn("service: status must be in_service, maintenance or out_of_service");
        else
            pri_maintenance_service(P.pri, 0, (int) jnum(a, "channel", 0), status);
    } else {
        warn("unknown action '%s'", what);
    }
}

/* The actions still to run, in order of at_ms; equal times keep the order they were given in. */
static void sort_actions(void)
{
    for (int i = P.next_action + 1; i < P.nactions; i++)
        for (int j = i; j > P.next_action
             && jnum(&P.actions[j - 1], "at_ms", 0) > jnum(&P.actions[j], "at_ms", 0); j--) {
            jv_t t = P.actions[j];
            P.actions[j] = P.actions[j - 1];
            P.actions[j - 1] = t;
        }
}

/* Append one JSON line to the actions; lines without at_ms run at once (now). */
static int add_action_line(const char *line, int immediate)
{
    while (*line == ' ' || *line == '\t' || *line == '\r')
        line++;
    if (*line == '\0' || *line == '#')
        return 0;
    jv_t v;
    if (json_parse(line, &v) != 0 || v.type != J_OBJ || !jhas(&v, "do")) {
        if (v.type == J_OBJ)
            jv_free(&v);
        fprintf(stderr, "pri_peer: not a script line ({\"at_ms\": ..., \"do\": ...}): %s\n", line);
        return -1;
    }
    if (immediate && !jhas(&v, "at_ms")) {
        do_action(&v);
        jv_free(&v);
        return 0;
    }
    jv_t *bigger = realloc(P.actions, sizeof(jv_t) * (size_t) (P.nactions + 1));
    if (bigger == NULL) {
        jv_free(&v);
        return -1;
    }
    P.actions = bigger;
    P.actions[P.nactions++] = v;
    return 0;
}

static void run_due_actions(void)
{
    while (P.next_action < P.nactions && jnum(&P.actions[P.next_action], "at_ms", 0) <= (double) now_ms) {
        do_action(&P.actions[P.next_action]);
        P.next_action++;
    }
}

/* Lines the test wrote on standard input since the last block (already in the pipe: the test
 * writes them before it steps the clock). A line with at_ms is scheduled among the rest. */
static void read_stdin(void)
{
    if (!P.stdin_open)
        return;
    for (;;) {
        struct pollfd pfd = {0, POLLIN, 0};
        if (poll(&pfd, 1, 0) <= 0 || !(pfd.revents & (POLLIN | POLLHUP)))
            return;
        ssize_t n = read(0, P.stdin_buf + P.stdin_len, sizeof(P.stdin_buf) - 1 - P.stdin_len);
        if (n <= 0) {
            P.stdin_open = 0;
            return;
        }
        P.stdin_len += (size_t) n;
        P.stdin_buf[P.stdin_len] = '\0';
        char *nl;
        int added = 0;
        while ((nl = strchr(P.stdin_buf, '\n')) != NULL) {
            *nl = '\0';
            int before = P.nactions;
            add_action_line(P.stdin_buf, 1);
            added |= P.nactions != before;
            size_t used = (size_t) (nl + 1 - P.stdin_buf);
            memmove(P.stdin_buf, nl + 1, P.stdin_len - used + 1);
            P.stdin_len -= used;
        }
        if (added)
            sort_actions();
        if (P.stdin_len == sizeof(P.stdin_buf) - 1)
            P.stdin_len = 0;   /* a line longer than the buffer: dropped */
    }
}

static int load_script(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "pri_peer: cannot read script %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[8192];
    int rc = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (add_action_line(line, 0) != 0)
            rc = -1;
    }
    fclose(f);
    sort_actions();
    return rc;
}

/* ---- the far-end socket ------------------------------------------------------------------------ */

static int read_exact(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (uint8_t *) buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t) r;
    }
    return 0;
}

static int write_all(int fd, const void *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = write(fd, (const uint8_t *) buf + done, n - done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        done += (size_t) r;
    }
    return 0;
}

static uint8_t *read_msg(int fd, int *type, uint32_t *len)
{
    uint8_t head[5];
    if (read_exact(fd, head, 5) != 0)
        return NULL;
    uint32_t n = (uint32_t) head[0] << 24 | (uint32_t) head[1] << 16 | (uint32_t) head[2] << 8 | head[3];
    if (n < 1 || n > (1u << 24))
        return NULL;
    *type = head[4];
    *len = n - 1;
    uint8_t *body = malloc(n);
    if (body == NULL || read_exact(fd, body, n - 1) != 0) {
        free(body);
        return NULL;
    }
    body[n - 1] = 0;
    return body;
}

static int send_msg(int fd, int type, const uint8_t *body, uint32_t len)
{
    uint8_t head[5] = {(uint8_t) ((len + 1) >> 24), (uint8_t) ((len + 1) >> 16), (uint8_t) ((len + 1) >> 8),
                       (uint8_t) (len + 1), (uint8_t) type};
    return write_all(fd, head, 5) != 0 || write_all(fd, body, len) != 0 ? -1 : 0;
}

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t) v;
}

/* The card's HELLO: find our span; 0 on success. */
static int take_hello(const char *text)
{
    jv_t h;
    if (json_parse(text, &h) != 0) {
        fprintf(stderr, "pri_peer: the card's HELLO is not JSON\n");
        return -1;
    }
    int rc = -1, found = 0;
    const jv_t *spans = jget(&h, "spans");
    for (int i = 0; spans != NULL && spans->type == J_ARR && i < spans->n; i++) {
        const jv_t *s = &spans->kids[i];
        if (strcmp(jstr(s, "name", ""), P.span_name) != 0)
            continue;
        found = 1;
        const char *kind = jstr(s, "kind", "");
        const char *framing = jstr(s, "framing", "");
        P.e1 = strcmp(kind, "e1") == 0;
        P.nts = P.e1 ? 31 : 24;
        P.octets = (int) jnum(s, "octets_per_tick", P.e1 ? 256 : 193);
        P.dchan_ts = P.e1 ? 16 : 24;
        P.alaw = P.e1;
        int code = P.e1 ? (jnum(s, "crc4", 0) ? PF_E1_CRC4 : PF_E1_BASIC)
                        : (strcmp(framing, "d4") == 0 ? PF_T1_D4 : PF_T1_ESF);
        if (strcmp(framing, "cas") == 0) {
            fprintf(stderr, "pri_peer: span %s is framed cas: its TS16 is no D-channel\n", P.span_name);
            break;
        }
        P.framer = pf_new(code);
        rc = P.framer == NULL ? -1 : 0;
    }
    if (!found)
        fprintf(stderr, "pri_peer: the card has no span '%s'\n", P.span_name);
    P.first_tick = (int64_t) jnum(&h, "tick", 0);
    P.k = (int) jnum(&h, "k", 1);
    jv_free(&h);
    return rc;
}

static void alarm_tick(int signal_ok)
{
    pf_status_t st;
    pf_status(P.framer, &st);
    if (signal_ok && st.aligned) {
        P.loss_since = -1;
        if (P.red) {
            P.red = 0;
            pf_set_rai(P.framer, 0);
            out_begin("alarm");
            out_str("alarm", "none");
            out_end();
        }
        return;
    }
    if (P.loss_since < 0)
        P.loss_since = now_ms;
    if (!P.red && now_ms - P.loss_since >= ALARM_MS) {
        P.red = 1;
        pf_set_rai(P.framer, 1);
        out_begin("alarm");
        out_str("alarm", "red");
        out_end();
        /* chan_dahdi's way: the span's calls are destroyed locally (libpri would keep them) */
        for (int i = 0; i < P.ncalls; i++) {
            call_t *x = &P.calls[i];
            if (x->gone)
                continue;
            if (!x->hung) {
                out_begin("hangup");
                out_int("call", x->num);
                out_chan(x->ts);
                out_int("cause", PRI_CAUSE_NETWORK_OUT_OF_ORDER);
                out_bool("local", 1);
                out_end();
            }
            pri_destroycall(P.pri, x->c);
            call_done(x);
        }
    }
}

/* One tick of the line: `flags` and `line` from the card; `out` our line for the same tick. */
static void tick(int flags, const uint8_t *line, uint8_t *out)
{
    static uint8_t zeros[256];
    uint8_t frames[64 * 31];
    int signal_ok = !(flags & NOSIG_FLAG);
    int got = pf_rx(P.framer, signal_ok ? line : zeros, P.octets * 8, frames, 64);
    for (int f = 0; f < got; f++)
        hdlc_rx_put_byte(P.hrx, frames[f * P.nts + P.dchan_ts - 1]);
    pump();
    read_stdin();
    run_due_actions();
    pump();
    alarm_tick(signal_ok);

    uint8_t ts[8 * 31];
    uint8_t idle = P.alaw ? 0xD5 : 0xFF;
    memset(ts, idle, sizeof(ts));
    for (int f = 0; f < 8; f++)
        ts[f * P.nts + P.dchan_ts - 1] = hdlc_next_octet();
    for (int i = 0; i < P.ncalls; i++) {
        call_t *x = &P.calls[i];
        if (x->gone || x->ts == 0 || (x->tone_amp == 0 && x->dtmf == NULL))
            continue;
        int16_t amp[8] = {0};
        if (x->dtmf != NULL)
            dtmf_tx(x->dtmf, amp, 8);
        for (int f = 0; f < 8; f++) {
            double s = amp[f];
            if (x->tone_amp > 0) {
                s += x->tone_amp * sin(x->tone_phase);
                x->tone_phase = fmod(x->tone_phase + x->tone_step, 2.0 * M_PI);
            }
            int v = (int) lrint(s > 32767 ? 32767 : s < -32768 ? -32768 : s);
            ts[f * P.nts + x->ts - 1] = P.alaw ? linear_to_alaw(v) : linear_to_ulaw(v);
        }
    }
    pf_tx(P.framer, ts, out);
}

static int run(int fd)
{
    for (;;) {
        int type;
        uint32_t len;
        uint8_t *body = read_msg(fd, &type, &len);
        if (body == NULL)
            return 0;                              /* the card closed the connection */
        if (type != 2 || len < 18) {
            free(body);
            fprintf(stderr, "pri_peer: not a BLOCK from the card\n");
            return 1;
        }
        uint32_t seq = (uint32_t) be(body, 4);
        int64_t first = (int64_t) be(body + 4, 8);
        int ticks = (int) be(body + 12, 2), nchan = (int) be(body + 14, 2), nspan = (int) be(body + 16, 2);
        size_t at = 18 + (size_t) nchan * (size_t) ticks * 8;
        if (nspan != 1 || len < at + (size_t) ticks * (size_t) (1 + P.octets) + 2) {
            free(body);
            fprintf(stderr, "pri_peer: a BLOCK of %d spans and %d channels (want our span alone)\n", nspan, nchan);
            return 1;
        }
        size_t alen = 18 + (size_t) nchan * (size_t) ticks * 8 + (size_t) ticks * (size_t) (1 + P.octets) + 2;
        uint8_t *ans = calloc(1, alen);
        if (ans == NULL) {
            free(body);
            return 1;
        }
        put_be(ans, seq, 4);
        put_be(ans + 4, (uint64_t) first, 8);
        put_be(ans + 12, (uint64_t) ticks, 2);
        put_be(ans + 14, (uint64_t) nchan, 2);
        put_be(ans + 16, 1, 2);
        memset(ans + 18, P.alaw ? 0xD5 : 0xFF, (size_t) nchan * (size_t) ticks * 8);
        size_t out_at = 18 + (size_t) nchan * (size_t) ticks * 8;
        for (int t = 0; t < ticks; t++) {
            now_ms = first + t;
            const uint8_t *in = body + at + (size_t) t * (size_t) (1 + P.octets);
            ans[out_at] = 0;
            tick(in[0], in + 1, ans + out_at + 1);
            out_at += 1 + (size_t) P.octets;
        }
        put_be(ans + out_at, 0, 2);                /* no events */
        fflush(stdout);                            /* the block's lines before its answer */
        int rc = send_msg(fd, 2, ans, (uint32_t) alen);
        free(ans);
        free(body);
        if (rc != 0)
            return 0;
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: pri_peer --socket PATH --span NAME --side network|user --switch euroisdn|ni2 "
                    "[--script FILE] [--answer] [--debug]\n");
}

int main(int argc, char **argv)
{
    const char *side = NULL, *sw = NULL;
    P.loss_since = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--answer") == 0) {
            P.answer = 1;
        } else if (strcmp(a, "--debug") == 0) {
            P.debug = 1;
        } else if (v != NULL && strcmp(a, "--socket") == 0) {
            P.sock_path = v, i++;
        } else if (v != NULL && strcmp(a, "--span") == 0) {
            P.span_name = v, i++;
        } else if (v != NULL && strcmp(a, "--side") == 0) {
            side = v, i++;
        } else if (v != NULL && strcmp(a, "--switch") == 0) {
            sw = v, i++;
        } else if (v != NULL && strcmp(a, "--script") == 0) {
            P.script_path = v, i++;
        } else {
            usage();
            return 2;
        }
    }
    if (P.sock_path == NULL || P.span_name == NULL || side == NULL || sw == NULL
        || (strcmp(side, "network") != 0 && strcmp(side, "user") != 0)
        || (strcmp(sw, "euroisdn") != 0 && strcmp(sw, "ni2") != 0)) {
        usage();
        return 2;
    }
    P.network = strcmp(side, "network") == 0;
    P.ni2 = strcmp(sw, "ni2") == 0;
    if (P.script_path != NULL && load_script(P.script_path) != 0)
        return 2;
    P.stdin_open = 1;

    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(P.sock_path) >= sizeof(addr.sun_path)) {
        fprintf(stderr, "pri_peer: socket path too long\n");
        return 2;
    }
    strcpy(addr.sun_path, P.sock_path);
    if (fd < 0 || connect(fd, (struct sockaddr *) &addr, sizeof(addr)) != 0) {
        fprintf(stderr, "pri_peer: cannot connect to %s: %s\n", P.sock_path, strerror(errno));
        return 2;
    }
    int type;
    uint32_t len;
    uint8_t *hello = read_msg(fd, &type, &len);
    if (hello == NULL || type != 1 || take_hello((const char *) hello) != 0) {
        free(hello);
        return 2;
    }
    free(hello);

    now_ms = P.first_tick;
    P.htx = hdlc_tx_init(NULL, 0, 1, 0, NULL, NULL);
    P.hrx = hdlc_rx_init(NULL, 0, 0, 1, hdlc_frame_in, NULL);
    pri_set_message(pri_msg);
    pri_set_error(pri_err);
    int switchtype = P.ni2 ? PRI_SWITCH_NI2 : P.e1 ? PRI_SWITCH_EUROISDN_E1 : PRI_SWITCH_EUROISDN_T1;
    P.pri = pri_new_cb(-1, P.network ? PRI_NETWORK : PRI_CPE, switchtype, pri_io_read, pri_io_write, NULL);
    if (P.htx == NULL || P.hrx == NULL || P.pri == NULL) {
        fprintf(stderr, "pri_peer: spandsp or libpri would not start\n");
        return 2;
    }
    if (P.debug)
        pri_set_debug(P.pri, PRI_DEBUG_Q931_DUMP | PRI_DEBUG_Q921_STATE | PRI_DEBUG_Q931_STATE);
    pri_set_overlapdial(P.pri, 1);                 /* Sending Complete exactly when a call says so */
    pri_set_service_message_support(P.pri, P.ni2);
    out_begin("attached");
    out_str("span", P.span_name);
    out_str("kind", P.e1 ? "e1" : "t1");
    out_str("side", side);
    out_str("switch", sw);
    out_int("k", P.k);
    out_end();
    fflush(stdout);
    /* the claim last, once "attached" is out: the card's side has read it when the HELLO is answered */
    char claim[512];
    snprintf(claim, sizeof(claim), "{\"version\": 2, \"claim\": [], \"spans\": [\"%s\"]}", P.span_name);
    if (send_msg(fd, 1, (const uint8_t *) claim, (uint32_t) strlen(claim)) != 0)
        return 2;
    int rc = run(fd);
    if (P.rx_dropped || P.tx_dropped)
        fprintf(stderr, "pri_peer: %lu frames in and %lu out dropped (queues full)\n", P.rx_dropped, P.tx_dropped);
    close(fd);
    return rc;
}
