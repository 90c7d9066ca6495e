/*
 * cb_hal.h - the card HAL: the one C interface between a card backend and the
 * channel scheduler.
 *
 * A card moves blocks of k ticks. One tick is 1 ms: 8 G.711 octets per channel
 * each way. Channels are numbered 0..nchan-1: analog ports first (in the order
 * of the card description), then the timeslots of each span.
 *
 * Buffers of one block are channel-major: octet s of tick t of channel c is at
 * [c * ticks * CB_TICK_SAMPLES + t * CB_TICK_SAMPLES + s], as a DAHDI channel
 * read of ticks*8 octets would give it.
 *
 * The records crossing the HAL (commands in, events out), their kinds and the
 * status codes are those of the neutral header cb_records.h. Events a block
 * produces are handed back as heads without payload; frames (the D-channel,
 * later) come through the optional HDLC operations.
 *
 * Operations are marked Req (every backend has it) or Opt (may be NULL; the
 * cb_card_* dispatchers then answer CB_ERR_NOTSUP), and a backend declares
 * what it has in its capability bits, so callers test a bit instead of
 * catching "not supported".
 *
 * Between CDEF BEGIN and CDEF END this header is also the cffi cdef.
 */
#ifndef CB_HAL_H
#define CB_HAL_H

#include <stdint.h>
#include "cb_records.h"

/* CDEF BEGIN */
/* Capability bits (cb_card_t.caps). */
enum cb_card_caps {
    CB_CAP_FAR_END = 1,     /* a far side other programs can play (the sim card's socket) */
    CB_CAP_LINE_LEVELS = 2, /* hook, ringing, battery and polarity readable as levels */
    CB_CAP_SPAN_CONFIG = 4, /* framing and line coding of a span can be set */
    CB_CAP_SPAN_STATUS = 8, /* alarms and error counters of a span can be read */
    CB_CAP_ABCD = 16,       /* CAS ABCD signalling bits per timeslot */
    CB_CAP_HDLC = 32,       /* HDLC framing of a timeslot (an ISDN D-channel) */
    CB_CAP_SYNC = 64        /* the card's clock can be taken from a span */
};

/* Span framing and line coding (cb_span_config_t). */
enum cb_framing {
    CB_FRAMING_E1_G704 = 0,     /* E1 double frame (G.704), no CRC-4 */
    CB_FRAMING_E1_CRC4 = 1,     /* E1 with the CRC-4 multiframe */
    CB_FRAMING_T1_D4 = 2,       /* T1 superframe (D4: Ft/Fs) */
    CB_FRAMING_T1_ESF = 3       /* T1 extended superframe (FPS, CRC-6, FDL) */
};

enum cb_line_coding {
    CB_CODING_HDB3 = 0,
    CB_CODING_AMI = 1,
    CB_CODING_B8ZS = 2
};

/* The role of E1 TS16 (T1: TS24 for a D-channel; T1 has no CAS here). */
enum cb_ts16 {
    CB_TS16_CLEAR = 0,      /* a bearer like the others (E1 only) */
    CB_TS16_DCHAN = 1,      /* HDLC D-channel (ISDN PRI): E1 TS16, T1 TS24; carries no audio */
    CB_TS16_CAS = 2         /* E1 CAS multiframe: MFAS, Y, ABCD of 30 channels; carries no audio */
};

/* Span alarm bits (cb_span_status_t.alarms, CB_EV_ALARM value): DAHDI's state bits, then the
 * defects behind them. */
enum cb_span_alarm {
    CB_ALARM_RECOVER = 1,   /* red or blue cleared less than 5000 ms ago */
    CB_ALARM_YELLOW = 4,    /* the far end sends RAI (500 ms) */
    CB_ALARM_RED = 8,       /* LOS or loss of frame (2500 ms) */
    CB_ALARM_BLUE = 16,     /* AIS received (2500 ms) */
    CB_ALARM_LOS = 1 << 8,  /* detail: no signal */
    CB_ALARM_LFA = 1 << 9,  /* detail: no frame alignment */
    CB_ALARM_LMFA = 1 << 10 /* detail: no CRC-4 multiframe alignment (basic frame kept) */
};

typedef struct cb_span_config {
    int32_t framing;        /* enum cb_framing (it fixes the kind: E1 or T1, and CRC-4) */
    int32_t coding;         /* enum cb_line_coding */
    int32_t sync_priority;  /* 0 = never a clock source, 1 = first choice, ... */
    int32_t ts16;           /* enum cb_ts16 */
} cb_span_config_t;

/* Cumulative counters of a span; none count during its start-up frame search. */
typedef struct cb_span_counters {
    uint64_t bpv;           /* bipolar violations (only where a line model codes the line) */
    uint64_t crc;           /* CRC-4 / CRC-6 errors, while frame-aligned */
    uint64_t ebit;          /* E-bits received (the far end saw a CRC-4 error), while aligned */
    uint64_t fas;           /* errored FAS words (T1: framing bits), while aligned */
    uint64_t slips;         /* controlled slips of the receive elastic store */
    uint64_t es;            /* errored seconds: a CRC error or a LOS/LOF/AIS defect */
    uint64_t ses;           /* severely errored seconds: >= 805 CRC-4 / >= 320 CRC-6 errors, or a defect */
} cb_span_counters_t;

