/*
 * pri_pair.c - libpri against libpri over an in-memory frame queue: bench/pri.py's
 * libpri_setups_per_s.
 *
 * Two libpri instances, a CPE and a network side (EuroISDN E1), joined by two frame queues
 * (libpri's custom I/O, pri_new_cb: what one writes the other reads, with libpri's two FCS
 * placeholder octets passed along). The CPE keeps INFLIGHT calls going, each on its own
 * B-channel (exclusive); the network side answers each SETUP at once (CONNECT); the CPE clears
 * each call as soon as it is answered (DISCONNECT, RELEASE, RELEASE COMPLETE) and places the next.
 * A cycle is counted when the CPE's call is over. The same cycles as bench/pri.py's setups_per_s,
 * with no line between the two: what libpri's stacks do per wall second. libpri's timers run on the
 * real clock (none expires while frames flow).
 *
 * A separate program: libpri is GPL-2, never linked into the product.
 *
 *   pri_pair [--seconds S] [--inflight N]
 *
 * Prints one JSON line: {"setups_per_s", "cycles", "failed", "wall_s", "frames"}; exits 1 if the
 * D-channel never came up or the calls stopped.
 */
#define _POSIX_C_SOURCE 200809L
#include <libpri.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#define QLEN 4096               /* frames a queue holds */
#define MAX_FRAME 300           /* octets of a frame with its FCS placeholder */
#define NCHAN 32                /* E1 timeslots, 1-31 (16 is the D-channel) */

typedef struct {
    uint8_t frame[QLEN][MAX_FRAME];
    int len[QLEN];
    int head, n;
    long dropped, passed;
} queue_t;

typedef struct {
    queue_t *in, *out;
} end_t;

static queue_t to_net, to_cpe;
static end_t cpe_end = {&to_cpe, &to_net}, net_end = {&to_net, &to_cpe};
static struct pri *cpe, *net;
static q931_call *on_chan[NCHAN];       /* the CPE's call on each B-channel */
static int cpe_up, net_up, running = 1;
static long cycles, failed, placed;

static int io_read(struct pri *pri, void *buf, int buflen)
{
    queue_t *q = ((end_t *) pri_get_userdata(pri))->in;
    if (q->n == 0)
        return 0;
    int len = q->len[q->head];
    if (len > buflen)
        len = buflen;
    memcpy(buf, q->frame[q->head], (size_t) len);
    q->head = (q->head + 1) % QLEN;
    q->n--;
    return len;
}

static int io_write(struct pri *pri, void *buf, int buflen)
{
    queue_t *q = ((end_t *) pri_get_userdata(pri))->out;
    if (q->n == QLEN || buflen > MAX_FRAME) {
        q->dropped++;
        return buflen;
    }
    int slot = (q->head + q->n) % QLEN;
    memcpy(q->frame[slot], buf, (size_t) buflen);
    q->len[slot] = buflen;
    q->n++;
    q->passed++;
    return buflen;
}