/* The D-channel's HDLC counters. */
typedef struct cb_dchan_stats {
    uint64_t frames_rx;     /* good frames delivered */
    uint64_t frames_tx;     /* frames sent whole */
    uint64_t bad_fcs;       /* frames dropped for a bad FCS */
    uint64_t aborts;        /* frames aborted (seven 1s) */
    uint64_t too_long;      /* frames dropped: longer than CB_MAX_PAYLOAD before the FCS */
    uint64_t rx_dropped;    /* good frames dropped: the receive queue was full */
} cb_dchan_stats_t;

typedef struct cb_span_status {
    uint32_t alarms;        /* enum cb_span_alarm bits: state and detail */
    int32_t sending_rai;    /* 1 while we send RAI (any alarm set, RECOVER included) */
    int32_t sync;           /* 1 while this span is the card's clock source */
    int32_t has_dchan;      /* 1 when `dchan` counts a D-channel */
    cb_span_counters_t counters;
    cb_dchan_stats_t dchan;
} cb_span_status_t;

/* Line level bits (cb_card_line_levels). */
enum cb_line_level {
    CB_LEVEL_OFF_HOOK = 1,  /* FXS: the phone is off hook (as reported: after the flash window); FXO: we are */
    CB_LEVEL_RINGING = 2,   /* FXS: we ring the phone; FXO: ringing voltage from the exchange */
    CB_LEVEL_BATTERY = 4,   /* battery present */
    CB_LEVEL_REVERSED = 8   /* polarity reversed */
};

typedef struct cb_card cb_card_t;

/* The operations of a card backend. Req: every backend has it. Opt: may be NULL. */
typedef struct cb_card_ops {
    /* Req: wait until the next block of `ticks` can be exchanged. Virtual
     * clock: returns at once. Realtime: sleeps to the block's absolute
     * deadline (sim) or waits on the device (dahdi). Returns how late it woke,
     * in microseconds (>= 0), or a negative cb_status. */
    int (*wait)(cb_card_t *card, int ticks);
    /* Req: exchange one block: give tx octets to the line, take rx octets
     * from it, for `ticks` ticks starting at `tick0`. Card events produced by
     * the block are appended to ev, at most ev_max of them. Returns how many
     * the block raised, or a negative cb_status: more than ev_max when some
     * did not fit (only the first ev_max are in ev, the rest are lost; the
     * card counts them by kind, the caller in total). */
    int (*exchange)(cb_card_t *card, uint64_t tick0, int ticks, const uint8_t *tx,
                    uint8_t *rx, cb_event_t *ev, int ev_max);
    /* Req: a card command (op < 0x100), applied at the start of the next block. */
    int (*command)(cb_card_t *card, const cb_cmd_t *cmd);
    /* Opt: leave realtime (close devices); NULL if nothing to do. */
    void (*stop)(cb_card_t *card);
    /* Opt (CB_CAP_LINE_LEVELS): the current line level bits (enum cb_line_level)
     * of channels 0..n-1 into out; returns n or a negative cb_status. */
    int (*line_levels)(cb_card_t *card, uint8_t *out, int n);
    /* Opt (CB_CAP_SPAN_CONFIG): set a span's framing, line coding and sync priority. */
    int (*span_config)(cb_card_t *card, int span, const cb_span_config_t *cfg);
    /* Opt (CB_CAP_SPAN_STATUS): a span's alarms and error counters. */
    int (*span_status)(cb_card_t *card, int span, cb_span_status_t *out);
    /* Opt (CB_CAP_SYNC): take the card's clock from span `span` (-1: the internal clock). */
    int (*sync_source)(cb_card_t *card, int span);
    /* Opt (CB_CAP_ABCD): set the ABCD bits a timeslot transmits (low 4 bits). */
    int (*abcd_set)(cb_card_t *card, int chan, int bits);
    /* Opt (CB_CAP_ABCD): the ABCD bits a timeslot receives (low 4 bits), or a negative cb_status. */
    int (*abcd_get)(cb_card_t *card, int chan);
    /* Opt (CB_CAP_HDLC): queue one frame (without FCS) for HDLC transmission on a timeslot. */
    int (*hdlc_send)(cb_card_t *card, int chan, const uint8_t *frame, int len);
    /* Opt (CB_CAP_HDLC): take one received frame (FCS checked and removed) of a timeslot;
     * returns its length, 0 if none, or a negative cb_status. */
    int (*hdlc_recv)(cb_card_t *card, int chan, uint8_t *frame, int max);
} cb_card_ops_t;

/* The head every card object starts with. */
struct cb_card {
    const cb_card_ops_t *ops;
    int nchan;
    int ticks_per_block;  /* k */
    uint32_t caps;        /* enum cb_card_caps */
    /* Set by the media tier when it attaches the card (NULL until then): per channel, the one
     * octet all the tx octets of the block being exchanged are, 0 when they are not all one
     * octet or it does not say (0 is no law's idle octet). A hint a card may read inside
     * exchange, never after its media tier is gone: a card that frames in software need not
     * look at a channel's octets to know it sends the idle octet. */
    const uint8_t *tx_fill;
};

/* CDEF END */

#endif