static void quiet(struct pri *pri, char *s)
{
    (void) pri;
    (void) s;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static int b_channel_ok(int ts)
{
    return ts >= 1 && ts <= 31 && ts != 16;
}

static void place(void)
{
    int ts = 0;
    for (int t = 31; t >= 1; t--) {
        if (b_channel_ok(t) && on_chan[t] == NULL) {
            ts = t;
            break;
        }
    }
    if (ts == 0)
        return;
    q931_call *c = pri_new_call(cpe);
    struct pri_sr *sr = pri_sr_new();
    if (c == NULL || sr == NULL) {
        failed++;
        if (sr != NULL)
            pri_sr_free(sr);
        return;
    }
    char ani[16];
    snprintf(ani, sizeof(ani), "1380013%04ld", placed % 10000);
    pri_sr_set_channel(sr, ts, 1, 0);
    pri_sr_set_bearer(sr, PRI_TRANS_CAP_SPEECH, PRI_LAYER_1_ALAW);
    pri_sr_set_called(sr, "075588880000", PRI_NATIONAL_ISDN, 1);
    pri_sr_set_caller(sr, ani, NULL, PRI_NATIONAL_ISDN, PRES_ALLOWED_USER_NUMBER_NOT_SCREENED);
    if (pri_setup(cpe, c, sr) != 0) {
        failed++;
    } else {
        on_chan[ts] = c;
        placed++;
    }
    pri_sr_free(sr);
}

static void cpe_done(q931_call *c, int ok)
{
    for (int t = 1; t < NCHAN; t++) {
        if (on_chan[t] == c) {
            on_chan[t] = NULL;
            cycles++;
            failed += !ok;
            if (running)
                place();
            return;
        }
    }
}

static void cpe_event(pri_event *e)
{
    switch (e->e) {
    case PRI_EVENT_DCHAN_UP:
        cpe_up = 1;
        break;
    case PRI_EVENT_ANSWER:
        pri_hangup(cpe, e->answer.call, PRI_CAUSE_NORMAL_CLEARING);
        break;
    case PRI_EVENT_HANGUP_REQ:                     /* the network cleared first: a failed cycle */
        pri_hangup(cpe, e->hangup.call, e->hangup.cause);
        break;
    case PRI_EVENT_HANGUP:                         /* RELEASE or RELEASE COMPLETE */
        pri_hangup(cpe, e->hangup.call, e->hangup.cause);
        cpe_done(e->hangup.call, e->hangup.cause == PRI_CAUSE_NORMAL_CLEARING);
        break;
    case PRI_EVENT_HANGUP_ACK:                     /* RELEASE COMPLETE to our RELEASE */
        cpe_done(e->hangup.call, e->hangup.cause == PRI_CAUSE_NORMAL_CLEARING);
        break;
    default:
        break;
    }
}

static void net_event(pri_event *e)
{
    switch (e->e) {
    case PRI_EVENT_DCHAN_UP:
        net_up = 1;
        break;
    case PRI_EVENT_RING:
        pri_answer(net, e->ring.call, e->ring.channel, 0);
        break;
    case PRI_EVENT_HANGUP_REQ:                     /* DISCONNECT: RELEASE */
    case PRI_EVENT_HANGUP:
        pri_hangup(net, e->hangup.call, e->hangup.cause);
        break;
    default:
        break;
    }
}

static void timers(struct pri *pri, void (*handle)(pri_event *))
{
    struct timeval now;
    for (int guard = 0; guard < 100; guard++) {
        struct timeval *tv = pri_schedule_next(pri);
        gettimeofday(&now, NULL);
        if (tv == NULL || tv->tv_sec > now.tv_sec || (tv->tv_sec == now.tv_sec && tv->tv_usec > now.tv_usec))
            return;
        pri_event *e = pri_schedule_run(pri);
        if (e != NULL)
            handle(e);
    }
}

/* The frames waiting for each side, to its reader (those they cause wait for the next round); the
 * timers due; returns the frames moved. */
static long pump(void)
{
    long moved = 0;
    for (int n = to_net.n; n > 0; n--) {
        pri_event *e = pri_check_event(net);
        moved++;
        if (e != NULL)
            net_event(e);
    }
    for (int n = to_cpe.n; n > 0; n--) {
        pri_event *e = pri_check_event(cpe);
        moved++;
        if (e != NULL)
            cpe_event(e);
    }
    timers(net, net_event);
    timers(cpe, cpe_event);
    return moved;
}

int main(int argc, char **argv)
{
    double seconds = 5.0;
    int inflight = 8;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--inflight") == 0 && i + 1 < argc)
            inflight = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: pri_pair [--seconds S] [--inflight N]\n");
            return 2;
        }
    }
    if (inflight < 1 || inflight > 30 || seconds <= 0) {
        fprintf(stderr, "pri_pair: --inflight 1-30, --seconds > 0\n");
        return 2;
    }
    pri_set_message(quiet);
    pri_set_error(quiet);
    cpe = pri_new_cb(-1, PRI_CPE, PRI_SWITCH_EUROISDN_E1, io_read, io_write, &cpe_end);
    net = pri_new_cb(-1, PRI_NETWORK, PRI_SWITCH_EUROISDN_E1, io_read, io_write, &net_end);
    if (cpe == NULL || net == NULL) {
        fprintf(stderr, "pri_pair: libpri would not start\n");
        return 1;
    }
    double t0 = now_s();
    while (!(cpe_up && net_up)) {
        pump();
        if (now_s() - t0 > 10.0) {
            fprintf(stderr, "pri_pair: the D-channel did not come up\n");
            return 1;
        }
    }
    for (int i = 0; i < inflight; i++)
        place();
    double start = now_s(), wall = 0.0;
    long frames = 0, idle = 0;
    while ((wall = now_s() - start) < seconds) {
        long moved = pump();
        frames += moved;
        idle = moved ? 0 : idle + 1;
        if (idle > 1000000) {
            fprintf(stderr, "pri_pair: the calls stopped after %ld cycles\n", cycles);
            return 1;
        }
    }
    long counted = cycles;
    running = 0;
    for (int i = 0; i < 1000 && pump() > 0; i++)
        ;
    printf("{\"setups_per_s\": %.1f, \"cycles\": %ld, \"failed\": %ld, \"wall_s\": %.3f, \"frames\": %ld, "
           "\"dropped\": %ld}\n", (double) counted / wall, counted, failed, wall, frames,
           to_net.dropped + to_cpe.dropped);
    return 0;
}
